//! End to end, the XDP offload (issue 16, `[dataplane] offload = "auto"`):
//! established connections forwarded by xgate's XDP program must leave
//! exactly as the pipeline sends them.
//!
//! ```text
//!  client c0 10.1.0.2 ---- r0 "lan" [xgate] r1 "wan" ---- s0 10.2.0.2 server
//! ```
//!
//! The endpoints have GRO on (testbed `endpoint`): a veth takes frames
//! redirected to it only when its peer has GRO or an XDP program, which
//! the kernel reports and xgate checks.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};
use xgate_testbed::traffic::{self, RawSocket};
use xgate_testbed::xgate::{Xgate, scrape_metrics};
use xgate_testbed::{Gateway, in_ns, skip};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

fn config(t: &Gateway, offload: &str) -> String {
    format!(
        r#"
[dataplane]
workers = 1
flows = 65536
offload = "{offload}"

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
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -s 10.1.0.0/24 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#,
        r0 = t.r0,
        r1 = t.r1
    )
}

/// Whether the offload runs: the kernel says which devices take
/// redirected frames only from Linux 6.3 (`xdp_features`); without, xgate
/// redirects to none and these tests skip, saying so.
fn offload_runs(x: &Xgate) -> bool {
    let log = x.log();
    if log.contains("forwarded in XDP from") && !log.contains(" to none (") {
        return true;
    }
    eprintln!(
        "skipped: the kernel does not report which devices take redirected frames \
         (xdp_features, Linux 6.3):\n{log}"
    );
    false
}

/// `xgate run` on `cfg` in the router with the offload running; None
/// (the skip said) where the kernel cannot tell redirect targets.
fn start_offloading(t: &Gateway, cfg: &str) -> Option<Xgate> {
    let x = Xgate::start(XGATE, &t.router, cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    offload_runs(&x).then_some(x)
}

/// A UDP echo server on 10.2.0.2:`port`, and what makes its clients (a
/// socket on 10.1.0.2:`client_port`).
fn udp_echo_pair(t: &Gateway, port: u16) -> impl Fn(u16) -> Pinger + '_ {
    let echo = in_ns(&t.server, move || {
        UdpSocket::bind(("10.2.0.2", port)).unwrap()
    })
    .join()
    .unwrap();
    std::thread::spawn(move || traffic::udp_echo(echo, 100_000));
    move |client_port| {
        let s = in_ns(&t.client, move || {
            UdpSocket::bind(("10.1.0.2", client_port)).unwrap()
        })
        .join()
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Pinger { s, port }
    }
}

/// A client of the echo server.
struct Pinger {
    s: UdpSocket,
    port: u16,
}

impl Pinger {
    /// Sends `n` and waits for it to come back.
    fn ping(&self, n: u32) {
        let mut buf = [0u8; 64];
        self.s
            .send_to(&n.to_be_bytes(), ("10.2.0.2", self.port))
            .unwrap();
        let (len, _) = self.s.recv_from(&mut buf).expect("the echo");
        assert_eq!(&buf[..len], &n.to_be_bytes());
    }
}

fn stats(x: &Xgate) -> serde_json::Value {
    serde_json::from_str(&x.ctl(&["stats", "--json"])).unwrap()
}

