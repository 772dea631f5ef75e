//! IPv6 longest-prefix match: a multibit trie with a 24-bit first stride
//! and 8-bit strides below it, leaf-pushed (every slot holds its answer, as
//! in DPDK's rte_lpm6), whose nodes below the first level are stored sparse
//! when they hold at most four runs of equal slots (`nodes.rs`).
//!
//! Why this shape: routed IPv6 prefixes are /16../48 with peaks at /32 and
//! /48 (the 2015 RIB: 44% /48, 41% /29../32). The 24-bit first stride is the
//! lazily backed 2^24-entry table of IPv4 (`dir.rs`; only the touched part of
//! 2000::/3 is resident) and answers /24 and shorter in one read; each
//! further byte of prefix is one node, so a /32 takes two reads, a /48 four,
//! each a single cache line. Below the first level the trie is sparse: with
//! a plain 256-entry group (1.25 KiB with depths) per node, as rte_lpm6
//! does, 200k prefixes took 408 MiB and every level missed the cache; most
//! nodes have two to four runs and fit in 32 bytes. Poptrie-style bitmaps
//! were tried and dropped: without a popcount instruction in the baseline
//! x86-64 target, the software popcount doubled the per-level latency.
//!
//! Updates keep the DIR rule of `dir.rs` (entries carry the depth of the
//! prefix that wrote them): the nodes on the prefix's path and under its
//! range are unpacked into 256 slots, rewritten and repacked (in place when
//! the node keeps its form, so the parents need not change); nodes are
//! created on the way down to a new prefix, and a node left uniform with
//! nothing longer than its parent's stride folds back into the parent slot.
//!
//! Like IPv4, tables of at most `SMALL` (16) prefixes are a linear list and
//! build the trie only when they grow past it, with the same filter for
//! lists of host routes, and [`Lpm6::lookup_prefix`] is the slow path's
//! lookup (see `lpm4.rs`). There is no prefetch hint for IPv6: the RIB's
//! first-level lines stay in cache and the misses are in the nodes below
//! (see `policy.rs`).
//!
//! Values are `u32` up to [`Lpm6::MAX_VALUE`] (2^31 - 1).

use std::fmt;

use super::dir::{LEAF, Tbl24, is_group};
use super::nodes::Nodes;
use super::prefixes::{self, Dir, Lpm};
use super::{LpmError, SMALL};

/// Longest-prefix match over IPv6 addresses (host order `u128`) to `u32`
/// values.
#[derive(Clone)]
pub struct Lpm6 {
    /// The rules, and the trie or the small list built from them
    /// (`prefixes.rs`, as in `Lpm4`).
    inner: Lpm<u128, Dir6>,
}

