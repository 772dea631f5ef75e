//! End to end: bridge domains (`[[bridge]]`) in the real `xgate run`.
//! Hosts sit in network namespaces, each on a veth whose other end is a
//! port xgate binds in its own namespace; that namespace has no kernel
//! bridge and its forwarding off, so only xgate moves the frames.
//!
//! Every case is built by [`Site::new`]: xgate's namespace plus one
//! namespace per host (device `<tag>0` there, port `<tag>1` in xgate's),
//! hosts named after the xgate interface of their port. IPv6 is off in
//! all of them, so nothing but the test's own traffic crosses a bridge
//! (the kernels' router solicitations would start the loop case's storm
//! by themselves).
//!
//! - seed 004 (`../shared/seeds/004_*`): red and blue on br0 with
//!   br_netfilter; `:FORWARD DROP` alone separates them, the seed's NAVY
//!   chain (reloaded) joins them, and red reaches the outside through
//!   masquerade; `xgate ctl fdb` lists both MACs on their ports.
//! - seed 000: eth1 and eth2 in br0 without br_netfilter: the LAN hosts
//!   talk whatever FORWARD says, reach the outside through masquerade,
//!   and the outside cannot open a connection in.
//! - `-m physdev`: a rule naming the ports drops one direction of one
//!   port; the same rule through a Linux bridge in a namespace gives the
//!   same outcomes (that half is skipped, saying why, where the kernel has
//!   no bridge, br_netfilter or physdev match).
//! - a VLAN-aware bridge: a trunk (tagged 10 and 20, no pvid) and access
//!   ports of VLANs 10 and 20, a routed interface per VLAN. The kernel has
//!   no 802.1Q devices, so tests/live_bridge/vlan_probe.py (scapy) sends
//!   the trunk's frames and watches every host's device.
//! - a loop: two ports of br0 wired to each other; one broadcast is
//!   stopped by storm control (`flood_rate`) while xgate keeps forwarding
//!   and answering `xgate ctl`.
//!
//! What the tests read from xgate: `xgate ctl fdb`, one line per MAC as
//! `bridge fdb show` prints them, `<mac> dev <port interface> [vlan <vid>]
//! master <bridge> [static]` (the vid only on a VLAN-aware bridge);
//! `xgate ctl stats --json`, `drops.<reason>` for `filter_forward`,
//! `bridge_vlan_filtered` and `bridge_flood_limited`, and the ports'
//! `tx_packets`.
//!
//! Skips, with the reason printed, only where the user is not root or the
//! kernel lacks AF_XDP or namespaces. Needs iproute2, ethtool and
//! python3-scapy (scripts/setup-debian.sh).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xgate_testbed::traffic::{self, RawSocket};
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Testbed, in_ns, skip};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");
const PYTHON: &str = "/usr/bin/python3";

// ---------------------------------------------------------------------
// The site: xgate's namespace and its hosts
// ---------------------------------------------------------------------

/// A host to build: the xgate interface of its port and how it is
/// addressed.
struct Spec {
    /// The `[[interface]]` on the host's port (the host goes by it too).
    name: &'static str,
    /// Namespace and device tag, 2 characters (devices add `0` and `1`).
    tag: &'static str,
    /// The host's address and gateway; None: no IP (raw frames only).
    host: Option<(&'static str, &'static str)>,
    /// xgate's address on the port; None: a bridge port (no address).
    router: Option<&'static str>,
}

/// A host on a bridge port.
const fn port(name: &'static str, tag: &'static str, cidr: &'static str, gw: &'static str) -> Spec {
    Spec {
        name,
        tag,
        host: Some((cidr, gw)),
        router: None,
    }
}

/// A host on a routed interface of xgate with address `router`.
const fn routed(
    name: &'static str,
    tag: &'static str,
    cidr: &'static str,
    gw: &'static str,
    router: &'static str,
) -> Spec {
    Spec {
        name,
        tag,
        host: Some((cidr, gw)),
        router: Some(router),
    }
}

/// A bridge port whose host has no address: its frames are crafted.
const fn bare(name: &'static str, tag: &'static str) -> Spec {
    Spec {
        name,
        tag,
        host: None,
        router: None,
    }
}

struct Host {
    name: &'static str,
    router: Option<&'static str>,
    ns: String,
    /// The host's device (in `ns`).
    dev: String,
    /// Its peer, the port xgate binds.
    port: String,
    /// The host device's MAC, as `ip` and `bridge fdb` print it.
    mac: String,
}

