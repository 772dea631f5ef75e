//! One routing table (`ip route show table N`): IPv4 and IPv6 routes with
//! metrics, route types and weighted multipath next hops.
//!
//! Routes are kept per (prefix, len), sorted by metric; the lowest metric is
//! the active one. What forwarding needs of an active route, its type and
//! next-hop set, is a [`RouteEntry`], and entries are deduplicated: equal
//! (type, next hops) share one entry, interned with a reference count per
//! prefix using it, and the LPM maps each prefix to its entry's index. A
//! full BGP table whose routes go to 16 gateways has 16 entries (1 KiB, in
//! L1), so a lookup is the LPM's reads and no second cache miss; with one
//! 64-byte entry per prefix, as before, the 606k-prefix RIB had 38 MB of
//! entries, more than the L3, and the entry read after the DIR-24-8 read
//! was a second, dependent miss (the `pipeline_routed` bench measures the
//! difference).
//!
//! Updates stay incremental: adding or deleting a non-active metric touches
//! nothing the lookup reads; a new active route whose (type, next hops) is
//! already interned costs a hash lookup, else one new entry; the LPM is
//! written only when a prefix appears, disappears or its active entry
//! changes (the range of the prefix, as an insert). An entry is freed, and
//! its index reused, when its last prefix leaves it. The price: moving a
//! prefix to other next hops rewrites its LPM range (up to 2^(24-len)
//! entries) where one 64-byte slot used to do. Prefix, length and
//! metric are not in the entry: the slow path ([`RouteTable::route_v4`],
//! `Fib::route_v4`) finds the matched prefix in the LPM's rule maps and
//! returns the route as configured.
//!
//! ECMP picks a next hop with hash-threshold (RFC 2992): the 32-bit hash
//! space is cut into one region per next hop, sized by weight, so a flow
//! keeps its next hop and adding or removing one next hop moves only the
//! flows of the regions that change.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

use super::dir::TBL24_LEN;
use super::{Lpm4, Lpm6, LpmError};
pub use crate::iface::IfIndex;

/// What a route does with the packets it matches (`ip route` types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteType {
    /// Forward to a next hop.
    Unicast,
    /// The destination is this router: deliver locally.
    Local,
    /// A subnet's broadcast address (table local, as the kernel adds one
    /// per IPv4 address with a prefix shorter than /31): delivered
    /// locally as a broadcast, never forwarded, never answered with an
    /// ICMP error, never resolved with ARP.
    Broadcast,
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

