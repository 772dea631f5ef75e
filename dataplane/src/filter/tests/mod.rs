//! Filter tests: every match kind with and without `!` (here, with the
//! helpers the others use), chain calls, policies and counters
//! ([`calls`]), NAT, statistic, the family filter and LOG ([`targets`]),
//! cost and the per-state fast path ([`eval`]).

use std::sync::Arc;

use super::tcp_flag::{ACK, FIN, SYN};
use super::*;
use crate::addr::v4_key;

mod bases;
mod calls;
mod eval;
mod families;
mod targets;

fn a4(s: &str) -> u128 {
    v4_key(u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()))
}

fn a6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

fn tcp4(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> PacketView {
    PacketView {
        iif: Some(0),
        oif: Some(1),
        v4: true,
        src: a4(src),
        dst: a4(dst),
        proto: 6,
        sport,
        dport,
        has_ports: true,
        tcp_flags: flags,
        ctstate: ct::NEW,
        len: 60,
        ttl: 63,
        ip_id: 1234,
        ..PacketView::default()
    }
}

fn udp6(src: &str, dst: &str, sport: u16, dport: u16) -> PacketView {
    PacketView {
        iif: Some(0),
        oif: Some(1),
        v4: false,
        src: a6(src),
        dst: a6(dst),
        proto: 17,
        sport,
        dport,
        has_ports: true,
        ctstate: ct::NEW,
        len: 100,
        ttl: 64,
        ..PacketView::default()
    }
}

fn icmp4(typ: u8, code: u8) -> PacketView {
    PacketView {
        proto: 1,
        has_ports: false,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp: Some((typ, code)),
        ..tcp4("192.168.1.10", "8.8.8.8", 0, 0, 0)
    }
}

fn cx(rs: &Ruleset) -> EvalCtx {
    EvalCtx::new(Arc::new(rs.new_counters()), Arc::new(LogRing::new(64)), 1)
}

fn spec(line: usize, matches: MatchSpec, target: TargetSpec) -> RuleSpec {
    RuleSpec::new(line, &matches, target)
}

/// filter FORWARD with `rules` (lines 1, 2, ...) and `policy`, 4 interfaces.
fn forward(rules: Vec<(MatchSpec, TargetSpec)>, policy: Policy) -> Ruleset {
    let mut b = RulesetBuilder::new(4);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.set_policy(fwd, policy).unwrap();
    for (i, (m, t)) in rules.into_iter().enumerate() {
        b.add_rule(fwd, spec(i + 1, m, t));
    }
    b.build().unwrap()
}

/// Does a one-rule ACCEPT ruleset (policy DROP) accept `p`?
fn hits(m: MatchSpec, p: PacketView) -> bool {
    let rs = forward(vec![(m, TargetSpec::Accept)], Policy::Drop);
    let mut p = p;
    rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut cx(&rs)) == Outcome::Accept
}

fn ifs(list: &[IfIndex]) -> IfaceMatch {
    IfaceMatch {
        ifaces: list.to_vec(),
        none: false,
    }
}

fn verdict(rs: &Ruleset, src: &str) -> (Outcome, usize) {
    let mut c = cx(rs);
    let mut p = tcp4(src, "2.2.2.2", 1, 2, SYN);
    let o = rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c);
    (o, c.last_rule_line)
}

#[test]
fn empty_ruleset_accepts_and_is_empty() {
    let rs = Ruleset::default();
    for t in TableId::ALL {
        for h in Hook::ALL {
            assert!(rs.is_empty(t, h));
        }
    }
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut cx(&rs)),
        Outcome::Accept
    );
    let built = RulesetBuilder::new(2).build().unwrap();
    assert!(built.is_empty(TableId::Nat, Hook::Postrouting));
}

#[test]
fn policy_drop_is_counted() {
    let rs = forward(vec![], Policy::Drop);
    assert!(!rs.is_empty(TableId::Filter, Hook::Forward));
    assert!(rs.is_empty(TableId::Filter, Hook::Input));
    let mut c = cx(&rs);
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c),
        Outcome::Drop
    );
    assert_eq!(c.last_rule_line, 0);
    let pol = rs.policy_counter_index(TableId::Filter, Hook::Forward, true);
    assert_eq!(c.counters.packets(pol), 1);
    assert_eq!(c.counters.bytes(pol), 60);
    // A chain with rules but policy ACCEPT is not empty either.
    let rs = forward(
        vec![(MatchSpec::default(), TargetSpec::None)],
        Policy::Accept,
    );
    assert!(!rs.is_empty(TableId::Filter, Hook::Forward));
}

