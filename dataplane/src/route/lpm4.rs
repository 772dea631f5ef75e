//! IPv4 longest-prefix match, DIR-24-8 (Gupta, Lin & McKeown 1998; the
//! layout of DPDK's rte_lpm).
//!
//! The top 24 bits of the address index a table of 2^24 entries; an entry is
//! either the answer or the number of a 256-entry group indexed by the low 8
//! bits. A lookup is one read, or two for the few /24s that hold longer
//! prefixes; a full BGP table (600k prefixes) needs ~80 MiB plus a group per
//! /24 holding a /25../32. Encoding, depths and memory are described in
//! `dir.rs`.
//!
//! Beside the tables, the rules are kept per prefix length (a hash map each),
//! so that `remove` can find the covering prefix to re-expose and `len`,
//! `get` and `iter` need not decode the tables. Insert and remove touch only
//! the range of the prefix: 2^(24-len) entries for len <= 24, at most 256
//! otherwise.
//!
//! Small tables (at most `SMALL` (16) prefixes: a local table, a policy table
//! with a default route) skip the 80 MiB tables and are scanned linearly,
//! longest prefix first: a few compares over one or two cache lines, where a
//! /0 in DIR-24-8 would write all 2^24 entries. The tables are built when the
//! table grows past `SMALL` and dropped when it shrinks below half of it.
//! A small table of host routes only (the local table: the router's
//! addresses) also keeps a 64-bit filter, one bit per /32 by a
//! multiplicative hash, and answers a miss without scanning when the
//! address's bit is clear; an empty table rejects everything. The local
//! table is consulted before main for every packet; with the filter the
//! default-rules decision (local, main, next hop) went from 76 to 60
//! instructions per lookup (callgrind, routed RIB addresses).
//!
//! [`Lpm4::lookup_prefix`] is the slow path's lookup: the same answer with
//! the matched prefix, found in the rule maps (`ip route get`, traces).
//! Batches prefetch the first-level entries (`first_level`, used by
//! `policy.rs`).
//!
//! Values are `u32` up to [`Lpm4::MAX_VALUE`] (2^31 - 1); the top bit is the
//! leaf flag.

use std::fmt;

use super::dir::{GROUP_LEN, Groups, LEAF, TBL24_LEN, Tbl24, is_group};
use super::prefixes::{self, Dir, Lpm};
use super::{LpmError, SMALL};

/// Longest-prefix match over IPv4 addresses (host order `u32`) to `u32`
/// values.
#[derive(Clone)]
pub struct Lpm4 {
    /// The rules, and the DIR-24-8 tables or the small list built from them
    /// (`prefixes.rs`).
    inner: Lpm<u32, Dir4>,
}

impl Default for Lpm4 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm4 {
    /// The largest value the table can hold.
    pub const MAX_VALUE: u32 = prefixes::MAX_VALUE;

    /// An empty table. Allocates nothing until it grows past `SMALL` (16)
    /// prefixes; then it reserves 80 MiB of address space, backed lazily.
    pub fn new() -> Self {
        Lpm4 {
            inner: Lpm::new(SMALL),
        }
    }

    /// A table that always uses the DIR-24-8 tables (tests).
    #[cfg(test)]
    pub(crate) fn dir_only() -> Self {
        Lpm4 { inner: Lpm::new(0) }
    }

    /// Adds or replaces `prefix/len` -> `value`, returning the old value.
    /// Host bits of `prefix` are ignored.
    ///
    /// Unchecked input: `len > 32` is treated as 32 and `value` is truncated
    /// to 31 bits (both are `debug_assert`ed). Use [`Lpm4::try_insert`] for
    /// input that has not been validated.
    pub fn insert(&mut self, prefix: u32, len: u8, value: u32) -> Option<u32> {
        self.inner.insert(prefix, len, value)
    }

