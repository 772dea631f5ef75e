//! Reloads and live route changes while traffic flows through an
//! in-memory worker: no packet lost, no connection lost, NAT bindings
//! kept; a config that does not validate changes nothing.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use xgate_control::compile::synthetic_mac;
use xgate_control::publish::{Publisher, WorkerView};
use xgate_control::routes::parse_spec;
use xgate_dataplane::io::memory::MemoryWorker;

const HOST_MAC: &str = "02:cc:00:00:00:10";

/// The office gateway with 4096 flows and one lan host, masqueraded;
/// `extra_route` (to, via) follows the default route, `extra_rule` comes
/// before the FORWARD rule that lets the lan out.
fn config(extra_rule: &str, extra_route: Option<(&str, &str)>) -> String {
    let mut office = Office::new().head("\n[dataplane]\nflows = 4096\n");
    if let Some((to, via)) = extra_route {
        office = office.route(to, via);
    }
    office
        .neighbor("192.168.1.10", HOST_MAC, "lan")
        .config(&format!(
            r#"
[firewall]
rules = """
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT
{extra_rule}
-A FORWARD -i lan -o wan -j ACCEPT
COMMIT
"""
"#
        ))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xgate-publish-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn publisher(path: &Path) -> Publisher {
    Publisher::load(path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap()
}

const FLOWS: u16 = 200;

/// One UDP packet of each flow, lan -> internet.
fn round(lan_mac: Mac) -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            udp4(
                mac(HOST_MAC),
                lan_mac,
                &[],
                "192.168.1.10",
                "198.51.100.7",
                64,
                10_000 + i,
                53,
                b"query",
            )
        })
        .collect()
}

