//! Replay golden tests of the FTP and TFTP helpers on seeds/003's gateway
//! (public 168.126.127.6, LAN 192.168.1.0/24 masqueraded, ports 20, 21,
//! 23, 80 forwarded to 192.168.1.11), with the helper given by the config
//! shortcut `[conntrack] helpers`: a LAN client's active (PORT) and
//! passive (PASV) sessions through masquerade, an outside client's passive
//! session through the port forward (the server announces its inside
//! address), its active one (the server's data connection from port 20
//! out through the forward), EPRT/EPSV, a rewrite that changes the
//! payload's length with the sequence/acknowledgement/SACK adjustment of
//! the rest of the connection and a retransmission of the rewritten
//! segment, a command split across segments, malformed and foreign
//! addresses, and TFTP. Every emitted frame's checksums are verified by
//! `run`.

mod common;
use common::*;
use etherparse::{PacketBuilder, TcpOptionElement};

fn portfw() -> String {
    Office::new()
        .wan(&["168.126.127.6/24"], "168.126.127.1")
        .neighbor("192.168.1.11", SERVER, "lan")
        .neighbor("192.168.1.50", CLIENT, "lan")
        .config(
            r#"
[conntrack]
helpers = [ { helper = "ftp", ports = [21] }, { helper = "tftp" } ]

[firewall]
rules = """
*nat
-A PREROUTING -d 168.126.127.6 -p tcp --dport 23 -j DNAT --to-destination 192.168.1.11:23
-A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80
-A PREROUTING -d 168.126.127.6 -p tcp --dport 20 -j DNAT --to-destination 192.168.1.11:20
-A PREROUTING -d 168.126.127.6 -p tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21
-A PREROUTING -d 168.126.127.6 -p udp --dport 69 -j DNAT --to-destination 192.168.1.11:69
-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -s 192.168.1.0/24 -i lan -j ACCEPT
-A FORWARD -d 192.168.1.11 -p tcp -m multiport --dports 21,23,80 -j ACCEPT
-A FORWARD -d 192.168.1.11 -p udp --dport 69 -j ACCEPT
COMMIT
"""
"#,
        )
}

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const SERVER: &str = "02:aa:00:00:00:11";
const CLIENT: &str = "02:aa:00:00:00:50";

/// An outside FTP server.
const FTPD: &str = "198.51.100.7";
/// An outside client.
const OUTSIDE: &str = "198.51.100.9";

#[allow(clippy::too_many_arguments)]
fn lan(
    src: &str,
    smac: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    tcp4_seg(
        mac(smac),
        mac(GW_LAN),
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        data,
    )
}

#[allow(clippy::too_many_arguments)]
fn wan(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        data,
    )
}

fn seq_ack(frame: &[u8]) -> (u32, u32) {
    let ip = l3_of(frame);
    let hl = (ip[0] & 0xf) as usize * 4;
    let t = &ip[hl..];
    let r = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    (r(4), r(8))
}

/// The SACK blocks of a TCP frame.
fn sack(frame: &[u8]) -> Vec<(u32, u32)> {
    let ip = l3_of(frame);
    let hl = (ip[0] & 0xf) as usize * 4;
    let t = &ip[hl..];
    let doff = (t[12] >> 4) as usize * 4;
    let r = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let mut i = 20;
    let mut out = Vec::new();
    while i < doff {
        match t[i] {
            0 => break,
            1 => i += 1,
            5 => {
                let len = t[i + 1] as usize;
                let mut j = i + 2;
                while j + 8 <= i + len {
                    out.push((r(j), r(j + 4)));
                    j += 8;
                }
                i += len;
            }
            _ => i += t[i + 1] as usize,
        }
    }
    out
}

/// A server ACK from the wan side carrying one SACK block.
fn wan_sack(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    block: (u32, u32),
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(UPSTREAM), mac(GW_WAN))
        .ipv4(ip4(src), ip4(dst), 64)
        .tcp(sport, dport, seq, 64240)
        .ack(ack)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(block, [None, None, None]),
        ])
        .unwrap()
        .write(&mut out, b"")
        .unwrap();
    out
}

