//! Connection-tracking helpers (Linux's `nf_conntrack_helper`): a helper
//! attached to a connection reads that connection's payload and may create
//! expectations (`expect.rs`) for the connections the protocol announces
//! in it: FTP's data connections (`ftp.rs`), TFTP's transfer from a new
//! server port (`tftp.rs`).
//!
//! # Off the fast path
//!
//! A helper connection carries the [`HELPER`](super::table) bit in its
//! entry's state word, the word every lookup reads anyway; the conntrack
//! stage copies that bit into the packet's `CtMeta`, and only packets
//! with it set go to the helper's slow path (`pipeline/helper.rs`). A
//! connection without a helper pays one bit test.
//!
//! # Attaching
//!
//! A helper is attached to a new connection when it is confirmed:
//! [`Conntrack::attach_helper`](super::Conntrack::attach_helper). The
//! pipeline does it for a first packet whose `CtMeta::helper` is set: by
//! the raw table's `-j CT --helper ftp` (PREROUTING sets it), or by the
//! config shortcut `[conntrack] helpers` (a port list, looked up at
//! confirm when nothing else asked for a helper).
//!
//! # The per-connection record
//!
//! A helper connection owns one [`HelperSlots`] record (a fixed array,
//! allocated once, `CtConfig::helper_conns` of them): its helper, per
//! direction the TCP sequence adjustment (`nat::seqadj`, one packed word,
//! read and written with single atomic operations) and the sequence
//! numbers that follow a newline (FTP parses a segment only when it starts
//! a line, as Linux does). The record's index + 1 lives in the high bits of
//! the entry's `mark` word; the record is freed when the connection leaves
//! the table. No lock: a record is claimed by one compare-and-swap, and
//! one direction's fields are written by the packets of that direction
//! (one worker, as RSS sends a flow's direction to one queue).

pub mod ftp;
pub mod tftp;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crossbeam_utils::CachePadded;

use super::Dir;
use crate::nat::seqadj::SeqAdj;

/// The protocols a connection may have a helper for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HelperKind {
    /// RFC 959 / RFC 2428: PORT, EPRT, 227 and 229 replies.
    Ftp = 1,
    /// RFC 1350: the server answers from a new port.
    Tftp = 2,
}

impl HelperKind {
    pub const ALL: [HelperKind; 2] = [HelperKind::Ftp, HelperKind::Tftp];

    /// The name `-j CT --helper` and the config use.
    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Ftp => "ftp",
            HelperKind::Tftp => "tftp",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == s)
    }

    pub(crate) fn from_code(c: u64) -> Option<Self> {
        match c {
            1 => Some(HelperKind::Ftp),
            2 => Some(HelperKind::Tftp),
            _ => None,
        }
    }

    /// The transport protocol the helper reads.
    pub fn proto(self) -> u8 {
        match self {
            HelperKind::Ftp => super::PROTO_TCP,
            HelperKind::Tftp => super::PROTO_UDP,
        }
    }

    /// How long an expectation waits for its connection (Linux: 5 min).
    pub fn expect_timeout_ms(self) -> u64 {
        300_000
    }
}

/// Valid bit of a remembered sequence number.
const NL_VALID: u64 = 1 << 32;

/// One helper connection's record.
#[derive(Default)]
#[repr(C, align(64))]
struct Record {
    /// Owner: entry index + 1 | generation << 32 | helper << 48; 0: free.
    owner: AtomicU64,
    /// Per direction: the packed [`SeqAdj`].
    seqadj: [AtomicU64; 2],
    /// Per direction: two sequence numbers that follow a newline (valid
    /// bit 32), the newest in [0].
    nl: [[AtomicU64; 2]; 2],
    /// The slot + 1 of the connection's expectation (0: none).
    expect: AtomicU64,
}

