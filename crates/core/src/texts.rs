//! Many short strings in one allocation. A sync holds millions of people and records, each
//! a dozen short strings: as `String`s that is a dozen allocations and 24 bytes of header
//! apiece; here it is one string holding them all and where each ends.

use std::ops::Range;

/// Strings packed end to end: first the slots (optional ones told apart from empty ones),
/// then any number of items (a person's orgs, a record's classes).
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Texts {
    text: Box<str>,
    /// Where each string ends in `text`.
    ends: Box<[u32]>,
    /// Which slots hold a value (bit `1 << slot`).
    present: u32,
}

impl Texts {
    /// Packs `slots` (at most 32) then `items`.
    pub(crate) fn new<'s>(
        slots: &[Option<&str>],
        items: impl Iterator<Item = &'s str> + Clone,
    ) -> Texts {
        debug_assert!(slots.len() <= 32);
        let len = slots.iter().flatten().map(|s| s.len()).sum::<usize>()
            + items.clone().map(str::len).sum::<usize>();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(slots.len() + items.size_hint().0);
        let mut present = 0u32;
        for (i, s) in slots.iter().enumerate() {
            if s.is_some() {
                present |= 1 << i;
            }
            text.push_str(s.unwrap_or(""));
            ends.push(end(&text));
        }
        for s in items {
            text.push_str(s);
            ends.push(end(&text));
        }
        Texts {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            present,
        }
    }

    /// The `i`th string (a slot's value, empty for `None`, or an item).
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    /// Slot `i`, `None` when it was packed as `None`.
    pub(crate) fn opt(&self, i: usize) -> Option<&str> {
        (self.present & (1 << i) != 0).then(|| self.get(i))
    }

    /// How many strings: slots and items.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The strings `range` covers.
    pub(crate) fn range(&self, range: Range<usize>) -> impl ExactSizeIterator<Item = &str> + Clone {
        range.map(|i| self.get(i))
    }
}

/// Where the text ends now: a person's or a record's strings, and a district's guardian
/// pairs ([`crate::roster::Pairs`], ~60 MB at three million people), are far below 4 GiB,
/// so a longer text (which cannot come from a SIS) saturates instead of wrapping.
fn end(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_items_come_back() {
        let t = Texts::new(
            &[Some("a"), None, Some(""), Some("ünï")],
            ["x", "", "yz"].into_iter(),
        );
        assert_eq!(t.len(), 7);
        assert_eq!(
            (t.opt(0), t.opt(1), t.opt(2), t.opt(3)),
            (Some("a"), None, Some(""), Some("ünï"))
        );
        assert_eq!(t.range(4..7).collect::<Vec<_>>(), ["x", "", "yz"]);
        let empty = Texts::new(&[], std::iter::empty());
        assert_eq!(empty.len(), 0);
    }
}
