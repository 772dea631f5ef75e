//! Issue 13, item 4: `xgate run` on a config without interfaces (which
//! `xgate check` accepts) is refused at start with a clear message, not a
//! panic in the AF_XDP setup. Needs no privileges: it stops before any
//! device is touched.

use std::sync::atomic::AtomicBool;
use xgate_control::run::{RunError, RunOptions, run};

#[test]
fn run_refuses_a_config_without_interfaces() {
    let d = std::env::temp_dir().join(format!("xgate-hard-run-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("empty.toml");
    // Its own socket and no metrics: even if it started, it would touch
    // nothing outside the scratch directory.
    let text = format!(
        "[dataplane]\nflows = 4096\n[control]\nsocket = {:?}\nmetrics = \"\"\n",
        d.join("ctl.sock").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    assert!(xgate_control::load(&path).is_ok(), "check accepts it");
    let (stop, reload) = (AtomicBool::new(true), AtomicBool::new(false));
    let mut log = Vec::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&path, &RunOptions::default(), &stop, &reload, &mut log)
    }));
    let err = r.expect("no panic").expect_err("refused");
    assert!(matches!(err, RunError::NoInterfaces(_)), "{err}");
    assert!(err.to_string().contains("no [[interface]]"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A routes or rules file that is a device is named as such, not "file
/// not found"; a huge value is not echoed whole in its error.
#[test]
fn odd_files_and_huge_values_get_short_true_errors() {
    let errs = xgate_control::parse("routes_file = \"/dev/urandom\"\n", "gw.toml").unwrap_err();
    let msg = errs[0].to_string();
    assert!(msg.contains("/dev/urandom is not a regular file"), "{msg}");
    let errs =
        xgate_control::parse("[firewall]\nrules_file = \"/dev/null\"\n", "gw.toml").unwrap_err();
    assert!(
        errs[0].to_string().contains("not a regular file"),
        "{errs:?}"
    );

    let huge = "x".repeat(20 << 20);
    let text =
        format!("[[interface]]\nname = \"wan\"\ndevice = \"eth0\"\naddress = [\"{huge}\"]\n");
    let errs = xgate_control::parse(&text, "gw.toml").unwrap_err();
    let msg = errs[0].to_string();
    assert!(msg.len() < 1024, "{} bytes", msg.len());
    assert!(
        msg.contains("more bytes)"),
        "{}",
        &msg[..200.min(msg.len())]
    );
}
