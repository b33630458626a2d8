//! Record types read from CSV: the [`CsvRecord`] trait, each type's columns, and the
//! [`Cell`] a column's value is read from.

use std::collections::HashMap;

use super::package::{CsvPackage, FileMode, PackageError};
use super::rows::Row;
use crate::lenient;
use crate::model::*;
use crate::report::CollectionReport;

pub(super) const COMMON_COLUMNS: &[&str] = &["sourcedId", "status", "dateLastModified"];

/// The reader of a column every record has (`sourcedId`, `status`, `dateLastModified`).
pub(super) fn common_setter<T: CsvRecord>(column: &str) -> Option<(&'static str, Setter<T>)> {
    Some(match column {
        "sourcedId" => ("sourcedId", |s, c, _| {
            c.text_into(&mut s.base_mut().sourced_id)
        }),
        "status" => ("status", |s, c, _| {
            s.base_mut().status = c
                .parsed("a status (active, tobedeleted)", Status::read)
                .unwrap_or_default();
        }),
        "dateLastModified" => ("dateLastModified", |s, c, _| {
            s.base_mut().date_last_modified =
                c.parsed("an ISO-8601 date-time", lenient::read_timestamp);
        }),
        _ => return None,
    })
}

/// One cell being read, and where its problems and findings go.
pub struct Cell<'a> {
    pub(super) column: &'static str,
    pub(super) value: &'a str,
    pub(super) warnings: &'a mut Vec<String>,
    pub(super) findings: &'a mut Vec<Finding>,
}

impl Cell<'_> {
    /// Writes the cell into a string, reusing its buffer.
    fn text_into(&self, out: &mut String) {
        out.clear();
        out.push_str(self.value);
    }

    /// An empty cell is `None`; otherwise the buffer already there is reused.
    fn opt_into(&self, out: &mut Option<String>) {
        if self.value.is_empty() {
            *out = None;
        } else if let Some(s) = out {
            self.text_into(s);
        } else {
            *out = Some(self.value.to_owned());
        }
    }

    /// A comma-separated cell into a list, reusing the strings already in it.
    fn list_into(&self, out: &mut Vec<String>) {
        let mut n = 0;
        for item in lenient::list_items(self.value) {
            match out.get_mut(n) {
                Some(s) => {
                    s.clear();
                    s.push_str(item);
                }
                None => out.push(item.to_owned()),
            }
            n += 1;
        }
        out.truncate(n);
    }

    /// `{LDAP:12},{Fed:34}` into a list, reusing the strings already in it.
    fn user_ids_into(&self, out: &mut Vec<UserId>) {
        let mut n = 0;
        for (kind, identifier) in lenient::user_id_pairs(self.value) {
            match out.get_mut(n) {
                Some(id) => {
                    id.kind.clear();
                    id.kind.push_str(kind);
                    id.identifier.clear();
                    id.identifier.push_str(identifier);
                }
                None => out.push(UserId {
                    kind: kind.to_owned(),
                    identifier: identifier.to_owned(),
                }),
            }
            n += 1;
        }
        out.truncate(n);
    }

    /// The cell read by `read`; an empty cell is `None` without a warning, an unreadable
    /// one `None` with one, a lenient one is noted.
    fn parsed<T: std::fmt::Display>(
        &mut self,
        expected: &str,
        read: impl FnOnce(&str) -> Option<lenient::Read<T>>,
    ) -> Option<T> {
        if self.value.is_empty() {
            return None;
        }
        match read(self.value) {
            Some(r) => Some(self.noted(r)),
            None => {
                self.warnings.push(format!(
                    "column `{}`: '{}' is not {expected}; ignored",
                    self.column, self.value
                ));
                None
            }
        }
    }

    /// The value, noting it when it was read leniently.
    fn noted<T: std::fmt::Display>(&mut self, r: lenient::Read<T>) -> T {
        if !r.standard {
            self.findings
                .push(Finding::lenient(self.column, self.value, &r.value));
        }
        r.value
    }

    fn boolean(&mut self) -> Option<bool> {
        self.parsed("a boolean", lenient::read_bool)
    }

    /// A boolean the standard requires: a blank cell is noted and takes `default`.
    fn required_boolean(&mut self, default: bool) -> bool {
        if self.value.is_empty() {
            self.findings.push(Finding::blank(
                self.column,
                if default { "true" } else { "false" },
            ));
        }
        self.boolean().unwrap_or(default)
    }

    fn date(&mut self) -> Option<jiff::civil::Date> {
        self.parsed("a date (YYYY-MM-DD)", lenient::read_date)
    }

    /// An open enum: kept whatever it says, `None` when empty.
    fn open<T: std::fmt::Display>(
        &mut self,
        read: impl FnOnce(&str) -> lenient::Read<T>,
    ) -> Option<T> {
        if self.value.is_empty() {
            return None;
        }
        let r = read(self.value);
        Some(self.noted(r))
    }
}

