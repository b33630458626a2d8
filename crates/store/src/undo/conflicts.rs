//! The second phase of an undo: the conflicts, every one listed, that refuse it — a link
//! the run made or changed that is not as it left it or that a later run changed, an
//! account gone, merged or changed again since, a field not as the run left it.

use std::collections::BTreeSet;

use super::{Done, Rev, current_value};
use crate::{Result, StoreError};

fn by_whom(r: &Rev) -> String {
    match r.run {
        Some(run) => format!("run {run}"),
        None => format!("{} at {}", r.writer, r.at),
    }
}

fn value_words(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("'{v}'"),
        None => "empty".to_owned(),
    }
}

/// `Conflicts`, listing every one, when later changes touch what the undo would restore.
pub(super) fn check_conflicts(done: &Done) -> Result<()> {
    let mut conflicts: Vec<String> = Vec::new();
    link_conflicts(done, &mut conflicts);
    account_conflicts(done, &mut conflicts);
    if !conflicts.is_empty() {
        let run = done.run;
        return Err(StoreError::Conflicts {
            message: format!(
                "run {run} cannot be undone: later changes touch what it would restore: {}. \
                 Undo the later runs first, or put these right by hand",
                conflicts.join("; ")
            ),
            conflicts,
        });
    }
    Ok(())
}

/// The links the run made or changed that are not as it left them, or that a later run
/// changed; the accounts it created that were linked since in another source.
fn link_conflicts(done: &Done, conflicts: &mut Vec<String>) {
    let (run, source) = (done.run, done.source);
    let (links_now, later_runs) = (&done.links_now, &done.later_runs);
    for i in &done.items {
        if !i.touches_link() {
            continue;
        }
        match links_now.get(&i.sourced_id) {
            Some(u) if *u == i.user => {}
            Some(u) => conflicts.push(format!(
                "SIS person {} of source {source} is linked to account #{u} now, not #{} as run {run} left it",
                i.sourced_id, i.user
            )),
            None => conflicts.push(format!(
                "SIS person {} of source {source} is no longer linked to account #{} as run {run} left it",
                i.sourced_id, i.user
            )),
        }
        if let Some((later, outcome)) = later_runs.get(&i.sourced_id) {
            conflicts.push(format!(
                "the link of SIS person {} was changed again by run {later} ({outcome})",
                i.sourced_id
            ));
        }
        if let Some(old) = i.before.as_ref().and_then(|b| b.replaced.as_ref()) {
            if let Some(u) = links_now.get(&old.sourced_id) {
                conflicts.push(format!(
                    "SIS person {} (the old sourcedId of {}) is linked to account #{u} again",
                    old.sourced_id, i.sourced_id
                ));
            }
            if let Some((later, outcome)) = later_runs.get(&old.sourced_id) {
                conflicts.push(format!(
                    "the link of SIS person {} was changed again by run {later} ({outcome})",
                    old.sourced_id
                ));
            }
        }
        if let Some(others) = done.other_links.get(&i.user) {
            conflicts.push(format!(
                "account #{} that run {run} created was linked since to {}",
                i.user,
                others.join(", ")
            ));
        }
    }
}

/// The accounts gone or merged, changed again since the run (a field it changed, the
/// state of one it created, the link of one whose link it changed), or with another
/// account merged into them, or whose fields are not as the run left them.
fn account_conflicts(done: &Done, conflicts: &mut Vec<String>) {
    let (run, mark) = (done.run, done.mark);
    let cancelled = |r: &Rev| {
        r.run.is_some_and(|x| done.later_undos.runs.contains(&x))
            || done
                .later_undos
                .ranges
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&r.id))
    };
    for user in &done.users {
        let Some(cur) = done.current.get(user) else {
            conflicts.push(format!("account #{user} no longer exists"));
            continue;
        };
        if let Some(survivor) = cur.user.merged_into {
            conflicts.push(format!(
                "account #{user} was merged into account #{survivor}"
            ));
            continue;
        }
        let fields = done.changed.get(user);
        let mut watched: BTreeSet<&str> = fields
            .map(|f| f.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if done.created_set.contains(user) {
            watched.extend(["active", "access"]);
        }
        if done.link_users.contains(user) {
            watched.insert("sis_link");
        }
        let mut reported: BTreeSet<&str> = BTreeSet::new();
        for r in done.history.get(user).into_iter().flatten() {
            if r.id <= mark || r.run == Some(run) || cancelled(r) {
                continue;
            }
            if r.field == "merged" {
                conflicts.push(format!(
                    "account #{user} had another account merged into it by {}",
                    by_whom(r)
                ));
            } else if let Some(f) = watched.get(r.field.as_str())
                && reported.insert(f)
            {
                let what = if *f == "sis_link" {
                    format!(
                        "account #{user}'s SIS link was changed again by {}",
                        by_whom(r)
                    )
                } else {
                    format!("account #{user} {f} was changed again by {}", by_whom(r))
                };
                conflicts.push(what);
            }
        }
        for (f, c) in fields.into_iter().flatten() {
            if reported.contains(f.as_str()) {
                continue;
            }
            let now_value = current_value(&cur.user, f);
            if now_value != c.new {
                conflicts.push(format!(
                    "account #{user} {f} is {} now, not {} as run {run} left it",
                    value_words(now_value.as_deref()),
                    value_words(c.new.as_deref())
                ));
            }
        }
    }
}
