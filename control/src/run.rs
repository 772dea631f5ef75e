//! `xgate run`: the appliance. Compiles the config, opens the AF_XDP
//! sockets (one worker at a time: libxdp's program set-up races when
//! sockets are created concurrently), starts one pinned worker per
//! configured worker and runs the control loop on the calling thread until
//! `stop` is set (the CLI sets it on SIGINT / SIGTERM):
//!
//! - LOG target lines from the shared ring go to the log output (stderr);
//! - connection expiry runs in slices (workers also sweep a slice per batch);
//! - with `stats_interval`, one summary line per interval.
//!
//! On stop the workers finish their round, flush, wait briefly for their
//! transmissions, and are joined one at a time; closing each worker's
//! sockets detaches xgate's XDP programs with the last socket of a device,
//! so nothing stays on the devices. A final line per worker reports its
//! counters and its frame accounting (`frames_leaked` must be 0).
//!
//! Device MACs come from /sys/class/net/DEV/address unless the config sets
//! `mac`. xgate owns the devices it binds: every frame they receive goes
//! to the dataplane, none to the kernel's stack (docs/architecture.md).
//! Interfaces with a `tap` give the kernel a view of its own: the taps are
//! created and set up ([`crate::host`]) before the workers start, a punt
//! thread moves frames between them and the workers, and they disappear
//! when it stops, after the workers.

use crate::api::{self, Runtime};
use crate::config::{self, ConfigError, render_errors};
use crate::publish::{Publisher, WorkerView};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use xgate_dataplane::io::afxdp::{self, AfXdpConfig, AfXdpError, BindMode, XdpMode};
use xgate_dataplane::io::punt::{self, PuntChannel, PuntThread};
use xgate_dataplane::io::tap::Tap;
use xgate_dataplane::pipeline::{Pipeline, Shared, Tables};
use xgate_dataplane::stats::WorkerStats;
use xgate_dataplane::worker::{IdlePolicy, Worker, WorkerExit, now_ns};

/// Options of `xgate run` beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print a summary line every interval (default: quiet).
    pub stats_interval: Option<Duration>,
    /// Write the final per-worker counters here on exit.
    pub stats_file: Option<PathBuf>,
    /// Back the UMEMs with huge pages when some are reserved.
    pub huge_pages: bool,
    pub idle: IdlePolicy,
    /// Time every pipeline stage (`xgate ctl stats` shows the cost).
    pub profile: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", render_errors(.0).trim_end())]
    Config(Vec<ConfigError>),
    #[error("{0}")]
    AfXdp(#[from] AfXdpError),
    #[error(
        "[dataplane] workers = {workers} but queues = {queues}: every worker needs a queue of every device"
    )]
    TooFewQueues { workers: usize, queues: usize },
    #[error(
        "[dataplane] workers/queues ask for {asked} queues but a device has only {fewest}: \
         every worker needs a queue of every device (set workers/queues to at most {fewest}, \
         or raise the device's channels: ethtool -L DEV combined N)"
    )]
    DeviceQueues { asked: usize, fewest: usize },
    #[error("{0}")]
    Mtu(String),
    #[error("starting worker {id}: {err}")]
    Spawn { id: usize, err: std::io::Error },
    #[error("{path}: {err}")]
    StatsFile { path: String, err: std::io::Error },
    #[error("control socket / metrics: {0}")]
    Services(std::io::Error),
    #[error("tap: {0}")]
    Tap(String),
    #[error(
        "{0}: no [[interface]]: xgate run needs at least one interface to bind (a config without any is only good for xgate check and replay)"
    )]
    NoInterfaces(String),
}

/// A device's MAC address from sysfs.
pub fn device_mac(device: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{device}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    (parts.next().is_none() && mac != [0; 6]).then_some(mac)
}

