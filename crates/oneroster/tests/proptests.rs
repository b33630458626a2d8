//! Property tests for the two readers every district's data goes through.
//!
//! - CSV: rows written with the `csv` crate's own writer (proper quoting, either line
//!   ending, with or without a byte-order mark, quoting only where needed or everywhere,
//!   as a folder or a zip) read back field by field as written. The reader trims cells,
//!   so text is generated *with* padding (line breaks included), commas, quotes and
//!   unicode, and compared with its trimmed form (an all-blank optional cell reads as
//!   absent). A line break or control character *inside* a value makes the reader skip
//!   the row: generated values have none, and a property of their own checks the skip.
//! - JSON: whatever JSON value sits in a known field, a record that has a `sourcedId`
//!   parses (the odd value becomes a warning); only a missing or blank `sourcedId` fails
//!   the page; no input of any kind panics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::Offset;
use oneroster::csv::CsvPackage;
use oneroster::json::parse_page;
use oneroster::{
    AcademicSession, Class, ClassType, Course, Demographic, Enrollment, Org, Record, Role,
    RoleAssignment, RoleType, Status, User, UserId,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde::Deserialize;

// ---------------------------------------------------------------------------------------
// Generated cells: the value the reader should produce, and the text written for it.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Spelled<T> {
    value: T,
    cell: String,
}

fn spelled<T: Clone + std::fmt::Debug>(value: T, cell: impl Into<String>) -> Spelled<T> {
    Spelled {
        value,
        cell: cell.into(),
    }
}

/// Text as people type it into a student information system: commas, quotes, line
/// breaks, `#`, non-breaking and zero-width spaces, accents, CJK, emoji, padding, and
/// now and then anything at all (control characters included).
fn free_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[ \t\u{a0}]{0,2}[a-zA-Z0-9,\"' \r\n;#.@éÉüßøñ漢字😀\u{200b}-]{0,16}[ \t\r\n\u{a0}]{0,2}",
        2 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// A control character the CSV reader refuses inside a value (C0 but tab, and DEL).
fn is_refused(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\u{7f}'
}

/// `s` with every refused character replaced.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if is_refused(c) { '_' } else { c })
        .collect()
}

/// Free text as a CSV cell holds it: nothing refused inside, but blanks and line breaks
/// at either end, which the reader trims.
fn cell_text() -> BoxedStrategy<String> {
    (
        select(vec!["", "", " ", "\t", "\r\n", "\n"]),
        free_text(),
        select(vec!["", "", " ", "\n", "\r\n"]),
    )
        .prop_map(|(l, text, r)| format!("{l}{}{r}", clean(&text)))
        .boxed()
}

/// `[^\s]{0,6}`, less refused characters: the text of a generated sourcedId.
fn id_text() -> impl Strategy<Value = String> {
    "[^\\s]{0,6}".prop_map(|s| clean(&s))
}