/// The lookup result: what forwarding needs of the active route of a
/// prefix, its type and next hops, shared by every prefix whose active
/// route has the same (see the module comment). One cache line: a single
/// next hop is stored inline; only multipath routes point to their
/// next-hop set. The prefix, length and metric that matched are on the slow
/// path ([`RouteTable::route_v4`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub struct RouteEntry {
    pub rtype: RouteType,
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
            first: r.nexthops.first().copied(),
            multi,
        }
    }

    /// A placeholder for a free slot (never returned by a lookup).
    fn vacant() -> Self {
        RouteEntry {
            rtype: RouteType::Blackhole,
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
    /// Index of the active route's entry in `Entries::slots` (the LPM
    /// value of the prefix).
    entry: u32,
    /// Sorted by metric, lowest (active) first.
    routes: Vec<Route>,
}

/// The interned forwarding entries of a table.
#[derive(Clone, Debug, Default)]
struct Entries {
    /// Indexed by LPM value; free slots hold a vacant entry.
    slots: Vec<RouteEntry>,
    /// Prefixes whose active route uses each slot; 0 for a free slot.
    refs: Vec<u32>,
    /// (type, next hops) -> slot.
    index: HashMap<(RouteType, Box<[NextHop]>), u32>,
    free: Vec<u32>,
}

impl Entries {
    /// The slot of the entry for `r`'s type and next hops, interned if new,
    /// with one more reference.
    fn acquire(&mut self, r: &Route) -> Result<u32, RouteError> {
        let key: (RouteType, Box<[NextHop]>) = (r.rtype, r.nexthops.as_slice().into());
        if let Some(&s) = self.index.get(&key) {
            self.refs[s as usize] += 1;
            return Ok(s);
        }
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&s| s <= Lpm4::MAX_VALUE.min(Lpm6::MAX_VALUE))
                    .ok_or(RouteError::Full)?;
                self.slots.push(RouteEntry::vacant());
                self.refs.push(0);
                s
            }
        };
        self.slots[s as usize] = RouteEntry::new(r);
        self.refs[s as usize] = 1;
        self.index.insert(key, s);
        Ok(s)
    }

    /// Drops one reference to slot `s`, freeing it with the last.
    fn release(&mut self, s: u32) {
        let i = s as usize;
        debug_assert!(self.refs[i] > 0, "release of free entry {s}");
        self.refs[i] = self.refs[i].saturating_sub(1);
        if self.refs[i] == 0 {
            let e = std::mem::replace(&mut self.slots[i], RouteEntry::vacant());
            self.index.remove(&(e.rtype, e.nexthops().into()));
            self.free.push(s);
        }
    }

    /// Entries in use.
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn memory_bytes(&self) -> usize {
        let key = std::mem::size_of::<((RouteType, Box<[NextHop]>), u32)>() + 1;
        let nexthops: usize = self.index.keys().map(|(_, n)| n.len()).sum();
        self.slots.capacity() * std::mem::size_of::<RouteEntry>()
            + self.slots.iter().map(RouteEntry::heap_bytes).sum::<usize>()
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + self.index.capacity() * key
            + nexthops * std::mem::size_of::<NextHop>()
    }
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
    /// The deduplicated active entries, indexed by the LPM values.
    entries: Entries,
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
        let Some(pr) = self.prefix_routes(k) else {
            return Err(RouteError::NotFound);
        };
        let i = match metric {
            None => 0,
            Some(m) => pr
                .routes
                .binary_search_by_key(&m, |r| r.metric)
                .map_err(|_| RouteError::NotFound)?,
        };
        let entry = pr.entry;
        if pr.routes.len() == 1 {
            // The last route of the prefix: the prefix leaves the LPM.
            let pr = match k {
                Key::V4(p, l) => {
                    self.lpm4.remove(p, l);
                    self.v4.remove(&(p, l))
                }
                Key::V6(p, l) => {
                    self.lpm6.remove(p, l);
                    self.v6.remove(&(p, l))
                }
            };
            self.entries.release(entry);
            self.routes -= 1;
            return pr
                .and_then(|pr| pr.routes.into_iter().next())
                .ok_or(RouteError::NotFound);
        }
        if i == 0 {
            // The next metric becomes active (first, so that a failure
            // leaves the table unchanged).
            let next = pr.routes[1].clone();
            let next = self.activate(k, entry, &next)?;
            self.set_entry(k, next);
        }
        let pr = self.prefix_routes_mut(k).ok_or(RouteError::NotFound)?;
        let old = pr.routes.remove(i);
        self.routes -= 1;
        Ok(old)
    }

    /// The forwarding entry of the longest prefix containing an IPv4
    /// destination (host order): the hot path.
    #[inline]
    pub fn lookup_v4(&self, dst: u32) -> Option<&RouteEntry> {
        self.entries.slots.get(self.lpm4.lookup(dst)? as usize)
    }

    /// The forwarding entry for an IPv6 destination (host order).
    #[inline]
    pub fn lookup_v6(&self, dst: u128) -> Option<&RouteEntry> {
        self.entries.slots.get(self.lpm6.lookup(dst)? as usize)
    }

    /// The forwarding entry for a destination of either family.
    pub fn lookup(&self, dst: IpAddr) -> Option<&RouteEntry> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => self.lookup_v6(u128::from(a)),
        }
    }

    /// What [`crate::route::Prefetch`] reads: the first-level IPv4 LPM
    /// entries, if the LPM has them.
    #[inline]
    pub(super) fn first_level_v4(&self) -> Option<&[u32; TBL24_LEN]> {
        self.lpm4.first_level()
    }

    /// The active route of the longest prefix containing `dst` (host
    /// order), as configured, and the entry [`RouteTable::lookup_v4`]
    /// returns for it: the slow path, which also knows the matched prefix,
    /// length and metric (`ip route get`, traces). Up to 33 hash lookups.
    pub fn route_v4(&self, dst: u32) -> Option<(&Route, &RouteEntry)> {
        let (p, l, e) = self.lpm4.lookup_prefix(dst)?;
        let r = self.v4.get(&(p, l))?.routes.first()?;
        Some((r, self.entries.slots.get(e as usize)?))
    }

    /// [`RouteTable::route_v4`] for IPv6: one hash lookup per prefix length
    /// in use.
    pub fn route_v6(&self, dst: u128) -> Option<(&Route, &RouteEntry)> {
        let (p, l, e) = self.lpm6.lookup_prefix(dst)?;
        let r = self.v6.get(&(p, l))?.routes.first()?;
        Some((r, self.entries.slots.get(e as usize)?))
    }

    /// [`RouteTable::route_v4`] / [`RouteTable::route_v6`] for a
    /// destination of either family.
    pub fn route(&self, dst: IpAddr) -> Option<(&Route, &RouteEntry)> {
        match dst {
            IpAddr::V4(a) => self.route_v4(u32::from(a)),
            IpAddr::V6(a) => self.route_v6(u128::from(a)),
        }
    }

    /// The routes of exactly `prefix/len` (host bits ignored), lowest metric
    /// first.
    pub fn get(&self, prefix: IpAddr, len: u8) -> &[Route] {
        let pr = key(prefix, len).ok().and_then(|k| self.prefix_routes(k));
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

    /// Number of distinct forwarding entries: the (type, next hops) of the
    /// active routes, each shared by all the prefixes that use it.
    pub fn entries(&self) -> usize {
        self.entries.live()
    }

    /// Bytes allocated by the lookup structures and entries (not counting
    /// the route list).
    pub fn memory_bytes(&self) -> usize {
        self.lpm4.memory_bytes() + self.lpm6.memory_bytes() + self.entries.memory_bytes()
    }

    fn prefix_routes(&self, k: Key) -> Option<&PrefixRoutes> {
        match k {
            Key::V4(p, l) => self.v4.get(&(p, l)),
            Key::V6(p, l) => self.v6.get(&(p, l)),
        }
    }

    fn prefix_routes_mut(&mut self, k: Key) -> Option<&mut PrefixRoutes> {
        match k {
            Key::V4(p, l) => self.v4.get_mut(&(p, l)),
            Key::V6(p, l) => self.v6.get_mut(&(p, l)),
        }
    }

    fn set_entry(&mut self, k: Key, entry: u32) {
        if let Some(pr) = self.prefix_routes_mut(k) {
            pr.entry = entry;
        }
    }

    /// Points prefix `k`, whose entry is `old`, at the entry of `r`
    /// (interning it), and returns that entry. On error nothing changed.
    fn activate(&mut self, k: Key, old: u32, r: &Route) -> Result<u32, RouteError> {
        let new = self.entries.acquire(r)?;
        if new == old {
            self.entries.release(new);
            return Ok(new);
        }
        if let Err(e) = self.lpm_insert(k, new) {
            self.entries.release(new);
            return Err(e.into());
        }
        self.entries.release(old);
        Ok(new)
    }

    fn lpm_insert(&mut self, k: Key, value: u32) -> Result<Option<u32>, LpmError> {
        match k {
            Key::V4(p, l) => self.lpm4.try_insert(p, l, value),
            Key::V6(p, l) => self.lpm6.try_insert(p, l, value),
        }
    }

    /// Inserts validated route `r` under `k`; with `replace`, an existing
    /// route of the same metric is replaced and returned instead of being an
    /// error.
    fn put(&mut self, k: Key, r: Route, replace: bool) -> Result<Option<Route>, RouteError> {
        if let Some(pr) = self.prefix_routes(k) {
            let (i, exists) = match pr.routes.binary_search_by_key(&r.metric, |x| x.metric) {
                Ok(_) if !replace => {
                    return Err(RouteError::Exists {
                        prefix: r.prefix,
                        len: r.len,
                        metric: r.metric,
                    });
                }
                Ok(i) => (i, true),
                Err(i) => (i, false),
            };
            if i == 0 {
                // `r` becomes the active route.
                let entry = self.activate(k, pr.entry, &r)?;
                self.set_entry(k, entry);
            }
            let pr = self.prefix_routes_mut(k).ok_or(RouteError::NotFound)?;
            if exists {
                return Ok(Some(std::mem::replace(&mut pr.routes[i], r)));
            }
            pr.routes.insert(i, r);
            self.routes += 1;
            return Ok(None);
        }
        // First route of this prefix: an LPM entry.
        let entry = self.entries.acquire(&r)?;
        if let Err(e) = self.lpm_insert(k, entry) {
            self.entries.release(entry);
            return Err(e.into());
        }
        let pr = PrefixRoutes {
            entry,
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
            .field("entries", &self.entries.live())
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

/// The local-table broadcast route for IPv4 address `addr`/`len` on `dev`
/// (the subnet's last address), as Linux adds it; `None` for /31 and /32,
/// which have no broadcast address (RFC 3021).
pub fn broadcast_route(addr: std::net::Ipv4Addr, len: u8, dev: IfIndex) -> Option<Route> {
    if len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> len;
    let bcast = u32::from(addr) | host_bits;
    Some(Route {
        prefix: IpAddr::V4(bcast.into()),
        len: 32,
        metric: 0,
        rtype: RouteType::Broadcast,
        nexthops: vec![NextHop {
            via: None,
            dev,
            weight: 1,
        }],
    })
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
mod tests;
