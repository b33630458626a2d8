//! `rostersync users list|show`.

use clap::Subcommand;
use rostersync_core::directory::{Access, UserType};
use rostersync_core::user_list::{ListCursor, ListSpec, UserSort};
use serde_json::{Value, json};
use store::{Store, UserQuery, UserRecord};

use crate::env::{StateArgs, store_failure};
use crate::{Failure, listing, output};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List accounts, ordered by id (or --sort): every match, unless --limit says how many.
    List {
        /// Start from this saved view's filters and sort (the console's Saved views);
        /// the filters given here replace the view's.
        #[arg(long)]
        view: Option<String>,
        /// Only accounts with a SIS link.
        #[arg(long, conflicts_with = "unlinked")]
        linked: bool,
        /// Only accounts without a SIS link.
        #[arg(long)]
        unlinked: bool,
        /// Only active (or, with --inactive, inactive) accounts.
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        #[arg(long)]
        inactive: bool,
        /// student, faculty, staff, guardian, other.
        #[arg(long = "type", value_parser = parse_type)]
        user_type: Option<UserType>,
        /// Part of a name, email or username.
        #[arg(long)]
        search: Option<String>,
        /// Only this grade, however it is spelled (5, 05 and Grade 5 are one grade; K, KG
        /// and Kindergarten another).
        #[arg(long)]
        grade: Option<String>,
        /// Only this homeroom (upper or lower case alike).
        #[arg(long)]
        homeroom: Option<String>,
        /// Only this location (upper or lower case alike).
        #[arg(long)]
        location: Option<String>,
        /// Order by id, name, email, username, type, grade, homeroom, location or status;
        /// a leading - sorts descending (--sort=-name). Accounts with no value come last.
        #[arg(long, allow_hyphen_values = true)]
        sort: Option<String>,
        /// Accounts after this one: an id, or the ID:VALUE a cut list's note gives.
        #[arg(long)]
        after: Option<String>,
        /// Print only how many accounts match.
        #[arg(long, conflicts_with_all = ["csv", "after", "limit"])]
        count: bool,
        /// Print CSV (the console's Download CSV columns) instead of text.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// At most this many (0: every match, the default); stderr says when more match.
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// The saved views of the users list (the console's Saved views), by name.
    Views {
        #[arg(long)]
        json: bool,
    },
    /// One account with its history: by id, email or username.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Set an account's help-desk access level (requestor, agent, admin, no-access).
    SetAccess {
        user: String,
        #[arg(value_parser = parse_access)]
        access: Access,
    },
}

fn parse_access(s: &str) -> Result<Access, String> {
    s.parse()
}

fn parse_type(s: &str) -> Result<UserType, String> {
    s.parse()
}

/// One account as a line of the text list.
fn user_line(r: &UserRecord) -> String {
    let u = &r.user;
    let name = format!(
        "{} {}",
        u.first_name.as_deref().unwrap_or(""),
        u.last_name.as_deref().unwrap_or("")
    );
    format!(
        "{:>8}  {:<32} {:<24} {:<9} {:<6} {}",
        u.id,
        u.email.as_deref().unwrap_or("-"),
        name.trim(),
        u.user_type.as_str(),
        if u.active { "yes" } else { "no" },
        r.sis
            .as_ref()
            .map_or("-".to_owned(), |s| format!("{}:{}", s.source, s.sourced_id))
    )
}

