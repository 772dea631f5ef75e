//! What the control server answers, each command as text (in the style of
//! the Linux tool it mirrors) and as JSON data.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde_json::{Value, json};
use xgate_dataplane::addr::key_ip;
use xgate_dataplane::conntrack::{Flow, FlowKey};
use xgate_dataplane::filter::{ChainCounters, RuleCounters};
use xgate_dataplane::iface::Interfaces;
use xgate_dataplane::packet::ether::fmt_mac;
use xgate_dataplane::route::neighbor::REACHABLE_NS;
use xgate_dataplane::route::{self as rt, RouteType};
use xgate_dataplane::stats::{DropReason, Stage};

use super::{Command, CtAction, FlowFilter, Request, Response, VERSION};
use crate::config::render_errors;
use crate::config::values::{parse_table, table_name};
use crate::iptables;
use crate::mirror::{RouteKey, proto_name as route_proto_name};
use crate::publish::Snapshot;
use crate::routes;
use crate::runtime::Runtime;
use crate::trace::{Selector, proto_name};

fn ip_of(k: u128) -> IpAddr {
    key_ip(k)
}

impl Runtime {
    /// Answers one request.
    pub fn handle(&self, req: &Request) -> Response {
        if req.version != VERSION {
            return Response::error(format!(
                "protocol version {} not supported (this xgate speaks {VERSION})",
                req.version
            ));
        }
        match self.answer(&req.command) {
            Ok(r) => r,
            Err(e) => Response::error(e),
        }
    }

    fn answer(&self, cmd: &Command) -> Result<Response, String> {
        match cmd {
            Command::Stats => Ok(self.stats()),
            Command::Conntrack { filter, action } => self.conntrack(filter, *action),
            Command::Routes { table } => self.routes(table.as_deref()),
            Command::RouteGet {
                dst,
                from,
                iif,
                mark,
            } => self.route_get(*dst, *from, iif.as_deref(), *mark),
            Command::RouteAdd { route } | Command::RouteDel { route } => {
                let spec = routes::parse_spec(route.iter().map(String::as_str))?;
                let add = matches!(cmd, Command::RouteAdd { .. });
                let g = if add {
                    self.publisher.route_add(&spec)?
                } else {
                    self.publisher.route_del(&spec)?
                };
                Ok(Response::ok(
                    format!("published generation {g}\n"),
                    json!({ "generation": g }),
                ))
            }
            Command::Rules => Ok(self.rules()),
            Command::Ipset { op, name, element } => {
                self.ipset(op, name.as_deref(), element.as_deref())
            }
            Command::Neigh => Ok(self.neigh()),
            Command::Expectations => Ok(self.expectations()),
            Command::Reload => Ok(self.reload()),
            Command::Mirror => Ok(self.mirror()),
            Command::Fdb { bridge, flush } => self.fdb(bridge.as_deref(), *flush),
            Command::TraceAdd { count, filter } => {
                let sel = Selector::new(filter)?;
                self.trace.add(*count, sel);
                Ok(Response::ok(
                    format!("tracing the next {count} matching packets\n"),
                    json!({ "count": count }),
                ))
            }
            Command::TraceShow => {
                let lines = self.trace.lines(&self.publisher.tables());
                let mut text = lines.join("\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                let _ = writeln!(
                    text,
                    "# {} packets traced, {} still to trace",
                    self.trace.traced.load(std::sync::atomic::Ordering::Relaxed),
                    self.trace.remaining()
                );
                Ok(Response::ok(
                    text,
                    json!({ "lines": lines, "remaining": self.trace.remaining() }),
                ))
            }
            Command::TraceClear => {
                self.trace.clear();
                Ok(Response::ok("trace cleared\n".into(), json!({})))
            }
        }
    }