/// A LAN client's active session through masquerade: PORT with its inside
/// address is rewritten to the public one (one byte longer), the server's
/// data connection from port 20 is RELATED and reaches the client, the
/// acknowledgements and SACK blocks of the server are moved back by the
/// byte, the client's later sequence numbers forward, and the
/// retransmitted PORT segment is rewritten the same and keeps its number.
#[test]
fn masquerade_active_port_rewritten_with_seqadj() {
    const C: &str = "192.168.1.50";
    const P: &str = "168.126.127.6";
    let port_cmd = b"PORT 192,168,1,50,156,65\r\n"; // 40001
    let c =
        |seq, ack, flags: &str, data: &[u8]| lan(C, CLIENT, FTPD, 40000, 21, seq, ack, flags, data);
    let s = |seq, ack, flags: &str, data: &[u8]| wan(FTPD, P, 21, 40000, seq, ack, flags, data);
    let o = run(
        "ftp_masq_active",
        &portfw(),
        &[
            (
                "lan",
                vec![
                    (0.0, c(1000, 0, "S", b"")),
                    (0.2, c(1001, 5001, "A", b"")),
                    (0.4, c(1001, 5012, "PA", port_cmd)),
                    (0.7, lan(C, CLIENT, FTPD, 40001, 20, 20000, 9001, "SA", b"")),
                    (0.8, c(1001, 5012, "PA", port_cmd)),
                    // Acks the server's 29-byte 200 line (5012 + 29):
                    // one more would ack unsent data, INVALID to window
                    // tracking as to Linux.
                    (0.9, c(1027, 5041, "PA", b"RETR f\r\n")),
                ],
            ),
            (
                "wan",
                vec![
                    (0.1, s(5000, 1001, "SA", b"")),
                    (0.3, s(5001, 1001, "PA", b"220 hello\r\n")),
                    (0.5, s(5012, 1028, "PA", b"200 PORT command successful\r\n")),
                    (0.6, wan(FTPD, P, 20, 40001, 9000, 0, "S", b"")),
                    (1.0, wan_sack(FTPD, P, 21, 40000, 5041, 1028, (1037, 1040))),
                ],
            ),
        ],
    );
    let out = o.frames("wan");
    let back = o.frames("lan");
    // SYN, ACK, PORT, data SYN-ACK, PORT again, RETR.
    assert_eq!(
        out.len(),
        6,
        "{:?}",
        out.iter().map(|f| flow4(f)).collect::<Vec<_>>()
    );
    assert_eq!(tcp_payload(&out[2]), b"PORT 168,126,127,6,156,65\r\n");
    assert_eq!(
        seq_ack(&out[2]).0,
        1001,
        "the rewritten segment keeps its number"
    );
    assert_eq!(flow4(&out[3]), "168.126.127.6:40001 > 198.51.100.7:20");
    assert_eq!(
        tcp_payload(&out[4]),
        b"PORT 168,126,127,6,156,65\r\n",
        "retransmission"
    );
    assert_eq!(seq_ack(&out[4]).0, 1001);
    assert_eq!(tcp_payload(&out[5]), b"RETR f\r\n");
    assert_eq!(seq_ack(&out[5]).0, 1028, "later client data moves by +1");
    // SYN-ACK, 220, 200, data SYN (RELATED, to the client), SACK.
    assert_eq!(back.len(), 5);
    assert_eq!(
        seq_ack(&back[2]).1,
        1027,
        "the server's ACK moves back by 1"
    );
    assert_eq!(flow4(&back[3]), "198.51.100.7:20 > 192.168.1.50:40001");
    assert_eq!(seq_ack(&back[4]).1, 1027);
    assert_eq!(sack(&back[4]), vec![(1036, 1039)], "SACK edges move back");
    assert_eq!(
        o.drops("filter_forward"),
        0,
        "the data connection is RELATED"
    );
    golden_trace("ftp_masq_active", &o.trace);
}

