//! The judgement behind the unlinked and duplicates reports: which SIS person an unlinked
//! account probably is, and which accounts could really be one person. Pure scoring over a
//! few facts; the store fetches the candidates (accounts that share a key, found in one
//! lean pass, so nothing here is ever asked to compare a million accounts pairwise).
//!
//! Suggestions add up evidence an admin can check by eye: the same name (40), the same
//! email local part in any domain (35: `jane.doe@district.k12.us` is `jane.doe@students.…`),
//! the same grade (10), the same school or location (15). A suggestion needs the name or the
//! email to agree; grade and school alone prove nothing.
//!
//! Duplicates need more: a merge the product refuses (two accounts linked to different SIS
//! people of one source) is never proposed, and a group needs evidence that tells people
//! apart — the same email or username, an old email that is the other's, the same school id
//! number, or the same name with the same local part on different domains. A shared name,
//! grade or school only supports it; see [`duplicate_evidence`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::directory::{AccountId, MatchKey};

/// Points per kind of evidence; they add up to 100.
const NAME_POINTS: u8 = 40;
const EMAIL_POINTS: u8 = 35;
const GRADE_POINTS: u8 = 10;
const SCHOOL_POINTS: u8 = 15;

/// What made two records look like one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The same email or username (case aside).
    SameEmail,
    /// One account's email or username is an old one of the other (kept by a rename or a
    /// merge).
    Alias,
    /// The same school id number.
    SameIdentifier,
    /// The same email local part (or username) on different domains.
    EmailLocalPart,
    SameName,
    /// One account has a SIS link and the other none: the classic single sign-on twin.
    OneLinked,
    SameGrade,
    SameSchool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// In words, with the values compared.
    pub detail: String,
}

fn evidence(kind: EvidenceKind, detail: String) -> Evidence {
    Evidence { kind, detail }
}

/// Folds a Latin letter with a diacritic to its base letter (lower case).
fn base_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' | 'ệ' | 'ễ' | 'ế' | 'ề' | 'ể' => {
            "e"
        }
        'ğ' | 'ĝ' | 'ġ' | 'ģ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ñ' | 'ń' | 'ň' | 'ņ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'ơ' | 'ộ' | 'ố' | 'ồ' | 'ổ' | 'ỗ' => {
            "o"
        }
        'œ' => "oe",
        'ř' | 'ŕ' => "r",
        'ś' | 'š' | 'ş' | 'ŝ' | 'ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'ư' => "u",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ž' | 'ź' | 'ż' => "z",
        'ả' | 'ạ' | 'ấ' | 'ầ' | 'ẩ' | 'ẫ' | 'ậ' | 'ắ' | 'ằ' | 'ẳ' | 'ẵ' | 'ặ' => {
            "a"
        }
        _ => return None,
    })
}

/// A name as compared: lower case, diacritics folded, punctuation dropped, words joined
/// by one space (`"Zoë  O'Brien"` → `"zoe obrien"`).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_whitespace() || c == '-' {
            space = !out.is_empty();
            continue;
        }
        // No allocation per character: the reports fold every SIS person's name.
        let base = base_letter(c);
        if base.is_none() && !c.is_alphanumeric() {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        match base {
            Some(b) => out.push_str(b),
            None => out.push(c),
        }
    }
    out
}

/// The normalised full name (first and last), when there is both.
pub fn name_key(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let first = fold(first?);
    let last = fold(last?);
    (!first.is_empty() && !last.is_empty()).then(|| format!("{first} {last}"))
}

/// The local part of an email, lower case, without a `+tag`.
pub fn email_local(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local).to_lowercase();
    (!local.is_empty() && !domain.is_empty()).then_some(local)
}

/// A grade as compared: `05` is `5`, `KG` is `kg`.
fn grade_key(g: &str) -> String {
    let g = g.trim().to_lowercase();
    let trimmed = g.trim_start_matches('0');
    if trimmed.is_empty() && !g.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Two emails or usernames that are one key (not blank).
fn same_key(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if !a.trim().is_empty() && MatchKey::same(a, b))
}

fn same_text(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.map(str::trim), b.map(str::trim)) {
        (Some(a), Some(b)) => !a.is_empty() && a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// An account, as the reports compare it.
#[derive(Debug, Clone, Default)]
pub struct AccountFacts<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub username: Option<&'a str>,
    pub grade: Option<&'a str>,
    pub location: Option<&'a str>,
}

