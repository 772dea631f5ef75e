//! Per-source counts with a cap (RFC 6888 REQ-4: one inside host must not
//! take a whole shared resource), shared by all workers, lock-free and
//! fixed in size.
//!
//! An approximate counting structure: [`BUCKETS`] atomic counters indexed
//! by a seeded hash of the source. Two sources that hash to one bucket
//! share its count, so a collision only makes the limit stricter for
//! them (never looser); with 65536 buckets and a few hundred hosts that is
//! rare, and the seed is random per start so an outsider cannot aim for a
//! victim's bucket. Exact per-source state would need a table that grows
//! or evicts: allocation or a new way to fail on the packet path.
//!
//! Counting is always on (so a limit can be set at any time and the
//! counts are right); [`SourceCounts::enter`] checks the limit, 0 = off.
//! It costs one atomic add on a counter line per counted event (a
//! connection's insert and retire, a NAT port's claim and release), never
//! per packet.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use super::mix;

/// Counters (a power of two): 256 KiB.
pub const BUCKETS: usize = 1 << 16;

/// Per-source counts and their cap.
pub struct SourceCounts {
    counts: Box<[AtomicU32]>,
    limit: AtomicU32,
    seed: u64,
}

impl std::fmt::Debug for SourceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCounts")
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}

impl SourceCounts {
    pub fn new(limit: u32, seed: u64) -> Self {
        SourceCounts {
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            limit: AtomicU32::new(limit),
            seed,
        }
    }

    /// The cap per source (0: none).
    pub fn limit(&self) -> u32 {
        self.limit.load(Relaxed)
    }

    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Relaxed)
    }

    fn bucket(&self, src: u128) -> &AtomicU32 {
        let h = mix(
            src as u64 ^ self.seed ^ 0x5851_f42d_4c95_7f2d,
            (src >> 64) as u64 ^ 0x1405_7b7e_f767_814f,
        );
        &self.counts[(h as usize) & (BUCKETS - 1)]
    }

    /// Counts one more for `src`; false (and nothing counted) if that
    /// would pass the limit.
    pub fn enter(&self, src: u128) -> bool {
        let b = self.bucket(src);
        let limit = self.limit();
        let before = b.fetch_add(1, Relaxed);
        if limit != 0 && before >= limit {
            b.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// Counts one fewer for `src` (one [`SourceCounts::enter`] it had).
    pub fn leave(&self, src: u128) {
        let b = self.bucket(src);
        // Never below zero, even if a caller's bookkeeping is wrong.
        let _ = b.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1));
    }

    /// The count of `src`'s bucket.
    pub fn count(&self, src: u128) -> u32 {
        self.bucket(src).load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_one_source_not_another() {
        let s = SourceCounts::new(3, 7);
        for _ in 0..3 {
            assert!(s.enter(1));
        }
        assert!(!s.enter(1));
        assert_eq!(s.count(1), 3);
        assert!(s.enter(2));
        s.leave(1);
        assert!(s.enter(1));
        s.set_limit(0);
        assert!((0..100).all(|_| s.enter(1)));
        s.leave(9);
        assert_eq!(s.count(9), 0);
    }
}
