//! The MAC table (forwarding database) every worker shares: which bridge
//! port a MAC address was last seen on, per bridge and VLAN.
//!
//! A fixed array of two-word slots, never resized (`fdb_max`, rounded up
//! to a power of two). The key word packs the bridge (4 bits), the VLAN
//! (12 bits) and the MAC (48 bits); the value word the port's interface,
//! a valid bit, the static bit and the time last seen (in units of 2^20
//! ns, about a millisecond). A key lives in one of the [`PROBE`] slots
//! after its hash; keys are never erased, only their values invalidated
//! (flush) or left to age, and an aged or invalid slot is taken over by
//! compare-and-swap of its key.
//!
//! No lock: a lookup reads the key, then the value; a learner claims a
//! free slot with one CAS on the key and then stores the value. A reader
//! that sees a claimed key before its value reads an invalid or aged value
//! and takes the miss path (the frame floods), as after ageing. Two
//! workers learning the same new address at once may both claim a slot;
//! lookups and updates take the first, the other ages out. Refreshing an
//! entry stores only when the port changed or a second has passed, so a
//! busy flow does not make workers bounce the slot's cache line.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

/// Slots a key may live in, from its hash on.
pub const PROBE: usize = 8;
/// Time unit of the value word: 2^20 ns.
const TIME_SHIFT: u32 = 20;
/// A refresh of an entry on the same port stores at most this often (in
/// time units, ~1 s).
const REFRESH: u64 = 1 << 10;
const VALID: u64 = 1 << 16;
const STATIC: u64 = 1 << 17;
const TIME_POS: u32 = 24;

/// One MAC table entry as `ctl fdb` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    pub bridge: u8,
    pub vid: u16,
    pub mac: [u8; 6],
    /// The port's interface.
    pub port: u16,
    pub is_static: bool,
    /// Nanoseconds since it was last seen (0 for static entries).
    pub age_ns: u64,
}

/// What learning did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Known on this port, nothing written (or refreshed).
    Known,
    /// A new entry, or an entry that moved to this port.
    New,
    /// No free slot among the key's: not learned (frames to it flood).
    Full,
    /// A static entry on another port: never moved.
    Static,
}

pub struct Fdb {
    keys: Box<[AtomicU64]>,
    vals: Box<[AtomicU64]>,
    mask: usize,
}

impl std::fmt::Debug for Fdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fdb")
            .field("slots", &self.keys.len())
            .finish()
    }
}

#[inline]
fn key(bridge: u8, vid: u16, mac: &[u8; 6]) -> u64 {
    let m = mac.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
    u64::from(bridge & 0xf) << 60 | u64::from(vid & 0xfff) << 48 | m
}

#[inline]
fn hash(k: u64) -> usize {
    let h = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32 ^ h) as usize
}

#[inline]
fn stamp(now: u64) -> u64 {
    (now >> TIME_SHIFT) & ((1 << (64 - TIME_POS)) - 1)
}

