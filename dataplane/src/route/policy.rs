//! Policy routing (`ip rule`): several route tables and the rules that pick
//! one by source, destination, input interface and firewall mark.
//!
//! Semantics follow Linux: rules are tried in priority order (stable for
//! equal priorities); a matching rule looks the destination up in its
//! table; a miss falls through to the next rule; any route found ends the
//! lookup, including `Blackhole`, `Unreachable` and `Prohibit`, which the
//! caller turns into a drop or an ICMP error. A new [`Fib`] has Linux's
//! three default rules (0: local, 32766: main, 32767: default) and those
//! three empty tables.
//!
//! Rules are compiled into matchers holding the index of their table, so a
//! lookup never hashes a table id. With only the default rules (the common
//! case) the lookup goes straight to local, then main, then default. The
//! local table is a short list of /32s and /128s; its filter (see
//! `lpm4.rs`) rejects almost every forwarded destination with a multiply
//! and a bit test, so local costs about as much as the dispatch to main.
//!
//! One rule walk (`Fib::select`) serves the hot path, which returns the
//! shared forwarding entry ([`Fib::lookup_v4`]), and the slow path, which
//! returns the matched route ([`Fib::route_v4`]), so the two cannot
//! disagree on the table. [`Fib::prefetch`] is the batch hint: table main's
//! first-level LPM array.
//!
//! Measured on the `lpm` bench (uniformly random IPv4 addresses, 35% of
//! them unrouted): the full decision costs 9 ns against 6 ns for table main
//! alone. The difference is not the local table but the miss in main: an
//! unrouted address falls through to table default, a branch on the value
//! of a (likely missed) cache line that mispredicts a third of the time
//! and discards the lookups started after it. On routed addresses only the
//! gap is 6 vs 3.5 ns. Evaluating default eagerly and selecting without a
//! branch measured no better (LLVM sinks it back into the branch).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::dir::TBL24_LEN;
use super::table::{IfIndex, NextHop, Route, RouteEntry, RouteError, RouteTable, RouteType};
use crate::mem::prefetch;

/// The local table: addresses of this router (`ip route show table local`).
pub const TABLE_LOCAL: u32 = 255;
/// The main table: where routes go by default.
pub const TABLE_MAIN: u32 = 254;
/// The default table: empty unless configured; consulted last.
pub const TABLE_DEFAULT: u32 = 253;

/// The priorities of Linux's default rules.
const DEFAULT_RULES: [(u32, u32); 3] = [
    (0, TABLE_LOCAL),
    (32766, TABLE_MAIN),
    (32767, TABLE_DEFAULT),
];

/// One `ip rule`: if every selector that is set matches, look up `table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// Lower runs first.
    pub priority: u32,
    /// Source prefix (`from addr/len`). Host bits are ignored.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix (`to addr/len`). Host bits are ignored.
    pub to: Option<(IpAddr, u8)>,
    /// Input interface; a rule with `iif` never matches packets the router
    /// sends itself (looked up with `iif: None`).
    pub iif: Option<IfIndex>,
    /// `fwmark mark/mask`: matches when `packet_mark & mask == mark & mask`.
    pub fwmark: Option<(u32, u32)>,
    pub table: u32,
}

impl PolicyRule {
    /// A rule without selectors: everything at `priority` looks up `table`.
    pub fn new(priority: u32, table: u32) -> Self {
        PolicyRule {
            priority,
            from: None,
            to: None,
            iif: None,
            fwmark: None,
            table,
        }
    }

    /// Checks the selector prefix lengths.
    pub fn validate(&self) -> Result<(), RouteError> {
        for (a, len) in self.from.iter().chain(self.to.iter()) {
            let max = if a.is_ipv4() { 32 } else { 128 };
            if *len > max {
                return Err(RouteError::PrefixLen { len: *len, max });
            }
        }
        Ok(())
    }

