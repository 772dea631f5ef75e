//! End to end: a DHCP server on the router (dnsmasq on the LAN interface's
//! tap) serves a LAN client through xgate, which then reaches the WAN
//! through masquerade with the address it was given. The client is
//! busybox's udhcpc (no broadcast flag: the server answers by unicast to
//! the client's MAC, as it does for most clients).
//!
//! ```text
//!  client ns             router ns (xgate; dnsmasq on tap xg-lan)   server ns
//!  c0 (DHCP) ------ r0 "lan" 10.1.0.1/24
//!                         r1 "wan" 10.2.0.1/24 ------------- s0 10.2.0.2/24
//! ```
//!
//! A second test puts a DHCP relay (dnsmasq --dhcp-relay) on the LAN tap
//! and the DHCP server beyond the WAN.
//!
//! Skips, with the reason printed, where the kernel lacks AF_XDP or
//! namespaces, or the machine lacks dnsmasq or busybox (scripts/setup-debian.sh
//! installs both).

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xgate_testbed::traffic;
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Testbed, in_ns};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

fn skip() -> bool {
    if xgate_testbed::skip() {
        return true;
    }
    match ["/usr/sbin/dnsmasq", "/usr/bin/busybox"]
        .iter()
        .find(|p| !std::path::Path::new(p).exists())
    {
        Some(p) => {
            eprintln!("skipped: {p} is not installed");
            true
        }
        None => false,
    }
}

/// A child process killed when dropped (dnsmasq, which this test started).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_dhcp_server_on_the_lan_tap_serves_lan_clients() {
    if skip() {
        return;
    }
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    tb.exec(&client, "ethtool", &["-K", &c0, "tx", "off", "gro", "on"]);
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

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -i lan -p udp --dport 67 -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());

    let dir = std::env::temp_dir().join(format!("{router}-dhcp"));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("dnsmasq.leases"));
    let dnsmasq = dnsmasq(
        &router,
        &dir,
        "dnsmasq",
        &[
            "--interface=xg-lan",
            "--bind-interfaces",
            "--dhcp-range=10.1.0.100,10.1.0.150,255.255.255.0,1h",
            "--dhcp-option=option:router,10.1.0.1",
            "--dhcp-authoritative",
        ],
    );

    // The client's lease script: set what the server gave.
    let (got, leased) = udhcpc(
        &client,
        &c0,
        &dir,
        "ip addr add \"$ip/$mask\" dev \"$interface\"\n  \
         ip route add default via \"$router\" dev \"$interface\"",
    );
    assert!(
        got.status.success() && leased.trim().starts_with("10.1.0."),
        "no lease: udhcpc {}\n{}\ndnsmasq:\n{}\nxgate:\n{}",
        got.status,
        String::from_utf8_lossy(&got.stderr),
        std::fs::read_to_string(dir.join("dnsmasq.log")).unwrap_or_default(),
        x.log()
    );
    let leased = leased.trim().to_string();

    // With the address it was given, the client reaches the WAN server
    // through masquerade.
    let sock = in_ns(&server, || UdpSocket::bind("10.2.0.2:7000").unwrap())
        .join()
        .unwrap();
    let echo = std::thread::spawn(move || traffic::udp_echo(sock, 3));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ok = false;
    while !ok && Instant::now() < deadline {
        ok = in_ns(&client, || {
            traffic::udp_request("10.2.0.2:7000".parse().unwrap(), b"after the lease")
        })
        .join()
        .unwrap();
    }
    assert!(
        ok,
        "UDP from the leased address {leased} to the WAN\n{}",
        x.log()
    );
    drop(echo);
    drop(dnsmasq);
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
    let to_kernel: u64 = exit
        .log
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("to_kernel="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        to_kernel >= 2,
        "DISCOVER and REQUEST went to the tap: {}",
        exit.log
    );
}

