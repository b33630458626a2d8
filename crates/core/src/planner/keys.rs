//! Match keys: the directory email a SIS person's email translates to, and the keys of
//! every view lookup a plan makes for a set of people.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::directory::{AliasKind, Field, MatchKey};
use crate::hash_index::HashIndex;
use crate::settings::SourceConfig;
use crate::sis::{Fnv, SisPerson};
use crate::view::{DirectoryView, HashedKeys, ViewKeys};

/// The directory email for a SIS email: lower-cased, domain translated by the first
/// matching rule.
pub fn translate_email(source: &SourceConfig, email: &str) -> String {
    let email = MatchKey::new(email).into_string();
    if let Some((local, domain)) = email.rsplit_once('@') {
        for rule in &source.user_mapping.translate_email {
            if domain.eq_ignore_ascii_case(&rule.from) {
                return format!("{local}@{}", rule.to.to_lowercase());
            }
        }
    }
    email
}

/// The email a person should have in the directory, if any.
pub fn directory_email(source: &SourceConfig, p: &SisPerson) -> Option<String> {
    match p.email() {
        Some(e) => Some(translate_email(source, e)),
        None => {
            let domain = source.user_mapping.append_domain.as_deref()?;
            (!p.username().is_empty())
                .then(|| format!("{}@{}", MatchKey::new(p.username()), domain.to_lowercase()))
        }
    }
}

/// A person's match key for an identity field a run keeps one account to (email: the
/// directory email; username: the username, if any); none for other fields.
pub(super) fn identity_key(source: &SourceConfig, p: &SisPerson, field: Field) -> Option<MatchKey> {
    match field {
        Field::Email => directory_email(source, p).map(|e| MatchKey::new(&e)),
        Field::Username => (!p.username().is_empty()).then(|| MatchKey::new(p.username())),
        _ => None,
    }
}

/// The keys of every view lookup [`plan`](super::plan) makes for these people on a run
/// that is not a complete full pull: their links and decisions (sourcedId), the aliases,
/// email and identifier correlation tries, and the email a creation must find free.
/// Candidates' links and refusals follow from the accounts the keys reach.
pub fn view_keys(source: &SourceConfig, people: &[SisPerson]) -> ViewKeys {
    keys_of(source, people, false)
}

/// [`view_keys`]; with `rekeys` (a complete full pull), identifiers even when they do not
/// match by themselves: they tell a rekeyed person from a new one.
pub(super) fn keys_of<'p>(
    source: &SourceConfig,
    people: impl IntoIterator<Item = &'p SisPerson>,
    rekeys: bool,
) -> ViewKeys {
    let mut keys = ViewKeys::default();
    for p in people {
        each_key(source, p, rekeys, |key| match key {
            Key::SourcedId(id) => {
                keys.sourced_ids.insert(id.to_owned());
            }
            Key::Email(e) => {
                keys.emails.insert(e);
            }
            Key::Username(u) => {
                keys.usernames.insert(u);
            }
            Key::Identifier(id) => {
                keys.identifiers.insert(id.to_owned());
            }
            Key::Alias(kind, k) => {
                keys.aliases.insert((kind, k));
            }
        });
    }
    keys
}

/// [`keys_of`] as hashes ([`HashedKeys`]), the sourcedIds taken through `dir`'s links
/// to the accounts they reach; `people` in sourcedId order (their links are walked).
pub(super) fn hashed_keys_of<'p>(
    source: &SourceConfig,
    people: impl IntoIterator<Item = &'p SisPerson>,
    rekeys: bool,
    dir: &DirectoryView,
) -> HashedKeys {
    let mut keys = HashedKeys::default();
    let mut links = dir.link_walk();
    for p in people {
        each_key(source, p, rekeys, |key| match key {
            Key::SourcedId(id) => {
                if let Some(link) = links.find(id) {
                    keys.account(link.user_id);
                }
            }
            Key::Email(e) => keys.email(&e),
            Key::Username(u) => keys.username(&u),
            Key::Identifier(id) => keys.identifier(id),
            Key::Alias(kind, k) => keys.alias(kind, &k),
        });
    }
    keys
}

