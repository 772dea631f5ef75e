//! xgate-pktgen: benchmark traffic generator (XDP live frames, or AF_XDP
//! where the kernel has no live frames) and counting sink (XDP_DROP), see
//! xgate_testbed::pktgen.
//!
//! ```text
//! xgate-pktgen tx --netns GEN --dev g0 --dst-mac 02:.. --src 10.1.0.2 --dst 10.2.0.2 \
//!     --flows 256 --size 64 --duration 10 [--rate PPS] [--threads 2] [--count N] \
//!     [--mode live|afxdp|auto] [--bind auto|copy|zero-copy]
//! xgate-pktgen rx --netns SINK --dev s0 [--duration SECS] [--skb]   # until SIGINT
//! xgate-pktgen redirect --netns R --dev r0 --to r1                  # until SIGINT
//! ```
//!
//! `--mode auto` (default) sends with XDP live frames when the kernel has
//! them (Linux 5.18+), else with transmit-only AF_XDP sockets, thread i on
//! queue i of DEV (`--bind` applies to those); the mode obtained is
//! printed on stderr. AF_XDP mode counts a frame when the kernel completes
//! it, and sends at most 1796-byte frames and 65536 flows.
//!
//! Output: `tx: sent=N seconds=S pps=P` and `rx: frames=N magic=M bytes=B
//! seconds=S pps=P` as the last line (key=value, for scripts).

use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use xgate_dataplane::io::afxdp::BindMode;
use xgate_testbed::bpf;
use xgate_testbed::pktgen::afxdp::AfXdpSender;
use xgate_testbed::pktgen::{
    Generator, Proto, Redirect, Sink, Template, TxMode, choose_mode, shares,
};

