//! The shared, lock-free connection table (design in `mod.rs`).
//!
//! Packet path: [`Conntrack::lookup`] then [`Conntrack::update`] for a
//! known connection, [`Conntrack::insert`] for a first packet
//! ([`Conntrack::track`] does all three). Control path: [`Conntrack::expire`]
//! (incremental sweep), [`Conntrack::for_each`], [`Conntrack::stats`].
//! Changes only the table; every method takes `&self` and is safe to call
//! from any number of threads at once.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64, fence};

use crossbeam_utils::CachePadded;

use super::key::{FlowKey, PROTO_TCP, PROTO_UDP, reverse_ports};
use super::tcp::{self, TcpState, Transition};
use super::timeouts::{Timeouts, TimeoutsMs};
use super::{CtState, Dir};
use crate::route::neighbor::v4_key;

// The state word of an entry.
const EXP_BITS: u32 = 35;
const EXP_MASK: u64 = (1 << EXP_BITS) - 1;
const SEEN_REPLY: u64 = 1 << 35;
const ASSURED: u64 = 1 << 36;
/// The reply tuple is not the original reversed: the connection is NAT'd.
const NAT: u64 = 1 << 37;
/// Both tuples are IPv4: their addresses are packed in the hot line.
const V4: u64 = 1 << 38;
const STATUS_MASK: u64 = SEEN_REPLY | ASSURED | NAT | V4;
const TCP_SHIFT: u32 = 39;
const PROTO_SHIFT: u32 = 43;
const PROTO_MASK: u64 = 0xff << PROTO_SHIFT;
const GEN_SHIFT: u32 = 51;
const GEN_MASK: u64 = 0x7ff << GEN_SHIFT;
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

/// A handle on a connection, from one direction: the entry and the
/// generation it had when found. Stale handles are detected (the
/// operations answer "gone"), never misapplied to another connection's
/// state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    idx: u32,
    generation: u16,
    dir: Dir,
}

impl ConnId {
    /// The direction of the packet that found the connection.
    pub fn dir(&self) -> Dir {
        self.dir
    }

    /// The entry's index in the table (stable for the connection's life).
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Whether both handles name the same connection (any direction).
    pub fn same_conn(&self, other: &ConnId) -> bool {
        self.idx == other.idx && self.generation == other.generation
    }
}

/// A live connection found by [`Conntrack::find_hinted`].
#[derive(Clone, Copy, Debug)]
pub struct Found {
    pub id: ConnId,
    /// The state word read (where [`Conntrack::update_found`] starts).
    state: u64,
}

/// Why an insert did not create a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The packet cannot open a connection (TCP flags, an ICMP reply, ...):
    /// its state is INVALID.
    #[error("packet cannot open a connection")]
    Invalid,
    /// A live connection already has one of the two tuples.
    #[error("a connection with this tuple exists")]
    Exists(ConnId),
    /// Lost a race with a concurrent insert of the same tuple: look up again.
    #[error("concurrent insert of the same tuple")]
    Clash,
    /// No free entry and nothing evictable near the new connection's hash.
    #[error("connection table full")]
    Full,
}

/// The outcome of [`Conntrack::track`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// The connection, if the packet has one.
    pub conn: Option<ConnId>,
    pub state: CtState,
}

/// Why a connection left the table (given to the retire hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    Expired,
    /// Evicted to make room (early drop).
    Evicted,
    /// Closed by a packet (RST answering a SYN, a reopen) or `remove`.
    Killed,
}

/// Called for every connection removed from the table, on the removing
/// thread (a worker, for lazy expiry): must not block or allocate.
pub type RetireHook = Box<dyn Fn(&Flow, Retired) + Send + Sync>;

/// How to build a [`Conntrack`].
pub struct CtConfig {
    /// Capacity: connections the table holds at most.
    pub flows: usize,
    pub timeouts: Timeouts,
    /// Hash seed; `None` draws a random one.
    pub seed: Option<u64>,
    /// Pick up TCP connections mid-stream from a lone ACK (Linux's
    /// `nf_conntrack_tcp_loose`, default on).
    pub tcp_loose: bool,
    pub on_retire: Option<RetireHook>,
}

impl CtConfig {
    pub fn new(flows: usize) -> Self {
        CtConfig {
            flows,
            timeouts: Timeouts::default(),
            seed: None,
            tcp_loose: true,
            on_retire: None,
        }
    }
}

