//! Expectations (Linux's `nf_conntrack_expect`): connections a helper
//! announced and the table does not hold yet. An expectation names the
//! first packet of the expected connection as it arrives (source and
//! destination address, destination port, protocol; any source port), its
//! master connection, the helper, an expiry time, and the tuple that
//! packet leaves with: the master's NAT applied as Linux's
//! `nf_nat_follow_master` does (the source translated to where the master
//! sends to, the destination to where the master's peer is, at the port
//! the command announced).
//!
//! The conntrack stage looks a first packet up here (only while any
//! expectation exists: one shared counter read per new connection); a
//! match takes the expectation out (one compare-and-swap), and the packet
//! is NEW with ctstate RELATED, translated to the expectation's target.
//!
//! Bounds: a fixed table of `CtConfig::expectations` slots in buckets of
//! [`BUCKET`] by the expected tuple's hash (a full bucket refuses and
//! counts `expect_full`); one per master, as Linux's `max_expected` for
//! FTP and TFTP (a new one replaces it, counted `expect_master_full`; the
//! master's helper record names its slot, so neither this nor the master's
//! removal scans the table); each expires
//! after the helper's timeout (lazily on lookup, and by the table's
//! incremental sweep); a master's expectations go when it leaves the
//! table. No lock, no allocation after construction.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, fence};

use crossbeam_utils::CachePadded;

use super::helper::HelperKind;
use super::{ConnId, Dir, FlowKey};

/// Slots per bucket.
pub const BUCKET: usize = 8;

// A slot's state word.
const EXP_MASK: u64 = (1 << 35) - 1;
const GEN_SHIFT: u32 = 40;
const GEN_MASK: u64 = 0x3fff << GEN_SHIFT;
const BUSY: u64 = 1 << 62;
const LIVE: u64 = 1 << 63;

#[derive(Default)]
#[repr(C, align(64))]
struct Slot {
    /// LIVE / BUSY, generation, expiry (ms, modulo 2^35).
    state: AtomicU64,
    /// Expected source and destination address (low, high words).
    addr: [AtomicU64; 4],
    /// dport | proto << 16 | helper << 24 | target dport << 32 |
    /// target sport-kept flag.
    ports: AtomicU64,
    /// Target source and destination address.
    target: [AtomicU64; 4],
    /// Master: entry index | generation << 32 | dir of the expected
    /// connection relative to the master << 48.
    master: AtomicU64,
}

/// One expectation, as created and as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The expected first packet: `src`, `dst`, `dport`, `proto`
    /// (`sport` is ignored: any).
    pub key: FlowKey,
    /// The tuple that packet leaves with (its `sport` is the packet's).
    pub target: FlowKey,
    pub master: ConnId,
    pub helper: HelperKind,
    /// Expiry time in milliseconds (modulo 2^35, as connections).
    pub expires_ms: u64,
}

/// Why an expectation was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectError {
    /// The tuple's bucket (or the whole table) is full.
    Full,
    /// Another master expects this tuple and no other port was free.
    Taken,
}

/// The expectation table.
pub struct Expectations {
    slots: Box<[Slot]>,
    seed: u64,
    /// Live expectations (approximately: for the fast "none" check).
    live: CachePadded<AtomicU64>,
    /// The sweep's position.
    cursor: AtomicU64,
}

#[inline]
fn expired(s: u64, nm: u64) -> bool {
    nm.wrapping_sub(s & EXP_MASK) & EXP_MASK < 1 << 34
}

fn split(a: u128) -> (u64, u64) {
    (a as u64, (a >> 64) as u64)
}

fn join(lo: &AtomicU64, hi: &AtomicU64) -> u128 {
    lo.load(Relaxed) as u128 | (hi.load(Relaxed) as u128) << 64
}

