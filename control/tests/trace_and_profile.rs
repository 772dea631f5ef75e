//! The runtime hooks `xgate ctl` drives, through an in-memory worker:
//! a trace request selects exactly the next N matching packets, on
//! whichever worker, and hands their records over; profiling counts every
//! stage's calls, packets and time.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use xgate_dataplane::io::memory::MemoryWorker;
use xgate_dataplane::pipeline::{TraceFilter, trace};
use xgate_dataplane::stats::Stage;

const FIREWALL: &str = r#"
[firewall]
rules = """
*nat
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
"""
"#;

fn worker() -> MemoryWorker {
    memory_worker(&office_config(FIREWALL))
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac("02:aa:00:00:00:10"),
        mac("02:00:00:00:00:02"),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        sport,
        dport,
        b"x",
    )
}

#[test]
fn trace_request_selects_the_next_n_matching_packets() {
    let mut w = worker();
    let shared = w.pipeline.shared.clone();
    shared.trace.start(
        2,
        TraceFilter {
            proto: Some(17),
            port: Some(53),
            ..TraceFilter::default()
        },
    );
    let frames = [udp(5000, 80), udp(5001, 53), udp(5002, 53), udp(5003, 53)];
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    w.receive(1, &refs, 1_000_000_000).unwrap();
    w.drain(|_, _| {});
    assert_eq!(shared.trace.remaining(), 0);
    let mut lines = Vec::new();
    while let Some(r) = shared.trace.pop() {
        lines.push(trace::format_record(&r, &w.pipeline.tables.interfaces));
    }
    // Packets 2 and 3 (the first two to port 53), every stage of each.
    let pkts: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        pkts.into_iter().collect::<Vec<_>>(),
        ["#2", "#3"],
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("#2 nat") && l.contains("source -> 203.0.113.2:5001"))
    );
    assert!(lines.iter().any(|l| l.starts_with("#3 tx")), "{lines:#?}");
    // Nothing more is traced once the request is used up.
    w.receive(1, &refs, 1_100_000_000).unwrap();
    assert!(shared.trace.pop().is_none());
}

#[test]
fn profiling_counts_every_stage() {
    let mut w = worker();
    let shared = w.pipeline.shared.clone();
    shared.profile.store(true, Ordering::Relaxed);
    let frames: Vec<Vec<u8>> = (0..10).map(|i| udp(6000 + i, 53)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    w.receive(1, &refs, 1_000_000_000).unwrap();
    let st = w.pipeline.stats.clone();
    for s in [
        Stage::Parse,
        Stage::Conntrack,
        Stage::Route,
        Stage::Forward,
        Stage::Rewrite,
    ] {
        let c = &st.stages[s as usize];
        assert_eq!(c.calls.get(), 1, "{}", s.name());
        assert_eq!(c.packets.get(), 10, "{}", s.name());
    }
    assert!(st.stages[Stage::Tx as usize].nanos.get() > 0);
    shared.profile.store(false, Ordering::Relaxed);
    w.receive(1, &refs, 1_100_000_000).unwrap();
    assert_eq!(
        st.stages[Stage::Parse as usize].calls.get(),
        1,
        "off: not counted"
    );
}
