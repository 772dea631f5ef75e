//! Issue 13, item 5: a capture whose record has a microsecond field of
//! 1,000,000 (scapy writes such records, tcpdump reads them) is replayed,
//! the timestamp carried into the seconds, with a warning.

mod common;

use common::*;
use xgate_control::replay::{self, Input};

/// A little-endian microsecond pcap, Ethernet, one record per
/// (seconds, microseconds, frame), written by hand.
fn pcap(records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (s, us, f) in records {
        for v in [*s, *us, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    b
}

#[test]
fn microseconds_of_a_whole_second_are_carried() {
    let d = std::env::temp_dir().join(format!("xgate-hard-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let cfg_path = d.join("gw.toml");
    std::fs::write(
        &cfg_path,
        Office::new()
            .neighbor("192.168.1.10", "02:cc:00:00:00:10", "lan")
            .config(""),
    )
    .unwrap();
    let cfg = xgate_control::load(&cfg_path).unwrap();
    let f = |sport| {
        udp4(
            mac("02:cc:00:00:00:10"),
            mac("02:00:00:00:00:02"),
            &[],
            "192.168.1.10",
            "198.51.100.7",
            64,
            sport,
            53,
            b"q",
        )
    };
    let (a, b) = (f(1000), f(1001));
    let input = d.join("in.pcap");
    std::fs::write(&input, pcap(&[(10, 1_000_000, &a), (11, 500_000, &b)])).unwrap();
    let ins = [Input {
        iface: "lan".into(),
        path: input,
    }];
    let mut trace = Vec::new();
    let report = replay::replay(&cfg, &ins, &d.join("out"), false, &mut trace).unwrap();
    assert_eq!(report.frames_in, 2);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("1 record"),
        "{:?}",
        report.warnings
    );
    assert!(report.summary().starts_with("warning: "));
    // 10 s + 1,000,000 us = 11 s, before the second record (11.5 s).
    let out = read_pcap(&d.join("out/wan.pcap"));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0, std::time::Duration::from_secs(11));
    assert_eq!(out[1].0, std::time::Duration::from_millis(11_500));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn normalisation_handles_both_byte_orders_and_nanoseconds() {
    let mut le = pcap(&[(1, 2_500_000, b"x")]);
    assert_eq!(replay::normalize_pcap_timestamps(&mut le), 1);
    assert_eq!(&le[24..32], &[3, 0, 0, 0, 0x20, 0xa1, 0x07, 0][..]);
    // Big-endian nanoseconds: 1e9 is a whole second.
    let mut be = vec![0xa1, 0xb2, 0x3c, 0x4d];
    be.resize(24, 0);
    for v in [7u32, 1_000_000_001, 1, 1] {
        be.extend_from_slice(&v.to_be_bytes());
    }
    be.push(0);
    assert_eq!(replay::normalize_pcap_timestamps(&mut be), 1);
    assert_eq!(&be[24..32], &[0, 0, 0, 8, 0, 0, 0, 1][..]);
    // Not pcap: untouched.
    let mut junk = vec![1u8; 40];
    assert_eq!(replay::normalize_pcap_timestamps(&mut junk), 0);
}
