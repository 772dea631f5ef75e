//! Replay golden tests: local delivery (echo, port unreachable, reset),
//! TTL / hop limit exceeded, MTU (frag needed, packet too big, IPv4
//! fragmentation), ICMP rate limiting and the rules for not sending errors.

mod common;
use common::*;

const GW: &str = "02:00:00:00:00:01";
const GL: &str = "02:00:00:00:00:02";
const HOST: &str = "02:aa:00:00:00:05";
const UP: &str = "02:bb:00:00:00:01";

const CFG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]
mtu = 1280

[[interface]]
name = "slow"
device = "eth2"
mac = "02:00:00:00:00:03"
address = ["10.9.9.1/24"]
mtu = 576

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24", "2001:db8:2::1/64"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "198.51.100.0/24"
via = "10.9.9.2"

[[neighbor]]
ip = "10.9.9.2"
mac = "02:bb:00:00:00:02"
dev = "slow"

[[route]]
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:1::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "192.168.1.10"
mac = "02:aa:00:00:00:05"
dev = "lan"

[[neighbor]]
ip = "2001:db8:2::10"
mac = "02:aa:00:00:00:05"
dev = "lan"
"#;

fn ip_payload(f: &[u8]) -> &[u8] {
    let (_, et, off) = l2(f);
    if et == 0x86dd {
        &f[off + 40..]
    } else {
        &f[off + (f[off] & 0xf) as usize * 4..]
    }
}

fn src4(f: &[u8]) -> [u8; 4] {
    let (_, _, off) = l2(f);
    f[off + 12..off + 16].try_into().unwrap()
}

#[test]
fn local_delivery_echo_port_unreachable_reset() {
    let udp_in = udp4(
        mac(HOST),
        mac(GL),
        &[],
        "192.168.1.10",
        "192.168.1.1",
        64,
        5353,
        9999,
        b"anyone?",
    );
    let syn = tcp4(
        mac(HOST),
        mac(GL),
        "192.168.1.10",
        "192.168.1.1",
        40000,
        22,
        1000,
        true,
        None,
        b"",
    );
    let o = run(
        "local",
        CFG,
        &[(
            "lan",
            vec![
                (
                    0.0,
                    icmp4_echo(
                        mac(HOST),
                        mac(GL),
                        "192.168.1.10",
                        "192.168.1.1",
                        64,
                        0x1234,
                        1,
                        b"abcdefgh",
                    ),
                ),
                // Our WAN address answers from the LAN too; TTL 1 does not matter locally.
                (
                    0.1,
                    icmp4_echo(
                        mac(HOST),
                        mac(GL),
                        "192.168.1.10",
                        "203.0.113.2",
                        1,
                        0x1234,
                        2,
                        b"abcdefgh",
                    ),
                ),
                (0.2, udp_in.clone()),
                (0.3, syn),
                (
                    0.4,
                    icmp6_echo(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::10",
                        "2001:db8:2::1",
                        64,
                        9,
                        1,
                        b"v6",
                    ),
                ),
            ],
        )],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 5);
    // Echo replies: addresses swapped, type 0, id/seq/data kept.
    for (f, from) in [(&lan[0], "192.168.1.1"), (&lan[1], "203.0.113.2")] {
        assert_eq!(src4(f), ip4(from));
        let icmp = ip_payload(f);
        assert_eq!(&icmp[..2], &[0, 0]);
        assert_eq!(&icmp[4..6], &[0x12, 0x34]);
        assert_eq!(&icmp[8..], b"abcdefgh");
    }
    // Port unreachable quotes the datagram from its IP header on.
    let icmp = ip_payload(&lan[2]);
    assert_eq!(&icmp[..2], &[3, 3]);
    assert_eq!(
        &icmp[8..],
        &udp_in[14..],
        "the whole (small) datagram is quoted"
    );
    // TCP SYN to a closed port: RST+ACK, ack = seq + 1.
    let t = ip_payload(&lan[3]);
    assert_eq!(
        (
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]])
        ),
        (22, 40000)
    );
    assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 1001);
    assert_eq!(t[13], 0x14, "RST|ACK");
    // ICMPv6 echo reply.
    assert_eq!(ip_payload(&lan[4])[0], 129);
    assert_eq!(o.drops("local_no_listener"), 1, "the UDP datagram");
    golden_trace("local", &o.trace);
}

#[test]
fn ttl_and_hop_limit_exceeded() {
    let probe = udp4(
        mac(HOST),
        mac(GL),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        1,
        33434,
        33434,
        b"traceroute",
    );
    let o = run(
        "ttl",
        CFG,
        &[(
            "lan",
            vec![
                (0.0, probe.clone()),
                (
                    0.1,
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "192.168.1.10",
                        "198.51.100.7",
                        2,
                        33435,
                        33435,
                        b"hop2",
                    ),
                ),
                (
                    0.2,
                    udp6(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::10",
                        "2001:db8:ff::1",
                        1,
                        33434,
                        33434,
                        b"v6",
                    ),
                ),
            ],
        )],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 2);
    assert_eq!(
        src4(&lan[0]),
        ip4("192.168.1.1"),
        "from the interface the probe came in by"
    );
    let icmp = ip_payload(&lan[0]);
    assert_eq!(&icmp[..2], &[11, 0]);
    assert_eq!(&icmp[8..], &probe[14..], "the probe as it arrived (TTL 1)");
    assert_eq!(&ip_payload(&lan[1])[..2], &[3, 0], "ICMPv6 time exceeded");
    let wan = o.frames("slow");
    assert_eq!(wan.len(), 1, "TTL 2 goes through with TTL 1");
    let (_, _, off) = l2(&wan[0]);
    assert_eq!(wan[0][off + 8], 1);
    assert_eq!(o.drops("ttl_exceeded"), 2);
    golden_trace("ttl", &o.trace);
}

