//! Tests of the iptables model -> filter::Ruleset compilation.

use super::*;
use xgate_dataplane::filter::{EvalCtx, LogRing, Outcome, PacketView, ct};
use xgate_dataplane::iface::Interface;
use xgate_dataplane::packet::ether::VlanStack;

use std::sync::Arc;

fn ifaces(names: &[&str]) -> Interfaces {
    Interfaces::new(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Interface {
                name: n.to_string(),
                device: format!("eth{i}"),
                port: i as u16,
                vlans: VlanStack::default(),
                mac: [2, 0, 0, 0, 0, i as u8 + 1],
                mtu: 1500,
                v4: vec![],
                v6: vec![],
                tap: None,
                tap_groups: Vec::new(),
                rp_filter: Default::default(),
                bc_forwarding: false,
                bridge: xgate_dataplane::iface::Bridging::None,
            })
            .collect(),
    )
}

fn compile(text: &str, names: &[&str]) -> Result<filter::Ruleset, Vec<ConfigError>> {
    let rs = ipt::parse(text, "fw.rules", 1).expect("parses");
    compile_firewall(&rs, &ifaces(names), "fw.rules")
}

fn errors(text: &str, names: &[&str]) -> Vec<(usize, String)> {
    let e = compile(text, names).expect_err("must not compile");
    assert!(
        e.iter()
            .all(|e| e.file == "fw.rules" && e.field == ipt::FIELD)
    );
    e.into_iter().map(|e| (e.line, e.message)).collect()
}

fn a4(s: &str) -> u128 {
    ip_key(s.parse().unwrap())
}

fn tcp(iif: Option<u16>, oif: Option<u16>, src: &str, dst: &str, dport: u16) -> PacketView {
    PacketView {
        iif,
        oif,
        v4: true,
        src: a4(src),
        dst: a4(dst),
        proto: 6,
        sport: 40000,
        dport,
        has_ports: true,
        tcp_flags: 2,
        ctstate: ct::NEW,
        len: 60,
        ttl: 64,
        ..PacketView::default()
    }
}

fn cx(rs: &filter::Ruleset) -> EvalCtx {
    EvalCtx::new(Arc::new(rs.new_counters()), Arc::new(LogRing::new(16)), 1)
}

fn run(rs: &filter::Ruleset, t: TableId, h: Hook, mut p: PacketView) -> (Outcome, usize) {
    let mut c = cx(rs);
    let o = rs.eval(t, h, &mut p, &mut c);
    (o, c.last_rule_line)
}

fn dnat(addr: &str, port: u16) -> Outcome {
    let a = a4(addr);
    Outcome::Nat(NatAction::Dnat {
        addrs: AddrRange {
            v4: true,
            lo: a,
            hi: a,
        },
        ports: Some((port, port)),
    })
}

fn snat(addr: &str) -> Outcome {
    let a = a4(addr);
    Outcome::Nat(NatAction::Snat {
        addrs: AddrRange {
            v4: true,
            lo: a,
            hi: a,
        },
        ports: None,
    })
}

/// Seed 001: a port-forwarding proxy (eth0 2.2.2.2 outside, eth1
/// 192.168.0.2 inside), its rule lines verbatim in a nat table.
#[test]
fn seed_001_port_forwarding_proxy() {
    let text = "\
*nat
# DNAT(LAN ➡ EX)
-A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80
# SNAT
-A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2
# DNAT
-A PREROUTING -i eth0 -s 3.3.3.3 -p tcp -m tcp -j DNAT --to-destination 1.1.1.1:80

# SNAT
-A POSTROUTING -s 3.3.3.3 -p tcp -m tcp -j SNAT --to-source 192.168.0.2
-A POSTROUTING -o eth0 -s 2.2.2.2 -j MASQUERADE
COMMIT
";
    let rs = compile(text, &["eth0", "eth1"]).unwrap();
    let (eth0, eth1) = (Some(0), Some(1));
    // client -> proxy -> server
    let p = tcp(eth1, None, "1.1.1.1", "192.168.0.2", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p),
        (dnat("3.3.3.3", 80), 3)
    );
    let p = tcp(eth1, eth0, "1.1.1.1", "3.3.3.3", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, p),
        (snat("2.2.2.2"), 5)
    );
    // server -> proxy -> client
    let p = tcp(eth0, None, "3.3.3.3", "2.2.2.2", 40000);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p),
        (dnat("1.1.1.1", 80), 7)
    );
    let p = tcp(eth0, eth1, "3.3.3.3", "1.1.1.1", 80);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, p),
        (snat("192.168.0.2"), 10)
    );
    // The proxy's own address leaving eth0 is masqueraded; other
    // traffic is left alone.
    let p = tcp(None, eth0, "2.2.2.2", "9.9.9.9", 53);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, p).0,
        Outcome::Nat(NatAction::Masquerade { ports: None })
    );
    let p = tcp(eth1, None, "1.1.1.1", "192.168.0.2", 22);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p),
        (Outcome::Accept, 0)
    );
    assert!(rs.is_empty(TableId::Filter, Hook::Forward));
}

