//! `xgate-stress` (run by `testbed/stress`, not a test): the attacks of
//! issue 13 against the real `xgate run` in namespaces, one after the
//! other, each on a fresh topology and a fresh xgate:
//!
//! ```text
//!  cl ns: 10.1.0.2 (the inside host that attacks, and a TCP transfer)
//!         10.1.0.3 (a bystander pinging the server)
//!    c0 ---- r0 "lan" 10.1.0.1/24   xgate   r1 "wan" 10.2.0.1/24 ---- s0  sv ns: 10.2.0.2
//! ```
//!
//! The gateway masquerades the LAN, forwards tcp/8080 of its WAN address
//! to 10.1.0.2 (a port forward to attack), drops INVALID, accepts
//! ESTABLISHED and lan -> wan, with `rp_filter = "strict"` on the LAN and a
//! small connection table (65536 flows). During each attack: a 64 MiB TCP
//! transfer from 10.1.0.2 to the server (its checksum compared at the
//! end), a bystander ping every 20 ms. Then a row: xgate alive (and `ctl
//! stats` answering), its RSS before and after, the transfer intact, the
//! bystander's loss and worst round trip, the attack's counters.
//!
//! Attacks (floods at `--rate`, default 100,000 frames/s): `syn-flood`
//! (TCP SYNs from 65536 outside sources to the port forward),
//! `flow-flood` (new UDP flows from one inside host), `spoofed-lan` (new
//! flows from 250 spoofed inside addresses of the LAN prefix, then 65536
//! from outside it), `malformed`
//! (the malformed capture of ../shared/data replayed at top speed),
//! `metrics-idle` (10,000 idle connections to /metrics), `stuck-ctl` (a
//! ctl client that asks for the connection table and never reads, while
//! `ctl stats` is asked ten times), `reload-storm` (50 `ctl reload`s),
//! `kill-restart` (SIGKILL, then a new xgate on the same devices: time
//! until the bystander's pings are answered again).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use xgate_testbed::traffic::{RawSocket, fnv, pattern, tcp_send, tcp_sink};
use xgate_testbed::xgate::Xgate;
use xgate_testbed::{Testbed, in_ns, skip_reason};

struct Opts {
    xgate: String,
    pktgen: String,
    pcap: String,
    secs: f64,
    /// Frames per second of the generated floods.
    rate: u64,
    only: Vec<String>,
}

struct Topo {
    tb: Testbed,
    cl: String,
    rt: String,
    sv: String,
    c0: String,
    r0: String,
    r1: String,
    s0: String,
}

fn topology() -> Topo {
    let mut tb = Testbed::new();
    let (cl, rt, sv) = (tb.netns("cl"), tb.netns("rt"), tb.netns("sv"));
    let (c0, r0) = tb.veth(&cl, "c0", &rt, "r0", 1);
    let (r1, s0) = tb.veth(&rt, "r1", &sv, "s0", 1);
    tb.endpoint(&cl, &c0, "10.1.0.2/24", "10.1.0.1");
    tb.ip(&cl, &["addr", "add", "10.1.0.3/24", "dev", &c0]);
    tb.endpoint(&sv, &s0, "10.2.0.2/24", "10.2.0.1");
    Topo {
        tb,
        cl,
        rt,
        sv,
        c0,
        r0,
        r1,
        s0,
    }
}

