//! The berth binary's allocator: size-class free lists over a static
//! arena, in front of the C library's malloc.
//!
//! A berth command lives for milliseconds and allocates a few hundred kB,
//! mostly clap's command tree, the parsed config and short strings.
//! musl's malloc serves that with an mmap and a munmap per size class and
//! per freed group (about 90 system calls in one `run`,
//! conformance/bench/README.md, "musl"); here a block comes off its size
//! class's free list or the arena's next bytes, and goes back to the free
//! list, all without a system call. The arena's pages are only resident
//! once reached.
//!
//! Classes go by quarters of a power of two (16, 32, 48, 64, 80, 96, 112,
//! 128, 160, ...), so at most a fifth of a block is waste, up to 64 kB.
//! Larger or more strictly aligned blocks, and everything once the arena
//! is spent (a long `events` loop, the shim's helper), come from the C
//! library's malloc.
//!
//! The free lists are taken with a try-lock and never waited for: a
//! thread that finds them busy takes fresh arena bytes, or leaves its
//! freed block unlisted. So a process forked while another thread held
//! the lock (the lock then held forever in the child) still allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// 4 MiB of .bss: resident only as far as it is used.
const SIZE: usize = 4 << 20;
/// Blocks are 16-byte aligned, as malloc's are.
const ALIGN: usize = 16;
/// The largest block served here.
const MAX: usize = 64 << 10;
/// Classes up to MAX: 8 of 16 bytes up to 128, then 4 per doubling.
const CLASSES: usize = 8 + 4 * 9;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

/// Free lists, one per class, each a stack threaded through its blocks'
/// first word.
struct Lists(UnsafeCell<[*mut u8; CLASSES]>);

// SAFETY: the arena's bytes are handed out in disjoint ranges (TOP moves
// with compare-and-swap), and the lists are touched only under LOCK.
unsafe impl Sync for Space {}
// SAFETY: as above, LOCK guards every access.
unsafe impl Sync for Lists {}

static SPACE: Space = Space(UnsafeCell::new([0; SIZE]));
static TOP: AtomicUsize = AtomicUsize::new(0);
static LISTS: Lists = Lists(UnsafeCell::new([null_mut(); CLASSES]));
static LOCK: AtomicBool = AtomicBool::new(false);

/// The berth binary's global allocator (see the module's comment).
pub struct Arena;

/// The class of a block of `size` bytes (1..=MAX), and the class's size.
fn class(size: usize) -> (usize, usize) {
    if size <= 128 {
        let c = size.div_ceil(16).max(1);
        return (c - 1, c * 16);
    }
    // 128 < size <= MAX: the quarter of [2^k, 2^(k+1)) it rounds up to.
    let k = usize::BITS - 1 - (size - 1).leading_zeros(); // 2^k <= size-1 < 2^(k+1)
    let quarter = 1usize << (k - 2);
    let n = (size - 1) >> (k - 2); // 4..=7
    let class_size = (n + 1) * quarter;
    (8 + 4 * (k as usize - 7) + (n - 4), class_size)
}

fn base() -> usize {
    SPACE.0.get() as usize
}

fn owns(ptr: *mut u8) -> bool {
    (ptr as usize).wrapping_sub(base()) < SIZE
}

/// Run `f` on the free lists if no other thread has them.
fn with_lists<T>(f: impl FnOnce(&mut [*mut u8; CLASSES]) -> T) -> Option<T> {
    LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    // SAFETY: LOCK is ours, so nobody else touches the lists.
    let r = f(unsafe { &mut *LISTS.0.get() });
    LOCK.store(false, Ordering::Release);
    Some(r)
}

/// `size` fresh bytes of the arena, or None once it is spent.
fn bump(size: usize) -> Option<*mut u8> {
    let mut top = TOP.load(Ordering::Relaxed);
    loop {
        let end = top.checked_add(size).filter(|&e| e <= SIZE)?;
        match TOP.compare_exchange_weak(top, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                if top == 0 {
                    prefault();
                }
                return Some((base() + top) as *mut u8);
            }
            Err(now) => top = now,
        }
    }
}

/// Every berth command uses at least this much of the arena (clap's
/// command tree alone takes most of it: `--version` 170 kB, `run` 210 kB).
const PREFAULT: usize = 160 << 10;

/// Make the arena's first PREFAULT bytes resident in one call rather than a
/// page fault per page: about 20 µs less per command on the lab VM (40
/// pages). A kernel without MADV_POPULATE_WRITE (before 5.14) refuses it,
/// and the pages fault in as before.
fn prefault() {
    // SAFETY: the range is the arena's own static bytes, page aligned (the
    // arena is), and populating them changes no byte.
    unsafe {
        libc::madvise(
            base() as *mut libc::c_void,
            PREFAULT,
            libc::MADV_POPULATE_WRITE,
        );
    }
}

