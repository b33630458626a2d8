//! People found by a 64-bit hash of a key: 17 bytes a person, where a hash map of borrowed
//! keys costs ~32 and one of owned keys ~100 — at three million people, the difference is
//! hundreds of megabytes. A hash says only "maybe": the caller confirms a candidate by
//! looking at that person's key.

/// (hash, person index) pairs, sorted, and where each run of leading hash bits starts
/// among them: the hashes are even over their range, so a lookup reads one `starts` slot
/// and a few neighbouring pairs (two cache misses) where a binary search over millions
/// misses at nearly every one of its twenty steps.
pub(crate) struct HashIndex {
    entries: Vec<(u64, u32)>,
    /// `starts[b]`: the first entry whose hash's leading `bits` bits are `b` or more;
    /// `2^bits + 1` slots, about one for every four entries (1 byte an entry).
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
        index.extend(entries);
        index.sort_unstable();
        index.shrink_to_fit();
        let bits = (index.len() / 4).max(1).ilog2();
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for b in 0..=(1u64 << bits) {
            while index.get(at).is_some_and(|&(h, _)| bucket(h, bits) < b) {
                at += 1;
            }
            starts.push(at as u32);
        }
        HashIndex {
            entries: index,
            starts,
            bits,
        }
    }

    /// The person with `hash` whom `is` confirms; of several, the last indexed (as
    /// collecting into a map keeps the last).
    pub(crate) fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let b = bucket(hash, self.bits) as usize;
        let near = &self.entries[self.starts[b] as usize..self.starts[b + 1] as usize];
        let start = near.partition_point(|&(h, _)| h < hash);
        let end = start + near[start..].partition_point(|&(h, _)| h == hash);
        near[start..end]
            .iter()
            .rev()
            .map(|&(_, i)| i)
            .find(|&i| is(i))
    }
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
