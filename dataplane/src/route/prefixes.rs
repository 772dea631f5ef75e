//! The LPM prefix store: what [`super::Lpm4`] and [`super::Lpm6`] share:
//! the prefixes ("rules" in the LPM literature) kept per length, the small-table list with its filter, and the update
//! bookkeeping around the address family's lookup structure (`Dir4`, the
//! DIR-24-8 tables of `lpm4.rs`; `Dir6`, the trie of `lpm6.rs`), which
//! implements [`Dir`]. The lookups themselves stay in `lpm4.rs` and
//! `lpm6.rs`, written for their address type; the small list's filter test
//! and scan ([`Lpm::may_be_small`], [`Lpm::lookup_small`]) are generic and
//! always inlined, so each table gets its own copy.
//!
//! Why the rules are kept beside the tables, and how small tables and their
//! filter work, is described in `lpm4.rs`.

use std::hash::Hash;
use std::ops::BitAnd;

use hashbrown::HashMap;

use super::LpmError;
use super::dir::LEAF;

/// The largest value a table can hold (the top bit is the leaf flag).
pub(super) const MAX_VALUE: u32 = LEAF - 1;

/// An address type: `u32` (IPv4) or `u128` (IPv6), host order.
pub(super) trait Addr: Copy + Eq + Ord + Hash + BitAnd<Output = Self> {
    /// Address length in bits, the longest prefix length.
    const BITS: u8;

    /// The network mask of a prefix length (`len` is clamped to `BITS`).
    fn mask(len: u8) -> Self;

    /// The bit of a small table's filter for this address: 6 bits of a
    /// multiplicative hash.
    fn filter_bit(self) -> u64;
}

impl Addr for u32 {
    const BITS: u8 = 32;

    #[inline]
    fn mask(len: u8) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(len.min(32)))
            .unwrap_or(0)
    }

    #[inline(always)]
    fn filter_bit(self) -> u64 {
        1 << (self.wrapping_mul(0x9e37_79b1) >> 26)
    }
}

impl Addr for u128 {
    const BITS: u8 = 128;

    #[inline]
    fn mask(len: u8) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(len.min(128)))
            .unwrap_or(0)
    }

    #[inline(always)]
    fn filter_bit(self) -> u64 {
        let x = (self as u64) ^ ((self >> 64) as u64);
        1 << (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
    }
}

/// The lookup structure of an address family, built from the rules once the
/// table is not small. Entries and depths follow the DIR rule of `dir.rs`:
/// an entry carries the depth (length + 1) of the prefix that wrote it.
pub(super) trait Dir<A>: Sized {
    /// An empty structure.
    fn new() -> Self;

    /// Makes room for writing `prefix/len` (host bits clear); false if the
    /// structure is full, leaving it unchanged for the prefix.
    fn reserve(&mut self, prefix: A, len: u8) -> bool;

    /// Writes (`entry`, `depth`) over the range of `prefix/len` wherever the
    /// current depth satisfies `pred` (the /0 rule: the default entry).
    fn write(
        &mut self,
        prefix: A,
        len: u8,
        entry: u32,
        depth: u8,
        pred: impl Fn(u8) -> bool + Copy,
    );

    /// Gives back what `prefix/len` alone needed, after its removal.
    fn release(&mut self, _prefix: A, _len: u8) {}

    /// Bytes allocated (address space, see `dir.rs`).
    fn memory_bytes(&self) -> usize;
}

/// The address-family-independent part of an LPM table: the rules, the
/// small list or the [`Dir`] built from them, and their updates.
#[derive(Clone)]
pub(super) struct Lpm<A, D> {
    /// The lookup structure, present while the table is not small.
    pub(super) dir: Option<D>,
    /// Small tables: (prefix, mask, value), longest prefix first.
    small: Vec<(A, A, u32)>,
    /// Small tables: the addresses that may match, as one bit each of 64
    /// ([`Addr::filter_bit`]) for host routes; all ones if the list holds a
    /// shorter prefix, 0 (nothing matches) if it is empty. A local table
    /// (the router's addresses) then answers most misses with one multiply
    /// and a bit test, not a scan.
    pub(super) filter: u64,
    /// Size above which `dir` is built (`SMALL`; 0 in tests forcing it).
    small_max: usize,
    /// `rules[len]`: prefix -> value. Boxed: cold, and large (a map per
    /// length) next to the few words a lookup reads.
    rules: Box<[HashMap<A, u32>]>,
    len: usize,
}

