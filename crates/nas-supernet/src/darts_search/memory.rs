//! Peak memory per search step, measured by a counting global allocator.
//!
//! On the CPU backends every tensor lives on the heap, so the heap's high-water mark during a
//! step is the step's peak memory: parameters, activations kept for the backward pass,
//! gradients and optimizer state. [`CountingAlloc`] wraps the system allocator and keeps the
//! bytes in use and their maximum since the last [`reset_peak`]; a program opts in with
//!
//! ```
//! #[global_allocator]
//! static ALLOC: nas_supernet::darts_search::memory::CountingAlloc =
//!     nas_supernet::darts_search::memory::CountingAlloc;
//! ```
//!
//! and the search driver then reports the peak of every step ([`peak_bytes`] is `None` when
//! the allocator is not installed). Resident-set figures (`VmHWM` in `/proc/self/status`) were
//! not used: they include the allocator's retained pages and the binary, cannot be reset
//! without writing to `/proc/self/clear_refs`, and exist on Linux only. On GPU backends the
//! count covers host memory only; device memory is the backend's own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting the bytes in use and their peak.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn add(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the same arguments and only updates counters.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc`.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ACTIVE.store(true, Ordering::Relaxed);
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ACTIVE.store(true, Ordering::Relaxed);
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as `GlobalAlloc::realloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            add(new_size);
        }
        p
    }
}

/// True when [`CountingAlloc`] is the global allocator of this program.
pub fn is_counting() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Heap bytes in use now (`None` without [`CountingAlloc`]).
pub fn bytes_in_use() -> Option<usize> {
    is_counting().then(|| IN_USE.load(Ordering::Relaxed))
}

/// Starts a new peak measurement from the bytes in use now.
pub fn reset_peak() {
    PEAK.store(IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The most heap bytes in use since the last [`reset_peak`] (`None` without
/// [`CountingAlloc`]).
pub fn peak_bytes() -> Option<usize> {
    is_counting().then(|| PEAK.load(Ordering::Relaxed))
}
