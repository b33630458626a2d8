//! People found by a 64-bit hash of a key: 16 bytes a person, where a hash map of borrowed
//! keys costs ~32 and one of owned keys ~100 — at three million people, the difference is
//! hundreds of megabytes. A hash says only "maybe": the caller confirms a candidate by
//! looking at that person's key.

/// (hash, person index) pairs, sorted.
pub(crate) struct HashIndex(Vec<(u64, u32)>);

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
        HashIndex(index)
    }

    /// The person with `hash` whom `is` confirms; of several, the last indexed (as
    /// collecting into a map keeps the last).
    pub(crate) fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let start = self.0.partition_point(|&(h, _)| h < hash);
        let end = start + self.0[start..].partition_point(|&(h, _)| h == hash);
        self.0[start..end]
            .iter()
            .rev()
            .map(|&(_, i)| i)
            .find(|&i| is(i))
    }
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
}
