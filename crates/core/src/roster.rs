//! The rest of the roster, compact: schools, classes, enrollments and sessions, from which
//! a person's location and homeroom and the directory's groups, calendars and guardian
//! relationships are derived.
//!
//! Compact because of scale: the largest district has about 8 M enrollments. An
//! enrollment here is three small integers, and people and classes are referred to by
//! their index.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::hash_index::{HashIndex, id_hash};
use crate::settings::SourceConfig;
use crate::sis::{Fnv, SisPerson};
use crate::texts::Texts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClassKind {
    Homeroom,
    Scheduled,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassInfo {
    pub sourced_id: String,
    pub title: String,
    pub kind: ClassKind,
    /// The room.
    pub location: Option<String>,
    pub school: Option<String>,
    /// The course's title.
    pub course: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgInfo {
    pub sourced_id: String,
    pub name: String,
    pub is_school: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub sourced_id: String,
    pub title: String,
    pub kind: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnrollRole {
    Student,
    Teacher,
    Other,
}

/// One active enrollment: indexes into the snapshot's people and the roster's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enroll {
    pub person: u32,
    pub class: u32,
    pub role: EnrollRole,
}

/// Everything but the people, for one pull.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    pub orgs: Vec<OrgInfo>,
    pub classes: Vec<ClassInfo>,
    pub enrollments: Vec<Enroll>,
    pub sessions: Vec<SessionInfo>,
    /// Whether classes and enrollments were read at all (a delta or a source without
    /// them leaves homerooms and groups as they are).
    pub has_enrollments: bool,
}

/// The directory location of a person: their primary school through the mapping, else
/// the default location.
pub fn location_for<'a>(source: &'a SourceConfig, p: &SisPerson) -> Option<&'a str> {
    let map = &source.locations;
    p.primary_org()
        .into_iter()
        .chain(p.orgs())
        .find_map(|org| map.map.get(org))
        .or(map.default.as_ref())
        .map(String::as_str)
}

/// Each person's homeroom class: the first (by sourcedId) homeroom class with a location
/// they are enrolled in, student or teacher, as an index into the roster's classes (its
/// location is the room). Indexed like the people.
pub fn homerooms(roster: &Roster, people: usize) -> Vec<Option<u32>> {
    let mut best: Vec<Option<u32>> = vec![None; people];
    for e in &roster.enrollments {
        let Some(class) = roster.classes.get(e.class as usize) else {
            continue;
        };
        if class.kind != ClassKind::Homeroom || class.location.is_none() {
            continue;
        }
        if let Some(slot) = best.get_mut(e.person as usize) {
            let better = match slot {
                Some(cur) => roster.classes[*cur as usize].sourced_id > class.sourced_id,
                None => true,
            };
            if better {
                *slot = Some(e.class);
            }
        }
    }
    best
}

/// What a group is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    Class,
    SchoolRole,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Class => "class",
            GroupKind::SchoolRole => "school_role",
        }
    }
}

/// A group the roster calls for, its members as SIS people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Stable across runs: `class:<sourcedId>` or `school:<org sourcedId>:<role>`.
    pub key: String,
    pub name: String,
    pub kind: GroupKind,
    /// For a class: its course's title.
    pub detail: Option<String>,
    /// Member sourcedIds, sorted.
    pub members: Members,
}

/// A group's member sourcedIds, packed end to end in one string: a district's groups hold
/// millions of memberships, as `String`s 24 bytes and an allocation each. Serialized as a
/// list of strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Members(Texts);

impl Members {
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.0.range(0..self.0.len())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}

impl<'a> FromIterator<&'a str> for Members {
    fn from_iter<I: IntoIterator<Item = &'a str>>(members: I) -> Members {
        let members: Vec<&str> = members.into_iter().collect();
        Members(Texts::new(&[], members.iter().copied()))
    }
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[&str; N]> for Members {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl Serialize for Members {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        let members = Vec::<String>::deserialize(d)?;
        Ok(members.iter().map(String::as_str).collect())
    }
}

impl GroupSpec {
    /// A hash of name and members: a group whose hash is unchanged is not rewritten.
    pub fn content_hash(&self) -> u64 {
        let mut h = Fnv::new();
        h.str(&self.name);
        h.opt(self.detail.as_deref());
        for m in self.members.iter() {
            h.str(m);
        }
        h.finish()
    }
}

