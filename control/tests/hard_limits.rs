//! Issue 13, item 2: per-source limits (RFC 6888 REQ-4). One inside host
//! opening many flows hits its caps (NAT ports, then connections) while a
//! second host still gets through.

mod common;

use common::*;
use std::sync::Arc;
use xgate_dataplane::io::memory::MemoryWorker;
use xgate_dataplane::stats::DropReason;

const CONFIG: &str = r#"
[dataplane]
flows_per_source = 50
nat_ports_per_source = 30

[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
"""
"#;

const LAN: u16 = 1;
const NOW: u64 = 1_000_000_000;

fn worker() -> MemoryWorker {
    let cfg = xgate_control::parse(&office_config(CONFIG), "t.toml").unwrap();
    assert_eq!(cfg.dataplane.flows_per_source, 50);
    assert_eq!(cfg.dataplane.nat_ports_per_source, 30);
    let compiled = xgate_control::replay::compile_for_replay(&cfg).unwrap();
    let shared = Arc::new(xgate_control::compile::shared_state(
        &compiled,
        4096,
        Some(1),
    ));
    xgate_control::runtime::apply_limits(&shared, &cfg.dataplane);
    MemoryWorker::new(Arc::new(compiled.tables), shared, 4096)
}

fn out(src: &str, sport: u16, dst: &str) -> Vec<u8> {
    udp4(
        mac("02:aa:00:00:00:10"),
        mac("02:00:00:00:00:02"),
        &[],
        src,
        dst,
        64,
        sport,
        53,
        b"q",
    )
}

/// Sends `frames` from the LAN one burst at a time; how many left.
fn send(w: &mut MemoryWorker, frames: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for chunk in frames.chunks(32) {
        let refs: Vec<&[u8]> = chunk.iter().map(|f| f.as_slice()).collect();
        w.receive(LAN, &refs, NOW).unwrap();
        w.drain(|_, _| n += 1);
    }
    n
}

#[test]
fn one_host_hits_its_caps_another_still_connects() {
    let mut w = worker();
    // 100 source ports: a NAT port each, 30 allowed.
    let frames: Vec<_> = (0..100)
        .map(|i| out("192.168.1.10", 20_000 + i, "198.51.100.7"))
        .collect();
    assert_eq!(send(&mut w, &frames), 30);
    assert_eq!(w.pipeline.stats.drops(DropReason::NatSourceLimit), 70);
    // One source port to 100 destinations: one NAT port shared (EIM), so
    // the connection cap (50) is what stops it: 20 more connections.
    let frames: Vec<_> = (0..100)
        .map(|i| out("192.168.1.10", 20_000, &format!("198.51.100.{}", 100 + i)))
        .collect();
    assert_eq!(send(&mut w, &frames), 20);
    assert_eq!(w.pipeline.stats.drops(DropReason::ConntrackSourceLimit), 80);
    // The next host is not affected.
    let frames: Vec<_> = (0..40)
        .map(|i| out("192.168.1.11", 30_000 + i, "198.51.100.7"))
        .collect();
    assert_eq!(send(&mut w, &frames), 30);
    let shared = &w.pipeline.shared;
    assert_eq!(shared.conntrack.len(), 80);
    assert_eq!(shared.nat.stats().source_limited, 80);
    assert_eq!(shared.conntrack.stats().source_limited, 80);
}

/// Running out of NAT ports is logged by the control thread from the
/// allocator's counters, at most once per interval, nothing lost.
#[test]
fn nat_exhaustion_is_logged_rate_limited() {
    use std::time::{Duration, Instant};
    use xgate_control::runtime::NatWatch;
    use xgate_dataplane::addr::v4_key;
    use xgate_dataplane::nat::NatPorts;
    let n = NatPorts::with_seed(1, 1);
    let pool = n.register(v4_key(0xcb00_7102)).unwrap();
    let mut watch = NatWatch::new(&n.stats(), Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(watch.check(&n.stats(), t0), None);
    let range = Some((5000, 5001));
    for h in 0..3 {
        let _ = n.acquire(pool, 17, v4_key(h), 40_000, range, 0);
    }
    let line = watch.check(&n.stats(), t0).expect("a line");
    assert!(
        line.contains("1 new connection(s) found no free port"),
        "{line}"
    );
    let _ = n.acquire(pool, 17, v4_key(9), 40_000, range, 0);
    assert_eq!(watch.check(&n.stats(), t0 + Duration::from_secs(1)), None);
    let _ = n.acquire(pool, 17, v4_key(10), 40_000, range, 0);
    let line = watch
        .check(&n.stats(), t0 + Duration::from_secs(11))
        .expect("a line");
    assert!(line.contains("2 new connection(s)"), "{line}");
}