/// A LAN client's passive session through masquerade: the 227 reply names
/// the outside server, nothing to rewrite; the client's data connection is
/// RELATED and masqueraded.
#[test]
fn masquerade_passive_related() {
    const C: &str = "192.168.1.50";
    const P: &str = "168.126.127.6";
    let reply = b"227 Entering Passive Mode (198,51,100,7,195,80).\r\n"; // 50000
    let o = run(
        "ftp_masq_passive",
        &portfw(),
        &[
            (
                "lan",
                vec![
                    (0.0, lan(C, CLIENT, FTPD, 40000, 21, 1000, 0, "S", b"")),
                    (0.2, lan(C, CLIENT, FTPD, 40000, 21, 1001, 5001, "A", b"")),
                    (
                        0.3,
                        lan(C, CLIENT, FTPD, 40000, 21, 1001, 5001, "PA", b"PASV\r\n"),
                    ),
                    (0.5, lan(C, CLIENT, FTPD, 40002, 50000, 30000, 0, "S", b"")),
                ],
            ),
            (
                "wan",
                vec![
                    (0.1, wan(FTPD, P, 21, 40000, 5000, 1001, "SA", b"")),
                    (0.4, wan(FTPD, P, 21, 40000, 5001, 1007, "PA", reply)),
                    (0.6, wan(FTPD, P, 50000, 40002, 8000, 30001, "SA", b"")),
                ],
            ),
        ],
    );
    let out = o.frames("wan");
    let back = o.frames("lan");
    assert_eq!(out.len(), 4);
    assert_eq!(flow4(&out[3]), "168.126.127.6:40002 > 198.51.100.7:50000");
    assert_eq!(back.len(), 3);
    assert_eq!(tcp_payload(&back[1]), reply, "nothing to rewrite");
    assert_eq!(flow4(&back[2]), "198.51.100.7:50000 > 192.168.1.50:40002");
    golden_trace("ftp_masq_passive", &o.trace);
}

/// An outside client, the server behind the port forward of 21, passive:
/// the server's 227 names its inside address, rewritten to the public one;
/// the client's data connection to the public address is RELATED and goes
/// to the server. Then the client's active mode: the server's data
/// connection from port 20 leaves from the public address.
#[test]
fn port_forward_passive_and_active() {
    const S: &str = "192.168.1.11";
    const P: &str = "168.126.127.6";
    let reply = b"227 Entering Passive Mode (192,168,1,11,195,80).\r\n";
    let cl = |seq, ack, flags: &str, data: &[u8]| wan(OUTSIDE, P, 50000, 21, seq, ack, flags, data);
    let sv = |seq, ack, flags: &str, data: &[u8]| {
        lan(S, SERVER, OUTSIDE, 21, 50000, seq, ack, flags, data)
    };
    let o = run(
        "ftp_portfw",
        &portfw(),
        &[
            (
                "wan",
                vec![
                    (0.0, cl(2000, 0, "S", b"")),
                    (0.2, cl(2001, 7001, "A", b"")),
                    (0.3, cl(2001, 7001, "PA", b"PASV\r\n")),
                    (0.5, cl(2007, 7052, "A", b"")),
                    (0.6, wan(OUTSIDE, P, 50001, 50000, 3000, 0, "S", b"")),
                    (0.8, cl(2007, 7052, "PA", b"PORT 198,51,100,9,200,1\r\n")),
                ],
            ),
            (
                "lan",
                vec![
                    (0.1, sv(7000, 2001, "SA", b"")),
                    (0.4, sv(7001, 2007, "PA", reply)),
                    (
                        0.7,
                        lan(S, SERVER, OUTSIDE, 50000, 50001, 4000, 3001, "SA", b""),
                    ),
                    (0.9, lan(S, SERVER, OUTSIDE, 20, 51201, 6000, 0, "S", b"")),
                ],
            ),
        ],
    );
    let to_server = o.frames("lan");
    let to_client = o.frames("wan");
    assert_eq!(
        to_client.len(),
        4,
        "{:?}",
        to_client.iter().map(|f| flow4(f)).collect::<Vec<_>>()
    );
    assert_eq!(
        tcp_payload(&to_client[1]),
        b"227 Entering Passive Mode (168,126,127,6,195,80).\r\n"
    );
    assert_eq!(
        flow4(&to_client[2]),
        "168.126.127.6:50000 > 198.51.100.9:50001"
    );
    assert_eq!(
        flow4(&to_client[3]),
        "168.126.127.6:20 > 198.51.100.9:51201",
        "active, out through the forward"
    );
    assert_eq!(to_server.len(), 6);
    assert_eq!(
        seq_ack(&to_server[3]).1,
        7051,
        "the client's ACK moves back by 1"
    );
    assert_eq!(
        flow4(&to_server[4]),
        "198.51.100.9:50001 > 192.168.1.11:50000"
    );
    assert_eq!(
        tcp_payload(&to_server[5]),
        b"PORT 198,51,100,9,200,1\r\n",
        "not NAT'd on this side"
    );
    golden_trace("ftp_portfw", &o.trace);
}

