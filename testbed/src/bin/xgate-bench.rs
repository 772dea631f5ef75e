//! xgate-bench: forwarded packets per second through one topology, for
//! seven forwarders, measured the same way (run by `testbed/bench`).
//!
//! ```text
//!  gen ns                 router ns                       sink ns
//!  g0 10.1.0.2 ---- r0 10.1.0.1 [forwarder] r1 10.2.0.1 ---- s0 10.2.0.2
//!  xgate-pktgen tx                                           counting XDP_DROP
//! ```
//!
//! The generator (XDP live frames, 64-byte UDP, 256 flows, one thread
//! pinned to the last CPU) floods g0; the sink counts frames carrying the
//! generator's magic on s0. Cases: kernel forwarding, kernel + nftables
//! conntrack + masquerade, DPDK testpmd (af_xdp PMD, io mode), xgate
//! routed, xgate with conntrack + masquerade + filter, the
//! XDP_REDIRECT ceiling, and xgate bridging the two devices (i). Each case gets a fresh topology; each repetition
//! measures a window after a warm-up, and records the CPU time other
//! processes of the machine used meanwhile (all CPUs' busy time from
//! /proc/stat minus that of the processes the bench started and of this
//! process).
//!
//! Output: a CSV (one line per repetition) and a markdown section.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xgate_testbed::pktgen::{Redirect, Sink};
use xgate_testbed::traffic::{self, RawSocket};
use xgate_testbed::{Testbed, in_ns};

struct Opts {
    xgate: String,
    pktgen: String,
    reps: usize,
    window: f64,
    csv: String,
    markdown: String,
    only: Vec<String>,
}

const CASES: [(&str, &str); 11] = [
    ("a", "Linux forwarding"),
    ("b", "Linux + nft conntrack + masquerade"),
    ("c", "DPDK testpmd af_xdp io"),
    ("d", "xgate routed"),
    ("e", "xgate conntrack + masquerade + filter"),
    ("f", "XDP_REDIRECT ceiling"),
    ("g", "xgate conntrack + masquerade + filter, offload"),
    ("h", "Linux + nft conntrack + masquerade + flowtable"),
    ("i", "xgate bridged"),
    ("j", "xgate conntrack + filter, every packet a new flow"),
    (
        "k",
        "Linux + nft conntrack + filter, every packet a new flow",
    ),
];

/// The generator's flows and source addresses in a case: (j) and (k)
/// measure connection setup, so no flow comes back within a run (64
/// sources x 60000 ports: more than the packets of a repetition).
fn flows_of(id: &str) -> (u32, u32) {
    if id == "j" || id == "k" {
        (64 * 60_000, 64)
    } else {
        (FLOWS, 1)
    }
}

/// Flows the generator cycles through.
const FLOWS: u32 = 256;