    /// Clears host bits of `from` and `to` and clamps their lengths.
    fn normalized(mut self) -> Self {
        for sel in [&mut self.from, &mut self.to].into_iter().flatten() {
            *sel = match Sel::new(Some(*sel)) {
                Sel::V4(n, m) => (IpAddr::V4(Ipv4Addr::from(n)), m.count_ones() as u8),
                Sel::V6(n, m) => (IpAddr::V6(Ipv6Addr::from(n)), m.count_ones() as u8),
                Sel::Any => *sel,
            };
        }
        self
    }

    fn is_default(&self, (priority, table): (u32, u32)) -> bool {
        *self == PolicyRule::new(priority, table)
    }
}

/// An address selector as (network, mask).
#[derive(Clone, Copy, Debug)]
enum Sel {
    Any,
    V4(u32, u32),
    V6(u128, u128),
}

impl Sel {
    fn new(s: Option<(IpAddr, u8)>) -> Self {
        match s {
            None => Sel::Any,
            Some((IpAddr::V4(a), len)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0);
                Sel::V4(u32::from(a) & m, m)
            }
            Some((IpAddr::V6(a), len)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0);
                Sel::V6(u128::from(a) & m, m)
            }
        }
    }

    #[inline]
    fn v4(self, a: u32) -> bool {
        match self {
            Sel::Any => true,
            Sel::V4(n, m) => a & m == n,
            Sel::V6(..) => false,
        }
    }

    #[inline]
    fn v6(self, a: u128) -> bool {
        match self {
            Sel::Any => true,
            Sel::V6(n, m) => a & m == n,
            Sel::V4(..) => false,
        }
    }
}

/// A rule compiled for the lookup.
#[derive(Clone, Debug)]
struct Matcher {
    from: Sel,
    to: Sel,
    iif: Option<IfIndex>,
    mark: u32,
    /// 0 when the rule has no fwmark (matches every mark).
    mark_mask: u32,
    table: u32,
    /// Index into `Fib::tables`; `None` while the table does not exist
    /// (the rule then never finds a route, as in Linux).
    slot: Option<usize>,
}

impl Matcher {
    #[inline]
    fn common(&self, iif: Option<IfIndex>, mark: u32) -> bool {
        (self.iif.is_none() || self.iif == iif) && (mark ^ self.mark) & self.mark_mask == 0
    }
}

/// The slow-path answer of [`Fib::route_v4`] / [`Fib::route_v6`]: the
/// route that matched, where, and the forwarding entry the hot path uses
/// for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// Id of the table that answered.
    pub table: u32,
    /// The matched prefix (host bits clear) and its length.
    pub prefix: IpAddr,
    pub len: u8,
    /// The metric of the active route of that prefix.
    pub metric: u32,
    pub rtype: RouteType,
    /// The route's next hops, in configuration order.
    pub nexthops: &'a [NextHop],
    /// What [`Fib::lookup_v4`] / [`Fib::lookup_v6`] return for the same
    /// packet.
    pub entry: &'a RouteEntry,
}

impl<'a> RouteMatch<'a> {
    fn new(table: u32, r: &'a Route, entry: &'a RouteEntry) -> Self {
        RouteMatch {
            table,
            prefix: r.prefix,
            len: r.len,
            metric: r.metric,
            rtype: r.rtype,
            nexthops: &r.nexthops,
            entry,
        }
    }

    /// The next hop the forwarding path picks for `flow_hash`.
    pub fn nexthop(&self, flow_hash: u32) -> Option<&'a NextHop> {
        self.entry.nexthop(flow_hash)
    }
}

/// Table main's first-level IPv4 LPM entries, from [`Fib::prefetch`]: a
/// batch calls [`Prefetch::v4`] for all its packets, then looks them up.
/// With a large table the first-level read of a lookup is a cache miss;
/// issued together, the misses of a batch overlap, where one lookup after
/// the other each stalls its packet (`route/mod.rs` has the numbers). A
/// hint only: answers never depend on it, and nothing is read for a small
/// table (a list that is in cache anyway).
///
/// No IPv6 counterpart: the RIB's IPv6 prefixes touch a few thousand
/// first-level lines, which stay in cache; its misses are in the nodes
/// below, which a prefetch of the first level cannot reach (measured: no
/// gain, 24 -> 26 ns per lookup in batches of 64).
#[derive(Clone, Copy, Debug)]
pub struct Prefetch<'a> {
    v4: Option<&'a [u32; TBL24_LEN]>,
}

