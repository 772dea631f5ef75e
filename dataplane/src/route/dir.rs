//! Storage shared by the two LPM structures ([`super::Lpm4`], [`super::Lpm6`]):
//! the directly indexed first level (`Tbl24`, 2^24 entries) and the pool of
//! 256-entry groups (`Groups`: IPv4's tbl8, IPv6's dense nodes).
//!
//! Entry encoding (one `u32`, the only word the lookup reads per level):
//! - bit 31 set: a leaf, bits 0..31 are the value;
//! - bit 31 clear, non-zero: a pointer to the next level (a group, or an
//!   IPv6 node, see `nodes.rs`);
//! - zero: no prefix longer than /0 covers the address. The /0 rule itself
//!   is kept outside the tables and answered for zero entries, so that a
//!   default route does not write all 2^24 entries.
//!
//! Beside every entry sits a `u8` depth, read only by updates: 0 for no
//! route, else the prefix length of the rule that wrote the entry plus one.
//! Inserting a /n overwrites the entries of its range whose depth is at most
//! n + 1; deleting it rewrites those whose depth is exactly n + 1 with the
//! covering rule. This is how DPDK's rte_lpm updates in place, without a
//! rebuild.
//!
//! The first level is 64 MiB of entries plus 16 MiB of depths, allocated
//! zeroed: the OS maps zero pages lazily, so an empty or small table costs
//! little resident memory. Writes are tracked per 4 KiB chunk so that `Clone`
//! copies only the chunks ever written (cloning a table holding three routes
//! does not touch 80 MiB). On Linux the entry array is advised into
//! transparent huge pages: random lookups over 64 MiB otherwise miss the TLB
//! on nearly every packet (DPDK puts the same table in hugepages).
//!
//! A batch prefetches first-level entries before its lookups
//! (`policy.rs`, with [`crate::mem::prefetch`]).

use std::fmt;

/// Leaf flag of an entry.
pub(super) const LEAF: u32 = 1 << 31;
/// Entries in the first level.
pub(super) const TBL24_LEN: usize = 1 << 24;
/// Entries per group.
pub(super) const GROUP_LEN: usize = 256;
/// Entries per dirty-tracking chunk (4 KiB of `u32`).
const CHUNK: usize = 1024;
const DIRTY_WORDS: usize = TBL24_LEN / CHUNK / 64;

/// Allocates a zeroed boxed array without building it on the stack; large
/// sizes come from `calloc`, i.e. fresh lazily zero-filled pages.
fn zeroed_box<T: Copy + Default, const N: usize>() -> Box<[T; N]> {
    let v = vec![T::default(); N].into_boxed_slice();
    match v.try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("vec![_; N] has length N"),
    }
}

/// The directly indexed first level: 2^24 entries and their depths.
pub(super) struct Tbl24 {
    entry: Box<[u32; TBL24_LEN]>,
    depth: Box<[u8; TBL24_LEN]>,
    /// One bit per `CHUNK` entries ever written.
    dirty: Box<[u64; DIRTY_WORDS]>,
}

impl Tbl24 {
    pub(super) fn new() -> Self {
        let mut entry = zeroed_box::<u32, TBL24_LEN>();
        crate::mem::advise_hugepages(&mut entry[..]);
        Tbl24 {
            entry,
            depth: zeroed_box(),
            dirty: zeroed_box(),
        }
    }

    /// The entry for the top 24 bits `i` (masked to 24 bits).
    #[inline(always)]
    pub(super) fn entry(&self, i: u32) -> u32 {
        self.entry[(i & 0xff_ffff) as usize]
    }

    #[inline]
    pub(super) fn depth(&self, i: usize) -> u8 {
        self.depth[i & 0xff_ffff]
    }

    #[inline]
    pub(super) fn set(&mut self, i: usize, entry: u32, depth: u8) {
        let i = i & 0xff_ffff;
        self.entry[i] = entry;
        self.depth[i] = depth;
        let c = i / CHUNK;
        self.dirty[c / 64] |= 1 << (c % 64);
    }

    /// The entries, for a batch that prefetches many of them
    /// ([`crate::mem::prefetch`]).
    #[inline(always)]
    pub(super) fn entries(&self) -> &[u32; TBL24_LEN] {
        &self.entry
    }

    /// Points entry `i` at a group, keeping its depth (unused while it does).
    #[inline]
    pub(super) fn set_group(&mut self, i: usize, group: u32) {
        let d = self.depth(i);
        self.set(i, group, d);
    }