impl Fdb {
    /// A table of at least `capacity` slots (a power of two, at least
    /// [`PROBE`]).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(PROBE).next_power_of_two();
        Fdb {
            keys: (0..n).map(|_| AtomicU64::new(0)).collect(),
            vals: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
        }
    }

    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    fn live(v: u64, now: u64, ageing_ns: u64) -> bool {
        if v & VALID == 0 {
            return false;
        }
        if v & STATIC != 0 || ageing_ns == 0 {
            return true;
        }
        let age = stamp(now).wrapping_sub(v >> TIME_POS) & ((1 << (64 - TIME_POS)) - 1);
        age << TIME_SHIFT < ageing_ns
    }

    /// The port `mac` was last seen on in `bridge`'s VLAN `vid`, if it
    /// has not aged (`ageing_ns`; 0: entries never age).
    #[inline]
    pub fn lookup(
        &self,
        bridge: u8,
        vid: u16,
        mac: &[u8; 6],
        now: u64,
        ageing_ns: u64,
    ) -> Option<u16> {
        let k = key(bridge, vid, mac);
        let h = hash(k);
        for i in 0..PROBE {
            let s = (h + i) & self.mask;
            let sk = self.keys[s].load(Acquire);
            if sk == k {
                let v = self.vals[s].load(Acquire);
                return Self::live(v, now, ageing_ns).then_some(v as u16);
            }
            if sk == 0 {
                return None;
            }
        }
        None
    }

    /// Records that `mac` was seen on `port` (a frame's source).
    #[inline]
    pub fn learn(
        &self,
        bridge: u8,
        vid: u16,
        mac: &[u8; 6],
        port: u16,
        now: u64,
        ageing_ns: u64,
    ) -> Learned {
        let k = key(bridge, vid, mac);
        let h = hash(k);
        let fresh = u64::from(port) | VALID | stamp(now) << TIME_POS;
        let mut free = None;
        for i in 0..PROBE {
            let s = (h + i) & self.mask;
            let sk = self.keys[s].load(Acquire);
            if sk == k {
                let v = self.vals[s].load(Relaxed);
                if v & VALID != 0 && v & STATIC != 0 {
                    return if v as u16 == port {
                        Learned::Known
                    } else {
                        Learned::Static
                    };
                }
                let same = v & VALID != 0 && v as u16 == port;
                let recent =
                    stamp(now).wrapping_sub(v >> TIME_POS) & ((1 << (64 - TIME_POS)) - 1) < REFRESH;
                if same && recent && Self::live(v, now, ageing_ns) {
                    return Learned::Known;
                }
                self.vals[s].store(fresh, Release);
                return if same { Learned::Known } else { Learned::New };
            }
            if sk == 0 {
                free.get_or_insert((s, 0));
                break;
            }
            if free.is_none() && !Self::live(self.vals[s].load(Relaxed), now, ageing_ns) {
                free = Some((s, sk));
            }
        }
        let Some((s, old)) = free else {
            return Learned::Full;
        };
        if self.keys[s]
            .compare_exchange(old, k, AcqRel, Relaxed)
            .is_err()
        {
            // Another worker took the slot first: learn on a later frame.
            return Learned::Full;
        }
        self.vals[s].store(fresh, Release);
        Learned::New
    }

    /// A permanent entry (`[[bridge.fdb]]`). False when the key's slots
    /// are all taken.
    pub fn add_static(&self, bridge: u8, vid: u16, mac: &[u8; 6], port: u16) -> bool {
        let k = key(bridge, vid, mac);
        let h = hash(k);
        let v = u64::from(port) | VALID | STATIC;
        for i in 0..PROBE {
            let s = (h + i) & self.mask;
            let sk = self.keys[s].load(Acquire);
            if sk == k
                || ((sk == 0 || self.vals[s].load(Relaxed) & VALID == 0)
                    && self.keys[s]
                        .compare_exchange(sk, k, AcqRel, Relaxed)
                        .is_ok())
            {
                self.vals[s].store(v, Release);
                return true;
            }
        }
        false
    }

    /// Forgets every entry (a reload that changed the bridges: port
    /// numbers may name other interfaces now).
    pub fn flush(&self) {
        for v in self.vals.iter() {
            v.store(0, Release);
        }
    }

    /// Forgets the learned entries of `bridge` (`ctl fdb flush`).
    pub fn flush_bridge(&self, bridge: u8) {
        for (k, v) in self.keys.iter().zip(self.vals.iter()) {
            let kk = k.load(Acquire);
            if kk != 0 && (kk >> 60) as u8 == bridge & 0xf && v.load(Relaxed) & STATIC == 0 {
                v.store(0, Release);
            }
        }
    }

    /// The live entries, for `ctl fdb` (a snapshot; control thread only).
    pub fn entries(&self, now: u64, ageing_ns: impl Fn(u8) -> u64) -> Vec<FdbEntry> {
        let mut out = Vec::new();
        for (k, v) in self.keys.iter().zip(self.vals.iter()) {
            let (k, v) = (k.load(Acquire), v.load(Acquire));
            let bridge = (k >> 60) as u8;
            if k == 0 || !Self::live(v, now, ageing_ns(bridge)) {
                continue;
            }
            let mut mac = [0u8; 6];
            for (i, b) in mac.iter_mut().enumerate() {
                *b = (k >> (40 - 8 * i)) as u8;
            }
            let is_static = v & STATIC != 0;
            let age = if is_static {
                0
            } else {
                (stamp(now).wrapping_sub(v >> TIME_POS) & ((1 << (64 - TIME_POS)) - 1))
                    << TIME_SHIFT
            };
            out.push(FdbEntry {
                bridge,
                vid: (k >> 48) as u16 & 0xfff,
                mac,
                port: v as u16,
                is_static,
                age_ns: age,
            });
        }
        out.sort_by_key(|e| (e.bridge, e.vid, e.mac));
        out
    }
}