/// Seed 003: the ipchains/ipmasqadm setup of a one-address gateway
/// (forward policy DENY, MASQ for 192.168.1.0/24, ports 23, 80, 20
/// and 21 of 168.126.127.6 forwarded to 192.168.1.11), written as the
/// iptables rules that do the same; the originals are in comments.
#[test]
fn seed_003_masquerade_and_port_forwards() {
    let text = "\
*nat
# /usr/sbin/ipmasqadm portfw -a -P tcp -L 168.126.127.6 23 -R 192.168.1.11 23
-A PREROUTING -i wan -d 168.126.127.6 -p tcp --dport 23 -j DNAT --to-destination 192.168.1.11:23
-A PREROUTING -i wan -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80
-A PREROUTING -i wan -d 168.126.127.6 -p tcp --dport 20 -j DNAT --to-destination 192.168.1.11:20
-A PREROUTING -i wan -d 168.126.127.6 -p tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21
# /sbin/ipchains -A forward -s 192.168.1.0/24 -j MASQ
-A POSTROUTING -o wan -s 192.168.1.0/24 -j MASQUERADE
COMMIT
*filter
# /sbin/ipchains -P forward DENY
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -s 192.168.1.0/24 -j ACCEPT
-A FORWARD -i wan -d 192.168.1.11 -p tcp -m multiport --dports 20,21,23,80 -j ACCEPT
COMMIT
";
    let rs = compile(text, &["wan", "lan"]).unwrap();
    let (wan, lan) = (Some(0), Some(1));
    let p = tcp(wan, None, "210.126.21.62", "168.126.127.6", 23);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p),
        (dnat("192.168.1.11", 23), 3)
    );
    let p = tcp(wan, None, "210.126.21.62", "168.126.127.6", 25);
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Prerouting, p).0,
        Outcome::Accept
    );
    // After DNAT, FORWARD lets the forwarded ports in and nothing else.
    let p = tcp(wan, lan, "210.126.21.62", "192.168.1.11", 80);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Accept, 15)
    );
    let p = tcp(wan, lan, "210.126.21.62", "192.168.1.11", 22);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Drop, 0)
    );
    let mut reply = p;
    reply.ctstate = ct::ESTABLISHED;
    assert_eq!(run(&rs, TableId::Filter, Hook::Forward, reply).1, 13);
    let p = tcp(lan, wan, "192.168.1.105", "168.126.63.1", 53);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Accept, 14)
    );
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, p).0,
        Outcome::Nat(NatAction::Masquerade { ports: None })
    );
}

/// Seed 004: red/blue namespaces on br0; FORWARD policy DROP, the user
/// chain NAVY with its RETURN, script lines verbatim.
#[test]
fn seed_004_navy_chain() {
    let text = "\
iptables -P FORWARD DROP
# FOWARD 체인 만들기, 룰 체인에 넣기\\, RETURN 로직까지 넣기
iptables -N NAVY
iptables -I FORWARD 1 -j NAVY
iptables -A  NAVY -j RETURN
iptables -I NAVY 1 -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
iptables -I NAVY 2 -o br0 -j ACCEPT
iptables -t nat -A POSTROUTING -s 10.16.0.0/24 ! -o br0 -j MASQUERADE
";
    let rs = compile(text, &["eth0", "br0"]).unwrap();
    let (eth0, br0) = (Some(0), Some(1));
    // red -> blue across the bridge subnet
    let p = tcp(br0, br0, "10.16.0.2", "10.16.0.3", 80);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Accept, 6)
    );
    // Replies from outside towards br0.
    let p = tcp(eth0, br0, "8.8.8.8", "10.16.0.2", 40000);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Accept, 7)
    );
    // red -> outside: NAVY returns, the policy drops.
    let p = tcp(br0, eth0, "10.16.0.2", "8.8.8.8", 443);
    assert_eq!(
        run(&rs, TableId::Filter, Hook::Forward, p),
        (Outcome::Drop, 0)
    );
    assert_eq!(
        run(&rs, TableId::Nat, Hook::Postrouting, p).0,
        Outcome::Nat(NatAction::Masquerade { ports: None })
    );
    let view = rs.counters_view(&[]);
    let navy = view.iter().find(|c| c.name == "NAVY").unwrap();
    assert_eq!(
        navy.rules.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![6, 7, 5]
    );
}

