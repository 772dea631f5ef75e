//! `rules`: what a long FORWARD chain costs. The gateway of
//! `pipeline_nat` (masquerade, FORWARD policy DROP, INVALID dropped,
//! ESTABLISHED accepted, `-i lan -o wan` accepted) with 1,000 rules more
//! in FORWARD between the ESTABLISHED rule and the final accept, in the
//! shapes of the corpus' largest ruleset imported whole
//! (control/tests/corpus/iptables/incrediblepbx-pbx.rules.v4: per-host
//! multiport accepts, port accepts, ICMP types, dropped sources). None
//! matches the bench's traffic (UDP from 10/8 to 198.51.100.x:53), so a
//! first packet walks all of them: the worst case.
//!
//! - `first_packet_rules_N`: 4096 new connections per iteration (nat
//!   table, port allocation, insert and the FORWARD walk), each iteration
//!   on a fresh connection table holding 4096 other connections (its
//!   set-up is not timed); per packet.
//! - `established_rules_N`: the same connections, answered, then sent
//!   again: ESTABLISHED, decided by the state shortcut before the long
//!   chain.

mod common;

use common::{BenchPort, FRAME_LEN, udp_frame};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use xgate_control::compile::{Compiled, shared_state};
use xgate_control::replay::compile_for_replay;
use xgate_dataplane::addr::v4_key;
use xgate_dataplane::conntrack::{FlowKey, PROTO_UDP};
use xgate_dataplane::io::{Desc, FramePool};
use xgate_dataplane::pipeline::{Pipeline, RX_BURST, Shared, Tables};

/// Rule `i` of the long chain, in one of the corpus file's shapes.
fn rule(i: usize) -> String {
    let (a, b) = ((i / 250) as u8, (i % 250) as u8 + 1);
    match i % 5 {
        0 => format!(
            "-A FORWARD -s 64.2.{a}.{b}/32 -p udp -m multiport --dports 5060,5061,5062,5063,5064,5065,5066,5067,5068,5069,4569 -j ACCEPT"
        ),
        1 => format!("-A FORWARD -p tcp -m tcp --dport {} -j ACCEPT", 1000 + i),
        2 => format!(
            "-A FORWARD -p icmp -m icmp --icmp-type {} -j ACCEPT",
            [0, 3, 4, 11, 12][i % 5 / 2 + (i / 5) % 3]
        ),
        3 => format!("-A FORWARD -s 192.0.{a}.{b}/32 -j DROP"),
        _ => format!(
            "-A FORWARD -d 198.18.{a}.{b}/32 -p udp -m udp --dport {} -j ACCEPT",
            2000 + i
        ),
    }
}

fn config(rules: usize) -> String {
    let body: String = (0..rules).map(|i| rule(i) + "\n").collect();
    common::gateway_config(65536, &body)
}

const PACKETS: usize = 4096;
const LAN_PORT: u16 = 1;
const WAN_PORT: u16 = 0;
const NOW: u64 = 1_000_000_000;

/// Connection `i`: 10.0.(i / 16).2:(20000 + i % 16) to 198.51.100.(i % 64):53.
fn endpoints(i: usize) -> (u32, u16, u32, u16) {
    let host = 0x0a00_0002 + ((i / 16) as u32) * 256;
    let dst = u32::from_be_bytes([198, 51, 100, (i % 64) as u8]);
    (host, 20000 + (i % 16) as u16, dst, 53)
}

struct Rig {
    pipeline: Pipeline,
    pool: FramePool,
    umem: Vec<u8>,
    descs: Vec<Desc>,
}

impl Rig {
    fn new(tables: Arc<Tables>, shared: Arc<Shared>) -> Rig {
        let mut pool = FramePool::new(PACKETS + 256);
        let umem = vec![0u8; pool.umem_len()];
        let descs = (0..PACKETS)
            .map(|_| {
                let mut d = pool.alloc().unwrap();
                d.len = FRAME_LEN as u32;
                d
            })
            .collect();
        Rig {
            pipeline: Pipeline::new(tables, shared),
            pool,
            umem,
            descs,
        }
    }