use std::sync::atomic::Ordering::AcqRel;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const S: u64 = 1_000_000_000;
    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    #[test]
    fn learns_moves_and_ages() {
        let f = Fdb::new(64);
        assert_eq!(f.lookup(0, 1, &MAC_A, 0, 300 * S), None);
        assert_eq!(f.learn(0, 1, &MAC_A, 3, S, 300 * S), Learned::New);
        assert_eq!(f.learn(0, 1, &MAC_A, 3, 2 * S, 300 * S), Learned::Known);
        assert_eq!(f.lookup(0, 1, &MAC_A, 10 * S, 300 * S), Some(3));
        // Another VLAN or bridge is another table.
        assert_eq!(f.lookup(0, 2, &MAC_A, 10 * S, 300 * S), None);
        assert_eq!(f.lookup(1, 1, &MAC_A, 10 * S, 300 * S), None);
        // The station moved.
        assert_eq!(f.learn(0, 1, &MAC_A, 4, 11 * S, 300 * S), Learned::New);
        assert_eq!(f.lookup(0, 1, &MAC_A, 12 * S, 300 * S), Some(4));
        // Aged out 300 s after it was last seen.
        assert_eq!(f.lookup(0, 1, &MAC_A, 310 * S, 300 * S), Some(4));
        assert_eq!(f.lookup(0, 1, &MAC_A, 312 * S, 300 * S), None);
        // A refresh keeps it.
        f.learn(0, 1, &MAC_A, 4, 200 * S, 300 * S);
        assert_eq!(f.lookup(0, 1, &MAC_A, 450 * S, 300 * S), Some(4));
    }

    #[test]
    fn static_entries_never_move_or_age() {
        let f = Fdb::new(64);
        assert!(f.add_static(2, 10, &MAC_B, 7));
        assert_eq!(f.learn(2, 10, &MAC_B, 8, S, 300 * S), Learned::Static);
        assert_eq!(f.lookup(2, 10, &MAC_B, 10_000 * S, 300 * S), Some(7));
        f.flush_bridge(2);
        assert_eq!(f.lookup(2, 10, &MAC_B, 10_000 * S, 300 * S), Some(7));
        f.flush();
        assert_eq!(f.lookup(2, 10, &MAC_B, 10_000 * S, 300 * S), None);
        let e = f.entries(0, |_| 300 * S);
        assert!(e.is_empty());
    }

    #[test]
    fn full_table_refuses_and_aged_slots_are_reused() {
        let f = Fdb::new(8);
        let mac = |i: u16| [2, 0, 0, 0, (i >> 8) as u8, i as u8];
        let learned = (0..64u16)
            .filter(|&i| f.learn(0, 1, &mac(i), i, S, 10 * S) == Learned::New)
            .count();
        assert_eq!(learned, 8, "never more entries than slots");
        assert_eq!(f.learn(0, 1, &mac(100), 1, 2 * S, 10 * S), Learned::Full);
        // Once the others age, a new station takes a slot.
        assert_eq!(f.learn(0, 1, &mac(100), 1, 20 * S, 10 * S), Learned::New);
        assert_eq!(f.lookup(0, 1, &mac(100), 20 * S, 10 * S), Some(1));
    }

    /// Against a naive model: a map with the same ageing, for a table
    /// large enough that no key is refused.
    #[test]
    fn agrees_with_a_map() {
        let f = Fdb::new(4096);
        let mut model: HashMap<(u16, [u8; 6]), (u16, u64)> = HashMap::new();
        let mut x = 12345u64;
        let mut now = S;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += (x % 50) * 10_000_000;
            let mac = [2, 0, 0, 0, 0, (x >> 8) as u8 % 200];
            let vid = 1 + (x >> 20) as u16 % 3;
            let port = (x >> 30) as u16 % 4;
            let ageing = 5 * S;
            if x >> 40 & 1 == 0 {
                f.learn(0, vid, &mac, port, now, ageing);
                model.insert((vid, mac), (port, now));
            } else {
                let want = model
                    .get(&(vid, mac))
                    .filter(|(_, t)| now - t < ageing - 2 * S)
                    .map(|(p, _)| *p);
                let got = f.lookup(0, vid, &mac, now, ageing);
                if want.is_some() {
                    assert_eq!(got, want);
                }
                if model
                    .get(&(vid, mac))
                    .is_none_or(|(_, t)| now - t > ageing + 2 * S)
                {
                    assert_eq!(got, None);
                }
            }
        }
    }
}