/// A record type with a file in the package.
pub trait CsvRecord: Record + Default + Clone {
    /// Columns this type reads, besides `sourcedId`, `status`, `dateLastModified`.
    const COLUMNS: &'static [&'static str];
    /// Per-row state kept until the row is complete.
    type Pending: Default;
    /// Package-wide state loaded before the rows (1.2 users need `roles.csv`).
    type Context;

    fn required_columns(version: Version) -> &'static [&'static str];
    /// Loads the context; problems in the files it reads (a broken `roles.csv`) spoil
    /// `report`, the completeness of this type's collection.
    fn load_context(
        pkg: &mut CsvPackage,
        report: &mut CollectionReport,
    ) -> Result<Self::Context, PackageError>;
    /// The function that reads a column into the record, looked up once per file so a
    /// row costs one call per cell, not a string match.
    fn setter(column: &str) -> Option<Setter<Self>>;
    fn finish(&mut self, _pending: Self::Pending, _context: &mut Self::Context) {}
}

/// Reads one cell into a record.
pub type Setter<T> = fn(&mut T, &mut Cell<'_>, &mut <T as CsvRecord>::Pending);

impl CsvRecord for User {
    const COLUMNS: &'static [&'static str] = &[
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
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
    ];
    type Pending = UserPending;
    /// Roles by user, from `roles.csv`.
    type Context = HashMap<String, Vec<RoleAssignment>>;

    fn required_columns(version: Version) -> &'static [&'static str] {
        match version {
            Version::V1_1 => &[
                "sourcedId",
                "username",
                "givenName",
                "familyName",
                "role",
                "orgSourcedIds",
            ],
            Version::V1_2 => &["sourcedId", "username", "givenName", "familyName"],
        }
    }

    fn load_context(
        pkg: &mut CsvPackage,
        report: &mut CollectionReport,
    ) -> Result<Self::Context, PackageError> {
        let mut roles: HashMap<String, Vec<RoleAssignment>> = HashMap::new();
        let has_roles = matches!(
            pkg.manifest.files.get("roles"),
            Some(FileMode::Bulk | FileMode::Delta)
        );
        if pkg.version() == Version::V1_2 && has_roles {
            let mut warnings = Vec::new();
            pkg.rows::<RoleRow>(
                "roles.csv",
                &["userSourcedId", "role"],
                RoleRow::COLUMNS,
                &mut warnings,
                |row| match row {
                    Row::Record { record: r, .. } => {
                        report.note_findings(&r.base);
                        if r.base.status == Status::Active
                            && let (Some(user), Some(role)) = (&r.user, &r.role)
                        {
                            roles.entry(user.clone()).or_default().push(RoleAssignment {
                                role_type: r.role_type.clone().unwrap_or(RoleType::Primary),
                                role: role.clone(),
                                org: r.org.clone(),
                                user_profile: r.user_profile.clone(),
                                begin_date: r.begin_date,
                                end_date: r.end_date,
                            });
                        }
                    }
                    // A role row lost is a user with the wrong roles, or none: the
                    // users collection is not complete.
                    Row::Skipped(problem) => report.skip(problem),
                    Row::Problem(problem) => report.problem(problem),
                },
            )?;
            pkg.warnings.extend(warnings);
        }
        Ok(roles)
    }

    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "enabledUser" => |s, c, _| s.enabled_user = c.required_boolean(true),
            "orgSourcedIds" => |s, c, p| {
                c.list_into(&mut s.orgs);
                p.orgs_column = true;
            },
            "role" => |_, c, p| p.legacy_role = c.open(Role::read),
            "username" => |s, c, _| c.text_into(&mut s.username),
            "userIds" => |s, c, _| c.user_ids_into(&mut s.user_ids),
            "givenName" => |s, c, _| c.text_into(&mut s.given_name),
            "familyName" => |s, c, _| c.text_into(&mut s.family_name),
            "middleName" => |s, c, _| c.opt_into(&mut s.middle_name),
            "identifier" => |s, c, _| c.opt_into(&mut s.identifier),
            "email" => |s, c, _| c.opt_into(&mut s.email),
            "sms" => |s, c, _| c.opt_into(&mut s.sms),
            "phone" => |s, c, _| c.opt_into(&mut s.phone),
            "agentSourcedIds" => |s, c, _| c.list_into(&mut s.agents),
            "grades" => |s, c, _| c.list_into(&mut s.grades),
            "userMasterIdentifier" => |s, c, _| c.opt_into(&mut s.user_master_identifier),
            "preferredGivenName" => |s, c, _| c.opt_into(&mut s.preferred_first_name),
            "preferredMiddleName" => |s, c, _| c.opt_into(&mut s.preferred_middle_name),
            "preferredFamilyName" => |s, c, _| c.opt_into(&mut s.preferred_last_name),
            "primaryOrgSourcedId" => |s, c, p| {
                c.opt_into(&mut s.primary_org);
                p.primary_org_column = true;
            },
            "pronouns" => |s, c, _| c.opt_into(&mut s.pronouns),
            // `password` is never kept; `resourceSourcedIds` is not rostering.
            _ => return None,
        };
        Some(f)
    }

    fn finish(&mut self, pending: UserPending, roles: &mut Self::Context) {
        // The record is reused row after row: what the previous row derived is replaced,
        // in place where it can be.
        if !pending.orgs_column {
            self.orgs.clear();
        }
        let from_roles_csv = if roles.is_empty() {
            None
        } else {
            roles.remove(&self.base.sourced_id)
        };
        let derive_primary_org = !pending.primary_org_column;
        match (from_roles_csv, pending.legacy_role) {
            (Some(r), _) => {
                self.roles = r;
                if derive_primary_org {
                    self.primary_org = None;
                }
            }
            (None, Some(role)) => {
                if derive_primary_org {
                    // 1.1: the first org is the primary one.
                    let first = self.orgs.first().map(String::as_str);
                    crate::model::fill_opt(&mut self.primary_org, first);
                }
                self.set_legacy_roles(role);
            }
            (None, None) => {
                self.roles.clear();
                if derive_primary_org {
                    self.primary_org = None;
                }
            }
        }
        self.finish_roles();
    }
}

