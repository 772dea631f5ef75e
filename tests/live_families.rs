//! The same iptables / ip6tables rules through the Linux kernel and
//! through xgate: the same verdicts per family. The kernel side is a
//! router namespace forwarding with `iptables-restore` and
//! `ip6tables-restore` loaded (iptables-nft), a UDP datagram of each
//! family sent from a client namespace to a server namespace through it
//! (namespaces `xgf-<pid>-*`, removed on every exit); xgate's side is the
//! same rules in `rules_v4` / `rules_v6` on an in-memory worker, and the
//! same datagrams.
//!
//! Skipped (with the reason printed) when not root, or when the kernel
//! or the host lacks namespaces, veth or iptables-nft.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use etherparse::PacketBuilder;

/// Namespaces created so far; deleted on drop (a failing test too).
struct Spaces(Vec<String>);

impl Drop for Spaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn run(ns: Option<&str>, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
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
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{args:?}: {e}"))?;
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// client -- router -- server, dual stack; the router forwards.
fn kernel_topology() -> Result<(Spaces, String, String, String), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let p = std::process::id();
    let (c, r, s) = (
        format!("xgf-{p}-c"),
        format!("xgf-{p}-r"),
        format!("xgf-{p}-s"),
    );
    let mut spaces = Spaces(Vec::new());
    for n in [&c, &r, &s] {
        run(None, &["ip", "netns", "add", n], None)?;
        spaces.0.push(n.clone());
        run(Some(n), &["ip", "link", "set", "lo", "up"], None)?;
    }
    run(
        None,
        &[
            "ip", "link", "add", "c0", "netns", &c, "type", "veth", "peer", "name", "r0", "netns",
            &r,
        ],
        None,
    )?;
    run(
        None,
        &[
            "ip", "link", "add", "r1", "netns", &r, "type", "veth", "peer", "name", "s0", "netns",
            &s,
        ],
        None,
    )?;
    for (n, dev, a4, a6) in [
        (&c, "c0", "10.1.0.2/24", "fd01::2/64"),
        (&r, "r0", "10.1.0.1/24", "fd01::1/64"),
        (&r, "r1", "10.2.0.1/24", "fd02::1/64"),
        (&s, "s0", "10.2.0.2/24", "fd02::2/64"),
    ] {
        run(Some(n), &["ip", "addr", "add", a4, "dev", dev], None)?;
        run(
            Some(n),
            &["ip", "addr", "add", a6, "dev", dev, "nodad"],
            None,
        )?;
        run(Some(n), &["ip", "link", "set", dev, "up"], None)?;
    }
    for (n, v4, v6) in [(&c, "10.1.0.1", "fd01::1"), (&s, "10.2.0.1", "fd02::1")] {
        run(Some(n), &["ip", "route", "add", "default", "via", v4], None)?;
        run(
            Some(n),
            &["ip", "-6", "route", "add", "default", "via", v6],
            None,
        )?;
    }
    run(Some(&r), &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
    run(
        Some(&r),
        &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        None,
    )?;
    Ok((spaces, c, s, r))
}

/// (IPv4 datagram delivered, IPv6 datagram delivered) through the kernel
/// router.
fn kernel(c: &str, s: &str, r: &str, v4: &str, v6: &str) -> Result<(bool, bool), String> {
    run(Some(r), &["iptables-restore"], Some(v4))?;
    run(Some(r), &["ip6tables-restore"], Some(v6))?;
    let mut got = (false, false);
    for (i, (bind, dst)) in [
        ("0.0.0.0:9999", "10.2.0.2:9999"),
        ("[::]:9999", "[fd02::2]:9999"),
    ]
    .into_iter()
    .enumerate()
    {
        let server = xgate_testbed::in_ns(s, move || {
            let sock = UdpSocket::bind(bind).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let mut buf = [0u8; 64];
            sock.recv(&mut buf).is_ok()
        });
        std::thread::sleep(Duration::from_millis(200));
        xgate_testbed::in_ns(c, move || {
            // Twice: the first may wait on neighbour resolution.
            let sock = UdpSocket::bind(if i == 0 { "0.0.0.0:0" } else { "[::]:0" }).unwrap();
            for _ in 0..2 {
                let _ = sock.send_to(b"probe", dst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .join()
        .unwrap();
        let ok = server.join().unwrap();
        if i == 0 {
            got.0 = ok;
        } else {
            got.1 = ok;
        }
    }
    Ok(got)
}

const CFG: &str = r#"
[[interface]]
name = "lan"
device = "r0"
mac = "02:00:00:00:00:01"
address = ["10.1.0.1/24", "fd01::1/64"]

[[interface]]
name = "wan"
device = "r1"
mac = "02:00:00:00:00:02"
address = ["10.2.0.1/24", "fd02::1/64"]

[[neighbor]]
ip = "10.2.0.2"
mac = "02:bb:00:00:00:02"
dev = "wan"

[[neighbor]]
ip = "fd02::2"
mac = "02:bb:00:00:00:02"
dev = "wan"

[[neighbor]]
ip = "10.1.0.2"
mac = "02:aa:00:00:00:02"
dev = "lan"

[[neighbor]]
ip = "fd01::2"
mac = "02:aa:00:00:00:02"
dev = "lan"
"#;

/// (IPv4 datagram forwarded, IPv6 datagram forwarded) by xgate.
fn xgate(v4: &str, v6: &str) -> (bool, bool) {
    let config = format!(
        "{CFG}\n[firewall]\nrules_v4 = \"\"\"\n{v4}\"\"\"\nrules_v6 = \"\"\"\n{v6}\"\"\"\n"
    );
    let cfg = xgate_control::parse(&config, "t.toml").unwrap();
    let compiled = xgate_control::replay::compile_for_replay(&cfg).unwrap();
    let shared = Arc::new(xgate_control::compile::shared_state(
        &compiled,
        1024,
        Some(1),
    ));
    let mut w =
        xgate_dataplane::io::memory::MemoryWorker::new(Arc::new(compiled.tables), shared, 1024);
    let host = [2, 0xaa, 0, 0, 0, 2];
    let gw = [2, 0, 0, 0, 0, 1];
    let mut f4 = Vec::new();
    PacketBuilder::ethernet2(host, gw)
        .ipv4([10, 1, 0, 2], [10, 2, 0, 2], 64)
        .udp(4000, 9999)
        .write(&mut f4, b"probe")
        .unwrap();
    let mut f6 = Vec::new();
    let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    PacketBuilder::ethernet2(host, gw)
        .ipv6(a("fd01::2"), a("fd02::2"), 64)
        .udp(4000, 9999)
        .write(&mut f6, b"probe")
        .unwrap();
    let mut got = (false, false);
    for (i, f) in [f4, f6].iter().enumerate() {
        w.receive(0, &[f.as_slice()], 1_000_000_000).unwrap();
        w.drain(|port, frame| {
            if port == 1 && frame.len() > 14 {
                let et = u16::from_be_bytes([frame[12], frame[13]]);
                if (i == 0 && et == 0x0800) || (i == 1 && et == 0x86dd) {
                    if i == 0 {
                        got.0 = true;
                    } else {
                        got.1 = true;
                    }
                }
            }
        });
    }
    got
}

/// (v4 rules, v6 rules): iptables-restore text each.
const CASES: &[(&str, &str, &str)] = &[
    (
        "v4 FORWARD ACCEPT, v6 FORWARD DROP",
        "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
        "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
    ),
    (
        "v4 FORWARD DROP, v6 FORWARD ACCEPT",
        "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
        "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
    ),
    (
        "user chain NAVY in both families, opposite verdicts",
        "*filter\n:FORWARD DROP [0:0]\n:NAVY - [0:0]\n-A FORWARD -j NAVY\n-A NAVY -j ACCEPT\nCOMMIT\n",
        "*filter\n:FORWARD ACCEPT [0:0]\n:NAVY - [0:0]\n-A FORWARD -j NAVY\n-A NAVY -j DROP\nCOMMIT\n",
    ),
    (
        "addresses of each family",
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -s 10.1.0.0/24 -p udp -j ACCEPT\nCOMMIT\n",
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -s fd01::/64 -p udp --dport 9999 -j DROP\nCOMMIT\n",
    ),
];

#[test]
fn kernel_and_xgate_agree_per_family() {
    let (spaces, c, s, r) = match kernel_topology() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    for (name, v4, v6) in CASES {
        let k = match kernel(&c, &s, &r, v4, v6) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("skipped: the kernel refused the rules (no iptables-nft?): {e}");
                return;
            }
        };
        let x = xgate(v4, v6);
        assert_eq!(x, k, "{name}: xgate (v4, v6) forwarded vs the kernel's");
    }
    drop(spaces);
}
