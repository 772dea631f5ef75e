//! Lowering: each [`RuleSpec`] becomes one fixed-size [`Rule`] and its
//! run of [`Op`]s (its expressions, cheap ones first within each run of
//! stateless ones), then its target; interface sets, range lists, LOG
//! prefixes, limits and NAT actions go to the side arrays of the ruleset.

use super::expr::{DrawKind, Expr, Field, LimitSpec};
use super::ruleset::{
    Action, DRAW_HASH, DRAW_INC, DRAW_RANDOM, DRAW_SYMHASH, FAM_V4, FAM_V6, Op, Rule, Stat,
};
use super::spec::{BuildError, IfaceMatch, RuleSpec, StatisticSpec, TargetSpec};
use super::{AddrRange, Family, NatAction, RejectKind};

/// Most ranges of one list (`-m multiport` takes 15; sets are data).
const MAX_RANGES: usize = 65536;

/// Most expressions of one rule.
const MAX_OPS: usize = 64;

/// Lowers [`RuleSpec`]s into [`Rule`]s, filling the side arrays.
pub(super) struct Compiler {
    n_ifaces: usize,
    if_words: usize,
    pub(super) ops: Vec<Op>,
    pub(super) ifsets: Vec<u64>,
    pub(super) ranges: Vec<(u128, u128)>,
    pub(super) nth: u32,
    pub(super) limits: Vec<LimitSpec>,
    pub(super) log_prefixes: Vec<Box<str>>,
    pub(super) nat: Vec<NatAction>,
    /// Dynamic sets by name, in first-use order.
    pub(super) dynsets: Vec<std::sync::Arc<super::dynset::DynSetSpec>>,
    /// ipsets, in first-use order (one entry per set however many rules
    /// name it).
    pub(super) ipsets: Vec<std::sync::Arc<super::ipset::IpSetTable>>,
    pub(super) needs: u8,
    /// The rule being lowered is in an IPv4 or IPv6 ruleset.
    forced: bool,
}

impl Compiler {
    /// For rules over `n_ifaces` interfaces.
    pub(super) fn new(n_ifaces: usize) -> Self {
        Compiler {
            n_ifaces,
            if_words: (n_ifaces + 1).div_ceil(64),
            ops: Vec::new(),
            ifsets: Vec::new(),
            ranges: Vec::new(),
            nth: 0,
            limits: Vec::new(),
            log_prefixes: Vec::new(),
            nat: Vec::new(),
            dynsets: Vec::new(),
            ipsets: Vec::new(),
            needs: 0,
            forced: false,
        }
    }

    fn ifset(&mut self, m: &IfaceMatch, line: usize) -> Result<u32, BuildError> {
        let off = self.ifsets.len();
        self.ifsets.resize(off + self.if_words, 0);
        let mut set = |bit: usize| self.ifsets[off + bit / 64] |= 1 << (bit % 64);
        for &i in &m.ifaces {
            if i as usize >= self.n_ifaces {
                return Err(BuildError::new(line, format!("no interface {i}")));
            }
            set(i as usize);
        }
        if m.none {
            set(self.n_ifaces);
        }
        Ok(off as u32)
    }

    /// `family`: the ruleset the rule is in; a rule of an IPv4 or IPv6
    /// ruleset applies to that family only, and naming the other family's
    /// address, protocol or reject is an error.
    pub(super) fn rule(&mut self, spec: &RuleSpec, family: Family) -> Result<Rule, BuildError> {
        self.forced = family != Family::Inet;
        let line = spec.line;
        if spec.exprs.len() > MAX_OPS {
            return Err(BuildError::new(
                line,
                format!("more than {MAX_OPS} expressions in one rule"),
            ));
        }
        let mut r = Rule {
            family: match family {
                Family::Inet => FAM_V4 | FAM_V6,
                Family::V4 => FAM_V4,
                Family::V6 => FAM_V6,
            },
            ops_start: self.ops.len() as u32,
            ops_len: 0,
            action: Action::None,
        };
        for e in &spec.exprs {
            if let Some(op) = self.expr(e, &mut r, line)? {
                self.ops.push(op);
            }
        }
        // Cheap stateless ones first, never across a stateful one.
        let ops = &mut self.ops[r.ops_start as usize..];
        for run in ops.split_mut(|o| o.cost() == u8::MAX) {
            run.sort_by_key(Op::cost);
        }
        r.ops_len = ops.len() as u16;
        r.action = self.action(&spec.target, &mut r, line)?;
        Ok(r)
    }

