//! Targets and what rides on them: DNAT, `-m statistic`, the family a
//! target ties a rule to, LOG lines and their rate limit.

use super::*;

fn dnat(addr: &str, port: u16) -> TargetSpec {
    let a = a4(addr);
    TargetSpec::Nat(NatAction::Dnat {
        addrs: AddrRange {
            v4: true,
            lo: a,
            hi: a,
        },
        ports: Some((port, port)),
    })
}

#[test]
fn nth_round_robin_pair() {
    let mut b = RulesetBuilder::new(2);
    let pre = b.chain(TableId::Nat, "PREROUTING");
    let web = MatchSpec {
        proto: Some(Neg::is(6)),
        dport: Some(Neg::is((80, 80))),
        ..MatchSpec::default()
    };
    b.add_rule(
        pre,
        spec(
            1,
            MatchSpec {
                statistic: Some(Neg::is(StatisticSpec::Nth {
                    every: 2,
                    packet: 0,
                })),
                ..web.clone()
            },
            dnat("10.0.0.1", 8080),
        ),
    );
    b.add_rule(pre, spec(2, web, dnat("10.0.0.2", 8080)));
    let rs = b.build().unwrap();
    assert!(!rs.is_empty(TableId::Nat, Hook::Prerouting));
    let mut c = cx(&rs);
    let mut got = Vec::new();
    for i in 0..6 {
        // Packets that fail the other matches do not advance the counter.
        let mut other = tcp4("1.1.1.1", "2.2.2.2", 1, 22, SYN);
        assert_eq!(
            rs.eval(TableId::Nat, Hook::Prerouting, &mut other, &mut c),
            Outcome::Accept
        );
        let mut p = tcp4("1.1.1.1", "2.2.2.2", 1000 + i, 80, SYN);
        match rs.eval(TableId::Nat, Hook::Prerouting, &mut p, &mut c) {
            Outcome::Nat(NatAction::Dnat { addrs, .. }) => got.push(addrs.lo),
            o => panic!("{o:?}"),
        }
    }
    let (x, y) = (a4("10.0.0.1"), a4("10.0.0.2"));
    assert_eq!(got, vec![x, y, x, y, x, y]);
}

#[test]
fn random_is_seeded_and_close_to_its_probability() {
    let rs = |p: f64, negated: bool| {
        forward(
            vec![(
                MatchSpec {
                    statistic: Some(Neg::new(negated, StatisticSpec::Random { probability: p })),
                    ..MatchSpec::default()
                },
                TargetSpec::Accept,
            )],
            Policy::Drop,
        )
    };
    let run = |rs: &Ruleset, seed: u64, n: usize| {
        let mut c = EvalCtx::new(Arc::new(rs.new_counters()), Arc::new(LogRing::new(1)), seed);
        (0..n)
            .map(|_| {
                let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
                rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c) == Outcome::Accept
            })
            .collect::<Vec<_>>()
    };
    let quarter = rs(0.25, false);
    let a = run(&quarter, 42, 20_000);
    let hits = a.iter().filter(|x| **x).count();
    assert!((4_500..5_500).contains(&hits), "{hits}");
    assert_eq!(a, run(&quarter, 42, 20_000));
    assert_ne!(a, run(&quarter, 43, 20_000));
    let inv = run(&rs(0.25, true), 42, 20_000);
    assert!(a.iter().zip(&inv).all(|(x, y)| x != y));
    assert!(run(&rs(0.0, false), 1, 1000).iter().all(|x| !x));
    assert!(run(&rs(1.0, false), 1, 1000).iter().all(|x| *x));
}

#[test]
fn family_filter_from_targets() {
    // POSTROUTING: SNAT to an IPv4 address applies to IPv4 only; the
    // MASQUERADE after it to both families.
    let mut b = RulesetBuilder::new(2);
    let post = b.chain(TableId::Nat, "POSTROUTING");
    let snat = NatAction::Snat {
        addrs: AddrRange {
            v4: true,
            lo: a4("203.0.113.1"),
            hi: a4("203.0.113.2"),
        },
        ports: None,
    };
    b.add_rule(post, spec(1, MatchSpec::default(), TargetSpec::Nat(snat)));
    let masq = NatAction::Masquerade { ports: None };
    b.add_rule(post, spec(2, MatchSpec::default(), TargetSpec::Nat(masq)));
    let rs = b.build().unwrap();
    let mut c = cx(&rs);
    let mut p4 = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    let mut p6 = udp6("::1", "::2", 1, 2);
    assert_eq!(
        rs.eval(TableId::Nat, Hook::Postrouting, &mut p4, &mut c),
        Outcome::Nat(snat)
    );
    assert_eq!(
        rs.eval(TableId::Nat, Hook::Postrouting, &mut p6, &mut c),
        Outcome::Nat(masq)
    );
    assert_eq!(c.last_rule_line, 2);

    // REJECT: the default answers in the packet's family; an ICMPv6 kind
    // makes the rule IPv6-only.
    let rs = forward(
        vec![
            (
                MatchSpec::default(),
                TargetSpec::Reject(Some(RejectKind::Icmp6 { typ: 1, code: 1 })),
            ),
            (MatchSpec::default(), TargetSpec::Reject(None)),
        ],
        Policy::Accept,
    );
    assert_eq!(
        verdict(&rs, "1.1.1.1").0,
        Outcome::Reject(RejectKind::Icmp4 { typ: 3, code: 3 })
    );
    let mut c = cx(&rs);
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p6, &mut c),
        Outcome::Reject(RejectKind::Icmp6 { typ: 1, code: 1 })
    );

    // A rule needing both families cannot be built.
    let mut b = RulesetBuilder::new(0);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.add_rule(
        fwd,
        spec(
            5,
            MatchSpec {
                src: Some(Neg::is(Prefix::v6(0, 0))),
                ..MatchSpec::default()
            },
            TargetSpec::Reject(Some(RejectKind::Icmp4 { typ: 3, code: 13 })),
        ),
    );
    let e = b.build().unwrap_err();
    assert_eq!(e[0].line, 5);
    assert!(e[0].message.contains("mixes IPv4 and IPv6"), "{e:?}");
}