#[test]
fn unknown_interface_names_its_line() {
    let text = "\
*filter
:FORWARD DROP [0:0]
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -i lan9 -o wan -j ACCEPT
-A FORWARD -i dmz+ -j ACCEPT
-A FORWARD ! -o wan2 -j DROP
COMMIT
";
    let e = errors(text, &["wan", "lan"]);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].0, 4);
    assert!(
        e[0].1.contains("-i: interface lan9 is not configured"),
        "{e:?}"
    );
    assert!(e[0].1.contains("wan, lan"), "{e:?}");
    assert_eq!(e[1].0, 6);
    assert!(e[1].1.contains("-o: interface wan2"), "{e:?}");

    // rules_file: the caller's field.
    let rs = ipt::parse_with_field(text, "rules.v4", 1, "firewall.rules_file").unwrap();
    let e = compile_firewall_with_field(&rs, &ifaces(&["wan"]), "rules.v4", "firewall.rules_file")
        .unwrap_err();
    assert!(
        e.iter()
            .all(|e| e.file == "rules.v4" && e.field == "firewall.rules_file")
    );
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3, 4, 6]);
}

/// Through the config: the error names the config file's own line.
#[test]
fn unknown_interface_in_a_config_names_the_config_line() {
    let text = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]

[firewall]
rules = """
*filter
:FORWARD DROP [0:0]
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -i lan0 -o wan -j ACCEPT
COMMIT
"""
"#;
    let cfg = crate::config::parse(text, "xgate.toml").expect("valid config");
    // `compile` compiles the firewall with everything else.
    let e = crate::compile::compile(&cfg, &|_, _| None).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "xgate.toml:19: firewall.rules: -i: interface lan0 is not configured (configured: wan, lan)"
    );
}

#[test]
fn chains_xgate_never_runs_are_refused() {
    let text = "\
*nat
:OUTPUT DROP [0:0]
-A PREROUTING -i wan -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1
-A OUTPUT -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1
-A INPUT -s 10.0.0.0/8 -j SNAT --to-source 10.0.0.1
COMMIT
*mangle
-A PREROUTING -i lan -j MARK --set-mark 1
-A FORWARD -j MARK --set-mark 2
-A POSTROUTING -j MARK --set-mark 3
COMMIT
*filter
-A OUTPUT -p icmp -j ACCEPT
COMMIT
";
    let e = errors(text, &["wan", "lan"]);
    let lines: Vec<usize> = e.iter().map(|e| e.0).collect();
    // Every mangle chain runs (MARK in FORWARD and POSTROUTING is fine).
    assert_eq!(lines, vec![0, 4, 5], "{e:?}");
    assert!(e[0].1.contains("policy DROP of nat OUTPUT"), "{e:?}");
    assert!(
        e[1].1
            .contains("xgate originates no connections, so nat OUTPUT never sees a packet"),
        "{e:?}"
    );
    assert!(e[2].1.contains("nat INPUT never sees"), "{e:?}");
}

#[test]
fn interfaces_where_the_hook_has_none_are_refused() {
    let text = "\
*nat
-A PREROUTING -o wan -j ACCEPT
-A POSTROUTING -i lan -j MASQUERADE
COMMIT
*filter
:X - [0:0]
-A INPUT -o wan -j DROP
-A OUTPUT -i lan -j DROP
-A OUTPUT -o wan -j ACCEPT
-A INPUT -i lan -j ACCEPT
-A X -o wan -j DROP
COMMIT
";
    let e = errors(text, &["wan", "lan"]);
    let lines: Vec<usize> = e.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![2, 3, 7, 8], "{e:?}");
    assert!(e[0].1.contains("-o cannot be used in PREROUTING"));
    assert!(e[1].1.contains("-i cannot be used in POSTROUTING"));
    assert!(e[2].1.contains("-o cannot be used in INPUT"));
    assert!(e[3].1.contains("-i cannot be used in OUTPUT"));
}