    pub(super) fn memory_bytes(&self) -> usize {
        TBL24_LEN * (4 + 1) + DIRTY_WORDS * 8
    }
}

impl Clone for Tbl24 {
    fn clone(&self) -> Self {
        let mut t = Tbl24::new();
        for (w, &bits) in self.dirty.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let c = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let r = c * CHUNK..(c + 1) * CHUNK;
                t.entry[r.clone()].copy_from_slice(&self.entry[r.clone()]);
                t.depth[r.clone()].copy_from_slice(&self.depth[r]);
            }
        }
        t.dirty.copy_from_slice(&self.dirty[..]);
        t
    }
}

impl fmt::Debug for Tbl24 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chunks: u32 = self.dirty.iter().map(|w| w.count_ones()).sum();
        f.debug_struct("Tbl24")
            .field("chunks_written", &chunks)
            .finish()
    }
}

/// A pool of 256-entry groups. Group 0 is reserved (always empty) so that
/// a zero entry never names a real group.
#[derive(Clone, Debug)]
pub(super) struct Groups {
    entry: Vec<u32>,
    depth: Vec<u8>,
    free: Vec<u32>,
}

impl Groups {
    pub(super) fn new() -> Self {
        Groups {
            entry: vec![0; GROUP_LEN],
            depth: vec![0; GROUP_LEN],
            free: Vec::new(),
        }
    }

    /// Entry `low` of group `g`; 0 (no route) for an index out of range,
    /// which the update code never produces.
    #[inline(always)]
    pub(super) fn entry(&self, g: u32, low: u8) -> u32 {
        let i = ((g as usize) << 8) | low as usize;
        match self.entry.get(i) {
            Some(&e) => e,
            None => 0,
        }
    }

    /// Slot index of entry `low` of group `g` (for `get`/`set`).
    #[inline]
    pub(super) fn slot(g: u32, low: usize) -> usize {
        ((g as usize) << 8) | (low & 0xff)
    }

    #[inline]
    pub(super) fn get(&self, slot: usize) -> (u32, u8) {
        (self.entry[slot], self.depth[slot])
    }

    #[inline]
    pub(super) fn set(&mut self, slot: usize, entry: u32, depth: u8) {
        self.entry[slot] = entry;
        self.depth[slot] = depth;
    }

    /// A new group with every entry set to (`entry`, `depth`). `None` when
    /// the group index space (2^31) is exhausted.
    pub(super) fn alloc(&mut self, entry: u32, depth: u8) -> Option<u32> {
        let g = match self.free.pop() {
            Some(g) => g,
            None => {
                let g = self.entry.len() / GROUP_LEN;
                if g >= LEAF as usize {
                    return None;
                }
                self.entry.resize(self.entry.len() + GROUP_LEN, 0);
                self.depth.resize(self.depth.len() + GROUP_LEN, 0);
                g as u32
            }
        };
        let r = Self::slot(g, 0)..Self::slot(g, 0) + GROUP_LEN;
        self.entry[r.clone()].fill(entry);
        self.depth[r].fill(depth);
        Some(g)
    }

    /// Returns group `g` to the pool.
    pub(super) fn release(&mut self, g: u32) {
        let r = Self::slot(g, 0)..Self::slot(g, 0) + GROUP_LEN;
        self.entry[r.clone()].fill(0);
        self.depth[r].fill(0);
        self.free.push(g);
    }

    /// If no entry of group `g` is a group pointer or has a depth above
    /// `max_depth`, all its entries are equal: returns that (entry, depth).
    pub(super) fn uniform(&self, g: u32, max_depth: u8) -> Option<(u32, u8)> {
        let s = Self::slot(g, 0);
        let (e, d) = (&self.entry[s..s + GROUP_LEN], &self.depth[s..s + GROUP_LEN]);
        let flat = e.iter().all(|&x| x == 0 || x & LEAF != 0) && d.iter().all(|&x| x <= max_depth);
        flat.then(|| (e[0], d[0]))
    }

    /// Groups in use (excluding the reserved group 0).
    pub(super) fn in_use(&self) -> usize {
        self.entry.len() / GROUP_LEN - 1 - self.free.len()
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.entry.capacity() * 4 + self.depth.capacity() + self.free.capacity() * 4
    }
}

/// True if `e` points at a group.
#[inline(always)]
pub(super) fn is_group(e: u32) -> bool {
    e != 0 && e & LEAF == 0
}
