//! The config parser and validation over arbitrary text, then the compile
//! of whatever validates. Invariants: no panic; a config that validates
//! compiles or is refused with an error (never a panic).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = xgate_control::parse(text, "fuzz.toml") {
        // Files a config names (rules_file, routes_file) are not read by
        // the parser; compile only what holds no file reference.
        let names_files = cfg.routes_file.is_some()
            || cfg.firewall.as_ref().is_some_and(|f| f.rules_file.is_some());
        if !names_files {
            let _ = xgate_control::replay::compile_for_replay(&cfg);
        }
    }
});
