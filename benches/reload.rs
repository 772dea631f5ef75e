//! `reload`: the control plane with a full BGP table. Measures (1) loading
//! and publishing a config whose `routes_file` holds the 634k-prefix RIB
//! (parse, compile, publish: what `xgate run` does at start and a reload
//! does again), and (2) the longest stall a worker sees while reloads
//! happen: one worker thread runs the pipeline back to back on 64-packet
//! bursts (in-memory ports) and records the longest gap between two
//! bursts, before and during 5 reloads. Goals: < 1 s to load and publish,
//! no worker stall above 50 µs.
//!
//! Not a criterion bench (each sample is a reload of 634k routes); prints
//! one table. Run: `cargo bench --bench reload`.

mod common;

use common::{load_rib, udp_frame};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use xgate_control::publish::{Publisher, WorkerView};
use xgate_dataplane::io::memory::MemoryWorker;

const CFG: &str = r#"
routes_file = "rib.routes"

[[interface]]
name = "isp"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["192.0.2.254/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["10.0.0.1/8"]

[[neighbor]]
ip = "192.0.2.1"
mac = "02:bb:00:00:00:01"
dev = "isp"
"#;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (nothing criterion-like to list)
    }
    let dir = std::env::temp_dir().join(format!("xgate-reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rib = load_rib();
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("rib.routes")).unwrap());
    for &(p, l, nh) in &rib.v4 {
        let net = std::net::Ipv4Addr::from(p);
        if l >= 8 && (p >> 24) == 192 && (p >> 8) & 0xffff == 2 {
            continue; // the connected subnet
        }
        writeln!(w, "{net}/{l} via 192.0.2.{} dev isp", nh % 16 + 1).unwrap();
    }
    drop(w);
    let cfg_path = dir.join("xgate.toml");
    std::fs::write(&cfg_path, CFG).unwrap();

    let t = Instant::now();
    let publisher = Arc::new(Publisher::load(&cfg_path, Box::new(|_, _| None)).expect("config"));
    let load = t.elapsed();

    // One worker, bursts of 64 frames to LAN addresses, back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let stalls = Arc::new(std::sync::Mutex::new(Vec::<(Duration, u64)>::new()));
    let switches = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let mut worker = MemoryWorker::new(publisher.tables(), publisher.shared().clone(), 4096);
    let view = Arc::new(WorkerView::new(0, &worker.pipeline, &publisher));
    let mut handle = publisher.subscribe();
    // The first call takes the tables the worker already runs.
    handle.apply(&mut worker.pipeline, &view);
    let frame = udp_frame(
        [2, 0, 0, 0, 0, 2],
        u32::from_be_bytes([10, 0, 0, 9]),
        0,
        u32::from_be_bytes([8, 8, 8, 8]),
        0,
    );
    let th = {
        let stop = stop.clone();
        let stalls = stalls.clone();
        let switch_times = switches.clone();
        std::thread::spawn(move || {
            let frames: Vec<&[u8]> = (0..64).map(|_| frame.as_slice()).collect();
            let mut worst = Duration::ZERO;
            let mut switched = 0;
            let mut last = Instant::now();
            let mut window_start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if handle.apply(&mut worker.pipeline, &view) {
                    switched += 1;
                    switch_times.lock().unwrap().push(t.elapsed());
                }
                worker.receive(1, &frames, 1_000_000_000).unwrap();
                worker.drain(|_, _| {});
                let now = Instant::now();
                worst = worst.max(now - last);
                last = now;
                if now - window_start > Duration::from_millis(200) {
                    stalls.lock().unwrap().push((worst, switched));
                    worst = Duration::ZERO;
                    window_start = now;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1000));
    let mut reloads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        publisher.reload().expect("reload");
        reloads.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
        publisher.collect_retired();
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    th.join().unwrap();
    let windows = stalls.lock().unwrap().clone();
    // Windows before the first reload vs the rest.
    let quiet: Vec<Duration> = windows.iter().filter(|w| w.1 == 0).map(|w| w.0).collect();
    let during: Vec<Duration> = windows.iter().filter(|w| w.1 > 0).map(|w| w.0).collect();
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    let switch_max = max(&switches.lock().unwrap());
    println!("reload: {} IPv4 routes from a routes_file", rib.v4.len());
    println!(
        "  load + compile + publish at start: {:.3} s",
        load.as_secs_f64()
    );
    let r: Vec<String> = reloads
        .iter()
        .map(|d| format!("{:.3}", d.as_secs_f64()))
        .collect();
    println!("  reloads (s): {}", r.join(" "));
    println!(
        "  worker's longest gap between bursts: {:.1} us before any reload, {:.1} us with reloads",
        max(&quiet).as_secs_f64() * 1e6,
        max(&during).as_secs_f64() * 1e6
    );
    println!(
        "  the switch itself (apply: new tables in the pipeline), longest: {:.1} us",
        switch_max.as_secs_f64() * 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}
