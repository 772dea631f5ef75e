//! An nftables ruleset (after [`super::state::apply`]) -> the dataplane's
//! rule representation ([`filter::Expr`]s and targets in a
//! [`RulesetBuilder`]), the same one the iptables front-end fills.
//!
//! **Base chains.** Each base chain goes to the dataplane stage that runs
//! at its hook and priority (the iptables tables are stages too, at their
//! standard priorities; several chains of one stage run in priority order,
//! an accept ending only the chain that gives it):
//!
//! | type, hook | priority | stage |
//! | --- | --- | --- |
//! | filter prerouting | ≤ -200 | raw (before conntrack) |
//! | filter prerouting | -199 … -101 | mangle PREROUTING (before DNAT) |
//! | filter prerouting | ≥ -100 | PREROUTING after DNAT |
//! | filter input, forward | < 0 / ≥ 0 | mangle / filter at that hook |
//! | filter output, route output | -199 … -1 / ≥ 0 | mangle / filter OUTPUT |
//! | filter postrouting | < 100 | mangle POSTROUTING (before SNAT) |
//! | nat prerouting / postrouting | any | nat (first packet of a connection) |
//!
//! Refused, with the reason: nat at input or output and filter at output
//! priority ≤ -200 (xgate originates no connections and tracks its own
//! packets as they leave), filter postrouting at ≥ 100 (after SNAT),
//! ingress/egress hooks, arp/bridge/netdev tables.
//!
//! **Regular chains** are compiled once per stage that reaches them
//! (`jump`/`goto`, vmap verdicts), named `FAMILY TABLE CHAIN`.
//!
//! **Rules.** Matches become expressions (with nft's payload
//! dependencies: `tcp dport` also tests the protocol, `ip saddr` in an
//! inet table the family); a rule's statements after its matches become
//! the target: one action or verdict is one rule; several (`log prefix
//! "x" drop`, `meta mark set 1 accept`) become one rule per statement with
//! the matches repeated when that is exact (the matches read nothing the
//! earlier statements write and keep no state), else a jump to an
//! anonymous chain that holds the statements (`FAMILY TABLE CHAIN#N`).
//! A verdict map, and a concatenation looked up in a set, become one rule
//! per element (elements are disjoint, so at most one matches).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use xgate_dataplane::addr::ip_key;
use xgate_dataplane::conntrack::HelperKind;
use xgate_dataplane::filter::dynset::{DynSetSpec, KeyVals};
use xgate_dataplane::filter::{
    self, AddrRange, ChainId, DrawKind, Expr as FExpr, Field, Hook as FHook, IfaceMatch, LimitSpec,
    NatAction, Policy as FPolicy, Prefix, RejectKind, RuleSpec, RulesetBuilder, TableId as Stage,
    TargetSpec, ct, ct_status, hash_fields, rpf,
};
use xgate_dataplane::iface::Interfaces;

use super::ast::*;
use super::state::{ChainState, TableState};

/// Widest SNAT/DNAT address range (as for iptables).
const MAX_NAT_RANGE: u128 = 65536;

/// Most rules one nft rule may expand into (vmap and set elements).
const MAX_EXPANSION: usize = 65536;

/// A problem, at `loc`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub loc: Loc,
    pub msg: String,
}

/// What the rest of the config needs to know about the ruleset.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Something reads or writes connection state (ct expressions, nat
    /// chains, notrack, helpers).
    pub tracking: bool,
    /// SNAT address ranges (the NAT address registry needs them).
    pub snat: Vec<(IpAddr, IpAddr)>,
    /// Per nft rule (table, chain, rule: indices into the applied
    /// tables), the builder rules that count it: (builder chain id,
    /// position in that chain). `ctl rules` sums them.
    pub counters: RuleCounterMap,
}

/// Per nft rule (table, chain, rule indices), the compiled rules that
/// count it: (builder chain index, position in that chain).
pub type RuleCounterMap = Vec<((usize, usize, usize), Vec<(u32, u32)>)>;

/// Adds every table of `tables` to `b`. `line_of` maps a location to the
/// line reported in rule counters and traces.
pub fn add_tables(
    b: &mut RulesetBuilder,
    tables: &[TableState],
    interfaces: &Interfaces,
    line_of: &dyn Fn(Loc) -> usize,
) -> Result<Summary, Vec<CompileError>> {
    let mut c = Compiler {
        b,
        interfaces,
        line_of,
        errors: Vec::new(),
        summary: Summary::default(),
        anon: 0,
        sizes: HashMap::new(),
        dynsets: HashMap::new(),
    };
    for (i, t) in tables.iter().enumerate().filter(|(_, t)| !t.dormant) {
        c.table(i, t);
    }
    if c.errors.is_empty() {
        Ok(c.summary)
    } else {
        c.errors.sort_by_key(|e| e.loc);
        Err(c.errors)
    }
}

struct Compiler<'a, 'b> {
    b: &'b mut RulesetBuilder,
    interfaces: &'a Interfaces,
    line_of: &'a dyn Fn(Loc) -> usize,
    errors: Vec<CompileError>,
    summary: Summary,
    anon: u32,
    /// Rules added so far per builder chain (a rule's position).
    sizes: HashMap<u32, u32>,
    /// Sets the packet path writes, by (table index, name).
    dynsets: HashMap<(usize, String), Arc<DynSetSpec>>,
}

/// Where a chain's rules run: the stage and the hooks reaching it.
#[derive(Clone)]
struct Ctx<'t> {
    table: &'t TableState,
    /// The table's index in the applied tables.
    tix: usize,
    family: filter::Family,
    stage: Stage,
    hooks: Vec<FHook>,
    /// Chain ids of the table's regular chains in this stage.
    ids: HashMap<String, ChainId>,
    /// The chain being compiled (for anonymous chains' names).
    chain: String,
}

/// A compiled statement.
#[derive(Clone, Debug)]
enum Step {
    Match(Vec<FExpr>),
    /// Any one of these conjunctions (a concatenation in a set).
    AnyOf(Vec<Vec<FExpr>>),
    /// None of these conjunctions (a concatenation not in a set).
    NoneOf(Vec<Vec<FExpr>>),
    Action(TargetSpec),
    Verdict(TargetSpec),
    /// Per alternative, its matches and verdict (a verdict map, a reject
    /// that differs per family).
    Vmap(Vec<(Vec<FExpr>, TargetSpec)>),
}

type R<T> = Result<T, String>;

fn stage_of(kind: ChainType, hook: Hook, prio: i32) -> R<(Stage, FHook)> {
    use ChainType as T;
    let h = match hook {
        Hook::Prerouting => FHook::Prerouting,
        Hook::Input => FHook::Input,
        Hook::Forward => FHook::Forward,
        Hook::Output => FHook::Output,
        Hook::Postrouting => FHook::Postrouting,
        Hook::Ingress | Hook::Egress => {
            return Err(format!(
                "the {} hook runs before (or after) the IP stack: xgate runs \
                 prerouting, input, forward, output and postrouting",
                hook.name()
            ));
        }
    };
    Ok(match (kind, h) {
        (T::Nat, FHook::Prerouting | FHook::Postrouting) => (Stage::Nat, h),
        (T::Nat, _) => {
            return Err(format!(
                "xgate originates no connections, so a nat chain at {} never sees a packet",
                hook.name()
            ));
        }
        (T::Route, FHook::Output) => (Stage::Mangle, h),
        (T::Route, _) => return Err("a route chain hooks output only".into()),
        (T::Filter, FHook::Prerouting) if prio <= -200 => (Stage::Raw, h),
        (T::Filter, FHook::Prerouting) if prio < -100 => (Stage::Mangle, h),
        (T::Filter, FHook::Prerouting) => (Stage::Filter, h),
        (T::Filter, FHook::Output) if prio <= -200 => {
            return Err(
                "output at priority raw is not run: the router's own packets are tracked as \
                 they leave"
                    .into(),
            );
        }
        (T::Filter, FHook::Postrouting) if prio >= 100 => {
            return Err(
                "a filter chain at postrouting priority srcnat or later runs after SNAT in \
                 Linux; xgate runs postrouting filter chains before SNAT: give it a priority \
                 below 100"
                    .into(),
            );
        }
        (T::Filter, FHook::Postrouting) => (Stage::Mangle, h),
        (T::Filter, _) if prio < 0 => (Stage::Mangle, h),
        (T::Filter, _) => (Stage::Filter, h),
    })
}

/// nft's ct state bits -> xgate's.
fn ct_state_bits(nft: u64) -> R<u32> {
    let mut out = 0u32;
    for (n, x) in [
        (1, ct::INVALID),
        (2, ct::ESTABLISHED),
        (4, ct::RELATED),
        (8, ct::NEW),
        (64, ct::UNTRACKED),
    ] {
        if nft & n != 0 {
            out |= u32::from(x);
        }
    }
    if nft & !(1 | 2 | 4 | 8 | 64) != 0 {
        return Err(format!("unknown ct state bits {nft:#x}"));
    }
    Ok(out)
}

fn ct_status_bits(nft: u64) -> R<u32> {
    let known = u64::from(
        ct_status::EXPECTED
            | ct_status::SEEN_REPLY
            | ct_status::ASSURED
            | ct_status::CONFIRMED
            | ct_status::SNAT
            | ct_status::DNAT,
    );
    if nft & !known != 0 {
        return Err(
            "ct status: xgate knows expected, seen-reply, assured, confirmed, snat, dnat".into(),
        );
    }
    // The same bit numbers as the kernel's IPS_* (and nft's).
    Ok(nft as u32)
}

