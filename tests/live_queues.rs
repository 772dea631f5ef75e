//! End to end: every receive queue of a bound device belongs to xgate.
//!
//! veths with 4 receive queues on this (2-core) machine: by default xgate
//! runs one worker per core, and before it served only queues 0 and 1,
//! while libxdp's program passed frames of queues 2 and 3 to the kernel:
//! those flows were not forwarded, and with the kernel holding the
//! addresses and `ip_forward=1` they were routed by the kernel past
//! xgate's FORWARD DROP. Here every queue is served (a worker owns several
//! queues), and a queue xgate does not serve drops in xgate's XDP program.
//!
//! veth picks the receive queue from the sender's transmit queue, which
//! (no XPS on veth) comes from the flow hash: 32 UDP flows from a sender
//! whose veth has 4 transmit queues land on every queue.
//!
//! ```text
//!  client ns               router ns (xgate)               server ns
//!  c0 10.1.0.2/24 ---- r0 "lan" 10.1.0.1/24
//!                          r1 "wan" 10.2.0.1/24 ---- s0 10.2.0.2/24
//! ```

use std::net::UdpSocket;
use std::time::{Duration, Instant};
use xgate_testbed::xgate::{Xgate, XgateExit};
use xgate_testbed::{Gateway, in_ns, skip};

type Topo = Gateway;

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");
const QUEUES: u32 = 4;
const FLOWS: usize = 32;
const PER_FLOW: usize = 3;
const PORT: u16 = 7000;

/// The three namespaces, 4-queue veths; `kernel_routes`: the router
/// namespace's kernel holds the router's addresses and forwards
/// (`ip_forward=1`), so a frame passed to it would be routed.
fn topology(kernel_routes: bool) -> Topo {
    let t = Gateway::new(QUEUES);
    if kernel_routes {
        t.tb.ip(&t.router, &["addr", "add", "10.1.0.1/24", "dev", &t.r0]);
        t.tb.ip(&t.router, &["addr", "add", "10.2.0.1/24", "dev", &t.r1]);
        t.tb.sysctl(&t.router, "net.ipv4.ip_forward=1");
    }
    t
}

/// xgate's config: `dataplane` keys (none: the defaults) and the filter
/// table's FORWARD policy.
fn config(t: &Topo, dataplane: &str, forward: &str) -> String {
    format!(
        r#"
[dataplane]
{dataplane}
flows = 65536

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]

[firewall]
rules = """
*filter
:FORWARD {forward} [0:0]
COMMIT
"""
"#,
        r0 = t.r0,
        r1 = t.r1
    )
}

