//! `pipeline_nat`: 64-byte IPv4 UDP frames (60 bytes without FCS) from the
//! LAN through the whole stateful pipeline: conntrack lookup (batched, with
//! prefetch) and state update, a stateful FORWARD filter, masquerade's
//! source rewrite with incremental checksums, routing, neighbour rewrite.
//! Goal: <= 80 ns/packet at 1M flows on one core, and >= 1.9x one core's
//! throughput with 2 workers sharing the connection table.
//!
//! `flows_N` sets up N live connections first (their first packets go
//! through the pipeline: nat table, port allocation, insert; then an answer
//! each, so they are ESTABLISHED and the FORWARD chain accepts them at its
//! second rule, as a gateway's usual traffic), then each iteration sends
//! 4096 LAN packets of randomly chosen connections, so at 1M
//! flows nearly every lookup misses the caches. Masquerade keeps
//! endpoint-independent mappings, so N connections are N/64 inside
//! endpoints talking to 64 servers each (one address has 64k ports per
//! protocol; 1M endpoints would not fit, as on any EIM NAT).
//! `2threads_flows_N` runs two workers (each its own pipeline, UMEM and
//! frames) on the same table at once, each sending its own half of the
//! connections (as RSS gives each queue its flows; the table, its index
//! and the NAT state are shared); its time is per packet of both.

mod common;

