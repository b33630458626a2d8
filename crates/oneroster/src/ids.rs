//! Sets of sourcedIds kept as 64-bit hashes: 8 bytes an id whatever its length, enough to
//! spot an id on two CSV rows, or a reference to a record a pull does not hold.

use std::collections::HashSet;
use std::hash::BuildHasher;

/// The sourcedIds seen, hashed with a random key (so no export can aim collisions at it).
#[derive(Default)]
pub(crate) struct IdHashes {
    /// Already hashed: the set need not hash them again.
    hashes: HashSet<u64, std::hash::BuildHasherDefault<Prehashed>>,
    hasher: std::collections::hash_map::RandomState,
}

impl IdHashes {
    /// `false` when the id was seen before.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        self.hashes.insert(self.hash(id))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.contains_hash(self.hash(id))
    }

    /// The id as this set holds it, to look it up later with [`IdHashes::contains_hash`].
    pub(crate) fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    pub(crate) fn contains_hash(&self, hash: u64) -> bool {
        self.hashes.contains(&hash)
    }
}

/// The hasher of a set of hashes: each is its own hash.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_by_id_and_by_hash() {
        let mut ids = IdHashes::default();
        assert!(ids.insert("usr-1"));
        assert!(!ids.insert("usr-1"), "seen before");
        assert!(ids.contains("usr-1"));
        assert!(!ids.contains("usr-2"));
        let later = ids.hash("usr-2");
        assert!(!ids.contains_hash(later));
        ids.insert("usr-2");
        assert!(ids.contains_hash(later));
    }
}
