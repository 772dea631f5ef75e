//! `ctl rules` with one ruleset per family: each printed under its own
//! header with its own counters, and the default a missing family gets.

mod common;

use common::*;
use std::sync::Arc;
use xgate_control::api::Runtime;
use xgate_control::compile::synthetic_mac;
use xgate_control::publish::{Publisher, WorkerView};
use xgate_dataplane::io::memory::MemoryWorker;

const CFG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["172.16.0.1/24", "2001:db8:2::1/64"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "::/0"
via = "2001:db8:1::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[[neighbor]]
ip = "2001:db8:1::1"
mac = "02:bb:00:00:00:01"
dev = "wan"

[firewall]
rules_v4 = """
*filter
:FORWARD DROP [0:0]
:NAVY - [0:0]
-A FORWARD -j NAVY
-A NAVY -p udp -j ACCEPT
COMMIT
"""
"#;

#[test]
fn rules_prints_each_family_with_its_counters() {
    let d = std::env::temp_dir().join(format!("xgate-ctlfam-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("gw.toml");
    std::fs::write(&path, CFG).unwrap();
    let p = Publisher::load(&path, Box::new(|_, p| Some(synthetic_mac(p)))).unwrap();
    let p = Arc::new(p);
    let mut w = MemoryWorker::new(p.tables(), p.shared().clone(), 4096);
    let view = Arc::new(WorkerView::new(0, &w.pipeline, &p));
    let rt = Arc::new(Runtime::new(p, Box::new(|| 5_000_000_000)));
    rt.add_worker(view);
    let host = mac("02:cc:00:00:00:10");
    let lan = mac("02:00:00:00:00:02");
    let frames = [
        udp4(
            host,
            lan,
            &[],
            "172.16.0.10",
            "198.51.100.7",
            64,
            4000,
            53,
            b"q",
        ),
        udp6(
            host,
            lan,
            "2001:db8:2::10",
            "2001:db8:99::7",
            64,
            4000,
            53,
            b"q",
        ),
    ];
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    w.receive(1, &refs, 5_000_000_000).unwrap();
    w.drain(|_, _| {});
    let (_, model) = rt.rules_with_counters();
    let text = model.to_string();
    let v4 = text.find("# IPv4 (rules_v4)").expect(&text);
    let v6 = text.find("# IPv6: no rules_v6").expect(&text);
    assert!(v4 < v6, "{text}");
    let (v4_text, v6_text) = text.split_at(v6);
    assert!(
        v4_text.contains("[1:29] -A NAVY -p udp -j ACCEPT"),
        "{text}"
    );
    assert!(v4_text.contains(":FORWARD DROP [0:0]"), "{text}");
    assert!(
        v6_text.contains(":FORWARD DROP [1:"),
        "IPv6 dropped by the default: {text}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
