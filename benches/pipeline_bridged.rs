//! `pipeline_bridged`: 64-byte IPv4 UDP frames (60 bytes without FCS)
//! switched by a bridge between two ports, beside the same frames routed
//! between two interfaces, on one core, in one run (compare the ratio):
//!
//! - `routed`: a router with no firewall (parse, route, rewrite);
//! - `bridged`: a bridge without br_netfilter (parse, learn, MAC lookup,
//!   out of the learned port);
//! - `bridged_nf`: the same bridge with `nf_call_iptables` and a FORWARD
//!   chain (policy DROP, `-i br0 -o br0 -j ACCEPT`): the bridged frame
//!   walks the netfilter stages too.
//!
//! 4096 frames per iteration from 256 sources, in rx bursts; the port's
//! tx accepts everything.

mod common;

use common::{BenchPort, FRAME_LEN, selected, udp_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use xgate_control::compile::shared_state;
use xgate_control::replay::compile_for_replay;
use xgate_dataplane::io::{Desc, FramePool};
use xgate_dataplane::pipeline::{Pipeline, RX_BURST};

const BURSTS: usize = 4096 / RX_BURST;
const NOW: u64 = 1_000_000_000;
/// Replay's synthetic MAC of port 0 (the bridge's first port, and the
/// router's LAN).
const PORT0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The host behind port 1.
const FAR: [u8; 6] = [2, 0xbb, 0, 0, 0, 9];

fn bridge(nf: bool) -> String {
    format!(
        r#"
[[bridge]]
name = "br0"
ports = ["a", "b"]
nf_call_iptables = {nf}

[[interface]]
name = "br0"
device = "br0"
address = ["10.0.0.1/24"]

[[interface]]
name = "a"
device = "eth0"

[[interface]]
name = "b"
device = "eth1"

[firewall]
rules = """
*filter
:FORWARD DROP [0:0]
-A FORWARD -i br0 -o br0 -j ACCEPT
COMMIT
"""
"#
    )
}

const ROUTER: &str = r#"
[[interface]]
name = "lan"
device = "eth0"
address = ["10.0.0.1/24"]

[[interface]]
name = "wan"
device = "eth1"
address = ["10.1.0.1/24"]

[[neighbor]]
ip = "10.1.0.9"
mac = "02:bb:00:00:00:09"
dev = "wan"
"#;

struct Rig {
    pipeline: Pipeline,
    pool: FramePool,
    umem: Vec<u8>,
    descs: Vec<Desc>,
    frames: Vec<[u8; FRAME_LEN]>,
}

impl Rig {
    /// `dst_mac`: the frames' destination (the far host when bridged, the
    /// router when routed); `dst`: their destination address.
    fn new(config: &str, dst_mac: [u8; 6], dst: u32) -> Self {
        let cfg = xgate_control::parse(config, "pipeline_bridged.toml").expect("config");
        let compiled = compile_for_replay(&cfg).expect("compile");
        let shared = Arc::new(shared_state(&compiled, 4096, Some(1)));
        let pipeline = Pipeline::new(Arc::new(compiled.tables), shared);
        let n = BURSTS * RX_BURST;
        let mut pool = FramePool::new(n + 1024);
        let umem = vec![0u8; pool.umem_len()];
        let descs = (0..n)
            .map(|_| {
                let mut d = pool.alloc().unwrap();
                d.len = FRAME_LEN as u32;
                d
            })
            .collect();
        let frames = (0..n)
            .map(|i| udp_frame(dst_mac, 0x0a00_0002 + (i % 256) as u32, 1000, dst, 9))
            .collect();
        let mut rig = Rig {
            pipeline,
            pool,
            umem,
            descs,
            frames,
        };
        // The far host speaks once: its MAC is learned on port 1.
        if dst_mac != FAR {
            return rig;
        }
        let mut hello = udp_frame(PORT0_MAC, 0x0a00_0063, 9, 0x0a00_0002, 1000);
        hello[6..12].copy_from_slice(&FAR);
        rig.burst(1, &[hello]);
        rig
    }

    fn burst(&mut self, port: u16, frames: &[[u8; FRAME_LEN]]) {
        let mut ports = [BenchPort, BenchPort];
        let burst = &self.descs[..frames.len()];
        for (d, f) in burst.iter().zip(frames) {
            d.bytes_mut(&mut self.umem).copy_from_slice(f);
        }
        self.pipeline
            .process(&mut self.umem, &mut self.pool, &mut ports, port, burst, NOW);
    }

    fn run(&mut self) {
        let mut ports = [BenchPort, BenchPort];
        for (k, burst) in self.descs.chunks(RX_BURST).enumerate() {
            for (i, d) in burst.iter().enumerate() {
                d.bytes_mut(&mut self.umem)
                    .copy_from_slice(&self.frames[k * RX_BURST + i]);
            }
            self.pipeline
                .process(&mut self.umem, &mut self.pool, &mut ports, 0, burst, NOW);
        }
    }

    /// Frames that left by port 1 (all of them, or the bench measured
    /// something else).
    fn sent(&self) -> u64 {
        self.pipeline.stats.ports[1].tx_packets.get()
    }
}

fn pipeline_bridged(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_bridged");
    g.throughput(Throughput::Elements((BURSTS * RX_BURST) as u64));
    let far_ip = 0x0a00_0063;
    let cases: [(&str, String, [u8; 6], u32); 3] = [
        ("routed", ROUTER.to_string(), PORT0_MAC, 0x0a01_0009),
        ("bridged", bridge(false), FAR, far_ip),
        ("bridged_nf", bridge(true), FAR, far_ip),
    ];
    for (name, config, mac, dst) in cases {
        if !selected("pipeline_bridged", name) {
            continue;
        }
        let mut rig = Rig::new(&config, mac, dst);
        rig.run();
        let before = rig.sent();
        let drops: Vec<_> = xgate_dataplane::stats::DropReason::ALL
            .iter()
            .filter(|r| rig.pipeline.stats.drops(**r) > 0)
            .map(|r| r.name())
            .collect();
        assert!(drops.is_empty(), "{name}: drops {drops:?}");
        assert!(before >= (BURSTS * RX_BURST) as u64, "{name}: not sent");
        g.bench_function(name, |b| b.iter(|| rig.run()));
        assert_eq!(rig.pipeline.stats.total_drops(), 0, "{name}: drops");
    }
    g.finish();
}

criterion_group!(benches, pipeline_bridged);
criterion_main!(benches);
