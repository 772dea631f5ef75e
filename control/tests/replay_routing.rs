//! Replay golden tests: longest-prefix routing, metrics, route types, ECMP,
//! policy rules, and the routing example of seeds/002 section 7.2.

mod common;
use common::*;

const GW: &str = "02:00:00:00:00:01"; // xgate on eth0
const GL: &str = "02:00:00:00:00:02"; // xgate on lan
const HOST: &str = "02:aa:00:00:00:05"; // a LAN host
const R1: &str = "02:bb:00:00:00:01"; // 192.168.1.1
const R254: &str = "02:bb:00:00:00:fe"; // 192.168.1.254
const H10: &str = "02:bb:00:00:00:0a"; // 192.168.1.10
const H50: &str = "02:bb:00:00:00:32"; // 192.168.1.50
const LR: &str = "02:cc:00:00:00:09"; // 172.16.0.9

/// seeds/002 7.2: `default via 192.168.1.1 dev eth0`, `192.168.1.0/24 dev eth0`
/// (connected), `10.0.0.0/8 via 192.168.1.254`; plus 192.168.0.0/16 on the
/// LAN side so that a /24 must beat a /16.
const SEED_002: &str = r#"
[[interface]]
name = "eth0"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["192.168.1.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["172.16.0.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "192.168.1.1"
dev = "eth0"

[[route]]
to = "10.0.0.0/8"
via = "192.168.1.254"

[[route]]
to = "192.168.0.0/16"
via = "172.16.0.9"

[[neighbor]]
ip = "192.168.1.1"
mac = "02:bb:00:00:00:01"
dev = "eth0"

[[neighbor]]
ip = "192.168.1.254"
mac = "02:bb:00:00:00:fe"
dev = "eth0"

[[neighbor]]
ip = "192.168.1.10"
mac = "02:bb:00:00:00:0a"
dev = "eth0"

[[neighbor]]
ip = "172.16.0.9"
mac = "02:cc:00:00:00:09"
dev = "lan"
"#;

fn from_host(dst: &str, port: u16) -> Vec<u8> {
    udp4(
        mac(HOST),
        mac(GL),
        &[],
        "172.16.0.5",
        dst,
        64,
        40000,
        port,
        b"hello",
    )
}

fn dst_mac(f: &[u8]) -> Mac {
    f[0..6].try_into().unwrap()
}

fn ipv4_dst(f: &[u8]) -> [u8; 4] {
    let (_, _, off) = l2(f);
    f[off + 16..off + 20].try_into().unwrap()
}

fn ttl(f: &[u8]) -> u8 {
    let (_, _, off) = l2(f);
    f[off + 8]
}

#[test]
fn seed_002_longest_prefix_match() {
    let o = run(
        "seed_002",
        SEED_002,
        &[
            (
                "lan",
                vec![
                    (0.0, from_host("192.168.1.50", 1)),
                    (0.001, from_host("10.20.30.40", 2)),
                    (0.002, from_host("8.8.8.8", 3)),
                    (0.003, from_host("192.168.1.10", 4)),
                    (0.004, from_host("192.168.2.7", 5)),
                ],
            ),
            // 192.168.1.50 answers the router's ARP request.
            (
                "eth0",
                vec![(
                    0.1,
                    arp(
                        mac(H50),
                        mac(GW),
                        &[],
                        2,
                        mac(H50),
                        "192.168.1.50",
                        mac(GW),
                        "192.168.1.2",
                    ),
                )],
            ),
        ],
    );
    let eth0 = o.frames("eth0");
    // First out: the ARP request for the directly connected 192.168.1.50.
    let (_, et, off) = l2(&eth0[0]);
    assert_eq!((et, dst_mac(&eth0[0])), (0x0806, [0xff; 6]));
    assert_eq!(&eth0[0][off + 6..off + 8], &[0, 1], "who-has");
    assert_eq!(&eth0[0][off + 8..off + 14], &mac(GW), "sender is xgate");
    assert_eq!(&eth0[0][off + 14..off + 18], &ip4("192.168.1.2"));
    assert_eq!(&eth0[0][off + 24..off + 28], &ip4("192.168.1.50"));
    // 10.20.30.40 -> 10/8 via .254; 8.8.8.8 -> default via .1;
    // 192.168.1.10 -> the /24 (direct), not the /16 towards the LAN.
    assert_eq!(
        (ipv4_dst(&eth0[1]), dst_mac(&eth0[1])),
        (ip4("10.20.30.40"), mac(R254))
    );
    assert_eq!(
        (ipv4_dst(&eth0[2]), dst_mac(&eth0[2])),
        (ip4("8.8.8.8"), mac(R1))
    );
    assert_eq!(
        (ipv4_dst(&eth0[3]), dst_mac(&eth0[3])),
        (ip4("192.168.1.10"), mac(H10))
    );
    // The held packet leaves once .50 answered: direct, to its MAC.
    assert_eq!(
        (ipv4_dst(&eth0[4]), dst_mac(&eth0[4])),
        (ip4("192.168.1.50"), mac(H50))
    );
    assert_eq!(eth0.len(), 5);
    for f in &eth0[1..] {
        assert_eq!(ttl(f), 63, "TTL decremented");
        assert_eq!(&f[6..12], &mac(GW), "source MAC is xgate's eth0");
    }
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1);
    assert_eq!(
        (ipv4_dst(&lan[0]), dst_mac(&lan[0])),
        (ip4("192.168.2.7"), mac(LR))
    );
    assert_eq!(o.report.drops, vec![], "nothing dropped");
    golden_trace("seed_002", &o.trace);
}

