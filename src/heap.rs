//! The wasm build's allocator: segregated free lists of power-of-two size classes (16 B – 32 KB)
//! carved from 64 KB pages, and whole pages for larger blocks. O(1) for small blocks, about
//! 300 bytes of code where dlmalloc costs ≈ 2.5 KB gzip. Freed small blocks are reused by their
//! class; freed large blocks are kept in a first-fit list of page runs. Memory is never returned
//! to the system (wasm cannot shrink memory anyway). Single-threaded, as the wasm build is.

use ::core::alloc::{GlobalAlloc, Layout};
use ::core::ptr::null_mut;

const PAGE: usize = 65_536;
const MIN_SHIFT: u32 = 4; // 16 bytes
const CLASSES: usize = 12; // 16 B .. 32 KB

/// A free run of large pages, stored in its own first bytes.
struct Run {
    pages: usize,
    next: *mut Run,
}

/// The allocator state (one per module).
pub struct Pages {
    free: [*mut u8; CLASSES],
    runs: *mut Run,
}

/// The global instance. The wasm build has one thread.
pub struct Allocator(::core::cell::UnsafeCell<Pages>);
// SAFETY: wasm32-unknown-unknown without the atomics feature runs on a single thread.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An empty allocator.
    pub const fn new() -> Allocator {
        Allocator(::core::cell::UnsafeCell::new(Pages { free: [null_mut(); CLASSES], runs: null_mut() }))
    }
}

fn class_of(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT).next_power_of_two();
    let c = (size.trailing_zeros() - MIN_SHIFT) as usize;
    if c < CLASSES { Some(c) } else { None }
}

/// Fresh pages; out of memory traps here, as `handle_alloc_error` would after a null return (and
/// no caller, `realloc` included, then checks for null: 29 B gzip less).
fn grow(pages: usize) -> *mut u8 {
    let old = ::core::arch::wasm32::memory_grow(0, pages);
    if old == usize::MAX { ::core::arch::wasm32::unreachable() } else { (old * PAGE) as *mut u8 }
}

impl Allocator {
    /// A block for `layout`, never null: fresh pages start above the module's own memory (never
    /// at address 0) or trap ([`grow`]), and the free lists hold only blocks carved from them.
    unsafe fn block(&self, layout: Layout) -> *mut u8 {
        let st = &mut *self.0.get();
        match class_of(&layout) {
            Some(c) => {
                if st.free[c].is_null() {
                    // Split a fresh page into blocks of this class, linked through their first word.
                    let page = grow(1);
                    let size = 1usize << (c as u32 + MIN_SHIFT);
                    let mut off = PAGE;
                    while off >= size {
                        off -= size;
                        let block = page.add(off);
                        *(block as *mut *mut u8) = st.free[c];
                        st.free[c] = block;
                    }
                }
                let block = st.free[c];
                st.free[c] = *(block as *mut *mut u8);
                block
            }
            None => {
                let pages = layout.size().div_ceil(PAGE);
                // First fit among freed runs (no splitting: large blocks are rare).
                let mut link: *mut *mut Run = &mut st.runs;
                while !(*link).is_null() {
                    let run = *link;
                    if (*run).pages >= pages {
                        *link = (*run).next;
                        return run as *mut u8;
                    }
                    link = &mut (*run).next;
                }
                grow(pages)
            }
        }
    }
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.block(layout);
        // Told to the compiler, so the callers' checks for a null block (and the paths to
        // `handle_alloc_error` from them) go: 21 B gzip less.
        ::core::hint::assert_unchecked(!p.is_null());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let st = &mut *self.0.get();
        match class_of(&layout) {
            Some(c) => {
                *(ptr as *mut *mut u8) = st.free[c];
                st.free[c] = ptr;
            }
            None => {
                let run = ptr as *mut Run;
                (*run).pages = layout.size().div_ceil(PAGE);
                (*run).next = st.runs;
                st.runs = run;
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let same = match (class_of(&layout), class_of(&new_layout)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => layout.size().div_ceil(PAGE) == new_size.div_ceil(PAGE),
            _ => false,
        };
        if same {
            return ptr;
        }
        let new = self.alloc(new_layout);
        ::core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
        self.dealloc(ptr, layout);
        new
    }
}