/// A SIS person, as the reports compare them.
#[derive(Debug, Clone, Default)]
pub struct PersonFacts<'a> {
    pub given_name: Option<&'a str>,
    pub family_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub username: Option<&'a str>,
    pub grade: Option<&'a str>,
    /// The directory location the person maps to.
    pub location: Option<&'a str>,
    /// The name of the person's school (their primary org).
    pub school: Option<&'a str>,
}

/// How likely the account is the SIS person: a score 0–100 and the evidence, or `None`
/// when neither the name nor the email agrees.
pub fn suggestion(a: &AccountFacts<'_>, p: &PersonFacts<'_>) -> Option<(u8, Vec<Evidence>)> {
    let mut score = 0u8;
    let mut found = Vec::new();
    if let (Some(x), Some(y)) = (
        name_key(a.first_name, a.last_name),
        name_key(p.given_name, p.family_name),
    ) && x == y
    {
        score += NAME_POINTS;
        found.push(evidence(EvidenceKind::SameName, format!("same name: {x}")));
    }
    let account_local = a.email.and_then(email_local);
    let person_local = p.email.and_then(email_local).or_else(|| {
        p.username
            .map(|u| u.trim().to_lowercase())
            .filter(|u| !u.is_empty())
    });
    if let (Some(x), Some(y)) = (&account_local, &person_local)
        && x == y
    {
        score += EMAIL_POINTS;
        found.push(evidence(
            EvidenceKind::EmailLocalPart,
            format!(
                "same email local part: {} and {}",
                a.email.unwrap_or_default().trim(),
                p.email.or(p.username).unwrap_or_default().trim()
            ),
        ));
    }
    if found.is_empty() {
        return None;
    }
    if let (Some(x), Some(y)) = (a.grade, p.grade)
        && !x.trim().is_empty()
        && grade_key(x) == grade_key(y)
    {
        score += GRADE_POINTS;
        found.push(evidence(
            EvidenceKind::SameGrade,
            format!("same grade: {}", y.trim()),
        ));
    }
    let school = [p.location, p.school]
        .into_iter()
        .flatten()
        .find(|s| same_text(a.location, Some(s)));
    if let Some(s) = school {
        score += SCHOOL_POINTS;
        found.push(evidence(
            EvidenceKind::SameSchool,
            format!("same school: {}", s.trim()),
        ));
    }
    Some((score.min(100), found))
}

/// Accounts that share a local part or a school id number with more than this many
/// others are not compared by it: a key that common (`info`, an identifier of `0`) says
/// nothing about who is who, and comparing them all would be quadratic.
pub const MAX_SHARED: usize = 50;

/// The part of an email or username the duplicates report compares across domains: lower
/// case, without the domain and a `+tag` (`Jane.Doe+x@a.org` and `jane.doe` both give
/// `jane.doe`).
pub fn local_key(s: &str) -> Option<String> {
    let s = s.trim();
    let local = s.rsplit_once('@').map_or(s, |(l, _)| l);
    let local = local
        .split('+')
        .next()
        .unwrap_or(local)
        .trim()
        .to_lowercase();
    (!local.is_empty()).then_some(local)
}

fn identifier_key(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    (!s.is_empty()).then_some(s)
}