const TYPES: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["172.16.0.1/24", "2001:db8:2::1/64"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "198.51.100.0/24"
type = "blackhole"

[[route]]
to = "198.51.100.128/25"
type = "unreachable"

[[route]]
to = "198.51.100.64/26"
type = "prohibit"

[[route]]
to = "192.0.2.0/24"
via = "203.0.113.7"
metric = 200

[[route]]
to = "192.0.2.0/24"
via = "203.0.113.8"
metric = 100

[[route]]
to = "2001:db8:dead::/48"
type = "prohibit"

[[neighbor]]
ip = "203.0.113.7"
mac = "02:bb:00:00:00:07"
dev = "wan"

[[neighbor]]
ip = "203.0.113.8"
mac = "02:bb:00:00:00:08"
dev = "wan"

[[neighbor]]
ip = "172.16.0.5"
mac = "02:aa:00:00:00:05"
dev = "lan"

[[neighbor]]
ip = "2001:db8:2::5"
mac = "02:aa:00:00:00:05"
dev = "lan"
"#;

/// The ICMP type and code of an emitted IPv4 ICMP message, and the
/// destination address quoted inside it.
fn icmp4_error(f: &[u8]) -> (u8, u8, [u8; 4]) {
    let (_, et, off) = l2(f);
    assert_eq!(et, 0x0800);
    assert_eq!(f[off + 9], 1, "ICMP");
    let icmp = off + (f[off] & 0xf) as usize * 4;
    let quoted_dst: [u8; 4] = f[icmp + 8 + 16..icmp + 8 + 20].try_into().unwrap();
    (f[icmp], f[icmp + 1], quoted_dst)
}

#[test]
fn route_types_and_metrics() {
    let o = run(
        "route_types",
        TYPES,
        &[(
            "lan",
            vec![
                (0.0, from_host("198.51.100.10", 1)),  // blackhole: silent
                (0.1, from_host("198.51.100.200", 2)), // unreachable /25 inside the /24
                (0.2, from_host("198.51.100.70", 3)),  // prohibit /26
                (0.3, from_host("192.0.2.9", 4)),      // metric 100 beats 200
                (
                    0.4,
                    udp6(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::5",
                        "2001:db8:dead::1",
                        64,
                        1,
                        2,
                        b"x",
                    ),
                ),
            ],
        )],
    );
    assert_eq!(o.drops("route_blackhole"), 1);
    assert_eq!(o.drops("route_unreachable"), 1);
    assert_eq!(o.drops("route_prohibit"), 2);
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 1);
    assert_eq!(
        (ipv4_dst(&wan[0]), dst_mac(&wan[0])),
        (ip4("192.0.2.9"), mac("02:bb:00:00:00:08"))
    );
    let lan = o.frames("lan");
    assert_eq!(
        lan.len(),
        3,
        "two ICMPv4 errors and one ICMPv6 error back to the host"
    );
    // unreachable -> host unreachable; prohibit -> communication administratively prohibited.
    assert_eq!(icmp4_error(&lan[0]), (3, 1, ip4("198.51.100.200")));
    assert_eq!(icmp4_error(&lan[1]), (3, 13, ip4("198.51.100.70")));
    let (_, et, off) = l2(&lan[2]);
    assert_eq!(et, 0x86dd);
    assert_eq!(
        &lan[2][off + 8..off + 24],
        &ip6("2001:db8:2::1"),
        "from the lan address"
    );
    assert_eq!(
        (lan[2][off + 40], lan[2][off + 41]),
        (1, 1),
        "ICMPv6 admin prohibited"
    );
    golden_trace("route_types", &o.trace);
}