/// EPRT from the LAN (rewritten, |1| form) and EPSV (nothing to rewrite),
/// a command split across two segments (the first half is dropped, as
/// Linux does), a malformed PORT and one naming another host (left alone,
/// no expectation: that host's connection is not RELATED).
#[test]
fn eprt_split_malformed_and_foreign() {
    const C: &str = "192.168.1.50";
    const P: &str = "168.126.127.6";
    let c = |seq, data: &[u8]| lan(C, CLIENT, FTPD, 40000, 21, seq, 5001, "PA", data);
    let eprt = b"EPRT |1|192.168.1.50|40005|\r\n";
    let o = run(
        "ftp_eprt",
        &portfw(),
        &[
            (
                "lan",
                vec![
                    (0.0, lan(C, CLIENT, FTPD, 40000, 21, 1000, 0, "S", b"")),
                    (0.2, c(1001, eprt)),
                    (0.4, c(1030, b"PORT 192,168,1,50,")),
                    (0.5, c(1030, b"PORT 192,168,1,50,156,70\r\n")),
                    (0.6, c(1056, b"PORT 999,1,1,1,1,1\r\n")),
                    (0.7, c(1076, b"PORT 192,168,1,99,156,71\r\n")),
                ],
            ),
            (
                "wan",
                vec![
                    (0.1, wan(FTPD, P, 21, 40000, 5000, 1001, "SA", b"")),
                    (0.3, wan(FTPD, P, 20, 40005, 9000, 0, "S", b"")),
                    (0.8, wan(FTPD, P, 20, 40007, 9100, 0, "S", b"")),
                ],
            ),
        ],
    );
    let out = o.frames("wan");
    let payloads: Vec<&[u8]> = out.iter().map(|f| tcp_payload(f)).collect();
    assert_eq!(payloads[1], b"EPRT |1|168.126.127.6|40005|\r\n");
    assert_eq!(
        o.drops("helper_partial"),
        1,
        "the first half of the split PORT"
    );
    assert_eq!(
        payloads[2], b"PORT 168,126,127,6,156,70\r\n",
        "the whole command, resent"
    );
    assert_eq!(
        payloads[3], b"PORT 999,1,1,1,1,1\r\n",
        "malformed: left alone"
    );
    assert_eq!(
        payloads[4], b"PORT 192,168,1,99,156,71\r\n",
        "another host: left alone"
    );
    let back = o.frames("lan");
    assert_eq!(back.len(), 2, "SYN-ACK and the EPRT data connection only");
    assert_eq!(flow4(&back[1]), "198.51.100.7:20 > 192.168.1.50:40005");
    golden_trace("ftp_eprt", &o.trace);
}

/// TFTP from the LAN: the server answers from a new port; the answer is
/// RELATED and reaches the client.
#[test]
fn tftp_reply_from_new_port() {
    const C: &str = "192.168.1.50";
    const P: &str = "168.126.127.6";
    let o = run(
        "tftp_masq",
        &portfw(),
        &[
            (
                "lan",
                vec![(
                    0.0,
                    udp4(
                        mac(CLIENT),
                        mac(GW_LAN),
                        &[],
                        C,
                        FTPD,
                        64,
                        41000,
                        69,
                        b"\x00\x01file\x00octet\x00",
                    ),
                )],
            ),
            (
                "wan",
                vec![
                    (
                        0.1,
                        udp4(
                            mac(UPSTREAM),
                            mac(GW_WAN),
                            &[],
                            FTPD,
                            P,
                            64,
                            53000,
                            41000,
                            b"\x00\x03\x00\x01data",
                        ),
                    ),
                    (
                        0.2,
                        udp4(
                            mac(UPSTREAM),
                            mac(GW_WAN),
                            &[],
                            FTPD,
                            P,
                            64,
                            53001,
                            41000,
                            b"\x00\x03\x00\x01data",
                        ),
                    ),
                ],
            ),
        ],
    );
    let back = o.frames("lan");
    assert_eq!(back.len(), 1, "the expectation is used once");
    assert_eq!(flow4(&back[0]), "198.51.100.7:53000 > 192.168.1.50:41000");
    golden_trace("tftp_masq", &o.trace);
}

// ---------------------------------------------------------------- IPv6

/// A dual-stack gateway whose IPv6 LAN (2001:db8:2::/64) is masqueraded
/// (NAT66) out of the wan (2001:db8:1::2), with the FTP helper.
const DUAL: &str = r#"
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
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "2001:db8:1::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:2::5"
mac = "02:aa:00:00:00:05"
dev = "lan"

