//! A tiny deterministic random number generator.
//!
//! The simulator must give byte-identical districts for the same seed on every platform and
//! every release, so it cannot depend on a crate whose algorithm may change between versions.
//! SplitMix64 is small, fast, statistically good enough for synthetic data, and can be
//! derived cheaply from `(seed, stream, index)` so each day and each request gets its own
//! independent, reproducible sequence.

/// Independent streams of randomness, so that adding draws in one place never shifts another.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Generate = 1,
    Day = 2,
    Faults = 3,
    Tokens = 4,
}

/// Mixes two 64-bit values into one well-distributed value (SplitMix64 finaliser).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, stream: Stream, index: u64) -> Self {
        Rng(mix(mix(seed, stream as u64), index))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `n == 0` gives 0.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A value in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// How many events happen when `expected` are expected: the integer part always, the
    /// fractional part by chance. Keeps daily churn proportional at every district size.
    pub(crate) fn count(&mut self, expected: f64) -> usize {
        let whole = expected.floor();
        let extra = usize::from(self.chance(expected - whole));
        whole as usize + extra
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let mut a = Rng::new(7, Stream::Day, 3);
        let mut b = Rng::new(7, Stream::Day, 3);
        let mut c = Rng::new(7, Stream::Day, 4);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_stays_in_range_and_count_averages_out() {
        let mut rng = Rng::new(1, Stream::Generate, 0);
        assert!((0..10_000).all(|_| rng.below(13) < 13));
        let total: usize = (0..10_000).map(|_| rng.count(0.25)).sum();
        assert!((2_200..2_800).contains(&total), "{total}");
    }
}
