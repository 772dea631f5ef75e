//! `[firewall]` ruleset (the parsed iptables model) -> the dataplane's
//! compiled [`filter::Ruleset`].
//!
//! Resolves `-i`/`-o` names against the configured interfaces (an exact
//! name must exist; a `+` wildcard may match none), maps matches and
//! targets one to one, and refuses what xgate would silently not enforce:
//! rules in chains it never runs (nat INPUT/OUTPUT), `-o` where there is no output interface yet
//! (PREROUTING, INPUT) and `-i` where there is no input interface
//! (OUTPUT, POSTROUTING), NAT ranges of mixed families or wider than 65536
//! addresses, and call graphs deeper than the dataplane's stack. Every
//! error names the file, the rule's line and the field; all are returned
//! at once.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use xgate_dataplane::addr::ip_key;
use xgate_dataplane::conntrack::HelperKind;
use xgate_dataplane::filter::{
    self, AddrRange, Expr, Hook, IcmpMatch, IfaceMatch, MatchSpec, MultiportSpec, NatAction, Neg,
    Prefix, RejectKind, RuleSpec, RulesetBuilder, StatisticSpec, TableId, TargetSpec,
};
use xgate_dataplane::iface::Interfaces;

use crate::config::ConfigError;
use crate::iptables::{
    self as ipt, IcmpType, Iface, PortDir, PortRange, Protocol, RejectWith, Statistic, TableKind,
    Target,
};

/// Widest SNAT/DNAT address range (the NAT address registry's limit).
pub const MAX_NAT_RANGE: u128 = 65536;

/// Compiles `rs` (parsed from `file`) for `interfaces`; errors carry the
/// field `firewall.rules`.
pub fn compile_firewall(
    rs: &ipt::IptablesRuleset,
    interfaces: &Interfaces,
    file: &str,
) -> Result<filter::Ruleset, Vec<ConfigError>> {
    compile_firewall_with_field(rs, interfaces, file, ipt::FIELD)
}

/// Like [`compile_firewall`], with the error field chosen by the caller
/// (`firewall.rules_file` for a ruleset read from `rules_file`).
pub fn compile_firewall_with_field(
    rs: &ipt::IptablesRuleset,
    interfaces: &Interfaces,
    file: &str,
    field: &str,
) -> Result<filter::Ruleset, Vec<ConfigError>> {
    compile_family(filter::Family::Inet, rs, interfaces, file, field)
}

/// Compiles every ruleset of `[firewall]` into one dataplane ruleset:
/// each family's chains apart (own policies, own user chains), an `inet`
/// ruleset's chains serving both families.
pub fn compile_rules(
    all: &ipt::FirewallRules,
    interfaces: &Interfaces,
) -> Result<filter::Ruleset, Vec<ConfigError>> {
    compile_all(all, interfaces).map(|(r, _)| r)
}