    /// One expression: its op, or `None` when it only narrows the family.
    fn expr(&mut self, e: &Expr, r: &mut Rule, line: usize) -> Result<Option<Op>, BuildError> {
        if let Some(f) = e.field() {
            self.needs |= f.needs();
        }
        if let Some(f) = match e {
            Expr::InRanges { alt: Some(a), .. } => Some(*a),
            _ => None,
        } {
            self.needs |= f.needs();
        }
        Ok(Some(match e {
            &Expr::Cmp {
                field: Field::NfProto,
                neg,
                mask,
                lo,
                hi,
            } if mask == u128::from(u32::MAX) && lo == hi && (lo == 2 || lo == 10) => {
                narrow(r, self.forced, (lo == 2) != neg, "the family", line)?;
                return Ok(None);
            }
            &Expr::Cmp {
                field: Field::Reg,
                neg,
                mask,
                lo,
                hi,
            } => {
                if mask != u128::from(u32::MAX) || lo > hi || hi > u128::from(u32::MAX) {
                    return Err(BuildError::new(
                        line,
                        "the number drawn is compared with a plain range",
                    ));
                }
                Op::Reg {
                    neg,
                    lo: lo as u32,
                    hi: hi as u32,
                }
            }
            &Expr::Cmp {
                field,
                neg,
                mask,
                lo,
                hi,
            } => {
                if field.wide() {
                    if lo != hi {
                        return Err(BuildError::new(
                            line,
                            format!("{} cannot be compared by range here", field.name()),
                        ));
                    }
                    if field.is_addr() {
                        narrow(r, self.forced, is_v4(mask, lo), field.name(), line)?;
                    }
                    Op::Wide {
                        field,
                        neg,
                        mask,
                        value: lo & mask,
                    }
                } else {
                    let max = u128::from(field.max());
                    if lo > hi || hi > max || mask > u128::from(u32::MAX) {
                        return Err(BuildError::new(
                            line,
                            format!("{} range {lo}:{hi} is reversed or too large", field.name()),
                        ));
                    }
                    // In an inet ruleset `-p icmp` and `! -p icmp` alike
                    // are IPv4 rules; in an IPv6 one (ip6tables-save writes
                    // `-p icmp`) protocol 1 is a number like any other.
                    if field == Field::L4Proto && lo == hi && !self.forced {
                        match lo {
                            1 => narrow(r, self.forced, true, "protocol icmp", line)?,
                            58 => narrow(r, self.forced, false, "protocol icmpv6", line)?,
                            _ => {}
                        }
                    }
                    Op::Cmp {
                        field,
                        neg,
                        mask: mask as u32,
                        lo: lo as u32,
                        hi: hi as u32,
                    }
                }
            }
            &Expr::Bits { field, neg, bits } => Op::Bits { field, neg, bits },
            Expr::Iface {
                out,
                neg,
                set,
                phys,
            } => Op::Iface {
                out: *out,
                phys: *phys,
                neg: *neg,
                off: self.ifset(set, line)?,
            },
            Expr::InRanges {
                field,
                alt,
                neg,
                ranges,
            } => {
                if ranges.is_empty() || ranges.len() > MAX_RANGES {
                    return Err(BuildError::new(
                        line,
                        format!("a list of 1 to {MAX_RANGES} values, not {}", ranges.len()),
                    ));
                }
                for &(lo, hi) in ranges {
                    if lo > hi || (!field.wide() && hi > u128::from(field.max())) {
                        return Err(BuildError::new(
                            line,
                            format!("{} range {lo}:{hi} is reversed or too large", field.name()),
                        ));
                    }
                }
                if field.is_addr() {
                    let v4 = ranges
                        .iter()
                        .all(|&(lo, hi)| lo >> 32 == 0xffff && hi >> 32 == 0xffff);
                    narrow(r, self.forced, v4, field.name(), line)?;
                }
                let off = self.ranges.len() as u32;
                let merged = merge(ranges);
                let len = merged.len() as u32;
                self.ranges.extend(merged);
                Op::InRanges {
                    field: *field,
                    alt: *alt,
                    neg: *neg,
                    off,
                    len,
                }
            }
            Expr::IpSet {
                set,
                field,
                port,
                neg,
            } => {
                if !field.is_addr()
                    || set.has_ports() != port.is_some()
                    || port.is_some_and(|f| !matches!(f, Field::Sport | Field::Dport))
                {
                    return Err(BuildError::new(
                        line,
                        "an ipset is looked up by an address (and a port for hash:ip,port)",
                    ));
                }
                if let Some(f) = port {
                    self.needs |= f.needs();
                }
                narrow(r, self.forced, set.is_v4(), field.name(), line)?;
                let i = match self
                    .ipsets
                    .iter()
                    .position(|s| std::sync::Arc::ptr_eq(s, set))
                {
                    Some(i) => i,
                    None => {
                        self.ipsets.push(set.clone());
                        self.ipsets.len() - 1
                    }
                };
                Op::IpSet {
                    set: u16::try_from(i)
                        .map_err(|_| BuildError::new(line, "more than 65535 ipsets"))?,
                    field: *field,
                    port: *port,
                    neg: *neg,
                }
            }
            Expr::Statistic { neg, spec } => Op::Stat {
                neg: *neg,
                stat: self.statistic(spec, line)?,
            },
            &Expr::Draw {
                kind,
                modulus,
                offset,
            } => {
                if modulus == 0 {
                    return Err(BuildError::new(line, "mod 0"));
                }
                let (kind, fields, arg) = match kind {
                    DrawKind::Inc => {
                        self.nth += 1;
                        (DRAW_INC, 0, self.nth - 1)
                    }
                    DrawKind::Random => (DRAW_RANDOM, 0, 0),
                    DrawKind::Hash {
                        fields,
                        seed,
                        symmetric,
                    } => (
                        if symmetric { DRAW_SYMHASH } else { DRAW_HASH },
                        fields,
                        seed,
                    ),
                };
                Op::Draw {
                    kind,
                    fields,
                    modulus,
                    offset,
                    arg,
                }
            }
            Expr::SetLookup { set, fields, neg } => Op::SetLookup {
                set: self.dynset(set, line)?,
                fields: *fields,
                neg: *neg,
            },
            Expr::SetUpdate {
                set,
                fields,
                refresh,
                timeout_ns,
                limit,
                full_holds,
            } => {
                let set = self.dynset(set, line)?;
                let (limit, over) = match limit {
                    Some((spec, over)) => {
                        if spec.rate == 0 || spec.per_ns == 0 || spec.burst == 0 {
                            return Err(BuildError::new(
                                line,
                                "limit: rate and burst must be at least 1",
                            ));
                        }
                        self.limits.push(*spec);
                        ((self.limits.len() - 1) as u32, *over)
                    }
                    None => (u32::MAX, false),
                };
                Op::SetUpdate {
                    set,
                    fields: *fields,
                    refresh: *refresh,
                    over,
                    full_holds: *full_holds,
                    timeout_ms: u32::try_from(timeout_ns / 1_000_000).unwrap_or(u32::MAX),
                    limit,
                }
            }
            Expr::Recent {
                set,
                fields,
                mode,
                seconds,
                hitcount,
                neg,
            } => Op::Recent {
                set: self.dynset(set, line)?,
                fields: *fields,
                mode: *mode as u8,
                neg: *neg,
                hitcount: *hitcount,
                seconds: *seconds,
            },
            Expr::Limit { neg, spec } => {
                if spec.rate == 0 || spec.per_ns == 0 || spec.burst == 0 {
                    return Err(BuildError::new(
                        line,
                        "limit: rate and burst must be at least 1",
                    ));
                }
                self.limits.push(*spec);
                Op::Limit {
                    neg: *neg,
                    id: (self.limits.len() - 1) as u32,
                }
            }
        }))
    }

