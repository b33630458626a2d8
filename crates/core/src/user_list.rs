//! The users list's rules, pure: which spellings of a grade or a homeroom are the same
//! (so `5` finds `05`, `K` finds `KG`, `room 4` finds `Room 4`), how the list sorts, and
//! the filters and sort a saved view keeps.
//!
//! The store keeps each account's [`grade_key`] and homeroom [`text_key`] in indexed
//! columns and compares them with the same functions applied to what an admin typed, so
//! the match is exact on the keys and the normalisation lives here, once.
//!
//! Grades follow the CEDS codes OneRoster uses (`IT`, `PR`, `PK`, `TK`, `KG`, `01`–`13`,
//! `PS`, `UG`, `Other`). SIS exports drift from them: `5`, `005`, `Grade 5`, `5th`, `K`,
//! `Kindergarten`, `Pre-K`, and `0` for kindergarten (PowerSchool's grade level 0).

use std::fmt;
use std::str::FromStr;

use crate::directory::{Account, MatchKey, UserType};

/// A grade's key: equal for every spelling of one grade, and in grade order when compared
/// as text (infant/toddler, preschool, pre-K, transitional K, kindergarten, 1–99,
/// postsecondary, ungraded, other, then anything else by its text). `None` for a blank
/// grade. The key is for matching and ordering, never for display.
pub fn grade_key(grade: &str) -> Option<String> {
    let trimmed = grade.trim();
    if trimmed.is_empty() {
        return None;
    }
    // Spaces, dashes, dots and underscores do not tell grades apart: `Pre-K`, `PRE K`, `gr.5`.
    let squeezed: String = trimmed
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    let known = |code: &str| -> Option<String> {
        let rank = match code {
            "IT" => 'a',
            "PR" => 'b',
            "PK" => 'c',
            "TK" => 'd',
            "KG" => 'e',
            "PS" => 'g',
            "UG" => 'h',
            "OTHER" => 'i',
            _ => return None,
        };
        Some(format!("{rank}.{code}"))
    };
    let word = match squeezed.as_str() {
        "IT" | "INFANT" | "TODDLER" | "INFANTTODDLER" => known("IT"),
        "PR" | "PRESCHOOL" => known("PR"),
        "PK" | "PREK" | "PREKG" | "PREKINDER" | "PREKINDERGARTEN" => known("PK"),
        "TK" | "TRANSITIONALK" | "TRANSITIONALKG" | "TRANSITIONALKINDERGARTEN" => known("TK"),
        "K" | "KG" | "KN" | "KDG" | "KINDER" | "KINDERGARTEN" | "KINDERGARDEN" => known("KG"),
        "PS" | "POSTSECONDARY" => known("PS"),
        "UG" | "UNGRADED" => known("UG"),
        "OTHER" => known("OTHER"),
        _ => None,
    };
    if word.is_some() {
        return word;
    }
    // A negative level (PowerSchool's -1 for pre-K) is not guessed at: kept as text.
    if !trimmed.starts_with('-')
        && let Some(n) = grade_number(&squeezed)
    {
        return Some(match n {
            0 => "e.KG".to_owned(),
            n => format!("f.{n:02}"),
        });
    }
    let text: Vec<String> = trimmed.split_whitespace().map(str::to_uppercase).collect();
    Some(format!("z.{}", text.join(" ")))
}

/// The number in `5`, `05`, `GRADE5`, `GR05`, `5TH`, `5THGRADE` (already squeezed and
/// upper-cased), when it is below 100.
fn grade_number(squeezed: &str) -> Option<u32> {
    let mut s = squeezed;
    for prefix in ["GRADE", "GR"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
            break;
        }
    }
    if let Some(rest) = s.strip_suffix("GRADE") {
        s = rest;
    }
    for suffix in ["ST", "ND", "RD", "TH"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest;
            break;
        }
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| *n < 100)
}

/// The key of a homeroom, a location or any other text an admin filters on: words
/// separated by one space, lower-cased. `None` when blank.
pub fn text_key(s: &str) -> Option<String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    (!words.is_empty()).then(|| words.join(" ").to_lowercase())
}

