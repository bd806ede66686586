//! An in-place heap sort: a few hundred bytes of wasm, where the standard library's sorts would
//! add kilobytes (every visitor downloads every byte). O(n log n), not stable: callers sort by a
//! total order, under which equal elements are interchangeable.

#[allow(unused_imports)]
use crate::core::prelude::*;

/// Sorts `v` in place by `less` (a strict weak order).
pub fn sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n, &less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end, &less);
    }
}

fn sift<T>(v: &mut [T], mut root: usize, end: usize, less: &impl Fn(&T, &T) -> bool) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(&v[child], &v[child + 1]) {
            child += 1;
        }
        if !less(&v[root], &v[child]) {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_sort() {
        let mut seed = 12345u64;
        for n in [0usize, 1, 2, 3, 7, 64, 257, 1000] {
            let mut v: Vec<u32> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 40) as u32 % 50
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            sort_by(&mut v, |a, b| a < b);
            assert_eq!(v, want, "n = {n}");
        }
    }
}
