//! A SIS person as the rules need them: the few fields a sync reads from a OneRoster user,
//! packed into one string allocation (a district holds millions through a sync), with a
//! stable content hash so an unchanged person costs one comparison.

use jiff::Timestamp;
use oneroster::{Role, Status, User};

use crate::directory::UserType;
use crate::hash_index::{HashIndex, id_hash};
use crate::instant::PackedTime;
use crate::texts::Texts;

/// Which import switch governs a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Students,
    Teachers,
    /// Administrators, principals, counselors, aides, proctors.
    Administrators,
    /// Guardians, parents, relatives.
    OtherUsers,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Students => "students",
            Category::Teachers => "teachers",
            Category::Administrators => "administrators",
            Category::OtherUsers => "other users",
        }
    }
}

/// The role map: SIS role → directory type and import category. `None` for roles the
/// standard does not define (`ext:…`): such people are never imported by guesswork.
pub fn classify(role: &Role) -> Option<(UserType, Category)> {
    use Role::*;
    Some(match role {
        Student => (UserType::Student, Category::Students),
        Teacher => (UserType::Faculty, Category::Teachers),
        Administrator
        | Principal
        | SiteAdministrator
        | DistrictAdministrator
        | SystemAdministrator
        | Counselor
        | Aide
        | Proctor => (UserType::Staff, Category::Administrators),
        Guardian | Parent | Relative => (UserType::Guardian, Category::OtherUsers),
        Other(_) => return None,
    })
}

/// The fields of a SIS person, owned and open: what [`SisPerson::new`] packs, and what
/// [`SisPerson::fields`] gives back. Tests and account sources build people this way; a
/// sync holds only the packed form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonFields {
    pub sourced_id: String,
    pub status: Status,
    pub enabled: bool,
    pub role: Option<Role>,
    pub username: String,
    pub email: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub middle_name: Option<String>,
    pub preferred_first_name: Option<String>,
    pub identifier: Option<String>,
    pub phone: Option<String>,
    /// The first grade listed.
    pub grade: Option<String>,
    pub primary_org: Option<String>,
    pub orgs: Vec<String>,
    pub agents: Vec<String>,
    pub modified: Option<Timestamp>,
}

/// The person's strings, in the order they stand in [`SisPerson`]'s text.
#[derive(Clone, Copy)]
enum Slot {
    SourcedId,
    Username,
    Email,
    GivenName,
    FamilyName,
    MiddleName,
    PreferredFirstName,
    Identifier,
    Phone,
    Grade,
    PrimaryOrg,
}

/// How many strings every person has before their orgs and agents.
const SLOTS: usize = Slot::PrimaryOrg as usize + 1;

/// A SIS person, packed: a district holds millions of them through a sync, so every string
/// lives in one allocation ([`Texts`]) instead of a dozen `String`s and two `Vec`s a
/// person. Read through the accessors; build from [`PersonFields`] or
/// [`SisPerson::from_user`]; change with [`SisPerson::edit`].
#[derive(Clone, PartialEq)]
pub struct SisPerson {
    /// The [`Slot`] strings in order, then the orgs, then the agents.
    texts: Texts,
    /// How many of the strings after the slots are orgs (the rest are agents).
    orgs: u32,
    status: Status,
    enabled: bool,
    /// The role: 1 + its place in [`Role::STANDARD`], or 0 for none or one outside the
    /// list, which `other_role` holds (`Option<Role>` took 24 bytes a person, this 9).
    standard_role: u8,
    other_role: Option<Box<Role>>,
    /// `dateLastModified`, packed.
    modified: PackedTime,
}

impl SisPerson {
    pub fn new(f: PersonFields) -> SisPerson {
        SisPerson::pack(
            [
                Some(f.sourced_id.as_str()),
                Some(f.username.as_str()),
                f.email.as_deref(),
                Some(f.given_name.as_str()),
                Some(f.family_name.as_str()),
                f.middle_name.as_deref(),
                f.preferred_first_name.as_deref(),
                f.identifier.as_deref(),
                f.phone.as_deref(),
                f.grade.as_deref(),
                f.primary_org.as_deref(),
            ],
            &f.orgs,
            &f.agents,
            (f.status, f.enabled, f.role, f.modified),
        )
    }