    fn stats(&self) -> Response {
        let snap = self.publisher.current();
        let workers = self.workers();
        let uptime = self.started.elapsed().as_secs();
        let mut t = String::new();
        let _ = writeln!(
            t,
            "xgate: up {}, config generation {} ({} reloads, {} refused), {} workers",
            fmt_duration(uptime),
            snap.generation,
            self.publisher
                .reloads
                .load(std::sync::atomic::Ordering::Relaxed),
            self.publisher
                .reload_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            workers.len()
        );
        let _ = writeln!(
            t,
            "\n{:<5} {:<12} {:>14} {:>16} {:>14} {:>16}",
            "port", "device", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes"
        );
        let mut ports = Vec::new();
        for (p, dev) in snap.devices.iter().enumerate() {
            let mut c = [0u64; 4];
            let mut per_queue = Vec::new();
            for w in &workers {
                if let Some(ps) = w.stats.ports.get(p) {
                    let q = [
                        ps.rx_packets.get(),
                        ps.rx_bytes.get(),
                        ps.tx_packets.get(),
                        ps.tx_bytes.get(),
                    ];
                    for (a, b) in c.iter_mut().zip(q) {
                        *a += b;
                    }
                    per_queue.push(json!({
                        "queue": w.index, "rx_packets": q[0], "rx_bytes": q[1],
                        "tx_packets": q[2], "tx_bytes": q[3],
                    }));
                }
            }
            let _ = writeln!(
                t,
                "{:<5} {:<12} {:>14} {:>16} {:>14} {:>16}",
                p, dev, c[0], c[1], c[2], c[3]
            );
            ports.push(json!({
                "port": p, "device": dev, "rx_packets": c[0], "rx_bytes": c[1],
                "tx_packets": c[2], "tx_bytes": c[3], "queues": per_queue,
            }));
        }
        let _ = writeln!(
            t,
            "\n{:<7} {:>12} {:>12} {:>14} {:>10} {:>10} {:>10}",
            "worker", "batches", "idle_polls", "forwarded", "local", "icmp_err", "drops"
        );
        let mut wjson = Vec::new();
        let mut drops = vec![0u64; DropReason::COUNT];
        for w in &workers {
            let s = &w.stats;
            for (i, r) in DropReason::ALL.iter().enumerate() {
                drops[i] += s.drops(*r);
            }
            let _ = writeln!(
                t,
                "{:<7} {:>12} {:>12} {:>14} {:>10} {:>10} {:>10}",
                w.index,
                s.batches.get(),
                s.idle_polls.get(),
                s.forwarded.get(),
                s.local_delivered.get(),
                s.icmp_errors.get(),
                s.total_drops()
            );
            wjson.push(json!({
                "worker": w.index,
                "batches": s.batches.get(),
                "idle_polls": s.idle_polls.get(),
                "forwarded": s.forwarded.get(),
                "local_delivered": s.local_delivered.get(),
                "arp_replies": s.arp_replies.get(),
                "arp_requests": s.arp_requests.get(),
                "nd_adverts": s.nd_adverts.get(),
                "nd_solicits": s.nd_solicits.get(),
                "icmp_errors": s.icmp_errors.get(),
                "icmp_rate_limited": s.icmp_rate_limited.get(),
                "echo_replies": s.echo_replies.get(),
                "neighbors_learned": s.neighbors_learned.get(),
                "punted": s.punted.get(),
                "from_kernel": s.from_kernel.get(),
                "bridged": s.bridged.get(),
                "flooded": s.flooded.get(),
                "flood_copies": s.flood_copies.get(),
                "fdb_learned": s.fdb_learned.get(),
                "fdb_full": s.fdb_full.get(),
                "drops": s.total_drops(),
            }));
        }
        let _ = writeln!(t, "\ndrops:");
        let mut djson = serde_json::Map::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            if drops[i] > 0 {
                let _ = writeln!(t, "  {:<28} {:>14}", r.name(), drops[i]);
                djson.insert(r.name().into(), json!(drops[i]));
            }
        }
        if djson.is_empty() {
            let _ = writeln!(t, "  (none)");
        }
        let shared = self.publisher.shared();
        let ct = shared.conntrack.stats();
        let cap = shared.conntrack.capacity();
        let _ = writeln!(
            t,
            "\nconntrack: {} of {} entries; inserted {}, expired {}, evicted {}, refused {}, \
             killed {}, clashes {}, tcp_out_of_window {}",
            ct.live,
            cap,
            ct.inserted,
            ct.expired,
            ct.evicted,
            ct.refused,
            ct.killed,
            ct.clashes,
            ct.tcp_out_of_window
        );
        let hs = shared.conntrack.helper_stats();
        let _ = writeln!(
            t,
            "helpers: attached {} (refused {}); expectations created {}, used {}, expired {}, \
             full {}, master full {}, removed {}; rewrites {} (refused {}); parse errors {}, \
             partial {}, wrong address {}",
            hs.attached,
            hs.attach_full,
            hs.expect_created,
            hs.expect_used,
            hs.expect_expired,
            hs.expect_full,
            hs.expect_master_full,
            hs.expect_removed,
            hs.rewrites,
            hs.rewrite_refused,
            hs.parse_errors,
            hs.partial,
            hs.wrong_address
        );
        let snap = self.publisher.current();
        if !snap.tables.bridges.is_empty() {
            let sum = |f: fn(&xgate_dataplane::stats::WorkerStats) -> u64| {
                workers.iter().map(|w| f(&w.stats)).sum::<u64>()
            };
            let live = shared.fdb.entries(self.now(), |id| {
                snap.tables
                    .bridges
                    .list
                    .get(usize::from(id))
                    .map_or(0, |b| b.ageing_ns)
            });
            let _ = writeln!(
                t,
                "bridges: switched {}, flooded {} ({} copies); MAC table {} of {} entries, \
                 learned {}, full {}",
                sum(|s| s.bridged.get()),
                sum(|s| s.flooded.get()),
                sum(|s| s.flood_copies.get()),
                live.len(),
                shared.fdb.capacity(),
                sum(|s| s.fdb_learned.get()),
                sum(|s| s.fdb_full.get()),
            );
        }
        let nat = shared.nat.stats();
        let _ = writeln!(
            t,
            "nat: {} ports in use, {} times exhausted",
            nat.in_use, nat.exhausted
        );
        let mut pools = Vec::new();
        for p in &nat.pools {
            let a = ip_of(p.addr);
            let _ = writeln!(
                t,
                "  {:<40} tcp {:>6} udp {:>6} icmp {:>6}",
                a.to_string(),
                p.tcp,
                p.udp,
                p.icmp
            );
            pools.push(json!({ "address": a, "tcp": p.tcp, "udp": p.udp, "icmp": p.icmp }));
        }
        let offload = self.offload().map(|o| {
            use std::sync::atomic::Ordering::Relaxed;
            let q = &shared.offload;
            let outcomes: serde_json::Map<String, Value> = o
                .outcomes()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let _ = writeln!(
                t,
                "offload: {} of {} directions in XDP; inserted {}, refused {}, map full {}, \
                 removed {}, flushes {}, stale {}, queued {}, queue full {}",
                o.entries.load(Relaxed),
                o.capacity.load(Relaxed),
                o.inserted.load(Relaxed),
                o.refused.load(Relaxed),
                o.map_full.load(Relaxed),
                o.removed.load(Relaxed),
                o.flushes.load(Relaxed),
                o.stale.load(Relaxed),
                q.queued.load(Relaxed),
                q.queue_full.load(Relaxed),
            );
            let _ = writeln!(
                t,
                "  program: {}",
                o.outcomes()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            json!({
                "entries": o.entries.load(Relaxed), "capacity": o.capacity.load(Relaxed),
                "inserted": o.inserted.load(Relaxed), "refused": o.refused.load(Relaxed),
                "map_full": o.map_full.load(Relaxed), "removed": o.removed.load(Relaxed),
                "flushes": o.flushes.load(Relaxed), "stale": o.stale.load(Relaxed),
                "queued": q.queued.load(Relaxed), "queue_full": q.queue_full.load(Relaxed),
                "program": outcomes,
            })
        });
        // Per-stage cost over all workers, like VPP's `show runtime`.
        let mut sjson = Vec::new();
        let mut rows = String::new();
        for st in Stage::ALL {
            let (mut calls, mut pkts, mut nanos) = (0u64, 0u64, 0u64);
            for w in &workers {
                let c = &w.stats.stages[st as usize];
                calls += c.calls.get();
                pkts += c.packets.get();
                nanos += c.nanos.get();
            }
            if calls == 0 {
                continue;
            }
            let per_pkt = nanos as f64 / pkts.max(1) as f64;
            let vectors = pkts as f64 / calls as f64;
            let _ = writeln!(
                rows,
                "  {:<16} {:>12} {:>14} {:>12.1} {:>12.1}",
                st.name(),
                calls,
                pkts,
                vectors,
                per_pkt
            );
            sjson.push(json!({
                "stage": st.name(), "calls": calls, "packets": pkts,
                "vectors_per_call": vectors, "ns_per_packet": per_pkt,
            }));
        }
        if sjson.is_empty() {
            let _ = writeln!(
                t,
                "\nper-stage cost: not measured (start `xgate run` with --profile)"
            );
        } else {
            let _ = writeln!(
                t,
                "\nper-stage cost:\n  {:<16} {:>12} {:>14} {:>12} {:>12}\n{rows}",
                "stage", "calls", "packets", "vectors/call", "ns/packet"
            );
        }
        Response::ok(
            t,
            json!({
                "uptime_seconds": uptime,
                "generation": snap.generation,
                "ports": ports,
                "workers": wjson,
                "drops": djson,
                "conntrack": {
                    "entries": ct.live, "capacity": cap, "inserted": ct.inserted,
                    "expired": ct.expired, "evicted": ct.evicted, "refused": ct.refused,
                    "killed": ct.killed, "clashes": ct.clashes,
                    "tcp_out_of_window": ct.tcp_out_of_window,
                },
                "helpers": helper_json(&hs),
                "nat": { "in_use": nat.in_use, "exhausted": nat.exhausted, "pools": pools },
                "stages": sjson,
                "offload": offload,
            }),
        )
    }

