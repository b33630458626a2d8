//! Correlation: which account, if any, a SIS person is — their link, an admin's
//! decision, or the match rules in order (alias, email or username@domain, identifier).

use crate::directory::{AccountId, AliasKind, MatchKey, MatchRule};
use crate::plan::{Dispute, Reason};
use crate::settings::SourceConfig;
use crate::sis::SisPerson;
use crate::view::{Decision, DirectoryView, ViewLink};

use super::decide::imported_type;
use super::keys::directory_email;
use super::present::Present;

/// Where correlation landed for one person. A run holds one a person, so all but the
/// common case (linked already: the link, as the view holds it) are boxed: 16 bytes each.
pub(super) enum Correlation<'v> {
    Linked(&'v ViewLink),
    Matched(Box<Match>),
    /// The account is linked to a sourcedId this complete pull no longer has: the same
    /// person under a new id.
    Rekeyed(Box<Rekey>),
    Disputed(Box<Reason>),
    New,
    /// An admin decided (review case).
    Decided(Decision),
}

/// An account matched by a rule, and the key it matched on.
pub(super) struct Match {
    pub(super) user: AccountId,
    pub(super) rule: MatchRule,
    pub(super) key: String,
}

/// An account linked to `old`, a sourcedId the pull no longer has.
pub(super) struct Rekey {
    pub(super) user: AccountId,
    pub(super) rule: MatchRule,
    pub(super) old: String,
}

impl Correlation<'_> {
    /// The existing account the person keeps or gets, if any.
    pub(super) fn account(&self) -> Option<AccountId> {
        match self {
            Correlation::Linked(link) => Some(link.user_id),
            Correlation::Matched(m) => Some(m.user),
            Correlation::Rekeyed(r) => Some(r.user),
            _ => None,
        }
    }
}

/// Correlates everyone of a run, in order: two people claiming one account must both wait
/// for a human. `rekeys`: the sourcedIds of a complete full pull, in which an account
/// linked to a sourcedId it no longer has may be the same person under a new one.
/// `people` come in sourcedId order (their links are found by one walk).
pub(super) fn correlate_all<'v>(
    source: &SourceConfig,
    dir: &'v DirectoryView,
    people: Present<'_>,
    rekeys: Option<Present<'_>>,
) -> Vec<Correlation<'v>> {
    let mut links = dir.link_walk();
    let mut correlations: Vec<Correlation> = people
        .iter()
        .map(|p| correlate_person(source, dir, p, links.find(p.sourced_id()), rekeys))
        .collect();
    settle_claims(correlations.iter_mut().enumerate(), people);
    correlations
}

/// Two people of a run claiming one account both wait for a human: both are disputed.
/// `correlations` come with each person's place in `people` (every person's, or only
/// those correlated to something: a run by chunks keeps no more).
pub(super) fn settle_claims<'c, 'v: 'c>(
    correlations: impl Iterator<Item = (usize, &'c mut Correlation<'v>)>,
    people: Present<'_>,
) {
    let mut claims: Vec<(AccountId, usize, &'c mut Correlation<'v>)> = correlations
        .filter_map(|(i, c)| {
            let user = match c {
                Correlation::Matched(m) => m.user,
                Correlation::Rekeyed(r) => r.user,
                _ => return None,
            };
            Some((user, i, c))
        })
        .collect();
    claims.sort_unstable_by_key(|(user, i, _)| (*user, *i));
    for claimants in claims.chunk_by_mut(|a, b| a.0 == b.0) {
        if claimants.len() > 1 {
            let user = claimants[0].0;
            let sourced_ids: Vec<String> = claimants
                .iter()
                .map(|(_, i, _)| people.get(*i).sourced_id().to_owned())
                .collect();
            for (_, _, c) in claimants.iter_mut() {
                **c = Correlation::Disputed(Box::new(Reason::ClaimedBySeveral {
                    user,
                    sourced_ids: sourced_ids.clone(),
                }));
            }
        }
    }
}