    pub fn from_user(u: &User) -> SisPerson {
        fn non_empty(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        SisPerson::pack(
            [
                Some(u.base.sourced_id.as_str()),
                Some(u.username.trim()),
                non_empty(u.email.as_deref()),
                Some(u.given_name.trim()),
                Some(u.family_name.trim()),
                non_empty(u.middle_name.as_deref()),
                non_empty(u.preferred_first_name.as_deref()),
                non_empty(u.identifier.as_deref()),
                non_empty(u.phone.as_deref()).or_else(|| non_empty(u.sms.as_deref())),
                u.grades.first().map(String::as_str),
                u.primary_org.as_deref(),
            ],
            &u.orgs,
            &u.agents,
            (
                u.base.status,
                u.enabled_user,
                u.primary_role().cloned(),
                u.base.date_last_modified,
            ),
        )
    }

    fn pack(
        slots: [Option<&str>; SLOTS],
        orgs: &[String],
        agents: &[String],
        (status, enabled, role, modified): (Status, bool, Option<Role>, Option<Timestamp>),
    ) -> SisPerson {
        let standard = role
            .as_ref()
            .and_then(|r| Role::STANDARD.iter().position(|s| s == r))
            .and_then(|i| u8::try_from(i + 1).ok());
        let (standard_role, other_role) = match standard {
            Some(i) => (i, None),
            None => (0, role.map(Box::new)),
        };
        SisPerson {
            texts: Texts::new(&slots, orgs.iter().chain(agents).map(String::as_str)),
            orgs: u32::try_from(orgs.len()).unwrap_or(u32::MAX),
            status,
            enabled,
            standard_role,
            other_role,
            modified: PackedTime::new(modified),
        }
    }

    /// The fields, owned.
    pub fn fields(&self) -> PersonFields {
        let own = |s: Option<&str>| s.map(str::to_owned);
        PersonFields {
            sourced_id: self.sourced_id().to_owned(),
            status: self.status,
            enabled: self.enabled,
            role: self.role().cloned(),
            username: self.username().to_owned(),
            email: own(self.email()),
            given_name: self.given_name().to_owned(),
            family_name: self.family_name().to_owned(),
            middle_name: own(self.middle_name()),
            preferred_first_name: own(self.preferred_first_name()),
            identifier: own(self.identifier()),
            phone: own(self.phone()),
            grade: own(self.grade()),
            primary_org: own(self.primary_org()),
            orgs: self.orgs().map(str::to_owned).collect(),
            agents: self.agents().map(str::to_owned).collect(),
            modified: self.modified(),
        }
    }

    /// Changes some fields and packs the person again.
    pub fn edit(&mut self, change: impl FnOnce(&mut PersonFields)) {
        let mut f = self.fields();
        change(&mut f);
        *self = SisPerson::new(f);
    }

    fn at(&self, slot: Slot) -> &str {
        self.texts.get(slot as usize)
    }

    fn opt(&self, slot: Slot) -> Option<&str> {
        self.texts.opt(slot as usize)
    }

    pub fn sourced_id(&self) -> &str {
        self.at(Slot::SourcedId)
    }

    /// `active` and enabled.
    pub fn active(&self) -> bool {
        self.status == Status::Active && self.enabled
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn role(&self) -> Option<&Role> {
        match self.standard_role {
            0 => self.other_role.as_deref(),
            i => Role::STANDARD.get(usize::from(i) - 1),
        }
    }

    pub fn username(&self) -> &str {
        self.at(Slot::Username)
    }

    pub fn email(&self) -> Option<&str> {
        self.opt(Slot::Email)
    }

    pub fn given_name(&self) -> &str {
        self.at(Slot::GivenName)
    }

    pub fn family_name(&self) -> &str {
        self.at(Slot::FamilyName)
    }

    pub fn middle_name(&self) -> Option<&str> {
        self.opt(Slot::MiddleName)
    }

    pub fn preferred_first_name(&self) -> Option<&str> {
        self.opt(Slot::PreferredFirstName)
    }

    pub fn identifier(&self) -> Option<&str> {
        self.opt(Slot::Identifier)
    }

    pub fn phone(&self) -> Option<&str> {
        self.opt(Slot::Phone)
    }

    /// The first grade listed.
    pub fn grade(&self) -> Option<&str> {
        self.opt(Slot::Grade)
    }

    pub fn primary_org(&self) -> Option<&str> {
        self.opt(Slot::PrimaryOrg)
    }

    /// The orgs (`sourcedId`s) the person belongs to, as the SIS listed them.
    pub fn orgs(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.texts.range(SLOTS..SLOTS + self.orgs as usize)
    }

    /// The person's agents (`sourcedId`s: a student's guardians), as the SIS listed them.
    pub fn agents(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.texts
            .range(SLOTS + self.orgs as usize..self.texts.len())
    }

    pub fn modified(&self) -> Option<Timestamp> {
        self.modified.get()
    }

    pub fn classification(&self) -> Option<(UserType, Category)> {
        self.role().and_then(classify)
    }

    /// A hash of everything the rules read, stable across runs and Rust versions, mixed
    /// with the settings fingerprint so a settings change replans everyone.
    pub fn content_hash(&self, settings_fingerprint: u64) -> u64 {
        let mut h = Fnv::new();
        h.u64(settings_fingerprint);
        h.str(self.sourced_id());
        h.str(self.status.as_str());
        h.bool(self.enabled);
        h.opt(self.role().map(|r| r.as_str()));
        h.str(self.username());
        h.opt(self.email());
        h.str(self.given_name());
        h.str(self.family_name());
        h.opt(self.middle_name());
        h.opt(self.preferred_first_name());
        h.opt(self.identifier());
        h.opt(self.phone());
        h.opt(self.grade());
        h.opt(self.primary_org());
        for o in self.orgs() {
            h.str(o);
        }
        h.u64(0xff);
        for a in self.agents() {
            h.str(a);
        }
        h.finish()
    }
}

impl From<PersonFields> for SisPerson {
    fn from(f: PersonFields) -> SisPerson {
        SisPerson::new(f)
    }
}

impl std::fmt::Debug for SisPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fields().fmt(f)
    }
}