/// What a source's groups and relationships were last made from, with what the directory
/// held of them after: the keys the next full pull's plan compares with its own, to skip
/// making again what would not change (the planner's `memo`). Kept by the store per
/// source; absent, everything is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterMemo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationships: Option<u64>,
}

/// Indexes into `people` in sourcedId order, each sourcedId once (its first person in
/// `people`): the order a plan takes the people in, and the one the roster's groups and
/// relationships are listed in.
/// `u32`s: a pull holds far fewer than 4 G people.
pub fn id_order(people: &[SisPerson]) -> Vec<u32> {
    let id = |i: &u32| people[*i as usize].sourced_id();
    let mut order: Vec<u32> = (0..people.len() as u32).collect();
    // Stable: of two people with one sourcedId, the first stays first and is kept.
    order.sort_by(|a, b| id(a).cmp(id(b)));
    order.dedup_by(|a, b| id(a) == id(b));
    order
}

/// One group per class (its enrolled students and teachers) and one per school and role
/// (the people whose orgs include the school, by directory type), for the imported people
/// among `order` ([`id_order`]: a person not in it is not a member); only the groups
/// `keep(key, content hash)` accepts are returned. Members are gathered as indexes, put in
/// sourcedId order by their place in `order` (no string is compared), and hashed before
/// any is copied, so a full pull that changes few groups copies few of a district's
/// millions of memberships.
pub fn groups_where(
    roster: &Roster,
    people: &[SisPerson],
    order: &[u32],
    imported: &[bool],
    mut keep: impl FnMut(&str, u64) -> bool,
) -> Vec<GroupSpec> {
    const NOT_IN_ORDER: u32 = u32::MAX;
    // Each person's place in sourcedId order.
    let mut rank = vec![NOT_IN_ORDER; people.len()];
    for (n, &i) in order.iter().enumerate() {
        if let Some(r) = rank.get_mut(i as usize) {
            *r = n as u32;
        }
    }
    let is_member = |i: usize| {
        imported.get(i).copied().unwrap_or(false) && rank.get(i).is_some_and(|&r| r != NOT_IN_ORDER)
    };
    let org_names: HashMap<&str, &OrgInfo> = roster
        .orgs
        .iter()
        .map(|o| (o.sourced_id.as_str(), o))
        .collect();
    // An org is a school if the SIS says so of any of its rows.
    let schools: HashSet<&str> = roster
        .orgs
        .iter()
        .filter(|o| o.is_school)
        .map(|o| o.sourced_id.as_str())
        .collect();
    let mut out = Vec::new();
    let mut finish = |key: String,
                      name: String,
                      kind: GroupKind,
                      detail: Option<String>,
                      members: &mut [u32]| {
        members.sort_unstable_by_key(|i| rank[*i as usize]);
        let members = dedup(members);
        let mut h = Fnv::new();
        h.str(&name);
        h.opt(detail.as_deref());
        for m in members {
            h.str(people[*m as usize].sourced_id());
        }
        if keep(&key, h.finish()) {
            out.push(GroupSpec {
                key,
                name,
                kind,
                detail,
                members: members
                    .iter()
                    .map(|m| people[*m as usize].sourced_id())
                    .collect(),
            });
        }
    };

    // Every class's members in one list, class after class: counted, then placed (a
    // vector a class, grown by doubling, was a third of a million small allocations and
    // their copies at 3 M people).
    let class_members = roster.enrollments.iter().filter(|e| {
        e.role != EnrollRole::Other
            && is_member(e.person as usize)
            && (e.class as usize) < roster.classes.len()
    });
    let mut starts = vec![0usize; roster.classes.len() + 1];
    for e in class_members.clone() {
        starts[e.class as usize + 1] += 1;
    }
    for c in 1..starts.len() {
        starts[c] += starts[c - 1];
    }
    let mut by_class = vec![0u32; starts[roster.classes.len()]];
    let mut next = starts.clone();
    for e in class_members {
        let at = &mut next[e.class as usize];
        by_class[*at] = e.person;
        *at += 1;
    }
    for (i, c) in roster.classes.iter().enumerate() {
        let members = &mut by_class[starts[i]..starts[i + 1]];
        if members.is_empty() {
            continue;
        }
        let school = c
            .school
            .as_deref()
            .and_then(|s| org_names.get(s))
            .map(|o| o.name.as_str());
        finish(
            format!("class:{}", c.sourced_id),
            match school {
                Some(s) => format!("{} ({s})", c.title),
                None => c.title.clone(),
            },
            GroupKind::Class,
            c.course.clone(),
            members,
        );
    }

    // Walked in sourcedId order: each school's members come sorted.
    let mut by_school_role: BTreeMap<(&str, &'static str), Vec<u32>> = BTreeMap::new();
    for &i in order {
        if !is_member(i as usize) {
            continue;
        }
        let p = &people[i as usize];
        let Some((user_type, _)) = p.classification() else {
            continue;
        };
        for org in p.orgs() {
            if schools.contains(org) {
                by_school_role
                    .entry((org, user_type.as_str()))
                    .or_default()
                    .push(i);
            }
        }
    }
    for ((org, role), mut members) in by_school_role {
        let school = org_names.get(org).map_or(org, |o| o.name.as_str());
        finish(
            format!("school:{org}:{role}"),
            format!("{school} — {}", plural(role)),
            GroupKind::SchoolRole,
            None,
            &mut members,
        );
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// `items` (sorted) with each run of equal items made one, at the front; the slice of them.
fn dedup(items: &mut [u32]) -> &[u32] {
    let mut kept = 0;
    for i in 0..items.len() {
        if kept == 0 || items[i] != items[kept - 1] {
            items[kept] = items[i];
            kept += 1;
        }
    }
    &items[..kept]
}

fn plural(user_type: &str) -> &'static str {
    match user_type {
        "student" => "students",
        "faculty" => "faculty",
        "staff" => "staff",
        "guardian" => "guardians",
        _ => "others",
    }
}

/// Every person's classes: indexes into the roster's classes, in sourcedId order, no
/// class twice. One list for everyone, 4 bytes a person and a class (a vector a person
/// would be 24 bytes more and an allocation each), and the classes' sourcedIds packed
/// beside it: every person's record hash reads them, and a class's own `String` is a
/// cache miss or two away (8 M reads at three million people).
#[derive(Default)]
pub struct ClassLists {
    /// Where each person's classes end in `classes`, indexed like the people.
    ends: Vec<u32>,
    classes: Vec<u32>,
    /// The roster's class sourcedIds, indexed like its classes.
    ids: Texts,
}

impl ClassLists {
    /// The classes of person `i` (an index into the pull's people).
    pub fn of(&self, i: usize) -> Classes<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Classes {
            classes: &self.classes[start..self.ends[i] as usize],
            ids: &self.ids,
        }
    }
}

/// One person's classes ([`ClassLists::of`]).
#[derive(Clone, Copy)]
pub struct Classes<'a> {
    classes: &'a [u32],
    ids: &'a Texts,
}

