//! The user directory as the sync rules see it: accounts, their fields, who last wrote
//! each field, and the links from SIS people to accounts.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// An account's id in the directory (the `users` table's key; `#12` on screens).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for AccountId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(AccountId)
    }
}

/// What kind of person an account belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Student,
    Faculty,
    Staff,
    Guardian,
    Other,
}

/// Help-desk access level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Requestor,
    Agent,
    Admin,
    NoAccess,
}

/// Declares a closed string enum with its one spelling, used in TOML, JSON and the database.
macro_rules! spelled_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "'{other}' is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spelled_enum!(UserType {
    Student = "student",
    Faculty = "faculty",
    Staff = "staff",
    Guardian = "guardian",
    Other = "other",
});

spelled_enum!(Access {
    Requestor = "requestor",
    Agent = "agent",
    Admin = "admin",
    NoAccess = "no-access",
});

/// A field a source may write. Each has a global enable switch and a per-source priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Username,
    Email,
    FirstName,
    MiddleName,
    LastName,
    PreferredName,
    #[serde(rename = "type")]
    Type,
    Grade,
    Identifier,
    Phone,
    Location,
    Homeroom,
}

spelled_enum!(Field {
    Username = "username",
    Email = "email",
    FirstName = "first_name",
    MiddleName = "middle_name",
    LastName = "last_name",
    PreferredName = "preferred_name",
    Type = "type",
    Grade = "grade",
    Identifier = "identifier",
    Phone = "phone",
    Location = "location",
    Homeroom = "homeroom",
});

/// Who wrote a value: a source (by name), an admin (by name), single sign-on (by provider).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Writer {
    Source(String),
    Admin(String),
    SignOn(String),
}

impl Writer {
    /// `source:campus`, `admin:alice`, `sso:google`.
    pub fn encode(&self) -> String {
        match self {
            Writer::Source(s) => format!("source:{s}"),
            Writer::Admin(a) => format!("admin:{a}"),
            Writer::SignOn(p) => format!("sso:{p}"),
        }
    }

    pub fn decode(s: &str) -> Option<Writer> {
        let (kind, name) = s.split_once(':')?;
        let name = name.to_owned();
        match kind {
            "source" => Some(Writer::Source(name)),
            "admin" => Some(Writer::Admin(name)),
            "sso" => Some(Writer::SignOn(name)),
            _ => None,
        }
    }
}

impl fmt::Display for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// An account in the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    pub user_type: UserType,
    pub access: Access,
    pub active: bool,
    pub grade: Option<String>,
    pub identifier: Option<String>,
    pub phone: Option<String>,
    pub location: Option<String>,
    pub homeroom: Option<String>,
    /// How the person signs in: `google`, `microsoft`, `local`, or `sis` for accounts the
    /// sync created.
    pub provider: Option<String>,
    /// Set on a merged account: the survivor.
    pub merged_into: Option<AccountId>,
    /// Bumped by every write; links remember the revision they last synced.
    pub revision: i64,
    /// Who last wrote each field.
    pub provenance: Provenance,
}

/// Who last wrote each field of an account, kept as the store keeps it: the account's
/// creator with the fields it wrote then, and the fields written since with their writers.
/// An account a sync created and nobody edited since holds no list (a district's millions
/// of accounts read whole each held a dozen pairs and as many copies of a writer's name).
/// Equal when every field has the same writer, however it was put together.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    creator: Option<Writer>,
    /// The fields the creator wrote, a bit each (`1 << field as u32`).
    created: u32,
    /// Fields written since, each once; they outrank the creator.
    later: Vec<(Field, Writer)>,
}

impl Provenance {
    /// An account `creator` made with `fields`.
    pub fn created_by(creator: Writer, fields: impl IntoIterator<Item = Field>) -> Provenance {
        Provenance {
            creator: Some(creator),
            created: fields.into_iter().fold(0, |bits, f| bits | bit(f)),
            later: Vec::new(),
        }
    }

    pub fn writer_of(&self, f: Field) -> Option<&Writer> {
        match self.later.iter().find(|(lf, _)| *lf == f) {
            Some((_, w)) => Some(w),
            None if self.created & bit(f) != 0 => self.creator.as_ref(),
            None => None,
        }
    }