impl Prefetch<'_> {
    /// Starts loading the cache line `Fib::lookup_v4(.., dst, ..)` reads
    /// first in table main.
    #[inline(always)]
    pub fn v4(&self, dst: u32) {
        if let Some(t) = self.v4 {
            prefetch(&t[(dst >> 8) as usize]);
        }
    }
}

/// Route tables and policy rules: the complete routing decision.
#[derive(Clone)]
pub struct Fib {
    tables: Vec<RouteTable>,
    /// Table id -> index into `tables`.
    ids: BTreeMap<u32, usize>,
    /// Sorted by priority, stable.
    rules: Vec<PolicyRule>,
    matchers: Vec<Matcher>,
    /// Indices of the local, main and default tables when the rules are
    /// exactly the default ones and the three tables exist (the lookup then
    /// skips the matchers).
    defaults: Option<[usize; 3]>,
    /// Index of table main, the one [`Fib::prefetch`] warms.
    main: Option<usize>,
}

impl Default for Fib {
    fn default() -> Self {
        Self::new()
    }
}

impl Fib {
    /// Linux's initial state: rules 0 (local), 32766 (main) and 32767
    /// (default) and those three tables, empty.
    pub fn new() -> Self {
        let mut fib = Fib::without_rules();
        for (prio, table) in DEFAULT_RULES {
            fib.table_mut(table);
            fib.add_rule(PolicyRule::new(prio, table));
        }
        fib
    }

    /// No tables and no rules: every lookup misses until rules are added.
    pub fn without_rules() -> Self {
        Fib {
            tables: Vec::new(),
            ids: BTreeMap::new(),
            rules: Vec::new(),
            matchers: Vec::new(),
            defaults: None,
            main: None,
        }
    }

    /// Table `id`, created empty if it does not exist.
    pub fn table_mut(&mut self, id: u32) -> &mut RouteTable {
        let i = match self.ids.get(&id) {
            Some(&i) => i,
            None => {
                let i = self.tables.len();
                self.tables.push(RouteTable::new());
                self.ids.insert(id, i);
                self.compile();
                i
            }
        };
        &mut self.tables[i]
    }

    /// Table `id`, if it exists.
    pub fn table(&self, id: u32) -> Option<&RouteTable> {
        self.ids.get(&id).map(|&i| &self.tables[i])
    }

    /// All tables by id.
    pub fn tables(&self) -> impl Iterator<Item = (u32, &RouteTable)> {
        self.ids.iter().map(|(&id, &i)| (id, &self.tables[i]))
    }

    /// Adds a rule after the rules of lower or equal priority. Host bits of
    /// `from`/`to` are ignored; a length beyond the family's width is
    /// clamped (debug-asserted; see [`Fib::try_add_rule`]).
    pub fn add_rule(&mut self, r: PolicyRule) {
        debug_assert!(r.validate().is_ok(), "invalid rule {r:?}");
        let r = r.normalized();
        let at = self.rules.partition_point(|x| x.priority <= r.priority);
        self.rules.insert(at, r);
        self.compile();
    }

    /// [`Fib::add_rule`] that rejects selector lengths beyond the family's
    /// width.
    pub fn try_add_rule(&mut self, r: PolicyRule) -> Result<(), RouteError> {
        r.validate()?;
        self.add_rule(r);
        Ok(())
    }

    /// Deletes the first rule equal to `r` (after the same normalisation as
    /// `add_rule`), like `ip rule del`. Returns whether one was found.
    pub fn del_rule(&mut self, r: &PolicyRule) -> bool {
        let r = r.clone().normalized();
        match self.rules.iter().position(|x| *x == r) {
            Some(i) => {
                self.rules.remove(i);
                self.compile();
                true
            }
            None => false,
        }
    }

