//! Which connections the workers hand to the XDP offload (issue 16;
//! `dataplane/src/pipeline/offload.rs`): an in-memory worker with
//! `offload = "auto"` forwards a UDP exchange and a TCP connection, and
//! the queue to the control thread must hold exactly the directions that
//! may be offloaded: established (TCP in ESTABLISHED, UDP answered), a
//! FORWARD verdict from the connection state alone, no rule that looks at
//! every packet (LOG, limit, a length match, mangle), not traced. The
//! record must be what `offload::learn` turns into an entry. No bpf(2):
//! runs anywhere.

mod common;

use common::*;
use xgate_dataplane::conntrack::Dir;
use xgate_dataplane::io::afxdp::offload;
use xgate_dataplane::offload::Request;

const WAN: u16 = 0;
const LAN: u16 = 1;
const ROUTER_WAN: Mac = [2, 0, 0, 0, 0, 1];
const ROUTER_LAN: Mac = [2, 0, 0, 0, 0, 2];
const UPSTREAM: Mac = [2, 0xbb, 0, 0, 0, 1];
const HOST: Mac = [2, 0xaa, 0, 0, 0, 0x10];

fn config(forward: &str, extra_tables: &str) -> String {
    format!(
        r#"
[dataplane]
offload = "auto"

[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "192.168.1.10"
mac = "02:aa:00:00:00:10"
dev = "lan"

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
{forward}
COMMIT
{extra_tables}
"""
"#
    )
}

const USUAL: &str = "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
                     -A FORWARD -i lan -o wan -j ACCEPT";

/// Queued directions: (direction, whether `learn` makes an entry of it).
type Queued = Vec<(Dir, bool)>;

struct W {
    w: xgate_dataplane::io::memory::MemoryWorker,
    now: u64,
}

impl W {
    fn new(cfg: &str) -> W {
        let w = memory_worker(cfg);
        for p in 0..2 {
            w.pipeline.shared.offload.set_rx_port(p, true);
        }
        w.pipeline.shared.offload.set_tx_ports(0b11);
        W { w, now: 1 }
    }

    /// Receives `frame` on `port`; how many frames left.
    fn send(&mut self, port: u16, frame: &[u8]) -> usize {
        self.now += 1_000_000;
        self.w.receive(port, &[frame], self.now).unwrap();
        let mut n = 0;
        self.w.drain(|_, _| n += 1);
        n
    }

    /// The directions queued since the last call: (direction, the entry
    /// `learn` makes of the record).
    fn queued(&self) -> Queued {
        let q = &self.w.pipeline.shared.offload;
        let mut out = Vec::new();
        while let Some(r) = q.pop() {
            match r {
                Request::Learn(l) => {
                    // As the control thread does once it inserted it.
                    let ct = &self.w.pipeline.shared.conntrack;
                    ct.offload_mark(l.conn, l.conn.dir(), true, false);
                    let mut rx = l.rx_mac.to_vec();
                    rx.extend_from_slice(&[0; 6]);
                    rx.extend_from_slice(&[8, 0]);
                    rx.extend_from_slice(&l.rx[..usize::from(l.rx_len)]);
                    let tx = &l.tx[..usize::from(l.tx_len)];
                    let learned = offload::learn(&rx, tx, 1, 2, l.mtu).is_some();
                    out.push((l.conn.dir(), learned));
                }
                Request::Teardown(c) | Request::Kill(c) => out.push((c.dir(), false)),
            }
        }
        out
    }
}

fn out_udp(n: u8) -> Vec<u8> {
    udp4(
        HOST,
        ROUTER_LAN,
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        5000,
        53,
        &[n; 20],
    )
}

fn in_udp(n: u8) -> Vec<u8> {
    udp4(
        UPSTREAM,
        ROUTER_WAN,
        &[],
        "198.51.100.7",
        "203.0.113.2",
        64,
        53,
        5000,
        &[n; 20],
    )
}

/// A UDP exchange: out (NEW), back (the reply: ESTABLISHED), out again.
/// Returns what was queued after each packet after the first.
fn udp_exchange(w: &mut W) -> (Queued, Queued) {
    assert_eq!(w.send(LAN, &out_udp(1)), 1);
    assert!(w.queued().is_empty(), "a NEW packet is not offloaded");
    assert_eq!(w.send(WAN, &in_udp(2)), 1);
    let after_reply = w.queued();
    assert_eq!(w.send(LAN, &out_udp(3)), 1);
    assert_eq!(w.send(LAN, &out_udp(4)), 1);
    (after_reply, w.queued())
}

#[test]
fn an_answered_udp_flow_is_queued_once_per_direction() {
    let mut w = W::new(&config(USUAL, ""));
    let (reply, orig) = udp_exchange(&mut w);
    assert_eq!(reply, vec![(Dir::Reply, true)], "the answer's direction");
    assert_eq!(orig, vec![(Dir::Original, true)], "once, not per packet");
    // Both asked: nothing more.
    assert_eq!(w.send(WAN, &in_udp(5)), 1);
    assert!(w.queued().is_empty());
}

/// Rules that must see every packet keep the connection in the workers
/// (and an empty nftables prerouting chain does not).
#[test]
fn rules_that_see_every_packet_keep_it_in_the_workers() {
    let cases = [
        (
            "LOG first",
            format!("-A FORWARD -j LOG --log-prefix fwd\n{USUAL}"),
            String::new(),
        ),
        (
            "a length match first",
            format!("-A FORWARD -m length --length 1000:65535 -j DROP\n{USUAL}"),
            String::new(),
        ),
        (
            "limit on established",
            "-A FORWARD -m conntrack --ctstate ESTABLISHED -m limit --limit 10/s -j ACCEPT\n\
             -A FORWARD -i lan -o wan -j ACCEPT"
                .to_string(),
            String::new(),
        ),
        (
            "mangle FORWARD",
            USUAL.to_string(),
            "*mangle\n-A FORWARD -j MARK --set-mark 1\nCOMMIT".to_string(),
        ),
        (
            "mangle PREROUTING",
            USUAL.to_string(),
            "*mangle\n-A PREROUTING -p udp -j MARK --set-mark 2\nCOMMIT".to_string(),
        ),
        (
            "raw PREROUTING",
            USUAL.to_string(),
            "*raw\n-A PREROUTING -p tcp --dport 5 -j NOTRACK\nCOMMIT".to_string(),
        ),
    ];
    for (what, fwd, extra) in cases {
        let mut w = W::new(&config(&fwd, &extra));
        let (reply, orig) = udp_exchange(&mut w);
        assert!(
            reply.is_empty() && orig.is_empty(),
            "{what}: queued {reply:?} {orig:?}"
        );
    }
    // nftables: a filter chain at the prerouting hook sees every packet.
    let nft = r#"
table ip t {
    chain pre {
        type filter hook prerouting priority filter;
        ip saddr 192.0.2.66 drop
    }
    chain fwd {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
    }
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "wan" masquerade
    }
}
"#;
    let cfg = config(USUAL, "").replace(
        &config(USUAL, "")[config(USUAL, "").find("[firewall]").unwrap()..],
        &format!("[firewall]\nnft = '''{nft}'''\n"),
    );
    for (what, cfg) in [
        ("nft filter prerouting", cfg.clone()),
        (
            "the same without it (offloaded)",
            cfg.replace("ip saddr 192.0.2.66 drop", "").replace(
                "type filter hook prerouting priority filter;",
                "type filter hook prerouting priority filter; policy accept;",
            ),
        ),
    ] {
        let mut w = W::new(&cfg);
        let (reply, orig) = udp_exchange(&mut w);
        if what.contains("without") {
            assert_eq!(orig, vec![(Dir::Original, true)], "{what}");
            continue;
        }
        assert!(
            reply.is_empty() && orig.is_empty(),
            "{what}: queued {reply:?} {orig:?}"
        );
    }
}

/// TCP: only once ESTABLISHED (not at the SYN-ACK), and a FIN of an
/// offloaded connection asks for its teardown.
#[test]
fn tcp_is_queued_once_established_and_torn_down_by_fin() {
    let mut w = W::new(&config(USUAL, ""));
    let tcp = |out: bool, flags: &str, seq: u32, ack: u32| {
        let mut f = Vec::new();
        let b = if out {
            etherparse::PacketBuilder::ethernet2(HOST, ROUTER_LAN)
                .ipv4(ip4("192.168.1.10"), ip4("198.51.100.7"), 64)
                .tcp(40000, 443, seq, 64000)
        } else {
            etherparse::PacketBuilder::ethernet2(UPSTREAM, ROUTER_WAN)
                .ipv4(ip4("198.51.100.7"), ip4("203.0.113.2"), 64)
                .tcp(443, 40000, seq, 64000)
        };
        let b = if flags.contains('S') { b.syn() } else { b };
        let b = if flags.contains('F') { b.fin() } else { b };
        let b = if flags.contains('A') { b.ack(ack) } else { b };
        b.write(&mut f, if flags.contains('D') { &[7; 100] } else { &[] })
            .unwrap();
        f
    };
    assert_eq!(w.send(LAN, &tcp(true, "S", 1000, 0)), 1);
    assert_eq!(w.send(WAN, &tcp(false, "SA", 5000, 1001)), 1);
    assert!(w.queued().is_empty(), "not before ESTABLISHED");
    assert_eq!(w.send(LAN, &tcp(true, "A", 1001, 5001)), 1);
    assert_eq!(w.send(LAN, &tcp(true, "AD", 1001, 5001)), 1);
    assert_eq!(w.send(WAN, &tcp(false, "AD", 5001, 1101)), 1);
    let q = w.queued();
    assert!(q.contains(&(Dir::Original, true)), "{q:?}");
    assert!(q.contains(&(Dir::Reply, true)), "{q:?}");
    // (The control thread would install them; the FIN asks for the
    // teardown since both directions were asked for.)
    assert_eq!(w.send(LAN, &tcp(true, "FA", 1101, 5101)), 1);
    assert_eq!(w.queued(), vec![(Dir::Original, false)], "a teardown");
}