    /// `w` wrote `f` last.
    pub fn set(&mut self, f: Field, w: Writer) {
        match self.later.iter_mut().find(|(lf, _)| *lf == f) {
            Some(pair) => pair.1 = w,
            None => self.later.push((f, w)),
        }
    }

    /// Every field with a writer, with it, in field order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &Writer)> {
        Field::ALL
            .iter()
            .filter_map(|&f| self.writer_of(f).map(|w| (f, w)))
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

fn bit(f: Field) -> u32 {
    1 << f as u32
}

// A field a bit of `Provenance::created`.
const _: () = assert!(Field::ALL.len() <= 32);

impl PartialEq for Provenance {
    fn eq(&self, other: &Provenance) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Each field written by its writer (of two pairs for a field, the first, as a list of
/// pairs searched in order would say).
impl From<Vec<(Field, Writer)>> for Provenance {
    fn from(pairs: Vec<(Field, Writer)>) -> Provenance {
        let mut p = Provenance::default();
        for (f, w) in pairs {
            if p.writer_of(f).is_none() {
                p.set(f, w);
            }
        }
        p
    }
}

/// How an account is named on screens, in lists and in messages: the preferred (else
/// first) name and the last name; else the username, the email, or `#id`. The one rule.
pub fn display_name(
    id: AccountId,
    first: Option<&str>,
    last: Option<&str>,
    username: Option<&str>,
    email: Option<&str>,
) -> String {
    let name: Vec<&str> = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !name.is_empty() {
        return name.join(" ");
    }
    username
        .or(email)
        .map_or_else(|| format!("#{id}"), str::to_owned)
}

impl Account {
    /// Its name as [`display_name`] gives it.
    pub fn display_name(&self) -> String {
        display_name(
            self.id,
            self.preferred_name
                .as_deref()
                .or(self.first_name.as_deref()),
            self.last_name.as_deref(),
            self.username.as_deref(),
            self.email.as_deref(),
        )
    }

    /// The value of a field as text (the type as its spelling).
    pub fn get(&self, f: Field) -> Option<&str> {
        match f {
            Field::Username => self.username.as_deref(),
            Field::Email => self.email.as_deref(),
            Field::FirstName => self.first_name.as_deref(),
            Field::MiddleName => self.middle_name.as_deref(),
            Field::LastName => self.last_name.as_deref(),
            Field::PreferredName => self.preferred_name.as_deref(),
            Field::Type => Some(self.user_type.as_str()),
            Field::Grade => self.grade.as_deref(),
            Field::Identifier => self.identifier.as_deref(),
            Field::Phone => self.phone.as_deref(),
            Field::Location => self.location.as_deref(),
            Field::Homeroom => self.homeroom.as_deref(),
        }
    }

    /// Sets a field from text. An unknown type spelling leaves the type as it was.
    pub fn set(&mut self, f: Field, value: Option<String>) {
        match f {
            Field::Username => self.username = value,
            Field::Email => self.email = value,
            Field::FirstName => self.first_name = value,
            Field::MiddleName => self.middle_name = value,
            Field::LastName => self.last_name = value,
            Field::PreferredName => self.preferred_name = value,
            Field::Type => {
                if let Some(t) = value.and_then(|v| v.parse().ok()) {
                    self.user_type = t;
                }
            }
            Field::Grade => self.grade = value,
            Field::Identifier => self.identifier = value,
            Field::Phone => self.phone = value,
            Field::Location => self.location = value,
            Field::Homeroom => self.homeroom = value,
        }
    }

    pub fn writer_of(&self, f: Field) -> Option<&Writer> {
        self.provenance.writer_of(f)
    }

    /// An empty account, for building new ones and tests.
    pub fn blank(id: AccountId) -> Account {
        Account {
            id,
            username: None,
            email: None,
            first_name: None,
            middle_name: None,
            last_name: None,
            preferred_name: None,
            user_type: UserType::Other,
            access: Access::Requestor,
            active: true,
            grade: None,
            identifier: None,
            phone: None,
            location: None,
            homeroom: None,
            provider: None,
            merged_into: None,
            revision: 1,
            provenance: Provenance::default(),
        }
    }
}

/// How a link between a SIS person and an account came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// The sync created the account.
    Created,
    Alias,
    Email,
    AppendDomain,
    Identifier,
    /// An account source's sign-in name matched the account's username.
    Username,
    /// An admin linked it by hand.
    Manual,
}

spelled_enum!(MatchRule {
    Created = "created",
    Alias = "alias",
    Email = "email",
    AppendDomain = "append_domain",
    Identifier = "identifier",
    Username = "username",
    Manual = "manual",
});

/// A SIS person's link to an account, for one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub sourced_id: String,
    pub user_id: AccountId,
    pub rule: MatchRule,
    /// Content hash of the SIS record (and settings) last applied.
    pub record_hash: u64,
    /// The account's revision right after that apply.
    pub synced_revision: i64,
    pub linked_at: Timestamp,
    /// Consecutive complete full pulls the person has been missing from.
    pub misses: u32,
    /// When this source deactivated the account (cleared when it comes back).
    pub deactivated_at: Option<Timestamp>,
    /// The access the account had before this source deactivated it.
    pub previous_access: Option<Access>,
    /// The person's primary org and role as last pulled (for the safeguards: a school or a
    /// role that vanishes from a pull). A view holds them numbered, each name once
    /// ([`crate::view::LinkNames`]): a district has millions of links and a few thousand
    /// schools.
    pub org: Option<Arc<str>>,
    pub role: Option<Arc<str>>,
}

/// What a full pull needs to know of a linked account whose person did not change: is it
/// still as the last sync left it, and is it active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub revision: i64,
    pub active: bool,
}