    fn conntrack(&self, filter: &FlowFilter, action: CtAction) -> Result<Response, String> {
        let sel = Selector::new(filter)?;
        let ct = &self.publisher.shared().conntrack;
        let now = self.now();
        let mut picked = Vec::new();
        ct.for_each(|id, f| {
            let o = &f.original;
            if action == CtAction::Flush || sel.matches(ip_of(o.src), ip_of(o.dst), o.proto) {
                picked.push((id, *f));
            }
        });
        if action != CtAction::List {
            // An offloaded connection goes through the control thread:
            // its XDP entries first, then the connection (within 10 ms).
            let shared = self.publisher.shared();
            let n = picked
                .iter()
                .filter(|(id, _)| {
                    if ct.offload_installed_conn(*id) {
                        shared
                            .offload
                            .push(xgate_dataplane::offload::Request::Kill(*id))
                    } else {
                        ct.remove(*id)
                    }
                })
                .count();
            let text = format!("xgate conntrack: {n} flow entries have been deleted.\n");
            return Ok(Response::ok(text, json!({ "deleted": n })));
        }
        let mut text = String::new();
        let mut flows = Vec::new();
        for (_, f) in &picked {
            text.push_str(&format_flow(f, now));
            text.push('\n');
            flows.push(flow_json(f, now));
        }
        let _ = writeln!(
            text,
            "xgate conntrack: {} flow entries have been shown.",
            picked.len()
        );
        Ok(Response::ok(text, json!({ "flows": flows })))
    }

