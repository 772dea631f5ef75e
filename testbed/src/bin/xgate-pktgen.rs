//! xgate-pktgen: benchmark traffic generator (XDP live frames) and
//! counting sink (XDP_DROP), see xgate_testbed::pktgen.
//!
//! ```text
//! xgate-pktgen tx --netns GEN --dev g0 --dst-mac 02:.. --src 10.1.0.2 --dst 10.2.0.2 \
//!     --flows 256 --size 64 --duration 10 [--rate PPS] [--threads 2]
//! xgate-pktgen rx --netns SINK --dev s0 [--duration SECS]      # until SIGINT
//! xgate-pktgen redirect --netns R --dev r0 --to r1             # until SIGINT
//! ```
//!
//! Output: `tx: sent=N seconds=S pps=P` and `rx: frames=N magic=M bytes=B
//! seconds=S pps=P` as the last line (key=value, for scripts).

use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use xgate_testbed::bpf;
use xgate_testbed::pktgen::{Generator, Proto, Redirect, Sink, Template};

#[derive(Parser)]
#[command(
    name = "xgate-pktgen",
    about = "XDP live-frame packet generator and counting sink"
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
        } => (|| {
            let t = Template {
                proto: match proto.as_str() {
                    "udp" => Proto::Udp,
                    "tcp" => Proto::Tcp,
                    p => return Err(format!("--proto {p}: udp or tcp")),
                },
                src_mac: match src_mac {
                    Some(m) => parse_mac(&m)?,
                    None => bpf::mac_of(&dev).map_err(|e| format!("{dev}: {e}"))?,
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
            tx(&t, &dev, rate, duration, (threads.max(1), first_cpu), count)
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

fn tx(
    t: &Template,
    dev: &str,
    rate: u64,
    duration: f64,
    (threads, first_cpu): (usize, usize),
    count: u64,
) -> Result<(), String> {
    let ifindex = bpf::ifindex(dev).map_err(|e| e.to_string())?;
    let g = Arc::new(Generator::new(t).map_err(|e| e.to_string())?);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(duration);
    let per_thread_rate = rate as f64 / threads as f64;
    let per_thread_count = if count > 0 {
        count.div_ceil(threads as u64)
    } else {
        u64::MAX
    };
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (g, sent) = (g.clone(), sent.clone());
            std::thread::spawn(move || -> Result<(), String> {
                xgate_testbed::pin_to_cpu((first_cpu + i) % cpus);
                // One BPF_PROG_RUN costs about 25 ms beyond its frames on
                // this kernel (page pool teardown waits for the frames in
                // flight), so calls must be long: flood runs about 100 ms
                // per call, paced mode 50 ms worth of frames (bursts at
                // 20 Hz).
                let mut chunk: u64 = if per_thread_rate > 0.0 {
                    (per_thread_rate / 20.0).max(64.0) as u64
                } else {
                    1 << 18
                };
                let t0 = Instant::now();
                let mut mine = 0u64;
                while Instant::now() < until
                    && !STOP.load(Ordering::Relaxed)
                    && mine < per_thread_count
                {
                    let n = chunk.min(per_thread_count - mine);
                    let c0 = Instant::now();
                    g.program
                        .run_live(&g.frame, ifindex, 0, n as u32)
                        .map_err(|e| format!("BPF_PROG_RUN (live frames) on {ifindex}: {e}"))?;
                    mine += n;
                    sent.fetch_add(n, Ordering::Relaxed);
                    if per_thread_rate > 0.0 {
                        let due = Duration::from_secs_f64(mine as f64 / per_thread_rate);
                        if let Some(wait) = due.checked_sub(t0.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    } else {
                        // Aim at 100 ms per call, and never past the end.
                        let pps = n as f64 / c0.elapsed().as_secs_f64().max(1e-6);
                        let left = until
                            .saturating_duration_since(Instant::now())
                            .as_secs_f64();
                        chunk = (pps * left.min(0.1)).clamp(4096.0, 1e9) as u64;
                    }
                }
                Ok(())
            })
        })
        .collect();
    let mut err = None;
    for w in workers {
        if let Err(e) = w.join().unwrap() {
            err = Some(e);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    println!("tx: sent={n} seconds={secs:.3} pps={:.0}", n as f64 / secs);
    err.map_or(Ok(()), Err)
}

fn rx(dev: &str, duration: Option<f64>, skb: bool, quiet: bool) -> Result<(), String> {
    let sink = Sink::attach(dev, skb).map_err(|e| e.to_string())?;
    println!(
        "rx: attached to {dev} ({})",
        if skb { "skb" } else { "native" }
    );
    let start = Instant::now();
    let until = duration.map(|d| start + Duration::from_secs_f64(d));
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
