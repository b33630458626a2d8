//! Many short strings in one allocation. A sync holds millions of people and records, each
//! a dozen short strings: as `String`s that is a dozen allocations and 24 bytes of header
//! apiece; here it is one string holding them all and where each ends.

use std::ops::Range;

/// Strings packed end to end: first the slots (optional ones told apart from empty ones),
/// then any number of items (a person's orgs, a record's classes).
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Texts {
    text: Box<str>,
    /// Where each string ends in `text`: a `u16` each when the text is shorter than
    /// 64 KiB (a person's or a record's strings always are: 28 bytes a person instead of
    /// 56), else two each, low half first ([`WIDE`]).
    ends: Box<[u16]>,
    /// Which slots hold a value (bit `1 << slot`), and [`WIDE`].
    present: u32,
}

/// The bit of `present` that says the ends take two `u16`s each (no slot uses it).
const WIDE: u32 = 1 << 31;

impl Texts {
    /// Packs `slots` (at most 31) then `items`.
    pub(crate) fn new<'s>(
        slots: &[Option<&str>],
        items: impl Iterator<Item = &'s str> + Clone,
    ) -> Texts {
        debug_assert!(slots.len() < 32);
        let len = slots.iter().flatten().map(|s| s.len()).sum::<usize>()
            + items.clone().map(str::len).sum::<usize>();
        let wide = len > usize::from(u16::MAX);
        let mut text = String::with_capacity(len);
        let count = slots.len() + items.size_hint().0;
        let mut ends = Vec::with_capacity(if wide { 2 * count } else { count });
        let mut present = if wide { WIDE } else { 0 };
        let mut push = |text: &String| {
            let end = end(text);
            if wide {
                ends.extend([end as u16, (end >> 16) as u16]);
            } else {
                ends.push(end as u16);
            }
        };
        for (i, s) in slots.iter().enumerate() {
            if s.is_some() {
                present |= 1 << i;
            }
            text.push_str(s.unwrap_or(""));
            push(&text);
        }
        for s in items {
            text.push_str(s);
            push(&text);
        }
        Texts {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            present,
        }
    }

    /// Where the `i`th string ends.
    fn end(&self, i: usize) -> usize {
        if self.present & WIDE == 0 {
            usize::from(self.ends[i])
        } else {
            usize::from(self.ends[2 * i]) | usize::from(self.ends[2 * i + 1]) << 16
        }
    }

    /// The `i`th string (a slot's value, empty for `None`, or an item).
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        &self.text[start..self.end(i)]
    }

    /// Slot `i`, `None` when it was packed as `None`.
    pub(crate) fn opt(&self, i: usize) -> Option<&str> {
        (self.present & (1 << i) != 0).then(|| self.get(i))
    }

    /// How many strings: slots and items.
    pub(crate) fn len(&self) -> usize {
        if self.present & WIDE == 0 {
            self.ends.len()
        } else {
            self.ends.len() / 2
        }
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

    /// A text of 64 KiB or more keeps its ends in two halves each; either way every
    /// string comes back, at the boundary too.
    #[test]
    fn a_long_text_comes_back_whole() {
        let long = "é".repeat(40_000);
        for total in [65_534, 65_535, 65_536, 65_537, 200_000] {
            // A slot of one byte, then items of 1 000 bytes and one making the text
            // `total - 1` bytes long.
            let items: Vec<String> = (0..(total - 2) / 1_000)
                .map(|i| char::from(b'a' + (i % 26) as u8).to_string().repeat(1_000))
                .chain([String::from("z").repeat((total - 2) % 1_000)])
                .collect();
            let t = Texts::new(&[Some("s"), None], items.iter().map(String::as_str));
            assert_eq!(t.len(), 2 + items.len());
            assert_eq!(t.text.len(), 1 + total - 2, "{total}");
            assert_eq!(t.present & WIDE != 0, 1 + total - 2 > 65_535, "{total}");
            assert_eq!((t.opt(0), t.opt(1)), (Some("s"), None));
            assert!(t.range(2..t.len()).eq(items.iter().map(String::as_str)));
        }
        let t = Texts::new(&[Some(&long)], [long.as_str(), "x"].into_iter());
        assert_eq!(t.range(0..3).collect::<Vec<_>>(), [&long, &long, "x"]);
    }
}