/// One key of the view lookups a plan makes for a person.
enum Key<'p> {
    SourcedId(&'p str),
    Email(MatchKey),
    Username(MatchKey),
    /// Trimmed.
    Identifier(&'p str),
    Alias(AliasKind, MatchKey),
}

/// Hands each key of `p` to `f` ([`keys_of`]).
fn each_key<'p>(source: &SourceConfig, p: &'p SisPerson, rekeys: bool, mut f: impl FnMut(Key<'p>)) {
    f(Key::SourcedId(p.sourced_id()));
    if let Some(e) = identity_key(source, p, Field::Email) {
        f(Key::Email(e.clone()));
        f(Key::Alias(AliasKind::Email, e));
    }
    if let Some(e) = p.email() {
        f(Key::Alias(AliasKind::Email, MatchKey::new(e)));
    }
    if let Some(username) = identity_key(source, p, Field::Username) {
        f(Key::Alias(AliasKind::Username, username.clone()));
        f(Key::Username(username));
    }
    if let Some(id) = p.identifier()
        && (source.user_mapping.match_by_identifier || rekeys)
    {
        f(Key::Identifier(id.trim()));
    }
}

/// One field's match keys of a run's people, by hash ([`HashIndex`]): a hit is rare (a
/// creation whose email or username a kept person has).
pub(super) struct KeyIndex {
    field: Field,
    people: HashIndex,
}

impl KeyIndex {
    /// The index of `keys` for `field`: each a person's index and key.
    pub(super) fn new(field: Field, keys: impl Iterator<Item = (u32, MatchKey)>) -> KeyIndex {
        let people = HashIndex::new(keys.map(|(i, k)| (identity_hash(field, &k), i)));
        KeyIndex { field, people }
    }

    /// The person with `key`, the last of them if several, as `is(person, key)` confirms.
    pub(super) fn find(&self, key: &MatchKey, is: impl Fn(u32, &MatchKey) -> bool) -> Option<u32> {
        self.people
            .find(identity_hash(self.field, key), |i| is(i, key))
    }
}

/// The emails and usernames new accounts take in a run, and whose they are (an index into
/// the run's people): a 64-bit hash of each field and key with the person, ~20 bytes an
/// entry where an owned key costs ~80 (a first import adds two for every person). A hit is
/// confirmed by working out that person's value again (`value_of`); a key whose hash another
/// key has already is kept whole in `collided`.
#[derive(Default)]
pub(super) struct NewIdentities {
    by_hash: HashMap<u64, u32>,
    collided: HashMap<(Field, MatchKey), u32>,
}

impl NewIdentities {
    /// The person who took `key` for `field` in this run.
    pub(super) fn get(
        &self,
        field: Field,
        key: &MatchKey,
        value_of: impl Fn(Field, u32) -> Option<MatchKey>,
    ) -> Option<u32> {
        self.get_hashed(identity_hash(field, key), field, key, value_of)
    }

    /// Records that `person` takes `key` for `field` (the last to take one keeps it).
    pub(super) fn insert(
        &mut self,
        field: Field,
        key: MatchKey,
        person: u32,
        value_of: impl Fn(Field, u32) -> Option<MatchKey>,
    ) {
        self.insert_hashed(identity_hash(field, &key), field, key, person, value_of)
    }

    fn get_hashed(
        &self,
        hash: u64,
        field: Field,
        key: &MatchKey,
        value_of: impl Fn(Field, u32) -> Option<MatchKey>,
    ) -> Option<u32> {
        match self.by_hash.get(&hash) {
            Some(&i) if value_of(field, i).as_ref() == Some(key) => Some(i),
            Some(_) => self.collided.get(&(field, key.clone())).copied(),
            None => None,
        }
    }

    fn insert_hashed(
        &mut self,
        hash: u64,
        field: Field,
        key: MatchKey,
        person: u32,
        value_of: impl Fn(Field, u32) -> Option<MatchKey>,
    ) {
        match self.by_hash.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(person);
            }
            Entry::Occupied(mut e) => {
                if value_of(field, *e.get()).as_ref() == Some(&key) {
                    e.insert(person);
                } else {
                    self.collided.insert((field, key), person);
                }
            }
        }
    }
}

/// The one hash both indexes keep: of the field and the key.
fn identity_hash(field: Field, key: &MatchKey) -> u64 {
    let mut h = Fnv::new();
    h.str(field.as_str());
    h.str(key.as_str());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_index_finds_the_last_confirmed_person_with_a_key() {
        let keys = ["a@x.org", "b@x.org", "a@x.org", "c@x.org"];
        let index = KeyIndex::new(
            Field::Email,
            keys.iter()
                .enumerate()
                .map(|(i, k)| (i as u32, MatchKey::new(k))),
        );
        let is = |i: u32, k: &MatchKey| MatchKey::new(keys[i as usize]) == *k;
        assert_eq!(index.find(&MatchKey::new("A@x.org"), is), Some(2));
        assert_eq!(index.find(&MatchKey::new("b@x.org"), is), Some(1));
        assert_eq!(index.find(&MatchKey::new("d@x.org"), is), None);
        // A candidate the caller does not confirm (as a colliding hash would be) is passed over.
        let not_two = |i: u32, k: &MatchKey| i != 2 && is(i, k);
        assert_eq!(index.find(&MatchKey::new("a@x.org"), not_two), Some(0));
    }

    #[test]
    fn new_identities_confirm_a_hit_and_keep_colliding_keys_apart() {
        let values = [("a@x.org", "ann"), ("b@x.org", "bo"), ("a@x.org", "cy")];
        let value_of = |field: Field, i: u32| {
            let (email, username) = values[i as usize];
            Some(MatchKey::new(if field == Field::Email {
                email
            } else {
                username
            }))
        };
        let mut taken = NewIdentities::default();
        let key = |s: &str| MatchKey::new(s);
        taken.insert(Field::Email, key("A@x.org"), 0, value_of);
        taken.insert(Field::Username, key("ann"), 0, value_of);
        assert_eq!(taken.get(Field::Email, &key("a@x.org"), value_of), Some(0));
        assert_eq!(taken.get(Field::Username, &key("ann"), value_of), Some(0));
        // The same key under the other field is not taken.
        assert_eq!(taken.get(Field::Username, &key("a@x.org"), value_of), None);
        assert_eq!(taken.get(Field::Email, &key("b@x.org"), value_of), None);
        // The last to take a key keeps it, as a map's insert would.
        taken.insert(Field::Email, key("a@x.org"), 2, value_of);
        assert_eq!(taken.get(Field::Email, &key("a@x.org"), value_of), Some(2));

        // Two keys with one hash (forced here): both are found, each with its person.
        let mut taken = NewIdentities::default();
        taken.insert_hashed(7, Field::Email, key("a@x.org"), 0, value_of);
        taken.insert_hashed(7, Field::Email, key("b@x.org"), 1, value_of);
        assert_eq!(
            taken.get_hashed(7, Field::Email, &key("a@x.org"), value_of),
            Some(0)
        );
        assert_eq!(
            taken.get_hashed(7, Field::Email, &key("b@x.org"), value_of),
            Some(1)
        );
        assert_eq!(
            taken.get_hashed(7, Field::Email, &key("c@x.org"), value_of),
            None
        );
    }
}