/// What the reader makes of a text cell: trimmed, and absent when blank.
fn read_as_optional(cell: &str) -> Option<String> {
    let t = cell.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Upper-cases the ASCII letters picked by `mask`: values are matched case-insensitively.
fn mixed_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Blanks around a cell value, which the reader trims.
fn padding() -> impl Strategy<Value = (&'static str, &'static str)> {
    (
        select(vec!["", "", " ", "\t"]),
        select(vec!["", "", " ", "  "]),
    )
}

/// A multi-value cell (`grades`, `orgSourcedIds`, `periods`…): items without commas,
/// joined with `,` and optional blanks, each item possibly padded.
fn list_cell() -> impl Strategy<Value = Spelled<Vec<String>>> {
    let item = "[ ]?[^,\\s][^,]{0,8}".prop_map(|s| clean(&s));
    (vec(item, 0..5), select(vec![",", ", ", " , ", ",\t"])).prop_map(|(items, sep)| {
        let value = items.iter().map(|i| i.trim().to_owned()).collect();
        spelled(value, items.join(sep))
    })
}

fn status_cell() -> impl Strategy<Value = Spelled<Status>> {
    prop_oneof![
        Just(spelled(Status::Active, "")),
        (select(vec!["active"]), any::<u64>(), padding()).prop_map(|(s, m, (l, r))| spelled(
            Status::Active,
            format!("{l}{}{r}", mixed_case(s, m))
        )),
        (
            select(vec!["tobedeleted", "inactive", "deleted"]),
            any::<u64>(),
            padding()
        )
            .prop_map(|(s, m, (l, r))| spelled(
                Status::ToBeDeleted,
                format!("{l}{}{r}", mixed_case(s, m))
            )),
    ]
}

fn bool_cell() -> impl Strategy<Value = Spelled<bool>> {
    (
        any::<bool>(),
        select(vec!["true", "1", "yes", "t", "y"]),
        select(vec!["false", "0", "no", "f", "n"]),
        any::<u64>(),
        padding(),
    )
        .prop_map(|(b, t, f, m, (l, r))| {
            let word = if b { t } else { f };
            spelled(b, format!("{l}{}{r}", mixed_case(word, m)))
        })
}

/// `enabledUser`: a boolean, or blank for the standard's default (enabled).
fn enabled_cell() -> impl Strategy<Value = Spelled<bool>> {
    prop_oneof![Just(spelled(true, "")), bool_cell()]
}

fn optional_bool_cell() -> impl Strategy<Value = Spelled<Option<bool>>> {
    prop_oneof![
        Just(spelled(None, "")),
        bool_cell().prop_map(|b| spelled(Some(b.value), b.cell)),
    ]
}

/// A role: a standard one in any case, or a vendor's own (`ext:…`), kept as sent.
fn role_cell() -> impl Strategy<Value = Spelled<Role>> {
    let standard = Role::STANDARD.to_vec();
    prop_oneof![
        3 => (select(standard), any::<u64>(), padding()).prop_map(|(role, m, (l, r))| {
            let cell = format!("{l}{}{r}", mixed_case(role.as_str(), m));
            spelled(role, cell)
        }),
        1 => ("ext:[a-zA-Z]{1,8}", padding())
            .prop_map(|(s, (l, r))| spelled(Role::Other(s.clone()), format!("{l}{s}{r}"))),
    ]
}

fn class_type_cell() -> impl Strategy<Value = Spelled<Option<ClassType>>> {
    prop_oneof![
        Just(spelled(None, "")),
        (
            select(vec![ClassType::Homeroom, ClassType::Scheduled]),
            any::<u64>(),
            padding()
        )
            .prop_map(|(t, m, (l, r))| {
                let cell = format!("{l}{}{r}", mixed_case(t.as_str(), m));
                spelled(Some(t), cell)
            }),
        "ext:[a-z]{1,8}".prop_map(|s| spelled(Some(ClassType::Other(s.clone())), s)),
    ]
}

/// A 1.2 `roleType`: blank reads as primary; an unknown value is kept.
fn role_type_cell() -> impl Strategy<Value = Spelled<RoleType>> {
    prop_oneof![
        Just(spelled(RoleType::Primary, "")),
        (
            select(vec![RoleType::Primary, RoleType::Secondary]),
            any::<u64>(),
            padding()
        )
            .prop_map(|(t, m, (l, r))| {
                let cell = format!("{l}{}{r}", mixed_case(t.as_str(), m));
                spelled(t, cell)
            }),
        "ext:[a-z]{1,8}".prop_map(|s| spelled(RoleType::Other(s.clone()), s)),
    ]
}

/// `dateLastModified` in the spellings servers use: RFC 3339 with `Z` (fractions when
/// present), no offset with `T`, no offset with a space; or blank.
fn timestamp_cell() -> impl Strategy<Value = Spelled<Option<Timestamp>>> {
    prop_oneof![
        Just(spelled(None, "")),
        (
            0i64..4_102_444_800,
            prop_oneof![Just(0i32), 0i32..1000],
            0..3u8
        )
            .prop_map(|(s, ms, form)| {
                let ts = Timestamp::new(s, ms * 1_000_000).unwrap();
                let civil = Offset::UTC.to_datetime(ts).to_string();
                let cell = match form {
                    0 => ts.to_string(),
                    1 => civil,
                    _ => civil.replacen('T', " ", 1),
                };
                spelled(Some(ts), cell)
            }),
    ]
}

/// A calendar date as `YYYY-MM-DD`, or as a date-time whose date part is kept; or blank.
fn date_cell() -> impl Strategy<Value = Spelled<Option<Date>>> {
    prop_oneof![
        Just(spelled(None, "")),
        (1990i16..2100, 1i8..=12, 1i8..=28, 0..3u8, padding()).prop_map(
            |(y, m, d, form, (l, r))| {
                let date = Date::new(y, m, d).unwrap();
                let cell = match form {
                    0 => format!("{l}{date}{r}"),
                    1 => format!("{date}T00:00:00Z"),
                    _ => format!("{date} 10:30:00"),
                };
                spelled(Some(date), cell)
            }
        ),
    ]
}

/// The CSV spelling of `userIds`: `{LDAP:12},{Fed:a,b}`. Identifiers may hold commas,
/// colons and blanks inside the braces.
fn user_ids_cell() -> impl Strategy<Value = Spelled<Vec<UserId>>> {
    let one = (
        "[A-Za-z][A-Za-z0-9_-]{0,7}",
        "[^{}:\\s][^}]{0,10}".prop_map(|s| clean(&s)),
    );
    (vec(one, 0..4), select(vec![",", ", "])).prop_map(|(ids, sep)| {
        let cell = ids
            .iter()
            .map(|(kind, id)| format!("{{{kind}:{id}}}"))
            .collect::<Vec<_>>()
            .join(sep);
        let value = ids
            .into_iter()
            .map(|(kind, id)| UserId {
                kind,
                identifier: id.trim().to_owned(),
            })
            .collect();
        spelled(value, cell)
    })
}

/// A `sourcedId` unique within its file (`u7-…`), with arbitrary text after the prefix.
fn sourced_id(prefix: &str, index: usize, text: &str) -> String {
    format!("{prefix}{index}-{text}")
}

// ---------------------------------------------------------------------------------------
// Writing a package.
// ---------------------------------------------------------------------------------------

/// How the file is written: the variations real exporters produce.
#[derive(Debug, Clone, Copy)]
struct CsvStyle {
    crlf: bool,
    quote_everything: bool,
    byte_order_mark: bool,
}

fn csv_style() -> impl Strategy<Value = CsvStyle> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(crlf, quote_everything, byte_order_mark)| CsvStyle {
            crlf,
            quote_everything,
            byte_order_mark,
        },
    )
}

/// The columns of a file in an order the exporter chose.
fn columns(all: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    Just(all.to_vec()).prop_shuffle()
}