/// Sends `FLOWS` flows (distinct source ports) of `PER_FLOW` datagrams
/// each from the client to the server; returns how many the server got.
/// Each flow first sends one unmeasured datagram (neighbour resolution on
/// every path), then the measured ones.
fn send_flows(t: &Topo) -> usize {
    let sock = in_ns(&t.server, || {
        UdpSocket::bind(("10.2.0.2", PORT)).expect("binding the server socket")
    })
    .join()
    .unwrap();
    let counter = std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        let mut measured = 0;
        let until = Instant::now() + Duration::from_secs(6);
        let mut quiet_since = Instant::now();
        while Instant::now() < until && quiet_since.elapsed() < Duration::from_secs(2) {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                quiet_since = Instant::now();
                if n > 0 && buf[0] == b'M' {
                    measured += 1;
                }
            }
        }
        measured
    });
    in_ns(&t.client, || {
        let socks: Vec<UdpSocket> = (0..FLOWS)
            .map(|_| UdpSocket::bind("10.1.0.2:0").unwrap())
            .collect();
        let to = ("10.2.0.2", PORT);
        for s in &socks {
            let _ = s.send_to(b"warm-up", to);
        }
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..PER_FLOW {
            for s in &socks {
                let _ = s.send_to(format!("M{i}").as_bytes(), to);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
    counter.join().unwrap()
}

fn stop(t: &Topo, x: Xgate) -> XgateExit {
    let exit = x.stop();
    eprint!("{}\n{}", exit.log, exit.stats);
    assert!(exit.success, "xgate did not exit cleanly:\n{}", exit.log);
    assert!(!t.tb.has_xdp(&t.router), "XDP program left after stop");
    let leaked = exit.per_worker("frames_leaked");
    assert!(
        !leaked.is_empty() && leaked.iter().all(|&l| l == 0),
        "frames leaked:\n{}",
        exit.stats
    );
    exit
}

#[test]
fn default_config_serves_every_queue_and_forwards_every_flow() {
    if skip() {
        return;
    }
    let t = topology(false);
    let x = Xgate::start(XGATE, &t.router, &config(&t, "", "ACCEPT"));
    let log = x.log();
    assert!(log.contains("xgate: running"), "{log}");
    let got = send_flows(&t);
    let exit = stop(&t, x);
    eprintln!("forwarded {got} of {} datagrams", FLOWS * PER_FLOW);
    assert_eq!(
        got,
        FLOWS * PER_FLOW,
        "every flow, whatever its queue, goes through xgate"
    );
    assert!(
        exit.log
            .contains(&format!("{} {QUEUES} rx (all served)", t.r0)),
        "the start line names the queues served:\n{}",
        exit.log
    );
    // Per socket: the frames each queue received (and the kernel's
    // XDP_STATISTICS); the flows did spread over the queues.
    let sockets: Vec<&str> = exit
        .stats
        .lines()
        .filter(|l| l.starts_with("socket "))
        .collect();
    assert_eq!(sockets.len(), 2 * QUEUES as usize, "{}", exit.stats);
    let busy = sockets
        .iter()
        .filter(|l| l.contains(&format!("device={} ", t.r0)) && !l.contains(" rx_packets=0 "))
        .count();
    assert!(
        busy >= 3,
        "frames on {busy} of r0's queues:\n{}",
        exit.stats
    );
    let fwd = exit.per_worker("forwarded");
    assert!(fwd.iter().sum::<i64>() >= (FLOWS * PER_FLOW) as i64);
}

#[test]
fn forward_drop_holds_even_when_the_kernel_would_route() {
    if skip() {
        return;
    }
    let t = topology(true);
    // Without xgate the router namespace's kernel routes the flows: the
    // path a bypass would take exists.
    let got = send_flows(&t);
    assert_eq!(got, FLOWS * PER_FLOW, "the kernel itself forwards");

    // The default config: every queue served, FORWARD DROP for all.
    let x = Xgate::start(XGATE, &t.router, &config(&t, "", "DROP"));
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let got = send_flows(&t);
    let exit = stop(&t, x);
    eprintln!("default config, FORWARD DROP: {got} datagrams passed");
    assert_eq!(got, 0, "xgate's FORWARD DROP must hold on every queue");
    assert!(
        exit.stats.contains("filter_forward="),
        "xgate saw and dropped the flows:\n{}",
        exit.stats
    );

    // Queues limited by the config: the unserved ones drop in the XDP
    // program, nothing reaches the kernel.
    let x = Xgate::start(
        XGATE,
        &t.router,
        &config(
            &t,
            "workers = 1\nqueues = 1\nrx_ring = 512\ntx_ring = 512\nfill_ring = 1024",
            "DROP",
        ),
    );
    let log = x.log();
    assert!(log.contains("xgate: running"), "{log}");
    assert!(
        log.contains(&format!("{} 4 rx (1 served; queues 1..3 dropped)", t.r0)),
        "{log}"
    );
    // Ring sizes from the config: 2 sockets x (1024 fill + 512 tx) + 4096.
    assert!(log.contains("UMEM 7168 frames"), "{log}");
    let got = send_flows(&t);
    stop(&t, x);
    eprintln!("queues = 1, FORWARD DROP: {got} datagrams passed");
    assert_eq!(
        got, 0,
        "an unserved queue must drop, not pass to the kernel"
    );
}
