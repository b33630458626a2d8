//! A SIS person as the rules need them: the few fields a sync reads from a OneRoster user,
//! with a stable content hash so an unchanged person costs one comparison.

use jiff::Timestamp;
use oneroster::{Role, Status, User};

use crate::directory::UserType;

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

#[derive(Debug, Clone, PartialEq)]
pub struct SisPerson {
    pub sourced_id: String,
    /// `active` and enabled.
    pub active: bool,
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

impl SisPerson {
    pub fn from_user(u: &User) -> SisPerson {
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        SisPerson {
            sourced_id: u.base.sourced_id.clone(),
            active: u.base.status == Status::Active && u.enabled_user,
            status: u.base.status,
            enabled: u.enabled_user,
            role: u.primary_role().cloned(),
            username: u.username.trim().to_owned(),
            email: u.email.as_deref().and_then(non_empty),
            given_name: u.given_name.trim().to_owned(),
            family_name: u.family_name.trim().to_owned(),
            middle_name: u.middle_name.as_deref().and_then(non_empty),
            preferred_first_name: u.preferred_first_name.as_deref().and_then(non_empty),
            identifier: u.identifier.as_deref().and_then(non_empty),
            phone: u
                .phone
                .as_deref()
                .and_then(non_empty)
                .or_else(|| u.sms.as_deref().and_then(non_empty)),
            grade: u.grades.first().cloned(),
            primary_org: u.primary_org.clone(),
            orgs: u.orgs.clone(),
            agents: u.agents.clone(),
            modified: u.base.date_last_modified,
        }
    }

    pub fn classification(&self) -> Option<(UserType, Category)> {
        self.role.as_ref().and_then(classify)
    }

    /// A hash of everything the rules read, stable across runs and Rust versions, mixed
    /// with the settings fingerprint so a settings change replans everyone.
    pub fn content_hash(&self, settings_fingerprint: u64) -> u64 {
        let mut h = Fnv::new();
        h.u64(settings_fingerprint);
        h.str(&self.sourced_id);
        h.str(self.status.as_str());
        h.bool(self.enabled);
        h.opt(self.role.as_ref().map(|r| r.as_str()));
        h.str(&self.username);
        h.opt(self.email.as_deref());
        h.str(&self.given_name);
        h.str(&self.family_name);
        h.opt(self.middle_name.as_deref());
        h.opt(self.preferred_first_name.as_deref());
        h.opt(self.identifier.as_deref());
        h.opt(self.phone.as_deref());
        h.opt(self.grade.as_deref());
        h.opt(self.primary_org.as_deref());
        for o in &self.orgs {
            h.str(o);
        }
        h.u64(0xff);
        for a in &self.agents {
            h.str(a);
        }
        h.finish()
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
        assert_eq!(p.email, None, "blank email is no email");
        assert_eq!(p.phone.as_deref(), Some("555"), "sms when no phone");
        assert_eq!(p.grade.as_deref(), Some("05"));
        assert!(p.active);
        assert_eq!(
            p.classification(),
            Some((UserType::Student, Category::Students))
        );
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
        // Pinned: the hash is stored in databases, so it must never drift.
        assert_eq!(p.content_hash(0), p.clone().content_hash(0));
        assert_ne!(p.content_hash(0), p.content_hash(1));
        let mut q = p.clone();
        q.given_name = "Anna".into();
        assert_ne!(p.content_hash(0), q.content_hash(0));
        let mut q = p.clone();
        q.orgs = vec!["o2".into()];
        assert_ne!(p.content_hash(0), q.content_hash(0));
        let mut q = p.clone();
        q.middle_name = Some(String::new());
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