impl Link {
    /// A fresh link, as the sync makes one.
    pub fn new(
        sourced_id: impl Into<String>,
        user_id: AccountId,
        rule: MatchRule,
        linked_at: Timestamp,
    ) -> Link {
        Link {
            sourced_id: sourced_id.into(),
            user_id,
            rule,
            record_hash: 0,
            synced_revision: 0,
            linked_at,
            misses: 0,
            deactivated_at: None,
            previous_access: None,
            org: None,
            role: None,
        }
    }
}

/// An old email or username kept as a match key (after a rename or a merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AliasKind {
    Email,
    Username,
}

spelled_enum!(AliasKind {
    Email = "email",
    Username = "username",
});

/// An email or username as accounts are matched by it: trimmed and lower-cased, so
/// `" Ana.Li@X.org"` and `"ana.li@x.org"` are one key. [`MatchKey::new`] is the one
/// place that normalisation happens; a key is never compared with a raw value.
///
/// Serialised as its string (held plans keep their aliases as keys). Reading one back
/// (serde, [`MatchKey::from_stored`]) trusts that it was a key when written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MatchKey(String);

impl MatchKey {
    /// The key of an email or username: trimmed and lower-cased.
    pub fn new(value: &str) -> MatchKey {
        MatchKey(value.trim().to_lowercase())
    }

    /// A key as a store kept it (the `email_lc`, `username_lc` and `value_lc` columns):
    /// taken as it is, not normalised again. Only for values written from a
    /// [`MatchKey`].
    pub fn from_stored(key: String) -> MatchKey {
        MatchKey(key)
    }

