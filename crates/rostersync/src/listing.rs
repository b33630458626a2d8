//! The list commands' one rule: print every match, unless `--limit` says how many.
//!
//! Lists are read from the store page after page by a keyset cursor (an account id, a run
//! id, a sourcedId), so printing a million accounts holds one page in memory, and each
//! page costs the same however deep it is. With `--limit N` (0 means no limit) at most N
//! rows print, and when the limit cut the list a note on stderr says so and how to ask
//! for the next page; stdout stays the rows alone.

use crate::{Failure, output};

/// Rows read from the store at a time.
pub const PAGE: u32 = 1000;

/// `--limit`: `None` and 0 both mean every match.
pub fn limit(arg: Option<u32>) -> Option<u32> {
    arg.filter(|&n| n > 0)
}

/// What printing a list came to.
pub struct Printed<K> {
    pub rows: u64,
    /// Where the list was cut by the limit: the key of the last row printed (the next
    /// page starts after it); `None` when every match printed.
    pub cut_after: Option<K>,
}

/// Prints a list in key order, `page` rows read at a time from `fetch(after, n)` (up to
/// `n` rows whose key follows `after`; it may give more when rows share a key, as a
/// report's account does). Every row prints, or with `limit` that many, plus any rows
/// sharing the last one's key (a page never splits a key).
pub fn print_pages<T, K: PartialEq + Clone>(
    limit: Option<u32>,
    page: u32,
    start: Option<K>,
    mut fetch: impl FnMut(Option<&K>, u32) -> Result<Vec<T>, Failure>,
    key: impl Fn(&T) -> K,
    mut print: impl FnMut(&T),
) -> Result<Printed<K>, Failure> {
    let page = page.max(1);
    let mut after = start;
    let mut rows = 0u64;
    loop {
        let want = match limit {
            Some(l) => u32::try_from(u64::from(l).saturating_sub(rows))
                .unwrap_or(u32::MAX)
                .min(page),
            None => page,
        };
        // The limit's last page asks for one more row, to learn whether more are left.
        let last_page = limit.is_some_and(|l| rows + u64::from(want) >= u64::from(l));
        let ask = if last_page {
            want.saturating_add(1)
        } else {
            want
        };
        let got = fetch(after.as_ref(), ask)?;
        let full = got.len() >= ask as usize;
        let mut taken = 0u32;
        let mut more = false;
        for row in &got {
            let k = key(row);
            if last_page && taken >= want && after.as_ref() != Some(&k) {
                more = true;
                break;
            }
            print(row);
            taken = taken.saturating_add(1);
            rows += 1;
            after = Some(k);
        }
        if more {
            return Ok(Printed {
                rows,
                cut_after: after,
            });
        }
        if !full {
            return Ok(Printed {
                rows,
                cut_after: None,
            });
        }
        if last_page {
            // Every row read shared the last key: is anything left after it?
            let left = !fetch(after.as_ref(), 1)?.is_empty();
            return Ok(Printed {
                rows,
                cut_after: if left { after } else { None },
            });
        }
    }
}

/// The note on stderr when a limit cut a list: how many printed and how to go on.
pub fn note_cut(printed: u64, what: &str, next: &str) {
    output::note(&format!(
        "note: --limit stopped the list after {printed} {what}; more match. The next page: {next} (leave --limit out to print every one)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows keyed by their value; `fetch` gives those after the key, like the store.
    fn run(rows: &[u32], limit: Option<u32>, page: u32) -> (Vec<u32>, Option<u32>, u32) {
        let mut calls = 0;
        let mut seen = Vec::new();
        let printed = print_pages(
            limit,
            page,
            None,
            |after: Option<&u32>, n| {
                calls += 1;
                // Like a report: rows sharing the last key all come.
                let mut out: Vec<u32> = Vec::new();
                for &r in rows.iter().filter(|&&r| after.is_none_or(|a| r > *a)) {
                    if out.len() >= n as usize && out.last() != Some(&r) {
                        break;
                    }
                    out.push(r);
                }
                Ok(out)
            },
            |r| *r,
            |r| seen.push(*r),
        )
        .map_err(|f| f.message)
        .unwrap();
        assert_eq!(printed.rows as usize, seen.len());
        (seen, printed.cut_after, calls)
    }

    #[test]
    fn every_row_prints_without_a_limit() {
        let rows: Vec<u32> = (1..=25).collect();
        let (seen, cut, calls) = run(&rows, None, 10);
        assert_eq!(seen, rows);
        assert_eq!(cut, None);
        assert_eq!(calls, 3, "pages of 10, 10 and 5");
        let (seen, cut, _) = run(&rows[..20], None, 10);
        assert_eq!((seen.len(), cut), (20, None));
    }

    #[test]
    fn a_limit_stops_the_list_and_says_where() {
        let rows: Vec<u32> = (1..=25).collect();
        let (seen, cut, _) = run(&rows, Some(12), 10);
        assert_eq!(seen, (1..=12).collect::<Vec<_>>());
        assert_eq!(cut, Some(12));
        let (seen, cut, _) = run(&rows, Some(25), 10);
        assert_eq!((seen.len(), cut), (25, None), "exactly all: nothing cut");
        let (seen, cut, _) = run(&rows, Some(30), 10);
        assert_eq!((seen.len(), cut), (25, None));
    }

    #[test]
    fn rows_sharing_a_key_stay_together() {
        let rows = [1, 2, 2, 2, 3, 4];
        let (seen, cut, _) = run(&rows, Some(2), 10);
        assert_eq!(seen, [1, 2, 2, 2]);
        assert_eq!(cut, Some(2));
        let (seen, cut, _) = run(&[1, 2, 2, 2], Some(2), 10);
        assert_eq!(
            (seen, cut),
            (vec![1, 2, 2, 2], None),
            "nothing after the key"
        );
        let (seen, cut, _) = run(&rows, None, 2);
        assert_eq!((seen, cut), (rows.to_vec(), None));
    }
}
