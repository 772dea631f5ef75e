//! The nft front-end (lexer and parser) over arbitrary text, with includes
//! turned off (no file is read). Invariants: no panic; parsing is
//! deterministic; an error names the input and a line and column inside it
//! (or just past its end); every node's location is inside the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_control::nft;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = nft::Options {
        includes: false,
        ..nft::Options::default()
    };
    let first = nft::parse_with(text, "fuzz", &opts);
    let again = nft::parse_with(text, "fuzz", &opts);
    assert_eq!(first, again, "parsing is not deterministic");
    let lines = text.split('\n').count() as u32;
    match first {
        Err(e) => {
            assert_eq!(e.file, "fuzz");
            assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}: {e}", e.line);
            assert!(e.col >= 1, "{e}");
            let _ = e.to_string();
        }
        Ok(rs) => {
            assert_eq!(rs.files, vec!["fuzz".to_string()]);
            for c in &rs.commands {
                assert!(c.loc.line >= 1 && c.loc.line <= lines);
            }
        }
    }
});