/// The keys the duplicates report looks accounts up by: `l:` and the local part of each
/// email, username and alias (old email or username) given, `i:` and the school id
/// number. Two accounts with real evidence of being one person share a key; accounts
/// that share none are never compared, so the report never compares every pair.
pub fn duplicate_keys<'s>(
    identities: impl IntoIterator<Item = &'s str>,
    identifier: Option<&str>,
) -> Vec<String> {
    let mut keys: Vec<String> = identities.into_iter().filter_map(local_dup_key).collect();
    keys.extend(identifier.and_then(identifier_dup_key));
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The [`duplicate_keys`] key of an email, username or alias.
pub fn local_dup_key(s: &str) -> Option<String> {
    local_key(s).map(|l| format!("l:{l}"))
}

fn identifier_dup_key(s: &str) -> Option<String> {
    identifier_key(s).map(|i| format!("i:{i}"))
}

/// An account's [`duplicate_keys`] (aliases aside) as the store keeps them beside it, each
/// once: its email's, its username's unless that is the email's, its school id number's.
pub fn account_dup_keys(
    email: Option<&str>,
    username: Option<&str>,
    identifier: Option<&str>,
) -> [Option<String>; 3] {
    let email = email.and_then(local_dup_key);
    let username = username
        .and_then(local_dup_key)
        .filter(|u| Some(u) != email.as_ref());
    [email, username, identifier.and_then(identifier_dup_key)]
}

/// A [`duplicate_keys`] key as a 64-bit hash: how the report names the keys too common to
/// compare by them.
pub fn key_hash(key: &str) -> u64 {
    let mut h = crate::sis::Fnv::new();
    h.str(key);
    h.finish()
}

/// An account as the duplicates report compares it.
#[derive(Debug, Clone, Default)]
pub struct DuplicateFacts<'a> {
    pub id: AccountId,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub username: Option<&'a str>,
    /// The school id number.
    pub identifier: Option<&'a str>,
    pub grade: Option<&'a str>,
    pub location: Option<&'a str>,
    /// Old emails and usernames kept as match keys (by a rename or a merge).
    pub aliases: Vec<&'a str>,
    /// Its SIS links: (source, sourcedId).
    pub links: Vec<(&'a str, &'a str)>,
}

impl DuplicateFacts<'_> {
    /// [`duplicate_keys`] of the account.
    pub fn keys(&self) -> Vec<String> {
        duplicate_keys(
            self.email
                .into_iter()
                .chain(self.username)
                .chain(self.aliases.iter().copied()),
            self.identifier,
        )
    }

    /// Its emails and usernames, now and old, each with what it is.
    fn identities(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.email
            .map(|e| ("email", e))
            .into_iter()
            .chain(self.username.map(|u| ("username", u)))
            .chain(self.aliases.iter().map(|a| ("old email or username", *a)))
            .map(|(what, v)| (what, v.trim()))
            .filter(|(_, v)| !v.is_empty())
    }
}

/// Whether the two link sets (source, sourcedId) name different SIS people of one source:
/// the merge refuses such a pair, so the report never proposes it.
pub fn different_people(a: &[(&str, &str)], b: &[(&str, &str)]) -> bool {
    a.iter()
        .any(|(s, id)| b.iter().any(|(t, other)| s == t && id != other))
}

/// How strong a kind of evidence is on its own: the report joins accounts by the
/// strongest first, and supporting evidence alone joins nothing.
fn strength(kind: EvidenceKind) -> Option<u8> {
    match kind {
        EvidenceKind::SameEmail => Some(0),
        EvidenceKind::Alias => Some(1),
        EvidenceKind::SameIdentifier => Some(2),
        EvidenceKind::EmailLocalPart => Some(3),
        EvidenceKind::SameName
        | EvidenceKind::OneLinked
        | EvidenceKind::SameGrade
        | EvidenceKind::SameSchool => None,
    }
}

