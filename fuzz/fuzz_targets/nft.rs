//! The nft front-end (lexer and parser) over arbitrary text, with includes
//! turned off (no file is read), then, for text that parses, the whole
//! config path (`[firewall] nft` applied and compiled for two
//! interfaces). Invariants: no panic; parsing is deterministic; an error
//! names the input and a line and column inside it (or just past its
//! end); every node's location is inside the input; compile errors name
//! the config file.

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
            if text.contains("include") {
                return;
            }
            let cfg = format!("{NET}\n[firewall]\nnft = \"{}\"\n", escape(text));
            let Ok(cfg) = xgate_control::parse(&cfg, "fuzz.toml") else {
                return;
            };
            if let Err(errs) = xgate_control::compile::compile(&cfg, &|_, _| None) {
                for e in errs {
                    assert_eq!(e.file, "fuzz.toml", "{e}");
                }
            }
        }
    }
});

const NET: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
address = ["203.0.113.2/24", "2001:db8::2/64"]

[[interface]]
name = "lan"
device = "eth1"
address = ["192.168.1.1/24", "fd00::1/64"]
"#;

/// `s` as the inside of a TOML basic string.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
