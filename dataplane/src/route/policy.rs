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
mod tests;