/// Helper event counters (`xgate ctl stats`, /metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelperStats {
    /// Connections a helper was attached to.
    pub attached: u64,
    /// Attach refused: every record taken.
    pub attach_full: u64,
    /// Commands that did not parse (left alone, counted).
    pub parse_errors: u64,
    /// Segments holding only the start of a command (dropped, as Linux).
    pub partial: u64,
    /// Commands whose address is not the sender's (no expectation).
    pub wrong_address: u64,
    /// Payload rewrites done.
    pub rewrites: u64,
    /// Rewrites refused (no room in the frame, sequence offset too large).
    pub rewrite_refused: u64,
    pub expect_created: u64,
    /// Expectations matched by their connection.
    pub expect_used: u64,
    pub expect_expired: u64,
    /// Refused: the expectation table (or the tuple's bucket) was full.
    pub expect_full: u64,
    /// A master at its limit: its oldest expectation was replaced.
    pub expect_master_full: u64,
    /// Expectations removed with their master.
    pub expect_removed: u64,
}

pub(crate) const H_ATTACHED: usize = 0;
pub(crate) const H_ATTACH_FULL: usize = 1;
pub(crate) const H_PARSE_ERRORS: usize = 2;
pub(crate) const H_PARTIAL: usize = 3;
pub(crate) const H_WRONG_ADDRESS: usize = 4;
pub(crate) const H_REWRITES: usize = 5;
pub(crate) const H_REWRITE_REFUSED: usize = 6;
pub(crate) const H_EXPECT_CREATED: usize = 7;
pub(crate) const H_EXPECT_USED: usize = 8;
pub(crate) const H_EXPECT_EXPIRED: usize = 9;
pub(crate) const H_EXPECT_FULL: usize = 10;
pub(crate) const H_EXPECT_MASTER_FULL: usize = 11;
pub(crate) const H_EXPECT_REMOVED: usize = 12;
const H_COUNTERS: usize = 13;

/// The records of helper connections, and the helper counters.
pub struct HelperSlots {
    records: Box<[Record]>,
    /// Where the next claim starts looking.
    hint: CachePadded<AtomicU32>,
    counters: [CachePadded<AtomicU64>; H_COUNTERS],
}

/// Most records the `mark` word's 16 bits can name.
pub const MAX_HELPER_CONNS: usize = 65_535;

impl HelperSlots {
    pub(crate) fn new(n: usize) -> Self {
        let n = n.min(MAX_HELPER_CONNS);
        HelperSlots {
            records: (0..n).map(|_| Record::default()).collect(),
            hint: CachePadded::new(AtomicU32::new(0)),
            counters: Default::default(),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.records)
    }

    #[inline]
    pub(crate) fn count(&self, c: usize) {
        self.counters[c].fetch_add(1, Relaxed);
    }

    pub fn stats(&self) -> HelperStats {
        let c = |i: usize| self.counters[i].load(Relaxed);
        HelperStats {
            attached: c(H_ATTACHED),
            attach_full: c(H_ATTACH_FULL),
            parse_errors: c(H_PARSE_ERRORS),
            partial: c(H_PARTIAL),
            wrong_address: c(H_WRONG_ADDRESS),
            rewrites: c(H_REWRITES),
            rewrite_refused: c(H_REWRITE_REFUSED),
            expect_created: c(H_EXPECT_CREATED),
            expect_used: c(H_EXPECT_USED),
            expect_expired: c(H_EXPECT_EXPIRED),
            expect_full: c(H_EXPECT_FULL),
            expect_master_full: c(H_EXPECT_MASTER_FULL),
            expect_removed: c(H_EXPECT_REMOVED),
        }
    }

    fn owner_word(idx: u32, generation: u16, kind: HelperKind) -> u64 {
        (u64::from(idx) + 1) | (u64::from(generation) << 32) | ((kind as u64) << 48)
    }