pub fn run(state_args: &StateArgs, cmd: UsersCommand) -> Result<u8, Failure> {
    let state = state_args.open()?;
    match cmd {
        UsersCommand::List {
            view,
            linked,
            unlinked,
            active,
            inactive,
            user_type,
            search,
            grade,
            homeroom,
            location,
            sort,
            after,
            count,
            csv,
            limit,
            json,
        } => {
            let mut spec = match view {
                Some(name) => saved_view(&state.store, &name)?,
                None => ListSpec::default(),
            };
            if linked {
                spec.linked = Some(true);
            } else if unlinked {
                spec.linked = Some(false);
            }
            if active {
                spec.active = Some(true);
            } else if inactive {
                spec.active = Some(false);
            }
            let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
            spec.user_type = user_type.or(spec.user_type);
            spec.search = given(search).or(spec.search);
            spec.grade = given(grade).or(spec.grade);
            spec.homeroom = given(homeroom).or(spec.homeroom);
            spec.location = given(location).or(spec.location);
            if let Some(s) = sort {
                spec.sort = UserSort::parse(&s).map_err(|e| Failure {
                    code: 2,
                    message: format!("--sort: {e}"),
                })?;
            }
            let after = after
                .map(|a| ListCursor::parse(&a))
                .transpose()
                .map_err(|e| Failure {
                    code: 2,
                    message: format!("--{e}"),
                })?;
            let base = UserQuery::from_spec(&spec, 0);
            if count {
                let n = state
                    .store
                    .count_listed_users(&base)
                    .map_err(store_failure)?;
                if json {
                    output::json(&json!({ "total": n }));
                } else {
                    output::line(&n.to_string());
                }
                return Ok(0);
            }
            let limit = listing::limit(limit);
            let mut list = output::List::new(json);
            if csv {
                list.line(server::csv_header().trim_end());
            } else if !json {
                list.line(&format!(
                    "{:>8}  {:<32} {:<24} {:<9} {:<6} {}",
                    "id", "email", "name", "type", "active", "sis"
                ));
            }
            let sort_by = spec.sort;
            let printed = listing::print_pages(
                limit,
                listing::PAGE,
                after,
                |after, n| {
                    let mut query = base.clone().starting_after(after.cloned());
                    query.limit = n;
                    state.store.list_users(&query).map_err(store_failure)
                },
                |r| ListCursor::after(sort_by, &r.user),
                |r| {
                    if csv {
                        list.line(server::csv_line(r).trim_end_matches(['\r', '\n']));
                    } else if json {
                        list.item(&r.to_json());
                    } else {
                        list.line(&user_line(r));
                    }
                },
            )?;
            list.finish();
            if let Some(last) = printed.cut_after {
                listing::note_cut(
                    printed.rows,
                    "accounts",
                    &format!(
                        "the same command with --after {} --limit {}",
                        shell_word(&last.to_string()),
                        limit.unwrap_or(0)
                    ),
                );
            }
            Ok(0)
        }
        UsersCommand::Views { json } => {
            let views = state.store.saved_views().map_err(store_failure)?;
            let mut list = output::List::new(json);
            for v in &views {
                let spec = v.spec().map_err(store_failure)?;
                if json {
                    let params: Value = serde_json::from_str(&v.params).unwrap_or_default();
                    list.item(&json!({
                        "id": v.id,
                        "name": v.name,
                        "params": params,
                        "description": spec.describe(),
                        "saved_by": v.saved_by,
                        "saved_at": v.saved_at,
                    }));
                } else {
                    list.line(&format!("{:>5}  {:<32} {}", v.id, v.name, spec.describe()));
                }
            }
            list.finish();
            Ok(0)
        }
        UsersCommand::SetAccess { user, access } => {
            let record = crate::links::find(&state.store, &user)?;
            state
                .store
                .set_access(
                    record.user.id,
                    access,
                    &crate::config_cmd::cli_actor(),
                    jiff::Timestamp::now(),
                )
                .map_err(store_failure)?;
            output::line(&format!(
                "account #{} now has {access} access",
                record.user.id
            ));
            Ok(0)
        }
        UsersCommand::Show { user, json } => {
            let record = state
                .store
                .find_user(&user)
                .map_err(store_failure)?
                .ok_or_else(|| Failure {
                    code: 2,
                    message: format!("no account matches '{user}' (give an id, email or username)"),
                })?;
            let revisions = state
                .store
                .user_revisions(record.user.id)
                .map_err(store_failure)?;
            let id = record.user.id;
            let groups = state.store.user_groups(id).map_err(store_failure)?;
            let cards = state.store.sis_card(id).map_err(store_failure)?;
            let family = state.store.guardianships(id).map_err(store_failure)?;
            let aliases = state.store.user_aliases(id).map_err(store_failure)?;
            if json {
                // The SIS link's card (an account source's card is not the SIS's).
                let sis_card = record.sis.as_ref().and_then(|l| {
                    cards
                        .iter()
                        .find(|c| c.source == l.source && c.sourced_id == l.sourced_id)
                });
                let doc = output::with_fields(
                    &UserRecord::to_json(&record),
                    [
                        ("revisions", output::to_value(&revisions)),
                        ("groups", output::to_value(&groups)),
                        ("aliases", output::to_value(&aliases)),
                        ("sis_card", output::to_value(&sis_card)),
                        ("sis_cards", output::to_value(&cards)),
                        ("students", output::to_value(&family.students)),
                        ("guardians", output::to_value(&family.guardians)),
                    ],
                );
                output::json(&doc);
            } else {
                let doc = UserRecord::to_json(&record);
                if let Some(o) = doc.as_object() {
                    for (k, v) in o {
                        let v = match v {
                            Value::Null => "-".to_owned(),
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        output::line(&format!("{k:>15}: {v}"));
                    }
                }
                output::line(&format!("{:>15}: {}", "groups", groups.join(", ")));
                for r in &family.students {
                    output::line(&format!("{:>15}: #{} {}", "student", r.id, r.name));
                }
                for r in &family.guardians {
                    output::line(&format!("{:>15}: #{} {}", "guardian", r.id, r.name));
                }
                for card in &cards {
                    output::line(&format!(
                        "SIS card ({}): {}",
                        card.source,
                        serde_json::to_string(card).unwrap_or_default()
                    ));
                }
                output::line("revisions:");
                for r in &revisions {
                    output::line(&format!(
                        "  {}  {:<14} {} → {}  by {}{}",
                        r.at,
                        r.field,
                        r.old.as_deref().unwrap_or("∅"),
                        r.new.as_deref().unwrap_or("∅"),
                        r.writer,
                        r.run.map_or(String::new(), |run| format!(" (run {run})"))
                    ));
                }
            }
            Ok(0)
        }
    }
}

/// A saved view's filters and sort, by name (upper or lower case alike).
fn saved_view(store: &Store, name: &str) -> Result<ListSpec, Failure> {
    let views = store.saved_views().map_err(store_failure)?;
    let wanted = name.trim().to_lowercase();
    let Some(view) = views.iter().find(|v| v.name.to_lowercase() == wanted) else {
        let known: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        return Err(Failure {
            code: 2,
            message: if known.is_empty() {
                format!(
                    "--view: no saved view '{name}' (none is saved yet: save one on the console's Users page)"
                )
            } else {
                format!(
                    "--view: no saved view '{name}': the saved views are {}",
                    known.join(", ")
                )
            },
        });
    };
    view.spec().map_err(store_failure)
}

/// `s` as one shell word: as it is when it is plain, else in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@/+-".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