/// A consistent copy of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub original: FlowKey,
    pub reply: FlowKey,
    /// `TcpState::None` for other protocols.
    pub tcp: TcpState,
    pub seen_reply: bool,
    pub assured: bool,
    pub mark: u32,
    /// Per direction (`Dir as usize`); 32-bit, wrapping.
    pub packets: [u32; 2],
    pub bytes: [u64; 2],
    /// Expiry time in milliseconds, modulo 2^35.
    pub expires_ms: u64,
}

impl Flow {
    /// Milliseconds until expiry at `now` (ns), 0 if past.
    pub fn remaining_ms(&self, now: u64) -> u64 {
        let d = self.expires_ms.wrapping_sub(now_ms(now)) & EXP_MASK;
        if d >= 1 << (EXP_BITS - 1) { 0 } else { d }
    }
}

/// Table-wide event counters (see [`Conntrack::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// Connections in the table now.
    pub live: u64,
    pub inserted: u64,
    /// Unassured connections dropped to make room.
    pub evicted: u64,
    /// Inserts refused because the table was full.
    pub refused: u64,
    pub expired: u64,
    /// Closed by RST, reopened, or removed.
    pub killed: u64,
    /// Inserts that backed out for a concurrent or existing duplicate.
    pub clashes: u64,
}

const C_INSERTED: usize = 0;
const C_EVICTED: usize = 1;
const C_REFUSED: usize = 2;
const C_EXPIRED: usize = 3;
const C_KILLED: usize = 4;
const C_CLASHES: usize = 5;

