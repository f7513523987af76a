//! kwait's memory allocator: power-of-two size classes carved from a few
//! mapped chunks, each class with its own free list, and blocks that are
//! never given back to the kernel; large blocks mapped one by one.
//!
//! Why not musl's: its allocator (mallocng) maps a fresh group for nearly
//! every size class a start touches and unmaps it again as soon as the group
//! empties. A probe made about 40 mmap/munmap pairs; the munmaps (each a TLB
//! flush) and the page faults on the fresh pages were a third of its CPU
//! time (`perf record` over 400 probes, scripts/bench part 9). kwait's heap
//! is small and its pattern repeats (one attempt after another), so a freed
//! block is simply kept for the next block of its class: the peak is what
//! the busiest moment held, and the wait loop runs in that space for hours.
//!
//! What it does not do: return small blocks' pages (a supervisor re-execs
//! itself after a wait, so the wait's heap is gone with its address space),
//! or split and merge blocks. Blocks over [`LARGEST`] (a Metadata answer of
//! thousands of topics) are mapped and unmapped on their own, and grown with
//! `mremap`. The lock is a spin lock: kwait runs one thread, and a stuck DNS
//! lookup's thread at most.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::{self, null_mut};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::libc;

/// The largest size class; larger blocks are mapped on their own.
const LARGEST: usize = 32 * 1024;
/// The smallest: room for the free list's link, and malloc's alignment.
const SMALLEST: usize = 16;
const CLASSES: usize = (LARGEST / SMALLEST).trailing_zeros() as usize + 1;
/// Address space reserved at a time; only the pages a block touches become
/// memory.
const CHUNK: usize = 1024 * 1024;
const PAGE: usize = 4096;

pub struct Heap {
    lock: AtomicBool,
    state: std::cell::UnsafeCell<State>,
}

struct State {
    /// The first free block of each class; each free block holds the next.
    free: [*mut u8; CLASSES],
    /// The untouched rest of the current chunk.
    next: usize,
    end: usize,
}

// SAFETY: `state` is only reached with `lock` held.
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        Heap {
            lock: AtomicBool::new(false),
            state: std::cell::UnsafeCell::new(State {
                free: [null_mut(); CLASSES],
                next: 0,
                end: 0,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held until the end of this function.
        let result = f(unsafe { &mut *self.state.get() });
        self.lock.store(false, Ordering::Release);
        result
    }
}

/// The class of a layout, or `None` for a block mapped on its own.
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > PAGE {
        return None;
    }
    let size = layout.size().max(layout.align()).max(SMALLEST);
    if size > LARGEST {
        return None;
    }
    Some((size.next_power_of_two() / SMALLEST).trailing_zeros() as usize)
}

fn class_size(class: usize) -> usize {
    SMALLEST << class
}

impl State {
    fn take(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if !head.is_null() {
            // SAFETY: a free block's first word is the next free block.
            self.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = class_size(class);
        // A block is aligned to its size (to a page at most), so any layout
        // whose alignment is at most its size fits its class.
        let align = size.min(PAGE);
        let mut at = self.next.next_multiple_of(align);
        if at + size > self.end {
            let chunk = map(CHUNK);
            if chunk.is_null() {
                return null_mut();
            }
            self.next = chunk as usize;
            self.end = self.next + CHUNK;
            at = self.next;
        }
        self.next = at + size;
        at as *mut u8
    }

    fn give(&mut self, class: usize, block: *mut u8) {
        // SAFETY: the block is at least SMALLEST bytes and aligned to 16.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches nothing that exists.
    let at = unsafe {
        libc::mmap(
            null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        null_mut()
    } else {
        at.cast()
    }
}

fn pages(size: usize) -> usize {
    size.next_multiple_of(PAGE)
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(class) => self.with(|s| s.take(class)),
            // A mapping is page-aligned: more is not asked of kwait's heap.
            None if layout.align() <= PAGE => map(pages(layout.size())),
            None => null_mut(),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class(layout) {
            Some(class) => self.with(|s| s.give(class, block)),
            None => {
                libc::munmap(block.cast(), pages(layout.size()));
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (of the Layout): the caller guarantees new_size, rounded
        // to the alignment, does not overflow isize.
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class(layout), class(new)) {
            (Some(old), Some(now)) if old == now => block,
            (None, None) => {
                let moved = libc::mremap(
                    block.cast(),
                    pages(layout.size()),
                    pages(new_size),
                    libc::MREMAP_MAYMOVE,
                );
                if moved == libc::MAP_FAILED {
                    null_mut()
                } else {
                    moved.cast()
                }
            }
            _ => {
                let moved = self.alloc(new);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class(l(1, 1)), Some(0));
        assert_eq!(class(l(16, 8)), Some(0));
        assert_eq!(class(l(17, 8)), Some(1));
        assert_eq!(class(l(8, 64)), Some(2));
        assert_eq!(class(l(LARGEST, 8)), Some(CLASSES - 1));
        assert_eq!(class(l(LARGEST + 1, 8)), None);
        assert_eq!(class_size(CLASSES - 1), LARGEST);
    }

    #[test]
    fn blocks_are_aligned_reused_and_kept_apart() {
        let heap = Heap::new();
        unsafe {
            let mut seen = Vec::new();
            for size in [
                1,
                16,
                17,
                100,
                1000,
                4096,
                5000,
                LARGEST,
                LARGEST + 1,
                300_000,
            ] {
                let layout = Layout::from_size_align(size, 8).unwrap();
                let a = heap.alloc(layout);
                assert!(!a.is_null());
                assert_eq!(a as usize % size.next_power_of_two().clamp(16, PAGE), 0);
                ptr::write_bytes(a, 0xa5, size);
                seen.push((a, layout));
            }
            // No two blocks overlap.
            for (i, &(a, la)) in seen.iter().enumerate() {
                for &(b, lb) in &seen[i + 1..] {
                    let (a, b) = (a as usize, b as usize);
                    assert!(a + la.size() <= b || b + lb.size() <= a);
                }
            }
            let (a, layout) = seen[4];
            heap.dealloc(a, layout);
            assert_eq!(
                heap.alloc(layout),
                a,
                "a freed block is the next of its class"
            );
            // Growing within a class keeps the block; out of it, copies.
            let grown = heap.realloc(a, layout, 1024);
            assert_eq!(grown, a);
            let big = heap.realloc(grown, Layout::from_size_align(1024, 8).unwrap(), 100_000);
            assert_eq!(*big.add(999), 0xa5);
            let bigger = heap.realloc(big, Layout::from_size_align(100_000, 8).unwrap(), 400_000);
            assert_eq!(*bigger.add(999), 0xa5);
            ptr::write_bytes(bigger, 1, 400_000);
            heap.dealloc(bigger, Layout::from_size_align(400_000, 8).unwrap());
        }
    }

    #[test]
    fn a_page_aligned_layout_larger_than_a_page_is_served() {
        let heap = Heap::new();
        let layout = Layout::from_size_align(3 * PAGE, PAGE).unwrap();
        unsafe {
            let a = heap.alloc(layout);
            assert_eq!(a as usize % PAGE, 0);
            heap.dealloc(a, layout);
        }
        let huge_align = Layout::from_size_align(64, 2 * PAGE).unwrap();
        assert!(class(huge_align).is_none());
        assert!(unsafe { heap.alloc(huge_align) }.is_null());
    }
}