/// One CSV row: cells by column name, written in header order (absent columns blank).
type Row = Vec<(&'static str, String)>;

fn write_csv(style: CsvStyle, header: &[&str], rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::new();
    if style.byte_order_mark {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut w = ::csv::WriterBuilder::new()
        .terminator(if style.crlf {
            ::csv::Terminator::CRLF
        } else {
            ::csv::Terminator::Any(b'\n')
        })
        .quote_style(if style.quote_everything {
            ::csv::QuoteStyle::Always
        } else {
            ::csv::QuoteStyle::Necessary
        })
        .from_writer(&mut out);
    w.write_record(header).unwrap();
    for row in rows {
        let cells = header.iter().map(|column| {
            row.iter()
                .find(|(c, _)| c == column)
                .map_or("", |(_, v)| v.as_str())
        });
        w.write_record(cells).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    out
}

fn manifest(version: &str, files: &[&str]) -> Vec<u8> {
    let mut m = format!("propertyName,value\nmanifest.version,1.0\noneroster.version,{version}\n");
    for f in files {
        m.push_str(&format!("file.{f},bulk\n"));
    }
    m.into_bytes()
}

/// A package on disk, as a folder or as a zip; removed on drop.
struct WrittenPackage {
    dir: PathBuf,
    path: PathBuf,
}

impl WrittenPackage {
    fn new(files: &[(&str, Vec<u8>)], zipped: bool) -> WrittenPackage {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oneroster-proptest-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = if zipped {
            let path = dir.join("package.zip");
            let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, body) in files {
                z.start_file(*name, opts).unwrap();
                z.write_all(body).unwrap();
            }
            z.finish().unwrap();
            path
        } else {
            for (name, body) in files {
                std::fs::write(dir.join(name), body).unwrap();
            }
            dir.clone()
        };
        WrittenPackage { dir, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WrittenPackage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_all<T: oneroster::csv::CsvRecord>(pkg: &mut CsvPackage) -> Result<Vec<T>, TestCaseError> {
    let mut out = Vec::new();
    let report = pkg
        .read::<T>(|r| out.push(r))
        .map_err(|e| TestCaseError::fail(format!("reading back failed: {e}")))?;
    prop_assert!(report.complete, "report: {:?}", report);
    prop_assert_eq!(report.records, out.len() as u64);
    prop_assert_eq!(report.records_with_warnings, 0, "report: {:?}", report);
    Ok(out)
}

/// Opens what was written, failing the case (not panicking) on an error.
fn open(written: &WrittenPackage) -> Result<CsvPackage, TestCaseError> {
    CsvPackage::open(written.path()).map_err(|e| TestCaseError::fail(format!("open failed: {e}")))
}

/// A vendor's own column is kept as an extension, as sent (less a line end's `\r`).
fn check_vendor_column(
    base: &oneroster::Base,
    column: &str,
    cell: &str,
) -> Result<(), TestCaseError> {
    let kept: Vec<String> = base
        .extensions
        .iter()
        .filter(|(k, _)| k == column)
        .map(|(_, v)| serde_json::from_str::<String>(v.get()).unwrap())
        .collect();
    let sent = cell.trim_end_matches('\r');
    if sent.is_empty() {
        prop_assert!(kept.is_empty(), "{:?}", kept);
    } else {
        prop_assert_eq!(kept, vec![sent.to_owned()]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 1.1 users.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct UserCase {
    id_text: String,
    id_padding: (&'static str, &'static str),
    status: Spelled<Status>,
    modified: Spelled<Option<Timestamp>>,
    enabled: Spelled<bool>,
    role: Spelled<Role>,
    orgs: Spelled<Vec<String>>,
    user_ids: Spelled<Vec<UserId>>,
    agents: Spelled<Vec<String>>,
    grades: Spelled<Vec<String>>,
    /// username, givenName, familyName, middleName, identifier, email, sms, phone,
    /// password, vendorNote.
    text: [String; 10],
}

fn text_cells<const N: usize>() -> impl Strategy<Value = [String; N]> {
    proptest::array::uniform(cell_text())
}

fn user_case() -> impl Strategy<Value = UserCase> {
    (
        (id_text(), padding()),
        (status_cell(), timestamp_cell(), enabled_cell(), role_cell()),
        (list_cell(), user_ids_cell(), list_cell(), list_cell()),
        text_cells::<10>(),
    )
        .prop_map(
            |(
                (id_text, id_padding),
                (status, modified, enabled, role),
                (orgs, user_ids, agents, grades),
                text,
            )| {
                UserCase {
                    id_text,
                    id_padding,
                    status,
                    modified,
                    enabled,
                    role,
                    orgs,
                    user_ids,
                    agents,
                    grades,
                    text,
                }
            },
        )
}

const USER_COLUMNS_11: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "vendorNote",
];

impl UserCase {
    fn id(&self, index: usize) -> String {
        sourced_id("u", index, &self.id_text)
    }

    fn id_cell(&self, index: usize) -> String {
        let (l, r) = self.id_padding;
        format!("{l}{}{r}", self.id(index))
    }

    fn row_11(&self, index: usize) -> Row {
        let t = &self.text;
        vec![
            ("sourcedId", self.id_cell(index)),
            ("status", self.status.cell.clone()),
            ("dateLastModified", self.modified.cell.clone()),
            ("enabledUser", self.enabled.cell.clone()),
            ("orgSourcedIds", self.orgs.cell.clone()),
            ("role", self.role.cell.clone()),
            ("username", t[0].clone()),
            ("userIds", self.user_ids.cell.clone()),
            ("givenName", t[1].clone()),
            ("familyName", t[2].clone()),
            ("middleName", t[3].clone()),
            ("identifier", t[4].clone()),
            ("email", t[5].clone()),
            ("sms", t[6].clone()),
            ("phone", t[7].clone()),
            ("agentSourcedIds", self.agents.cell.clone()),
            ("grades", self.grades.cell.clone()),
            ("password", t[8].clone()),
            ("vendorNote", t[9].clone()),
        ]
    }

    /// The fields 1.1 and 1.2 share.
    fn check_common(&self, index: usize, u: &User) -> Result<(), TestCaseError> {
        let t = &self.text;
        prop_assert_eq!(&u.base.sourced_id, &self.id(index));
        prop_assert_eq!(u.base.status, self.status.value);
        prop_assert_eq!(u.base.date_last_modified, self.modified.value);
        prop_assert_eq!(u.enabled_user, self.enabled.value);
        prop_assert_eq!(&u.username, t[0].trim());
        prop_assert_eq!(&u.user_ids, &self.user_ids.value);
        prop_assert_eq!(&u.given_name, t[1].trim());
        prop_assert_eq!(&u.family_name, t[2].trim());
        prop_assert_eq!(&u.middle_name, &read_as_optional(&t[3]));
        prop_assert_eq!(&u.identifier, &read_as_optional(&t[4]));
        prop_assert_eq!(&u.email, &read_as_optional(&t[5]));
        prop_assert_eq!(&u.sms, &read_as_optional(&t[6]));
        prop_assert_eq!(&u.phone, &read_as_optional(&t[7]));
        prop_assert_eq!(&u.agents, &self.agents.value);
        prop_assert_eq!(&u.grades, &self.grades.value);
        prop_assert!(
            u.base.extensions.iter().all(|(k, _)| k != "password"),
            "a password must never be kept"
        );
        check_vendor_column(&u.base, "vendorNote", &t[9])?;
        prop_assert!(u.base.warnings.is_empty(), "{:?}", u.base.warnings);
        Ok(())
    }

    /// 1.1: one `role` for every org, the first org primary.
    fn check_11(&self, index: usize, u: &User) -> Result<(), TestCaseError> {
        self.check_common(index, u)?;
        let orgs = &self.orgs.value;
        prop_assert_eq!(&u.orgs, orgs);
        let expected: Vec<RoleAssignment> = if orgs.is_empty() {
            vec![assignment(RoleType::Primary, self.role.value.clone(), None)]
        } else {
            orgs.iter()
                .enumerate()
                .map(|(i, org)| {
                    let kind = if i == 0 {
                        RoleType::Primary
                    } else {
                        RoleType::Secondary
                    };
                    assignment(kind, self.role.value.clone(), Some(org.clone()))
                })
                .collect()
        };
        prop_assert_eq!(&u.roles, &expected);
        prop_assert_eq!(&u.primary_org, &orgs.first().cloned());
        prop_assert_eq!(u.primary_role(), Some(&self.role.value));
        Ok(())
    }
}

fn assignment(role_type: RoleType, role: Role, org: Option<String>) -> RoleAssignment {
    RoleAssignment {
        role_type,
        role,
        org,
        user_profile: None,
        begin_date: None,
        end_date: None,
    }
}

// ---------------------------------------------------------------------------------------
// 1.2 users and roles.csv.
// ---------------------------------------------------------------------------------------

const USER_COLUMNS_12: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
    "vendorNote",
    "userMasterIdentifier",
    "preferredGivenName",
    "preferredMiddleName",
    "preferredFamilyName",
    "primaryOrgSourcedId",
    "pronouns",
];

const ROLE_COLUMNS: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "userSourcedId",
    "roleType",
    "role",
    "orgSourcedId",
    "userProfileSourcedId",
    "beginDate",
    "endDate",
];

#[derive(Debug, Clone)]
struct User12Case {
    user: UserCase,
    /// userMasterIdentifier, preferredGivenName, preferredMiddleName,
    /// preferredFamilyName, primaryOrgSourcedId, pronouns.
    text: [String; 6],
}

impl User12Case {
    fn row(&self, index: usize) -> Row {
        let mut row = self.user.row_11(index);
        row.retain(|(c, _)| *c != "role");
        let names = [
            "userMasterIdentifier",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "primaryOrgSourcedId",
            "pronouns",
        ];
        row.extend(names.into_iter().zip(self.text.iter().cloned()));
        row
    }
}

#[derive(Debug, Clone)]
struct RoleRowCase {
    user: Index,
    status: Spelled<Status>,
    role_type: Spelled<RoleType>,
    role: Spelled<Role>,
    org: String,
    user_profile: String,
    begin: Spelled<Option<Date>>,
    end: Spelled<Option<Date>>,
}

fn role_row_case() -> impl Strategy<Value = RoleRowCase> {
    (
        any::<Index>(),
        status_cell(),
        role_type_cell(),
        role_cell(),
        cell_text(),
        cell_text(),
        date_cell(),
        date_cell(),
    )
        .prop_map(
            |(user, status, role_type, role, org, user_profile, begin, end)| RoleRowCase {
                user,
                status,
                role_type,
                role,
                org,
                user_profile,
                begin,
                end,
            },
        )
}

impl RoleRowCase {
    fn assignment(&self) -> RoleAssignment {
        RoleAssignment {
            role_type: self.role_type.value.clone(),
            role: self.role.value.clone(),
            org: read_as_optional(&self.org),
            user_profile: read_as_optional(&self.user_profile),
            begin_date: self.begin.value,
            end_date: self.end.value,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Enrollments and classes.
// ---------------------------------------------------------------------------------------

const ENROLLMENT_COLUMNS: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "classSourcedId",
    "schoolSourcedId",
    "userSourcedId",
    "role",
    "primary",
    "beginDate",
    "endDate",
];

#[derive(Debug, Clone)]
struct EnrollmentCase {
    id_text: String,
    status: Spelled<Status>,
    modified: Spelled<Option<Timestamp>>,
    /// classSourcedId, schoolSourcedId, userSourcedId.
    refs: [String; 3],
    role: Option<Spelled<Role>>,
    primary: Spelled<Option<bool>>,
    begin: Spelled<Option<Date>>,
    end: Spelled<Option<Date>>,
}

fn enrollment_case() -> impl Strategy<Value = EnrollmentCase> {
    (
        id_text(),
        status_cell(),
        timestamp_cell(),
        text_cells::<3>(),
        proptest::option::of(role_cell()),
        optional_bool_cell(),
        date_cell(),
        date_cell(),
    )
        .prop_map(
            |(id_text, status, modified, refs, role, primary, begin, end)| EnrollmentCase {
                id_text,
                status,
                modified,
                refs,
                role,
                primary,
                begin,
                end,
            },
        )
}

impl EnrollmentCase {
    fn row(&self, index: usize) -> Row {
        vec![
            ("sourcedId", sourced_id("e", index, &self.id_text)),
            ("status", self.status.cell.clone()),
            ("dateLastModified", self.modified.cell.clone()),
            ("classSourcedId", self.refs[0].clone()),
            ("schoolSourcedId", self.refs[1].clone()),
            ("userSourcedId", self.refs[2].clone()),
            (
                "role",
                self.role
                    .as_ref()
                    .map(|r| r.cell.clone())
                    .unwrap_or_default(),
            ),
            ("primary", self.primary.cell.clone()),
            ("beginDate", self.begin.cell.clone()),
            ("endDate", self.end.cell.clone()),
        ]
    }

    fn check(&self, index: usize, e: &Enrollment) -> Result<(), TestCaseError> {
        prop_assert_eq!(&e.base.sourced_id, &sourced_id("e", index, &self.id_text));
        prop_assert_eq!(e.base.status, self.status.value);
        prop_assert_eq!(e.base.date_last_modified, self.modified.value);
        prop_assert_eq!(&e.class, &read_as_optional(&self.refs[0]));
        prop_assert_eq!(&e.school, &read_as_optional(&self.refs[1]));
        prop_assert_eq!(&e.user, &read_as_optional(&self.refs[2]));
        prop_assert_eq!(&e.role, &self.role.as_ref().map(|r| r.value.clone()));
        prop_assert_eq!(e.primary, self.primary.value);
        prop_assert_eq!(e.begin_date, self.begin.value);
        prop_assert_eq!(e.end_date, self.end.value);
        prop_assert!(e.base.warnings.is_empty(), "{:?}", e.base.warnings);
        Ok(())
    }
}

const CLASS_COLUMNS: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "grades",
    "courseSourcedId",
    "classCode",
    "classType",
    "location",
    "schoolSourcedId",
    "termSourcedIds",
    "subjects",
    "subjectCodes",
    "periods",
];

#[derive(Debug, Clone)]
struct ClassCase {
    id_text: String,
    status: Spelled<Status>,
    modified: Spelled<Option<Timestamp>>,
    class_type: Spelled<Option<ClassType>>,
    /// title, courseSourcedId, classCode, location, schoolSourcedId.
    text: [String; 5],
    /// grades, termSourcedIds, subjects, subjectCodes, periods.
    lists: [Spelled<Vec<String>>; 5],
}

fn class_case() -> impl Strategy<Value = ClassCase> {
    (
        id_text(),
        status_cell(),
        timestamp_cell(),
        class_type_cell(),
        text_cells::<5>(),
        proptest::array::uniform5(list_cell()),
    )
        .prop_map(
            |(id_text, status, modified, class_type, text, lists)| ClassCase {
                id_text,
                status,
                modified,
                class_type,
                text,
                lists,
            },
        )
}

impl ClassCase {
    fn row(&self, index: usize) -> Row {
        let [grades, terms, subjects, codes, periods] = &self.lists;
        vec![
            ("sourcedId", sourced_id("c", index, &self.id_text)),
            ("status", self.status.cell.clone()),
            ("dateLastModified", self.modified.cell.clone()),
            ("title", self.text[0].clone()),
            ("grades", grades.cell.clone()),
            ("courseSourcedId", self.text[1].clone()),
            ("classCode", self.text[2].clone()),
            ("classType", self.class_type.cell.clone()),
            ("location", self.text[3].clone()),
            ("schoolSourcedId", self.text[4].clone()),
            ("termSourcedIds", terms.cell.clone()),
            ("subjects", subjects.cell.clone()),
            ("subjectCodes", codes.cell.clone()),
            ("periods", periods.cell.clone()),
        ]
    }

    fn check(&self, index: usize, c: &Class) -> Result<(), TestCaseError> {
        let [grades, terms, subjects, codes, periods] = &self.lists;
        prop_assert_eq!(&c.base.sourced_id, &sourced_id("c", index, &self.id_text));
        prop_assert_eq!(c.base.status, self.status.value);
        prop_assert_eq!(c.base.date_last_modified, self.modified.value);
        prop_assert_eq!(&c.title, self.text[0].trim());
        prop_assert_eq!(&c.course, &read_as_optional(&self.text[1]));
        prop_assert_eq!(&c.class_code, &read_as_optional(&self.text[2]));
        prop_assert_eq!(&c.class_type, &self.class_type.value);
        prop_assert_eq!(&c.location, &read_as_optional(&self.text[3]));
        prop_assert_eq!(&c.school, &read_as_optional(&self.text[4]));
        prop_assert_eq!(&c.grades, &grades.value);
        prop_assert_eq!(&c.terms, &terms.value);
        prop_assert_eq!(&c.subjects, &subjects.value);
        prop_assert_eq!(&c.subject_codes, &codes.value);
        prop_assert_eq!(&c.periods, &periods.value);
        prop_assert!(c.base.warnings.is_empty(), "{:?}", c.base.warnings);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn csv_v11_users_read_back_as_written(
        users in vec(user_case(), 0..8),
        header in columns(USER_COLUMNS_11),
        style in csv_style(),
        zipped in any::<bool>(),
    ) {
        let rows: Vec<Row> = users.iter().enumerate().map(|(i, u)| u.row_11(i)).collect();
        let written = WrittenPackage::new(
            &[
                ("manifest.csv", manifest("1.1", &["users"])),
                ("users.csv", write_csv(style, &header, &rows)),
            ],
            zipped,
        );
        let mut pkg = open(&written)?;
        let read = read_all::<User>(&mut pkg)?;
        prop_assert_eq!(read.len(), users.len());
        for (i, (case, user)) in users.iter().zip(&read).enumerate() {
            case.check_11(i, user)?;
        }
    }

    #[test]
    fn csv_v12_users_take_their_roles_from_roles_csv(
        users in vec((user_case(), text_cells::<6>()), 1..6),
        role_rows in vec(role_row_case(), 0..10),
        user_header in columns(USER_COLUMNS_12),
        role_header in columns(ROLE_COLUMNS),
        style in csv_style(),
        zipped in any::<bool>(),
    ) {
        let users: Vec<User12Case> =
            users.into_iter().map(|(user, text)| User12Case { user, text }).collect();
        let user_rows: Vec<Row> = users.iter().enumerate().map(|(i, u)| u.row(i)).collect();
        let role_csv_rows: Vec<Row> = role_rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let owner = r.user.index(users.len());
                vec![
                    ("sourcedId", sourced_id("r", i, "")),
                    ("status", r.status.cell.clone()),
                    ("userSourcedId", users[owner].user.id_cell(owner)),
                    ("roleType", r.role_type.cell.clone()),
                    ("role", r.role.cell.clone()),
                    ("orgSourcedId", r.org.clone()),
                    ("userProfileSourcedId", r.user_profile.clone()),
                    ("beginDate", r.begin.cell.clone()),
                    ("endDate", r.end.cell.clone()),
                ]
            })
            .collect();
        let written = WrittenPackage::new(
            &[
                ("manifest.csv", manifest("1.2", &["users", "roles"])),
                ("users.csv", write_csv(style, &user_header, &user_rows)),
                ("roles.csv", write_csv(style, &role_header, &role_csv_rows)),
            ],
            zipped,
        );
        let mut pkg = open(&written)?;
        let read = read_all::<User>(&mut pkg)?;
        prop_assert_eq!(read.len(), users.len());
        for (i, (case, u)) in users.iter().zip(&read).enumerate() {
            case.user.check_common(i, u)?;
            let t = &case.text;
            prop_assert_eq!(&u.user_master_identifier, &read_as_optional(&t[0]));
            prop_assert_eq!(&u.preferred_first_name, &read_as_optional(&t[1]));
            prop_assert_eq!(&u.preferred_middle_name, &read_as_optional(&t[2]));
            prop_assert_eq!(&u.preferred_last_name, &read_as_optional(&t[3]));
            prop_assert_eq!(&u.pronouns, &read_as_optional(&t[5]));

            // Active rows of roles.csv for this user, primary first, in file order.
            let mut roles: Vec<RoleAssignment> = role_rows
                .iter()
                .filter(|r| r.user.index(users.len()) == i && r.status.value == Status::Active)
                .map(RoleRowCase::assignment)
                .collect();
            roles.sort_by_key(|r| r.role_type != RoleType::Primary);
            prop_assert_eq!(&u.roles, &roles);
            // orgSourcedIds, then the orgs of the roles not already listed.
            let mut orgs = case.user.orgs.value.clone();
            for org in roles.iter().filter_map(|r| r.org.clone()) {
                if !orgs.contains(&org) {
                    orgs.push(org);
                }
            }
            prop_assert_eq!(&u.orgs, &orgs);
            let primary_org = read_as_optional(&t[4])
                .or_else(|| roles.first().and_then(|r| r.org.clone()))
                .or_else(|| orgs.first().cloned());
            prop_assert_eq!(&u.primary_org, &primary_org);
        }
    }

    #[test]
    fn csv_enrollments_read_back_as_written(
        enrollments in vec(enrollment_case(), 0..10),
        header in columns(ENROLLMENT_COLUMNS),
        style in csv_style(),
        zipped in any::<bool>(),
    ) {
        let rows: Vec<Row> = enrollments.iter().enumerate().map(|(i, e)| e.row(i)).collect();
        let written = WrittenPackage::new(
            &[
                ("manifest.csv", manifest("1.1", &["enrollments"])),
                ("enrollments.csv", write_csv(style, &header, &rows)),
            ],
            zipped,
        );
        let mut pkg = open(&written)?;
        let read = read_all::<Enrollment>(&mut pkg)?;
        prop_assert_eq!(read.len(), enrollments.len());
        for (i, (case, e)) in enrollments.iter().zip(&read).enumerate() {
            case.check(i, e)?;
        }
    }

    #[test]
    fn csv_classes_read_back_as_written(
        classes in vec(class_case(), 0..8),
        header in columns(CLASS_COLUMNS),
        style in csv_style(),
        zipped in any::<bool>(),
    ) {
        let rows: Vec<Row> = classes.iter().enumerate().map(|(i, c)| c.row(i)).collect();
        let written = WrittenPackage::new(
            &[
                ("manifest.csv", manifest("1.1", &["classes"])),
                ("classes.csv", write_csv(style, &header, &rows)),
            ],
            zipped,
        );
        let mut pkg = open(&written)?;
        let read = read_all::<Class>(&mut pkg)?;
        prop_assert_eq!(read.len(), classes.len());
        for (i, (case, c)) in classes.iter().zip(&read).enumerate() {
            case.check(i, c)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON: any value in any known field.
// ---------------------------------------------------------------------------------------

/// A JSON document kept as a tree so that numbers can be written as any literal (a
/// 30-digit integer, `-0`, `1E-7`), objects can repeat a key, and strings can be anything.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// Every number JSON allows that serde_json can hold (finite; a literal beyond `f64`,
/// such as `1e400`, is a parse error in serde_json itself).
fn json_number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(|n| n.to_string()),
        select(vec![
            "0",
            "-0",
            "0.0",
            "1",
            "-1",
            "1e5",
            "1E-7",
            "-1.5e300",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "-98765432109876543210",
            "0.000000000000000000000000001",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Strings: anything, and the values the readers look for (booleans, dates, lists, the
/// CSV spelling of `userIds`, roles).
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => free_text(),
        1 => select(vec![
            "", " ", "true", "FALSE", "1", "0", "maybe", "2026-01-02", "2026-01-02T03:04:05Z",
            "2026-01-02 03:04:05", "1/05/2023", "2026-13-45", "s1,s2", " , ", "{LDAP:12},{Fed:34}",
            "{", "}", ":", "student", "ext:coach", "primary", "active", "tobedeleted",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Keys of nested objects: mostly ones some reader looks inside for (GUIDRefs, userIds,
/// 1.2 roles, status payloads), sometimes anything.
fn nested_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "sourcedId", "href", "type", "identifier", "role", "roleType", "org", "userProfile",
            "beginDate", "endDate", "imsx_codeMajor", "imsx_severity", "imsx_description",
            "imsx_codeMinor", "imsx_CodeMinor", "imsx_codeMinorField", "imsx_codeMinorFieldValue",
            "statusInfoSet", "imsx_statusInfo",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        json_number().prop_map(Json::Number),
        json_string().prop_map(Json::Text),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Json::Array),
            vec((nested_key(), inner), 0..5).prop_map(Json::Object),
        ]
    })
}

const BASE_KEYS: &[&str] = &[
    "status",
    "dateLastModified",
    "metadata",
    "vendorField",
    "ext:x",
];

const USER_KEYS: &[&str] = &[
    "username",
    "userIds",
    "enabledUser",
    "givenName",
    "familyName",
    "middleName",
    "preferredFirstName",
    "preferredGivenName",
    "preferredMiddleName",
    "preferredLastName",
    "preferredFamilyName",
    "pronouns",
    "role",
    "roles",
    "primaryOrg",
    "orgs",
    "identifier",
    "userMasterIdentifier",
    "email",
    "sms",
    "phone",
    "agents",
    "grades",
    "password",
];
const ORG_KEYS: &[&str] = &["name", "type", "identifier", "parent", "children"];
const SESSION_KEYS: &[&str] = &[
    "title",
    "type",
    "startDate",
    "endDate",
    "parent",
    "children",
    "schoolYear",
];
const COURSE_KEYS: &[&str] = &[
    "title",
    "courseCode",
    "schoolYear",
    "grades",
    "subjects",
    "subjectCodes",
    "org",
];
const CLASS_KEYS: &[&str] = &[
    "title",
    "classCode",
    "classType",
    "location",
    "grades",
    "subjects",
    "subjectCodes",
    "course",
    "school",
    "terms",
    "periods",
];
const ENROLLMENT_KEYS: &[&str] = &[
    "user",
    "class",
    "school",
    "role",
    "primary",
    "beginDate",
    "endDate",
];
const DEMOGRAPHIC_KEYS: &[&str] = &["birthDate", "sex"];

/// A few of a type's own fields and the shared ones, each holding any JSON value, and
/// where among them the `sourcedId` goes.
fn record_fields(
    own: &'static [&'static str],
) -> impl Strategy<Value = (Vec<(String, Json)>, Index)> {
    let key = prop_oneof![3 => select(own), 1 => select(BASE_KEYS)].prop_map(str::to_owned);
    (vec((key, json_value()), 1..5), any::<Index>())
}

/// Wraps the record in its collection's envelope and parses the page: it must hold the
/// one record, whatever its other fields held.
fn parses_with_its_sourced_id<T: Record + for<'de> Deserialize<'de>>(
    (fields, at): &(Vec<(String, Json)>, Index),
) -> Result<(), TestCaseError> {
    let mut fields = fields.clone();
    fields.insert(
        at.index(fields.len() + 1),
        ("sourcedId".into(), Json::Text("rec-1".into())),
    );
    let page = Json::Object(vec![(
        T::COLLECTION.endpoint().to_owned(),
        Json::Array(vec![Json::Object(fields)]),
    )])
    .text();
    match parse_page::<T>(page.as_bytes()) {
        Ok(p) => {
            prop_assert_eq!(p.records.len(), 1);
            prop_assert_eq!(p.records[0].sourced_id(), "rec-1");
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!(
            "a {} with a sourcedId failed the page: {e}\npage: {page}",
            T::COLLECTION
        ))),
    }
}

/// Every record type's page reader on the same bytes; none may panic.
fn parse_as_every_type(bytes: &[u8]) {
    let _ = parse_page::<User>(bytes);
    let _ = parse_page::<Org>(bytes);
    let _ = parse_page::<AcademicSession>(bytes);
    let _ = parse_page::<Course>(bytes);
    let _ = parse_page::<Class>(bytes);
    let _ = parse_page::<Enrollment>(bytes);
    let _ = parse_page::<Demographic>(bytes);
}

/// Realistic pages, between them holding every record type, for the mutation test to break.
const SAMPLE_PAGES: &[&str] = &[
    r#"{"users":[{"sourcedId":"u1","status":"active","dateLastModified":"2026-01-02T03:04:05Z","enabledUser":"true","username":"jdoe","givenName":"Jane","familyName":"Doe","role":"teacher","orgs":[{"href":"../orgs/s1","sourcedId":"s1","type":"org"}],"grades":["09","10"],"userIds":[{"type":"LDAP","identifier":"12"}],"agents":[{"sourcedId":"g1","type":"user"}],"roles":[{"roleType":"primary","role":"teacher","org":{"sourcedId":"s1"},"beginDate":"2025-08-15"}],"primaryOrg":{"sourcedId":"s1"},"metadata":{"ext:x":1}}],"statusInfoSet":[{"imsx_codeMajor":"success","imsx_CodeMinor":{"imsx_codeMinorField":[{"imsx_codeMinorFieldValue":"fullsuccess"}]}}]}"#,
    r#"{"classes":[{"sourcedId":"c1","title":"Algebra","classType":"scheduled","course":{"sourcedId":"k1"},"school":{"sourcedId":"s1"},"terms":[{"sourcedId":"t1"}],"periods":"1,2","grades":["09"]}],"enrollments":[{"sourcedId":"e1","user":{"sourcedId":"u1"},"class":{"sourcedId":"c1"},"school":{"sourcedId":"s1"},"role":"student","primary":"false","beginDate":"2025-08-15","endDate":"2026-06-01"}]}"#,
    r#"{"orgs":[{"sourcedId":"o1","name":"HS","type":"school","parent":{"sourcedId":"d1"},"children":[]}],"academicSessions":[{"sourcedId":"a1","title":"2026","type":"schoolYear","startDate":"2025-08-01","endDate":"2026-07-31","schoolYear":"2026"}],"courses":[{"sourcedId":"k1","title":"Math","schoolYear":{"sourcedId":"a1"},"org":{"sourcedId":"s1"},"subjects":["math"]}],"demographics":[{"sourcedId":"u1","birthDate":"2010-01-01","sex":"female"}]}"#,
];

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![select(b"{}[]\",:0-.eE \\tnul".to_vec()), any::<u8>()];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(page: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = page.to_vec();
    for m in mutations {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Replace(i, v) => {
                let i = i.index(b.len());
                b[i] = *v;
            }
            Mutation::Insert(i, v) => b.insert(i.index(b.len() + 1), *v),
            Mutation::Remove(i) => {
                b.remove(i.index(b.len()));
            }
            Mutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_user_survives_any_value_in_known_fields(rec in record_fields(USER_KEYS)) {
        parses_with_its_sourced_id::<User>(&rec)?;
    }

    #[test]
    fn json_org_survives_any_value_in_known_fields(rec in record_fields(ORG_KEYS)) {
        parses_with_its_sourced_id::<Org>(&rec)?;
    }

    #[test]
    fn json_academic_session_survives_any_value_in_known_fields(rec in record_fields(SESSION_KEYS)) {
        parses_with_its_sourced_id::<AcademicSession>(&rec)?;
    }

    #[test]
    fn json_course_survives_any_value_in_known_fields(rec in record_fields(COURSE_KEYS)) {
        parses_with_its_sourced_id::<Course>(&rec)?;
    }

    #[test]
    fn json_class_survives_any_value_in_known_fields(rec in record_fields(CLASS_KEYS)) {
        parses_with_its_sourced_id::<Class>(&rec)?;
    }

    #[test]
    fn json_enrollment_survives_any_value_in_known_fields(rec in record_fields(ENROLLMENT_KEYS)) {
        parses_with_its_sourced_id::<Enrollment>(&rec)?;
    }

    #[test]
    fn json_demographic_survives_any_value_in_known_fields(rec in record_fields(DEMOGRAPHIC_KEYS)) {
        parses_with_its_sourced_id::<Demographic>(&rec)?;
    }

    /// Status beside the records (a 1.1 `statusInfoSet`, a 1.2 top-level `imsx_*`), of any
    /// shape, never costs the records.
    #[test]
    fn json_any_status_payload_keeps_the_records(
        status in vec((select(vec!["statusInfoSet", "imsx_statusInfo", "imsx_StatusInfo", "statusInfo",
            "imsx_codeMajor", "imsx_severity", "imsx_description", "imsx_CodeMinor"]), json_value()), 1..4),
    ) {
        let mut fields: Vec<(String, Json)> =
            status.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        fields.push((
            "users".into(),
            Json::Array(vec![Json::Object(vec![("sourcedId".into(), Json::Text("u1".into()))])]),
        ));
        let page = Json::Object(fields).text();
        let parsed = parse_page::<User>(page.as_bytes());
        prop_assert!(parsed.is_ok(), "{:?}\npage: {}", parsed.err(), page);
        prop_assert_eq!(parsed.unwrap().records.len(), 1);
    }

    /// The `sourcedId` itself: text that is not blank is the id (trimmed); no id, a blank
    /// one or one that is not a scalar fails the page with an error that says so.
    #[test]
    fn json_sourced_id_of_any_kind_is_the_id_or_a_clear_error(id in json_value()) {
        let page = Json::Object(vec![(
            "users".into(),
            Json::Array(vec![Json::Object(vec![("sourcedId".into(), id.clone())])]),
        )])
        .text();
        let parsed = parse_page::<User>(page.as_bytes());
        match &id {
            Json::Text(s) if !s.trim().is_empty() => {
                let p = parsed.map_err(|e| TestCaseError::fail(format!("{e}\npage: {page}")))?;
                prop_assert_eq!(p.records[0].sourced_id(), s.trim());
            }
            Json::Text(_) | Json::Null | Json::Array(_) | Json::Object(_) => {
                let err = parsed.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(err.contains("without a sourcedId"), "{:?}\npage: {}", err, page);
            }
            Json::Bool(_) | Json::Number(_) => {
                let p = parsed.map_err(|e| TestCaseError::fail(format!("{e}\npage: {page}")))?;
                prop_assert!(!p.records[0].sourced_id().is_empty());
            }
        }
    }

    #[test]
    fn json_arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        parse_as_every_type(&bytes);
    }

    #[test]
    fn json_mutated_pages_never_panic(
        page in select(SAMPLE_PAGES),
        mutations in vec(mutation(), 1..8),
    ) {
        parse_as_every_type(&apply(page.as_bytes(), &mutations));
    }
}

/// Values of the wrong kind in `userIds` and `roles` (once failures of the whole page)
/// keep the record and become a warning naming the field.
#[test]
fn odd_user_ids_and_roles_become_warnings() {
    for (field, value) in [
        ("userIds", "true"),
        ("userIds", "7"),
        ("userIds", "{}"),
        ("roles", "false"),
        ("roles", "-1.5"),
        ("roles", "[1]"),
        ("roles", "[[]]"),
    ] {
        let page = format!(r#"{{"users":[{{"sourcedId":"u1","{field}":{value}}}]}}"#);
        let p = parse_page::<User>(page.as_bytes()).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert_eq!(p.records.len(), 1, "{page}");
        let warnings = &p.records[0].base.warnings;
        assert_eq!(warnings.len(), 1, "{page}: {warnings:?}");
        assert!(
            warnings[0].starts_with(&format!("`{field}`")),
            "{page}: {warnings:?}"
        );
    }
}

/// The mutation test starts from pages that parse, so it probes near-valid input.
#[test]
fn json_sample_pages_parse() {
    for page in SAMPLE_PAGES {
        let users = parse_page::<User>(page.as_bytes()).unwrap();
        let classes = parse_page::<Class>(page.as_bytes()).unwrap();
        let orgs = parse_page::<Org>(page.as_bytes()).unwrap();
        let found = users.records.len() + classes.records.len() + orgs.records.len();
        assert!(found > 0, "{page}");
    }
}
