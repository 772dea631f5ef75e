//! The neighbour table (ARP for IPv4, NDP for IPv6), shared by all workers.
//!
//! Every worker reads it per forwarded packet and any worker may learn from
//! an ARP or NDP message it receives, so it is a fixed-size open-addressing
//! table whose slots are seqlocks: a lookup never blocks and never
//! allocates (it reads the slot and retries nothing: a slot being written
//! reads as a miss, and the packet takes the unresolved path); a writer
//! claims a slot with one compare-and-swap and gives up if another writer
//! holds it (learning is opportunistic and the next message retries).
//!
//! States, simplified from Linux's NUD machine: an entry is *reachable* for
//! `REACHABLE_NS` after it was last confirmed (an ARP/NDP message from the
//! neighbour), then *stale* for `PROBE_NS`: still used, and a worker that
//! uses it sends a unicast probe at most once a second. Past that it reads
//! as a miss, so traffic re-resolves with a broadcast (ARP) or multicast
//! (NS) request. Expired slots are reused by inserts. Static entries from
//! the config never age.
//!
//! Keys are (interface, address); IPv4 addresses are stored IPv4-mapped
//! (`::ffff:a.b.c.d`) so one table serves both families.

use crate::iface::IfIndex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// How long a confirmation keeps an entry reachable (Linux base_reachable_time).
pub const REACHABLE_NS: u64 = 30_000_000_000;
/// How long a stale entry stays usable while being probed.
pub const PROBE_NS: u64 = 5_000_000_000;
/// Minimum gap between two probes or requests for one neighbour (Linux retrans_time).
pub const RETRANS_NS: u64 = 1_000_000_000;

const EMPTY: u32 = 0;
const TOMBSTONE: u32 = u32::MAX;
const FLAG_STATIC: u64 = 1 << 48;
const MAC_MASK: u64 = (1 << 48) - 1;
const MAX_PROBE: usize = 32;
/// How long a reader waits for a slot's writer (spin-loop hints; a write
/// is a few stores, so this covers it many times over).
const READ_SPINS: usize = 1024;

#[derive(Debug, Default)]
struct Slot {
    seq: AtomicU32,
    /// EMPTY, TOMBSTONE or interface index + 1.
    ifx: AtomicU32,
    ip_hi: AtomicU64,
    ip_lo: AtomicU64,
    mac_flags: AtomicU64,
    confirmed: AtomicU64,
    probed: AtomicU64,
}

/// Result of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Use this MAC.
    Reachable([u8; 6]),
    /// Use this MAC, and send a unicast probe (this caller won the right to).
    Probe([u8; 6]),
    /// Unknown or expired: resolve.
    Miss,
}

/// What a worker may keep in a private cache to skip the table lookup:
/// valid while the slot's sequence number is unchanged (any write to the
/// slot changes it) and `now < until` (the entry is still reachable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheToken {
    pub slot: u32,
    pub seq: u32,
    pub mac: [u8; 6],
    pub until: u64,
}

/// One entry as listed by `neigh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborEntry {
    pub dev: IfIndex,
    pub ip: u128,
    pub mac: [u8; 6],
    pub is_static: bool,
    pub confirmed_ns: u64,
}

#[derive(Debug)]
pub struct NeighborTable {
    slots: Box<[Slot]>,
    mask: usize,
}

fn mac_to_u64(m: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(m);
    u64::from_be_bytes(b)
}

fn u64_to_mac(v: u64) -> [u8; 6] {
    v.to_be_bytes()[2..].try_into().unwrap()
}

#[inline]
fn hash(ifx: IfIndex, ip: u128) -> u64 {
    let x = (ip as u64) ^ ((ip >> 64) as u64).rotate_left(29) ^ ((ifx as u64) << 48);
    let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 31)
}

struct Snapshot {
    ifx: u32,
    ip: u128,
    mac_flags: u64,
    confirmed: u64,
}

