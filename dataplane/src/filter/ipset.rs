//! ipsets (`-m set --match-set NAME src|dst`): address sets that live
//! beside the ruleset, as the kernel's do: rules name a set, and its
//! contents change without the ruleset changing (`xgate ctl ipset add`,
//! what fail2ban does with `ipset add`).
//!
//! A set's contents are one immutable [`IpSetData`] behind an `ArcSwap`:
//! a worker loads the current one (lock-free, no allocation) and binary
//! searches its merged ranges; a change builds the next one on the
//! control thread and swaps it in. Elements are kept as given (an address,
//! a network or a range, each an inclusive key range), so that a `del`
//! removes exactly what an `add` put, as `ipset del` does.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// One set: its name, family, bound and contents.
#[derive(Debug)]
pub struct IpSetTable {
    name: Box<str>,
    v4: bool,
    maxelem: usize,
    cur: ArcSwap<IpSetData>,
}

/// The contents of a set at one moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IpSetData {
    /// The elements as added, in order (key ranges, addresses
    /// IPv4-mapped).
    pub elements: Vec<(u128, u128)>,
    /// Sorted and merged, for lookups.
    merged: Vec<(u128, u128)>,
}

impl IpSetData {
    fn new(elements: Vec<(u128, u128)>) -> Self {
        let mut merged = elements.clone();
        merged.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(merged.len());
        for (lo, hi) in merged {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        IpSetData {
            elements,
            merged: out,
        }
    }

    #[inline]
    fn contains(&self, v: u128) -> bool {
        let n = self.merged.partition_point(|&(lo, _)| lo <= v);
        n > 0 && v <= self.merged[n - 1].1
    }
}

impl IpSetTable {
    /// Set `name` of IPv4 (`v4`) or IPv6 elements, at most `maxelem`.
    pub fn new(name: &str, v4: bool, maxelem: usize, elements: Vec<(u128, u128)>) -> Self {
        IpSetTable {
            name: name.into(),
            v4,
            maxelem,
            cur: ArcSwap::from_pointee(IpSetData::new(elements)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_v4(&self) -> bool {
        self.v4
    }

    pub fn maxelem(&self) -> usize {
        self.maxelem
    }

    /// The current contents.
    pub fn data(&self) -> Arc<IpSetData> {
        self.cur.load_full()
    }

    /// Whether key `v` is in the set (the packet path).
    #[inline]
    pub fn contains(&self, v: u128) -> bool {
        self.cur.load().contains(v)
    }

    fn family_ok(&self, e: (u128, u128)) -> bool {
        let v4 = |k: u128| k >> 32 == 0xffff;
        v4(e.0) == self.v4 && v4(e.1) == self.v4
    }

    /// `ipset add`: an element not yet in the set.
    pub fn add(&self, e: (u128, u128)) -> Result<(), String> {
        if !self.family_ok(e) {
            return Err(format!(
                "set {} holds IPv{} elements",
                self.name,
                if self.v4 { 4 } else { 6 }
            ));
        }
        let mut res = Ok(());
        self.cur.rcu(|d| {
            res = Ok(());
            if d.elements.contains(&e) {
                res = Err("the element is already in the set".to_string());
                return d.clone();
            }
            if d.elements.len() >= self.maxelem {
                res = Err(format!(
                    "set {} is full (maxelem {})",
                    self.name, self.maxelem
                ));
                return d.clone();
            }
            let mut v = d.elements.clone();
            v.push(e);
            Arc::new(IpSetData::new(v))
        });
        res
    }

    /// `ipset del`: an element added before, exactly as added.
    pub fn del(&self, e: (u128, u128)) -> Result<(), String> {
        let mut res = Ok(());
        self.cur.rcu(|d| {
            res = Ok(());
            let Some(i) = d.elements.iter().position(|x| *x == e) else {
                res = Err("the element is not in the set".to_string());
                return d.clone();
            };
            let mut v = d.elements.clone();
            v.remove(i);
            Arc::new(IpSetData::new(v))
        });
        res
    }

    /// `ipset flush`.
    pub fn flush(&self) {
        self.cur.store(Arc::new(IpSetData::default()));
    }
}

/// Sets compare by name, family, bound and current contents.
impl PartialEq for IpSetTable {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.v4 == o.v4
            && self.maxelem == o.maxelem
            && *self.data() == *o.data()
    }
}

impl Eq for IpSetTable {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::v4_key;

    fn k(a: [u8; 4]) -> u128 {
        v4_key(u32::from_be_bytes(a))
    }

    #[test]
    fn add_del_flush_and_lookups_against_a_naive_model() {
        let s = IpSetTable::new("t", true, 4, vec![(k([10, 0, 0, 0]), k([10, 0, 0, 255]))]);
        assert!(s.contains(k([10, 0, 0, 7])) && !s.contains(k([10, 0, 1, 0])));
        let host = (k([192, 0, 2, 1]), k([192, 0, 2, 1]));
        s.add(host).unwrap();
        assert!(s.contains(k([192, 0, 2, 1])));
        assert!(s.add(host).unwrap_err().contains("already"));
        // Overlapping elements stay apart: deleting one keeps the other.
        s.add((k([10, 0, 0, 128]), k([10, 0, 0, 255]))).unwrap();
        s.del((k([10, 0, 0, 0]), k([10, 0, 0, 255]))).unwrap();
        assert!(!s.contains(k([10, 0, 0, 7])) && s.contains(k([10, 0, 0, 200])));
        assert!(s.del(host).is_ok() && s.del(host).unwrap_err().contains("not in"));
        s.add(host).unwrap();
        s.add((k([1, 1, 1, 1]), k([1, 1, 1, 1]))).unwrap();
        s.add((k([2, 2, 2, 2]), k([2, 2, 2, 2]))).unwrap();
        assert!(
            s.add((k([3, 3, 3, 3]), k([3, 3, 3, 3])))
                .unwrap_err()
                .contains("full")
        );
        assert!(s.add((1, 1)).unwrap_err().contains("IPv4"));
        s.flush();
        assert!(!s.contains(k([192, 0, 2, 1])));
        // Lookups against a linear scan of the elements.
        let mut x = 0x9e37_79b9_u64;
        let mut els = Vec::new();
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lo = v4_key((x as u32) & 0x00ff_ffff);
            els.push((lo, lo + u128::from((x >> 40) as u16)));
        }
        let s = IpSetTable::new("p", true, 65536, els.clone());
        for i in 0..20_000u32 {
            let v = v4_key(i.wrapping_mul(2_654_435_761) & 0x00ff_ffff);
            let naive = els.iter().any(|&(lo, hi)| lo <= v && v <= hi);
            assert_eq!(s.contains(v), naive, "{v:x}");
        }
    }
}