    /// Claims a free record for entry `idx` (generation `generation`);
    /// its index, or `None` when all are taken.
    pub(crate) fn claim(&self, idx: u32, generation: u16, kind: HelperKind) -> Option<u16> {
        let n = self.records.len();
        if n == 0 {
            return None;
        }
        let start = self.hint.load(Relaxed) as usize % n;
        let owner = Self::owner_word(idx, generation, kind);
        for k in 0..n {
            let i = (start + k) % n;
            let r = &self.records[i];
            if r.owner.load(Relaxed) == 0
                && r.owner
                    .compare_exchange(0, u64::MAX, Acquire, Relaxed)
                    .is_ok()
            {
                // Private until the owner is published.
                for w in r
                    .seqadj
                    .iter()
                    .chain(r.nl.iter().flatten())
                    .chain([&r.expect])
                {
                    w.store(0, Relaxed);
                }
                r.owner.store(owner, Release);
                self.hint.store((i + 1) as u32, Relaxed);
                return Some(i as u16);
            }
        }
        None
    }

    /// Frees record `slot` if entry `idx` of `generation` owns it.
    pub(crate) fn release(&self, slot: u16, idx: u32, generation: u16) {
        let Some(r) = self.records.get(slot as usize) else {
            return;
        };
        let o = r.owner.load(Acquire);
        if o != u64::MAX && o as u32 == idx + 1 && (o >> 32) as u16 & 0x3ff == generation & 0x3ff {
            let _ = r.owner.compare_exchange(o, 0, AcqRel, Relaxed);
        }
    }

    /// The helper of record `slot` if entry `idx` of `generation` owns it.
    pub(crate) fn kind(&self, slot: u16, idx: u32, generation: u16) -> Option<HelperKind> {
        let o = self.records.get(slot as usize)?.owner.load(Acquire);
        if o == u64::MAX || o as u32 != idx + 1 || (o >> 32) as u16 != generation {
            return None;
        }
        HelperKind::from_code(o >> 48 & 0xff)
    }

    /// The word naming record `slot`'s expectation (`expect.rs`).
    pub(crate) fn expect_word(&self, slot: u16) -> &AtomicU64 {
        &self.records[slot as usize].expect
    }

    /// Direction `dir`'s sequence adjustment.
    #[inline]
    pub(crate) fn seqadj(&self, slot: u16, dir: Dir) -> SeqAdj {
        SeqAdj::unpack(self.records[slot as usize].seqadj[dir as usize].load(Acquire))
    }

    /// Records a rewrite of `diff` bytes in the segment at `seq` of
    /// direction `dir` (Linux's `nf_ct_seqadj_set`). False when the
    /// offset would leave the packed range (the rewrite is not done).
    pub(crate) fn record_rewrite(&self, slot: u16, dir: Dir, seq: u32, diff: i32) -> bool {
        let w = &self.records[slot as usize].seqadj[dir as usize];
        let mut cur = w.load(Acquire);
        loop {
            let Some(new) = SeqAdj::unpack(cur).record(seq, diff).pack() else {
                return false;
            };
            match w.compare_exchange_weak(cur, new, AcqRel, Acquire) {
                Ok(_) => return true,
                Err(x) => cur = x,
            }
        }
    }

    /// Whether the segment at `seq` of direction `dir` starts a line: it
    /// follows one of the two newlines last seen, or it is the
    /// direction's first segment read (then remembered as a line start,
    /// so that its retransmission is read again).
    pub(crate) fn starts_line(&self, slot: u16, dir: Dir, seq: u32) -> bool {
        let nl = &self.records[slot as usize].nl[dir as usize];
        let (a, b) = (nl[0].load(Relaxed), nl[1].load(Relaxed));
        if a & NL_VALID == 0 {
            nl[0].store(NL_VALID | u64::from(seq), Relaxed);
            return true;
        }
        let hit = |w: u64| w & NL_VALID != 0 && w as u32 == seq;
        hit(a) || hit(b)
    }

    /// Remembers that `seq` (direction `dir`) follows a newline.
    pub(crate) fn newline_at(&self, slot: u16, dir: Dir, seq: u32) {
        let nl = &self.records[slot as usize].nl[dir as usize];
        let a = nl[0].load(Relaxed);
        let w = NL_VALID | u64::from(seq);
        if a == w {
            return;
        }
        nl[1].store(a, Relaxed);
        nl[0].store(w, Relaxed);
    }
}
