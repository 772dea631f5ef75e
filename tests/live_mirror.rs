//! End to end: the router namespace's kernel tools steer xgate through the
//! netlink mirror. `ip route add` on the host for a prefix via the WAN tap
//! makes xgate forward to it, `ip route del` stops it within a second; an
//! `ip addr` change on the WAN tap moves MASQUERADE to the new address and
//! flushes the connections of the old one; a route by a device that is no
//! tap is listed as unusable; a burst of routes from `ip -batch` is
//! mirrored whole (the count is `XGATE_MIRROR_ROUTES`, default 20000, and
//! the time it took is printed).
//!
//! ```text
//!  client ns                router ns (xgate)                 server ns
//!  c0 10.1.0.2/24 ---- r0 "lan" 10.1.0.1/24
//!                      r1 "wan" 10.2.0.1/24, tap xg-wan ---- s0 10.2.0.2/24
//!                                                            lo 10.99.0.1/32
//! ```
//!
//! Skips, with the reason printed, where the kernel lacks AF_XDP or
//! namespaces.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use xgate_testbed::xgate::{Xgate, scrape_metrics};
use xgate_testbed::{Testbed, in_ns};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

/// A UDP server that answers each datagram with the sender's address, until
/// the flag is set.
fn who_server(ns: &str, addr: &str, stop: Arc<AtomicBool>) {
    let addr: SocketAddr = addr.parse().unwrap();
    let sock = in_ns(ns, move || UdpSocket::bind(addr).unwrap())
        .join()
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(from.ip().to_string().as_bytes(), from);
            }
        }
    });
}

/// One request from `ns` to `to`: the address the server saw, if it
/// answered within 300 ms.
fn ask(ns: &str, to: &str) -> Option<IpAddr> {
    let to: SocketAddr = to.parse().unwrap();
    in_ns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.send_to(b"who", to).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.parse().ok()
    })
    .join()
    .unwrap()
}

/// Asks until `want(answer)` holds or `limit` passes; the time it took.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn mirror_json(x: &Xgate) -> serde_json::Value {
    serde_json::from_str(&x.ctl(&["mirror", "--json"])).unwrap()
}