/// Correlates `p`, whose link (if any) is `link`, before claims are settled
/// ([`settle_claims`]).
///
/// A person whose role the source does not import is skipped whatever their correlation
/// says, so one nobody linked is not matched (left as [`Correlation::New`]): their match
/// would claim an account they never get, and make a person who can have it wait.
pub(super) fn correlate_person<'v>(
    source: &SourceConfig,
    dir: &DirectoryView,
    p: &SisPerson,
    link: Option<&'v ViewLink>,
    rekeys: Option<Present<'_>>,
) -> Correlation<'v> {
    if let Some(link) = link {
        return Correlation::Linked(link);
    }
    if imported_type(&source.import, p).is_none() {
        return Correlation::New;
    }
    if let Some(d) = dir.decision(p.sourced_id()) {
        return Correlation::Decided(d);
    }
    let mapping = &source.user_mapping;
    let email = directory_email(source, p);
    let email_key = email.as_deref().map(MatchKey::new);
    // The account is linked to a sourcedId this complete pull does not have.
    let orphaned = |user: AccountId| -> Option<String> {
        let present = rekeys?;
        let old = dir.linked_sourced_id(user)?;
        (!present.contains(old)).then(|| old.to_owned())
    };

    let mut rules: Vec<(MatchRule, String, Vec<AccountId>)> = Vec::new();
    // Aliases: old emails and usernames kept by renames and merges.
    let mut alias_hits: Vec<AccountId> = Vec::new();
    let mut alias_key = String::new();
    for (kind, key) in [
        (AliasKind::Email, email_key.clone()),
        (AliasKind::Email, p.email().map(MatchKey::new)),
        (
            AliasKind::Username,
            (!p.username().is_empty()).then(|| MatchKey::new(p.username())),
        ),
    ] {
        if let Some(key) = key {
            let hits = dir.by_alias(kind, &key);
            if !hits.is_empty() && alias_key.is_empty() {
                alias_key = key.into_string();
            }
            alias_hits.extend_from_slice(hits);
        }
    }
    alias_hits.sort_unstable();
    alias_hits.dedup();
    rules.push((MatchRule::Alias, alias_key, alias_hits));
    if mapping.match_by_email
        && let (Some(e), Some(key)) = (&email, &email_key)
    {
        let rule = match p.email() {
            Some(_) => MatchRule::Email,
            None => MatchRule::AppendDomain,
        };
        rules.push((rule, e.clone(), dir.by_email(key).to_vec()));
    }
    if let Some(id) = p.identifier()
        && (mapping.match_by_identifier || rekeys.is_some())
    {
        let mut hits = dir.by_identifier(id).to_vec();
        if !mapping.match_by_identifier {
            // Off for new matches; still good evidence that an orphaned link is this person.
            hits.retain(|u| orphaned(*u).is_some());
        }
        rules.push((MatchRule::Identifier, id.to_owned(), hits));
    }

    for (rule, key, candidates) in rules {
        // Accounts an admin unlinked from this person never match them again by themselves,
        // and accounts this source retired past the grace period are left alone.
        let (refused, candidates): (Vec<AccountId>, Vec<AccountId>) = candidates
            .into_iter()
            .partition(|u| dir.refused(p.sourced_id(), *u));
        if candidates.is_empty() {
            if let Some(user) = refused.first() {
                return Correlation::Disputed(Box::new(Reason::LinkRefused { user: *user }));
            }
            continue;
        }
        let (free, taken): (Vec<AccountId>, Vec<AccountId>) = candidates
            .iter()
            .partition(|u| dir.linked_sourced_id(**u).is_none());
        match free.as_slice() {
            [one] => {
                return Correlation::Matched(Box::new(Match {
                    user: *one,
                    rule,
                    key,
                }));
            }
            [] => {
                let user = taken[0];
                if let ([_], Some(old)) = (taken.as_slice(), orphaned(user)) {
                    return Correlation::Rekeyed(Box::new(Rekey { user, rule, old }));
                }
                let sourced_id = dir.linked_sourced_id(user).unwrap_or_default().to_owned();
                return Correlation::Disputed(Box::new(Reason::LinkedToAnother {
                    user,
                    sourced_id,
                }));
            }
            several => {
                return Correlation::Disputed(Box::new(Reason::Disputed(Box::new(Dispute {
                    rule,
                    key,
                    candidates: several.to_vec(),
                }))));
            }
        }
    }
    Correlation::New
}