use common::{BenchPort, FRAME_LEN, Rng, selected, udp_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xgate_control::compile::{Compiled, shared_state};
use xgate_control::replay::compile_for_replay;
use xgate_dataplane::addr::v4_key;
use xgate_dataplane::conntrack::{FlowKey, PROTO_UDP};
use xgate_dataplane::io::{Desc, FramePool};
use xgate_dataplane::pipeline::{Pipeline, RX_BURST, Shared, Tables};

/// Bursts per iteration: 4096 packets, taken from the rx ring as a
/// worker takes them.
const BURSTS: usize = 4096 / RX_BURST;
const LAN_PORT: u16 = 1;
const WAN_PORT: u16 = 0;
/// Servers each inside endpoint talks to.
const FANOUT: usize = 64;

/// Connection `i`: inside endpoint i / FANOUT (10.x.y.z:port), server
/// 198.51.100.(i % FANOUT):53.
fn endpoints(i: usize) -> (u32, u16, u32, u16) {
    let ep = i / FANOUT;
    let host = 0x0a00_0002 + (ep / 16) as u32;
    let sport = 20000 + (ep % 16) as u16;
    let dst = u32::from_be_bytes([198, 51, 100, (i % FANOUT) as u8]);
    (host, sport, dst, 53)
}

/// The LAN frame of connection `i`.
fn frame(i: usize) -> [u8; FRAME_LEN] {
    let (host, sport, dst, dport) = endpoints(i);
    udp_frame([2, 0, 0, 0, 0, 2], host, sport, dst, dport)
}

/// One worker: its pipeline, UMEM, descriptors and the frames it sends.
struct Worker {
    pipeline: Pipeline,
    pool: FramePool,
    umem: Vec<u8>,
    descs: Vec<Desc>,
    windows: Vec<Vec<[u8; FRAME_LEN]>>,
    window: usize,
}

impl Worker {
    /// A worker sending random connections among `flows`, those `i` with
    /// `i % of == part` (how RSS gives each queue its own flows).
    fn new(
        tables: Arc<Tables>,
        shared: Arc<Shared>,
        flows: usize,
        (part, of): (usize, usize),
        seed: u64,
    ) -> Self {
        let per_window = BURSTS * RX_BURST;
        let mut pool = FramePool::new(per_window + 256);
        let umem = vec![0u8; pool.umem_len()];
        let descs = (0..per_window)
            .map(|_| {
                let mut d = pool.alloc().unwrap();
                d.len = FRAME_LEN as u32;
                d
            })
            .collect();
        let mut rng = Rng(seed);
        let windows = (0..16)
            .map(|_| {
                (0..per_window)
                    .map(|_| {
                        let i = rng.next() as usize % flows;
                        frame(i - i % of + part)
                    })
                    .collect()
            })
            .collect();
        Worker {
            pipeline: Pipeline::new(tables, shared),
            pool,
            umem,
            descs,
            windows,
            window: 0,
        }
    }

    /// Sends `frames` received on `port`, a burst at a time.
    fn send(&mut self, port: u16, frames: impl Iterator<Item = [u8; FRAME_LEN]>) {
        let mut ports = [BenchPort, BenchPort];
        let frames: Vec<_> = frames.collect();
        for chunk in frames.chunks(RX_BURST) {
            let burst = &self.descs[..chunk.len()];
            for (d, f) in burst.iter().zip(chunk) {
                d.bytes_mut(&mut self.umem).copy_from_slice(f);
            }
            self.pipeline
                .process(&mut self.umem, &mut self.pool, &mut ports, port, burst, NOW);
        }
    }

    /// One iteration: 4096 packets of random live connections, in rx bursts.
    fn run(&mut self) {
        let mut ports = [BenchPort, BenchPort];
        let set = &self.windows[self.window];
        self.window = (self.window + 1) % self.windows.len();
        for (k, burst) in self.descs.chunks(RX_BURST).enumerate() {
            for (i, d) in burst.iter().enumerate() {
                d.bytes_mut(&mut self.umem)
                    .copy_from_slice(&set[k * RX_BURST + i]);
            }
            self.pipeline.process(
                &mut self.umem,
                &mut self.pool,
                &mut ports,
                LAN_PORT,
                burst,
                NOW,
            );
        }
    }
}

/// Pipeline time: 1 s into the epoch, constant (nothing expires).
const NOW: u64 = 1_000_000_000;

fn setup(flows: usize) -> (Arc<Tables>, Arc<Shared>) {
    let cfg = xgate_control::parse(&common::gateway_config(2_097_152, ""), "pipeline_nat.toml")
        .expect("config");
    let compiled: Compiled = compile_for_replay(&cfg).expect("compile");
    let shared = Arc::new(shared_state(&compiled, cfg.dataplane.flows, Some(1)));
    let tables = Arc::new(compiled.tables);
    let mut w = Worker::new(tables.clone(), shared.clone(), flows, (0, 1), 7);
    // First packets (nat table, port allocation, insert), then one answer
    // each, so that the connections are ESTABLISHED as a gateway's are.
    w.send(LAN_PORT, (0..flows).map(frame));
    assert_eq!(shared.conntrack.len(), flows, "every connection set up");
    let answers = (0..flows).map(|i| {
        let (host, sport, dst, dport) = endpoints(i);
        let key = FlowKey::v4(host, dst, PROTO_UDP, sport, dport);
        let c = shared.conntrack.lookup(&key, NOW).expect("tracked");
        let t = shared.conntrack.translation(c).expect("masqueraded");
        udp_frame([2, 0, 0, 0, 0, 1], dst, dport, t.src as u32, t.sport)
    });
    // The inside hosts' MACs, so that the answers are delivered at once.
    for i in (0..flows).step_by(FANOUT * 16) {
        let host = endpoints(i).0;
        shared
            .neighbors
            .insert_static(1, v4_key(host), &[2, 0xaa, 0, 0, 0, 6]);
    }
    w.send(WAN_PORT, answers);
    assert_eq!(w.pipeline.stats.total_drops(), 0);
    (tables, shared)
}

fn pipeline_nat(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_nat");
    g.sample_size(20);
    for flows in [1_000usize, 100_000, 1_000_000] {
        let one = format!("udp64_flows_{flows}");
        let two = format!("udp64_2threads_flows_{flows}");
        if !selected("pipeline_nat", &one) && !selected("pipeline_nat", &two) {
            continue;
        }
        let (tables, shared) = setup(flows);
        eprintln!(
            "pipeline_nat: {flows} connections, {:.1} bytes per flow of capacity",
            shared.conntrack.bytes_per_flow()
        );
        if selected("pipeline_nat", &one) {
            let mut w = Worker::new(tables.clone(), shared.clone(), flows, (0, 1), 11);
            g.throughput(Throughput::Elements((BURSTS * RX_BURST) as u64));
            g.bench_function(&one, |b| b.iter(|| w.run()));
            assert_eq!(w.pipeline.stats.total_drops(), 0);
        }
        if selected("pipeline_nat", &two) {
            let mut ws: Vec<Worker> = (0..2)
                .map(|k| Worker::new(tables.clone(), shared.clone(), flows, (k, 2), 13 + k as u64))
                .collect();
            g.throughput(Throughput::Elements((2 * BURSTS * RX_BURST) as u64));
            g.bench_function(&two, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for w in ws.iter_mut() {
                            s.spawn(move || {
                                for _ in 0..iters {
                                    w.run();
                                }
                            });
                        }
                    });
                    start.elapsed().max(Duration::from_nanos(1))
                })
            });
            for w in &ws {
                assert_eq!(w.pipeline.stats.total_drops(), 0);
            }
        }
    }
    g.finish();
}

criterion_group!(benches, pipeline_nat);
criterion_main!(benches);