/// busybox's udhcpc on `dev` in `ns`, its lease script in `dir` running
/// `on_bound` (shell) and noting the leased address: udhcpc's output and
/// that address ("" without a lease).
fn udhcpc(
    ns: &str,
    dev: &str,
    dir: &std::path::Path,
    on_bound: &str,
) -> (std::process::Output, String) {
    let script = dir.join("udhcpc.sh");
    let _ = std::fs::remove_file(dir.join("udhcpc.sh.ip"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in bound|renew)\n  {on_bound}\n  echo \"$ip\" > \"$0.ip\";;\nesac\n"
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&script, perm).unwrap();
    let got = Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/busybox", "udhcpc", "-i", dev])
        .args(["-f", "-q", "-n", "-t", "5", "-T", "2", "-s"])
        .arg(&script)
        .output()
        .expect("running udhcpc");
    let leased = std::fs::read_to_string(dir.join("udhcpc.sh.ip")).unwrap_or_default();
    (got, leased)
}

/// dnsmasq started in `ns` with `args`, logging to `dir`/`name`.log.
fn dnsmasq(ns: &str, dir: &std::path::Path, name: &str, args: &[&str]) -> Killed {
    Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "/usr/sbin/dnsmasq",
                "--keep-in-foreground",
            ])
            .args([
                "--conf-file=/dev/null",
                "--port=0",
                "--log-dhcp",
                "--user=root",
            ])
            .args(args)
            .arg(format!(
                "--dhcp-leasefile={}",
                dir.join(format!("{name}.leases")).display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.join(format!("{name}.pid")).display()
            ))
            .arg(format!(
                "--log-facility={}",
                dir.join(format!("{name}.log")).display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning dnsmasq"),
    )
}

/// A DHCP relay on the router (dnsmasq's relay on the LAN tap) forwards a
/// LAN client's requests to a DHCP server beyond the WAN, which answers the
/// relay's address (giaddr 10.1.0.1, arriving by the WAN: its tap); the
/// client gets a lease from the server's range for the LAN.
#[test]
fn a_dhcp_relay_on_the_lan_tap_reaches_a_server_beyond_the_wan() {
    if skip() {
        return;
    }
    let mut tb = Testbed::new();
    let client = tb.netns("c");
    let router = tb.netns("r");
    let server = tb.netns("s");
    let (c0, r0) = tb.veth(&client, "c0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &server, "s0", 1);
    tb.sysctl(&router, "net.ipv4.ip_forward=0");
    tb.endpoint(&server, &s0, "10.2.0.2/24", "10.2.0.1");
    tb.exec(&client, "ethtool", &["-K", &c0, "tx", "off", "gro", "on"]);
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
tap = "xg-wan"

[firewall]
rules = """
*filter
:INPUT DROP [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -i lan -p udp --dport 67 -j ACCEPT
-A INPUT -i wan -s 10.2.0.2 -p udp --sport 67 --dport 67 -j ACCEPT
COMMIT
"""
"#
    );
    let x = Xgate::start(XGATE, &router, &cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let dir = std::env::temp_dir().join(format!("{router}-relay"));
    std::fs::create_dir_all(&dir).unwrap();
    let _server = dnsmasq(
        &server,
        &dir,
        "server",
        &[
            &format!("--interface={s0}"),
            "--dhcp-range=10.1.0.100,10.1.0.150,255.255.255.0,1h",
            "--dhcp-option=option:router,10.1.0.1",
            "--dhcp-authoritative",
        ],
    );
    let _relay = dnsmasq(
        &router,
        &dir,
        "relay",
        &[
            "--interface=xg-lan",
            "--interface=xg-wan",
            "--dhcp-relay=10.1.0.1,10.2.0.2",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let (got, leased) = udhcpc(&client, &c0, &dir, ":");
    let log = |n: &str| std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
    assert!(
        got.status.success() && leased.trim().starts_with("10.1.0.1"),
        "no lease through the relay: udhcpc {}\n{}\nrelay:\n{}\nserver:\n{}\nxgate:\n{}",
        got.status,
        String::from_utf8_lossy(&got.stderr),
        log("relay"),
        log("server"),
        x.log()
    );
    assert!(log("server").contains("10.1.0.1"), "{}", log("server"));
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
    let _ = std::fs::remove_dir_all(&dir);
}
