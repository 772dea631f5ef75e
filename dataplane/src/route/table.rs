//! One routing table (`ip route show table N`): IPv4 and IPv6 routes with
//! metrics, route types and weighted multipath next hops.
//!
//! Routes are kept per (prefix, len), sorted by metric; the lowest metric is
//! the active one. Each (prefix, len) owns one slot of a dense `Vec` of
//! [`RouteEntry`], the hot-path form of its active route, and the LPM maps
//! the prefix to that slot. Adding or deleting a non-active metric touches
//! nothing the lookup reads; changing the active route rewrites only its
//! slot; only the first and last route of a prefix touch the LPM.
//!
//! A lookup is an LPM lookup plus one read of the entry. ECMP picks a next
//! hop with hash-threshold (RFC 2992): the 32-bit hash space is cut into one
//! region per next hop, sized by weight, so a flow keeps its next hop and
//! adding or removing one next hop moves only the flows of the regions that
//! change.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Lpm4, Lpm6, LpmError};
pub use crate::iface::IfIndex;

/// What a route does with the packets it matches (`ip route` types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteType {
    /// Forward to a next hop.
    Unicast,
    /// The destination is this router: deliver locally.
    Local,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP destination unreachable (host unreachable; IPv6 no
    /// route).
    Unreachable,
    /// Drop with ICMP administratively prohibited.
    Prohibit,
}

/// One next hop of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The gateway; `None` when the destination itself is on-link (connected
    /// routes), so the neighbor to resolve is the destination.
    pub via: Option<IpAddr>,
    /// Egress interface.
    pub dev: IfIndex,
    /// ECMP weight (`ip route ... nexthop ... weight N`); 0 counts as 1.
    pub weight: u16,
}

/// A route as configured and listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination network; host bits are cleared when the route is
    /// added.
    pub prefix: IpAddr,
    pub len: u8,
    /// Lower is preferred; routes to the same prefix with different metrics
    /// coexist.
    pub metric: u32,
    pub rtype: RouteType,
    /// At least one for `Unicast`; none for `Blackhole`, `Unreachable`,
    /// `Prohibit`; `Local` may carry the interface owning the address.
    pub nexthops: Vec<NextHop>,
}

/// Most next hops a route may have.
pub const MAX_NEXTHOPS: usize = 256;

/// Why a route could not be added or deleted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route {prefix}/{len} metric {metric} already exists")]
    Exists {
        prefix: IpAddr,
        len: u8,
        metric: u32,
    },
    #[error("no such route")]
    NotFound,
    #[error("prefix length {len} is longer than {max}")]
    PrefixLen { len: u8, max: u8 },
    #[error("a unicast route needs a next hop")]
    NoNextHop,
    #[error("a {0:?} route takes no next hop")]
    NextHopNotAllowed(RouteType),
    #[error("{0} next hops (at most {MAX_NEXTHOPS})")]
    TooManyNextHops(usize),
    #[error("the table is full")]
    Full,
}

impl From<LpmError> for RouteError {
    fn from(e: LpmError) -> Self {
        match e {
            LpmError::PrefixLen { len, max } => RouteError::PrefixLen { len, max },
            LpmError::Value(_) | LpmError::Full => RouteError::Full,
        }
    }
}

/// The lookup result: the active route of a prefix in the form the
/// forwarding path reads. One cache line: a single next hop is stored
/// inline, so a lookup is the LPM reads plus this line; only multipath
/// routes point to their next-hop set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct RouteEntry {
    pub rtype: RouteType,
    pub prefix: IpAddr,
    pub len: u8,
    pub metric: u32,
    /// The next hop of a single-path route; the first of a multipath one.
    first: Option<NextHop>,
    /// Two next hops or more.
    multi: Option<Box<Multipath>>,
}

/// The next hops of a multipath route.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Multipath {
    nexthops: Box<[NextHop]>,
    /// Hash-threshold upper bounds: next hop `i` takes the scaled hashes
    /// in `[bounds[i-1], bounds[i])`; the last bound is the total weight.
    bounds: Box<[u32]>,
}