    /// Checked [`Lpm4::insert`]: rejects `len > 32` and values above
    /// [`Lpm4::MAX_VALUE`].
    pub fn try_insert(
        &mut self,
        prefix: u32,
        len: u8,
        value: u32,
    ) -> Result<Option<u32>, LpmError> {
        self.inner.try_insert(prefix, len, value)
    }

    /// Removes `prefix/len` (host bits ignored), returning its value. The
    /// addresses it covered fall back to the longest shorter prefix covering
    /// them, if any.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<u32> {
        self.inner.remove(prefix, len)
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        match &self.inner.dir {
            Some(dir) => dir.lookup(addr),
            None if !self.inner.may_be_small(addr) => None,
            None => self.inner.lookup_small(addr),
        }
    }

    /// The first-level entries (indexed by the top 24 bits of an address),
    /// for a batch to prefetch; `None` for a small table, whose list is
    /// already in cache.
    #[inline]
    pub(super) fn first_level(&self) -> Option<&[u32; TBL24_LEN]> {
        self.inner.dir.as_ref().map(|d| d.tbl24.entries())
    }

    /// The longest prefix containing `addr` as (prefix, len, value): what
    /// [`Lpm4::lookup`] answers, plus the prefix it matched. Probes the rule
    /// maps from /32 down (at most 33 hash lookups), so it is for the slow
    /// path (`ip route get`, traces), not for forwarding.
    pub fn lookup_prefix(&self, addr: u32) -> Option<(u32, u8, u32)> {
        self.inner.lookup_prefix(addr)
    }

    /// Looks up `addrs[i]` into `out[i]` for `i < min(addrs.len(),
    /// out.len())`. A plain loop: the lookups are independent and
    /// branch-light, so the CPU already overlaps their cache misses (gathering
    /// the first-level entries of a block first measured ~10% slower).
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        match &self.inner.dir {
            Some(dir) => {
                for (o, &a) in out.iter_mut().zip(addrs) {
                    *o = dir.lookup(a);
                }
            }
            None => {
                for (o, &a) in out.iter_mut().zip(addrs) {
                    *o = self.lookup(a);
                }
            }
        }
    }

    /// The value stored for exactly `prefix/len` (host bits ignored).
    pub fn get(&self, prefix: u32, len: u8) -> Option<u32> {
        self.inner.get(prefix, len)
    }

    /// All (prefix, len, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, u32)> + '_ {
        self.inner.iter()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// Bytes allocated: tables (address space, see `dir.rs`) and the rule
    /// maps.
    pub fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    /// Second-level groups in use (one per /24 holding a longer prefix).
    pub fn groups(&self) -> usize {
        self.inner.dir.as_ref().map_or(0, |d| d.tbl8.in_use())
    }
}

/// The DIR-24-8 tables.
#[derive(Clone)]
struct Dir4 {
    tbl24: Tbl24,
    tbl8: Groups,
    /// The /0 rule's entry (0 if none): the answer where the tables hold
    /// none. Kept out of the tables so that a default route costs nothing
    /// instead of writing all 2^24 entries.
    default: u32,
}

impl Dir4 {
    #[inline(always)]
    fn lookup(&self, addr: u32) -> Option<u32> {
        let e = self.tbl24.entry(addr >> 8);
        // Empty entries (0) read the reserved empty group 0: one more read of
        // a line that stays in cache, and one branch fewer.
        let e = if e & LEAF != 0 {
            e
        } else {
            self.tbl8.entry(e, addr as u8)
        };
        let e = if e & LEAF != 0 { e } else { self.default };
        if e & LEAF != 0 {
            Some(e & Lpm4::MAX_VALUE)
        } else {
            None
        }
    }

    /// Makes the tbl24 entry of `prefix` point to a group, splitting a leaf
    /// or empty entry into 256 copies.
    fn ensure_group(&mut self, prefix: u32) -> Option<u32> {
        let i = (prefix >> 8) as usize;
        let e = self.tbl24.entry(prefix >> 8);
        if is_group(e) {
            return Some(e);
        }
        let g = self.tbl8.alloc(e, self.tbl24.depth(i))?;
        self.tbl24.set_group(i, g);
        Some(g)
    }
}

