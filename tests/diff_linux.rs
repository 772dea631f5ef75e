//! Differential test of the firewall against Linux (issue 19: "where xgate
//! implements something Linux does, test it against Linux").
//!
//! Every case is a ruleset and a list of crafted probe packets. The case
//! runs twice on the same topology, built afresh each time:
//!
//! ```text
//!  client ns                 router ns                      server ns
//!  xdlc0 10.1.0.2/24 ---- xdlr0 10.1.0.1/24
//!   (+ .3-.12, .100)         xdlr1 10.2.0.1/24 ---- xdls0 10.2.0.2/24 (+ .3)
//! ```
//!
//! 1. Linux: the router namespace forwards (`ip_forward=1`) with the
//!    ruleset loaded by `iptables-restore` (iptables-nft) or `nft -f`;
//! 2. xgate: `xgate run` owns xdlr0 and xdlr1 (logical interfaces named
//!    like the devices, so the same ruleset text names the same ports),
//!    with the ruleset in `[firewall] rules` (or `nft`), the kernel's
//!    forwarding off.
//!
//! The probes are sent and watched by tests/diff_linux/probe.py (scapy,
//! AF_PACKET sockets in the client and server namespaces; one process for
//! the whole run). The endpoints' own kernels drop every IP packet they
//! receive (raw PREROUTING DROP), so only the router answers; what a far
//! host would answer (SYN-ACK, echo reply, an ICMP error) is crafted by
//! the script from the packet as it arrived, so it follows the router's
//! NAT. A probe's observation is every IPv4 packet the far side received
//! (addresses, ports, flags, TTL, length, fragment offset: NAT and TTL are
//! compared too) and every one that came back to the sender (REJECT's
//! ICMP errors and resets, with the packet they quote). Both routers must
//! give the same observation per probe; a difference not listed in
//! [`KNOWN`] fails the test, with a table of them all.
//!
//! Rulesets: the seeds' lines (../shared/seeds: 000 forwarding with
//! masquerade, 001 the DNAT+SNAT proxy, 002 the filter and NAT examples,
//! 003 ipmasqadm port forwarding as examples/portfw.toml translates it,
//! 004 the NAVY chain), real rulesets of control/tests/corpus/iptables
//! that `xgate import-iptables` converts fully, and rulesets written here
//! for one feature each. Seed and corpus text is kept as written except
//! for a documented substitution per case (`subst`): interface names
//! become the router's devices (the inside one, facing the client, is
//! xdlr0; the outside one xdlr1) and addresses become the topology's.
//! Seed 002's INPUT rules are applied to FORWARD (the probes cross the
//! router; the router's own stack is not compared, xgate has none).
//!
//! nftables cases give the same text to `nft -f` and to `[firewall] nft`
//! (a build without that key skips them, saying so; `XDL_NFT_LINUX_ONLY=1`
//! then runs their Linux half alone and prints it). `XDL_CASES=a,b` runs the
//! cases whose names start so; `XDL_VERBOSE=1` prints every observation.
//!
//! Namespaces are `xdl-<pid>-<n>-{c,r,s}`, removed on every exit (a
//! guard); xgate and the script are killed by theirs. Skipped, with the
//! reason printed, when not root, without AF_XDP or namespaces, or
//! without iptables-nft or python3-scapy (scripts/setup-debian.sh); an
//! nft case also without nft.
//! About half a minute: each probe is watched until the router has
//! answered an ARP request sent after it (a barrier), plus 20 ms.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use xgate_testbed::xgate::Xgate;

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");
const PYTHON: &str = "/usr/bin/python3";

/// Differences from Linux that are known, each with the exact
/// observations: (case, probe index, Linux, xgate). They are printed on
/// every run, never fail it; anything else that differs fails.
const KNOWN: &[(&str, usize, &str, &str)] = &[
    // Connection tracking reassembles before it looks at a fragment, so
    // Linux forwards fragments that came before their first one (out of
    // order) once the datagram is whole; xgate drops every fragment that
    // arrives before the first (fragment_unforwarded).
    (
        "fragments-stateful",
        2,
        "far=[UDP 10.1.0.2:40140>10.2.0.2:55 frag=0+ ttl=63 len=620; proto17 10.1.0.2>10.2.0.2 frag=600+ ttl=63 len=620; proto17 10.1.0.2>10.2.0.2 frag=1200 ttl=63 len=28] back=[]",
        "far=[UDP 10.1.0.2:40140>10.2.0.2:55 frag=0+ ttl=63 len=620] back=[]",
    ),
    // ... and holds an incomplete datagram (never forwarding it, then a
    // reassembly timeout); xgate forwards the first fragment at once.
    (
        "fragments-stateful",
        3,
        "far=[] back=[]",
        "far=[UDP 10.1.0.2:40140>10.2.0.2:56 frag=0+ ttl=63 len=620] back=[]",
    ),
    // IP options: Linux fills in a Record Route option as it forwards
    // (its outgoing address, the pointer moved); xgate forwards the
    // option untouched.
    (
        "stateless-flags-icmp-types",
        1,
        "far=[UDP 10.1.0.2:40241>10.2.0.2:9 ttl=63 len=40 options=070b080a0200010000000000] back=[]",
        "far=[UDP 10.1.0.2:40241>10.2.0.2:9 ttl=63 len=40 options=070b04000000000000000000] back=[]",
    ),
    // DNAT to a port range: Linux takes the range's first free port
    // (8000: no offset for destination NAT without --random); xgate picks
    // one at random in the range (8000-8004; 8000 by chance, then the
    // difference is not seen).
    (
        "nat-port-ranges-reject",
        0,
        "far=[TCP 10.2.0.2:40260>10.1.0.2:8000 S seq=1000 ack=0 ttl=63 len=40] back=[]",
        "far=[TCP 10.2.0.2:40260>10.1.0.2:80* S seq=1000 ack=0 ttl=63 len=40] back=[]",
    ),
    (
        "nat-port-ranges-reject",
        2,
        "far=[TCP 10.2.0.2:40261>10.1.0.2:8000 S seq=1000 ack=0 ttl=63 len=40] back=[]",
        "far=[TCP 10.2.0.2:40261>10.1.0.2:80* S seq=1000 ack=0 ttl=63 len=40] back=[]",
    ),
    // A packet routed back out of the port it came in by, to a host on
    // the sender's own subnet: Linux forwards it and tells the sender
    // with an ICMP redirect (send_redirects=1); xgate forwards it and
    // sends no redirect.
    (
        "negations-wildcards",
        1,
        "far=[] back=[ICMP 10.2.0.1>10.2.0.2 5/1 gw=10.2.0.3 (UDP 10.2.0.2:40331>10.2.0.3:53) ttl=64 len=61 tos=0xc0; UDP 10.2.0.2:40331>10.2.0.3:53 ttl=63 len=33]",
        "far=[] back=[UDP 10.2.0.2:40331>10.2.0.3:53 ttl=63 len=33]",
    ),
    // Hairpin: a port forward used from the inside. Linux rewrites only
    // the destination (no SNAT rule matches: MASQUERADE is -o outside),
    // so the inside server would answer the client directly; xgate adds
    // its automatic hairpin SNAT (docs/architecture.md), by design.
    (
        "hairpin-port-forward",
        2,
        "far=[] back=[TCP 10.1.0.3:40271>10.1.0.10:80 S seq=1000 ack=0 ttl=63 len=40]",
        "far=[] back=[TCP 10.2.0.1:40271>10.1.0.10:80 S seq=1000 ack=0 ttl=63 len=40]",
    ),
    (
        "hairpin-port-forward",
        3,
        "far=[] back=[UDP 10.1.0.3:40272>10.1.0.10:53 ttl=63 len=33]",
        "far=[] back=[UDP 10.2.0.1:40272>10.1.0.10:53 ttl=63 len=33]",
    ),
];

/// `text` matches `pattern`, where `*` in the pattern stands for any run
/// of characters (a port xgate picks at random).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Rulesets Linux loads and `xgate check` refuses: (case, a part of the
/// error). Printed and skipped; any other refusal fails.
const KNOWN_REFUSED: &[(&str, &str)] = &[
    (
        "nft-icmpx-ipv4-rule",
        "the family mixes IPv4 and IPv6 in one rule",
    ),
    (
        "netmask-noncontiguous",
        "non-contiguous netmask 255.255.0.255",
    ),
    (
        "multiport-twice",
        "option --dports/--sports/--ports given twice",
    ),
];

// ---------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The three namespaces of one run of one case; deleted on drop.
struct Topo {
    c: String,
    r: String,
    s: String,
}