impl RouteEntry {
    fn new(r: &Route) -> Self {
        let multi = (r.nexthops.len() > 1).then(|| {
            let bounds = r
                .nexthops
                .iter()
                .scan(0u32, |acc, nh| {
                    *acc += u32::from(nh.weight.max(1));
                    Some(*acc)
                })
                .collect();
            Box::new(Multipath {
                nexthops: r.nexthops.as_slice().into(),
                bounds,
            })
        });
        RouteEntry {
            rtype: r.rtype,
            prefix: r.prefix,
            len: r.len,
            metric: r.metric,
            first: r.nexthops.first().copied(),
            multi,
        }
    }

    /// A placeholder for a free slot (never returned by a lookup).
    fn vacant() -> Self {
        RouteEntry {
            rtype: RouteType::Blackhole,
            prefix: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            len: 0,
            metric: 0,
            first: None,
            multi: None,
        }
    }

    /// The next hop for a flow: always the same for the same `flow_hash`,
    /// spread over the next hops in proportion to their weights. `None` for
    /// routes without next hops.
    #[inline]
    pub fn nexthop(&self, flow_hash: u32) -> Option<&NextHop> {
        match &self.multi {
            None => self.first.as_ref(),
            Some(m) => m.pick(flow_hash),
        }
    }

    /// All next hops, in configuration order.
    pub fn nexthops(&self) -> &[NextHop] {
        match &self.multi {
            None => self.first.as_slice(),
            Some(m) => &m.nexthops,
        }
    }

    /// Heap bytes owned (multipath sets).
    fn heap_bytes(&self) -> usize {
        self.multi.as_ref().map_or(0, |m| {
            std::mem::size_of::<Multipath>()
                + m.nexthops.len() * std::mem::size_of::<NextHop>()
                + m.bounds.len() * 4
        })
    }
}

impl Multipath {
    #[inline]
    fn pick(&self, flow_hash: u32) -> Option<&NextHop> {
        let total = self.bounds.last().copied().unwrap_or(1);
        // Mix first (murmur3 fmix32) so that hashes with weak high bits
        // still spread, then scale to [0, total) by multiply-shift.
        let mut h = flow_hash;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        let x = ((u64::from(h) * u64::from(total)) >> 32) as u32;
        let i = self.bounds.partition_point(|&b| b <= x);
        self.nexthops.get(i)
    }
}

/// The routes of one (prefix, len).
#[derive(Clone, Debug)]
struct PrefixRoutes {
    /// Index of the active route's entry in `RouteTable::entries`.
    slot: u32,
    /// Sorted by metric, lowest (active) first.
    routes: Vec<Route>,
}

/// A validated route key.
#[derive(Clone, Copy)]
enum Key {
    V4(u32, u8),
    V6(u128, u8),
}

fn mask4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// Checks the prefix length and clears host bits.
fn key(prefix: IpAddr, len: u8) -> Result<Key, RouteError> {
    match prefix {
        IpAddr::V4(a) if len <= 32 => Ok(Key::V4(u32::from(a) & mask4(len), len)),
        IpAddr::V6(a) if len <= 128 => Ok(Key::V6(u128::from(a) & mask6(len), len)),
        IpAddr::V4(_) => Err(RouteError::PrefixLen { len, max: 32 }),
        IpAddr::V6(_) => Err(RouteError::PrefixLen { len, max: 128 }),
    }
}

impl Key {
    fn addr(self) -> IpAddr {
        match self {
            Key::V4(p, _) => IpAddr::V4(Ipv4Addr::from(p)),
            Key::V6(p, _) => IpAddr::V6(Ipv6Addr::from(p)),
        }
    }
}

/// Checks a route and returns its key with the prefix normalised.
fn validate(r: &mut Route) -> Result<Key, RouteError> {
    let k = key(r.prefix, r.len)?;
    r.prefix = k.addr();
    match r.rtype {
        RouteType::Unicast if r.nexthops.is_empty() => return Err(RouteError::NoNextHop),
        RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit
            if !r.nexthops.is_empty() =>
        {
            return Err(RouteError::NextHopNotAllowed(r.rtype));
        }
        _ => {}
    }
    if r.nexthops.len() > MAX_NEXTHOPS {
        return Err(RouteError::TooManyNextHops(r.nexthops.len()));
    }
    Ok(k)
}