    /// The rules in evaluation order.
    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// The forwarding entry for an IPv4 packet and the id of the table it
    /// came from: the hot path. [`Fib::route_v4`] gives the same answer with
    /// the matched prefix.
    #[inline]
    pub fn lookup_v4(
        &self,
        src: u32,
        dst: u32,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<(&RouteEntry, u32)> {
        self.select(
            |s| s.v4(src),
            |s| s.v4(dst),
            iif,
            mark,
            |t| t.lookup_v4(dst),
        )
    }

    /// The forwarding entry for an IPv6 packet and the id of the table it
    /// came from.
    #[inline]
    pub fn lookup_v6(
        &self,
        src: u128,
        dst: u128,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<(&RouteEntry, u32)> {
        self.select(
            |s| s.v6(src),
            |s| s.v6(dst),
            iif,
            mark,
            |t| t.lookup_v6(dst),
        )
    }

    /// The hook for a batch to start its IPv4 LPM reads before its
    /// lookups: table main's first-level array, resolved once. Main is the
    /// table the default rules consult for anything that is not an address
    /// of this router (and, with more rules, usually still the one that
    /// answers).
    #[inline]
    pub fn prefetch(&self) -> Prefetch<'_> {
        let v4 = self
            .main
            .and_then(|i| self.tables.get(i))
            .and_then(RouteTable::first_level_v4);
        Prefetch { v4 }
    }

    /// Starts loading the first-level LPM entry of `dst` in table main (see
    /// [`Fib::prefetch`]; a batch should resolve that once instead).
    #[inline]
    pub fn prefetch_v4(&self, dst: u32) {
        self.prefetch().v4(dst);
    }

    /// The route [`Fib::lookup_v4`] finds, as configured, with the table,
    /// the matched prefix, length and metric: the slow path (`ip route
    /// get`, packet traces), computed from the rule maps beside the LPM.
    pub fn route_v4(
        &self,
        src: u32,
        dst: u32,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<RouteMatch<'_>> {
        let ((r, e), table) =
            self.select(|s| s.v4(src), |s| s.v4(dst), iif, mark, |t| t.route_v4(dst))?;
        Some(RouteMatch::new(table, r, e))
    }

    /// [`Fib::route_v4`] for IPv6.
    pub fn route_v6(
        &self,
        src: u128,
        dst: u128,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<RouteMatch<'_>> {
        let ((r, e), table) =
            self.select(|s| s.v6(src), |s| s.v6(dst), iif, mark, |t| t.route_v6(dst))?;
        Some(RouteMatch::new(table, r, e))
    }

    /// [`Fib::route_v4`] / [`Fib::route_v6`] for addresses of either family
    /// (`ip route get`); `None` if `src` and `dst` differ in family.
    pub fn route(
        &self,
        src: IpAddr,
        dst: IpAddr,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<RouteMatch<'_>> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.route_v4(u32::from(s), u32::from(d), iif, mark),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.route_v6(u128::from(s), u128::from(d), iif, mark)
            }
            _ => None,
        }
    }

    /// [`Fib::lookup_v4`] / [`Fib::lookup_v6`] for addresses of either
    /// family; `None` if `src` and `dst` differ in family.
    pub fn lookup(
        &self,
        src: IpAddr,
        dst: IpAddr,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<(&RouteEntry, u32)> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.lookup_v4(u32::from(s), u32::from(d), iif, mark),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.lookup_v6(u128::from(s), u128::from(d), iif, mark)
            }
            _ => None,
        }
    }

    /// The rule walk shared by the lookups: `find` in the table of each
    /// rule that matches (source by `from`, destination by `to`), in order,
    /// until one answers. With only the default rules: local, main,
    /// default, without evaluating selectors.
    #[inline(always)]
    fn select<'a, T>(
        &'a self,
        from: impl Fn(Sel) -> bool,
        to: impl Fn(Sel) -> bool,
        iif: Option<IfIndex>,
        mark: u32,
        find: impl Fn(&'a RouteTable) -> Option<T>,
    ) -> Option<(T, u32)> {
        match self.defaults {
            Some([local, main, default]) => {
                let t = &self.tables;
                if let Some(x) = t.get(local).and_then(&find) {
                    return Some((x, TABLE_LOCAL));
                }
                if let Some(x) = t.get(main).and_then(&find) {
                    return Some((x, TABLE_MAIN));
                }
                Some((t.get(default).and_then(&find)?, TABLE_DEFAULT))
            }
            None => self.matchers.iter().find_map(|m| {
                if !(m.common(iif, mark) && from(m.from) && to(m.to)) {
                    return None;
                }
                Some((find(self.tables.get(m.slot?)?)?, m.table))
            }),
        }
    }

    /// Rebuilds the matchers and the default-rules shortcut.
    fn compile(&mut self) {
        self.matchers = self
            .rules
            .iter()
            .map(|r| {
                let (mark, mark_mask) = r.fwmark.map_or((0, 0), |(v, m)| (v & m, m));
                Matcher {
                    from: Sel::new(r.from),
                    to: Sel::new(r.to),
                    iif: r.iif,
                    mark,
                    mark_mask,
                    table: r.table,
                    slot: self.ids.get(&r.table).copied(),
                }
            })
            .collect();
        let only_defaults = self.rules.len() == DEFAULT_RULES.len()
            && self
                .rules
                .iter()
                .zip(DEFAULT_RULES)
                .all(|(r, d)| r.is_default(d));
        let [local, main, default] = DEFAULT_RULES.map(|(_, t)| self.ids.get(&t).copied());
        self.defaults = match (local, main, default) {
            (Some(l), Some(m), Some(d)) if only_defaults => Some([l, m, d]),
            _ => None,
        };
        self.main = self.ids.get(&TABLE_MAIN).copied();
    }
}

