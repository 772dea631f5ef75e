//! Lowering: each [`RuleSpec`] becomes one fixed-size [`Rule`] (its
//! matches, then its target), with interface sets, multiport lists, LOG
//! prefixes and NAT actions kept in the side arrays of the ruleset.

use super::ruleset::{Action, FAM_V4, FAM_V6, Rule, Stat, m};
use super::spec::{
    BuildError, IfaceMatch, MatchSpec, Neg, PortDir, RuleSpec, StatisticSpec, TargetSpec,
};
use super::{AddrRange, Family, NatAction, RejectKind};

/// Most entries of `-m multiport`.
const MAX_MULTIPORT: usize = 15;

/// Lowers [`RuleSpec`]s into [`Rule`]s, filling the side arrays.
pub(super) struct Compiler {
    n_ifaces: usize,
    if_words: usize,
    pub(super) ifsets: Vec<u64>,
    pub(super) mports: Vec<(u16, u16)>,
    pub(super) nth: u32,
    pub(super) log_prefixes: Vec<Box<str>>,
    pub(super) nat: Vec<NatAction>,
    /// The rule being lowered is in an IPv4 or IPv6 ruleset.
    forced: bool,
}

impl Compiler {
    /// For rules over `n_ifaces` interfaces.
    pub(super) fn new(n_ifaces: usize) -> Self {
        Compiler {
            n_ifaces,
            if_words: (n_ifaces + 1).div_ceil(64),
            ifsets: Vec::new(),
            mports: Vec::new(),
            nth: 0,
            log_prefixes: Vec::new(),
            nat: Vec::new(),
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
        let mut r = Rule {
            present: 0,
            negated: 0,
            family: match family {
                Family::Inet => FAM_V4 | FAM_V6,
                Family::V4 => FAM_V4,
                Family::V6 => FAM_V6,
            },
            proto: 0,
            flags_mask: 0,
            flags_comp: 0,
            ctstate: 0,
            icmp_any: false,
            icmp_type: 0,
            icmp_code: (0, 0),
            mport_dir: PortDir::Either,
            mport_len: 0,
            mport_off: 0,
            sport: (0, 0),
            dport: (0, 0),
            iif: 0,
            oif: 0,
            mark: (0, 0),
            src: (0, 0),
            dst: (0, 0),
            stat: Stat::None,
            action: Action::None,
        };
        self.matches(&spec.matches, &mut r, spec.line)?;
        r.action = self.action(&spec.target, &mut r, spec.line)?;
        Ok(r)
    }

    /// The matches of `ms` into `r`.
    fn matches(&mut self, ms: &MatchSpec, r: &mut Rule, line: usize) -> Result<(), BuildError> {
        if let Some(n) = &ms.iif {
            mark_present(r, m::IIF, n);
            r.iif = self.ifset(&n.value, line)?;
        }
        if let Some(n) = &ms.oif {
            mark_present(r, m::OIF, n);
            r.oif = self.ifset(&n.value, line)?;
        }
        for (bit, p, what) in [(m::SRC, &ms.src, "-s"), (m::DST, &ms.dst, "-d")] {
            if let Some(n) = p {
                let max = if n.value.v4 { 32 } else { 128 };
                if n.value.len > max {
                    return Err(BuildError::new(
                        line,
                        format!("{what}: prefix length {} too long", n.value.len),
                    ));
                }
                narrow(r, self.forced, n.value.v4, what, line)?;
                mark_present(r, bit, n);
                let nm = n.value.net_mask();
                if bit == m::SRC {
                    r.src = nm;
                } else {
                    r.dst = nm;
                }
            }
        }
        if let Some(n) = &ms.proto {
            mark_present(r, m::PROTO, n);
            r.proto = n.value;
            match n.value {
                1 => narrow(r, self.forced, true, "-p icmp", line)?,
                58 => narrow(r, self.forced, false, "-p icmpv6", line)?,
                _ => {}
            }
        }
        if let Some(n) = &ms.sport {
            mark_present(r, m::SPORT, n);
            r.sport = range(n.value, "--sport", line)?;
        }
        if let Some(n) = &ms.dport {
            mark_present(r, m::DPORT, n);
            r.dport = range(n.value, "--dport", line)?;
        }
        if let Some(n) = &ms.tcp_flags {
            mark_present(r, m::FLAGS, n);
            (r.flags_mask, r.flags_comp) = n.value;
        }
        if let Some(n) = &ms.icmp {
            mark_present(r, m::ICMP, n);
            narrow(r, self.forced, !n.value.v6, "--icmp-type", line)?;
            match (n.value.typ, n.value.code) {
                (None, _) => r.icmp_any = true,
                (Some(t), c) => {
                    r.icmp_type = t;
                    r.icmp_code = c.map_or((0, 255), |c| (c, c));
                }
            }
        }
        if let Some(n) = &ms.multiport {
            if n.value.ports.is_empty() || n.value.ports.len() > MAX_MULTIPORT {
                return Err(BuildError::new(
                    line,
                    format!(
                        "-m multiport needs 1 to {MAX_MULTIPORT} ports, not {}",
                        n.value.ports.len()
                    ),
                ));
            }
            mark_present(r, m::MPORT, n);
            r.mport_dir = n.value.dir;
            r.mport_off = self.mports.len() as u32;
            r.mport_len = n.value.ports.len() as u8;
            for p in &n.value.ports {
                self.mports.push(range(*p, "multiport", line)?);
            }
        }
        if let Some(n) = &ms.ctstate {
            mark_present(r, m::CT, n);
            r.ctstate = n.value;
        }
        if let Some(n) = &ms.mark {
            mark_present(r, m::MARK, n);
            r.mark = n.value;
        }
        if let Some(n) = &ms.statistic {
            mark_present(r, m::STAT, n);
            r.stat = match n.value {
                StatisticSpec::Nth { every, packet } => {
                    if every == 0 || packet >= every {
                        return Err(BuildError::new(
                            line,
                            format!(
                                "statistic nth: --packet {packet} must be below --every {every}"
                            ),
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
            };
        }
        Ok(())
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

fn mark_present<T>(r: &mut Rule, bit: u16, n: &Neg<T>) {
    r.present |= bit;
    if n.negated {
        r.negated |= bit;
    }
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