#[test]
fn call_graph_deeper_than_the_stack_is_refused() {
    let depth = filter::MAX_DEPTH + 1;
    let mut text = String::from("*filter\n");
    for k in 0..depth {
        text.push_str(&format!(":C{k} - [0:0]\n"));
    }
    // Line depth + 2 is the first rule.
    text.push_str("-A FORWARD -j C0\n");
    for k in 0..depth - 1 {
        text.push_str(&format!("-A C{k} -j C{}\n", k + 1));
    }
    text.push_str(&format!("-A C{} -j ACCEPT\nCOMMIT\n", depth - 1));
    let e = errors(&text, &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    // The 33rd jump (the one from C31 to C32).
    assert_eq!(e[0].0, depth + 2 + filter::MAX_DEPTH);
    assert!(e[0].1.contains("deeper than 32"), "{e:?}");
    // One level less compiles.
    let shallow = text.replace(&format!("-A C{} -j C{}\n", depth - 2, depth - 1), "");
    assert!(compile(&shallow, &[]).is_ok());
}

#[test]
fn nat_ranges_are_bounded() {
    let text = "\
*nat
-A POSTROUTING -o wan -j SNAT --to-source 10.0.0.0-10.0.255.255
-A POSTROUTING -o wan -j SNAT --to-source 10.0.0.0-10.1.0.0
-A PREROUTING -i wan -d 2001:db8::1 -j DNAT --to-destination 2001:db8::-2001:db8::1:0
-A PREROUTING -i wan -d 2001:db8::1 -j DNAT --to-destination 2001:db8::-2001:db8::ffff
COMMIT
";
    let e = errors(text, &["wan"]);
    assert_eq!(
        e.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![3, 4],
        "{e:?}"
    );
    assert!(e[0].1.contains("65537 addresses, more than 65536"), "{e:?}");
    let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(
        nat_range((v4("10.0.0.1"), v4("::1")), "--to-source")
            .unwrap_err()
            .contains("mixes IPv4 and IPv6")
    );
    assert!(nat_range((v4("10.0.0.2"), v4("10.0.0.1")), "--to-source").is_err());
    let r = nat_range((v4("10.0.0.1"), v4("10.0.0.4")), "--to-source").unwrap();
    assert_eq!(r.count(), 4);
    assert!(r.v4);
}

#[test]
fn reject_kinds_and_a_bare_reject_for_ipv6() {
    let text = "\
*filter
-A FORWARD -s 2001:db8::/32 -j REJECT
-A FORWARD -d 10.0.0.1 -j REJECT --reject-with icmp-admin-prohibited
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -s 2001:db9::/32 -j REJECT --reject-with icmp6-adm-prohibited
-A FORWARD -j REJECT
COMMIT
";
    let rs = compile(text, &[]).unwrap();
    let v6 = |src: &str, proto: u8| PacketView {
        v4: false,
        src: u128::from(src.parse::<std::net::Ipv6Addr>().unwrap()),
        proto,
        ..PacketView::default()
    };
    let f = |p| run(&rs, TableId::Filter, Hook::Forward, p);
    assert_eq!(
        f(v6("2001:db8::1", 17)),
        (Outcome::Reject(RejectKind::Icmp6 { typ: 1, code: 4 }), 2)
    );
    let mut p = tcp(None, None, "1.1.1.1", "10.0.0.1", 80);
    p.proto = 17;
    assert_eq!(
        f(p),
        (Outcome::Reject(RejectKind::Icmp4 { typ: 3, code: 13 }), 3)
    );
    assert_eq!(
        f(v6("2001:dba::1", 6)),
        (Outcome::Reject(RejectKind::TcpReset), 4)
    );
    assert_eq!(
        f(v6("2001:db9::1", 17)),
        (Outcome::Reject(RejectKind::Icmp6 { typ: 1, code: 1 }), 5)
    );
    assert_eq!(
        f(v6("2001:dba::1", 17)),
        (Outcome::Reject(RejectKind::Icmp6 { typ: 1, code: 4 }), 6)
    );
    let mut p = tcp(None, None, "1.1.1.1", "10.0.0.2", 80);
    p.proto = 17;
    assert_eq!(
        f(p),
        (Outcome::Reject(RejectKind::Icmp4 { typ: 3, code: 3 }), 6)
    );
    for (w, code) in [
        (RejectWith::IcmpNetUnreachable, 0),
        (RejectWith::IcmpHostUnreachable, 1),
        (RejectWith::IcmpProtoUnreachable, 2),
        (RejectWith::IcmpNetProhibited, 9),
        (RejectWith::IcmpHostProhibited, 10),
    ] {
        assert_eq!(reject_kind(w), Some(RejectKind::Icmp4 { typ: 3, code }));
    }
    for (w, code) in [
        (RejectWith::Icmp6NoRoute, 0),
        (RejectWith::Icmp6AddrUnreachable, 3),
        (RejectWith::Icmp6PortUnreachable, 4),
        (RejectWith::Icmp6PolicyFail, 5),
        (RejectWith::Icmp6RejectRoute, 6),
    ] {
        assert_eq!(reject_kind(w), Some(RejectKind::Icmp6 { typ: 1, code }));
    }
}

#[test]
fn matches_and_targets_map_through() {
    let text = "\
*mangle
-A PREROUTING -i lan -p tcp -m multiport --dports 80,443,8000:8080 -m conntrack --ctstate NEW -j MARK --set-mark 0x10/0xf0
COMMIT
*filter
-A INPUT -i + -p icmpv6 --icmpv6-type echo-request -j ACCEPT
-A INPUT -p icmp --icmp-type 3/4 -j ACCEPT
-A FORWARD -m mark --mark 0x10/0xf0 -p tcp --syn -j LOG --log-prefix \"web: \" --log-level info
-A FORWARD -m mark ! --mark 0x10/0xf0 -m statistic --mode nth --every 2 --packet 1 -j DROP
-A FORWARD -m comment --comment \"the rest\" -j ACCEPT
COMMIT
";
    let rs = compile(text, &["wan", "lan"]).unwrap();
    let mut c = cx(&rs);
    let mut p = tcp(Some(1), None, "192.168.1.5", "1.2.3.4", 8008);
    assert_eq!(
        rs.eval(TableId::Mangle, Hook::Prerouting, &mut p, &mut c),
        Outcome::Accept
    );
    assert_eq!(p.mark, 0x10);
    p.oif = Some(0);
    c.now = 1;
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c),
        Outcome::Accept
    );
    let rec = c.log.pop().expect("logged");
    assert_eq!(rec.level, 6);
    let names = ["wan", "lan"];
    let line = rs.format_log(&rec, |i| names[i as usize]);
    assert!(
        line.starts_with("web: IN=lan OUT=wan SRC=192.168.1.5 "),
        "{line}"
    );
    assert!(line.ends_with("DPT=8008 SYN MARK=0x10 "), "{line}");
    // Unmarked: every second one dropped.
    let unmarked = tcp(Some(1), Some(0), "192.168.1.5", "1.2.3.4", 22);
    let verdicts: Vec<Outcome> = (0..4)
        .map(|_| {
            let mut q = unmarked;
            rs.eval(TableId::Filter, Hook::Forward, &mut q, &mut c)
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            Outcome::Accept,
            Outcome::Drop,
            Outcome::Accept,
            Outcome::Drop
        ]
    );
    // ICMPv6 echo from the router itself (no input interface): `-i +`
    // matches it; ICMPv4 frag-needed matches type/code.
    let echo6 = PacketView {
        v4: false,
        proto: 58,
        icmp: Some((128, 0)),
        ..PacketView::default()
    };
    assert_eq!(run(&rs, TableId::Filter, Hook::Input, echo6).1, 5);
    let mut frag = tcp(Some(0), None, "1.1.1.1", "2.2.2.2", 0);
    frag.proto = 1;
    frag.has_ports = false;
    frag.icmp = Some((3, 4));
    assert_eq!(run(&rs, TableId::Filter, Hook::Input, frag).1, 6);
    frag.icmp = Some((3, 3));
    assert_eq!(run(&rs, TableId::Filter, Hook::Input, frag).1, 0);
}

#[test]
fn every_error_at_once() {
    let text = "\
*nat
-A INPUT -j SNAT --to-source 10.0.0.1
-A PREROUTING -i nope -j DNAT --to-destination 10.0.0.1
COMMIT
*filter
-A FORWARD -o nope2 -j ACCEPT
-A FORWARD -i wan -j ACCEPT
COMMIT
";
    let e = errors(text, &["wan"]);
    assert_eq!(e.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3, 6]);
}

/// The options of issue 19 item 2, each parsed, compiled and evaluated.
mod ext;
mod matches;
