//! Match keys: the directory email a SIS person's email translates to, and the keys of
//! every view lookup a plan makes for a set of people.

use crate::directory::{AliasKind, MatchKey};
use crate::settings::SourceConfig;
use crate::sis::SisPerson;
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
