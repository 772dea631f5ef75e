//! `conntrack`: the shared connection table (`dataplane/src/conntrack`).
//!
//! - `lookup/{1k,100k,1M}`: ns per lookup of existing flows, keys drawn in
//!   random order from a table filled to capacity with that many live UDP
//!   flows (half looked up by original tuple, half by reply tuple).
//! - `track/{1k,100k,1M}`: the per-packet job on an existing flow: lookup,
//!   state update (one CAS), counters.
//! - `churn/100k`: insert a new flow and remove it, in a table holding 100k
//!   live flows (one insert + one delete per element).
//! - `threads/{1,2}`: lookups on the 1M table from 1 and 2 threads sharing
//!   it; throughput is the aggregate (elements = lookups of all threads),
//!   so the ratio of the two is the scaling.
//!
//! Prints bytes per flow (entries + index) for each table to stderr.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::Rng;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use xgate_dataplane::conntrack::{Conntrack, CtConfig, FlowKey, PROTO_UDP};

/// Lookups per measured iteration.
const BATCH: usize = 4096;

fn key(rng: &mut Rng) -> FlowKey {
    let r = rng.next();
    FlowKey::v4(
        0x0a00_0000 | (r as u32 & 0x00ff_ffff),
        (r >> 32) as u32,
        PROTO_UDP,
        (r >> 24) as u16,
        53,
    )
}

/// A table of `n` live flows and the lookup keys in random order.
fn filled(n: usize, seed: u64) -> (Conntrack, Vec<FlowKey>) {
    let t = Conntrack::with_config(CtConfig {
        seed: Some(1),
        ..CtConfig::new(n)
    });
    let mut rng = Rng(seed);
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let k = key(&mut rng);
        if t.insert(&k, &k.reverse(), 0, 64, 0).is_ok() {
            keys.push(if keys.len() % 2 == 0 { k } else { k.reverse() });
        }
    }
    // Fisher-Yates with the fixed stream.
    for i in (1..keys.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    eprintln!(
        "conntrack {n} flows: {:.1} bytes/flow ({} B entry), {:.1} MiB",
        t.bytes_per_flow(),
        Conntrack::ENTRY_BYTES,
        t.memory_bytes() as f64 / (1 << 20) as f64
    );
    (t, keys)
}

fn conntrack(c: &mut Criterion) {
    let sizes = [(1_000, "1k"), (100_000, "100k"), (1_000_000, "1M")];
    let mut lookup = c.benchmark_group("lookup");
    lookup.throughput(Throughput::Elements(BATCH as u64));
    let mut tables = Vec::new();
    for (n, name) in sizes {
        let (t, keys) = filled(n, 0x1234_5678 + n as u64);
        let mut pos = 0;
        lookup.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    pos = if pos + 1 == keys.len() { 0 } else { pos + 1 };
                    black_box(t.lookup(&keys[pos], 0));
                }
            })
        });
        tables.push((t, keys, name));
    }
    lookup.finish();

    let mut track = c.benchmark_group("track");
    track.throughput(Throughput::Elements(BATCH as u64));
    for (t, keys, name) in &tables {
        let mut pos = 0;
        let mut now = 0u64;
        track.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                now += 1_000_000;
                for _ in 0..BATCH {
                    pos = if pos + 1 == keys.len() { 0 } else { pos + 1 };
                    black_box(t.track(&keys[pos], 0, 64, now).ok());
                }
            })
        });
    }
    track.finish();

    let (t, _) = filled(100_000 + 1024, 99);
    let mut rng = Rng(0xdead_beef);
    let fresh: Vec<FlowKey> = (0..BATCH).map(|_| key(&mut rng)).collect();
    let mut churn = c.benchmark_group("churn");
    churn.throughput(Throughput::Elements(BATCH as u64));
    churn.bench_function("100k", |b| {
        b.iter(|| {
            for k in &fresh {
                if let Ok(id) = t.insert(k, &k.reverse(), 0, 64, 0) {
                    t.remove(id);
                }
            }
        })
    });
    churn.finish();
    drop(t);

    let (t, keys, _) = tables.pop().expect("1M table");
    drop(tables);
    let mut threads = c.benchmark_group("threads");
    for n in [1usize, 2] {
        threads.throughput(Throughput::Elements((BATCH * 16 * n) as u64));
        threads.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for th in 0..n {
                            let (t, keys) = (&t, &keys);
                            s.spawn(move || {
                                let mut pos = th * keys.len() / 2;
                                for _ in 0..BATCH * 16 {
                                    pos = if pos + 1 == keys.len() { 0 } else { pos + 1 };
                                    black_box(t.lookup(&keys[pos], 0));
                                }
                            });
                        }
                    });
                    total += start.elapsed();
                }
                total
            })
        });
    }
    threads.finish();
}

criterion_group!(benches, conntrack);
criterion_main!(benches);
