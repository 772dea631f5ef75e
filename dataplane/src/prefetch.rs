//! The one wrapper of the CPU's prefetch hint, used by the batch stages
//! (route: LPM first level; conntrack: index buckets, then entries) to
//! start every packet's cache miss before looking any packet up, so that
//! the misses of a batch overlap instead of each stalling its packet.

/// Hints the CPU to start loading the cache line holding `*x` into all
/// cache levels, without waiting for it. A no-op on targets other than
/// x86-64.
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` is only `unsafe` to call because it is
        // declared with `#[target_feature(enable = "sse")]`; SSE is part of
        // the x86-64 baseline, so the feature is always present. The
        // instruction is a hint: it never faults, whatever the address, and
        // changes no memory, and `x` is a valid reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
