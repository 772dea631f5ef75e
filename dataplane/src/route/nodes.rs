//! Trie nodes below the first level of [`super::Lpm6`]: 256 slots each,
//! stored sparse or dense.
//!
//! The IPv6 trie is sparse below its first level: most nodes hold two to
//! four runs of equal slots (a /48 under a /32 needs two nodes of two runs
//! each). A node of at most four runs is stored as its run boundaries and
//! run entries in 32 bytes (half a cache line): slot `b` is in run
//! `(b >= s1) + (b >= s2) + (b >= s3)`, three independent compares, no
//! popcount (which the baseline x86-64 target lacks). Unused boundaries and
//! entries repeat the last run, so the sum always lands on the right entry.
//! A node with more runs is a plain 256-entry group (`dir.rs`), indexed
//! directly; such nodes are few (the busy /32s and /40s).
//!
//! A node pointer is an entry without the leaf bit (see `dir.rs`); bit 30
//! tells a dense group from a sparse node. Index 0 of both pools is
//! reserved, so 0 still means "no route". Updates unpack a node into 256
//! slots, change them and pack a new node.

use super::dir::Groups;

/// Pointer flag of a dense node.
const DENSE: u32 = 1 << 30;
const INDEX: u32 = DENSE - 1;
/// Most runs a sparse node holds.
const SPARSE_RUNS: usize = 4;

/// A node of up to four runs.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Sparse {
    /// First slot of runs 1..=3 (unused ones repeat the last).
    starts: [u8; 3],
    entry: [u32; SPARSE_RUNS],
    depth: [u8; SPARSE_RUNS],
}

/// One node unpacked: the entry and depth of each of its 256 slots.
pub(super) struct Slots {
    pub(super) entry: [u32; 256],
    pub(super) depth: [u8; 256],
}

impl Slots {
    /// Every slot set to (`entry`, `depth`).
    pub(super) fn uniform(entry: u32, depth: u8) -> Self {
        Slots {
            entry: [entry; 256],
            depth: [depth; 256],
        }
    }

    /// If all slots hold the same (entry, depth), that pair.
    pub(super) fn single(&self) -> Option<(u32, u8)> {
        let (e, d) = (self.entry[0], self.depth[0]);
        let same = self.entry.iter().all(|&x| x == e) && self.depth.iter().all(|&x| x == d);
        same.then_some((e, d))
    }
}

/// The node pools.
#[derive(Clone)]
pub(super) struct Nodes {
    sparse: Vec<Sparse>,
    free: Vec<u32>,
    dense: Groups,
}

impl Nodes {
    pub(super) fn new() -> Self {
        Nodes {
            sparse: vec![Sparse::default()],
            free: Vec::new(),
            dense: Groups::new(),
        }
    }

    /// The entry of slot `b` of node `p`; 0 for a pointer that names no
    /// node (never produced by the update code).
    #[inline(always)]
    pub(super) fn entry(&self, p: u32, b: u8) -> u32 {
        if p & DENSE != 0 {
            return self.dense.entry(p & INDEX, b);
        }
        match self.sparse.get(p as usize) {
            Some(n) => {
                let run = usize::from(b >= n.starts[0])
                    + usize::from(b >= n.starts[1])
                    + usize::from(b >= n.starts[2]);
                n.entry[run & 3]
            }
            None => 0,
        }
    }

    /// The slots of node `p`.
    pub(super) fn unpack(&self, p: u32) -> Slots {
        let mut s = Slots::uniform(0, 0);
        if p & DENSE != 0 {
            for b in 0..256 {
                (s.entry[b], s.depth[b]) = self.dense.get(Groups::slot(p & INDEX, b));
            }
        } else if let Some(n) = self.sparse.get(p as usize) {
            // Fill run by run: [0, s1), [s1, s2), [s2, s3), [s3, 256).
            let bounds = [
                0,
                n.starts[0] as usize,
                n.starts[1] as usize,
                n.starts[2] as usize,
                256,
            ];
            for run in 0..SPARSE_RUNS {
                let r = bounds[run]..bounds[run + 1].max(bounds[run]);
                s.entry[r.clone()].fill(n.entry[run]);
                s.depth[r].fill(n.depth[run]);
            }
        }
        s
    }

    /// Stores `s` as a new node. `None` if the pool is full.
    pub(super) fn pack(&mut self, s: &Slots) -> Option<u32> {
        match Self::sparse_form(s) {
            Some(n) => {
                let p = match self.free.pop() {
                    Some(p) => p,
                    None => {
                        let p = u32::try_from(self.sparse.len())
                            .ok()
                            .filter(|&p| p < DENSE)?;
                        self.sparse.push(Sparse::default());
                        p
                    }
                };
                self.sparse[p as usize] = n;
                Some(p)
            }
            None => {
                let g = self.dense.alloc(0, 0)?;
                if g >= DENSE {
                    self.dense.release(g);
                    return None;
                }
                self.fill_dense(g, s);
                Some(DENSE | g)
            }
        }
    }