    /// `conntrack -L expect`.
    fn expectations(&self) -> Response {
        let ct = &self.publisher.shared().conntrack;
        let now = self.now();
        let mut list = Vec::new();
        ct.for_each_expectation(|e| {
            let master = ct.get(e.master);
            list.push((*e, master));
        });
        let mut text = String::new();
        let mut json = Vec::new();
        for (e, master) in &list {
            let left = remaining_ms(e.expires_ms, now) / 1000;
            let _ = write!(
                text,
                "{left} proto={} src={} dst={} sport=0 dport={} mask-src={} mask-dst={} sport=0 dport=65535",
                e.key.proto,
                ip_of(e.key.src),
                ip_of(e.key.dst),
                e.key.dport,
                full_mask(e.key.src),
                full_mask(e.key.dst),
            );
            if let Some(m) = master {
                let o = &m.original;
                let _ = write!(
                    text,
                    " master-src={} master-dst={} sport={} dport={}",
                    ip_of(o.src),
                    ip_of(o.dst),
                    o.sport,
                    o.dport
                );
            }
            let _ = writeln!(
                text,
                " class=0 helper={} nat-to={}:{}",
                e.helper.name(),
                ip_of(e.target.dst),
                e.target.dport
            );
            json.push(json!({
                "timeout": left,
                "proto": e.key.proto,
                "src": ip_of(e.key.src), "dst": ip_of(e.key.dst), "dport": e.key.dport,
                "helper": e.helper.name(),
                "master": master.map(|m| json!({
                    "src": ip_of(m.original.src), "dst": ip_of(m.original.dst),
                    "sport": m.original.sport, "dport": m.original.dport,
                })),
                "target": {
                    "src": ip_of(e.target.src), "dst": ip_of(e.target.dst),
                    "dport": e.target.dport,
                },
            }));
        }
        let _ = writeln!(
            text,
            "xgate conntrack: {} expectations have been shown.",
            list.len()
        );
        Response::ok(text, json!({ "expectations": json }))
    }

    fn routes(&self, table: Option<&str>) -> Result<Response, String> {
        let snap = self.publisher.current();
        let fib = &snap.tables.fib;
        let want = match table {
            None | Some("all") => None,
            Some(t) => Some(parse_table(t)?),
        };
        let mut ids: Vec<u32> = fib.tables().map(|(id, _)| id).collect();
        // main first, local last, like `ip route show table all` reads best.
        ids.sort_by_key(|&id| match id {
            rt::TABLE_MAIN => (0, id),
            rt::TABLE_LOCAL => (3, id),
            rt::TABLE_DEFAULT => (2, id),
            _ => (1, id),
        });
        let ifs = &snap.tables.interfaces;
        let mut text = String::new();
        let mut data = Vec::new();
        // Mirrored routes name the kernel's protocol (`proto bird`); the
        // config's and `ctl route add`'s have none (as `ip route` shows
        // proto boot).
        let protos: HashMap<RouteKey, u8> = self.publisher.with_mirrored(|m| {
            m.routes
                .iter()
                .filter(|(_, r)| r.installed)
                .map(|(k, r)| (*k, r.proto))
                .collect()
        });
        for id in ids {
            if want.is_some_and(|w| w != id) {
                continue;
            }
            let Some(t) = fib.table(id) else { continue };
            let mut list: Vec<_> = t.routes().collect();
            list.sort_by(|a, b| {
                (a.prefix.is_ipv6(), a.prefix, a.len, a.metric).cmp(&(
                    b.prefix.is_ipv6(),
                    b.prefix,
                    b.len,
                    b.metric,
                ))
            });
            for r in list {
                let proto = protos.get(&RouteKey {
                    table: id,
                    prefix: r.prefix,
                    len: r.len,
                    metric: r.metric,
                });
                let line = routes::format_route(r, ifs);
                // The proto goes before multipath's nexthop lines.
                let (first, rest) = line
                    .split_once('\n')
                    .map_or((line.as_str(), ""), |(a, b)| (a, b));
                text.push_str(first);
                if let Some(p) = proto {
                    let _ = write!(text, " proto {}", route_proto_name(*p));
                }
                if !rest.is_empty() {
                    text.push('\n');
                    text.push_str(rest);
                }
                if id != rt::TABLE_MAIN {
                    let _ = write!(text, " table {}", table_name(id));
                }
                text.push('\n');
                data.push(json!({
                    "table": table_name(id),
                    "dst": format!("{}/{}", r.prefix, r.len),
                    "type": type_name(r.rtype),
                    "metric": r.metric,
                    "proto": proto.map(|p| route_proto_name(*p)),
                    "nexthops": r.nexthops.iter().map(|n| json!({
                        "via": n.via, "dev": if_name(ifs, n.dev), "weight": n.weight,
                    })).collect::<Vec<_>>(),
                }));
            }
        }
        Ok(Response::ok(text, json!({ "routes": data })))
    }