struct Site {
    tb: Testbed,
    /// xgate's namespace.
    router: String,
    hosts: Vec<Host>,
}

impl Site {
    fn new(specs: &[Spec]) -> Site {
        let mut tb = Testbed::new();
        let router = tb.netns("r");
        ipv6_off(&tb, &router);
        tb.sysctl(&router, "net.ipv4.ip_forward=0");
        let mut hosts = Vec::new();
        for s in specs {
            let ns = tb.netns(s.tag);
            ipv6_off(&tb, &ns);
            let (dev, port) = tb.veth(
                &ns,
                &format!("{}0", s.tag),
                &router,
                &format!("{}1", s.tag),
                1,
            );
            match s.host {
                Some((cidr, gw)) => tb.endpoint(&ns, &dev, cidr, gw),
                None => {
                    tb.exec(&ns, "ethtool", &["-K", &dev, "tx", "off", "gro", "on"]);
                }
            }
            hosts.push(Host {
                name: s.name,
                router: s.router,
                mac: mac_str(tb.mac(&ns, &dev)),
                ns,
                dev,
                port,
            });
        }
        Site { tb, router, hosts }
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// xgate's config: one worker, `sections` (the bridges and their
    /// routed interfaces), an `[[interface]]` per host's port, `rules` as
    /// the iptables-save ruleset (none when empty).
    fn config(&self, sections: &str, rules: &str) -> String {
        let mut c = format!("[dataplane]\nworkers = 1\nflows = 65536\n{sections}\n");
        for h in &self.hosts {
            c.push_str(&format!(
                "\n[[interface]]\nname = \"{}\"\ndevice = \"{}\"\n",
                h.name, h.port
            ));
            if let Some(a) = h.router {
                c.push_str(&format!("address = [\"{a}\"]\n"));
            }
        }
        if !rules.is_empty() {
            c.push_str(&format!("\n[firewall]\nrules = \"\"\"\n{rules}\"\"\"\n"));
        }
        c
    }

    fn start(&self, sections: &str, rules: &str) -> Xgate {
        let x = Xgate::start(XGATE, &self.router, &self.config(sections, rules));
        assert!(x.log().contains("xgate: running"), "{}", x.log());
        x
    }

    /// Stops xgate and checks the clean exit: status 0, no XDP program
    /// left on a port, every UMEM frame back (a flood copies frames).
    fn stop(&self, x: Xgate) {
        let exit = x.stop();
        assert!(exit.success, "xgate did not exit cleanly:\n{}", exit.log);
        assert!(
            !self.tb.has_xdp(&self.router),
            "XDP program left on a device after stop"
        );
        let leaked = exit.per_worker("frames_leaked");
        assert!(
            !leaked.is_empty() && leaked.iter().all(|&l| l == 0),
            "frames leaked:\n{}",
            exit.stats
        );
    }

    /// Echo requests from host `from` to `to` answered, of `count`.
    fn ping(&self, from: &str, to: &str, count: u16) -> u16 {
        let dst: Ipv4Addr = to.parse().unwrap();
        in_ns(&self.host(from).ns, move || {
            traffic::ping(dst, count, Duration::from_secs(1))
        })
        .join()
        .unwrap()
    }

    /// A TCP listener of host `on` (connections complete in its backlog).
    fn listen(&self, on: &str, addr: &str) -> TcpListener {
        let addr: SocketAddr = addr.parse().unwrap();
        in_ns(&self.host(on).ns, move || TcpListener::bind(addr).unwrap())
            .join()
            .unwrap()
    }

    /// Whether host `from` completes a TCP handshake with `to` (1.5 s).
    fn connects(&self, from: &str, to: &str) -> bool {
        let to: SocketAddr = to.parse().unwrap();
        in_ns(&self.host(from).ns, move || {
            TcpStream::connect_timeout(&to, Duration::from_millis(1500)).is_ok()
        })
        .join()
        .unwrap()
    }

    /// 64 KiB over TCP from host `from` to a listener of host `server` on
    /// `addr`, checked on arrival: the source address the server saw.
    fn source_seen(&self, from: &str, server: &str, addr: &str) -> IpAddr {
        let sink = {
            let listener = self.listen(server, addr);
            std::thread::spawn(move || traffic::tcp_sink(listener))
        };
        let data = traffic::pattern(64 << 10);
        let want = (data.len(), traffic::fnv(&data));
        let to: SocketAddr = addr.parse().unwrap();
        in_ns(&self.host(from).ns, move || traffic::tcp_send(to, &data))
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("TCP {from} -> {addr}: {e}"));
        let (len, sum, peer) = sink.join().unwrap();
        assert_eq!((len, sum), want, "TCP {from} -> {addr}: bytes or checksum");
        peer.ip()
    }
}