/// One routing table: IPv4 and IPv6 routes, longest-prefix match, lowest
/// metric wins.
#[derive(Clone, Default)]
pub struct RouteTable {
    lpm4: Lpm4,
    lpm6: Lpm6,
    v4: BTreeMap<(u32, u8), PrefixRoutes>,
    v6: BTreeMap<(u128, u8), PrefixRoutes>,
    /// Active route of each (prefix, len), indexed by the LPM value.
    entries: Vec<RouteEntry>,
    free: Vec<u32>,
    routes: usize,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route, like `ip route add`: a route with the same prefix,
    /// length and metric is an error ([`RouteError::Exists`]). Host bits of
    /// the prefix are cleared.
    pub fn add(&mut self, mut r: Route) -> Result<(), RouteError> {
        let k = validate(&mut r)?;
        self.put(k, r, false).map(|_| ())
    }

    /// Adds a route or replaces the one with the same prefix, length and
    /// metric, like `ip route replace`. An invalid route (see
    /// [`RouteTable::try_replace`]) is ignored, with a debug assertion.
    pub fn replace(&mut self, r: Route) {
        let res = self.try_replace(r);
        debug_assert!(res.is_ok(), "invalid route: {res:?}");
    }

    /// [`RouteTable::replace`] that reports an invalid route and returns
    /// the route it replaced.
    pub fn try_replace(&mut self, mut r: Route) -> Result<Option<Route>, RouteError> {
        let k = validate(&mut r)?;
        self.put(k, r, true)
    }

    /// Deletes the route `prefix/len` with `metric`, or the active (lowest
    /// metric) one for `None`, and returns it. The next metric, or the next
    /// shorter prefix, takes over.
    pub fn del(
        &mut self,
        prefix: IpAddr,
        len: u8,
        metric: Option<u32>,
    ) -> Result<Route, RouteError> {
        let k = key(prefix, len)?;
        let Some(pr) = self.prefix_routes_mut(k) else {
            return Err(RouteError::NotFound);
        };
        let i = match metric {
            None => 0,
            Some(m) => pr
                .routes
                .binary_search_by_key(&m, |r| r.metric)
                .map_err(|_| RouteError::NotFound)?,
        };
        let old = pr.routes.remove(i);
        let slot = pr.slot;
        let active = if i == 0 {
            pr.routes.first().map(RouteEntry::new)
        } else {
            None
        };
        let now_empty = pr.routes.is_empty();
        self.routes -= 1;
        if let Some(e) = active {
            self.entries[slot as usize] = e;
        }
        if now_empty {
            match k {
                Key::V4(p, l) => {
                    self.v4.remove(&(p, l));
                    self.lpm4.remove(p, l);
                }
                Key::V6(p, l) => {
                    self.v6.remove(&(p, l));
                    self.lpm6.remove(p, l);
                }
            }
            self.entries[slot as usize] = RouteEntry::vacant();
            self.free.push(slot);
        }
        Ok(old)
    }

    /// The active route for an IPv4 destination (host order).
    #[inline]
    pub fn lookup_v4(&self, dst: u32) -> Option<&RouteEntry> {
        self.entries.get(self.lpm4.lookup(dst)? as usize)
    }

    /// The active route for an IPv6 destination (host order).
    #[inline]
    pub fn lookup_v6(&self, dst: u128) -> Option<&RouteEntry> {
        self.entries.get(self.lpm6.lookup(dst)? as usize)
    }