fn config(t: &Topo) -> String {
    format!(
        r#"
[dataplane]
workers = 1
flows = 65536

[[interface]]
name = "lan"
device = "{r0}"
address = ["10.1.0.1/24"]
rp_filter = "strict"

[[interface]]
name = "wan"
device = "{r1}"
address = ["10.2.0.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "10.2.0.2"

[firewall]
rules = """
*nat
-A PREROUTING -i wan -p tcp --dport 8080 -j DNAT --to-destination 10.1.0.2:8080
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -j ACCEPT
-A FORWARD -i wan -o lan -p tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
"""
"#,
        r0 = t.r0,
        r1 = t.r1
    )
}

fn pid_in(ns: &str) -> Option<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn rss_mib(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn ctl(o: &Opts, x: &Xgate, args: &[&str]) -> Result<String, String> {
    let out = Command::new(&o.xgate)
        .arg("ctl")
        .arg("--socket")
        .arg(x.socket())
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The nonzero drop counters of `ctl stats`, largest first (at most 4).
fn drops(stats: &str) -> String {
    let mut v: Vec<(u64, String)> = stats
        .lines()
        .skip_while(|l| !l.starts_with("drops:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let n: u64 = w.next()?.parse().ok()?;
            (n > 0).then_some((n, name))
        })
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    v.iter()
        .take(4)
        .map(|(n, r)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bystander pings from 10.1.0.3 every 20 ms for `secs`: (loss %, max ms).
fn bystander(cl: &str, secs: f64) -> std::thread::JoinHandle<(f64, f64)> {
    let cl = cl.to_string();
    std::thread::spawn(move || {
        let out = Command::new("ip")
            .args(["netns", "exec", &cl, "ping", "-q", "-i", "0.02", "-W", "1"])
            .args(["-w", &format!("{}", secs.ceil() as u64)])
            .args(["-I", "10.1.0.3", "10.2.0.2"])
            .output()
            .expect("ping");
        let s = String::from_utf8_lossy(&out.stdout);
        let loss = s
            .split(',')
            .find(|p| p.contains("packet loss"))
            .and_then(|p| p.trim().split('%').next()?.parse().ok())
            .unwrap_or(100.0);
        let max = s
            .lines()
            .find(|l| l.starts_with("rtt"))
            .and_then(|l| l.split('=').nth(1)?.split('/').nth(2)?.trim().parse().ok())
            .unwrap_or(f64::NAN);
        (loss, max)
    })
}

/// A 64 MiB transfer from 10.1.0.2 to the server: whether it arrived whole.
fn transfer(t: &Topo) -> std::thread::JoinHandle<bool> {
    let data = pattern(64 << 20);
    let want = (data.len(), fnv(&data));
    let sink = in_ns(&t.sv, || {
        let l = TcpListener::bind("10.2.0.2:5001").unwrap();
        tcp_sink(l)
    });
    std::thread::sleep(Duration::from_millis(100));
    let send = in_ns(&t.cl, move || {
        tcp_send("10.2.0.2:5001".parse().unwrap(), &data).is_ok()
    });
    std::thread::spawn(move || {
        let sent = send.join().unwrap_or(false);
        match sink.join() {
            Ok((n, h, _)) => sent && (n, h) == want,
            Err(_) => false,
        }
    })
}

/// `xgate-pktgen tx` from `dev` in `ns` to the router's port `to` (in
/// the router namespace).
fn pktgen(
    o: &Opts,
    t: &Topo,
    ns: &str,
    dev: &str,
    to: &str,
    args: &[&str],
    secs: f64,
) -> std::process::Child {
    let m = t.tb.mac(&t.rt, to);
    let mac = m
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    Command::new(&o.pktgen)
        .args(["--netns", ns, "tx", "--dev", dev, "--dst-mac", &mac])
        .args(args)
        .args(["--duration", &format!("{secs}")])
        .args(["--rate", &o.rate.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("xgate-pktgen")
}

fn frames_of(path: &str) -> Vec<Vec<u8>> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(mut r) = pcap_file::pcap::PcapReader::new(f) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    while let Some(Ok(p)) = r.next_packet() {
        v.push(p.data.into_owned());
    }
    v
}

/// Runs `attack` against a fresh gateway; prints its row.
fn run(o: &Opts, name: &str) {
    let t = topology();
    let mut x = Xgate::start(&o.xgate, &t.rt, &config(&t));
    if !x.log().contains("xgate: running") {
        println!("| {name} | xgate did not start: {} |", x.log().trim());
        return;
    }
    let pid = pid_in(&t.rt);
    let rss0 = rss_mib(pid);
    let secs = o.secs;
    let ping = bystander(&t.cl, secs);
    let xfer = transfer(&t);
    let started = Instant::now();
    let mut note = String::new();
    match name {
        "syn-flood" => {
            let mut g = pktgen(
                o,
                &t,
                &t.sv,
                &t.s0,
                &t.r1,
                &[
                    "--proto",
                    "tcp",
                    "--src",
                    "198.18.0.0",
                    "--addrs",
                    "65536",
                    "--flows",
                    "65536",
                    "--dst",
                    "10.2.0.1",
                    "--dport",
                    "8080",
                ],
                secs,
            );
            let _ = g.wait();
        }
        "flow-flood" => {
            let mut g = pktgen(
                o,
                &t,
                &t.cl,
                &t.c0,
                &t.r0,
                &[
                    "--src", "10.1.0.2", "--flows", "65535", "--sport", "1", "--dst", "10.2.0.2",
                    "--dport", "9",
                ],
                secs,
            );
            let _ = g.wait();
        }
        "spoofed-lan" => {
            let half = secs / 2.0;
            for (src, addrs) in [("10.1.0.4", "250"), ("172.16.0.0", "65536")] {
                let mut g = pktgen(
                    o,
                    &t,
                    &t.cl,
                    &t.c0,
                    &t.r0,
                    &[
                        "--src", src, "--addrs", addrs, "--flows", "65536", "--dst", "10.2.0.2",
                        "--dport", "9",
                    ],
                    half,
                );
                let _ = g.wait();
            }
        }
        "malformed" => {
            let frames = frames_of(&o.pcap);
            let dev = t.c0.clone();
            let sent = in_ns(&t.cl, move || {
                let s = RawSocket::open(&dev);
                let until = Instant::now() + Duration::from_secs_f64(secs);
                let mut n = 0u64;
                while Instant::now() < until && !frames.is_empty() {
                    for f in &frames {
                        n += u64::from(s.try_send(f));
                    }
                }
                n
            })
            .join()
            .unwrap_or(0);
            note = format!("{sent} frames sent");
        }
        "metrics-idle" => {
            let res = in_ns(&t.rt, move || {
                raise_nofile(30_000);
                let conns: Vec<TcpStream> = (0..10_000)
                    .filter_map(|_| TcpStream::connect("127.0.0.1:9482").ok())
                    .collect();
                std::thread::sleep(Duration::from_secs_f64(secs / 2.0));
                let t0 = Instant::now();
                let ok = TcpStream::connect("127.0.0.1:9482")
                    .and_then(|mut s| {
                        s.set_read_timeout(Some(Duration::from_secs(3)))?;
                        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
                        let mut b = [0u8; 16];
                        std::io::Read::read(&mut s, &mut b)?;
                        Ok(b.starts_with(b"HTTP/1.1 200"))
                    })
                    .unwrap_or(false);
                (conns.len(), ok, t0.elapsed())
            })
            .join()
            .unwrap();
            note = format!(
                "{} idle connections, a scrape {} in {} ms",
                res.0,
                if res.1 { "answered" } else { "FAILED" },
                res.2.as_millis()
            );
        }
        "stuck-ctl" => {
            let sock = x.socket();
            let mut stuck = UnixStream::connect(&sock).expect("ctl socket");
            let _ = stuck.write_all(b"{\"version\":1,\"command\":{\"conntrack\":{}}}\n");
            let mut worst = Duration::ZERO;
            let mut failed = 0;
            for _ in 0..10 {
                let t0 = Instant::now();
                failed += usize::from(ctl(o, &x, &["stats"]).is_err());
                worst = worst.max(t0.elapsed());
                std::thread::sleep(Duration::from_secs_f64(secs / 10.0));
            }
            drop(stuck);
            note = format!(
                "10 ctl stats meanwhile: {failed} failed, slowest {} ms",
                worst.as_millis()
            );
        }
        "reload-storm" => {
            let mut failed = 0;
            for _ in 0..50 {
                failed += usize::from(ctl(o, &x, &["reload"]).is_err());
                std::thread::sleep(Duration::from_secs_f64(secs / 50.0));
            }
            note = format!("50 reloads, {failed} failed");
        }
        "kill-restart" => {
            std::thread::sleep(Duration::from_secs_f64(secs / 3.0));
            x.signal(libc::SIGKILL);
            let killed = Instant::now();
            std::thread::sleep(Duration::from_millis(200));
            // The old handle first: it removes the instance directory,
            // which the new instance reuses.
            drop(x);
            x = Xgate::start(&o.xgate, &t.rt, &config(&t));
            let cl = t.cl.clone();
            let back = loop {
                let ok = Command::new("ip")
                    .args(["netns", "exec", &cl, "ping", "-c", "1", "-W", "1"])
                    .args(["-I", "10.1.0.3", "10.2.0.2"])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok || killed.elapsed() > Duration::from_secs(20) {
                    break ok;
                }
            };
            note = format!(
                "forwarding again {} ms after SIGKILL{}",
                killed.elapsed().as_millis(),
                if back { "" } else { " (NOT within 20 s)" }
            );
        }
        other => {
            println!("| {other} | unknown attack |");
            return;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if elapsed < secs {
        std::thread::sleep(Duration::from_secs_f64(secs - elapsed));
    }
    let (loss, max) = ping.join().unwrap_or((100.0, f64::NAN));
    let intact = xfer.join().unwrap_or(false);
    let stats = ctl(o, &x, &["stats"]);
    let alive = stats.is_ok();
    let rss1 = rss_mib(pid_in(&t.rt));
    let counters = stats.as_deref().map(drops).unwrap_or_default();
    println!(
        "| {name} | {} | {rss0:.0} -> {rss1:.0} MiB | {} | {loss:.1}% (worst {max:.1} ms) | {} |",
        if alive { "yes" } else { "NO" },
        if intact { "yes" } else { "NO" },
        [counters, note]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = std::io::stdout().flush();
    drop(x);
}

fn raise_nofile(n: u64) {
    let l = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit with a valid struct, for this process.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) };
}

const ATTACKS: [&str; 8] = [
    "syn-flood",
    "flow-flood",
    "spoofed-lan",
    "malformed",
    "metrics-idle",
    "stuck-ctl",
    "reload-storm",
    "kill-restart",
];

fn main() {
    let mut o = Opts {
        xgate: "target/release/xgate".into(),
        pktgen: "target/release/xgate-pktgen".into(),
        pcap: "../shared/data/pcaps/tcpdump-tests-ether-replayable.pcap".into(),
        secs: 8.0,
        rate: 100_000,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--xgate" => o.xgate = v(),
            "--pktgen" => o.pktgen = v(),
            "--pcap" => o.pcap = v(),
            "--secs" => o.secs = v().parse().expect("--secs N"),
            "--rate" => o.rate = v().parse().expect("--rate PPS"),
            "--only" => o.only = v().split(',').map(str::to_string).collect(),
            _ => panic!(
                "usage: xgate-stress [--xgate P] [--pktgen P] [--pcap P] [--secs N] [--rate PPS] [--only a,b]"
            ),
        }
    }
    if let Some(r) = skip_reason() {
        eprintln!("xgate-stress: cannot run: {r}");
        std::process::exit(2);
    }
    println!(
        "| attack | xgate alive | RSS | 64 MiB transfer intact | bystander ping loss | counters, notes |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for a in ATTACKS {
        if o.only.is_empty() || o.only.iter().any(|x| x == a) {
            run(&o, a);
        }
    }
}
