//! Work split over the machine's cores for the CPU-bound steps of a cold `generate` (hashing
//! and scanning a release's files): plain scoped threads, results in input order.

/// How many threads to use for `bytes` of work: one below 64 KiB (threads cost more than they
/// save there), else every core up to 8.
#[must_use]
pub fn threads_for(bytes: usize) -> usize {
    if bytes < 64 * 1024 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
}

/// Runs `f` over `items` in up to `threads` contiguous chunks at once, and returns the
/// results in the order of the chunks. A panic in `f` is resumed in the caller.
pub fn chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    if items.len() <= chunk {
        return vec![f(items)];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| scope.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_input_order_whatever_the_split() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in [1, 2, 3, 7, 2000] {
            let sums = chunks(&items, threads, <[u32]>::to_vec);
            assert_eq!(sums.concat(), items, "{threads} threads");
            assert!(sums.len() <= threads.max(1));
        }
        assert_eq!(chunks(&[] as &[u32], 4, <[u32]>::len), vec![0]);
    }

    #[test]
    fn small_work_runs_on_one_thread() {
        assert_eq!(threads_for(1000), 1);
        assert!(threads_for(10 << 20) >= 1);
    }
}