    fn send(&mut self, port: u16, frames: &[[u8; FRAME_LEN]]) {
        let mut ports = [BenchPort, BenchPort];
        for (k, chunk) in frames.chunks(RX_BURST).enumerate() {
            let burst = &self.descs[k * RX_BURST..k * RX_BURST + chunk.len()];
            for (d, f) in burst.iter().zip(chunk) {
                d.bytes_mut(&mut self.umem).copy_from_slice(f);
            }
            self.pipeline
                .process(&mut self.umem, &mut self.pool, &mut ports, port, burst, NOW);
        }
    }
}

fn rules(c: &mut Criterion) {
    let mut g = c.benchmark_group("rules");
    g.sample_size(20);
    g.throughput(Throughput::Elements(PACKETS as u64));
    let lan: Vec<[u8; FRAME_LEN]> = (0..PACKETS)
        .map(|i| {
            let (h, sp, d, dp) = endpoints(i);
            udp_frame([2, 0, 0, 0, 0, 2], h, sp, d, dp)
        })
        .collect();
    for n in [0usize, 1000] {
        let first = format!("first_packet_rules_{n}");
        let est = format!("established_rules_{n}");
        if !common::selected("rules", &first) && !common::selected("rules", &est) {
            continue;
        }
        let cfg = xgate_control::parse(&config(n), "rules.toml").expect("config");
        let compiled: Compiled = compile_for_replay(&cfg).expect("compile");
        // The tables (moved out of a second compile), and `compiled` for
        // each fresh connection table.
        let tables = Arc::new(compile_for_replay(&cfg).expect("compile").tables);
        eprintln!("rules: FORWARD holds {} rules", tables.filter.rule_count());
        // Other hosts' connections first, so that the timed ones do not
        // pay for the fresh table's first page faults.
        let warm: Vec<[u8; FRAME_LEN]> = (0..PACKETS)
            .map(|i| {
                let (h, sp, d, dp) = endpoints(i);
                udp_frame([2, 0, 0, 0, 0, 2], h + 0x0001_0000, sp, d, dp)
            })
            .collect();
        let fresh = || {
            let shared = Arc::new(shared_state(&compiled, cfg.dataplane.flows, Some(1)));
            let mut rig = Rig::new(tables.clone(), shared);
            for _ in 0..4 {
                rig.send(LAN_PORT, &warm);
            }
            rig
        };
        if common::selected("rules", &first) {
            g.bench_function(&first, |b| {
                b.iter_batched(
                    fresh,
                    |mut rig| {
                        rig.send(LAN_PORT, &lan);
                        rig
                    },
                    BatchSize::PerIteration,
                )
            });
            let mut rig = fresh();
            rig.send(LAN_PORT, &lan);
            assert_eq!(
                rig.pipeline.stats.total_drops(),
                0,
                "every first packet forwarded"
            );
        }
        if common::selected("rules", &est) {
            let mut rig = fresh();
            rig.send(LAN_PORT, &lan);
            let shared = rig.pipeline.shared.clone();
            let answers: Vec<[u8; FRAME_LEN]> = (0..PACKETS)
                .map(|i| {
                    let (h, sp, d, dp) = endpoints(i);
                    let key = FlowKey::v4(h, d, PROTO_UDP, sp, dp);
                    let c = shared.conntrack.lookup(&key, NOW).expect("tracked");
                    let t = shared.conntrack.translation(c).expect("masqueraded");
                    udp_frame([2, 0, 0, 0, 0, 1], d, dp, t.src as u32, t.sport)
                })
                .collect();
            for i in (0..PACKETS).step_by(16) {
                shared
                    .neighbors
                    .insert_static(1, v4_key(endpoints(i).0), &[2, 0xaa, 0, 0, 0, 6]);
            }
            rig.send(WAN_PORT, &answers);
            g.bench_function(&est, |b| b.iter(|| rig.send(LAN_PORT, &lan)));
            assert_eq!(rig.pipeline.stats.total_drops(), 0);
        }
    }
    g.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
