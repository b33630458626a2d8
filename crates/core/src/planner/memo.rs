//! Whether a full pull's groups and relationships are what the last applied full pull
//! left: then the roster plan skips making them again (at three million people, every
//! class's members and every guardian's students, ~1.7 s of a no-change run's planning).
//!
//! A memo key is a digest of everything the groups (or the relationships) are made from
//! — the code that makes them, every imported person's record hash and place, the orgs,
//! classes and enrollments — and of what the directory holds of them now (each group's
//! content hash; the relationships' hash). A plan that makes them records the key the
//! directory will match once it is applied ([`crate::roster::RosterMemo`], kept per source by the
//! store); the next plan whose key is the same would plan no change, and plans none
//! without looking. Because the key covers the directory's side too, a memo kept by a
//! run that then failed, or a directory changed by an undo or a restore, only misses:
//! the roster is made again. It is a cache of "nothing to do", never a source of truth.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::roster::{EnrollRole, Roster};

/// A digest of 64-bit words. Each step is a bijection of the state for a given word
/// (xor, odd multiply, rotate), so two sequences that differ in one word always digest
/// differently; the finish mixes every bit into every other.
pub(crate) struct Words(u64);

impl Words {
    pub(crate) fn new() -> Words {
        Words(0x6a09_e667_f3bc_c908)
    }

    pub(crate) fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.word(s.len() as u64);
        for chunk in s.as_bytes().chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(b));
        }
    }

    pub(crate) fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.word(1);
                self.str(s);
            }
            None => self.word(0),
        }
    }

    pub(crate) fn finish(self) -> u64 {
        crate::hash_index::spread(self.0)
    }
}

/// The code that makes the groups and relationships (and the hashes they are compared
/// by): a release that changes it makes them again once, whatever the memo says.
fn code() -> u64 {
    static CODE: OnceLock<u64> = OnceLock::new();
    *CODE.get_or_init(|| {
        let mut w = Words::new();
        w.str(env!("CARGO_PKG_VERSION"));
        for source in [
            include_str!("memo.rs"),
            include_str!("decide.rs"),
            include_str!("../roster.rs"),
            include_str!("../sis.rs"),
            include_str!("../directory.rs"),
        ] {
            w.str(source);
        }
        w.finish()
    })
}

/// The planned people, as the roster plan sees them: one call per person in sourcedId
/// order with its index into the pull, whether it is imported and its record hash (which
/// covers its role, orgs, agents and what the roster gives it).
pub(crate) struct People(Words);

impl People {
    pub(crate) fn new() -> People {
        People(Words::new())
    }

    pub(crate) fn add(&mut self, index: usize, imported: bool, hash: u64) {
        self.0.word(((index as u64) << 1) | u64::from(imported));
        self.0.word(hash);
    }

    pub(crate) fn finish(self) -> u64 {
        self.0.finish()
    }
}

/// The orgs, classes and enrollments, in the order pulled (the enrollments refer to the
/// people by their index into the pull, which [`People`] digests).
fn roster_digest(r: &Roster) -> u64 {
    let mut w = Words::new();
    w.word(r.orgs.len() as u64);
    for o in &r.orgs {
        w.str(&o.sourced_id);
        w.str(&o.name);
        w.word(u64::from(o.is_school));
    }
    w.word(r.classes.len() as u64);
    for c in &r.classes {
        w.str(&c.sourced_id);
        w.str(&c.title);
        w.word(c.kind as u64);
        w.opt(c.location.as_deref());
        w.opt(c.school.as_deref());
        w.opt(c.course.as_deref());
    }
    w.word(r.enrollments.len() as u64);
    for e in &r.enrollments {
        w.word(u64::from(e.person) | (u64::from(e.class) << 32));
        w.word(match e.role {
            EnrollRole::Student => 0,
            EnrollRole::Teacher => 1,
            EnrollRole::Other => 2,
        });
    }
    w.finish()
}

/// The directory's groups (key → content hash), in any order: a sum of each one's digest.
#[derive(Default, Clone, Copy)]
pub(crate) struct GroupsHeld(u64);

impl GroupsHeld {
    pub(crate) fn of(groups: &HashMap<String, u64>) -> GroupsHeld {
        let mut held = GroupsHeld::default();
        for (key, hash) in groups {
            held.add(key, *hash);
        }
        held
    }

    pub(crate) fn add(&mut self, key: &str, hash: u64) {
        let mut w = Words::new();
        w.str(key);
        w.word(hash);
        self.0 = self.0.wrapping_add(w.finish());
    }
}

/// The memo key of the groups made from the people ([`People`]) and a roster, given what
/// the directory holds of them ([`GroupsHeld`]): the roster digested once for the key
/// before the plan and the one after it.
pub(crate) struct GroupsKey {
    people: u64,
    roster: u64,
}

impl GroupsKey {
    pub(crate) fn new(people: u64, roster: &Roster) -> GroupsKey {
        GroupsKey {
            people,
            roster: roster_digest(roster),
        }
    }

    pub(crate) fn with(&self, held: GroupsHeld) -> u64 {
        let mut w = Words::new();
        w.word(code());
        w.word(self.people);
        w.word(self.roster);
        w.word(held.0);
        w.finish()
    }
}

/// The memo key of the relationships made from `people` ([`People`]), with the directory
/// holding relationships of hash `held`.
pub(crate) fn relationships_key(people: u64, held: Option<u64>) -> u64 {
    let mut w = Words::new();
    w.word(code());
    w.word(people);
    match held {
        Some(h) => {
            w.word(1);
            w.word(h);
        }
        None => w.word(0),
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_changed_alone_always_changes_the_digest() {
        let digest = |words: &[u64]| {
            let mut w = Words::new();
            words.iter().for_each(|x| w.word(*x));
            w.finish()
        };
        let base = [1u64, 2, 3, 4, 5];
        for at in 0..base.len() {
            for delta in [1u64, 1 << 32, 1 << 63, u64::MAX] {
                let mut other = base;
                other[at] ^= delta;
                assert_ne!(digest(&base), digest(&other), "word {at} ^ {delta:#x}");
            }
        }
        // Strings of other lengths or split elsewhere differ.
        let strs = |parts: &[&str]| {
            let mut w = Words::new();
            parts.iter().for_each(|s| w.str(s));
            w.finish()
        };
        assert_ne!(strs(&["ab", "c"]), strs(&["a", "bc"]));
        assert_ne!(strs(&["abcdefgh"]), strs(&["abcdefgh\0"]));
    }

    #[test]
    fn groups_held_do_not_depend_on_the_order_they_are_read_in() {
        let a: HashMap<String, u64> = [("class:1".to_owned(), 7), ("class:2".to_owned(), 9)].into();
        let mut b = GroupsHeld::default();
        b.add("class:2", 9);
        b.add("class:1", 7);
        assert_eq!(GroupsHeld::of(&a).0, b.0);
        let mut c = GroupsHeld::default();
        c.add("class:2", 7);
        c.add("class:1", 9);
        assert_ne!(b.0, c.0);
    }
}
