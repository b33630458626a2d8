//! Who a pull has, without a set of them.

use crate::sis::SisPerson;
use crate::view::ViewLink;

/// The sourcedIds of a pull: the people in sourcedId order, found by binary search or
/// walked beside the links (which a view holds in the same order). A set of them would
/// cost ~24 bytes a person.
#[derive(Clone, Copy)]
pub(super) struct Present<'a> {
    pub(super) people: &'a [SisPerson],
    /// Indexes into `people`, by sourcedId, no two alike.
    pub(super) order: &'a [usize],
}

impl<'a> Present<'a> {
    pub(super) fn contains(&self, sourced_id: &str) -> bool {
        self.order
            .binary_search_by(|&i| self.people[i].sourced_id().cmp(sourced_id))
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
            while next < self.order.len() && self.people[self.order[next]].sourced_id() < id {
                next += 1;
            }
            !(next < self.order.len() && self.people[self.order[next]].sourced_id() == id)
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
        let present = Present {
            people: &people,
            order: &order,
        };
        assert!(present.contains("d") && !present.contains("c") && !present.contains(""));
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
        let nobody = Present {
            people: &people,
            order: &[],
        };
        assert_eq!(nobody.absent(sorted.iter()).count(), sorted.len());
    }
}