/// Lower-cased names (given, middle, family, preferred) for the case-insensitive search
/// and the Name sort; `None` when the account has no name.
pub fn name_key(u: &Account) -> Option<String> {
    let parts: Vec<&str> = [
        &u.first_name,
        &u.middle_name,
        &u.last_name,
        &u.preferred_name,
    ]
    .into_iter()
    .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
    .collect();
    (!parts.is_empty()).then(|| parts.join(" ").to_lowercase())
}

/// A column the users list sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortColumn {
    #[default]
    Id,
    Name,
    Email,
    Username,
    Type,
    Grade,
    Homeroom,
    Location,
    Status,
}

impl SortColumn {
    pub const ALL: &'static [SortColumn] = &[
        SortColumn::Id,
        SortColumn::Name,
        SortColumn::Email,
        SortColumn::Username,
        SortColumn::Type,
        SortColumn::Grade,
        SortColumn::Homeroom,
        SortColumn::Location,
        SortColumn::Status,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::Id => "id",
            SortColumn::Name => "name",
            SortColumn::Email => "email",
            SortColumn::Username => "username",
            SortColumn::Type => "type",
            SortColumn::Grade => "grade",
            SortColumn::Homeroom => "homeroom",
            SortColumn::Location => "location",
            SortColumn::Status => "status",
        }
    }

    /// Whether some accounts have no value to sort by (they come last, by id).
    pub fn nullable(self) -> bool {
        !matches!(self, SortColumn::Id | SortColumn::Type | SortColumn::Status)
    }
}

impl FromStr for SortColumn {
    type Err = String;
    fn from_str(s: &str) -> Result<SortColumn, String> {
        let s = s.trim().to_ascii_lowercase();
        // The console's column header says Active.
        let s = if s == "active" {
            "status".to_owned()
        } else {
            s
        };
        SortColumn::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "cannot sort by '{s}': sort by one of {} (a leading - sorts descending)",
                    SortColumn::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// How the users list is ordered: a column, ascending or descending, then by id in the
/// same direction (so every position is unique and a keyset cursor never skips or repeats
/// an account). Accounts without a value in the column come last either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserSort {
    pub column: SortColumn,
    pub descending: bool,
}

impl UserSort {
    /// Sort parameter as written in URLs, the API and the CLI: `name`, `-name`.
    pub fn parse(s: &str) -> Result<UserSort, String> {
        let s = s.trim();
        let (descending, column) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        Ok(UserSort {
            column: column.parse()?,
            descending,
        })
    }

    /// The default order (by id, ascending).
    pub fn is_default(self) -> bool {
        self == UserSort::default()
    }

    /// The sort value the store compares for this account: what a keyset cursor carries
    /// after it. `None` for the id order, and for an account with nothing in the column.
    /// Status is `true` or `false`.
    pub fn key_of(self, u: &Account) -> Option<String> {
        match self.column {
            SortColumn::Id => None,
            SortColumn::Name => name_key(u),
            SortColumn::Email => u.email.as_deref().map(|e| MatchKey::new(e).into_string()),
            SortColumn::Username => u
                .username
                .as_deref()
                .map(|n| MatchKey::new(n).into_string()),
            SortColumn::Type => Some(u.user_type.as_str().to_owned()),
            SortColumn::Grade => u.grade.as_deref().and_then(grade_key),
            SortColumn::Homeroom => u.homeroom.as_deref().and_then(text_key),
            SortColumn::Location => u.location.clone(),
            SortColumn::Status => Some(u.active.to_string()),
        }
    }
}

impl fmt::Display for UserSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.column.as_str())
    }
}

/// Where a page of the users list ends: the last account's id and its sort value
/// ([`UserSort::key_of`]); the next page starts after it. Written `ID` for the id order
/// and for an account with no value in the sort column, else `ID:VALUE` — so the `after=ID`
/// of the id order keeps its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub id: crate::directory::AccountId,
    pub key: Option<String>,
}

impl ListCursor {
    /// The cursor after `u` in the order `sort`.
    pub fn after(sort: UserSort, u: &Account) -> ListCursor {
        ListCursor {
            id: u.id,
            key: sort.key_of(u),
        }
    }