fn ipv6_off(tb: &Testbed, ns: &str) {
    tb.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1");
    tb.sysctl(ns, "net.ipv6.conf.default.disable_ipv6=1");
}

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// Asks until `f` holds or `limit` passes.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

// ---------------------------------------------------------------------
// What xgate says: `xgate ctl`
// ---------------------------------------------------------------------

fn stats(x: &Xgate) -> Value {
    serde_json::from_str(&x.ctl(&["stats", "--json"])).expect("ctl stats --json")
}

/// Packets dropped for `reason` so far (`ctl stats` lists those > 0).
fn drops(x: &Xgate, reason: &str) -> u64 {
    stats(x)["drops"][reason].as_u64().unwrap_or(0)
}

/// Frames xgate transmitted on `device`.
fn tx_packets(x: &Xgate, device: &str) -> u64 {
    let s = stats(x);
    s["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["device"] == device))
        .and_then(|p| p["tx_packets"].as_u64())
        .unwrap_or_else(|| panic!("no port {device} in ctl stats: {s}"))
}

/// One line of `xgate ctl fdb`.
#[derive(Debug)]
struct FdbEntry {
    mac: String,
    dev: String,
    vlan: Option<u16>,
    master: String,
}

/// `xgate ctl fdb`, `bridge fdb show` style:
/// `<mac> dev <port> [vlan <vid>] master <bridge> [static]`.
fn fdb(x: &Xgate) -> (Vec<FdbEntry>, String) {
    let text = x.ctl(&["fdb"]);
    let entries = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let mac = w.next()?;
            if mac.len() != 17 || mac.matches(':').count() != 5 {
                return None;
            }
            let mut e = FdbEntry {
                mac: mac.to_ascii_lowercase(),
                dev: String::new(),
                vlan: None,
                master: String::new(),
            };
            while let Some(k) = w.next() {
                match k {
                    "dev" => e.dev = w.next()?.to_string(),
                    "vlan" => e.vlan = w.next()?.parse().ok(),
                    "master" => e.master = w.next()?.to_string(),
                    _ => {}
                }
            }
            Some(e)
        })
        .collect();
    (entries, text)
}

/// Asserts `ctl fdb` has `mac` on port `dev` of br0 in `vlan`, and on no
/// other port.
fn assert_learned(x: &Xgate, mac: &str, dev: &str, vlan: Option<u16>) {
    let (entries, text) = fdb(x);
    assert!(
        entries
            .iter()
            .any(|e| e.mac == mac && e.dev == dev && e.vlan == vlan && e.master == "br0"),
        "{mac} not learned on {dev} vlan {vlan:?}:\n{text}"
    );
    assert!(
        !entries.iter().any(|e| e.mac == mac && e.dev != dev),
        "{mac} on another port than {dev}:\n{text}"
    );
}

// ---------------------------------------------------------------------
// Seed 004: red and blue on br0, FORWARD DROP, the NAVY chain
// ---------------------------------------------------------------------

const RED: Spec = port("red", "rd", "10.16.0.2/24", "10.16.0.1");
const BLUE: Spec = port("blue", "bl", "10.16.0.3/24", "10.16.0.1");

/// Seed 004's bridge: red and blue its ports, its address the hosts'
/// gateway, bridged IPv4 through iptables (bridge-nf-call-iptables=1).
const SEED004_BRIDGE: &str = r#"
[[bridge]]
name = "br0"
ports = ["red", "blue"]
nf_call_iptables = true

[[interface]]
name = "br0"
device = "br0"
address = ["10.16.0.1/24"]
"#;

/// Seed 004's ruleset: masquerade out of the WAN, FORWARD policy DROP,
/// then `forward` (chains and rules).
fn seed004_rules(forward: &str) -> String {
    format!(
        "*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.16.0.0/24 -o wan -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
{forward}COMMIT
"
    )
}

/// The seed's NAVY chain as iptables-save prints what its `iptables -N`,
/// `-I` and `-A` lines build, and what lets red out of the WAN with its
/// answers back.
const NAVY: &str = ":NAVY - [0:0]
-A FORWARD -j NAVY
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i br0 -o wan -j ACCEPT
-A NAVY -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT
-A NAVY -o br0 -j ACCEPT
-A NAVY -j RETURN
";

