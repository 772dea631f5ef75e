//! The table's structural check for the tests.

use std::sync::atomic::Ordering::Relaxed;

use super::*;

#[cfg(test)]
impl Conntrack {
    /// Checks the table's structure; call only when no operation runs.
    pub(in crate::conntrack) fn check_consistency(&self) -> Result<(), String> {
        let mut live = 0;
        for e in self.entries.iter() {
            let s = e.state.load(Relaxed);
            if s & BUSY != 0 {
                return Err("entry left BUSY".into());
            }
            live += usize::from(s & LIVE != 0);
        }
        let mut overflow = vec![0u32; self.index.len()];
        let mut slots = 0;
        for (b, bucket) in self.index.iter().enumerate() {
            for slot in &bucket.slots {
                let v = slot.load(Relaxed);
                if v == 0 {
                    continue;
                }
                slots += 1;
                let (idx, dir) = self.slot_entry(v);
                let e = &self.entries[idx as usize];
                let s = e.state.load(Relaxed);
                if s & LIVE == 0 {
                    return Err(format!("slot in bucket {b} -> dead entry {idx}"));
                }
                let d = if dir == 0 { Dir::Original } else { Dir::Reply };
                let h = self.hash(&self.key(idx, dir, s));
                if self.slot_value(h, d, idx) != v {
                    return Err(format!("slot {v:#x} does not match entry {idx}"));
                }
                let mut c = self.home(h);
                while c != b {
                    overflow[c] += 1;
                    c = self.next(c);
                }
            }
        }
        if slots != 2 * live {
            return Err(format!("{slots} slots for {live} live entries"));
        }
        for (b, bucket) in self.index.iter().enumerate() {
            if bucket.overflow.load(Relaxed) != overflow[b] {
                return Err(format!("bucket {b} overflow mismatch"));
            }
        }
        let mut seen = vec![false; self.entries.len()];
        let mut free = 0;
        let mut top = self.free.load(Relaxed) as u32;
        while top != 0 {
            let idx = top as usize - 1;
            if seen[idx] || self.entries[idx].state.load(Relaxed) & LIVE != 0 {
                return Err(format!("free list holds {idx} twice or live"));
            }
            seen[idx] = true;
            free += 1;
            top = self.entries[idx].ports.load(Relaxed) as u32;
        }
        if free + live != self.entries.len() {
            return Err(format!("{free} free + {live} live != capacity"));
        }
        if self.stats().live as usize != live {
            return Err(format!(
                "counters say {} live, table {live}",
                self.stats().live
            ));
        }
        Ok(())
    }
}