#[derive(Parser)]
#[command(
    name = "xgate-pktgen",
    about = "Packet generator (XDP live frames or AF_XDP) and counting sink"
)]
struct Cli {
    /// Enter this network namespace (/run/netns/NAME) first.
    #[arg(long, global = true)]
    netns: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send frames out of DEV (into its veth peer / the wire).
    Tx {
        #[arg(long)]
        dev: String,
        /// Destination MAC (the next hop's); default broadcast.
        #[arg(long, default_value = "ff:ff:ff:ff:ff:ff")]
        dst_mac: String,
        /// Source MAC; default DEV's.
        #[arg(long)]
        src_mac: Option<String>,
        #[arg(long)]
        src: IpAddr,
        #[arg(long)]
        dst: IpAddr,
        #[arg(long, default_value = "udp")]
        proto: String,
        #[arg(long, default_value_t = 1024)]
        sport: u16,
        #[arg(long, default_value_t = 9)]
        dport: u16,
        /// Frame size including the FCS (64 = minimum Ethernet frame).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Flows, cycled frame by frame.
        #[arg(long, default_value_t = 1)]
        flows: u32,
        /// Source addresses the flows are spread over (from --src up).
        #[arg(long, default_value_t = 1)]
        addrs: u32,
        /// Frames per second over all threads; 0 = as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Seconds to send (fractions allowed).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Sending threads, thread i pinned to CPU first-cpu + i (mod online CPUs).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 0)]
        first_cpu: usize,
        /// Stop after this many frames (0: no limit).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// How to send: XDP live frames, AF_XDP sockets, or live frames
        /// when the kernel has them (else AF_XDP).
        #[arg(long, value_enum, default_value_t = TxMode::Auto)]
        mode: TxMode,
        /// AF_XDP bind mode: auto (zero-copy if the driver has it), copy,
        /// zero-copy.
        #[arg(long, default_value = "auto")]
        bind: String,
    },
    /// Count (and drop) what arrives on DEV; print per-second rates.
    Rx {
        #[arg(long)]
        dev: String,
        /// Seconds to count; default until SIGINT/SIGTERM.
        #[arg(long)]
        duration: Option<f64>,
        /// Generic (SKB) XDP instead of native.
        #[arg(long)]
        skb: bool,
        /// No per-second lines.
        #[arg(long)]
        quiet: bool,
    },
    /// Redirect every frame from DEV to TO in XDP (until SIGINT/SIGTERM).
    Redirect {
        #[arg(long)]
        dev: String,
        #[arg(long)]
        to: String,
    },
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {s}"))?;
    v.try_into().map_err(|_| format!("bad MAC {s}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    if let Some(ns) = &cli.netns
        && let Err(e) = bpf::enter_netns(ns)
    {
        eprintln!("xgate-pktgen: {e}");
        return ExitCode::FAILURE;
    }
    let r = match cli.cmd {
        Cmd::Tx {
            dev,
            dst_mac,
            src_mac,
            src,
            dst,
            proto,
            sport,
            dport,
            size,
            flows,
            addrs,
            rate,
            duration,
            threads,
            first_cpu,
            count,
            mode,
            bind,
        } => (|| {
            let t = Template {
                proto: match proto.as_str() {
                    "udp" => Proto::Udp,
                    "tcp" => Proto::Tcp,
                    p => return Err(format!("--proto {p}: udp or tcp")),
                },
                src_mac: match src_mac {
                    Some(m) => parse_mac(&m)?,
                    None => bpf::mac_of(&dev).map_err(|e| format!("--dev {dev}: {e}"))?,
                },
                dst_mac: parse_mac(&dst_mac)?,
                src,
                dst,
                sport,
                dport,
                size,
                flows,
                addrs,
            };
            let bind = match bind.as_str() {
                "auto" => BindMode::Auto,
                "copy" => BindMode::Copy,
                "zero-copy" => BindMode::ZeroCopy,
                b => return Err(format!("--bind {b}: auto, copy or zero-copy")),
            };
            t.validate()?;
            deadline(Instant::now(), duration)?;
            let (mode, why) = choose_mode(mode, bpf::live_frames_supported)?;
            let run = Run {
                rate,
                duration,
                threads: threads.max(1),
                first_cpu,
                count,
            };
            match mode {
                TxMode::AfXdp => tx_afxdp(&t, &dev, bind, &run, &why),
                _ => tx_live(&t, &dev, &run, &why),
            }
        })(),
        Cmd::Rx {
            dev,
            duration,
            skb,
            quiet,
        } => rx(&dev, duration, skb, quiet),
        Cmd::Redirect { dev, to } => (|| {
            let _r = Redirect::attach(&dev, &to).map_err(|e| format!("{dev} -> {to}: {e}"))?;
            println!("redirect: {dev} -> {to} attached");
            while !STOP.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        })(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgate-pktgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `start` + `--duration` seconds, or why that is no duration.
fn deadline(start: Instant, secs: f64) -> Result<Instant, String> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| start.checked_add(d))
        .ok_or_else(|| format!("--duration {secs}: not a number of seconds from 0 up"))
}

/// The `tx` options both modes share.
struct Run {
    rate: u64,
    duration: f64,
    threads: usize,
    first_cpu: usize,
    count: u64,
}

/// XDP live frames: one generator program, `threads` threads calling it.
fn tx_live(t: &Template, dev: &str, run: &Run, why: &str) -> Result<(), String> {
    let ifindex = bpf::ifindex(dev).map_err(|e| e.to_string())?;
    let g = Arc::new(Generator::new(t).map_err(|e| e.to_string())?);
    eprintln!("xgate-pktgen: mode live ({why}): XDP live frames out of {dev}");
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = deadline(start, run.duration)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers: Vec<_> = shares(run.rate, run.count, run.threads, until)
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            let (g, sent, dev) = (g.clone(), sent.clone(), dev.to_string());
            let cpu = (run.first_cpu + i) % cpus;
            std::thread::spawn(move || -> Result<(), String> {
                xgate_testbed::pin_to_cpu(cpu);
                g.send(ifindex, &share, &STOP, &sent)
                    .map_err(|e| format!("{dev}: {e}"))
            })
        })
        .collect();
    finish(workers, start, &sent)
}

/// AF_XDP: one transmit-only socket per thread, thread i on queue i.
fn tx_afxdp(t: &Template, dev: &str, bind: BindMode, run: &Run, why: &str) -> Result<(), String> {
    // One at a time, here: libxdp's set-up is not safe to race.
    let senders = (0..run.threads as u32)
        .map(|q| AfXdpSender::open(t, dev, q, bind))
        .collect::<Result<Vec<_>, _>>()?;
    let granted: Vec<String> = senders.iter().map(|s| s.describe()).collect();
    eprintln!(
        "xgate-pktgen: mode afxdp ({why}): AF_XDP transmit-only sockets on {}",
        granted.join(", ")
    );
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = deadline(start, run.duration)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers: Vec<_> = senders
        .into_iter()
        .zip(shares(run.rate, run.count, run.threads, until))
        .enumerate()
        .map(|(i, (mut sender, share))| {
            let sent = sent.clone();
            let cpu = (run.first_cpu + i) % cpus;
            std::thread::spawn(move || -> Result<(), String> {
                xgate_testbed::pin_to_cpu(cpu);
                sender.send(&share, &STOP, &sent)
            })
        })
        .collect();
    finish(workers, start, &sent)
}

/// Joins the sending threads and prints the `tx:` line (also after an
/// error: what was sent until then).
fn finish(
    workers: Vec<std::thread::JoinHandle<Result<(), String>>>,
    start: Instant,
    sent: &AtomicU64,
) -> Result<(), String> {
    let mut err = None;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => err = Some(e),
            Err(_) => err = Some("a sending thread panicked".to_string()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    println!("tx: sent={n} seconds={secs:.3} pps={:.0}", n as f64 / secs);
    err.map_or(Ok(()), Err)
}

fn rx(dev: &str, duration: Option<f64>, skb: bool, quiet: bool) -> Result<(), String> {
    if let Some(d) = duration {
        deadline(Instant::now(), d)?;
    }
    let sink = Sink::attach(dev, skb).map_err(|e| e.to_string())?;
    println!(
        "rx: attached to {dev} ({})",
        if skb { "skb" } else { "native" }
    );
    let start = Instant::now();
    let until = duration.map(|d| deadline(start, d)).transpose()?;
    let mut last = (start, sink.counts().map_err(|e| e.to_string())?);
    let mut next = start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if STOP.load(Ordering::Relaxed) || until.is_some_and(|u| now >= u) {
            break;
        }
        if now >= next && !quiet {
            let c = sink.counts().map_err(|e| e.to_string())?;
            let dt = now.duration_since(last.0).as_secs_f64();
            println!(
                "rx: t={:.0}s pps={:.0} frames={} magic={}",
                now.duration_since(start).as_secs_f64(),
                (c.frames - last.1.frames) as f64 / dt,
                c.frames,
                c.magic
            );
            last = (now, c);
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let c = sink.counts().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rx: frames={} magic={} bytes={} seconds={secs:.3} pps={:.0}",
        c.frames,
        c.magic,
        c.bytes,
        c.frames as f64 / secs
    );
    Ok(())
}