/// Workers and served queues from `[dataplane]` and the devices' queue
/// counts. Workers = `workers`, else `queues`, else one per online core but
/// no more than the fewest queues a device has (every worker needs a
/// socket on every device to transmit there). Served queues per device =
/// all of them (`queues` = 0), else the first `queues`: the XDP program
/// drops what the others receive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuePlan {
    pub workers: usize,
    /// Per device: the queues it has and the queues served (0..served).
    pub device_queues: Vec<u32>,
    pub served: Vec<u32>,
}

impl QueuePlan {
    /// Worker `w`'s queues of device `d`: q with q % workers == w.
    pub fn queues_of(&self, w: usize, d: usize) -> Vec<u32> {
        (w as u32..self.served[d]).step_by(self.workers).collect()
    }

    /// What the start line says about the devices' queues: counts, what
    /// is dropped, and a mismatch of channel counts.
    pub fn describe(&self, devices: &[String]) -> String {
        let mut parts = Vec::new();
        for (i, d) in devices.iter().enumerate() {
            let (n, s) = (self.device_queues[i], self.served[i]);
            parts.push(if s == n {
                format!("{d} {n} rx (all served)")
            } else {
                format!("{d} {n} rx ({s} served; queues {s}..{} dropped)", n - 1)
            });
        }
        let mut line = format!("queues: {}", parts.join(", "));
        let (lo, hi) = (
            self.device_queues.iter().min().copied().unwrap_or(0),
            self.device_queues.iter().max().copied().unwrap_or(0),
        );
        if lo != hi {
            line += &format!(
                "; channel counts differ ({lo} vs {hi}): workers are limited by the \
                 smallest; set them equal (ethtool -L DEV combined N)"
            );
        }
        line
    }
}

pub fn plan_workers(
    workers: Option<usize>,
    queues: usize,
    cores: usize,
    device_queues: &[u32],
) -> Result<QueuePlan, RunError> {
    let min = device_queues.iter().copied().min().unwrap_or(1).max(1) as usize;
    let w = match (workers, queues) {
        (Some(w), _) => w,
        (None, q) if q > 0 => q,
        (None, _) => cores.min(min).max(1),
    };
    if queues > 0 && queues < w {
        return Err(RunError::TooFewQueues { workers: w, queues });
    }
    let limit = if queues > 0 { queues } else { min };
    if w > limit || queues > min {
        return Err(RunError::DeviceQueues {
            asked: w.max(queues),
            fewest: min,
        });
    }
    Ok(QueuePlan {
        workers: w,
        device_queues: device_queues.to_vec(),
        served: device_queues
            .iter()
            .map(|&n| if queues > 0 { queues as u32 } else { n })
            .collect(),
    })
}

/// The largest IP MTU an interface with `tags` VLAN tags can have: its
/// frames (Ethernet header, tags, packet) must fit in a UMEM frame after
/// the headroom.
pub fn max_mtu(tags: usize) -> u32 {
    (xgate_dataplane::io::MAX_FRAME_LEN - 14 - 4 * tags) as u32
}