fn main() {
    let mut o = Opts {
        xgate: "target/release/xgate".into(),
        pktgen: "target/release/xgate-pktgen".into(),
        reps: 5,
        window: 3.0,
        csv: "bench-forwarding.csv".into(),
        markdown: "bench-forwarding.md".into(),
        only: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().expect("missing value").clone();
        match a.as_str() {
            "--xgate" => o.xgate = v(),
            "--pktgen" => o.pktgen = v(),
            "--reps" => o.reps = v().parse().unwrap(),
            "--window" => o.window = v().parse().unwrap(),
            "--csv" => o.csv = v(),
            "--markdown" => o.markdown = v(),
            "--only" => o.only = v().split(',').map(str::to_string).collect(),
            _ => {
                eprintln!(
                    "usage: xgate-bench [--xgate BIN] [--pktgen BIN] [--reps N] [--window SECS] \
                     [--csv FILE] [--markdown FILE] [--only a,b,..]"
                );
                std::process::exit(2);
            }
        }
    }
    if let Some(r) = xgate_testbed::skip_reason() {
        eprintln!("xgate-bench: {r}");
        std::process::exit(1);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("xgate-bench: load average at start: {}", load.trim());
    let mut csv = String::from("case,name,rep,mpps,others_cpu_pct,ours_cpu_pct\n");
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for (id, name) in CASES {
        if !o.only.is_empty() && !o.only.iter().any(|x| x == id) {
            continue;
        }
        eprintln!("xgate-bench: ({id}) {name}");
        match run_case(id, &o) {
            Ok(samples) => {
                for (i, s) in samples.iter().enumerate() {
                    let _ = writeln!(
                        csv,
                        "{id},{name},{i},{:.3},{:.1},{:.1}",
                        s.mpps, s.others, s.ours
                    );
                    eprintln!(
                        "  rep {i}: {:.3} Mpps, others {:.0}% CPU, ours {:.0}%",
                        s.mpps, s.others, s.ours
                    );
                }
                rows.push((id, name, samples));
            }
            Err(e) => {
                eprintln!("  failed: {e}");
                rows.push((id, name, Vec::new()));
                skipped.push((id, e));
            }
        }
    }
    std::fs::write(&o.csv, &csv).unwrap();
    std::fs::write(&o.markdown, markdown(&rows, &skipped, &o, load.trim())).unwrap();
    eprintln!("xgate-bench: wrote {} and {}", o.csv, o.markdown);
}

#[derive(Clone, Copy)]
struct Sample {
    mpps: f64,
    /// CPU other processes used, percent of one CPU.
    others: f64,
    /// CPU the bench's own processes used (generator, forwarder, this).
    ours: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn markdown(
    rows: &[(&str, &str, Vec<Sample>)],
    skipped: &[(&str, String)],
    o: &Opts,
    load: &str,
) -> String {
    let mut med = std::collections::HashMap::new();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| case | forwarder | median Mpps | min | max | other processes' CPU (median, % of one CPU) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (id, name, samples) in rows {
        if samples.is_empty() {
            let _ = writeln!(s, "| ({id}) | {name} | failed | | | |");
            continue;
        }
        let mut m: Vec<f64> = samples.iter().map(|x| x.mpps).collect();
        let mut c: Vec<f64> = samples.iter().map(|x| x.others).collect();
        let (lo, hi) = (
            m.iter().cloned().fold(f64::INFINITY, f64::min),
            m.iter().cloned().fold(0.0, f64::max),
        );
        let md = median(&mut m);
        med.insert(*id, md);
        let _ = writeln!(
            s,
            "| ({id}) | {name} | {md:.3} | {lo:.3} | {hi:.3} | {:.0} |",
            median(&mut c)
        );
    }
    let _ = writeln!(s);
    for (id, why) in skipped {
        let _ = writeln!(
            s,
            "- ({id}) did not run: {}",
            why.lines().next().unwrap_or("")
        );
    }
    let ratio = |a: &str, b: &str, goal: f64| -> String {
        match (med.get(a), med.get(b)) {
            (Some(x), Some(y)) if *y > 0.0 => format!(
                "({a})/({b}) = {:.2} (goal >= {goal}: {})",
                x / y,
                if x / y >= goal { "met" } else { "not met" }
            ),
            _ => format!("({a})/({b}): not measured"),
        }
    };
    for (a, b, g) in [
        ("e", "b", 1.5),
        ("e", "c", 1.0),
        ("e", "d", 0.9),
        ("g", "b", 3.0),
        ("g", "a", 2.0),
        ("g", "h", 1.5),
        ("g", "f", 0.7),
        ("j", "k", 1.0),
    ] {
        let _ = writeln!(s, "- {}", ratio(a, b, g));
    }
    let _ = writeln!(
        s,
        "\n{} repetitions of {} s per case after a 1 s warm-up; before them each of the \
         {FLOWS} flows is answered once from the sink's side (so a connection tracker sees \
         it established); load average at start: {load}.",
        o.reps, o.window
    );
    s
}

/// The warm-up, the same for every case: one frame of each flow from the
/// generator, each answered once from the sink's side (swapped addresses
/// and ports), before the sink starts counting. Returns how many flows
/// were answered.
fn warm_up(
    o: &Opts,
    tb: &Testbed,
    gen_ns: &str,
    g0: &str,
    sink_ns: &str,
    s0: &str,
    dst_mac: [u8; 6],
) -> Result<usize, String> {
    // The sink's kernel drops them quietly (no port unreachable).
    let out = Command::new("ip")
        .args(["netns", "exec", sink_ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(
                b"table ip xgwarm {\n chain in {\n  type filter hook input priority 0; policy drop;\n }\n}\n",
            )?;
            c.wait_with_output()
        })
        .map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let s0_mac = tb.mac(sink_ns, s0);
    let dev = s0.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reflector = in_ns(sink_ns, move || {
        let raw = RawSocket::open(&dev);
        let _ = ready_tx.send(());
        let mut seen = std::collections::HashSet::new();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && seen.len() < FLOWS as usize {
            let Some(f) = raw.recv(Duration::from_millis(100)) else {
                continue;
            };
            // IPv4 UDP to 10.2.0.2 from elsewhere (not our own answers).
            if f.len() < 42 || f[12..14] != [8, 0] || f[23] != 17 || f[30..34] != [10, 2, 0, 2] {
                continue;
            }
            let (src, sport, dport) = (
                Ipv4Addr::new(f[26], f[27], f[28], f[29]),
                u16::from_be_bytes([f[34], f[35]]),
                u16::from_be_bytes([f[36], f[37]]),
            );
            if seen.insert((src, sport)) {
                let mac: [u8; 6] = f[6..12].try_into().unwrap();
                raw.send(&traffic::udp_frame(
                    mac,
                    s0_mac,
                    None,
                    Ipv4Addr::new(10, 2, 0, 2),
                    src,
                    dport,
                    sport,
                    b"warm",
                ));
            }
        }
        seen.len()
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(2));
    let out = Command::new(&o.pktgen)
        .args(["--netns", gen_ns, "tx", "--dev", g0, "--dst-mac"])
        .arg(mac_str(dst_mac))
        .args(["--src", "10.1.0.2", "--dst", "10.2.0.2", "--flows"])
        .arg(FLOWS.to_string())
        .args(["--size", "64", "--count"])
        .arg(FLOWS.to_string())
        .args(["--rate", "2000", "--duration", "2"])
        .output()
        .map_err(|e| format!("{}: {e}", o.pktgen))?;
    if !out.status.success() {
        return Err(format!(
            "warm-up generator: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let answered = reflector.join().map_err(|_| "reflector panicked")?;
    let _ = Command::new("ip")
        .args([
            "netns", "exec", sink_ns, "nft", "delete", "table", "ip", "xgwarm",
        ])
        .output();
    // What the answers set up (offload entries) settles.
    std::thread::sleep(Duration::from_millis(300));
    Ok(answered)
}

/// Busy and total jiffies of all CPUs.
fn cpu_total() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime (+ children's) of a process, jiffies.
fn proc_cpu(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the ")" of the command name: state is field 3.
    let rest = &s[s.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14..=17 (index 11..=14 here).
    f[11] + f[12] + f[13] + f[14]
}

/// CPU time of ours: this process and every process started by the case.
fn ours_cpu(pids: &[u32]) -> u64 {
    proc_cpu(std::process::id()) + pids.iter().map(|&p| proc_cpu(p)).sum::<u64>()
}

/// A case's router, whatever it is; stopped on drop.
enum Forwarder {
    Kernel,
    Process(Child),
    Redirect(#[allow(dead_code)] Redirect),
}

impl Forwarder {
    fn pid(&self) -> Option<u32> {
        match self {
            Forwarder::Process(c) => Some(c.id()),
            _ => None,
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Forwarder::Process(c) = self {
            // SAFETY: signals our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn run_case(id: &str, o: &Opts) -> Result<Vec<Sample>, String> {
    let mut tb = Testbed::new();
    let gen_ns = tb.netns("g");
    let router = tb.netns("r");
    let sink_ns = tb.netns("k");
    let (g0, r0) = tb.veth(&gen_ns, "g0", &router, "r0", 1);
    let (r1, s0) = tb.veth(&router, "r1", &sink_ns, "s0", 1);
    let s0_mac = tb.mac(&sink_ns, &s0);
    let r0_mac = tb.mac(&router, &r0);
    // Bridged, the frames are for the sink itself.
    let dst_mac = if id == "i" { s0_mac } else { r0_mac };

    let fwd = setup(id, o, &tb, &router, (&r0, &r1), s0_mac)?;
    let answered = warm_up(o, &tb, &gen_ns, &g0, &sink_ns, &s0, dst_mac)?;
    eprintln!("  warm-up: {answered} of {FLOWS} flows answered from the sink's side");

    // The sink, held by a thread in its namespace until the case ends.
    let (tx_sink, rx_sink) = std::sync::mpsc::channel::<()>();
    let (tx_c, rx_c) = std::sync::mpsc::channel();
    let s0c = s0.clone();
    let sink_thread = in_ns(&sink_ns, move || {
        let sink = Sink::attach(&s0c, false).expect("sink");
        loop {
            match rx_sink.recv_timeout(Duration::from_millis(1)) {
                Ok(()) => {
                    let _ = tx_c.send(sink.counts().unwrap());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return,
            }
        }
    });
    let counts = || {
        tx_sink.send(()).unwrap();
        rx_c.recv().unwrap()
    };
    let _ = counts();

    let mut samples = Vec::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hz = 100.0; // USER_HZ
    for _ in 0..o.reps {
        let mut gen_cmd = Command::new(&o.pktgen);
        gen_cmd
            .args(["--netns", &gen_ns, "tx", "--dev", &g0, "--dst-mac"])
            .arg(mac_str(dst_mac))
            .args([
                "--src",
                "10.1.0.2",
                "--dst",
                "10.2.0.2",
                "--flows",
                &flows_of(id).0.to_string(),
                "--addrs",
                &flows_of(id).1.to_string(),
                "--size",
                "64",
                "--first-cpu",
            ])
            .arg((cpus - 1).to_string())
            .arg("--duration")
            .arg(format!("{}", o.window + 1.5))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let generator = gen_cmd.spawn().map_err(|e| format!("{}: {e}", o.pktgen))?;
        let mut pids = vec![generator.id()];
        pids.extend(fwd.pid());
        std::thread::sleep(Duration::from_secs(1));
        let (c0, b0, o0, t0) = (counts(), cpu_total(), ours_cpu(&pids), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(o.window));
        let (c1, b1, o1, t1) = (counts(), cpu_total(), ours_cpu(&pids), Instant::now());
        let out = generator.wait_with_output().unwrap();
        if !out.status.success() {
            return Err(format!(
                "generator: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let dt = (t1 - t0).as_secs_f64();
        let busy = (b1.0 - b0.0) as f64;
        let ours = (o1 - o0) as f64;
        samples.push(Sample {
            mpps: (c1.magic - c0.magic) as f64 / dt / 1e6,
            others: ((busy - ours).max(0.0) / hz / dt) * 100.0,
            ours: ours / hz / dt * 100.0,
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(fwd);
    drop(tx_sink);
    let _ = sink_thread.join();
    drop(tb);
    Ok(samples)
}

/// Loads `rules` into the router's nftables.
fn nft(router: &str, rules: &str, id: &str) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("{router}.nft"));
    std::fs::write(&path, rules).unwrap();
    let p = path.display().to_string();
    let out = Command::new("ip")
        .args(["netns", "exec", router, "nft", "-f", &p])
        .output()
        .map_err(|e| format!("nft: {e} (install nftables)"))?;
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if id == "h" && err.contains("No such file or directory") {
            return Err(format!(
                "skipped: this kernel has no nf_flow_table (nft: {})",
                err.lines().next().unwrap_or("").trim()
            ));
        }
        return Err(format!("nft: {err}"));
    }
    Ok(())
}

fn setup(
    id: &str,
    o: &Opts,
    tb: &Testbed,
    router: &str,
    (r0, r1): (&str, &str),
    s0_mac: [u8; 6],
) -> Result<Forwarder, String> {
    let kernel = |tb: &Testbed| {
        tb.sysctl(router, "net.ipv4.ip_forward=1");
        tb.ip(router, &["addr", "add", "10.1.0.1/24", "dev", r0]);
        tb.ip(router, &["addr", "add", "10.2.0.1/24", "dev", r1]);
        let mac = mac_str(s0_mac);
        tb.ip(
            router,
            &[
                "neigh",
                "replace",
                "10.2.0.2",
                "lladdr",
                &mac,
                "dev",
                r1,
                "nud",
                "permanent",
            ],
        );
        // Frames XDP_TX'd into g0 reach r0 only with GRO (or XDP) on r0.
        tb.exec(router, "ethtool", &["-K", r0, "gro", "on"]);
    };
    Ok(match id {
        "a" => {
            kernel(tb);
            Forwarder::Kernel
        }
        "k" => {
            kernel(tb);
            nft(
                router,
                &format!(
                    r#"table ip xgbench {{
    chain forward_filter {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "{r0}" oifname "{r1}" accept
    }}
}}
"#
                ),
                id,
            )?;
            Forwarder::Kernel
        }
        "b" | "h" => {
            kernel(tb);
            // (h): established connections through nft's flowtable, the
            // kernel's software fast path (nf_flow_table).
            let (flowtable, flow_add) = if id == "h" {
                (
                    format!(
                        "    flowtable ft {{\n        hook ingress priority 0;\n        \
                         devices = {{ {r0}, {r1} }};\n    }}\n"
                    ),
                    "        ip protocol { tcp, udp } flow add @ft\n",
                )
            } else {
                (String::new(), "")
            };
            let rules = format!(
                r#"table ip xgbench {{
{flowtable}    chain forward_filter {{
        type filter hook forward priority 0; policy drop;
{flow_add}        ct state established,related accept
        iifname "{r0}" oifname "{r1}" accept
    }}
    chain postrouting_nat {{
        type nat hook postrouting priority 100;
        oifname "{r1}" ip saddr 10.1.0.0/24 masquerade
    }}
}}
"#
            );
            nft(router, &rules, id)?;
            Forwarder::Kernel
        }
        "c" => {
            let prefix = format!("{router}dpdk");
            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    router,
                    "dpdk-testpmd",
                    "-l",
                    "0-1",
                    "--main-lcore",
                    "1",
                ])
                .args([
                    "-n",
                    "1",
                    "--no-pci",
                    "--no-huge",
                    "-m",
                    "1024",
                    "--file-prefix",
                    &prefix,
                ])
                .arg("--vdev")
                .arg(format!(
                    "net_af_xdp0,iface={r0},start_queue=0,queue_count=1"
                ))
                .arg("--vdev")
                .arg(format!(
                    "net_af_xdp1,iface={r1},start_queue=0,queue_count=1"
                ))
                .args([
                    "--",
                    "--nb-cores=1",
                    "--forward-mode=io",
                    "--auto-start",
                    "--stats-period",
                    "10",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("dpdk-testpmd: {e} (install dpdk)"))?;
            std::thread::sleep(Duration::from_secs(3));
            Forwarder::Process(child)
        }
        "d" | "e" | "g" | "i" | "j" => {
            let fw = if id == "j" {
                r#"
[firewall]
rules = """
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan -o wan -p udp -j ACCEPT
COMMIT
"""
"#
            } else if id == "e" || id == "g" {
                r#"
[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -s 10.1.0.0/24 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i wan -p tcp --dport 22 -j DROP
-A FORWARD -i lan -o wan -p udp -j ACCEPT
-A FORWARD -i lan -o wan -p tcp -j ACCEPT
COMMIT
"""
"#
            } else {
                ""
            };
            // (i): the two devices are ports of one bridge; the sink
            // never speaks, so its MAC is a static entry.
            let bridge = format!(
                "[[bridge]]\nname = \"br0\"\nports = [\"lan\", \"wan\"]\n\n\
                 [[bridge.fdb]]\nmac = \"{}\"\nport = \"wan\"\n\n\
                 [[interface]]\nname = \"br0\"\ndevice = \"br0\"\n\
                 address = [\"10.1.0.1/24\"]\n\n\
                 [[interface]]\nname = \"lan\"\ndevice = \"{r0}\"\n\n\
                 [[interface]]\nname = \"wan\"\ndevice = \"{r1}\"\n",
                mac_str(s0_mac)
            );
            // (g): (e) with established connections forwarded in XDP.
            let offload = if id == "g" {
                "offload = \"auto\"\n"
            } else {
                ""
            };
            let cfg = if id == "i" {
                format!("[dataplane]\nworkers = 1\n\n{bridge}")
            } else {
                format!(
                    "[dataplane]\nworkers = 1\nflows = 1048576\n{offload}\n\
                 [[interface]]\nname = \"lan\"\ndevice = \"{r0}\"\naddress = [\"10.1.0.1/24\"]\n\n\
                 [[interface]]\nname = \"wan\"\ndevice = \"{r1}\"\naddress = [\"10.2.0.1/24\"]\n\n\
                 [[neighbor]]\nip = \"10.2.0.2\"\nmac = \"{}\"\ndev = \"wan\"\n{fw}",
                    mac_str(s0_mac)
                )
            };
            let dir = std::env::temp_dir().join(format!("{router}-bench"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("xgate.toml");
            std::fs::write(&path, cfg).unwrap();
            let mut child = Command::new("ip")
                .args(["netns", "exec", router, &o.xgate, "run", "--config"])
                .arg(&path)
                // testpmd's af_xdp PMD busy-polls (SO_PREFER_BUSY_POLL,
                // budget 64) on a core it never gives up: the same here.
                .arg("--busy-poll")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{}: {e}", o.xgate))?;
            // Wait for "xgate: running".
            let err = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            let until = Instant::now() + Duration::from_secs(20);
            let mut log = String::new();
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(l) => {
                        log += &l;
                        log.push('\n');
                        if l.contains("xgate: running") {
                            break;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(format!("xgate exited:\n{log}"));
                    }
                    Err(_) if Instant::now() > until => {
                        return Err(format!("xgate did not start:\n{log}"));
                    }
                    Err(_) => {}
                }
            }
            eprint!("{log}");
            Forwarder::Process(child)
        }
        "f" => {
            let (a, b) = (r0.to_string(), r1.to_string());
            let r = in_ns(router, move || Redirect::attach(&a, &b))
                .join()
                .unwrap()
                .map_err(|e| format!("redirect: {e}"))?;
            Forwarder::Redirect(r)
        }
        _ => unreachable!(),
    })
}
