//! `pipeline_routed`: 64-byte IPv4 UDP frames (60 bytes without FCS)
//! through the whole pipeline (parse -> route -> rewrite -> tx queue) with
//! the full 606k-prefix RIB in table main, on one core. Destinations are
//! random addresses inside random RIB prefixes; next hops are 16 gateways
//! on the WAN with static neighbour entries. Goal: <= 33 ns/packet.
//!
//! The bench hands the pipeline the same 16 rx bursts of 256 descriptors again
//! and again, and its port's tx accepts everything, so what is measured is
//! the pipeline plus writing each frame's 60 bytes into its UMEM frame (the
//! work a NIC's DMA would do), not a queue. `_cold` takes a new set of 4096
//! destinations every iteration, so the LPM's lines are not cached.

mod common;

use common::{BenchPort, FRAME_LEN, Rng, load_rib, load_rib_head, selected, udp_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use xgate_dataplane::addr::v4_key;
use xgate_dataplane::iface::{Interface, Interfaces};
use xgate_dataplane::io::{Desc, FramePool, HEADROOM};
use xgate_dataplane::packet::ether::VlanStack;
use xgate_dataplane::pipeline::{IcmpLimits, Pipeline, RX_BURST, Shared, Tables};
use xgate_dataplane::route::{
    Fib, NextHop, Route, RouteType, TABLE_LOCAL, TABLE_MAIN, connected_route, local_route,
};

const WAN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const LAN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn iface(name: &str, port: u16, mac: [u8; 6], addr: &str) -> Interface {
    Interface {
        name: name.into(),
        device: format!("eth{port}"),
        port,
        vlans: VlanStack::NONE,
        mac,
        mtu: 1500,
        v4: vec![(addr.parse().unwrap(), 24)],
        v6: vec![],
        tap: None,
        tap_groups: Vec::new(),
        rp_filter: Default::default(),
        bc_forwarding: false,
        bridge: xgate_dataplane::iface::Bridging::None,
    }
}

fn frame(dst: u32, sport: u16) -> [u8; FRAME_LEN] {
    udp_frame(
        LAN_MAC,
        u32::from_be_bytes([192, 168, 1, 10]),
        sport,
        dst,
        9,
    )
}

fn pipeline_routed(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_routed");
    g.throughput(Throughput::Elements((BURSTS * RX_BURST) as u64));
    // The full RIB with the same 4096 destinations every iteration (their
    // table lines stay cached), with a fresh set of 4096 out of 1M each
    // iteration (cold: many flows), and the pipeline with 16 routes (the
    // cost of everything but the LPM's cache misses).
    if selected("pipeline_routed", "udp64_full_rib")
        || selected("pipeline_routed", "udp64_full_rib_cold")
    {
        let rib = load_rib();
        if selected("pipeline_routed", "udp64_full_rib") {
            run(&mut g, "udp64_full_rib", &rib.v4, 1);
        }
        if selected("pipeline_routed", "udp64_full_rib_cold") {
            run(&mut g, "udp64_full_rib_cold", &rib.v4, 256);
        }
    }
    if selected("pipeline_routed", "udp64_16_routes") {
        let rib = load_rib_head(16);
        run(&mut g, "udp64_16_routes", &rib.v4, 1);
    }
    g.finish();
}

/// Rx bursts per iteration: 4096 packets, taken as a worker takes them.
const BURSTS: usize = 4096 / RX_BURST;

fn run(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    routes: &[(u32, u8, u32)],
    windows: usize,
) {
    let interfaces = Interfaces::new(vec![
        iface("wan", 0, WAN_MAC, "203.0.113.2"),
        iface("lan", 1, LAN_MAC, "192.168.1.1"),
    ]);
    let mut fib = Fib::new();
    for (i, ic) in interfaces.iter() {
        let (a, l) = ic.v4[0];
        fib.table_mut(TABLE_LOCAL)
            .replace(local_route(IpAddr::V4(a), i));
        fib.table_mut(TABLE_MAIN)
            .replace(connected_route(IpAddr::V4(a), l, i));
    }
    let shared = Arc::new(Shared::new(4096));
    for g in 0..16u8 {
        let gw = Ipv4Addr::new(203, 0, 113, 10 + g);
        shared
            .neighbors
            .insert_static(0, v4_key(gw.into()), &[2, 0xbb, 0, 0, 0, g]);
    }
    let main = fib.table_mut(TABLE_MAIN);
    for &(p, l, nh) in routes {
        let via = Ipv4Addr::new(203, 0, 113, 10 + nh as u8);
        let r = Route {
            prefix: IpAddr::V4(p.into()),
            len: l,
            metric: 0,
            rtype: RouteType::Unicast,
            nexthops: vec![NextHop {
                via: Some(IpAddr::V4(via)),
                dev: 0,
                weight: 1,
            }],
        };
        main.replace(r);
    }
    let tables = Arc::new(Tables {
        interfaces,
        fib,
        icmp: IcmpLimits::default(),
        filter: Default::default(),
        tracking: false,
        helper_ports: Default::default(),
        ct_checksum: true,
        bridges: Default::default(),
    });

    // 4096 frames in rx bursts, of distinct destinations inside the
    // routes; `windows` such sets, one per iteration, in a flat array.
    let bursts = BURSTS;
    let per_window = bursts * RX_BURST;
    let mut rng = Rng(0x5eed);
    let mut pool = FramePool::new(per_window + 256);
    let mut umem = vec![0u8; pool.umem_len()];
    let mut frames = Vec::with_capacity(windows * per_window * FRAME_LEN);
    for _ in 0..windows * per_window {
        let (p, l, _) = routes[rng.next() as usize % routes.len()];
        let host = if l == 32 {
            0
        } else {
            (rng.next() as u32) & (u32::MAX >> l)
        };
        frames.extend_from_slice(&frame(p | host, rng.next() as u16));
    }
    let descs: Vec<Desc> = (0..per_window)
        .map(|_| {
            let mut d = pool.alloc().unwrap();
            d.len = FRAME_LEN as u32;
            assert_eq!(d.headroom(), HEADROOM);
            d
        })
        .collect();
    let mut pipeline = Pipeline::new(tables, shared);
    let mut ports = [BenchPort, BenchPort];
    let mut window = 0;

    g.bench_function(name, |b| {
        b.iter(|| {
            let set = &frames[window * per_window * FRAME_LEN..][..per_window * FRAME_LEN];
            window = (window + 1) % windows;
            for (k, burst) in descs.chunks(RX_BURST).enumerate() {
                for (i, d) in burst.iter().enumerate() {
                    let at = (k * RX_BURST + i) * FRAME_LEN;
                    d.bytes_mut(&mut umem)
                        .copy_from_slice(&set[at..at + FRAME_LEN]);
                }
                pipeline.process(&mut umem, &mut pool, &mut ports, 1, burst, 1_000_000_000);
            }
        })
    });
    // Every packet must have been forwarded (none when the filter skipped us).
    let drops = pipeline.stats.total_drops();
    assert_eq!(drops, 0, "{name}: {:?}", pipeline.stats.nonzero_drops());
}

criterion_group!(benches, pipeline_routed);
criterion_main!(benches);