/// Checks every interface's `mtu` against what a frame carries and what
/// its device's MTU (`device_mtu`) allows: errors refuse the start, each
/// with the fix. A device MTU larger than a frame carries is only a
/// warning (longer frames are dropped by the kernel and counted in the
/// sockets' rx_dropped): xgate sends nothing longer than the interface's
/// `mtu`.
pub fn check_mtus(
    cfg: &config::Config,
    device_mtu: &dyn Fn(&str) -> Option<u32>,
) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let mut warned = std::collections::HashSet::new();
    for ic in &cfg.interfaces {
        let limit = max_mtu(ic.vlan.len());
        let mtu = u32::from(ic.mtu);
        if mtu > limit {
            errors.push(format!(
                "interface {}: mtu {mtu} needs {}-byte frames, but xgate's frames carry at most \
                 {} bytes ({}-byte UMEM frames minus {} bytes of headroom): set mtu to at most \
                 {limit} (and the device's: ip link set dev {} mtu {limit})",
                ic.name,
                mtu + 14 + 4 * ic.vlan.len() as u32,
                xgate_dataplane::io::MAX_FRAME_LEN,
                xgate_dataplane::io::FRAME_SIZE,
                xgate_dataplane::io::HEADROOM,
                ic.device,
            ));
        }
        // A bridge's own interface has no device: its frames leave by
        // the ports, which are checked as theirs.
        if cfg.is_bridge(&ic.device) {
            continue;
        }
        let Some(dev) = device_mtu(&ic.device) else {
            continue;
        };
        if ic.vlan.is_empty() && mtu > dev {
            errors.push(format!(
                "interface {}: mtu {mtu} is larger than device {}'s MTU {dev}: set mtu to at \
                 most {dev}, or raise the device's (ip link set dev {} mtu {mtu})",
                ic.name, ic.device, ic.device
            ));
        }
        if dev > max_mtu(0) && warned.insert(ic.device.clone()) {
            warnings.push(format!(
                "device {} has MTU {dev}, but xgate's frames carry at most {} bytes: longer \
                 frames are dropped; set ip link set dev {} mtu {}",
                ic.device,
                xgate_dataplane::io::MAX_FRAME_LEN,
                ic.device,
                max_mtu(0)
            ));
        }
    }
    (errors, warnings)
}