[conntrack]
helpers = [ { helper = "ftp" } ]

[firewall]
rules_v4 = "*filter\nCOMMIT\n"
rules_v6 = """
*nat
-A POSTROUTING -s 2001:db8:2::/64 -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan -p tcp --dport 21 -j ACCEPT
COMMIT
"""
"#;

#[allow(clippy::too_many_arguments)]
fn tcp6(
    smac: &str,
    dmac: &str,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(mac(smac), mac(dmac))
        .ipv6(ip6(src), ip6(dst), 64)
        .tcp(sport, dport, seq, 64240);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'P' => b.psh(),
            _ => panic!("flag {f}"),
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, data).unwrap();
    out
}

fn tcp6_view(frame: &[u8]) -> (String, u16, String, u16, u32, u32, Vec<u8>) {
    let ip = &frame[14..];
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let a = |o: usize| {
        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).unwrap()).to_string()
    };
    let t = &ip[40..40 + plen];
    let w = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
    let d = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let doff = (t[12] >> 4) as usize * 4;
    (a(8), w(0), a(24), w(2), d(4), d(8), t[doff..].to_vec())
}

/// IPv6 through NAT66 masquerade: EPRT |2| names the inside address,
/// rewritten to the public one (the same length here), the server's data
/// connection is RELATED and reaches the client; EPSV's reply has no
/// address and needs no rewrite, its data connection is RELATED.
#[test]
fn ipv6_eprt_and_epsv_through_nat66() {
    const C: &str = "2001:db8:2::5";
    const S: &str = "2001:db8:99::7";
    const P: &str = "2001:db8:1::2";
    const CM: &str = "02:aa:00:00:00:05";
    const UP: &str = "02:bb:00:00:00:01";
    let eprt = b"EPRT |2|2001:db8:2::5|40001|\r\n";
    let c = |seq, ack, flags: &str, data: &[u8]| {
        tcp6(CM, GW_LAN, C, S, 40000, 21, seq, ack, flags, data)
    };
    let s = |seq, ack, flags: &str, data: &[u8]| {
        tcp6(UP, GW_WAN, S, P, 21, 40000, seq, ack, flags, data)
    };
    let epsv = b"229 Entering Extended Passive Mode (|||50001|)\r\n";
    let o = run(
        "ftp_ipv6",
        DUAL,
        &[
            (
                "lan",
                vec![
                    (0.0, c(1000, 0, "S", b"")),
                    (0.2, c(1001, 5001, "A", b"")),
                    (0.3, c(1001, 5001, "PA", eprt)),
                    (
                        0.6,
                        tcp6(CM, GW_LAN, C, S, 40001, 20, 20000, 9001, "SA", b""),
                    ),
                    (0.7, c(1031, 5001, "PA", b"EPSV\r\n")),
                    (
                        0.9,
                        tcp6(CM, GW_LAN, C, S, 40002, 50001, 30000, 0, "S", b""),
                    ),
                ],
            ),
            (
                "wan",
                vec![
                    (0.1, s(5000, 1001, "SA", b"")),
                    (0.4, s(5001, 1029, "A", b"")),
                    (0.5, tcp6(UP, GW_WAN, S, P, 20, 40001, 9000, 0, "S", b"")),
                    (0.8, s(5001, 1035, "PA", epsv)),
                ],
            ),
        ],
    );
    let out: Vec<_> = o.frames("wan").iter().map(|f| tcp6_view(f)).collect();
    let back: Vec<_> = o.frames("lan").iter().map(|f| tcp6_view(f)).collect();
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(out[2].6, b"EPRT |2|2001:db8:1::2|40001|\r\n");
    assert_eq!(
        (out[3].0.as_str(), out[3].1),
        (P, 40001),
        "data SYN-ACK masqueraded"
    );
    assert_eq!(out[4].4, 1031, "same length: no sequence change");
    assert_eq!(
        (out[5].0.as_str(), out[5].3),
        (P, 50001),
        "EPSV data connection"
    );
    assert_eq!(back.len(), 4, "{back:?}");
    assert_eq!(back[1].5, 1029);
    assert_eq!(
        (back[2].0.as_str(), back[2].1, back[2].2.as_str(), back[2].3),
        (S, 20, C, 40001)
    );
    assert_eq!(back[3].6, epsv);
    golden_trace("ftp_ipv6", &o.trace);
}