#[test]
fn interfaces_exact_wildcard_negated_and_none() {
    let p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN); // iif 0, oif 1
    let mut local = p;
    local.iif = None;
    let iif = |n: bool, m: IfaceMatch| MatchSpec {
        iif: Some(Neg::new(n, m)),
        ..MatchSpec::default()
    };
    assert!(hits(iif(false, ifs(&[0])), p));
    assert!(!hits(iif(false, ifs(&[2])), p));
    // `eth+` expanded to two interfaces.
    assert!(hits(iif(false, ifs(&[2, 0])), p));
    assert!(!hits(iif(true, ifs(&[0])), p));
    assert!(hits(iif(true, ifs(&[2])), p));
    // No ingress interface: `-i X` never matches, `! -i X` does.
    assert!(!hits(iif(false, ifs(&[0])), local));
    assert!(hits(iif(true, ifs(&[0])), local));
    // `-i +`: every interface and none.
    let all = IfaceMatch {
        ifaces: vec![0, 1, 2, 3],
        none: true,
    };
    assert!(hits(iif(false, all.clone()), local));
    assert!(hits(iif(false, all.clone()), p));
    assert!(!hits(iif(true, all), local));
    // -o
    let oif = |n: bool, m: IfaceMatch| MatchSpec {
        oif: Some(Neg::new(n, m)),
        ..MatchSpec::default()
    };
    assert!(hits(oif(false, ifs(&[1])), p));
    assert!(!hits(oif(true, ifs(&[1])), p));
    let mut pre = p;
    pre.oif = None;
    assert!(!hits(oif(false, ifs(&[1])), pre));
    assert!(hits(oif(true, ifs(&[1])), pre));
    // An index beyond the ruleset's interfaces is in no set.
    let mut odd = p;
    odd.iif = Some(40);
    assert!(!hits(iif(false, ifs(&[0])), odd));
}

#[test]
fn many_interfaces_use_several_words() {
    let mut b = RulesetBuilder::new(130);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.set_policy(fwd, Policy::Drop).unwrap();
    let m = MatchSpec {
        iif: Some(Neg::is(ifs(&[129, 64]))),
        ..MatchSpec::default()
    };
    b.add_rule(fwd, spec(1, m, TargetSpec::Accept));
    let rs = b.build().unwrap();
    for (i, want) in [
        (129, Outcome::Accept),
        (64, Outcome::Accept),
        (0, Outcome::Drop),
    ] {
        let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
        p.iif = Some(i);
        assert_eq!(
            rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut cx(&rs)),
            want
        );
    }
    let mut b = RulesetBuilder::new(2);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    let m = MatchSpec {
        iif: Some(Neg::is(ifs(&[2]))),
        ..MatchSpec::default()
    };
    b.add_rule(fwd, spec(7, m, TargetSpec::Accept));
    assert_eq!(b.build().unwrap_err()[0].line, 7);
}

#[test]
fn addresses_prefixes_and_negation() {
    let p = tcp4("10.1.2.3", "192.168.1.1", 1, 2, SYN);
    let src = |n: bool, pf: Prefix| MatchSpec {
        src: Some(Neg::new(n, pf)),
        ..MatchSpec::default()
    };
    let dst = |n: bool, pf: Prefix| MatchSpec {
        dst: Some(Neg::new(n, pf)),
        ..MatchSpec::default()
    };
    let ten = Prefix::v4(0x0a00_0000, 8);
    assert!(hits(src(false, ten), p));
    assert!(!hits(src(true, ten), p));
    assert!(!hits(dst(false, ten), p));
    assert!(hits(dst(true, ten), p));
    assert!(hits(dst(false, Prefix::v4(0xc0a8_0101, 32)), p));
    assert!(!hits(dst(false, Prefix::v4(0xc0a8_0102, 32)), p));
    assert!(hits(src(false, Prefix::v4(0, 0)), p));
    // Host bits of the prefix are ignored.
    assert!(hits(src(false, Prefix::v4(0x0a01_ffff, 16)), p));

    let q = udp6("2001:db8::5", "2001:db8:1::1", 1, 2);
    let db8 = Prefix::v6(a6("2001:db8::"), 32);
    assert!(hits(src(false, db8), q));
    assert!(!hits(src(true, db8), q));
    assert!(!hits(dst(false, Prefix::v6(a6("2001:db8:1::"), 64)), p));
    assert!(hits(src(false, Prefix::v6(0, 0)), q));
    // Family filter: an IPv4 prefix never matches IPv6, negated or not,
    // and ::/0 does not match IPv4.
    assert!(!hits(src(false, Prefix::v4(0, 0)), q));
    assert!(!hits(src(true, ten), q));
    assert!(!hits(src(true, db8), p));
    assert!(!hits(src(false, Prefix::v6(0, 0)), p));
}