/// The multibit trie.
#[derive(Clone)]
struct Dir6 {
    tbl24: Tbl24,
    nodes: Nodes,
    /// The /0 rule's entry (0 if none), answered where the trie holds none
    /// (as in `Dir4`).
    default: u32,
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6 {
    /// The largest value the table can hold.
    pub const MAX_VALUE: u32 = prefixes::MAX_VALUE;

    /// An empty table. Allocates nothing until it grows past `SMALL` (16)
    /// prefixes; then it reserves 80 MiB of address space, backed lazily.
    pub fn new() -> Self {
        Lpm6 {
            inner: Lpm::new(SMALL),
        }
    }

    /// A table that always uses the trie (tests).
    #[cfg(test)]
    pub(crate) fn dir_only() -> Self {
        Lpm6 { inner: Lpm::new(0) }
    }

    /// Adds or replaces `prefix/len` -> `value`, returning the old value.
    /// Host bits of `prefix` are ignored.
    ///
    /// Unchecked input: `len > 128` is treated as 128 and `value` is
    /// truncated to 31 bits (both are `debug_assert`ed). Use
    /// [`Lpm6::try_insert`] for input that has not been validated.
    pub fn insert(&mut self, prefix: u128, len: u8, value: u32) -> Option<u32> {
        self.inner.insert(prefix, len, value)
    }

    /// Checked [`Lpm6::insert`]: rejects `len > 128` and values above
    /// [`Lpm6::MAX_VALUE`].
    pub fn try_insert(
        &mut self,
        prefix: u128,
        len: u8,
        value: u32,
    ) -> Result<Option<u32>, LpmError> {
        self.inner.try_insert(prefix, len, value)
    }

    /// Removes `prefix/len` (host bits ignored), returning its value. The
    /// addresses it covered fall back to the longest shorter prefix covering
    /// them, if any.
    pub fn remove(&mut self, prefix: u128, len: u8) -> Option<u32> {
        self.inner.remove(prefix, len)
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        match &self.inner.dir {
            Some(dir) => dir.descend(dir.tbl24.entry((addr >> 104) as u32), addr),
            None if !self.inner.may_be_small(addr) => None,
            None => self.inner.lookup_small(addr),
        }
    }

    /// The longest prefix containing `addr` as (prefix, len, value), for the
    /// slow path (see [`super::Lpm4::lookup_prefix`]): probes the rule maps
    /// of the lengths in use, longest first.
    pub fn lookup_prefix(&self, addr: u128) -> Option<(u128, u8, u32)> {
        self.inner.lookup_prefix(addr)
    }

    /// Looks up `addrs[i]` into `out[i]` for `i < min(addrs.len(),
    /// out.len())`. The first-level reads of a block of 16 are issued
    /// together, before the walks below them.
    pub fn lookup_batch(&self, addrs: &[u128], out: &mut [Option<u32>]) {
        const BLOCK: usize = 16;
        let Some(dir) = &self.inner.dir else {
            for (o, &a) in out.iter_mut().zip(addrs) {
                *o = self.lookup(a);
            }
            return;
        };
        for (a, o) in addrs.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            let mut e = [0u32; BLOCK];
            for (e, &a) in e.iter_mut().zip(a) {
                *e = dir.tbl24.entry((a >> 104) as u32);
            }
            for ((o, &e), &a) in o.iter_mut().zip(&e).zip(a) {
                *o = dir.descend(e, a);
            }
        }
    }

    /// The value stored for exactly `prefix/len` (host bits ignored).
    pub fn get(&self, prefix: u128, len: u8) -> Option<u32> {
        self.inner.get(prefix, len)
    }

    /// All (prefix, len, value), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, u8, u32)> + '_ {
        self.inner.iter()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// Bytes allocated: tables (address space, see `dir.rs`) and rule maps.
    pub fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }

    /// Trie nodes in use below the first level.
    pub fn groups(&self) -> usize {
        self.inner.dir.as_ref().map_or(0, |d| d.nodes.live())
    }
}

impl Dir6 {
    /// Follows node pointers from first-level entry `e` to a leaf.
    #[inline(always)]
    fn descend(&self, mut e: u32, addr: u128) -> Option<u32> {
        let bytes = addr.to_be_bytes();
        let mut i = 3;
        while is_group(e) {
            e = self.nodes.entry(e, *bytes.get(i)?);
            i += 1;
        }
        let e = if e & LEAF != 0 { e } else { self.default };
        if e & LEAF != 0 {
            Some(e & Lpm6::MAX_VALUE)
        } else {
            None
        }
    }

    /// Applies `w` to node `n`, whose stride covers bits `start..start + 8`.
    /// Returns what the parent slot must hold: the (possibly new) node, or
    /// the leaf or empty entry and its depth the node folded into.
    fn write_node<P: Fn(u8) -> bool + Copy>(
        &mut self,
        n: u32,
        start: u8,
        w: &Write<P>,
    ) -> (u32, Option<u8>) {
        let mut s = self.nodes.unpack(n);
        let end = start + 8;
        let slots = if w.len <= start {
            0..256
        } else {
            let b = (w.prefix >> (128 - u32::from(end))) as u8 as usize;
            b..b + (1usize << end.saturating_sub(w.len))
        };
        let mut changed = false;
        for b in slots {
            let (e, d) = (s.entry[b], s.depth[b]);
            if is_group(e) || w.len > end {
                let child = if is_group(e) {
                    Some(e)
                } else {
                    self.nodes.uniform(e, d)
                };
                let Some(child) = child else {
                    debug_assert!(false, "node space exhausted");
                    return (n, None);
                };
                let (ce, cd) = self.write_node(child, end, w);
                s.entry[b] = ce;
                if let Some(cd) = cd {
                    s.depth[b] = cd;
                }
                changed |= (ce, cd) != (e, None);
            } else if (w.pred)(d) && (e, d) != (w.entry, w.depth) {
                s.entry[b] = w.entry;
                s.depth[b] = w.depth;
                changed = true;
            }
        }
        // (A node is never left foldable, so an unchanged one still is not.)
        if !changed {
            return (n, None);
        }
        // Uniform and nothing longer than the parent's stride: fold.
        match s.single() {
            Some((e, d)) if !is_group(e) && d <= start + 1 => {
                self.nodes.release(n);
                return (e, Some(d));
            }
            _ => {}
        }
        match self.nodes.repack(n, &s) {
            Some(m) => (m, None),
            None => {
                debug_assert!(false, "node space exhausted");
                (n, None)
            }
        }
    }
}

