//! Prometheus metrics: the text exposition format (0.0.4) rendered from a
//! [`Runtime`], served over HTTP at `[control] metrics` (`GET /metrics`).
//!
//! Counters are the workers' own, summed nowhere: one series per worker
//! (and per port and queue for port counters; worker i serves queue i), so
//! PromQL's `sum by` gives any aggregate and a rate never jumps when one
//! worker restarts. Gauges (connections by state, NAT ports in use) are
//! computed at scrape time; counting connections by state walks the
//! connection table (about a millisecond per 100k entries, on the
//! control thread only). Every drop reason is exported, zero or not, so
//! series do not appear out of nowhere.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xgate_dataplane::addr::key_ip;
use xgate_dataplane::stats::{DropReason, WorkerStats};

use crate::runtime::Runtime;
use crate::trace::proto_name;

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {v}");
    }
}

type WorkerCounter = fn(&WorkerStats) -> u64;

const WORKER_COUNTERS: &[(&str, &str, WorkerCounter)] = &[
    (
        "xgate_worker_batches_total",
        "Received bursts the worker ran through the pipeline.",
        |s| s.batches.get(),
    ),
    (
        "xgate_worker_idle_polls_total",
        "Polls that found no packet on any queue.",
        |s| s.idle_polls.get(),
    ),
    (
        "xgate_forwarded_packets_total",
        "Packets routed and transmitted.",
        |s| s.forwarded.get(),
    ),
    (
        "xgate_local_delivered_packets_total",
        "Packets addressed to the router itself.",
        |s| s.local_delivered.get(),
    ),
    (
        "xgate_icmp_errors_sent_total",
        "ICMP errors generated.",
        |s| s.icmp_errors.get(),
    ),
    (
        "xgate_icmp_rate_limited_total",
        "ICMP errors not sent because of rate limits.",
        |s| s.icmp_rate_limited.get(),
    ),
    ("xgate_echo_replies_total", "ICMP echo replies sent.", |s| {
        s.echo_replies.get()
    }),
    (
        "xgate_punted_packets_total",
        "Packets for the router handed to the host kernel (tap).",
        |s| s.punted.get(),
    ),
    (
        "xgate_from_kernel_packets_total",
        "Frames the host kernel sent through a tap.",
        |s| s.from_kernel.get(),
    ),
    (
        "xgate_bridged_packets_total",
        "Frames a bridge switched to one known port.",
        |s| s.bridged.get(),
    ),
    (
        "xgate_bridge_flooded_total",
        "Frames a bridge flooded (broadcast, multicast, unknown unicast).",
        |s| s.flooded.get(),
    ),
    (
        "xgate_bridge_flood_copies_total",
        "Copies of flooded frames sent.",
        |s| s.flood_copies.get(),
    ),
    (
        "xgate_bridge_fdb_learned_total",
        "MAC addresses learned or moved to another port.",
        |s| s.fdb_learned.get(),
    ),
    (
        "xgate_bridge_fdb_full_total",
        "MAC addresses the full MAC table could not take.",
        |s| s.fdb_full.get(),
    ),
    ("xgate_arp_replies_total", "ARP replies sent.", |s| {
        s.arp_replies.get()
    }),
    ("xgate_arp_requests_total", "ARP requests sent.", |s| {
        s.arp_requests.get()
    }),
    (
        "xgate_nd_adverts_total",
        "Neighbour advertisements sent.",
        |s| s.nd_adverts.get(),
    ),
    (
        "xgate_nd_solicits_total",
        "Neighbour solicitations sent.",
        |s| s.nd_solicits.get(),
    ),
    (
        "xgate_neighbors_learned_total",
        "Neighbour entries learned or refreshed.",
        |s| s.neighbors_learned.get(),
    ),
];

