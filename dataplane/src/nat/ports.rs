//! NAT port allocation: which external port (or ICMP identifier) of which
//! external address an inside endpoint is mapped to, shared by all workers.
//!
//! In the packet walk this is POSTROUTING's SNAT/masquerade of a
//! connection's first packet ([`NatPorts::acquire`]) and conntrack's retire
//! hook when the connection ends ([`NatPorts::release`]). It reads the
//! inside endpoint; it changes only its own slot table and counters. It
//! drops nothing: `None` from `acquire` means the range is exhausted, and
//! the caller drops with its own reason.
//!
//! # Design
//!
//! The control thread registers each external address once
//! ([`NatPorts::register`]): a pool, with per protocol class (TCP, UDP, ICMP
//! query identifiers) 65536 `AtomicU64` slots, 512 KiB, one per external
//! port. A slot is `owner (32 bits) | inside port (16) | refs (16)`; refs 0
//! means free (the whole word is then 0). The owner is the inside IPv4
//! address itself; an inside IPv6 address is folded to 32 bits by a seeded
//! hash, so two IPv6 hosts whose folds collide can share an external port.
//! That stays correct, as conntrack keeps every reply tuple unique: a
//! connection whose reply tuple is taken fails to insert and the caller asks
//! again with `attempt + 1` for a fresh port.
//!
//! Mapping is endpoint-independent (RFC 4787 REQ-1): every connection of one
//! inside (address, port, class) gets the same external port while any of
//! them holds it, one reference per connection. Where a mapping may lie is a
//! deterministic function of the endpoint: the inside port itself (port
//! preservation, when it is in the range), then [`WINDOWS`] windows of
//! [`WINDOW`] consecutive ports starting at seeded hashes of the endpoint.
//! `acquire` reads all of them and shares an existing mapping before it
//! claims the first free one, so sequential acquires for one endpoint always
//! reuse. Reading the 257 candidates is a few dozen cache lines, paid by a
//! connection's first packet only. Only when every candidate is taken (in
//! practice once the range is ~98% full) does it scan the whole range, up to
//! 65536 slots, again sharing a mapping it meets before claiming the first
//! free port.
//!
//! A refusal is O(1) once a range is full: a scan that finds nothing
//! records the range with the pool's count of freed ports (per class,
//! bumped by every slot cleared) read before it began, in one of
//! [`HINTS`] atomic words. The next acquire for that range, after its
//! candidate pass (bounded: it may still share the endpoint's mapping),
//! sees the record and, while no port was freed since, refuses without
//! scanning. A freed port invalidates the record, so the next acquire
//! scans once and finds it: exact, never refusing while a port is free.
//!
//! Per-source cap (RFC 6888 REQ-4): ports claimed are counted per inside
//! address ([`crate::conntrack::limit::SourceCounts`], approximate by a
//! hash of the owner); an address at its limit
//! ([`NatPorts::set_per_source_limit`], 0 = none) may still share its
//! existing mappings but claims no new port: `acquire` answers `None` and
//! counts it in `source_limited`, not `exhausted`.
//!
//! Without a range, inside ports below 512 map into 1..=511, 512..=1023
//! into 600..=1023 (Linux's `nf_nat_l4proto_unique_tuple`) and the others
//! into 1024..=65535; ICMP identifiers anywhere in 0..=65535.
//!
//! Claiming is a compare-and-swap of a free slot; sharing is a CAS adding a
//! reference (refused at `u16::MAX` references: the endpoint then gets
//! another port); releasing is a CAS taking one away, and the last one
//! clears the slot. No allocation after `register`, no lock, no `unsafe`.
//!
//! # Residual races
//!
//! - Two threads mapping the same new endpoint at once may both claim. After
//!   claiming, a thread re-reads the candidates before its own and, if the
//!   endpoint is mapped there, takes a reference on that one and gives its
//!   claim back, so the earliest candidate wins. But if the thread that
//!   claimed later in the candidate order re-read before the earlier claim
//!   was visible, both mappings live on: those connections use two external
//!   ports (each valid; the next acquires share the earlier one).
//! - A mapping the full-range scan placed (every candidate taken) is found
//!   again only while the candidates stay taken; if one frees up, the
//!   endpoint's next connection gets a second port there. And while its
//!   range is recorded full, such an endpoint's next connection is refused
//!   rather than found by a scan (the price of O(1) refusal; mappings in
//!   the candidates, which are nearly all, are still shared).
//! - Statistics are read slot by slot, not as one snapshot.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use crossbeam_utils::CachePadded;

