//! NAT over a whole rx burst: the replay tests send one frame per call, so
//! the stages that decide per batch (PREROUTING is skipped when conntrack
//! saw only packets of known connections with untranslated destinations)
//! are shown here with bursts that mix such packets with first packets
//! that need DNAT, in either order.

mod common;
use common::*;
use xgate_dataplane::io::memory::MemoryWorker;

const FIREWALL: &str = r#"
[firewall]
rules = """
*nat
-A PREROUTING -i lan -p udp --dport 5353 -j DNAT --to-destination 198.51.100.99:53
-A POSTROUTING -o wan -j MASQUERADE
COMMIT
"""
"#;

const LAN: u16 = 1;
const WAN: u16 = 0;

fn worker() -> MemoryWorker {
    memory_worker(&office_config(FIREWALL))
}

/// From inside host 192.168.1.10:`sport` to 198.51.100.7:`dport`.
fn out(sport: u16, dport: u16) -> Vec<u8> {
    udp4(
        mac("02:aa:00:00:00:10"),
        mac("02:00:00:00:00:02"),
        &[],
        "192.168.1.10",
        "198.51.100.7",
        64,
        sport,
        dport,
        b"q",
    )
}

/// Sends `frames` from the LAN as one burst; the flows that left on the
/// WAN, in order, each frame checked (checksums, lengths).
fn burst(w: &mut MemoryWorker, frames: &[Vec<u8>], now: u64) -> Vec<String> {
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    w.receive(LAN, &refs, now).unwrap();
    let mut sent = Vec::new();
    w.drain(|port, f| {
        assert_eq!(port, WAN);
        verify_frame(f, true).unwrap();
        sent.push(flow4(f));
    });
    sent
}

#[test]
fn a_burst_mixing_known_connections_and_a_first_packet_to_dnat() {
    let mut w = worker();
    // Two connections known before the burst (masqueraded, port kept).
    let known = burst(&mut w, &[out(4000, 53), out(4001, 53)], 1_000_000_000);
    assert_eq!(
        known,
        [
            "203.0.113.2:4000 > 198.51.100.7:53",
            "203.0.113.2:4001 > 198.51.100.7:53"
        ]
    );
    // Known packets first, the first packet to DNAT last, and the other
    // way round: each leaves as it would alone.
    let mixed = burst(
        &mut w,
        &[out(4000, 53), out(4001, 53), out(4002, 5353)],
        1_100_000_000,
    );
    assert_eq!(
        mixed,
        [
            "203.0.113.2:4000 > 198.51.100.7:53",
            "203.0.113.2:4001 > 198.51.100.7:53",
            "203.0.113.2:4002 > 198.51.100.99:53",
        ]
    );
    let mixed = burst(
        &mut w,
        &[out(4003, 5353), out(4002, 5353), out(4000, 53)],
        1_200_000_000,
    );
    assert_eq!(
        mixed,
        [
            "203.0.113.2:4003 > 198.51.100.99:53",
            "203.0.113.2:4002 > 198.51.100.99:53",
            "203.0.113.2:4000 > 198.51.100.7:53",
        ]
    );
    // A burst of known packets only, one of them DNAT'd: its destination
    // is still translated (the skip is only for untranslated ones).
    let known = burst(&mut w, &[out(4000, 53), out(4002, 5353)], 1_300_000_000);
    assert_eq!(
        known,
        [
            "203.0.113.2:4000 > 198.51.100.7:53",
            "203.0.113.2:4002 > 198.51.100.99:53",
        ]
    );
    assert_eq!(w.pipeline.stats.total_drops(), 0);
}
