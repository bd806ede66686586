//! An in-place heap sort: a few hundred bytes of wasm, where the standard library's sorts would
//! add kilobytes (every visitor downloads every byte). O(n log n), not stable: callers sort by a
//! total order, under which equal elements are interchangeable. Also insertion into and removal
//! from ordered vectors without the standard ones' index panics, for the same reason.

#[allow(unused_imports)]
use crate::core::prelude::*;

/// Sorts `v` in place by `less` (a strict weak order).
pub fn sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(v, i, n, &less);
    }
    for end in (1..n).rev() {
        swap(v, 0, end);
        sift(v, 0, end, &less);
    }
}

/// `v.swap(a, b)` for `a < b`, both in bounds, without a bounds-check panic: `<[T]>::swap` is
/// not inlined, so its check stays whatever the caller knows. Together with `sift`'s bounded
/// indices, 210 B gzip less than plain indexing and `v.swap`.
fn swap<T>(v: &mut [T], a: usize, b: usize) {
    if let Some((lo, hi)) = v.split_at_mut_checked(b) {
        if let (Some(x), Some(y)) = (lo.get_mut(a), hi.first_mut()) {
            ::core::mem::swap(x, y);
        }
    }
}

/// `v.insert(i, x)` for `i <= v.len()` (a position found in `v`, as every caller's is), without
/// the insertion-index panic: pushed, then moved down into place by swaps. `Vec::insert` is not
/// inlined, so its check and message stayed whatever the caller knew: 237 B gzip less over its
/// six element types (pushing and rotating the tail instead costs 1 KB more).
pub fn insert<T>(v: &mut Vec<T>, i: usize, x: T) {
    v.push(x);
    let mut j = v.len() - 1;
    while j > i {
        swap(v, j - 1, j);
        j -= 1;
    }
}

/// `v.remove(i)`, None when `i` is out of bounds (no caller's is), without the removal-index
/// panic: moved to the end by swaps, then popped (216 B gzip less than `Vec::remove` over its
/// four element types).
pub fn remove<T>(v: &mut Vec<T>, i: usize) -> Option<T> {
    if i >= v.len() {
        return None;
    }
    let mut j = i + 1;
    while j < v.len() {
        swap(v, j - 1, j);
        j += 1;
    }
    v.pop()
}

/// `v.drain(..k)` for `k <= v.len()`, without the range panic: the rest moved down by swaps, then
/// the first `k` (now last) dropped. With the ring's trim below, 266 B gzip less than `drain`
/// (its range check, messages and per-type `Drain`) and a `retain` that counted.
pub fn drop_front<T>(v: &mut Vec<T>, k: usize) {
    if k == 0 {
        return;
    }
    let n = v.len();
    let mut j = k;
    while j < n {
        swap(v, j - k, j);
        j += 1;
    }
    v.truncate(n.saturating_sub(k));
}

/// `v.retain(keep)`: the kept elements moved down in order by swaps, the rest (now last)
/// dropped. The standard `retain` is a two-phase loop with a guard against a panicking closure
/// (here a panic traps), and each element type's copy of it was ≈ 240 B of wasm.
pub fn retain<T>(v: &mut Vec<T>, mut keep: impl FnMut(&mut T) -> bool) {
    let mut j = 0;
    for i in 0..v.len() {
        if v.get_mut(i).is_some_and(&mut keep) {
            swap(v, j, i);
            j += 1;
        }
    }
    v.truncate(j);
}

fn sift<T>(v: &mut [T], mut root: usize, end: usize, less: &impl Fn(&T, &T) -> bool) {
    // `end` never exceeds the length and `root` stays below it: bounded here, the compiler
    // proves every index in bounds (for the merged `child`, `get` says it), so no bounds-check
    // panic is linked.
    let end = end.min(v.len());
    while root < end {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && less(&v[child], &v[child + 1]) {
            child += 1;
        }
        match (v.get(root), v.get(child)) {
            (Some(r), Some(c)) if less(r, c) => {}
            _ => return,
        }
        swap(v, root, child);
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

    #[test]
    fn retains_like_the_standard_retain() {
        let mut seed = 777u64;
        for n in [0usize, 1, 2, 5, 64, 300] {
            let v: Vec<String> = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 40) % 10).to_string()
                })
                .collect();
            for cut in ["0", "3", "7", "9"] {
                let (mut got, mut want) = (v.clone(), v.clone());
                let mut calls = 0;
                retain(&mut got, |x| {
                    calls += 1;
                    x.as_str() > cut
                });
                want.retain(|x| x.as_str() > cut);
                assert_eq!((got, calls), (want, n), "n = {n}, cut = {cut}");
            }
        }
    }
}