/// Frames the program forwarded itself.
fn offloaded(x: &Xgate) -> u64 {
    stats(x)["offload"]["program"]["offloaded"]
        .as_u64()
        .unwrap_or(0)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// What one run delivered: the UDP frames the server's device received
/// for port 7000 (MACs checked, then blanked: each run has new devices),
/// and the connection's counters in the original direction.
struct Run {
    frames: Vec<Vec<u8>>,
    counters: (u64, u64),
    offloaded: u64,
    log: String,
}

/// Sends the same crafted frames (IP ID, ports, sizes, Ethernet padding)
/// through xgate with `offload`, a reload half-way.
fn udp_run(offload: &str) -> Option<Run> {
    let t = Gateway::new(1);
    let x = Xgate::start(XGATE, &t.router, &config(&t, offload));
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    if offload == "auto" && !offload_runs(&x) {
        return None;
    }
    let r0_mac = t.tb.mac(&t.router, &t.r0);
    let r1_mac = t.tb.mac(&t.router, &t.r1);
    let c0_mac = t.tb.mac(&t.client, &t.c0);
    let s0_mac = t.tb.mac(&t.server, &t.s0);

    // The server: answers the first datagram (the connection is then
    // ESTABLISHED), takes the rest; its device is captured.
    let server = in_ns(&t.server, || UdpSocket::bind("10.2.0.2:7000").unwrap())
        .join()
        .unwrap();
    let answer = std::thread::spawn(move || {
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], from).unwrap();
        // Keep the socket (no port unreachable) while frames come.
        std::thread::sleep(Duration::from_secs(8));
    });
    let s0 = t.s0.clone();
    let capture = in_ns(&t.server, move || {
        let raw = RawSocket::open(&s0);
        let mut got = Vec::new();
        let until = Instant::now() + Duration::from_secs(8);
        while Instant::now() < until {
            if let Some(f) = raw.recv(Duration::from_millis(200)) {
                // IPv4 UDP to 10.2.0.2:7000 (not the server's answers).
                if f.len() >= 38
                    && f[12..14] == [8, 0]
                    && f[23] == 17
                    && f[30..34] == [10, 2, 0, 2]
                    && f[36..38] == 7000u16.to_be_bytes()
                {
                    got.push(f);
                }
            }
        }
        got
    });
    // The client: its socket takes the answer; the frames go raw.
    let client = in_ns(&t.client, || UdpSocket::bind("10.1.0.2:6000").unwrap())
        .join()
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let c0 = t.c0.clone();
    let raw = in_ns(&t.client, move || RawSocket::open(&c0))
        .join()
        .unwrap();
    let frame = |i: usize| {
        let size = [1usize, 17, 100, 512, 1400][i % 5];
        let payload: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
        let mut f = traffic::udp_frame(
            r0_mac,
            c0_mac,
            None,
            Ipv4Addr::new(10, 1, 0, 2),
            Ipv4Addr::new(10, 2, 0, 2),
            6000,
            7000,
            &payload,
        );
        // IP identification: the frame's number.
        f[18..20].copy_from_slice(&(i as u16).to_be_bytes());
        f[24..26].fill(0);
        let c = xgate_dataplane::packet::checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        // The UDP checksum covers no IP ID: unchanged. Short frames get
        // Ethernet padding (the pipeline and the program trim it).
        if f.len() < 60 {
            f.resize(60, 0xaa);
        }
        f
    };
    // The capture's socket opens in its thread.
    std::thread::sleep(Duration::from_millis(300));
    raw.send(&frame(0));
    let mut buf = [0u8; 2048];
    let (n, _) = client.recv_from(&mut buf).expect("the server's answer");
    assert_eq!(n, 1);
    let total = 400;
    for i in 1..total {
        if i == total / 2 {
            // A reload: the offload's entries go, and come back.
            x.signal(libc::SIGHUP);
            wait_for("the reload", 5, || x.log().contains("xgate: reloaded"));
        }
        raw.send(&frame(i));
        std::thread::sleep(Duration::from_millis(2));
    }
    // The counters of offloaded frames reach conntrack within a second.
    std::thread::sleep(Duration::from_millis(1500));
    let conns: serde_json::Value =
        serde_json::from_str(&x.ctl(&["conntrack", "-p", "udp", "--json"])).unwrap();
    let flow = conns["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["original"]["dport"] == 7000)
        .unwrap_or_else(|| panic!("no connection: {conns}"))
        .clone();
    if offload == "auto" {
        assert_eq!(flow["offload"], true, "{flow}");
        let text = x.ctl(&["conntrack", "-p", "udp"]);
        assert!(text.contains("[OFFLOAD]"), "{text}");
        let s = stats(&x);
        assert!(s["offload"]["flushes"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["offload"]["inserted"].as_u64().unwrap() >= 2, "{s}");
    }
    let counters = (
        flow["original"]["packets"].as_u64().unwrap(),
        flow["original"]["bytes"].as_u64().unwrap(),
    );
    let offloaded = if offload == "auto" { offloaded(&x) } else { 0 };
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
    let log = exit.log;
    answer.join().unwrap();
    let mut frames = capture.join().unwrap();
    for f in &mut frames {
        assert_eq!(&f[..6], &s0_mac, "destination MAC");
        assert_eq!(&f[6..12], &r1_mac, "source MAC");
        f[..12].fill(0);
    }
    Some(Run {
        frames,
        counters,
        offloaded,
        log,
    })
}

/// The same frames through xgate with the offload off and on: the server
/// receives the same bytes (TTL, masquerade, checksums, padding trimmed),
/// and conntrack counts the same packets and bytes; with it on, most went
/// through the program, a reload flushed it and it came back.
#[test]
fn offload_on_and_off_deliver_the_same_frames() {
    if skip() {
        return;
    }
    let Some(on) = udp_run("auto") else { return };
    let off = udp_run("off").expect("offload off runs");
    assert_eq!(off.frames.len(), 400, "offload off:\n{}", off.log);
    assert_eq!(on.frames.len(), 400, "offload on:\n{}", on.log);
    for (i, (a, b)) in off.frames.iter().zip(&on.frames).enumerate() {
        assert_eq!(a, b, "frame {i} differs (off, then on)");
    }
    assert_eq!(on.counters, off.counters, "conntrack counters");
    assert!(
        on.offloaded >= 300,
        "only {} frames offloaded:\n{}",
        on.offloaded,
        on.log
    );
}

/// A TCP transfer whose connection is offloaded mid-way (the handshake
/// and first segments through the workers) arrives whole, and its end
/// (FIN through the workers) removes the offload.
#[test]
fn a_tcp_transfer_offloaded_midway_arrives_whole() {
    if skip() {
        return;
    }
    let t = Gateway::new(1);
    let Some(x) = start_offloading(&t, &config(&t, "auto")) else {
        return;
    };
    let listener = in_ns(&t.server, || TcpListener::bind("10.2.0.2:5001").unwrap())
        .join()
        .unwrap();
    let sink = std::thread::spawn(move || traffic::tcp_sink(listener));
    let data = traffic::pattern(64 << 20);
    let want = (data.len(), traffic::fnv(&data));
    in_ns(&t.client, move || {
        traffic::tcp_send("10.2.0.2:5001".parse().unwrap(), &data)
    })
    .join()
    .unwrap()
    .unwrap_or_else(|e| panic!("TCP through the offload: {e}\n{}", x.log()));
    let (len, sum, peer) = sink.join().unwrap();
    assert_eq!((len, sum), want, "the transfer's bytes");
    assert_eq!(peer.ip(), Ipv4Addr::new(10, 2, 0, 1), "masqueraded");
    // (The program's counters reach `ctl stats` with the next scan.)
    wait_for("segments offloaded", 5, || offloaded(&x) > 1000);
    // Prometheus sees it too (the default 127.0.0.1:9482).
    let metrics = scrape_metrics(&t.router);
    let line = metrics
        .lines()
        .find(|l| l.starts_with("xgate_offload_packets_total{outcome=\"offloaded\"}"))
        .unwrap_or_else(|| panic!("no offload metric:\n{metrics}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 1000, "{line}");
    assert!(metrics.contains("xgate_offload_capacity "), "{metrics}");
    // The FIN ended it: no direction stays in the map.
    wait_for("the entries to go", 5, || {
        stats(&x)["offload"]["entries"].as_u64() == Some(0)
    });
    let conns = x.ctl(&["conntrack", "-p", "tcp"]);
    assert!(!conns.contains("[OFFLOAD]"), "{conns}");
    // The connection's counters include what the program forwarded.
    let j: serde_json::Value =
        serde_json::from_str(&x.ctl(&["conntrack", "-p", "tcp", "--json"])).unwrap();
    let bytes = j["flows"][0]["original"]["bytes"].as_u64().unwrap();
    assert!(bytes >= 64 << 20, "conntrack counted {bytes} bytes");
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// Offload on a device in generic (SKB) XDP is not attempted, and xgate
/// says so at start.
#[test]
fn offload_needs_native_xdp_and_says_so() {
    if skip() {
        return;
    }
    let t = Gateway::new(1);
    let cfg = config(&t, "auto").replace("workers = 1", "workers = 1\nxdp_mode = \"skb\"");
    let x = Xgate::start(XGATE, &t.router, &cfg);
    assert!(
        x.log()
            .contains("offload: not running: no device runs XDP natively"),
        "{}",
        x.log()
    );
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// An offloaded connection lives by its traffic and ends through the
/// control thread: its XDP entries go before the connection (so its NAT
/// port is never reused while an entry still translates to it). Here a
/// UDP flow with a 3 s timeout outlives it while its datagrams go through
/// the program, expires 3 s after they stop, and a second one deleted
/// with `ctl conntrack -D` loses its entries too.
#[test]
fn offloaded_connections_live_by_their_traffic_and_end_cleanly() {
    if skip() {
        return;
    }
    let t = Gateway::new(1);
    let cfg = config(&t, "auto").replace(
        "[firewall]",
        "[timeouts]\nudp = 3\nudp_stream = 3\n\n[firewall]",
    );
    let Some(x) = start_offloading(&t, &cfg) else {
        return;
    };
    let client = udp_echo_pair(&t, 7100);
    let flows = |x: &Xgate| -> Vec<serde_json::Value> {
        let j: serde_json::Value =
            serde_json::from_str(&x.ctl(&["conntrack", "-p", "udp", "--json"])).unwrap();
        j["flows"].as_array().unwrap().clone()
    };
    let a = client(6100);
    // 5 s of traffic, twice the timeout's span at a datagram per 100 ms:
    // once offloaded, the workers no longer see it, the scan's fold keeps
    // the connection alive.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(5) {
        a.ping(n);
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = x.ctl(&["conntrack", "-p", "udp"]);
    assert!(text.contains("[OFFLOAD]"), "{text}");
    let f = flows(&x);
    assert_eq!(f.len(), 1, "{f:?}");
    let sent = u64::from(n);
    let counted = f[0]["original"]["packets"].as_u64().unwrap();
    assert!(counted + 2 >= sent, "{counted} of {sent} datagrams counted");
    // Silence: it expires by its timeout, entries first.
    wait_for("the connection to expire", 8, || flows(&x).is_empty());
    assert_eq!(stats(&x)["offload"]["entries"].as_u64(), Some(0));

    // `ctl conntrack -D`: the entries go, then the connection.
    let b = client(6101);
    for i in 0..20 {
        b.ping(i);
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for("the offload", 3, || {
        x.ctl(&["conntrack", "-p", "udp"]).contains("[OFFLOAD]")
    });
    let out = x.ctl(&["conntrack", "-D", "-p", "udp"]);
    assert!(out.contains("1 flow entries have been deleted"), "{out}");
    wait_for("the deletion", 3, || flows(&x).is_empty());
    assert_eq!(stats(&x)["offload"]["entries"].as_u64(), Some(0));
    // And the flow starts again through the workers.
    b.ping(99);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// A trace request takes the offload out of the way: its entries go (the
/// traced packets walk the pipeline and are recorded), nothing is
/// offloaded while it runs, and the flow is offloaded again after it.
#[test]
fn a_trace_request_walks_the_pipeline_then_the_offload_comes_back() {
    if skip() {
        return;
    }
    let t = Gateway::new(1);
    let Some(x) = start_offloading(&t, &config(&t, "auto")) else {
        return;
    };
    let s = udp_echo_pair(&t, 7200)(6200);
    let ping = |n: u32| s.ping(n);
    let offloaded_now = || x.ctl(&["conntrack", "-p", "udp"]).contains("[OFFLOAD]");
    for i in 0..10 {
        ping(i);
    }
    wait_for("the offload", 3, offloaded_now);
    x.ctl(&["trace", "add", "1000", "-p", "udp"]);
    wait_for("the offload to step aside", 3, || !offloaded_now());
    for i in 10..12 {
        ping(i);
    }
    let traced = x.ctl(&["trace", "show"]);
    assert!(
        traced.contains("10.1.0.2"),
        "the pipeline traced them:\n{traced}"
    );
    for i in 12..20 {
        ping(i);
    }
    assert!(!offloaded_now(), "nothing offloaded while a trace runs");
    x.ctl(&["trace", "clear"]);
    for i in 20..40 {
        ping(i);
        if i > 25 && offloaded_now() {
            break;
        }
    }
    wait_for("the offload again", 3, || {
        ping(99);
        offloaded_now()
    });
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}
