//! Replay tests of bridge domains: learning, flooding, the bridge's routed
//! interface, br_netfilter (FORWARD on bridged traffic, `-m physdev`),
//! VLAN-aware ports and the flood limit.

mod common;
use common::*;

const RED: &str = "02:aa:00:00:00:02";
const BLUE: &str = "02:aa:00:00:00:03";
const GREEN: &str = "02:aa:00:00:00:04";
const BR: &str = "02:00:00:00:00:01";
const WAN: &str = "02:00:00:00:00:10";
const UP: &str = "02:bb:00:00:00:01";
const BCAST: &str = "ff:ff:ff:ff:ff:ff";

/// Seed 004: red (eth1) and blue (eth2) and green (eth3) on br0, whose
/// address 10.16.0.1 is their gateway; `wan` on eth0. `{nf}` and
/// `{rules}` vary per test.
fn config(nf: bool, filter: &str) -> String {
    format!(
        r#"
[[bridge]]
name = "br0"
ports = ["red", "blue", "green"]
nf_call_iptables = {nf}

[[interface]]
name = "br0"
device = "br0"
address = ["10.16.0.1/24"]

[[interface]]
name = "red"
device = "eth1"
mac = "02:00:00:00:00:01"

[[interface]]
name = "blue"
device = "eth2"
mac = "02:00:00:00:00:02"

[[interface]]
name = "green"
device = "eth3"
mac = "02:00:00:00:00:03"

[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:10"
address = ["198.51.100.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "198.51.100.1"

[[neighbor]]
ip = "198.51.100.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[firewall]
rules = """
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.16.0.0/24 ! -o br0 -j MASQUERADE
COMMIT
*filter
{filter}
COMMIT
"""
"#
    )
}

fn ping(src_mac: &str, dst_mac: &str, src: &str, dst: &str, seq: u16) -> Vec<u8> {
    icmp4_echo(mac(src_mac), mac(dst_mac), src, dst, 64, 7, seq, b"bridge")
}

fn arp_req(src_mac: &str, spa: &str, tpa: &str) -> Vec<u8> {
    arp(
        mac(src_mac),
        mac(BCAST),
        &[],
        1,
        mac(src_mac),
        spa,
        [0; 6],
        tpa,
    )
}

fn count(o: &Outcome, dev: &str) -> usize {
    o.out.get(dev).map_or(0, Vec::len)
}

#[test]
fn learns_floods_and_switches_without_netfilter() {
    let o = run(
        "br-learn",
        &config(false, ":FORWARD DROP [0:0]"),
        &[
            (
                "eth1",
                vec![
                    // Red asks for blue: flooded to blue and green, not back.
                    (0.0, arp_req(RED, "10.16.0.2", "10.16.0.3")),
                    // Red to blue once blue is known: to blue only,
                    // unchanged (a bridge keeps the TTL), even with FORWARD
                    // DROP (no br_netfilter).
                    (0.2, ping(RED, BLUE, "10.16.0.2", "10.16.0.3", 1)),
                    // To a MAC nobody has shown: flooded.
                    (
                        0.3,
                        ping(RED, "02:aa:00:00:00:99", "10.16.0.2", "10.16.0.9", 2),
                    ),
                ],
            ),
            (
                "eth2",
                vec![(
                    0.1,
                    arp(
                        mac(BLUE),
                        mac(RED),
                        &[],
                        2,
                        mac(BLUE),
                        "10.16.0.3",
                        mac(RED),
                        "10.16.0.2",
                    ),
                )],
            ),
        ],
    );
    let blue = o.frames("blue");
    let green = o.frames("green");
    let red = o.frames("red");
    assert_eq!(blue.len(), 3, "ARP flood, the ping, the unknown flood");
    assert_eq!(green.len(), 2, "ARP flood and the unknown flood only");
    assert_eq!(red.len(), 1, "blue's ARP reply, switched to red alone");
    assert_eq!(blue[1], ping(RED, BLUE, "10.16.0.2", "10.16.0.3", 1));
    assert_eq!(red[0][..6], mac(RED));
    assert_eq!(count(&o, "wan"), 0);
    assert_eq!(o.drops("filter_forward"), 0);
}

#[test]
fn the_bridge_interface_answers_arp_and_routes_with_masquerade() {
    let o = run(
        "br-bvi",
        &config(false, ":FORWARD ACCEPT [0:0]"),
        &[
            (
                "eth1",
                vec![
                    (0.0, arp_req(RED, "10.16.0.2", "10.16.0.1")),
                    (0.1, ping(RED, BR, "10.16.0.2", "192.0.2.7", 1)),
                ],
            ),
            (
                "eth0",
                vec![(
                    0.2,
                    icmp4_reply(
                        mac(UP),
                        mac(WAN),
                        "192.0.2.7",
                        "198.51.100.2",
                        7,
                        1,
                        b"bridge",
                    ),
                )],
            ),
        ],
    );
    let red = o.frames("red");
    // The ARP reply and the translated echo reply, both to red only.
    assert_eq!(red.len(), 2, "{}", o.trace);
    assert_eq!(red[0][12..14], [0x08, 0x06]);
    assert_eq!(red[0][..6], mac(RED));
    assert_eq!(red[0][6..12], mac(BR));
    assert_eq!(&red[1][..6], &mac(RED));
    assert_eq!(l3_of(&red[1])[16..20], ip4("10.16.0.2"));
    // The request flooded to the other ports; nothing else.
    assert_eq!(count(&o, "blue"), 1);
    assert_eq!(count(&o, "green"), 1);
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 1);
    assert_eq!(l3_of(&wan[0])[12..16], ip4("198.51.100.2"), "masqueraded");
    assert_eq!(l3_of(&wan[0])[8], 63, "routed: TTL decremented");
}

/// The seed's FORWARD DROP and its NAVY chain, through br_netfilter.
const NAVY: &str = ":FORWARD DROP [0:0]
:NAVY - [0:0]
-A FORWARD -j NAVY
-A NAVY -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
-A NAVY -o br0 -j ACCEPT
-A NAVY -j RETURN";

fn red_pings_blue(name: &str, filter: &str) -> Outcome {
    run(
        name,
        &config(true, filter),
        &[
            ("eth2", vec![(0.0, arp_req(BLUE, "10.16.0.3", "10.16.0.2"))]),
            (
                "eth1",
                vec![(0.1, ping(RED, BLUE, "10.16.0.2", "10.16.0.3", 1))],
            ),
        ],
    )
}

#[test]
fn with_nf_call_iptables_forward_drop_separates_red_and_blue() {
    let o = red_pings_blue("br-drop", ":FORWARD DROP [0:0]");
    // ARP is not IP: flooded; the ping is dropped by FORWARD.
    assert_eq!(count(&o, "red"), 1);
    assert_eq!(count(&o, "blue"), 0, "{}", o.trace);
    assert_eq!(o.drops("filter_forward"), 1);

    let o = red_pings_blue("br-navy", NAVY);
    let blue = o.frames("blue");
    assert_eq!(blue.len(), 1, "{}", o.trace);
    assert_eq!(
        blue[0],
        ping(RED, BLUE, "10.16.0.2", "10.16.0.3", 1),
        "unchanged"
    );
    assert_eq!(o.drops("filter_forward"), 0);
}

#[test]
fn physdev_names_the_bridge_ports() {
    let drop_red_to_blue = ":FORWARD ACCEPT [0:0]
-A FORWARD -m physdev --physdev-in red --physdev-out blue --physdev-is-bridged -j DROP";
    let o = red_pings_blue("br-physdev", drop_red_to_blue);
    assert_eq!(count(&o, "blue"), 0, "{}", o.trace);
    assert_eq!(o.drops("filter_forward"), 1);
    // Green to blue passes the same rule.
    let o = run(
        "br-physdev-green",
        &config(true, drop_red_to_blue),
        &[
            ("eth2", vec![(0.0, arp_req(BLUE, "10.16.0.3", "10.16.0.4"))]),
            (
                "eth3",
                vec![(0.1, ping(GREEN, BLUE, "10.16.0.4", "10.16.0.3", 1))],
            ),
        ],
    );
    assert_eq!(count(&o, "blue"), 1, "{}", o.trace);
    // A flooded copy meets `--physdev-out` per port: blue's copy of an
    // unknown unicast from red is dropped, green's is sent.
    let o = run(
        "br-physdev-flood",
        &config(true, drop_red_to_blue),
        &[(
            "eth1",
            vec![(
                0.0,
                ping(RED, "02:aa:00:00:00:99", "10.16.0.2", "10.16.0.9", 1),
            )],
        )],
    );
    assert_eq!(count(&o, "blue"), 0, "{}", o.trace);
    assert_eq!(count(&o, "green"), 1, "{}", o.trace);
}

const VLAN_AWARE: &str = r#"
[[bridge]]
name = "br0"
vlan_filtering = true
ports = [
  { interface = "trunk", pvid = 0, vlans = [10, 20] },
  { interface = "a10", pvid = 10 },
  { interface = "a20", pvid = 20 },
]

[[interface]]
name = "br10"
device = "br0"
vlan = 10
address = ["10.10.0.1/24"]

[[interface]]
name = "br20"
device = "br0"
vlan = 20
address = ["10.20.0.1/24"]

[[interface]]
name = "trunk"
device = "eth1"
mac = "02:00:00:00:00:01"

[[interface]]
name = "a10"
device = "eth2"
mac = "02:00:00:00:00:02"

[[interface]]
name = "a20"
device = "eth3"
mac = "02:00:00:00:00:03"
"#;

#[test]
fn vlan_aware_ports_tag_and_untag_and_keep_vlans_apart() {
    let tagged_arp = |v: u16, tpa: &str| {
        arp(
            mac(RED),
            mac(BCAST),
            &[v],
            1,
            mac(RED),
            "10.10.0.9",
            [0; 6],
            tpa,
        )
    };
    let o = run(
        "br-vlan",
        VLAN_AWARE,
        &[
            (
                "eth1",
                vec![
                    // Tagged 10 on the trunk: to the VLAN-10 access port,
                    // untagged.
                    (0.0, tagged_arp(10, "10.10.0.2")),
                    // VLAN 30 is not the trunk's.
                    (0.1, tagged_arp(30, "10.10.0.2")),
                    // Untagged on a trunk without a pvid: dropped.
                    (0.2, arp_req(RED, "10.10.0.9", "10.10.0.2")),
                ],
            ),
            (
                "eth2",
                // From the VLAN-10 access port: out of the trunk tagged 10.
                vec![(0.3, arp_req(BLUE, "10.10.0.2", "10.10.0.7"))],
            ),
            (
                "eth3",
                // VLAN 20 asks its routed interface, br20.
                vec![(0.4, arp_req(GREEN, "10.20.0.2", "10.20.0.1"))],
            ),
        ],
    );
    let a10 = o.frames("a10");
    assert_eq!(a10.len(), 1, "{}", o.trace);
    assert_eq!(a10[0][12..14], [0x08, 0x06], "untagged on the access port");
    let trunk = o.frames("trunk");
    let (tags, ethertype, _) = l2(&trunk[0]);
    assert_eq!((tags, ethertype), (vec![10], 0x0806));
    // VLAN 20: only br20's reply to green, untagged.
    let a20 = o.frames("a20");
    assert_eq!(a20.len(), 1, "{}", o.trace);
    assert_eq!(a20[0][12..14], [0x08, 0x06]);
    assert_eq!(a20[0][6..12], mac(BR)[..]);
    // The trunk saw VLAN 10's request and VLAN 20's request tagged 20.
    assert_eq!(trunk.len(), 2, "{}", o.trace);
    assert_eq!(l2(&trunk[1]).0, vec![20]);
    assert_eq!(o.drops("bridge_vlan_filtered"), 2);
}

#[test]
fn flooding_is_rate_limited_per_bridge() {
    let cfg = config(false, ":FORWARD ACCEPT [0:0]").replace(
        "nf_call_iptables = false",
        "nf_call_iptables = false\nflood_rate = 10\nflood_burst = 5",
    );
    let frames: Vec<(f64, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                0.0,
                ping(RED, "02:aa:00:00:00:99", "10.16.0.2", "10.16.0.9", i),
            )
        })
        .collect();
    let o = run("br-storm", &cfg, &[("eth1", frames)]);
    assert_eq!(count(&o, "blue"), 5);
    assert_eq!(count(&o, "green"), 5);
    assert_eq!(o.drops("bridge_flood_limited"), 45);
    // Broadcasts (a loop's storm) take the same budget; 0.5 s later
    // another 5 tokens have come.
    let frames: Vec<(f64, Vec<u8>)> = (0..40)
        .map(|i| {
            (
                if i < 20 { 0.0 } else { 0.5 },
                arp_req(RED, "10.16.0.2", "10.16.0.9"),
            )
        })
        .collect();
    let o = run("br-storm-bcast", &cfg, &[("eth1", frames)]);
    assert_eq!(count(&o, "blue"), 10, "{}", o.trace);
    assert_eq!(o.drops("bridge_flood_limited"), 30);
}