    /// The index of dynamic set `spec` (by name: every expression naming
    /// it shares it; the first declaration stands).
    fn dynset(
        &mut self,
        spec: &std::sync::Arc<super::dynset::DynSetSpec>,
        line: usize,
    ) -> Result<u16, BuildError> {
        let i = match self.dynsets.iter().position(|s| s.name == spec.name) {
            Some(i) => i,
            None => {
                if spec.capacity == 0 || spec.capacity > 1 << 24 {
                    return Err(BuildError::new(
                        line,
                        format!("set {}: size 1 to {}", spec.name, 1 << 24),
                    ));
                }
                self.dynsets.push(spec.clone());
                self.dynsets.len() - 1
            }
        };
        u16::try_from(i).map_err(|_| BuildError::new(line, "more than 65535 dynamic sets"))
    }

    fn statistic(&mut self, spec: &StatisticSpec, line: usize) -> Result<Stat, BuildError> {
        Ok(match *spec {
            StatisticSpec::Nth { every, packet } => {
                if every == 0 || packet >= every {
                    return Err(BuildError::new(
                        line,
                        format!("statistic nth: --packet {packet} must be below --every {every}"),
                    ));
                }
                self.nth += 1;
                Stat::Nth {
                    every,
                    packet,
                    counter: self.nth - 1,
                }
            }
            StatisticSpec::Random { probability } => {
                if !(0.0..=1.0).contains(&probability) {
                    return Err(BuildError::new(
                        line,
                        format!("statistic random: probability {probability} not in 0..1"),
                    ));
                }
                Stat::Random {
                    threshold: (probability * 4_294_967_296.0).round() as u64,
                }
            }
        })
    }

