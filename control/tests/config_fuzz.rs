//! Fuzz-ish property tests: `parse` never panics, whatever the input (random
//! text, TOML-shaped random lines, mutations of a valid config), and every
//! error it returns has a 1-based line within the text.

use proptest::prelude::*;
use xgate_control::config;

const VALID: &str = r#"[dataplane]
workers = 2
flows = 65536

[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24", "2001:db8:1::2/64"]

[[interface]]
name = "lan10"
device = "eth1"
vlan = [100, 10]
address = ["192.168.10.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"
dev = "wan"
metric = 100

[[route]]
to = "10.0.0.0/8"
nexthops = [{ via = "192.168.10.2", weight = 2 }, { via = "192.168.10.3", dev = "lan10" }]

[[rule]]
priority = 100
from = "10.0.1.0/24"
iif = "lan10"
fwmark = "0x1/0xff"
table = 100

[[neighbor]]
ip = "192.168.10.20"
mac = "02:00:00:00:10:20"
dev = "lan10"

[firewall]
rules = """
*filter
COMMIT
"""

[timeouts]
udp = 30

[control]
metrics = ""
"#;

/// Checks the invariants of any result of `parse`.
fn check(text: &str) {
    let lines = text.matches('\n').count() + 1;
    match config::parse(text, "fuzz.toml") {
        Ok(cfg) => {
            let _ = config::check_summary(&cfg);
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "{e} (text has {lines} lines)"
                );
                assert_eq!(e.file, "fuzz.toml");
                assert!(!e.field.is_empty(), "{e}");
                assert!(!e.to_string().contains('\n'), "{e:?}");
            }
            assert!(errors.windows(2).all(|w| w[0].line <= w[1].line));
        }
    }
}

fn toml_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "device",
        "mac",
        "vlan",
        "address",
        "mtu",
        "to",
        "via",
        "dev",
        "metric",
        "table",
        "type",
        "nexthops",
        "priority",
        "from",
        "iif",
        "fwmark",
        "ip",
        "rules",
        "rules_file",
        "udp",
        "tcp_close",
        "socket",
        "metrics",
        "workers",
        "flows",
        "xdp_mode",
        "bind",
        "queues",
        "weight",
        "bogus",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..70000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "\"wan\"",
            "\"lan10\"",
            "\"eth0\"",
            "\"10.0.0.1/24\"",
            "\"10.0.0.0/8\"",
            "\"203.0.113.1\"",
            "\"fe80::1\"",
            "\"2001:db8::/32\"",
            "\"02:00:00:00:00:01\"",
            "\"ff:ff:ff:ff:ff:ff\"",
            "[10, 20]",
            "[1, 2, 3]",
            "[\"10.0.0.1/33\"]",
            "\"main\"",
            "\"blackhole\"",
            "\"0x10/0xff\"",
            "[{ via = \"10.0.0.2\" }]",
            "[]",
            "true",
            "1.5",
            "\"\"",
            "\"\"\"\n*filter\n\"\"\"",
            "{ a = 1 }",
            "1979-05-27",
        ])
        .prop_map(str::to_owned),
        "\"[ -~]{0,20}\"",
    ];
    prop_oneof![
        prop::sample::select(vec![
            "[dataplane]",
            "[[interface]]",
            "[[route]]",
            "[[rule]]",
            "[[neighbor]]",
            "[firewall]",
            "[timeouts]",
            "[control]",
            "[[route.nexthops]]",
            "[interface]",
            "[[dataplane]]",
            "",
        ])
        .prop_map(str::to_owned),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn random_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn toml_shaped_lines_never_panic(lines in prop::collection::vec(toml_line(), 0..40)) {
        check(&lines.join("\n"));
    }

    #[test]
    fn mutated_valid_config_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..8, "\\PC{0,6}"), 1..4)
    ) {
        let mut text = VALID.to_owned();
        for (at, del, insert) in edits {
            let mut start = at.index(text.len() + 1);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + del).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.replace_range(start..end, &insert);
        }
        check(&text);
    }
}

#[test]
fn the_unmutated_config_is_valid() {
    if let Err(e) = config::parse(VALID, "fuzz.toml") {
        panic!("{}", config::render_errors(&e));
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let deep = format!("x = {}1{}", "[".repeat(10_000), "]".repeat(10_000));
    check(&deep);
    let deep = format!("x = {}", "{ a = ".repeat(10_000));
    check(&deep);
}
