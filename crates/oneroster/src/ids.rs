//! Sets of sourcedIds kept as 64-bit hashes: 8 bytes an id whatever its length, enough to
//! spot an id on two CSV rows, or a reference to a record a pull does not hold; and the
//! order ids come in, which when strict proves none came twice without a set.

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

/// Whether the ids met so far came in a strict order: by their bytes, or shorter before
/// longer and then by bytes (`usr-9` before `usr-10`, as numbered ids run). Ids in a
/// strict order are all different, so while they come in one, none needs looking up.
#[derive(Default)]
pub(crate) struct Ascending {
    /// The last id met (unused before the first).
    last: String,
    started: bool,
    out_of_byte_order: bool,
    out_of_length_order: bool,
}

impl Ascending {
    /// Meets the next id; `false` once the ids met are in neither order (from then on
    /// the answer stays `false`, and meeting more ids is wasted work).
    pub(crate) fn next(&mut self, id: &str) -> bool {
        if self.started {
            let (last, id) = (self.last.as_bytes(), id.as_bytes());
            self.out_of_byte_order |= id <= last;
            self.out_of_length_order |= (id.len(), id) <= (last.len(), last);
        }
        self.started = true;
        self.last.clear();
        self.last.push_str(id);
        self.in_order()
    }

    pub(crate) fn in_order(&self) -> bool {
        !(self.out_of_byte_order && self.out_of_length_order)
    }
}

/// The sourcedIds of one file read so far, to tell a row whose id an earlier row has.
/// While the ids come in order ([`Ascending`]) none can repeat, so each is only listed,
/// its hash written after the last; the first id out of order moves the list into the
/// set ([`IdHashes`]) that it and every later id are looked up in. A set of millions of
/// hashes misses the cache at each lookup: a tenth of the CPU of a 3 M-person re-sync
/// from a package whose ids come in order.
pub(crate) struct FirstIds {
    set: IdHashes,
    /// While the ids are in order: the order, and their hashes (none in `set` yet).
    listed: Option<(Ascending, Vec<u64>)>,
}

impl Default for FirstIds {
    fn default() -> Self {
        FirstIds {
            set: IdHashes::default(),
            listed: Some((Ascending::default(), Vec::new())),
        }
    }
}

impl FirstIds {
    /// `false` when an earlier id was this one.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        let Some((order, hashes)) = &mut self.listed else {
            return self.set.insert(id);
        };
        if order.next(id) {
            hashes.push(self.set.hash(id));
            return true;
        }
        // Sized for the list alone: a file that leaves its order near its end would
        // otherwise hold room for twice its ids.
        self.set.hashes.reserve(hashes.len());
        self.set.hashes.extend(hashes.iter().copied());
        self.listed = None;
        self.set.insert(id)
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
    fn ids_in_either_strict_order_are_in_order() {
        let met = |ids: &[&str]| {
            let mut order = Ascending::default();
            ids.iter().map(|id| order.next(id)).collect::<Vec<_>>()
        };
        // By bytes.
        assert_eq!(met(&["a10", "a9", "b"]), [true, true, true]);
        // Shorter first, then by bytes: numbered ids.
        assert_eq!(met(&["usr-8", "usr-9", "usr-10", "usr-11"]), [true; 4]);
        // Out of one order, still in the other, then in neither.
        assert_eq!(met(&["a9", "a10", "a1"]), [true, true, false]);
        // An id again is in no strict order, and the answer stays.
        assert_eq!(met(&["x", "y", "y", "z"]), [true, true, false, false]);
        assert_eq!(met(&["b", "a", "c", "d"]), [true, false, false, false]);
    }

    #[test]
    fn an_id_again_is_found_before_and_after_the_order_breaks() {
        let mut ids = FirstIds::default();
        for id in ["enr-1", "enr-2", "enr-10"] {
            assert!(ids.insert(id), "{id} is new");
        }
        assert!(ids.listed.is_some(), "in order: listed, not looked up");
        // The first id out of order is an earlier one: the list becomes the set.
        assert!(!ids.insert("enr-2"));
        assert!(ids.listed.is_none());
        assert!(ids.insert("enr-3"));
        assert!(!ids.insert("enr-1"), "listed before the break");
        assert!(!ids.insert("enr-3"), "met after the break");
        // Out of order and new.
        let mut ids = FirstIds::default();
        for id in ["b", "c", "a", "d"] {
            assert!(ids.insert(id), "{id} is new");
        }
        assert!(!ids.insert("c"));
    }

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