impl Dir<u32> for Dir4 {
    fn new() -> Self {
        Dir4 {
            tbl24: Tbl24::new(),
            tbl8: Groups::new(),
            default: 0,
        }
    }

    /// A prefix longer than /24 needs the group of its /24.
    fn reserve(&mut self, prefix: u32, len: u8) -> bool {
        len <= 24 || self.ensure_group(prefix).is_some()
    }

    /// Writes (`entry`, `depth`) to every entry of the range of `prefix/len`
    /// whose current depth satisfies `pred`, descending into groups. For
    /// `len > 24` the group must exist (insert reserves it first).
    fn write(
        &mut self,
        prefix: u32,
        len: u8,
        entry: u32,
        depth: u8,
        pred: impl Fn(u8) -> bool + Copy,
    ) {
        if len == 0 {
            self.default = entry;
        } else if len <= 24 {
            let start = (prefix >> 8) as usize;
            for i in start..start + (1 << (24 - len)) {
                let e = self.tbl24.entry(i as u32);
                if is_group(e) {
                    let s = Groups::slot(e, 0);
                    for s in s..s + GROUP_LEN {
                        if pred(self.tbl8.get(s).1) {
                            self.tbl8.set(s, entry, depth);
                        }
                    }
                } else if pred(self.tbl24.depth(i)) {
                    self.tbl24.set(i, entry, depth);
                }
            }
        } else {
            let g = self.tbl24.entry(prefix >> 8);
            if !is_group(g) {
                debug_assert!(false, "no group for {prefix:#x}/{len}");
                return;
            }
            let s = Groups::slot(g, (prefix & 0xff) as usize);
            for s in s..s + (1 << (32 - len)) {
                if pred(self.tbl8.get(s).1) {
                    self.tbl8.set(s, entry, depth);
                }
            }
        }
    }

    /// Folds the group under `prefix`'s /24 back into tbl24 once it holds no
    /// prefix longer than /24.
    fn release(&mut self, prefix: u32, len: u8) {
        let i = (prefix >> 8) as usize;
        let g = self.tbl24.entry(prefix >> 8);
        if len <= 24 || !is_group(g) {
            return;
        }
        if let Some((e, d)) = self.tbl8.uniform(g, 25) {
            self.tbl24.set(i, e, d);
            self.tbl8.release(g);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.tbl24.memory_bytes() + self.tbl8.memory_bytes()
    }
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4")
            .field("len", &self.len())
            .field("dir", &self.inner.dir.is_some())
            .field("groups", &self.groups())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::prefixes::Addr;
    use proptest::prelude::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn empty() {
        for t in [Lpm4::new(), Lpm4::dir_only()] {
            assert!(t.is_empty());
            assert_eq!(t.lookup(0), None);
            assert_eq!(t.lookup(u32::MAX), None);
            assert_eq!(t.lookup(ip("10.1.2.3")), None);
        }
        assert!(
            Lpm4::new().memory_bytes() < 4096,
            "an empty table allocates nothing big"
        );
    }

    #[test]
    fn small_host_table_is_filtered() {
        let mut t = Lpm4::new();
        let hosts: Vec<u32> = (0..SMALL as u32)
            .map(|i| ip("192.0.2.1") + i * 37)
            .collect();
        for (i, &h) in hosts.iter().enumerate() {
            t.insert(h, 32, i as u32);
        }
        assert!(t.inner.dir.is_none());
        assert!(t.inner.filter.count_ones() <= SMALL as u32);
        for (i, &h) in hosts.iter().enumerate() {
            assert_eq!(t.lookup(h), Some(i as u32));
            assert_eq!(t.lookup(h ^ 1 << 20), None);
        }
        for a in (0..50_000u32).map(|i| i.wrapping_mul(0x9e37_79b9)) {
            let want = hosts.iter().position(|&h| h == a).map(|i| i as u32);
            assert_eq!(t.lookup(a), want);
        }
        // A shorter prefix turns the filter off; removing it turns it on.
        t.remove(hosts[0], 32);
        t.insert(ip("10.0.0.0"), 8, 99);
        assert_eq!(t.inner.filter, u64::MAX);
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(99));
        assert_eq!(t.lookup(hosts[1]), Some(1));
        assert_eq!(t.lookup(hosts[0]), None);
        t.remove(ip("10.0.0.0"), 8);
        assert_ne!(t.inner.filter, u64::MAX);
        assert_eq!(t.lookup(ip("10.1.2.3")), None);
        assert_eq!(
            Lpm4::new().inner.filter,
            0,
            "an empty table rejects everything"
        );
    }

