//! `offload_prog`: what xgate's offload XDP program (issue 16,
//! dataplane/src/io/afxdp/offload.bpf.c) costs per frame, as the kernel
//! times it (BPF_PROG_RUN with a repeat count: no system call per run):
//!
//! - `hit`: a 64-byte TCP segment of an offloaded, masqueraded connection
//!   (lookup, TTL, source address and port rewritten with their checksums,
//!   MACs, redirect). The kernel runs the program on the same buffer each
//!   time, so a second entry maps the rewritten frame back: the runs
//!   alternate between the two directions of the rewrite, 250 per call
//!   (then the TTL, decremented each run, is renewed);
//! - `miss`: a segment of a connection not in the map (parse, lookup, the
//!   redirect to the AF_XDP socket);
//! - `xsk_only`: the same segment through the five-instruction program
//!   xgate attaches today (afxdp/prog.rs: straight to the socket), the
//!   baseline a miss adds to.
//!
//! Needs root (bpf(2)); prints why and exits otherwise. Run:
//! `cargo bench --bench offload_prog`.

use xgate_dataplane::io::afxdp::offload::{OffloadProgram, learn};
use xgate_dataplane::io::bpf;

const LO: u32 = 1;
const XDP_REDIRECT: u32 = 4;
const XDP_DROP: u32 = 1;
/// Each BPF_PROG_RUN of an XDP program swaps the kernel's XDP dispatcher
/// twice (an RCU grace period each, milliseconds on a busy machine): few
/// calls, many runs per call.
const CALLS: u32 = 200;
/// Runs per call for `hit` (the TTL, 255 at first, decrements each run).
const PER_CALL: u32 = 250;
/// Runs per call for `miss` and `xsk_only` (the frame is not changed).
const PER_CALL_SAME: u32 = 25_000;

/// A 64-byte (60 without FCS) Ethernet / IPv4 / TCP ACK segment.
fn segment(src: [u8; 4], sport: u16, ttl: u8) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0xaa, 0, 0, 0, 0x10, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 46, 0, 0, 0x40, 0, ttl, 6, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&[198, 51, 100, 7]);
    let c = xgate_dataplane::packet::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = sport.to_be_bytes().to_vec();
    tcp.extend_from_slice(&[
        1, 187, 0, 0, 3, 233, 0, 0, 19, 137, 0x50, 0x10, 0xfa, 0xf0, 0, 0, 0, 0,
    ]);
    tcp.extend_from_slice(&[0u8; 6]);
    let mut acc =
        xgate_dataplane::packet::checksum::pseudo_v4(src, [198, 51, 100, 7], 6, tcp.len() as u16);
    acc = xgate_dataplane::packet::checksum::sum(&tcp, acc);
    let c = xgate_dataplane::packet::checksum::finish(acc);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&tcp);
    f
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!(
            "offload_prog/hit: benchmark\noffload_prog/miss: benchmark\noffload_prog/xsk_only: benchmark"
        );
        return;
    }
    let prog = match OffloadProgram::load() {
        Ok(p) => p,
        Err(e) => {
            println!("offload_prog: skipped: {e} (loading a BPF program needs root)");
            return;
        }
    };
    prog.add_port(LO).unwrap();
    let lan = segment([192, 168, 1, 10], 40000, 255);
    let wan = segment([203, 0, 113, 2], 61000, 254);
    // lan -> wan (masquerade) and wan -> lan (its undoing, so that the
    // frame left by one run is the next run's input).
    let (k1, a1) = learn(&lan, &wan, LO, LO, 1500).unwrap();
    let (k2, a2) = learn(&wan, &segment([192, 168, 1, 10], 40000, 253), LO, LO, 1500).unwrap();
    prog.insert(&k1, &a1).unwrap();
    prog.insert(&k2, &a2).unwrap();
    let mut hit = 0u64;
    for _ in 0..CALLS {
        let (v, ns) = prog.time_run(&lan, LO, 0, PER_CALL).unwrap();
        assert_eq!(v, XDP_REDIRECT, "the last run was not offloaded");
        hit += u64::from(ns);
    }
    let other = segment([192, 168, 1, 11], 40001, 64);
    let mut miss = 0u64;
    for _ in 0..CALLS / 10 {
        let (v, ns) = prog.time_run(&other, LO, 0, PER_CALL_SAME).unwrap();
        assert_eq!(v, XDP_DROP, "a miss goes to the (here empty) socket map");
        miss += u64::from(ns);
    }
    let map = bpf::Map::new(bpf::BPF_MAP_TYPE_XSKMAP, 4, 1).unwrap();
    let base = bpf::Program::load_xdp(
        "xgate_xsk",
        &xgate_dataplane::io::afxdp::prog::program(map.fd()),
    )
    .unwrap();
    let mut xsk_only = 0u64;
    for _ in 0..CALLS / 10 {
        let (v, _, ns) = bpf::run_fd(base.fd(), &other, Some((LO, 0)), PER_CALL_SAME).unwrap();
        assert_eq!(v, XDP_DROP);
        xsk_only += u64::from(ns);
    }
    let n = f64::from(CALLS);
    let m = f64::from(CALLS / 10);
    println!(
        "offload_prog/hit   {:.1} ns/frame  (masqueraded TCP, {} runs)",
        hit as f64 / n,
        CALLS * PER_CALL
    );
    println!(
        "offload_prog/miss  {:.1} ns/frame  (not offloaded: to the AF_XDP socket, {} runs)",
        miss as f64 / m,
        CALLS / 10 * PER_CALL_SAME
    );
    println!(
        "offload_prog/xsk_only  {:.1} ns/frame  (today's program, {} runs)",
        xsk_only as f64 / m,
        CALLS / 10 * PER_CALL_SAME
    );
    let o = prog.outcomes().unwrap();
    println!("outcomes: offloaded {} miss {}", o[0], o[1]);
}