/// A frame whose payload is another VLAN-tagged frame (QinQ-style, inner
/// tag 99 in VLAN 10) is carried as it is, not given to netfilter, even
/// with nf_call_iptables and FORWARD DROP: Linux's br_netfilter looks past
/// one tag only when bridge-nf-filter-vlan-tagged is set (off by default),
/// and the outer tag is the bridge's VLAN here. (The pipeline fuzz target
/// found such a frame carried with a bad IPv4 checksum inside.)
#[test]
fn a_frame_with_a_second_tag_is_bridged_unchanged() {
    let cfg = VLAN_AWARE.replace(
        "vlan_filtering = true",
        "vlan_filtering = true\nnf_call_iptables = true",
    ) + "\n[firewall]\nrules = \"\"\"\n*filter\n:FORWARD DROP [0:0]\nCOMMIT\n\"\"\"\n";
    let inner = icmp4_echo(
        mac(RED),
        mac(BLUE),
        "10.10.0.9",
        "10.10.0.2",
        64,
        7,
        1,
        b"ping",
    );
    let qinq = tagged(tagged(inner.clone(), &[99]), &[10]);
    let plain = tagged(inner, &[10]);
    let o = run(
        "br-qinq",
        &cfg,
        &[("eth1", vec![(0.0, qinq), (0.1, plain)])],
    );
    // The QinQ frame reaches the VLAN-10 access port with its inner tag;
    // the plain tagged ping is FORWARD's and dropped.
    let a10 = o.frames("a10");
    assert_eq!(a10.len(), 1, "{}", o.trace);
    assert_eq!(l2(&a10[0]).0, vec![99], "{}", o.trace);
    assert_eq!(o.drops("filter_forward"), 1, "{}", o.trace);
}