impl<'a> Classes<'a> {
    /// As indexes into the roster's classes, in sourcedId order.
    pub fn indexes(self) -> &'a [u32] {
        self.classes
    }

    /// Their sourcedIds, in order.
    pub fn ids(self) -> impl ExactSizeIterator<Item = &'a str> + Clone + 'a {
        self.classes.iter().map(|c| self.ids.get(*c as usize))
    }
}

impl std::fmt::Debug for Classes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

/// The classes each of `people` is enrolled in ([`ClassLists`]).
pub fn classes_of(roster: &Roster, people: usize) -> ClassLists {
    let known =
        |e: &&Enroll| (e.person as usize) < people && (e.class as usize) < roster.classes.len();
    // Count, then place each enrollment after its person's earlier ones.
    let mut starts = vec![0u32; people + 1];
    for e in roster.enrollments.iter().filter(known) {
        starts[e.person as usize + 1] += 1;
    }
    for i in 1..=people {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut classes = vec![0u32; starts[people] as usize];
    for e in roster.enrollments.iter().filter(known) {
        let at = &mut next[e.person as usize];
        classes[*at as usize] = e.class;
        *at += 1;
    }
    drop(next);
    // Each class's place in sourcedId order, one place for classes that share an id: a
    // person's classes sort and lose their repeats as integers.
    let ids = Texts::new(&[], roster.classes.iter().map(|c| c.sourced_id.as_str()));
    let mut by_id: Vec<u32> = (0..roster.classes.len() as u32).collect();
    by_id.sort_unstable_by(|a, b| ids.get(*a as usize).cmp(ids.get(*b as usize)));
    let mut rank = vec![0u32; roster.classes.len()];
    for (n, pair) in by_id.windows(2).enumerate() {
        let same = ids.get(pair[0] as usize) == ids.get(pair[1] as usize);
        rank[pair[1] as usize] = if same {
            rank[pair[0] as usize]
        } else {
            n as u32 + 1
        };
    }
    drop(by_id);
    // Sort each person's classes and drop repeats, moving the lists together.
    let mut ends = Vec::with_capacity(people);
    let mut kept = 0usize;
    for i in 0..people {
        let (start, end) = (starts[i] as usize, starts[i + 1] as usize);
        classes[start..end].sort_unstable_by_key(|c| rank[*c as usize]);
        let first = kept;
        for at in start..end {
            let c = classes[at];
            if kept == first || rank[classes[kept - 1] as usize] != rank[c as usize] {
                classes[kept] = c;
                kept += 1;
            }
        }
        ends.push(kept as u32);
    }
    classes.truncate(kept);
    classes.shrink_to_fit();
    ClassLists { ends, classes, ids }
}

/// A hash of a list of pairs (relationships), for change detection.
pub fn pairs_hash<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = Fnv::new();
    for (a, b) in pairs {
        h.str(a);
        h.str(b);
    }
    h.finish()
}