impl fmt::Debug for Fib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fib")
            .field("rules", &self.rules)
            .field("tables", &self.ids.keys())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{NextHop, Route, RouteType, local_route};

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    fn via(prefix: &str, len: u8, gw: &str) -> Route {
        Route {
            prefix: a(prefix),
            len,
            metric: 0,
            rtype: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some(a(gw)),
                dev: 1,
                weight: 1,
            }],
        }
    }

    /// (table, gateway) of the route chosen for a v4 packet.
    fn pick(
        fib: &Fib,
        src: &str,
        dst: &str,
        iif: Option<IfIndex>,
        mark: u32,
    ) -> Option<(u32, Option<IpAddr>)> {
        fib.lookup_v4(v4(src), v4(dst), iif, mark)
            .map(|(e, t)| (t, e.nexthop(0).and_then(|n| n.via)))
    }

    /// A FIB with main: default via 192.0.2.1, local: 192.0.2.10.
    fn base() -> Fib {
        let mut fib = Fib::new();
        fib.table_mut(TABLE_MAIN)
            .add(via("0.0.0.0", 0, "192.0.2.1"))
            .unwrap();
        fib.table_mut(TABLE_MAIN)
            .add(via("::", 0, "2001:db8::1"))
            .unwrap();
        fib.table_mut(TABLE_LOCAL)
            .add(local_route(a("192.0.2.10"), 1))
            .unwrap();
        fib
    }

    #[test]
    fn defaults_like_linux() {
        let fib = base();
        let prios: Vec<(u32, u32)> = fib.rules().iter().map(|r| (r.priority, r.table)).collect();
        assert_eq!(
            prios,
            [
                (0, TABLE_LOCAL),
                (32766, TABLE_MAIN),
                (32767, TABLE_DEFAULT)
            ]
        );
        assert!(fib.table(TABLE_DEFAULT).is_some());
        assert!(fib.table(7).is_none());
        let (e, t) = fib.lookup_v4(0, v4("192.0.2.10"), None, 0).unwrap();
        assert_eq!((e.rtype, t), (RouteType::Local, TABLE_LOCAL));
        assert_eq!(
            pick(&fib, "10.0.0.1", "8.8.8.8", Some(2), 0),
            Some((TABLE_MAIN, Some(a("192.0.2.1"))))
        );
        let (_, t) = fib.lookup_v6(0, v6("2001:db8:5::1"), None, 0).unwrap();
        assert_eq!(t, TABLE_MAIN);
        assert!(Fib::without_rules().lookup_v4(0, 1, None, 0).is_none());
    }

    #[test]
    fn source_rule_and_fall_through() {
        let mut fib = base();
        fib.table_mut(100)
            .add(via("0.0.0.0", 0, "198.51.100.1"))
            .unwrap();
        fib.table_mut(101)
            .add(via("10.0.0.0", 8, "203.0.113.1"))
            .unwrap();
        fib.add_rule(PolicyRule {
            from: Some((a("192.168.1.0"), 24)),
            ..PolicyRule::new(100, 100)
        });
        fib.add_rule(PolicyRule::new(50, 101));
        // Rule 50 matches everything but table 101 only knows 10/8: others
        // fall through.
        assert_eq!(
            pick(&fib, "192.168.2.1", "10.1.1.1", None, 0),
            Some((101, Some(a("203.0.113.1"))))
        );
        assert_eq!(
            pick(&fib, "192.168.1.7", "8.8.8.8", None, 0),
            Some((100, Some(a("198.51.100.1"))))
        );
        assert_eq!(
            pick(&fib, "192.168.2.7", "8.8.8.8", None, 0),
            Some((TABLE_MAIN, Some(a("192.0.2.1"))))
        );
        // The local rule still comes first.
        assert_eq!(
            pick(&fib, "192.168.1.7", "192.0.2.10", None, 0).map(|x| x.0),
            Some(TABLE_LOCAL)
        );
    }

    #[test]
    fn iif_fwmark_and_to() {
        let mut fib = base();
        for t in [10, 20, 30] {
            fib.table_mut(t)
                .add(via("0.0.0.0", 0, &format!("198.51.100.{t}")))
                .unwrap();
        }
        fib.add_rule(PolicyRule {
            iif: Some(3),
            ..PolicyRule::new(10, 10)
        });
        fib.add_rule(PolicyRule {
            fwmark: Some((0x10, 0xf0)),
            ..PolicyRule::new(20, 20)
        });
        fib.add_rule(PolicyRule {
            to: Some((a("203.0.113.0"), 24)),
            ..PolicyRule::new(30, 30)
        });
        let t = |src, dst, iif, mark| pick(&fib, src, dst, iif, mark).map(|x| x.0);
        assert_eq!(t("10.0.0.1", "8.8.8.8", Some(3), 0), Some(10));
        assert_eq!(t("10.0.0.1", "8.8.8.8", Some(4), 0), Some(TABLE_MAIN));
        assert_eq!(
            t("10.0.0.1", "8.8.8.8", None, 0),
            Some(TABLE_MAIN),
            "iif rules skip local output"
        );
        assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x1f), Some(20));
        assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0xabc1_0010), Some(20));
        assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x20), Some(TABLE_MAIN));
        assert_eq!(t("10.0.0.1", "8.8.8.8", None, 0x0f), Some(TABLE_MAIN));
        assert_eq!(t("10.0.0.1", "203.0.113.9", None, 0), Some(30));
        assert_eq!(
            t("10.0.0.1", "203.0.113.9", Some(3), 0x10),
            Some(10),
            "lowest priority first"
        );
    }

    #[test]
    fn priority_order_and_stability() {
        let mut fib = base();
        fib.table_mut(1)
            .add(via("0.0.0.0", 0, "198.51.100.1"))
            .unwrap();
        fib.table_mut(2)
            .add(via("0.0.0.0", 0, "198.51.100.2"))
            .unwrap();
        fib.add_rule(PolicyRule::new(200, 2));
        fib.add_rule(PolicyRule::new(100, 1));
        assert_eq!(
            pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
            Some(1)
        );
        fib.add_rule(PolicyRule::new(100, 2));
        let order: Vec<(u32, u32)> = fib.rules().iter().map(|r| (r.priority, r.table)).collect();
        assert_eq!(
            order,
            [
                (0, 255),
                (100, 1),
                (100, 2),
                (200, 2),
                (32766, 254),
                (32767, 253)
            ]
        );
        assert_eq!(
            pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
            Some(1),
            "equal priority: first added"
        );
        assert!(fib.del_rule(&PolicyRule::new(100, 1)));
        assert!(!fib.del_rule(&PolicyRule::new(100, 1)));
        assert_eq!(
            pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
            Some(2)
        );
    }

    #[test]
    fn reject_routes_end_the_lookup() {
        let mut fib = base();
        let bh = Route {
            prefix: a("0.0.0.0"),
            len: 0,
            metric: 0,
            rtype: RouteType::Blackhole,
            nexthops: vec![],
        };
        fib.table_mut(100).add(bh).unwrap();
        let pr = Route {
            prefix: a("::"),
            len: 0,
            metric: 0,
            rtype: RouteType::Prohibit,
            nexthops: vec![],
        };
        fib.table_mut(100).add(pr).unwrap();
        fib.add_rule(PolicyRule {
            from: Some((a("10.0.0.0"), 8)),
            ..PolicyRule::new(100, 100)
        });
        fib.add_rule(PolicyRule {
            from: Some((a("2001:db8:bad::"), 48)),
            ..PolicyRule::new(100, 100)
        });
        let (e, t) = fib
            .lookup_v4(v4("10.1.1.1"), v4("8.8.8.8"), None, 0)
            .unwrap();
        assert_eq!(
            (e.rtype, t),
            (RouteType::Blackhole, 100),
            "main's default is not consulted"
        );
        let (e, t) = fib
            .lookup_v6(v6("2001:db8:bad::1"), v6("2001:db8:5::1"), None, 0)
            .unwrap();
        assert_eq!((e.rtype, t), (RouteType::Prohibit, 100));
        let (_, t) = fib
            .lookup_v6(v6("2001:db8:600d::1"), v6("2001:db8:5::1"), None, 0)
            .unwrap();
        assert_eq!(t, TABLE_MAIN);
        // A v4 selector never matches v6 packets and vice versa.
        let (_, t) = fib.lookup(a("10.1.1.1"), a("8.8.8.8"), None, 0).unwrap();
        assert_eq!(t, 100);
        assert!(
            fib.lookup(a("10.1.1.1"), a("2001:db8::1"), None, 0)
                .is_none()
        );
    }

    #[test]
    fn route_match_names_the_prefix() {
        let mut fib = base();
        fib.table_mut(TABLE_MAIN)
            .add(Route {
                metric: 20,
                ..via("198.51.100.0", 24, "192.0.2.7")
            })
            .unwrap();
        fib.table_mut(TABLE_MAIN)
            .add(Route {
                metric: 10,
                ..via("198.51.100.0", 24, "192.0.2.8")
            })
            .unwrap();
        fib.table_mut(100)
            .add(via("2001:db8:aa::", 48, "2001:db8::9"))
            .unwrap();
        fib.add_rule(PolicyRule {
            fwmark: Some((7, 0xff)),
            ..PolicyRule::new(100, 100)
        });
        let m = fib
            .route(a("10.0.0.1"), a("198.51.100.77"), Some(2), 0)
            .unwrap();
        assert_eq!(
            (m.table, m.prefix, m.len, m.metric, m.rtype),
            (TABLE_MAIN, a("198.51.100.0"), 24, 10, RouteType::Unicast)
        );
        assert_eq!(m.nexthops.len(), 1);
        assert_eq!(m.nexthop(5).and_then(|n| n.via), Some(a("192.0.2.8")));
        let m = fib.route_v4(0, v4("192.0.2.10"), None, 0).unwrap();
        assert_eq!(
            (m.table, m.len, m.rtype),
            (TABLE_LOCAL, 32, RouteType::Local)
        );
        let m = fib.route_v4(0, v4("8.8.8.8"), None, 0).unwrap();
        assert_eq!((m.prefix, m.len), (a("0.0.0.0"), 0));

        let m = fib
            .route_v6(0, v6("2001:db8:aa:1::1"), None, 0x107)
            .unwrap();
        assert_eq!((m.table, m.prefix, m.len), (100, a("2001:db8:aa::"), 48));
        let (e, t) = fib
            .lookup_v6(0, v6("2001:db8:aa:1::1"), None, 0x107)
            .unwrap();
        assert_eq!((e, t), (m.entry, m.table));
        let m = fib.route_v6(0, v6("2001:db8:aa:1::1"), None, 0).unwrap();
        assert_eq!((m.table, m.len), (TABLE_MAIN, 0), "no mark: main's default");
        assert!(
            fib.route(a("10.0.0.1"), a("2001:db8::1"), None, 0)
                .is_none()
        );
        assert!(Fib::without_rules().route_v4(0, 1, None, 0).is_none());
        // Prefetching is a hint, for any address and any FIB.
        fib.prefetch_v4(v4("198.51.100.77"));
        Fib::without_rules().prefetch_v4(1);
    }

    #[test]
    fn rule_to_missing_table_falls_through_until_created() {
        let mut fib = base();
        fib.add_rule(PolicyRule::new(10, 42));
        assert_eq!(
            pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
            Some(TABLE_MAIN)
        );
        fib.table_mut(42)
            .add(via("8.0.0.0", 8, "198.51.100.42"))
            .unwrap();
        assert_eq!(
            pick(&fib, "1.1.1.1", "8.8.8.8", None, 0).map(|x| x.0),
            Some(42)
        );
    }

    #[test]
    fn selectors_are_normalised_and_checked() {
        let mut fib = base();
        let r = PolicyRule {
            from: Some((a("10.1.2.3"), 8)),
            ..PolicyRule::new(5, 254)
        };
        fib.add_rule(r.clone());
        assert_eq!(fib.rules()[1].from, Some((a("10.0.0.0"), 8)));
        assert!(
            fib.del_rule(&r),
            "deleting with host bits set matches the normalised rule"
        );
        let bad = PolicyRule {
            to: Some((a("10.0.0.0"), 33)),
            ..PolicyRule::new(5, 254)
        };
        assert_eq!(
            fib.try_add_rule(bad),
            Err(RouteError::PrefixLen { len: 33, max: 32 })
        );
        assert_eq!(fib.rules().len(), 3);
    }

    #[test]
    fn fib_can_be_shared_between_workers() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Fib>();
    }

    #[test]
    fn fast_path_matches_general_path() {
        let fast = base();
        let mut slow = base();
        // A rule that never matches turns the shortcut off without changing
        // any answer.
        slow.add_rule(PolicyRule {
            fwmark: Some((1, 1)),
            ..PolicyRule::new(1000, 7)
        });
        assert!(fast.defaults.is_some() && slow.defaults.is_none());
        let mut x = 0x9e37_79b9u32;
        for i in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let dst = if i % 10 == 0 { v4("192.0.2.10") } else { x };
            let f = fast.lookup_v4(0, dst, None, 0).map(|(e, t)| (e.clone(), t));
            let s = slow.lookup_v4(0, dst, None, 0).map(|(e, t)| (e.clone(), t));
            assert_eq!(f, s);
            for fib in [&fast, &slow] {
                let hot = fib.lookup_v4(0, dst, None, 0);
                let m = fib.route_v4(0, dst, None, 0);
                assert_eq!(hot, m.map(|m| (m.entry, m.table)));
                fib.prefetch_v4(dst);
            }
        }
        // Deleting the local rule hides the local table, like Linux.
        let mut fib = base();
        assert!(fib.del_rule(&PolicyRule::new(0, TABLE_LOCAL)));
        assert_eq!(
            pick(&fib, "1.1.1.1", "192.0.2.10", None, 0).map(|x| x.0),
            Some(TABLE_MAIN)
        );
    }
}
