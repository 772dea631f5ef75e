//! Replay golden tests of NAT, with the rule lines of the scenarios in
//! ../shared/seeds verbatim: the port-forwarding proxy (001), ipmasqadm
//! portfw with masquerade and hairpin (003), Docker-style port publishing,
//! the nth round-robin pair, ICMP errors translated back (traceroute), echo
//! identifiers. Every emitted frame's checksums are verified by `run`.

mod common;
use common::*;

// ---------------------------------------------------------------- seeds/001

/// The port-forwarding proxy of seeds/001: client 1.1.1.1 reaches the
/// proxy's inside address 192.168.0.2 (eth1, through router 192.168.0.1,
/// the seed's `route add -net 1.1.1.1 ... gw 192.168.0.1 dev eth1`); the
/// proxy forwards to server 3.3.3.3:80 from its outside address 2.2.2.2
/// (eth0).
const PROXY: &str = r#"
[[interface]]
name = "eth0"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["2.2.2.2/24"]

[[interface]]
name = "eth1"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.0.2/24"]

[[route]]
to = "0.0.0.0/0"
via = "2.2.2.1"

[[route]]
to = "1.1.1.1/32"
via = "192.168.0.1"
dev = "eth1"

[[neighbor]]
ip = "2.2.2.1"
mac = "02:bb:00:00:00:01"
dev = "eth0"

[[neighbor]]
ip = "192.168.0.1"
mac = "02:aa:00:00:00:01"
dev = "eth1"