/// A hash of the academic sessions, for change detection.
pub fn sessions_hash(sessions: &[SessionInfo]) -> u64 {
    let mut h = Fnv::new();
    for s in sessions {
        h.str(&s.sourced_id);
        h.str(&s.title);
        h.str(&s.kind);
        h.opt(s.start.map(|d| d.to_string()).as_deref());
        h.opt(s.end.map(|d| d.to_string()).as_deref());
        h.opt(s.parent.as_deref());
    }
    h.finish()
}

/// Guardian ↔ student pairs from `agents`, recorded on either side, between people who
/// are both among `people`: (guardian, student), sorted by sourcedIds, each once
/// ([`Relationships`]). `people` come in sourcedId order, no sourcedId twice, as the
/// planner has them ([`id_order`]); others are put so first (of two people with one
/// sourcedId, the first is kept). A person's place in that order is then its rank, and
/// the pairs sort as integers. Works on indexes (8 bytes a pair, sorted and deduplicated
/// once) rather than a set of string pairs, and finds an agent by a hash of its sourcedId
/// rather than a map of them: the largest district has millions of pairs, each recorded
/// twice.
pub fn relationships<'p>(people: impl IntoIterator<Item = &'p SisPerson>) -> Relationships<'p> {
    use crate::directory::UserType;
    let mut people: Vec<&SisPerson> = people.into_iter().collect();
    if !people.is_sorted_by(|a, b| a.sourced_id() < b.sourced_id()) {
        people.sort_by(|a, b| a.sourced_id().cmp(b.sourced_id()));
        people.dedup_by(|later, kept| later.sourced_id() == kept.sourced_id());
    }
    let index = HashIndex::new(
        people
            .iter()
            .enumerate()
            .map(|(i, p)| (id_hash(p.sourced_id()), i as u32)),
    );
    let kind = |p: &SisPerson| p.classification().map(|(t, _)| t);
    // At most a pair an agent: sized once rather than doubled.
    let mut pairs: Vec<(u32, u32)> =
        Vec::with_capacity(people.iter().map(|p| p.agents().len()).sum());
    for (i, p) in people.iter().enumerate() {
        for a in p.agents() {
            let Some(j) = index.find(id_hash(a), |j| people[j as usize].sourced_id() == a) else {
                continue;
            };
            match (kind(p), kind(people[j as usize])) {
                (Some(UserType::Guardian), Some(UserType::Student)) => pairs.push((i as u32, j)),
                (Some(UserType::Student), Some(UserType::Guardian)) => pairs.push((j, i as u32)),
                _ => {}
            }
        }
    }
    drop(index);
    pairs.sort_unstable();
    pairs.dedup();
    Relationships { people, pairs }
}

