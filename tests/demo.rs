//! `xgate demo --duration 3` end to end: the real binary builds its
//! namespaces, forwards the demo's traffic, and removes every namespace.

use std::process::Command;
use xgate_testbed::skip_reason;

const XGATE: &str = env!("CARGO_BIN_EXE_xgate");

#[test]
fn demo_forwards_traffic_and_leaves_no_namespace() {
    if let Some(r) = skip_reason() {
        eprintln!("skipped: {r}");
        return;
    }
    let out = Command::new(XGATE)
        .args(["demo", "--duration", "3"])
        .output()
        .expect("running xgate demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "demo failed:\n{all}");

    let namespaces: Vec<String> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: namespaces "))
        .unwrap_or_else(|| panic!("no namespace line:\n{all}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(namespaces.len(), 5, "{all}");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for ns in &namespaces {
        assert!(
            !list.split_whitespace().any(|n| n == ns),
            "{ns} left behind:\n{list}"
        );
    }
    assert!(stdout.contains("demo: namespaces removed"), "{all}");

    // One stats line per second, and traffic through every path.
    assert!(stdout.contains("[  1s] ping"), "{all}");
    let fwd: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: xgate forwarded "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no forwarded count:\n{all}"));
    assert!(fwd > 100, "forwarded {fwd}:\n{all}");
    let summary = stdout
        .lines()
        .find(|l| l.contains("pings answered"))
        .unwrap_or_else(|| panic!("no summary:\n{all}"));
    // "pings answered A/S, uploads U (..), port-forward fetches F/T, udp echoes E/T"
    let first = |key: &str| -> u64 {
        summary
            .split(key)
            .nth(1)
            .and_then(|r| r.trim_start().split(['/', ' ']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {summary}"))
    };
    assert!(first("pings answered") > 0, "{all}");
    assert!(first("uploads") > 0, "{all}");
    assert!(first("port-forward fetches") > 0, "{all}");
    assert!(first("udp echoes") > 0, "{all}");
    assert!(
        stdout.contains("server sees 203.0.113.1)"),
        "masquerade:\n{all}"
    );
    assert!(stdout.contains("0 frames leaked, exit clean"), "{all}");
}
