//! The iptables-save / script parser and `import-iptables` over arbitrary
//! text. Invariants: no panic; an accepted ruleset prints as text that
//! parses back to the same ruleset (the canonical form round-trips); the
//! import never panics and what it converts also round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_control::{import, iptables};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = import::decode(data, "fuzz") else {
        return;
    };
    if let Ok(rs) = iptables::parse(&text, "fuzz", 1) {
        let printed = rs.to_string();
        let back = iptables::parse(&printed, "printed", 1)
            .unwrap_or_else(|e| panic!("canonical text refused: {e:?}\n{printed}"));
        assert_eq!(back.to_string(), printed, "round trip changed the ruleset");
    }
    let imp = import::import(&text, "fuzz");
    for rs in [&imp.v4, &imp.v6].into_iter().flatten() {
        let printed = rs.to_string();
        iptables::parse(&printed, "imported", 1)
            .unwrap_or_else(|e| panic!("imported text refused: {e:?}\n{printed}"));
    }
});