/// Guardian → student pairs as indexes into the people they were found among: a district's
/// millions of pairs as strings would be 32 bytes each, and a re-sync only hashes them.
pub struct Relationships<'p> {
    people: Vec<&'p SisPerson>,
    pairs: Vec<(u32, u32)>,
}

impl<'p> Relationships<'p> {
    /// The (guardian, student) sourcedId pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'p str, &'p str)> + Clone + '_ {
        self.pairs.iter().map(|&(g, s)| {
            let (g, s): (&'p SisPerson, &'p SisPerson) =
                (self.people[g as usize], self.people[s as usize]);
            (g.sourced_id(), s.sourced_id())
        })
    }

    /// [`pairs_hash`] of [`Relationships::iter`].
    pub fn hash(&self) -> u64 {
        pairs_hash(self.iter())
    }
}

/// (guardian, student) sourcedId pairs, packed end to end in one string: the plan of a
/// district's relationships holds millions of them, ~100 bytes each as pairs of `String`s,
/// ~30 here. Serialized as a list of two-element lists, as a `Vec<(String, String)>` is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pairs(Texts);

impl Pairs {
    /// Packs `pairs`, read twice (once to size the text).
    pub fn new<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Pairs {
        Pairs(Texts::new(&[], pairs.flat_map(|(a, b)| [a, b])))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        (0..self.len()).map(|i| (self.0.get(2 * i), self.0.get(2 * i + 1)))
    }

    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Pairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[(&str, &str); N]> for Pairs {
    fn eq(&self, other: &[(&str, &str); N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl Serialize for Pairs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
        let pairs = Vec::<(String, String)>::deserialize(d)?;
        Ok(Pairs::new(
            pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(id: &str, kind: ClassKind, room: Option<&str>) -> ClassInfo {
        ClassInfo {
            sourced_id: id.to_owned(),
            title: id.to_owned(),
            kind,
            location: room.map(str::to_owned),
            school: None,
            course: None,
        }
    }

    fn enroll(person: u32, class: u32) -> Enroll {
        Enroll {
            person,
            class,
            role: EnrollRole::Student,
        }
    }

    #[test]
    fn packed_members_read_back_and_keep_the_json_of_a_list() {
        let list = ["g-1", "", "stü-2"];
        let members: Members = list.into_iter().collect();
        assert_eq!(members.len(), 3);
        assert_eq!(members, list);
        assert_eq!(members.iter().collect::<Vec<_>>(), list);
        let json = serde_json::to_string(&members).unwrap();
        assert_eq!(json, serde_json::to_string(&list).unwrap());
        assert_eq!(serde_json::from_str::<Members>(&json).unwrap(), members);
        let none = Members::default();
        assert!(none.is_empty());
        assert_eq!(none, [] as [&str; 0]);
        assert_eq!(
            format!("{none:?} {members:?}"),
            r#"[] ["g-1", "", "stü-2"]"#
        );
    }

    #[test]
    fn packed_pairs_read_back_and_keep_the_json_of_string_pairs() {
        let list = [("g-1", "s-1"), ("", "s-2"), ("gü-3", "")];
        let pairs = Pairs::new(list.iter().copied());
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs, list);
        let owned: Vec<(String, String)> = list
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let json = serde_json::to_string(&pairs).unwrap();
        assert_eq!(json, serde_json::to_string(&owned).unwrap());
        assert_eq!(serde_json::from_str::<Pairs>(&json).unwrap(), pairs);
        let none = Pairs::default();
        assert!(none.is_empty());
        assert_eq!(serde_json::to_string(&none).unwrap(), "[]");
        assert_eq!(
            format!("{none:?} {:?}", Pairs::new([("g", "s")].into_iter())),
            r#"[] [("g", "s")]"#
        );
    }

    fn someone(id: &str, role: oneroster::Role, agents: &[&str]) -> SisPerson {
        let mut u = oneroster::User::default();
        u.base.sourced_id = id.into();
        u.roles = vec![oneroster::RoleAssignment {
            role_type: oneroster::RoleType::Primary,
            role,
            org: None,
            user_profile: None,
            begin_date: None,
            end_date: None,
        }];
        u.agents = agents.iter().map(|a| (*a).to_owned()).collect();
        SisPerson::from_user(&u)
    }

    #[test]
    fn relationships_pair_guardians_with_students_once_whichever_side_records_them() {
        use oneroster::Role::{Guardian, Parent, Student, Teacher};
        let people = [
            someone("s-2", Student, &["g-1", "t-1", "nobody"]),
            someone("g-1", Guardian, &["s-2", "s-1"]),
            someone("s-1", Student, &[]),
            someone("t-1", Teacher, &["s-1"]),
            someone("p-9", Parent, &["s-1", "s-1"]),
            someone("s-3", Student, &["p-9", "g-1"]),
        ];
        let in_order = |people: &[SisPerson]| -> Vec<SisPerson> {
            id_order(people)
                .iter()
                .map(|&i| people[i as usize].clone())
                .collect()
        };
        // Out of order, the people are put in order first: the same pairs.
        let unsorted: Vec<(&str, &str)> = relationships(&people).iter().collect();
        let people = in_order(&people);
        let found = relationships(&people);
        assert!(found.iter().eq(unsorted.iter().copied()));
        let pairs: Vec<(&str, &str)> = found.iter().collect();
        assert_eq!(
            pairs,
            [
                ("g-1", "s-1"),
                ("g-1", "s-2"),
                ("g-1", "s-3"),
                ("p-9", "s-1"),
                ("p-9", "s-3")
            ]
        );
        let expected = [("g-1", "s-1"), ("g-1", "s-2"), ("g-1", "s-3")];
        let expected = expected.into_iter().chain([("p-9", "s-1"), ("p-9", "s-3")]);
        assert_eq!(found.hash(), pairs_hash(expected));
        // Of two people with one sourcedId, the first is the one planned (id_order keeps
        // it) and the one an agent names.
        let raw = [
            someone("x", Student, &[]),
            someone("g-1", Guardian, &["x"]),
            someone("x", Teacher, &[]),
        ];
        assert_eq!(
            relationships(&raw).iter().collect::<Vec<_>>(),
            [("g-1", "x")],
            "put in order by relationships itself"
        );
        let twice = in_order(&raw);
        assert_eq!(
            relationships(&twice).iter().collect::<Vec<_>>(),
            [("g-1", "x")]
        );
        let twice = in_order(&[
            someone("g-1", Guardian, &["x"]),
            someone("x", Teacher, &[]),
            someone("x", Student, &[]),
        ]);
        assert_eq!(relationships(&twice).iter().count(), 0);
        assert!(Pairs::new(found.iter()).iter().eq(pairs.iter().copied()));
    }

    #[test]
    fn class_lists_sort_each_persons_classes_and_drop_repeats_and_unknowns() {
        let roster = Roster {
            classes: vec![
                class("c-math", ClassKind::Scheduled, None),
                class("a-home", ClassKind::Homeroom, Some("Room 1")),
                class("b-art", ClassKind::Scheduled, None),
                class("a-home", ClassKind::Homeroom, Some("Room 9")),
                class("0-home", ClassKind::Homeroom, None),
            ],
            enrollments: vec![
                enroll(2, 0),
                enroll(0, 0),
                enroll(2, 2),
                enroll(2, 1),
                enroll(2, 0),
                enroll(2, 3),
                enroll(2, 4),
                enroll(0, 7),
                enroll(9, 1),
                enroll(3, 2),
            ],
            has_enrollments: true,
            ..Roster::default()
        };
        let lists = classes_of(&roster, 4);
        let ids = |i: usize| -> Vec<&str> {
            let of = lists.of(i);
            let by_index = of
                .indexes()
                .iter()
                .map(|c| roster.classes[*c as usize].sourced_id.as_str());
            assert!(by_index.eq(of.ids()));
            of.ids().collect()
        };
        assert_eq!(ids(0), ["c-math"]);
        assert!(ids(1).is_empty());
        assert_eq!(ids(2), ["0-home", "a-home", "b-art", "c-math"]);
        assert_eq!(ids(3), ["b-art"]);
        // A homeroom needs a room; of two, the first by sourcedId.
        let rooms = homerooms(&roster, 4);
        assert_eq!(rooms[0], None);
        assert!(matches!(rooms[2], Some(1 | 3)));
        assert_eq!(rooms[3], None);
    }
}