fn log_ruleset(prefix: &str) -> Ruleset {
    forward(
        vec![(
            MatchSpec::default(),
            TargetSpec::Log {
                prefix: prefix.into(),
                level: 6,
            },
        )],
        Policy::Accept,
    )
}

#[test]
fn log_is_rate_limited_per_worker() {
    let rs = log_ruleset("FW: ");
    let ring = Arc::new(LogRing::new(64));
    let mut c = EvalCtx::new(Arc::new(rs.new_counters()), ring.clone(), 1);
    let send = |c: &mut EvalCtx, n: usize| {
        for _ in 0..n {
            let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
            assert_eq!(
                rs.eval(TableId::Filter, Hook::Forward, &mut p, c),
                Outcome::Accept
            );
        }
    };
    c.now = 5_000_000_000;
    send(&mut c, 15);
    assert_eq!(ring.len(), 10);
    assert_eq!(c.counters.log_suppressed.get(), 5);
    // One second later: five more.
    c.now += 1_000_000_000;
    send(&mut c, 8);
    assert_eq!(ring.len(), 15);
    assert_eq!(c.counters.log_suppressed.get(), 8);
    let r = ring.pop().unwrap();
    assert_eq!(r.level, 6);
    assert_eq!(r.now, 5_000_000_000);
    assert_eq!(rs.log_prefix(r.rule), "FW: ");
    // Suppressed lines are still counted as rule matches.
    assert_eq!(c.counters.packets(0), 23);
}

#[test]
fn log_ring_full_counts_dropped() {
    let rs = log_ruleset("");
    let ring = Arc::new(LogRing::new(2));
    let mut c = EvalCtx::new(Arc::new(rs.new_counters()), ring.clone(), 1);
    for _ in 0..5 {
        let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c);
    }
    assert_eq!(ring.len(), 2);
    assert_eq!(ring.dropped(), 3);
    assert!(ring.pop().is_some() && ring.pop().is_some() && ring.pop().is_none());
}

#[test]
fn log_lines_look_like_the_kernels() {
    let rs = log_ruleset("DROP: ");
    let names = ["lan", "wan", "dmz", "mgmt"];
    let name = |i: IfIndex| names[i as usize];
    let rec = |view: PacketView| LogRecord {
        now: 0,
        rule: 0,
        level: 4,
        view,
    };
    let mut p = tcp4("192.168.1.10", "8.8.8.8", 40000, 80, SYN);
    assert_eq!(
        rs.format_log(&rec(p), name),
        "DROP: IN=lan OUT=wan SRC=192.168.1.10 DST=8.8.8.8 LEN=60 TOS=0x00 PREC=0x00 \
         TTL=63 ID=1234 PROTO=TCP SPT=40000 DPT=80 SYN "
    );
    p.tcp_flags = ACK | FIN;
    p.mark = 0x1f;
    p.tos = 0xb8;
    assert_eq!(
        rs.format_log(&rec(p), name),
        "DROP: IN=lan OUT=wan SRC=192.168.1.10 DST=8.8.8.8 LEN=60 TOS=0x18 PREC=0xA0 \
         TTL=63 ID=1234 PROTO=TCP SPT=40000 DPT=80 ACK FIN MARK=0x1f "
    );
    let mut u = udp6("2001:db8::1", "fe80::1", 5353, 53);
    u.iif = None;
    assert_eq!(
        rs.format_log(&rec(u), name),
        "DROP: IN= OUT=wan SRC=2001:0db8:0000:0000:0000:0000:0000:0001 \
         DST=fe80:0000:0000:0000:0000:0000:0000:0001 LEN=100 TC=0 HOPLIMIT=64 \
         PROTO=UDP SPT=5353 DPT=53 "
    );
    u.proto = 58;
    u.has_ports = false;
    u.icmp = Some((128, 0));
    assert!(
        rs.format_log(&rec(u), name)
            .ends_with("HOPLIMIT=64 PROTO=ICMPv6 TYPE=128 CODE=0 ")
    );
    let mut i = icmp4(8, 0);
    i.oif = None;
    assert!(
        rs.format_log(&rec(i), name)
            .ends_with("OUT= SRC=192.168.1.10 DST=8.8.8.8 LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1234 PROTO=ICMP TYPE=8 CODE=0 ")
    );
    i.proto = 47;
    assert!(rs.format_log(&rec(i), name).ends_with("PROTO=47 "));
}