#[test]
fn protocols() {
    let p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    let proto = |n: bool, v: u8| MatchSpec {
        proto: Some(Neg::new(n, v)),
        ..MatchSpec::default()
    };
    assert!(hits(proto(false, 6), p));
    assert!(!hits(proto(false, 17), p));
    assert!(hits(proto(true, 17), p));
    assert!(!hits(proto(true, 6), p));
    assert!(hits(proto(false, 0), p)); // all
    assert!(!hits(proto(true, 0), p));
    let q = udp6("::1", "::2", 1, 2);
    assert!(hits(proto(false, 17), q));
    // -p icmp is IPv4-only, `! -p icmp` too; -p icmpv6 IPv6-only.
    assert!(!hits(proto(true, 1), q));
    assert!(hits(proto(true, 1), p));
    assert!(hits(proto(true, 58), q));
    assert!(!hits(proto(true, 58), p));
}

#[test]
fn ports_need_the_header() {
    let p = tcp4("1.1.1.1", "2.2.2.2", 40000, 80, SYN);
    let ports = |s: Option<(bool, u16, u16)>, d: Option<(bool, u16, u16)>| MatchSpec {
        proto: Some(Neg::is(6)),
        sport: s.map(|(n, lo, hi)| Neg::new(n, (lo, hi))),
        dport: d.map(|(n, lo, hi)| Neg::new(n, (lo, hi))),
        ..MatchSpec::default()
    };
    assert!(hits(ports(None, Some((false, 80, 80))), p));
    assert!(!hits(ports(None, Some((false, 81, 90))), p));
    assert!(hits(ports(None, Some((true, 81, 90))), p));
    assert!(!hits(ports(None, Some((true, 1, 1024))), p));
    assert!(hits(ports(Some((false, 1024, 65535)), None), p));
    assert!(!hits(
        ports(Some((false, 1, 1023)), Some((false, 80, 80))),
        p
    ));
    // A later fragment has no ports: no port match, negated or not.
    let mut frag = p;
    frag.has_ports = false;
    frag.sport = 0;
    frag.dport = 0;
    assert!(!hits(ports(None, Some((false, 80, 80))), frag));
    assert!(!hits(ports(None, Some((true, 81, 90))), frag));
    assert!(hits(ports(None, None), frag));
}

#[test]
fn tcp_flags_and_syn() {
    let syn = (FIN | SYN | tcp_flag::RST | ACK, SYN);
    let m = |n: bool, f: (u8, u8)| MatchSpec {
        proto: Some(Neg::is(6)),
        tcp_flags: Some(Neg::new(n, f)),
        ..MatchSpec::default()
    };
    let first = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    let reply = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN | ACK);
    assert!(hits(m(false, syn), first));
    assert!(!hits(m(false, syn), reply));
    assert!(hits(m(true, syn), reply));
    assert!(!hits(m(true, syn), first));
    // --tcp-flags ALL NONE (null scan)
    let null = (0x3f, 0);
    assert!(hits(m(false, null), tcp4("1.1.1.1", "2.2.2.2", 1, 2, 0)));
    assert!(!hits(m(false, null), first));
}

#[test]
fn icmp_types() {
    let m = |n: bool, typ: Option<u8>, code: Option<u8>| MatchSpec {
        proto: Some(Neg::is(1)),
        icmp: Some(Neg::new(
            n,
            IcmpMatch {
                v6: false,
                typ,
                code,
            },
        )),
        ..MatchSpec::default()
    };
    let echo = icmp4(8, 0);
    let unreach = icmp4(3, 3);
    assert!(hits(m(false, Some(8), None), echo));
    assert!(!hits(m(false, Some(8), None), unreach));
    assert!(hits(m(true, Some(8), None), unreach));
    assert!(hits(m(false, Some(3), Some(3)), unreach));
    assert!(!hits(m(false, Some(3), Some(1)), unreach));
    assert!(hits(m(false, Some(3), None), unreach));
    assert!(hits(m(false, None, None), unreach)); // any
    assert!(!hits(m(true, None, None), unreach));
    // No ICMP header: no match either way.
    let mut frag = echo;
    frag.icmp = None;
    assert!(!hits(m(false, Some(8), None), frag));
    assert!(!hits(m(true, Some(0), None), frag));
    // ICMPv6 echo request (128) against an IPv6 rule; an ICMPv4 rule
    // never sees it.
    let mut v6 = udp6("::1", "::2", 0, 0);
    v6.proto = 58;
    v6.has_ports = false;
    v6.icmp = Some((128, 0));
    let m6 = MatchSpec {
        proto: Some(Neg::is(58)),
        icmp: Some(Neg::is(IcmpMatch {
            v6: true,
            typ: Some(128),
            code: None,
        })),
        ..MatchSpec::default()
    };
    assert!(hits(m6, v6));
    assert!(!hits(m(false, None, None), v6));
}