#[test]
fn mtu_frag_needed_too_big_and_fragmentation() {
    let payload: Vec<u8> = (0..1300u32).map(|i| (i * 7) as u8).collect();
    let mut big = udp4(
        mac(HOST),
        mac(GL),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        7,
        8,
        &payload,
    );
    big[14 + 6] &= !0x40; // clear DF: this one may be fragmented
    fix_ipv4_checksum(&mut big[14..]);
    let o = run(
        "mtu",
        CFG,
        &[(
            "lan",
            vec![
                (
                    0.0,
                    // DF set, as etherparse builds it.
                    udp4(
                        mac(HOST),
                        mac(GL),
                        &[],
                        "192.168.1.10",
                        "198.51.100.7",
                        64,
                        5,
                        6,
                        &payload,
                    ),
                ),
                (0.1, big.clone()),
                (
                    0.2,
                    udp6(
                        mac(HOST),
                        mac(GL),
                        "2001:db8:2::10",
                        "2001:db8:ff::1",
                        64,
                        5,
                        6,
                        &payload,
                    ),
                ),
            ],
        )],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 2);
    let icmp = ip_payload(&lan[0]);
    assert_eq!(&icmp[..2], &[3, 4], "fragmentation needed");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 576, "next-hop MTU");
    let icmp6 = ip_payload(&lan[1]);
    assert_eq!(icmp6[0], 2, "packet too big");
    assert_eq!(
        u32::from_be_bytes([icmp6[4], icmp6[5], icmp6[6], icmp6[7]]),
        1280
    );
    assert!(
        lan[1].len() - 14 <= 1280,
        "ICMPv6 error fits the minimum MTU"
    );
    // Without DF: fragments of at most 576 bytes whose data reassembles.
    let wan = o.frames("slow");
    assert!(wan.len() >= 2);
    let mut data = vec![0u8; 0];
    for (i, f) in wan.iter().enumerate() {
        let ip = &f[14..];
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert!(total <= 576, "fragment {i} of {total} bytes");
        let ff = u16::from_be_bytes([ip[6], ip[7]]);
        let (mf, off) = (ff & 0x2000 != 0, (ff & 0x1fff) as usize * 8);
        assert_eq!(mf, i + 1 < wan.len(), "MF on all but the last");
        assert_eq!(off, data.len(), "contiguous offsets");
        assert_eq!(ip[8], 63, "TTL decremented once");
        data.extend_from_slice(&ip[20..total]);
    }
    assert_eq!(
        data,
        big[34..].to_vec(),
        "UDP header and payload reassemble"
    );
    assert_eq!(o.drops("frag_needed"), 1);
    assert_eq!(o.drops("packet_too_big"), 1);
    golden_trace("mtu", &o.trace);
}

#[test]
fn icmp_rate_limit_and_no_error_about_errors() {
    let mut frames = Vec::new();
    for i in 0..10u16 {
        frames.push((
            0.0,
            udp4(
                mac(UP),
                mac(GW),
                &[],
                "8.8.4.4",
                "192.168.1.10",
                1,
                33434 + i,
                33434,
                b"p",
            ),
        ));
    }
    // An ICMP error with TTL 1 gets no time exceeded back (RFC 1122 3.2.2).
    let mut err = icmp4_echo(
        mac(UP),
        mac(GW),
        "8.8.4.4",
        "192.168.1.10",
        1,
        1,
        1,
        b"12345678",
    );
    err[34] = 3; // type: destination unreachable
    err[36] = 0;
    err[37] = 0;
    let c = !naive_sum(&err[34..], 0);
    err[36..38].copy_from_slice(&c.to_be_bytes());
    frames.push((0.1, err));
    // A broadcast-addressed frame gets no error either: it is not
    // forwarded.
    frames.push((
        0.2,
        udp4(
            mac(UP),
            [0xff; 6],
            &[],
            "8.8.4.4",
            "192.168.1.10",
            1,
            1,
            2,
            b"b",
        ),
    ));
    let o = run("ratelimit", CFG, &[("wan", frames)]);
    assert_eq!(
        o.frames("wan").len(),
        6,
        "burst of 6 per destination, then limited"
    );
    assert_eq!(
        o.report
            .drops
            .iter()
            .find(|(r, _)| r.name() == "ttl_exceeded")
            .unwrap()
            .1,
        11
    );
    // The broadcast frame is not forwarded at all (Linux's ip_forward
    // checks the link-layer type before the TTL).
    assert_eq!(o.drops("not_for_us"), 1);
    golden_trace("ratelimit", &o.trace);
}

#[test]
fn fragment_to_router_is_not_reassembled() {
    let mut f = icmp4_echo(
        mac(HOST),
        mac(GL),
        "192.168.1.10",
        "192.168.1.1",
        64,
        1,
        1,
        b"frag",
    );
    f[14 + 6] = 0x20; // MF
    fix_ipv4_checksum(&mut f[14..]);
    let o = run("local_fragment", CFG, &[("lan", vec![(0.0, f)])]);
    assert_eq!(o.drops("local_fragment"), 1);
    assert!(o.frames("lan").is_empty());
}