/// What a users.csv row says besides its fields.
#[derive(Debug, Default)]
pub struct UserPending {
    /// 1.1's `role`.
    legacy_role: Option<Role>,
    orgs_column: bool,
    primary_org_column: bool,
}

/// A row of 1.2 `roles.csv`, folded into its user.
#[derive(Debug, Default, Clone)]
struct RoleRow {
    base: Base,
    user: Option<String>,
    role_type: Option<RoleType>,
    role: Option<Role>,
    org: Option<String>,
    user_profile: Option<String>,
    begin_date: Option<jiff::civil::Date>,
    end_date: Option<jiff::civil::Date>,
}

impl Record for RoleRow {
    const COLLECTION: Collection = Collection::Users;
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

impl CsvRecord for RoleRow {
    const COLUMNS: &'static [&'static str] = &[
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ];
    type Pending = ();
    type Context = ();

    fn required_columns(_: Version) -> &'static [&'static str] {
        &["userSourcedId", "role"]
    }
    fn load_context(_: &mut CsvPackage, _: &mut CollectionReport) -> Result<(), PackageError> {
        Ok(())
    }
    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "userSourcedId" => |s, c, _| c.opt_into(&mut s.user),
            "roleType" => |s, c, _| s.role_type = c.open(RoleType::read),
            "role" => |s, c, _| s.role = c.open(Role::read),
            "beginDate" => |s, c, _| s.begin_date = c.date(),
            "endDate" => |s, c, _| s.end_date = c.date(),
            "orgSourcedId" => |s, c, _| c.opt_into(&mut s.org),
            "userProfileSourcedId" => |s, c, _| c.opt_into(&mut s.user_profile),
            _ => return None,
        };
        Some(f)
    }
}

/// The boilerplate of a record type whose rows need no package-wide state.
macro_rules! simple_csv_record {
    ($ty:ty, required: $req:expr, { $($col:literal => |$s:ident, $c:ident| $set:expr),+ $(,)? }) => {
        impl CsvRecord for $ty {
            const COLUMNS: &'static [&'static str] = &[$($col),+];
            type Pending = ();
            type Context = ();
            fn required_columns(_: Version) -> &'static [&'static str] {
                $req
            }
            fn load_context(_: &mut CsvPackage, _: &mut CollectionReport) -> Result<(), PackageError> {
                Ok(())
            }
            fn setter(column: &str) -> Option<Setter<Self>> {
                let f: Setter<Self> = match column {
                    $($col => |$s, $c, _| { $set; },)+
                    _ => return None,
                };
                Some(f)
            }
        }
    };
}