/// Why two accounts could really be one person, in words; `None` when nothing says so.
///
/// Never two accounts linked to different SIS people of one source (the merge refuses
/// them), nor two with different school id numbers. Otherwise it takes one of: the same
/// email or username; one's email or username is the other's old one (an alias); the same
/// school id number; or the same name *and* the same local part on different domains
/// (`jane.doe@district.org`, `jane.doe@students.district.org`, or the username `jane.doe`).
/// Then the same name, one linked and one not, and the same grade and school support it;
/// a school that is one of `default_locations` (where people of unmapped schools go) is
/// no evidence at all.
pub fn duplicate_evidence(
    a: &DuplicateFacts<'_>,
    b: &DuplicateFacts<'_>,
    default_locations: &[&str],
) -> Option<Vec<Evidence>> {
    if a.id == b.id && a.id != AccountId(0) || different_people(&a.links, &b.links) {
        return None;
    }
    let (ia, ib) = (
        a.identifier.and_then(identifier_key),
        b.identifier.and_then(identifier_key),
    );
    if let (Some(x), Some(y)) = (&ia, &ib)
        && x != y
    {
        return None;
    }
    let mut found = Vec::new();
    if same_key(a.email, b.email) {
        found.push(evidence(
            EvidenceKind::SameEmail,
            format!("the same email: {}", a.email.unwrap_or_default().trim()),
        ));
    }
    if same_key(a.username, b.username) {
        found.push(evidence(
            EvidenceKind::SameEmail,
            format!(
                "the same username: {}",
                a.username.unwrap_or_default().trim()
            ),
        ));
    }
    for (x, y) in [(a, b), (b, a)] {
        for (what, v) in [("email", x.email), ("username", x.username)] {
            let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            if y.aliases.iter().any(|old| MatchKey::same(old, v)) {
                found.push(evidence(
                    EvidenceKind::Alias,
                    format!(
                        "#{}'s {what} {v} is an old email or username of #{}",
                        x.id, y.id
                    ),
                ));
            }
        }
    }
    if ia.is_some() && ia == ib {
        found.push(evidence(
            EvidenceKind::SameIdentifier,
            format!(
                "the same school id number: {}",
                a.identifier.unwrap_or_default().trim()
            ),
        ));
    }
    let name = name_key(a.first_name, a.last_name)
        .filter(|n| name_key(b.first_name, b.last_name).as_ref() == Some(n));
    if name.is_some() && found.is_empty() {
        let shared = a.identities().find_map(|(wa, va)| {
            let key = local_key(va)?;
            b.identities()
                .find(|(_, vb)| !vb.eq_ignore_ascii_case(va) && local_key(vb) == Some(key.clone()))
                .map(|(wb, vb)| {
                    format!(
                        "the same local part {key} on different domains: {wa} {va} and {wb} {vb}"
                    )
                })
        });
        if let Some(detail) = shared {
            found.push(evidence(EvidenceKind::EmailLocalPart, detail));
        }
    }
    if found.is_empty() {
        return None;
    }
    if let Some(name) = name {
        found.push(evidence(
            EvidenceKind::SameName,
            format!("the same name: {name}"),
        ));
    }
    let linked = |f: &DuplicateFacts<'_>| {
        f.links
            .iter()
            .map(|(s, id)| format!("{s}: {id}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (a.links.is_empty(), b.links.is_empty()) {
        (false, true) => found.push(evidence(
            EvidenceKind::OneLinked,
            format!(
                "#{} is linked to the SIS ({}) and #{} is not",
                a.id,
                linked(a),
                b.id
            ),
        )),
        (true, false) => found.push(evidence(
            EvidenceKind::OneLinked,
            format!(
                "#{} is linked to the SIS ({}) and #{} is not",
                b.id,
                linked(b),
                a.id
            ),
        )),
        _ => {}
    }
    let school = a
        .location
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !default_locations
                .iter()
                .any(|d| d.trim().eq_ignore_ascii_case(l))
        });
    if let (Some(ga), Some(gb), Some(school)) = (a.grade, b.grade, school)
        && !ga.trim().is_empty()
        && grade_key(ga) == grade_key(gb)
        && same_text(a.location, b.location)
    {
        found.push(evidence(
            EvidenceKind::SameSchool,
            format!("the same grade and school: {} at {school}", ga.trim()),
        ));
    }
    Some(found)
}

/// What one group of the report has joined so far: its SIS links and school id number,
/// which a joining account must not contradict.
#[derive(Default)]
struct Joined<'a> {
    links: Vec<(&'a str, &'a str)>,
    identifier: Option<String>,
}

impl<'a> Joined<'a> {
    fn of(f: &DuplicateFacts<'a>) -> Joined<'a> {
        Joined {
            links: f.links.clone(),
            identifier: f.identifier.and_then(identifier_key),
        }
    }

    fn agrees(&self, other: &Joined<'_>) -> bool {
        !different_people(&self.links, &other.links)
            && match (&self.identifier, &other.identifier) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            }
    }

    fn absorb(&mut self, other: Joined<'a>) {
        for l in other.links {
            if !self.links.contains(&l) {
                self.links.push(l);
            }
        }
        self.identifier = self.identifier.take().or(other.identifier);
    }
}