    #[test]
    fn small_table_grows_into_dir_and_back() {
        let mut t = Lpm4::new();
        t.insert(0, 0, 1000);
        for i in 0..SMALL as u32 - 1 {
            t.insert(ip("10.0.0.0") + (i << 8), 24, i);
        }
        assert!(t.inner.dir.is_none());
        assert_eq!(t.lookup(ip("10.0.3.9")), Some(3));
        assert_eq!(t.lookup(ip("11.0.0.1")), Some(1000));
        t.insert(ip("10.0.3.128"), 25, 77);
        assert!(t.inner.dir.is_some(), "built past SMALL prefixes");
        assert_eq!(t.lookup(ip("10.0.3.9")), Some(3));
        assert_eq!(t.lookup(ip("10.0.3.200")), Some(77));
        assert_eq!(t.lookup(ip("11.0.0.1")), Some(1000));
        for i in 0..SMALL as u32 - 1 {
            t.remove(ip("10.0.0.0") + (i << 8), 24);
        }
        assert!(t.inner.dir.is_none(), "dropped below SMALL / 2");
        assert_eq!(t.lookup(ip("10.0.3.9")), Some(1000));
        assert_eq!(t.lookup(ip("10.0.3.200")), Some(77));
        assert!(t.memory_bytes() < 4096);
    }

