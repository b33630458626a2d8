//! The people a pull has, in sourcedId order, without a copy or a set of them.

use crate::sis::SisPerson;
use crate::view::ViewLink;

/// A run's people in sourcedId order, each sourcedId once: their places in the pull
/// ([`crate::roster::id_order`], 4 bytes a person where references to them took 8 beside
/// an order of 8). Who is present is found by binary search, or by walking beside the
/// links (which a view holds in the same order); a set would cost ~24 bytes a person.
#[derive(Clone, Copy)]
pub(super) struct Present<'a> {
    people: &'a [SisPerson],
    /// Indexes into `people`, by sourcedId, no two alike.
    order: &'a [u32],
}

impl<'a> Present<'a> {
    pub(super) fn new(people: &'a [SisPerson], order: &'a [u32]) -> Present<'a> {
        Present { people, order }
    }

    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// The `i`th person in sourcedId order.
    pub(super) fn get(&self, i: usize) -> &'a SisPerson {
        &self.people[self.order[i] as usize]
    }

    /// Their place in the pull (what the roster's enrollments and the intake's
    /// derivations are indexed by).
    pub(super) fn place(&self, i: usize) -> usize {
        self.order[i] as usize
    }

    pub(super) fn iter(&self) -> impl ExactSizeIterator<Item = &'a SisPerson> + Clone + 'a {
        let people = self.people;
        self.order.iter().map(move |&i| &people[i as usize])
    }

    pub(super) fn contains(&self, sourced_id: &str) -> bool {
        self.order
            .binary_search_by(|&i| self.people[i as usize].sourced_id().cmp(sourced_id))
            .is_ok()
    }

    /// The links among `links` whose sourcedId is not present: one walk over both when
    /// the links come in sourcedId order (as [`crate::view::DirectoryView::links`] gives
    /// them); a link out of that order is searched for instead.
    pub(super) fn absent<'l>(
        self,
        links: impl Iterator<Item = &'l ViewLink>,
    ) -> impl Iterator<Item = &'l ViewLink> {
        let mut next = 0;
        let mut last: Option<&'l str> = None;
        links.filter(move |l| {
            let id = &*l.sourced_id;
            if last.is_some_and(|before| before >= id) {
                return !self.contains(id);
            }
            last = Some(id);
            while next < self.len() && self.get(next).sourced_id() < id {
                next += 1;
            }
            !(next < self.len() && self.get(next).sourced_id() == id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{AccountId, Link, MatchRule};
    use crate::sis::PersonFields;
    use crate::view::LinkNames;

    fn person(id: &str) -> SisPerson {
        SisPerson::new(PersonFields {
            sourced_id: id.to_owned(),
            ..PersonFields::default()
        })
    }

    fn link(id: &str) -> ViewLink {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let l = Link::new(id, AccountId(1), MatchRule::Created, at);
        ViewLink::new(l, None, &mut LinkNames::default())
    }

    #[test]
    fn the_absent_are_the_links_no_person_has_in_order_or_not() {
        let people: Vec<SisPerson> = ["b", "d", "a", "f"].into_iter().map(person).collect();
        let order = [2, 0, 1, 3];
        let present = Present::new(&people, &order);
        assert!(present.contains("d") && !present.contains("c") && !present.contains(""));
        assert_eq!(present.len(), 4);
        assert_eq!(present.get(1).sourced_id(), "b");
        assert_eq!(present.place(1), 0);
        let ids: Vec<&str> = present.iter().map(SisPerson::sourced_id).collect();
        assert_eq!(ids, ["a", "b", "d", "f"]);
        let ids = |links: &[ViewLink]| -> Vec<String> {
            present
                .absent(links.iter())
                .map(|l| l.sourced_id.to_string())
                .collect()
        };
        let sorted: Vec<ViewLink> = ["0", "a", "c", "d", "e", "f", "g"]
            .into_iter()
            .map(link)
            .collect();
        assert_eq!(ids(&sorted), ["0", "c", "e", "g"]);
        // Out of order (never from a view, which keeps them sorted): the same answer.
        let shuffled: Vec<ViewLink> = ["e", "a", "g", "c", "f", "0", "d"]
            .into_iter()
            .map(link)
            .collect();
        assert_eq!(ids(&shuffled), ["e", "g", "c", "0"]);
        assert!(ids(&[]).is_empty());
        let nobody = Present::new(&people, &[]);
        assert_eq!(nobody.absent(sorted.iter()).count(), sorted.len());
    }
}
