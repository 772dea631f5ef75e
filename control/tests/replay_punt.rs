//! Replay tests of the management punt (`[[interface]] tap`): what the
//! host kernel gets (`DIR/<tap>.pcap`), and what it sends (`--input
//! TAP=FILE`) leaving through xgate's conntrack, NAT, routes and
//! neighbours.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const HOST: &str = "02:aa:00:00:00:10";

/// wan has a tap, lan has none. filter INPUT drops by default and lets
/// in DNS, ssh (also as port 2222, redirected), ICMP and answers.
fn config() -> String {
    Office::new()
        .wan(&["203.0.113.2/24", "2001:db8:1::2/64"], "203.0.113.1")
        .wan_line(r#"tap = "xg-wan""#)
        .route("::/0", "2001:db8:1::1")
        .neighbor("2001:db8:1::1", UPSTREAM, "wan")
        .neighbor("192.168.1.10", HOST, "lan")
        .config(
            r#"
[firewall]
rules = """
*nat
-A PREROUTING -i wan -p tcp --dport 2222 -j REDIRECT --to-ports 22
COMMIT
*filter
:INPUT DROP [0:0]
-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p udp --dport 53 -j ACCEPT
-A INPUT -p tcp --dport 22 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""
"#,
        )
}

/// The IPv4 TTL of an untagged frame.
fn ttl(frame: &[u8]) -> u8 {
    l3_of(frame)[8]
}

#[test]
fn the_kernel_gets_what_xgate_does_not_answer_and_sends_through_xgate() {
    let udp53 = udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        "198.51.100.7",
        "203.0.113.2",
        60,
        5353,
        53,
        b"query",
    );
    let mut udp53_v6 = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(UPSTREAM), mac(GW_WAN))
        .ipv6(ip6("2001:db8:9::7"), ip6("2001:db8:1::2"), 60)
        .udp(5353, 53)
        .write(&mut udp53_v6, b"query6")
        .unwrap();
    let lan_udp53 = udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "192.168.1.1",
        64,
        5000,
        53,
        b"no tap here",
    );
    let ping = icmp4_echo(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.7",
        "203.0.113.2",
        60,
        7,
        1,
        b"ping",
    );
    let telnet = tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.7",
        "203.0.113.2",
        40000,
        23,
        1,
        0,
        "S",
        b"",
    );
    let ssh_syn = tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.7",
        "203.0.113.2",
        40001,
        2222,
        100,
        0,
        "S",
        b"",
    );
    // The kernel's answers: its tap does no ARP, so frames come addressed
    // to the tap's own MAC.
    let ssh_synack = tcp4_seg(
        mac(GW_WAN),
        mac(GW_WAN),
        "203.0.113.2",
        "198.51.100.7",
        22,
        40001,
        500,
        101,
        "SA",
        b"",
    );
    let own_syn = tcp4_seg(
        mac(GW_WAN),
        mac(GW_WAN),
        "203.0.113.2",
        "198.51.100.9",
        45000,
        443,
        900,
        0,
        "S",
        b"",
    );
    let own_synack = tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.9",
        "203.0.113.2",
        443,
        45000,
        7000,
        901,
        "SA",
        b"",
    );
    let stray_synack = tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.9",
        "203.0.113.2",
        443,
        45001,
        7000,
        901,
        "SA",
        b"",
    );
    let mut mdns = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(GW_WAN), [0x33, 0x33, 0, 0, 0, 0xfb])
        .ipv6(ip6("2001:db8:1::2"), ip6("ff02::fb"), 255)
        .udp(5353, 5353)
        .write(&mut mdns, b"mdns")
        .unwrap();

    let o = run(
        "punt",
        &config(),
        &[
            (
                "wan",
                vec![
                    (1.0, udp53.clone()),
                    (1.2, udp53_v6.clone()),
                    (1.3, ping),
                    (1.4, telnet),
                    (1.5, ssh_syn),
                    (2.1, own_synack.clone()),
                    (2.2, stray_synack),
                ],
            ),
            ("lan", vec![(1.1, lan_udp53)]),
            (
                "xg-wan",
                vec![(1.6, ssh_synack), (2.0, own_syn), (3.0, mdns.clone())],
            ),
        ],
    );
    golden_trace("punt", &o.trace);

    // To the kernel: DNS over v4 and v6 as received, the ssh SYN with its
    // port redirected, the answer to the kernel's own connection. Not the
    // echo request (xgate answers), not telnet (filter INPUT), not the
    // stray SYN-ACK (no connection: INVALID, dropped by INPUT).
    let kernel = o.frames("xg-wan");
    assert_eq!(kernel.len(), 4, "{}", o.report.summary());
    assert_eq!(kernel[0], udp53);
    assert_eq!(kernel[1], udp53_v6);
    assert_eq!(flow4(&kernel[2]), "198.51.100.7:40001 > 203.0.113.2:22");
    assert_eq!(kernel[3], own_synack);
    assert_eq!(o.drops("filter_input"), 2, "telnet and the stray SYN-ACK");

    // Out of wan: the echo reply, the kernel's SYN-ACK with the port the
    // client used, the kernel's own SYN, the kernel's multicast as built.
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 4, "{}", o.report.summary());
    assert_eq!(
        flow4(&wan[0]),
        "203.0.113.2:7 > 198.51.100.7:7",
        "echo reply"
    );
    assert_eq!(flow4(&wan[1]), "203.0.113.2:2222 > 198.51.100.7:40001");
    assert_eq!(
        &wan[1][..6],
        &mac(UPSTREAM),
        "xgate's neighbour, not the tap's MAC"
    );
    assert_eq!(
        ttl(&wan[1]),
        64,
        "the router's own packet: no TTL decrement"
    );
    assert_eq!(flow4(&wan[2]), "203.0.113.2:45000 > 198.51.100.9:443");
    assert_eq!(&wan[2][..6], &mac(UPSTREAM));
    assert_eq!(wan[3], mdns);

    // lan has no tap: the router answers as a host with no listener.
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1);
    assert_eq!(l3_of(&lan[0])[9], 1, "ICMP");
    assert_eq!(l3_of(&lan[0])[20], 3, "destination unreachable");
    assert_eq!(l3_of(&lan[0])[21], 3, "port unreachable");
}

/// Broadcasts as Linux handles them (`ip_route_input_slow`'s brd_input,
/// `bc_forwarding=0`): a DHCP client's 0.0.0.0 -> 255.255.255.255 and a
/// subnet broadcast reach the host's services through the ingress
/// interface's tap (after filter INPUT); nothing is routed back out, ARPed
/// for or answered with an error; a directed broadcast from another
/// subnet is not forwarded; an echo request to a broadcast is ignored.
#[test]
fn broadcasts_reach_the_tap_and_are_never_routed() {
    let cfg = Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
        .config(
            r#"
[firewall]
rules = """
*filter
:INPUT DROP [0:0]
-A INPUT -p udp --dport 67 -j ACCEPT
-A INPUT -p udp --dport 137 -j ACCEPT
-A INPUT -p udp --dport 138 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
"""
"#,
        )
        .replace(
            "address = [\"192.168.1.1/24\"]",
            "address = [\"192.168.1.1/24\"]\ntap = \"xg-lan\"",
        );
    assert!(cfg.contains("tap = \"xg-lan\""), "{cfg}");
    let bcast = [0xff; 6];
    let client = "02:aa:00:00:00:99";
    let discover = udp4(
        mac(client),
        bcast,
        &[],
        "0.0.0.0",
        "255.255.255.255",
        64,
        68,
        67,
        b"DHCPDISCOVER",
    );
    let netbios = udp4(
        mac(HOST),
        bcast,
        &[],
        "192.168.1.10",
        "192.168.1.255",
        64,
        138,
        138,
        b"netbios",
    );
    // A subnet broadcast sent to the router's MAC, on a port INPUT drops:
    // filtered like any local packet, and no port unreachable.
    let unicast_mac_bcast = udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "192.168.1.255",
        64,
        5000,
        9999,
        b"x",
    );
    let ping_bcast = icmp4_echo(
        mac(HOST),
        bcast,
        "192.168.1.10",
        "192.168.1.255",
        64,
        9,
        1,
        b"smurf",
    );
    // From the WAN, to the LAN's broadcast address (a smurf amplifier).
    let directed = udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        "198.51.100.7",
        "192.168.1.255",
        60,
        5000,
        137,
        b"directed",
    );
    let o = run(
        "broadcast",
        &cfg,
        &[
            (
                "lan",
                vec![
                    (1.0, discover.clone()),
                    (1.1, netbios.clone()),
                    (1.2, unicast_mac_bcast),
                    (1.3, ping_bcast),
                ],
            ),
            ("wan", vec![(1.4, directed.clone())]),
        ],
    );
    let kernel = o.frames("xg-lan");
    assert_eq!(kernel.len(), 2, "{}", o.report.summary());
    assert_eq!(kernel[0], discover, "DHCPDISCOVER as received");
    assert_eq!(kernel[1], netbios);
    assert!(
        o.frames("lan").is_empty(),
        "nothing routed back, no ARP, no error"
    );
    // The directed broadcast is delivered locally on wan, which has no
    // tap: dropped there, not forwarded to the LAN, and not answered.
    assert!(o.frames("wan").is_empty(), "no error to the WAN sender");
    assert_eq!(o.drops("local_no_listener"), 1, "the directed broadcast");
    assert_eq!(o.drops("filter_input"), 1, "the broadcast to port 9999");
    assert_eq!(o.drops("local_icmp_ignored"), 1, "echo to a broadcast");
}

/// `tap_groups`: multicast groups the host's daemons listen to (mDNS,
/// OSPF) go to the tap of the interface they arrive by; other groups are
/// still not routed, and an interface without the group drops it.
#[test]
fn tap_groups_reach_the_tap_other_multicast_is_not_routed() {
    let cfg = Office::new()
        .wan_line(r#"tap = "xg-wan""#)
        .wan_line(r#"tap_groups = ["224.0.0.251", "224.0.0.5/32", "ff02::fb"]"#)
        .config("");
    let mdns = udp4(
        mac(UPSTREAM),
        [0x01, 0x00, 0x5e, 0, 0, 0xfb],
        &[],
        "203.0.113.9",
        "224.0.0.251",
        255,
        5353,
        5353,
        b"mdns",
    );
    let mut ospf = udp4(
        mac(UPSTREAM),
        [0x01, 0x00, 0x5e, 0, 0, 5],
        &[],
        "203.0.113.9",
        "224.0.0.5",
        1,
        0,
        0,
        b"hello",
    );
    ospf[14 + 9] = 89; // OSPF, not UDP
    fix_ipv4_checksum(&mut ospf[14..]);
    let mut mdns6 = Vec::new();
    etherparse::PacketBuilder::ethernet2(mac(UPSTREAM), [0x33, 0x33, 0, 0, 0, 0xfb])
        .ipv6(ip6("fe80::9"), ip6("ff02::fb"), 255)
        .udp(5353, 5353)
        .write(&mut mdns6, b"mdns6")
        .unwrap();
    let ssdp = udp4(
        mac(UPSTREAM),
        [0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa],
        &[],
        "203.0.113.9",
        "239.255.255.250",
        4,
        1900,
        1900,
        b"ssdp",
    );
    let lan_mdns = udp4(
        mac(HOST),
        [0x01, 0x00, 0x5e, 0, 0, 0xfb],
        &[],
        "192.168.1.10",
        "224.0.0.251",
        255,
        5353,
        5353,
        b"lan mdns",
    );
    let o = run(
        "tap_groups",
        &cfg,
        &[
            (
                "wan",
                vec![
                    (1.0, mdns.clone()),
                    (1.1, ospf.clone()),
                    (1.2, mdns6.clone()),
                    (1.3, ssdp),
                ],
            ),
            ("lan", vec![(1.4, lan_mdns)]),
        ],
    );
    let kernel = o.frames("xg-wan");
    assert_eq!(kernel.len(), 3, "{}", o.report.summary());
    assert_eq!(kernel[0], mdns);
    assert_eq!(kernel[1], ospf);
    assert_eq!(kernel[2], mdns6);
    assert_eq!(o.drops("multicast_not_routed"), 2, "SSDP, and mDNS on lan");
    assert!(o.frames("lan").is_empty() && o.frames("wan").is_empty());
}

/// A directed broadcast from outside to the LAN's broadcast address, and
/// one with TTL 1; what comes out of the LAN and back out of the WAN.
fn directed(bc_forwarding: bool) -> (Vec<Vec<u8>>, usize) {
    let cfg = Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
        .config("");
    let cfg = if bc_forwarding {
        cfg.replace(
            "address = [\"203.0.113.2/24\"]",
            "address = [\"203.0.113.2/24\"]\nbc_forwarding = true",
        )
    } else {
        cfg
    };
    assert_eq!(cfg.contains("bc_forwarding"), bc_forwarding, "{cfg}");
    let to_bcast = |ttl: u8| {
        udp4(
            mac(UPSTREAM),
            mac(GW_WAN),
            &[],
            "198.51.100.7",
            "192.168.1.255",
            ttl,
            5000,
            137,
            b"wake",
        )
    };
    let o = run(
        if bc_forwarding {
            "bc_fwd_on"
        } else {
            "bc_fwd_off"
        },
        &cfg,
        &[("wan", vec![(0.0, to_bcast(64)), (0.1, to_bcast(1))])],
    );
    (o.frames("lan"), o.frames("wan").len())
}

#[test]
fn directed_broadcasts_are_forwarded_only_with_bc_forwarding() {
    // Linux's default: a directed broadcast from another subnet is not
    // forwarded (it is the router's, as a local broadcast).
    let (lan, wan) = directed(false);
    assert!(lan.is_empty(), "{lan:?}");
    assert_eq!(wan, 0, "no ICMP error about a broadcast");
    // bc_forwarding on the input interface: out of the LAN as a link-layer
    // broadcast, TTL decremented; the TTL 1 copy dies without an ICMP
    // error (none is sent about a broadcast).
    let (lan, wan) = directed(true);
    assert_eq!(lan.len(), 1, "{lan:?}");
    assert_eq!(&lan[0][..6], &[0xff; 6], "to the link's broadcast MAC");
    assert_eq!(ttl(&lan[0]), 63);
    assert_eq!(flow4(&lan[0]), "198.51.100.7:5000 > 192.168.1.255:137");
    assert_eq!(wan, 0, "no time exceeded about a broadcast");
}