impl Drop for Topo {
    fn drop(&mut self) {
        for n in [&self.c, &self.r, &self.s] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn sh(ns: Option<&str>, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut c = match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", n]).args(args);
            c
        }
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{args:?}: {e}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ipn(ns: &str, args: &[&str]) {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    sh(None, &v, None).unwrap_or_else(|e| panic!("{e}"));
}

fn exec(ns: &str, args: &[&str]) {
    sh(Some(ns), args, None).unwrap_or_else(|e| panic!("{e}"));
}

const CLIENT_ADDRS: &[&str] = &[
    "10.1.0.2",
    "10.1.0.3",
    "10.1.0.4",
    "10.1.0.5",
    "10.1.0.6",
    "10.1.0.7",
    "10.1.0.8",
    "10.1.0.9",
    "10.1.0.10",
    "10.1.0.11",
    "10.1.0.12",
    "10.1.0.100",
];
const SERVER_ADDRS: &[&str] = &["10.2.0.2", "10.2.0.3"];
const CLIENT_MAC: &str = "02:00:00:00:0c:02";

impl Topo {
    fn new() -> Topo {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = format!("xdl-{}-{n}", std::process::id());
        let t = Topo {
            c: format!("{p}-c"),
            r: format!("{p}-r"),
            s: format!("{p}-s"),
        };
        for ns in [&t.c, &t.r, &t.s] {
            sh(None, &["ip", "netns", "add", ns], None).unwrap_or_else(|e| panic!("{e}"));
            // No IPv6: no router solicitations or MLD reports in the captures.
            exec(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            exec(
                ns,
                &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            );
            ipn(ns, &["link", "set", "lo", "up"]);
        }
        for (a_ns, a, b_ns, b) in [
            (&t.c, "xdlc0", &t.r, "xdlr0"),
            (&t.r, "xdlr1", &t.s, "xdls0"),
        ] {
            ipn(
                a_ns,
                &[
                    "link", "add", a, "type", "veth", "peer", "name", b, "netns", b_ns,
                ],
            );
            ipn(a_ns, &["link", "set", a, "up"]);
            ipn(b_ns, &["link", "set", b, "up"]);
        }
        for (ns, dev, addrs, gw) in [
            (&t.c, "xdlc0", CLIENT_ADDRS, "10.1.0.1"),
            (&t.s, "xdls0", SERVER_ADDRS, "10.2.0.1"),
        ] {
            for a in addrs {
                ipn(ns, &["addr", "add", &format!("{a}/24"), "dev", dev]);
            }
            ipn(ns, &["route", "add", "default", "via", gw]);
            // Full checksums on transmit, GRO on: veth accepts frames xgate
            // redirects into it only then (see the testbed's `endpoint`).
            exec(ns, &["ethtool", "-K", dev, "tx", "off", "gro", "on"]);
            if dev == "xdlc0" {
                // A fixed MAC, for `-m mac --mac-source`.
                ipn(ns, &["link", "set", dev, "address", CLIENT_MAC]);
            }
            // The endpoint's stack answers nothing: the script does.
            exec(
                ns,
                &["iptables", "-t", "raw", "-A", "PREROUTING", "-j", "DROP"],
            );
        }
        t
    }

    fn mac(ns: &str, dev: &str) -> String {
        let out = sh(None, &["ip", "-n", ns, "link", "show", dev], None).unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .expect("no link/ether")
            .to_string()
    }
}

// ---------------------------------------------------------------------
// The probe script
// ---------------------------------------------------------------------

struct Prober {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prober {
    fn start() -> Prober {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/diff_linux/probe.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Prober {
            child,
            stdin,
            stdout,
        }
    }

    fn probe(&mut self, t: &Topo, probes: &[Value]) -> Vec<String> {
        let req = json!({
            "client_ns": t.c, "server_ns": t.s,
            "client_dev": "xdlc0", "server_dev": "xdls0",
            "client_mac": Topo::mac(&t.c, "xdlc0"),
            "server_mac": Topo::mac(&t.s, "xdls0"),
            "router_client_mac": Topo::mac(&t.r, "xdlr0"),
            "router_server_mac": Topo::mac(&t.r, "xdlr1"),
            "client_addrs": CLIENT_ADDRS, "server_addrs": SERVER_ADDRS,
            "router_addr": {"c": "10.1.0.1", "s": "10.2.0.1"},
            "probes": probes,
        });
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let ans: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("probe.py answered {line:?}: {e}"));
        if let Some(e) = ans.get("error") {
            panic!("probe.py: {}", e.as_str().unwrap_or_default());
        }
        ans["ok"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

// ---------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    Iptables,
    Nft,
    /// A shell script of iptables commands: Linux runs it (`bash -s
    /// start`), xgate gets what `import-iptables --run SCRIPT start`
    /// prints.
    Script,
}

struct Case {
    name: &'static str,
    lang: Lang,
    ruleset: String,
    /// `ipset save` text: `ipset restore` in the Linux router before the
    /// rules, `[firewall] ipsets` for xgate.
    ipsets: &'static str,
    probes: Vec<Value>,
}

/// Builds a probe list; each method returns the probe's index (for
/// replies).
#[derive(Default)]
struct P(Vec<Value>);

impl P {
    fn raw(&mut self, from: &str, pkt: &str) -> usize {
        self.0.push(json!({"from": from, "pkt": pkt}));
        self.0.len() - 1
    }
    fn with(&mut self, v: Value) -> usize {
        self.0.push(v);
        self.0.len() - 1
    }
    /// A TCP segment with flags; sequence 1000 (1001 after the SYN).
    fn tcp(
        &mut self,
        from: &str,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        flags: &str,
    ) -> usize {
        let (seq, ack) = if flags.contains('S') {
            (1000, 0)
        } else {
            (1001, 5001)
        };
        self.raw(
            from,
            &format!(
                "IP(src='{src}',dst='{dst}')/TCP(sport={sport},dport={dport},flags='{flags}',seq={seq},ack={ack})"
            ),
        )
    }
    fn syn(&mut self, from: &str, src: &str, sport: u16, dst: &str, dport: u16) -> usize {
        self.tcp(from, src, sport, dst, dport, "S")
    }
    fn udp(&mut self, from: &str, src: &str, sport: u16, dst: &str, dport: u16) -> usize {
        self.raw(
            from,
            &format!("IP(src='{src}',dst='{dst}')/UDP(sport={sport},dport={dport})/Raw(b'probe')"),
        )
    }
    fn ping(&mut self, from: &str, src: &str, dst: &str, id: u16) -> usize {
        self.raw(
            from,
            &format!("IP(src='{src}',dst='{dst}')/ICMP(type=8,id={id},seq=1)/Raw(b'ping')"),
        )
    }
    /// The far side's answer to what probe `k` delivered.
    fn reply(&mut self, k: usize, kind: &str) -> usize {
        let from = if self.0[k]["from"] == "c" { "s" } else { "c" };
        self.with(json!({"from": from, "reply_to": k, "kind": kind}))
    }
    /// SYN, SYN-ACK, ACK, then 5 bytes of data from the opener.
    fn handshake(&mut self, from: &str, src: &str, sport: u16, dst: &str, dport: u16) -> usize {
        let k = self.syn(from, src, sport, dst, dport);
        self.reply(k, "SA");
        self.tcp(from, src, sport, dst, dport, "A");
        self.raw(
            from,
            &format!(
                "IP(src='{src}',dst='{dst}')/TCP(sport={sport},dport={dport},flags='PA',seq=1001,ack=5001)/Raw(b'hello')"
            ),
        )
    }
}

fn subst(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut s = text.to_string();
    for (a, b) in pairs {
        assert!(s.contains(a), "substitution {a:?} matches nothing");
        s = s.replace(a, b);
    }
    s
}

fn corpus(file: &str) -> String {
    let p = format!(
        "{}/control/tests/corpus/iptables/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

const C: &str = "c";
const S: &str = "s";
const CL: &str = "10.1.0.2";
const SV: &str = "10.2.0.2";

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, ruleset: String, p: P| {
        v.push(Case {
            name,
            lang: Lang::Iptables,
            ruleset,
            ipsets: "",
            probes: p.0,
        })
    };

    // Seed 000: FORWARD policy DROP, eth0 (internet) <-> eth1 (inside)
    // accepted, masquerade out of eth0. eth0 -> xdlr1, eth1 -> xdlr0.
    {
        let mut p = P::default();
        p.handshake(C, CL, 40000, SV, 80);
        let u = p.udp(C, CL, 40001, SV, 53);
        p.reply(u, "udp");
        let e = p.ping(C, CL, SV, 77);
        p.reply(e, "echo");
        p.syn(S, SV, 40002, CL, 22);
        // The far host's ICMP error, translated back to the inside host.
        let u = p.udp(C, CL, 40003, SV, 54);
        p.reply(u, "unreach");
        add(
            "seed000-forward-masquerade",
            subst(
                "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n\
                 *filter\n:FORWARD DROP [0:0]\n-A FORWARD -i eth0 -o eth1 -j ACCEPT\n\
                 -A FORWARD -i eth1 -o eth0 -j ACCEPT\nCOMMIT\n",
                &[("eth0", "xdlr1"), ("eth1", "xdlr0")],
            ),
            p,
        );
    }

    // Seed 001: the port-forwarding proxy, both directions. client
    // 1.1.1.1 -> 10.1.0.2, proxy inside 192.168.0.2 -> 10.1.0.1, proxy
    // outside 2.2.2.2 -> 10.2.0.1, server 3.3.3.3 -> 10.2.0.2; eth1
    // (client side) -> xdlr0, eth0 -> xdlr1.
    {
        let mut p = P::default();
        let k = p.syn(C, CL, 40010, "10.1.0.1", 80);
        p.reply(k, "SA");
        p.syn(C, "10.1.0.3", 40011, "10.1.0.1", 80);
        let k = p.syn(S, SV, 5555, "10.2.0.1", 5555);
        p.reply(k, "SA");
        p.syn(C, CL, 40012, SV, 443);
        add(
            "seed001-proxy-dnat-snat",
            subst(
                "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
                 -A PREROUTING -i eth1 -d 192.168.0.2 -p tcp -m tcp --dport 80 -j DNAT --to-destination 3.3.3.3:80\n\
                 -A POSTROUTING -s 1.1.1.1 -p tcp -m tcp -j SNAT --to-source 2.2.2.2\n\
                 -A PREROUTING -i eth0 -s 3.3.3.3 -p tcp -m tcp -j DNAT --to-destination 1.1.1.1:80\n\
                 -A POSTROUTING -s 3.3.3.3 -p tcp -m tcp -j SNAT --to-source 192.168.0.2\n\
                 -A POSTROUTING -o eth0 -s 2.2.2.2 -j MASQUERADE\nCOMMIT\n",
                &[
                    ("1.1.1.1", "10.1.0.2"),
                    ("192.168.0.2", "10.1.0.1"),
                    ("2.2.2.2", "10.2.0.1"),
                    ("3.3.3.3", "10.2.0.2"),
                    ("eth1", "xdlr0"),
                    ("eth0", "xdlr1"),
                ],
            ),
            p,
        );
    }

    // Seed 002's filter lines (written for INPUT, applied to FORWARD):
    // 192.168.1.100 -> 10.1.0.100.
    {
        let mut p = P::default();
        for port in [22, 7999, 8000, 9000, 9001] {
            p.syn(C, CL, 40020, SV, port);
        }
        p.syn(C, "10.1.0.100", 40021, SV, 22);
        let k = p.syn(C, CL, 40022, SV, 8500);
        p.reply(k, "SA");
        p.udp(C, CL, 40023, SV, 22);
        p.syn(S, SV, 40024, CL, 22);
        add(
            "seed002-filter-forward",
            subst(
                "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A FORWARD -s 192.168.1.100 -j DROP\n\
                 -A FORWARD -p tcp --dport 22 -j ACCEPT\n\
                 -A FORWARD -p tcp --dport 8000:9000 -j ACCEPT\n\
                 -A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT\n\
                 -A FORWARD -p tcp --dport 22 -m state --state NEW -j ACCEPT\nCOMMIT\n",
                &[("192.168.1.100", "10.1.0.100")],
            ),
            p,
        );
    }

    // Seed 002's NAT lines: SNAT out of eth0, a port forward and the
    // round robin of two `statistic --mode nth` DNATs. 203.0.113.5 ->
    // 10.2.0.1, 192.168.1.10/.11 -> 10.1.0.10/.11, eth0 -> xdlr1. The
    // round robin is probed from the server to a client address (the
    // rules have no -d), so an undirected connection still crosses.
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40030, "10.2.0.1", 8080);
        p.reply(k, "SA");
        for sport in 40031..40036 {
            p.syn(S, SV, sport, CL, 80);
        }
        p.syn(C, CL, 40036, SV, 443);
        add(
            "seed002-nat-statistic",
            subst(
                "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
                 -A POSTROUTING -o eth0 -j SNAT --to-source 203.0.113.5\n\
                 -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.10:80\n\
                 -A PREROUTING -p tcp --dport 80 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 192.168.1.10\n\
                 -A PREROUTING -p tcp --dport 80 -m statistic --mode nth --every 2 --packet 1 -j DNAT --to-destination 192.168.1.11\n\
                 COMMIT\n",
                &[
                    ("203.0.113.5", "10.2.0.1"),
                    ("192.168.1.10", "10.1.0.10"),
                    ("192.168.1.11", "10.1.0.11"),
                    ("eth0", "xdlr1"),
                ],
            ),
            p,
        );
    }

    // Seed 003 (ipmasqadm port forwarding) as examples/portfw.toml has it:
    // 168.126.127.6 -> 10.2.0.1, 192.168.1.11 -> 10.1.0.2, 192.168.1.0/24
    // -> 10.1.0.0/24.
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40040, "10.2.0.1", 80);
        p.reply(k, "SA");
        p.syn(S, SV, 40041, "10.2.0.1", 21);
        p.syn(S, SV, 40042, CL, 22);
        // The inside server's ICMP error about a forwarded connection.
        let k = p.syn(S, SV, 40044, "10.2.0.1", 23);
        p.reply(k, "unreach");
        p.handshake(C, CL, 40043, SV, 25);
        add(
            "seed003-portfw",
            subst(
                "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
                 -A PREROUTING -d 168.126.127.6 -p tcp -m tcp --dport 23 -j DNAT --to-destination 192.168.1.11:23\n\
                 -A PREROUTING -d 168.126.127.6 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.1.11:80\n\
                 -A PREROUTING -d 168.126.127.6 -p tcp -m tcp --dport 20 -j DNAT --to-destination 192.168.1.11:20\n\
                 -A PREROUTING -d 168.126.127.6 -p tcp -m tcp --dport 21 -j DNAT --to-destination 192.168.1.11:21\n\
                 -A POSTROUTING -s 192.168.1.0/24 -j MASQUERADE\nCOMMIT\n\
                 *filter\n:FORWARD DROP [0:0]\n\
                 -A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT\n\
                 -A FORWARD -s 192.168.1.0/24 -j ACCEPT\n\
                 -A FORWARD -d 192.168.1.11 -p tcp -m multiport --dports 20,21,23,80 -j ACCEPT\nCOMMIT\n",
                &[
                    ("168.126.127.6", "10.2.0.1"),
                    ("192.168.1.11", "10.1.0.2"),
                    ("192.168.1.0/24", "10.1.0.0/24"),
                ],
            ),
            p,
        );
    }

    // Seed 004: the NAVY chain (its `iptables -I` commands in the order
    // they leave the chain). The bridge subnet rule 10.16.0.0/24 ->
    // 10.16.0.0/24 becomes client subnet -> 10.2.0.2, br0 -> xdlr0.
    {
        let mut p = P::default();
        p.syn(C, CL, 40050, SV, 80);
        p.syn(C, CL, 40051, "10.2.0.3", 80);
        p.syn(S, SV, 40052, CL, 80);
        p.ping(S, "10.2.0.3", "10.1.0.4", 5);
        p.udp(C, "10.1.0.5", 40053, "10.2.0.3", 53);
        add(
            "seed004-navy-return",
            subst(
                "*filter\n:FORWARD DROP [0:0]\n:NAVY - [0:0]\n-A FORWARD -j NAVY\n\
                 -A NAVY -s 10.16.0.0/24 -d 10.16.0.0/24 -j ACCEPT\n-A NAVY -o br0 -j ACCEPT\n\
                 -A NAVY -j RETURN\nCOMMIT\n",
                &[
                    ("-s 10.16.0.0/24", "-s 10.1.0.0/24"),
                    ("-d 10.16.0.0/24", "-d 10.2.0.2/32"),
                    ("br0", "xdlr0"),
                ],
            ),
            p,
        );
    }

    // User chains: -g (goto) then RETURN ends at the caller's caller.
    {
        let mut p = P::default();
        for port in [22, 80, 443, 8080] {
            p.syn(C, CL, 40060, SV, port);
        }
        p.syn(C, "10.1.0.3", 40061, SV, 80);
        for port in [53, 54, 55, 56] {
            p.udp(C, CL, 40062, SV, port);
        }
        p.ping(C, CL, SV, 6);
        add(
            "chains-goto-return",
            "*filter\n:FORWARD DROP [0:0]\n:tcpin - [0:0]\n:udpin - [0:0]\n:deep - [0:0]\n\
             -A FORWARD -p tcp -g tcpin\n-A FORWARD -p udp -j udpin\n\
             -A FORWARD -p udp --dport 53 -j ACCEPT\n-A FORWARD -p icmp -j ACCEPT\n\
             -A tcpin -p tcp --dport 22 -j RETURN\n-A tcpin -p tcp --dport 80 -j deep\n\
             -A tcpin -p tcp --dport 443 -j ACCEPT\n\
             -A deep -s 10.1.0.3 -j RETURN\n-A deep -j ACCEPT\n\
             -A udpin -p udp --dport 53 -j RETURN\n-A udpin -p udp --dport 54 -j ACCEPT\n\
             -A udpin -p udp --dport 55 -j DROP\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // multiport: --dports with a range, --sports, --ports, negation.
    {
        let mut p = P::default();
        for port in [22, 443, 999, 1000, 1500, 2000, 2001] {
            p.syn(C, CL, 40070, SV, port);
        }
        p.udp(S, SV, 53, CL, 40071);
        p.udp(C, CL, 54, SV, 53);
        p.syn(C, CL, 5000, SV, 1);
        p.syn(C, CL, 40072, SV, 3500);
        p.syn(C, CL, 40073, SV, 3600);
        add(
            "multiport",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -p tcp -m multiport --dports 22,80,443,1000:2000 -j ACCEPT\n\
             -A FORWARD -p udp -m multiport --sports 53,123 -j ACCEPT\n\
             -A FORWARD -p tcp -m multiport --ports 5000,6000 -j ACCEPT\n\
             -A FORWARD -p tcp -m multiport ! --dports 1:3499,3600:65535 -j ACCEPT\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // Two multiport matches in one rule (iptables-restore takes it).
    {
        let mut p = P::default();
        p.syn(C, CL, 40074, SV, 3500);
        p.syn(C, CL, 40075, SV, 3600);
        add(
            "multiport-twice",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -p tcp -m multiport ! --dports 3600,3700 -m multiport --dports 3000:3999 -j ACCEPT\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // REJECT variants; one source address per ICMP error (Linux limits
    // ICMP errors per destination: a burst of 6).
    {
        let mut p = P::default();
        p.syn(C, "10.1.0.2", 40080, SV, 1);
        p.syn(C, "10.1.0.2", 40081, SV, 2);
        p.tcp(C, "10.1.0.2", 40082, SV, 2, "PA");
        p.udp(C, "10.1.0.3", 40083, SV, 3);
        p.udp(C, "10.1.0.4", 40084, SV, 4);
        p.udp(C, "10.1.0.5", 40085, SV, 5);
        p.ping(C, "10.1.0.6", SV, 9);
        p.syn(C, "10.1.0.7", 40086, SV, 6);
        p.udp(C, "10.1.0.8", 40087, SV, 7);
        p.udp(C, "10.1.0.9", 40088, SV, 8);
        // An ICMP error is never answered with one.
        p.raw(
            C,
            "IP(src='10.1.0.10',dst='10.2.0.2')/ICMP(type=3,code=3)/IP(src='10.2.0.2',dst='10.1.0.10')/UDP(sport=53,dport=40000)",
        );
        add(
            "reject-variants",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -p tcp --dport 1 -j REJECT\n\
             -A FORWARD -p tcp --dport 2 -j REJECT --reject-with tcp-reset\n\
             -A FORWARD -p udp --dport 3 -j REJECT --reject-with icmp-host-prohibited\n\
             -A FORWARD -p udp --dport 4 -j REJECT --reject-with icmp-net-unreachable\n\
             -A FORWARD -p udp --dport 5 -j REJECT --reject-with icmp-admin-prohibited\n\
             -A FORWARD -p icmp -j REJECT --reject-with icmp-host-unreachable\n\
             -A FORWARD -p tcp --dport 6 -j REJECT --reject-with icmp-proto-unreachable\n\
             -A FORWARD -p udp --dport 7 -j REJECT --reject-with icmp-net-prohibited\n\
             -A FORWARD -p udp --dport 8 -j REJECT --reject-with icmp-host-unreachable\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // MARK in mangle PREROUTING, mark matches and LOG in filter (LOG's
    // verdict only: it continues).
    {
        let mut p = P::default();
        for port in [80, 81, 82, 83] {
            p.syn(C, CL, 40090, SV, port);
        }
        p.udp(C, "10.1.0.3", 40091, SV, 9);
        p.udp(C, "10.1.0.3", 40092, SV, 10);
        add(
            "mark-log",
            "*mangle\n:PREROUTING ACCEPT [0:0]\n\
             -A PREROUTING -p tcp --dport 80 -j MARK --set-mark 0x1\n\
             -A PREROUTING -p tcp --dport 81 -j MARK --set-xmark 0x6/0xf\n\
             -A PREROUTING -p tcp --dport 83 -j MARK --set-mark 0x3\n\
             -A PREROUTING -p tcp --dport 83 -j MARK --and-mark 0x1\n\
             -A PREROUTING -p udp -j MARK --or-mark 0x10\nCOMMIT\n\
             *filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -m mark --mark 0x1 -j LOG --log-prefix \"mark1 \"\n\
             -A FORWARD -m mark --mark 0x1 -j DROP\n\
             -A FORWARD -m mark --mark 0x2/0x2 -j REJECT\n\
             -A FORWARD -p udp -m mark --mark 0x10/0x10 --dport 9 -j DROP\n\
             -A FORWARD -j LOG --log-prefix \"fwd \"\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // limit: a burst of 3 at 1/min; only the burst is compared (the next
    // token is a minute away).
    {
        let mut p = P::default();
        for id in 0..5 {
            p.ping(C, CL, SV, 100 + id);
        }
        add(
            "limit-burst",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -p icmp -m limit --limit 1/min --limit-burst 3 -j ACCEPT\n\
             -A FORWARD -p icmp -j DROP\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // length (the IP total length), ttl (as FORWARD sees it: already
    // decremented), tos, dscp, pkttype; and a unicast packet in an
    // Ethernet broadcast frame.
    {
        let mut p = P::default();
        for total in [99usize, 100, 200, 201] {
            p.raw(
                C,
                &format!(
                    "IP(src='{CL}',dst='{SV}')/UDP(sport=40100,dport=9)/Raw(b'x'*{})",
                    total - 28
                ),
            );
        }
        for ttl in [5, 6, 100, 101] {
            p.raw(
                C,
                &format!("IP(src='10.1.0.3',dst='{SV}',ttl={ttl})/UDP(sport=40101,dport=10)"),
            );
        }
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',tos=0x10)/TCP(sport=40102,dport=80,flags='S')"),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',tos=0x08)/TCP(sport=40103,dport=80,flags='S')"),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',tos=0xb8)/TCP(sport=40104,dport=80,flags='S')"),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',tos=0xb9)/TCP(sport=40105,dport=80,flags='S')"),
        );
        p.with(json!({"from": C, "eth_dst": "ff:ff:ff:ff:ff:ff",
            "pkt": format!("IP(src='{CL}',dst='{SV}')/UDP(sport=40106,dport=11)")}));
        add(
            "length-ttl-tos-pkttype",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -p udp -m length --length 100:200 -j DROP\n\
             -A FORWARD -m ttl --ttl-lt 5 -j DROP\n\
             -A FORWARD -m ttl --ttl-eq 100 -j REJECT\n\
             -A FORWARD -m tos --tos Minimize-Delay -j DROP\n\
             -A FORWARD -p tcp -m tos --tos 0x08/0x08 -j REJECT --reject-with tcp-reset\n\
             -A FORWARD -m dscp --dscp 46 -j DROP\n\
             -A FORWARD -m pkttype ! --pkt-type unicast -j DROP\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // addrtype as Docker uses it: DNAT only what is addressed to the
    // router itself; a directed broadcast of the outside subnet.
    {
        let mut p = P::default();
        let k = p.syn(C, CL, 40110, "10.1.0.1", 8080);
        p.reply(k, "SA");
        p.syn(C, CL, 40111, "10.2.0.1", 8080);
        p.syn(C, CL, 40112, SV, 8080);
        p.udp(C, CL, 40113, SV, 53);
        p.udp(C, CL, 40114, "10.2.0.255", 53);
        add(
            "addrtype-docker",
            "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
             -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
             -A DOCKER -p tcp --dport 8080 -j DNAT --to-destination 10.2.0.2:80\nCOMMIT\n\
             *filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m addrtype --src-type LOCAL -j DROP\n\
             -A FORWARD -p udp -m addrtype --dst-type UNICAST -j ACCEPT\n\
             -A FORWARD -p tcp -j ACCEPT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // iprange: source, negated destination, both.
    {
        let mut p = P::default();
        for src in ["10.1.0.2", "10.1.0.5", "10.1.0.6"] {
            p.syn(C, src, 40120, SV, 80);
        }
        p.udp(C, CL, 40121, SV, 53);
        p.udp(C, CL, 40122, "10.2.0.3", 53);
        p.ping(C, "10.1.0.8", "10.2.0.3", 12);
        p.ping(C, "10.1.0.7", "10.2.0.3", 13);
        add(
            "iprange",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -p tcp -m iprange --src-range 10.1.0.2-10.1.0.5 -j ACCEPT\n\
             -A FORWARD -p udp -m iprange ! --dst-range 10.2.0.2-10.2.0.2 -j ACCEPT\n\
             -A FORWARD -m iprange --src-range 10.1.0.8-10.1.0.9 --dst-range 10.2.0.2-10.2.0.3 -j ACCEPT\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // conntrack --ctstate: NEW only with SYN, INVALID dropped, RELATED
    // ICMP errors, midstream pick-up of a bare ACK (NEW, not SYN: reset).
    {
        let mut p = P::default();
        p.handshake(C, CL, 40130, SV, 80);
        p.tcp(S, SV, 4444, CL, 40131, "SA");
        p.tcp(C, CL, 40132, SV, 80, "A");
        p.tcp(C, CL, 40133, SV, 80, "SF");
        p.tcp(C, CL, 40134, SV, 80, "F");
        p.tcp(C, CL, 40135, SV, 80, "R");
        let u = p.udp(C, CL, 40136, SV, 53);
        p.reply(u, "udp");
        let u = p.udp(C, CL, 40137, SV, 54);
        p.reply(u, "unreach");
        p.udp(S, SV, 40138, CL, 53);
        add(
            "conntrack-states",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m conntrack --ctstate INVALID -j DROP\n\
             -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A FORWARD -p tcp --syn -m conntrack --ctstate NEW -j ACCEPT\n\
             -A FORWARD -p udp -m conntrack --ctstate NEW -j ACCEPT\n\
             -A FORWARD -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // Fragments through a stateless ruleset (Linux does not reassemble
    // without conntrack) and through a stateful one (it reassembles and
    // fragments again).
    for (name, extra) in [
        ("fragments-stateless", ""),
        (
            "fragments-stateful",
            "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n",
        ),
    ] {
        let mut p = P::default();
        let frag = |dport: u16, sel: &str| {
            format!(
                "fragment(IP(src='{CL}',dst='{SV}',id=4242+{dport})/UDP(sport=40140,dport={dport})/Raw(b'f'*1200),fragsize=600){sel}"
            )
        };
        p.raw(C, &frag(53, ""));
        p.raw(C, &frag(54, ""));
        p.raw(C, &frag(55, "[::-1]"));
        p.raw(C, &frag(56, "[:1]"));
        p.raw(C, &frag(57, "[1:]"));
        add(
            name,
            format!(
                "*filter\n:FORWARD DROP [0:0]\n{extra}\
                 -A FORWARD -p udp --dport 53 -j ACCEPT\n\
                 -A FORWARD -p udp --dport 55:57 -j ACCEPT\nCOMMIT\n"
            ),
            p,
        );
    }

    // Corpus: home-router-openvpn-portfwd.rules.v4 (port forwards with a
    // remap, masquerade). eth0 -> xdlr1, 192.168.1.1 -> 10.1.0.2; the
    // devices only INPUT rules name (lo, eth1, tun0, br0), which this
    // router lacks and xgate refuses to name unconfigured, -> xdlr0 (no
    // probe is for the router itself, so those rules never match).
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40150, "10.2.0.1", 2212);
        p.reply(k, "SA");
        p.syn(S, SV, 40151, "10.2.0.1", 25565);
        p.handshake(C, CL, 40152, SV, 443);
        p.udp(C, CL, 40153, SV, 53);
        add(
            "corpus-home-router-openvpn-portfwd",
            subst(
                &corpus("home-router-openvpn-portfwd.rules.v4"),
                &[
                    ("eth0", "xdlr1"),
                    ("192.168.1.1", "10.1.0.2"),
                    ("-i lo ", "-i xdlr0 "),
                    ("eth1", "xdlr0"),
                    ("tun0", "xdlr0"),
                    ("br0", "xdlr0"),
                ],
            ),
            p,
        );
    }

    // Corpus: debian-vpn-gateway.rules.v4. ens37 (inside) -> xdlr0,
    // ens33 -> xdlr1, 192.168.0.0/24 -> 10.1.0.0/24.
    {
        let mut p = P::default();
        p.handshake(C, CL, 40160, SV, 22);
        p.syn(S, SV, 40161, CL, 22);
        let e = p.ping(C, "10.1.0.3", SV, 14);
        p.reply(e, "echo");
        add(
            "corpus-debian-vpn-gateway",
            subst(
                &corpus("debian-vpn-gateway.rules.v4"),
                &[
                    ("ens37", "xdlr0"),
                    ("ens33", "xdlr1"),
                    ("192.168.0.0/24", "10.1.0.0/24"),
                ],
            ),
            p,
        );
    }

    // Corpus: moyo-router.rules.v4 (INVALID dropped twice, icmp, the
    // bridge's traffic). br-moyo -> xdlr0, eth0 -> xdlr1.
    {
        let mut p = P::default();
        p.tcp(S, SV, 443, CL, 40170, "SA");
        p.syn(S, SV, 40171, CL, 80);
        let k = p.syn(C, CL, 40172, SV, 80);
        p.reply(k, "SA");
        p.ping(S, SV, CL, 15);
        p.tcp(C, CL, 40173, SV, 80, "A");
        add(
            "corpus-moyo-router",
            subst(
                &corpus("moyo-router.rules.v4"),
                &[("br-moyo", "xdlr0"), ("eth0", "xdlr1")],
            ),
            p,
        );
    }

    // Corpus: pi-router-wlan-nat.rules.v4. `lan` -> xdlr0, eth0 -> xdlr1,
    // 192.168.10.0/24 -> 10.1.0.0/24, INPUT's lo -> xdlr0 (as above).
    {
        let mut p = P::default();
        p.handshake(C, CL, 40180, SV, 80);
        p.syn(S, SV, 40181, CL, 80);
        let u = p.udp(C, "10.1.0.4", 40182, SV, 123);
        p.reply(u, "udp");
        add(
            "corpus-pi-router-wlan-nat",
            subst(
                &corpus("pi-router-wlan-nat.rules.v4"),
                &[
                    ("-i lan ", "-i xdlr0 "),
                    ("-i lo ", "-i xdlr0 "),
                    ("eth0", "xdlr1"),
                    ("192.168.10.0/24", "10.1.0.0/24"),
                ],
            ),
            p,
        );
    }

    // Corpus: openwrt-ipilcher.rules.v4 (FORWARD rejects everything with
    // host-prohibited). INPUT's lo -> xdlr0 (as above).
    {
        let mut p = P::default();
        p.syn(C, "10.1.0.2", 40190, SV, 80);
        p.udp(C, "10.1.0.3", 40191, SV, 53);
        p.ping(C, "10.1.0.4", SV, 16);
        p.syn(S, SV, 40192, "10.1.0.5", 22);
        add(
            "corpus-openwrt-ipilcher",
            subst(
                &corpus("openwrt-ipilcher.rules.v4"),
                &[("-i lo ", "-i xdlr0 ")],
            ),
            p,
        );
    }

    // Corpus: rpi-5g-router.rules.v4. wlan0 (inside) -> xdlr0, usb0 ->
    // xdlr1.
    {
        let mut p = P::default();
        let k = p.syn(C, CL, 40200, SV, 80);
        p.reply(k, "SA");
        // Two inside hosts with the same source port to the same server
        // port: the second masquerade must move its port.
        p.with(json!({"from": C, "norm": "ports",
            "pkt": format!("IP(src='10.1.0.3',dst='{SV}')/TCP(sport=40200,dport=80,flags='S')")}));
        p.syn(S, SV, 40201, CL, 22);
        add(
            "corpus-rpi-5g-router",
            subst(
                &corpus("rpi-5g-router.rules.v4"),
                &[("wlan0", "xdlr0"), ("usb0", "xdlr1")],
            ),
            p,
        );
    }

    // TTL expiry against the filter and NAT: Linux checks the TTL before
    // FORWARD (a packet FORWARD would drop still gets "time exceeded"),
    // after PREROUTING's DNAT (the error quotes the packet as sent).
    {
        let mut p = P::default();
        for (dport, ttl) in [(53, 1), (54, 1), (53, 2), (53, 0)] {
            p.raw(
                C,
                &format!(
                    "IP(src='10.1.0.{}',dst='{SV}',ttl={ttl})/UDP(sport=40220,dport={dport})",
                    2 + dport - 53 + 2 * ttl
                ),
            );
        }
        p.raw(
            S,
            &format!("IP(src='{SV}',dst='10.2.0.1',ttl=1)/UDP(sport=40221,dport=5353)"),
        );
        p.raw(
            S,
            "IP(src='10.2.0.3',dst='10.2.0.1',ttl=2)/UDP(sport=40222,dport=5353)",
        );
        add(
            "ttl-expiry",
            "*nat\n:PREROUTING ACCEPT [0:0]\n\
             -A PREROUTING -i xdlr1 -p udp --dport 5353 -j DNAT --to-destination 10.1.0.2:53\n\
             COMMIT\n*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -p udp --dport 53 -j ACCEPT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // Connection tracking's validity checks: TCP window tracking, RST
    // sequence check, flag combinations, checksums, ICMP replies and
    // errors without a connection. Everything NEW or ESTABLISHED passes,
    // INVALID is dropped.
    {
        let mut p = P::default();
        p.handshake(C, CL, 40230, SV, 80);
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40230,dport=80,flags='PA',seq=1001+(1<<30),ack=5001)/Raw(b'far')"
            ),
        );
        p.raw(
            S,
            &format!(
                "IP(src='{SV}',dst='{CL}')/TCP(sport=80,dport=40230,flags='R',seq=5001+(1<<30))"
            ),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40230,dport=80,flags='PA',seq=1006,ack=5001)/Raw(b'more')"
            ),
        );
        p.tcp(C, CL, 40231, SV, 80, "");
        p.tcp(C, CL, 40232, SV, 80, "SR");
        p.tcp(C, CL, 40233, SV, 80, "FPU");
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}')/TCP(sport=40234,dport=80,flags='S',chksum=0x1234)"),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/UDP(sport=40235,dport=53,chksum=0x1234)/Raw(b'bad')"
            ),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}')/UDP(sport=40236,dport=53,chksum=0)/Raw(b'none')"),
        );
        p.raw(
            S,
            &format!("IP(src='{SV}',dst='{CL}')/ICMP(type=0,id=99,seq=1)/Raw(b'pong')"),
        );
        p.raw(
            S,
            &format!(
                "IP(src='{SV}',dst='{CL}')/ICMP(type=3,code=3)/IP(src='{CL}',dst='{SV}')/UDP(sport=40237,dport=53)"
            ),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}')/ICMP(type=13,id=7,seq=1)/Raw(b'x'*12)"),
        );
        add(
            "conntrack-invalid",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m conntrack --ctstate INVALID -j DROP\n\
             -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A FORWARD -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // Without connection tracking: what reaches FORWARD at all (bad IP
    // checksum, IP options, a bad TCP checksum Linux does not check when
    // it forwards), and --tcp-flags / --icmp-type matches; REJECT never
    // answers a RST with a RST, nor an ICMP error with one.
    {
        let mut p = P::default();
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',chksum=0x1234)/UDP(sport=40240,dport=9)"),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}',options=[IPOption_RR(length=11,routers=['0.0.0.0','0.0.0.0'])])/UDP(sport=40241,dport=9)"
            ),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}')/TCP(sport=40242,dport=80,flags='S',chksum=0x1234)"),
        );
        p.tcp(C, CL, 40243, SV, 80, "");
        p.tcp(C, "10.1.0.3", 40244, SV, 80, "SF");
        p.tcp(C, "10.1.0.3", 40245, SV, 80, "SR");
        p.tcp(C, "10.1.0.3", 40246, SV, 80, "SA");
        p.tcp(C, "10.1.0.3", 40247, SV, 22, "A");
        p.syn(C, "10.1.0.3", 40248, SV, 22);
        p.raw(
            C,
            &format!("IP(src='10.1.0.4',dst='{SV}')/ICMP(type=13,id=7,seq=1)/Raw(b'x'*12)"),
        );
        p.raw(
            C,
            &format!(
                "IP(src='10.1.0.5',dst='{SV}')/ICMP(type=3,code=3)/IP(src='{SV}',dst='10.1.0.5')/UDP(sport=53,dport=40249)"
            ),
        );
        p.raw(
            C,
            &format!(
                "IP(src='10.1.0.6',dst='{SV}')/ICMP(type=3,code=1)/IP(src='{SV}',dst='10.1.0.6')/UDP(sport=53,dport=40250)"
            ),
        );
        p.ping(C, "10.1.0.7", SV, 17);
        add(
            "stateless-flags-icmp-types",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -p tcp --tcp-flags ALL NONE -j DROP\n\
             -A FORWARD -p tcp --tcp-flags SYN,FIN SYN,FIN -j DROP\n\
             -A FORWARD -p tcp --tcp-flags SYN,RST SYN,RST -j REJECT --reject-with tcp-reset\n\
             -A FORWARD -p tcp --tcp-flags SYN,ACK SYN,ACK -j REJECT --reject-with tcp-reset\n\
             -A FORWARD -p tcp ! --syn --dport 22 -j DROP\n\
             -A FORWARD -p icmp --icmp-type timestamp-request -j DROP\n\
             -A FORWARD -p icmp --icmp-type port-unreachable -j DROP\n\
             -A FORWARD -p icmp --icmp-type destination-unreachable -j REJECT\n\
             -A FORWARD -p icmp --icmp-type echo-request -j REJECT --reject-with icmp-admin-prohibited\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // NAT port ranges (SNAT keeps a port in its range, DNAT takes the
    // range's first free port) and REJECT of a DNAT'd connection (the
    // answer quotes, and comes from, what the sender sent).
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40260, "10.2.0.1", 9000);
        p.reply(k, "SA");
        p.syn(S, SV, 40261, "10.2.0.1", 9000);
        p.syn(S, SV, 40262, "10.2.0.1", 9005);
        p.syn(S, SV, 40263, "10.2.0.1", 9006);
        p.udp(S, SV, 40264, "10.2.0.1", 9007);
        p.syn(C, CL, 2005, SV, 80);
        p.with(json!({"from": C, "norm": "ports",
            "pkt": format!("IP(src='10.1.0.3',dst='{SV}')/TCP(sport=2005,dport=80,flags='S')")}));
        p.with(json!({"from": C, "norm": "ports",
            "pkt": format!("IP(src='{CL}',dst='{SV}')/TCP(sport=40265,dport=80,flags='S')")}));
        let u = p.udp(C, CL, 40266, SV, 53);
        p.reply(u, "udp");
        add(
            "nat-port-ranges-reject",
            "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             -A PREROUTING -i xdlr1 -p tcp --dport 9000 -j DNAT --to-destination 10.1.0.2:8000-8004\n\
             -A PREROUTING -i xdlr1 -p tcp --dport 9005 -j DNAT --to-destination 10.1.0.2:8005\n\
             -A PREROUTING -i xdlr1 -p tcp --dport 9006 -j DNAT --to-destination 10.1.0.2:8006\n\
             -A PREROUTING -i xdlr1 -p udp --dport 9007 -j DNAT --to-destination 10.1.0.2:8007\n\
             -A POSTROUTING -o xdlr1 -p tcp -j SNAT --to-source 10.2.0.1:2000-2010\n\
             -A POSTROUTING -o xdlr1 -p udp -j SNAT --to-source 10.2.0.1\nCOMMIT\n\
             *filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -d 10.1.0.2 -p tcp --dport 8005 -j REJECT\n\
             -A FORWARD -d 10.1.0.2 -p tcp --dport 8006 -j REJECT --reject-with tcp-reset\n\
             -A FORWARD -d 10.1.0.2 -p udp --dport 8007 -j REJECT --reject-with icmp-host-prohibited\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // A port forward used from the inside (hairpin), with masquerade
    // only out of the outside port: Linux rewrites the destination alone
    // and sends the packet back out of the port it came in by.
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40270, "10.2.0.1", 8080);
        p.reply(k, "SA");
        p.syn(C, "10.1.0.3", 40271, "10.2.0.1", 8080);
        p.udp(C, "10.1.0.3", 40272, "10.2.0.1", 8081);
        add(
            "hairpin-port-forward",
            "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             -A PREROUTING -d 10.2.0.1 -p tcp --dport 8080 -j DNAT --to-destination 10.1.0.10:80\n\
             -A PREROUTING -d 10.2.0.1 -p udp --dport 8081 -j DNAT --to-destination 10.1.0.10:53\n\
             -A POSTROUTING -o xdlr1 -j MASQUERADE\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // Connection marks and untracked packets: CONNMARK saves the first
    // packet's mark for the replies; raw NOTRACK leaves a flow UNTRACKED.
    {
        let mut p = P::default();
        let k = p.syn(C, CL, 40280, SV, 80);
        p.reply(k, "SA");
        let k = p.syn(C, CL, 40281, SV, 81);
        p.reply(k, "SA");
        let u = p.udp(C, CL, 40282, SV, 5000);
        p.reply(u, "udp");
        let u = p.udp(C, CL, 40283, SV, 5001);
        p.reply(u, "udp");
        add(
            "connmark-notrack",
            "*raw\n:PREROUTING ACCEPT [0:0]\n\
             -A PREROUTING -p udp --dport 5000 -j NOTRACK\n\
             -A PREROUTING -p udp --sport 5000 -j NOTRACK\nCOMMIT\n\
             *mangle\n:PREROUTING ACCEPT [0:0]\n\
             -A PREROUTING -j CONNMARK --restore-mark\n\
             -A PREROUTING -m mark --mark 0 -p tcp --dport 80 -j MARK --set-mark 5\n\
             -A PREROUTING -j CONNMARK --save-mark\nCOMMIT\n\
             *filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m connmark --mark 5 -p tcp --sport 80 -j DROP\n\
             -A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\n\
             -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
             -A FORWARD -m conntrack --ctstate NEW -p tcp -j ACCEPT\n\
             -A FORWARD -m conntrack --ctstate NEW -p udp --dport 5001 -j ACCEPT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // -m mac: the client's port has a fixed MAC (CLIENT_MAC).
    {
        let mut p = P::default();
        p.syn(C, CL, 40290, SV, 80);
        p.with(json!({"from": C, "pkt": format!(
            "Ether(src='02:00:00:00:0c:99')/IP(src='10.1.0.3',dst='{SV}')/TCP(sport=40291,dport=80,flags='S')")}));
        p.syn(S, SV, 40292, CL, 80);
        add(
            "mac-source",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m mac --mac-source 02:00:00:00:0C:02 -j ACCEPT\n\
             -A FORWARD -m mac ! --mac-source 02:00:00:00:0c:02 -i xdlr0 -j REJECT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // The router's own addresses: INPUT's verdicts on pings and the
    // answers REJECT gives; a UDP port INPUT accepts that nothing
    // listens on (Linux's stack answers "port unreachable").
    {
        let mut p = P::default();
        p.ping(C, CL, "10.1.0.1", 18);
        p.ping(C, "10.1.0.3", "10.1.0.1", 19);
        p.ping(C, CL, "10.2.0.1", 20);
        p.syn(C, CL, 40300, "10.1.0.1", 23);
        p.udp(C, "10.1.0.4", 40301, "10.1.0.1", 69);
        p.udp(C, "10.1.0.5", 40302, "10.1.0.1", 5000);
        p.syn(C, "10.1.0.6", 40303, "10.1.0.1", 22);
        add(
            "input-local",
            "*filter\n:INPUT DROP [0:0]\n\
             -A INPUT -p icmp --icmp-type echo-request -s 10.1.0.2 -j ACCEPT\n\
             -A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset\n\
             -A INPUT -p udp --dport 69 -j REJECT\n\
             -A INPUT -p udp --dport 5000 -j ACCEPT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // What a router forwards at all (no rules): martian sources and
    // destinations, the subnets' broadcast and network addresses, a
    // source from the other side (the Linux router's rp_filter is 0:
    // xgate has no reverse-path filter).
    {
        let mut p = P::default();
        for src in [
            "127.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "240.0.0.1",
            "10.1.0.1",
            "10.1.0.255",
            "10.2.0.50",
            "10.9.9.9",
        ] {
            p.raw(
                C,
                &format!("IP(src='{src}',dst='{SV}')/UDP(sport=40310,dport=9)/Raw(b'src')"),
            );
        }
        for dst in [
            "127.0.0.1",
            "10.1.0.255",
            "255.255.255.255",
            "10.2.0.0",
            "10.2.0.255",
            "0.0.0.0",
            "10.9.9.9",
        ] {
            p.raw(
                C,
                &format!("IP(src='{CL}',dst='{dst}')/UDP(sport=40311,dport=9)/Raw(b'dst')"),
            );
        }
        add(
            "routing-martians",
            "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n".into(),
            p,
        );
    }

    // A connection's end: a valid RST, then data on the closed
    // connection, then a new SYN on the same ports; a FIN exchange, then
    // data after it.
    {
        let mut p = P::default();
        p.handshake(C, CL, 40320, SV, 80);
        p.raw(
            S,
            &format!("IP(src='{SV}',dst='{CL}')/TCP(sport=80,dport=40320,flags='R',seq=5001)"),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40320,dport=80,flags='PA',seq=1006,ack=5001)/Raw(b'late')"
            ),
        );
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}')/TCP(sport=40320,dport=80,flags='S',seq=9000)"),
        );
        p.handshake(C, CL, 40321, SV, 80);
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40321,dport=80,flags='FA',seq=1006,ack=5001)"
            ),
        );
        p.raw(
            S,
            &format!(
                "IP(src='{SV}',dst='{CL}')/TCP(sport=80,dport=40321,flags='FA',seq=5001,ack=1007)"
            ),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40321,dport=80,flags='A',seq=1007,ack=5002)"
            ),
        );
        p.raw(
            C,
            &format!(
                "IP(src='{CL}',dst='{SV}')/TCP(sport=40321,dport=80,flags='PA',seq=1007,ack=5002)/Raw(b'after')"
            ),
        );
        p.raw(
            S,
            &format!("IP(src='{SV}',dst='{CL}')/ICMP(type=0,id=77,seq=1)/Raw(b'pong')"),
        );
        add(
            "tcp-close",
            "*filter\n:FORWARD DROP [0:0]\n\
             -A FORWARD -m conntrack --ctstate INVALID -j DROP\n\
             -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A FORWARD -p tcp --syn -m conntrack --ctstate NEW -j ACCEPT\n\
             -A FORWARD -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // Negations, interface wildcards, comments and a never-true
    // statistic.
    {
        let mut p = P::default();
        p.udp(S, SV, 40330, CL, 53);
        // Not dropped (-o is the outside port), and back out where it came.
        p.udp(S, SV, 40331, "10.2.0.3", 53);
        p.udp(C, "10.1.0.4", 40332, SV, 53);
        p.udp(C, "10.1.0.4", 40333, SV, 54);
        p.syn(C, "10.1.0.5", 40334, SV, 1500);
        p.syn(C, "10.1.0.5", 40335, SV, 2500);
        p.syn(C, "10.1.0.6", 40336, SV, 80);
        p.ping(C, "10.1.0.6", SV, 21);
        p.syn(C, "10.1.0.7", 40337, SV, 80);
        p.tcp(C, "10.1.0.7", 40338, SV, 80, "A");
        p.ping(C, "10.1.0.8", SV, 22);
        add(
            "negations-wildcards",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD ! -s 10.1.0.0/24 -i xdlr+ -o xdlr0 -p udp -j DROP\n\
             -A FORWARD -p udp ! --dport 53 -s 10.1.0.4 -j DROP\n\
             -A FORWARD -p tcp ! --dport 1000:2000 -s 10.1.0.5 -j DROP\n\
             -A FORWARD ! -p tcp -s 10.1.0.6 -j DROP\n\
             -A FORWARD -p tcp ! --tcp-flags SYN,ACK SYN -s 10.1.0.7 -j DROP\n\
             -A FORWARD -m comment --comment \"never\" -m statistic --mode random --probability 0.0 -j DROP\n\
             COMMIT\n"
                .into(),
            p,
        );
    }

    // A non-contiguous netmask (iptables-save writes it dotted).
    {
        let mut p = P::default();
        p.syn(C, "10.1.0.3", 40340, SV, 80);
        add(
            "netmask-noncontiguous",
            "*filter\n:FORWARD ACCEPT [0:0]\n\
             -A FORWARD -s 10.1.0.3/255.255.0.255 -j REJECT\nCOMMIT\n"
                .into(),
            p,
        );
    }

    // nftables: seed 000's site and the conntrack case in nft's language
    // (run when xgate accepts `[firewall] nft`).
    {
        let mut p = P::default();
        p.handshake(C, CL, 40210, SV, 80);
        p.syn(S, SV, 40211, CL, 22);
        p.tcp(S, SV, 4444, CL, 40212, "SA");
        let u = p.udp(C, CL, 40213, SV, 53);
        p.reply(u, "udp");
        p.syn(C, "10.1.0.3", 40214, SV, 23);
        v.push(Case {
            name: "nft-masquerade-ct",
            lang: Lang::Nft,
            ruleset: "table ip filter {\n\
                 chain forward {\n type filter hook forward priority 0; policy drop;\n\
                 ct state invalid drop\n ct state established,related accept\n\
                 iifname \"xdlr0\" oifname \"xdlr1\" tcp dport != 23 accept\n\
                 iifname \"xdlr0\" oifname \"xdlr1\" udp dport 53 accept\n\
                 tcp dport 23 reject with tcp reset\n }\n}\n\
                 table ip nat {\n chain postrouting {\n type nat hook postrouting priority 100; policy accept;\n\
                 oifname \"xdlr1\" masquerade\n }\n}\n"
                .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    // nftables: sets, ranges, limit, mark, reject, DNAT and masquerade.
    {
        let mut p = P::default();
        for port in [22, 81, 8443] {
            p.syn(C, CL, 40220, SV, port);
        }
        p.udp(C, "10.1.0.5", 40221, SV, 53);
        p.udp(C, "10.1.0.6", 40222, SV, 53);
        p.udp(C, "10.1.0.7", 40223, SV, 9);
        for id in 0..4 {
            p.ping(C, CL, SV, 200 + id);
        }
        p.raw(
            C,
            &format!("IP(src='{CL}',dst='{SV}',ttl=5)/TCP(sport=40224,dport=22,flags='S')"),
        );
        let k = p.syn(S, SV, 40225, "10.2.0.1", 8080);
        p.reply(k, "SA");
        v.push(Case {
            name: "nft-sets-limit-dnat",
            lang: Lang::Nft,
            ruleset: "table ip filter {\n\
                  chain prerouting {\n\
                  type filter hook prerouting priority -150; policy accept;\n\
                  tcp dport 81 meta mark set 0x1\n\
                  }\n\
                  chain forward {\n\
                  type filter hook forward priority 0; policy drop;\n\
                  ct state established,related accept\n\
                  meta mark 0x1 reject\n\
                  tcp dport { 22, 80, 81, 443 } accept\n\
                  ip saddr 10.1.0.2-10.1.0.5 udp dport 53 accept\n\
                  icmp type echo-request limit rate 1/minute burst 3 packets accept\n\
                  ip ttl < 5 drop\n\
                  udp dport 9 counter reject with icmp type host-prohibited\n\
                  }\n\
                 }\n\
                 table ip nat {\n\
                  chain prerouting {\n\
                  type nat hook prerouting priority -100; policy accept;\n\
                  iifname \"xdlr1\" tcp dport 8080 dnat to 10.1.0.2:80\n\
                  }\n\
                  chain postrouting {\n\
                  type nat hook postrouting priority 100; policy accept;\n\
                  oifname \"xdlr1\" masquerade\n\
                  }\n\
                 }\n"
            .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    // nftables: the inet family, two base chains on one hook (an accept
    // in the first does not end the second), named and concatenated
    // sets, a verdict map on ct state, jump/goto/return, th, ip length,
    // dscp, reject, fib daddr type, numgen round robin DNAT.
    {
        let mut p = P::default();
        let k = p.syn(C, CL, 40350, SV, 22);
        p.reply(k, "SA");
        p.syn(C, CL, 40351, SV, 80);
        p.syn(C, CL, 40352, "10.2.0.3", 80);
        p.syn(C, "10.1.0.9", 40353, SV, 22);
        p.syn(C, "10.1.0.8", 40354, SV, 22);
        for dport in [53, 54, 55] {
            p.udp(C, "10.1.0.3", 40355, SV, dport);
        }
        p.raw(
            C,
            &format!("IP(src='10.1.0.4',dst='{SV}')/UDP(sport=40356,dport=56)/Raw(b'x'*100)"),
        );
        p.udp(C, "10.1.0.4", 40357, SV, 7500);
        p.ping(C, "10.1.0.5", SV, 30);
        p.raw(
            C,
            &format!("IP(src='10.1.0.5',dst='{SV}',tos=0x20)/ICMP(type=8,id=31,seq=1)"),
        );
        for sport in [40358, 40359, 40360] {
            p.syn(S, SV, sport, "10.2.0.1", 8080);
        }
        p.udp(S, "10.2.0.3", 40361, "10.2.0.1", 9999);
        v.push(Case {
            name: "nft-inet-chains-maps",
            lang: Lang::Nft,
            ruleset: "table inet fw {\n\
                  set blocked {\n\
                  type ipv4_addr\n\
                  elements = { 10.1.0.9, 10.1.0.10 }\n\
                  }\n\
                  set svc {\n\
                  type ipv4_addr . inet_service\n\
                  elements = { 10.2.0.2 . 22, 10.2.0.3 . 80 }\n\
                  }\n\
                  chain early {\n\
                  type filter hook forward priority -10; policy accept;\n\
                  ip saddr 10.1.0.8 accept\n\
                  ip saddr @blocked drop\n\
                  }\n\
                  chain forward {\n\
                  type filter hook forward priority 0; policy drop;\n\
                  ct state vmap { established : accept, related : accept, invalid : drop }\n\
                  ct status dnat accept\n\
                  ip saddr 10.1.0.8 reject with icmp type admin-prohibited\n\
                  ip daddr . tcp dport @svc accept\n\
                  meta l4proto udp jump udpchk\n\
                  ip protocol icmp goto icmpchk\n\
                  th dport 7000-7999 accept\n\
                  }\n\
                  chain udpchk {\n\
                  udp dport 53 accept\n\
                  udp dport 54 return\n\
                  ip length > 100 drop\n\
                  udp dport 55 reject\n\
                  }\n\
                  chain icmpchk {\n\
                  icmp type echo-request ip dscp cs1 drop\n\
                  icmp type echo-request accept\n\
                  }\n\
                 }\n\
                 table ip nat {\n\
                  chain pre {\n\
                  type nat hook prerouting priority dstnat; policy accept;\n\
                  fib daddr type local tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 10.1.0.10, 1 : 10.1.0.11 }\n\
                  ip saddr 10.2.0.3 udp dport 9999 dnat to 10.1.0.2:53\n\
                  }\n\
                  chain post {\n\
                  type nat hook postrouting priority srcnat; policy accept;\n\
                  oifname \"xdlr1\" ip saddr 10.1.0.0/24 snat to 10.2.0.1\n\
                  }\n\
                 }\n"
                .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    // icmpx (the family-agnostic reject) in a rule that matches IPv4
    // only: nft takes it.
    {
        let mut p = P::default();
        p.syn(C, "10.1.0.8", 40362, SV, 22);
        v.push(Case {
            name: "nft-icmpx-ipv4-rule",
            lang: Lang::Nft,
            ruleset: "table inet fw {\n\
                 chain forward {\n\
                 type filter hook forward priority 0; policy accept;\n\
                 ip saddr 10.1.0.8 reject with icmpx type admin-prohibited\n\
                 }\n\
                 }\n"
            .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    // ipsets (`-m set`): a hash:net of banned sources and a hash:ip,port
    // of published services, loaded by `ipset restore` into the Linux
    // router and given as `[firewall] ipsets` to xgate.
    {
        let mut p = P::default();
        p.handshake(C, CL, 40300, SV, 22);
        let u = p.udp(C, CL, 40301, SV, 53);
        p.reply(u, "udp");
        p.syn(C, CL, 40302, SV, 80);
        p.udp(C, CL, 40303, SV, 22);
        p.syn(C, "10.1.0.3", 40304, SV, 22);
        p.udp(C, "10.1.0.9", 40305, SV, 53);
        p.syn(C, "10.1.0.12", 40306, SV, 22);
        v.push(Case {
            name: "ipset-match-set",
            lang: Lang::Iptables,
            ruleset: "*filter\n:FORWARD DROP [0:0]\n\
                 -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
                 -A FORWARD -m set --match-set banned src -j DROP\n\
                 -A FORWARD -i xdlr0 -m set --match-set svc dst,dst -j ACCEPT\n\
                 COMMIT\n"
                .into(),
            ipsets: "create banned hash:net family inet hashsize 1024 maxelem 65536\n\
                 add banned 10.1.0.3\n\
                 add banned 10.1.0.8/30\n\
                 create svc hash:ip,port family inet hashsize 1024 maxelem 65536\n\
                 add svc 10.2.0.2,tcp:22\n\
                 add svc 10.2.0.2,udp:53\n",
            probes: p.0,
        });
    }
    // kube-proxy's `! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`: "none
    // of them", which an INVALID packet (no connection) also is.
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40320, "10.2.0.1", 8080);
        p.reply(k, "SA");
        p.syn(C, CL, 40321, SV, 80);
        p.tcp(S, SV, 40322, "10.2.0.1", 8080, "SF");
        p.tcp(C, CL, 40323, SV, 80, "SF");
        v.push(Case {
            name: "ctstate-not-dnat",
            lang: Lang::Iptables,
            ruleset: "*nat\n\
                 -A PREROUTING -i xdlr1 -p tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80\n\
                 COMMIT\n\
                 *filter\n\
                 -A FORWARD -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n\
                 COMMIT\n"
                .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    // Scripts, run: a gateway script with a function, loops and a
    // start/stop case (tests/diff_linux/gateway.sh), and the corpus's
    // ustc-mgt-nat.rc.firewall (eth0 -> xdlr1; its conntrack timeouts are
    // set in the Linux router, and fail harmlessly in import's sandbox).
    {
        let mut p = P::default();
        p.handshake(C, CL, 40330, SV, 443);
        p.syn(S, SV, 40331, CL, 22);
        p.syn(S, SV, 40332, CL, 80);
        p.syn(S, SV, 40333, CL, 23);
        let u = p.udp(S, SV, 40334, CL, 53);
        p.reply(u, "udp");
        p.udp(S, SV, 40335, CL, 54);
        p.syn(S, "10.2.0.66", 40336, CL, 22);
        p.udp(S, "10.2.0.77", 40337, CL, 53);
        p.syn(S, "10.2.0.78", 40338, CL, 22);
        v.push(Case {
            name: "script-gateway",
            lang: Lang::Script,
            ruleset: std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/diff_linux/gateway.sh"
            ))
            .unwrap(),
            ipsets: "",
            probes: p.0,
        });
        let mut p = P::default();
        p.handshake(C, CL, 40340, SV, 80);
        p.syn(C, CL, 40341, SV, 445);
        p.syn(S, SV, 40342, CL, 445);
        p.udp(C, "10.1.0.3", 40343, SV, 53);
        v.push(Case {
            name: "corpus-ustc-mgt-nat-script",
            lang: Lang::Script,
            ruleset: subst(&corpus("ustc-mgt-nat.rc.firewall"), &[("eth0", "xdlr1")]),
            ipsets: "",
            probes: p.0,
        });
    }
    // --ctstate DNAT: FORWARD opened only for what a DNAT rule forwarded.
    {
        let mut p = P::default();
        let k = p.syn(S, SV, 40310, "10.2.0.1", 8080);
        p.reply(k, "SA");
        p.syn(S, SV, 40311, CL, 80);
        p.syn(S, SV, 40312, "10.2.0.1", 8081);
        v.push(Case {
            name: "ctstate-dnat",
            lang: Lang::Iptables,
            ruleset: "*nat\n\
                 -A PREROUTING -i xdlr1 -p tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:80\n\
                 COMMIT\n\
                 *filter\n:FORWARD DROP [0:0]\n\
                 -A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n\
                 COMMIT\n"
                .into(),
            ipsets: "",
            probes: p.0,
        });
    }
    v
}

// ---------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------

fn xgate_config(c: &Case) -> String {
    let sets = if c.ipsets.is_empty() {
        String::new()
    } else {
        format!("ipsets = \"\"\"\n{}\"\"\"\n", c.ipsets)
    };
    let fw = match c.lang {
        Lang::Iptables => format!("[firewall]\n{sets}rules = \"\"\"\n{}\"\"\"\n", c.ruleset),
        Lang::Nft => format!("[firewall]\nnft = \"\"\"\n{}\"\"\"\n", c.ruleset),
        Lang::Script => script_import(c),
    };
    format!(
        "[dataplane]\nworkers = 1\nflows = 65536\n\n\
         [[interface]]\nname = \"xdlr0\"\ndevice = \"xdlr0\"\naddress = [\"10.1.0.1/24\"]\n\n\
         [[interface]]\nname = \"xdlr1\"\ndevice = \"xdlr1\"\naddress = [\"10.2.0.1/24\"]\n\n{fw}"
    )
}

/// The `[firewall]` block `xgate import-iptables --run SCRIPT start`
/// prints for a script case (the import must succeed whole).
fn script_import(c: &Case) -> String {
    let dir = std::env::temp_dir().join(format!("xdl-{}-script", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(format!("{}.sh", c.name));
    std::fs::write(&f, &c.ruleset).unwrap();
    let out = Command::new(XGATE)
        .args(["import-iptables", "--run"])
        .arg(&f)
        .arg("start")
        .output()
        .expect("xgate import-iptables");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}: import-iptables --run failed:\n{}",
        c.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Why xgate cannot take this case's ruleset (`xgate check`'s errors).
fn xgate_refuses(c: &Case) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("xdl-{}-check", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(format!("{}.toml", c.name));
    std::fs::write(&f, xgate_config(c)).unwrap();
    let out = Command::new(XGATE)
        .args(["check", "--config"])
        .arg(&f)
        .output()
        .expect("xgate check");
    let _ = std::fs::remove_dir_all(&dir);
    (!out.status.success()).then(|| {
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    })
}

fn run_linux(pr: &mut Prober, c: &Case) -> Vec<String> {
    let t = Topo::new();
    ipn(&t.r, &["addr", "add", "10.1.0.1/24", "dev", "xdlr0"]);
    ipn(&t.r, &["addr", "add", "10.2.0.1/24", "dev", "xdlr1"]);
    exec(&t.r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // A new namespace inherits the machine's IPv4 settings: make the ones
    // that decide what is forwarded the kernel's defaults, whatever the
    // machine has (xgate has no reverse-path filter).
    for key in ["all", "default", "xdlr0", "xdlr1"] {
        exec(
            &t.r,
            &["sysctl", "-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")],
        );
        exec(
            &t.r,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{key}.accept_local=0"),
            ],
        );
    }
    if !c.ipsets.is_empty() {
        sh(Some(&t.r), &["ipset", "restore"], Some(c.ipsets))
            .unwrap_or_else(|e| panic!("{}: ipset restore: {e}", c.name));
    }
    let load = match c.lang {
        Lang::Iptables => sh(Some(&t.r), &["iptables-restore"], Some(&c.ruleset)),
        Lang::Nft => sh(Some(&t.r), &["nft", "-f", "-"], Some(&c.ruleset)),
        Lang::Script => sh(Some(&t.r), &["bash", "-s", "start"], Some(&c.ruleset)),
    };
    load.unwrap_or_else(|e| panic!("{}: Linux refuses the ruleset: {e}", c.name));
    pr.probe(&t, &c.probes)
}

fn run_xgate(pr: &mut Prober, c: &Case) -> Vec<String> {
    let t = Topo::new();
    exec(&t.r, &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    let x = Xgate::start(XGATE, &t.r, &xgate_config(c));
    assert!(
        x.log().contains("xgate: running"),
        "{}: xgate did not start:\n{}",
        c.name,
        x.log()
    );
    let obs = pr.probe(&t, &c.probes);
    let exit = x.stop();
    assert!(
        exit.success,
        "{}: xgate did not exit cleanly:\n{}",
        c.name, exit.log
    );
    obs
}

/// Why this machine cannot run the comparison (None: it can).
fn skip_reason() -> Option<String> {
    if let Some(r) = xgate_testbed::skip_reason() {
        return Some(r);
    }
    for (prog, arg, what) in [
        ("iptables-restore", "--version", "iptables (iptables-nft)"),
        ("ethtool", "--version", "ethtool"),
    ] {
        if Command::new(prog).arg(arg).output().is_err() {
            return Some(format!(
                "{prog} missing: install {what} (scripts/setup-debian.sh)"
            ));
        }
    }
    let ok = Command::new(PYTHON)
        .args(["-c", "import scapy.all"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Some("python3-scapy missing (scripts/setup-debian.sh)".into());
    }
    if !std::path::Path::new("/usr/sbin/ipset").exists() {
        return Some("ipset missing (scripts/setup-debian.sh)".into());
    }
    None
}

#[test]
fn firewall_verdicts_and_nat_match_linux() {
    if let Some(r) = skip_reason() {
        eprintln!("skipped: {r}");
        return;
    }
    let started = Instant::now();
    let mut pr = Prober::start();
    let mut unexpected = Vec::new();
    let mut known_seen = Vec::new();
    let mut summary = BTreeMap::new();
    let only = std::env::var("XDL_CASES").ok();
    for c in cases() {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|p| c.name.starts_with(p)))
        {
            continue;
        }
        if let Some(why) = xgate_refuses(&c) {
            if c.lang == Lang::Nft && std::env::var_os("XDL_NFT_LINUX_ONLY").is_some() {
                // Checks the Linux half of an nft case before xgate takes it.
                for (i, l) in run_linux(&mut pr, &c).iter().enumerate() {
                    eprintln!("{} #{i} {}\n  linux {l}", c.name, c.probes[i]);
                }
                summary.insert(c.name, "Linux side only (XDL_NFT_LINUX_ONLY)".to_string());
                continue;
            }
            if c.lang == Lang::Nft && why.contains("firewall.nft: unknown key") {
                // Before xgate took [firewall] nft.
                eprintln!(
                    "skipped case {}: xgate check refuses it: {}",
                    c.name,
                    why.trim()
                );
                summary.insert(c.name, "skipped (nft not accepted yet)".to_string());
                continue;
            }
            if KNOWN_REFUSED
                .iter()
                .any(|k| k.0 == c.name && why.contains(k.1))
            {
                // Linux must take it, or it is no difference.
                run_linux(&mut pr, &c);
                eprintln!(
                    "known difference: {}: Linux loads the ruleset, xgate check refuses it: {}",
                    c.name,
                    why.trim()
                );
                summary.insert(c.name, "known difference: refused by xgate".to_string());
                continue;
            }
            panic!(
                "{}: xgate check refuses the ruleset:\n{why}\n{}",
                c.name, c.ruleset
            );
        }
        if c.lang == Lang::Nft && Command::new("nft").arg("--version").output().is_err() {
            eprintln!(
                "skipped case {}: nft missing: install nftables (scripts/setup-debian.sh)",
                c.name
            );
            summary.insert(c.name, "skipped (no nft)".to_string());
            continue;
        }
        let linux = run_linux(&mut pr, &c);
        let xgate = run_xgate(&mut pr, &c);
        assert_eq!(linux.len(), c.probes.len());
        let mut same = 0;
        for (i, (l, x)) in linux.iter().zip(&xgate).enumerate() {
            if l == x {
                same += 1;
                continue;
            }
            let probe = c.probes[i].to_string();
            let row = (c.name, i, probe, l.clone(), x.clone());
            if KNOWN
                .iter()
                .any(|k| (k.0, k.1, k.2) == (c.name, i, l.as_str()) && glob(k.3, x))
            {
                known_seen.push(row);
            } else {
                unexpected.push(row);
            }
        }
        summary.insert(c.name, format!("{same}/{} probes identical", linux.len()));
        if std::env::var_os("XDL_VERBOSE").is_some() {
            for (i, (l, x)) in linux.iter().zip(&xgate).enumerate() {
                eprintln!("{} #{i} {}\n  linux {l}\n  xgate {x}", c.name, c.probes[i]);
            }
        }
    }
    eprintln!("diff_linux: {} s", started.elapsed().as_secs());
    for (name, s) in &summary {
        eprintln!("  {name:40} {s}");
    }
    let table = |rows: &[(&str, usize, String, String, String)]| {
        let mut s = String::new();
        for (name, i, probe, l, x) in rows {
            s += &format!("{name} probe #{i}: {probe}\n    linux: {l}\n    xgate: {x}\n");
        }
        s
    };
    if !known_seen.is_empty() {
        eprintln!("known differences from Linux:\n{}", table(&known_seen));
    }
    for k in KNOWN {
        if summary.contains_key(k.0) && !known_seen.iter().any(|r| (r.0, r.1) == (k.0, k.1)) {
            eprintln!("known difference no longer seen: {} probe #{}", k.0, k.1);
        }
    }
    assert!(
        unexpected.is_empty(),
        "xgate differs from Linux:\n{}",
        table(&unexpected)
    );
}
