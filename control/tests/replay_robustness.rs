//! Robustness: every frame of the shared captures (real traffic, VLANs,
//! fragments and deliberately malformed headers from tcpdump's tests) goes
//! through the pipeline, addressed to xgate so that it is really processed.
//! Nothing may panic, every frame that comes out must be well-formed (and
//! keep valid transport checksums when the input had them), and no UMEM
//! frame may leak.

mod common;
use common::*;
use std::path::Path;
use std::sync::Arc;
use xgate_dataplane::io::memory::MemoryWorker;
use xgate_dataplane::pipeline::Shared;

const CFG: &str = r#"
[[interface]]
name = "in"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["10.0.0.1/8", "192.168.1.1/24", "2001:db8:1::1/64"]

[[interface]]
name = "in10"
device = "eth0"
vlan = 10
mac = "02:00:00:00:00:01"
address = ["172.16.10.1/24"]

[[interface]]
name = "out"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["203.0.113.2/24", "2001:db8:2::2/64"]
mtu = 1400

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[route]]
to = "::/0"
via = "2001:db8:2::1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "out"

[[neighbor]]
ip = "2001:db8:2::1"
mac = "02:bb:00:00:00:01"
dev = "out"
"#;

fn shared_pcap(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pcaps")
        .join(name)
}

fn replay_capture(name: &str) -> (usize, usize) {
    let path = shared_pcap(name);
    assert!(
        path.exists(),
        "{} is missing (shared/ must sit beside the repository)",
        path.display()
    );
    let frames = read_pcap(&path);
    let dir = std::env::temp_dir().join(format!("xgate-robust-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("x.toml");
    std::fs::write(&cfg_path, CFG).unwrap();
    let cfg = xgate_control::load(&cfg_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let compiled = xgate_control::replay::compile_for_replay(&cfg).unwrap();
    let shared = Arc::new(Shared::new(1024));
    for (d, k, m) in &compiled.static_neighbors {
        shared.neighbors.insert_static(*d, *k, m);
    }
    let ours = compiled.tables.interfaces.get(0).mac;
    let mut w = MemoryWorker::new(Arc::new(compiled.tables), shared, 4096);
    let (mut emitted, mut processed) = (0, 0);
    for (i, (ts, f)) in frames.iter().enumerate() {
        let mut f = f.clone();
        if f.len() >= 6 && f[0] & 1 == 0 {
            f[..6].copy_from_slice(&ours); // unicast frames: to us
        }
        let input_l4_ok = verify_frame(&f, true).is_ok();
        if w.receive(0, &[&f], ts.as_nanos() as u64).is_err() {
            continue; // longer than a UMEM frame: refused before the pipeline
        }
        processed += 1;
        w.drain(|port, out| {
            emitted += 1;
            if let Err(e) = verify_frame(out, false) {
                panic!(
                    "{name} frame {i}: port {port} emitted a malformed frame ({e}):\n{out:02x?}"
                );
            }
            if let (true, Err(e)) = (input_l4_ok, verify_frame(out, true)) {
                panic!("{name} frame {i}: transport checksum broken on the way ({e}):\n{out:02x?}");
            }
        });
    }
    let end = frames.last().map(|(t, _)| t.as_nanos() as u64).unwrap_or(0);
    // Let every pending neighbour time out: all frames must come home.
    for s in 1..=5 {
        w.tick(end + s * 1_000_000_000);
        w.drain(|_, out| verify_frame(out, false).unwrap());
    }
    assert_eq!(w.pipeline.pending_packets(), 0);
    assert_eq!(w.frames_in_use(), 0, "{name}: UMEM frames leaked");
    eprintln!("{name}: drops {:?}", w.pipeline.stats.nonzero_drops());
    (processed, emitted)
}

#[test]
fn tcpdump_test_captures_never_break_the_dataplane() {
    let (processed, emitted) = replay_capture("tcpdump-tests-ether-replayable.pcap");
    eprintln!("tcpdump captures: {processed} processed, {emitted} emitted");
    assert!(processed > 7000, "{processed}");
    assert!(
        emitted > 100,
        "a good part of the capture is forwarded: {emitted}"
    );
}

#[test]
fn mixed_real_traffic_never_breaks_the_dataplane() {
    let (processed, emitted) = replay_capture("tcpreplay-mixed.pcap");
    assert_eq!(processed, 179);
    assert!(emitted > 50, "{emitted}");
}
