//! Asking the processor for memory the engine will read soon.
//!
//! The state of a million customers is far larger than any cache, so each profile the
//! engine visits costs several cache misses. Where it knows which profiles come next (the
//! next events of a batch, the next entries of the schedule), it asks for their memory
//! ahead: a prefetch starts the load and returns at once, so the misses overlap with the
//! work at hand. A prefetch is a hint: it never faults and never changes what a program
//! computes, only when its memory arrives.

/// The size of a cache line on the machines the engine runs on.
const LINE: usize = 64;

/// Asks for the cache lines of `values`, at most `lines` of them.
pub fn slice<T>(values: &[T], lines: usize) {
    let start: *const u8 = values.as_ptr().cast();
    let bytes = std::mem::size_of_val(values).min(lines * LINE);
    for offset in (0..bytes).step_by(LINE) {
        line(start.wrapping_add(offset));
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn line(at: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: the prefetch instruction belongs to SSE, which every x86-64 processor has
    // (the intrinsic is `unsafe` to call only because it is marked with that feature), and
    // it never reads the memory into the program: any address, even an invalid one, is
    // allowed.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
}

#[cfg(not(target_arch = "x86_64"))]
fn line(_at: *const u8) {}
