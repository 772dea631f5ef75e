//! Reading a capture as `xgate replay` reads its inputs, over arbitrary
//! bytes. Invariants: no panic; a capture that reads has whole frames no
//! longer than the file, timestamps whose sub-second part is normalised,
//! a warning exactly when a record was normalised; normalising twice
//! changes nothing more.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_control::replay::{normalize_pcap_timestamps, read_pcap_bytes};

fuzz_target!(|data: &[u8]| {
    let mut once = data.to_vec();
    let fixed = normalize_pcap_timestamps(&mut once);
    let mut twice = once.clone();
    assert_eq!(normalize_pcap_timestamps(&mut twice), 0, "normalising is idempotent");
    assert_eq!(once, twice);
    let mut warnings = Vec::new();
    if let Ok(frames) = read_pcap_bytes(data.to_vec(), "fuzz.pcap", &mut warnings) {
        assert_eq!(warnings.len(), usize::from(fixed > 0));
        let bytes: usize = frames.iter().map(|(_, f)| f.len() + 16).sum();
        assert!(bytes + 24 <= data.len(), "frames fit in the file");
        assert!(frames.iter().all(|(ts, _)| ts.subsec_nanos() < 1_000_000_000));
    }
});
