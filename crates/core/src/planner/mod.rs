//! Planning: from a snapshot of SIS people and the directory, every change a sync would
//! make. Pure: the same inputs give the same plan; time comes in as `PlanInput::now`.
//!
//! The order of decisions, per person: role and import switch → correlation (link, alias,
//! translated email, username@domain, identifier) → create, or update the linked account's
//! fields under the field rules → active state and access level (deactivate, reactivate,
//! never lower an agent) → link state. Then, on a complete full pull only, linked people
//! missing from it; then groups, relationships and calendars.
//!
//! Three parts: `keys` (the match keys a person is looked up by), `correlate` (which
//! account, if any, each SIS person is) and `decide` (what to do about each person, and
//! the plan around it).

mod correlate;
mod decide;
mod halves;
mod keys;
mod memo;
mod present;

pub use decide::{Intake, PeopleAhead, intake, intake_ahead, plan, settings_fingerprint};

/// Past one person in this many of what the directory holds, reading it all beats a
/// lookup per person: a full pull then reads every account
/// ([`Intake::accounts_needed`], and an account source's full read), and a delta every
/// link, as a full pull does.
pub const WIDE_SHARE: u64 = 8;
pub use keys::{directory_email, translate_email, view_keys};

/// The links among `links` whose sourcedId none of `people` has: `order` is the people's
/// sourcedId order ([`crate::roster::id_order`], as [`PeopleAhead::order`] gives it), and
/// links in that order (as a view gives them) are walked beside it.
pub fn absent_links<'p, 'l, L: Iterator<Item = &'l crate::view::ViewLink>>(
    people: &'p [crate::sis::SisPerson],
    order: &'p [u32],
    links: L,
) -> impl Iterator<Item = &'l crate::view::ViewLink> + use<'p, 'l, L> {
    present::Present::new(people, order).absent(links)
}