const ECMP: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["172.16.0.1/24"]

[[route]]
to = "0.0.0.0/0"
nexthops = [{ via = "203.0.113.11", weight = 1 }, { via = "203.0.113.12", weight = 3 }]

[[neighbor]]
ip = "203.0.113.11"
mac = "02:bb:00:00:00:11"
dev = "wan"

[[neighbor]]
ip = "203.0.113.12"
mac = "02:bb:00:00:00:12"
dev = "wan"
"#;

#[test]
fn ecmp_by_flow_hash_and_weight() {
    // 400 flows (distinct source ports), each sent twice.
    let mut frames = Vec::new();
    for round in 0..2 {
        for p in 0..400u16 {
            frames.push((
                round as f64 + p as f64 * 1e-4,
                udp4(
                    mac(HOST),
                    mac(GL),
                    &[],
                    "172.16.0.5",
                    "8.8.8.8",
                    64,
                    10000 + p,
                    53,
                    b"q",
                ),
            ));
        }
    }
    let o = run("ecmp", ECMP, &[("lan", frames)]);
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 800);
    let mut first = Vec::new();
    for (i, f) in wan.iter().enumerate() {
        let hop = dst_mac(f)[5];
        if i < 400 {
            first.push(hop);
        } else {
            assert_eq!(hop, first[i - 400], "flow {} changed next hop", i - 400);
        }
    }
    let heavy = first.iter().filter(|h| **h == 0x12).count();
    // Weight 3:1 -> 300 of 400 expected; allow generous hash noise.
    assert!(
        (240..=360).contains(&heavy),
        "weighted split off: {heavy} of 400 to the weight-3 hop"
    );
}

const POLICY: &str = r#"
[[interface]]
name = "wan1"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "wan2"
device = "eth2"
mac = "02:00:00:00:00:03"
address = ["198.51.100.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["10.0.1.1/24", "10.0.2.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"
table = 100

[[rule]]
priority = 100
from = "10.0.1.0/24"
table = 100

[[rule]]
priority = 200
fwmark = "0x10/0xf0"
table = 100

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan1"

[[neighbor]]
ip = "198.51.100.1"
mac = "02:bb:00:00:00:02"
dev = "wan2"
"#;

#[test]
fn policy_rule_from_selects_table() {
    let o = run(
        "policy",
        POLICY,
        &[(
            "lan",
            vec![
                (
                    0.0,
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "10.0.1.7",
                        "8.8.8.8",
                        64,
                        1,
                        53,
                        b"a",
                    ),
                ),
                (
                    0.1,
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "10.0.2.7",
                        "8.8.8.8",
                        64,
                        1,
                        53,
                        b"b",
                    ),
                ),
                // Local addresses stay reachable whatever the rules (table local first).
                (
                    0.2,
                    icmp4_echo(
                        mac(HOST),
                        mac(GL),
                        "10.0.1.7",
                        "203.0.113.2",
                        64,
                        1,
                        1,
                        b"p",
                    ),
                ),
            ],
        )],
    );
    let w1 = o.frames("wan1");
    let w2 = o.frames("wan2");
    assert_eq!(w2.len(), 1, "10.0.1.0/24 uses table 100");
    assert_eq!(dst_mac(&w2[0]), mac("02:bb:00:00:00:02"));
    assert_eq!(w1.len(), 1, "others use main");
    assert_eq!(dst_mac(&w1[0]), mac("02:bb:00:00:00:01"));
    // The echo reply (from 203.0.113.2, so table main) waits for 10.0.1.7:
    // what leaves on lan is the ARP request for it.
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1);
    let (_, et, off) = l2(&lan[0]);
    assert_eq!(
        (et, &lan[0][off + 24..off + 28]),
        (0x0806, &ip4("10.0.1.7")[..])
    );
    golden_trace("policy", &o.trace);
}