impl Expectations {
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        let buckets = n.div_ceil(BUCKET).max(1);
        Expectations {
            slots: (0..buckets * BUCKET).map(|_| Slot::default()).collect(),
            seed,
            live: CachePadded::new(AtomicU64::new(0)),
            cursor: AtomicU64::new(0),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Whether any expectation may exist (one relaxed load).
    #[inline(always)]
    pub fn any(&self) -> bool {
        self.live.load(Relaxed) != 0
    }

    fn bucket(&self, key: &FlowKey) -> usize {
        let k = FlowKey { sport: 0, ..*key };
        let buckets = self.slots.len() / BUCKET;
        (((k.hash(self.seed) >> 32) * buckets as u64) >> 32) as usize * BUCKET
    }

    /// Slot `i`'s expectation if live, read consistently (generation).
    fn read(&self, i: usize) -> Option<(u64, Expectation)> {
        let s = &self.slots[i];
        let s1 = s.state.load(Acquire);
        if s1 & LIVE == 0 {
            return None;
        }
        let p = s.ports.load(Relaxed);
        let m = s.master.load(Relaxed);
        let key = FlowKey {
            src: join(&s.addr[0], &s.addr[1]),
            dst: join(&s.addr[2], &s.addr[3]),
            sport: 0,
            dport: p as u16,
            proto: (p >> 16) as u8,
        };
        let target = FlowKey {
            src: join(&s.target[0], &s.target[1]),
            dst: join(&s.target[2], &s.target[3]),
            sport: 0,
            dport: (p >> 32) as u16,
            proto: key.proto,
        };
        fence(Acquire);
        if s.state.load(Relaxed) != s1 {
            return None;
        }
        let helper = HelperKind::from_code(p >> 24 & 0xff)?;
        Some((
            s1,
            Expectation {
                key,
                target,
                master: ConnId {
                    idx: m as u32,
                    generation: (m >> 32) as u16,
                    dir: if (m >> 48) & 1 == 0 {
                        Dir::Original
                    } else {
                        Dir::Reply
                    },
                },
                helper,
                expires_ms: s1 & EXP_MASK,
            },
        ))
    }

    /// Takes slot `i` out if its state is still `s`; true if this call did.
    fn take(&self, i: usize, s: u64) -> bool {
        let ok = self.slots[i]
            .state
            .compare_exchange(s, s & GEN_MASK, AcqRel, Relaxed)
            .is_ok();
        if ok {
            self.live.fetch_sub(1, Relaxed);
        }
        ok
    }

    /// The expectation a first packet with tuple `key` fulfils, taken out
    /// of the table; its target carries the packet's source port.
    /// Expired ones met on the way are removed (`on_expired` counts).
    pub(crate) fn take_match(
        &self,
        key: &FlowKey,
        nm: u64,
        mut on_expired: impl FnMut(),
    ) -> Option<Expectation> {
        let b = self.bucket(key);
        for i in b..b + BUCKET {
            let Some((s, e)) = self.read(i) else { continue };
            if expired(s, nm) {
                if self.take(i, s) {
                    on_expired();
                }
                continue;
            }
            if e.key.src == key.src
                && e.key.dst == key.dst
                && e.key.dport == key.dport
                && e.key.proto == key.proto
                && self.take(i, s)
            {
                let mut e = e;
                e.target.sport = key.sport;
                return Some(e);
            }
        }
        None
    }

    /// Adds `e`. `dir_of_expected`: the expected connection's direction
    /// relative to the master (where its first packet comes from).
    /// `may_move`: the announced port may be changed (the master is
    /// NAT'd, its command is rewritten): when another master already
    /// expects the tuple, the next ports are tried (Linux's
    /// `nf_nat_exp_find_port`). Returns the expected port used. The
    /// master's own expectation of the same tuple (a retransmitted
    /// command) is replaced, and so is its other one: `mine` is the
    /// master's record of its expectation's slot (in its helper record).
    pub(crate) fn add(
        &self,
        e: &Expectation,
        dir_of_expected: Dir,
        may_move: bool,
        mine: &AtomicU64,
        nm: u64,
        mut count: impl FnMut(Event),
    ) -> Result<u16, ExpectError> {
        // The master's expectation (one per master: Linux's `max_expected`
        // for FTP and TFTP) is replaced: one slot read, no scan, so a flood
        // of commands costs a bucket each.
        if let Some(i) = (mine.load(Acquire) as usize).checked_sub(1)
            && i < self.slots.len()
            && let Some((s, x)) = self.read(i)
            && x.master.same_conn(&e.master)
            && self.take(i, s)
        {
            count(if x.key == e.key {
                Event::Replaced
            } else {
                Event::MasterFull
            });
        }
        let tries = if may_move { 64 } else { 1 };
        let mut key = e.key;
        for _ in 0..tries {
            let b = self.bucket(&key);
            let mut taken = false;
            let mut free = None;
            for i in b..b + BUCKET {
                match self.read(i) {
                    Some((s, _)) if expired(s, nm) => {
                        if self.take(i, s) {
                            count(Event::Expired);
                        }
                        free = free.or(Some(i));
                    }
                    Some((_, x)) if x.key == key => taken = true,
                    Some(_) => {}
                    None => {
                        if self.slots[i].state.load(Relaxed) & (LIVE | BUSY) == 0 {
                            free = free.or(Some(i));
                        }
                    }
                }
            }
            if taken {
                key.dport = key.dport.checked_add(1).unwrap_or(1024);
                continue;
            }
            let Some(i) = free.and_then(|i| self.claim(i, b)) else {
                return Err(ExpectError::Full);
            };
            self.write(i, &Expectation { key, ..*e }, dir_of_expected);
            mine.store(i as u64 + 1, Release);
            return Ok(key.dport);
        }
        Err(ExpectError::Taken)
    }

    /// Claims free slot `i` (or another free one of the bucket at `b`):
    /// BUSY, private to the caller.
    fn claim(&self, i: usize, b: usize) -> Option<usize> {
        for j in std::iter::once(i).chain(b..b + BUCKET) {
            let st = &self.slots[j].state;
            let s = st.load(Relaxed);
            if s & (LIVE | BUSY) == 0
                && st
                    .compare_exchange(s, (s & GEN_MASK) | BUSY, Acquire, Relaxed)
                    .is_ok()
            {
                return Some(j);
            }
        }
        None
    }

    fn write(&self, i: usize, e: &Expectation, dir: Dir) {
        let s = &self.slots[i];
        let (a, b) = split(e.key.src);
        let (c, d) = split(e.key.dst);
        for (w, v) in s.addr.iter().zip([a, b, c, d]) {
            w.store(v, Relaxed);
        }
        let (a, b) = split(e.target.src);
        let (c, d) = split(e.target.dst);
        for (w, v) in s.target.iter().zip([a, b, c, d]) {
            w.store(v, Relaxed);
        }
        s.ports.store(
            u64::from(e.key.dport)
                | u64::from(e.key.proto) << 16
                | (e.helper as u64) << 24
                | u64::from(e.target.dport) << 32,
            Relaxed,
        );
        s.master.store(
            u64::from(e.master.idx) | u64::from(e.master.generation) << 32 | (dir as u64) << 48,
            Relaxed,
        );
        let old = s.state.load(Relaxed);
        let generation = ((old & GEN_MASK) + (1 << GEN_SHIFT)) & GEN_MASK;
        self.live.fetch_add(1, Relaxed);
        s.state
            .store(LIVE | generation | (e.expires_ms & EXP_MASK), Release);
    }

    /// Removes the expectation of master entry `idx` of `generation` (it
    /// left the table), found from its record `mine`; whether there was one.
    pub(crate) fn remove_master(&self, idx: u32, generation: u16, mine: &AtomicU64) -> bool {
        if let Some(i) = (mine.swap(0, AcqRel) as usize).checked_sub(1)
            && i < self.slots.len()
            && let Some((s, x)) = self.read(i)
            && x.master.idx == idx
            && x.master.generation == generation
        {
            return self.take(i, s);
        }
        false
    }

    /// Incremental expiry: the next `budget` slots; how many expired.
    pub(crate) fn expire(&self, nm: u64, budget: usize) -> u64 {
        if !self.any() {
            return 0;
        }
        let n = self.slots.len();
        let start = self.cursor.fetch_add(budget as u64, Relaxed) as usize % n;
        let mut k = 0;
        for j in 0..budget.min(n) {
            let i = (start + j) % n;
            if let Some((s, _)) = self.read(i)
                && expired(s, nm)
                && self.take(i, s)
            {
                k += 1;
            }
        }
        k
    }

    /// Calls `f` with every live expectation (`conntrack -L expect`).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Expectation)) {
        for i in 0..self.slots.len() {
            if let Some((_, e)) = self.read(i) {
                f(&e);
            }
        }
    }
}