impl Slot {
    /// A consistent copy of the slot, or None while a writer holds it.
    #[inline]
    fn read(&self) -> Option<Snapshot> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return None;
        }
        let snap = Snapshot {
            ifx: self.ifx.load(Ordering::Relaxed),
            ip: ((self.ip_hi.load(Ordering::Relaxed) as u128) << 64)
                | self.ip_lo.load(Ordering::Relaxed) as u128,
            mac_flags: self.mac_flags.load(Ordering::Relaxed),
            confirmed: self.confirmed.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == s1).then_some(snap)
    }

    /// Claims the slot for writing; false when another writer holds it.
    fn begin_write(&self) -> Option<u32> {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            return None;
        }
        self.seq
            .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        fence(Ordering::Release);
        Some(s)
    }

    fn end_write(&self, s: u32) {
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn write(&self, ifx: u32, ip: u128, mac_flags: u64, confirmed: u64) {
        self.ifx.store(ifx, Ordering::Relaxed);
        self.ip_hi.store((ip >> 64) as u64, Ordering::Relaxed);
        self.ip_lo.store(ip as u64, Ordering::Relaxed);
        self.mac_flags.store(mac_flags, Ordering::Relaxed);
        self.confirmed.store(confirmed, Ordering::Relaxed);
        self.probed.store(0, Ordering::Relaxed);
    }
}

fn expired(s: &Snapshot, now: u64) -> bool {
    s.mac_flags & FLAG_STATIC == 0 && now.saturating_sub(s.confirmed) >= REACHABLE_NS + PROBE_NS
}

