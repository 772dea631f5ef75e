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
fn portfw() -> String {
    Office::new()
        .wan(&["168.126.127.6/24"], "168.126.127.1")
        .neighbor("192.168.1.11", SERVER, "lan")
        .neighbor("192.168.1.50", CLIENT, "lan")
        .config(
            r#"
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
"#,
        )
}

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
        &portfw(),
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
    // Seven connections were opened; the router's own reset closed the
    // one to its closed port 8080, as netfilter's OUTPUT hook would.
    assert_eq!(o.report.connections, 6);
    golden_trace("nat_portfw", &o.trace);
}

// ------------------------------------------------- Docker-style publishing

/// What `docker run -p 8080:80` writes (with `-m addrtype --dst-type
/// LOCAL` spelled as the host's address): a DOCKER chain in each table,
/// RETURN for the bridge's own traffic, masquerade for containers.
const DOCKER: &str = r#"
[[interface]]
name = "eth0"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "docker0"
device = "docker0"
mac = "02:00:00:00:00:02"
address = ["172.17.0.1/16"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "eth0"

[[neighbor]]
ip = "172.17.0.2"
mac = "02:42:ac:11:00:02"
dev = "docker0"

[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -d 203.0.113.2/32 -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:FORWARD DROP [0:0]
:DOCKER - [0:0]
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
"""
"#;

#[test]
fn docker_publish_8080_to_80() {
    let wan = |src: &str, sport, dport, flags: &str, ttl: u8| {
        let mut f = tcp4_seg(
            mac(UPSTREAM),
            mac(GW_WAN),
            src,
            "203.0.113.2",
            sport,
            dport,
            1,
            0,
            flags,
            b"",
        );
        f[22] = ttl;
        fix_ipv4_checksum(&mut f[14..34]);
        f
    };
    let container = |dst: &str, sport, dport, flags: &str| {
        tcp4_seg(
            mac("02:42:ac:11:00:02"),
            mac(GW_LAN),
            "172.17.0.2",
            dst,
            sport,
            dport,
            5,
            2,
            flags,
            b"",
        )
    };
    let o = run(
        "nat_docker",
        DOCKER,
        &[
            (
                "eth0",
                vec![
                    (0.0, wan("198.51.100.7", 50000, 8080, "S", 64)),
                    // Port 80 is not published: the host's own, closed.
                    (0.2, wan("198.51.100.7", 50001, 80, "S", 64)),
                    // A published-port probe with TTL 1: the time exceeded
                    // must quote the address and port the client used.
                    (0.3, wan("198.51.100.7", 50002, 8080, "S", 1)),
                ],
            ),
            (
                "docker0",
                vec![
                    (0.1, container("198.51.100.7", 80, 50000, "SA")),
                    (0.4, container("198.51.100.20", 41000, 443, "S")),
                ],
            ),
        ],
    );
    let d0 = o.frames("docker0");
    assert_eq!(d0.len(), 1);
    assert_eq!(flow4(&d0[0]), "198.51.100.7:50000 > 172.17.0.2:80");
    let e0 = o.frames("eth0");
    let flows: Vec<String> = e0.iter().map(|f| flow4(f)).collect();
    assert_eq!(flows[0], "203.0.113.2:8080 > 198.51.100.7:50000");
    assert_eq!(flows[1], "203.0.113.2:80 > 198.51.100.7:50001", "reset");
    let te = l3_of(&e0[2]);
    assert_eq!(te[20], 11, "time exceeded");
    let quoted = &te[28..];
    assert_eq!(&quoted[16..20], &ip4("203.0.113.2"), "quoted destination");
    assert_eq!(u16::from_be_bytes([quoted[22], quoted[23]]), 8080);
    assert_eq!(flows[3], "203.0.113.2:41000 > 198.51.100.20:443");
    golden_trace("nat_docker", &o.trace);
}

// ---------------------------------------------------- nth round robin

#[test]
fn nth_round_robin_pair_and_bindings_stick() {
    let cfg = portfw().replace(
        "-A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80",
        "-A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 192.168.1.11:80
-A PREROUTING -d 168.126.127.6 -p tcp --dport 80 -j DNAT --to-destination 192.168.1.12:80",
    ).replace("[[neighbor]]\nip = \"192.168.1.50\"", "[[neighbor]]\nip = \"192.168.1.12\"\nmac = \"02:aa:00:00:00:12\"\ndev = \"lan\"\n\n[[neighbor]]\nip = \"192.168.1.50\"")
    .replace("-A FORWARD -d 192.168.1.11 -p tcp", "-A FORWARD -d 192.168.1.8/29 -p tcp");
    let syn = |sport| {
        tcp4_seg(
            mac(UPSTREAM),
            mac(GW_WAN),
            "198.51.100.7",
            "168.126.127.6",
            sport,
            80,
            1,
            0,
            "S",
            b"",
        )
    };
    let ack = tcp4_seg(
        mac(UPSTREAM),
        mac(GW_WAN),
        "198.51.100.7",
        "168.126.127.6",
        50000,
        80,
        2,
        1,
        "A",
        b"",
    );
    let synack = tcp4_seg(
        mac(SERVER),
        mac(GW_LAN),
        "192.168.1.11",
        "198.51.100.7",
        80,
        50000,
        1,
        2,
        "SA",
        b"",
    );
    let o = run(
        "nat_nth",
        &cfg,
        &[
            (
                "wan",
                vec![
                    (0.0, syn(50000)),
                    (0.1, syn(50001)),
                    (0.2, syn(50002)),
                    (0.3, syn(50003)),
                    (0.5, ack),
                ],
            ),
            ("lan", vec![(0.4, synack)]),
        ],
    );
    assert_eq!(
        flow4(&o.frames("wan")[0]),
        "168.126.127.6:80 > 198.51.100.7:50000"
    );
    let servers: Vec<[u8; 4]> = o
        .frames("lan")
        .iter()
        .map(|f| l3_of(f)[16..20].try_into().unwrap())
        .collect();
    let (a, b) = (ip4("192.168.1.11"), ip4("192.168.1.12"));
    assert_eq!(
        servers,
        [a, b, a, b, a],
        "alternating; the ACK follows its SYN"
    );
    golden_trace("nat_nth", &o.trace);
}

// ------------------------------------------------------- ICMP echo ids

#[test]
fn echo_identifiers_mapped_per_inside_host() {
    // Two inside hosts ping one server with the same identifier: the
    // second gets another outside identifier; the replies find their host.
    let cfg = portfw().replace(
        "[[neighbor]]\nip = \"192.168.1.50\"",
        "[[neighbor]]\nip = \"192.168.1.51\"\nmac = \"02:aa:00:00:00:51\"\ndev = \"lan\"\n\n[[neighbor]]\nip = \"192.168.1.50\"",
    );
    let ping = |src: &str, m: &str| {
        icmp4_echo(mac(m), mac(GW_LAN), src, "198.51.100.7", 64, 7, 1, b"ping")
    };
    let pong = |id| {
        icmp4_reply(
            mac(UPSTREAM),
            mac(GW_WAN),
            "198.51.100.7",
            "168.126.127.6",
            id,
            1,
            b"ping",
        )
    };
    let first = run(
        "nat_echo_probe",
        &cfg,
        &[(
            "lan",
            vec![
                (0.0, ping("192.168.1.50", CLIENT)),
                (0.1, ping("192.168.1.51", "02:aa:00:00:00:51")),
            ],
        )],
    );
    let ids: Vec<u16> = first.frames("wan").iter().map(|f| tuple4(f).1).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], 7, "identifier preserved for the first host");
    assert_ne!(ids[1], 7, "the second host needs another identifier");
    let o = run(
        "nat_echo",
        &cfg,
        &[
            (
                "lan",
                vec![
                    (0.0, ping("192.168.1.50", CLIENT)),
                    (0.1, ping("192.168.1.51", "02:aa:00:00:00:51")),
                ],
            ),
            ("wan", vec![(0.2, pong(ids[1])), (0.3, pong(ids[0]))]),
        ],
    );
    let lan: Vec<String> = o.frames("lan").iter().map(|f| flow4(f)).collect();
    assert_eq!(
        lan,
        [
            "198.51.100.7:7 > 192.168.1.51:7",
            "198.51.100.7:7 > 192.168.1.50:7"
        ]
    );
    golden_trace("nat_echo", &o.trace);
}

// ------------------------------------------- REDIRECT, MARK, LOG

#[test]
fn redirect_mark_routing_and_log() {
    // REDIRECT sends web traffic to the router's own port 3128 (closed
    // here: the reset must come from the address the client used); a MARK
    // in mangle PREROUTING sends one host's traffic through table 100; LOG
    // records new connections from the LAN.
    let cfg = format!(
        "{}{}",
        portfw()
            .replace(
                "-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE",
                "-A PREROUTING -i lan -p tcp --dport 80 -j REDIRECT --to-ports 3128
-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE"
            )
            .replace(
                "-A FORWARD -s 192.168.1.0/24 -i lan -j ACCEPT",
                "-A FORWARD -i lan -m conntrack --ctstate NEW -j LOG --log-prefix \"lan-new: \"
-A FORWARD -s 192.168.1.0/24 -i lan -j ACCEPT"
            )
            .replace(
                "*filter",
                "*mangle
-A PREROUTING -s 192.168.1.50 -j MARK --set-mark 0x1
COMMIT
*filter"
            ),
        r#"
[[interface]]
name = "wan2"
device = "eth2"
mac = "02:00:00:00:00:03"
address = ["198.18.0.2/24"]

[[neighbor]]
ip = "198.18.0.1"
mac = "02:cc:00:00:00:01"
dev = "wan2"

[[rule]]
priority = 100
fwmark = "0x1"
table = 100

[[route]]
to = "0.0.0.0/0"
via = "198.18.0.1"
table = 100
"#
    );
    let web = tcp4_seg(
        mac(CLIENT),
        mac(GW_LAN),
        "192.168.1.50",
        "198.51.100.7",
        45000,
        80,
        1,
        0,
        "S",
        b"",
    );
    let dns = |src: &str, m: &str| {
        udp4(
            mac(m),
            mac(GW_LAN),
            &[],
            src,
            "198.51.100.53",
            64,
            5353,
            53,
            b"q",
        )
    };
    let o = run(
        "nat_redirect_mark_log",
        &cfg,
        &[(
            "lan",
            vec![
                (0.0, web),
                (0.1, dns("192.168.1.50", CLIENT)),
                (0.2, dns("192.168.1.11", SERVER)),
            ],
        )],
    );
    let lan = o.frames("lan");
    assert_eq!(lan.len(), 1);
    assert_eq!(
        flow4(&lan[0]),
        "198.51.100.7:80 > 192.168.1.50:45000",
        "the reset comes from where the client connected"
    );
    // The marked host leaves by wan2 (table 100); MASQUERADE is `-o wan`
    // only, so it leaves there with its own address.
    let wan2 = o.frames("wan2");
    assert_eq!(wan2.len(), 1);
    assert_eq!(flow4(&wan2[0]), "192.168.1.50:5353 > 198.51.100.53:53");
    let wan = o.frames("wan");
    assert_eq!(wan.len(), 1);
    assert_eq!(flow4(&wan[0]), "168.126.127.6:5353 > 198.51.100.53:53");
    assert_eq!(o.report.log.len(), 2, "{:?}", o.report.log);
    // FORWARD sees the TTL after the router's decrement, as on Linux.
    assert!(o.report.log[0].contains(" TTL=63 "), "{}", o.report.log[0]);
    assert!(
        o.report.log[0].starts_with("lan-new: IN=lan OUT=wan2 SRC=192.168.1.50 DST=198.51.100.53"),
        "{}",
        o.report.log[0]
    );
    golden_trace("nat_redirect_mark_log", &o.trace);
}

// --------------------------------------------------- port exhaustion

#[test]
fn snat_port_exhaustion_drops_with_a_counter() {
    // Two outside ports for the whole LAN: two inside endpoints get them,
    // the third connection is dropped and counted; an endpoint that has a
    // mapping keeps using it for a new destination (endpoint-independent).
    let cfg = portfw().replace(
        "-A POSTROUTING -s 192.168.1.0/24 -o wan -j MASQUERADE",
        "-A POSTROUTING -s 192.168.1.0/24 -o wan -p udp -j SNAT --to-source 168.126.127.6:2000-2001",
    );
    let out = |sport, dst: &str| {
        udp4(
            mac(CLIENT),
            mac(GW_LAN),
            &[],
            "192.168.1.50",
            dst,
            64,
            sport,
            53,
            b"q",
        )
    };
    let o = run(
        "nat_exhaustion",
        &cfg,
        &[(
            "lan",
            vec![
                (0.0, out(5000, "198.51.100.53")),
                (0.1, out(5001, "198.51.100.53")),
                (0.2, out(5002, "198.51.100.53")),
                (0.3, out(5000, "198.51.100.54")),
            ],
        )],
    );
    let wan: Vec<String> = o.frames("wan").iter().map(|f| flow4(f)).collect();
    assert_eq!(wan.len(), 3, "{wan:?}");
    let port = |s: &str| {
        s.split(' ')
            .next()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let (p0, p1) = (port(&wan[0]), port(&wan[1]));
    assert_ne!(p0, p1);
    assert!(["2000", "2001"].contains(&p0.as_str()) && ["2000", "2001"].contains(&p1.as_str()));
    assert_eq!(port(&wan[2]), p0, "the first endpoint's mapping is reused");
    assert_eq!(o.drops("nat_ports_exhausted"), 1);
}

// --------------------------------------------------------------- IPv6

#[test]
fn ipv6_stateful_forwarding() {
    // One ruleset for both families: the same ctstate rules let IPv6
    // answers back and keep unsolicited IPv6 out.
    let cfg = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["2001:db8:2::1/64"]

[[route]]
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "2001:db8:1::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:2::10"
mac = "02:aa:00:00:00:50"
dev = "lan"

[firewall]
rules = """
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#;
    let out = udp6(
        mac(CLIENT),
        mac(GW_LAN),
        "2001:db8:2::10",
        "2001:db8:99::53",
        64,
        5000,
        53,
        b"q",
    );
    let back = |sport| {
        udp6(
            mac(UPSTREAM),
            mac(GW_WAN),
            "2001:db8:99::53",
            "2001:db8:2::10",
            60,
            sport,
            5000,
            b"a",
        )
    };
    let o = run(
        "fw_ipv6",
        cfg,
        &[
            ("lan", vec![(0.0, out.clone())]),
            ("wan", vec![(0.1, back(53)), (0.2, back(54))]),
        ],
    );
    assert_eq!(o.frames("wan").len(), 1);
    assert_eq!(o.frames("lan").len(), 1, "only the answer from port 53");
    assert_eq!(o.drops("filter_forward"), 1);
    golden_trace("fw_ipv6", &o.trace);

    // IPv6 fragments (the identification is in the Fragment header): the
    // later fragment of an outgoing datagram is forwarded with its first;
    // the later fragment of an unsolicited one shares its first's drop.
    let o = run(
        "fw_ipv6_fragments",
        cfg,
        &[
            (
                "lan",
                vec![(0.0, frag6(&out, 0, 7)), (0.1, frag6(&out, 16, 7))],
            ),
            (
                "wan",
                vec![
                    (0.2, frag6(&back(99), 0, 8)),
                    (0.3, frag6(&back(99), 16, 8)),
                ],
            ),
        ],
    );
    assert_eq!(o.frames("wan").len(), 2, "both outgoing fragments");
    assert!(o.frames("lan").is_empty());
    assert_eq!(o.drops("filter_forward"), 1);
    assert_eq!(o.drops("fragment_unforwarded"), 1);
}

/// `frame` (Ethernet + IPv6 + payload) as a fragment: a Fragment header
/// with identification `id` and offset `offset` x 8 bytes (M set when 0),
/// the original payload after it.
fn frag6(frame: &[u8], offset: u16, id: u32) -> Vec<u8> {
    let (eth, ip) = frame.split_at(14);
    let mut f = eth.to_vec();
    let mut hdr = ip[..40].to_vec();
    let next = hdr[6];
    hdr[6] = 44;
    let plen = u16::from_be_bytes([hdr[4], hdr[5]]) + 8;
    hdr[4..6].copy_from_slice(&plen.to_be_bytes());
    f.extend_from_slice(&hdr);
    let om = offset << 3 | u16::from(offset == 0);
    f.extend_from_slice(&[next, 0]);
    f.extend_from_slice(&om.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&ip[40..]);
    f
}