fn log_level(l: &str) -> R<u8> {
    Ok(match l {
        "emerg" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" => 3,
        "warn" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return Err(format!("log level {l}: xgate's log has no audit")),
    })
}

/// A field and the expressions a payload load implies (nft's payload
/// dependencies).
struct Load {
    field: Field,
    deps: Vec<FExpr>,
}

fn proto_dep(p: u8) -> FExpr {
    FExpr::eq(Field::L4Proto, p.into())
}

fn payload(proto: Proto, field: PayloadField) -> R<Load> {
    use PayloadField as P;
    let v4 = || FExpr::family(true);
    let v6 = || FExpr::family(false);
    let (field, deps) = match (proto, field) {
        (Proto::Ip, P::Saddr) => (Field::Saddr, vec![v4()]),
        (Proto::Ip, P::Daddr) => (Field::Daddr, vec![v4()]),
        (Proto::Ip, P::Protocol) => (Field::L4Proto, vec![v4()]),
        (Proto::Ip, P::Ttl) => (Field::Ttl, vec![v4()]),
        (Proto::Ip, P::Length) => (Field::Len, vec![v4()]),
        (Proto::Ip, P::Dscp) => (Field::Dscp, vec![v4()]),
        (Proto::Ip6, P::Saddr) => (Field::Saddr, vec![v6()]),
        (Proto::Ip6, P::Daddr) => (Field::Daddr, vec![v6()]),
        // The transport protocol after any extension headers (nft's is
        // the first header's; they differ only with extension headers).
        (Proto::Ip6, P::Nexthdr) => (Field::L4Proto, vec![v6()]),
        (Proto::Ip6, P::Hoplimit) => (Field::Ttl, vec![v6()]),
        (Proto::Ip6, P::Dscp) => (Field::Dscp, vec![v6()]),
        (Proto::Tcp, P::Sport) => (Field::Sport, vec![proto_dep(6)]),
        (Proto::Tcp, P::Dport) => (Field::Dport, vec![proto_dep(6)]),
        (Proto::Tcp, P::Flags) => (Field::TcpFlags, vec![proto_dep(6)]),
        (Proto::Udp, P::Sport) => (Field::Sport, vec![proto_dep(17)]),
        (Proto::Udp, P::Dport) => (Field::Dport, vec![proto_dep(17)]),
        (Proto::Udplite, P::Sport) => (Field::Sport, vec![proto_dep(136)]),
        (Proto::Udplite, P::Dport) => (Field::Dport, vec![proto_dep(136)]),
        (Proto::Sctp, P::Sport) => (Field::Sport, vec![proto_dep(132)]),
        (Proto::Sctp, P::Dport) => (Field::Dport, vec![proto_dep(132)]),
        (Proto::Dccp, P::Sport) => (Field::Sport, vec![proto_dep(33)]),
        (Proto::Dccp, P::Dport) => (Field::Dport, vec![proto_dep(33)]),
        // A packet without ports fails a port expression (negated too).
        (Proto::Th, P::Sport) => (Field::Sport, vec![]),
        (Proto::Th, P::Dport) => (Field::Dport, vec![]),
        (Proto::Icmp, P::Type) => (Field::IcmpType, vec![v4(), proto_dep(1)]),
        (Proto::Icmp, P::Code) => (Field::IcmpCode, vec![v4(), proto_dep(1)]),
        (Proto::Icmpv6, P::Type) => (Field::IcmpType, vec![v6(), proto_dep(58)]),
        (Proto::Icmpv6, P::Code) => (Field::IcmpCode, vec![v6(), proto_dep(58)]),
        (Proto::Ether, P::Saddr) => (Field::SrcMac, vec![]),
        (p, f) => {
            return Err(format!(
                "{} {} is not a field xgate's rules can read",
                format!("{p:?}").to_lowercase(),
                format!("{f:?}").to_lowercase()
            ));
        }
    };
    Ok(Load { field, deps })
}

/// The intervals a right-hand side stands for (constants, ranges,
/// prefixes, sets).
fn intervals(e: &Expr, table: &TableState, out: &mut Vec<(u128, u128)>) -> R<()> {
    match e {
        Expr::Const(c) => {
            let v = const_value(c)?;
            out.push((v, v));
        }
        Expr::Range(a, b) => {
            let (Expr::Const(a), Expr::Const(b)) = (&**a, &**b) else {
                return Err("a range of constants".into());
            };
            out.push((const_value(a)?, const_value(b)?));
        }
        Expr::Prefix(a, len) => {
            let Expr::Const(c) = &**a else {
                return Err("a prefix of an address".into());
            };
            let p = match c.value {
                Value::V4(a) => Prefix::v4(a.into(), *len),
                Value::V6(a) => Prefix::v6(a.into(), *len),
                _ => return Err("a prefix of an address".into()),
            };
            let (net, mask) = p.net_mask();
            out.push((net, net | !mask));
        }
        Expr::Set(elems) => {
            for el in elems {
                if el.value.is_some() {
                    return Err("a map where a set was expected".into());
                }
                intervals(&el.key, table, out)?;
            }
        }
        Expr::List(items) => {
            for i in items {
                intervals(i, table, out)?;
            }
        }
        Expr::SetRef(name) => {
            let set = named_set(table, name)?;
            if set.map.is_some() {
                return Err(format!("@{name} is a map, not a set"));
            }
            for el in &set.elements {
                intervals(&el.key, table, out)?;
            }
        }
        _ => return Err("a value, range, prefix or set".into()),
    }
    Ok(())
}

fn named_set<'t>(table: &'t TableState, name: &str) -> R<&'t Set> {
    let s = table.set(name).ok_or_else(|| {
        format!(
            "no set @{name} in table {} {}",
            table.id.family.name(),
            table.id.name
        )
    })?;
    if s.flags.contains(&SetFlag::Dynamic) || s.flags.contains(&SetFlag::Timeout) {
        // A set the packet path adds to (or whose elements expire) would
        // be read here as the file wrote it: refuse rather than differ.
        return Err(format!(
            "@{name} changes while running (dynamic or timeout): xgate reads sets as \
             loaded and does not update them from the packet path"
        ));
    }
    Ok(s)
}

fn const_value(c: &Const) -> R<u128> {
    Ok(match &c.value {
        Value::Int(n) => u128::from(*n),
        Value::V4(a) => ip_key(IpAddr::V4(*a)),
        Value::V6(a) => ip_key(IpAddr::V6(*a)),
        Value::Ether(m) => m.iter().fold(0u128, |acc, b| acc << 8 | u128::from(*b)),
        Value::Str(s) => return Err(format!("\"{s}\" where a number was expected")),
        Value::Millis(_) => return Err("a time where a number was expected".into()),
    })
}

fn const_int(e: &Expr) -> R<u64> {
    match e {
        Expr::Const(Const {
            value: Value::Int(n),
            ..
        }) => Ok(*n),
        _ => Err("a number".into()),
    }
}

impl Compiler<'_, '_> {
    fn error(&mut self, loc: Loc, msg: impl Into<String>) {
        self.errors.push(CompileError {
            loc,
            msg: msg.into(),
        });
    }