/// The whole exposition for one scrape.
pub fn render(rt: &Runtime) -> String {
    let mut o = Out(String::with_capacity(16 * 1024));
    let snap = rt.publisher.current();
    let workers = rt.workers();

    o.family("xgate_uptime_seconds", "gauge", "Seconds since start.");
    o.sample("xgate_uptime_seconds", &[], rt.started.elapsed().as_secs());
    o.family(
        "xgate_config_generation",
        "gauge",
        "Publications of the tables since start (1: the tables of the start).",
    );
    o.sample("xgate_config_generation", &[], snap.generation);
    o.family(
        "xgate_config_reloads_total",
        "counter",
        "Config reloads by result.",
    );
    let ord = std::sync::atomic::Ordering::Relaxed;
    o.sample(
        "xgate_config_reloads_total",
        &[("result", "ok")],
        rt.publisher.reloads.load(ord),
    );
    o.sample(
        "xgate_config_reloads_total",
        &[("result", "refused")],
        rt.publisher.reload_failures.load(ord),
    );

    let mirror = rt.publisher.mirror_status().clone();
    if !mirror.interfaces.is_empty() {
        o.family(
            "xgate_mirror_routes",
            "gauge",
            "Kernel routes of the mirrored tables: installed in xgate's, shadowed by a config route, unusable.",
        );
        for (state, n) in [
            ("installed", mirror.installed),
            ("shadowed", mirror.shadowed),
            ("unusable", mirror.unusable),
        ] {
            o.sample("xgate_mirror_routes", &[("state", state)], n as u64);
        }
        for (name, help, v) in [
            (
                "xgate_mirror_events_total",
                "Kernel messages read from the netlink event socket.",
                mirror.events,
            ),
            (
                "xgate_mirror_publications_total",
                "Publications of xgate's tables made by the mirror (one per batch).",
                mirror.publications,
            ),
            (
                "xgate_mirror_resyncs_total",
                "Full dumps of the kernel's addresses and routes (start, overruns, errors).",
                mirror.resyncs,
            ),
            (
                "xgate_mirror_overruns_total",
                "Overruns (ENOBUFS) of the netlink event socket.",
                mirror.overruns,
            ),
            (
                "xgate_mirror_flushed_connections_total",
                "Connections flushed because their masquerade address went away.",
                mirror.flushed,
            ),
        ] {
            o.family(name, "counter", help);
            o.sample(name, &[], v);
        }
    }

    let port_counters: [(&str, &str, usize); 4] = [
        ("xgate_port_rx_packets_total", "Frames received.", 0),
        ("xgate_port_rx_bytes_total", "Bytes received.", 1),
        ("xgate_port_tx_packets_total", "Frames transmitted.", 2),
        ("xgate_port_tx_bytes_total", "Bytes transmitted.", 3),
    ];
    for (name, help, which) in port_counters {
        o.family(name, "counter", help);
        for (p, dev) in snap.devices.iter().enumerate() {
            for w in &workers {
                let Some(ps) = w.stats.ports.get(p) else {
                    continue;
                };
                let v = [&ps.rx_packets, &ps.rx_bytes, &ps.tx_packets, &ps.tx_bytes][which].get();
                let q = w.index.to_string();
                o.sample(name, &[("port", dev), ("queue", &q), ("worker", &q)], v);
            }
        }
    }
    for (name, help, get) in WORKER_COUNTERS {
        o.family(name, "counter", help);
        for w in &workers {
            o.sample(name, &[("worker", &w.index.to_string())], get(&w.stats));
        }
    }
    o.family(
        "xgate_drops_total",
        "counter",
        "Packets dropped, by worker and reason.",
    );
    for w in &workers {
        let wi = w.index.to_string();
        for r in DropReason::ALL {
            o.sample(
                "xgate_drops_total",
                &[("worker", &wi), ("reason", r.name())],
                w.stats.drops(*r),
            );
        }
    }

    let shared = rt.publisher.shared();
    let ct = shared.conntrack.stats();
    o.family(
        "xgate_conntrack_capacity",
        "gauge",
        "Connection table size (entries).",
    );
    o.sample("xgate_conntrack_capacity", &[], shared.conntrack.capacity());
    let mut by_state: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    shared.conntrack.for_each(|_, f| {
        let proto = proto_name(f.original.proto);
        let state = if f.original.proto == 6 {
            f.tcp.name()
        } else if f.assured {
            "ASSURED"
        } else if f.seen_reply {
            "REPLIED"
        } else {
            "UNREPLIED"
        };
        *by_state.entry((proto, state)).or_default() += 1;
    });
    o.family(
        "xgate_conntrack_entries",
        "gauge",
        "Connections in the table, by protocol and state.",
    );
    for ((proto, state), n) in &by_state {
        o.sample(
            "xgate_conntrack_entries",
            &[("proto", proto), ("state", state)],
            n,
        );
    }
    o.family(
        "xgate_conntrack_events_total",
        "counter",
        "Connection table events.",
    );
    for (ev, n) in [
        ("inserted", ct.inserted),
        ("expired", ct.expired),
        ("evicted", ct.evicted),
        ("refused", ct.refused),
        ("killed", ct.killed),
        ("clash", ct.clashes),
        ("source_limited", ct.source_limited),
        ("tcp_out_of_window", ct.tcp_out_of_window),
    ] {
        o.sample("xgate_conntrack_events_total", &[("event", ev)], n);
    }

    let hs = shared.conntrack.helper_stats();
    o.family(
        "xgate_conntrack_expectations_total",
        "counter",
        "Connection-tracking helper expectations, by event.",
    );
    for (ev, n) in [
        ("created", hs.expect_created),
        ("used", hs.expect_used),
        ("expired", hs.expect_expired),
        ("full", hs.expect_full),
        ("master_full", hs.expect_master_full),
        ("removed", hs.expect_removed),
    ] {
        o.sample("xgate_conntrack_expectations_total", &[("event", ev)], n);
    }
    o.family(
        "xgate_conntrack_helper_events_total",
        "counter",
        "Connection-tracking helper events (attach, payload rewrites, bad commands).",
    );
    for (ev, n) in [
        ("attached", hs.attached),
        ("attach_full", hs.attach_full),
        ("rewrite", hs.rewrites),
        ("rewrite_refused", hs.rewrite_refused),
        ("parse_error", hs.parse_errors),
        ("partial", hs.partial),
        ("wrong_address", hs.wrong_address),
    ] {
        o.sample("xgate_conntrack_helper_events_total", &[("event", ev)], n);
    }

    if let Some(off) = rt.offload() {
        use std::sync::atomic::Ordering::Relaxed;
        o.family(
            "xgate_offload_entries",
            "gauge",
            "Connection directions forwarded by the XDP offload now, and the map's capacity.",
        );
        o.sample("xgate_offload_entries", &[], off.entries.load(Relaxed));
        o.family(
            "xgate_offload_capacity",
            "gauge",
            "Connection directions the XDP offload's map holds at most.",
        );
        o.sample("xgate_offload_capacity", &[], off.capacity.load(Relaxed));
        o.family(
            "xgate_offload_events_total",
            "counter",
            "XDP offload entries by event (inserted, refused, map full, removed, flushes, ...).",
        );
        for (ev, n) in [
            ("inserted", off.inserted.load(Relaxed)),
            ("refused", off.refused.load(Relaxed)),
            ("map_full", off.map_full.load(Relaxed)),
            ("removed", off.removed.load(Relaxed)),
            ("flush", off.flushes.load(Relaxed)),
            ("stale", off.stale.load(Relaxed)),
            ("queued", shared.offload.queued.load(Relaxed)),
            ("queue_full", shared.offload.queue_full.load(Relaxed)),
        ] {
            o.sample("xgate_offload_events_total", &[("event", ev)], n);
        }
        o.family(
            "xgate_offload_packets_total",
            "counter",
            "Frames the XDP offload program saw, by outcome (offloaded, or why the workers got it).",
        );
        for (outcome, n) in off.outcomes() {
            o.sample("xgate_offload_packets_total", &[("outcome", outcome)], n);
        }
    }

    let nat = shared.nat.stats();
    o.family(
        "xgate_nat_ports_in_use",
        "gauge",
        "NAT source ports allocated, by external address and protocol.",
    );
    for p in &nat.pools {
        let a = key_ip(p.addr).to_string();
        for (proto, n) in [("tcp", p.tcp), ("udp", p.udp), ("icmp", p.icmp)] {
            o.sample(
                "xgate_nat_ports_in_use",
                &[("address", &a), ("proto", proto)],
                n,
            );
        }
    }
    o.family(
        "xgate_nat_ports_exhausted_total",
        "counter",
        "NAT port allocations that found no free port.",
    );
    o.sample("xgate_nat_ports_exhausted_total", &[], nat.exhausted);
    o.family(
        "xgate_nat_source_limited_total",
        "counter",
        "NAT port allocations refused because the inside address held its limit of ports.",
    );
    o.sample("xgate_nat_source_limited_total", &[], nat.source_limited);

    o.family(
        "xgate_neighbors",
        "gauge",
        "Entries in the neighbour (ARP/NDP) table.",
    );
    o.sample(
        "xgate_neighbors",
        &[],
        shared.neighbors.entries(rt.now()).len(),
    );
    let snap = rt.publisher.current();
    let bridges = &snap.tables.bridges;
    if !bridges.is_empty() {
        let ageing = |id: u8| bridges.list.get(usize::from(id)).map_or(0, |b| b.ageing_ns);
        let mut per = vec![0usize; bridges.list.len()];
        for e in shared.fdb.entries(rt.now(), ageing) {
            if let Some(n) = per.get_mut(usize::from(e.bridge)) {
                *n += 1;
            }
        }
        o.family(
            "xgate_bridge_fdb_entries",
            "gauge",
            "Live entries of the bridges' MAC table, per bridge.",
        );
        for (b, n) in bridges.list.iter().zip(per) {
            o.sample("xgate_bridge_fdb_entries", &[("bridge", &b.name)], n);
        }
    }
    o.0
}