#[test]
fn seed004_navy_chain_filters_bridged_traffic_and_masquerades_the_bridge() {
    if skip() {
        return;
    }
    let s = Site::new(&[
        RED,
        BLUE,
        routed(
            "wan",
            "wn",
            "203.0.113.2/24",
            "203.0.113.1",
            "203.0.113.1/24",
        ),
    ]);
    let (red, blue) = (s.host("red"), s.host("blue"));
    let x = s.start(SEED004_BRIDGE, &seed004_rules(""));

    // FORWARD DROP and nothing else: the bridge's own address answers
    // (INPUT), the hosts do not reach each other, nor the outside.
    assert_eq!(
        s.ping("red", "10.16.0.1", 3),
        3,
        "red -> br0's address\n{}",
        x.log()
    );
    assert_eq!(
        s.ping("red", "10.16.0.3", 2),
        0,
        "red -> blue, FORWARD DROP"
    );
    assert_eq!(
        s.ping("blue", "10.16.0.2", 2),
        0,
        "blue -> red, FORWARD DROP"
    );
    // Dropped by the filter, not lost: ARP (not IP) crossed the bridge,
    // and FORWARD counted the four echo requests.
    let neigh =
        s.tb.ip(&red.ns, &["neigh", "show", "10.16.0.3", "dev", &red.dev]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        neigh.contains(&format!("lladdr {}", blue.mac)),
        "red did not resolve blue across br0: {neigh}"
    );
    let dropped = drops(&x, "filter_forward");
    assert!(dropped >= 4, "filter_forward {dropped}\n{}", stats(&x));
    let _web = s.listen("wan", "203.0.113.2:80");
    assert!(
        !s.connects("red", "203.0.113.2:80"),
        "red -> outside, FORWARD DROP"
    );

    // The seed's NAVY chain, by a reload.
    x.rewrite_config(&s.config(SEED004_BRIDGE, &seed004_rules(NAVY)));
    x.ctl(&["reload"]);
    assert!(
        until(Duration::from_secs(3), || s.ping("red", "10.16.0.3", 1)
            == 1),
        "red -> blue after the NAVY reload\n{}",
        x.log()
    );
    assert_eq!(s.ping("red", "10.16.0.3", 3), 3, "red -> blue (NAVY)");
    assert_eq!(s.ping("blue", "10.16.0.2", 3), 3, "blue -> red (NAVY)");
    assert_eq!(s.ping("red", "10.16.0.1", 2), 2, "red -> br0's address");
    assert_eq!(
        s.source_seen("red", "wan", "203.0.113.2:5001"),
        Ipv4Addr::new(203, 0, 113, 1),
        "red's connection out of the WAN is masqueraded"
    );
    // `-A NAVY -o br0 -j ACCEPT` lets anything routed into the bridge
    // through, from the outside too (as on Linux).
    assert_eq!(s.ping("wan", "10.16.0.2", 2), 2, "outside -> red (-o br0)");

    assert_learned(&x, &red.mac, "red", None);
    assert_learned(&x, &blue.mac, "blue", None);
    s.stop(x);
}

// ---------------------------------------------------------------------
// Seed 000: eth1 and eth2 in br0, masquerade out of eth0
// ---------------------------------------------------------------------

#[test]
fn seed000_bridge_without_br_netfilter_bridges_freely_and_masquerades() {
    if skip() {
        return;
    }
    let s = Site::new(&[
        port("eth1", "e1", "10.50.0.2/24", "10.50.0.1"),
        port("eth2", "e2", "10.50.0.3/24", "10.50.0.1"),
        routed(
            "eth0",
            "e0",
            "198.51.100.2/24",
            "198.51.100.1",
            "198.51.100.1/24",
        ),
    ]);
    // nf_call_iptables is off by default: Linux without br_netfilter.
    let bridge = r#"
[[bridge]]
name = "br0"
ports = ["eth1", "eth2"]

[[interface]]
name = "br0"
device = "br0"
address = ["10.50.0.1/24"]
"#;
    let rules = "*nat
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -i eth0 -o br0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i br0 -o eth0 -j ACCEPT
COMMIT
";
    let x = s.start(bridge, rules);

    // Bridged frames never see FORWARD and its DROP policy.
    assert_eq!(
        s.ping("eth1", "10.50.0.3", 3),
        3,
        "LAN host -> LAN host\n{}",
        x.log()
    );
    assert_eq!(s.ping("eth2", "10.50.0.2", 3), 3, "LAN host -> LAN host");
    let _lan_web = s.listen("eth1", "10.50.0.2:80");
    assert!(s.connects("eth2", "10.50.0.2:80"), "LAN TCP across br0");
    assert_eq!(
        drops(&x, "filter_forward"),
        0,
        "bridged traffic went through FORWARD without nf_call_iptables"
    );

    // Both LAN hosts reach the outside, as the WAN address.
    for (h, server) in [("eth1", "198.51.100.2:5001"), ("eth2", "198.51.100.2:5002")] {
        assert_eq!(
            s.source_seen(h, "eth0", server),
            Ipv4Addr::new(198, 51, 100, 1),
            "{h}'s connection is masqueraded"
        );
        assert_eq!(s.ping(h, "198.51.100.2", 2), 2, "{h} -> outside ping");
    }

    // The outside cannot open a connection in (the host listens: the
    // LAN reached it above); routed into br0, FORWARD drops it.
    assert!(!s.connects("eth0", "10.50.0.2:80"), "outside -> LAN TCP");
    assert_eq!(s.ping("eth0", "10.50.0.2", 2), 0, "outside -> LAN ping");
    let dropped = drops(&x, "filter_forward");
    assert!(dropped >= 3, "filter_forward {dropped}\n{}", stats(&x));
    s.stop(x);
}