[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
# DNAT(LAN -> EX)
-A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80
# SNAT
-A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2
COMMIT
"""
"#;

const PX_WAN: &str = "02:00:00:00:00:01";
const PX_LAN: &str = "02:00:00:00:00:02";
const PX_UP: &str = "02:bb:00:00:00:01";
const PX_IN: &str = "02:aa:00:00:00:01";

#[test]
fn seed001_port_forwarding_proxy() {
    // Client side (eth1) and server side (eth0) of one TCP connection:
    // handshake, data both ways, FIN both ways, last ACK.
    let c = |seq, ack, flags: &str, data: &[u8]| {
        tcp4_seg(
            mac(PX_IN),
            mac(PX_LAN),
            "1.1.1.1",
            "192.168.0.2",
            40000,
            80,
            seq,
            ack,
            flags,
            data,
        )
    };
    let s = |seq, ack, flags: &str, data: &[u8]| {
        tcp4_seg(
            mac(PX_UP),
            mac(PX_WAN),
            "3.3.3.3",
            "2.2.2.2",
            80,
            40000,
            seq,
            ack,
            flags,
            data,
        )
    };
    let req = b"GET / HTTP/1.0\r\n\r\n";
    let resp = b"HTTP/1.0 200 OK\r\n\r\nhello";
    let o = run(
        "nat_proxy",
        PROXY,
        &[
            (
                "eth1",
                vec![
                    (0.0, c(1000, 0, "S", b"")),
                    (0.2, c(1001, 5001, "A", b"")),
                    (0.3, c(1001, 5001, "PA", req)),
                    (0.6, c(1019, 5025, "FA", b"")),
                    (0.8, c(1020, 5026, "A", b"")),
                ],
            ),
            (
                "eth0",
                vec![
                    (0.1, s(5000, 1001, "SA", b"")),
                    (0.4, s(5001, 1019, "A", b"")),
                    (0.5, s(5001, 1019, "PA", resp)),
                    (0.7, s(5025, 1020, "FA", b"")),
                ],
            ),
        ],
    );
    let out = o.frames("eth0");
    let back = o.frames("eth1");
    assert_eq!(out.len(), 5, "every client segment reaches the server");
    assert_eq!(back.len(), 4, "every server segment reaches the client");
    for f in &out {
        assert_eq!(flow4(f), "2.2.2.2:40000 > 3.3.3.3:80", "SNAT + DNAT");
        assert_eq!(l2(f).0, Vec::<u16>::new());
        assert_eq!(&f[..6], &mac(PX_UP));
    }
    for f in &back {
        assert_eq!(flow4(f), "192.168.0.2:80 > 1.1.1.1:40000", "both undone");
        assert_eq!(&f[..6], &mac(PX_IN));
    }
    assert_eq!(tcp_payload(&out[2]), req);
    assert_eq!(tcp_payload(&back[2]), resp);
    golden_trace("nat_proxy", &o.trace);
}

// ---------------------------------------------------------------- seeds/003

/// seeds/003's gateway: public 168.126.127.6 (wan), LAN 192.168.1.0/24
/// masqueraded (`ipchains -A forward -s 192.168.1.0/24 -j MASQ`), ports 80,
/// 23, 20 and 21 forwarded to 192.168.1.11 (`ipmasqadm portfw`), written
/// as the iptables lines that replace them.
const PORTFW: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["168.126.127.6/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "168.126.127.1"

[[neighbor]]
ip = "168.126.127.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "192.168.1.11"
mac = "02:aa:00:00:00:11"
dev = "lan"

[[neighbor]]
ip = "192.168.1.50"
mac = "02:aa:00:00:00:50"
dev = "lan"

[firewall]
rules = """
*nat
-A PREROUTING -d 168.126.127.6 -p tcp --dport 23 -j DNAT --to-destination 192.168.1.11:23
-A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80
-A PREROUTING -d 168.126.127.6 -p tcp --dport 20 -j DNAT --to-destination 192.168.1.11:20
-A PREROUTING -d 168.126.127.6 -p tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21
-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -s 192.168.1.0/24 -i lan -j ACCEPT
-A FORWARD -d 192.168.1.11 -p tcp -m multiport --dports 20,21,23,80 -j ACCEPT
COMMIT
"""
"#;

const GW_WAN: &str = "02:00:00:00:00:01";
const GW_LAN: &str = "02:00:00:00:00:02";
const UPSTREAM: &str = "02:bb:00:00:00:01";
const SERVER: &str = "02:aa:00:00:00:11";
const CLIENT: &str = "02:aa:00:00:00:50";

#[test]
fn seed003_portfw_masquerade_and_hairpin() {
    let from_wan = |src: &str, sport, dport, seq, ack, flags: &str| {
        tcp4_seg(
            mac(UPSTREAM),
            mac(GW_WAN),
            src,
            "168.126.127.6",
            sport,
            dport,
            seq,
            ack,
            flags,
            b"",
        )
    };
    let from_lan = |src: &str, smac: &str, dst: &str, sport, dport, seq, ack, flags: &str| {
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
            b"",
        )
    };
    let o = run(
        "nat_portfw",
        PORTFW,
        &[
            (
                "wan",
                vec![
                    // Outside clients to the four forwarded ports.
                    (0.0, from_wan("198.51.100.7", 50001, 80, 1, 0, "S")),
                    (0.1, from_wan("198.51.100.7", 50002, 23, 1, 0, "S")),
                    (0.2, from_wan("198.51.100.8", 50003, 21, 1, 0, "S")),
                    (0.3, from_wan("198.51.100.8", 50004, 20, 1, 0, "S")),
                    // A port that is not forwarded: the router's own, no listener.
                    (0.4, from_wan("198.51.100.8", 50005, 8080, 1, 0, "S")),
                    // The web server's masqueraded connection answered.
                    (1.1, from_wan("203.0.113.80", 443, 33000, 9, 101, "SA")),
                ],
            ),
            (
                "lan",
                vec![
                    // The server answers the first outside client.
                    (
                        0.5,
                        from_lan(
                            "192.168.1.11",
                            "02:aa:00:00:00:11",
                            "198.51.100.7",
                            80,
                            50001,
                            7,
                            2,
                            "SA",
                        ),
                    ),
                    // The server opens a connection out: masqueraded, port kept.
                    (
                        1.0,
                        from_lan(
                            "192.168.1.11",
                            SERVER,
                            "203.0.113.80",
                            33000,
                            443,
                            100,
                            0,
                            "S",
                        ),
                    ),
                    // Hairpin: a LAN client uses the public address.
                    (
                        2.0,
                        from_lan(
                            "192.168.1.50",
                            CLIENT,
                            "168.126.127.6",
                            45000,
                            80,
                            1,
                            0,
                            "S",
                        ),
                    ),
                    // The server answers the hairpinned client.
                    (
                        2.1,
                        from_lan(
                            "192.168.1.11",
                            SERVER,
                            "168.126.127.6",
                            80,
                            45000,
                            3,
                            2,
                            "SA",
                        ),
                    ),
                ],
            ),
        ],
    );
    let lan = o.frames("lan");
    let wan = o.frames("wan");
    let lan_flows: Vec<String> = lan.iter().map(|f| flow4(f)).collect();
    let wan_flows: Vec<String> = wan.iter().map(|f| flow4(f)).collect();
    assert_eq!(
        lan_flows,
        [
            "198.51.100.7:50001 > 192.168.1.11:80",
            "198.51.100.7:50002 > 192.168.1.11:23",
            "198.51.100.8:50003 > 192.168.1.11:21",
            "198.51.100.8:50004 > 192.168.1.11:20",
            "203.0.113.80:443 > 192.168.1.11:33000",
            // Hairpin: the server sees the client as the public address
            // (RFC 4787 REQ-9), and the client sees the public address answer.
            "168.126.127.6:45000 > 192.168.1.11:80",
            "168.126.127.6:80 > 192.168.1.50:45000",
        ]
    );
    assert_eq!(
        wan_flows,
        [
            // The router's own closed port answers with a reset.
            "168.126.127.6:8080 > 198.51.100.8:50005",
            "168.126.127.6:80 > 198.51.100.7:50001",
            "168.126.127.6:33000 > 203.0.113.80:443",
        ]
    );
    golden_trace("nat_portfw", &o.trace);
}
