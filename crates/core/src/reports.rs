//! The judgement behind the unlinked and duplicates reports: which SIS person an unlinked
//! account probably is, and which accounts are probably one person. Pure scoring over a
//! few facts; the store fetches the candidates (grouped by name in SQL, so nothing here is
//! ever asked to compare a million accounts pairwise).
//!
//! Scores add up evidence an admin can check by eye: the same name (40), the same email
//! local part in any domain (35: `jane.doe@district.k12.us` is `jane.doe@students.…`), the
//! same grade (10), the same school or location (15). A suggestion needs the name or the
//! email to agree; grade and school alone prove nothing.

use serde::Serialize;

/// Points per kind of evidence; they add up to 100.
const NAME_POINTS: u8 = 40;
const EMAIL_POINTS: u8 = 35;
const GRADE_POINTS: u8 = 10;
const SCHOOL_POINTS: u8 = 15;

/// What made two records look like one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    SameName,
    EmailLocalPart,
    SameGrade,
    SameSchool,
    /// One account has a SIS link and the other none: the classic single sign-on twin.
    OneLinked,
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

/// An account in a duplicates group, as compared.
#[derive(Debug, Clone, Default)]
pub struct DuplicateFacts<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub grade: Option<&'a str>,
    pub location: Option<&'a str>,
    pub linked: bool,
}

/// Why two accounts are probably one person: the same normalised name and at least one of
/// the same email local part, the same grade and location, or one linked and one not.
/// `None` when they are not.
pub fn duplicate_evidence(a: &DuplicateFacts<'_>, b: &DuplicateFacts<'_>) -> Option<Vec<Evidence>> {
    let name = name_key(a.first_name, a.last_name)?;
    if name_key(b.first_name, b.last_name).as_deref() != Some(name.as_str()) {
        return None;
    }
    let mut found = Vec::new();
    if let (Some(x), Some(y)) = (a.email.and_then(email_local), b.email.and_then(email_local))
        && x == y
    {
        found.push(evidence(
            EvidenceKind::EmailLocalPart,
            format!(
                "same email local part: {} and {}",
                a.email.unwrap_or_default().trim(),
                b.email.unwrap_or_default().trim()
            ),
        ));
    }
    if let (Some(ga), Some(gb)) = (a.grade, b.grade)
        && !ga.trim().is_empty()
        && grade_key(ga) == grade_key(gb)
        && same_text(a.location, b.location)
    {
        found.push(evidence(
            EvidenceKind::SameSchool,
            format!(
                "same grade and school: {} at {}",
                ga.trim(),
                a.location.unwrap_or_default().trim()
            ),
        ));
    }
    if a.linked != b.linked {
        found.push(evidence(
            EvidenceKind::OneLinked,
            "one is linked to the SIS and the other is not".to_owned(),
        ));
    }
    if found.is_empty() {
        return None;
    }
    found.insert(
        0,
        evidence(EvidenceKind::SameName, format!("same name: {name}")),
    );
    Some(found)
}

/// Splits accounts that share a name into groups of probable duplicates: two accounts are
/// in one group when [`duplicate_evidence`] links them, directly or through a third.
/// Returns each group (indexes into `accounts`, ascending, at least two) with the evidence
/// of its links, without repeats. Quadratic in the size of one name's accounts, which is
/// small (the store groups by name first).
pub fn duplicate_groups(accounts: &[DuplicateFacts<'_>]) -> Vec<(Vec<usize>, Vec<Evidence>)> {
    let n = accounts.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut links: Vec<(usize, Vec<Evidence>)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if let Some(e) = duplicate_evidence(&accounts[i], &accounts[j]) {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[rj.max(ri)] = ri.min(rj);
                links.push((i, e));
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, (Vec<usize>, Vec<Evidence>)> =
        std::collections::BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().0.push(i);
    }
    for (i, found) in links {
        let r = root(&mut parent, i);
        if let Some((_, all)) = groups.get_mut(&r) {
            for e in found {
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
        first: &'a str,
        email: &'a str,
        grade: &'a str,
        location: &'a str,
        linked: bool,
    ) -> DuplicateFacts<'a> {
        DuplicateFacts {
            first_name: Some(first),
            last_name: Some("Doe"),
            email: Some(email),
            grade: Some(grade),
            location: Some(location),
            linked,
        }
    }

    #[test]
    fn duplicates_need_the_name_and_one_more_thing() {
        let a = facts("Jane", "jane.doe@a.org", "5", "Lincoln", true);
        let same_local = facts("Jané", "JANE.DOE@b.org", "6", "Adams", true);
        let same_class = facts("Jane", "jd2@a.org", "05", "lincoln", true);
        let one_linked = facts("Jane", "other@a.org", "9", "Adams", false);
        let stranger = facts("Jane", "zz@a.org", "9", "Adams", true);
        let kinds =
            |e: Option<Vec<Evidence>>| e.map(|v| v.iter().map(|e| e.kind).collect::<Vec<_>>());
        assert_eq!(
            kinds(duplicate_evidence(&a, &same_local)),
            Some(vec![EvidenceKind::SameName, EvidenceKind::EmailLocalPart])
        );
        assert_eq!(
            kinds(duplicate_evidence(&a, &same_class)),
            Some(vec![EvidenceKind::SameName, EvidenceKind::SameSchool])
        );
        assert_eq!(
            kinds(duplicate_evidence(&a, &one_linked)),
            Some(vec![EvidenceKind::SameName, EvidenceKind::OneLinked])
        );
        assert_eq!(duplicate_evidence(&a, &stranger), None, "only the name");
        let mut renamed = facts("Jane", "jane.doe@a.org", "5", "Lincoln", false);
        renamed.last_name = Some("Smith");
        assert_eq!(duplicate_evidence(&a, &renamed), None, "another name");
    }

    #[test]
    fn groups_join_through_a_third_account() {
        let accounts = [
            facts("Jane", "jane.doe@a.org", "5", "Lincoln", true),
            facts("Jane", "zz@a.org", "9", "Adams", true),
            facts("Jane", "jane.doe@b.org", "9", "Adams", false),
            DuplicateFacts {
                last_name: Some("Roe"),
                ..facts("Jane", "jane.doe@c.org", "5", "Lincoln", false)
            },
        ];
        let groups = duplicate_groups(&accounts);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0, [0, 1, 2], "0–2 by email, 1–2 by one linked");
        let kinds: Vec<EvidenceKind> = groups[0].1.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EvidenceKind::SameName,
                EvidenceKind::EmailLocalPart,
                EvidenceKind::SameSchool,
                EvidenceKind::OneLinked
            ]
        );
        assert!(duplicate_groups(&accounts[3..]).is_empty());
    }
}