impl NeighborTable {
    /// A table of at least `capacity` slots (rounded up to a power of two).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(64).next_power_of_two();
        NeighborTable {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
        }
    }

    /// The slot index holding (ifx, ip), with its snapshot.
    #[inline]
    fn find(&self, ifx: IfIndex, ip: u128) -> Option<(usize, Snapshot)> {
        let want = ifx as u32 + 1;
        let mut i = hash(ifx, ip) as usize & self.mask;
        for _ in 0..MAX_PROBE {
            match self.read_slot(i) {
                Some(s) if s.ifx == EMPTY => return None,
                Some(s) if s.ifx == want && s.ip == ip => return Some((i, s)),
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// A consistent snapshot of slot `i`, waiting briefly for a writer in
    /// progress: a writer holds a slot for a handful of stores, and taking
    /// a slot being rewritten (a reload re-asserting a static entry, a
    /// refresh) for "not here" would make a known neighbour look missing,
    /// so the packet would wait for an ARP answer it does not need. None
    /// only if the writer stays for the whole wait (it was preempted).
    #[inline]
    fn read_slot(&self, i: usize) -> Option<Snapshot> {
        let slot = &self.slots[i];
        for _ in 0..READ_SPINS {
            if let Some(s) = slot.read() {
                return Some(s);
            }
            std::hint::spin_loop();
        }
        None
    }

    /// Looks up the MAC for `ip` on interface `ifx` at time `now` (ns).
    #[inline]
    pub fn resolve(&self, ifx: IfIndex, ip: u128, now: u64) -> Resolution {
        let Some((i, s)) = self.find(ifx, ip) else {
            return Resolution::Miss;
        };
        let mac = u64_to_mac(s.mac_flags & MAC_MASK);
        if s.mac_flags & FLAG_STATIC != 0 {
            return Resolution::Reachable(mac);
        }
        let age = now.saturating_sub(s.confirmed);
        if age < REACHABLE_NS {
            Resolution::Reachable(mac)
        } else if age < REACHABLE_NS + PROBE_NS {
            let probed = &self.slots[i].probed;
            let last = probed.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= RETRANS_NS
                && probed
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                Resolution::Probe(mac)
            } else {
                Resolution::Reachable(mac)
            }
        } else {
            Resolution::Miss
        }
    }

    /// The MAC of `ip` on `ifx` in whatever state its entry is (None: no
    /// entry). For the offload's scan: an entry whose neighbour moved or
    /// went must go; one merely unconfirmed may stay.
    pub fn mac(&self, ifx: IfIndex, ip: u128) -> Option<[u8; 6]> {
        self.find(ifx, ip)
            .map(|(_, s)| u64_to_mac(s.mac_flags & MAC_MASK))
    }

    /// A cache token for a reachable entry (None for stale, missing or
    /// contended entries: those take the full `resolve` path).
    pub fn token(&self, ifx: IfIndex, ip: u128, now: u64) -> Option<CacheToken> {
        let (i, s) = self.find(ifx, ip)?;
        let until = if s.mac_flags & FLAG_STATIC != 0 {
            u64::MAX
        } else {
            s.confirmed.saturating_add(REACHABLE_NS)
        };
        if now >= until {
            return None;
        }
        let seq = self.slots[i].seq.load(Ordering::Acquire);
        // The snapshot must belong to this very sequence number.
        let again = self.slots[i].read()?;
        if seq & 1 == 1 || again.ifx != s.ifx || again.ip != s.ip || again.mac_flags != s.mac_flags
        {
            return None;
        }
        if self.slots[i].seq.load(Ordering::Acquire) != seq {
            return None;
        }
        Some(CacheToken {
            slot: i as u32,
            seq,
            mac: u64_to_mac(s.mac_flags & MAC_MASK),
            until,
        })
    }

    /// True while nothing has written the token's slot since it was taken.
    #[inline]
    pub fn token_valid(&self, t: &CacheToken, now: u64) -> bool {
        now < t.until && self.slots[t.slot as usize].seq.load(Ordering::Acquire) == t.seq
    }

    /// Records that `ip` on `ifx` is at `mac`, confirmed at `now`. With
    /// `create` false only an existing entry is refreshed (Linux updates but
    /// does not create entries from ARP traffic not addressed to it).
    /// Returns true when the table changed. Static entries are never
    /// overwritten by learning.
    pub fn learn(&self, ifx: IfIndex, ip: u128, mac: &[u8; 6], now: u64, create: bool) -> bool {
        if let Some((i, s)) = self.find(ifx, ip) {
            if s.mac_flags & FLAG_STATIC != 0 {
                return false;
            }
            return self.write_slot(i, ifx, ip, mac_to_u64(mac), now);
        }
        if !create {
            return false;
        }
        self.insert(ifx, ip, mac_to_u64(mac), now)
    }

    /// Adds a permanent entry (config `[[neighbor]]`).
    pub fn insert_static(&self, ifx: IfIndex, ip: u128, mac: &[u8; 6]) -> bool {
        let v = mac_to_u64(mac) | FLAG_STATIC;
        match self.find(ifx, ip) {
            // Already so (a reload re-asserting its static entries): no
            // write, so no reader waits and the workers' cached tokens stay.
            Some((_, s)) if s.mac_flags == v => true,
            Some((i, _)) => self.write_slot(i, ifx, ip, v, 0),
            None => self.insert(ifx, ip, v, 0),
        }
    }

    /// Removes an entry (static or learned).
    pub fn remove(&self, ifx: IfIndex, ip: u128) -> bool {
        let Some((i, _)) = self.find(ifx, ip) else {
            return false;
        };
        let slot = &self.slots[i];
        let Some(s) = slot.begin_write() else {
            return false;
        };
        slot.ifx.store(TOMBSTONE, Ordering::Relaxed);
        slot.end_write(s);
        true
    }

    fn write_slot(&self, i: usize, ifx: IfIndex, ip: u128, mac_flags: u64, now: u64) -> bool {
        let slot = &self.slots[i];
        let Some(s) = slot.begin_write() else {
            return false;
        };
        // Re-check under the claim: the slot may have been reused meanwhile.
        let ok = slot.ifx.load(Ordering::Relaxed) == ifx as u32 + 1
            && slot.ip_lo.load(Ordering::Relaxed) == ip as u64
            && slot.ip_hi.load(Ordering::Relaxed) == (ip >> 64) as u64;
        if ok {
            slot.write(ifx as u32 + 1, ip, mac_flags, now);
        }
        slot.end_write(s);
        ok
    }

    fn insert(&self, ifx: IfIndex, ip: u128, mac_flags: u64, now: u64) -> bool {
        let mut i = hash(ifx, ip) as usize & self.mask;
        for _ in 0..MAX_PROBE {
            let slot = &self.slots[i];
            if let Some(snap) = slot.read() {
                let free = snap.ifx == EMPTY || snap.ifx == TOMBSTONE || expired(&snap, now);
                if free {
                    let Some(s) = slot.begin_write() else {
                        return false;
                    };
                    // Still free under the claim?
                    let cur = slot.ifx.load(Ordering::Relaxed);
                    let confirmed = slot.confirmed.load(Ordering::Relaxed);
                    let flags = slot.mac_flags.load(Ordering::Relaxed);
                    let still_free = cur == EMPTY
                        || cur == TOMBSTONE
                        || (flags & FLAG_STATIC == 0
                            && now.saturating_sub(confirmed) >= REACHABLE_NS + PROBE_NS);
                    if still_free {
                        slot.write(ifx as u32 + 1, ip, mac_flags, now);
                    }
                    slot.end_write(s);
                    return still_free;
                }
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// Every live entry (for `xgate ctl neigh`), in slot order.
    pub fn entries(&self, now: u64) -> Vec<NeighborEntry> {
        self.slots
            .iter()
            .filter_map(Slot::read)
            .filter(|s| s.ifx != EMPTY && s.ifx != TOMBSTONE && !expired(s, now))
            .map(|s| NeighborEntry {
                dev: (s.ifx - 1) as IfIndex,
                ip: s.ip,
                mac: u64_to_mac(s.mac_flags & MAC_MASK),
                is_static: s.mac_flags & FLAG_STATIC != 0,
                confirmed_ns: s.confirmed,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{key_v4, v4_key};
    use std::sync::Arc;

    const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const S: u64 = 1_000_000_000;

    #[test]
    fn learn_resolve_age_probe_expire() {
        let t = NeighborTable::new(64);
        let ip = v4_key(0xc0a8_0102);
        assert_eq!(t.resolve(0, ip, 0), Resolution::Miss);
        assert!(!t.learn(0, ip, &M1, S, false), "no create without `create`");
        assert!(t.learn(0, ip, &M1, S, true));
        assert_eq!(t.resolve(0, ip, 2 * S), Resolution::Reachable(M1));
        assert_eq!(t.resolve(1, ip, 2 * S), Resolution::Miss, "other interface");
        // Stale: the first user probes, the next within a second does not.
        let stale = S + REACHABLE_NS + 1;
        assert_eq!(t.resolve(0, ip, stale), Resolution::Probe(M1));
        assert_eq!(t.resolve(0, ip, stale + 1), Resolution::Reachable(M1));
        assert_eq!(t.resolve(0, ip, stale + RETRANS_NS), Resolution::Probe(M1));
        // A reply confirms it again, with a new MAC.
        assert!(t.learn(0, ip, &M2, stale + 2 * RETRANS_NS, false));
        assert_eq!(
            t.resolve(0, ip, stale + 3 * RETRANS_NS),
            Resolution::Reachable(M2)
        );
        // Unconfirmed past the probe window: a miss.
        assert_eq!(
            t.resolve(0, ip, stale + REACHABLE_NS + PROBE_NS + 3 * S),
            Resolution::Miss
        );
    }

    #[test]
    fn static_entries_never_age_nor_get_overwritten() {
        let t = NeighborTable::new(64);
        let ip = v4_key(0x0a00_0001);
        assert!(t.insert_static(3, ip, &M1));
        assert!(!t.learn(3, ip, &M2, 5, true));
        assert_eq!(t.resolve(3, ip, u64::MAX / 2), Resolution::Reachable(M1));
        let e = t.entries(u64::MAX / 2);
        assert_eq!(e.len(), 1);
        assert!(e[0].is_static);
        assert_eq!(key_v4(e[0].ip), Some(0x0a00_0001));
        assert!(t.remove(3, ip));
        assert_eq!(t.resolve(3, ip, 0), Resolution::Miss);
    }

    /// A reload re-asserts its static entries while workers resolve them:
    /// a reader must never see a known neighbour as missing (which would
    /// send an ARP request and park the packet).
    #[test]
    fn a_neighbour_being_rewritten_is_never_missing() {
        let t = Arc::new(NeighborTable::new(64));
        let ip = v4_key(0xcb00_7101);
        assert!(t.insert_static(0, ip, &M1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Alternate MACs so that every call really writes.
                    let m = if n.is_multiple_of(2) { M2 } else { M1 };
                    t.insert_static(0, ip, &m);
                    n += 1;
                    // Writes come one at a time (a reload's), not as a
                    // stream that could starve any seqlock reader.
                    for _ in 0..256 {
                        std::hint::spin_loop();
                    }
                }
                n
            })
        };
        let mut misses = 0;
        for _ in 0..2_000_000 {
            if t.resolve(0, ip, S) == Resolution::Miss {
                misses += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 0);
        assert_eq!(misses, 0, "{misses} misses during {writes} rewrites");
        // Re-asserting the same entry writes nothing.
        let seq = t.token(0, ip, S).unwrap();
        assert!(t.insert_static(0, ip, &t.token(0, ip, S).unwrap().mac));
        assert!(
            t.token_valid(&seq, S),
            "an unchanged static entry keeps its tokens"
        );
    }

    #[test]
    fn collisions_tombstones_and_reuse() {
        let t = NeighborTable::new(64);
        for i in 0..40u32 {
            assert!(t.learn(0, v4_key(i), &M1, S, true), "insert {i}");
        }
        assert!(t.remove(0, v4_key(7)));
        for i in 0..40u32 {
            let want = if i == 7 {
                Resolution::Miss
            } else {
                Resolution::Reachable(M1)
            };
            assert_eq!(t.resolve(0, v4_key(i), 2 * S), want, "{i}");
        }
        // Once expired, slots are reused by new neighbours.
        let later = S + REACHABLE_NS + PROBE_NS + S;
        for i in 100..140u32 {
            assert!(t.learn(0, v4_key(i), &M2, later, true), "reuse {i}");
        }
        assert_eq!(t.entries(later).len(), 40);
    }

    #[test]
    fn cache_tokens_expire_and_see_every_write() {
        let t = NeighborTable::new(64);
        let ip = v4_key(0x0a00_0002);
        assert!(t.token(0, ip, S).is_none());
        t.learn(0, ip, &M1, S, true);
        let tok = t.token(0, ip, S).unwrap();
        assert_eq!(tok.mac, M1);
        assert!(t.token_valid(&tok, 2 * S));
        assert!(
            !t.token_valid(&tok, S + REACHABLE_NS),
            "stale: back to resolve"
        );
        t.learn(0, ip, &M2, 3 * S, false);
        assert!(!t.token_valid(&tok, 3 * S), "a new MAC invalidates");
        assert_eq!(t.token(0, ip, 3 * S).unwrap().mac, M2);
        t.insert_static(1, ip, &M1);
        assert_eq!(t.token(1, ip, u64::MAX - 1).unwrap().until, u64::MAX);
    }

    #[test]
    fn v6_keys_do_not_collide_with_v4() {
        let t = NeighborTable::new(64);
        let v6: u128 = 0x2001_0db8 << 96 | 1;
        t.learn(0, v6, &M1, S, true);
        t.learn(0, v4_key(1), &M2, S, true);
        assert_eq!(t.resolve(0, v6, S), Resolution::Reachable(M1));
        assert_eq!(t.resolve(0, v4_key(1), S), Resolution::Reachable(M2));
        assert_eq!(key_v4(v6), None);
    }

    #[test]
    fn concurrent_learn_and_resolve_never_tear() {
        // Writers flip each entry between two MACs whose bytes all agree;
        // a torn read would mix them.
        let t = Arc::new(NeighborTable::new(256));
        let a = [0xaa; 6];
        let b = [0xbb; 6];
        for i in 0..64u32 {
            t.learn(0, v4_key(i), &a, 1, true);
        }
        let w = {
            let t = t.clone();
            std::thread::spawn(move || {
                for round in 0..20_000u32 {
                    let m = if round % 2 == 0 { &b } else { &a };
                    t.learn(0, v4_key(round % 64), m, 1, false);
                }
            })
        };
        for _ in 0..20_000 {
            for i in 0..64u32 {
                match t.resolve(0, v4_key(i), 2) {
                    Resolution::Reachable(m) => assert!(m == a || m == b, "torn {m:?}"),
                    Resolution::Miss => {} // slot being written
                    Resolution::Probe(_) => panic!("not stale"),
                }
            }
        }
        w.join().unwrap();
    }
}
