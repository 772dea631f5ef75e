//! The `xgate` binary end to end: `check` and `replay` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

const CFG: &str = r#"
[[interface]]
name = "wan"
device = "eth0"
mac = "02:00:00:00:00:01"
address = ["203.0.113.2/24"]

[[interface]]
name = "lan"
device = "eth1"
mac = "02:00:00:00:00:02"
address = ["192.168.1.1/24"]

[[route]]
to = "0.0.0.0/0"
via = "203.0.113.1"

[[neighbor]]
ip = "203.0.113.1"
mac = "02:bb:00:00:00:01"
dev = "wan"
"#;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xgate-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn xgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xgate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_accepts_a_good_config_and_names_file_line_field_of_a_bad_one() {
    let d = scratch("check");
    let good = d.join("good.toml");
    std::fs::write(&good, CFG).unwrap();
    let out = xgate(&["check", "--config", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 interfaces"));

    let bad = d.join("bad.toml");
    std::fs::write(
        &bad,
        CFG.replace("203.0.113.2/24", "203.0.113.2/33")
            .replace("via = \"203.0.113.1\"", "via = \"nope\""),
    )
    .unwrap();
    let out = xgate(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    assert!(
        err.contains(&format!("{file}:6: interface[0].address[0]")),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:16: route[0].via")), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn replay_writes_one_pcap_per_interface_and_traces() {
    let d = scratch("replay");
    let cfg = d.join("x.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/pcaps/tcpreplay-mixed.pcap");
    let input = format!("lan={}", capture.display());
    let out_dir = d.join("out");
    let out = xgate(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        &input,
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--trace",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_dir.join("wan.pcap").exists() && out_dir.join("lan.pcap").exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("replayed 179 frames"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("#1 rx")),
        "trace lines on stdout"
    );
    assert!(
        stdout.contains("drop not_for_us"),
        "the capture's frames are not addressed to us"
    );

    let out = xgate(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        "nosuch=x.pcap",
        "--output-dir",
        "/tmp",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input nosuch"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn check_validates_firewall_rules_with_line_numbers() {
    let d = scratch("firewall");
    let good = d.join("fw.toml");
    let fw = "\n[firewall]\nrules = \"\"\"\n*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o wan -s 192.168.1.0/24 -j MASQUERADE\nCOMMIT\n\"\"\"\n";
    std::fs::write(&good, format!("{CFG}{fw}")).unwrap();
    let out = xgate(&["check", "--config", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));

    let bad = d.join("bad-fw.toml");
    std::fs::write(
        &bad,
        format!(
            "{CFG}{}",
            fw.replace("-j MASQUERADE", "-j MASQUERADE --bogus")
        ),
    )
    .unwrap();
    let out = xgate(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    // The rule is the 6th line of the text appended to CFG.
    let line = CFG.lines().count() + 6;
    assert!(
        err.contains(&format!("{}:{line}: firewall.rules", bad.display())),
        "{err}"
    );
    assert!(err.contains("--bogus"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
