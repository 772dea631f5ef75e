//! `lpm`: longest-prefix match on the real RIB (shared/data/routes, 606k IPv4
//! and 27.7k IPv6 prefixes, next hop = origin AS mod 16).
//!
//! Measures ns per lookup for uniformly random IPv4 addresses (one at a time
//! and in batches of 64) and for IPv6 addresses drawn inside announced
//! prefixes, on the RIB and on a synthetic 200k-prefix IPv6 table (the RIB
//! plus random more-specifics of its allocations, mostly /48); prints build
//! time, prefix count and memory of each table once (stderr). The reference is DPDK's rte_lpm: ~28-32 cycles per random
//! lookup.
//!
//! `fib4/full_rib` is the whole routing decision of the pipeline for the
//! same addresses: default policy rules, a local table with three addresses,
//! the RIB in main (16 gateways, so 16 shared forwarding entries), then the
//! ECMP next hop by flow hash. `fib4/table_main` is the same lookup in table
//! main alone (`RouteTable::lookup_v4` and the next hop): `full_rib` costs
//! more mostly because a third of these addresses are unrouted and fall
//! through to table default, a branch on a missed cache line (see
//! `route/policy.rs`). `fib4/batch64_prefetch` is `full_rib` in batches of
//! 64 that first prefetch (`Fib::prefetch`), as the route stage does.

mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use common::{Rng, load_rib};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xgate_dataplane::route::{
    Fib, Lpm4, Lpm6, NextHop, Route, RouteType, TABLE_LOCAL, TABLE_MAIN, local_route,
};

/// Addresses per measured iteration.
const N: usize = 1 << 16;