#[test]
fn reload_under_traffic_loses_no_packet_and_no_connection() {
    let d = scratch("traffic");
    let path = d.join("gw.toml");
    std::fs::write(&path, config("", None)).unwrap();
    let publisher = Arc::new(publisher(&path));
    let shared = publisher.shared().clone();
    let mut w = MemoryWorker::new(publisher.tables(), shared.clone(), 8192);
    let view = Arc::new(WorkerView::new(0, &w.pipeline, &publisher));
    let lan_mac = w.pipeline.tables.interfaces.get(1).mac;
    let frames = round(lan_mac);
    let stop = Arc::new(AtomicBool::new(false));

    let worker = {
        let (publisher, view, stop) = (publisher.clone(), view.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut handle = publisher.subscribe();
            let (mut sent, mut out) = (0u64, 0u64);
            // The outside source port of every flow, per round, in order.
            let mut first: Option<Vec<u16>> = None;
            let mut ports = Vec::new();
            let mut switches = 0;
            let mut now = 1_000_000_000u64;
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) || rounds < 20 {
                for chunk in frames.chunks(32) {
                    // Between two batches: pick up new tables.
                    if handle.apply(&mut w.pipeline, &view) {
                        switches += 1;
                    }
                    let refs: Vec<&[u8]> = chunk.iter().map(|f| f.as_slice()).collect();
                    w.receive(1, &refs, now).unwrap();
                    sent += chunk.len() as u64;
                    now += 100_000;
                    w.drain(|port, f| {
                        assert_eq!(port, 0, "everything leaves on wan");
                        out += 1;
                        let (src, sport, _, _) = tuple4(f);
                        assert_eq!(src.to_string(), "203.0.113.2", "masqueraded");
                        ports.push(sport);
                    });
                }
                // NAT bindings survive reloads: every flow keeps its port.
                match &first {
                    None => first = Some(std::mem::take(&mut ports)),
                    Some(f) => assert_eq!(f, &std::mem::take(&mut ports), "round {rounds}"),
                }
                rounds += 1;
            }
            (sent, out, switches, w)
        })
    };

    // Reload while traffic flows: rules and routes change each time.
    let mut generations = vec![publisher.generation()];
    for i in 0..10 {
        let (rule, route) = if i % 2 == 0 {
            (
                "-A FORWARD -p tcp --dport 22 -j DROP",
                Some(("10.9.0.0/16", "192.168.1.2")),
            )
        } else {
            ("", None)
        };
        std::fs::write(&path, config(rule, route)).unwrap();
        let report = publisher.reload().expect("valid config reloads");
        generations.push(report.generation);
        // And a live route change in between.
        let spec = parse_spec("10.10.0.0/16 via 192.168.1.3".split_whitespace()).unwrap();
        generations.push(publisher.route_add(&spec).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, out, switches, w) = worker.join().unwrap();

    assert!(
        generations.windows(2).all(|g| g[1] == g[0] + 1),
        "{generations:?}"
    );
    assert!(switches >= 1, "the worker picked up new tables");
    assert_eq!(
        sent,
        out,
        "no packet lost: {:?}",
        w.pipeline.stats.nonzero_drops()
    );
    assert_eq!(w.pipeline.stats.total_drops(), 0);
    assert_eq!(shared.conntrack.len(), FLOWS as usize, "no connection lost");
    let ct = shared.conntrack.stats();
    assert_eq!(ct.inserted, FLOWS as u64, "each flow created once: {ct:?}");
    assert_eq!(shared.nat.stats().in_use, FLOWS as u64);
    // The worker runs the last tables, and the control side finds its counters.
    let cur = publisher.current();
    assert!(Arc::ptr_eq(&w.pipeline.tables, &cur.tables));
    assert!(view.counters_for(&cur).is_some());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_bad_reload_changes_nothing_and_names_every_error() {
    let d = scratch("bad");
    let path = d.join("gw.toml");
    std::fs::write(&path, config("", None)).unwrap();
    let publisher = publisher(&path);
    let before = publisher.current();
    // A misspelt key and an iptables line with an unknown option.
    let bad = config("-A FORWARD -p tcp --dpot 22 -j DROP", None).replace(
        "[[neighbor]]\nip = \"192.168.1.10\"",
        "[[neighbor]]\nipp = \"192.168.1.10\"",
    );
    std::fs::write(&path, &bad).unwrap();
    let errs = publisher.reload().unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        text.iter()
            .any(|e| e.contains(&format!("gw.toml:{}: neighbor[1].ipp", line_of("ipp =")))),
        "{text:?}"
    );
    assert!(publisher.generation() == before.generation);
    assert!(Arc::ptr_eq(&publisher.current().tables, &before.tables));
    // The iptables error alone (the TOML is fine) names its line.
    std::fs::write(&path, config("-A FORWARD -p tcp --dpot 22 -j DROP", None)).unwrap();
    let errs = publisher.reload().unwrap_err();
    let good = config("-A FORWARD -p tcp --dpot 22 -j DROP", None);
    let l = good.lines().position(|l| l.contains("--dpot")).unwrap() + 1;
    assert!(
        errs.iter()
            .any(|e| e.line == l && e.field == "firewall.rules"),
        "{errs:?}"
    );
    assert_eq!(publisher.reload_failures.load(Ordering::Relaxed), 2);
    assert_eq!(publisher.generation(), before.generation);

    // Another device: refused, restart needed.
    std::fs::write(&path, config("", None).replace("\"eth1\"", "\"eth7\"")).unwrap();
    let errs = publisher.reload().unwrap_err();
    assert!(errs[0].message.contains("restart"), "{errs:?}");
    assert_eq!(publisher.generation(), before.generation);

    // Restart-only settings: published, with a warning.
    std::fs::write(
        &path,
        config("", None).replace("flows = 4096", "flows = 8192"),
    )
    .unwrap();
    let r = publisher.reload().unwrap();
    assert_eq!(r.generation, before.generation + 1);
    assert!(
        r.warnings.iter().any(|w| w.contains("[dataplane]")),
        "{r:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn live_route_changes_publish_a_new_fib_and_keep_the_ruleset() {
    let d = scratch("routes");
    let path = d.join("gw.toml");
    std::fs::write(&path, config("", None)).unwrap();
    let publisher = publisher(&path);
    let before = publisher.current();
    let spec = parse_spec("10.9.0.0/16 via 192.168.1.2 metric 5".split_whitespace()).unwrap();
    let g = publisher.route_add(&spec).unwrap();
    let cur = publisher.current();
    assert_eq!(g, before.generation + 1);
    assert_eq!(cur.ruleset_epoch, before.ruleset_epoch);
    let main = cur.tables.fib.table(254).unwrap();
    assert_eq!(main.len(), before.tables.fib.table(254).unwrap().len() + 1);
    let m = cur
        .tables
        .fib
        .route(
            "0.0.0.0".parse().unwrap(),
            "10.9.1.1".parse().unwrap(),
            None,
            0,
        )
        .unwrap();
    assert_eq!(m.len, 16);
    assert_eq!(cur.tables.interfaces.get(m.nexthops[0].dev).name, "lan");
    assert!(publisher.route_add(&spec).unwrap_err().contains("exists"));
    let bad = parse_spec("10.8.0.0/16 via 172.16.0.1".split_whitespace()).unwrap();
    assert!(publisher.route_add(&bad).unwrap_err().contains("connected"));
    let del = parse_spec("10.9.0.0/16 via 192.168.1.2".split_whitespace()).unwrap();
    publisher.route_del(&del).unwrap();
    assert!(publisher.route_del(&del).is_err());
    // A reload re-reads the file: live changes are gone.
    publisher.route_add(&spec).unwrap();
    publisher.reload().unwrap();
    let main = publisher.current().tables.fib.table(254).unwrap().len();
    assert_eq!(main, before.tables.fib.table(254).unwrap().len());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn replaced_tables_are_freed_by_the_control_thread_once_workers_moved_on() {
    let d = scratch("retired");
    let path = d.join("xgate.toml");
    std::fs::write(&path, config("", None)).unwrap();
    let p = publisher(&path);
    let mut worker =
        xgate_dataplane::io::memory::MemoryWorker::new(p.tables(), p.shared().clone(), 256);
    let view = std::sync::Arc::new(xgate_control::publish::WorkerView::new(
        0,
        &worker.pipeline,
        &p,
    ));
    let mut handle = p.subscribe();
    handle.apply(&mut worker.pipeline, &view);
    let old = std::sync::Arc::downgrade(&worker.pipeline.tables);
    p.reload().unwrap();
    // The worker still runs the old tables: nothing is freed.
    assert_eq!(p.collect_retired(), 0);
    assert!(old.upgrade().is_some());
    // Once it switched, the control thread frees them (not the worker).
    assert!(handle.apply(&mut worker.pipeline, &view));
    assert!(old.upgrade().is_some(), "the worker's switch frees nothing");
    assert_eq!(p.collect_retired(), 1);
    assert!(old.upgrade().is_none());
    let _ = std::fs::remove_dir_all(&d);
}
