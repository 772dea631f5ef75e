//! Sets the packet path writes: nftables' dynamic sets (`add @s { ip
//! saddr }`, `update @s { ... timeout 1m }`, meters with a per-element
//! `limit`, lookups `ip saddr @s`) and iptables' `-m hashlimit` (a limit
//! per source, destination or port): one bounded, lock-free table per set,
//! shared by all workers.
//!
//! An element is known by a 64-bit tag: the key's values hashed with a
//! seed chosen at random when the ruleset is built (two keys share state
//! only if their tags collide, 2^-64 per pair, and an outsider cannot aim
//! for it). Slots are claimed with a compare-and-swap on the tag; a key
//! probes at most [`PROBE`] slots from its hash. A full set (its capacity
//! of live elements reached, no expired slot to reuse on the probe path)
//! refuses the insertion and counts it: the statement does not match, as
//! in the kernel (`nft_dynset` breaks, `hashlimit` fails to allocate).
//! Expired elements are reused in place; nothing is freed on a timer.
//! Updates of one element's expiry and limiter race benignly (the
//! kernel's per-set lock is replaced by last-writer-wins on each word).
//! A reload builds new sets: their contents start again from the file.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::PacketView;
use super::expr::hash_fields as hf;

/// Slots a key may probe.
const PROBE: usize = 8;

/// A key's values; fields outside the key are ignored. For a set's
/// declared elements the addresses go to `src` then `dst`, the ports to
/// `sport` then `dport` (a key hashes its addresses, then its ports, then
/// the protocol, whichever fields they came from).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyVals {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

impl KeyVals {
    pub(super) fn of(p: &PacketView) -> Self {
        KeyVals {
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            proto: p.proto,
        }
    }
}

/// A set as front-ends declare it. Expressions naming the same `name`
/// share one set (the first declaration's size and timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynSetSpec {
    pub name: String,
    /// Most live elements.
    pub capacity: u32,
    /// The elements' default timeout in nanoseconds (0: none).
    pub timeout_ns: u64,
    /// Elements present from the start (never expiring), with the
    /// [`hf`] bits of their key.
    pub elements: Vec<(u8, KeyVals)>,
    /// Timestamps of its last hits each element keeps (iptables'
    /// `recent`: `--hitcount`); 0: none.
    pub history: u8,
    /// When full, a new element replaces the least recently refreshed one
    /// on its probe path (`recent`'s oldest-first eviction) instead of
    /// being refused.
    pub evict: bool,
}

