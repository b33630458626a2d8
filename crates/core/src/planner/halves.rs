//! The planner's work per person is independent of everyone else's, and while a run plans
//! nothing else of it runs (the pull is over, the apply not begun): a second core would
//! sit idle. [`map_in_halves`] gives it the second half of a long list, [`both_for`] one
//! of two independent pieces of work over a long list.

/// Below this many items a second thread costs more than it saves.
const ALONE: usize = 4096;

/// `f` of each of `items`, in their order; from [`ALONE`] items the second half is
/// worked on a second thread. A panic in either half is the caller's.
pub(crate) fn map_in_halves<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < ALONE {
        return items.iter().map(&f).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    let (mut out, later) = both(
        || {
            let mut out = Vec::with_capacity(items.len());
            out.extend(first.iter().map(&f));
            out
        },
        || second.iter().map(&f).collect::<Vec<R>>(),
    );
    out.extend(later);
    out
}

/// `here()` and `there()`, both results: for fewer than [`ALONE`] `items` one after the
/// other on this thread, from there as [`both`] does.
pub(crate) fn both_for<A, B: Send>(
    items: usize,
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, B) {
    if items < ALONE {
        (here(), there())
    } else {
        both(here, there)
    }
}

/// `here()` on this thread and `there()` on a second one, both results. A panic in either
/// is the caller's.
pub(crate) fn both<A, B: Send>(
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|s| {
        let there = s.spawn(there);
        let here = here();
        let there = there
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (here, there)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_mapped_once_in_order_whatever_the_length() {
        for n in [0, 1, ALONE - 1, ALONE, ALONE + 1, 3 * ALONE + 7] {
            let items: Vec<u64> = (0..n as u64).collect();
            let mapped = map_in_halves(&items, |x| x * 3 + 1);
            let expected: Vec<u64> = items.iter().map(|x| x * 3 + 1).collect();
            assert_eq!(mapped, expected, "{n} items");
        }
    }

    #[test]
    fn a_short_list_is_worked_on_this_thread_and_a_long_one_on_two() {
        let on = |items: usize| {
            both_for(
                items,
                || std::thread::current().id(),
                || std::thread::current().id(),
            )
        };
        let (here, there) = on(ALONE - 1);
        assert_eq!(here, there, "below ALONE a second thread was started");
        let (here, there) = on(ALONE);
        assert_ne!(
            here, there,
            "from ALONE the second closure ran on this thread"
        );
    }

    #[test]
    fn a_long_list_is_worked_on_two_threads() {
        let items: Vec<u32> = (0..2 * ALONE as u32).collect();
        let threads = map_in_halves(&items, |_| std::thread::current().id());
        assert_eq!(threads.first(), Some(&std::thread::current().id()));
        assert_ne!(
            threads.last(),
            threads.first(),
            "the second half ran on this thread"
        );
    }
}