/// What [`Expectations::add`] reports for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Expired,
    MasterFull,
    Replaced,
}

#[cfg(test)]
mod tests {
    use super::super::{Conntrack, CtConfig, PROTO_TCP};
    use super::*;
    use crate::addr::v4_key;

    const SEC: u64 = 1_000_000_000;

    fn table(expectations: usize) -> Conntrack {
        Conntrack::with_config(CtConfig {
            seed: Some(7),
            expectations,
            helper_conns: 4,
            ..CtConfig::new(64)
        })
    }

    fn master(t: &Conntrack, n: u32) -> ConnId {
        let k = FlowKey::v4(0x0a00_0001, 0x0a00_0100 + n, PROTO_TCP, 40000, 21);
        let id = t.insert(&k, &k.reverse(), 0x02, 60, 0).unwrap();
        assert!(t.attach_helper(id, HelperKind::Ftp));
        id
    }

    fn exp(m: ConnId, src: u32, dport: u16) -> Expectation {
        let key = FlowKey::v4(src, 0x0a00_0001, PROTO_TCP, 0, dport);
        Expectation {
            key,
            target: key,
            master: m,
            helper: HelperKind::Ftp,
            expires_ms: 0,
        }
    }

    #[test]
    fn attach_limits_and_release() {
        let t = table(16);
        let ids: Vec<_> = (0..4).map(|n| master(&t, n)).collect();
        assert_eq!(t.helper(ids[0]), Some(HelperKind::Ftp));
        // Every record taken.
        let k = FlowKey::v4(1, 2, PROTO_TCP, 1, 21);
        let extra = t.insert(&k, &k.reverse(), 0x02, 60, 0).unwrap();
        assert!(!t.attach_helper(extra, HelperKind::Ftp));
        assert_eq!(t.helper_stats().attach_full, 1);
        assert!(
            !t.attach_helper(ids[0], HelperKind::Ftp),
            "one helper per connection"
        );
        // A master leaving frees its record.
        assert!(t.remove(ids[0]));
        assert!(t.attach_helper(extra, HelperKind::Ftp));
        assert_eq!(t.get(extra).unwrap().helper, Some(HelperKind::Ftp));
    }

