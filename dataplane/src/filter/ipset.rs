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
    /// `hash:ip,port`: entries are (address, protocol, port).
    with_port: bool,
    maxelem: usize,
    cur: ArcSwap<IpSetData>,
}

/// The contents of a set at one moment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IpSetData {
    /// The elements as added, in order (key ranges, addresses
    /// IPv4-mapped); empty for a `hash:ip,port` set.
    pub elements: Vec<(u128, u128)>,
    /// Sorted and merged, for lookups.
    merged: Vec<(u128, u128)>,
    /// A `hash:ip,port` set's entries: (address, protocol, port), one per
    /// address and port as the kernel stores them.
    pub tuples: hashbrown::HashSet<(u128, u8, u16)>,
}

/// What `add` and `del` take: an address range (`hash:ip`, `hash:net`,
/// `bitmap:ip`), or the entries of a `hash:ip,port` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    Range(u128, u128),
    Tuples(Vec<(u128, u8, u16)>),
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
            tuples: hashbrown::HashSet::new(),
        }
    }

    fn with_tuples(tuples: hashbrown::HashSet<(u128, u8, u16)>) -> Self {
        IpSetData {
            tuples,
            ..IpSetData::default()
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
            with_port: false,
            maxelem,
            cur: ArcSwap::from_pointee(IpSetData::new(elements)),
        }
    }

    /// A `hash:ip,port` set holding `entries`.
    pub fn with_ports(
        name: &str,
        v4: bool,
        maxelem: usize,
        entries: impl IntoIterator<Item = (u128, u8, u16)>,
    ) -> Self {
        IpSetTable {
            name: name.into(),
            v4,
            with_port: true,
            maxelem,
            cur: ArcSwap::from_pointee(IpSetData::with_tuples(entries.into_iter().collect())),
        }
    }

    /// Whether entries are (address, protocol, port): `hash:ip,port`.
    pub fn has_ports(&self) -> bool {
        self.with_port
    }

    /// Whether (`v`, `proto`, `port`) is in a `hash:ip,port` set.
    #[inline]
    pub fn contains_port(&self, v: u128, proto: u8, port: u16) -> bool {
        self.cur.load().tuples.contains(&(v, proto, port))
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

    fn check(&self, e: &Element) -> Result<(), String> {
        let ok = match e {
            Element::Range(lo, hi) => !self.with_port && self.family_ok((*lo, *hi)),
            Element::Tuples(t) => {
                self.with_port && t.iter().all(|&(a, _, _)| self.family_ok((a, a)))
            }
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "set {} holds IPv{} {}",
            self.name,
            if self.v4 { 4 } else { 6 },
            if self.with_port {
                "address,port elements"
            } else {
                "addresses"
            }
        ))
    }

    /// `ipset add`: an element not yet in the set.
    pub fn add(&self, e: Element) -> Result<(), String> {
        self.check(&e)?;
        let mut res = Ok(());
        self.cur.rcu(|d| {
            res = Ok(());
            let (present, size) = match &e {
                Element::Range(lo, hi) => (d.elements.contains(&(*lo, *hi)), 1),
                Element::Tuples(t) => (t.iter().all(|x| d.tuples.contains(x)), t.len()),
            };
            if present {
                res = Err("the element is already in the set".to_string());
                return d.clone();
            }
            if d.elements.len() + d.tuples.len() + size > self.maxelem {
                res = Err(format!(
                    "set {} is full (maxelem {})",
                    self.name, self.maxelem
                ));
                return d.clone();
            }
            Arc::new(match &e {
                Element::Range(lo, hi) => {
                    let mut v = d.elements.clone();
                    v.push((*lo, *hi));
                    IpSetData::new(v)
                }
                Element::Tuples(t) => {
                    let mut all = d.tuples.clone();
                    all.extend(t.iter().copied());
                    IpSetData::with_tuples(all)
                }
            })
        });
        res
    }

    /// `ipset del`: an element added before, exactly as added.
    pub fn del(&self, e: Element) -> Result<(), String> {
        self.check(&e)?;
        let mut res = Ok(());
        self.cur.rcu(|d| {
            res = Ok(());
            let next = match &e {
                Element::Range(lo, hi) => {
                    d.elements.iter().position(|x| *x == (*lo, *hi)).map(|i| {
                        let mut v = d.elements.clone();
                        v.remove(i);
                        IpSetData::new(v)
                    })
                }
                Element::Tuples(t) => t.iter().all(|x| d.tuples.contains(x)).then(|| {
                    let mut all = d.tuples.clone();
                    for x in t {
                        all.remove(x);
                    }
                    IpSetData::with_tuples(all)
                }),
            };
            match next {
                Some(n) => Arc::new(n),
                None => {
                    res = Err("the element is not in the set".to_string());
                    d.clone()
                }
            }
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

    fn r((lo, hi): (u128, u128)) -> Element {
        Element::Range(lo, hi)
    }

    #[test]
    fn add_del_flush_and_lookups_against_a_naive_model() {
        let s = IpSetTable::new("t", true, 4, vec![(k([10, 0, 0, 0]), k([10, 0, 0, 255]))]);
        assert!(s.contains(k([10, 0, 0, 7])) && !s.contains(k([10, 0, 1, 0])));
        let host = (k([192, 0, 2, 1]), k([192, 0, 2, 1]));
        s.add(r(host)).unwrap();
        assert!(s.contains(k([192, 0, 2, 1])));
        assert!(s.add(r(host)).unwrap_err().contains("already"));
        // Overlapping elements stay apart: deleting one keeps the other.
        s.add(Element::Range(k([10, 0, 0, 128]), k([10, 0, 0, 255])))
            .unwrap();
        s.del(Element::Range(k([10, 0, 0, 0]), k([10, 0, 0, 255])))
            .unwrap();
        assert!(!s.contains(k([10, 0, 0, 7])) && s.contains(k([10, 0, 0, 200])));
        assert!(s.del(r(host)).is_ok() && s.del(r(host)).unwrap_err().contains("not in"));
        s.add(r(host)).unwrap();
        s.add(Element::Range(k([1, 1, 1, 1]), k([1, 1, 1, 1])))
            .unwrap();
        s.add(Element::Range(k([2, 2, 2, 2]), k([2, 2, 2, 2])))
            .unwrap();
        assert!(
            s.add(Element::Range(k([3, 3, 3, 3]), k([3, 3, 3, 3])))
                .unwrap_err()
                .contains("full")
        );
        assert!(s.add(Element::Range(1, 1)).unwrap_err().contains("IPv4"));
        assert!(
            s.add(Element::Tuples(vec![(k([1, 1, 1, 1]), 6, 22)]))
                .is_err()
        );
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

    #[test]
    fn ip_port_entries() {
        let a = k([192, 0, 2, 1]);
        let s = IpSetTable::with_ports("p", true, 3, [(a, 6, 22)]);
        assert!(s.contains_port(a, 6, 22) && !s.contains_port(a, 17, 22));
        s.add(Element::Tuples(vec![(a, 17, 53), (a, 17, 54)]))
            .unwrap();
        assert!(s.contains_port(a, 17, 54));
        assert!(
            s.add(Element::Tuples(vec![(a, 6, 80)]))
                .unwrap_err()
                .contains("full")
        );
        assert!(s.add(Element::Range(a, a)).is_err());
        s.del(Element::Tuples(vec![(a, 17, 53), (a, 17, 54)]))
            .unwrap();
        assert!(!s.contains_port(a, 17, 53));
        assert!(s.del(Element::Tuples(vec![(a, 17, 53)])).is_err());
    }
}