    #[test]
    fn longest_wins_and_remove_reexposes() {
        let mut t = Lpm4::dir_only();
        assert_eq!(t.insert(ip("10.0.0.0"), 8, 1), None);
        assert_eq!(t.insert(ip("10.1.0.0"), 16, 2), None);
        assert_eq!(t.insert(ip("10.1.2.0"), 24, 3), None);
        assert_eq!(t.insert(ip("10.1.2.128"), 25, 4), None);
        assert_eq!(t.insert(ip("10.1.2.129"), 32, 5), None);
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(1));
        assert_eq!(t.lookup(ip("10.1.9.9")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.1")), Some(3));
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(4));
        assert_eq!(t.lookup(ip("10.1.2.129")), Some(5));
        assert_eq!(t.lookup(ip("11.0.0.0")), None);
        assert_eq!(t.groups(), 1);

        assert_eq!(t.remove(ip("10.1.2.0"), 24), Some(3));
        assert_eq!(t.lookup(ip("10.1.2.1")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(4));
        assert_eq!(t.remove(ip("10.1.2.128"), 25), Some(4));
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.129")), Some(5));
        assert_eq!(t.remove(ip("10.1.2.129"), 32), Some(5));
        assert_eq!(t.lookup(ip("10.1.2.129")), Some(2));
        assert_eq!(t.groups(), 0, "group folded back once no /25+ remains");
        assert_eq!(t.remove(ip("10.1.0.0"), 16), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.129")), Some(1));
        assert_eq!(t.remove(ip("10.1.0.0"), 16), None);
        assert_eq!(t.remove(ip("10.0.0.0"), 8), Some(1));
        assert_eq!(t.lookup(ip("10.1.2.129")), None);
        assert!(t.is_empty());
    }

    #[test]
    fn shorter_insert_keeps_longer() {
        let mut t = Lpm4::dir_only();
        t.insert(ip("192.168.1.0"), 24, 7);
        t.insert(ip("192.168.1.64"), 26, 8);
        t.insert(ip("192.168.0.0"), 16, 9);
        t.insert(0, 0, 10);
        assert_eq!(t.lookup(ip("192.168.1.65")), Some(8));
        assert_eq!(t.lookup(ip("192.168.1.1")), Some(7));
        assert_eq!(t.lookup(ip("192.168.2.1")), Some(9));
        assert_eq!(t.lookup(ip("8.8.8.8")), Some(10));
        t.remove(0, 0);
        assert_eq!(t.lookup(ip("8.8.8.8")), None);
        assert_eq!(t.lookup(ip("192.168.1.65")), Some(8));
    }

    #[test]
    fn replace_returns_old_and_masks_host_bits() {
        let mut t = Lpm4::dir_only();
        assert_eq!(t.insert(ip("10.1.2.3"), 24, 1), None);
        assert_eq!(t.get(ip("10.1.2.0"), 24), Some(1));
        assert_eq!(t.insert(ip("10.1.2.0"), 24, 2), Some(1));
        assert_eq!(t.insert(ip("10.1.2.0"), 24, 2), Some(2));
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(ip("10.1.2.255")), Some(2));
        assert_eq!(t.insert(ip("10.1.2.77"), 30, 3), None);
        assert_eq!(t.insert(ip("10.1.2.76"), 30, 4), Some(3));
        assert_eq!(t.lookup(ip("10.1.2.79")), Some(4));
        assert_eq!(t.remove(ip("10.1.2.78"), 30), Some(4));
        assert_eq!(t.remove(ip("10.1.2.255"), 24), Some(2));
        assert!(t.is_empty());
    }

    #[test]
    fn host_routes_and_default() {
        let mut t = Lpm4::dir_only();
        t.insert(u32::MAX, 32, Lpm4::MAX_VALUE);
        t.insert(0, 32, 0);
        assert_eq!(t.lookup(u32::MAX), Some(Lpm4::MAX_VALUE));
        assert_eq!(t.lookup(0), Some(0));
        assert_eq!(t.lookup(1), None);
        t.insert(0, 0, 3);
        assert_eq!(t.lookup(1), Some(3));
        assert_eq!(t.lookup(u32::MAX - 1), Some(3));
    }

    #[test]
    fn checked_api_rejects_bad_input() {
        let mut t = Lpm4::dir_only();
        assert_eq!(
            t.try_insert(0, 33, 1),
            Err(LpmError::PrefixLen { len: 33, max: 32 })
        );
        assert_eq!(t.try_insert(0, 8, 1 << 31), Err(LpmError::Value(1 << 31)));
        assert_eq!(t.try_insert(0, 8, 5), Ok(None));
        assert_eq!(t.remove(0, 33), None);
        assert_eq!(t.remove(0, 255), None);
        assert_eq!(t.get(0, 200), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn batch_matches_single() {
        let mut t = Lpm4::dir_only();
        t.insert(ip("10.0.0.0"), 8, 1);
        t.insert(ip("10.1.2.128"), 25, 2);
        let addrs: Vec<u32> = (0..100u32)
            .map(|i| ip("10.1.2.0") + i * 3)
            .chain([0, u32::MAX])
            .collect();
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a));
        }
        // Shorter output: only the prefix is filled.
        let mut short = [Some(9); 3];
        t.lookup_batch(&addrs[..2], &mut short);
        assert_eq!(short, [Some(1), Some(1), Some(9)]);
    }

