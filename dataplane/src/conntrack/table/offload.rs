//! The connection table's side of the XDP offload (issue 16; the program
//! is `io/afxdp/offload.bpf.c`, the control thread's part
//! `control/src/offload.rs`): one word per entry saying which directions
//! a worker asked to offload and which the control thread installed in
//! the program's map, and the way the program's counts come back.
//!
//! The word: offload epoch (16 bits) | entry generation (10) | installed
//! directions (2) | requested directions (2). A word whose epoch or
//! generation is not the current one reads as empty, so a flush of the
//! offload (a reload, a route change: [`Conntrack::offload_flush`]) and an
//! entry's reuse by another connection clear every word at once without
//! touching them. Only a packet of an offloadable connection reads its
//! word (one more cache line, beside the entry); only the first such
//! packet of a direction writes it (one compare-and-swap: exactly one
//! worker wins and queues the direction to the control thread).

use super::*;
use std::sync::atomic::AtomicU32;

const INSTALLED_SHIFT: u32 = 2;
const GEN_SHIFT_W: u32 = 4;
const EPOCH_SHIFT: u32 = 16;

impl Conntrack {
    /// Whether the table keeps offload words (`CtConfig::offload`).
    #[inline]
    pub fn offload_enabled(&self) -> bool {
        !self.offload.is_empty()
    }

    /// The word's direction bits for connection `c`, or 0 when the word
    /// belongs to another epoch or to the entry's earlier life.
    #[inline]
    fn offload_bits(&self, c: ConnId, w: u32) -> u32 {
        if w & !0xf == self.offload_head(c) {
            w & 0xf
        } else {
            0
        }
    }

    /// The word's high part for `c` in the current epoch.
    #[inline]
    fn offload_head(&self, c: ConnId) -> u32 {
        let epoch = self.offload_epoch.load(Relaxed) as u16;
        u32::from(epoch) << EPOCH_SHIFT | u32::from(c.generation) << GEN_SHIFT_W
    }

    /// Whether `c`'s direction was asked for already (in this epoch).
    #[inline]
    pub fn offload_requested(&self, c: ConnId) -> bool {
        let Some(w) = self.offload.get(c.idx as usize) else {
            return true;
        };
        self.offload_bits(c, w.load(Relaxed)) & (1 << c.dir as u32) != 0
    }

    /// Whether entry `idx` (state word `s`) counts as expired at `nm`
    /// (ms): past its expiry and not held by the offload.
    #[inline]
    pub(super) fn dead(&self, idx: u32, s: u64, nm: u64) -> bool {
        expired(s, nm) && !self.offload_installed(idx, s)
    }

    /// Whether some direction of `c` is in the program's map.
    pub fn offload_installed_conn(&self, c: ConnId) -> bool {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        s & LIVE != 0 && gen_of(s) == c.generation && self.offload_installed(c.idx, s)
    }

    /// Retires `c` if its expiry has passed (the control thread, once it
    /// removed the connection's entries). True if it went.
    pub fn expire_due(&self, c: ConnId, now: u64) -> bool {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        s & LIVE != 0
            && gen_of(s) == c.generation
            && self.dead(c.idx, s, now_ms(now))
            && self.retire(c.idx, c.generation, Retired::Expired, false)
    }

    /// Whether some direction of `c` was asked for (in this epoch).
    #[inline]
    pub fn offload_any(&self, c: ConnId) -> bool {
        self.offload
            .get(c.idx as usize)
            .is_some_and(|w| self.offload_bits(c, w.load(Relaxed)) != 0)
    }

    /// Asks for `c`'s direction: true for the one caller that set the bit
    /// (it queues the direction to the control thread).
    pub fn offload_request(&self, c: ConnId) -> bool {
        let Some(w) = self.offload.get(c.idx as usize) else {
            return false;
        };
        let head = self.offload_head(c);
        let bit = 1 << c.dir as u32;
        let mut cur = w.load(Relaxed);
        loop {
            let bits = if cur & !0xf == head { cur & 0xf } else { 0 };
            if bits & bit != 0 || !self.is_live(c) {
                return false;
            }
            match w.compare_exchange_weak(cur, head | bits | bit, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(x) => cur = x,
            }
        }
    }

