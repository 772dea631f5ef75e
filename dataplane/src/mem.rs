//! Memory hints for the big shared tables: the CPU's prefetch hint, used
//! by the batch stages (route: LPM first level; conntrack: index buckets,
//! then entries) to start every packet's cache miss before looking any
//! packet up, so that the misses of a batch overlap instead of each
//! stalling its packet; and transparent huge pages for tables looked up at
//! random (LPM first level, connection table), which otherwise miss the TLB
//! on nearly every packet (DPDK puts the same tables in hugepages).

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

/// Asks the kernel to back the 2 MiB-aligned interior of `region` with
/// transparent huge pages; best before its pages are first touched (e.g.
/// on a `Vec`'s spare capacity). Advisory: errors are ignored.
#[cfg(target_os = "linux")]
pub fn advise_hugepages<T>(region: &mut [T]) {
    use core::ffi::{c_int, c_void};
    let (ptr, len) = (region.as_mut_ptr(), std::mem::size_of_val(region));
    unsafe extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    }
    const MADV_HUGEPAGE: c_int = 14;
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside `region`, which the caller holds
        // exclusively. MADV_HUGEPAGE only changes which page size the kernel
        // uses to back it; contents, validity and the zero-fill of
        // untouched pages are unchanged, so no Rust invariant depends on
        // the outcome, and the return value is deliberately ignored.
        unsafe {
            madvise(start as *mut c_void, end - start, MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn advise_hugepages<T>(_region: &mut [T]) {}