fn ip(tb: &Testbed, ns: &str, args: &[&str]) {
    let out = tb.ip(ns, args);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kernel_routes_and_addresses_on_the_wan_tap_steer_xgate() {
    if xgate_testbed::skip() {
        return;
    }
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&client, &c0, "10.1.0.2/24", "10.1.0.1");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    ip(&tb, &server, &["addr", "add", "10.99.0.1/32", "dev", "lo"]);
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24", "2001:db8:2::1/64"]
tap = "xg-wan"
mirror = ["addresses", "routes"]

[mirror]
batch_ms = 20

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    assert!(
        x.log().contains("mirroring from the kernel: wan <- xg-wan"),
        "{}",
        x.log()
    );
    let stop = Arc::new(AtomicBool::new(false));
    who_server(&server, "10.99.0.1:7000", stop.clone());
    who_server(&server, "10.2.0.2:7001", stop.clone());

    // The first dump is done: the tap's address is the config's.
    let first = until(Duration::from_secs(5), || {
        mirror_json(&x)["resyncs"].as_u64() >= Some(1)
    });
    assert!(first.is_some(), "{}\n{}", x.ctl(&["mirror"]), x.log());
    // The WAN server is reached with the config's address.
    assert_eq!(
        ask(&client, "10.2.0.2:7001"),
        Some("10.2.0.1".parse().unwrap()),
        "{}",
        x.log()
    );

    // (a) No route to 10.99.0.0/24 yet.
    assert_eq!(ask(&client, "10.99.0.1:7000"), None);
    ip(
        &tb,
        &router,
        &[
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            "10.2.0.2",
            "dev",
            "xg-wan",
        ],
    );
    let t = until(Duration::from_secs(3), || {
        ask(&client, "10.99.0.1:7000").is_some()
    });
    assert!(
        t.is_some(),
        "not forwarded after ip route add\n{}\n{}",
        x.ctl(&["routes"]),
        x.ctl(&["mirror"])
    );
    let routes = x.ctl(&["routes"]);
    assert!(
        routes.contains("10.99.0.0/24 via 10.2.0.2 dev wan proto boot"),
        "{routes}"
    );
    // xgate's own route to its connected subnet, no proto: config's.
    assert!(routes.contains("10.2.0.0/24 dev wan\n"), "{routes}");
    // A mirrored route is the kernel's to delete.
    let del = Command::new(XGATE)
        .arg("ctl")
        .arg("--socket")
        .arg(x.socket())
        .args(["route", "del", "10.99.0.0/24", "via", "10.2.0.2"])
        .output()
        .unwrap();
    assert!(!del.status.success());
    assert!(
        String::from_utf8_lossy(&del.stderr).contains("mirrored from the kernel"),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );

    ip(&tb, &router, &["route", "del", "10.99.0.0/24"]);
    let gone = until(Duration::from_secs(3), || {
        ask(&client, "10.99.0.1:7000").is_none()
    });
    let gone = gone.expect("still forwarded after ip route del");
    assert!(gone < Duration::from_millis(1500), "took {gone:?}");
    assert!(!x.ctl(&["routes"]).contains("10.99.0.0/24"));

    // IPv6 multipath: the kernel announces the removal of one next hop
    // as a deletion naming it; the other two stay.
    ip(
        &tb,
        &router,
        &[
            "-6",
            "route",
            "add",
            "2001:db8:9::/48",
            "nexthop",
            "via",
            "2001:db8:2::2",
            "dev",
            "xg-wan",
            "nexthop",
            "via",
            "2001:db8:2::3",
            "dev",
            "xg-wan",
            "nexthop",
            "via",
            "2001:db8:2::4",
            "dev",
            "xg-wan",
        ],
    );
    let hops = |x: &Xgate| {
        x.ctl(&["routes"])
            .lines()
            .filter(|l| l.contains("nexthop via 2001:db8:2::"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let three = until(Duration::from_secs(3), || hops(&x).len() == 3);
    assert!(three.is_some(), "{}", x.ctl(&["routes"]));
    assert!(
        x.ctl(&["routes"])
            .contains("2001:db8:9::/48 metric 1024 proto boot")
    );
    ip(
        &tb,
        &router,
        &[
            "-6",
            "route",
            "del",
            "2001:db8:9::/48",
            "via",
            "2001:db8:2::4",
            "dev",
            "xg-wan",
        ],
    );
    let two = until(Duration::from_secs(3), || hops(&x).len() == 2);
    assert!(two.is_some(), "{}", x.ctl(&["routes"]));
    assert!(
        !hops(&x).iter().any(|l| l.contains("2001:db8:2::4 ")),
        "{:?}",
        hops(&x)
    );
    ip(&tb, &router, &["-6", "route", "del", "2001:db8:9::/48"]);
    assert!(until(Duration::from_secs(3), || hops(&x).is_empty()).is_some());

    // A route by a device that is not a tap: listed, not mirrored.
    ip(
        &tb,
        &router,
        &[
            "link", "add", "xgm-d0", "type", "veth", "peer", "name", "xgm-d1",
        ],
    );
    ip(&tb, &router, &["link", "set", "xgm-d0", "up"]);
    ip(&tb, &router, &["link", "set", "xgm-d1", "up"]);
    ip(
        &tb,
        &router,
        &["addr", "add", "10.77.0.1/24", "dev", "xgm-d0"],
    );
    ip(
        &tb,
        &router,
        &["route", "add", "10.78.0.0/16", "via", "10.77.0.2"],
    );
    let listed = until(Duration::from_secs(3), || {
        x.ctl(&["mirror"])
            .contains("unusable: 10.78.0.0/16 metric 0 table main: device")
    });
    assert!(listed.is_some(), "{}", x.ctl(&["mirror"]));
    assert!(!x.ctl(&["routes"]).contains("10.78.0.0/16"));
    let metrics = scrape_metrics(&router);
    assert!(
        metrics.contains("xgate_mirror_routes{state=\"unusable\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("xgate_mirror_resyncs_total 1\n"),
        "{metrics}"
    );

    // (b) The WAN address changes on the tap (what a DHCP client does).
    // A masqueraded connection to the old address exists first.
    assert!(ask(&client, "10.2.0.2:7001").is_some());
    let flushed_before = mirror_json(&x)["flushed"].as_u64().unwrap();
    ip(
        &tb,
        &router,
        &["addr", "del", "10.2.0.1/24", "dev", "xg-wan"],
    );
    ip(
        &tb,
        &router,
        &["addr", "add", "10.2.0.9/24", "dev", "xg-wan"],
    );
    let new: IpAddr = "10.2.0.9".parse().unwrap();
    let moved = until(Duration::from_secs(5), || {
        ask(&client, "10.2.0.2:7001") == Some(new)
    });
    assert!(
        moved.is_some(),
        "masquerade did not follow the address\n{}\n{}",
        x.ctl(&["mirror"]),
        x.ctl(&["conntrack"])
    );
    // The flush waits until no worker runs the tables of the old
    // address, so it may follow the move by a moment.
    let flushed = until(Duration::from_secs(5), || {
        mirror_json(&x)["flushed"].as_u64().unwrap() > flushed_before
    });
    assert!(
        flushed.is_some(),
        "the old address's connection was not flushed: {}",
        mirror_json(&x)
    );
    assert!(
        !x.ctl(&["conntrack"]).contains("dst=10.2.0.1 "),
        "{}",
        x.ctl(&["conntrack"])
    );
    let routes = x.ctl(&["routes"]);
    assert!(routes.contains("local 10.2.0.9 dev wan"), "{routes}");
    assert!(!routes.contains("10.2.0.1 "), "{routes}");

    // A burst of routes through ip -batch: mirrored whole, then removed.
    let n: usize = std::env::var("XGATE_MIRROR_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = std::env::temp_dir().join(format!("{router}-mirror"));
    std::fs::create_dir_all(&dir).unwrap();
    let (add, del) = (batch_file(&dir, "add", n), batch_file(&dir, "del", n));
    let installed = |x: &Xgate| mirror_json(x)["installed"].as_u64().unwrap_or(0) as usize;
    let base = installed(&x);
    let t = Instant::now();
    ip(&tb, &router, &["-batch", add.to_str().unwrap()]);
    let added_in = t.elapsed();
    let all = until(Duration::from_secs(60), || installed(&x) == base + n);
    let m = mirror_json(&x);
    assert!(all.is_some(), "{n} routes not all mirrored: {m}");
    let total = t.elapsed();
    eprintln!(
        "mirror: {n} routes: ip -batch {added_in:?}, in xgate's table after {total:?} \
         ({} publications, {} resyncs, {} overruns so far)",
        m["publications"], m["resyncs"], m["overruns"]
    );
    // Forwarding follows one of them.
    assert!(routes_have(
        &x,
        "10.128.5.0/24 via 10.2.0.2 dev wan proto boot"
    ));
    let t = Instant::now();
    ip(&tb, &router, &["-batch", del.to_str().unwrap()]);
    let none = until(Duration::from_secs(60), || installed(&x) == base);
    assert!(none.is_some(), "{}", mirror_json(&x));
    eprintln!("mirror: {n} routes deleted in {:?}", t.elapsed());
    let m = mirror_json(&x);
    assert!(
        m["last_error"].is_null(),
        "the mirror reported an error: {m}"
    );

    stop.store(true, Ordering::Relaxed);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// Routes `verb` (add/del) of `n` /24s in 10.128.0.0/9 (then /28s in
/// 10.0.0.0/9) via the WAN server, as an `ip -batch` file.
fn batch_file(dir: &std::path::Path, verb: &str, n: usize) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..n {
        let (a, len) = if i < 32_768 {
            (0x0a80_0000u32 + ((i as u32) << 8), 24)
        } else {
            (0x0a00_0000u32 + (((i - 32_768) as u32) << 4), 28)
        };
        let a = std::net::Ipv4Addr::from(a);
        text.push_str(&format!("route {verb} {a}/{len} via 10.2.0.2 dev xg-wan\n"));
    }
    let f = dir.join(format!("{verb}-{n}.batch"));
    std::fs::write(&f, text).unwrap();
    f
}

/// A socket buffer far too small for a burst of 20000 routes: the event
/// socket overruns (ENOBUFS), the mirror resyncs, and xgate's table ends
/// up with exactly the kernel's routes all the same.
#[test]
fn an_overrun_event_socket_resyncs_to_the_kernels_routes() {
    if xgate_testbed::skip() {
        return;
    }
    let mut tb = Testbed::new();
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]
tap = "xg-wan"
mirror = ["routes"]

[mirror]
batch_ms = 20
rx_buffer = 4096
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let first = until(Duration::from_secs(5), || {
        mirror_json(&x)["resyncs"].as_u64() >= Some(1)
    });
    assert!(first.is_some(), "{}", x.ctl(&["mirror"]));
    let n = 20_000;
    let dir = std::env::temp_dir().join(format!("{router}-overrun"));
    std::fs::create_dir_all(&dir).unwrap();
    let installed = |x: &Xgate| mirror_json(x)["installed"].as_u64().unwrap_or(0) as usize;
    ip(
        &tb,
        &router,
        &["-batch", batch_file(&dir, "add", n).to_str().unwrap()],
    );
    let all = until(Duration::from_secs(60), || installed(&x) == n);
    let m = mirror_json(&x);
    assert!(all.is_some(), "not all {n} routes mirrored: {m}");
    assert!(m["overruns"].as_u64().unwrap() >= 1, "no overrun: {m}");
    assert!(m["resyncs"].as_u64().unwrap() >= 2, "no resync: {m}");
    eprintln!("overrun: {m}");
    let table = x.ctl(&["routes"]);
    assert_eq!(
        table.lines().filter(|l| l.contains("proto boot")).count(),
        n,
        "xgate's table holds exactly the kernel's routes"
    );
    ip(
        &tb,
        &router,
        &["-batch", batch_file(&dir, "del", n).to_str().unwrap()],
    );
    let none = until(Duration::from_secs(60), || installed(&x) == 0);
    assert!(none.is_some(), "{}", mirror_json(&x));
    assert!(!x.ctl(&["routes"]).contains("proto boot"));
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

fn routes_have(x: &Xgate, line: &str) -> bool {
    x.ctl(&["routes"]).contains(line)
}

/// A child process killed when dropped (a BIRD this test started).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bird -f` in `ns` with `conf`; its control socket is `dir/<name>.ctl`.
fn bird(ns: &str, dir: &std::path::Path, name: &str, conf: &str) -> Killed {
    let c = dir.join(format!("{name}.conf"));
    std::fs::write(&c, conf).unwrap();
    Killed(
        Command::new("ip")
            .args(["netns", "exec", ns, "/usr/sbin/bird", "-f", "-c"])
            .arg(&c)
            .arg("-s")
            .arg(dir.join(format!("{name}.ctl")))
            .arg("-P")
            .arg(dir.join(format!("{name}.pid")))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawning bird"),
    )
}

fn birdc(ns: &str, dir: &std::path::Path, name: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "/usr/sbin/birdc", "-s"])
        .arg(dir.join(format!("{name}.ctl")))
        .args(args)
        .output()
        .expect("birdc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// BGP through the tap: BIRD on the router peers over xgate's WAN tap
/// with a BIRD in the server namespace that announces two prefixes; its
/// kernel protocol installs them (`proto bird`), xgate mirrors them and
/// forwards; when the peer withdraws one, xgate stops forwarding to it
/// within a second.
#[test]
fn bird_peering_over_the_wan_tap_steers_forwarding() {
    if xgate_testbed::skip() {
        return;
    }
    if !std::path::Path::new("/usr/sbin/bird").exists() {
        eprintln!("skipped: /usr/sbin/bird is not installed (bird2)");
        return;
    }
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&client, &c0, "10.1.0.2/24", "10.1.0.1");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    ip(&tb, &server, &["addr", "add", "10.99.1.1/32", "dev", "lo"]);
    ip(&tb, &server, &["addr", "add", "10.99.2.1/32", "dev", "lo"]);
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]
tap = "xg-wan"
mirror = ["routes"]

[mirror]
batch_ms = 20
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let stop = Arc::new(AtomicBool::new(false));
    who_server(&server, "10.99.1.1:7000", stop.clone());
    who_server(&server, "10.99.2.1:7000", stop.clone());
    assert_eq!(ask(&client, "10.99.1.1:7000"), None, "no route yet");

    let dir = std::env::temp_dir().join(format!("{router}-bird"));
    std::fs::create_dir_all(&dir).unwrap();
    let timers = "connect delay time 1; connect retry time 1; error wait time 1, 2;";
    let _edge = bird(
        &router,
        &dir,
        "edge",
        &format!(
            "router id 10.2.0.1;\nprotocol device {{ scan time 1; }}\n\
             protocol kernel {{ ipv4 {{ import none; export all; }}; }}\n\
             protocol bgp upstream {{ local 10.2.0.1 as 65001; neighbor 10.2.0.2 as 65002; \
             {timers} ipv4 {{ import all; export none; }}; }}\n"
        ),
    );
    let _peer = bird(
        &server,
        &dir,
        "peer",
        &format!(
            "router id 10.2.0.2;\nprotocol device {{ scan time 1; }}\n\
             protocol static one {{ ipv4; route 10.99.1.0/24 blackhole; }}\n\
             protocol static two {{ ipv4; route 10.99.2.0/24 blackhole; }}\n\
             protocol bgp downstream {{ local 10.2.0.2 as 65002; neighbor 10.2.0.1 as 65001; \
             {timers} ipv4 {{ import none; export all; }}; }}\n"
        ),
    );
    let up = until(Duration::from_secs(30), || {
        ask(&client, "10.99.1.1:7000").is_some() && ask(&client, "10.99.2.1:7000").is_some()
    });
    assert!(
        up.is_some(),
        "BGP routes not forwarded\nedge: {}\nkernel: {}\nxgate: {}\n{}",
        birdc(&router, &dir, "edge", &["show", "protocols"]),
        String::from_utf8_lossy(&tb.ip(&router, &["route"]).stdout),
        x.ctl(&["routes"]),
        x.ctl(&["mirror"])
    );
    let routes = x.ctl(&["routes"]);
    assert!(
        routes.contains("10.99.2.0/24 via 10.2.0.2 dev wan metric 32 proto bird"),
        "{routes}"
    );

    // The peer withdraws 10.99.2.0/24.
    let t = Instant::now();
    birdc(&server, &dir, "peer", &["disable", "two"]);
    let gone = until(Duration::from_secs(5), || {
        ask(&client, "10.99.2.1:7000").is_none()
    })
    .expect("still forwarded after the withdrawal");
    eprintln!("bird: withdrawn prefix unreachable through xgate after {gone:?}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(ask(&client, "10.99.1.1:7000").is_some(), "the other stays");
    assert!(!x.ctl(&["routes"]).contains("10.99.2.0/24"));
    // And announces it again.
    birdc(&server, &dir, "peer", &["enable", "two"]);
    let back = until(Duration::from_secs(10), || {
        ask(&client, "10.99.2.1:7000").is_some()
    });
    assert!(back.is_some(), "{}", x.ctl(&["routes"]));

    stop.store(true, Ordering::Relaxed);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// A DHCP client on xgate's WAN tap (busybox udhcpc; the server answers
/// by unicast to the offered address) leases from dnsmasq on the WAN side: the address and default
/// route it sets on the tap become xgate's, LAN hosts reach the WAN server
/// masqueraded to the leased address; the server then hands out another
/// address and new connections use it.
#[test]
fn a_dhcp_client_on_the_wan_tap_gives_xgate_its_address_and_default_route() {
    if xgate_testbed::skip() {
        return;
    }
    if let Some(p) = ["/usr/sbin/dnsmasq", "/usr/bin/busybox"]
        .iter()
        .find(|p| !std::path::Path::new(p).exists())
    {
        eprintln!("skipped: {p} is not installed");
        return;
    }
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&client, &c0, "10.1.0.2/24", "10.1.0.1");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
tap = "xg-wan"
mirror = ["addresses", "routes"]

[mirror]
batch_ms = 20

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let stop = Arc::new(AtomicBool::new(false));
    who_server(&server, "10.2.0.2:7001", stop.clone());

    let dir = std::env::temp_dir().join(format!("{router}-dhcpc"));
    std::fs::create_dir_all(&dir).unwrap();
    let dnsmasq = |host: Option<&str>| {
        let leases = dir.join("leases");
        let _ = std::fs::remove_file(&leases);
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &server,
            "/usr/sbin/dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--conf-file=/dev/null",
            "--port=0",
            &format!("--interface={s0}"),
            "--bind-interfaces",
            "--dhcp-range=10.2.0.50,10.2.0.60,255.255.255.0,1h",
            "--dhcp-option=option:router,10.2.0.2",
            "--dhcp-authoritative",
            "--user=root",
        ])
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()));
        if let Some(h) = host {
            c.arg(format!("--dhcp-host={h}"));
        }
        Killed(
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawning dnsmasq"),
        )
    };
    // What a lease does to the tap: the address and the default route.
    let script = dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n  deconfig) ip addr flush dev \"$interface\";;\n  \
         bound|renew)\n    ip addr add \"$ip/$mask\" dev \"$interface\"\n    \
         ip route replace default via \"$router\" dev \"$interface\"\n    \
         echo \"$ip\" > \"$0.ip\";;\nesac\n",
    )
    .unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    let lease = || {
        let out = Command::new("ip")
            .args(["netns", "exec", &router, "/usr/bin/busybox", "udhcpc"])
            .args(["-i", "xg-wan", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s"])
            .arg(&script)
            .output()
            .expect("running udhcpc");
        let ip = std::fs::read_to_string(dir.join("udhcpc.sh.ip")).unwrap_or_default();
        assert!(
            out.status.success(),
            "udhcpc: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            x.ctl(&["stats"]),
            x.log()
        );
        ip.trim().parse::<IpAddr>().unwrap()
    };

    let d = dnsmasq(None);
    let first = lease();
    let t = until(Duration::from_secs(5), || {
        ask(&client, "10.2.0.2:7001") == Some(first)
    });
    assert!(
        t.is_some(),
        "the LAN is not masqueraded to the leased {first}\n{}\n{}",
        x.ctl(&["routes"]),
        x.ctl(&["mirror"])
    );
    let routes = x.ctl(&["routes"]);
    assert!(
        routes.contains("default via 10.2.0.2 dev wan proto boot"),
        "{routes}"
    );

    // The server changes the lease: another address for the tap's MAC.
    drop(d);
    let mac = tb.mac(&router, "xg-wan");
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let _d = dnsmasq(Some(&format!("{mac},10.2.0.77")));
    let second = lease();
    assert_eq!(second, "10.2.0.77".parse::<IpAddr>().unwrap());
    let t = until(Duration::from_secs(5), || {
        ask(&client, "10.2.0.2:7001") == Some(second)
    });
    assert!(
        t.is_some(),
        "new connections do not use the new lease\n{}",
        x.ctl(&["mirror"])
    );
    stop.store(true, Ordering::Relaxed);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}

/// The full RIB of `shared/data` (606k IPv4 + 28k IPv6 prefixes, or
/// `$XGATE_RIB`) installed in the router namespace's kernel with `ip
/// -batch` via the WAN server, mirrored by xgate while a LAN host's UDP
/// requests cross it every 5 ms (their worst round trip bounds how long a
/// worker stalled), then deleted. A measurement for docs/benchmarks.md:
/// `cargo test --release --test live_mirror full_rib -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a benchmark: about a minute and 1 GB of kernel routes"]
fn full_rib_mirrors() {
    if xgate_testbed::skip() {
        return;
    }
    let rib = std::env::var("XGATE_RIB").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/routes/ipasn6_20151101.dat.gz"
        )
        .to_string()
    });
    let Ok(file) = std::fs::File::open(&rib) else {
        eprintln!("skipped: no RIB at {rib}");
        return;
    };
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&client, &c0, "10.1.0.2/24", "10.1.0.1");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    ip(
        &tb,
        &server,
        &["-6", "addr", "add", "2001:db8:2::2/64", "dev", &s0, "nodad"],
    );
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24", "2001:db8:2::1/64"]
tap = "xg-wan"
mirror = ["routes"]
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let stop = Arc::new(AtomicBool::new(false));
    who_server(&server, "10.2.0.2:7001", stop.clone());
    assert!(ask(&client, "10.2.0.2:7001").is_some());

    use std::io::BufRead;
    let (mut add, mut del) = (String::new(), String::new());
    let mut n = 0usize;
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let line = line.unwrap();
        let Some((net, _)) = line.split_once('\t') else {
            continue;
        };
        let via = if net.contains(':') {
            "2001:db8:2::2"
        } else {
            "10.2.0.2"
        };
        add.push_str(&format!("route add {net} via {via} dev xg-wan\n"));
        del.push_str(&format!("route del {net} via {via} dev xg-wan\n"));
        n += 1;
    }
    let dir = std::env::temp_dir().join(format!("{router}-rib"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("add"), add).unwrap();
    std::fs::write(dir.join("del"), del).unwrap();

    // A LAN host's requests through xgate meanwhile: the worst round trip.
    let probe_stop = Arc::new(AtomicBool::new(false));
    let flag = probe_stop.clone();
    let probe = in_ns(&client, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let (mut worst, mut sent, mut lost) = (Duration::ZERO, 0u32, 0u32);
        let mut buf = [0u8; 64];
        while !flag.load(Ordering::Relaxed) {
            let t = Instant::now();
            s.send_to(b"who", "10.2.0.2:7001").unwrap();
            sent += 1;
            match s.recv_from(&mut buf) {
                Ok(_) => worst = worst.max(t.elapsed()),
                Err(_) => lost += 1,
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (worst, sent, lost)
    });

    let installed = |x: &Xgate| mirror_json(x)["installed"].as_u64().unwrap_or(0) as usize;
    let t = Instant::now();
    let out = tb.ip(
        &router,
        &["-force", "-batch", dir.join("add").to_str().unwrap()],
    );
    let kernel_time = t.elapsed();
    let in_kernel = |tb: &Testbed, fam: &str| {
        String::from_utf8_lossy(
            &tb.ip(&router, &[fam, "route", "show", "proto", "boot"])
                .stdout,
        )
        .lines()
        .count()
    };
    let k = in_kernel(&tb, "-4") + in_kernel(&tb, "-6");
    eprintln!(
        "rib: {n} routes in the file, {k} taken by the kernel in {kernel_time:?} ({} refused)",
        String::from_utf8_lossy(&out.stderr).lines().count()
    );
    let all = until(Duration::from_secs(300), || installed(&x) == k);
    let m = mirror_json(&x);
    assert!(all.is_some(), "{m}");
    let mirrored = t.elapsed();
    // One more route on the full table: what a single change costs.
    let t1 = Instant::now();
    ip(
        &tb,
        &router,
        &["route", "add", "10.200.0.0/16", "via", "10.2.0.2"],
    );
    assert!(until(Duration::from_secs(10), || installed(&x) == k + 1).is_some());
    let one = t1.elapsed();
    let one_publish = mirror_json(&x)["last_publish_us"].clone();
    ip(&tb, &router, &["route", "del", "10.200.0.0/16"]);
    assert!(until(Duration::from_secs(10), || installed(&x) == k).is_some());
    let t = Instant::now();
    ip(
        &tb,
        &router,
        &["-force", "-batch", dir.join("del").to_str().unwrap()],
    );
    let del_kernel = t.elapsed();
    let none = until(Duration::from_secs(300), || installed(&x) == 0);
    assert!(none.is_some(), "{}", mirror_json(&x));
    let deleted = t.elapsed();
    probe_stop.store(true, Ordering::Relaxed);
    let (worst, sent, lost) = probe.join().unwrap();
    eprintln!(
        "rib: mirrored {k} routes {mirrored:?} after ip -batch began (kernel {kernel_time:?}); \
         deleted in {deleted:?} (kernel {del_kernel:?}); {} publications, {} overruns, {} \
         resyncs; one more route on the full table in xgate after {one:?} (publication \
         {one_publish} us); probe: {sent} requests, {lost} lost, worst round trip {worst:?}",
        m["publications"], m["overruns"], m["resyncs"]
    );
    assert_eq!(lost, 0, "requests lost while mirroring");
    stop.store(true, Ordering::Relaxed);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
}