    /// Records that direction `dir` of `c` is in the program's map
    /// (`installed`) or left it; `forget` also clears the request, so a
    /// worker may ask again (the entry went for a reason that passes: a
    /// neighbour to confirm). False when the word is not `c`'s (the
    /// connection or the epoch changed meanwhile).
    pub fn offload_mark(&self, c: ConnId, dir: Dir, installed: bool, forget: bool) -> bool {
        let Some(w) = self.offload.get(c.idx as usize) else {
            return false;
        };
        let head = self.offload_head(c);
        let mut cur = w.load(Relaxed);
        loop {
            if cur & !0xf != head {
                return false;
            }
            let mut new = cur;
            let ibit = 1 << (INSTALLED_SHIFT + dir as u32);
            if installed {
                new |= ibit
            } else {
                new &= !ibit
            }
            if forget {
                new &= !(1 << dir as u32);
            }
            match w.compare_exchange_weak(cur, new, SeqCst, Relaxed) {
                Ok(_) => return true,
                Err(x) => cur = x,
            }
        }
    }

    /// Whether some direction of entry `idx` (generation of state word
    /// `s`) is installed: then only the control thread ends the
    /// connection, after removing its entries (an entry still forwarding
    /// must not outlive its connection's NAT binding).
    pub(super) fn offload_installed(&self, idx: u32, s: u64) -> bool {
        let Some(w) = self.offload.get(idx as usize) else {
            return false;
        };
        std::sync::atomic::fence(SeqCst);
        let c = ConnId {
            idx,
            generation: gen_of(s),
            dir: Dir::Original,
        };
        self.offload_bits(c, w.load(Relaxed)) >> INSTALLED_SHIFT != 0
    }

    /// Voids every request and installation at once (the control thread
    /// empties the program's map with it): a reload or a route change may
    /// change what the workers would do to any connection.
    pub fn offload_flush(&self) {
        self.offload_epoch.fetch_add(1, Relaxed);
    }

    /// Folds what the program forwarded for direction `dir` of `c` since
    /// the last call into the connection: `packets` and `bytes` counted,
    /// the expiry moved to `last_seen_ns` plus the timeout of the
    /// connection's state (as if a worker had seen the last packet; never
    /// earlier than it is). TCP windows are not tracked while offloaded
    /// (the connection is liberal from its offload on, as Linux's
    /// flowtable makes it). False if the connection is gone.
    pub fn offload_fold(
        &self,
        c: ConnId,
        dir: Dir,
        packets: u32,
        bytes: u64,
        last_seen_ns: u64,
    ) -> bool {
        let e = &self.entries[c.idx as usize];
        let mut s = e.state.load(Acquire);
        loop {
            if s & LIVE == 0 || gen_of(s) != c.generation {
                return false;
            }
            let timeout = if proto_of(s) == PROTO_TCP {
                self.tcp_timeout(tcp_of(s), s & SEEN_REPLY != 0)
            } else {
                self.timeouts.other(proto_of(s), s & SEEN_REPLY != 0)
            };
            let want = (now_ms(last_seen_ns) + timeout) & EXP_MASK;
            let ahead = want.wrapping_sub(s & EXP_MASK) & EXP_MASK;
            if packets == 0 || ahead == 0 || ahead >= 1 << (EXP_BITS - 1) {
                break;
            }
            let new = (s & !EXP_MASK) | want;
            match e.state.compare_exchange_weak(s, new, AcqRel, Acquire) {
                Ok(_) => break,
                Err(x) => s = x,
            }
        }
        let d = dir as usize;
        let (p, b) = (&e.packets[d], &e.bytes[d]);
        p.fetch_add(packets, Relaxed);
        b.fetch_add(bytes, Relaxed);
        true
    }

    /// Stops checking TCP windows for `c` (both directions), as Linux's
    /// flowtable does for an offloaded connection: the workers no longer
    /// see every segment, so a window they remember would wrongly refuse
    /// the connection's later ones.
    pub fn tcp_liberal_conn(&self, c: ConnId) {
        if self.is_live(c) {
            self.window_liberal(c.idx);
        }
    }

    /// The connection's TCP state, if it is still there.
    pub fn tcp_state(&self, c: ConnId) -> Option<TcpState> {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        (s & LIVE != 0 && gen_of(s) == c.generation).then(|| tcp_of(s))
    }
}

/// The words of a table for `flows` connections (none without offload).
pub(super) fn words(flows: usize, offload: bool) -> Box<[AtomicU32]> {
    if offload {
        (0..flows).map(|_| AtomicU32::new(0)).collect()
    } else {
        Box::new([])
    }
}
