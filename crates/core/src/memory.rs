//! A directory held in memory, with the reference meaning of applying a plan.
//!
//! The stores implement `apply` against a database; this is the same thing over a few
//! maps, small enough to read in one sitting. Tests use it as the oracle, and property
//! tests use it to check that planning after applying finds nothing left to do.

use std::collections::BTreeMap;

use crate::directory::{AliasKind, DirUser, Link, UserId, Writer};
use crate::plan::{Outcome, Plan};
use crate::view::DirectoryView;

#[derive(Debug, Clone, Default)]
pub struct MemoryDirectory {
    pub users: BTreeMap<UserId, DirUser>,
    /// (source, sourcedId) → link.
    pub links: BTreeMap<(String, String), Link>,
    pub aliases: Vec<(UserId, AliasKind, String)>,
    next_id: UserId,
}

impl MemoryDirectory {
    pub fn add_user(&mut self, mut u: DirUser) -> UserId {
        self.next_id = self
            .next_id
            .max(u.id)
            .max(self.users.keys().max().copied().unwrap_or(0))
            + 1;
        if u.id == 0 {
            u.id = self.next_id;
        }
        let id = u.id;
        self.users.insert(id, u);
        id
    }

    pub fn view(&self, source: &str) -> DirectoryView {
        DirectoryView::new(
            self.users.values().cloned().collect(),
            self.links
                .iter()
                .filter(|((s, _), _)| s == source)
                .map(|(_, l)| l.clone())
                .collect(),
            self.aliases.clone(),
        )
    }

    /// Applies a plan: the reference semantics every store must match.
    pub fn apply(&mut self, plan: &Plan, now: jiff::Timestamp) {
        let me = Writer::Source(plan.source.clone());
        for item in plan.writes() {
            let user_id = match (item.outcome, item.user_id) {
                (Outcome::Created, _) => {
                    let Some(new) = &item.new_account else {
                        continue;
                    };
                    let mut u = DirUser::blank(0);
                    u.user_type = new.user_type;
                    u.access = new.access;
                    u.active = new.active;
                    u.provider = Some("sis".into());
                    u.revision = 0;
                    self.add_user(u)
                }
                (_, Some(id)) => id,
                (_, None) => continue,
            };
            let Some(user) = self.users.get_mut(&user_id) else {
                continue;
            };
            for c in &item.changes {
                user.set(c.field, c.new.clone());
                user.provenance.retain(|(f, _)| *f != c.field);
                user.provenance.push((c.field, me.clone()));
            }
            if !item.changes.is_empty() || item.outcome == Outcome::Created {
                user.revision += 1;
            }
            if let Some(l) = &item.link {
                let key = (plan.source.clone(), item.sourced_id.clone());
                let linked_at = self.links.get(&key).map_or(now, |old| old.linked_at);
                self.links.insert(
                    key,
                    Link {
                        sourced_id: item.sourced_id.clone(),
                        user_id,
                        rule: l.rule,
                        record_hash: l.record_hash,
                        synced_revision: user.revision,
                        linked_at,
                    },
                );
            }
        }
    }
}
