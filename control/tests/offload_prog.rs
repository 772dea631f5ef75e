//! The offload XDP program (dataplane/src/io/afxdp/offload.bpf.c) against
//! the pipeline, frame by frame: connections are set up through an
//! in-memory worker; the action of each direction is learned from a frame
//! the worker received and the frame it sent (`offload::learn`), installed
//! in the program's flow map, and the next frame of that direction must
//! come out of the program (BPF_PROG_RUN) byte for byte as it comes out of
//! the worker: masquerade and its reverse, a VLAN tag popped and pushed,
//! IPv6 hop limit, a UDP/IPv4 packet without checksum. What the program
//! must leave to the workers (SYN/FIN/RST, TTL 1, options, fragments,
//! over the MTU, a miss) goes to the socket path and is counted.
//!
//! Needs root (bpf(2)); says why and passes elsewhere. Every device is the
//! loopback here: device numbers are the integration's business, the
//! rewrite is what this test checks.

mod common;

use common::*;
use xgate_dataplane::io::afxdp::offload::{self, FlowKey, OffloadProgram, Outcome};

const LO: u32 = 1;
const XDP_DROP: u32 = 1;
const XDP_REDIRECT: u32 = 4;

const WAN: u16 = 0;
const LAN: u16 = 1;

const CFG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:ff::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24", "2001:db8:1::1/64"]

