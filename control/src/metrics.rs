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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

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
    ] {
        o.sample("xgate_conntrack_events_total", &[("event", ev)], n);
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
        "xgate_neighbors",
        "gauge",
        "Entries in the neighbour (ARP/NDP) table.",
    );
    o.sample(
        "xgate_neighbors",
        &[],
        shared.neighbors.entries(rt.now()).len(),
    );
    o.0
}

/// The running metrics endpoint; dropping it stops the thread.
pub struct MetricsHandle {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
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
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `GET /metrics` on `addr` (`host:port`) from a thread named
/// `xgate-metrics`. `Ok(None)` when `addr` is empty (metrics disabled).
pub fn serve(addr: &str, rt: Arc<Runtime>) -> std::io::Result<Option<MetricsHandle>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let server = tiny_http::Server::http(addr)
        .map_err(|e| std::io::Error::other(format!("metrics on {addr}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("metrics: not an IP listener"))?;
    let server = Arc::new(server);
    let thread = {
        let server = server.clone();
        std::thread::Builder::new()
            .name("xgate-metrics".into())
            .spawn(move || {
                for req in server.incoming_requests() {
                    let path = req.url().split('?').next().unwrap_or("");
                    let resp = match (req.method(), path) {
                        (tiny_http::Method::Get, "/metrics") => {
                            let ct = tiny_http::Header::from_bytes(
                                &b"Content-Type"[..],
                                &b"text/plain; version=0.0.4; charset=utf-8"[..],
                            )
                            .expect("valid header");
                            tiny_http::Response::from_string(render(&rt)).with_header(ct)
                        }
                        (tiny_http::Method::Get, "/") => {
                            tiny_http::Response::from_string("xgate: metrics at /metrics\n")
                        }
                        _ => tiny_http::Response::from_string("not found\n").with_status_code(404),
                    };
                    let _ = req.respond(resp);
                }
            })?
    };
    Ok(Some(MetricsHandle {
        server,
        addr: bound,
        thread: Some(thread),
    }))
}