// ---------------------------------------------------------------------
// -m physdev: the bridge ports of bridged traffic, xgate and Linux
// ---------------------------------------------------------------------

/// FORWARD accepts everything but TCP to port 80 bridged from port `red`
/// to port `blue`.
fn physdev_rules(red: &str, blue: &str) -> String {
    format!(
        "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -p tcp -m physdev --physdev-in {red} --physdev-out {blue} --physdev-is-bridged -m tcp --dport 80 -j DROP
COMMIT
"
    )
}

/// What the physdev rule should decide, in the order of
/// [`physdev_outcomes`].
const PHYSDEV_EXPECTED: [(&str, bool); 4] = [
    ("red -> blue tcp/80 (dropped)", false),
    (
        "blue -> red tcp/80 (red's answers leave by red from port 80)",
        true,
    ),
    ("red -> blue tcp/81", true),
    ("red -> blue ping", true),
];

fn physdev_outcomes(s: &Site) -> Vec<bool> {
    let _listeners = [
        s.listen("red", "10.16.0.2:80"),
        s.listen("blue", "10.16.0.3:80"),
        s.listen("blue", "10.16.0.3:81"),
    ];
    vec![
        s.connects("red", "10.16.0.3:80"),
        s.connects("blue", "10.16.0.2:80"),
        s.connects("red", "10.16.0.3:81"),
        s.ping("red", "10.16.0.3", 2) == 2,
    ]
}

