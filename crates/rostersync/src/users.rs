//! `rostersync users list|show`.

use clap::Subcommand;
use rostersync_core::directory::{Access, UserType};
use serde_json::{Value, json};
use store::{UserQuery, UserRecord};

use crate::env::{StateArgs, store_failure};
use crate::{Failure, listing, output};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// List accounts, ordered by id: every match, unless --limit says how many.
    List {
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
        /// Only this grade (as the SIS spells it: 05, KG).
        #[arg(long)]
        grade: Option<String>,
        /// Only this homeroom.
        #[arg(long)]
        homeroom: Option<String>,
        /// Only this location.
        #[arg(long)]
        location: Option<String>,
        /// Accounts after this id (paging).
        #[arg(long)]
        after: Option<i64>,
        /// At most this many (0: every match, the default); stderr says when more match.
        #[arg(long)]
        limit: Option<u32>,
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

pub fn user_json(r: &UserRecord) -> Value {
    let u = &r.user;
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "middle_name": u.middle_name,
        "last_name": u.last_name,
        "preferred_name": u.preferred_name,
        "type": u.user_type.as_str(),
        "access": u.access.as_str(),
        "active": u.active,
        "grade": u.grade,
        "identifier": u.identifier,
        "phone": u.phone,
        "location": u.location,
        "homeroom": u.homeroom,
        "provider": u.provider,
        "sis": r.sis,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
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
            linked,
            unlinked,
            active,
            inactive,
            user_type,
            search,
            grade,
            homeroom,
            location,
            after,
            limit,
            json,
        } => {
            let mut query = UserQuery {
                linked: if linked {
                    Some(true)
                } else if unlinked {
                    Some(false)
                } else {
                    None
                },
                active: if active {
                    Some(true)
                } else if inactive {
                    Some(false)
                } else {
                    None
                },
                user_type,
                search,
                grade,
                homeroom,
                location,
                after: None,
                limit: 0,
            };
            let limit = listing::limit(limit);
            let mut list = output::List::new(json);
            if !json {
                list.line(&format!(
                    "{:>8}  {:<32} {:<24} {:<9} {:<6} {}",
                    "id", "email", "name", "type", "active", "sis"
                ));
            }
            let printed = listing::print_pages(
                limit,
                listing::PAGE,
                after,
                |after, n| {
                    query.after = after.copied();
                    query.limit = n;
                    state.store.list_users(&query).map_err(store_failure)
                },
                |r| r.user.id,
                |r| {
                    if json {
                        list.item(&user_json(r));
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
                        "the same command with --after {last} --limit {}",
                        limit.unwrap_or(0)
                    ),
                );
            }
            Ok(0)
        }
        UsersCommand::SetAccess { user, access } => {
            let record = crate::links::find(state.store.as_ref(), &user)?;
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
                let mut doc = user_json(&record);
                if let Some(o) = doc.as_object_mut() {
                    let mut put = |k: &str, v: serde_json::Value| {
                        o.insert(k.to_owned(), v);
                    };
                    put(
                        "revisions",
                        serde_json::to_value(&revisions).unwrap_or_default(),
                    );
                    put("groups", serde_json::to_value(&groups).unwrap_or_default());
                    put(
                        "aliases",
                        serde_json::to_value(&aliases).unwrap_or_default(),
                    );
                    put(
                        "sis_card",
                        serde_json::to_value(cards.first()).unwrap_or_default(),
                    );
                    put(
                        "sis_cards",
                        serde_json::to_value(&cards).unwrap_or_default(),
                    );
                    put(
                        "students",
                        serde_json::to_value(&family.students).unwrap_or_default(),
                    );
                    put(
                        "guardians",
                        serde_json::to_value(&family.guardians).unwrap_or_default(),
                    );
                }
                output::json(&doc);
            } else {
                let doc = user_json(&record);
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
