//! The shared, lock-free connection table (design in `mod.rs`).
//!
//! Packet path: [`Conntrack::lookup`] then [`Conntrack::update`] for a
//! known connection, [`Conntrack::insert`] for a first packet
//! ([`Conntrack::track`] does all three). Control path: [`Conntrack::expire`]
//! (incremental sweep), [`Conntrack::for_each`], [`Conntrack::stats`].
//! Changes only the table; every method takes `&self` and is safe to call
//! from any number of threads at once.
//!
//! Here: the memory layout (entries, the index, the state word) and the
//! index's mechanics (link, walk, free list, retire, expiry). The packet
//! path is in `lookup.rs`, first packets in `insert.rs`, the types handed
//! out in `types.rs`.

#[cfg(test)]
mod check;
mod helpers;
mod insert;
mod lookup;
mod offload;
mod types;
mod window;

pub use types::{
    ConnId, CtConfig, CtStats, Flow, Found, InsertError, RetireHook, Retired, Tracked,
};

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, fence};

use crossbeam_utils::CachePadded;

use super::key::{FlowKey, PROTO_TCP};
use super::limit::SourceCounts;
use super::tcp::TcpState;
use super::timeouts::{Timeouts, TimeoutsMs};
use super::{CtState, Dir};
use crate::addr::v4_key;

// The state word of an entry.
const EXP_BITS: u32 = 35;
const EXP_MASK: u64 = (1 << EXP_BITS) - 1;
const SEEN_REPLY: u64 = 1 << 35;
const ASSURED: u64 = 1 << 36;
/// The reply tuple is not the original reversed: the connection is NAT'd.
const NAT: u64 = 1 << 37;
/// Both tuples are IPv4: their addresses are packed in the hot line.
const V4: u64 = 1 << 38;
/// A helper is attached (FTP, TFTP): the connection's packets take the
/// helper's slow path (`conntrack::helper`); its record's index is in the
/// high 16 bits of the `mark` word. The one bit a packet of any other
/// connection pays for helpers: tested on the state word it already read.
pub(crate) const HELPER: u64 = 1 << 61;
const STATUS_MASK: u64 = SEEN_REPLY | ASSURED | NAT | V4 | HELPER;
const TCP_SHIFT: u32 = 39;
const PROTO_SHIFT: u32 = 43;
const PROTO_MASK: u64 = 0xff << PROTO_SHIFT;
const GEN_SHIFT: u32 = 51;
/// 10 bits of generation (the 11th is [`HELPER`]).
const GEN_MASK: u64 = 0x3ff << GEN_SHIFT;
const GEN_LIMIT: u16 = 0x3ff;
/// The `mark` word's bits holding a helper connection's record + 1.
const SLOT_SHIFT: u32 = 48;
const BUSY: u64 = 1 << 62;
const LIVE: u64 = 1 << 63;
const IN_USE: u64 = LIVE | BUSY;

/// Buckets the early drop looks at (4 x 15 slots).
const EARLY_DROP_BUCKETS: usize = 4;
/// The largest table: entry index + 1, direction and >= 3 tag bits fit a slot.
const MAX_FLOWS: usize = 1 << 28;

#[inline]
fn now_ms(now: u64) -> u64 {
    (now / 1_000_000) & EXP_MASK
}

/// Whether a state word's expiry time is at or before `now_ms`.
#[inline]
fn expired(s: u64, now_ms: u64) -> bool {
    now_ms.wrapping_sub(s & EXP_MASK) & EXP_MASK < 1 << (EXP_BITS - 1)
}

#[inline]
fn gen_of(s: u64) -> u16 {
    ((s & GEN_MASK) >> GEN_SHIFT) as u16
}

#[inline]
fn proto_of(s: u64) -> u8 {
    (s >> PROTO_SHIFT) as u8
}

#[inline]
fn tcp_of(s: u64) -> TcpState {
    TcpState::from_code((s >> TCP_SHIFT) as u8 & 0xf)
}