/// People found by sourcedId: 12 bytes a person ([`HashIndex`]) where a map of borrowed
/// ids took 35 (105 MB at three million people, held while a pull reads every enrollment
/// and looks up its person).
pub struct PeopleById(HashIndex);

impl PeopleById {
    pub fn new(people: &[SisPerson]) -> PeopleById {
        let ids = people.iter().enumerate();
        PeopleById(HashIndex::new(
            ids.map(|(i, p)| (id_hash(p.sourced_id()), i as u32)),
        ))
    }

    /// Where the person with `sourced_id` is among `people` (those it was made of); of
    /// two with that id, the later (as a map's last insert keeps).
    pub fn find(&self, people: &[SisPerson], sourced_id: &str) -> Option<u32> {
        let is = |i: u32| {
            people
                .get(i as usize)
                .is_some_and(|p| p.sourced_id() == sourced_id)
        };
        self.0.find(id_hash(sourced_id), is)
    }
}

/// FNV-1a, 64 bit: stable, dependency-free, fast on short strings. Not for adversarial
/// input (a collision only costs a missed update, which the next change repairs).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn bytes(&mut self, b: &[u8]) {
        for byte in b {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// A string with its length, so `("ab","c")` and `("a","bc")` differ.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    pub fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.bytes(&[1]);
                self.str(s);
            }
            None => self.bytes(&[0]),
        }
    }

    pub fn bool(&mut self, b: bool) {
        self.bytes(&[u8::from(b)]);
    }

    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_found_by_id_the_later_of_two() {
        let person = |id: &str, name: &str| {
            SisPerson::new(PersonFields {
                sourced_id: id.into(),
                given_name: name.into(),
                ..PersonFields::default()
            })
        };
        let mut people: Vec<SisPerson> = (0..1000).map(|n| person(&format!("p{n}"), "")).collect();
        people.push(person("p7", "again"));
        let by_id = PeopleById::new(&people);
        for n in (0..1000).filter(|n| *n != 7) {
            assert_eq!(by_id.find(&people, &format!("p{n}")), Some(n));
        }
        assert_eq!(by_id.find(&people, "p7"), Some(1000));
        for missing in ["", "p1000", "P1", "p01"] {
            assert_eq!(by_id.find(&people, missing), None, "{missing}");
        }
        assert_eq!(PeopleById::new(&[]).find(&[], "p1"), None);
    }

    fn person() -> SisPerson {
        let mut u = User::default();
        u.base.sourced_id = "s1".into();
        u.username = "ana".into();
        u.given_name = "Ana".into();
        u.family_name = "Li".into();
        u.email = Some(" ".into());
        u.sms = Some("555".into());
        u.grades = vec!["05".into(), "06".into()];
        u.roles = vec![oneroster::RoleAssignment {
            role_type: oneroster::RoleType::Primary,
            role: Role::Student,
            org: Some("o1".into()),
            user_profile: None,
            begin_date: None,
            end_date: None,
        }];
        SisPerson::from_user(&u)
    }

    #[test]
    fn from_user_normalises() {
        let p = person();
        assert_eq!(p.email(), None, "blank email is no email");
        assert_eq!(p.phone(), Some("555"), "sms when no phone");
        assert_eq!(p.grade(), Some("05"));
        assert!(p.active());
        assert_eq!(
            p.classification(),
            Some((UserType::Student, Category::Students))
        );
    }

    #[test]
    fn packing_keeps_every_field() {
        let f = PersonFields {
            sourced_id: "s1".into(),
            status: Status::ToBeDeleted,
            enabled: true,
            role: Some(Role::Other("ext:coach".into())),
            username: "ana".into(),
            email: Some("ana@x.org".into()),
            given_name: "Ána".into(),
            family_name: String::new(),
            middle_name: Some(String::new()),
            preferred_first_name: None,
            identifier: Some("900".into()),
            phone: None,
            grade: Some("KG".into()),
            primary_org: Some("o1".into()),
            orgs: vec!["o1".into(), "o2".into(), String::new()],
            agents: vec!["g1".into()],
            modified: Some(Timestamp::from_second(1_700_000_000).unwrap()),
        };
        let p = SisPerson::new(f.clone());
        assert_eq!(p.fields(), f);
        assert_eq!(p.middle_name(), Some(""), "an empty value is not no value");
        assert_eq!(p.preferred_first_name(), None);
        assert_eq!(p.orgs().collect::<Vec<_>>(), ["o1", "o2", ""]);
        assert_eq!(p.agents().collect::<Vec<_>>(), ["g1"]);
        assert!(!p.active(), "tobedeleted is not active");
        let empty = SisPerson::new(PersonFields::default());
        assert_eq!(empty.fields(), PersonFields::default());
        assert_eq!((empty.orgs().len(), empty.agents().len()), (0, 0));
        // Every standard role, one outside the list spelled like a standard one, any
        // instant (before 1970, to the nanosecond) and none come back as they went in.
        let instants = [
            Some(Timestamp::new(-86_401, -999_999_999).unwrap()),
            Some(Timestamp::new(1_700_000_000, 123_456_789).unwrap()),
            Some(Timestamp::MAX),
            Some(Timestamp::MIN),
            None,
        ];
        let roles = Role::STANDARD
            .iter()
            .cloned()
            .map(Some)
            .chain([Some(Role::Other("student".into())), None]);
        for (i, role) in roles.enumerate() {
            let f = PersonFields {
                role,
                modified: instants[i % instants.len()],
                ..f.clone()
            };
            let p = SisPerson::new(f.clone());
            assert_eq!(p.fields(), f);
            assert_eq!(p.role(), f.role.as_ref());
            assert_eq!(p.modified(), f.modified);
        }
        assert_eq!(
            SisPerson::new(PersonFields {
                role: Some(Role::Teacher),
                ..f.clone()
            })
            .classification(),
            Some((UserType::Faculty, Category::Teachers))
        );
        // A district's millions are held through a sync: 96 bytes a person before the
        // role and the instant were packed.
        assert!(std::mem::size_of::<SisPerson>() <= 72);
    }

    #[test]
    fn role_map() {
        assert_eq!(
            classify(&Role::Teacher),
            Some((UserType::Faculty, Category::Teachers))
        );
        for r in [
            Role::Counselor,
            Role::Aide,
            Role::Proctor,
            Role::Principal,
            Role::DistrictAdministrator,
        ] {
            assert_eq!(
                classify(&r),
                Some((UserType::Staff, Category::Administrators)),
                "{r}"
            );
        }
        for r in [Role::Parent, Role::Guardian, Role::Relative] {
            assert_eq!(
                classify(&r),
                Some((UserType::Guardian, Category::OtherUsers)),
                "{r}"
            );
        }
        assert_eq!(classify(&Role::Other("ext:coach".into())), None);
    }

    #[test]
    fn hash_is_stable_and_sees_every_field() {
        let p = person();
        assert_eq!(p.content_hash(0), p.clone().content_hash(0));
        // Pinned: the hash is stored in databases, so it must never drift.
        assert_eq!(p.content_hash(0), 0x9834_7f8e_ff16_565a);
        assert_ne!(p.content_hash(0), p.content_hash(1));
        let mut q = p.clone();
        q.edit(|f| f.given_name = "Anna".into());
        assert_ne!(p.content_hash(0), q.content_hash(0));
        let mut q = p.clone();
        q.edit(|f| f.orgs = vec!["o2".into()]);
        assert_ne!(p.content_hash(0), q.content_hash(0));
        let mut q = p.clone();
        q.edit(|f| f.middle_name = Some(String::new()));
        assert_ne!(
            p.content_hash(0),
            q.content_hash(0),
            "None and empty differ"
        );
        // Published FNV-1a 64 vectors.
        for (input, want) in [
            (&b"a"[..], 0xaf63_dc4c_8601_ec8c_u64),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut h = Fnv::new();
            h.bytes(input);
            assert_eq!(h.finish(), want);
        }
    }
}