/// splitmix64's finaliser over `h ^ v`.
#[inline]
pub(super) fn mix(h: u64, v: u64) -> u64 {
    let mut z = (h ^ v).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of `k`'s `fields` ([`hf`] bits) under `seed`: addresses, then
/// ports, then the protocol.
#[inline]
pub(super) fn hash_key(k: &KeyVals, fields: u8, seed: u64) -> u64 {
    let mut h = seed;
    if fields & hf::SADDR != 0 {
        h = mix(mix(h, k.src as u64), (k.src >> 64) as u64);
    }
    if fields & hf::DADDR != 0 {
        h = mix(mix(h, k.dst as u64), (k.dst >> 64) as u64);
    }
    if fields & hf::SPORT != 0 {
        h = mix(h, u64::from(k.sport));
    }
    if fields & hf::DPORT != 0 {
        h = mix(h, u64::from(k.dport));
    }
    if fields & hf::L4PROTO != 0 {
        h = mix(h, u64::from(k.proto));
    }
    h
}

#[derive(Default, Debug)]
pub(super) struct Slot {
    /// The key's tag (never 0); 0: never used.
    tag: AtomicU64,
    /// When the element expires (monotonic ns); 0: never.
    expires: AtomicU64,
    /// Its limiter's theoretical arrival time (GCRA, as `Limiter`).
    pub(super) tat: AtomicU64,
}

/// One set (see the module comment).
#[derive(Debug)]
pub(super) struct DynSet {
    pub(super) name: Box<str>,
    seed: u64,
    mask: usize,
    slots: Box<[Slot]>,
    capacity: u32,
    live: AtomicU32,
    pub(super) timeout_ns: u64,
    /// Insertions refused because the set was full (or elements evicted,
    /// for an evicting set).
    pub(super) full: AtomicU64,
    history: usize,
    evict: bool,
    /// `history` hit timestamps per slot (0: none), a ring indexed by the
    /// slot's `tat` (which a history set does not use as a limiter).
    stamps: Box<[AtomicU64]>,
}

impl DynSet {
    /// The set of `spec`, its declared elements all in: a key that finds
    /// its probe path full makes the table twice as large (a declared
    /// element is never left out, which for a block list would let its
    /// address through).
    pub(super) fn new(spec: &DynSetSpec, seed: u64) -> Self {
        let capacity = spec.capacity.max(1).max(spec.elements.len() as u32);
        let mut n = (capacity as usize * 2).next_power_of_two().max(16);
        loop {
            let set = Self::empty(spec, seed, n, capacity);
            // Permanent: inserted before any packet (expires 0).
            let all = spec
                .elements
                .iter()
                .all(|(fields, k)| set.upsert(set.tag(k, *fields), 0, 0, true).is_some());
            if all {
                return set;
            }
            n *= 2;
        }
    }

    fn empty(spec: &DynSetSpec, seed: u64, n: usize, capacity: u32) -> Self {
        DynSet {
            name: spec.name.as_str().into(),
            seed,
            mask: n - 1,
            slots: (0..n).map(|_| Slot::default()).collect(),
            capacity,
            live: AtomicU32::new(0),
            timeout_ns: spec.timeout_ns,
            full: AtomicU64::new(0),
            history: usize::from(spec.history),
            evict: spec.evict,
            stamps: (0..n * usize::from(spec.history))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    #[inline]
    pub(super) fn tag(&self, k: &KeyVals, fields: u8) -> u64 {
        hash_key(k, fields, self.seed) | 1
    }

    /// Live elements (expired ones not yet reused count too).
    pub(super) fn len(&self) -> u32 {
        self.live.load(Ordering::Relaxed)
    }

    #[inline]
    fn probe(&self, tag: u64) -> impl Iterator<Item = (usize, &Slot)> {
        let start = (tag >> 1) as usize;
        (0..PROBE).map(move |i| {
            let k = (start + i) & self.mask;
            (k, &self.slots[k])
        })
    }

    /// Whether the element of `tag` is in the set at `now`.
    #[inline]
    pub(super) fn contains(&self, tag: u64, now: u64) -> bool {
        self.find(tag, now).is_some()
    }

    /// The slot index of the live element of `tag`.
    #[inline]
    pub(super) fn find(&self, tag: u64, now: u64) -> Option<usize> {
        self.probe(tag)
            .find(|(_, s)| {
                s.tag.load(Ordering::Acquire) == tag && live(s.expires.load(Ordering::Relaxed), now)
            })
            .map(|(k, _)| k)
    }

    /// Records a hit at `now` in slot `k`'s history.
    pub(super) fn hit(&self, k: usize, now: u64) {
        if self.history == 0 {
            return;
        }
        let i = self.slots[k].tat.fetch_add(1, Ordering::Relaxed) as usize % self.history;
        self.stamps[k * self.history + i].store(now.max(1), Ordering::Relaxed);
    }

    /// Hits of slot `k` at or after `since`.
    pub(super) fn hits_since(&self, k: usize, since: u64) -> u32 {
        self.stamps[k * self.history..(k + 1) * self.history]
            .iter()
            .filter(|t| {
                let t = t.load(Ordering::Relaxed);
                t != 0 && t >= since
            })
            .count() as u32
    }

    /// A slot taken by a new element: its limiter and history start over.
    fn fresh(&self, k: usize, expiry: u64) {
        let s = &self.slots[k];
        s.tat.store(0, Ordering::Relaxed);
        s.expires.store(expiry, Ordering::Relaxed);
        for t in &self.stamps[k * self.history..(k + 1) * self.history] {
            t.store(0, Ordering::Relaxed);
        }
    }

    /// Forgets the element in slot `k` (`recent --remove`).
    pub(super) fn remove(&self, k: usize) {
        // Expired in the past: reused like any expired slot.
        self.slots[k].expires.store(1, Ordering::Relaxed);
    }

    /// The element of `tag`, inserted if absent (expiring `timeout_ns`
    /// after `now`, 0: never); an existing element's expiry is moved only
    /// when `refresh` (nft's `update`; `add` keeps it). `None`: the set is
    /// full (counted).
    pub(super) fn upsert(
        &self,
        tag: u64,
        now: u64,
        timeout_ns: u64,
        refresh: bool,
    ) -> Option<&Slot> {
        self.upsert_at(tag, now, timeout_ns, refresh)
            .map(|k| &self.slots[k])
    }

    /// [`Self::upsert`], giving the slot's index.
    pub(super) fn upsert_at(
        &self,
        tag: u64,
        now: u64,
        timeout_ns: u64,
        refresh: bool,
    ) -> Option<usize> {
        let expiry = if timeout_ns == 0 {
            0
        } else {
            now.saturating_add(timeout_ns)
        };
        let mut reuse: Option<usize> = None;
        let mut oldest: Option<(u64, usize)> = None;
        for (k, s) in self.probe(tag) {
            let t = s.tag.load(Ordering::Acquire);
            if t == tag {
                let e = s.expires.load(Ordering::Relaxed);
                if !live(e, now) {
                    // Expired: the key comes back as a new element.
                    self.fresh(k, expiry);
                } else if refresh && e != 0 {
                    s.expires.store(expiry, Ordering::Relaxed);
                }
                return Some(k);
            }
            if t == 0 {
                if self.live.fetch_add(1, Ordering::Relaxed) >= self.capacity {
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                match s
                    .tag
                    .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        self.fresh(k, expiry);
                        return Some(k);
                    }
                    Err(now_tag) => {
                        self.live.fetch_sub(1, Ordering::Relaxed);
                        if now_tag == tag {
                            return Some(k);
                        }
                    }
                }
            } else {
                let e = s.expires.load(Ordering::Relaxed);
                if reuse.is_none() && !live(e, now) {
                    reuse = Some(k);
                }
                if e != 0 && oldest.is_none_or(|(o, _)| e < o) {
                    oldest = Some((e, k));
                }
            }
        }
        // An expired slot, else (evicting sets) the least recently
        // refreshed one on the probe path.
        let victim = reuse.or(if self.evict {
            oldest.map(|(_, k)| k)
        } else {
            None
        });
        if let Some(k) = victim {
            let s = &self.slots[k];
            let old = s.tag.load(Ordering::Acquire);
            if s.tag
                .compare_exchange(old, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.fresh(k, expiry);
                if reuse.is_none() {
                    self.full.fetch_add(1, Ordering::Relaxed);
                }
                return Some(k);
            }
        }
        self.full.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[inline]
fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

/// GCRA on one atomic (`Limiter::admit`'s, for a slot's limiter).
#[inline]
pub(super) fn gcra(tat: &AtomicU64, interval: u64, tolerance: u64, now: u64) -> bool {
    let mut t = tat.load(Ordering::Relaxed);
    loop {
        let start = t.max(now);
        if start - now > tolerance {
            return false;
        }
        match tat.compare_exchange_weak(t, start + interval, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(x) => t = x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(capacity: u32) -> DynSetSpec {
        DynSetSpec {
            name: "t".into(),
            capacity,
            timeout_ns: 0,
            elements: Vec::new(),
            history: 0,
            evict: false,
        }
    }

    fn key(a: u128) -> KeyVals {
        KeyVals {
            src: a,
            ..KeyVals::default()
        }
    }

    #[test]
    fn every_declared_element_is_in_even_a_full_set() {
        // As many declared elements as the set's size: with 8 probes at
        // half load some keys would find their path full; the table grows
        // instead of leaving one out.
        for seed in 0..20u64 {
            let mut sp = spec(4096);
            sp.elements = (0..4096u128).map(|a| (hf::SADDR, key(a * 7919))).collect();
            let s = DynSet::new(&sp, seed);
            for (f, k) in &sp.elements {
                assert!(s.contains(s.tag(k, *f), 1), "seed {seed}: {k:?} left out");
            }
            assert_eq!(s.len(), 4096);
        }
    }

    #[test]
    fn add_lookup_expire_and_reuse() {
        let s = DynSet::new(&spec(100), 7);
        let t = s.tag(&key(1), hf::SADDR);
        assert!(!s.contains(t, 10));
        assert!(s.upsert(t, 10, 50, false).is_some());
        assert!(s.contains(t, 59));
        assert!(!s.contains(t, 60), "expired");
        // add does not refresh, update does.
        s.upsert(t, 70, 50, false);
        assert!(s.contains(t, 119) && !s.contains(t, 120));
        s.upsert(t, 100, 50, false);
        assert!(!s.contains(t, 130), "add kept the expiry");
        s.upsert(t, 110, 50, true);
        assert!(s.contains(t, 159), "update moved it");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_full_set_refuses_and_counts_and_reuses_expired_slots() {
        let s = DynSet::new(&spec(4), 1);
        let tags: Vec<u64> = (0..6).map(|i| s.tag(&key(i), hf::SADDR)).collect();
        for &t in &tags[..4] {
            assert!(s.upsert(t, 0, 10, false).is_some());
        }
        assert!(s.upsert(tags[4], 0, 10, false).is_none());
        assert_eq!(s.full.load(Ordering::Relaxed), 1);
        assert_eq!(s.len(), 4);
        // Later, an expired element's slot may be taken on the probe path;
        // the set never grows past its capacity.
        for &t in &tags {
            s.upsert(t, 100, 10, false);
        }
        assert!(s.len() <= 4);
    }

    #[test]
    fn the_same_values_hash_alike_from_either_field() {
        let k = KeyVals {
            src: 5,
            dport: 22,
            ..KeyVals::default()
        };
        let k2 = KeyVals {
            dst: 5,
            sport: 22,
            ..KeyVals::default()
        };
        assert_eq!(
            hash_key(&k, hf::SADDR | hf::DPORT, 3),
            hash_key(&k2, hf::DADDR | hf::SPORT, 3)
        );
        assert_ne!(hash_key(&k, hf::SADDR, 3), hash_key(&k, hf::SADDR, 4));
    }

    #[test]
    fn declared_elements_are_there_from_the_start() {
        let mut sp = spec(10);
        sp.elements.push((hf::SADDR, key(9)));
        let s = DynSet::new(&sp, 5);
        assert!(s.contains(s.tag(&key(9), hf::SADDR), u64::MAX - 1));
    }

    #[test]
    fn concurrent_inserts_of_one_key_share_a_slot() {
        let s = std::sync::Arc::new(DynSet::new(&spec(1000), 9));
        let t = s.tag(&key(42), hf::SADDR);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for now in 0..1000 {
                        assert!(s.upsert(t, now, 0, true).is_some());
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(s.len() <= 4, "a duplicate at worst per racing thread");
        assert!(s.contains(t, 5000));
    }
}