fn sysfs_mtu(device: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{device}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Runs until `stop` is set. Progress and LOG lines go to `log`.
pub fn run(
    path: &Path,
    opts: &RunOptions,
    stop: &AtomicBool,
    reload: &AtomicBool,
    log: &mut dyn Write,
) -> Result<Vec<WorkerExit>, RunError> {
    let cfg = config::load(path).map_err(RunError::Config)?;
    if cfg.interfaces.is_empty() {
        return Err(RunError::NoInterfaces(path.display().to_string()));
    }
    for ic in cfg.interfaces.iter().filter(|i| !cfg.is_bridge(&i.device)) {
        afxdp::device_queues(&ic.device)?;
    }
    let (errors, warnings) = check_mtus(&cfg, &sysfs_mtu);
    if !errors.is_empty() {
        return Err(RunError::Mtu(errors.join("\n")));
    }
    for w in &warnings {
        let _ = writeln!(log, "xgate: warning: {w}");
    }
    // The publisher compiles the config, builds the shared state and
    // publishes tables to the workers (reloads included).
    let publisher = Arc::new(
        Publisher::load(path, Box::new(|dev: &str, _| device_mac(dev)))
            .map_err(RunError::Config)?,
    );
    let shared = publisher.shared().clone();
    shared.profile.store(opts.profile, Ordering::Relaxed);
    crate::runtime::apply_limits(&shared, &cfg.dataplane);
    let devices = publisher.current().devices.as_ref().clone();
    let runtime = Arc::new(Runtime::new(publisher.clone(), Box::new(now_ns)));

    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut device_queues = Vec::with_capacity(devices.len());
    for d in &devices {
        device_queues.push(afxdp::device_queues(d)?);
    }
    let plan = plan_workers(
        cfg.dataplane.workers,
        cfg.dataplane.queues,
        cores.len().max(1),
        &device_queues,
    )?;
    let nworkers = plan.workers;
    let af = AfXdpConfig {
        xdp_mode: match cfg.dataplane.xdp_mode {
            config::XdpMode::Native => XdpMode::Native,
            config::XdpMode::Skb => XdpMode::Skb,
            config::XdpMode::Auto => XdpMode::Auto,
        },
        bind: match cfg.dataplane.bind {
            config::BindMode::Copy => BindMode::Copy,
            config::BindMode::ZeroCopy => BindMode::ZeroCopy,
            config::BindMode::Auto => BindMode::Auto,
        },
        huge_pages: opts.huge_pages,
        busy_poll: opts.idle == IdlePolicy::Busy,
        rx_ring: cfg.dataplane.rx_ring,
        ring_size: cfg.dataplane.tx_ring,
        fill_ring: cfg.dataplane.fill_ring,
        ..AfXdpConfig::default()
    };

    // The kernel's taps, before any socket: a failure leaves nothing behind.
    let punt = start_punt(&cfg, &publisher, nworkers)?;
    if let Some(p) = &punt {
        let _ = writeln!(log, "xgate: {}", p.line);
    }
    // The netlink mirror, once the taps exist (it dumps what they hold).
    let mirror = match crate::mirror::MirrorPlan::of(&cfg) {
        Some(plan) => {
            let line = format!(
                "mirroring from the kernel: {} (tables {})",
                plan.taps
                    .iter()
                    .map(|(tap, _, name, a, r)| {
                        let what = match (a, r) {
                            (true, true) => "addresses, routes",
                            (true, false) => "addresses",
                            _ => "routes",
                        };
                        format!("{name} <- {tap} ({what})")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.tables
                    .iter()
                    .map(|t| crate::config::values::table_name(*t))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let m = crate::mirror::start(plan, publisher.clone())
                .map_err(|e| RunError::Tap(format!("netlink mirror: {e}")))?;
            let _ = writeln!(log, "xgate: {line}");
            Some(m)
        }
        None => None,
    };

    // xgate's XDP program on every device (it drops what arrives on a
    // queue without a socket), then the sockets, one worker at a time, in
    // this thread. The programs are detached after the workers' sockets
    // close (dropped at the end of this function).
    let offload_flows = (cfg.dataplane.offload == config::Offload::Auto)
        .then(|| crate::offload::map_capacity(cfg.dataplane.flows));
    let progs = afxdp::attach_programs_offload(&devices, af.xdp_mode, &[], offload_flows)?;
    let _ = writeln!(log, "xgate: {}", plan.describe(&devices));
    // The offload (issue 16) where a device runs its program natively.
    let mut offloader = match (offload_flows, progs.progs.iter().find_map(|p| p.offload())) {
        (Some(cap), Some(prog)) => {
            let devs = devices
                .iter()
                .zip(&progs.progs)
                .map(|(d, p)| crate::offload::Device {
                    name: d.clone(),
                    ifindex: afxdp::prog::ifindex_of(d).unwrap_or(0),
                    rx: p.offload().is_some(),
                })
                .collect();
            let (o, line) = crate::offload::Offloader::start(
                prog,
                devs,
                &shared,
                generation_tables(&publisher),
                cap,
            );
            let _ = writeln!(log, "xgate: {line}");
            runtime.set_offload(o.stats.clone());
            Some(o)
        }
        (Some(_), None) => {
            let _ = writeln!(
                log,
                "xgate: offload: not running: no device runs XDP natively (xdp_mode, or the \
                 driver refused; see the socket lines)"
            );
            None
        }
        _ => None,
    };
    let mut ios = Vec::with_capacity(nworkers);
    for w in 0..nworkers {
        let qids: Vec<Vec<u32>> = (0..devices.len()).map(|d| plan.queues_of(w, d)).collect();
        let io = afxdp::open_worker_on(&devices, &qids, &af, &progs)?;
        let _ = writeln!(
            log,
            "xgate: {}",
            start_line(w, &devices, &qids, &io.obtained)
        );
        ios.push(io);
    }

    let stop_workers = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::with_capacity(nworkers);
    for (w, io) in ios.into_iter().enumerate() {
        let core = (!cores.is_empty()).then(|| cores[w % cores.len()].id);
        let (generation, tables) = generation_tables(&publisher);
        let mut pipeline = Pipeline::new(tables, shared.clone());
        pipeline.tables_gen = generation;
        if let Some(p) = &punt {
            pipeline.set_punt(p.channels[w].clone());
        }
        let view = Arc::new(WorkerView::new(w, &pipeline, &publisher));
        runtime.add_worker(view.clone());
        let mut tables = publisher.subscribe();
        let between = Box::new(move |p: &mut Pipeline| {
            tables.apply(p, &view);
        });
        match Worker::spawn(
            w,
            io,
            pipeline,
            stop_workers.clone(),
            opts.idle,
            core,
            between,
        ) {
            Ok(wk) => workers.push(wk),
            Err(err) => {
                stop_workers.store(true, Ordering::Relaxed);
                for wk in workers {
                    wk.join();
                }
                return Err(RunError::Spawn { id: w, err });
            }
        }
    }
    // `xgate ctl` and /metrics; dropping the handle stops both.
    let services = match api::start(runtime.clone(), &cfg.control) {
        Ok(s) => s,
        Err(e) => {
            stop_workers.store(true, Ordering::Relaxed);
            for wk in workers {
                wk.join();
            }
            return Err(RunError::Services(e));
        }
    };
    let _ = writeln!(
        log,
        "xgate: control socket {}{}",
        cfg.control.socket,
        if cfg.control.metrics.is_empty() {
            String::new()
        } else {
            format!(", metrics on http://{}/metrics", cfg.control.metrics)
        }
    );
    let _ = writeln!(
        log,
        "xgate: running {nworkers} worker(s) on {} device(s); SIGINT or SIGTERM stops",
        devices.len()
    );

    let mut last_stats = Instant::now();
    let mut nat_watch = crate::runtime::NatWatch::new(&shared.nat.stats(), Duration::from_secs(10));
    let mut last_nat_check = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let tables = publisher.tables();
        drain_log(&shared, &tables, log);
        for line in runtime.take_events() {
            let _ = writeln!(log, "xgate: {line}");
        }
        if last_nat_check.elapsed() >= Duration::from_secs(1) {
            last_nat_check = Instant::now();
            if let Some(line) = nat_watch.check(&shared.nat.stats(), last_nat_check) {
                let _ = writeln!(log, "xgate: {line}");
            }
        }
        if tables.tracking {
            shared.conntrack.expire(now_ns(), 4096);
        }
        if let Some(o) = offloader.as_mut() {
            let (generation, tables) = generation_tables(&publisher);
            o.tick(&shared, (generation, &tables), now_ns());
        }
        drop(tables);
        publisher.collect_retired();
        if reload.swap(false, Ordering::Relaxed) {
            // SIGHUP: re-read the config; an invalid one changes nothing.
            match publisher.reload() {
                Ok(r) => {
                    let _ = writeln!(log, "xgate: reloaded: {}", r.summary);
                    for w in &r.warnings {
                        let _ = writeln!(log, "xgate: reload: {w}");
                    }
                }
                Err(errs) => {
                    let _ = write!(
                        log,
                        "xgate: reload refused, nothing changed:\n{}",
                        render_errors(&errs)
                    );
                }
            }
        }
        if let Some(every) = opts.stats_interval
            && last_stats.elapsed() >= every
        {
            last_stats = Instant::now();
            let stats: Vec<_> = workers.iter().map(|w| w.stats.clone()).collect();
            let _ = writeln!(log, "xgate: {}", summary(&stats, shared.conntrack.len()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(services);
    drop(mirror);

    stop_workers.store(true, Ordering::Relaxed);
    let exits: Vec<WorkerExit> = workers.into_iter().map(Worker::join).collect();
    drain_log(&shared, &publisher.tables(), log);
    let mut report = String::new();
    for e in &exits {
        report += &exit_line(e);
        report.push('\n');
    }
    for e in &exits {
        report += &socket_lines(e);
    }
    if let Some(p) = punt {
        let s = p.thread.stop();
        report += &format!(
            "punt to_kernel={} from_kernel={} write_errors={} oversized={}\n",
            s.to_kernel.get(),
            s.from_kernel.get(),
            s.write_errors.get(),
            s.oversized.get()
        );
    }
    let mut drops = std::collections::BTreeMap::new();
    for e in &exits {
        for (r, n) in e.stats.nonzero_drops() {
            *drops.entry(r.name()).or_insert(0u64) += n;
        }
    }
    if !drops.is_empty() {
        report += "drops";
        for (r, n) in &drops {
            report += &format!(" {r}={n}");
        }
        report.push('\n');
    }
    for line in report.lines() {
        let _ = writeln!(log, "xgate: {line}");
    }
    if let Some(path) = &opts.stats_file {
        std::fs::write(path, &report).map_err(|err| RunError::StatsFile {
            path: path.display().to_string(),
            err,
        })?;
    }
    Ok(exits)
}

/// The published tables and their generation, from one snapshot.
fn generation_tables(p: &Publisher) -> (u64, Arc<xgate_dataplane::pipeline::Tables>) {
    let snap = p.current();
    (snap.generation, snap.tables.clone())
}

/// The start line of worker `w`: its queues, the modes obtained and why
/// better ones were refused.
fn start_line(w: usize, devices: &[String], qids: &[Vec<u32>], o: &afxdp::Obtained) -> String {
    let fmt_q = |q: &[u32]| {
        let v: Vec<String> = q.iter().map(|q| q.to_string()).collect();
        format!("[{}]", v.join(", "))
    };
    let same = qids.windows(2).all(|p| p[0] == p[1]);
    let queues = if same {
        let q = qids.first().map_or(&[][..], |q| &q[..]);
        format!("queue{} {}", if q.len() > 1 { "s" } else { "" }, fmt_q(q))
    } else {
        let v: Vec<String> = devices
            .iter()
            .zip(qids)
            .map(|(d, q)| format!("{d} {}", fmt_q(q)))
            .collect();
        format!("queues {}", v.join(", "))
    };
    let devs: Vec<String> = devices
        .iter()
        .zip(&o.xdp)
        .map(|(d, m)| format!("{d} xdp {}", m.name()))
        .collect();
    let mut line = format!(
        "worker {w}: {queues} on {}; {}, need_wakeup; UMEM {} frames ({} MiB{})",
        devs.join(", "),
        match o.tx_budget {
            Some(b) => format!("copy (tx budget {b})"),
            None => "zero-copy".to_string(),
        } + if o.busy_poll { ", busy poll" } else { "" },
        o.frames,
        (o.frames * xgate_dataplane::io::FRAME_SIZE) >> 20,
        if o.huge_pages { ", huge pages" } else { "" },
    );
    if !o.refused.is_empty() {
        line += &format!("; refused: {}", o.refused.join("; "));
    }
    line
}

/// The kernel's taps at work: the punt thread and its channels.
struct KernelPunt {
    thread: PuntThread,
    /// One per worker.
    channels: Vec<Arc<PuntChannel>>,
    /// What was set up, for the log.
    line: String,
}

/// The taps of the config, set up for the kernel, and the punt thread
/// serving them. None without taps.
fn start_punt(
    cfg: &config::Config,
    publisher: &Publisher,
    nworkers: usize,
) -> Result<Option<KernelPunt>, RunError> {
    let snap = publisher.current();
    if snap.taps.is_empty() {
        return Ok(None);
    }
    let mut taps = Vec::with_capacity(snap.taps.len());
    for name in snap.taps.iter() {
        let tap = Tap::create(name).map_err(|e| RunError::Tap(e.to_string()))?;
        taps.push(tap);
    }
    let plan = crate::host::plan(cfg, &snap.tables.interfaces, &snap.taps);
    crate::host::apply(&plan).map_err(RunError::Tap)?;
    let channels = punt::channels(nworkers).map_err(|e| RunError::Tap(e.to_string()))?;
    let thread =
        PuntThread::spawn(taps, channels.clone()).map_err(|e| RunError::Tap(e.to_string()))?;
    let line = format!(
        "kernel taps {} ({} setup commands); management traffic goes to the kernel",
        snap.taps.join(", "),
        plan.len()
    );
    Ok(Some(KernelPunt {
        thread,
        channels,
        line,
    }))
}

/// Prints the LOG target's lines waiting in the ring.
fn drain_log(shared: &Shared, tables: &Tables, log: &mut dyn Write) {
    let ifs = &tables.interfaces;
    while let Some(rec) = shared.log.pop() {
        let _ = writeln!(log, "{}", tables.filter.format_log(&rec, |i| ifs.name(i)));
    }
}

fn totals(s: &WorkerStats) -> (u64, u64) {
    s.ports.iter().fold((0, 0), |(r, t), p| {
        (r + p.rx_packets.get(), t + p.tx_packets.get())
    })
}

/// One line for all workers: packets in and out, per worker.
fn summary(stats: &[Arc<WorkerStats>], conns: usize) -> String {
    let mut s = String::new();
    for (i, st) in stats.iter().enumerate() {
        let (rx, tx) = totals(st);
        s += &format!(
            "w{i} rx {rx} tx {tx} fwd {} drop {}; ",
            st.forwarded.get(),
            st.total_drops()
        );
    }
    s + &format!("connections {conns}")
}

/// One line per socket of a worker: the kernel's XDP_STATISTICS.
pub fn socket_lines(e: &WorkerExit) -> String {
    let mut s = String::new();
    for (dev, q, rx, st) in &e.xdp_stats {
        s += &format!(
            "socket worker={} device={dev} queue={q} rx_packets={rx}",
            e.id
        );
        for (k, v) in st.pairs() {
            s += &format!(" {k}={v}");
        }
        s.push('\n');
    }
    s
}

/// The final line of one worker, `key=value` pairs (the stats file format).
pub fn exit_line(e: &WorkerExit) -> String {
    let (rx, tx) = totals(&e.stats);
    let queues: Vec<String> = e.queues.iter().map(|q| q.to_string()).collect();
    format!(
        "worker={} queues={} core={} rx_packets={rx} tx_packets={tx} forwarded={} local={} \
         drops={} frames={} frames_leaked={} pending_at_stop={} tx_kicks={} fill_kicks={} \
         busy_polls={} tx_kick_errors={} tx_kick_errno={}{}",
        e.id,
        queues.join(","),
        e.core.map_or("-".to_string(), |c| c.to_string()),
        e.stats.forwarded.get(),
        e.stats.local_delivered.get(),
        e.stats.total_drops(),
        e.frames,
        e.frames_leaked,
        e.pending_at_stop,
        e.syscalls.0,
        e.syscalls.1,
        e.syscalls.2,
        e.kick_errors.0,
        e.kick_errors.1,
        {
            // The sockets' XDP_STATISTICS, summed (per socket: `socket` lines).
            let mut sum = afxdp::XdpStats::default();
            for (_, _, _, st) in &e.xdp_stats {
                sum.add(st);
            }
            sum.pairs()
                .iter()
                .map(|(k, v)| format!(" xdp_{k}={v}"))
                .collect::<String>()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_plan() {
        let p = |w, q, cores, devs: &[u32]| {
            plan_workers(w, q, cores, devs).map(|p| (p.workers, p.served))
        };
        assert_eq!(p(None, 0, 2, &[1, 1]).unwrap(), (1, vec![1, 1]));
        // Every queue is served by default, also beyond the cores.
        assert_eq!(p(None, 0, 2, &[4, 4]).unwrap(), (2, vec![4, 4]));
        assert_eq!(p(None, 0, 2, &[4, 2]).unwrap(), (2, vec![4, 2]));
        assert_eq!(p(None, 0, 8, &[4, 3]).unwrap(), (3, vec![4, 3]));
        assert!(p(Some(2), 0, 8, &[1, 1]).is_err());
        assert_eq!(p(None, 4, 2, &[4, 4]).unwrap(), (4, vec![4, 4]));
        assert_eq!(p(Some(2), 4, 2, &[4, 4]).unwrap(), (2, vec![4, 4]));
        // An explicit limit: the rest of the queues are dropped.
        assert_eq!(p(Some(1), 2, 2, &[4, 4]).unwrap(), (1, vec![2, 2]));
        assert!(p(Some(3), 2, 2, &[4, 4]).is_err());
        assert!(p(None, 8, 2, &[4, 4]).is_err());
    }

    #[test]
    fn mtus_must_fit_a_frame_and_the_device() {
        let cfg = |extra: &str| {
            config::parse(
                &format!(
                    "[[interface]]\nname = \"a\"\ndevice = \"d0\"\n{extra}\n\
                     [[interface]]\nname = \"b\"\ndevice = \"d1\"\nvlan = [100, 10]\nmtu = 1770\n"
                ),
                "t.toml",
            )
            .unwrap()
        };
        assert_eq!(max_mtu(0), 1778);
        assert_eq!(max_mtu(2), 1770);
        let dev1500 = |_: &str| Some(1500);
        let (e, w) = check_mtus(&cfg(""), &|_: &str| Some(1778));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        let (e, _) = check_mtus(&cfg("mtu = 9000"), &|_: &str| Some(9000));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("mtu 9000") && e[0].contains("at most 1778"),
            "{e:?}"
        );
        let (e, _) = check_mtus(&cfg("mtu = 1700"), &dev1500);
        assert!(e[0].contains("larger than device d0's MTU 1500"), "{e:?}");
        let (e, w) = check_mtus(&cfg(""), &|_: &str| Some(9000));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 2, "one warning per device: {w:?}");
        assert!(w[0].contains("ip link set dev d0 mtu 1778"), "{w:?}");
    }

    #[test]
    fn ring_sizes_are_read_and_must_be_powers_of_two() {
        let c = config::parse(
            "[dataplane]\nrx_ring = 512\ntx_ring = 2048\nfill_ring = 4096\n",
            "t.toml",
        )
        .unwrap();
        let d = &c.dataplane;
        assert_eq!((d.rx_ring, d.tx_ring, d.fill_ring), (512, 2048, 4096));
        let d = config::parse("", "t.toml").unwrap().dataplane;
        assert_eq!((d.rx_ring, d.tx_ring, d.fill_ring), (1024, 1024, 2048));
        let e = config::parse("[dataplane]\nrx_ring = 1000\n", "t.toml").unwrap_err();
        assert!(e[0].to_string().contains("not a power of two"), "{e:?}");
        assert!(config::parse("[dataplane]\nfill_ring = 32\n", "t.toml").is_err());
    }

    #[test]
    fn queues_round_robin_and_the_start_line_reports_a_mismatch() {
        let plan = plan_workers(None, 0, 2, &[4, 2]).unwrap();
        assert_eq!(plan.queues_of(0, 0), vec![0, 2]);
        assert_eq!(plan.queues_of(1, 0), vec![1, 3]);
        assert_eq!(plan.queues_of(0, 1), vec![0]);
        assert_eq!(plan.queues_of(1, 1), vec![1]);
        let devs = ["a".to_string(), "b".to_string()];
        let d = plan.describe(&devs);
        assert!(
            d.contains("a 4 rx (all served), b 2 rx (all served)"),
            "{d}"
        );
        assert!(d.contains("channel counts differ (2 vs 4)"), "{d}");
        let limited = plan_workers(Some(1), 2, 2, &[4, 4]).unwrap();
        assert!(
            limited
                .describe(&devs)
                .contains("a 4 rx (2 served; queues 2..3 dropped)")
        );
        assert_eq!(limited.queues_of(0, 0), vec![0, 1]);
    }
}