/// The connection table shared by all workers.
pub struct Conntrack {
    entries: Box<[Entry]>,
    cold: Box<[Cold]>,
    index: Box<[Bucket]>,
    idx_bits: u32,
    /// `(1 << idx_bits) - 1`: a slot's entry index + 1.
    idx_mask: u32,
    seed: u64,
    tcp_loose: bool,
    timeouts: TimeoutsMs,
    /// Free-list head: ABA tag (high 32 bits), entry index + 1 (0: empty).
    free: CachePadded<AtomicU64>,
    /// The sweep's position.
    cursor: CachePadded<AtomicU64>,
    counters: [CachePadded<AtomicU64>; 6],
    on_retire: Option<RetireHook>,
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
            index,
            idx_bits,
            idx_mask: (1 << idx_bits) - 1,
            seed,
            tcp_loose: cfg.tcp_loose,
            timeouts: TimeoutsMs::from(&cfg.timeouts),
            free: CachePadded::new(AtomicU64::new(1)),
            cursor: CachePadded::new(AtomicU64::new(0)),
            counters: Default::default(),
            on_retire: cfg.on_retire,
        }
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

    /// Bytes allocated: entries (hot and cold) and index.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries)
            + std::mem::size_of_val(&*self.cold)
            + std::mem::size_of_val(&*self.index)
    }

    /// Bytes allocated per connection of capacity.
    pub fn bytes_per_flow(&self) -> f64 {
        self.memory_bytes() as f64 / self.capacity() as f64
    }

    /// Size of one connection's entry, hot line and cold addresses (the
    /// index adds ~10.7 bytes per flow).
    pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<Cold>();

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
        if let Some(hook) = &self.on_retire {
            hook(&self.read_flow(idx, s), why);
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

    /// Removes a connection (e.g. `conntrack -D`). False if already gone.
    pub fn remove(&self, c: ConnId) -> bool {
        self.retire(c.idx, c.generation, Retired::Killed, false)
    }

    /// Incremental expiry: examines the next `budget` entries (a shared
    /// cursor, so concurrent callers take disjoint ranges) and removes the
    /// expired ones. Returns how many it removed. Never blocks a worker.
    pub fn expire(&self, now: u64, budget: usize) -> usize {
        let cap = self.entries.len() as u64;
        let nm = now_ms(now);
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
                && expired(s, nm)
                && self.retire(idx, gen_of(s), Retired::Expired, false)
            {
                n += 1;
            }
        }
        n
    }

    // ---- packet path ----

    /// The connection of a packet with tuple `key`, found from either
    /// direction. An expired connection is removed on the way and not
    /// returned. For an ICMP error, looking up the quoted packet's tuple
    /// tells whether the error is RELATED.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, now: u64) -> Option<ConnId> {
        self.lookup_hashed(key, self.hash(key), now)
    }

    /// [`Conntrack::lookup`] with the hash computed earlier.
    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey, h: u64, now: u64) -> Option<ConnId> {
        let (idx, dir, s) = self.walk(h, |idx, dir| {
            self.matches(idx, dir, key, LIVE).map(|s| (idx, dir, s))
        })?;
        if expired(s, now_ms(now)) {
            self.retire(idx, gen_of(s), Retired::Expired, false);
            return None;
        }
        Some(ConnId {
            idx,
            generation: gen_of(s),
            dir: if dir == 0 { Dir::Original } else { Dir::Reply },
        })
    }

    /// Starts loading the home index bucket of hash `h` (first step of a
    /// batch lookup: hash and prefetch every packet's bucket, then
    /// [`Conntrack::prefetch_entries`], then look up).
    #[inline]
    pub fn prefetch_bucket(&self, h: u64) {
        crate::mem::prefetch(&self.index[self.home(h)]);
    }

    /// Starts loading the first entry the home bucket of `h` points at
    /// with a matching tag (second step; the bucket should be in cache by
    /// now); `v6`: the packet is IPv6, so are the connections it may have.
    /// Returns that slot's value as a hint for [`Conntrack::find_hinted`]
    /// (0: none), so the lookup need not scan the bucket again.
    #[inline]
    pub fn prefetch_entries(&self, h: u64, v6: bool) -> u32 {
        let mask = self.tag_mask();
        let tag = h as u32 & mask;
        for slot in &self.index[self.home(h)].slots {
            let v = slot.load(Relaxed);
            if v != 0 && v & mask == tag {
                let (idx, _) = self.slot_entry(v);
                // The hot line: all an IPv4 connection's packet touches;
                // an IPv6 one's also reads its cold addresses (48 bytes,
                // at most two lines).
                crate::mem::prefetch(&self.entries[idx as usize]);
                if v6 {
                    let c = &self.cold[idx as usize];
                    crate::mem::prefetch(&c[0]);
                    crate::mem::prefetch(&c[5]);
                }
                // The first candidate only: a tag collision (one slot in
                // 2^tag-bits) costs that packet a walk of the chain, where
                // scanning on would cost every packet the rest of the
                // bucket.
                return v;
            }
        }
        0
    }

    /// The connection of a packet with tuple `key` (hash `h`), trying
    /// first the slot value `hint` that [`Conntrack::prefetch_entries`]
    /// returned (it may be stale or a tag collision: then the bucket chain
    /// is walked as usual). `target` holds the packet's tuple on entry;
    /// for a NAT'd connection it gets the tuple the packet leaves with,
    /// read under the same generation check. The batch path's
    /// [`Conntrack::lookup`] + [`Conntrack::translation`]; hand the result
    /// to [`Conntrack::update_found`].
    #[inline(always)]
    pub fn find_hinted(
        &self,
        key: &FlowKey,
        h: u64,
        hint: u32,
        now: u64,
        target: &mut FlowKey,
    ) -> Option<Found> {
        let nm = now_ms(now);
        let hinted = if hint != 0 {
            let (idx, dir) = self.slot_entry(hint);
            self.found(idx, dir, key, target).map(|s| (idx, dir, s))
        } else {
            None
        };
        let (idx, dir, s) = match hinted {
            Some(x) => x,
            None => self.walk(h, |idx, dir| {
                self.found(idx, dir, key, target).map(|s| (idx, dir, s))
            })?,
        };
        if expired(s, nm) {
            self.retire(idx, gen_of(s), Retired::Expired, false);
            return None;
        }
        Some(Found {
            id: ConnId {
                idx,
                generation: gen_of(s),
                dir: if dir == 0 { Dir::Original } else { Dir::Reply },
            },
            state: s,
        })
    }

    /// [`Conntrack::matches`] for a live entry; for a NAT'd connection
    /// also writes to `target` the tuple a packet of direction `dir`
    /// leaves with (the other direction's tuple reversed), only once the
    /// entry is known to match.
    #[inline(always)]
    fn found(&self, idx: u32, dir: usize, key: &FlowKey, target: &mut FlowKey) -> Option<u64> {
        let e = &self.entries[idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & LIVE == 0 || proto_of(s1) != key.proto {
            return None;
        }
        if s1 & V4 != 0 {
            return self.found_v4(e, dir, key, s1, target);
        }
        let k = self.key(idx, dir, s1);
        let translated = (s1 & NAT != 0).then(|| self.key(idx, 1 - dir, s1).reverse());
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        if s2 & LIVE == 0 || (s1 ^ s2) & GEN_MASK != 0 || k != *key {
            return None;
        }
        if let Some(t) = translated {
            *target = t;
        }
        Some(s2)
    }

    /// [`Conntrack::found`] for an IPv4 entry (state word `s1`): the
    /// packed addresses and ports of the hot line are compared as words,
    /// and the target is unpacked only for a NAT'd connection.
    #[inline(always)]
    fn found_v4(
        &self,
        e: &Entry,
        dir: usize,
        key: &FlowKey,
        s1: u64,
        target: &mut FlowKey,
    ) -> Option<u64> {
        let ports = e.ports.load(Relaxed);
        let addr = e.addr[dir].load(Relaxed);
        let other = e.addr[1 - dir].load(Relaxed);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        if s2 & LIVE == 0 || (s1 ^ s2) & GEN_MASK != 0 {
            return None;
        }
        let want_addr = key.src as u32 as u64 | (key.dst as u32 as u64) << 32;
        let want_ports = u32::from(key.sport) | u32::from(key.dport) << 16;
        if !(key.is_v4() && addr == want_addr && (ports >> (32 * dir)) as u32 == want_ports) {
            return None;
        }
        if s1 & NAT != 0 {
            // The other direction's tuple, reversed (for ICMP queries the
            // reverse keeps the identifier and inverts the type), built
            // in place: a reversed copy returned through memory was read
            // back before its stores could be forwarded (a store-forwarding
            // stall on every NAT'd packet).
            let p = ports >> (32 * (1 - dir));
            let (sport, dport) = reverse_ports(key.proto, p as u16, (p >> 16) as u16);
            *target = FlowKey {
                src: v4_key((other >> 32) as u32),
                dst: v4_key(other as u32),
                sport,
                dport,
                proto: key.proto,
            };
        }
        Some(s2)
    }

    /// For a NAT'd connection, the tuple a packet of `c`'s direction
    /// should carry after translation: the other direction's tuple
    /// reversed. `None` if the connection is not NAT'd or is gone.
    #[inline]
    pub fn translation(&self, c: ConnId) -> Option<FlowKey> {
        let e = &self.entries[c.idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & NAT == 0 || s1 & LIVE == 0 || gen_of(s1) != c.generation {
            return None;
        }
        let other = 1 - c.dir as usize;
        let k = self.key(c.idx, other, s1);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        (s2 & LIVE != 0 && gen_of(s2) == c.generation).then(|| k.reverse())
    }

    /// Runs a packet of `len` bytes with TCP flags `tcp_flags` (ignored for
    /// other protocols) through its connection: state machine, timeout
    /// refresh, counters. Returns the packet's state, or `None` if the
    /// connection is gone (expired, removed, or closed for a reopening SYN):
    /// the packet is then the first of a new connection.
    pub fn update(&self, c: ConnId, tcp_flags: u8, len: u32, now: u64) -> Option<CtState> {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        self.update_from(c, s, tcp_flags, len, now_ms(now))
    }

    /// [`Conntrack::update`] for what [`Conntrack::find_hinted`] found,
    /// starting from the state word it read.
    #[inline]
    pub fn update_found(&self, f: &Found, tcp_flags: u8, len: u32, now: u64) -> Option<CtState> {
        self.update_from(f.id, f.state, tcp_flags, len, now_ms(now))
    }

    /// The state machine from state word `s` (a recent read: the
    /// compare-and-swap catches a stale one), time `nm` in milliseconds.
    #[inline]
    fn update_from(
        &self,
        c: ConnId,
        mut s: u64,
        tcp_flags: u8,
        len: u32,
        nm: u64,
    ) -> Option<CtState> {
        let e = &self.entries[c.idx as usize];
        // The packet's half of the TCP transition, once and only for TCP
        // (the protocol cannot change under the same generation).
        let row = (proto_of(s) == PROTO_TCP).then(|| tcp::row(c.dir, tcp_flags));
        loop {
            if s & LIVE == 0 || gen_of(s) != c.generation {
                return None;
            }
            if expired(s, nm) {
                self.retire(c.idx, c.generation, Retired::Expired, false);
                return None;
            }
            let proto = proto_of(s);
            let replied_before = s & SEEN_REPLY != 0;
            let replied = replied_before || c.dir == Dir::Reply;
            let mut status = s & STATUS_MASK;
            if c.dir == Dir::Reply {
                status |= SEEN_REPLY;
            }
            let mut tcp_state = tcp_of(s);
            let timeout = if proto == PROTO_TCP {
                let old = tcp_state;
                match tcp::step(row.flatten(), old) {
                    Transition::Invalid => return Some(CtState::Invalid),
                    Transition::Ignore => return Some(packet_state(c.dir, s)),
                    Transition::To(new) => {
                        if new == TcpState::SynSent
                            && matches!(old, TcpState::TimeWait | TcpState::Close)
                        {
                            // A new connection on the same ports (RFC 1122
                            // TIME_WAIT reuse): drop the old one.
                            self.retire(c.idx, c.generation, Retired::Killed, false);
                            return None;
                        }
                        if c.dir == Dir::Reply
                            && !replied_before
                            && tcp_flags & tcp::flags::RST != 0
                        {
                            // Refused: the only answer was a reset.
                            self.count(e, c.dir, len);
                            self.retire(c.idx, c.generation, Retired::Killed, false);
                            return Some(CtState::Established);
                        }
                        if replied_before
                            && status & ASSURED == 0
                            && matches!(old, TcpState::SynRecv | TcpState::Established)
                            && new == TcpState::Established
                        {
                            status |= ASSURED;
                        }
                        tcp_state = new;
                        self.tcp_timeout(new, replied)
                    }
                }
            } else {
                if proto == PROTO_UDP && replied {
                    status |= ASSURED;
                }
                self.timeouts.other(proto, replied)
            };
            let new = (s & (IN_USE | GEN_MASK | PROTO_MASK))
                | status
                | (tcp_state as u64) << TCP_SHIFT
                | ((nm + timeout) & EXP_MASK);
            // Nothing but the expiry moved, and by less than 1/64 of the
            // timeout: skip the write (a locked instruction per packet, and
            // a cache line bounced between cores). The connection may then
            // expire up to 1/64 of its timeout early.
            let moved = (new & EXP_MASK).wrapping_sub(s & EXP_MASK) & EXP_MASK;
            if new & !EXP_MASK == s & !EXP_MASK && moved <= timeout >> 6 {
                break;
            }
            match e.state.compare_exchange_weak(s, new, AcqRel, Acquire) {
                Ok(_) => {
                    s = new;
                    break;
                }
                Err(x) => s = x,
            }
        }
        self.count(e, c.dir, len);
        Some(packet_state(c.dir, s))
    }

    /// Counts a packet. A plain load and store rather than a locked add:
    /// one direction of a flow is nearly always handled by one worker, and
    /// when two count it at the same instant one count may be lost (the
    /// counters are statistics, not state).
    #[inline]
    fn count(&self, e: &Entry, dir: Dir, len: u32) {
        let (p, b) = (&e.packets[dir as usize], &e.bytes[dir as usize]);
        p.store(p.load(Relaxed).wrapping_add(1), Relaxed);
        b.store(b.load(Relaxed).wrapping_add(u64::from(len)), Relaxed);
    }

    #[inline]
    fn tcp_timeout(&self, s: TcpState, replied: bool) -> u64 {
        let t = self.timeouts.tcp[s as usize];
        // A connection picked up mid-stream that never saw an answer gets
        // Linux's "unacknowledged" timeout, not five days.
        if s == TcpState::Established && !replied {
            t.min(self.timeouts.tcp_unack)
        } else {
            t
        }
    }

    /// The initial TCP state and timeout of a connection opened by a
    /// packet with tuple `orig` and flags `f`.
    fn opening(&self, orig: &FlowKey, f: u8) -> Result<(TcpState, u64), InsertError> {
        if !orig.may_open() {
            return Err(InsertError::Invalid);
        }
        if orig.proto != PROTO_TCP {
            return Ok((TcpState::None, self.timeouts.other(orig.proto, false)));
        }
        match tcp::transition(Dir::Original, f, TcpState::None) {
            Transition::To(s @ TcpState::SynSent) => Ok((s, self.tcp_timeout(s, false))),
            Transition::To(s @ TcpState::Established) if self.tcp_loose => {
                Ok((s, self.tcp_timeout(s, false)))
            }
            _ => Err(InsertError::Invalid),
        }
    }

    /// Whether a packet with tuple `key` and TCP flags `tcp_flags` may open
    /// a connection (its state is NEW rather than INVALID).
    pub fn can_open(&self, key: &FlowKey, tcp_flags: u8) -> bool {
        self.opening(key, tcp_flags).is_ok()
    }

    /// Confirms a new connection for a first packet with tuple `orig`
    /// whose answers will carry `reply` (`orig.reverse()`, or a NAT'd
    /// tuple), counting that packet. The packet's state is NEW.
    pub fn insert(
        &self,
        orig: &FlowKey,
        reply: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: u64,
    ) -> Result<ConnId, InsertError> {
        let nm = now_ms(now);
        let (tcp_state, timeout) = self.opening(orig, tcp_flags)?;
        let (h0, h1) = (self.hash(orig), self.hash(reply));
        let idx = match self.pop_free().or_else(|| self.early_drop(h0, nm)) {
            Some(i) => i,
            None => {
                self.counters[C_REFUSED].fetch_add(1, Relaxed);
                return Err(InsertError::Full);
            }
        };
        let e = &self.entries[idx as usize];
        let generation = (gen_of(e.state.load(Relaxed)) + 1) & 0x7ff;
        // Pairs with the reader's fence in `matches`: a reader that sees
        // any of the writes below also sees the entry's older state change.
        fence(Release);
        let v4 = orig.is_v4() && reply.is_v4();
        self.write_keys(idx, orig, reply, v4);
        e.ports.store(
            u64::from(orig.sport)
                | u64::from(orig.dport) << 16
                | u64::from(reply.sport) << 32
                | u64::from(reply.dport) << 48,
            Relaxed,
        );
        e.mark.store(u64::from(generation) << 32, Relaxed);
        e.packets[0].store(1, Relaxed);
        e.packets[1].store(0, Relaxed);
        e.bytes[0].store(u64::from(len), Relaxed);
        e.bytes[1].store(0, Relaxed);
        let nat = if *reply != orig.reverse() { NAT } else { 0 };
        let base = u64::from(generation) << GEN_SHIFT
            | nat
            | if v4 { V4 } else { 0 }
            | u64::from(orig.proto) << PROTO_SHIFT
            | (tcp_state as u64) << TCP_SHIFT
            | ((nm + timeout) & EXP_MASK);
        e.state.store(BUSY | base, Release);
        self.link(idx, Dir::Original, h0);
        self.link(idx, Dir::Reply, h1);
        let rival = self
            .rival(orig, h0, idx, nm)
            .or_else(|| self.rival(reply, h1, idx, nm));
        if let Some(rival) = rival {
            e.state.store(base, Release);
            self.unlink(idx, Dir::Original);
            self.unlink(idx, Dir::Reply);
            self.push_free(idx);
            self.counters[C_CLASHES].fetch_add(1, Relaxed);
            return Err(rival.map_or(InsertError::Clash, InsertError::Exists));
        }
        e.state.store(LIVE | base, Release);
        self.counters[C_INSERTED].fetch_add(1, Relaxed);
        Ok(ConnId {
            idx,
            generation,
            dir: Dir::Original,
        })
    }

    /// Another BUSY or live, unexpired entry holding tuple `key` (hash
    /// `h`): `Some(Some(id))` for a live one, `Some(None)` for an insert in
    /// progress. Expired holders are removed on the way.
    fn rival(&self, key: &FlowKey, h: u64, own: u32, nm: u64) -> Option<Option<ConnId>> {
        self.walk(h, |idx, dir| {
            if idx == own {
                return None;
            }
            let s = self.matches(idx, dir, key, IN_USE)?;
            if s & LIVE == 0 {
                return Some(None);
            }
            if expired(s, nm) {
                self.retire(idx, gen_of(s), Retired::Expired, false);
                return None;
            }
            let dir = if dir == 0 { Dir::Original } else { Dir::Reply };
            Some(Some(ConnId {
                idx,
                generation: gen_of(s),
                dir,
            }))
        })
    }

    /// Frees an entry near hash `h` for a new connection: the first expired
    /// one, else the first evictable one (not assured, not ESTABLISHED).
    /// The returned entry is the caller's.
    fn early_drop(&self, h: u64, nm: u64) -> Option<u32> {
        let mut victim = None;
        let mut b = self.home(h);
        for _ in 0..EARLY_DROP_BUCKETS.min(self.index.len()) {
            for slot in &self.index[b].slots {
                let v = slot.load(Acquire);
                if v == 0 {
                    continue;
                }
                let (idx, _) = self.slot_entry(v);
                let s = self.entries[idx as usize].state.load(Acquire);
                if s & LIVE == 0 {
                    continue;
                }
                if expired(s, nm) {
                    if self.retire(idx, gen_of(s), Retired::Expired, true) {
                        return Some(idx);
                    }
                } else if victim.is_none() && evictable(s) {
                    victim = Some((idx, gen_of(s)));
                }
            }
            b = self.next(b);
        }
        if let Some((idx, generation)) = victim
            && self.retire(idx, generation, Retired::Evicted, true)
        {
            return Some(idx);
        }
        // Someone else may have freed one meanwhile.
        self.pop_free()
    }

    /// Lookup, then update or insert (with `reply = key.reverse()`): the
    /// whole per-packet job without NAT. `Err` only for a full table or a
    /// persistent clash; a packet that cannot open a connection is
    /// `Ok` with state INVALID and no connection.
    pub fn track(
        &self,
        key: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: u64,
    ) -> Result<Tracked, InsertError> {
        for _ in 0..3 {
            if let Some(c) = self.lookup(key, now) {
                if let Some(state) = self.update(c, tcp_flags, len, now) {
                    return Ok(Tracked {
                        conn: Some(c),
                        state,
                    });
                }
                continue;
            }
            match self.insert(key, &key.reverse(), tcp_flags, len, now) {
                Ok(c) => {
                    return Ok(Tracked {
                        conn: Some(c),
                        state: CtState::New,
                    });
                }
                Err(InsertError::Invalid) => {
                    return Ok(Tracked {
                        conn: None,
                        state: CtState::Invalid,
                    });
                }
                Err(InsertError::Exists(_) | InsertError::Clash) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(InsertError::Clash)
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
            let new = u64::from(c.generation) << 32 | u64::from(mark);
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

#[cfg(test)]
impl Conntrack {
    /// Checks the table's structure; call only when no operation runs.
    pub(super) fn check_consistency(&self) -> Result<(), String> {
        let mut live = 0;
        for e in self.entries.iter() {
            let s = e.state.load(Relaxed);
            if s & BUSY != 0 {
                return Err("entry left BUSY".into());
            }
            live += usize::from(s & LIVE != 0);
        }
        let mut overflow = vec![0u32; self.index.len()];
        let mut slots = 0;
        for (b, bucket) in self.index.iter().enumerate() {
            for slot in &bucket.slots {
                let v = slot.load(Relaxed);
                if v == 0 {
                    continue;
                }
                slots += 1;
                let (idx, dir) = self.slot_entry(v);
                let e = &self.entries[idx as usize];
                let s = e.state.load(Relaxed);
                if s & LIVE == 0 {
                    return Err(format!("slot in bucket {b} -> dead entry {idx}"));
                }
                let d = if dir == 0 { Dir::Original } else { Dir::Reply };
                let h = self.hash(&self.key(idx, dir, s));
                if self.slot_value(h, d, idx) != v {
                    return Err(format!("slot {v:#x} does not match entry {idx}"));
                }
                let mut c = self.home(h);
                while c != b {
                    overflow[c] += 1;
                    c = self.next(c);
                }
            }
        }
        if slots != 2 * live {
            return Err(format!("{slots} slots for {live} live entries"));
        }
        for (b, bucket) in self.index.iter().enumerate() {
            if bucket.overflow.load(Relaxed) != overflow[b] {
                return Err(format!("bucket {b} overflow mismatch"));
            }
        }
        let mut seen = vec![false; self.entries.len()];
        let mut free = 0;
        let mut top = self.free.load(Relaxed) as u32;
        while top != 0 {
            let idx = top as usize - 1;
            if seen[idx] || self.entries[idx].state.load(Relaxed) & LIVE != 0 {
                return Err(format!("free list holds {idx} twice or live"));
            }
            seen[idx] = true;
            free += 1;
            top = self.entries[idx].ports.load(Relaxed) as u32;
        }
        if free + live != self.entries.len() {
            return Err(format!("{free} free + {live} live != capacity"));
        }
        if self.stats().live as usize != live {
            return Err(format!(
                "counters say {} live, table {live}",
                self.stats().live
            ));
        }
        Ok(())
    }
}