simple_csv_record!(Org, required: &["sourcedId", "name", "type"], {
    "name" => |s, c| c.text_into(&mut s.name),
    "type" => |s, c| s.org_type = c.open(OrgType::read),
    "identifier" => |s, c| c.opt_into(&mut s.identifier),
    "parentSourcedId" => |s, c| c.opt_into(&mut s.parent),
});

simple_csv_record!(AcademicSession, required: &["sourcedId", "title", "type"], {
    "title" => |s, c| c.text_into(&mut s.title),
    "type" => |s, c| s.session_type = c.open(SessionType::read),
    "startDate" => |s, c| s.start_date = c.date(),
    "endDate" => |s, c| s.end_date = c.date(),
    "parentSourcedId" => |s, c| c.opt_into(&mut s.parent),
    "schoolYear" => |s, c| c.opt_into(&mut s.school_year),
});

simple_csv_record!(Course, required: &["sourcedId", "title"], {
    "schoolYearSourcedId" => |s, c| c.opt_into(&mut s.school_year),
    "title" => |s, c| c.text_into(&mut s.title),
    "courseCode" => |s, c| c.opt_into(&mut s.course_code),
    "grades" => |s, c| c.list_into(&mut s.grades),
    "orgSourcedId" => |s, c| c.opt_into(&mut s.org),
    "subjects" => |s, c| c.list_into(&mut s.subjects),
    "subjectCodes" => |s, c| c.list_into(&mut s.subject_codes),
});

simple_csv_record!(Class, required: &["sourcedId", "title", "schoolSourcedId"], {
    "title" => |s, c| c.text_into(&mut s.title),
    "grades" => |s, c| c.list_into(&mut s.grades),
    "courseSourcedId" => |s, c| c.opt_into(&mut s.course),
    "classCode" => |s, c| c.opt_into(&mut s.class_code),
    "classType" => |s, c| s.class_type = c.open(ClassType::read),
    "location" => |s, c| c.opt_into(&mut s.location),
    "schoolSourcedId" => |s, c| c.opt_into(&mut s.school),
    "termSourcedIds" => |s, c| c.list_into(&mut s.terms),
    "subjects" => |s, c| c.list_into(&mut s.subjects),
    "subjectCodes" => |s, c| c.list_into(&mut s.subject_codes),
    "periods" => |s, c| c.list_into(&mut s.periods),
});

simple_csv_record!(Enrollment, required: &["sourcedId", "classSourcedId", "userSourcedId", "role"], {
    "classSourcedId" => |s, c| c.opt_into(&mut s.class),
    "schoolSourcedId" => |s, c| c.opt_into(&mut s.school),
    "userSourcedId" => |s, c| c.opt_into(&mut s.user),
    "role" => |s, c| s.role = c.open(Role::read),
    "primary" => |s, c| s.primary = c.boolean(),
    "beginDate" => |s, c| s.begin_date = c.date(),
    "endDate" => |s, c| s.end_date = c.date(),
});

/// The columns of `enrollments.csv` [`EnrollmentCore`] reads; the others of the standard
/// are passed over.
impl CsvRecord for EnrollmentCore {
    const COLUMNS: &'static [&'static str] = Enrollment::COLUMNS;
    type Pending = ();
    type Context = ();
    fn required_columns(version: Version) -> &'static [&'static str] {
        Enrollment::required_columns(version)
    }
    fn load_context(_: &mut CsvPackage, _: &mut CollectionReport) -> Result<(), PackageError> {
        Ok(())
    }
    fn setter(column: &str) -> Option<Setter<Self>> {
        let f: Setter<Self> = match column {
            "classSourcedId" => |s, c, _| c.opt_into(&mut s.class),
            "userSourcedId" => |s, c, _| c.opt_into(&mut s.user),
            "role" => |s, c, _| s.role = c.open(Role::read),
            _ => return None,
        };
        Some(f)
    }
}

simple_csv_record!(Demographic, required: &["sourcedId"], {
    "birthDate" => |s, c| s.birth_date = c.date(),
    "sex" => |s, c| c.opt_into(&mut s.sex),
});
