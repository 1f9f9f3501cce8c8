//! Peak memory of a training step, measured by a counting global allocator.
//!
//! On the CPU backends every tensor lives on the heap, so the heap's high-water mark during a
//! step is the step's peak memory: parameters, activations kept for the backward pass,
//! gradients and optimizer state. [`CountingAlloc`] wraps the system allocator and keeps the
//! bytes in use and their maximum since the last [`reset_peak`]; a program opts in with
//!
//! ```
//! use nas_supernet::memory::CountingAlloc;
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc;
//!
//! fn main() {
//!     let (sum, peak) = CountingAlloc::measure(|| {
//!         let buffer = vec![1u8; 1 << 20];
//!         buffer.iter().map(|&b| u64::from(b)).sum::<u64>()
//!     });
//!     assert_eq!(sum, 1 << 20);
//!     assert!(peak >= 1 << 20);
//! }
//! ```
//!
//! and the differentiable-search driver then reports the peak of every step ([`peak_bytes`] is
//! `None` when the allocator is not installed), the ProxylessNAS example the peak of each kind
//! of step ([`CountingAlloc::measure`]). The counters are process-wide: other threads
//! allocating during a measurement are counted too, so measure with nothing else running. Resident-set figures (`VmHWM` in `/proc/self/status`) were
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

impl CountingAlloc {
    /// Heap bytes in use now (0 without [`CountingAlloc`] installed).
    pub fn current() -> usize {
        bytes_in_use().unwrap_or(0)
    }

    /// The most heap bytes in use since the last [`reset_peak`] (0 when not installed).
    pub fn peak() -> usize {
        peak_bytes().unwrap_or(0)
    }

    /// Starts a new peak from the bytes in use now ([`reset_peak`]).
    pub fn reset_peak() {
        reset_peak();
    }

    /// True when [`CountingAlloc`] is the global allocator (something has been counted).
    pub fn is_installed() -> bool {
        is_counting()
    }

    /// Runs `work` and returns its result with the peak number of bytes in use during it,
    /// above what was in use when it started. 0 when [`CountingAlloc`] is not installed.
    pub fn measure<R>(work: impl FnOnce() -> R) -> (R, usize) {
        let base = Self::current();
        reset_peak();
        let result = work();
        (result, Self::peak().saturating_sub(base))
    }
}