[[interface]]
name = "guest"
device = "eth1"
vlan = 20
address = ["10.20.0.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "::/0"
via = "2001:db8:ff::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:ff::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "192.168.1.10"
mac = "02:aa:00:00:00:10"
dev = "lan"

[[neighbor]]
ip = "2001:db8:1::10"
mac = "02:aa:00:00:00:10"
dev = "lan"

[[neighbor]]
ip = "10.20.0.5"
mac = "02:aa:00:00:00:20"
dev = "guest"

[firewall]
rules_v4 = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -i guest -o wan -j ACCEPT
COMMIT
"""
rules_v6 = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#;

const ROUTER_WAN: Mac = [2, 0, 0, 0, 0, 1];
const ROUTER_LAN: Mac = [2, 0, 0, 0, 0, 2];
const UPSTREAM: Mac = [2, 0xbb, 0, 0, 0, 1];
const HOST: Mac = [2, 0xaa, 0, 0, 0, 0x10];
const GUEST: Mac = [2, 0xaa, 0, 0, 0, 0x20];

/// The worker and the loaded program.
struct Bench {
    w: xgate_dataplane::io::memory::MemoryWorker,
    prog: OffloadProgram,
    now: u64,
}

impl Bench {
    /// What the worker sends for `frame` received on `port`: exactly one
    /// frame, with its port.
    fn forward(&mut self, port: u16, frame: &[u8]) -> (u16, Vec<u8>) {
        self.now += 1_000_000;
        self.w.receive(port, &[frame], self.now).unwrap();
        let mut out = Vec::new();
        self.w.drain(|p, f| out.push((p, f.to_vec())));
        assert_eq!(out.len(), 1, "the worker sent {} frames for one", out.len());
        out.pop().unwrap()
    }

    /// Forwards `frame` through the worker and offloads its direction.
    fn learn(&mut self, port: u16, frame: &[u8]) -> (FlowKey, Vec<u8>) {
        let (_, sent) = self.forward(port, frame);
        let (key, action) = offload::learn(frame, &sent, LO, LO, 1500).expect("offloadable");
        self.prog.insert(&key, &action).unwrap();
        (key, sent)
    }

    /// The program and the worker on the same frame: the program
    /// redirects it and its bytes are the worker's.
    fn same(&mut self, port: u16, frame: &[u8], what: &str) -> Vec<u8> {
        let (verdict, fast) = self.prog.run_once(frame, LO, 0).unwrap();
        let (_, slow) = self.forward(port, frame);
        assert_eq!(verdict, XDP_REDIRECT, "{what}: not offloaded");
        assert_eq!(
            fast, slow,
            "{what}: the program's frame differs from the worker's"
        );
        verify_frame(&fast, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        slow
    }
}

fn bench() -> Option<Bench> {
    let prog = match OffloadProgram::load() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !is_root() => {
            println!("skipped: loading a BPF program needs root ({e})");
            return None;
        }
        Err(e) => panic!("the kernel refuses the offload program: {e}"),
    };
    prog.add_port(LO).unwrap();
    Some(Bench {
        w: memory_worker(CFG),
        prog,
        now: 1_000_000_000,
    })
}

/// An action with another MTU.
trait FlowActionExt {
    fn mtu(self, mtu: u16) -> Self;
}

impl FlowActionExt for offload::FlowAction {
    fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The TCP ports of a frame (IPv4, untagged).
fn ports4(frame: &[u8]) -> (u16, u16) {
    let t = tuple4(frame);
    (t.1, t.3)
}

#[test]
fn masqueraded_tcp_both_ways_comes_out_as_the_workers() {
    let Some(mut b) = bench() else { return };
    let (lan, srv) = ("192.168.1.10", "198.51.100.7");
    let syn = tcp4_seg(HOST, ROUTER_LAN, lan, srv, 40000, 443, 1000, 0, "S", b"");
    let (port, out) = b.forward(LAN, &syn);
    assert_eq!(port, WAN);
    let (nat_port, _) = ports4(&out);
    let synack = tcp4_seg(
        UPSTREAM,
        ROUTER_WAN,
        srv,
        "203.0.113.2",
        443,
        nat_port,
        5000,
        1001,
        "SA",
        b"",
    );
    b.forward(WAN, &synack);
    let ack = tcp4_seg(HOST, ROUTER_LAN, lan, srv, 40000, 443, 1001, 5001, "A", b"");
    b.forward(LAN, &ack);
    // The first data of each direction teaches the program.
    let up = |seq: u32, data: &[u8]| {
        tcp4_seg(
            HOST, ROUTER_LAN, lan, srv, 40000, 443, seq, 5001, "PA", data,
        )
    };
    let down = |seq: u32, data: &[u8]| {
        tcp4_seg(
            UPSTREAM,
            ROUTER_WAN,
            srv,
            "203.0.113.2",
            443,
            nat_port,
            seq,
            1011,
            "PA",
            data,
        )
    };
    let (k_up, sent) = b.learn(LAN, &up(1001, b"GET / 1.0\n"));
    assert_eq!(tuple4(&sent).0.to_string(), "203.0.113.2", "masqueraded");
    let (k_down, _) = b.learn(WAN, &down(5001, b"HTTP/1.0 200 OK\r\n"));
    // Then the program does what the worker does, many segments each way.
    for i in 0..20u32 {
        let data = vec![b'a' + (i % 26) as u8; 1 + (i as usize * 37) % 1400];
        b.same(LAN, &up(1011 + i * 1500, &data), "upload");
        b.same(WAN, &down(5018 + i * 1500, &data), "download");
    }
    // Counted per direction: the 20 segments the program forwarded.
    let a = b.prog.get(&k_up).unwrap();
    assert_eq!(a.packets, 20);
    assert!(a.last_seen > 0);
    assert_eq!(b.prog.get(&k_down).unwrap().packets, 20);

    // What the workers must see goes to the socket path (an empty socket
    // map here, so the redirect's fallback: XDP_DROP), counted.
    let before = b.prog.outcomes().unwrap();
    let fin = tcp4_seg(
        HOST, ROUTER_LAN, lan, srv, 40000, 443, 31000, 5001, "FA", b"",
    );
    let rst = tcp4_seg(
        UPSTREAM,
        ROUTER_WAN,
        srv,
        "203.0.113.2",
        443,
        nat_port,
        31000,
        0,
        "R",
        b"",
    );
    let mut ttl1 = up(31000, b"x");
    ttl1[14 + 8] = 1;
    fix_ipv4_checksum(&mut ttl1[14..34]);
    let other = tcp4_seg(
        HOST,
        ROUTER_LAN,
        lan,
        srv,
        40001,
        443,
        1,
        1,
        "A",
        b"unknown connection",
    );
    for f in [&fin, &rst, &ttl1, &other] {
        assert_eq!(b.prog.run_once(f, LO, 0).unwrap().0, XDP_DROP);
    }
    let after = b.prog.outcomes().unwrap();
    let delta = |o: Outcome| after[o as usize] - before[o as usize];
    assert_eq!(delta(Outcome::TcpFlags), 2);
    assert_eq!(delta(Outcome::Ttl), 1);
    assert_eq!(delta(Outcome::Miss), 1);
    assert_eq!(delta(Outcome::Offloaded), 0);

    // Lengths that do not add up, a bad header checksum, a priority tag:
    // the workers decide (they drop or handle them).
    let mut bad_sum = up(32000, b"x");
    bad_sum[14 + 10] ^= 0xff;
    let mut short_len = up(32000, b"xyz");
    short_len[14 + 3] -= 3;
    fix_ipv4_checksum(&mut short_len[14..34]);
    short_len[14 + 20 + 12] = 0xf0; // TCP data offset 60 > what is left
    let prio = tagged(up(32000, b"x"), &[0]);
    let before = b.prog.outcomes().unwrap();
    for f in [&bad_sum, &short_len] {
        assert_eq!(b.prog.run_once(f, LO, 0).unwrap().0, XDP_DROP);
    }
    assert_eq!(b.prog.run_once(&prio, LO, 0).unwrap().0, XDP_DROP);
    let after = b.prog.outcomes().unwrap();
    assert_eq!(
        after[Outcome::Malformed as usize] - before[Outcome::Malformed as usize],
        2
    );
    assert_eq!(
        after[Outcome::NotOffloadable as usize] - before[Outcome::NotOffloadable as usize],
        1
    );

    // A pure ACK padded to the 60-byte minimum: the padding goes, as in
    // the pipeline.
    let mut ack = tcp4_seg(
        HOST, ROUTER_LAN, lan, srv, 40000, 443, 31000, 5001, "A", b"",
    );
    ack.resize(60, 0);
    let sent = b.same(LAN, &ack, "a padded ACK");
    assert_eq!(sent.len(), 54);
    let bytes = b.prog.get(&k_up).unwrap().bytes;
    assert_eq!(
        bytes,
        20 * 40
            + (0..20u32)
                .map(|i| 1 + u64::from(i * 37 % 1400))
                .sum::<u64>()
            + 40
    );

    // An egress the program was not given: the workers.
    let mut elsewhere = b.prog.get(&k_up).unwrap();
    elsewhere.out_ifindex = 999_999;
    b.prog.insert(&k_up, &elsewhere).unwrap();
    assert_eq!(
        b.prog.run_once(&up(33000, b"x"), LO, 0).unwrap().0,
        XDP_DROP
    );
    assert_eq!(b.prog.outcomes().unwrap()[Outcome::NoPort as usize], 1);
    elsewhere.out_ifindex = LO;
    b.prog.insert(&k_up, &elsewhere).unwrap();

    // Over the egress MTU: the workers (they fragment or answer ICMP).
    let mut small = b.prog.get(&k_up).unwrap();
    small.mtu = 100;
    b.prog.insert(&k_up, &small).unwrap();
    assert_eq!(
        b.prog.run_once(&up(40000, &[7u8; 200]), LO, 0).unwrap().0,
        XDP_DROP
    );
    assert_eq!(b.prog.outcomes().unwrap()[Outcome::Mtu as usize], 1);
    b.prog
        .insert(
            &k_up,
            &b.prog
                .get(&k_up)
                .map(|a| FlowActionExt::mtu(a, 1500))
                .unwrap(),
        )
        .unwrap();

    // A segment without ACK (INVALID to the workers' tracking), a frame
    // to the broadcast MAC, an entry of an older epoch: the workers.
    let before = b.prog.outcomes().unwrap();
    let no_ack = tcp4_seg(HOST, ROUTER_LAN, lan, srv, 40000, 443, 41000, 0, "P", b"x");
    let bcast = tcp4_seg(
        HOST, [0xff; 6], lan, srv, 40000, 443, 41000, 5001, "PA", b"x",
    );
    assert_eq!(b.prog.run_once(&no_ack, LO, 0).unwrap().0, XDP_DROP);
    assert_eq!(b.prog.run_once(&bcast, LO, 0).unwrap().0, XDP_DROP);
    b.prog.set_epoch(1).unwrap();
    assert_eq!(
        b.prog.run_once(&up(41000, b"x"), LO, 0).unwrap().0,
        XDP_DROP
    );
    b.prog.set_epoch(0).unwrap();
    assert_eq!(
        b.prog.run_once(&up(41001, b"x"), LO, 0).unwrap().0,
        XDP_REDIRECT,
        "its epoch again"
    );
    let after = b.prog.outcomes().unwrap();
    let delta = |o: Outcome| after[o as usize] - before[o as usize];
    assert_eq!(delta(Outcome::TcpFlags), 1);
    assert_eq!(delta(Outcome::NotOffloadable), 1);
    assert_eq!(delta(Outcome::Stale), 1);

    // Removed: back to the workers.
    assert!(b.prog.remove(&k_down));
    assert_eq!(
        b.prog.run_once(&down(40000, b"late"), LO, 0).unwrap().0,
        XDP_DROP
    );
}

#[test]
fn a_vlan_tag_is_popped_and_pushed_as_the_worker_does() {
    let Some(mut b) = bench() else { return };
    let (guest, srv) = ("10.20.0.5", "198.51.100.9");
    let up =
        |sport: u16, data: &[u8]| udp4(GUEST, ROUTER_LAN, &[20], guest, srv, 64, sport, 53, data);
    let (_, out) = b.forward(LAN, &up(5353, b"query 1"));
    let (nat_port, _) = ports4(&out);
    let down = |data: &[u8]| {
        udp4(
            UPSTREAM,
            ROUTER_WAN,
            &[],
            srv,
            "203.0.113.2",
            57,
            53,
            nat_port,
            data,
        )
    };
    b.learn(WAN, &down(b"answer 1"));
    b.learn(LAN, &up(5353, b"query 2"));
    // A payload whose rewritten UDP checksum comes out 0, which is sent
    // as all ones (RFC 768): found by asking the worker.
    let mut found = false;
    for w in 0..=u16::MAX {
        let q = [b'z', (w >> 8) as u8, w as u8];
        let (_, sent) = b.forward(LAN, &up(5353, &q));
        let l4 = &sent[14 + 20..];
        if l4[6..8] == [0xff, 0xff] {
            b.same(LAN, &up(5353, &q), "a checksum that comes out 0");
            found = true;
            break;
        }
    }
    assert!(found, "no payload gives a zero checksum");
    for i in 0..10u8 {
        let q = vec![i; 10 + usize::from(i) * 50];
        let sent = b.same(LAN, &up(5353, &q), "tagged upload");
        assert_eq!(l2(&sent).0, Vec::<u16>::new(), "untagged on the wan");
        let sent = b.same(WAN, &down(&q), "download to the VLAN");
        assert_eq!(l2(&sent).0, vec![20], "tagged again toward the guest");
    }
}

#[test]
fn ipv6_and_a_udp_packet_without_checksum_match_the_worker() {
    let Some(mut b) = bench() else { return };
    // IPv6 masqueraded (ip6tables MASQUERADE): hop limit, a 128-bit
    // address and the port in the UDP checksum.
    let (h, s) = ("2001:db8:1::10", "2001:db8:99::7");
    let up = |data: &[u8]| udp6(HOST, ROUTER_LAN, h, s, 64, 6000, 443, data);
    let (_, first) = b.forward(LAN, &up(b"hello"));
    assert_eq!(
        &first[14 + 8..14 + 24],
        &ip6("2001:db8:ff::2"),
        "masqueraded"
    );
    let nat_port = u16::from_be_bytes([first[54], first[55]]);
    let down = |data: &[u8]| {
        udp6(
            UPSTREAM,
            ROUTER_WAN,
            s,
            "2001:db8:ff::2",
            50,
            443,
            nat_port,
            data,
        )
    };
    b.learn(WAN, &down(b"hi"));
    b.learn(LAN, &up(b"more"));
    for i in 0..5u8 {
        b.same(LAN, &up(&[i; 300]), "IPv6 upload");
        b.same(WAN, &down(&[i; 700]), "IPv6 download");
    }
    // UDP/IPv6 without checksum (RFC 6936 tunnels): the workers'.
    let mut zero = up(&[9; 40]);
    zero[14 + 40 + 6..14 + 40 + 8].fill(0);
    assert_eq!(b.prog.run_once(&zero, LO, 0).unwrap().0, XDP_DROP);
    // UDP/IPv4 with checksum 0 (none): NAT leaves it 0, so does the program.
    let (lan, srv) = ("192.168.1.10", "198.51.100.8");
    let no_sum = |data: &[u8]| {
        let mut f = udp4(HOST, ROUTER_LAN, &[], lan, srv, 64, 7000, 4789, data);
        f[14 + 20 + 6..14 + 20 + 8].fill(0);
        f
    };
    let (_, out) = b.forward(LAN, &no_sum(b"first"));
    let (nat_port, _) = ports4(&out);
    let reply = udp4(
        UPSTREAM,
        ROUTER_WAN,
        &[],
        srv,
        "203.0.113.2",
        60,
        4789,
        nat_port,
        b"back",
    );
    b.forward(WAN, &reply);
    b.learn(LAN, &no_sum(b"second"));
    let sent = b.same(LAN, &no_sum(b"third, offloaded"), "UDP without checksum");
    assert_eq!(&sent[14 + 20 + 6..14 + 20 + 8], &[0, 0]);
}
