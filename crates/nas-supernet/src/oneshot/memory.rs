//! Peak heap memory of a piece of work, with a counting global allocator.
//!
//! On the CPU backends every tensor is a heap allocation, so the peak of the bytes allocated
//! and not yet freed while a training step runs, minus what was allocated before it started,
//! is the memory the step needs: activations kept for the backward pass, gradients, and
//! temporaries. (On a GPU backend tensors live in device memory and this measures nothing of
//! them.) A program that wants the numbers installs [`PeakAlloc`] as its global allocator:
//!
//! ```
//! use nas_supernet::oneshot::memory::PeakAlloc;
//!
//! #[global_allocator]
//! static ALLOC: PeakAlloc = PeakAlloc;
//!
//! fn main() {
//!     let (sum, peak) = PeakAlloc::measure(|| {
//!         let buffer = vec![1u8; 1 << 20];
//!         buffer.iter().map(|&b| u64::from(b)).sum::<u64>()
//!     });
//!     assert_eq!(sum, 1 << 20);
//!     assert!(peak >= 1 << 20);
//! }
//! ```
//!
//! The counters are process-wide: other threads allocating during a measurement are counted
//! too, so measure with nothing else running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes in use and their peak.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeakAlloc;

impl PeakAlloc {
    /// Bytes allocated and not freed.
    pub fn current() -> usize {
        CURRENT.load(Ordering::Relaxed)
    }

    /// The largest [`PeakAlloc::current`] since the last [`PeakAlloc::reset_peak`].
    pub fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }

    /// Starts a new peak from the current usage.
    pub fn reset_peak() {
        PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// True when [`PeakAlloc`] is the global allocator (something has been counted).
    pub fn is_installed() -> bool {
        CURRENT.load(Ordering::Relaxed) > 0
    }

    /// Runs `work` and returns its result with the peak number of bytes in use during it,
    /// above what was in use when it started. 0 when [`PeakAlloc`] is not installed.
    pub fn measure<R>(work: impl FnOnce() -> R) -> (R, usize) {
        let base = Self::current();
        Self::reset_peak();
        let result = work();
        let peak = Self::peak().saturating_sub(base);
        (result, peak)
    }
}

fn add(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn sub(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are only
// bookkeeping.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (that is, by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` and `layout` come from this allocator.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size);
            sub(layout.size());
        }
        new
    }
}