    /// The action of `target`; a target of one family narrows `r`'s.
    fn action(
        &mut self,
        target: &TargetSpec,
        r: &mut Rule,
        line: usize,
    ) -> Result<Action, BuildError> {
        Ok(match target {
            TargetSpec::None => Action::None,
            TargetSpec::Accept => Action::Accept,
            TargetSpec::Drop => Action::Drop,
            TargetSpec::Return => Action::Return,
            TargetSpec::Jump(c) => Action::Jump(c.0),
            TargetSpec::Goto(c) => Action::Goto(c.0),
            TargetSpec::Reject(None) => Action::RejectDefault,
            TargetSpec::Reject(Some(k)) => {
                match k {
                    RejectKind::Icmp4 { .. } => narrow(r, self.forced, true, "REJECT", line)?,
                    RejectKind::Icmp6 { .. } => narrow(r, self.forced, false, "REJECT", line)?,
                    RejectKind::TcpReset => {}
                }
                Action::Reject(*k)
            }
            TargetSpec::Log { prefix, level } => {
                self.log_prefixes.push(prefix.as_str().into());
                Action::Log {
                    level: *level,
                    prefix: (self.log_prefixes.len() - 1) as u32,
                }
            }
            TargetSpec::Mark { value, mask } => Action::Mark {
                value: *value,
                mask: *mask,
            },
            TargetSpec::CtMark { value, mask } => {
                self.needs |= super::needs::CT;
                Action::CtMark {
                    value: *value,
                    mask: *mask,
                }
            }
            TargetSpec::Notrack => Action::Notrack,
            TargetSpec::Mss(v) => Action::Mss(*v),
            TargetSpec::Helper(k) => Action::Helper(*k),
            TargetSpec::SaveMark { nfmask, ctmask } => {
                self.needs |= super::needs::CT;
                Action::SaveMark {
                    nfmask: *nfmask,
                    ctmask: *ctmask,
                }
            }
            TargetSpec::RestoreMark { nfmask, ctmask } => {
                self.needs |= super::needs::CT;
                Action::RestoreMark {
                    nfmask: *nfmask,
                    ctmask: *ctmask,
                }
            }
            TargetSpec::Nat(a) => {
                let ports = match a {
                    NatAction::Snat { ports, .. }
                    | NatAction::Dnat { ports, .. }
                    | NatAction::Masquerade { ports }
                    | NatAction::Redirect { ports } => *ports,
                };
                if let Some(p) = ports {
                    range(p, "NAT port", line)?;
                }
                if let NatAction::Snat { addrs, .. } | NatAction::Dnat { addrs, .. } = a {
                    check_range(addrs).map_err(|e| BuildError::new(line, e))?;
                    narrow(r, self.forced, addrs.v4, "NAT address", line)?;
                }
                self.nat.push(*a);
                Action::Nat((self.nat.len() - 1) as u32)
            }
        })
    }
}

/// Narrows `r` to one family; an error if it is already the other one's.
fn narrow(r: &mut Rule, forced: bool, v4: bool, what: &str, line: usize) -> Result<(), BuildError> {
    let f = if v4 { FAM_V4 } else { FAM_V6 };
    if r.family & f == 0 {
        return Err(BuildError::new(
            line,
            if forced {
                format!(
                    "{what} is {} only, not allowed in the {} ruleset",
                    if v4 { "IPv4" } else { "IPv6" },
                    if v4 { "IPv6" } else { "IPv4" }
                )
            } else {
                format!("{what} mixes IPv4 and IPv6 in one rule")
            },
        ));
    }
    r.family = f;
    Ok(())
}

/// The ranges sorted, overlapping and adjacent ones merged.
fn merge(ranges: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(sorted.len());
    for (lo, hi) in sorted {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Whether an address compare names IPv4: its constant is IPv4-mapped
/// under a mask that covers the mapping (an IPv6 prefix inside
/// `::ffff:0:0/96` counts as IPv4).
fn is_v4(mask: u128, value: u128) -> bool {
    mask >> 32 == u128::MAX >> 32 && value >> 32 == 0xffff
}

/// An inclusive port range, not reversed.
fn range((lo, hi): (u16, u16), what: &str, line: usize) -> Result<(u16, u16), BuildError> {
    if lo > hi {
        Err(BuildError::new(
            line,
            format!("{what} range {lo}:{hi} is reversed"),
        ))
    } else {
        Ok((lo, hi))
    }
}

/// A NAT range is one family and not reversed.
fn check_range(a: &AddrRange) -> Result<(), String> {
    let mapped = |x: u128| x >> 32 == 0xffff;
    if a.v4 && !(mapped(a.lo) && mapped(a.hi)) {
        return Err("IPv4 NAT range holds a non-IPv4 address".into());
    }
    if !a.v4 && (mapped(a.lo) || mapped(a.hi)) {
        return Err("IPv6 NAT range holds an IPv4-mapped address".into());
    }
    if a.lo > a.hi {
        return Err("NAT address range is reversed".into());
    }
    Ok(())
}
