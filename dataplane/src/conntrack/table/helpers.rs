//! The table's side of helpers and expectations: attaching a helper to a
//! connection (the [`HELPER`] bit and the record's index in the `mark`
//! word), finding it from a packet, freeing it with the connection, and
//! the expectation calls that need the table's time and counters.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use super::super::expect::{Event, ExpectError, Expectation};
use super::super::helper::{self as h, HelperKind, HelperStats};
use super::*;

impl Conntrack {
    /// Attaches helper `kind` to connection `c`, just confirmed (the
    /// caller is the packet's worker, before the packet leaves). This is
    /// what the raw table's `-j CT --helper NAME` does, and what the
    /// config's `[conntrack] helpers` port list does for a first packet
    /// nothing else gave a helper. False if the connection is gone, has a
    /// helper already, or every helper record is taken (counted:
    /// `attach_full`); the connection then goes on without one.
    pub fn attach_helper(&self, c: ConnId, kind: HelperKind) -> bool {
        let e = &self.entries[c.idx as usize];
        let s = e.state.load(Acquire);
        if s & LIVE == 0 || gen_of(s) != c.generation || s & HELPER != 0 {
            return false;
        }
        let Some(slot) = self.helpers.claim(c.idx, c.generation, kind) else {
            self.helpers.count(h::H_ATTACH_FULL);
            return false;
        };
        // The record's index first, then the bit that makes packets
        // read it.
        let mut m = e.mark.load(Relaxed);
        loop {
            if (m >> 32) as u16 != c.generation {
                self.helpers.release(slot, c.idx, c.generation);
                return false;
            }
            let new = (m & ((1 << SLOT_SHIFT) - 1)) | (u64::from(slot) + 1) << SLOT_SHIFT;
            match e.mark.compare_exchange_weak(m, new, AcqRel, Relaxed) {
                Ok(_) => break,
                Err(x) => m = x,
            }
        }
        let mut s = s;
        loop {
            if s & LIVE == 0 || gen_of(s) != c.generation {
                // Gone meanwhile: its retire did not see the bit.
                self.helpers.release(slot, c.idx, c.generation);
                return false;
            }
            match e
                .state
                .compare_exchange_weak(s, s | HELPER, AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(x) => s = x,
            }
        }
        self.helpers.count(h::H_ATTACHED);
        true
    }

    /// The helper of connection `c` and its record, if it has one.
    pub(crate) fn helper_of(&self, c: ConnId) -> Option<(HelperKind, u16)> {
        let slot = (self.entries[c.idx as usize].mark.load(Acquire) >> SLOT_SHIFT) as u16;
        let slot = slot.checked_sub(1)?;
        Some((self.helpers.kind(slot, c.idx, c.generation)?, slot))
    }

    /// The helper of the connection `c` names, for listings.
    pub fn helper(&self, c: ConnId) -> Option<HelperKind> {
        self.helper_of(c).map(|(k, _)| k)
    }

    /// A helper connection left the table: its record and expectations go.
    pub(super) fn helper_retired(&self, idx: u32, generation: u16) {
        let slot = (self.entries[idx as usize].mark.load(Acquire) >> SLOT_SHIFT) as u16;
        let Some(slot) = slot.checked_sub(1) else {
            return;
        };
        if self.helpers.kind(slot, idx, generation).is_some()
            && self
                .expect
                .remove_master(idx, generation, self.helpers.expect_word(slot))
        {
            self.helpers.count(h::H_EXPECT_REMOVED);
        }
        self.helpers.release(slot, idx, generation);
    }

    /// Adds expectation `e` (see [`crate::conntrack::expect`]); the port
    /// it expects (another than `e.key.dport` only if `may_move`).
    pub fn expect(
        &self,
        e: &Expectation,
        dir_of_expected: Dir,
        may_move: bool,
        now: u64,
    ) -> Result<u16, ExpectError> {
        let nm = now_ms(now);
        let e = Expectation {
            expires_ms: (nm + e.helper.expect_timeout_ms()) & EXP_MASK,
            ..*e
        };
        // The master's helper record keeps its expectation's slot.
        let Some((_, slot)) = self.helper_of(e.master) else {
            return Err(ExpectError::Full);
        };
        let r = self.expect.add(
            &e,
            dir_of_expected,
            may_move,
            self.helpers.expect_word(slot),
            nm,
            |ev| {
                self.helpers.count(match ev {
                    Event::Expired => h::H_EXPECT_EXPIRED,
                    Event::MasterFull => h::H_EXPECT_MASTER_FULL,
                    Event::Replaced => h::H_EXPECT_REMOVED,
                })
            },
        );
        match r {
            Ok(_) => self.helpers.count(h::H_EXPECT_CREATED),
            Err(_) => self.helpers.count(h::H_EXPECT_FULL),
        }
        r
    }

    /// The expectation a first packet with tuple `key` fulfils, taken out
    /// of the table (the packet is RELATED; its connection is confirmed
    /// as usual). Costs one shared load while no expectation exists.
    #[inline]
    pub fn take_expected(&self, key: &FlowKey, now: u64) -> Option<Expectation> {
        if !self.expect.any() {
            return None;
        }
        self.take_expected_slow(key, now)
    }

    #[cold]
    #[inline(never)]
    fn take_expected_slow(&self, key: &FlowKey, now: u64) -> Option<Expectation> {
        let nm = now_ms(now);
        let e = self
            .expect
            .take_match(key, nm, || self.helpers.count(h::H_EXPECT_EXPIRED))?;
        // Its master must still be there (a master's retire removes its
        // expectations; this closes the race with that removal).
        if !self.is_live(e.master) {
            return None;
        }
        self.helpers.count(h::H_EXPECT_USED);
        Some(e)
    }

    /// Calls `f` with every live expectation (`conntrack -L expect`).
    pub fn for_each_expectation(&self, f: impl FnMut(&Expectation)) {
        self.expect.for_each(f);
    }

    /// Helper and expectation counters.
    pub fn helper_stats(&self) -> HelperStats {
        self.helpers.stats()
    }

    /// Counts a helper event (the pipeline's slow path).
    pub(crate) fn helper_count(&self, c: usize) {
        self.helpers.count(c);
    }

    /// Sweeps `budget` expectation slots (with [`Conntrack::expire`]).
    pub(super) fn expire_expectations(&self, nm: u64, budget: usize) {
        let n = self.expect.expire(nm, budget);
        for _ in 0..n {
            self.helpers.count(h::H_EXPECT_EXPIRED);
        }
    }
}