#[test]
fn multiport_lists() {
    let m = |n: bool, dir: PortDir, ports: &[(u16, u16)]| MatchSpec {
        proto: Some(Neg::is(6)),
        multiport: Some(Neg::new(
            n,
            MultiportSpec {
                dir,
                ports: ports.to_vec(),
            },
        )),
        ..MatchSpec::default()
    };
    let p = tcp4("1.1.1.1", "2.2.2.2", 40000, 443, SYN);
    let web = [(80, 80), (443, 443), (8000, 8080)];
    assert!(hits(m(false, PortDir::Dst, &web), p));
    assert!(!hits(m(false, PortDir::Src, &web), p));
    assert!(hits(m(true, PortDir::Src, &web), p));
    assert!(!hits(m(true, PortDir::Dst, &web), p));
    assert!(hits(
        m(false, PortDir::Either, &[(22, 22), (30000, 50000)]),
        p
    ));
    assert!(!hits(m(false, PortDir::Either, &[(22, 22), (1, 442)]), p));
    let mut frag = p;
    frag.has_ports = false;
    assert!(!hits(m(true, PortDir::Src, &web), frag));
    // An empty list is refused (the 15-entry limit is iptables', checked
    // by its parser).
    let mut b = RulesetBuilder::new(0);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.add_rule(
        fwd,
        spec(3, m(false, PortDir::Dst, &[]), TargetSpec::Accept),
    );
    assert_eq!(b.build().unwrap_err()[0].line, 3);
}

#[test]
fn conntrack_states() {
    let m = |n: bool, s: u8| MatchSpec {
        ctstate: Some(Neg::new(n, s)),
        ..MatchSpec::default()
    };
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, ACK);
    p.ctstate = ct::ESTABLISHED;
    assert!(hits(m(false, ct::ESTABLISHED | ct::RELATED), p));
    assert!(!hits(m(false, ct::NEW), p));
    assert!(hits(m(true, ct::INVALID), p));
    assert!(!hits(m(true, ct::ESTABLISHED), p));
    p.ctstate = ct::bit(crate::conntrack::CtState::Invalid);
    assert!(hits(m(false, ct::INVALID), p));
    assert_eq!(ct::bit(crate::conntrack::CtState::Related), ct::RELATED);
}

#[test]
fn mark_target_then_mark_match() {
    // mangle PREROUTING: MARK --set-mark 0x1/0xff, then -m mark --mark 1/0xff.
    let mut b = RulesetBuilder::new(2);
    let pre = b.chain(TableId::Mangle, "PREROUTING");
    b.add_rule(
        pre,
        spec(
            1,
            MatchSpec::default(),
            TargetSpec::Mark {
                value: 1,
                mask: 0xff,
            },
        ),
    );
    b.add_rule(
        pre,
        spec(
            2,
            MatchSpec {
                mark: Some(Neg::is((1, 0xff))),
                ..MatchSpec::default()
            },
            TargetSpec::Mark {
                value: 0x100,
                mask: 0x100,
            },
        ),
    );
    b.add_rule(
        pre,
        spec(
            3,
            MatchSpec {
                mark: Some(Neg::new(true, (0x101, 0xffff))),
                ..MatchSpec::default()
            },
            TargetSpec::Drop,
        ),
    );
    let rs = b.build().unwrap();
    let mut c = cx(&rs);
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    p.mark = 0xab00_00ff;
    assert_eq!(
        rs.eval(TableId::Mangle, Hook::Prerouting, &mut p, &mut c),
        Outcome::Accept
    );
    assert_eq!(p.mark, 0xab00_0101);
    // Other high bits: the mark ends 0x501, which rule 3 (`! --mark
    // 0x101/0xffff`) drops.
    let mut q = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    q.mark = 0x0400;
    assert_eq!(
        rs.eval(TableId::Mangle, Hook::Prerouting, &mut q, &mut c),
        Outcome::Drop
    );
    assert_eq!(q.mark, 0x0501);
    assert_eq!(c.last_rule_line, 3);
    let m = |v: u32, mask: u32, n: bool, mark: u32| {
        let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
        p.mark = mark;
        hits(
            MatchSpec {
                mark: Some(Neg::new(n, (v, mask))),
                ..MatchSpec::default()
            },
            p,
        )
    };
    assert!(m(5, u32::MAX, false, 5));
    assert!(!m(5, u32::MAX, false, 0x105));
    assert!(m(5, 0xff, false, 0x105));
    assert!(m(5, u32::MAX, true, 0x105));
}