/// Bad input on a helper connection: 400 client segments of mutated
/// PORT/EPRT commands and random bytes, then 400 server segments of
/// mutated 227/229 replies, through masquerade. Nothing panics, every
/// emitted frame is valid (`run` checks each checksum), every segment
/// reaches the other side (the malformed ones untouched, counted; those
/// cut short dropped, as Linux). (A segment that does not end a line
/// makes the next one unread, as in Linux: `ftp.rs`'s own tests mutate
/// commands that are all read.)
#[test]
fn mutated_commands_never_break_the_connection() {
    const C: &str = "192.168.1.50";
    const P: &str = "168.126.127.6";
    let samples_c: [&[u8]; 3] = [
        b"PORT 192,168,1,50,156,65\r\n",
        b"EPRT |1|192.168.1.50|40001|\r\n",
        b"NOOP\r\n",
    ];
    let samples_s: [&[u8]; 2] = [
        b"227 Entering Passive Mode (198,51,100,7,195,80).\r\n",
        b"229 Entering Extended Passive Mode (|||50001|)\r\n",
    ];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut mutate = |s: &[u8]| {
        let mut v = s.to_vec();
        match next() % 4 {
            0 => {}
            1 => {
                let i = (next() % v.len() as u64) as usize;
                v[i] = next() as u8;
            }
            2 => v.truncate((next() % v.len() as u64) as usize + 1),
            _ => v = (0..(next() % 80 + 1)).map(|_| next() as u8).collect(),
        }
        v
    };
    let (mut lan_in, mut wan_in) = (
        vec![(0.0, lan(C, CLIENT, FTPD, 40000, 21, 1000, 0, "S", b""))],
        vec![(0.001, wan(FTPD, P, 21, 40000, 5000, 1001, "SA", b""))],
    );
    let (mut cseq, mut sseq) = (1001u32, 5001u32);
    for k in 0..400 {
        let d = mutate(samples_c[k % 3]);
        lan_in.push((
            0.01 + k as f64 * 1e-3,
            lan(C, CLIENT, FTPD, 40000, 21, cseq, sseq, "PA", &d),
        ));
        cseq = cseq.wrapping_add(d.len() as u32);
    }
    for k in 0..400 {
        let d = mutate(samples_s[k % 2]);
        wan_in.push((
            0.5 + k as f64 * 1e-3,
            wan(FTPD, P, 21, 40000, sseq, cseq, "PA", &d),
        ));
        sseq = sseq.wrapping_add(d.len() as u32);
    }
    let o = run(
        "ftp_mutated",
        &portfw(),
        &[("lan", lan_in), ("wan", wan_in)],
    );
    let out = o.frames("wan").len() as u64;
    let back = o.frames("lan").len() as u64;
    let partial = o.drops("helper_partial");
    assert_eq!(
        out + back + partial,
        802,
        "every segment forwarded or (cut short) dropped"
    );
    assert!(partial < 300, "{partial}");
}

/// TFTP to a server behind the port forward (udp 69): the server answers
/// from a new port; RELATED, it leaves from the public address (a port
/// from its pool: the server's own port, free) to the outside client.
#[test]
fn tftp_through_the_port_forward() {
    const S: &str = "192.168.1.11";
    const P: &str = "168.126.127.6";
    let o = run(
        "tftp_portfw",
        &portfw(),
        &[
            (
                "wan",
                vec![(
                    0.0,
                    udp4(
                        mac(UPSTREAM),
                        mac(GW_WAN),
                        &[],
                        OUTSIDE,
                        P,
                        64,
                        41000,
                        69,
                        b"\x00\x01file\x00octet\x00",
                    ),
                )],
            ),
            (
                "lan",
                vec![(
                    0.1,
                    udp4(
                        mac(SERVER),
                        mac(GW_LAN),
                        &[],
                        S,
                        OUTSIDE,
                        64,
                        53000,
                        41000,
                        b"\x00\x03\x00\x01data",
                    ),
                )],
            ),
        ],
    );
    let to_server = o.frames("lan");
    assert_eq!(flow4(&to_server[0]), "198.51.100.9:41000 > 192.168.1.11:69");
    let to_client = o.frames("wan");
    assert_eq!(to_client.len(), 1, "the answer from a new port is RELATED");
    assert_eq!(
        flow4(&to_client[0]),
        "168.126.127.6:53000 > 198.51.100.9:41000"
    );
    golden_trace("tftp_portfw", &o.trace);
}