    /// The active route for a destination of either family.
    pub fn lookup(&self, dst: IpAddr) -> Option<&RouteEntry> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => self.lookup_v6(u128::from(a)),
        }
    }

    /// The routes of exactly `prefix/len` (host bits ignored), lowest metric
    /// first.
    pub fn get(&self, prefix: IpAddr, len: u8) -> &[Route] {
        let pr = match key(prefix, len) {
            Ok(Key::V4(p, l)) => self.v4.get(&(p, l)),
            Ok(Key::V6(p, l)) => self.v6.get(&(p, l)),
            Err(_) => None,
        };
        pr.map_or(&[], |pr| &pr.routes)
    }

    /// Every route, active or not: IPv4 then IPv6, by prefix, then length,
    /// then metric.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.v4
            .values()
            .chain(self.v6.values())
            .flat_map(|pr| pr.routes.iter())
    }

    /// Number of routes (all metrics).
    pub fn len(&self) -> usize {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Bytes allocated by the lookup structures and entries (not counting
    /// the route list).
    pub fn memory_bytes(&self) -> usize {
        self.lpm4.memory_bytes()
            + self.lpm6.memory_bytes()
            + self.entries.capacity() * std::mem::size_of::<RouteEntry>()
            + self
                .entries
                .iter()
                .map(RouteEntry::heap_bytes)
                .sum::<usize>()
    }

    fn prefix_routes_mut(&mut self, k: Key) -> Option<&mut PrefixRoutes> {
        match k {
            Key::V4(p, l) => self.v4.get_mut(&(p, l)),
            Key::V6(p, l) => self.v6.get_mut(&(p, l)),
        }
    }

    /// Inserts validated route `r` under `k`; with `replace`, an existing
    /// route of the same metric is replaced and returned instead of being an
    /// error.
    fn put(&mut self, k: Key, r: Route, replace: bool) -> Result<Option<Route>, RouteError> {
        if let Some(pr) = self.prefix_routes_mut(k) {
            let (i, old) = match pr.routes.binary_search_by_key(&r.metric, |x| x.metric) {
                Ok(_) if !replace => {
                    return Err(RouteError::Exists {
                        prefix: r.prefix,
                        len: r.len,
                        metric: r.metric,
                    });
                }
                Ok(i) => (i, Some(std::mem::replace(&mut pr.routes[i], r))),
                Err(i) => {
                    pr.routes.insert(i, r);
                    (i, None)
                }
            };
            let slot = pr.slot as usize;
            let active = (i == 0).then(|| RouteEntry::new(&pr.routes[0]));
            if old.is_none() {
                self.routes += 1;
            }
            if let Some(e) = active {
                self.entries[slot] = e;
            }
            return Ok(old);
        }
        // First route of this prefix: a new slot and an LPM entry.
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = u32::try_from(self.entries.len()).map_err(|_| RouteError::Full)?;
                self.entries.push(RouteEntry::vacant());
                s
            }
        };
        let res = match k {
            Key::V4(p, l) => self.lpm4.try_insert(p, l, slot),
            Key::V6(p, l) => self.lpm6.try_insert(p, l, slot),
        };
        if let Err(e) = res {
            self.free.push(slot);
            return Err(e.into());
        }
        self.entries[slot as usize] = RouteEntry::new(&r);
        let pr = PrefixRoutes {
            slot,
            routes: vec![r],
        };
        match k {
            Key::V4(p, l) => self.v4.insert((p, l), pr),
            Key::V6(p, l) => self.v6.insert((p, l), pr),
        };
        self.routes += 1;
        Ok(None)
    }
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteTable")
            .field("v4_prefixes", &self.v4.len())
            .field("v6_prefixes", &self.v6.len())
            .field("routes", &self.routes)
            .finish()
    }
}

/// The route the kernel adds for an interface address (`proto kernel scope
/// link`): `addr/len` with host bits cleared, metric 0, on-link via `dev`.
/// A length beyond the family's width is treated as a host route.
pub fn connected_route(addr: IpAddr, len: u8, dev: IfIndex) -> Route {
    let len = len.min(if addr.is_ipv4() { 32 } else { 128 });
    let prefix = match key(addr, len) {
        Ok(k) => k.addr(),
        Err(_) => addr,
    };
    Route {
        prefix,
        len,
        metric: 0,
        rtype: RouteType::Unicast,
        nexthops: vec![NextHop {
            via: None,
            dev,
            weight: 1,
        }],
    }
}