    fn table(&mut self, tix: usize, t: &TableState) {
        let family = match t.id.family {
            Family::Ip => filter::Family::V4,
            Family::Ip6 => filter::Family::V6,
            Family::Inet => filter::Family::Inet,
            f => {
                if !t.chains.is_empty() {
                    self.error(
                        t.loc,
                        format!(
                            "{} tables are not run: xgate runs ip, ip6 and inet tables",
                            f.name()
                        ),
                    );
                }
                return;
            }
        };
        // Sets the packet path writes: flagged dynamic or timeout, or
        // named by an add/update statement.
        let mut written: HashSet<&str> = HashSet::new();
        for r in t.chains.iter().flat_map(|c| &c.rules) {
            for st in &r.stmts {
                if let StmtKind::Dynset(d) = &st.kind {
                    written.insert(d.set.as_str());
                }
            }
        }
        for set in &t.sets {
            let dynamic = set.flags.contains(&SetFlag::Dynamic)
                || set.flags.contains(&SetFlag::Timeout)
                || written.contains(set.name.as_str());
            if !dynamic {
                continue;
            }
            if set.map.is_some() {
                self.error(
                    set.loc,
                    format!(
                        "map @{}: maps the packet path writes are not supported yet",
                        set.name
                    ),
                );
                continue;
            }
            let elements: R<Vec<_>> = set.elements.iter().map(|e| element_key(&e.key)).collect();
            // nft refuses more elements than the set's size (ENFILE).
            let elements = elements.and_then(|e| match set.size {
                Some(n) if e.len() as u64 > n => {
                    Err(format!("{} elements in a set of size {n}", e.len()))
                }
                _ => Ok(e),
            });
            match elements {
                Ok(elements) => {
                    let spec = DynSetSpec {
                        name: format!("{} {} {}", t.id.family.name(), t.id.name, set.name),
                        capacity: set
                            .size
                            .map_or(65535, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                        timeout_ns: set.timeout.unwrap_or(0).saturating_mul(1_000_000),
                        elements,
                        history: 0,
                        evict: false,
                    };
                    self.dynsets.insert((tix, set.name.clone()), Arc::new(spec));
                }
                Err(m) => self.error(set.loc, format!("set @{}: {m}", set.name)),
            }
        }
        // Which (stage, hook)s reach each regular chain.
        let mut reach: HashMap<(Stage, String), Vec<FHook>> = HashMap::new();
        let mut bases = Vec::new();
        for c in &t.chains {
            let Some(base) = &c.base else { continue };
            match stage_of(base.kind, base.hook, base.priority.value) {
                Ok((stage, hook)) => {
                    bases.push((c, stage, hook));
                    self.reach(t, c, stage, hook, &mut reach);
                }
                // A chain with no rules and policy accept changes nothing
                // wherever it hooks (fw4 always declares raw_output).
                Err(_) if c.rules.is_empty() && base.policy != Some(Policy::Drop) => {}
                Err(m) => self.error(base.loc, format!("chain {}: {m}", c.name)),
            }
        }
        let name = |c: &str| format!("{} {} {c}", t.id.family.name(), t.id.name);
        // Regular chains: one builder chain per stage that reaches them.
        let mut ids: HashMap<Stage, HashMap<String, ChainId>> = HashMap::new();
        let mut keys: Vec<&(Stage, String)> = reach.keys().collect();
        keys.sort_by_key(|(s, n)| (*s as u8, n.clone()));
        for (stage, chain) in keys {
            let id = self.b.user_chain(family, *stage, &name(chain));
            ids.entry(*stage).or_default().insert(chain.clone(), id);
        }
        for (c, stage, hook) in bases {
            let base = c.base.as_ref().expect("base chain");
            if base.kind == ChainType::Nat || base.kind == ChainType::Route {
                self.summary.tracking |= base.kind == ChainType::Nat;
            }
            let policy = match base.policy {
                Some(Policy::Drop) => FPolicy::Drop,
                _ => FPolicy::Accept,
            };
            let id = self.b.base_chain(
                family,
                stage,
                hook,
                &name(&c.name),
                base.priority.value,
                policy,
            );
            let cx = Ctx {
                table: t,
                tix,
                family,
                stage,
                hooks: vec![hook],
                ids: ids.get(&stage).cloned().unwrap_or_default(),
                chain: name(&c.name),
            };
            self.chain_rules(&cx, chain_index(t, &c.name), c, id);
        }
        let mut regular: Vec<(&(Stage, String), &Vec<FHook>)> = reach.iter().collect();
        regular.sort_by_key(|((s, n), _)| (*s as u8, n.clone()));
        for ((stage, chain), hooks) in regular {
            let Some(c) = t.chain(chain) else { continue };
            let ids = ids.get(stage).cloned().unwrap_or_default();
            let id = ids[chain];
            let cx = Ctx {
                table: t,
                tix,
                family,
                stage: *stage,
                hooks: hooks.clone(),
                ids,
                chain: name(chain),
            };
            self.chain_rules(&cx, chain_index(t, chain), c, id);
        }
    }

    /// Records the regular chains `c` reaches (jump, goto, vmap) for
    /// `stage`/`hook`, recursively.
    fn reach(
        &mut self,
        t: &TableState,
        c: &ChainState,
        stage: Stage,
        hook: FHook,
        reach: &mut HashMap<(Stage, String), Vec<FHook>>,
    ) {
        let mut targets = Vec::new();
        for r in &c.rules {
            for s in &r.stmts {
                verdict_targets(t, s, &mut targets);
            }
        }
        for (loc, to) in targets {
            let Some(next) = t.chain(&to) else {
                self.error(
                    loc,
                    format!(
                        "no chain {to} in table {} {}",
                        t.id.family.name(),
                        t.id.name
                    ),
                );
                continue;
            };
            if next.base.is_some() {
                self.error(loc, format!("cannot jump to base chain {to}"));
                continue;
            }
            let hooks = reach.entry((stage, to.clone())).or_default();
            if hooks.contains(&hook) {
                continue;
            }
            hooks.push(hook);
            self.reach(t, next, stage, hook, reach);
        }
    }

    fn chain_rules(&mut self, cx: &Ctx<'_>, cix: usize, c: &ChainState, id: ChainId) {
        for (rix, r) in c.rules.iter().enumerate() {
            match self.rule(cx, r, id) {
                Ok(slots) => self.summary.counters.push(((cx.tix, cix, rix), slots)),
                Err((loc, m)) => self.error(loc, m),
            }
        }
    }

    /// Adds `spec` to builder chain `id`; its position there.
    fn add(&mut self, id: ChainId, spec: RuleSpec) -> u32 {
        self.b.add_rule(id, spec);
        let n = self.sizes.entry(id.index() as u32).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// One rule: its statements compiled, then emitted as rules of `id`;
    /// the (chain, position) of the builder rules that count it.
    fn rule(
        &mut self,
        cx: &Ctx<'_>,
        r: &Rule,
        id: ChainId,
    ) -> Result<Vec<(u32, u32)>, (Loc, String)> {
        let mut steps = Vec::new();
        for s in &r.stmts {
            if let Some(step) = self.stmt(cx, s).map_err(|m| (s.loc, m))? {
                steps.push(step);
            }
        }
        let line = (self.line_of)(r.loc);
        self.emit(cx, line, id, &steps).map_err(|m| (r.loc, m))
    }

    fn stmt(&mut self, cx: &Ctx<'_>, s: &Stmt) -> R<Option<Step>> {
        Ok(Some(match &s.kind {
            StmtKind::Match(m) => self.matches(cx, m)?,
            StmtKind::Counter(_) => return Ok(None),
            StmtKind::Verdict(Verdict::Continue) => return Ok(None),
            StmtKind::Verdict(v) => Step::Verdict(self.verdict(cx, v)?),
            StmtKind::VerdictMap { key, map } => self.vmap(cx, key, map)?,
            StmtKind::Limit(l) => {
                let l = match l {
                    LimitStmt::Rate(l) => l.clone(),
                    LimitStmt::Named(n) => match cx.table.object(n).map(|o| &o.kind) {
                        Some(ObjectBody::Limit(l)) => l.clone(),
                        _ => return Err(format!("no limit object {n}")),
                    },
                };
                Step::Match(vec![limit(&l)?])
            }
            StmtKind::Log(l) => {
                // `log group N` hands the packet to a logging daemon over
                // NFLOG (ulogd), whose usual output is the plain log line:
                // xgate writes that line to its own log, as for iptables'
                // NFLOG.
                Step::Action(TargetSpec::Log {
                    prefix: l.prefix.clone().unwrap_or_default(),
                    level: log_level(l.level.as_deref().unwrap_or("warn"))?,
                })
            }
            StmtKind::Reject(rj) => self.reject(cx, rj)?,
            StmtKind::Nat(n) => self.nat_maps(cx, n)?,
            StmtKind::Set { target, value } => Step::Action(self.set_stmt(cx, target, value)?),
            StmtKind::Notrack => {
                if cx.stage != Stage::Raw {
                    return Err("notrack works before connection tracking: in a prerouting \
                                chain of priority raw (-300)"
                        .into());
                }
                self.summary.tracking = true;
                Step::Action(TargetSpec::Notrack)
            }
            // Offloading changes speed, not verdicts: established packets
            // still go through every chain here.
            StmtKind::Flow { .. } => return Ok(None),
            StmtKind::Quota(_) => return Err("quota is not supported yet".into()),
            StmtKind::Queue { .. } => {
                return Err("queue hands packets to a user-space program; xgate has none".into());
            }
            StmtKind::Dynset(d) => {
                let Some(set) = self.dynsets.get(&(cx.tix, d.set.clone())).cloned() else {
                    return Err(format!("no set @{}", d.set));
                };
                let refresh = match d.op {
                    DynsetOp::Add => false,
                    DynsetOp::Update => true,
                    DynsetOp::Delete => {
                        return Err("delete @set from the packet path is not supported yet".into());
                    }
                };
                let mut limit_spec = None;
                for st in &d.stmts {
                    match &st.kind {
                        StmtKind::Counter(_) => {}
                        StmtKind::Limit(LimitStmt::Rate(l)) => match limit(l)? {
                            FExpr::Limit { neg, spec } => limit_spec = Some((spec, neg)),
                            _ => unreachable!("limit() makes a limit"),
                        },
                        _ => {
                            return Err("an element's statements: limit rate and counter".into());
                        }
                    }
                }
                let (fields, mut exprs) = key_fields(&d.key)?;
                exprs.push(FExpr::SetUpdate {
                    set,
                    fields,
                    refresh,
                    timeout_ns: d.timeout.unwrap_or(0).saturating_mul(1_000_000),
                    limit: limit_spec,
                    full_holds: false,
                });
                Step::Match(exprs)
            }
        }))
    }

    fn verdict(&mut self, cx: &Ctx<'_>, v: &Verdict) -> R<TargetSpec> {
        Ok(match v {
            Verdict::Accept => TargetSpec::Accept,
            Verdict::Drop => TargetSpec::Drop,
            Verdict::Return => TargetSpec::Return,
            Verdict::Continue => TargetSpec::None,
            Verdict::Jump(c) => TargetSpec::Jump(self.chain_id(cx, c)?),
            Verdict::Goto(c) => TargetSpec::Goto(self.chain_id(cx, c)?),
        })
    }

    fn chain_id(&self, cx: &Ctx<'_>, name: &str) -> R<ChainId> {
        cx.ids
            .get(name)
            .copied()
            .ok_or_else(|| format!("no regular chain {name}"))
    }

    fn vmap(&mut self, cx: &Ctx<'_>, key: &Expr, map: &Expr) -> R<Step> {
        let elems: Vec<Element> = match map {
            Expr::Set(e) => e.clone(),
            Expr::SetRef(n) => {
                let s = named_set(cx.table, n)?;
                if !s.is_verdict_map() {
                    return Err(format!("@{n} is not a verdict map"));
                }
                s.elements.clone()
            }
            _ => return Err("vmap takes { key : verdict, ... } or @map".into()),
        };
        let mut alts = Vec::new();
        for el in &elems {
            let Some(Expr::Verdict(v)) = &el.value else {
                return Err("a verdict map element needs a verdict".into());
            };
            let m = Match {
                left: key.clone(),
                op: RelOp::Eq,
                right: el.key.clone(),
            };
            let exprs = self.map_key(cx, &m)?;
            alts.push((exprs, self.verdict(cx, v)?));
        }
        drawn_once(key, &mut alts)?;
        Ok(Step::Vmap(alts))
    }

    /// A map element's key compared with the map's key expression; a
    /// `numgen`/`jhash` key compares the number drawn (drawn once, by
    /// [`drawn_once`]).
    fn map_key(&mut self, cx: &Ctx<'_>, m: &Match) -> R<Vec<FExpr>> {
        if draw_of(&m.left)?.is_some() {
            return Ok(vec![self.compare(cx, Field::Reg, m, false, None)?]);
        }
        match self.matches(cx, m)? {
            Step::Match(e) => Ok(e),
            _ => Err("a map keyed by a concatenation with sets in it".into()),
        }
    }

    /// `left op right`.
    fn matches(&mut self, cx: &Ctx<'_>, m: &Match) -> R<Step> {
        let neg = match m.op {
            RelOp::Ne => true,
            RelOp::Implicit | RelOp::Eq => false,
            _ => false,
        };
        // A dynamic set: a lookup of the key's hash.
        if let Expr::SetRef(name) = &m.right
            && let Some(set) = self.dynsets.get(&(cx.tix, name.clone())).cloned()
        {
            let (fields, mut exprs) = key_fields(&m.left)?;
            exprs.push(FExpr::SetLookup { set, fields, neg });
            return Ok(Step::Match(exprs));
        }
        // Concatenations: per element, a conjunction.
        if let Expr::Concat(parts) = &m.left {
            let rows: Vec<Vec<Expr>> = match &m.right {
                Expr::Concat(vals) => vec![vals.clone()],
                Expr::Set(elems) => elems.iter().map(|e| concat_row(&e.key)).collect::<R<_>>()?,
                Expr::SetRef(n) => named_set(cx.table, n)?
                    .elements
                    .iter()
                    .map(|e| concat_row(&e.key))
                    .collect::<R<_>>()?,
                _ => return Err("a concatenation is compared with a concatenation or a set".into()),
            };
            if rows.len() > MAX_EXPANSION {
                return Err(format!("more than {MAX_EXPANSION} elements"));
            }
            let mut alts = Vec::new();
            for row in rows {
                if row.len() != parts.len() {
                    return Err(format!(
                        "an element of {} values for a key of {}",
                        row.len(),
                        parts.len()
                    ));
                }
                let mut conj = Vec::new();
                for (l, r) in parts.iter().zip(row) {
                    let one = Match {
                        left: l.clone(),
                        op: RelOp::Eq,
                        right: r,
                    };
                    match self.matches(cx, &one)? {
                        Step::Match(e) => conj.extend(e),
                        _ => return Err("a nested concatenation".into()),
                    }
                }
                alts.push(conj);
            }
            return Ok(if neg {
                Step::NoneOf(alts)
            } else if alts.len() == 1 {
                Step::Match(alts.pop().expect("one"))
            } else {
                Step::AnyOf(alts)
            });
        }
        // `left & mask op value`.
        let (left, mask) = match &m.left {
            Expr::Binop {
                op: BinOp::And,
                left,
                right,
            } => (&**left, Some(const_int(right)? as u32)),
            Expr::Binop { .. } => return Err("only `&` (a mask) is supported on the left".into()),
            l => (l, None),
        };
        match left {
            Expr::Meta(k) => self.meta(cx, *k, m, neg, mask),
            Expr::Payload { proto, field } => {
                let load = payload(*proto, *field)?;
                let mut out = load.deps.clone();
                out.push(self.compare(cx, load.field, m, neg, mask)?);
                Ok(Step::Match(out))
            }
            Expr::Ct(c) => {
                self.summary.tracking = true;
                let field = match (c.dir, c.key) {
                    (None, CtKey::State) => Field::CtState,
                    (None, CtKey::Status) => Field::CtStatus,
                    (None, CtKey::Mark) => Field::CtMark,
                    (None, CtKey::Direction) => Field::CtDir,
                    (None | Some(CtDir::Original), CtKey::Saddr(_)) => Field::CtOrigSaddr,
                    (None | Some(CtDir::Original), CtKey::Daddr(_)) => Field::CtOrigDaddr,
                    (Some(CtDir::Reply), CtKey::Saddr(_)) => Field::CtReplSaddr,
                    (Some(CtDir::Reply), CtKey::Daddr(_)) => Field::CtReplDaddr,
                    (None | Some(CtDir::Original), CtKey::ProtoSrc) => Field::CtOrigSport,
                    (None | Some(CtDir::Original), CtKey::ProtoDst) => Field::CtOrigDport,
                    (Some(CtDir::Reply), CtKey::ProtoSrc) => Field::CtReplSport,
                    (Some(CtDir::Reply), CtKey::ProtoDst) => Field::CtReplDport,
                    (_, k) => {
                        return Err(format!(
                            "ct {} is not a field xgate's rules can read",
                            format!("{k:?}").to_lowercase()
                        ));
                    }
                };
                Ok(Step::Match(vec![self.compare(cx, field, m, neg, mask)?]))
            }
            // The reverse-path check: `fib saddr . iif oif missing` (strict:
            // the route back leaves by the input interface), `fib saddr
            // oif missing` (loose: any route back); `. mark` changes
            // nothing (xgate's lookup always uses the mark).
            Expr::Fib(f)
                if f.result == FibResult::Oif
                    && f.flags.first() == Some(&FibFlag::Saddr)
                    && f.flags[1..]
                        .iter()
                        .all(|x| matches!(x, FibFlag::Iif | FibFlag::Mark)) =>
            {
                if cx.hooks.iter().any(|h| *h != FHook::Prerouting) {
                    return Err(
                        "fib saddr ... oif (reverse path) works in prerouting chains".into(),
                    );
                }
                let strict = f.flags.contains(&FibFlag::Iif);
                let exists = match &m.right {
                    Expr::Const(Const {
                        value: Value::Int(n),
                        ..
                    }) => *n != 0,
                    _ => return Err("fib ... oif: compare with missing or exists".into()),
                };
                let bits = u32::from(if strict { rpf::STRICT } else { rpf::LOOSE });
                Ok(Step::Match(vec![FExpr::Bits {
                    field: Field::Rpf,
                    neg: exists == neg,
                    bits,
                }]))
            }
            Expr::Fib(f) => {
                let field = match (&f.flags[..], f.result) {
                    ([FibFlag::Daddr], FibResult::Type) => Field::DstType,
                    ([FibFlag::Saddr], FibResult::Type) => Field::SrcType,
                    _ => {
                        return Err("fib: xgate reads `fib daddr type` and `fib saddr type` \
                                    and the reverse path (`fib saddr . iif oif missing`)"
                            .into());
                    }
                };
                let mut v = Vec::new();
                intervals(&m.right, cx.table, &mut v)?;
                let mut bits = 0u32;
                for (lo, hi) in v {
                    for t in lo..=hi.min(15) {
                        bits |= 1 << t;
                    }
                }
                Ok(Step::Match(vec![FExpr::Bits { field, neg, bits }]))
            }
            Expr::Numgen { .. } | Expr::Hash { .. } => {
                // Draw, then compare the number drawn (nft's register).
                let draw = draw_of(left)?.expect("numgen or hash");
                let cmp = self.compare(cx, Field::Reg, m, neg, mask)?;
                Ok(Step::Match(vec![draw, cmp]))
            }
            _ => Err("this expression is not supported yet in a match".into()),
        }
    }

    fn meta(
        &mut self,
        cx: &Ctx<'_>,
        k: MetaKey,
        m: &Match,
        neg: bool,
        mask: Option<u32>,
    ) -> R<Step> {
        let one = |e: FExpr| Ok(Step::Match(vec![e]));
        match k {
            MetaKey::Iif | MetaKey::Iifname | MetaKey::Oif | MetaKey::Oifname => {
                let out = matches!(k, MetaKey::Oif | MetaKey::Oifname);
                if out
                    && cx
                        .hooks
                        .iter()
                        .any(|h| matches!(h, FHook::Prerouting | FHook::Input))
                {
                    return Err("no output interface is known at prerouting or input".into());
                }
                // At postrouting a forwarded packet has its input
                // interface (nft allows iif there; the router's own
                // packets have none).
                if !out && cx.hooks.contains(&FHook::Output) {
                    return Err("no input interface is known at output".into());
                }
                let set = self.ifaces(&m.right, cx)?;
                one(FExpr::Iface {
                    out,
                    neg,
                    set,
                    phys: false,
                })
            }
            MetaKey::Mark => one(self.compare(cx, Field::Mark, m, neg, mask)?),
            MetaKey::L4proto => one(self.compare(cx, Field::L4Proto, m, neg, mask)?),
            MetaKey::Nfproto => one(self.compare(cx, Field::NfProto, m, neg, mask)?),
            MetaKey::Protocol => {
                let v = const_int(&m.right).map_err(|_| "meta protocol: one of ip, ip6")?;
                let fam = match v {
                    0x0800 => 2,
                    0x86dd => 10,
                    _ => return Err("meta protocol: xgate's rules see ip and ip6 only".into()),
                };
                one(FExpr::Cmp {
                    field: Field::NfProto,
                    neg,
                    mask: u128::from(u32::MAX),
                    lo: fam,
                    hi: fam,
                })
            }
            MetaKey::Length => one(self.compare(cx, Field::Len, m, neg, mask)?),
            MetaKey::Pkttype => one(self.compare(cx, Field::PktType, m, neg, mask)?),
            MetaKey::Iiftype | MetaKey::Oiftype => {
                // Every interface xgate runs is Ethernet.
                let v = const_int(&m.right)?;
                let ether = v == 1;
                if ether != neg {
                    Ok(Step::Match(Vec::new()))
                } else {
                    one(FExpr::Iface {
                        phys: false,
                        out: k == MetaKey::Oiftype,
                        neg: false,
                        set: IfaceMatch::default(),
                    })
                }
            }
            MetaKey::Nftrace => Err("meta nftrace: use xgate's --trace".into()),
            _ => Err(format!(
                "meta {} is not a field xgate's rules can read",
                format!("{k:?}").to_lowercase()
            )),
        }
    }

    /// Interface names (with `*` wildcards) -> the set of configured
    /// interfaces. `lo` names no interface of xgate's (nothing comes in
    /// or goes out on loopback here) and matches nothing; any other name
    /// must be configured, so that a typo cannot silently disable a rule.
    fn ifaces(&self, e: &Expr, cx: &Ctx<'_>) -> R<IfaceMatch> {
        let mut names = Vec::new();
        collect_strings(e, cx.table, &mut names)?;
        let mut set = IfaceMatch::default();
        for n in names {
            if let Some(prefix) = n.strip_suffix('*') {
                set.ifaces.extend(
                    self.interfaces
                        .iter()
                        .filter(|(_, x)| x.name.starts_with(prefix))
                        .map(|(i, _)| i),
                );
                set.none |= prefix.is_empty();
            } else if let Some(i) = self.interfaces.by_name(&n) {
                set.ifaces.push(i);
            } else if n != "lo" {
                let names: Vec<&str> = self
                    .interfaces
                    .iter()
                    .map(|(_, x)| x.name.as_str())
                    .collect();
                return Err(format!(
                    "interface {n} is not configured (configured: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            }
        }
        set.ifaces.sort_unstable();
        set.ifaces.dedup();
        Ok(set)
    }

    /// `field op right` as one expression.
    fn compare(
        &mut self,
        cx: &Ctx<'_>,
        field: Field,
        m: &Match,
        neg: bool,
        mask: Option<u32>,
    ) -> R<FExpr> {
        // Flags: `ct state established,related` (any of), `tcp flags syn`.
        let flags = matches!(field, Field::CtState | Field::CtStatus | Field::TcpFlags);
        let mut v = Vec::new();
        intervals(&m.right, cx.table, &mut v)?;
        if v.is_empty() {
            return Err("an empty set".into());
        }
        let conv = |x: u128| -> R<u128> {
            Ok(match field {
                Field::CtState => u128::from(ct_state_bits(x as u64)?),
                Field::CtStatus => u128::from(ct_status_bits(x as u64)?),
                _ => x,
            })
        };
        if flags && mask.is_none() && m.op == RelOp::Implicit
            || field == Field::CtState && matches!(m.op, RelOp::Eq | RelOp::Ne)
        {
            // Any of the bits (ct state is one bit, so == is the same).
            let mut bits = 0u128;
            for (lo, hi) in v {
                if lo != hi {
                    return Err("flags are not ranges".into());
                }
                bits |= conv(lo)?;
            }
            return Ok(FExpr::Bits {
                field,
                neg,
                bits: bits as u32,
            });
        }
        let max = if field.wide() {
            u128::MAX
        } else {
            u128::from(field.max())
        };
        if let Some(mask) = mask {
            let [(lo, hi)] = v[..] else {
                return Err("a masked compare takes one value".into());
            };
            if lo != hi {
                return Err("a masked compare takes one value".into());
            }
            return Ok(FExpr::Cmp {
                field,
                neg,
                mask: u128::from(mask),
                lo: conv(lo)? & u128::from(mask),
                hi: conv(lo)? & u128::from(mask),
            });
        }
        let range = |lo: u128, hi: u128| -> R<(u128, u128)> {
            if lo > hi || hi > max {
                Err(format!(
                    "{} {lo}-{hi} is reversed or out of range",
                    field.name()
                ))
            } else {
                Ok((lo, hi))
            }
        };
        match m.op {
            RelOp::Lt | RelOp::Le | RelOp::Gt | RelOp::Ge => {
                let [(x, y)] = v[..] else {
                    return Err("<, >, <=, >= take one value".into());
                };
                if x != y {
                    return Err("<, >, <=, >= take one value".into());
                }
                let x = conv(x)?;
                let (lo, hi) = match m.op {
                    RelOp::Lt if x == 0 => return Err("< 0 matches nothing".into()),
                    RelOp::Lt => (0, x - 1),
                    RelOp::Le => (0, x),
                    RelOp::Gt if x >= max => return Err(format!("> {x} matches nothing")),
                    RelOp::Gt => (x + 1, max),
                    _ => (x, max),
                };
                let (lo, hi) = range(lo, hi)?;
                Ok(wide_or_scalar(field, false, lo, hi))
            }
            _ => {
                let mut rs = Vec::with_capacity(v.len());
                for (lo, hi) in v {
                    rs.push(range(conv(lo)?, conv(hi)?)?);
                }
                if let [(lo, hi)] = rs[..]
                    && (lo == hi || !field.wide())
                {
                    return Ok(wide_or_scalar(field, neg, lo, hi));
                }
                Ok(FExpr::InRanges {
                    field,
                    alt: None,
                    neg,
                    ranges: rs,
                })
            }
        }
    }

    fn reject(&mut self, cx: &Ctx<'_>, r: &Reject) -> R<Step> {
        if cx
            .hooks
            .iter()
            .any(|h| !matches!(h, FHook::Input | FHook::Forward | FHook::Output))
        {
            return Err("reject is valid in input, forward and output chains only".into());
        }
        let code = |c: &Const| -> R<u8> {
            match c.value {
                Value::Int(n) if n <= 255 => Ok(n as u8),
                _ => Err("a reject code".into()),
            }
        };
        let v4 = |code| TargetSpec::Reject(Some(RejectKind::Icmp4 { typ: 3, code }));
        let v6 = |code| TargetSpec::Reject(Some(RejectKind::Icmp6 { typ: 1, code }));
        Ok(match r {
            Reject::Default => Step::Verdict(TargetSpec::Reject(None)),
            Reject::TcpReset => Step::Verdict(TargetSpec::Reject(Some(RejectKind::TcpReset))),
            Reject::Icmp(c) => Step::Vmap(vec![(vec![FExpr::family(true)], v4(code(c)?))]),
            Reject::Icmpv6(c) => Step::Vmap(vec![(vec![FExpr::family(false)], v6(code(c)?))]),
            Reject::Icmpx(c) => {
                // nft's icmpx codes -> each family's.
                let (c4, c6) = match code(c)? {
                    0 => (0, 0), // no-route: net unreachable / no route
                    1 => return Ok(Step::Verdict(TargetSpec::Reject(None))),
                    2 => (1, 3),  // host-unreachable / address unreachable
                    3 => (13, 1), // admin-prohibited
                    n => return Err(format!("icmpx code {n}")),
                };
                let mut alts = Vec::new();
                if cx.family != filter::Family::V6 {
                    alts.push((vec![FExpr::family(true)], v4(c4)));
                }
                if cx.family != filter::Family::V4 {
                    alts.push((vec![FExpr::family(false)], v6(c6)));
                }
                Step::Vmap(alts)
            }
        })
    }

    /// A nat statement; with its address or port looked up in a map
    /// (`dnat to tcp dport map { 80 : 10.0.0.2, ... }`), one alternative
    /// per element: a packet whose key is in no element is not
    /// translated by this rule, as in nft.
    fn nat_maps(&mut self, cx: &Ctx<'_>, n: &Nat) -> R<Step> {
        let map_of = |e: &Option<Expr>| match e {
            Some(Expr::Map { key, map }) => Some(((**key).clone(), (**map).clone())),
            _ => None,
        };
        // `dnat ip addr . port to KEY map { k : addr . port }`: one map
        // gives both.
        if n.addr_port {
            let Some((key, map)) = map_of(&n.addr) else {
                return Err("addr . port takes a map".into());
            };
            let elements = match &map {
                Expr::Set(e) => e.clone(),
                Expr::SetRef(name) => named_set(cx.table, name)?.elements.clone(),
                _ => return Err("a map { key : addr . port, ... } or @map".into()),
            };
            let mut alts = Vec::new();
            for el in elements {
                let Some(Expr::Concat(v)) = &el.value else {
                    return Err("addr . port map values are ADDR . PORT".into());
                };
                let [a, p] = &v[..] else {
                    return Err("addr . port map values are ADDR . PORT".into());
                };
                let one = Nat {
                    addr: Some(a.clone()),
                    port: Some(p.clone()),
                    addr_port: false,
                    ..n.clone()
                };
                let m = Match {
                    left: key.clone(),
                    op: RelOp::Eq,
                    right: el.key.clone(),
                };
                let exprs = self.map_key(cx, &m)?;
                alts.push((exprs, self.nat(cx, &one)?));
            }
            drawn_once(&key, &mut alts)?;
            return Ok(Step::Vmap(alts));
        }
        let (am, pm) = (map_of(&n.addr), map_of(&n.port));
        let Some((key, _)) = am.clone().or_else(|| pm.clone()) else {
            return Ok(Step::Verdict(self.nat(cx, n)?));
        };
        if let (Some((a, _)), Some((p, _))) = (&am, &pm)
            && a != p
        {
            return Err("the address and port maps must be looked up with the same key".into());
        }
        let elements = |map: &Expr| -> R<Vec<Element>> {
            match map {
                Expr::Set(e) => Ok(e.clone()),
                Expr::SetRef(name) => Ok(named_set(cx.table, name)?.elements.clone()),
                _ => Err("a map { key : value, ... } or @map".into()),
            }
        };
        let (ae, pe) = match (&am, &pm) {
            (Some((_, a)), Some((_, p))) => (Some(elements(a)?), Some(elements(p)?)),
            (Some((_, a)), None) => (Some(elements(a)?), None),
            (None, Some((_, p))) => (None, Some(elements(p)?)),
            (None, None) => unreachable!("one map at least"),
        };
        let keys: Vec<Expr> = ae
            .as_ref()
            .or(pe.as_ref())
            .expect("one map")
            .iter()
            .map(|e| e.key.clone())
            .collect();
        if keys.len() > MAX_EXPANSION {
            return Err(format!("more than {MAX_EXPANSION} elements"));
        }
        let value = |els: &Option<Vec<Element>>, k: &Expr| -> R<Option<Expr>> {
            match els {
                None => Ok(None),
                Some(els) => els
                    .iter()
                    .find(|e| e.key == *k)
                    .and_then(|e| e.value.clone())
                    .map(Some)
                    .ok_or_else(|| {
                        "the port map has no element for a key of the address map".into()
                    }),
            }
        };
        let mut alts = Vec::new();
        for k in keys {
            let one = Nat {
                addr: match value(&ae, &k)? {
                    Some(v) => Some(v),
                    None => n.addr.clone(),
                },
                port: match value(&pe, &k)? {
                    Some(v) => Some(v),
                    None => n.port.clone(),
                },
                ..n.clone()
            };
            let m = Match {
                left: key.clone(),
                op: RelOp::Eq,
                right: k,
            };
            let exprs = self.map_key(cx, &m)?;
            alts.push((exprs, self.nat(cx, &one)?));
        }
        drawn_once(&key, &mut alts)?;
        Ok(Step::Vmap(alts))
    }

    fn nat(&mut self, cx: &Ctx<'_>, n: &Nat) -> R<TargetSpec> {
        self.summary.tracking = true;
        if cx.stage != Stage::Nat {
            return Err("nat statements belong in a chain of type nat".into());
        }
        let src = matches!(n.kind, NatKind::Snat | NatKind::Masquerade);
        let ok_hook = if src {
            FHook::Postrouting
        } else {
            FHook::Prerouting
        };
        if cx.hooks.iter().any(|h| *h != ok_hook) {
            return Err(format!(
                "{} works at {} only",
                format!("{:?}", n.kind).to_lowercase(),
                ok_hook.name().to_lowercase()
            ));
        }
        if n.flags.iter().any(|f| f == "netmap") {
            return Err("netmap is not supported yet".into());
        }
        let ports = match &n.port {
            None => None,
            Some(Expr::Const(c)) => {
                let p = const_value(c)?;
                Some((p as u16, p as u16))
            }
            Some(Expr::Range(a, b)) => {
                let (Expr::Const(a), Expr::Const(b)) = (&**a, &**b) else {
                    return Err("a port range of numbers".into());
                };
                Some((const_value(a)? as u16, const_value(b)? as u16))
            }
            Some(_) => return Err("a port or port range (maps are not supported yet)".into()),
        };
        if let Some((lo, hi)) = ports
            && lo > hi
        {
            return Err(format!("port range {lo}-{hi} is reversed"));
        }
        let addrs = match &n.addr {
            None => None,
            Some(e) => {
                let (lo, hi) = match e {
                    Expr::Const(c) => (addr(c)?, addr(c)?),
                    Expr::Range(a, b) => match (&**a, &**b) {
                        (Expr::Const(a), Expr::Const(b)) => (addr(a)?, addr(b)?),
                        _ => return Err("an address range of addresses".into()),
                    },
                    Expr::Prefix(..) => {
                        let mut v = Vec::new();
                        intervals(e, cx.table, &mut v)?;
                        let (lo, hi) = v[0];
                        let v4 = lo >> 32 == 0xffff;
                        (from_key(lo, v4), from_key(hi, v4))
                    }
                    _ => return Err("an address or range (maps are not supported yet)".into()),
                };
                if lo.is_ipv4() != hi.is_ipv4() {
                    return Err(format!("{lo}-{hi} mixes IPv4 and IPv6"));
                }
                let r = AddrRange {
                    v4: lo.is_ipv4(),
                    lo: ip_key(lo),
                    hi: ip_key(hi),
                };
                if r.lo > r.hi {
                    return Err(format!("address range {lo}-{hi} is reversed"));
                }
                if r.count() > MAX_NAT_RANGE {
                    return Err(format!(
                        "{lo}-{hi} holds more than {MAX_NAT_RANGE} addresses"
                    ));
                }
                if src {
                    self.summary.snat.push((lo, hi));
                }
                Some(r)
            }
        };
        Ok(TargetSpec::Nat(match (n.kind, addrs) {
            (NatKind::Masquerade, _) => NatAction::Masquerade { ports },
            (NatKind::Redirect, _) => NatAction::Redirect { ports },
            (NatKind::Snat, Some(addrs)) => NatAction::Snat { addrs, ports },
            (NatKind::Dnat, Some(addrs)) => NatAction::Dnat { addrs, ports },
            (NatKind::Snat | NatKind::Dnat, None) => {
                return Err("an address to translate to".into());
            }
        }))
    }

    fn set_stmt(&mut self, cx: &Ctx<'_>, target: &Expr, value: &Expr) -> R<TargetSpec> {
        // `x set x | v`, `x set x & v`, `x set x ^ v`, `x set v` ->
        // (value, mask) of `x = (x & !mask) ^ value`.
        let xor_mask = |same: &Expr| mark_op(same, value);
        let ct_mark = Expr::Ct(Ct {
            dir: None,
            key: CtKey::Mark,
        });
        match target {
            Expr::Meta(MetaKey::Mark) => {
                if *value == ct_mark {
                    self.summary.tracking = true;
                    return Ok(TargetSpec::RestoreMark {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    });
                }
                let (value, mask) = xor_mask(target)?;
                Ok(TargetSpec::Mark { value, mask })
            }
            Expr::Ct(Ct {
                dir: None,
                key: CtKey::Mark,
            }) => {
                self.summary.tracking = true;
                if *value == Expr::Meta(MetaKey::Mark) {
                    return Ok(TargetSpec::SaveMark {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    });
                }
                let (value, mask) = xor_mask(target)?;
                Ok(TargetSpec::CtMark { value, mask })
            }
            Expr::Ct(Ct {
                dir: None,
                key: CtKey::Helper,
            }) => {
                self.summary.tracking = true;
                if cx.hooks.iter().any(|h| *h != FHook::Prerouting) {
                    return Err("ct helper set works on a connection's first packet, in a \
                                prerouting chain"
                        .into());
                }
                let Expr::Const(Const {
                    value: Value::Str(name),
                    ..
                }) = value
                else {
                    return Err("ct helper set \"NAME\" (a ct helper object)".into());
                };
                let kind = match cx.table.object(name).map(|o| &o.kind) {
                    Some(ObjectBody::CtHelper { helper, .. }) => HelperKind::from_name(helper)
                        .ok_or_else(|| format!("helper {helper}: xgate has ftp and tftp"))?,
                    _ => return Err(format!("no ct helper object {name}")),
                };
                Ok(TargetSpec::Helper(kind))
            }
            Expr::Meta(MetaKey::Nftrace) => Ok(TargetSpec::None),
            // `tcp option maxseg size set rt mtu` / `... set 1400`: lowered
            // only, as the kernel does.
            Expr::TcpOption {
                kind: 2,
                field: Some(TcpOptionField::Size),
            } => {
                if cx
                    .hooks
                    .iter()
                    .any(|h| matches!(h, FHook::Prerouting | FHook::Input))
                {
                    return Err(
                        "xgate clamps the MSS of forwarded and the router's own SYNs \
                                (forward, output, postrouting)"
                            .into(),
                    );
                }
                if !matches!(cx.stage, Stage::Filter | Stage::Mangle) {
                    return Err("MSS clamping runs in filter chains".into());
                }
                match value {
                    Expr::Rt(RtKey::Mtu) => Ok(TargetSpec::Mss(filter::MSS_PMTU)),
                    _ => match u16::try_from(const_int(value)?) {
                        Ok(n) if n > 0 => Ok(TargetSpec::Mss(n)),
                        _ => Err("maxseg size: 1..65535 or rt mtu".into()),
                    },
                }
            }
            Expr::TcpOption { .. } => Err("xgate sets the maxseg size of tcp options only".into()),
            _ => Err("xgate sets meta mark, ct mark and ct helper".into()),
        }
    }

    /// Emits the compiled statements of one rule into chain `id`.
    fn emit(
        &mut self,
        cx: &Ctx<'_>,
        line: usize,
        id: ChainId,
        steps: &[Step],
    ) -> R<Vec<(u32, u32)>> {
        let rules = self.expand(cx, line, steps)?;
        if rules.len() > MAX_EXPANSION {
            return Err(format!("expands into more than {MAX_EXPANSION} rules"));
        }
        let mut slots = Vec::new();
        for (r, primary) in rules {
            let pos = self.add(id, r);
            if primary {
                slots.push((id.index() as u32, pos));
            }
        }
        Ok(slots)
    }

    /// The rules one nft rule becomes (see the module comment).
    /// Each with whether it counts the nft rule (one per packet matching
    /// it: an alternative, or the first of repeated statements).
    fn expand(&mut self, cx: &Ctx<'_>, line: usize, steps: &[Step]) -> R<Vec<(RuleSpec, bool)>> {
        let rule = |exprs: Vec<FExpr>, target: TargetSpec| {
            (
                RuleSpec {
                    line,
                    exprs,
                    target,
                },
                true,
            )
        };
        // Leading matches; AnyOf multiplies them.
        let mut heads: Vec<Vec<FExpr>> = vec![Vec::new()];
        let mut i = 0;
        while i < steps.len() {
            match &steps[i] {
                Step::Match(e) => heads.iter_mut().for_each(|h| h.extend(e.iter().cloned())),
                Step::AnyOf(alts) => {
                    if heads.iter().flatten().any(FExpr::stateful) {
                        return Err("a limit or numgen before a set of concatenations".into());
                    }
                    heads = heads
                        .iter()
                        .flat_map(|h| {
                            alts.iter().map(move |a| {
                                let mut h = h.clone();
                                h.extend(a.iter().cloned());
                                h
                            })
                        })
                        .collect();
                    if heads.len() > MAX_EXPANSION {
                        return Err(format!("expands into more than {MAX_EXPANSION} rules"));
                    }
                }
                Step::NoneOf(alts) => {
                    // An anonymous chain returns for each alternative, then
                    // runs the rest of the rule.
                    let anon = self.anon_chain(cx);
                    self.none_of(cx, line, anon, alts, &steps[i + 1..])?;
                    return Ok(heads
                        .into_iter()
                        .map(|h| rule(h, TargetSpec::Jump(anon)))
                        .collect());
                }
                _ => break,
            }
            i += 1;
        }
        let rest = &steps[i..];
        let mut out = Vec::new();
        match rest {
            [] => out.extend(heads.into_iter().map(|h| rule(h, TargetSpec::None))),
            [Step::Action(t) | Step::Verdict(t)] => {
                out.extend(heads.into_iter().map(|h| rule(h, t.clone())))
            }
            [Step::Vmap(alts)] => {
                let stateful = heads.iter().flatten().any(FExpr::stateful);
                if stateful && heads.len() == 1 && alts.len() > 1 {
                    // The limit must be taken once: the alternatives go to
                    // an anonymous chain.
                    if alts.iter().any(|(_, t)| *t == TargetSpec::Return) {
                        return Err("a limit before a verdict map with return".into());
                    }
                    let anon = self.anon_chain(cx);
                    for (e, t) in alts {
                        self.add_anon(anon, rule(e.clone(), t.clone()).0);
                    }
                    out.push(rule(heads.pop().expect("one"), TargetSpec::Jump(anon)));
                } else {
                    for h in heads {
                        for (e, t) in alts {
                            let mut x = h.clone();
                            x.extend(e.iter().cloned());
                            out.push(rule(x, t.clone()));
                        }
                    }
                }
            }
            _ => {
                // Several statements: repeat the matches when exact.
                let writes: HashSet<Field> = rest
                    .iter()
                    .filter_map(|s| match s {
                        Step::Action(t) | Step::Verdict(t) => Some(writes(t)),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                let reads_written = |e: &[FExpr]| {
                    e.iter()
                        .any(|x| x.stateful() || x.field().is_some_and(|f| writes.contains(&f)))
                };
                let exact = !heads.iter().any(|h| reads_written(h))
                    && !rest.iter().any(|s| match s {
                        Step::Match(e) => reads_written(e),
                        Step::AnyOf(_) | Step::NoneOf(_) => true,
                        _ => false,
                    });
                if exact {
                    for h in heads {
                        let first = out.len();
                        let mut guard = h;
                        for s in rest {
                            match s {
                                Step::Match(e) => guard.extend(e.iter().cloned()),
                                Step::Action(t) | Step::Verdict(t) => {
                                    out.push(rule(guard.clone(), t.clone()))
                                }
                                Step::Vmap(alts) => {
                                    for (e, t) in alts {
                                        let mut x = guard.clone();
                                        x.extend(e.iter().cloned());
                                        out.push(rule(x, t.clone()));
                                    }
                                }
                                Step::AnyOf(_) | Step::NoneOf(_) => {
                                    unreachable!("excluded above")
                                }
                            }
                        }
                        // The same packets again: counted once.
                        for (_, primary) in out.iter_mut().skip(first + 1) {
                            *primary = false;
                        }
                    }
                } else {
                    // Anonymous chains hold the statements: each match
                    // is evaluated once, in order.
                    let last_return = matches!(
                        rest.last(),
                        Some(Step::Verdict(TargetSpec::Return | TargetSpec::Goto(_)))
                    );
                    if last_return {
                        return Err("this order of statements with return or goto after a \
                                    statement that changes what the rule reads is not \
                                    supported yet"
                            .into());
                    }
                    let anon = self.anon_chain(cx);
                    self.anon_emit(cx, line, anon, rest)?;
                    out.extend(heads.into_iter().map(|h| rule(h, TargetSpec::Jump(anon))));
                }
            }
        }
        Ok(out)
    }

    /// `steps` in anonymous chain `id`: statements in order, each
    /// unconditional; a match sends the rest to a nested chain.
    fn anon_emit(&mut self, cx: &Ctx<'_>, line: usize, id: ChainId, steps: &[Step]) -> R<()> {
        let rule = |exprs: Vec<FExpr>, target: TargetSpec| RuleSpec {
            line,
            exprs,
            target,
        };
        for (k, s) in steps.iter().enumerate() {
            match s {
                Step::Action(t) | Step::Verdict(t) => {
                    self.add_anon(id, rule(Vec::new(), t.clone()))
                }
                Step::Vmap(alts) => {
                    for (e, t) in alts {
                        self.add_anon(id, rule(e.clone(), t.clone()));
                    }
                }
                Step::NoneOf(alts) => {
                    return self.none_of(cx, line, id, alts, &steps[k + 1..]);
                }
                Step::Match(_) | Step::AnyOf(_) => {
                    let alts = match s {
                        Step::Match(e) => vec![e.clone()],
                        Step::AnyOf(a) => a.clone(),
                        _ => unreachable!(),
                    };
                    let nested = self.anon_chain(cx);
                    for a in alts {
                        self.add_anon(id, rule(a, TargetSpec::Jump(nested)));
                    }
                    return self.anon_emit(cx, line, nested, &steps[k + 1..]);
                }
            }
        }
        Ok(())
    }

    /// In chain `id`: return for each of `alts`, then `rest`.
    fn none_of(
        &mut self,
        cx: &Ctx<'_>,
        line: usize,
        id: ChainId,
        alts: &[Vec<FExpr>],
        rest: &[Step],
    ) -> R<()> {
        if matches!(
            rest.last(),
            Some(Step::Verdict(TargetSpec::Return | TargetSpec::Goto(_)))
        ) {
            return Err("return or goto after a negated concatenation is not supported yet".into());
        }
        for a in alts {
            self.add_anon(
                id,
                RuleSpec {
                    line,
                    exprs: a.clone(),
                    target: TargetSpec::Return,
                },
            );
        }
        self.anon_emit(cx, line, id, rest)
    }

    /// A rule of an anonymous chain (counted by the rule that jumps there).
    fn add_anon(&mut self, id: ChainId, spec: RuleSpec) {
        self.add(id, spec);
    }

    fn anon_chain(&mut self, cx: &Ctx<'_>) -> ChainId {
        self.anon += 1;
        self.b
            .user_chain(cx.family, cx.stage, &format!("{}#{}", cx.chain, self.anon))
    }
}

/// The fields a target writes.
fn writes(t: &TargetSpec) -> Vec<Field> {
    match t {
        TargetSpec::Mark { .. } | TargetSpec::RestoreMark { .. } => vec![Field::Mark],
        TargetSpec::CtMark { .. } | TargetSpec::SaveMark { .. } => vec![Field::CtMark],
        TargetSpec::Notrack => vec![Field::CtState],
        _ => Vec::new(),
    }
}

/// `x set EXPR` where EXPR is a number or `x` under `|`, `&`, `^` with
/// numbers, in any nesting (`ct mark set ct mark & 0xf0 | 0x01`): as
/// `(value, mask)` of `x = (x & !mask) ^ value`, composed operator by
/// operator.
fn mark_op(same: &Expr, e: &Expr) -> R<(u32, u32)> {
    if e == same {
        return Ok((0, 0));
    }
    match e {
        Expr::Const(_) => Ok((const_int(e)? as u32, u32::MAX)),
        Expr::Binop { op, left, right } => {
            let (v, m) = mark_op(same, left)?;
            let c = const_int(right)? as u32;
            Ok(match op {
                BinOp::Or => ((v & !c) | c, m | c),
                BinOp::And => (v & c, m | !c),
                BinOp::Xor => (v ^ c, m),
                _ => return Err("mark set: |, & or ^ with a number".into()),
            })
        }
        _ => Err("mark set: a number, or the mark with |, & or ^".into()),
    }
}

/// With a `numgen`/`jhash` key, the first alternative draws the number
/// the others compare (alternatives run in order, so it is drawn once per
/// packet reaching them).
fn drawn_once(key: &Expr, alts: &mut [(Vec<FExpr>, TargetSpec)]) -> R<()> {
    if let (Some(d), Some(first)) = (draw_of(key)?, alts.first_mut()) {
        first.0.insert(0, d);
    }
    Ok(())
}

/// The index of chain `name` in `t`.
fn chain_index(t: &TableState, name: &str) -> usize {
    t.chains
        .iter()
        .position(|c| c.name == name)
        .unwrap_or(usize::MAX)
}

/// The [`hash_fields`] bits of a key (a field or a concatenation:
/// addresses, ports, the protocol) and the expressions its payloads
/// depend on (`tcp dport`: the protocol is TCP; `ip saddr`: IPv4).
fn key_fields(k: &Expr) -> R<(u8, Vec<FExpr>)> {
    let parts: Vec<&Expr> = match k {
        Expr::Concat(p) => p.iter().collect(),
        one => vec![one],
    };
    let mut fields = 0u8;
    let mut deps = Vec::new();
    for p in parts {
        let bit = match p {
            Expr::Payload {
                field: PayloadField::Saddr,
                proto: Proto::Ip | Proto::Ip6,
            } => hash_fields::SADDR,
            Expr::Payload {
                field: PayloadField::Daddr,
                proto: Proto::Ip | Proto::Ip6,
            } => hash_fields::DADDR,
            Expr::Payload {
                field: PayloadField::Sport,
                ..
            } => hash_fields::SPORT,
            Expr::Payload {
                field: PayloadField::Dport,
                ..
            } => hash_fields::DPORT,
            Expr::Payload {
                field: PayloadField::Protocol | PayloadField::Nexthdr,
                ..
            }
            | Expr::Meta(MetaKey::L4proto) => hash_fields::L4PROTO,
            _ => {
                return Err("xgate hashes keys of addresses, ports and the protocol".into());
            }
        };
        if fields & bit != 0 {
            return Err("a key naming one kind of field twice".into());
        }
        fields |= bit;
        if let Expr::Payload { proto, field } = p {
            deps.extend(payload(*proto, *field)?.deps);
        }
    }
    Ok((fields, deps))
}

/// A dynamic set's declared element as key values (addresses to `src`
/// then `dst`, ports to `sport` then `dport`) with their field bits.
fn element_key(e: &Expr) -> R<(u8, KeyVals)> {
    let parts: Vec<&Expr> = match e {
        Expr::Concat(p) => p.iter().collect(),
        one => vec![one],
    };
    let (mut k, mut fields) = (KeyVals::default(), 0u8);
    let (mut addrs, mut ports) = (0, 0);
    for p in parts {
        let Expr::Const(c) = p else {
            return Err(
                "a dynamic set's elements are single values (no ranges or prefixes)".into(),
            );
        };
        match (&c.value, c.ty) {
            (Value::V4(_) | Value::V6(_), _) => {
                let a = const_value(c)?;
                if addrs == 0 {
                    (k.src, fields) = (a, fields | hash_fields::SADDR);
                } else {
                    (k.dst, fields) = (a, fields | hash_fields::DADDR);
                }
                addrs += 1;
            }
            (Value::Int(n), DataType::InetService) => {
                if ports == 0 {
                    (k.sport, fields) = (*n as u16, fields | hash_fields::SPORT);
                } else {
                    (k.dport, fields) = (*n as u16, fields | hash_fields::DPORT);
                }
                ports += 1;
            }
            (Value::Int(n), DataType::InetProto) => {
                (k.proto, fields) = (*n as u8, fields | hash_fields::L4PROTO);
            }
            _ => return Err("a dynamic set's key: addresses, ports, a protocol".into()),
        }
    }
    Ok((fields, k))
}

/// The [`FExpr::Draw`] a `numgen` / `jhash` / `symhash` key stands for.
fn draw_of(e: &Expr) -> R<Option<FExpr>> {
    Ok(Some(match e {
        Expr::Numgen {
            random,
            modulus,
            offset,
        } => FExpr::Draw {
            kind: if *random {
                DrawKind::Random
            } else {
                DrawKind::Inc
            },
            modulus: *modulus,
            offset: *offset,
        },
        Expr::Hash {
            key,
            modulus,
            seed,
            offset,
        } => {
            let kind = match key {
                None => DrawKind::Hash {
                    fields: 0,
                    seed: seed.unwrap_or(0),
                    symmetric: true,
                },
                Some(k) => {
                    let (fields, _) = key_fields(k)?;
                    DrawKind::Hash {
                        fields,
                        seed: seed.unwrap_or(0),
                        symmetric: false,
                    }
                }
            };
            FExpr::Draw {
                kind,
                modulus: *modulus,
                offset: *offset,
            }
        }
        _ => return Ok(None),
    }))
}

fn wide_or_scalar(field: Field, neg: bool, lo: u128, hi: u128) -> FExpr {
    FExpr::Cmp {
        field,
        neg,
        mask: if field.wide() {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        },
        lo,
        hi,
    }
}

fn addr(c: &Const) -> R<IpAddr> {
    match c.value {
        Value::V4(a) => Ok(IpAddr::V4(a)),
        Value::V6(a) => Ok(IpAddr::V6(a)),
        _ => Err("an address".into()),
    }
}

fn from_key(k: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((k as u32).into())
    } else {
        IpAddr::V6(k.into())
    }
}

fn limit(l: &Limit) -> R<FExpr> {
    if l.bytes {
        return Err("limit rate in bytes is not supported yet (packets only)".into());
    }
    let rate = u32::try_from(l.rate).map_err(|_| "limit rate too large")?;
    let burst = l.burst.unwrap_or(5);
    Ok(FExpr::Limit {
        neg: l.over,
        spec: LimitSpec {
            rate,
            per_ns: l.per_secs.saturating_mul(1_000_000_000),
            burst: u32::try_from(burst.max(1)).map_err(|_| "limit burst too large")?,
        },
    })
}

fn concat_row(e: &Expr) -> R<Vec<Expr>> {
    match e {
        Expr::Concat(v) => Ok(v.clone()),
        _ => Err("a set of concatenations".into()),
    }
}

fn collect_strings(e: &Expr, table: &TableState, out: &mut Vec<String>) -> R<()> {
    match e {
        Expr::Const(Const {
            value: Value::Str(s),
            ..
        }) => out.push(s.clone()),
        Expr::Set(elems) => {
            for el in elems {
                collect_strings(&el.key, table, out)?;
            }
        }
        Expr::SetRef(n) => {
            for el in &named_set(table, n)?.elements {
                collect_strings(&el.key, table, out)?;
            }
        }
        _ => return Err("interface names".into()),
    }
    Ok(())
}

/// The chains a statement names in its verdicts.
fn verdict_targets(t: &TableState, s: &Stmt, out: &mut Vec<(Loc, String)>) {
    let mut from_verdict = |v: &Verdict, loc: Loc| {
        if let Verdict::Jump(c) | Verdict::Goto(c) = v {
            out.push((loc, c.clone()));
        }
    };
    match &s.kind {
        StmtKind::Verdict(v) => from_verdict(v, s.loc),
        StmtKind::VerdictMap { map, .. } => {
            let elems: &[Element] = match map {
                Expr::Set(e) => e,
                Expr::SetRef(n) => t.set(n).map_or(&[], |s| &s.elements[..]),
                _ => &[],
            };
            for el in elems {
                if let Some(Expr::Verdict(v)) = &el.value {
                    from_verdict(v, el.loc);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply((v, m): (u32, u32), x: u32) -> u32 {
        (x & !m) ^ v
    }

    #[test]
    fn mark_operations_compose() {
        let mark = Expr::Meta(MetaKey::Mark);
        let c = |n: u64| {
            Box::new(Expr::Const(Const {
                ty: DataType::Mark,
                value: Value::Int(n),
                symbol: None,
            }))
        };
        let bin = |op, l: Expr, n| Expr::Binop {
            op,
            left: Box::new(l),
            right: c(n),
        };
        let and_or = bin(BinOp::Or, bin(BinOp::And, mark.clone(), 0xf0), 0x01);
        for x in [0u32, 0xff, 0x1234_56f3, u32::MAX] {
            assert_eq!(apply(mark_op(&mark, &and_or).unwrap(), x), (x & 0xf0) | 1);
            let xor = bin(BinOp::Xor, bin(BinOp::Or, mark.clone(), 0x300), 0x101);
            assert_eq!(apply(mark_op(&mark, &xor).unwrap(), x), (x | 0x300) ^ 0x101);
            assert_eq!(apply(mark_op(&mark, &c(7)).unwrap(), x), 7);
        }
        assert!(mark_op(&mark, &bin(BinOp::Shl, mark.clone(), 1)).is_err());
    }
}
