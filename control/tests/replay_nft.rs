//! nftables rulesets through replay: the same gateway written as
//! iptables-save and as `nft -f` text forwards, translates, rejects and
//! drops the same frames; several base chains on one hook keep nft's
//! semantics; what xgate cannot run is refused with file, line and
//! column.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const PC: &str = "02:aa:00:00:00:05";
const SERVER: &str = "02:aa:00:00:00:10";

const IPTABLES: &str = r#"
[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.10:80
-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -i lan -p tcp --dport 22 -j ACCEPT
-A INPUT -p icmp --icmp-type echo-request -j ACCEPT
-A INPUT -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -s 192.168.1.0/24 -i lan -o wan -p tcp -m multiport --dports 80,443 -j ACCEPT
-A FORWARD -i lan -o wan -p udp --dport 53 -j ACCEPT
-A FORWARD -i lan -o wan -p icmp -j ACCEPT
-A FORWARD -d 192.168.1.10 -i wan -o lan -p tcp --dport 80 -j ACCEPT
-A FORWARD -j LOG --log-prefix "fwd-drop: "
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j REJECT --reject-with icmp-admin-prohibited
COMMIT
"""
"#;

const NFT: &str = r#"
[firewall]
nft = """
flush ruleset
define LAN = 192.168.1.0/24
define WEB = 192.168.1.10
table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "wan" tcp dport 8080 dnat to $WEB:80
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" ip saddr $LAN masquerade
    }
}
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname "lan" tcp dport ssh accept
        icmp type echo-request accept
        meta l4proto tcp reject with tcp reset
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state vmap { established : accept, related : accept, invalid : drop }
        iifname "lan" oifname "wan" jump lan_out
        iifname "wan" oifname "lan" ip daddr $WEB tcp dport 80 accept
        log prefix "fwd-drop: " meta l4proto tcp reject with tcp reset
        meta l4proto udp reject with icmp type admin-prohibited
    }
    chain lan_out {
        ip saddr $LAN tcp dport { http, https } accept
        udp dport 53 accept
        ip protocol icmp accept
    }
}
"""
"#;

fn config(fw: &str) -> String {
    Office::new()
        .neighbor("192.168.1.5", PC, "lan")
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(fw)
}

fn udp(smac: &str, dmac: &str, src: &str, dst: &str, dport: u16) -> Vec<u8> {
    udp4(mac(smac), mac(dmac), &[], src, dst, 64, 40000, dport, b"q")
}

/// Frames received per interface: (interface, [(seconds, frame)]).
type Probes = Vec<(&'static str, Vec<(f64, Vec<u8>)>)>;

/// A day at the office: web and DNS out, a blocked port, ssh and ping to
/// the router, the port forward, a stray packet, a spoofed source.
fn probes() -> Probes {
    let lan = |s, d, sp, dp| syn(PC, GW_LAN, s, d, sp, dp);
    let wan = |s, d, sp, dp| syn(UPSTREAM, GW_WAN, s, d, sp, dp);
    vec![
        (
            "lan",
            vec![
                (0.0, lan("192.168.1.5", "198.51.100.7", 40001, 80)),
                (0.1, lan("192.168.1.5", "198.51.100.7", 40002, 443)),
                (0.2, lan("192.168.1.5", "198.51.100.7", 40003, 25)),
                (0.3, udp(PC, GW_LAN, "192.168.1.5", "198.51.100.53", 53)),
                (0.4, udp(PC, GW_LAN, "192.168.1.5", "198.51.100.53", 123)),
                (0.5, lan("192.168.1.5", "192.168.1.1", 40004, 22)),
                (0.6, lan("10.9.9.9", "198.51.100.7", 40005, 80)),
                (
                    0.7,
                    icmp4_echo(
                        mac(PC),
                        mac(GW_LAN),
                        "192.168.1.5",
                        "198.51.100.7",
                        64,
                        1,
                        1,
                        b"p",
                    ),
                ),
            ],
        ),
        (
            "wan",
            vec![
                (1.0, wan("198.51.100.9", "203.0.113.2", 50000, 8080)),
                (1.1, wan("198.51.100.9", "203.0.113.2", 50001, 22)),
                (1.2, wan("198.51.100.9", "192.168.1.10", 50002, 80)),
                (
                    1.3,
                    icmp4_echo(
                        mac(UPSTREAM),
                        mac(GW_WAN),
                        "198.51.100.9",
                        "203.0.113.2",
                        64,
                        2,
                        1,
                        b"p",
                    ),
                ),
                (
                    1.4,
                    udp(UPSTREAM, GW_WAN, "198.51.100.9", "192.168.1.10", 9),
                ),
            ],
        ),
    ]
}

#[test]
fn the_same_gateway_in_nft_and_iptables_gives_the_same_frames() {
    let inputs = probes();
    let a = run("nft_same_ipt", &config(IPTABLES), &inputs);
    let b = run("nft_same_nft", &config(NFT), &inputs);
    for iface in ["wan", "lan"] {
        let (fa, fb) = (a.frames(iface), b.frames(iface));
        assert_eq!(fa, fb, "frames out of {iface}");
    }
    assert_eq!(a.report.drops, b.report.drops);
    // Something of each kind happened.
    let wan = a.frames("wan");
    assert!(
        wan.iter().any(|f| flow4(f).starts_with("203.0.113.2:")),
        "masquerade"
    );
    let lan = a.frames("lan");
    assert!(
        lan.iter()
            .any(|f| flow4(f) == "198.51.100.9:50000 > 192.168.1.10:80"),
        "port forward: {:?}",
        lan.iter().map(|f| flow4(f)).collect::<Vec<_>>()
    );
    assert!(!a.report.drops.is_empty(), "drops");
    assert!(
        lan.iter()
            .any(|f| flow4(f) == "192.168.1.1:25 > 192.168.1.5:40003"
                || flow4(f).contains("> 192.168.1.5:40003")),
        "the reset for port 25: {:?}",
        lan.iter().map(|f| flow4(f)).collect::<Vec<_>>()
    );
}

/// filter forward chains at priorities -10 and 10 with the given bodies.
fn two_chains(early: &str, late: &str) -> String {
    config(&format!(
        r#"
[firewall]
nft = """
table inet a {{
    chain late {{
        type filter hook forward priority 10; policy accept;
        {late}
    }}
}}
table ip b {{
    chain early {{
        type filter hook forward priority -10; policy accept;
        {early}
    }}
}}
"""
"#
    ))
}

fn forwarded(cfg: &str, name: &str) -> usize {
    let o = run(
        name,
        cfg,
        &[(
            "lan",
            vec![(
                0.0,
                syn(PC, GW_LAN, "192.168.1.5", "198.51.100.7", 40001, 80),
            )],
        )],
    );
    o.frames("wan").len()
}

#[test]
fn base_chains_run_in_priority_order_and_only_drop_is_final() {
    // An accept in the early chain does not skip the late one's drop.
    assert_eq!(forwarded(&two_chains("accept", "drop"), "nft_acc_drop"), 0);
    assert_eq!(forwarded(&two_chains("drop", "accept"), "nft_drop_acc"), 0);
    assert_eq!(forwarded(&two_chains("accept", "accept"), "nft_acc_acc"), 1);
    // The mark the early chain sets is seen by the late one.
    assert_eq!(
        forwarded(
            &two_chains("meta mark set 0x2a", "meta mark != 0x2a drop"),
            "nft_mark"
        ),
        1
    );
    assert_eq!(
        forwarded(
            &two_chains("meta mark set 0x2b", "meta mark != 0x2a drop"),
            "nft_mark2"
        ),
        0
    );
}

#[test]
fn nft_and_iptables_in_one_config_run_by_priority() {
    // iptables filter FORWARD (priority 0) accepts; the nft chain at
    // priority 10 still drops port 80.
    let cfg = config(
        r#"
[firewall]
rules_v4 = """
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -j ACCEPT
COMMIT
"""
nft = """
table ip late {
    chain fwd {
        type filter hook forward priority 10;
        tcp dport 80 drop
    }
}
"""
"#,
    );
    assert_eq!(forwarded(&cfg, "nft_with_ipt"), 0);
}

fn errors(fw: &str) -> String {
    compile_errors(&config(fw))
}

#[test]
fn what_xgate_cannot_run_is_refused_with_line_and_column() {
    for (body, needle) in [
        (
            "table bridge b {\n chain c { type filter hook forward priority 0; }\n}",
            "bridge tables are not run",
        ),
        (
            "table ip n {\n chain o { type nat hook output priority -100; tcp dport 80 dnat to 10.0.0.1; }\n}",
            "nat chain at output never sees a packet",
        ),
        (
            "table ip f {\n chain p { type filter hook prerouting priority 0; oifname \"wan\" drop; }\n}",
            "no output interface is known at prerouting",
        ),
        (
            "table ip f {\n chain i { type filter hook input priority 0; iifname \"wan0\" drop; }\n}",
            "interface wan0 is not configured",
        ),
        (
            "table ip f {\n set s { type ipv4_addr; flags dynamic; }\n chain i { type filter hook input priority 0; delete @s { ip saddr }; }\n}",
            "delete @set",
        ),
        (
            "table ip f {\n chain i { type filter hook input priority 0; queue num 1; }\n}",
            "queue hands packets",
        ),
        (
            "table ip f {\n set s { type ipv4_addr; size 2; flags dynamic; elements = { 10.0.0.1, 10.0.0.2, 10.0.0.3 }; }\n chain i { type filter hook input priority 0; ip saddr @s drop; }\n}",
            "3 elements in a set of size 2",
        ),
        (
            "table ip f {\n chain i { type filter hook input priority 0; tcp dport 22 acept; }\n}",
            "gw.toml:36: firewall.nft: column 60: expected a match or a statement",
        ),
        (
            "table ip f {\n chain p { type filter hook postrouting priority 100; tcp dport 25 drop; }\n}",
            "after SNAT",
        ),
    ] {
        let e = errors(&format!("\n[firewall]\nnft = \"\"\"\n{body}\n\"\"\"\n"));
        assert!(e.contains(needle), "{body}:\n{e}");
        assert!(e.contains("gw.toml:3"), "{body}: names the line: {e}");
    }
    // `lo` names no interface of xgate's: accepted, matches nothing.
    let ok = errors(
        "\n[firewall]\nnft = \"\"\"\ntable inet f {\n chain i { type filter hook input priority 0; iif lo accept; }\n}\n\"\"\"\n",
    );
    assert_eq!(ok, "");
}

/// Where each of four new connections to the public port 8080 goes.
fn balanced(rule: &str, name: &str) -> Vec<String> {
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .neighbor("192.168.1.11", PC, "lan")
        .config(&format!(
            r#"
[firewall]
nft = """
table ip nat {{
    chain pre {{
        type nat hook prerouting priority dstnat;
        {rule}
    }}
}}
"""
"#
        ));
    let syns: Vec<(f64, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                f64::from(i) * 0.1,
                syn(
                    UPSTREAM,
                    GW_WAN,
                    "198.51.100.9",
                    "203.0.113.2",
                    50000 + i as u16,
                    8080,
                ),
            )
        })
        .collect();
    let o = run(name, &cfg, &[("wan", syns)]);
    o.frames("lan").iter().map(|f| flow4(f)).collect()
}

#[test]
fn numgen_and_jhash_maps_spread_a_port_forward() {
    // numgen inc: round robin, one draw per connection.
    let flows = balanced(
        "tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 192.168.1.10, 1 : 192.168.1.11 }:80",
        "nft_numgen",
    );
    let to: Vec<&str> = flows
        .iter()
        .map(|f| f.split(" > ").nth(1).unwrap())
        .collect();
    assert_eq!(
        to,
        [
            "192.168.1.10:80",
            "192.168.1.11:80",
            "192.168.1.10:80",
            "192.168.1.11:80"
        ],
        "{flows:?}"
    );
    // The same as a verdict map of jumps... here of nat per element:
    // jhash of the source address: one client always lands on one server.
    let flows = balanced(
        "tcp dport 8080 dnat to jhash ip saddr mod 2 map { 0 : 192.168.1.10, 1 : 192.168.1.11 }:80",
        "nft_jhash",
    );
    let to: Vec<&str> = flows
        .iter()
        .map(|f| f.split(" > ").nth(1).unwrap())
        .collect();
    assert_eq!(to.len(), 4, "{flows:?}");
    assert!(to.iter().all(|t| *t == to[0]), "{flows:?}");
    // addr . port maps (a port forward table keyed by the public port).
    let flows = balanced(
        "dnat ip addr . port to tcp dport map { 8080 : 192.168.1.11 . 8000, 9090 : 192.168.1.10 . 80 }",
        "nft_addr_port",
    );
    assert!(
        flows.iter().all(|f| f.ends_with("> 192.168.1.11:8000")) && flows.len() == 4,
        "{flows:?}"
    );
    // A numgen match: every second new connection.
    let flows = balanced(
        "tcp dport 8080 numgen inc mod 2 0 dnat to 192.168.1.10:80",
        "nft_numgen_match",
    );
    assert_eq!(flows.len(), 2, "{flows:?}");
}

/// Which of `n` SYNs from each of two sources (one every 10 ms) reach
/// the inside server through `rules` (a forward chain's body).
fn meter(rules: &str, name: &str, n: u16) -> (usize, usize) {
    let cfg = Office::new()
        .neighbor("192.168.1.10", SERVER, "lan")
        .config(&format!(
            r#"
[firewall]
nft = """
table inet f {{
    set seen {{ type ipv4_addr; flags dynamic, timeout; timeout 1s; size 16; }}
    chain fwd {{
        type filter hook forward priority 0;
        {rules}
    }}
}}
"""
"#
        ));
    let mut frames = Vec::new();
    for i in 0..n {
        for (k, src) in ["198.51.100.8", "198.51.100.9"].iter().enumerate() {
            frames.push((
                f64::from(i) * 0.01 + k as f64 * 0.001,
                syn(UPSTREAM, GW_WAN, src, "192.168.1.10", 40000 + i, 22),
            ));
        }
    }
    let o = run(name, &cfg, &[("wan", frames)]);
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    (
        lan.iter()
            .filter(|f| f.starts_with("198.51.100.8:"))
            .count(),
        lan.iter()
            .filter(|f| f.starts_with("198.51.100.9:"))
            .count(),
    )
}

#[test]
fn meters_and_dynamic_sets_keep_state_per_key() {
    // A meter: each source may open 3 connections in a burst, then 1 per
    // 100 ms (10 SYNs within 90 ms: the burst only); one source's flood
    // does not use the other's budget.
    let (a, b) = meter(
        "tcp dport 22 update @seen { ip saddr limit rate over 10/second burst 3 packets } drop",
        "nft_meter",
        10,
    );
    assert_eq!((a, b), (3, 3));
    // Port knocking: a source seen on port 22 once is let in afterwards
    // only while in the set; the set remembers it.
    let (a, b) = meter(
        "ip saddr @seen accept\nip saddr 198.51.100.8 add @seen { ip saddr }\ndrop",
        "nft_knock",
        3,
    );
    assert_eq!((a, b), (2, 0), "the first SYN adds, the next ones are in");
}
