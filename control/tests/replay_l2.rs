//! Replay golden tests: logical interfaces and VLANs, ARP and NDP.

mod common;
use common::*;

const GW: &str = "02:00:00:00:00:01";
const GT: &str = "02:00:00:00:00:02"; // xgate on the trunk device
const HOST: &str = "02:aa:00:00:00:05";
const UP: &str = "02:bb:00:00:00:01";

/// A WAN and a trunk carrying an untagged LAN, VLAN 10 and QinQ 100.20.
const VLANS: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.0.1/24"]

[[interface]]
name = "lan10"
device = "eth1"
vlan = 10
mac = "02:00:00:00:00:02"
address = ["192.168.10.1/24", "2001:db8:10::1/64"]

[[interface]]
name = "svc"
device = "eth1"
vlan = [100, 20]
mac = "02:00:00:00:00:02"
address = ["192.168.20.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "192.168.10.20"
mac = "02:aa:00:00:00:05"
dev = "lan10"

[[neighbor]]
ip = "192.168.20.30"
mac = "02:aa:00:00:00:05"
dev = "svc"
"#;

#[test]
fn vlan_tagged_in_untagged_out_and_back() {
    let o = run(
        "vlan",
        VLANS,
        &[
            (
                "eth1",
                vec![
                    // VLAN 10 -> WAN: tag popped.
                    (
                        0.0,
                        udp4(
                            mac(HOST),
                            mac(GT),
                            &[10],
                            "192.168.10.20",
                            "8.8.8.8",
                            64,
                            1000,
                            53,
                            b"q10",
                        ),
                    ),
                    // QinQ 100.20 -> WAN.
                    (
                        0.1,
                        udp4(
                            mac(HOST),
                            mac(GT),
                            &[100, 20],
                            "192.168.20.30",
                            "8.8.8.8",
                            64,
                            1000,
                            53,
                            b"qq",
                        ),
                    ),
                    // An unknown VLAN is dropped.
                    (
                        0.2,
                        udp4(
                            mac(HOST),
                            mac(GT),
                            &[99],
                            "192.168.99.9",
                            "8.8.8.8",
                            64,
                            1000,
                            53,
                            b"no",
                        ),
                    ),
                    // Not our MAC: dropped.
                    (
                        0.3,
                        udp4(
                            mac(HOST),
                            mac("02:99:99:99:99:99"),
                            &[10],
                            "192.168.10.20",
                            "8.8.8.8",
                            64,
                            1,
                            2,
                            b"x",
                        ),
                    ),
                ],
            ),
            (
                "wan",
                vec![
                    // Back to VLAN 10 and to QinQ: tags pushed.
                    (
                        0.5,
                        udp4(
                            mac(UP),
                            mac(GW),
                            &[],
                            "8.8.8.8",
                            "192.168.10.20",
                            60,
                            53,
                            1000,
                            b"r10",
                        ),
                    ),
                    (
                        0.6,
                        udp4(
                            mac(UP),
                            mac(GW),
                            &[],
                            "8.8.8.8",
                            "192.168.20.30",
                            60,
                            53,
                            1000,
                            b"rq",
                        ),
                    ),
                ],
            ),
        ],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 2);
    for f in &wan {
        let (tags, et, _) = l2(f);
        assert_eq!(
            (tags.as_slice(), et),
            (&[][..], 0x0800),
            "untagged on the WAN"
        );
    }
    let l10 = o.frames("lan10");
    assert_eq!(l10.len(), 1);
    assert_eq!(&l10[0][12..16], &[0x81, 0x00, 0x00, 10], "802.1Q tag 10");
    assert_eq!(&l10[0][0..6], &mac(HOST));
    let svc = o.frames("svc");
    assert_eq!(svc.len(), 1);
    assert_eq!(
        &svc[0][12..20],
        &[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 20],
        "802.1ad 100 + 802.1Q 20"
    );
    assert_eq!(o.drops("unknown_vlan"), 1);
    assert_eq!(o.drops("not_for_us"), 1);
    assert!(o.frames("lan").is_empty());
    golden_trace("vlan", &o.trace);
}

#[test]
fn arp_answers_learns_and_ignores() {
    let o = run(
        "arp",
        VLANS,
        &[(
            "eth1",
            vec![
                // who-has 192.168.10.1 (ours on lan10) tell .50: answered, .50 learned.
                (
                    0.0,
                    arp(
                        mac(HOST),
                        [0xff; 6],
                        &[10],
                        1,
                        mac(HOST),
                        "192.168.10.50",
                        [0; 6],
                        "192.168.10.1",
                    ),
                ),
                // who-has 203.0.113.2 asked on lan10: the WAN address is not answered there.
                (
                    0.1,
                    arp(
                        mac(HOST),
                        [0xff; 6],
                        &[10],
                        1,
                        mac(HOST),
                        "192.168.10.50",
                        [0; 6],
                        "203.0.113.2",
                    ),
                ),
                // Traffic to the learned host needs no ARP request.
                (
                    0.2,
                    udp4(
                        mac(HOST),
                        mac(GT),
                        &[10],
                        "192.168.10.20",
                        "192.168.10.50",
                        64,
                        1,
                        2,
                        b"hi",
                    ),
                ),
                // An ARP probe (RFC 5227, sender 0.0.0.0) for our address is answered.
                (
                    0.3,
                    arp(
                        mac(HOST),
                        [0xff; 6],
                        &[],
                        1,
                        mac(HOST),
                        "0.0.0.0",
                        [0; 6],
                        "192.168.0.1",
                    ),
                ),
            ],
        )],
    );
    let l10 = o.frames("lan10");
    assert_eq!(l10.len(), 2, "one ARP reply, one forwarded packet");
    let (tags, et, off) = l2(&l10[0]);
    assert_eq!((tags.as_slice(), et), (&[10u16][..], 0x0806));
    let a = &l10[0][off..];
    assert_eq!(&a[6..8], &[0, 2], "is-at");
    assert_eq!(&a[8..14], &mac(GT));
    assert_eq!(&a[14..18], &ip4("192.168.10.1"));
    assert_eq!(&a[18..24], &mac(HOST));
    assert_eq!(&a[24..28], &ip4("192.168.10.50"));
    assert_eq!(&l10[0][0..6], &mac(HOST), "unicast back to the asker");
    let (_, et, _) = l2(&l10[1]);
    assert_eq!(
        (et, &l10[1][0..6]),
        (0x0800, &mac(HOST)[..]),
        "forwarded with the learned MAC"
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1, "probe answered untagged");
    let (_, _, off) = l2(&lan[0]);
    assert_eq!(&lan[0][off + 24..off + 28], &ip4("0.0.0.0"));
    assert_eq!(o.drops("arp_not_for_us"), 1);
    golden_trace("arp", &o.trace);
}

#[test]
fn ndp_solicitation_answered_and_neighbor_resolved() {
    let ours = "2001:db8:10::1";
    let host = "2001:db8:10::50";
    let o = run(
        "ndp",
        VLANS,
        &[(
            "lan10",
            vec![
                // NS for our address, to its solicited-node group.
                (
                    0.0,
                    tagged(
                        nd(
                            mac(HOST),
                            [0x33, 0x33, 0xff, 0, 0, 1],
                            host,
                            "ff02::1:ff00:1",
                            135,
                            0,
                            ours,
                            mac(HOST),
                        ),
                        &[10],
                    ),
                ),
                // NS for somebody else's address: ignored.
                (
                    0.1,
                    tagged(
                        nd(
                            mac(HOST),
                            [0x33, 0x33, 0xff, 0, 0, 9],
                            host,
                            "ff02::1:ff00:9",
                            135,
                            0,
                            "2001:db8:10::9",
                            mac(HOST),
                        ),
                        &[10],
                    ),
                ),
                // Echo to our WAN address from the (now learned) host.
                (
                    0.2,
                    tagged(
                        icmp6_echo(
                            mac(HOST),
                            mac(GT),
                            host,
                            "2001:db8:1::2",
                            64,
                            7,
                            1,
                            b"ping6",
                        ),
                        &[10],
                    ),
                ),
            ],
        )],
    );
    let l10 = o.frames("lan10");
    assert_eq!(l10.len(), 2, "an NA and an echo reply");
    let (tags, et, off) = l2(&l10[0]);
    assert_eq!((tags.as_slice(), et), (&[10u16][..], 0x86dd));
    let p = &l10[0][off..];
    assert_eq!(p[7], 255, "hop limit 255");
    assert_eq!(&p[8..24], &ip6(ours));
    assert_eq!(&p[24..40], &ip6(host));
    assert_eq!(
        (p[40], p[44] & 0xe0),
        (136, 0xe0),
        "NA with router, solicited, override"
    );
    assert_eq!(&p[48..64], &ip6(ours));
    assert_eq!(
        (p[64], p[65], &p[66..72]),
        (2, 1, &mac(GT)[..]),
        "target link-layer address"
    );
    let (_, _, off) = l2(&l10[1]);
    let e = &l10[1][off..];
    assert_eq!(
        (e[40], &e[8..24], &e[24..40]),
        (129, &ip6("2001:db8:1::2")[..], &ip6(host)[..])
    );
    assert_eq!(o.drops("nd_ignored"), 1);
    golden_trace("ndp", &o.trace);
}

#[test]
fn unresolved_neighbor_retries_then_host_unreachable() {
    // 192.168.0.77 never answers: three ARP requests a second apart, the
    // queue holds 4 packets (the 5th is dropped), then host unreachable.
    let mut frames = Vec::new();
    for i in 0..5 {
        frames.push((
            i as f64 * 0.01,
            udp4(
                mac(UP),
                mac(GW),
                &[],
                "198.51.100.9",
                "192.168.0.77",
                64,
                5000 + i,
                80,
                b"syn",
            ),
        ));
    }
    // Traffic to the router itself at 1.5, 2.5 and 3.5 s: time passes.
    let tick = udp4(
        mac(UP),
        mac(GW),
        &[],
        "198.51.100.9",
        "203.0.113.2",
        64,
        9,
        9,
        b"tick",
    );
    for t in [1.5, 2.5, 3.5] {
        frames.push((t, tick.clone()));
    }
    let o = run("neighbor_timeout", VLANS, &[("wan", frames)]);
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 3, "three ARP requests");
    for (i, (ts, f)) in o.out["lan"].iter().enumerate() {
        let (_, et, off) = l2(f);
        assert_eq!(
            (et, &f[off + 24..off + 28]),
            (0x0806, &ip4("192.168.0.77")[..])
        );
        assert_eq!(ts.as_secs() - T0, i as u64, "one request a second");
    }
    assert_eq!(o.drops("neighbor_queue_full"), 1);
    assert_eq!(o.drops("neighbor_unresolved"), 4);
    // Back on the WAN: 3 port unreachables for the ticks, and a host
    // unreachable for each of the 4 held packets (the per-host bucket of 6
    // refills a token a second, so all fit).
    let unreach: Vec<u8> = o
        .frames("wan")
        .iter()
        .map(|f| {
            let (_, _, off) = l2(f);
            f[off + 20 + 1]
        })
        .collect();
    assert_eq!(
        unreach.iter().filter(|c| **c == 1).count(),
        4,
        "host unreachable"
    );
    assert_eq!(unreach.iter().filter(|c| **c == 3).count(), 3);
    golden_trace("neighbor_timeout", &o.trace);
}

/// As Linux's ip_forward: a frame to the link's broadcast or a multicast
/// MAC is not forwarded, whatever unicast IP it carries; the same packet
/// to the router's MAC is.
#[test]
fn a_frame_to_a_link_group_is_not_forwarded() {
    let to = |dst: &str, sport: u16| {
        udp4(
            mac(HOST),
            mac(dst),
            &[],
            "192.168.0.20",
            "8.8.8.8",
            64,
            sport,
            53,
            b"q",
        )
    };
    let o = run(
        "l2-group",
        VLANS,
        &[(
            "eth1",
            vec![
                (0.0, to("ff:ff:ff:ff:ff:ff", 1000)),
                (0.1, to("01:00:5e:00:00:fb", 1001)),
                (0.2, to(GT, 1002)),
            ],
        )],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 1, "{}", o.trace);
    assert_eq!(tuple4(&wan[0]).1, 1002);
    assert_eq!(o.drops("not_for_us"), 2);
}