use crate::addr::key_v4;
use crate::conntrack::limit::SourceCounts;
use crate::conntrack::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, mix};

/// Ports per address and class.
const PORTS: usize = 1 << 16;
/// Protocol classes with their own ports: TCP, UDP, ICMP query identifiers.
const CLASSES: usize = 3;
/// Consecutive ports per candidate window.
pub const WINDOW: u32 = 64;
/// Candidate windows read before the full-range scan.
pub const WINDOWS: u32 = 4;
/// Exhausted-range records per pool and class.
pub const HINTS: usize = 4;

/// Why [`NatPorts::try_acquire`] has no port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No free port in the range (or an unknown pool).
    Exhausted,
    /// The inside address holds its limit of ports.
    SourceLimit,
}

/// A registered external address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolId(u16);

impl PoolId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Every pool is taken by another address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no room for another NAT address: all {0} pools are registered")]
pub struct PoolsFull(pub usize);

/// Who holds one external port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The inside IPv4 address, or the 32-bit fold of an inside IPv6 one.
    pub owner: u32,
    /// The inside port (or ICMP identifier).
    pub inside_port: u16,
    /// Connections holding the mapping (at least 1).
    pub refs: u16,
}

/// One pool's ports in use, per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub addr: u128,
    pub tcp: u32,
    pub udp: u32,
    pub icmp: u32,
}

/// Allocator counters (`stats` allocates: for the control thread).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    pub pools: Vec<PoolStats>,
    /// Ports in use over all pools and classes.
    pub in_use: u64,
    /// Acquires that found no free port in their range.
    pub exhausted: u64,
    /// Acquires refused because the inside address held its limit of
    /// ports.
    pub source_limited: u64,
    /// Releases of a port no pool knows or that was not held, acquires from
    /// an unknown pool (bugs in the caller's bookkeeping; counted, never
    /// trusted).
    pub anomalies: u64,
}

struct Pool {
    addr: u128,
    /// `CLASSES` runs of `PORTS` slots.
    slots: Box<[AtomicU64]>,
    in_use: [CachePadded<AtomicU32>; CLASSES],
    /// Ports freed so far, per class (wrapping).
    freed: [CachePadded<AtomicU32>; CLASSES],
    /// Ranges a scan found full: `(lo << 48 | hi << 32 | freed) ^ salt`,
    /// per class, indexed by a hash of the range (0: none).
    full: [[AtomicU64; HINTS]; CLASSES],
}

impl Pool {
    fn class(&self, class: usize) -> &[AtomicU64] {
        &self.slots[class * PORTS..(class + 1) * PORTS]
    }
}

/// The shared port allocator (see the module comment).
pub struct NatPorts {
    pools: Box<[OnceLock<Pool>]>,
    seed: u64,
    exhausted: CachePadded<AtomicU64>,
    anomalies: CachePadded<AtomicU64>,
    source_limited: CachePadded<AtomicU64>,
    /// Ports held per inside owner (all pools and classes).
    sources: SourceCounts,
}

impl std::fmt::Debug for NatPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatPorts")
            .field("max_addrs", &self.pools.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The slot word's parts.
const fn pack(owner: u32, port: u16, refs: u16) -> u64 {
    (owner as u64) << 32 | (port as u64) << 16 | refs as u64
}

fn refs(v: u64) -> u16 {
    v as u16
}

/// Owner and inside port, without the references.
fn endpoint(v: u64) -> u64 {
    v >> 16
}

fn class_of(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(0),
        PROTO_UDP => Some(1),
        PROTO_ICMP | PROTO_ICMPV6 => Some(2),
        _ => None,
    }
}

