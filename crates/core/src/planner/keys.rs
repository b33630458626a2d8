//! Match keys: the directory email a SIS person's email translates to, and the keys of
//! every view lookup a plan makes for a set of people.

use crate::directory::{AliasKind, MatchKey};
use crate::settings::SourceConfig;
use crate::sis::{Fnv, SisPerson};
use crate::view::ViewKeys;

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
        keys.sourced_ids.insert(p.sourced_id().to_owned());
        if let Some(e) = directory_email(source, p) {
            let e = MatchKey::new(&e);
            keys.emails.insert(e.clone());
            keys.aliases.insert((AliasKind::Email, e));
        }
        if let Some(e) = p.email() {
            keys.aliases.insert((AliasKind::Email, MatchKey::new(e)));
        }
        if !p.username().is_empty() {
            let username = MatchKey::new(p.username());
            keys.aliases.insert((AliasKind::Username, username.clone()));
            keys.usernames.insert(username);
        }
        if let Some(id) = p.identifier()
            && (source.user_mapping.match_by_identifier || rekeys)
        {
            keys.identifiers.insert(id.trim().to_owned());
        }
    }
    keys
}

/// Match keys of a run's people, by a 64-bit hash of each: 16 bytes a person, where a map
/// of owned keys costs ~100. A hash says only "maybe": [`KeyIndex::find`] has the caller
/// confirm a candidate by working out that person's key again (a hit is rare: a creation
/// whose email or username a kept person has).
pub(super) struct KeyIndex(Vec<(u64, u32)>);

impl KeyIndex {
    /// The index of `keys`: each a person's index and key.
    pub(super) fn new(keys: impl Iterator<Item = (u32, MatchKey)>) -> KeyIndex {
        let mut index: Vec<(u64, u32)> = keys.map(|(i, k)| (key_hash(&k), i)).collect();
        index.sort_unstable();
        index.shrink_to_fit();
        KeyIndex(index)
    }

    /// The person with `key`, the last of them if several, as `is(person, key)` confirms.
    pub(super) fn find(&self, key: &MatchKey, is: impl Fn(u32, &MatchKey) -> bool) -> Option<u32> {
        let hash = key_hash(key);
        let start = self.0.partition_point(|&(h, _)| h < hash);
        let end = start + self.0[start..].partition_point(|&(h, _)| h == hash);
        self.0[start..end]
            .iter()
            .rev()
            .map(|&(_, i)| i)
            .find(|&i| is(i, key))
    }
}

fn key_hash(key: &MatchKey) -> u64 {
    let mut h = Fnv::new();
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
}