    pub fn parse(s: &str) -> Result<ListCursor, String> {
        let (id, key) = match s.split_once(':') {
            Some((id, key)) => (id, Some(key.to_owned())),
            None => (s, None),
        };
        let id = id.trim().parse().map_err(|_| {
            format!("after is '{s}': use the next-page value the previous page gave (an account id, maybe with ':' and a value)")
        })?;
        Ok(ListCursor { id, key })
    }
}

impl fmt::Display for ListCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}:{k}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// What the users list shows: its filters and its order, without the page position. A
/// saved view keeps one (as the parameters of [`ListSpec::params`]); the console's URL,
/// the API and `users list` spell the same parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSpec {
    /// Part of a name, email or username (case-insensitive).
    pub search: Option<String>,
    pub user_type: Option<UserType>,
    pub linked: Option<bool>,
    pub active: Option<bool>,
    /// Any spelling of a grade ([`grade_key`]).
    pub grade: Option<String>,
    /// Case-insensitive ([`text_key`]).
    pub homeroom: Option<String>,
    /// A location's name, case-insensitive ([`text_key`]).
    pub location: Option<String>,
    pub sort: UserSort,
}

/// The parameter names of [`ListSpec`], in the order they are written.
pub const LIST_PARAMS: [&str; 8] = [
    "search", "type", "linked", "active", "grade", "homeroom", "location", "sort",
];

impl ListSpec {
    /// Reads the list parameters among `pairs` (others, such as a page cursor, are left
    /// to the caller). Blank values mean no filter. Errors name the parameter and what it
    /// accepts.
    pub fn from_params<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ListSpec, String> {
        let mut spec = ListSpec::default();
        let text = |v: &str| {
            let v = v.trim();
            (!v.is_empty()).then(|| v.to_owned())
        };
        let tri = |name: &str, v: &str| -> Result<Option<bool>, String> {
            match v.trim() {
                "" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(format!(
                    "{name} is '{other}': use true, false or leave it empty"
                )),
            }
        };
        for (k, v) in pairs {
            match k {
                "search" => spec.search = text(v),
                "type" => {
                    spec.user_type = match text(v) {
                        None => None,
                        Some(t) => Some(t.parse().map_err(|e| format!("type: {e}"))?),
                    }
                }
                "linked" => spec.linked = tri("linked", v)?,
                "active" => spec.active = tri("active", v)?,
                "grade" => spec.grade = text(v),
                "homeroom" => spec.homeroom = text(v),
                "location" => spec.location = text(v),
                "sort" => {
                    spec.sort = match text(v) {
                        None => UserSort::default(),
                        Some(s) => UserSort::parse(&s)?,
                    }
                }
                _ => {}
            }
        }
        Ok(spec)
    }

    /// The parameters that are set, in [`LIST_PARAMS`] order (the default sort left out).
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put("search", self.search.clone());
        put("type", self.user_type.map(|t| t.as_str().to_owned()));
        put("linked", self.linked.map(|b| b.to_string()));
        put("active", self.active.map(|b| b.to_string()));
        put("grade", self.grade.clone());
        put("homeroom", self.homeroom.clone());
        put("location", self.location.clone());
        put(
            "sort",
            (!self.sort.is_default()).then(|| self.sort.to_string()),
        );
        out
    }

    /// In words, for the list of saved views: `type student, grade 5, sorted by name`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.search {
            parts.push(format!("matching '{s}'"));
        }
        if let Some(t) = self.user_type {
            parts.push(format!("type {t}"));
        }
        match self.linked {
            Some(true) => parts.push("linked".to_owned()),
            Some(false) => parts.push("unlinked".to_owned()),
            None => {}
        }
        match self.active {
            Some(true) => parts.push("active".to_owned()),
            Some(false) => parts.push("inactive".to_owned()),
            None => {}
        }
        for (label, v) in [
            ("grade", &self.grade),
            ("homeroom", &self.homeroom),
            ("location", &self.location),
        ] {
            if let Some(v) = v {
                parts.push(format!("{label} {v}"));
            }
        }
        if parts.is_empty() {
            parts.push("every account".to_owned());
        }
        if !self.sort.is_default() {
            parts.push(format!(
                "sorted by {}{}",
                self.sort.column.as_str(),
                if self.sort.descending {
                    ", descending"
                } else {
                    ""
                }
            ));
        }
        parts.join(", ")
    }
}