fn lpm(c: &mut Criterion) {
    let rib = load_rib();

    let t = Instant::now();
    let mut v4 = Lpm4::new();
    for &(p, l, nh) in &rib.v4 {
        v4.insert(p, l, nh);
    }
    let build4 = t.elapsed();
    let t = Instant::now();
    let mut v6 = Lpm6::new();
    for &(p, l, nh) in &rib.v6 {
        v6.insert(p, l, nh);
    }
    let build6 = t.elapsed();
    eprintln!(
        "lpm4: {} prefixes built in {:.1} ms, {:.1} MiB allocated, {} tbl8 groups",
        v4.len(),
        build4.as_secs_f64() * 1e3,
        v4.memory_bytes() as f64 / (1 << 20) as f64,
        v4.groups()
    );
    eprintln!(
        "lpm6: {} prefixes built in {:.1} ms, {:.1} MiB allocated, {} trie nodes",
        v6.len(),
        build6.as_secs_f64() * 1e3,
        v6.memory_bytes() as f64 / (1 << 20) as f64,
        v6.groups()
    );

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let addrs4: Vec<u32> = (0..N).map(|_| rng.next() as u32).collect();
    // Random addresses inside random announced prefixes: uniform v6
    // addresses would nearly all miss at the first level.
    let addrs6: Vec<u128> = (0..N)
        .map(|_| {
            let (p, l, _) = rib.v6[rng.next() as usize % rib.v6.len()];
            let host = (u128::from(rng.next()) << 64 | u128::from(rng.next()))
                .checked_shr(u32::from(l))
                .unwrap_or(0);
            p | host
        })
        .collect();

    let mut g = c.benchmark_group("lpm4");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("random", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in &addrs4 {
                sum = sum.wrapping_add(v4.lookup(black_box(a)).unwrap_or(0));
            }
            sum
        })
    });
    g.bench_function("batch64", |b| {
        let mut out = [None; 64];
        b.iter(|| {
            let mut sum = 0u32;
            for chunk in addrs4.chunks_exact(64) {
                v4.lookup_batch(black_box(chunk), &mut out);
                sum = out.iter().fold(sum, |s, o| s.wrapping_add(o.unwrap_or(0)));
            }
            sum
        })
    });
    g.finish();

    let t = Instant::now();
    let mut fib = Fib::new();
    let main = fib.table_mut(TABLE_MAIN);
    for &(p, l, nh) in &rib.v4 {
        let via = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, nh as u8 + 1));
        let nexthops = vec![NextHop {
            via: Some(via),
            dev: nh as u16,
            weight: 1,
        }];
        let r = Route {
            prefix: IpAddr::V4(p.into()),
            len: l,
            metric: 0,
            rtype: RouteType::Unicast,
            nexthops,
        };
        main.add(r).expect("RIB route");
    }
    for a in ["192.0.2.1", "198.51.100.1", "203.0.113.1"] {
        fib.table_mut(TABLE_LOCAL)
            .add(local_route(a.parse().expect("address"), 1))
            .expect("local route");
    }
    let main = fib.table(TABLE_MAIN).expect("table main");
    eprintln!(
        "fib4: {} routes in main built in {:.1} ms, {:.1} MiB allocated by main's lookup structures, {} forwarding entries",
        rib.v4.len(),
        t.elapsed().as_secs_f64() * 1e3,
        main.memory_bytes() as f64 / (1 << 20) as f64,
        main.entries()
    );
    let mut g = c.benchmark_group("fib4");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("table_main", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in &addrs4 {
                let a = black_box(a);
                if let Some(e) = main.lookup_v4(a) {
                    sum = sum.wrapping_add(e.nexthop(a).map_or(0, |n| u32::from(n.dev)));
                }
            }
            sum
        })
    });
    g.bench_function("full_rib", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in &addrs4 {
                let a = black_box(a);
                if let Some((e, _)) = fib.lookup_v4(0x0a00_0001, a, Some(1), 0) {
                    sum = sum.wrapping_add(e.nexthop(a).map_or(0, |n| u32::from(n.dev)));
                }
            }
            sum
        })
    });
    g.bench_function("batch64_prefetch", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            let prefetch = fib.prefetch();
            for chunk in addrs4.chunks_exact(64) {
                for &a in chunk {
                    prefetch.v4(black_box(a));
                }
                for &a in chunk {
                    let a = black_box(a);
                    if let Some((e, _)) = fib.lookup_v4(0x0a00_0001, a, Some(1), 0) {
                        sum = sum.wrapping_add(e.nexthop(a).map_or(0, |n| u32::from(n.dev)));
                    }
                }
            }
            sum
        })
    });
    g.finish();

    // IPv6 at today's size: the RIB plus more-specifics of its
    // allocations, mostly /48, up to 200k prefixes.
    let mut seen: std::collections::HashSet<(u128, u8)> =
        rib.v6.iter().map(|&(p, l, _)| (p, l)).collect();
    let parents: Vec<(u128, u8, u32)> = rib
        .v6
        .iter()
        .copied()
        .filter(|&(_, l, _)| l <= 44)
        .collect();
    let mut big6 = rib.v6.clone();
    while big6.len() < 200_000 {
        let (p, pl, nh) = parents[rng.next() as usize % parents.len()];
        let l = [48, 48, 48, 48, 48, 48, 44, 40, 36, 56, 64][rng.next() as usize % 11].max(pl + 1);
        let bits = (u128::from(rng.next()) << 64) >> pl;
        let m = u128::MAX << (128 - u32::from(l));
        let q = (p | bits) & m;
        if seen.insert((q, l)) {
            big6.push((q, l, nh ^ (rng.next() as u32 & 1)));
        }
    }
    let t = Instant::now();
    let mut v6big = Lpm6::new();
    for &(p, l, nh) in &big6 {
        v6big.insert(p, l, nh);
    }
    eprintln!(
        "lpm6 (synthetic): {} prefixes built in {:.1} ms, {:.1} MiB allocated, {} trie nodes",
        v6big.len(),
        t.elapsed().as_secs_f64() * 1e3,
        v6big.memory_bytes() as f64 / (1 << 20) as f64,
        v6big.groups()
    );
    eprintln!("lpm6 (synthetic): {v6big:?}");
    let addrs6big: Vec<u128> = (0..N)
        .map(|_| {
            let (p, l, _) = big6[rng.next() as usize % big6.len()];
            let host = (u128::from(rng.next()) << 64 | u128::from(rng.next()))
                .checked_shr(u32::from(l))
                .unwrap_or(0);
            p | host
        })
        .collect();

    let mut g = c.benchmark_group("lpm6");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("random_announced", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in &addrs6 {
                sum = sum.wrapping_add(v6.lookup(black_box(a)).unwrap_or(0));
            }
            sum
        })
    });
    g.bench_function("batch64", |b| {
        let mut out = [None; 64];
        b.iter(|| {
            let mut sum = 0u32;
            for chunk in addrs6.chunks_exact(64) {
                v6.lookup_batch(black_box(chunk), &mut out);
                sum = out.iter().fold(sum, |s, o| s.wrapping_add(o.unwrap_or(0)));
            }
            sum
        })
    });
    g.bench_function("synthetic_200k", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for &a in &addrs6big {
                sum = sum.wrapping_add(v6big.lookup(black_box(a)).unwrap_or(0));
            }
            sum
        })
    });
    g.finish();
}

criterion_group!(benches, lpm);
criterion_main!(benches);