/// One connection's hot line: 64 bytes, one cache line, all atomics.
/// Everything a packet of an IPv4 connection reads or writes is here; an
/// IPv6 connection keeps three of its four addresses in the table's
/// [`Cold`] side array (112 bytes per connection either way).
#[derive(Default)]
#[repr(C, align(64))]
struct Entry {
    /// LIVE, BUSY, generation, protocol, TCP state, status, expiry.
    state: AtomicU64,
    /// Original sport, dport, reply sport, dport (16 bits each, from the
    /// low end). While the entry is free: the free list's link.
    ports: AtomicU64,
    /// IPv4 ([`V4`] set): original src | dst << 32, then reply src |
    /// dst << 32. IPv6: the original source, (low, high) words.
    addr: [AtomicU64; 2],
    /// Generation (high 32 bits) and mark, so a stale handle cannot mark
    /// the connection that reused the entry.
    mark: AtomicU64,
    bytes: [AtomicU64; 2],
    packets: [AtomicU32; 2],
}

/// The rest of an IPv6 connection's addresses: original dst, reply src,
/// reply dst, each (low, high) words. Untouched for IPv4.
type Cold = [AtomicU64; 6];

const _: () = assert!(std::mem::size_of::<Entry>() == 64);

impl Conntrack {
    /// Entry `idx`'s `dir` tuple; `s` is its state word (protocol, family).
    #[inline]
    fn key(&self, idx: u32, dir: usize, s: u64) -> FlowKey {
        let e = &self.entries[idx as usize];
        let p = e.ports.load(Relaxed) >> (32 * dir);
        let (src, dst) = if s & V4 != 0 {
            let a = e.addr[dir].load(Relaxed);
            (v4_key(a as u32), v4_key((a >> 32) as u32))
        } else {
            let c = &self.cold[idx as usize];
            let w = |a: &AtomicU64, b: &AtomicU64| {
                a.load(Relaxed) as u128 | (b.load(Relaxed) as u128) << 64
            };
            if dir == 0 {
                (w(&e.addr[0], &e.addr[1]), w(&c[0], &c[1]))
            } else {
                (w(&c[2], &c[3]), w(&c[4], &c[5]))
            }
        };
        FlowKey {
            src,
            dst,
            sport: p as u16,
            dport: (p >> 16) as u16,
            proto: proto_of(s),
        }
    }

    /// Stores entry `idx`'s addresses of both tuples (`v4`: packed).
    fn write_keys(&self, idx: u32, orig: &FlowKey, reply: &FlowKey, v4: bool) {
        let e = &self.entries[idx as usize];
        if v4 {
            let pack = |k: &FlowKey| k.src as u32 as u64 | (k.dst as u32 as u64) << 32;
            e.addr[0].store(pack(orig), Relaxed);
            e.addr[1].store(pack(reply), Relaxed);
            return;
        }
        let c = &self.cold[idx as usize];
        let words = [orig.src, orig.dst, reply.src, reply.dst]
            .into_iter()
            .flat_map(|a| [a as u64, (a >> 64) as u64]);
        for (slot, w) in e.addr.iter().chain(c.iter()).zip(words) {
            slot.store(w, Relaxed);
        }
    }
}

/// 15 index slots and the count of entries that probed past this bucket.
#[derive(Default)]
#[repr(C, align(64))]
struct Bucket {
    slots: [AtomicU32; 15],
    overflow: AtomicU32,
}

const C_INSERTED: usize = 0;
const C_EVICTED: usize = 1;
const C_REFUSED: usize = 2;
const C_EXPIRED: usize = 3;
const C_KILLED: usize = 4;
const C_CLASHES: usize = 5;
const C_SOURCE_LIMITED: usize = 6;
const C_OUT_OF_WINDOW: usize = 7;