/// The longest name a saved view may have, in characters.
pub const MAX_VIEW_NAME: usize = 80;

/// A saved view's name, trimmed: 1 to [`MAX_VIEW_NAME`] characters, no control
/// characters.
pub fn check_view_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the view needs a name: type one next to Save view".into());
    }
    if name.chars().count() > MAX_VIEW_NAME {
        return Err(format!(
            "the view's name is too long: use at most {MAX_VIEW_NAME} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(
            "the view's name has a control character (a tab or a line break): use plain text"
                .into(),
        );
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::AccountId;

    fn same(a: &str, b: &str) -> bool {
        grade_key(a) == grade_key(b)
    }

    #[test]
    fn numbered_grades_ignore_leading_zeros_and_words() {
        for spelling in [
            "5",
            "05",
            "005",
            " 05 ",
            "Grade 5",
            "grade05",
            "GR 5",
            "gr.5",
            "5th",
            "5TH GRADE",
        ] {
            assert!(same(spelling, "05"), "{spelling}");
        }
        assert!(!same("5", "50"));
        assert!(!same("1", "11"));
        assert!(same("12", "12th"));
        assert!(same("1st", "01"));
        assert!(same("2nd", "2"));
        assert!(same("3rd", "03"));
    }

    #[test]
    fn kindergarten_and_its_neighbours() {
        for spelling in [
            "K",
            "k",
            "KG",
            "kg",
            "Kindergarten",
            "KINDER",
            "KDG",
            "0",
            "00",
        ] {
            assert!(same(spelling, "KG"), "{spelling}");
        }
        for spelling in [
            "PK",
            "Pre-K",
            "pre k",
            "PreKindergarten",
            "pre-kindergarten",
        ] {
            assert!(same(spelling, "PK"), "{spelling}");
        }
        assert!(same("TK", "Transitional Kindergarten"));
        assert!(!same("TK", "KG"));
        assert!(!same("PK", "KG"));
        assert!(same("ungraded", "UG"));
        assert!(same("PS", "Postsecondary"), "PS is postsecondary in CEDS");
        assert!(!same("PS", "PR"), "preschool is PR");
        assert!(same("Other", "OTHER"));
    }

    #[test]
    fn unknown_grades_match_case_insensitively_and_negative_levels_are_not_guessed() {
        assert!(same("Adult Ed", "adult  ed"));
        assert!(!same("-1", "1"), "PowerSchool's -1 is not grade 1");
        assert!(same("-1", "-1"));
        assert_eq!(grade_key(""), None);
        assert_eq!(grade_key("   "), None);
        assert!(!same("100", "10"), "no three-digit grades");
    }

    #[test]
    fn grade_keys_sort_in_grade_order() {
        let order = [
            "IT", "PR", "PK", "TK", "KG", "1", "02", "9", "10", "12", "13", "PS", "UG", "Other",
            "Adult",
        ];
        let keys: Vec<String> = order.iter().map(|g| grade_key(g).unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{order:?}");
    }

    #[test]
    fn text_keys_ignore_case_and_spacing() {
        assert_eq!(text_key("  Room   4 ").as_deref(), Some("room 4"));
        assert_eq!(text_key("ROOM 4"), text_key("room 4"));
        assert_eq!(text_key("Salle Ébène"), text_key("salle ébène"));
        assert_eq!(text_key(" \t"), None);
        assert_ne!(text_key("Room 4"), text_key("Room 40"));
    }

    #[test]
    fn name_key_joins_and_lowercases() {
        let mut u = Account::blank(AccountId(1));
        assert_eq!(name_key(&u), None);
        u.first_name = Some("Ána".into());
        u.last_name = Some(" O'Brien ".into());
        assert_eq!(name_key(&u).as_deref(), Some("ána o'brien"));
    }

    #[test]
    fn sorts_parse_and_print() {
        assert_eq!(UserSort::parse("name").unwrap().to_string(), "name");
        let d = UserSort::parse("-Grade").unwrap();
        assert_eq!((d.column, d.descending), (SortColumn::Grade, true));
        assert_eq!(d.to_string(), "-grade");
        assert_eq!(
            UserSort::parse("active").unwrap().column,
            SortColumn::Status
        );
        let err = UserSort::parse("shoe size").unwrap_err();
        assert!(err.contains("name, email"), "{err}");
        assert!(UserSort::default().is_default());
    }

    #[test]
    fn sort_keys_are_the_stored_keys() {
        let mut u = Account::blank(AccountId(7));
        u.grade = Some("5".into());
        u.homeroom = Some("Room  4".into());
        u.email = Some(" Ann@X.org".into());
        let key = |c: &str| UserSort::parse(c).unwrap().key_of(&u);
        assert_eq!(key("grade"), grade_key("05"));
        assert_eq!(key("homeroom").as_deref(), Some("room 4"));
        assert_eq!(key("email").as_deref(), Some("ann@x.org"));
        assert_eq!(key("name"), None, "no name: sorted last");
        assert_eq!(key("id"), None);
        assert_eq!(key("status").as_deref(), Some("true"));
        assert!(!SortColumn::Status.nullable() && SortColumn::Location.nullable());
    }

    #[test]
    fn cursors_round_trip_and_keep_plain_ids() {
        let c = ListCursor::parse("42").unwrap();
        assert_eq!((c.id, c.key), (AccountId(42), None));
        let c = ListCursor::parse("42:o'brien: ann").unwrap();
        assert_eq!(
            c.key.as_deref(),
            Some("o'brien: ann"),
            "only the first ':' splits"
        );
        assert_eq!(c.to_string(), "42:o'brien: ann");
        assert_eq!(ListCursor::parse("7:").unwrap().key.as_deref(), Some(""));
        assert!(ListCursor::parse("ann:5").is_err());
        let mut u = Account::blank(AccountId(9));
        u.grade = Some("K".into());
        let sort = UserSort::parse("grade").unwrap();
        assert_eq!(ListCursor::after(sort, &u).to_string(), "9:e.KG");
        assert_eq!(ListCursor::after(UserSort::default(), &u).to_string(), "9");
    }

    #[test]
    fn specs_round_trip_through_their_parameters() {
        let spec = ListSpec::from_params([
            ("search", " ann "),
            ("type", "student"),
            ("linked", "true"),
            ("active", ""),
            ("grade", "5"),
            ("homeroom", "room 4"),
            ("sort", "-name"),
            ("after", "12"),
        ])
        .unwrap();
        assert_eq!(spec.search.as_deref(), Some("ann"));
        assert_eq!(spec.active, None);
        let params = spec.params();
        assert_eq!(
            params.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["search", "type", "linked", "grade", "homeroom", "sort"]
        );
        let again = ListSpec::from_params(params.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(again, spec);
        assert_eq!(
            spec.describe(),
            "matching 'ann', type student, linked, grade 5, homeroom room 4, sorted by name, descending"
        );
        assert_eq!(ListSpec::default().describe(), "every account");
        assert!(ListSpec::default().params().is_empty());
    }

    #[test]
    fn bad_parameters_say_what_is_accepted() {
        let e = ListSpec::from_params([("type", "teacher")]).unwrap_err();
        assert!(e.starts_with("type: 'teacher' is not one of"), "{e}");
        let e = ListSpec::from_params([("linked", "yes")]).unwrap_err();
        assert!(e.contains("use true, false"), "{e}");
        assert!(ListSpec::from_params([("sort", "height")]).is_err());
    }

    #[test]
    fn view_names_are_checked() {
        assert_eq!(check_view_name("  Grade 5 ").unwrap(), "Grade 5");
        assert!(check_view_name(" ").is_err());
        assert!(check_view_name("a\nb").is_err());
        assert!(check_view_name(&"x".repeat(MAX_VIEW_NAME + 1)).is_err());
        assert!(check_view_name(&"é".repeat(MAX_VIEW_NAME)).is_ok());
    }
}