/// The local-table route for an address of this router: a host route of
/// type `Local` on `dev`.
pub fn local_route(addr: IpAddr, dev: IfIndex) -> Route {
    Route {
        prefix: addr,
        len: if addr.is_ipv4() { 32 } else { 128 },
        metric: 0,
        rtype: RouteType::Local,
        nexthops: vec![NextHop {
            via: None,
            dev,
            weight: 1,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn nh(via: &str, dev: IfIndex) -> NextHop {
        NextHop {
            via: Some(a(via)),
            dev,
            weight: 1,
        }
    }

    fn unicast(prefix: &str, len: u8, metric: u32, nexthops: Vec<NextHop>) -> Route {
        Route {
            prefix: a(prefix),
            len,
            metric,
            rtype: RouteType::Unicast,
            nexthops,
        }
    }

    fn typed(prefix: &str, len: u8, rtype: RouteType) -> Route {
        Route {
            prefix: a(prefix),
            len,
            metric: 0,
            rtype,
            nexthops: vec![],
        }
    }

    fn via_of(t: &RouteTable, dst: &str) -> Option<IpAddr> {
        t.lookup(a(dst))
            .and_then(|e| e.nexthop(0))
            .and_then(|n| n.via)
    }

    #[test]
    fn lowest_metric_is_active_and_del_reexposes_next() {
        let mut t = RouteTable::new();
        t.add(unicast("10.0.0.0", 8, 100, vec![nh("192.0.2.1", 1)]))
            .unwrap();
        t.add(unicast("10.0.0.0", 8, 50, vec![nh("192.0.2.2", 2)]))
            .unwrap();
        t.add(unicast("10.0.0.0", 8, 200, vec![nh("192.0.2.3", 3)]))
            .unwrap();
        t.add(unicast("0.0.0.0", 0, 0, vec![nh("192.0.2.254", 9)]))
            .unwrap();
        assert_eq!(t.len(), 4);
        let e = t.lookup_v4(v4("10.1.1.1")).unwrap();
        assert_eq!((e.metric, e.prefix, e.len), (50, a("10.0.0.0"), 8));
        assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.2")));

        // Deleting an inactive metric changes nothing visible.
        assert_eq!(t.del(a("10.0.0.0"), 8, Some(200)).unwrap().metric, 200);
        assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.2")));
        assert_eq!(
            t.del(a("10.0.0.0"), 8, Some(200)),
            Err(RouteError::NotFound)
        );

        // Deleting the active one exposes the next metric, then the /0.
        assert_eq!(t.del(a("10.0.0.0"), 8, None).unwrap().metric, 50);
        assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.1")));
        assert_eq!(t.del(a("10.0.0.0"), 8, None).unwrap().metric, 100);
        assert_eq!(via_of(&t, "10.1.1.1"), Some(a("192.0.2.254")));
        assert_eq!(t.del(a("10.0.0.0"), 8, None), Err(RouteError::NotFound));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn add_twice_is_an_error_replace_is_not() {
        let mut t = RouteTable::new();
        let r = unicast("192.168.0.0", 16, 10, vec![nh("10.0.0.1", 1)]);
        t.add(r.clone()).unwrap();
        assert_eq!(
            t.add(r.clone()),
            Err(RouteError::Exists {
                prefix: a("192.168.0.0"),
                len: 16,
                metric: 10
            })
        );
        let r2 = unicast("192.168.0.0", 16, 10, vec![nh("10.0.0.2", 1)]);
        assert_eq!(t.try_replace(r2.clone()), Ok(Some(r)));
        assert_eq!(via_of(&t, "192.168.5.5"), Some(a("10.0.0.2")));
        t.replace(unicast("192.168.0.0", 16, 5, vec![nh("10.0.0.3", 1)]));
        assert_eq!(via_of(&t, "192.168.5.5"), Some(a("10.0.0.3")));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(a("192.168.0.0"), 16).len(), 2);
    }

    #[test]
    fn host_bits_are_cleared_and_lengths_checked() {
        let mut t = RouteTable::new();
        t.add(unicast("10.1.2.3", 8, 0, vec![nh("192.0.2.1", 1)]))
            .unwrap();
        assert_eq!(t.routes().next().unwrap().prefix, a("10.0.0.0"));
        assert!(t.lookup(a("10.200.0.1")).is_some());
        assert_eq!(
            t.add(unicast("10.0.0.0", 33, 0, vec![nh("192.0.2.1", 1)])),
            Err(RouteError::PrefixLen { len: 33, max: 32 })
        );
        assert_eq!(
            t.add(unicast("2001:db8::", 129, 0, vec![nh("fe80::1", 1)])),
            Err(RouteError::PrefixLen { len: 129, max: 128 })
        );
        assert_eq!(
            t.del(a("10.0.0.0"), 40, None),
            Err(RouteError::PrefixLen { len: 40, max: 32 })
        );
        assert!(t.get(a("10.0.0.0"), 40).is_empty());
        assert!(t.del(a("10.9.9.9"), 8, None).is_ok());
        assert!(t.is_empty());
        assert!(t.lookup(a("10.200.0.1")).is_none());
    }

    #[test]
    fn route_types() {
        let mut t = RouteTable::new();
        t.add(typed("10.0.0.0", 8, RouteType::Blackhole)).unwrap();
        t.add(typed("10.1.0.0", 16, RouteType::Unreachable))
            .unwrap();
        t.add(typed("10.2.0.0", 16, RouteType::Prohibit)).unwrap();
        t.add(local_route(a("10.3.0.1"), 4)).unwrap();
        t.add(typed("2001:db8::", 32, RouteType::Unreachable))
            .unwrap();
        let ty = |d: &str| t.lookup(a(d)).map(|e| e.rtype);
        assert_eq!(ty("10.9.9.9"), Some(RouteType::Blackhole));
        assert_eq!(ty("10.1.9.9"), Some(RouteType::Unreachable));
        assert_eq!(ty("10.2.9.9"), Some(RouteType::Prohibit));
        assert_eq!(ty("10.3.0.1"), Some(RouteType::Local));
        assert_eq!(ty("10.3.0.2"), Some(RouteType::Blackhole));
        assert_eq!(ty("2001:db8::1"), Some(RouteType::Unreachable));
        assert_eq!(ty("11.0.0.1"), None);
        assert!(t.lookup(a("10.9.9.9")).unwrap().nexthop(7).is_none());
        assert_eq!(t.lookup(a("10.3.0.1")).unwrap().nexthop(7).unwrap().dev, 4);

        let mut bad = typed("10.4.0.0", 16, RouteType::Blackhole);
        bad.nexthops.push(nh("192.0.2.1", 1));
        assert_eq!(
            t.add(bad),
            Err(RouteError::NextHopNotAllowed(RouteType::Blackhole))
        );
        assert_eq!(
            t.add(typed("10.4.0.0", 16, RouteType::Unicast)),
            Err(RouteError::NoNextHop)
        );
        let many = unicast(
            "10.4.0.0",
            16,
            0,
            vec![nh("192.0.2.1", 1); MAX_NEXTHOPS + 1],
        );
        assert_eq!(
            t.add(many),
            Err(RouteError::TooManyNextHops(MAX_NEXTHOPS + 1))
        );
    }

    #[test]
    fn connected_and_local_helpers() {
        let r = connected_route(a("192.168.10.1"), 24, 3);
        assert_eq!(
            r,
            Route {
                prefix: a("192.168.10.0"),
                len: 24,
                metric: 0,
                rtype: RouteType::Unicast,
                nexthops: vec![NextHop {
                    via: None,
                    dev: 3,
                    weight: 1
                }],
            }
        );
        let r6 = connected_route(a("2001:db8:1::1"), 64, 3);
        assert_eq!((r6.prefix, r6.len), (a("2001:db8:1::"), 64));
        assert_eq!(connected_route(a("10.0.0.1"), 99, 3).len, 32);
        let l = local_route(a("192.168.10.1"), 3);
        assert_eq!(
            (l.prefix, l.len, l.rtype),
            (a("192.168.10.1"), 32, RouteType::Local)
        );
        assert_eq!(local_route(a("2001:db8::1"), 3).len, 128);

        let mut t = RouteTable::new();
        t.add(r).unwrap();
        t.add(r6).unwrap();
        let e = t.lookup(a("192.168.10.77")).unwrap();
        assert_eq!(
            e.nexthop(1),
            Some(&NextHop {
                via: None,
                dev: 3,
                weight: 1
            })
        );
        assert_eq!(t.lookup(a("2001:db8:1::55")).unwrap().nexthops()[0].dev, 3);
    }

    #[test]
    fn ecmp_is_sticky_and_honours_weights() {
        let mut t = RouteTable::new();
        let hops = vec![
            NextHop {
                via: Some(a("192.0.2.1")),
                dev: 1,
                weight: 1,
            },
            NextHop {
                via: Some(a("192.0.2.2")),
                dev: 2,
                weight: 2,
            },
            NextHop {
                via: Some(a("192.0.2.3")),
                dev: 3,
                weight: 0,
            }, // counts as 1
            NextHop {
                via: Some(a("192.0.2.4")),
                dev: 4,
                weight: 4,
            },
        ];
        t.add(unicast("0.0.0.0", 0, 0, hops)).unwrap();
        let e = t.lookup_v4(v4("8.8.8.8")).unwrap();
        let mut counts = [0u32; 5];
        let n = 80_000u32;
        // Sequential hashes: the entry mixes them, so they still spread.
        for h in 0..n {
            let a = e.nexthop(h).unwrap();
            assert_eq!(e.nexthop(h), Some(a), "same hash, same next hop");
            counts[a.dev as usize] += 1;
        }
        for (dev, w) in [(1, 1.0), (2, 2.0), (3, 1.0), (4, 4.0)] {
            let share = f64::from(counts[dev]) / f64::from(n);
            assert!(
                (share - w / 8.0).abs() < 0.02,
                "dev {dev}: {share} vs {}",
                w / 8.0
            );
        }
        // Random-looking hashes too.
        let mut counts = [0u32; 5];
        let mut x = 0x1234_5678u32;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            counts[e.nexthop(x).unwrap().dev as usize] += 1;
        }
        assert!((f64::from(counts[4]) / f64::from(n) - 0.5).abs() < 0.02);
        assert_eq!(e.nexthops().len(), 4);
    }

    #[test]
    fn ecmp_change_moves_few_flows() {
        let hop = |i: u8| NextHop {
            via: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))),
            dev: u16::from(i),
            weight: 1,
        };
        let mut t = RouteTable::new();
        t.add(unicast("0.0.0.0", 0, 0, (1..=4).map(hop).collect()))
            .unwrap();
        let before: Vec<u16> = (0..10_000u32)
            .map(|h| t.lookup_v4(1).unwrap().nexthop(h).unwrap().dev)
            .collect();
        t.replace(unicast("0.0.0.0", 0, 0, (1..=5).map(hop).collect()));
        let after: Vec<u16> = (0..10_000u32)
            .map(|h| t.lookup_v4(1).unwrap().nexthop(h).unwrap().dev)
            .collect();
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        // Hash-threshold: 4 -> 5 next hops moves about half the flows
        // (modulo would move ~80%).
        assert!(moved < 6_000, "{moved} flows moved");
    }

    #[test]
    fn many_routes_both_families_in_order() {
        let mut t = RouteTable::new();
        for i in 0..200u32 {
            let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
            t.add(Route {
                prefix: p,
                len: 24,
                metric: i % 3,
                rtype: RouteType::Unicast,
                nexthops: vec![nh("192.0.2.1", i as u16)],
            })
            .unwrap();
            let p6 = IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8u128 << 96) + (u128::from(i) << 64),
            ));
            t.add(Route {
                prefix: p6,
                len: 64,
                metric: 7,
                rtype: RouteType::Unicast,
                nexthops: vec![nh("fe80::1", i as u16)],
            })
            .unwrap();
        }
        t.add(unicast("10.0.0.0", 24, 100, vec![nh("192.0.2.1", 999)]))
            .unwrap();
        assert_eq!(t.len(), 401);
        for i in 0..200u32 {
            assert_eq!(
                t.lookup_v4(0x0a00_0000 + (i << 8) + 5).unwrap().nexthops()[0].dev,
                i as u16
            );
            let d6 = (0x2001_0db8u128 << 96) + (u128::from(i) << 64) + 9;
            assert_eq!(t.lookup_v6(d6).unwrap().nexthops()[0].dev, i as u16);
        }
        let listed: Vec<(IpAddr, u8, u32)> =
            t.routes().map(|r| (r.prefix, r.len, r.metric)).collect();
        let mut sorted = listed.clone();
        sorted.sort_by_key(|&(p, l, m)| (p.is_ipv6(), p, l, m));
        assert_eq!(
            listed, sorted,
            "deterministic: v4 then v6, by prefix, len, metric"
        );
        assert_eq!(listed[0], (a("10.0.0.0"), 24, 0));
        assert_eq!(listed[1], (a("10.0.0.0"), 24, 100));

        // Slots are reused: deleting and re-adding does not grow the entries.
        let cap = t.entries.len();
        for _ in 0..3 {
            for i in 0..200u32 {
                t.del(
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))),
                    24,
                    Some(i % 3),
                )
                .unwrap();
            }
            for i in 0..200u32 {
                let p = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
                t.add(Route {
                    prefix: p,
                    len: 24,
                    metric: i % 3,
                    rtype: RouteType::Unicast,
                    nexthops: vec![nh("192.0.2.1", 1)],
                })
                .unwrap();
            }
        }
        assert_eq!(t.entries.len(), cap);
    }

    #[test]
    fn entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<RouteEntry>(), 64);
    }

    #[test]
    fn clone_is_independent() {
        let mut t = RouteTable::new();
        t.add(unicast("10.0.0.0", 8, 0, vec![nh("192.0.2.1", 1)]))
            .unwrap();
        let c = t.clone();
        t.del(a("10.0.0.0"), 8, None).unwrap();
        assert!(t.lookup(a("10.0.0.1")).is_none());
        assert!(c.lookup(a("10.0.0.1")).is_some());
    }
}
