//! End to end: `xgate run` killed with SIGKILL leaves nothing behind on
//! its devices (its XDP program is attached through a BPF link and its
//! taps are not persistent: both go with the process), and a new
//! instance starts on the same devices at once and forwards.

use std::net::UdpSocket;
use std::time::{Duration, Instant};
use xgate_testbed::traffic;
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Gateway, in_ns, skip};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

/// One UDP request from the client to the server's echo, retried for up
/// to 5 s (neighbours resolve on the first tries).
fn udp_through(t: &Gateway, port: u16) -> bool {
    let sock = in_ns(&t.server, move || {
        UdpSocket::bind(("10.2.0.2", port)).unwrap()
    })
    .join()
    .unwrap();
    let echo = std::thread::spawn(move || traffic::udp_echo(sock, 1));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ok = false;
    while !ok && Instant::now() < deadline {
        ok = in_ns(&t.client, move || {
            traffic::udp_request(std::net::SocketAddr::from(([10, 2, 0, 2], port)), b"across")
        })
        .join()
        .unwrap();
    }
    drop(echo);
    ok
}

#[test]
fn sigkill_leaves_no_program_or_tap_and_a_restart_forwards() {
    if skip() {
        return;
    }
    let t = Gateway::new(1);
    let cfg = format!(
        r#"
[dataplane]
workers = 1

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]
tap = "xg-lan"

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]
"#,
        r0 = t.r0,
        r1 = t.r1
    );
    let x = Xgate::start(XGATE, &t.router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    assert!(t.tb.has_xdp(&t.router), "xgate attached its program");
    assert!(
        udp_through(&t, 7001),
        "forwarding before the crash\n{}",
        x.log()
    );

    x.signal(libc::SIGKILL);
    let exit = x.stop();
    assert!(!exit.success, "killed, not a clean exit");
    // The BPF link and the tap's descriptor closed with the process.
    let deadline = Instant::now() + Duration::from_secs(2);
    while t.tb.has_xdp(&t.router) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!t.tb.has_xdp(&t.router), "XDP program left after SIGKILL");
    let links = String::from_utf8_lossy(&t.tb.ip(&t.router, &["-br", "link"]).stdout).to_string();
    assert!(!links.contains("xg-lan"), "tap left after SIGKILL: {links}");

    // A new instance takes the same devices and forwards.
    let x = Xgate::start(XGATE, &t.router, &cfg);
    assert!(x.log().contains("xgate: running"), "restart: {}", x.log());
    assert!(
        udp_through(&t, 7002),
        "forwarding after the restart\n{}",
        x.log()
    );
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
    assert!(!t.tb.has_xdp(&t.router));
}