/// [`compile_rules`], with what the nftables ruleset needs beyond its
/// chains (connection tracking, SNAT addresses, its rules' counters).
pub fn compile_all(
    all: &ipt::FirewallRules,
    interfaces: &Interfaces,
) -> Result<(filter::Ruleset, Option<crate::nft::compile::Summary>), Vec<ConfigError>> {
    // Each ruleset alone first, so every error names its own file.
    let mut errors = Vec::new();
    for s in &all.sets {
        if let Err(e) = compile_family(s.family, &s.ruleset, interfaces, &s.file, &s.field) {
            errors.extend(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut b = RulesetBuilder::new(interfaces.len());
    for s in &all.sets {
        add_ruleset(
            &mut b,
            s.family,
            &s.ruleset,
            interfaces,
            &mut |line, msg| errors.push(ConfigError::new(&s.file, line, &s.field, msg)),
        );
    }
    let nft = all
        .nft
        .as_ref()
        .map(|n| add_nft(&mut b, n, interfaces, &mut errors));
    match b.build() {
        Ok(compiled) if errors.is_empty() => Ok((compiled, nft)),
        Ok(_) => Err(errors),
        Err(build) => {
            // Name the ruleset's file and field (the nft one when there
            // is no iptables ruleset).
            let (file, field) = match (all.sets.first(), &all.nft) {
                (None, Some(n)) => (n.file.as_str(), n.field.as_str()),
                (s, _) => ("firewall", s.map_or(ipt::FIELD, |s| s.field.as_str())),
            };
            errors.extend(
                build
                    .into_iter()
                    .map(|e| ConfigError::new(file, e.line, field, e.message)),
            );
            Err(errors)
        }
    }
}

/// The nftables ruleset's tables into `b`; its problems (file, line,
/// column) into `errors`.
fn add_nft(
    b: &mut RulesetBuilder,
    n: &ipt::NftRules,
    interfaces: &Interfaces,
    errors: &mut Vec<ConfigError>,
) -> crate::nft::compile::Summary {
    match crate::nft::compile::add_tables(b, &n.tables, interfaces, &|l| n.line_of(l)) {
        Ok(s) => s,
        Err(es) => {
            errors.extend(es.into_iter().map(|e| {
                ConfigError::new(
                    &n.file,
                    n.line_of(e.loc),
                    n.field.as_str(),
                    format!("column {}: {}", e.loc.col, e.msg),
                )
            }));
            Default::default()
        }
    }
}

/// One ruleset of `family`, alone.
fn compile_family(
    family: filter::Family,
    rs: &ipt::IptablesRuleset,
    interfaces: &Interfaces,
    file: &str,
    field: &str,
) -> Result<filter::Ruleset, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut b = RulesetBuilder::new(interfaces.len());
    add_ruleset(&mut b, family, rs, interfaces, &mut |line, msg| {
        errors.push(ConfigError::new(file, line, field, msg))
    });
    match b.build() {
        Ok(compiled) if errors.is_empty() => return Ok(compiled),
        Ok(_) => {}
        Err(build) => errors.extend(
            build
                .into_iter()
                .map(|e| ConfigError::new(file, e.line, field, e.message)),
        ),
    }
    errors.sort_by_key(|e| e.line);
    Err(errors)
}

/// Adds `rs`'s chains (as `family`'s) and rules to `b`; problems go to
/// `err` (line, message).
fn add_ruleset(
    b: &mut RulesetBuilder,
    family: filter::Family,
    rs: &ipt::IptablesRuleset,
    interfaces: &Interfaces,
    err: &mut dyn FnMut(usize, String),
) {
    for t in &rs.tables {
        let table = table_id(t.kind);
        // Every chain first, so jumps can name chains declared later.
        let ids: HashMap<&str, filter::ChainId> = t
            .chains
            .iter()
            .map(|c| (c.name.as_str(), b.family_chain(family, table, &c.name)))
            .collect();
        for c in &t.chains {
            let hook = if c.builtin {
                Hook::from_name(&c.name)
            } else {
                None
            };
            if let (Some(h), Some(p)) = (hook, c.policy) {
                let policy = match p {
                    ipt::Policy::Accept => filter::Policy::Accept,
                    ipt::Policy::Drop => filter::Policy::Drop,
                };
                if let Err(e) = b.set_policy(ids[c.name.as_str()], policy) {
                    err(0, e.message);
                }
                if policy == filter::Policy::Drop && !runs(table, h) {
                    err(
                        0,
                        format!(
                            "policy DROP of {} {}: {}",
                            t.kind.name(),
                            c.name,
                            never_runs(table, h)
                        ),
                    );
                }
            }
            for r in &c.rules {
                if let Some(h) = hook
                    && !runs(table, h)
                {
                    // CHECKSUM changes nothing (libvirt's dumps put it in
                    // mangle POSTROUTING): a chain xgate never runs may
                    // hold it.
                    if r.target != ipt::Target::ChecksumFill {
                        err(r.line, never_runs(table, h));
                    }
                    continue;
                }
                match rule(r, hook, interfaces, &ids) {
                    Ok(spec) => b.add_rule(ids[c.name.as_str()], spec),
                    Err(msgs) => {
                        for m in msgs {
                            err(r.line, m);
                        }
                    }
                }
            }
        }
    }
}

/// Why xgate refuses a rule in `table`'s built-in chain `chain` (a chain
/// it never runs), or `None` if it runs it. `import-iptables` refuses
/// such lines with the same reason.
pub fn never_runs_chain(table: TableKind, chain: &str) -> Option<String> {
    let t = table_id(table);
    let h = Hook::from_name(chain).filter(|h| t.hooks().contains(h))?;
    (!runs(t, h)).then(|| never_runs(t, h))
}

fn table_id(k: TableKind) -> TableId {
    match k {
        TableKind::Filter => TableId::Filter,
        TableKind::Nat => TableId::Nat,
        TableKind::Mangle => TableId::Mangle,
        TableKind::Raw => TableId::Raw,
    }
}

/// Whether xgate's packet walk ever runs this built-in chain.
fn runs(table: TableId, hook: Hook) -> bool {
    match table {
        TableId::Filter => true,
        TableId::Nat => matches!(hook, Hook::Prerouting | Hook::Postrouting),
        TableId::Mangle => true,
        TableId::Raw => hook == Hook::Prerouting,
    }
}

fn never_runs(table: TableId, hook: Hook) -> String {
    match table {
        TableId::Raw => "raw OUTPUT is not run: the router's own packets are tracked as they leave (xgate runs raw PREROUTING only)".to_string(),
        _ => format!(
            "xgate originates no connections, so nat {} never sees a packet",
            hook.name()
        ),
    }
}

/// One rule; all its problems, or its spec.
fn rule(
    r: &ipt::Rule,
    hook: Option<Hook>,
    interfaces: &Interfaces,
    ids: &HashMap<&str, filter::ChainId>,
) -> Result<RuleSpec, Vec<String>> {
    let m = &r.matches;
    let mut errs = Vec::new();
    let mut iface = |n: &ipt::Neg<Iface>, opt: &str| -> Option<Neg<IfaceMatch>> {
        match resolve(&n.value, interfaces) {
            Ok(set) => Some(Neg::new(n.negated, set)),
            Err(e) => {
                errs.push(format!("{opt}: {e}"));
                None
            }
        }
    };
    let iif = m.in_iface.as_ref().and_then(|n| iface(n, "-i"));
    let oif = m.out_iface.as_ref().and_then(|n| iface(n, "-o"));
    match hook {
        Some(h @ (Hook::Prerouting | Hook::Input)) if m.out_iface.is_some() => errs.push(format!(
            "-o cannot be used in {}: the output interface is not chosen yet",
            h.name()
        )),
        Some(Hook::Output) if m.in_iface.is_some() => errs.push(
            "-i cannot be used in OUTPUT: the router's own packets have no input interface"
                .to_string(),
        ),
        Some(Hook::Postrouting) if m.in_iface.is_some() => errs.push(
            "-i cannot be used in POSTROUTING (as in iptables); match it in FORWARD or PREROUTING"
                .to_string(),
        ),
        _ => {}
    }
    let ports = |p: &PortRange| (p.lo, p.hi);
    let protocol = m.protocol.as_ref().map(|p| p.value);
    let matches = MatchSpec {
        iif,
        oif,
        src: m
            .src
            .as_ref()
            .map(|n| Neg::new(n.negated, prefix(&n.value))),
        dst: m
            .dst
            .as_ref()
            .map(|n| Neg::new(n.negated, prefix(&n.value))),
        proto: m
            .protocol
            .as_ref()
            .map(|n| Neg::new(n.negated, n.value.number())),
        sport: m
            .sport
            .as_ref()
            .map(|n| Neg::new(n.negated, ports(&n.value))),
        dport: m
            .dport
            .as_ref()
            .map(|n| Neg::new(n.negated, ports(&n.value))),
        tcp_flags: m
            .tcp_flags
            .as_ref()
            .map(|n| Neg::new(n.negated, (n.value.mask, n.value.comp))),
        icmp: m.icmp_type.as_ref().map(|n| {
            let (typ, code) = match n.value {
                IcmpType::Any => (None, None),
                IcmpType::Type { typ, code } => (Some(typ), code),
            };
            Neg::new(
                n.negated,
                IcmpMatch {
                    v6: protocol == Some(Protocol::Icmpv6),
                    typ,
                    code,
                },
            )
        }),
        multiport: m.multiport.as_ref().map(|n| {
            Neg::new(
                n.negated,
                MultiportSpec {
                    dir: match n.value.dir {
                        PortDir::Src => filter::PortDir::Src,
                        PortDir::Dst => filter::PortDir::Dst,
                        PortDir::Either => filter::PortDir::Either,
                    },
                    ports: n.value.ports.iter().map(ports).collect(),
                },
            )
        }),
        // The model's CtStates bits are the dataplane's `ct` bits (the
        // virtual SNAT/DNAT states are lowered below).
        ctstate: m
            .ctstate
            .as_ref()
            .filter(|n| n.value.0 & crate::iptables::CtStates::STATES != 0)
            .map(|n| Neg::new(n.negated, n.value.0 & crate::iptables::CtStates::STATES)),
        mark: m
            .mark
            .as_ref()
            .map(|n| Neg::new(n.negated, (n.value.value, n.value.mask))),
        statistic: m.statistic.as_ref().map(|n| {
            Neg::new(
                n.negated,
                match n.value {
                    Statistic::Nth { every, packet } => StatisticSpec::Nth { every, packet },
                    Statistic::Random { probability } => StatisticSpec::Random { probability },
                },
            )
        }),
    };
    let chain = |name: &str, errs: &mut Vec<String>| match ids.get(name) {
        Some(c) => Some(*c),
        None => {
            errs.push(format!("no chain {name} in this table"));
            None
        }
    };
    let nat_ports = |p: &Option<PortRange>| p.as_ref().map(ports);
    let mut exprs = matches.exprs();
    // `--ctstate SNAT,DNAT`: xt_conntrack's virtual states are the
    // connection's IPS_SRC_NAT / IPS_DST_NAT status bits.
    if let Some(n) = &m.ctstate {
        let virt = n.value.0 & !crate::iptables::CtStates::STATES;
        // A negated list is "none of them": each part negated, both
        // required (`! --ctstate RELATED,ESTABLISHED,DNAT` of kube-proxy).
        // A plain list mixing the two would need an "or".
        if virt != 0 && n.value.0 & crate::iptables::CtStates::STATES != 0 && !n.negated {
            errs.push(
                "--ctstate mixing states with SNAT/DNAT (either may hold) is not supported: write one rule per part (a negated list is)"
                    .into(),
            );
        } else if virt != 0 {
            let mut bits = 0;
            if virt & crate::iptables::CtStates::SNAT != 0 {
                bits |= filter::ct_status::SNAT;
            }
            if virt & crate::iptables::CtStates::DNAT != 0 {
                bits |= filter::ct_status::DNAT;
            }
            exprs.push(Expr::Bits {
                field: filter::Field::CtNat,
                neg: n.negated,
                bits,
            });
        }
    }
    let resolve = |i: &Iface| resolve(i, interfaces);
    for x in &m.ext {
        match x.lower(hook, &resolve) {
            Ok(e) => exprs.extend(e),
            Err(e) => errs.push(e),
        }
    }
    // iptables runs a rule's matches in the order given; its model keeps
    // the stateful ones (statistic, limit) apart, so they run last: a
    // count or a token is taken only when every other match holds.
    exprs.sort_by_key(Expr::stateful);
    let target = match &r.target {
        Target::None => Some(TargetSpec::None),
        Target::Accept => Some(TargetSpec::Accept),
        Target::Drop => Some(TargetSpec::Drop),
        Target::Return => Some(TargetSpec::Return),
        Target::Jump(c) => chain(c, &mut errs).map(TargetSpec::Jump),
        Target::Goto(c) => chain(c, &mut errs).map(TargetSpec::Goto),
        Target::Reject(w) => Some(TargetSpec::Reject(reject_kind(*w))),
        Target::Log { prefix, level, .. } => Some(TargetSpec::Log {
            prefix: prefix.clone().unwrap_or_default(),
            level: level.unwrap_or(4),
        }),
        // NFLOG hands the packet to a logging daemon (ulogd), whose usual
        // output is the LOG line: xgate writes that line to its own log.
        Target::NfLog(n) => Some(TargetSpec::Log {
            prefix: n.prefix.clone().unwrap_or_default(),
            level: 4,
        }),
        Target::Mark(mk) => Some(TargetSpec::Mark {
            value: mk.value,
            mask: mk.mask,
        }),
        // A no-op: xgate always writes correct checksums.
        Target::ChecksumFill => Some(TargetSpec::None),
        Target::TcpMss(v) => match hook {
            Some(h @ (Hook::Prerouting | Hook::Input)) => {
                errs.push(format!(
                    "TCPMSS in {}: xgate clamps forwarded and the router's own SYNs \
                     (FORWARD, OUTPUT, POSTROUTING)",
                    h.name()
                ));
                None
            }
            _ => Some(TargetSpec::Mss(v.unwrap_or(filter::MSS_PMTU))),
        },
        Target::Notrack { .. } => Some(TargetSpec::Notrack),
        Target::CtHelper(name) => match HelperKind::from_name(name) {
            Some(k) => Some(TargetSpec::Helper(k)),
            None => {
                errs.push(format!(
                    "-j CT --helper {name}: xgate has no {name} helper (it has: {})",
                    HelperKind::ALL.map(HelperKind::name).join(", ")
                ));
                None
            }
        },
        Target::ConnMark(ipt::ConnMark::Set(mk)) => Some(TargetSpec::CtMark {
            value: mk.value,
            mask: mk.mask,
        }),
        Target::ConnMark(ipt::ConnMark::Save { nfmask, ctmask }) => Some(TargetSpec::SaveMark {
            nfmask: *nfmask,
            ctmask: *ctmask,
        }),
        Target::ConnMark(ipt::ConnMark::Restore { nfmask, ctmask }) => {
            Some(TargetSpec::RestoreMark {
                nfmask: *nfmask,
                ctmask: *ctmask,
            })
        }
        Target::Masquerade { ports } => Some(TargetSpec::Nat(NatAction::Masquerade {
            ports: nat_ports(ports),
        })),
        Target::Redirect { ports } => Some(TargetSpec::Nat(NatAction::Redirect {
            ports: nat_ports(ports),
        })),
        Target::Snat(spec) => match nat_range(spec.addrs, "--to-source") {
            Ok(addrs) => Some(TargetSpec::Nat(NatAction::Snat {
                addrs,
                ports: nat_ports(&spec.ports),
            })),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        Target::Dnat(spec) => match nat_range(spec.addrs, "--to-destination") {
            Ok(addrs) => Some(TargetSpec::Nat(NatAction::Dnat {
                addrs,
                ports: nat_ports(&spec.ports),
            })),
            Err(e) => {
                errs.push(e);
                None
            }
        },
    };
    match target {
        Some(target) if errs.is_empty() => Ok(RuleSpec {
            line: r.line,
            exprs,
            target,
        }),
        _ => Err(errs),
    }
}

/// `-i`/`-o` name -> interface set. An exact name must be configured; a
/// wildcard may match none. The bare `+` also matches "no interface",
/// as the kernel's empty-prefix compare does.
fn resolve(i: &Iface, interfaces: &Interfaces) -> Result<IfaceMatch, String> {
    if i.wildcard {
        return Ok(IfaceMatch {
            ifaces: interfaces
                .iter()
                .filter(|(_, x)| i.matches(&x.name))
                .map(|(idx, _)| idx)
                .collect(),
            none: i.name.is_empty(),
        });
    }
    match interfaces.by_name(&i.name) {
        Some(idx) => Ok(IfaceMatch {
            ifaces: vec![idx],
            none: false,
        }),
        None => {
            let names: Vec<&str> = interfaces.iter().map(|(_, x)| x.name.as_str()).collect();
            Err(format!(
                "interface {} is not configured (configured: {})",
                i.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

fn prefix(n: &IpNet) -> Prefix {
    match n {
        IpNet::V4(n) => Prefix::v4(n.network().into(), n.prefix_len()),
        IpNet::V6(n) => Prefix::v6(n.network().into(), n.prefix_len()),
    }
}

fn nat_range((lo, hi): (IpAddr, IpAddr), opt: &str) -> Result<AddrRange, String> {
    if lo.is_ipv4() != hi.is_ipv4() {
        return Err(format!("{opt} {lo}-{hi} mixes IPv4 and IPv6"));
    }
    let r = AddrRange {
        v4: lo.is_ipv4(),
        lo: ip_key(lo),
        hi: ip_key(hi),
    };
    if r.lo > r.hi {
        return Err(format!("{opt} {lo}-{hi} is reversed"));
    }
    if r.count() > MAX_NAT_RANGE {
        return Err(format!(
            "{opt} {lo}-{hi} holds {} addresses, more than {MAX_NAT_RANGE}",
            r.count()
        ));
    }
    Ok(r)
}

/// `--reject-with` -> what to send. icmp-port-unreachable (also what a bare
/// `-j REJECT` parses to) answers in the packet's family.
fn reject_kind(w: RejectWith) -> Option<RejectKind> {
    let v4 = |code| Some(RejectKind::Icmp4 { typ: 3, code });
    let v6 = |code| Some(RejectKind::Icmp6 { typ: 1, code });
    match w {
        RejectWith::IcmpPortUnreachable => None,
        RejectWith::IcmpNetUnreachable => v4(0),
        RejectWith::IcmpHostUnreachable => v4(1),
        RejectWith::IcmpProtoUnreachable => v4(2),
        RejectWith::IcmpNetProhibited => v4(9),
        RejectWith::IcmpHostProhibited => v4(10),
        RejectWith::IcmpAdminProhibited => v4(13),
        RejectWith::TcpReset => Some(RejectKind::TcpReset),
        RejectWith::Icmp6NoRoute => v6(0),
        RejectWith::Icmp6AdmProhibited => v6(1),
        RejectWith::Icmp6AddrUnreachable => v6(3),
        RejectWith::Icmp6PortUnreachable => v6(4),
        RejectWith::Icmp6PolicyFail => v6(5),
        RejectWith::Icmp6RejectRoute => v6(6),
    }
}

#[cfg(test)]
mod tests;