    /// Stores `s` in place of node `p` when it keeps the same form (so the
    /// pointer to it stays valid), else as a new node, releasing `p`.
    pub(super) fn repack(&mut self, p: u32, s: &Slots) -> Option<u32> {
        let sparse = Self::sparse_form(s);
        match (p & DENSE != 0, sparse) {
            (false, Some(n)) => {
                if let Some(slot) = self.sparse.get_mut(p as usize) {
                    *slot = n;
                    return Some(p);
                }
            }
            (true, None) => {
                self.fill_dense(p & INDEX, s);
                return Some(p);
            }
            _ => {}
        }
        let q = self.pack(s)?;
        self.release(p);
        Some(q)
    }

    /// `s` as a sparse node, if it has at most four runs.
    fn sparse_form(s: &Slots) -> Option<Sparse> {
        let mut n = Sparse::default();
        let mut runs = 1;
        for b in 1..256 {
            if s.entry[b] != s.entry[b - 1] || s.depth[b] != s.depth[b - 1] {
                if runs == SPARSE_RUNS {
                    return None;
                }
                n.starts[runs - 1] = b as u8;
                runs += 1;
            }
        }
        // Unused boundaries and entries repeat the last run.
        let last = if runs == 1 { 0 } else { n.starts[runs - 2] };
        for i in runs - 1..3 {
            n.starts[i] = last;
        }
        for run in 0..SPARSE_RUNS {
            let first = if run == 0 {
                0
            } else {
                n.starts[run - 1] as usize
            };
            n.entry[run] = s.entry[first];
            n.depth[run] = s.depth[first];
        }
        Some(n)
    }

    fn fill_dense(&mut self, g: u32, s: &Slots) {
        for b in 0..256 {
            self.dense.set(Groups::slot(g, b), s.entry[b], s.depth[b]);
        }
    }

    /// A node with every slot (`entry`, `depth`).
    pub(super) fn uniform(&mut self, entry: u32, depth: u8) -> Option<u32> {
        self.pack(&Slots::uniform(entry, depth))
    }

    /// Returns node `p` to its pool.
    pub(super) fn release(&mut self, p: u32) {
        if p & DENSE != 0 {
            self.dense.release(p & INDEX);
        } else if let Some(n) = self.sparse.get_mut(p as usize) {
            *n = Sparse::default();
            self.free.push(p);
        }
    }

    /// Whether an update is sure to find room: it rewrites at most a path
    /// of 13 nodes at a time.
    pub(super) fn has_room(&self) -> bool {
        self.sparse.len() + 16 < DENSE as usize && self.dense.in_use() + 16 < DENSE as usize
    }

    /// Nodes in use.
    pub(super) fn live(&self) -> usize {
        self.sparse.len() - 1 - self.free.len() + self.dense.in_use()
    }

    /// Nodes stored dense.
    pub(super) fn dense(&self) -> usize {
        self.dense.in_use()
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.sparse.capacity() * std::mem::size_of::<Sparse>()
            + self.free.capacity() * 4
            + self.dense.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(nodes: &mut Nodes, s: &Slots) -> u32 {
        let p = nodes.pack(s).unwrap();
        for b in 0..=255u8 {
            assert_eq!(nodes.entry(p, b), s.entry[b as usize], "slot {b}");
        }
        let u = nodes.unpack(p);
        assert_eq!(u.entry, s.entry);
        assert_eq!(u.depth, s.depth);
        p
    }

    #[test]
    fn sparse_and_dense_round_trip() {
        assert_eq!(std::mem::size_of::<Sparse>(), 32);
        let mut nodes = Nodes::new();
        let u = round_trip(&mut nodes, &Slots::uniform(0x8000_0001, 25));
        assert_eq!(u & DENSE, 0);

        // Four runs (one differs in depth only): sparse.
        let mut s = Slots::uniform(0x8000_0001, 25);
        for b in 40..60 {
            s.entry[b] = 0x8000_0002;
            s.depth[b] = 30;
        }
        for b in 20..40 {
            s.depth[b] = 26;
        }
        let p = round_trip(&mut nodes, &s);
        assert_eq!(p & DENSE, 0);

        // A fifth run: dense.
        s.entry[100] = 7;
        let d = round_trip(&mut nodes, &s);
        assert_ne!(d & DENSE, 0);
        assert_eq!((nodes.live(), nodes.dense()), (3, 1));

        // Every slot different.
        let mut all = Slots::uniform(0, 0);
        for b in 0..256 {
            all.entry[b] = 0x8000_0000 | b as u32;
            all.depth[b] = (b % 129) as u8;
        }
        let a = round_trip(&mut nodes, &all);

        for q in [u, p, d, a] {
            nodes.release(q);
        }
        assert_eq!(nodes.live(), 0);
        let q = nodes.pack(&s).unwrap();
        assert_eq!(nodes.live(), 1);
        assert_eq!(nodes.unpack(q).single(), None);
    }
}