    /// Whether two emails or usernames are one key, as [`MatchKey::new`] would say, without
    /// building either key when both are ASCII (nearly always).
    pub fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.trim(), b.trim());
        if a.is_ascii() && b.is_ascii() {
            a.eq_ignore_ascii_case(b)
        } else {
            a.to_lowercase() == b.to_lowercase()
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_is_the_creators_but_for_later_writes_however_it_is_built() {
        let sis = Writer::Source("sis".into());
        let alice = Writer::Admin("alice".into());
        let mut p = Provenance::created_by(sis.clone(), [Field::Email, Field::FirstName]);
        assert_eq!(p.writer_of(Field::Email), Some(&sis));
        assert_eq!(
            p.writer_of(Field::LastName),
            None,
            "not created, not written"
        );
        p.set(Field::FirstName, alice.clone());
        p.set(Field::Phone, alice.clone());
        p.set(Field::Phone, sis.clone());
        assert_eq!(
            p.writer_of(Field::FirstName),
            Some(&alice),
            "a later write wins"
        );
        let listed: Vec<(Field, &Writer)> = p.iter().collect();
        assert_eq!(
            listed,
            [
                (Field::Email, &sis),
                (Field::FirstName, &alice),
                (Field::Phone, &sis)
            ],
            "in field order, each field once"
        );
        let same = Provenance::from(vec![
            (Field::Phone, sis.clone()),
            (Field::FirstName, alice.clone()),
            (Field::Email, sis.clone()),
        ]);
        assert_eq!(p, same, "equal by who wrote what");
        assert_ne!(p, Provenance::from(vec![(Field::Email, sis.clone())]));
        assert!(Provenance::default().is_empty());
        assert!(Provenance::created_by(sis, []).is_empty());
        assert!(!p.is_empty());
    }

    #[test]
    fn spellings_round_trip() {
        for f in Field::ALL {
            assert_eq!(f.as_str().parse::<Field>().unwrap(), *f);
        }
        for a in Access::ALL {
            assert_eq!(a.as_str().parse::<Access>().unwrap(), *a);
        }
        assert!(
            "teacher"
                .parse::<UserType>()
                .unwrap_err()
                .contains("student, faculty")
        );
        assert_eq!(
            Writer::decode("source:campus"),
            Some(Writer::Source("campus".into()))
        );
        assert_eq!(
            Writer::decode(&Writer::Admin("a:b".into()).encode()),
            Some(Writer::Admin("a:b".into()))
        );
        assert_eq!(Writer::decode("nobody"), None);
    }

    #[test]
    fn match_keys_are_fixed_points() {
        // Stores keep keys, and `MatchKey::from_stored` takes them back as they are.
        for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
            let k = MatchKey::new(&c.to_string());
            assert_eq!(MatchKey::new(k.as_str()), k, "{c:?}");
        }
        for s in [" ΟΔΟΣ ΑΣ ", "\u{2003}Ana.Li@X.ORG\n", "İSTANBUL"] {
            let k = MatchKey::new(s);
            assert_eq!(MatchKey::new(k.as_str()), k, "{s:?}");
        }
    }

    #[test]
    fn same_agrees_with_match_keys() {
        let pairs = [
            ("Ana.Li@X.org", " ana.li@x.org\n", true),
            ("ÉLODIE@x.org", "élodie@X.ORG", true),
            ("ΟΔΟΣ", "οδος", true),
            ("İstanbul", "i̇stanbul", true),
            ("ana@x.org", "ana@y.org", false),
            ("straße", "STRASSE", false),
        ];
        for (a, b, same) in pairs {
            assert_eq!(MatchKey::same(a, b), same, "{a:?} {b:?}");
            assert_eq!(MatchKey::new(a) == MatchKey::new(b), same, "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_match_key_is_its_normalised_string() {
        let k = MatchKey::new(" Ana.Li@X.org\n");
        assert_eq!(k.as_str(), "ana.li@x.org");
        assert_eq!(k.to_string(), "ana.li@x.org");
        assert_eq!(serde_json::to_string(&k).unwrap(), r#""ana.li@x.org""#);
        assert_eq!(
            serde_json::from_str::<MatchKey>(r#""ana.li@x.org""#).unwrap(),
            k
        );
        assert_eq!(MatchKey::from_stored("ana.li@x.org".into()), k);
    }

    #[test]
    fn an_account_id_reads_and_prints_as_its_number() {
        assert_eq!(serde_json::to_string(&AccountId(12)).unwrap(), "12");
        assert_eq!(
            serde_json::from_str::<AccountId>("12").unwrap(),
            AccountId(12)
        );
        assert_eq!("12".parse::<AccountId>(), Ok(AccountId(12)));
        assert!("#12".parse::<AccountId>().is_err());
        assert_eq!(format!("#{}", AccountId(12)), "#12");
    }

    #[test]
    fn get_and_set_agree() {
        let mut u = Account::blank(AccountId(1));
        for f in Field::ALL {
            if *f == Field::Type {
                u.set(*f, Some("staff".into()));
                assert_eq!(u.get(*f), Some("staff"));
            } else {
                u.set(*f, Some(format!("v-{f}")));
                assert_eq!(u.get(*f), Some(format!("v-{f}").as_str()));
            }
        }
        u.set(Field::Type, Some("nonsense".into()));
        assert_eq!(u.user_type, UserType::Staff);
    }
}