/// Grow or shrink in place the block at `ptr` of class size `old` to class
/// size `new`, if it is the arena's last (a Vec being pushed to, as a rule).
fn resize_last(ptr: *mut u8, old: usize, new: usize) -> bool {
    let start = ptr as usize - base();
    match start.checked_add(new).filter(|&e| e <= SIZE) {
        Some(end) => TOP
            .compare_exchange(start + old, end, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok(),
        None => false,
    }
}

fn served_here(layout: Layout) -> bool {
    layout.size() <= MAX && layout.align() <= ALIGN
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if served_here(layout) {
            let (c, size) = class(layout.size());
            let listed = with_lists(|lists| {
                let head = lists[c];
                if !head.is_null() {
                    // SAFETY: a listed block's first word is the next one.
                    lists[c] = unsafe { head.cast::<*mut u8>().read() };
                }
                head
            });
            if let Some(p) = listed.filter(|p| !p.is_null()) {
                return p;
            }
            // Every class size is a multiple of ALIGN, so TOP stays aligned.
            if let Some(p) = bump(size) {
                return p;
            }
        }
        // SAFETY: the caller's layout is valid, as System needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !owns(ptr) {
            // SAFETY: not the arena's, so System's, with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        let (c, _) = class(layout.size());
        with_lists(|lists| {
            // SAFETY: the block is ours again and at least 16 bytes.
            unsafe { ptr.cast::<*mut u8>().write(lists[c]) };
            lists[c] = ptr;
        });
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !owns(ptr) {
            // SAFETY: System's block, with the layout it was allocated with.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let old = class(layout.size());
        if new_size <= MAX {
            let new = class(new_size);
            if new.0 == old.0 || resize_last(ptr, old.1, new.1) {
                return ptr;
            }
        }
        // SAFETY: GlobalAlloc::realloc's contract: the old layout was valid
        // and new_size rounded to its alignment does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout of non-zero size.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: distinct blocks (the old one is still allocated), each
            // holding at least the smaller of the two sizes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_with_little_waste() {
        let mut last = class(1);
        assert_eq!(last, (0, 16));
        for size in 2..=MAX {
            let (c, s) = class(size);
            assert!(c < CLASSES, "{size}: class {c}");
            assert!(
                s >= size && s.is_multiple_of(ALIGN),
                "{size}: class size {s}"
            );
            assert!(s - size < s / 4 + 16, "{size}: {s} wastes too much");
            assert!(
                c == last.0 || c == last.0 + 1,
                "{size}: class {c} after {}",
                last.0
            );
            if c == last.0 {
                assert_eq!(s, last.1);
            }
            last = (c, s);
        }
        assert_eq!(last.0, CLASSES - 1);
    }

    #[test]
    fn blocks_are_reused_kept_apart_and_resized() {
        let a = Arena;
        let l = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: valid layouts; every block is freed with its own.
        unsafe {
            let p = a.alloc(l);
            let q = a.alloc(l);
            assert!(owns(p) && owns(q) && p != q);
            assert!((p as usize).is_multiple_of(ALIGN));
            p.write_bytes(1, 40);
            q.write_bytes(2, 40);
            assert_eq!(*p.add(39), 1);
            a.dealloc(p, l);
            // The same class comes back from its list (other tests'
            // threads do not use the arena).
            let r = a.alloc(Layout::from_size_align(33, 1).unwrap());
            assert_eq!(r, p);
            // Grown past its class, the content moves along.
            r.write_bytes(7, 33);
            let g = a.realloc(r, Layout::from_size_align(33, 1).unwrap(), 5000);
            assert_ne!(g, r);
            assert!((0..33).all(|i| *g.add(i) == 7));
            a.dealloc(g, Layout::from_size_align(5000, 1).unwrap());
            a.dealloc(q, l);
            // Larger or over-aligned blocks are malloc's.
            let big = Layout::from_size_align(MAX + 1, 8).unwrap();
            let b = a.alloc(big);
            assert!(!b.is_null() && !owns(b));
            a.dealloc(b, big);
            let page = Layout::from_size_align(64, 4096).unwrap();
            let pg = a.alloc(page);
            assert!(!owns(pg) && (pg as usize).is_multiple_of(4096));
            a.dealloc(pg, page);
        }
    }

    #[test]
    fn the_last_block_grows_in_place() {
        let a = Arena;
        let l = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: valid layouts; every block is freed with its own.
        unsafe {
            let v = a.alloc(l);
            v.write_bytes(3, 100);
            // Other tests' threads may have taken arena bytes since: then v
            // moves, as any block that is not the last.
            let top = TOP.load(Ordering::Relaxed);
            let last = v as usize - base() + class(100).1 == top;
            let g = a.realloc(v, l, 3000);
            assert_eq!(g == v, last);
            assert!((0..100).all(|i| *g.add(i) == 3));
            if last {
                assert_eq!(
                    TOP.load(Ordering::Relaxed),
                    top - class(100).1 + class(3000).1
                );
            }
            // No longer the last once another block follows it.
            let w = a.alloc(l);
            let h = a.realloc(g, Layout::from_size_align(3000, 8).unwrap(), 9000);
            assert_ne!(h, g);
            assert!((0..100).all(|i| *h.add(i) == 3));
            a.dealloc(h, Layout::from_size_align(9000, 8).unwrap());
            a.dealloc(w, l);
        }
    }
}