impl Dir<u128> for Dir6 {
    fn new() -> Self {
        Dir6 {
            tbl24: Tbl24::new(),
            nodes: Nodes::new(),
            default: 0,
        }
    }

    /// Any prefix may need new nodes: at most 16 (one per byte below the
    /// first level).
    fn reserve(&mut self, _prefix: u128, _len: u8) -> bool {
        self.nodes.has_room()
    }

    /// Writes (`entry`, `depth`) to every leaf or empty slot of the range
    /// of `prefix/len` whose depth satisfies `pred`, creating the nodes on
    /// the way to a prefix longer than /24 and folding nodes left without
    /// anything longer than their parent's stride.
    fn write(
        &mut self,
        prefix: u128,
        len: u8,
        entry: u32,
        depth: u8,
        pred: impl Fn(u8) -> bool + Copy,
    ) {
        let w = Write {
            prefix,
            len,
            entry,
            depth,
            pred,
        };
        if len == 0 {
            self.default = entry;
            return;
        }
        let start = (prefix >> 104) as usize;
        let end = if len <= 24 {
            start + (1 << (24 - len))
        } else {
            start + 1
        };
        for i in start..end {
            let (e, d) = (self.tbl24.entry(i as u32), self.tbl24.depth(i));
            if is_group(e) || len > 24 {
                let n = if is_group(e) {
                    Some(e)
                } else {
                    self.nodes.uniform(e, d)
                };
                let Some(n) = n else {
                    debug_assert!(false, "node space exhausted");
                    return;
                };
                match self.write_node(n, 24, &w) {
                    (c, None) => self.tbl24.set_group(i, c),
                    (e, Some(d)) => self.tbl24.set(i, e, d),
                }
            } else if pred(d) {
                self.tbl24.set(i, entry, depth);
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.tbl24.memory_bytes() + self.nodes.memory_bytes()
    }
}

/// One update, passed down the trie.
struct Write<P> {
    prefix: u128,
    len: u8,
    entry: u32,
    depth: u8,
    pred: P,
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6")
            .field("len", &self.len())
            .field("dir", &self.inner.dir.is_some())
            .field("nodes", &self.groups())
            .field(
                "dense_nodes",
                &self.inner.dir.as_ref().map_or(0, |d| d.nodes.dense()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::prefixes::Addr;
    use proptest::prelude::*;

    fn ip(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn empty() {
        for t in [Lpm6::new(), Lpm6::dir_only()] {
            assert!(t.is_empty());
            assert_eq!(t.lookup(0), None);
            assert_eq!(t.lookup(u128::MAX), None);
        }
        assert!(Lpm6::new().memory_bytes() < 8192);
    }

    #[test]
    fn small_host_table_is_filtered() {
        let mut t = Lpm6::new();
        let hosts: Vec<u128> = (0..SMALL as u128)
            .map(|i| ip("2001:db8::1") + (i << 64) + i * 37)
            .collect();
        for (i, &h) in hosts.iter().enumerate() {
            t.insert(h, 128, i as u32);
        }
        assert!(t.inner.dir.is_none());
        for (i, &h) in hosts.iter().enumerate() {
            assert_eq!(t.lookup(h), Some(i as u32));
            assert_eq!(t.lookup(h ^ 1 << 90), None);
            assert_eq!(t.lookup(h + 1), None);
        }
        t.remove(hosts[0], 128);
        t.insert(ip("2001:db8::"), 32, 99);
        assert_eq!(t.inner.filter, u64::MAX);
        assert_eq!(t.lookup(ip("2001:db8:5::1")), Some(99));
        assert_eq!(t.lookup(hosts[1]), Some(1));
        t.remove(ip("2001:db8::"), 32);
        assert_ne!(t.inner.filter, u64::MAX);
        assert_eq!(t.lookup(ip("2001:db8:5::1")), None);
    }

    #[test]
    fn small_table_grows_into_dir_and_back() {
        let mut t = Lpm6::new();
        t.insert(0, 0, 1000);
        for i in 0..SMALL as u128 - 1 {
            t.insert(ip("2001:db8::") + (i << 80), 48, i as u32);
        }
        assert!(t.inner.dir.is_none());
        assert_eq!(t.lookup(ip("2001:db8:3::9")), Some(3));
        t.insert(ip("2001:db8:3:1::"), 64, 77);
        assert!(t.inner.dir.is_some());
        assert_eq!(t.lookup(ip("2001:db8:3::9")), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:3:1::9")), Some(77));
        assert_eq!(t.lookup(ip("::1")), Some(1000));
        for i in 0..SMALL as u128 - 1 {
            t.remove(ip("2001:db8::") + (i << 80), 48);
        }
        assert!(t.inner.dir.is_none());
        assert_eq!(t.lookup(ip("2001:db8:3::9")), Some(1000));
        assert_eq!(t.lookup(ip("2001:db8:3:1::9")), Some(77));
    }

    #[test]
    fn longest_wins_and_remove_reexposes() {
        let mut t = Lpm6::dir_only();
        t.insert(ip("2001:db8::"), 32, 1);
        t.insert(ip("2001:db8:1::"), 48, 2);
        t.insert(ip("2001:db8:1:2::"), 64, 3);
        t.insert(ip("2001:db8:1:2::1"), 128, 4);
        t.insert(ip("2001:db8:1:2::"), 127, 5);
        t.insert(ip("2000::"), 3, 6);
        assert_eq!(t.lookup(ip("2001:db8:ffff::1")), Some(1));
        assert_eq!(t.lookup(ip("2001:db8:1:ffff::1")), Some(2));
        assert_eq!(t.lookup(ip("2001:db8:1:2::2")), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(4));
        assert_eq!(t.lookup(ip("2001:db8:1:2::")), Some(5));
        assert_eq!(t.lookup(ip("2a00::1")), Some(6));
        assert_eq!(t.lookup(ip("fe80::1")), None);

        assert_eq!(t.remove(ip("2001:db8:1:2::1"), 128), Some(4));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(5));
        assert_eq!(t.remove(ip("2001:db8:1:2::"), 127), Some(5));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(3));
        assert_eq!(t.remove(ip("2001:db8:1::"), 48), Some(2));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:1:3::1")), Some(1));
        assert_eq!(t.remove(ip("2001:db8:1:2::"), 64), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(1));
        assert_eq!(
            t.groups(),
            1,
            "only the /32's group under 2001:d::/24 is left"
        );
        assert_eq!(t.remove(ip("2001:db8::"), 32), Some(1));
        assert_eq!(t.groups(), 0);
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(6));
        assert_eq!(t.remove(ip("2000::"), 3), Some(6));
        assert!(t.is_empty());
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), None);
    }

    #[test]
    fn short_prefix_over_deep_groups() {
        let mut t = Lpm6::dir_only();
        t.insert(ip("2001:db8:0:1::"), 64, 1);
        t.insert(ip("2001:db8::"), 16, 2);
        t.insert(0, 0, 3);
        assert_eq!(t.lookup(ip("2001:db8:0:1::5")), Some(1));
        assert_eq!(t.lookup(ip("2001:db8:0:2::5")), Some(2));
        assert_eq!(t.lookup(ip("::1")), Some(3));
        t.remove(ip("2001::"), 16);
        assert_eq!(t.lookup(ip("2001:db8:0:2::5")), Some(3));
        assert_eq!(t.lookup(ip("2001:db8:0:1::5")), Some(1));
        t.insert(ip("2001:db8::"), 16, 4);
        assert_eq!(t.lookup(ip("2001:db8:0:2::5")), Some(4));
    }

    #[test]
    fn checked_api_and_batch() {
        let mut t = Lpm6::dir_only();
        assert_eq!(
            t.try_insert(0, 129, 1),
            Err(LpmError::PrefixLen { len: 129, max: 128 })
        );
        assert_eq!(t.try_insert(0, 8, u32::MAX), Err(LpmError::Value(u32::MAX)));
        assert_eq!(t.remove(0, 129), None);
        assert_eq!(t.try_insert(ip("2001:db8::1"), 128, 9), Ok(None));
        assert_eq!(t.get(ip("2001:db8::1"), 128), Some(9));
        let addrs: Vec<u128> = (0..40u128).map(|i| ip("2001:db8::") + i).collect();
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a));
        }
        assert_eq!(out[1], Some(9));
        let c = t.clone();
        t.remove(ip("2001:db8::1"), 128);
        assert_eq!(c.lookup(ip("2001:db8::1")), Some(9));
        assert_eq!(t.lookup(ip("2001:db8::1")), None);
    }

    fn model_lookup(rules: &[(u128, u8, u32)], addr: u128) -> Option<u32> {
        rules
            .iter()
            .filter(|&&(p, l, _)| addr & u128::mask(l) == p)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, _, v)| v)
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u128, u8, u32),
        Remove(u128, u8),
    }

    fn prefix() -> impl Strategy<Value = (u128, u8)> {
        let base = prop_oneof![
            Just(ip("2001:db8::")),
            Just(ip("2a00:1450:4001::")),
            Just(0),
            any::<u128>()
        ];
        let len = prop_oneof![1 => 0u8..=16, 8 => 17u8..=128];
        (base, any::<u128>(), len).prop_map(|(b, noise, l)| {
            // Sparse noise below the first 16 bits keeps prefixes nested.
            let p = b ^ (noise & (noise >> 9) & (noise >> 21) & (u128::MAX >> 16));
            (p & u128::mask(l), l)
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
                                probes in proptest::collection::vec(any::<u128>(), 32)) {
            let mut t = if dir { Lpm6::dir_only() } else { Lpm6::new() };
            let mut model: Vec<(u128, u8, u32)> = Vec::new();
            for op in &ops {
                let (p, l) = match *op { Op::Insert(p, l, _) | Op::Remove(p, l) => (p, l) };
                let old = model.iter().position(|&(mp, ml, _)| (mp, ml) == (p, l));
                let want = old.map(|i| model.remove(i).2);
                match *op {
                    Op::Insert(p, l, v) => {
                        model.push((p, l, v));
                        prop_assert_eq!(t.insert(p, l, v), want);
                    }
                    Op::Remove(p, l) => prop_assert_eq!(t.remove(p, l), want),
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let edges = model.iter().flat_map(|&(p, l, _)| {
                let last = p | !u128::mask(l);
                [p, last, p.wrapping_sub(1), last.wrapping_add(1), p | (last >> 1 & !u128::mask(l))]
            });
            let all: Vec<u128> = probes.iter().copied().chain(edges).collect();
            let mut out = vec![None; all.len()];
            t.lookup_batch(&all, &mut out);
            for (&a, &o) in all.iter().zip(&out) {
                let want = model_lookup(&model, a);
                prop_assert_eq!(t.lookup(a), want, "addr {:#x}", a);
                prop_assert_eq!(o, want, "batch, addr {:#x}", a);
                let longest = model
                    .iter()
                    .filter(|&&(p, l, _)| a & u128::mask(l) == p)
                    .max_by_key(|&&(_, l, _)| l)
                    .copied();
                prop_assert_eq!(t.lookup_prefix(a), longest, "prefix, addr {:#x}", a);
            }
            for &(p, l, _) in &model {
                prop_assert!(t.remove(p, l).is_some());
            }
            prop_assert_eq!(t.groups(), 0);
            prop_assert!(t.is_empty());
            prop_assert_eq!(t.inner.dir.is_some(), dir);
        }
    }
}
