//! Replay golden tests of the filter tables and connection states: the
//! red/blue namespaces of seeds/004 (`:FORWARD DROP`, the NAVY chain with
//! RETURN, masquerade), REJECT answers, INVALID SYN+FIN, ESTABLISHED and
//! RELATED allowed back, UDP timeout expiry in pcap time, LOG.

mod common;
use common::*;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const HOST: &str = "02:aa:00:00:00:10";

/// The office gateway with host 192.168.1.10 on lan: lan 192.168.1.0/24
/// masqueraded out of wan 203.0.113.2, stateful FORWARD with a DROP
/// policy; `extra` comes before `[firewall]`.
fn office(filter: &str, extra: &str) -> String {
    Office::new()
        .neighbor("192.168.1.10", HOST, "lan")
        .config(&format!(
            r#"{extra}
[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
{filter}
COMMIT
"""
"#
        ))
}

fn out_udp(sport: u16, dport: u16, ttl: u8) -> Vec<u8> {
    udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        ttl,
        sport,
        dport,
        b"probe",
    )
}

fn in_udp(src: &str, sport: u16, dport: u16) -> Vec<u8> {
    in_udp_to(src, "203.0.113.2", sport, dport)
}

fn in_udp_to(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac(UPSTREAM),
        mac(GW_WAN),
        &[],
        src,
        dst,
        60,
        sport,
        dport,
        b"answer",
    )
}

const STATEFUL: &str = ":FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT";

#[test]
fn established_and_related_allowed_back_unsolicited_dropped() {
    // A traceroute-style probe (TTL 1 at the next router) goes out
    // masqueraded; the router beyond answers time exceeded quoting the
    // translated probe; the error must reach the inside host with the
    // quote translated back (RFC 5508).
    let probe = out_udp(33434, 33435, 5);
    let mut quoted = l3_of(&udp4(
        mac(GW_WAN),
        mac(UPSTREAM),
        &[],
        "203.0.113.2",
        "198.51.100.7",
        1,
        33434,
        33435,
        b"probe",
    ))
    .to_vec();
    quoted.truncate(28);
    let time_exceeded = icmp4_error(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.1",
        "203.0.113.2",
        11,
        0,
        &quoted,
    );
    let o = run(
        "fw_stateful",
        &office(STATEFUL, ""),
        &[
            ("lan", vec![(0.0, out_udp(5000, 53, 64)), (1.0, probe)]),
            (
                "wan",
                vec![
                    (0.5, in_udp("198.51.100.7", 53, 5000)),
                    // Unsolicited, straight to the inside host: NEW from
                    // wan, no rule accepts it: policy DROP.
                    (0.6, in_udp_to("198.51.100.9", "192.168.1.10", 53, 5001)),
                    (1.5, time_exceeded),
                ],
            ),
        ],
    );
    let wan = o.frames("wan");
    assert_eq!(
        wan.iter().map(|f| flow4(f)).collect::<Vec<_>>(),
        [
            "203.0.113.2:5000 > 198.51.100.7:53",
            "203.0.113.2:33434 > 198.51.100.7:33435"
        ]
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 2);
    assert_eq!(flow4(&lan[0]), "198.51.100.7:53 > 192.168.1.10:5000");
    // The error, translated back: outer destination and the quoted source.
    let err = l3_of(&lan[1]);
    assert_eq!(&err[16..20], &ip4("192.168.1.10"), "outer destination");
    assert_eq!(err[20], 11, "time exceeded");
    let inner = &err[28..];
    assert_eq!(&inner[12..16], &ip4("192.168.1.10"), "quoted source");
    assert_eq!(&inner[16..20], &ip4("198.51.100.7"), "quoted destination");
    assert_eq!(u16::from_be_bytes([inner[20], inner[21]]), 33434);
    assert_eq!(o.drops("filter_forward"), 1, "the unsolicited datagram");
    golden_trace("fw_stateful", &o.trace);
}

#[test]
fn invalid_syn_fin_dropped() {
    let synfin = tcp4_seg(
        mac(HOST),
        mac(GW_LAN),
        "192.168.1.10",
        "198.51.100.7",
        40000,
        80,
        1,
        0,
        "SF",
        b"",
    );
    let syn = tcp4_seg(
        mac(HOST),
        mac(GW_LAN),
        "192.168.1.10",
        "198.51.100.7",
        40001,
        80,
        1,
        0,
        "S",
        b"",
    );
    let o = run(
        "fw_invalid",
        &office(STATEFUL, ""),
        &[("lan", vec![(0.0, synfin), (0.1, syn)])],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 1, "only the plain SYN leaves");
    assert_eq!(flow4(&wan[0]), "203.0.113.2:40001 > 198.51.100.7:80");
    assert_eq!(o.drops("filter_forward"), 1);
    golden_trace("fw_invalid", &o.trace);
}

#[test]
fn reject_answers_with_the_chosen_error() {
    let filter = "-A FORWARD -p tcp --dport 23 -j REJECT --reject-with tcp-reset
-A FORWARD -p udp --dport 69 -j REJECT
-A FORWARD -d 198.51.100.99 -j REJECT --reject-with icmp-host-prohibited";
    let telnet = tcp4_seg(
        mac(HOST),
        mac(GW_LAN),
        "192.168.1.10",
        "198.51.100.7",
        40000,
        23,
        77,
        0,
        "S",
        b"",
    );
    let tftp = out_udp(6000, 69, 64);
    let prohibited = udp4(
        mac(HOST),
        mac(GW_LAN),
        &[],
        "192.168.1.10",
        "198.51.100.99",
        64,
        6001,
        9,
        b"x",
    );
    let o = run(
        "fw_reject",
        &office(filter, ""),
        &[("lan", vec![(0.0, telnet), (0.1, tftp), (0.2, prohibited)])],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 3);
    // RST from the address the client tried, ack = seq + 1.
    assert_eq!(flow4(&lan[0]), "198.51.100.7:23 > 192.168.1.10:40000");
    let t = &l3_of(&lan[0])[20..];
    assert_eq!(t[13], 0x14, "RST|ACK");
    assert_eq!(u32::from_be_bytes([t[8], t[9], t[10], t[11]]), 78);
    // Port unreachable (REJECT's default) and host prohibited.
    assert_eq!(&l3_of(&lan[1])[20..22], &[3, 3]);
    assert_eq!(&l3_of(&lan[2])[20..22], &[3, 10]);
    assert!(o.frames("wan").is_empty());
    assert_eq!(o.drops("filter_reject"), 3);
    golden_trace("fw_reject", &o.trace);
}

#[test]
fn udp_timeout_expires_in_pcap_time() {
    // udp = 10 s: an answer 5 s after the query gets through, one 15 s
    // after its query finds the connection expired: it is a new datagram
    // to the router's own address, which has no listener.
    let o = run(
        "fw_udp_timeout",
        &office(STATEFUL, "\n[timeouts]\nudp = 10\n"),
        &[
            (
                "lan",
                vec![(0.0, out_udp(5000, 53, 64)), (0.0, out_udp(5001, 53, 64))],
            ),
            (
                "wan",
                vec![
                    (5.0, in_udp("198.51.100.7", 53, 5000)),
                    (15.0, in_udp("198.51.100.7", 53, 5001)),
                ],
            ),
        ],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1);
    assert_eq!(flow4(&lan[0]), "198.51.100.7:53 > 192.168.1.10:5000");
    assert_eq!(o.drops("local_no_listener"), 1);
    assert!(o.trace.contains("#4 conntrack ctstate NEW"), "{}", o.trace);
    golden_trace("fw_udp_timeout", &o.trace);
}

// ---------------------------------------------------------------- seeds/004

/// seeds/004's red/blue namespaces behind a gateway: red (10.16.0.2) on
/// br0, blue (10.16.0.130) on a second bridge port routed as its own
/// /25 so that red <-> blue crosses FORWARD, eth0 to the outside. The
/// rule lines are the seed's, in its order; one line is added (marked)
/// because in the seed Docker's own FORWARD rules let br0 out.
const REDBLUE: &str = r#"
[[interface]]
name = "eth0"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "br0"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["10.16.0.1/25"]

[[interface]]
name = "blue"
device = "eth2"
mac = "02:00:00:00:00:03"
address = ["10.16.0.129/25"]

[[interface]]
name = "guest"
device = "eth3"
mac = "02:00:00:00:00:04"
address = ["10.99.0.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "eth0"

[[neighbor]]
ip = "10.16.0.2"
mac = "02:aa:00:00:00:02"
dev = "br0"

[[neighbor]]
ip = "10.16.0.130"
mac = "02:aa:00:00:01:30"
dev = "blue"

[firewall]
rules = """
iptables -P FORWARD DROP
iptables -N NAVY
iptables -I FORWARD 1 -j NAVY
iptables -A  NAVY -j RETURN
iptables -I NAVY 1 -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
iptables -I NAVY 2 -o br0 -j ACCEPT
# added: the seed's host let br0 out through Docker's rules
iptables -A FORWARD -i br0 -o eth0 -j ACCEPT
iptables -t nat -A POSTROUTING -s 10.16.0.0/24 -o eth0 -j MASQUERADE
"""
"#;

#[test]
fn seed004_red_blue_navy_chain() {
    let red = mac("02:aa:00:00:00:02");
    let blue = mac("02:aa:00:00:01:30");
    let guest = mac("02:aa:00:00:09:09");
    let o = run(
        "fw_redblue",
        REDBLUE,
        &[
            (
                "br0",
                vec![
                    // red pings blue: NAVY rule 1.
                    (
                        0.0,
                        icmp4_echo(
                            red,
                            mac(GW_LAN),
                            "10.16.0.2",
                            "10.16.0.130",
                            64,
                            7,
                            1,
                            b"hi",
                        ),
                    ),
                    // red pings the outside: RETURN, then the added rule; masqueraded.
                    (
                        0.2,
                        icmp4_echo(
                            red,
                            mac(GW_LAN),
                            "10.16.0.2",
                            "198.51.100.7",
                            64,
                            8,
                            1,
                            b"hi",
                        ),
                    ),
                ],
            ),
            (
                "blue",
                vec![(
                    0.1,
                    icmp4_echo(
                        blue,
                        mac("02:00:00:00:00:03"),
                        "10.16.0.130",
                        "10.16.0.2",
                        64,
                        7,
                        1,
                        b"hi",
                    ),
                )],
            ),
            (
                "eth0",
                vec![(
                    0.3,
                    icmp4_reply(
                        mac(UPSTREAM),
                        mac(GW_WAN),
                        "198.51.100.7",
                        "203.0.113.2",
                        8,
                        1,
                        b"hi",
                    ),
                )],
            ),
            (
                "guest",
                // Not in NAVY's subnet, not to br0, not from br0: policy DROP.
                vec![(
                    0.4,
                    icmp4_echo(
                        guest,
                        mac("02:00:00:00:00:04"),
                        "10.99.0.5",
                        "198.51.100.7",
                        64,
                        9,
                        1,
                        b"hi",
                    ),
                )],
            ),
        ],
    );
    let blue_out = o.frames("blue");
    assert_eq!(blue_out.len(), 1);
    assert_eq!(flow4(&blue_out[0]), "10.16.0.2:7 > 10.16.0.130:7");
    let br0 = o.frames("br0");
    assert_eq!(
        br0.iter().map(|f| flow4(f)).collect::<Vec<_>>(),
        [
            "10.16.0.130:7 > 10.16.0.2:7",
            "198.51.100.7:8 > 10.16.0.2:8"
        ]
    );
    let eth0 = o.frames("eth0");
    assert_eq!(eth0.len(), 1);
    assert_eq!(flow4(&eth0[0]), "203.0.113.2:8 > 198.51.100.7:8");
    assert_eq!(o.drops("filter_forward"), 1, "the guest's ping");
    golden_trace("fw_redblue", &o.trace);
}

/// A datagram's first fragment (MF, offset 0) and a later one (offset
/// 16 x 8 bytes, last), made from `frame`, with identification `id`.
fn fragments(frame: Vec<u8>, id: u16) -> (Vec<u8>, Vec<u8>) {
    let mut first = frame;
    first[14 + 4..14 + 6].copy_from_slice(&id.to_be_bytes());
    let mut later = first.clone();
    first[14 + 6] = 0x20; // MF, offset 0, no DF
    fix_ipv4_checksum(&mut first[14..34]);
    later[14 + 6] = 0x00;
    later[14 + 7] = 0x10;
    fix_ipv4_checksum(&mut later[14..34]);
    (first, later)
}

#[test]
fn later_fragments_follow_their_first_fragment() {
    // Linux reassembles before conntrack; xgate remembers what became of a
    // datagram's first fragment: a later fragment (no UDP header) takes
    // its translation and its verdict.
    let (first, later) = fragments(out_udp(7000, 53, 64), 0x1234);
    let o = run(
        "fw_fragments",
        &office(STATEFUL, ""),
        &[("lan", vec![(0.0, first), (0.1, later.clone())])],
    );
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 2, "both fragments, translated");
    for f in &wan {
        assert_eq!(&l3_of(f)[12..16], &ip4("203.0.113.2"));
        verify_frame(f, false).unwrap();
    }
    // The later fragment's payload is not a UDP header: left alone.
    assert_eq!(&l3_of(&wan[1])[20..], &l3_of(&later)[20..]);
    assert!(
        o.trace
            .contains("#2 filter-fwd follows its first fragment: forwarded"),
        "{}",
        o.trace
    );
    assert_eq!(o.drops("nat_fragment"), 0);

    // Out of order (the later fragment first): it cannot be matched yet
    // and is not held; dropped and counted rather than sent untranslated.
    let (first, later) = fragments(out_udp(7001, 53, 64), 0x1235);
    let o = run(
        "fw_fragments_reordered",
        &office(STATEFUL, ""),
        &[("lan", vec![(0.0, later), (0.1, first)])],
    );
    assert_eq!(o.frames("wan").len(), 1, "only the first fragment");
    assert_eq!(o.drops("nat_fragment"), 1);

    // An unsolicited datagram from outside: FORWARD drops its first
    // fragment, and the later one shares that fate.
    let (first, later) = fragments(in_udp_to("198.51.100.9", "192.168.1.10", 9, 9), 0x77);
    let o = run(
        "fw_fragments_dropped",
        &office(STATEFUL, ""),
        &[("wan", vec![(0.0, first), (0.1, later)])],
    );
    assert!(o.frames("lan").is_empty());
    assert_eq!(o.drops("filter_forward"), 1);
    assert_eq!(o.drops("fragment_unforwarded"), 1);

    // A port forward: the later fragment gets the DNAT'd destination its
    // first fragment got (the port is in the first fragment only).
    let cfg = office(
        &format!("{STATEFUL}\n-A FORWARD -i wan -o lan -p udp -d 192.168.1.10 -j ACCEPT"),
        "",
    )
    .replace(
        "*nat\n",
        "*nat\n-A PREROUTING -i wan -p udp --dport 5353 -j DNAT --to-destination 192.168.1.10:53\n",
    );
    let (first, later) = fragments(in_udp_to("198.51.100.9", "203.0.113.2", 4000, 5353), 0x78);
    let o = run(
        "fw_fragments_dnat",
        &cfg,
        &[("wan", vec![(0.0, first), (0.1, later.clone())])],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 2, "both fragments, to the inside host");
    for f in &lan {
        assert_eq!(&l3_of(f)[16..20], &ip4("192.168.1.10"));
    }
    assert_eq!(&l3_of(&lan[0])[22..24], &53u16.to_be_bytes());
    assert_eq!(&l3_of(&lan[1])[20..], &l3_of(&later)[20..]);
}