/// Splits accounts into groups that could really be one person: two accounts are
/// compared only when they share a key ([`duplicate_keys`]) held by at most [`MAX_SHARED`]
/// of them and not in `common` (hashes, [`key_hash`], of the keys too many accounts of the
/// whole directory hold, so a page of the report judges as the whole report does), joined
/// when [`duplicate_evidence`] finds evidence, the strongest
/// first, and a group never takes an account that contradicts one of its own (linked to
/// another SIS person of the same source, another school id number). Returns each group
/// (indexes into `accounts`, ascending, at least two) with its evidence in words; in a
/// group of three or more each piece names the two accounts it is about.
pub fn duplicate_groups(
    accounts: &[DuplicateFacts<'_>],
    default_locations: &[&str],
    common: &HashSet<u64>,
) -> Vec<(Vec<usize>, Vec<Evidence>)> {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, a) in accounts.iter().enumerate() {
        for k in a.keys() {
            if !common.is_empty() && common.contains(&key_hash(&k)) {
                continue;
            }
            by_key.entry(k).or_default().push(i);
        }
    }
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    for members in by_key.values() {
        if members.len() < 2 || members.len() > MAX_SHARED {
            continue;
        }
        for (n, &i) in members.iter().enumerate() {
            for &j in &members[n + 1..] {
                pairs.insert((i.min(j), i.max(j)));
            }
        }
    }
    let mut edges: Vec<(u8, usize, usize, Vec<Evidence>)> = pairs
        .into_iter()
        .filter_map(|(i, j)| {
            let found = duplicate_evidence(&accounts[i], &accounts[j], default_locations)?;
            let rank = found.iter().filter_map(|e| strength(e.kind)).min()?;
            Some((rank, i, j, found))
        })
        .collect();
    edges.sort_by_key(|(rank, i, j, _)| (*rank, *i, *j));

    let mut parent: Vec<usize> = (0..accounts.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut joined: HashMap<usize, Joined<'_>> = HashMap::new();
    let mut taken: Vec<(usize, usize, Vec<Evidence>)> = Vec::new();
    for (_, i, j, found) in edges {
        let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
        if ri != rj {
            let a = joined
                .remove(&ri)
                .unwrap_or_else(|| Joined::of(&accounts[ri]));
            let b = joined
                .remove(&rj)
                .unwrap_or_else(|| Joined::of(&accounts[rj]));
            if !a.agrees(&b) {
                joined.insert(ri, a);
                joined.insert(rj, b);
                continue;
            }
            let (keep, gone) = (ri.min(rj), ri.max(rj));
            parent[gone] = keep;
            let mut a = a;
            a.absorb(b);
            joined.insert(keep, a);
        }
        taken.push((i, j, found));
    }

    let mut groups: BTreeMap<usize, (Vec<usize>, Vec<Evidence>)> = BTreeMap::new();
    for i in 0..accounts.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().0.push(i);
    }
    for (i, j, found) in taken {
        let r = root(&mut parent, i);
        if let Some((members, all)) = groups.get_mut(&r) {
            let many = members.len() > 2;
            for mut e in found {
                if many {
                    e.detail = format!("#{} and #{}: {}", accounts[i].id, accounts[j].id, e.detail);
                }
                if !all.contains(&e) {
                    all.push(e);
                }
            }
        }
    }
    groups
        .into_values()
        .filter(|(members, _)| members.len() > 1)
        .map(|(members, mut found)| {
            found.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.detail.cmp(&b.detail)));
            (members, found)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_diacritics_and_punctuation() {
        assert_eq!(fold("  Zoë  O'Brien "), "zoe obrien");
        assert_eq!(fold("Bảo Nguyễn"), "bao nguyen");
        assert_eq!(fold("Mary-Jane"), "mary jane");
        assert_eq!(name_key(Some("Ana"), Some("LI")).as_deref(), Some("ana li"));
        assert_eq!(name_key(Some("Ana"), None), None);
        assert_eq!(name_key(Some("  "), Some("Li")), None);
    }

    #[test]
    fn email_local_parts_ignore_domain_case_and_tags() {
        assert_eq!(
            email_local("Jane.Doe@district.k12.us"),
            email_local("jane.doe+x@students.district.k12.us")
        );
        assert_eq!(email_local("jane.doe").as_deref(), None);
        assert_eq!(email_local("@x.org"), None);
    }

    #[test]
    fn a_suggestion_needs_the_name_or_the_email() {
        let account = AccountFacts {
            first_name: Some("Jane"),
            last_name: Some("Doe"),
            email: Some("jane.doe@district.k12.us"),
            grade: Some("5"),
            location: Some("Lincoln Elementary"),
            ..AccountFacts::default()
        };
        let person = PersonFacts {
            given_name: Some("Jane"),
            family_name: Some("Doe"),
            email: Some("jane.doe@students.district.k12.us"),
            grade: Some("05"),
            school: Some("lincoln elementary"),
            ..PersonFacts::default()
        };
        let (score, found) = suggestion(&account, &person).unwrap();
        assert_eq!(score, 100);
        let kinds: Vec<EvidenceKind> = found.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EvidenceKind::SameName,
                EvidenceKind::EmailLocalPart,
                EvidenceKind::SameGrade,
                EvidenceKind::SameSchool
            ]
        );
        assert!(
            found[1]
                .detail
                .contains("jane.doe@students.district.k12.us")
        );

        let other = PersonFacts {
            given_name: Some("John"),
            family_name: Some("Roe"),
            email: Some("jroe@x.org"),
            grade: Some("5"),
            school: Some("Lincoln Elementary"),
            ..PersonFacts::default()
        };
        assert_eq!(suggestion(&account, &other), None, "grade and school alone");

        let renamed = PersonFacts {
            given_name: Some("Jane"),
            family_name: Some("Smith"),
            email: None,
            username: Some("jane.doe"),
            ..PersonFacts::default()
        };
        let (score, found) = suggestion(&account, &renamed).unwrap();
        assert_eq!(score, EMAIL_POINTS);
        assert_eq!(found.len(), 1);
    }

    fn facts<'a>(
        id: AccountId,
        first: &'a str,
        last: &'a str,
        email: &'a str,
    ) -> DuplicateFacts<'a> {
        DuplicateFacts {
            id,
            first_name: Some(first),
            last_name: Some(last),
            email: Some(email),
            ..DuplicateFacts::default()
        }
    }

    fn kinds(e: &Option<Vec<Evidence>>) -> Option<Vec<EvidenceKind>> {
        e.as_ref().map(|v| v.iter().map(|e| e.kind).collect())
    }

    #[test]
    fn two_sis_people_are_never_one() {
        let mut teacher = facts(AccountId(1), "John", "Smith", "john.smith@district.k12.us");
        teacher.links = vec![("sis", "t1")];
        let mut student = facts(
            AccountId(2),
            "John",
            "Smith",
            "john.smith@students.district.k12.us",
        );
        student.links = vec![("sis", "s9")];
        assert_eq!(
            duplicate_evidence(&teacher, &student, &[]),
            None,
            "the merge refuses them"
        );
        student.links = vec![("other-sis", "s9")];
        assert_eq!(
            kinds(&duplicate_evidence(&teacher, &student, &[])),
            Some(vec![EvidenceKind::EmailLocalPart, EvidenceKind::SameName]),
            "linked in two sources: may be one person"
        );
        // Different school id numbers are different people, whatever else agrees.
        let mut a = facts(AccountId(3), "Ana", "Li", "ana@x.org");
        let mut b = facts(AccountId(4), "Ana", "Li", "ANA@x.org");
        a.identifier = Some("100");
        b.identifier = Some("200");
        assert_eq!(duplicate_evidence(&a, &b, &[]), None);
    }

    #[test]
    fn a_name_grade_school_or_link_alone_is_no_evidence() {
        let mut a = facts(AccountId(1), "Jane", "Doe", "jane.doe@district.k12.us");
        let mut b = facts(AccountId(2), "Jane", "Doe", "jdoe7@district.k12.us");
        for f in [&mut a, &mut b] {
            f.grade = Some("5");
            f.location = Some("Lincoln Elementary");
        }
        b.links = vec![("sis", "s1")];
        assert_eq!(
            duplicate_evidence(&a, &b, &[]),
            None,
            "same name, grade, school, one linked: still two Jane Does"
        );
        let c = facts(
            AccountId(3),
            "Jon",
            "Roe",
            "jane.doe@students.district.k12.us",
        );
        assert_eq!(
            duplicate_evidence(&a, &c, &[]),
            None,
            "a local part alone, under another name"
        );
    }

    #[test]
    fn the_default_location_is_never_evidence() {
        let mut a = facts(AccountId(1), "Jane", "Doe", "jane.doe@district.k12.us");
        let mut b = facts(
            AccountId(2),
            "Jane",
            "Doe",
            "jane.doe@students.district.k12.us",
        );
        for f in [&mut a, &mut b] {
            f.grade = Some("05");
            f.location = Some("District Office");
        }
        b.grade = Some("5");
        let found = duplicate_evidence(&a, &b, &["district office"]).unwrap();
        assert!(
            found.iter().all(|e| e.kind != EvidenceKind::SameSchool),
            "{found:?}"
        );
        let found = duplicate_evidence(&a, &b, &["Unmapped"]).unwrap();
        let school = found
            .iter()
            .find(|e| e.kind == EvidenceKind::SameSchool)
            .unwrap();
        assert_eq!(
            school.detail,
            "the same grade and school: 05 at District Office"
        );
    }

    #[test]
    fn evidence_that_tells_people_apart() {
        // The same address (or username), whatever the names say.
        let a = facts(AccountId(1), "Jane", "Doe", "Jane.Doe@x.org");
        let b = facts(AccountId(2), "J", "Smith", "jane.doe@x.org");
        let found = duplicate_evidence(&a, &b, &[]).unwrap();
        assert_eq!(found[0].kind, EvidenceKind::SameEmail);
        assert_eq!(found[0].detail, "the same email: Jane.Doe@x.org");

        // One's email is the other's old one: a rename, then single sign-on.
        let mut renamed = facts(AccountId(3), "Jane", "Smith", "jane.smith@x.org");
        renamed.aliases = vec!["jane.doe@x.org"];
        let found = duplicate_evidence(&b, &renamed, &[]).unwrap();
        assert_eq!(
            (found[0].kind, found[0].detail.as_str()),
            (
                EvidenceKind::Alias,
                "#2's email jane.doe@x.org is an old email or username of #3"
            )
        );

        // The same school id number.
        let mut c = facts(AccountId(4), "Bo", "Ek", "bo@x.org");
        let mut d = facts(AccountId(5), "Bo", "Ek", "bek@y.org");
        c.identifier = Some(" 7001 ");
        d.identifier = Some("7001");
        assert_eq!(
            kinds(&duplicate_evidence(&c, &d, &[])),
            Some(vec![EvidenceKind::SameIdentifier, EvidenceKind::SameName])
        );

        // A username that is the other's email local part, under the same name.
        let mut e = facts(AccountId(6), "Zoë", "O'Brien", "zobrien@district.k12.us");
        e.email = None;
        e.username = Some("ZOBrien");
        let f = facts(AccountId(7), "Zoe", "OBrien", "zobrien@gmail.com");
        let found = duplicate_evidence(&e, &f, &[]).unwrap();
        assert_eq!(
            found[0].detail,
            "the same local part zobrien on different domains: username ZOBrien and email zobrien@gmail.com"
        );
    }

    #[test]
    fn a_single_sign_on_twin_of_a_sis_account() {
        let sso = facts(AccountId(10), "Jane", "Doe", "jane.doe@district.k12.us");
        let mut sis = facts(
            AccountId(11),
            "Jane",
            "Doe",
            "jane.doe@students.district.k12.us",
        );
        sis.links = vec![("campus", "stu-1")];
        let found = duplicate_evidence(&sso, &sis, &[]).unwrap();
        assert_eq!(
            found.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [
                EvidenceKind::EmailLocalPart,
                EvidenceKind::SameName,
                EvidenceKind::OneLinked
            ]
        );
        assert_eq!(
            found[2].detail,
            "#11 is linked to the SIS (campus: stu-1) and #10 is not"
        );
        let groups = duplicate_groups(&[sso, sis], &[], &HashSet::new());
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, [0, 1]);
    }

    #[test]
    fn groups_take_the_strongest_evidence_and_never_two_people() {
        let mut teacher = facts(AccountId(1), "John", "Smith", "john.smith@district.k12.us");
        teacher.links = vec![("sis", "t1")];
        let mut student = facts(
            AccountId(2),
            "John",
            "Smith",
            "john.smith@students.district.k12.us",
        );
        student.links = vec![("sis", "s1")];
        // The student's own single sign-on account: the same address as the student's.
        let sso = facts(
            AccountId(3),
            "John",
            "Smith",
            "John.Smith@students.district.k12.us",
        );
        let stranger = facts(AccountId(4), "Jo", "Smith", "john.smith@gmail.com");
        let groups = duplicate_groups(&[teacher, student, sso, stranger], &[], &HashSet::new());
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(
            groups[0].0,
            [1, 2],
            "the student and their twin, never the teacher"
        );
        assert_eq!(groups[0].1[0].kind, EvidenceKind::SameEmail);

        // Three accounts of one person: each piece names its pair.
        let mut renamed = facts(AccountId(5), "Ana", "Lee", "ana.lee@x.org");
        renamed.aliases = vec!["ana.li@x.org"];
        let sso = facts(AccountId(6), "Ana", "Lee", "ana.lee@gmail.com");
        let old = facts(AccountId(7), "Ana", "Li", "ana.li@x.org");
        let groups = duplicate_groups(&[renamed, sso, old], &[], &HashSet::new());
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, [0, 1, 2]);
        let details: Vec<&str> = groups[0].1.iter().map(|e| e.detail.as_str()).collect();
        assert!(
            details
                .contains(&"#7 and #5: #7's email ana.li@x.org is an old email or username of #5")
                || details.contains(
                    &"#5 and #7: #7's email ana.li@x.org is an old email or username of #5"
                ),
            "{details:?}"
        );
    }

    #[test]
    fn an_accounts_stored_keys_are_its_keys_each_once() {
        let keys = account_dup_keys(Some("Jane.Doe+x@A.org"), Some("jane.doe"), Some(" ID-7 "));
        assert_eq!(
            keys,
            [
                Some("l:jane.doe".to_owned()),
                None,
                Some("i:id-7".to_owned())
            ],
            "the username's key is the email's: kept once"
        );
        let keys = account_dup_keys(Some("@x.org"), Some("JDoe"), Some("  "));
        assert_eq!(keys, [None, Some("l:jdoe".to_owned()), None]);
        let mut stored: Vec<String> = account_dup_keys(Some("a.b@x.org"), Some("ab"), Some("7"))
            .into_iter()
            .flatten()
            .collect();
        stored.sort();
        assert_eq!(stored, duplicate_keys(["a.b@x.org", "ab"], Some("7")));
    }

    #[test]
    fn keys_shared_by_too_many_are_not_compared() {
        let emails: Vec<String> = (0..=MAX_SHARED).map(|n| format!("info@d{n}.org")).collect();
        let many: Vec<DuplicateFacts<'_>> = emails
            .iter()
            .enumerate()
            .map(|(n, e)| facts(AccountId(n as i64 + 1), "Front", "Office", e))
            .collect();
        assert!(duplicate_groups(&many, &[], &HashSet::new()).is_empty());
        assert_eq!(duplicate_groups(&many[..2], &[], &HashSet::new()).len(), 1);
        // A key the whole directory holds too often is skipped on any page of it.
        let common: HashSet<u64> = [key_hash("l:info")].into();
        assert!(duplicate_groups(&many[..2], &[], &common).is_empty());
    }

    /// A district of different SIS people with common names: staff and students share
    /// names and local parts across their two domains, every one linked to their own
    /// person. No group; and 50 000 accounts take well under a second.
    #[test]
    fn a_district_of_namesakes_has_no_duplicates() {
        let firsts = [
            "John", "Mary", "Ana", "Li", "Sam", "Jo", "Kim", "Al", "Bo", "Di",
        ];
        let lasts = ["Smith", "Lee", "Garcia", "Nguyen", "Brown"];
        let mut rows: Vec<(String, String, String, String)> = Vec::new();
        let mut used: HashMap<String, u32> = HashMap::new();
        for n in 0..50_000u32 {
            let (first, last) = (firsts[n as usize % 10], lasts[(n as usize / 10) % 5]);
            let domain = if n % 7 == 0 {
                "district.k12.us"
            } else {
                "students.district.k12.us"
            };
            let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
            let k = used.entry(format!("{base}@{domain}")).or_default();
            *k += 1;
            let local = if *k == 1 { base } else { format!("{base}{k}") };
            rows.push((
                first.into(),
                last.into(),
                format!("{local}@{domain}"),
                format!("p{n}"),
            ));
        }
        let accounts: Vec<DuplicateFacts<'_>> = rows
            .iter()
            .enumerate()
            .map(|(i, (f, l, e, p))| DuplicateFacts {
                links: vec![("sis", p.as_str())],
                grade: Some("5"),
                location: Some("Unmapped"),
                ..facts(AccountId(i as i64 + 1), f, l, e)
            })
            .collect();
        let started = std::time::Instant::now();
        assert!(duplicate_groups(&accounts, &["Unmapped"], &HashSet::new()).is_empty());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