    fn route_get(
        &self,
        dst: IpAddr,
        from: Option<IpAddr>,
        iif: Option<&str>,
        mark: u32,
    ) -> Result<Response, String> {
        let snap = self.publisher.current();
        let t = &snap.tables;
        let src = from.unwrap_or(match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let iif = match iif {
            Some(n) => Some(
                t.interfaces
                    .by_name(n)
                    .ok_or_else(|| format!("no interface {n:?}"))?,
            ),
            None => None,
        };
        let m = t
            .fib
            .route(src, dst, iif, mark)
            .ok_or_else(|| format!("{dst}: network is unreachable (no route)"))?;
        let ifs = &t.interfaces;
        let mut text = match m.rtype {
            RouteType::Unicast => dst.to_string(),
            other => format!("{} {dst}", type_name(other)),
        };
        let nh = m.nexthops.first();
        if let Some(v) = nh.and_then(|n| n.via) {
            let _ = write!(text, " via {v}");
        }
        if let Some(n) = nh {
            let _ = write!(text, " dev {}", if_name(ifs, n.dev));
        }
        let _ = write!(text, " table {}", table_name(m.table));
        let source = nh.and_then(|n| {
            (m.rtype == RouteType::Unicast || m.rtype == RouteType::Local)
                .then(|| ifs.get(n.dev).source_for(n.via.unwrap_or(dst)))
                .flatten()
        });
        if let Some(s) = source {
            let _ = write!(text, " src {s}");
        }
        let _ = writeln!(
            text,
            "\n    prefix {}/{} metric {}",
            m.prefix, m.len, m.metric
        );
        for extra in m.nexthops.iter().skip(1) {
            let _ = writeln!(
                text,
                "    nexthop via {} dev {} weight {}",
                extra.via.map(|v| v.to_string()).unwrap_or_default(),
                if_name(ifs, extra.dev),
                extra.weight
            );
        }
        Ok(Response::ok(
            text,
            json!({
                "dst": dst,
                "type": type_name(m.rtype),
                "table": table_name(m.table),
                "prefix": format!("{}/{}", m.prefix, m.len),
                "metric": m.metric,
                "via": nh.and_then(|n| n.via),
                "dev": nh.map(|n| if_name(ifs, n.dev)),
                "src": source,
                "nexthops": m.nexthops.iter().map(|n| json!({
                    "via": n.via, "dev": if_name(ifs, n.dev), "weight": n.weight,
                })).collect::<Vec<_>>(),
            }),
        ))
    }

    fn neigh(&self) -> Response {
        let snap = self.publisher.current();
        let ifs = &snap.tables.interfaces;
        let now = self.now();
        let mut list = self.publisher.shared().neighbors.entries(now);
        list.sort_by_key(|e| (e.dev, ip_of(e.ip)));
        let mut text = String::new();
        let mut data = Vec::new();
        for e in list {
            let state = if e.is_static {
                "PERMANENT"
            } else if now.saturating_sub(e.confirmed_ns) < REACHABLE_NS {
                "REACHABLE"
            } else {
                "STALE"
            };
            let ip = ip_of(e.ip);
            let dev = if_name(ifs, e.dev);
            let mac = fmt_mac(&e.mac);
            let _ = writeln!(text, "{ip} dev {dev} lladdr {mac} {state}");
            data.push(json!({ "ip": ip, "dev": dev, "lladdr": mac, "state": state }));
        }
        Response::ok(text, json!({ "neighbors": data }))
    }

    /// `bridge fdb show` lines: `MAC dev PORT [vlan N] master BRIDGE
    /// [static]`, with each entry's age; `flush` forgets the learned ones.
    fn fdb(&self, bridge: Option<&str>, flush: bool) -> Result<Response, String> {
        let snap = self.publisher.current();
        let bridges = &snap.tables.bridges;
        let ifs = &snap.tables.interfaces;
        if let Some(name) = bridge
            && bridges.by_name(name).is_none()
        {
            let names: Vec<&str> = bridges.list.iter().map(|b| b.name.as_str()).collect();
            return Err(format!(
                "no bridge {name:?} (bridges: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
        }
        let fdb = &self.publisher.shared().fdb;
        if flush {
            for b in bridges
                .list
                .iter()
                .filter(|b| bridge.is_none_or(|n| n == b.name))
            {
                fdb.flush_bridge(b.id);
            }
            return Ok(Response::ok("flushed\n".into(), json!({ "flushed": true })));
        }
        let now = self.now();
        let ageing = |id: u8| bridges.list.get(usize::from(id)).map_or(0, |b| b.ageing_ns);
        let mut text = String::new();
        let mut data = Vec::new();
        for e in fdb.entries(now, ageing) {
            let Some(b) = bridges.list.get(usize::from(e.bridge)) else {
                continue;
            };
            if bridge.is_some_and(|n| n != b.name) {
                continue;
            }
            let mac = fmt_mac(&e.mac);
            let dev = if_name(ifs, e.port);
            let vlan = if b.vlan_filtering {
                format!(" vlan {}", e.vid)
            } else {
                String::new()
            };
            let kind = if e.is_static {
                " static".to_string()
            } else {
                format!(" age {}s", e.age_ns / 1_000_000_000)
            };
            let _ = writeln!(text, "{mac} dev {dev}{vlan} master {}{kind}", b.name);
            data.push(json!({
                "mac": mac, "dev": dev, "vlan": b.vlan_filtering.then_some(e.vid),
                "master": b.name, "static": e.is_static, "age_s": e.age_ns / 1_000_000_000,
            }));
        }
        Ok(Response::ok(text, json!({ "fdb": data })))
    }

    /// The ruleset as `iptables-save -c` prints it, counters summed over
    /// the workers that run it.
    pub fn rules_with_counters(&self) -> (Arc<Snapshot>, iptables::FirewallRules) {
        let snap = self.publisher.current();
        let counters: Vec<Arc<RuleCounters>> = self
            .workers()
            .iter()
            .filter_map(|w| w.counters_for(&snap))
            .collect();
        let refs: Vec<&RuleCounters> = counters.iter().map(|c| &**c).collect();
        let view = snap.tables.filter.counters_view(&refs);
        let mut model = (*snap.iptables).clone();
        apply_counters(&mut model, &view);
        (snap, model)
    }

    /// The counters of the nftables ruleset's chains (named `FAMILY TABLE
    /// CHAIN`), summed over the workers.
    fn nft_counters(&self, snap: &Snapshot) -> Vec<Value> {
        let counters: Vec<Arc<RuleCounters>> = self
            .workers()
            .iter()
            .filter_map(|w| w.counters_for(snap))
            .collect();
        let refs: Vec<&RuleCounters> = counters.iter().map(|c| &**c).collect();
        snap.tables
            .filter
            .counters_view(&refs)
            .iter()
            // iptables chain names have no spaces; nft ones do.
            .filter(|c| c.name.contains(' '))
            .map(|c| {
                json!({
                    "chain": c.name,
                    "stage": c.table.name(),
                    "policy": c.policy.map(|p| format!("{p:?}").to_lowercase()),
                    "packets": c.policy_counts.packets,
                    "bytes": c.policy_counts.bytes,
                    "rules": c.rules.iter().map(|r| json!({
                        "line": r.line,
                        "packets": r.packets,
                        "bytes": r.bytes,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    fn ipset(&self, op: &str, name: Option<&str>, elem: Option<&str>) -> Result<Response, String> {
        use crate::iptables::ipset::{element_text, port_entry_text};
        use crate::publish::IpsetOp;
        let name_of = || {
            name.map(str::to_string)
                .ok_or(format!("ipset {op}: which set?"))
        };
        let elem_of = || {
            elem.map(str::to_string)
                .ok_or(format!("ipset {op}: which element?"))
        };
        let change = match op {
            "add" => Some(IpsetOp::Add(name_of()?, elem_of()?)),
            "del" => Some(IpsetOp::Del(name_of()?, elem_of()?)),
            "flush" => Some(IpsetOp::Flush(name_of()?)),
            "list" => None,
            _ => return Err(format!("ipset {op}: add, del, flush or list")),
        };
        if let Some(c) = change {
            let text = format!("{c}\n");
            self.publisher.ipset(c)?;
            return Ok(Response::ok(text, json!({})));
        }
        let snap = self.publisher.current();
        let sets: Vec<_> = match name {
            Some(n) => vec![(
                n,
                snap.iptables
                    .ipsets
                    .get(n)
                    .ok_or_else(|| format!("no ipset {n} in the running config"))?,
            )],
            None => snap
                .iptables
                .ipsets
                .iter()
                .map(|(n, s)| (n.as_str(), s))
                .collect(),
        };
        let mut text = String::new();
        let mut js = Vec::new();
        for (n, s) in sets {
            let d = s.data();
            let mut members: Vec<String> = d
                .elements
                .iter()
                .map(|&(lo, hi)| element_text(lo, hi))
                .collect();
            let mut tuples: Vec<_> = d.tuples.iter().copied().collect();
            tuples.sort_unstable();
            members.extend(tuples.into_iter().map(|(a, p, n)| port_entry_text(a, p, n)));
            let _ = writeln!(
                text,
                "Name: {n}\nType: {}\nHeader: family {} maxelem {}\nNumber of entries: {}\nMembers:",
                if s.has_ports() {
                    "hash:ip,port"
                } else if members.iter().any(|m| m.contains('/') || m.contains('-')) {
                    "hash:net"
                } else {
                    "hash:ip"
                },
                if s.is_v4() { "inet" } else { "inet6" },
                s.maxelem(),
                members.len()
            );
            for m in &members {
                let _ = writeln!(text, "{m}");
            }
            js.push(json!({ "name": n, "family": if s.is_v4() { "inet" } else { "inet6" }, "maxelem": s.maxelem(), "members": members }));
        }
        Ok(Response::ok(text, json!({ "sets": js })))
    }

    fn rules(&self) -> Response {
        let (snap, mut model) = self.rules_with_counters();
        // The nft ruleset as `nft list ruleset` prints it, with counters.
        let nft = model.nft.take();
        let mut text = format!(
            "# Generated by xgate ctl rules (config generation {})\n{model}",
            snap.generation
        );
        if let Some(n) = &nft {
            let counters: Vec<Arc<RuleCounters>> = self
                .workers()
                .iter()
                .filter_map(|w| w.counters_for(&snap))
                .collect();
            let refs: Vec<&RuleCounters> = counters.iter().map(|c| &**c).collect();
            let view = snap.tables.filter.counters_view(&refs);
            let by_rule: std::collections::HashMap<_, _> =
                n.counters.iter().map(|(k, v)| (*k, v)).collect();
            let sum_of = |key: &(usize, usize, usize)| {
                let mut sum = (0, 0);
                for &(chain, pos) in by_rule.get(key)?.iter() {
                    let r = view.get(chain as usize)?.rules.get(pos as usize)?;
                    sum.0 += r.packets;
                    sum.1 += r.bytes;
                }
                Some(sum)
            };
            // Named counter objects count what their rules count.
            let mut tables = n.tables.clone();
            for (key, _) in &n.counters {
                let (tix, cix, rix) = *key;
                let Some(rule) = n.tables[tix].chains[cix].rules.get(rix) else {
                    continue;
                };
                let Some((p, b)) = sum_of(key) else { continue };
                for st in &rule.stmts {
                    if let crate::nft::StmtKind::Counter(crate::nft::CounterStmt::Named(name)) =
                        &st.kind
                        && let Some(o) = tables[tix].objects.iter_mut().find(|o| &o.name == name)
                        && let crate::nft::ObjectBody::Counter { packets, bytes } = &mut o.kind
                    {
                        *packets += p;
                        *bytes += b;
                    }
                }
            }
            let count =
                |t: &crate::nft::state::TableState, c: &crate::nft::state::ChainState, i: usize| {
                    let tix = tables.iter().position(|x| std::ptr::eq(x, t))?;
                    let cix = t.chains.iter().position(|x| std::ptr::eq(x, c))?;
                    sum_of(&(tix, cix, i))
                };
            let _ = writeln!(text, "# nftables ({})", n.key);
            text.push_str(&crate::nft::print::print_ruleset(&tables, &count));
        }
        let chains: Vec<Value> = model
            .sets
            .iter()
            .flat_map(|s| s.ruleset.tables.iter().map(move |t| (s, t)))
            .flat_map(|(s, t)| {
                t.chains.iter().map(move |c| {
                    json!({
                        "family": s.family.name(),
                        "table": t.kind.name(),
                        "chain": c.name,
                        "policy": c.policy.map(|p| p.to_string()),
                        "packets": c.counters.packets,
                        "bytes": c.counters.bytes,
                        "rules": c.rules.iter().map(|r| json!({
                            "rule": r.to_string(),
                            "packets": r.counters.packets,
                            "bytes": r.counters.bytes,
                        })).collect::<Vec<_>>(),
                    })
                })
            })
            .collect();
        let nft = self.nft_counters(&snap);
        Response::ok(
            text.clone(),
            json!({
                "generation": snap.generation,
                "iptables_save": text,
                "chains": chains,
                "nft_chains": nft,
                "sets": snap.tables.filter.set_stats().into_iter().map(|(name, len, full)| json!({
                    "set": name, "elements": len, "full": full,
                })).collect::<Vec<_>>(),
            }),
        )
    }

    /// `xgate ctl mirror`.
    fn mirror(&self) -> Response {
        let s = self.publisher.mirror_status().clone();
        let mut text = String::new();
        if s.interfaces.is_empty() {
            text.push_str("mirror: off (no interface has `mirror`)\n");
            return Response::ok(text, json!({ "running": false }));
        }
        let _ = writeln!(
            text,
            "mirror: {}, tables {}, socket buffer {} KiB",
            if s.running { "running" } else { "stopped" },
            s.tables
                .iter()
                .map(|t| table_name(*t))
                .collect::<Vec<_>>()
                .join(", "),
            s.rx_buffer >> 10
        );
        for (name, a, r, tap) in &s.interfaces {
            let what: Vec<&str> = [(*a, "addresses"), (*r, "routes")]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, w)| *w)
                .collect();
            let _ = writeln!(text, "  {name} <- {tap}: {}", what.join(", "));
        }
        let _ = writeln!(
            text,
            "routes: {} installed, {} shadowed by config routes, {} unusable",
            s.installed, s.shadowed, s.unusable
        );
        let _ = writeln!(
            text,
            "events {} publications {} resyncs {} overruns {} last batch {} routes in {} us; \
             connections flushed {}",
            s.events,
            s.publications,
            s.resyncs,
            s.overruns,
            s.last_batch,
            s.last_publish.as_micros(),
            s.flushed
        );
        if let Some(e) = &s.last_error {
            let _ = writeln!(text, "last error: {e}");
        }
        let unusable: Vec<_> = s
            .unusable_list
            .iter()
            .map(|(k, why)| {
                let dst = format!("{}/{}", k.prefix, k.len);
                let _ = writeln!(
                    text,
                    "unusable: {dst} metric {} table {}: {why}",
                    k.metric,
                    table_name(k.table)
                );
                json!({"dst": dst, "metric": k.metric, "table": table_name(k.table), "reason": why})
            })
            .collect();
        if s.unusable > s.unusable_list.len() {
            let _ = writeln!(
                text,
                "unusable: {} more not listed",
                s.unusable - s.unusable_list.len()
            );
        }
        Response::ok(
            text,
            json!({
                "running": s.running,
                "tables": s.tables.iter().map(|t| table_name(*t)).collect::<Vec<_>>(),
                "installed": s.installed,
                "shadowed": s.shadowed,
                "unusable": s.unusable,
                "unusable_routes": unusable,
                "events": s.events,
                "publications": s.publications,
                "last_batch": s.last_batch,
                "last_publish_us": s.last_publish.as_micros() as u64,
                "resyncs": s.resyncs,
                "overruns": s.overruns,
                "flushed": s.flushed,
                "last_error": s.last_error,
            }),
        )
    }

    fn reload(&self) -> Response {
        match self.publisher.reload() {
            Ok(r) => {
                let mut text = format!("reloaded: generation {}: {}\n", r.generation, r.summary);
                for w in &r.warnings {
                    let _ = writeln!(text, "warning: {w}");
                }
                Response::ok(
                    text,
                    json!({ "generation": r.generation, "summary": r.summary, "warnings": r.warnings }),
                )
            }
            Err(errs) => {
                let mut resp = Response::error(format!(
                    "reload refused, nothing changed:\n{}",
                    render_errors(&errs)
                ));
                resp.data = json!({ "errors": errs.iter().map(|e| json!({
                    "file": e.file, "line": e.line, "field": e.field, "message": e.message,
                })).collect::<Vec<_>>() });
                resp
            }
        }
    }
}

/// Copies summed counters into the parsed model: chains are matched by
/// table and name, rules by position (the compiler maps them one to one).
pub fn apply_counters(model: &mut iptables::FirewallRules, view: &[ChainCounters<'_>]) {
    for s in &mut model.sets {
        apply_family_counters(s.family, &mut s.ruleset, view);
    }
}

/// [`apply_counters`] for one family's ruleset.
fn apply_family_counters(
    family: iptables::Family,
    model: &mut iptables::IptablesRuleset,
    view: &[ChainCounters<'_>],
) {
    for t in &mut model.tables {
        for c in &mut t.chains {
            let Some(v) = view.iter().find(|v| {
                v.family == family && v.table.name() == t.kind.name() && v.name == c.name
            }) else {
                continue;
            };
            c.counters = iptables::Counters {
                packets: v.policy_counts.packets,
                bytes: v.policy_counts.bytes,
            };
            for (r, n) in c.rules.iter_mut().zip(&v.rules) {
                r.counters = iptables::Counters {
                    packets: n.packets,
                    bytes: n.bytes,
                };
            }
        }
    }
}

fn if_name(ifs: &Interfaces, i: u16) -> String {
    if (i as usize) < ifs.len() {
        ifs.get(i).name.clone()
    } else {
        format!("if{i}")
    }
}

fn type_name(t: RouteType) -> &'static str {
    match t {
        RouteType::Unicast => "unicast",
        RouteType::Local => "local",
        RouteType::Broadcast => "broadcast",
        RouteType::Blackhole => "blackhole",
        RouteType::Unreachable => "unreachable",
        RouteType::Prohibit => "prohibit",
    }
}

fn fmt_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

fn tuple_text(k: &FlowKey) -> String {
    let (s, d) = (ip_of(k.src), ip_of(k.dst));
    if k.is_icmp() {
        format!(
            "src={s} dst={d} type={} code=0 id={}",
            k.icmp_type(),
            k.sport
        )
    } else if matches!(k.proto, 6 | 17 | 132) {
        format!("src={s} dst={d} sport={} dport={}", k.sport, k.dport)
    } else {
        format!("src={s} dst={d}")
    }
}

/// One connection as `conntrack -L` prints it.
pub fn format_flow(f: &Flow, now: u64) -> String {
    let o = &f.original;
    let mut s = format!(
        "{:<8} {} {} ",
        proto_name(o.proto),
        o.proto,
        f.remaining_ms(now) / 1000
    );
    if o.proto == 6 {
        s.push_str(f.tcp.name());
        s.push(' ');
    }
    let _ = write!(
        s,
        "{} packets={} bytes={} ",
        tuple_text(o),
        f.packets[0],
        f.bytes[0]
    );
    if !f.seen_reply {
        s.push_str("[UNREPLIED] ");
    }
    let _ = write!(
        s,
        "{} packets={} bytes={} ",
        tuple_text(&f.reply),
        f.packets[1],
        f.bytes[1]
    );
    if f.assured {
        s.push_str("[ASSURED] ");
    }
    if f.offloaded {
        s.push_str("[OFFLOAD] ");
    }
    let _ = write!(s, "mark={} ", f.mark);
    if let Some(h) = f.helper {
        let _ = write!(s, "helper={} ", h.name());
    }
    s.push_str("use=1");
    s
}

/// Milliseconds from `now` (ns) to `expires_ms` (modulo 2^35), 0 if past.
fn remaining_ms(expires_ms: u64, now: u64) -> u64 {
    const MASK: u64 = (1 << 35) - 1;
    let d = expires_ms.wrapping_sub(now / 1_000_000) & MASK;
    if d >= 1 << 34 { 0 } else { d }
}

/// The all-ones mask of an address's family (`conntrack -L expect`'s
/// `mask-src`).
fn full_mask(a: u128) -> std::net::IpAddr {
    match ip_of(a) {
        std::net::IpAddr::V4(_) => std::net::IpAddr::from([255u8; 4]),
        std::net::IpAddr::V6(_) => std::net::IpAddr::from([0xffu8; 16]),
    }
}

fn helper_json(h: &xgate_dataplane::conntrack::HelperStats) -> Value {
    json!({
        "attached": h.attached, "attach_full": h.attach_full,
        "expect_created": h.expect_created, "expect_used": h.expect_used,
        "expect_expired": h.expect_expired, "expect_full": h.expect_full,
        "expect_master_full": h.expect_master_full, "expect_removed": h.expect_removed,
        "rewrites": h.rewrites, "rewrite_refused": h.rewrite_refused,
        "parse_errors": h.parse_errors, "partial": h.partial,
        "wrong_address": h.wrong_address,
    })
}

fn flow_json(f: &Flow, now: u64) -> Value {
    let t = |k: &FlowKey, dir: usize| {
        json!({
            "src": ip_of(k.src), "dst": ip_of(k.dst), "sport": k.sport, "dport": k.dport,
            "packets": f.packets[dir], "bytes": f.bytes[dir],
        })
    };
    json!({
        "proto": proto_name(f.original.proto),
        "proto_num": f.original.proto,
        "timeout": f.remaining_ms(now) / 1000,
        "state": (f.original.proto == 6).then(|| f.tcp.name()),
        "original": t(&f.original, 0),
        "reply": t(&f.reply, 1),
        "seen_reply": f.seen_reply,
        "assured": f.assured,
        "offload": f.offloaded,
        "mark": f.mark,
        "helper": f.helper.map(|h| h.name()),
    })
}