/// The same bridge in the Linux kernel of `s`'s xgate namespace: br0
/// over the hosts' ports, bridged IPv4 through iptables (br_netfilter's
/// sysctl is per namespace), `rules` loaded by iptables-restore. Err(why)
/// where the kernel lacks a part of it.
fn linux_bridge(s: &Site, rules: &str) -> Result<(), String> {
    let exec = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &s.router])
            .args(args)
            .output()
            .map_err(|e| format!("{args:?}: {e}"))
    };
    let o = exec(&["ip", "link", "add", "br0", "type", "bridge"])?;
    if !o.status.success() {
        return Err(format!(
            "no bridge in this kernel: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        return Err("no br_netfilter in this kernel (no /proc/sys/net/bridge)".into());
    }
    let o = exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"])?;
    if !o.status.success() {
        return Err(format!(
            "no br_netfilter in this namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    for h in &s.hosts {
        s.tb.ip(&s.router, &["link", "set", &h.port, "master", "br0"]);
    }
    s.tb.ip(&s.router, &["link", "set", "br0", "up"]);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &s.router, "iptables-restore"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("iptables-restore (iptables: scripts/setup-debian.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    if !o.status.success() {
        return Err(format!(
            "the kernel refused the physdev rule: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(())
}

#[test]
fn physdev_matches_the_ports_of_bridged_traffic_as_linux_does() {
    if skip() {
        return;
    }
    let (through_xgate, dropped) = {
        let s = Site::new(&[RED, BLUE]);
        let x = s.start(SEED004_BRIDGE, &physdev_rules("red", "blue"));
        let o = physdev_outcomes(&s);
        let dropped = drops(&x, "filter_forward");
        s.stop(x);
        (o, dropped)
    };
    // Linux: the rule names the port devices (xgate: the interfaces).
    let linux = {
        let s = Site::new(&[RED, BLUE]);
        let rules = physdev_rules(&s.host("red").port, &s.host("blue").port);
        match linux_bridge(&s, &rules) {
            Ok(()) => Some(physdev_outcomes(&s)),
            Err(why) => {
                eprintln!("the comparison with a Linux bridge is skipped: {why}");
                None
            }
        }
    };
    for (i, (what, want)) in PHYSDEV_EXPECTED.iter().enumerate() {
        let l = linux.as_ref().map(|l| l[i]);
        eprintln!("{what}: xgate {}, Linux {l:?}", through_xgate[i]);
        if let Some(l) = l {
            assert_eq!(l, *want, "Linux disagrees with the expectation: {what}");
        }
        assert_eq!(through_xgate[i], *want, "xgate: {what}");
    }
    assert!(dropped >= 1, "filter_forward {dropped}");
}

// ---------------------------------------------------------------------
// A VLAN-aware bridge: a trunk, two access ports, a routed VLAN each
// ---------------------------------------------------------------------

const VLAN_BRIDGE: &str = r#"
[[bridge]]
name = "br0"
vlan_filtering = true
ports = [
    { interface = "trunk", pvid = 0, vlans = [10, 20] },
    { interface = "acc10", pvid = 10 },
    { interface = "acc20", pvid = 20 },
]

[[interface]]
name = "br0.10"
device = "br0"
vlan = 10
address = ["10.10.0.1/24"]

[[interface]]
name = "br0.20"
device = "br0"
vlan = 20
address = ["10.20.0.1/24"]
"#;

/// A frame a host's device received (vlan_probe.py's description).
#[derive(Debug)]
struct Frame {
    src: String,
    vlans: Vec<u64>,
    what: String,
}

/// Per probe: every host's received frames, by host name.
type Seen = BTreeMap<String, Vec<Frame>>;

/// Runs tests/live_bridge/vlan_probe.py: sends each frame (a scapy
/// expression) from host `from`'s device and gathers what every host's
/// device received in the 300 ms after it.
fn probe(s: &Site, from: &str, frames: &[String]) -> Vec<Seen> {
    let watch: serde_json::Map<String, Value> = s
        .hosts
        .iter()
        .map(|h| (h.name.to_string(), json!({"ns": h.ns, "dev": h.dev})))
        .collect();
    let probes: Vec<Value> = frames
        .iter()
        .map(|f| json!({"frame": f, "wait_ms": 300}))
        .collect();
    let req = json!({"watch": watch, "from": from, "probes": probes});
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/live_bridge/vlan_probe.py"
    );
    let mut child = Command::new(PYTHON)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let ans: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "vlan_probe.py ({e}; python3-scapy: scripts/setup-debian.sh): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(ans.get("error").is_none(), "vlan_probe.py: {ans}");
    let frame = |f: &Value| Frame {
        src: f["src"].as_str().unwrap().to_string(),
        vlans: f["vlans"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .collect(),
        what: f["what"].as_str().unwrap().to_string(),
    };
    ans["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_object()
                .unwrap()
                .iter()
                .map(|(host, got)| {
                    (
                        host.clone(),
                        got.as_array().unwrap().iter().map(frame).collect(),
                    )
                })
                .collect()
        })
        .collect()
}

/// What a probe must bring about at a host.
enum Want {
    /// A frame from this MAC with exactly these tags, described so.
    Got(&'static str, String, &'static [u64], &'static str),
    /// No frame at all from this MAC.
    Nothing(&'static str, String),
}

fn eth(dst: &str, src: &str, vlan: Option<u16>) -> String {
    let tag = vlan.map_or(String::new(), |v| format!("/Dot1Q(vlan={v})"));
    format!("Ether(dst='{dst}', src='{src}'){tag}")
}

/// A broadcast ARP request: who has `pdst`, tell `psrc` at `mac`.
fn who_has(mac: &str, vlan: Option<u16>, psrc: &str, pdst: &str) -> String {
    format!(
        "{}/ARP(op=1, hwsrc='{mac}', psrc='{psrc}', pdst='{pdst}')",
        eth("ff:ff:ff:ff:ff:ff", mac, vlan)
    )
}

fn echo(dst_mac: &str, src_mac: &str, vlan: Option<u16>, src: &str, dst: &str) -> String {
    format!(
        "{}/IP(src='{src}', dst='{dst}')/ICMP(id=0x4242, seq=1)/Raw(b'xgate bridge')",
        eth(dst_mac, src_mac, vlan)
    )
}

#[test]
fn vlan_aware_bridge_tags_the_trunk_isolates_vlans_and_routes_between_them() {
    if skip() {
        return;
    }
    let s = Site::new(&[
        bare("trunk", "tk"),
        port("acc10", "a1", "10.10.0.2/24", "10.10.0.1"),
        port("acc20", "a2", "10.20.0.2/24", "10.20.0.1"),
    ]);
    let (t, a10, a20) = (
        s.host("trunk").mac.clone(),
        s.host("acc10").mac.clone(),
        s.host("acc20").mac.clone(),
    );
    // The VLAN-10 host answers the trunk's echo without asking who
    // 10.10.0.3 is (the trunk's side does not answer ARP).
    let h = s.host("acc10");
    s.tb.ip(
        &h.ns,
        &[
            "neigh",
            "replace",
            "10.10.0.3",
            "lladdr",
            &t,
            "dev",
            &h.dev,
            "nud",
            "permanent",
        ],
    );
    let x = s.start(VLAN_BRIDGE, "");

    use Want::{Got, Nothing};
    // A host's kernel answers only untagged frames (it has no VLAN
    // device): an answer proves the tag was taken off, and the answer
    // arriving at the trunk tagged proves it was put back on.
    let probes: Vec<(&str, String, Vec<Want>)> = vec![
        (
            "ARP tagged 10 from the trunk",
            who_has(&t, Some(10), "10.10.0.3", "10.10.0.2"),
            vec![
                Got("acc10", t.clone(), &[], "arp-request 10.10.0.3>10.10.0.2"),
                Got("trunk", a10.clone(), &[10], "arp-reply 10.10.0.2>10.10.0.3"),
                Nothing("acc20", t.clone()),
            ],
        ),
        (
            "echo tagged 10 to the VLAN-10 host",
            echo(&a10, &t, Some(10), "10.10.0.3", "10.10.0.2"),
            vec![
                Got("acc10", t.clone(), &[], "icmp-8 10.10.0.3>10.10.0.2"),
                Got("trunk", a10.clone(), &[10], "icmp-0 10.10.0.2>10.10.0.3"),
                Nothing("acc20", t.clone()),
            ],
        ),
        (
            "ARP tagged 20 from the trunk",
            who_has(&t, Some(20), "10.20.0.3", "10.20.0.2"),
            vec![
                Got("acc20", t.clone(), &[], "arp-request 10.20.0.3>10.20.0.2"),
                Got("trunk", a20.clone(), &[20], "arp-reply 10.20.0.2>10.20.0.3"),
                Nothing("acc10", t.clone()),
            ],
        ),
        (
            "echo tagged 20 to the VLAN-10 host's MAC (unknown in VLAN 20: flooded there)",
            echo(&a10, &t, Some(20), "10.10.0.3", "10.10.0.2"),
            vec![
                Nothing("acc10", t.clone()),
                Got("acc20", t.clone(), &[], "icmp-8 10.10.0.3>10.10.0.2"),
                Nothing("trunk", a10.clone()),
            ],
        ),
        (
            "untagged ARP from the trunk (no pvid)",
            who_has(&t, None, "10.10.0.3", "10.10.0.2"),
            vec![
                Nothing("acc10", t.clone()),
                Nothing("acc20", t.clone()),
                Nothing("trunk", a10.clone()),
            ],
        ),
        (
            "ARP tagged 30 from the trunk (not carried)",
            who_has(&t, Some(30), "10.10.0.3", "10.10.0.2"),
            vec![
                Nothing("acc10", t.clone()),
                Nothing("acc20", t.clone()),
                Nothing("trunk", a10.clone()),
            ],
        ),
    ];
    let frames: Vec<String> = probes.iter().map(|(_, f, _)| f.clone()).collect();
    let seen = probe(&s, "trunk", &frames);
    for ((what, _, wants), got) in probes.iter().zip(&seen) {
        for want in wants {
            let (host, src) = match want {
                Got(h, src, ..) | Nothing(h, src) => (*h, src),
            };
            let from: Vec<&Frame> = got[host].iter().filter(|f| &f.src == src).collect();
            match want {
                Got(_, _, vlans, desc) => assert!(
                    from.iter().any(|f| f.vlans == *vlans && f.what == *desc),
                    "{what}: {host} did not get {desc} tagged {vlans:?} from {src}; got {:?}\n{}",
                    got[host],
                    x.log()
                ),
                Nothing(..) => assert!(from.is_empty(), "{what}: {host} got {from:?} from {src}"),
            }
        }
    }
    let filtered = drops(&x, "bridge_vlan_filtered");
    assert!(
        filtered >= 2,
        "the untagged and the VLAN-30 frame: bridge_vlan_filtered {filtered}\n{}",
        stats(&x)
    );

    // Each access host reaches its VLAN's routed interface, and the
    // other VLAN's host through them.
    assert_eq!(s.ping("acc10", "10.10.0.1", 3), 3, "VLAN 10 -> br0.10");
    assert_eq!(s.ping("acc20", "10.20.0.1", 3), 3, "VLAN 20 -> br0.20");
    assert_eq!(
        s.ping("acc10", "10.20.0.2", 3),
        3,
        "VLAN 10 -> VLAN 20, routed"
    );

    assert_learned(&x, &a10, "acc10", Some(10));
    assert_learned(&x, &a20, "acc20", Some(20));
    let (entries, text) = fdb(&x);
    let mut trunk_vlans: Vec<Option<u16>> = entries
        .iter()
        .filter(|e| e.mac == t && e.master == "br0")
        .map(|e| e.vlan)
        .collect();
    trunk_vlans.sort();
    assert!(
        entries.iter().all(|e| e.mac != t || e.dev == "trunk"),
        "{text}"
    );
    assert_eq!(
        trunk_vlans,
        [Some(10), Some(20)],
        "the trunk's MAC, learned per VLAN, never from a filtered frame:\n{text}"
    );
    s.stop(x);
}

// ---------------------------------------------------------------------
// A loop: storm control keeps xgate alive
// ---------------------------------------------------------------------

#[test]
fn a_bridge_loop_is_cut_by_storm_control_and_xgate_keeps_forwarding() {
    if skip() {
        return;
    }
    let s = Site::new(&[
        port("snd", "sd", "10.30.0.2/24", "10.30.0.1"),
        routed("lan1", "h1", "10.41.0.2/24", "10.41.0.1", "10.41.0.1/24"),
        routed("lan2", "h2", "10.42.0.2/24", "10.42.0.1", "10.42.0.1/24"),
    ]);
    // The loop: a veth pair with both ends in xgate's namespace, both
    // ports of br0 (IPv6 is off there: the kernel sends nothing into it).
    let (la, lb) = s.tb.veth(&s.router, "la", &s.router, "lb", 1);
    let bridge = format!(
        r#"
[[bridge]]
name = "br0"
ports = ["snd", "loopa", "loopb"]
flood_rate = 1000

[[interface]]
name = "loopa"
device = "{la}"

[[interface]]
name = "loopb"
device = "{lb}"
"#
    );
    let x = s.start(&bridge, "");
    assert_eq!(
        s.ping("lan1", "10.42.0.2", 2),
        2,
        "routed, before the storm\n{}",
        x.log()
    );
    assert_eq!(drops(&x, "bridge_flood_limited"), 0, "nothing flooded yet");

    // One broadcast into br0: flooded into the loop, it comes back by
    // the other end and is flooded again, for ever without storm control.
    let snd = s.host("snd");
    let (dev, mac) = (snd.dev.clone(), s.tb.mac(&snd.ns, &snd.dev));
    in_ns(&snd.ns, move || {
        RawSocket::open(&dev).send(&traffic::udp_frame(
            [0xff; 6],
            mac,
            None,
            Ipv4Addr::new(10, 30, 0, 2),
            Ipv4Addr::new(10, 30, 0, 255),
            4000,
            9,
            b"one broadcast into a loop",
        ))
    })
    .join()
    .unwrap();
    let pings = in_ns(&s.host("lan1").ns, || {
        traffic::ping(Ipv4Addr::new(10, 42, 0, 2), 5, Duration::from_secs(1))
    });
    let mut slowest = Duration::ZERO;
    let limited = until(Duration::from_secs(3), || {
        let t = Instant::now();
        let n = drops(&x, "bridge_flood_limited");
        slowest = slowest.max(t.elapsed());
        n > 0
    });
    assert!(limited, "no bridge_flood_limited drop\n{}", stats(&x));
    assert!(
        slowest < Duration::from_secs(1),
        "ctl stats took {slowest:?}"
    );
    assert_eq!(pings.join().unwrap(), 5, "routed pings during the storm");
    let around = tx_packets(&x, &la) + tx_packets(&x, &lb);
    assert!(
        around >= 10,
        "the broadcast did not go round the loop: {around}"
    );
    assert_eq!(s.ping("lan1", "10.42.0.2", 3), 3, "routed, after the storm");
    s.stop(x);
}
