//! iptables-save parser: the seeds' rule lines, CONFIG.md's example, errors.

use std::net::IpAddr;

use xgate_control::iptables::*;

fn ok(text: &str) -> IptablesRuleset {
    match parse(text, "t.toml", 1) {
        Ok(r) => r,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

fn errs(text: &str) -> Vec<String> {
    match parse(text, "t.toml", 10) {
        Ok(r) => panic!("expected errors, parsed:\n{r}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn rules<'a>(r: &'a IptablesRuleset, t: TableKind, chain: &str) -> &'a [Rule] {
    &r.table(t).unwrap().chain(chain).unwrap().rules
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Option<Neg<ipnet::IpNet>> {
    Some(Neg::new(false, s.parse().unwrap()))
}

#[test]
fn seed_001_port_forwarding_proxy() {
    let r = ok("*nat
-A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80
-A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2
COMMIT
");
    let pre = rules(&r, TableKind::Nat, "PREROUTING");
    assert_eq!(pre.len(), 1);
    let m = &pre[0].matches;
    assert_eq!(pre[0].line, 2);
    assert_eq!(
        m.in_iface,
        Some(Neg::new(
            false,
            Iface {
                name: "eth1".into(),
                wildcard: false
            }
        ))
    );
    assert_eq!(m.dst, net("192.168.0.2/32"));
    assert_eq!(m.protocol, Some(Neg::new(false, Protocol::Tcp)));
    assert_eq!(m.dport, Some(Neg::new(false, PortRange::single(80))));
    assert_eq!(
        pre[0].target,
        Target::Dnat(NatSpec {
            addrs: (ip("3.3.3.3"), ip("3.3.3.3")),
            ports: Some(PortRange::single(80))
        })
    );
    let post = rules(&r, TableKind::Nat, "POSTROUTING");
    assert_eq!(post[0].matches.src, net("1.1.1.1/32"));
    assert_eq!(
        post[0].target,
        Target::Snat(NatSpec {
            addrs: (ip("2.2.2.2"), ip("2.2.2.2")),
            ports: None
        })
    );
    // Built-in chains exist with policy ACCEPT.
    let nat = r.table(TableKind::Nat).unwrap();
    let names: Vec<&str> = nat.chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    assert!(
        nat.chains
            .iter()
            .all(|c| c.builtin && c.policy == Some(Policy::Accept))
    );
}

#[test]
fn seed_003_ipmasqadm_portfw_as_iptables() {
    let mut text = String::from("*nat\n");
    for p in [23, 80, 20, 21] {
        text += &format!(
            "-A PREROUTING -d 168.126.127.6 -p tcp --dport {p} -j DNAT --to-destination 192.168.1.11:{p}\n"
        );
    }
    text += "-A POSTROUTING -s 192.168.1.0/24 -j MASQUERADE\nCOMMIT\n";
    let r = ok(&text);
    let pre = rules(&r, TableKind::Nat, "PREROUTING");
    assert_eq!(pre.len(), 4);
    assert_eq!(
        pre[1].matches.dport.as_ref().unwrap().value,
        PortRange::single(80)
    );
    assert_eq!(
        pre[1].target,
        Target::Dnat(NatSpec {
            addrs: (ip("192.168.1.11"), ip("192.168.1.11")),
            ports: Some(PortRange::single(80))
        })
    );
    let post = rules(&r, TableKind::Nat, "POSTROUTING");
    assert_eq!(post[0].matches.src, net("192.168.1.0/24"));
    assert_eq!(post[0].target, Target::Masquerade { ports: None });
}

#[test]
fn seed_004_red_blue_navy_chain() {
    // Verbatim from the seed (script form, `iptables` prefix, double space).
    let r = ok("iptables -P FORWARD DROP
iptables -N NAVY
iptables -I FORWARD 1 -j NAVY
iptables -A  NAVY -j RETURN
iptables -I NAVY 1 -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
iptables -I NAVY 2 -o br0 -j ACCEPT
iptables -t nat -A POSTROUTING -s 10.16.0.0/24 -o eth0 -j MASQUERADE
");
    let f = r.table(TableKind::Filter).unwrap();
    assert_eq!(f.chain("FORWARD").unwrap().policy, Some(Policy::Drop));
    let navy = f.chain("NAVY").unwrap();
    assert!(!navy.builtin);
    assert_eq!(navy.policy, None);
    assert_eq!(navy.rules.len(), 3);
    assert_eq!(navy.rules[0].matches.src, net("10.16.0.0/24"));
    assert_eq!(navy.rules[0].matches.dst, net("10.16.0.0/24"));
    assert_eq!(navy.rules[0].target, Target::Accept);
    assert_eq!(navy.rules[0].line, 5);
    assert_eq!(
        navy.rules[1].matches.out_iface.as_ref().unwrap().value.name,
        "br0"
    );
    assert_eq!(navy.rules[2].target, Target::Return);
    assert_eq!(
        rules(&r, TableKind::Filter, "FORWARD")[0].target,
        Target::Jump("NAVY".into())
    );
    let post = rules(&r, TableKind::Nat, "POSTROUTING");
    assert_eq!(post[0].target, Target::Masquerade { ports: None });

    // The same in iptables-save form.
    let r2 = ok("*filter
:FORWARD DROP [0:0]
-N NAVY
-I FORWARD 1 -j NAVY
-A NAVY -j RETURN
-I NAVY 1 -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
-I NAVY 2 -o br0 -j ACCEPT
COMMIT
*nat
-A POSTROUTING -s 10.16.0.0/24 -o eth0 -j MASQUERADE
COMMIT
");
    assert_eq!(strip(&r2), strip(&r));
}

#[test]
fn seed_002_docker_dnat_nth_state() {
    // Verbatim, with the seed's backslash continuations.
    let r = ok(r"iptables -t nat -N DOCKER
iptables -t nat -A PREROUTING -j DOCKER
iptables -t nat -A DOCKER -p tcp --dport 8080 \
  -j DNAT --to-destination 172.17.0.2:80
iptables -t nat -A POSTROUTING -s 172.17.0.0/16 \
  -o eth0 -j MASQUERADE
iptables -t nat -A PREROUTING -p tcp --dport 80 \
  -m statistic --mode nth --every 2 --packet 0 \
  -j DNAT --to-destination 192.168.1.10
iptables -t nat -A PREROUTING -p tcp --dport 80 \
  -m statistic --mode nth --every 2 --packet 1 \
  -j DNAT --to-destination 192.168.1.11
iptables -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
iptables -A INPUT -p tcp --dport 22 -m state --state NEW -j ACCEPT
iptables -A INPUT -p tcp --dport 8000:9000 -j ACCEPT
iptables -t mangle -A PREROUTING -s 10.0.1.0/24 -j MARK --set-mark 1
");
    let docker = rules(&r, TableKind::Nat, "DOCKER");
    assert_eq!(docker[0].line, 3);
    assert_eq!(
        docker[0].target,
        Target::Dnat(NatSpec {
            addrs: (ip("172.17.0.2"), ip("172.17.0.2")),
            ports: Some(PortRange::single(80))
        })
    );
    let pre = rules(&r, TableKind::Nat, "PREROUTING");
    assert_eq!(pre.len(), 3);
    assert_eq!(pre[1].line, 7);
    assert_eq!(
        pre[1].matches.statistic,
        Some(Neg::new(
            false,
            Statistic::Nth {
                every: 2,
                packet: 0
            }
        ))
    );
    assert_eq!(
        pre[2].matches.statistic,
        Some(Neg::new(
            false,
            Statistic::Nth {
                every: 2,
                packet: 1
            }
        ))
    );
    let input = rules(&r, TableKind::Filter, "INPUT");
    assert_eq!(
        input[0].matches.ctstate,
        Some(Neg::new(
            false,
            CtStates(CtStates::ESTABLISHED | CtStates::RELATED)
        ))
    );
    assert_eq!(
        input[1].matches.ctstate.as_ref().unwrap().value,
        CtStates(CtStates::NEW)
    );
    assert_eq!(
        input[2].matches.dport.as_ref().unwrap().value,
        PortRange { lo: 8000, hi: 9000 }
    );
    let mangle = rules(&r, TableKind::Mangle, "PREROUTING");
    assert_eq!(
        mangle[0].target,
        Target::Mark(Mark {
            value: 1,
            mask: u32::MAX
        })
    );
}

#[test]
fn config_md_example() {
    let text = "*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.10.20:80
-A POSTROUTING -o wan -s 192.168.0.0/16 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan10 -o wan -j ACCEPT
-A FORWARD -i wan -o lan10 -p tcp -d 192.168.10.20 --dport 80 -j ACCEPT
COMMIT
";
    let r = parse(text, "xgate.toml", 53).unwrap();
    assert_eq!(r.tables.len(), 2);
    let fwd = rules(&r, TableKind::Filter, "FORWARD");
    assert_eq!(fwd.len(), 3);
    assert_eq!(fwd[2].line, 53 + 10);
    assert_eq!(
        r.table(TableKind::Filter)
            .unwrap()
            .chain("FORWARD")
            .unwrap()
            .policy,
        Some(Policy::Drop)
    );
}

#[test]
fn all_matches_and_targets() {
    let r = ok(r#"*filter
:INPUT DROP [12:3400]
:FORWARD ACCEPT [0:0]
:LOGDROP - [0:0]
[5:300] -A INPUT ! -i eth+ -s ! 10.0.0.0/255.0.0.0 -p tcp ! --sport 1:1023 --syn -j ACCEPT
-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT
-A INPUT -p icmp --icmp-type 3/4 -j ACCEPT
-A INPUT -p icmpv6 --icmpv6-type neighbour-solicitation -j ACCEPT
-A INPUT -p udp -m multiport --dports 53,67:68,123 -j ACCEPT
-A INPUT -m conntrack ! --ctstate INVALID,UNTRACKED -m mark --mark 0x10/0xf0 -j LOGDROP
-A INPUT -p tcp --tcp-flags SYN,FIN SYN,FIN -j DROP
-A INPUT -d 2001:db8::/32 -p tcp -j REJECT --reject-with tcp-reset
-A INPUT -m comment --comment "allow \"x\" y" -m statistic --mode random --probability 0.25 -j ACCEPT
-A INPUT -p 47 -j ACCEPT
-A INPUT -p udp
-A FORWARD -g LOGDROP
-A LOGDROP -j LOG --log-prefix "drop: " --log-level info
-A LOGDROP -j REJECT --reject-with icmp-host-prohibited
COMMIT
*nat
-A PREROUTING -p tcp -d 2001:db8::1 --dport 80 -j DNAT --to-destination [2001:db8::2]:8080
-A PREROUTING -p udp -j REDIRECT --to-ports 5353
-A OUTPUT -p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.3:8000-8010
-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1024-2047
-A POSTROUTING -j SNAT --to-source 198.51.100.1-198.51.100.9
COMMIT
"#);
    let input = rules(&r, TableKind::Filter, "INPUT");
    let m0 = &input[0].matches;
    assert_eq!(
        input[0].counters,
        Counters {
            packets: 5,
            bytes: 300
        }
    );
    assert_eq!(
        m0.in_iface,
        Some(Neg::new(
            true,
            Iface {
                name: "eth".into(),
                wildcard: true
            }
        ))
    );
    assert_eq!(m0.src, Some(Neg::new(true, "10.0.0.0/8".parse().unwrap())));
    assert_eq!(
        m0.sport,
        Some(Neg::new(true, PortRange { lo: 1, hi: 1023 }))
    );
    assert_eq!(
        m0.tcp_flags.as_ref().unwrap().value,
        TcpFlags {
            mask: 0x17,
            comp: 0x02
        }
    );
    assert_eq!(
        input[1].matches.icmp_type.as_ref().unwrap().value,
        IcmpType::Type { typ: 8, code: None }
    );
    assert_eq!(
        input[2].matches.icmp_type.as_ref().unwrap().value,
        IcmpType::Type {
            typ: 3,
            code: Some(4)
        }
    );
    assert_eq!(
        input[3].matches.icmp_type.as_ref().unwrap().value,
        IcmpType::Type {
            typ: 135,
            code: None
        }
    );
    assert_eq!(
        input[4].matches.multiport.as_ref().unwrap().value,
        Multiport {
            dir: PortDir::Dst,
            ports: vec![
                PortRange::single(53),
                PortRange { lo: 67, hi: 68 },
                PortRange::single(123)
            ]
        }
    );
    assert_eq!(
        input[5].matches.ctstate,
        Some(Neg::new(
            true,
            CtStates(CtStates::INVALID | CtStates::UNTRACKED)
        ))
    );
    assert_eq!(
        input[5].matches.mark.as_ref().unwrap().value,
        Mark {
            value: 0x10,
            mask: 0xf0
        }
    );
    assert_eq!(input[7].target, Target::Reject(RejectWith::TcpReset));
    assert_eq!(input[8].matches.comment.as_deref(), Some("allow \"x\" y"));
    assert_eq!(
        input[8].matches.statistic.as_ref().unwrap().value,
        Statistic::Random { probability: 0.25 }
    );
    assert_eq!(
        input[9].matches.protocol.as_ref().unwrap().value,
        Protocol::Number(47)
    );
    assert_eq!(input[10].target, Target::None);
    assert_eq!(
        rules(&r, TableKind::Filter, "FORWARD")[0].target,
        Target::Goto("LOGDROP".into())
    );
    let logdrop = rules(&r, TableKind::Filter, "LOGDROP");
    assert_eq!(
        logdrop[0].target,
        Target::Log {
            prefix: Some("drop: ".into()),
            level: Some(6),
            flags: 0,
        }
    );
    let nat = rules(&r, TableKind::Nat, "PREROUTING");
    assert_eq!(
        nat[0].target,
        Target::Dnat(NatSpec {
            addrs: (ip("2001:db8::2"), ip("2001:db8::2")),
            ports: Some(PortRange::single(8080))
        })
    );
    assert_eq!(
        nat[1].target,
        Target::Redirect {
            ports: Some(PortRange::single(5353))
        }
    );
    let out = rules(&r, TableKind::Nat, "OUTPUT");
    assert_eq!(
        out[0].target,
        Target::Dnat(NatSpec {
            addrs: (ip("10.0.0.1"), ip("10.0.0.3")),
            ports: Some(PortRange { lo: 8000, hi: 8010 })
        })
    );
    let filter = r.table(TableKind::Filter).unwrap();
    assert_eq!(
        filter.chain("INPUT").unwrap().counters,
        Counters {
            packets: 12,
            bytes: 3400
        }
    );
    // Round trip.
    let again = ok(&r.to_string());
    assert_eq!(strip(&again), strip(&r), "printed:\n{r}");
}

#[test]
fn old_negation_form_and_option_order() {
    let a = ok("*filter\n-A INPUT -s ! 10.0.0.1 --dport 22 -p tcp -j DROP\nCOMMIT\n");
    let b = ok("*filter\n-A INPUT -j DROP -p tcp ! -s 10.0.0.1 -m tcp --dport 22\nCOMMIT\n");
    assert_eq!(strip(&a), strip(&b));
}

/// Rule lines zeroed, for comparing models parsed from different texts.
pub fn strip(r: &IptablesRuleset) -> IptablesRuleset {
    let mut r = r.clone();
    for t in &mut r.tables {
        for c in &mut t.chains {
            for rule in &mut c.rules {
                rule.line = 0;
            }
        }
    }
    r
}

fn one_err(text: &str, line: usize, needle: &str) {
    let e = errs(text);
    assert!(
        e.iter().any(
            |e| e.starts_with(&format!("t.toml:{line}: firewall.rules: ")) && e.contains(needle)
        ),
        "wanted line {line} containing {needle:?}, got {e:#?}"
    );
}

/// An unknown chain named like a target's prefix is a missing chain,
/// not "did you mean LOG"; an iptables target xgate lacks is a target.
#[test]
fn unknown_jumps_are_called_chains_or_targets() {
    let e = xgate_control::iptables::parse("*filter\n-A INPUT -j LOGDROP\nCOMMIT\n", "r", 1)
        .unwrap_err();
    assert_eq!((e[0].file.as_str(), e[0].line), ("r", 2));
    assert!(
        e[0].message.starts_with("-j LOGDROP: no chain LOGDROP"),
        "{e:?}"
    );
    assert!(!e[0].message.contains("did you mean"), "{e:?}");
    let e = xgate_control::iptables::parse("*mangle\n-A PREROUTING -j SECMARK\nCOMMIT\n", "r", 1)
        .unwrap_err();
    assert!(e[0].message.contains("unsupported target SECMARK"), "{e:?}");
    assert!(!e[0].message.contains("no chain"), "{e:?}");
}

#[test]
fn errors_name_line_and_problem() {
    // first_line = 10, so the text's line N is reported as 9 + N.
    one_err(
        "*filter\n-A INPUT -p tcp --foo 1 -j ACCEPT\nCOMMIT\n",
        11,
        "unsupported option --foo",
    );
    one_err(
        "*filter\n-A INPUT -m geoip --src-cc KR -j DROP\nCOMMIT\n",
        11,
        "unsupported match module -m geoip",
    );
    one_err(
        "*filter\n-A INPUT -j TARPIT\nCOMMIT\n",
        11,
        "-j TARPIT: unsupported target TARPIT",
    );
    one_err(
        "*filter\n-A INPUT -j ACCPET\nCOMMIT\n",
        11,
        "did you mean ACCEPT",
    );
    one_err(
        "*filter\n-A INPUT -p tcp --dport 65536 -j ACCEPT\nCOMMIT\n",
        11,
        "port 65536 out of range",
    );
    one_err(
        "*filter\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n",
        11,
        "out of range",
    );
    one_err(
        "*filter\n-A INPUT -p tcp --dport 90:80 -j ACCEPT\nCOMMIT\n",
        11,
        "reversed",
    );
    one_err(
        "*filter\n-A INPUT --dport 80 -j ACCEPT\nCOMMIT\n",
        11,
        "--dport needs -p tcp or -p udp",
    );
    one_err(
        "*filter\n-A INPUT -p icmp --dport 80 -j ACCEPT\nCOMMIT\n",
        11,
        "--dport needs -p tcp or -p udp",
    );
    one_err(
        "*filter\n-A INPUT -p udp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
        11,
        "tcp-reset needs -p tcp",
    );
    one_err(
        "*filter\n-A INPUT -j REJECT --reject-with icmp-bogus\nCOMMIT\n",
        11,
        "unsupported --reject-with",
    );
    one_err(
        "*filter\n-A FORWARD -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
        11,
        "only valid in table nat",
    );
    one_err(
        "*filter\n-A FORWARD -j CHECKSUM --checksum-fill\nCOMMIT\n",
        11,
        "only valid in table mangle",
    );
    one_err(
        "*nat\n-A POSTROUTING -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
        11,
        "DNAT is only allowed in PREROUTING/OUTPUT",
    );
    one_err(
        "*nat\n-A PREROUTING -j MASQUERADE\nCOMMIT\n",
        11,
        "MASQUERADE is only allowed in POSTROUTING/INPUT",
    );
    one_err(
        "*nat\n-A PREROUTING -j REDIRECT\n-A POSTROUTING -j DROP\nCOMMIT\n",
        12,
        "DROP is not allowed in table nat",
    );
    one_err(
        "*nat\n:X - [0:0]\n-A POSTROUTING -j X\n-A X -j DNAT --to-destination 1.1.1.1\nCOMMIT\n",
        13,
        "reached from POSTROUTING",
    );
    one_err(
        "*filter\n-A FORWARD -j NOPE\nCOMMIT\n",
        11,
        "-j NOPE: no chain NOPE in table filter",
    );
    one_err(
        "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n",
        11,
        "no chain NOPE in table filter",
    );
    one_err(
        "*filter\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n",
        12,
        "duplicate chain definition :X",
    );
    one_err(
        "*filter\n:INPUT ACCEPT [0:0]\n:INPUT DROP [0:0]\nCOMMIT\n",
        12,
        "duplicate chain definition :INPUT",
    );
    one_err(
        "*filter\n-N X\n-N X\nCOMMIT\n",
        12,
        "duplicate chain definition -N X",
    );
    one_err(
        "*filter\n-A INPUT -j ACCEPT\n",
        10,
        "table filter is not terminated by COMMIT",
    );
    one_err(
        "*filter\n*nat\nCOMMIT\n",
        10,
        "table filter is not terminated by COMMIT",
    );
    one_err("\n-A INPUT -j ACCEPT\n", 11, "rule before any table header");
    one_err("COMMIT\n", 10, "COMMIT without a table header");
    one_err("*security\nCOMMIT\n", 10, "unsupported table");
    one_err("*filter\n:INPUT FOO [0:0]\nCOMMIT\n", 11, "ACCEPT or DROP");
    one_err(
        "*filter\n:X ACCEPT [0:0]\nCOMMIT\n",
        11,
        "user chain X cannot have a policy",
    );
    one_err(
        "*filter\n-A INPUT -s 10.0.0.0/33 -j ACCEPT\nCOMMIT\n",
        11,
        "invalid prefix length",
    );
    one_err(
        "*filter\n-A INPUT -s 10.0.0.0 -d ::1 -j ACCEPT\nCOMMIT\n",
        11,
        "mixes IPv4 and IPv6",
    );
    one_err(
        "*filter\n-A INPUT -p tcp --dport 1 --dport 2 -j ACCEPT\nCOMMIT\n",
        11,
        "given twice",
    );
    one_err(
        "*filter\n-A INPUT --state NEW -j ACCEPT\nCOMMIT\n",
        11,
        "--state needs -m state",
    );
    one_err(
        "*filter\n-A INPUT -m state --state BOGUS -j ACCEPT\nCOMMIT\n",
        11,
        "unsupported state",
    );
    one_err(
        "*filter\n-A INPUT -m statistic --mode nth --every 2 --packet 2 -j ACCEPT\nCOMMIT\n",
        11,
        "--packet 2 must be less than --every 2",
    );
    one_err(
        "*filter\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n",
        11,
        "unterminated quoted string",
    );
    one_err(
        "*filter\n-A INPUT -p tcp -m udp -j ACCEPT\nCOMMIT\n",
        11,
        "-m udp needs -p udp",
    );
    one_err(
        "*filter\n-I INPUT 3 -j ACCEPT\nCOMMIT\n",
        11,
        "index too big",
    );
    one_err(
        "*filter\n-A INPUT -j ACCEPT --to-ports 80\nCOMMIT\n",
        11,
        "--to-ports is not valid for target ACCEPT",
    );
    one_err(
        "*filter\n-A INPUT -j INPUT\nCOMMIT\n",
        11,
        "cannot jump to built-in chain INPUT",
    );
    one_err(
        "*filter\n-N A\n-N B\n-A A -j B\n-A B -j A\nCOMMIT\n",
        13,
        "chain loop",
    );
    one_err(
        "*nat\n-A PREROUTING -j DNAT --to-destination 1.2.3.4:80\nCOMMIT\n",
        11,
        "needs -p tcp or -p udp",
    );
    one_err(
        "*filter\n-D INPUT 1\nCOMMIT\n",
        11,
        "unsupported command -D",
    );
    one_err(
        "*filter\n-A INPUT -t nat -j ACCEPT\nCOMMIT\n",
        11,
        "-t nat inside *filter",
    );
}

#[test]
fn all_errors_collected() {
    let e = errs(
        "*filter\n-A INPUT --bogus -j ACCEPT\n-A INPUT -p tcp --dport 65536 -j ACCEPT\n-A INPUT -j NOWHERE\n",
    );
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("t.toml:10:"), "{e:#?}"); // unterminated *filter
    assert!(e[1].starts_with("t.toml:11:"));
    assert!(e[2].starts_with("t.toml:12:"));
    assert!(e[3].starts_with("t.toml:13:"));
}

#[test]
fn flush_delete_and_zero_act_where_the_script_has_them() {
    let r = parse(
        "iptables -F\niptables -X\niptables -t nat -F\niptables -Z\n\
         iptables -N OLD\niptables -A INPUT -j OLD\niptables -A OLD -j DROP\n\
         iptables -F INPUT\niptables -F OLD\niptables -X OLD\n\
         iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n",
        "t.sh",
        1,
    )
    .unwrap();
    let text = r.to_string();
    assert!(!text.contains("OLD"), "{text}");
    assert!(
        text.contains("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
        "{text}"
    );
    // As iptables: a chain with rules, or one still jumped to, stays.
    let e = parse(
        "iptables -N A\niptables -A A -j DROP\niptables -X A\n",
        "t.sh",
        1,
    )
    .unwrap_err();
    assert!(e[0].message.contains("not empty"), "{e:?}");
    let e = parse(
        "iptables -N A\niptables -A INPUT -j A\niptables -X A\n",
        "t.sh",
        1,
    )
    .unwrap_err();
    assert!(e[0].message.contains("jumped to"), "{e:?}");
}

/// Service names are their well-known ports, as iptables reads
/// /etc/services (from the table the nft front-end uses).
#[test]
fn service_names_are_ports() {
    let rs = xgate_control::iptables::parse(
        "*filter\n-A INPUT -p tcp --dport ssh -j ACCEPT\n-A INPUT -p udp -m multiport --dports domain,ntp -j ACCEPT\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap();
    let text = rs.to_string();
    assert!(text.contains("--dport 22 "), "{text}");
    assert!(text.contains("--dports 53,123"), "{text}");
    let e = xgate_control::iptables::parse(
        "*filter\n-A INPUT -p tcp --dport nosuch -j ACCEPT\nCOMMIT\n",
        "r",
        1,
    )
    .unwrap_err();
    assert!(e[0].message.contains("invalid port \"nosuch\""), "{e:?}");
}
