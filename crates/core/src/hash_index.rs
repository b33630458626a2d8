//! People found by a 64-bit hash of a key: 17 bytes a person, where a hash map of borrowed
//! keys costs ~32 and one of owned keys ~100 — at three million people, the difference is
//! hundreds of megabytes. A hash says only "maybe": the caller confirms a candidate by
//! looking at that person's key.

/// (hash, person index) pairs, sorted, and where each run of leading hash bits starts
/// among them. The hashes are mixed first ([`spread`]: the callers' FNV hashes of ids
/// that differ in their last characters differ little in their leading bits), so they
/// are even over their range and a lookup reads one `starts` slot and a few neighbouring
/// pairs (two cache misses) where a binary search over millions misses at nearly every
/// one of its twenty steps.
pub(crate) struct HashIndex {
    entries: Vec<(u64, u32)>,
    /// `starts[b]`: the first entry whose hash's leading `bits` bits are `b` or more;
    /// `2^bits + 1` slots, one for every four to eight entries (under a byte an entry).
    starts: Vec<u32>,
    bits: u32,
}

impl HashIndex {
    /// The index of `entries`: each a key's hash and its person's index.
    pub(crate) fn new(entries: impl Iterator<Item = (u64, u32)>) -> HashIndex {
        // Sized for the most entries there can be (16 bytes a person of the run), not grown
        // by doubling: at three million people the last doubling holds 100 MB at once.
        let (least, most) = entries.size_hint();
        let mut index = Vec::with_capacity(most.unwrap_or(least));
        index.extend(entries.map(|(h, i)| (spread(h), i)));
        index.sort_unstable();
        index.shrink_to_fit();
        let (starts, bits) = bucket_starts(index.len(), |i| index[i].0);
        HashIndex {
            entries: index,
            starts,
            bits,
        }
    }

    /// The person with `hash` whom `is` confirms; of several, the last indexed (as
    /// collecting into a map keeps the last).
    pub(crate) fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let hash = spread(hash);
        let near = near(&self.entries, &self.starts, self.bits, hash);
        let start = near.partition_point(|&(h, _)| h < hash);
        let end = start + near[start..].partition_point(|&(h, _)| h == hash);
        near[start..end]
            .iter()
            .rev()
            .map(|&(_, i)| i)
            .find(|&i| is(i))
    }
}

/// The hash a sourcedId is indexed by: FNV-1a of it ([`crate::sis::Fnv`]).
pub(crate) fn id_hash(id: &str) -> u64 {
    let mut h = crate::sis::Fnv::new();
    h.str(id);
    h.finish()
}

/// `hash` with every bit stirred into the leading ones (the finalizer of SplitMix64, a
/// bijection: two hashes are equal after it only if they were before).
pub(crate) fn spread(hash: u64) -> u64 {
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where each run of leading hash bits starts among `len` sorted, [`spread`] hashes
/// (`hash_at(i)` the `i`th), and how many leading bits: `starts[b]` is the first whose
/// leading bits are `b` or more, one slot for every four to eight hashes.
pub(crate) fn bucket_starts(len: usize, hash_at: impl Fn(usize) -> u64) -> (Vec<u32>, u32) {
    let bits = (len / 4).max(1).ilog2();
    let mut starts = Vec::with_capacity((1 << bits) + 1);
    let mut at = 0;
    for b in 0..=(1u64 << bits) {
        while at < len && bucket(hash_at(at), bits) < b {
            at += 1;
        }
        starts.push(at as u32);
    }
    (starts, bits)
}

/// The sorted, [`spread`] hashes among `sorted` that may be `hash`: those in its slot of
/// `starts` ([`bucket_starts`]).
pub(crate) fn near<'a, T>(sorted: &'a [T], starts: &[u32], bits: u32, hash: u64) -> &'a [T] {
    let b = bucket(hash, bits) as usize;
    &sorted[starts[b] as usize..starts[b + 1] as usize]
}

/// The leading `bits` bits of `hash`.
fn bucket(hash: u64, bits: u32) -> u64 {
    if bits == 0 { 0 } else { hash >> (64 - bits) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_confirmed_person_with_a_hash() {
        // Persons 0 and 2 share hash 7 with different keys (a collision); 3 repeats 0's key.
        let keys = ["a", "b", "c", "a"];
        let hashes = [7, 9, 7, 7];
        let index = HashIndex::new(hashes.iter().enumerate().map(|(i, h)| (*h, i as u32)));
        let find = |hash: u64, key: &str| index.find(hash, |i| keys[i as usize] == key);
        assert_eq!(find(7, "a"), Some(3));
        assert_eq!(find(7, "c"), Some(2));
        assert_eq!(find(9, "b"), Some(1));
        assert_eq!(find(7, "b"), None);
        assert_eq!(find(8, "a"), None);
        assert_eq!(find(u64::MAX, "a"), None);
    }

    #[test]
    fn ids_alike_but_for_their_last_characters_spread_over_the_slots() {
        // FNV hashes of sequential ids differ little in their leading bits (unmixed,
        // 3 501 of these 4 096 slots stay empty); mixed, they fill the slots about evenly
        // (~4.9 entries a slot here; empty ones ~1 % by chance).
        let hash = |id: &str| {
            let mut h = crate::sis::Fnv::new();
            h.str(id);
            h.finish()
        };
        let index = HashIndex::new((0..20_000u32).map(|i| (hash(&format!("p{i:07}")), i)));
        let slots = index.starts.len() - 1;
        assert_eq!(slots, 4096);
        let empty = index.starts.windows(2).filter(|w| w[0] == w[1]).count();
        let fullest = index.starts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(empty < slots / 20, "{empty} of {slots} slots empty");
        assert!(fullest < 24, "{fullest} entries in one slot");
        for i in (0..20_000u32).step_by(7) {
            assert_eq!(index.find(hash(&format!("p{i:07}")), |j| j == i), Some(i));
        }
    }

    #[test]
    fn finds_every_entry_whatever_the_leading_bits() {
        // Hashes bunched at both ends and the middle of the range, and spread over it:
        // every one is found, in whichever leading-bits slot it falls.
        let mut hashes: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        hashes.extend([0, 1, 2, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1]);
        let mut seen = std::collections::HashSet::new();
        hashes.retain(|h| seen.insert(*h));
        for n in [0, 1, 3, 4, 5, 17, hashes.len()] {
            let index = HashIndex::new(hashes[..n].iter().enumerate().map(|(i, h)| (*h, i as u32)));
            for (i, h) in hashes[..n].iter().enumerate() {
                assert_eq!(
                    index.find(*h, |j| j == i as u32),
                    Some(i as u32),
                    "{n}: {h}"
                );
            }
            for h in &hashes[n..] {
                assert_eq!(index.find(*h, |_| true), None, "{n}: {h} absent");
            }
        }
    }
}