/// At most this many connections are open at once; a new one beyond it
/// closes the oldest (the one idle longest), so idle connections can
/// never keep a real scrape out.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection that has not sent its request, or not taken its answer,
/// within this time is closed.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(5);
/// A request head longer than this is refused (431).
const MAX_HEAD: usize = 8 * 1024;
/// The loop's sleep when nothing happened, with and without connections.
const TICK_BUSY: Duration = Duration::from_millis(2);
const TICK_IDLE: Duration = Duration::from_millis(20);

/// The endpoint's own counters (also exported with every scrape).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections closed to make room (over [`MAX_CONNECTIONS`]).
    pub evicted: AtomicU64,
    /// Connections closed for taking longer than [`CONN_TIMEOUT`].
    pub timed_out: AtomicU64,
    /// `accept` failures (e.g. out of file descriptors): logged, retried.
    pub accept_errors: AtomicU64,
    /// Scrapes answered.
    pub served: AtomicU64,
}

/// The running metrics endpoint; dropping it stops the thread.
pub struct MetricsHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsHandle {
    /// The address it listens on (the port, when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint's own counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `GET /metrics` on `addr` (`host:port`) from one thread named
/// `xgate-metrics`. `Ok(None)` when `addr` is empty (metrics disabled).
///
/// One thread serves every connection with non-blocking sockets: at most
/// [`MAX_CONNECTIONS`] open (a new one closes the oldest), each closed
/// after [`CONN_TIMEOUT`], one request per connection (`Connection:
/// close`). An `accept` error is logged (at most once a second) and
/// retried: the listener never dies. So no number of local clients can
/// take more than one thread and `MAX_CONNECTIONS` descriptors.
pub fn serve(addr: &str, rt: Arc<Runtime>) -> std::io::Result<Option<MetricsHandle>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(addr)
        .map_err(|e| std::io::Error::other(format!("metrics on {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(ServerStats::default());
    let thread = {
        let stop = stop.clone();
        let stats = stats.clone();
        std::thread::Builder::new()
            .name("xgate-metrics".into())
            .spawn(move || serve_loop(listener, &rt, &stop, &stats))?
    };
    Ok(Some(MetricsHandle {
        stop,
        addr: bound,
        stats,
        thread: Some(thread),
    }))
}

struct Conn {
    stream: TcpStream,
    since: Instant,
    head: Vec<u8>,
    /// The answer and how much of it is written.
    out: Option<(Vec<u8>, usize)>,
}

fn serve_loop(listener: TcpListener, rt: &Runtime, stop: &AtomicBool, stats: &ServerStats) {
    let mut conns: VecDeque<Conn> = VecDeque::with_capacity(MAX_CONNECTIONS + 1);
    let mut last_log: Option<Instant> = None;
    while !stop.load(Ordering::Acquire) {
        let mut busy = false;
        // Accept what is pending, at most half the cap per round: every
        // connection is read at least once before a flood of newer ones
        // can push it out, so a scrape that sends its request at once is
        // answered even while connections keep coming.
        for _ in 0..MAX_CONNECTIONS / 2 {
            match listener.accept() {
                Ok((s, _)) => {
                    busy = true;
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    if s.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if conns.len() >= MAX_CONNECTIONS {
                        conns.pop_front();
                        stats.evicted.fetch_add(1, Ordering::Relaxed);
                    }
                    conns.push_back(Conn {
                        stream: s,
                        since: Instant::now(),
                        head: Vec::new(),
                        out: None,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        eprintln!("xgate: metrics: accept failed: {e} (retrying)");
                        last_log = Some(Instant::now());
                    }
                    // Out of descriptors: close the oldest to make room.
                    if conns.pop_front().is_some() {
                        stats.evicted.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
        conns.retain_mut(|c| {
            let (keep, progress) = step(c, rt, stats);
            busy |= progress;
            if keep && c.since.elapsed() >= CONN_TIMEOUT {
                stats.timed_out.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            keep
        });
        if !busy {
            std::thread::sleep(if conns.is_empty() {
                TICK_IDLE
            } else {
                TICK_BUSY
            });
        }
    }
}

/// Advances one connection: (keep it open, something happened).
fn step(c: &mut Conn, rt: &Runtime, stats: &ServerStats) -> (bool, bool) {
    let mut progress = false;
    if c.out.is_none() {
        let mut buf = [0u8; 2048];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return (false, true),
                Ok(n) => {
                    progress = true;
                    c.head.extend_from_slice(&buf[..n]);
                    if let Some(end) = find_head_end(&c.head) {
                        c.out = Some((answer(&c.head[..end], rt, stats), 0));
                        break;
                    }
                    if c.head.len() > MAX_HEAD {
                        c.out = Some((http(431, "text/plain", "request head too large\n"), 0));
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (true, progress),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return (false, true),
            }
        }
    }
    if let Some((out, pos)) = &mut c.out {
        while *pos < out.len() {
            match c.stream.write(&out[*pos..]) {
                Ok(0) => return (false, true),
                Ok(n) => {
                    *pos += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return (true, progress),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return (false, true),
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        return (false, true);
    }
    (true, progress)
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| b.windows(2).position(|w| w == b"\n\n"))
}

fn http(status: u16, ctype: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

fn answer(head: &[u8], rt: &Runtime, stats: &ServerStats) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            stats.served.fetch_add(1, Ordering::Relaxed);
            let mut body = render(rt);
            render_server(&mut body, stats);
            http(200, "text/plain; version=0.0.4; charset=utf-8", &body)
        }
        ("GET", "/") => http(200, "text/plain", "xgate: metrics at /metrics\n"),
        ("GET", _) => http(404, "text/plain", "not found\n"),
        ("", _) => http(400, "text/plain", "bad request\n"),
        _ => http(405, "text/plain", "method not allowed\n"),
    }
}

/// The endpoint's own counters, appended to a scrape.
fn render_server(body: &mut String, stats: &ServerStats) {
    let mut o = Out(std::mem::take(body));
    o.family(
        "xgate_metrics_connections_total",
        "counter",
        "Connections to this endpoint, by what became of them beyond a normal answer.",
    );
    for (what, v) in [
        ("accepted", &stats.accepted),
        ("evicted", &stats.evicted),
        ("timed_out", &stats.timed_out),
        ("accept_error", &stats.accept_errors),
    ] {
        o.sample(
            "xgate_metrics_connections_total",
            &[("event", what)],
            v.load(Ordering::Relaxed),
        );
    }
    *body = o.0;
}
