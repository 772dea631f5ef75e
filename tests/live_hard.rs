//! Issue 13, live: the real `xgate run` in network namespaces of its own
//! (`xgh-<pid>-*`, deleted on drop, even when a test fails).
//!
//! - 2,000 idle connections to `/metrics` neither block a scrape nor add
//!   threads to the process, and `ctl reload` still works meanwhile.
//! - `xgate run` on a config without interfaces says so and exits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{in_ns, skip_reason};

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

/// Namespaces this test made, deleted on drop.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in self.0.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A router namespace with veth `r0` (10.77.0.1/24 for xgate) whose peer
/// `c0` sits in a client namespace.
fn topology(tag: &str) -> (Netns, String) {
    let r = format!("xgh-{}-{tag}r", std::process::id());
    let c = format!("xgh-{}-{tag}c", std::process::id());
    let mut ns = Netns(Vec::new());
    for n in [&r, &c] {
        ip(&["netns", "add", n]);
        ns.0.push(n.clone());
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    ip(&[
        "-n", &r, "link", "add", "r0", "type", "veth", "peer", "name", "c0", "netns", &c,
    ]);
    ip(&["-n", &r, "link", "set", "r0", "up"]);
    ip(&["-n", &c, "link", "set", "c0", "up"]);
    (ns, r)
}

fn threads(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn scrape() -> String {
    let mut s = TcpStream::connect("127.0.0.1:9482").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_flood_leaves_scrapes_and_ctl_working() {
    if let Some(r) = skip_reason() {
        eprintln!("skipped: {r}");
        return;
    }
    let (_ns, router) = topology("m");
    let cfg = r#"
[dataplane]
workers = 1
flows = 4096

[[interface]]
name = "lan"
device = "r0"
address = ["10.77.0.1/24"]
"#;
    let x = Xgate::start(XGATE, &router, cfg);
    assert!(x.log().contains("xgate: running"), "{}", x.log());
    let pids = Command::new("ip")
        .args(["netns", "pids", &router])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .next()
        .expect("xgate's pid")
        .parse()
        .unwrap();
    let before = threads(pid);
    let socket = x.socket();
    let flood = in_ns(&router, move || {
        let idle: Vec<TcpStream> = (0..2000)
            .map(|_| TcpStream::connect("127.0.0.1:9482").unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let body = scrape();
        let took = t.elapsed();
        let during = threads(pid);
        // The control socket still has descriptors to work with.
        let reload = Command::new(XGATE)
            .arg("ctl")
            .arg("--socket")
            .arg(&socket)
            .arg("reload")
            .output()
            .unwrap();
        drop(idle);
        std::thread::sleep(Duration::from_millis(100));
        let after = scrape();
        (body, took, during, reload, after)
    });
    let (body, took, during, reload, after) = flood.join().unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(took < Duration::from_secs(1), "scrape took {took:?}");
    assert!(
        during <= before + 2,
        "threads {before} -> {during} under 2,000 idle connections"
    );
    assert!(
        reload.status.success(),
        "ctl reload: {}",
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
    let exit = x.stop();
    assert!(exit.success, "{}", exit.log);
    assert!(exit.log.contains("reloaded (ctl)"), "{}", exit.log);
}

#[test]
fn run_without_interfaces_says_so() {
    let d = std::env::temp_dir().join(format!("xgh-{}-noif", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("x.toml");
    std::fs::write(
        &cfg,
        format!(
            "[dataplane]\nflows = 4096\n[control]\nsocket = {:?}\nmetrics = \"\"\n",
            d.join("s.sock").display().to_string()
        ),
    )
    .unwrap();
    let check = Command::new(XGATE)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(check.status.success());
    let out = Command::new(XGATE)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no [[interface]]"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