/// The connection table shared by all workers.
pub struct Conntrack {
    entries: Box<[Entry]>,
    cold: Box<[Cold]>,
    /// TCP window state, one 32-byte record per entry (`window.rs`).
    win: Box<[window::Win]>,
    index: Box<[Bucket]>,
    idx_bits: u32,
    /// `(1 << idx_bits) - 1`: a slot's entry index + 1.
    idx_mask: u32,
    seed: u64,
    tcp_loose: bool,
    /// `[conntrack] tcp_be_liberal`: windows not checked.
    tcp_liberal: AtomicBool,
    timeouts: TimeoutsMs,
    /// Free-list head: ABA tag (high 32 bits), entry index + 1 (0: empty).
    free: CachePadded<AtomicU64>,
    /// The sweep's position.
    cursor: CachePadded<AtomicU64>,
    counters: [CachePadded<AtomicU64>; 8],
    on_retire: Option<RetireHook>,
    /// Helper connections' records (FTP, TFTP: seqadj, line state).
    pub(crate) helpers: crate::conntrack::helper::HelperSlots,
    /// Connections helpers expect (`conntrack -L expect`).
    pub(crate) expect: crate::conntrack::expect::Expectations,
    /// Live connections per original source (capped: `CtConfig::per_source`).
    sources: SourceCounts,
    /// Per entry: the XDP offload's word (`offload.rs`); empty without.
    offload: Box<[AtomicU32]>,
    /// The offload's epoch: words of another epoch read as empty.
    offload_epoch: AtomicU32,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("capacity", &self.capacity())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Conntrack {
    /// A table for `flows` connections with the given timeouts.
    pub fn new(flows: usize, timeouts: Timeouts) -> Self {
        Self::with_config(CtConfig {
            timeouts,
            ..CtConfig::new(flows)
        })
    }

    /// A table built from `cfg`. Allocates everything it will ever use.
    ///
    /// # Panics
    /// If `cfg.flows` is 0 or above 2^28.
    pub fn with_config(cfg: CtConfig) -> Self {
        let n = cfg.flows;
        assert!(
            n > 0 && n <= MAX_FLOWS,
            "conntrack flows must be 1..=2^28, not {n}"
        );
        // Huge pages before the first touch: lookups land at random.
        let mut entries: Vec<Entry> = Vec::with_capacity(n);
        crate::mem::advise_hugepages(entries.spare_capacity_mut());
        entries.extend((0..n).map(|_| Entry::default()));
        let entries = entries.into_boxed_slice();
        let mut cold: Vec<Cold> = Vec::with_capacity(n);
        crate::mem::advise_hugepages(cold.spare_capacity_mut());
        cold.extend((0..n).map(|_| Cold::default()));
        let cold = cold.into_boxed_slice();
        let mut win: Vec<window::Win> = Vec::with_capacity(n);
        crate::mem::advise_hugepages(win.spare_capacity_mut());
        win.extend((0..n).map(|_| window::Win::default()));
        let win = win.into_boxed_slice();
        // Free list: 0 -> 1 -> ... -> n-1.
        for (i, e) in entries.iter().enumerate() {
            let next = if i + 1 < n { i as u64 + 2 } else { 0 };
            e.ports.store(next, Relaxed);
        }
        // 2 slots per flow at <= 80% of 15 per bucket.
        let buckets = n.div_ceil(6).max(2);
        let mut index: Vec<Bucket> = Vec::with_capacity(buckets);
        crate::mem::advise_hugepages(index.spare_capacity_mut());
        index.extend((0..buckets).map(|_| Bucket::default()));
        let index = index.into_boxed_slice();
        let idx_bits = u32::BITS - (n as u32).leading_zeros();
        let seed = cfg
            .seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64));
        Conntrack {
            entries,
            cold,
            win,
            index,
            idx_bits,
            idx_mask: (1 << idx_bits) - 1,
            seed,
            tcp_loose: cfg.tcp_loose,
            tcp_liberal: AtomicBool::new(cfg.tcp_be_liberal),
            timeouts: TimeoutsMs::from(&cfg.timeouts),
            free: CachePadded::new(AtomicU64::new(1)),
            cursor: CachePadded::new(AtomicU64::new(0)),
            counters: Default::default(),
            on_retire: cfg.on_retire,
            helpers: crate::conntrack::helper::HelperSlots::new(cfg.helper_conns),
            expect: crate::conntrack::expect::Expectations::new(cfg.expectations, seed ^ 0xe8),
            sources: SourceCounts::new(cfg.per_source, seed ^ 0x50c3),
            offload: offload::words(n, cfg.offload),
            offload_epoch: AtomicU32::new(0),
        }
    }

    /// Live connections one original source address may hold (0: no
    /// limit; see [`crate::conntrack::limit`]). May be changed at any time.
    pub fn set_per_source_limit(&self, limit: u32) {
        self.sources.set_limit(limit);
    }

    /// Live connections of source `src` (its hash bucket's count).
    pub fn source_count(&self, src: u128) -> u32 {
        self.sources.count(src)
    }

    /// Connections the table holds at most.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Connections in the table now (exact when no operation is running).
    pub fn len(&self) -> usize {
        self.stats().live as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated: entries (hot, cold and TCP window) and index.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
            + std::mem::size_of_val(&*self.cold)
            + std::mem::size_of_val(&*self.win)
            + std::mem::size_of_val(&*self.index)
    }

    /// Bytes of the helper records and the expectation table (fixed by
    /// `CtConfig::helper_conns` and `expectations`, not per flow: 64 and
    /// 128 bytes each, 384 KiB by default).
    pub fn helper_memory_bytes(&self) -> usize {
        self.helpers.memory_bytes() + self.expect.memory_bytes()
    }

    /// Bytes allocated per connection of capacity.
    pub fn bytes_per_flow(&self) -> f64 {
        self.memory_bytes() as f64 / self.capacity() as f64
    }

    /// Size of one connection's entry, hot line, cold addresses and TCP
    /// window record (the index adds ~10.7 bytes per flow).
    pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>()
        + std::mem::size_of::<Cold>()
        + std::mem::size_of::<window::Win>();

    pub fn stats(&self) -> CtStats {
        let c = |i: usize| self.counters[i].load(Relaxed);
        let (inserted, evicted, expired, killed) =
            (c(C_INSERTED), c(C_EVICTED), c(C_EXPIRED), c(C_KILLED));
        CtStats {
            live: inserted.saturating_sub(evicted + expired + killed),
            inserted,
            evicted,
            refused: c(C_REFUSED),
            expired,
            killed,
            clashes: c(C_CLASHES),
            source_limited: c(C_SOURCE_LIMITED),
            tcp_out_of_window: c(C_OUT_OF_WINDOW),
        }
    }

    /// The table's hash of a key (for batching: hash once, look up later).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        key.hash(self.seed)
    }

    // ---- index ----

    #[inline]
    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.index.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.index.len() { 0 } else { b + 1 }
    }

    #[inline]
    fn tag_mask(&self) -> u32 {
        u32::MAX << (self.idx_bits + 1)
    }

    #[inline]
    fn slot_value(&self, h: u64, dir: Dir, idx: u32) -> u32 {
        (h as u32 & self.tag_mask()) | (dir as u32) << self.idx_bits | (idx + 1)
    }

    #[inline]
    fn slot_entry(&self, v: u32) -> (u32, usize) {
        let idx = (v & self.idx_mask) - 1;
        (idx, (v >> self.idx_bits) as usize & 1)
    }

    /// Publishes entry `idx`'s `dir` tuple (hash `h`) in the index.
    fn link(&self, idx: u32, dir: Dir, h: u64) {
        let v = self.slot_value(h, dir, idx);
        let mut b = self.home(h);
        loop {
            let bucket = &self.index[b];
            for slot in &bucket.slots {
                if slot.load(Relaxed) == 0 && slot.compare_exchange(0, v, SeqCst, Relaxed).is_ok() {
                    return;
                }
            }
            // Full: later lookups of this chain must look further.
            bucket.overflow.fetch_add(1, SeqCst);
            b = self.next(b);
        }
    }

    /// Removes entry `idx`'s `dir` slot; the caller owns the entry.
    fn unlink(&self, idx: u32, dir: Dir) {
        let key = self.key(
            idx,
            dir as usize,
            self.entries[idx as usize].state.load(Relaxed),
        );
        let h = self.hash(&key);
        let v = self.slot_value(h, dir, idx);
        let home = self.home(h);
        let mut b = home;
        loop {
            for slot in &self.index[b].slots {
                if slot.load(Relaxed) == v && slot.compare_exchange(v, 0, SeqCst, Relaxed).is_ok() {
                    let mut c = home;
                    while c != b {
                        self.index[c].overflow.fetch_sub(1, SeqCst);
                        c = self.next(c);
                    }
                    return;
                }
            }
            b = self.next(b);
            if b == home {
                debug_assert!(false, "conntrack: slot of entry {idx} not found");
                return;
            }
        }
    }

    /// The state word of entry `idx` if its state has a bit of `life` and
    /// its `dir` tuple is `key`, read consistently (seqlock on the
    /// generation).
    #[inline]
    fn matches(&self, idx: u32, dir: usize, key: &FlowKey, life: u64) -> Option<u64> {
        let e = &self.entries[idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & life == 0 || proto_of(s1) != key.proto {
            return None;
        }
        let k = self.key(idx, dir, s1);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        if s2 & life == 0 || (s1 ^ s2) & GEN_MASK != 0 {
            return None;
        }
        (k == *key).then_some(s2)
    }

    /// Walks the bucket chain of `h`, calling `f` on each slot whose tag
    /// matches; stops at `Some`.
    #[inline]
    fn walk<T>(&self, h: u64, mut f: impl FnMut(u32, usize) -> Option<T>) -> Option<T> {
        let mask = self.tag_mask();
        let tag = h as u32 & mask;
        let mut b = self.home(h);
        for _ in 0..self.index.len() {
            let bucket = &self.index[b];
            for slot in &bucket.slots {
                let v = slot.load(SeqCst);
                if v != 0 && v & mask == tag {
                    let (idx, dir) = self.slot_entry(v);
                    if let Some(r) = f(idx, dir) {
                        return Some(r);
                    }
                }
            }
            if bucket.overflow.load(SeqCst) == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    // ---- free list ----

    fn pop_free(&self) -> Option<u32> {
        let mut h = self.free.load(Acquire);
        loop {
            let top = h as u32;
            if top == 0 {
                return None;
            }
            let next = self.entries[top as usize - 1].ports.load(Relaxed) as u32;
            let new = ((h >> 32) + 1) << 32 | u64::from(next);
            match self.free.compare_exchange_weak(h, new, Acquire, Acquire) {
                Ok(_) => return Some(top - 1),
                Err(x) => h = x,
            }
        }
    }

    fn push_free(&self, idx: u32) {
        let e = &self.entries[idx as usize];
        let mut h = self.free.load(Relaxed);
        loop {
            e.ports.store(h & 0xffff_ffff, Relaxed);
            let new = ((h >> 32) + 1) << 32 | u64::from(idx + 1);
            match self.free.compare_exchange_weak(h, new, Release, Relaxed) {
                Ok(_) => return,
                Err(x) => h = x,
            }
        }
    }

    // ---- removal ----

    /// Takes entry `idx` of generation `generation` out of the table if it is
    /// still live: exactly one caller wins. The winner unlinks it, tells
    /// the hook, counts it, and pushes it on the free list unless `keep`
    /// (then the entry is the caller's).
    fn retire(&self, idx: u32, generation: u16, why: Retired, keep: bool) -> bool {
        let e = &self.entries[idx as usize];
        let mut s = e.state.load(Acquire);
        loop {
            if s & LIVE == 0 || gen_of(s) != generation {
                return false;
            }
            match e
                .state
                .compare_exchange_weak(s, s & !IN_USE, AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(x) => s = x,
            }
        }
        let flow = self.read_flow(idx, s);
        self.sources.leave(flow.original.src);
        if s & HELPER != 0 {
            self.helper_retired(idx, generation);
        }
        if let Some(hook) = &self.on_retire {
            hook(&flow, why);
        }
        self.unlink(idx, Dir::Original);
        self.unlink(idx, Dir::Reply);
        let c = match why {
            Retired::Expired => C_EXPIRED,
            Retired::Evicted => C_EVICTED,
            Retired::Killed => C_KILLED,
        };
        self.counters[c].fetch_add(1, Relaxed);
        if !keep {
            self.push_free(idx);
        }
        true
    }

    /// Removes a connection (e.g. `conntrack -D`). False if already gone,
    /// or offloaded: the control thread removes its entries first
    /// ([`Conntrack::offload_installed_conn`]).
    pub fn remove(&self, c: ConnId) -> bool {
        if self.offload_installed_conn(c) {
            return false;
        }
        self.retire(c.idx, c.generation, Retired::Killed, false)
    }

    /// Incremental expiry: examines the next `budget` entries (a shared
    /// cursor, so concurrent callers take disjoint ranges) and removes the
    /// expired ones. Returns how many it removed. Never blocks a worker.
    pub fn expire(&self, now: u64, budget: usize) -> usize {
        let cap = self.entries.len() as u64;
        let nm = now_ms(now);
        self.expire_expectations(nm, budget);
        let start = self.cursor.fetch_add(budget as u64, Relaxed);
        let mut n = 0;
        // One division per call, not one per entry (a 64-bit divide costs
        // tens of cycles, and workers call this every burst).
        let mut next = start % cap;
        for _ in 0..(budget as u64).min(cap) {
            let idx = next as u32;
            next = if next + 1 == cap { 0 } else { next + 1 };
            let s = self.entries[idx as usize].state.load(Acquire);
            if s & LIVE != 0
                && self.dead(idx, s, nm)
                && self.retire(idx, gen_of(s), Retired::Expired, false)
            {
                n += 1;
            }
        }
        n
    }

    // ---- per-connection data ----

    /// Sets the connection's mark (`CONNMARK`). False if it is gone.
    pub fn set_mark(&self, c: ConnId, mark: u32) -> bool {
        let e = &self.entries[c.idx as usize];
        let mut m = e.mark.load(Relaxed);
        loop {
            if (m >> 32) as u16 != c.generation || !self.is_live(c) {
                return false;
            }
            let new =
                u64::from(c.generation) << 32 | u64::from(mark) | (m >> SLOT_SHIFT) << SLOT_SHIFT;
            match e.mark.compare_exchange_weak(m, new, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(x) => m = x,
            }
        }
    }

    /// The connection's mark, if it is still there.
    pub fn mark(&self, c: ConnId) -> Option<u32> {
        let m = self.entries[c.idx as usize].mark.load(Relaxed);
        ((m >> 32) as u16 == c.generation && self.is_live(c)).then_some(m as u32)
    }

    fn is_live(&self, c: ConnId) -> bool {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        s & LIVE != 0 && gen_of(s) == c.generation
    }

    /// A copy of the connection, if it is still there.
    pub fn get(&self, c: ConnId) -> Option<Flow> {
        let e = &self.entries[c.idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & LIVE == 0 || gen_of(s1) != c.generation {
            return None;
        }
        let f = self.read_flow(c.idx, s1);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        (s2 & LIVE != 0 && gen_of(s2) == c.generation).then_some(f)
    }

    fn read_flow(&self, idx: u32, s: u64) -> Flow {
        let e = &self.entries[idx as usize];
        Flow {
            original: self.key(idx, 0, s),
            reply: self.key(idx, 1, s),
            tcp: tcp_of(s),
            seen_reply: s & SEEN_REPLY != 0,
            assured: s & ASSURED != 0,
            mark: e.mark.load(Relaxed) as u32,
            packets: [e.packets[0].load(Relaxed), e.packets[1].load(Relaxed)],
            bytes: [e.bytes[0].load(Relaxed), e.bytes[1].load(Relaxed)],
            expires_ms: s & EXP_MASK,
            helper: if s & HELPER != 0 {
                let slot = (e.mark.load(Relaxed) >> SLOT_SHIFT) as u16;
                slot.checked_sub(1)
                    .and_then(|slot| self.helpers.kind(slot, idx, gen_of(s)))
            } else {
                None
            },
            offloaded: self.offload_installed(idx, s),
        }
    }

    /// Calls `f` with every live connection (`conntrack -L`). Concurrent
    /// changes may or may not be seen; each flow is read consistently.
    pub fn for_each(&self, mut f: impl FnMut(ConnId, &Flow)) {
        for (idx, e) in self.entries.iter().enumerate() {
            let s = e.state.load(Acquire);
            if s & LIVE == 0 {
                continue;
            }
            let c = ConnId {
                idx: idx as u32,
                generation: gen_of(s),
                dir: Dir::Original,
            };
            if let Some(flow) = self.get(c) {
                f(c, &flow);
            }
        }
    }
}

/// A packet's ctstate given its direction and the connection's state word
/// after the packet.
#[inline]
fn packet_state(dir: Dir, s: u64) -> CtState {
    if dir == Dir::Reply || s & SEEN_REPLY != 0 {
        CtState::Established
    } else {
        CtState::New
    }
}

/// Whether early drop may take this live connection.
#[inline]
fn evictable(s: u64) -> bool {
    s & ASSURED == 0 && !(proto_of(s) == PROTO_TCP && tcp_of(s) == TcpState::Established)
}