    #[test]
    fn match_once_bounded_per_master_and_global() {
        let t = table(8);
        let m = master(&t, 1);
        let e = exp(m, 0x0a00_0100 + 1, 5000);
        assert_eq!(t.expect(&e, Dir::Reply, false, 0), Ok(5000));
        // The data connection's first packet, any source port.
        let pkt = FlowKey::v4(0x0a00_0101, 0x0a00_0001, PROTO_TCP, 20, 5000);
        let got = t.take_expected(&pkt, SEC).unwrap();
        assert_eq!(got.target.sport, 20);
        assert!(t.take_expected(&pkt, SEC).is_none(), "used once");
        // One per master (FTP): a second replaces the first.
        t.expect(&exp(m, 0x0a00_0101, 5001), Dir::Reply, false, 0)
            .unwrap();
        t.expect(&exp(m, 0x0a00_0101, 5002), Dir::Reply, false, 0)
            .unwrap();
        assert_eq!(t.helper_stats().expect_master_full, 1);
        let mut n = 0;
        t.for_each_expectation(|_| n += 1);
        assert_eq!(n, 1);
        // Another master expecting the same tuple: the port moves when
        // allowed, else refused.
        let m2 = master(&t, 2);
        assert_eq!(
            t.expect(&exp(m2, 0x0a00_0101, 5002), Dir::Reply, true, 0),
            Ok(5003)
        );
        let m3 = master(&t, 3);
        assert!(
            t.expect(&exp(m3, 0x0a00_0101, 5003), Dir::Reply, false, 0)
                .is_err()
        );
        // The global bound: 8 slots (one bucket): the ninth master's
        // expectation is refused, counted.
        let t = Conntrack::with_config(CtConfig {
            seed: Some(7),
            expectations: 8,
            helper_conns: 16,
            ..CtConfig::new(64)
        });
        let results: Vec<_> = (0..9)
            .map(|n| {
                let m = master(&t, n);
                t.expect(&exp(m, 0x0b00_0000 + n, 6000), Dir::Reply, false, 0)
            })
            .collect();
        assert!(results[..8].iter().all(Result::is_ok));
        assert_eq!(results[8], Err(ExpectError::Full));
        assert_eq!(t.helper_stats().expect_full, 1);
    }

    #[test]
    fn expire_and_master_removal() {
        let t = table(16);
        let m = master(&t, 1);
        t.expect(&exp(m, 0x0a00_0101, 7000), Dir::Reply, false, 0)
            .unwrap();
        let pkt = FlowKey::v4(0x0a00_0101, 0x0a00_0001, PROTO_TCP, 20, 7000);
        // Five minutes later: gone, counted.
        assert!(t.take_expected(&pkt, 301 * SEC).is_none());
        assert_eq!(t.helper_stats().expect_expired, 1);
        t.expect(&exp(m, 0x0a00_0101, 7001), Dir::Reply, false, 0)
            .unwrap();
        assert!(t.remove(m));
        assert_eq!(t.helper_stats().expect_removed, 1);
        let pkt = FlowKey { dport: 7001, ..pkt };
        assert!(t.take_expected(&pkt, SEC).is_none());
        // The sweep expires the rest.
        let m = master(&t, 2);
        t.expect(&exp(m, 0x0a00_0102, 7002), Dir::Reply, false, 0)
            .unwrap();
        t.expire(400 * SEC, 64);
        let mut n = 0;
        t.for_each_expectation(|_| n += 1);
        assert_eq!(n, 0);
        let _ = v4_key(0);
    }
}
