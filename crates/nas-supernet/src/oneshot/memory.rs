//! Peak heap memory of a piece of work, with a counting global allocator ([`crate::memory`]).
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

pub use crate::memory::CountingAlloc as PeakAlloc;