impl<A: Addr, D: Dir<A>> Lpm<A, D> {
    /// An empty table that builds its `dir` past `small_max` prefixes
    /// (with `small_max == 0`, from the start).
    pub(super) fn new(small_max: usize) -> Self {
        Lpm {
            dir: (small_max == 0).then(D::new),
            small: Vec::new(),
            filter: 0,
            small_max,
            rules: (0..=A::BITS).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }

    /// See `Lpm4::insert`.
    pub(super) fn insert(&mut self, prefix: A, len: u8, value: u32) -> Option<u32> {
        debug_assert!(len <= A::BITS, "prefix length {len} > {}", A::BITS);
        debug_assert!(value <= MAX_VALUE, "value {value:#x} > MAX_VALUE");
        let len = len.min(A::BITS);
        let value = value & MAX_VALUE;
        let prefix = prefix & A::mask(len);
        let is_new = !self.rules[len as usize].contains_key(&prefix);
        if is_new && self.dir.is_none() && self.len >= self.small_max {
            self.build_dir();
        }
        // Reserve first (the only fallible step) so that a failure leaves the
        // table untouched.
        if !self.dir.as_mut().is_none_or(|d| d.reserve(prefix, len)) {
            debug_assert!(false, "table space exhausted");
            return None;
        }
        let old = self.rules[len as usize].insert(prefix, value);
        if old.is_none() {
            self.len += 1;
        }
        if old != Some(value) {
            match &mut self.dir {
                Some(dir) => {
                    let d = len + 1;
                    dir.write(prefix, len, LEAF | value, d, |x| x <= d);
                }
                None => self.build_small(),
            }
        }
        old
    }

    /// See `Lpm4::try_insert`.
    pub(super) fn try_insert(
        &mut self,
        prefix: A,
        len: u8,
        value: u32,
    ) -> Result<Option<u32>, LpmError> {
        if len > A::BITS {
            return Err(LpmError::PrefixLen { len, max: A::BITS });
        }
        if value > MAX_VALUE {
            return Err(LpmError::Value(value));
        }
        if !self
            .dir
            .as_mut()
            .is_none_or(|d| d.reserve(prefix & A::mask(len), len))
        {
            return Err(LpmError::Full);
        }
        Ok(self.insert(prefix, len, value))
    }

    /// See `Lpm4::remove`.
    pub(super) fn remove(&mut self, prefix: A, len: u8) -> Option<u32> {
        if len > A::BITS {
            return None;
        }
        let prefix = prefix & A::mask(len);
        let old = self.rules[len as usize].remove(&prefix)?;
        self.len -= 1;
        if self.len < self.small_max / 2 {
            self.dir = None;
        }
        match &mut self.dir {
            Some(dir) => {
                let (entry, depth) = covering(&self.rules, prefix, len);
                let d = len + 1;
                dir.write(prefix, len, entry, depth, |x| x == d);
                dir.release(prefix, len);
            }
            None => self.build_small(),
        }
        Some(old)
    }

    /// Whether `addr` may match the small list (only meaningful while `dir`
    /// is `None`): a clear bit of the filter rules it out without a scan.
    #[inline(always)]
    pub(super) fn may_be_small(&self, addr: A) -> bool {
        self.filter & addr.filter_bit() != 0
    }

    /// The small list's answer for `addr`, longest prefix first (only
    /// meaningful while `dir` is `None`; test [`Lpm::may_be_small`] first).
    #[inline(always)]
    pub(super) fn lookup_small(&self, addr: A) -> Option<u32> {
        self.small
            .iter()
            .find(|&&(p, m, _)| addr & m == p)
            .map(|&(_, _, v)| v)
    }

    /// See `Lpm4::lookup_prefix`: probes the rule maps of the lengths in
    /// use, longest first.
    pub(super) fn lookup_prefix(&self, addr: A) -> Option<(A, u8, u32)> {
        (0..=A::BITS)
            .rev()
            .filter(|&l| !self.rules[l as usize].is_empty())
            .find_map(|l| {
                let p = addr & A::mask(l);
                self.rules[l as usize].get(&p).map(|&v| (p, l, v))
            })
    }

    /// The value stored for exactly `prefix/len` (host bits ignored).
    pub(super) fn get(&self, prefix: A, len: u8) -> Option<u32> {
        self.rules
            .get(len as usize)?
            .get(&(prefix & A::mask(len)))
            .copied()
    }

    /// All (prefix, len, value), shortest prefixes first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (A, u8, u32)> + '_ {
        self.rules
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.iter().map(move |(&p, &v)| (p, l as u8, v)))
    }

    /// Number of prefixes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated: `dir`, the small list and the rule maps.
    pub(super) fn memory_bytes(&self) -> usize {
        let rules: usize = self
            .rules
            .iter()
            .map(|m| m.capacity() * (std::mem::size_of::<(A, u32)>() + 1))
            .sum();
        let dir = self.dir.as_ref().map_or(0, D::memory_bytes);
        dir + self.small.capacity() * std::mem::size_of::<(A, A, u32)>() + rules
    }

    fn build_small(&mut self) {
        let mut small: Vec<(A, A, u32)> = self.iter().map(|(p, l, v)| (p, A::mask(l), v)).collect();
        small.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let host = A::mask(A::BITS);
        self.filter = small.iter().fold(0, |f, &(p, m, _)| {
            if m == host {
                f | p.filter_bit()
            } else {
                u64::MAX
            }
        });
        self.small = small;
    }

    fn build_dir(&mut self) {
        let mut dir = D::new();
        for (p, l, v) in self.iter() {
            if !dir.reserve(p, l) {
                debug_assert!(false, "table space exhausted");
                return;
            }
            dir.write(p, l, LEAF | v, l + 1, |x| x <= l + 1);
        }
        self.dir = Some(dir);
        self.small = Vec::new();
        self.filter = 0;
    }
}

/// The entry and depth that the longest rule strictly shorter than `len`
/// covering `prefix` writes; (0, 0) if there is none. The /0 rule is not in
/// the tables (it is the dir's default entry), so it does not count.
fn covering<A: Addr>(rules: &[HashMap<A, u32>], prefix: A, len: u8) -> (u32, u8) {
    (1..len)
        .rev()
        .filter(|&l| !rules[l as usize].is_empty())
        .find_map(|l| {
            rules[l as usize]
                .get(&(prefix & A::mask(l)))
                .map(|&v| (LEAF | v, l + 1))
        })
        .unwrap_or((0, 0))
}