    #[test]
    fn clone_is_independent() {
        let mut a = Lpm4::dir_only();
        a.insert(ip("10.0.0.0"), 8, 1);
        a.insert(ip("10.1.2.3"), 32, 2);
        let mut b = a.clone();
        b.insert(ip("10.0.0.0"), 8, 3);
        assert_eq!(a.lookup(ip("10.5.5.5")), Some(1));
        assert_eq!(b.lookup(ip("10.5.5.5")), Some(3));
        assert_eq!(b.lookup(ip("10.1.2.3")), Some(2));
        b.remove(ip("10.1.2.3"), 32);
        assert_eq!(a.lookup(ip("10.1.2.3")), Some(2));
    }

    /// The model: a linear scan over all rules.
    fn model_lookup(rules: &[(u32, u8, u32)], addr: u32) -> Option<u32> {
        rules
            .iter()
            .filter(|&&(p, l, _)| addr & u32::mask(l) == p)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, _, v)| v)
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32, u8, u32),
        Remove(u32, u8),
    }

    /// Prefixes drawn around a few bases so that they nest and collide.
    fn prefix() -> impl Strategy<Value = (u32, u8)> {
        let base = prop_oneof![
            Just(0x0a00_0000u32),
            Just(0xc0a8_0100),
            Just(0xffff_ff00),
            any::<u32>()
        ];
        // Short lengths write up to 2^24 entries each: keep them rare.
        let len = prop_oneof![1 => 0u8..=12, 6 => 13u8..=32];
        (base, any::<u32>(), len).prop_map(|(b, noise, l)| {
            let p = b ^ (noise & (noise >> 7) & 0x00ff_ffff);
            (p & u32::mask(l), l)
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (prefix(), 0u32..1000).prop_map(|((p, l), v)| Op::Insert(p, l, v)),
            2 => prefix().prop_map(|(p, l)| Op::Remove(p, l)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn matches_linear_model(dir in any::<bool>(), ops in proptest::collection::vec(op(), 1..40),
                                probes in proptest::collection::vec(any::<u32>(), 64)) {
            let mut t = if dir { Lpm4::dir_only() } else { Lpm4::new() };
            let mut model: Vec<(u32, u8, u32)> = Vec::new();
            for op in &ops {
                match *op {
                    Op::Insert(p, l, v) => {
                        let old = model.iter().position(|&(mp, ml, _)| (mp, ml) == (p, l));
                        let want = old.map(|i| model.remove(i).2);
                        model.push((p, l, v));
                        prop_assert_eq!(t.insert(p, l, v), want);
                    }
                    Op::Remove(p, l) => {
                        let old = model.iter().position(|&(mp, ml, _)| (mp, ml) == (p, l));
                        let want = old.map(|i| model.remove(i).2);
                        prop_assert_eq!(t.remove(p, l), want);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            // Probe random addresses and the edges of every prefix.
            let edges = model.iter().flat_map(|&(p, l, _)| [p, p | !u32::mask(l), p.wrapping_sub(1), (p | !u32::mask(l)).wrapping_add(1)]);
            let all: Vec<u32> = probes.iter().copied().chain(edges).collect();
            let mut out = vec![None; all.len()];
            t.lookup_batch(&all, &mut out);
            for (&a, &o) in all.iter().zip(&out) {
                let want = model_lookup(&model, a);
                prop_assert_eq!(t.lookup(a), want, "addr {:#x}", a);
                prop_assert_eq!(o, want, "batch, addr {:#x}", a);
                let longest = model
                    .iter()
                    .filter(|&&(p, l, _)| a & u32::mask(l) == p)
                    .max_by_key(|&&(_, l, _)| l)
                    .copied();
                prop_assert_eq!(t.lookup_prefix(a), longest, "prefix, addr {:#x}", a);
            }
            // Removing everything leaves no group behind.
            for &(p, l, _) in &model {
                prop_assert!(t.remove(p, l).is_some());
            }
            prop_assert_eq!(t.groups(), 0);
            prop_assert!(t.is_empty());
            prop_assert_eq!(t.inner.dir.is_some(), dir);
            for a in probes {
                prop_assert_eq!(t.lookup(a), None);
            }
        }
    }
}