/// Where one endpoint's mapping may lie: candidate position 0 is the
/// preserved port, then `WINDOWS` windows; the full-range scan has its own
/// positions `0..size`.
struct Plan {
    lo: u32,
    size: u32,
    /// Ports per window (the range may be smaller than a window).
    wlen: u32,
    preserved: Option<u16>,
    /// Window starts, as offsets into the range.
    starts: [u32; WINDOWS as usize],
}

impl Plan {
    fn candidates(&self) -> u32 {
        1 + WINDOWS * self.wlen
    }

    fn candidate(&self, i: u32) -> Option<u16> {
        if i == 0 {
            return self.preserved;
        }
        let j = i - 1;
        let start = self.starts[(j / self.wlen) as usize];
        Some(self.port(start + j % self.wlen))
    }

    fn scan(&self, i: u32) -> Option<u16> {
        Some(self.port(self.starts[0] + i))
    }

    fn port(&self, off: u32) -> u16 {
        (self.lo + off % self.size) as u16
    }
}

/// What a pass over candidate positions got.
enum Taken {
    /// An existing mapping of the endpoint, one more reference.
    Shared(u16),
    /// A free port, claimed, at this position.
    Claimed(u16, u32),
}

impl NatPorts {
    /// An allocator for at most `max_addrs` external addresses, with a
    /// random hash seed.
    pub fn new(max_addrs: usize) -> Self {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x0a7_u64);
        Self::with_seed(max_addrs, seed)
    }

    /// As [`NatPorts::new`] with a fixed seed (tests, replay).
    pub fn with_seed(max_addrs: usize, seed: u64) -> Self {
        let max = max_addrs.min(usize::from(u16::MAX));
        NatPorts {
            pools: (0..max).map(|_| OnceLock::new()).collect(),
            seed,
            exhausted: CachePadded::new(AtomicU64::new(0)),
            anomalies: CachePadded::new(AtomicU64::new(0)),
            source_limited: CachePadded::new(AtomicU64::new(0)),
            sources: SourceCounts::new(0, seed ^ 0x7052),
        }
    }

    /// The pool of external address `addr` (IPv4 mapped), created if new.
    /// Idempotent. For the control thread: it allocates 1.5 MiB for a new
    /// pool; concurrent readers never wait.
    pub fn register(&self, addr: u128) -> Result<PoolId, PoolsFull> {
        for (i, cell) in self.pools.iter().enumerate() {
            let pool = match cell.get() {
                Some(p) => p,
                None => {
                    // Pools fill in order and `set` waits for a concurrent
                    // registration of this cell, so one address never gets
                    // two pools.
                    let _ = cell.set(Pool {
                        addr,
                        slots: (0..CLASSES * PORTS).map(|_| AtomicU64::new(0)).collect(),
                        in_use: std::array::from_fn(|_| CachePadded::new(AtomicU32::new(0))),
                        freed: std::array::from_fn(|_| CachePadded::new(AtomicU32::new(0))),
                        full: Default::default(),
                    });
                    cell.get().expect("set or set by another")
                }
            };
            if pool.addr == addr {
                return Ok(PoolId(i as u16));
            }
        }
        Err(PoolsFull(self.pools.len()))
    }

    /// The pool of `addr`, if registered: a scan of the registered pools.
    pub fn pool(&self, addr: u128) -> Option<PoolId> {
        self.pools
            .iter()
            .map_while(OnceLock::get)
            .position(|p| p.addr == addr)
            .map(|i| PoolId(i as u16))
    }

    /// The external address of a pool.
    pub fn addr(&self, pool: PoolId) -> Option<u128> {
        self.get(pool).map(|p| p.addr)
    }

    fn get(&self, pool: PoolId) -> Option<&Pool> {
        self.pools.get(pool.index()).and_then(OnceLock::get)
    }

    /// An external port of `pool` for the inside endpoint (`inside`,
    /// `inside_port`) of `proto` (for ICMP the query identifier), one
    /// reference taken; `None` if the range has no free port (counted).
    ///
    /// `range` (inclusive) defaults as the module comment says. `attempt`
    /// 0 shares the endpoint's mapping or preserves its port when free;
    /// `attempt > 0` is for a connection whose reply tuple turned out to be
    /// taken: it claims a fresh port from further windows. Call it while
    /// still holding the port that clashed (so it cannot come back), then
    /// release that one. Protocols without ports allocate nothing: the
    /// answer is `inside_port`, and `release` ignores them.
    pub fn acquire(
        &self,
        pool: PoolId,
        proto: u8,
        inside: u128,
        inside_port: u16,
        range: Option<(u16, u16)>,
        attempt: u32,
    ) -> Option<u16> {
        self.try_acquire(pool, proto, inside, inside_port, range, attempt)
            .ok()
    }

    /// As [`NatPorts::acquire`], saying why there is no port.
    pub fn try_acquire(
        &self,
        pool: PoolId,
        proto: u8,
        inside: u128,
        inside_port: u16,
        range: Option<(u16, u16)>,
        attempt: u32,
    ) -> Result<u16, Refused> {
        let Some(class) = class_of(proto) else {
            return Ok(inside_port);
        };
        let Some(p) = self.get(pool) else {
            self.anomalies.fetch_add(1, Relaxed);
            return Err(Refused::Exhausted);
        };
        let slots = p.class(class);
        let owner = self.owner(inside);
        let me = pack(owner, inside_port, 0);
        let plan = self.plan(class, me, inside_port, range, attempt);
        let reuse = attempt == 0;
        let counter = &p.in_use[class];
        // The source's count, taken before claiming (given back unless a
        // port is claimed). At its limit it may only share.
        let may_claim = self.sources.enter(u128::from(owner));
        let give_back = || {
            if may_claim {
                self.sources.leave(u128::from(owner));
            }
        };
        if !may_claim {
            let shared = if reuse {
                (0..plan.candidates())
                    .filter_map(|i| plan.candidate(i))
                    .find(|&p| {
                        let slot = &slots[usize::from(p)];
                        share(slot, slot.load(SeqCst), me)
                    })
            } else {
                None
            };
            if shared.is_none() {
                self.source_limited.fetch_add(1, Relaxed);
            }
            return shared.ok_or(Refused::SourceLimit);
        }
        let lo_hi = plan.lo << 16 | (plan.lo + plan.size - 1);
        let hint = &p.full[class][(mix(u64::from(lo_hi), 0x9e37) as usize) % HINTS];
        let freed = &p.freed[class];
        let found = self
            .take(slots, counter, me, reuse, plan.candidates(), |i| {
                plan.candidate(i)
            })
            .map(|t| (t, false))
            .or_else(|| {
                // Known full, and no port freed since: refuse in O(1).
                let before = freed.load(SeqCst);
                // Never 0 (an empty record) in practice: salted.
                let rec = (u64::from(lo_hi) << 32 | u64::from(before)) ^ 0x5a5a_0000_0000_0001;
                if hint.load(SeqCst) == rec {
                    return None;
                }
                let t = self.take(slots, counter, me, reuse, plan.size, |i| plan.scan(i));
                if t.is_none() {
                    hint.store(rec, SeqCst);
                }
                t.map(|t| (t, true))
            });
        let (port, pos, scanned) = match found {
            None => {
                give_back();
                self.exhausted.fetch_add(1, Relaxed);
                return Err(Refused::Exhausted);
            }
            Some((Taken::Shared(port), _)) => {
                give_back();
                return Ok(port);
            }
            Some((Taken::Claimed(port, pos), scanned)) => (port, pos, scanned),
        };
        if !reuse {
            return Ok(port);
        }
        // A racing acquire for the same endpoint may have claimed an earlier
        // candidate: the earliest wins.
        let earlier = if scanned {
            self.share_first(slots, me, port, plan.candidates(), |i| plan.candidate(i))
                .or_else(|| self.share_first(slots, me, port, pos, |i| plan.scan(i)))
        } else {
            self.share_first(slots, me, port, pos, |i| plan.candidate(i))
        };
        match earlier {
            Some(other) => {
                self.unref(&slots[usize::from(port)], counter, &p.freed[class]);
                Ok(other)
            }
            None => Ok(port),
        }
    }

    /// The connection holding `port` of external address `addr` ended: one
    /// reference fewer. An unknown address or a port not held is counted as
    /// an anomaly and otherwise ignored.
    pub fn release(&self, addr: u128, proto: u8, port: u16) {
        let Some(class) = class_of(proto) else {
            return;
        };
        let Some(p) = self.pool(addr).and_then(|id| self.get(id)) else {
            self.anomalies.fetch_add(1, Relaxed);
            return;
        };
        if !self.unref(
            &p.class(class)[usize::from(port)],
            &p.in_use[class],
            &p.freed[class],
        ) {
            self.anomalies.fetch_add(1, Relaxed);
        }
    }

    /// Ports one inside address may hold at once over all pools and
    /// classes (0: no limit). May be changed at any time.
    pub fn set_per_source_limit(&self, limit: u32) {
        self.sources.set_limit(limit);
    }

    /// Ports held by inside address `inside` (its hash bucket's count).
    pub fn source_ports(&self, inside: u128) -> u32 {
        self.sources.count(u128::from(self.owner(inside)))
    }

    /// Who holds `port` of `pool` for `proto`, if anyone.
    pub fn mapping(&self, pool: PoolId, proto: u8, port: u16) -> Option<Mapping> {
        let v = self.get(pool)?.class(class_of(proto)?)[usize::from(port)].load(SeqCst);
        (refs(v) > 0).then_some(Mapping {
            owner: (v >> 32) as u32,
            inside_port: (v >> 16) as u16,
            refs: refs(v),
        })
    }

    /// Ports of `pool` in use for `proto`'s class.
    pub fn in_use(&self, pool: PoolId, proto: u8) -> u32 {
        match (self.get(pool), class_of(proto)) {
            (Some(p), Some(c)) => p.in_use[c].load(Relaxed),
            _ => 0,
        }
    }

    pub fn stats(&self) -> NatStats {
        let pools: Vec<PoolStats> = self
            .pools
            .iter()
            .map_while(OnceLock::get)
            .map(|p| PoolStats {
                addr: p.addr,
                tcp: p.in_use[0].load(Relaxed),
                udp: p.in_use[1].load(Relaxed),
                icmp: p.in_use[2].load(Relaxed),
            })
            .collect();
        NatStats {
            in_use: pools
                .iter()
                .map(|p| u64::from(p.tcp) + u64::from(p.udp) + u64::from(p.icmp))
                .sum(),
            pools,
            exhausted: self.exhausted.load(Relaxed),
            anomalies: self.anomalies.load(Relaxed),
            source_limited: self.source_limited.load(Relaxed),
        }
    }

    /// The slot owner of an inside address: IPv4 itself, IPv6 folded.
    fn owner(&self, inside: u128) -> u32 {
        key_v4(inside).unwrap_or_else(|| {
            let h = mix(
                inside as u64 ^ self.seed ^ 0x9e37_79b9_7f4a_7c15,
                (inside >> 64) as u64 ^ 0xc2b2_ae3d_27d4_eb4f,
            );
            (h ^ h >> 32) as u32
        })
    }

    fn plan(
        &self,
        class: usize,
        me: u64,
        inside_port: u16,
        range: Option<(u16, u16)>,
        attempt: u32,
    ) -> Plan {
        let (lo, hi) = match range {
            Some((a, b)) => (a.min(b), a.max(b)),
            None if class == 2 => (0, u16::MAX),
            None if inside_port < 512 => (1, 511),
            None if inside_port < 1024 => (600, 1023),
            None => (1024, u16::MAX),
        };
        let (lo, size) = (u32::from(lo), u32::from(hi) - u32::from(lo) + 1);
        let preserved = (attempt == 0 && (lo..lo + size).contains(&u32::from(inside_port)))
            .then_some(inside_port);
        let starts = std::array::from_fn(|w| {
            let w = u64::from(attempt) + w as u64;
            let h = mix(
                me ^ self.seed ^ 0x243f_6a88_85a3_08d3,
                ((class as u64) << 32) ^ w ^ 0x1319_8a2e_0370_7344,
            );
            // Lemire's reduction of 32 hash bits to 0..size.
            (((h & 0xffff_ffff) * u64::from(size)) >> 32) as u32
        });
        Plan {
            lo,
            size,
            wlen: WINDOW.min(size),
            preserved,
            starts,
        }
    }

    /// One pass over positions `0..n` (`at` gives their ports): with
    /// `reuse`, first read them all for a mapping of `me` to share; then
    /// claim the first free one.
    fn take(
        &self,
        slots: &[AtomicU64],
        in_use: &AtomicU32,
        me: u64,
        reuse: bool,
        n: u32,
        at: impl Fn(u32) -> Option<u16>,
    ) -> Option<Taken> {
        let mut first_free = 0;
        if reuse {
            let mut free = None;
            for i in 0..n {
                let Some(port) = at(i) else { continue };
                let slot = &slots[usize::from(port)];
                let v = slot.load(SeqCst);
                if share(slot, v, me) {
                    return Some(Taken::Shared(port));
                }
                if v == 0 && free.is_none() {
                    free = Some(i);
                }
            }
            first_free = free?;
        }
        for i in first_free..n {
            let Some(port) = at(i) else { continue };
            let slot = &slots[usize::from(port)];
            let mut v = slot.load(SeqCst);
            loop {
                if reuse && share(slot, v, me) {
                    return Some(Taken::Shared(port));
                }
                if v != 0 {
                    break;
                }
                match slot.compare_exchange(0, me | 1, SeqCst, SeqCst) {
                    Ok(_) => {
                        in_use.fetch_add(1, Relaxed);
                        return Some(Taken::Claimed(port, i));
                    }
                    // Taken meanwhile: perhaps by a racing acquire for `me`.
                    Err(x) => v = x,
                }
            }
        }
        None
    }

    /// Shares the first mapping of `me` at positions `0..n` other than
    /// `port`.
    fn share_first(
        &self,
        slots: &[AtomicU64],
        me: u64,
        port: u16,
        n: u32,
        at: impl Fn(u32) -> Option<u16>,
    ) -> Option<u16> {
        (0..n).filter_map(&at).find(|&p| {
            let slot = &slots[usize::from(p)];
            p != port && share(slot, slot.load(SeqCst), me)
        })
    }

    /// Drops one reference; false if there was none. The last one frees
    /// the port: counted in `freed` and against its owner's count.
    fn unref(&self, slot: &AtomicU64, in_use: &AtomicU32, freed: &AtomicU32) -> bool {
        let mut v = slot.load(SeqCst);
        loop {
            if refs(v) == 0 {
                return false;
            }
            let next = if refs(v) == 1 { 0 } else { v - 1 };
            match slot.compare_exchange_weak(v, next, SeqCst, SeqCst) {
                Ok(_) => {
                    if next == 0 {
                        in_use.fetch_sub(1, Relaxed);
                        freed.fetch_add(1, SeqCst);
                        self.sources.leave(u128::from((v >> 32) as u32));
                    }
                    return true;
                }
                Err(x) => v = x,
            }
        }
    }
}

/// Adds a reference to `slot` (last read as `v`) if it maps `me` and has
/// room for one more.
fn share(slot: &AtomicU64, mut v: u64, me: u64) -> bool {
    loop {
        if endpoint(v) != endpoint(me) || refs(v) == 0 || refs(v) == u16::MAX {
            return false;
        }
        match slot.compare_exchange_weak(v, v + 1, SeqCst, SeqCst) {
            Ok(_) => return true,
            Err(x) => v = x,
        }
    }
}

#[cfg(test)]
mod tests;
