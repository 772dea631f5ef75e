//! The `xgate` binary end to end: `check` and `replay` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

// The office gateway of control's tests; the rest of control/tests/common
// (frame builders, replay runs) is not needed here.
#[path = "../control/tests/common/office.rs"]
mod office;
use office::OFFICE_NET as CFG;

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

/// Every example config passes `xgate check` (examples/*.toml).
#[test]
fn every_example_config_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let out = xgate(&["check", "--config", p.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 5, "examples found: {n}");
}

#[test]
fn import_iptables_prints_the_block_and_names_what_it_cannot_convert() {
    let d = scratch("import");
    let good = d.join("rules.v4");
    std::fs::write(
        &good,
        "*nat\n:POSTROUTING ACCEPT [5:300]\n[5:300] -A POSTROUTING -o wan -j MASQUERADE\nCOMMIT\n",
    )
    .unwrap();
    let out = xgate(&["import-iptables", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("[firewall]\nrules_v4 = \"\"\"\n*nat\n"),
        "{toml}"
    );
    assert!(
        toml.contains("-A POSTROUTING -o wan -j MASQUERADE\n"),
        "{toml}"
    );
    assert!(!toml.contains("[5:300]"), "counters dropped: {toml}");
    // The block is a config: append interfaces and check it.
    let cfg = d.join("gw.toml");
    std::fs::write(&cfg, format!("{CFG}\n{toml}")).unwrap();
    let out = xgate(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let script = d.join("fw.sh");
    std::fs::write(
        &script,
        "iptables -P FORWARD DROP\niptables -A FORWARD -m frob -j ACCEPT\nsysctl -w net.ipv4.ip_forward=1\n",
    )
    .unwrap();
    let out = xgate(&["import-iptables", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fw.sh:2: not converted: iptables -A FORWARD -m frob"),
        "{err}"
    );
    assert!(err.contains("fw.sh:3: ignored: sysctl"), "{err}");
    // Not shell logic: no advice to run it.
    assert!(!err.contains("--run runs it"), "{err}");
    // A refused line fails the import whole: `>> gw.toml` appends nothing.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // --partial prints the block with the refused line as a comment, and
    // check accepts it with a warning naming that line.
    let out = xgate(&["import-iptables", "--partial", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains(":FORWARD DROP"), "{toml}");
    assert!(toml.contains("not converted: line 2"), "{toml}");
    std::fs::write(&cfg, format!("{CFG}\n{toml}")).unwrap();
    let out = xgate(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PARTIAL import: 1 line(s)"), "{err}");
    assert!(
        err.contains("iptables -A FORWARD -m frob -j ACCEPT"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A script with iptables and ip6tables commands keeps each in its own
/// family: v4 INPUT DROP and v6 INPUT ACCEPT (not ACCEPT for both: that
/// would fail open), and `check` then runs both.
#[test]
fn import_keeps_iptables_and_ip6tables_apart() {
    let d = scratch("import-families");
    let script = d.join("fw.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         iptables -P INPUT DROP\n\
         ip6tables -P INPUT ACCEPT\n\
         iptables -N NAVY\n\
         ip6tables -N NAVY\n\
         iptables -A INPUT -i lan -j NAVY\n\
         ip6tables -A INPUT -s 2001:db8::/32 -j NAVY\n\
         iptables -A NAVY -p tcp --dport 22 -j ACCEPT\n\
         ip6tables -A NAVY -p ipv6-icmp -j ACCEPT\n\
         iptables -t nat -A POSTROUTING -o wan -j MASQUERADE\n",
    )
    .unwrap();
    let out = xgate(&["import-iptables", script.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    let parsed = xgate_control::parse(&format!("{CFG}\n{toml}"), "gw.toml").unwrap();
    let fw = parsed.firewall.unwrap();
    let v4 = fw.v4.rules.as_deref().unwrap();
    let v6 = fw.v6.rules.as_deref().unwrap();
    assert!(v4.contains(":INPUT DROP"), "{toml}");
    assert!(v6.contains(":INPUT ACCEPT"), "{toml}");
    assert!(
        v4.contains("-A NAVY -p tcp -m tcp --dport 22 -j ACCEPT"),
        "{toml}"
    );
    assert!(
        !v4.contains("ipv6-icmp") && !v6.contains("--dport 22"),
        "{toml}"
    );
    assert!(
        v4.contains("MASQUERADE") && !v6.contains("MASQUERADE"),
        "{toml}"
    );
    let cfg = d.join("gw.toml");
    std::fs::write(&cfg, format!("{CFG}\n{toml}")).unwrap();
    let out = xgate(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("IPv4 firewall rules (rules_v4"), "{stdout}");
    assert!(stdout.contains("IPv6 firewall rules (rules_v6"), "{stdout}");

    // An iptables-save file alone is IPv4: check says IPv6 is dropped.
    let save = d.join("rules.v4");
    std::fs::write(&save, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n").unwrap();
    let out = xgate(&["import-iptables", save.to_str().unwrap()]);
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("rules_v4 = ") && !toml.contains("rules_v6 = "),
        "{toml}"
    );
    std::fs::write(&cfg, format!("{CFG}\n{toml}")).unwrap();
    let out = xgate(&["check", "--config", cfg.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("IPv6: no rules_v6: forwarded and local IPv6 traffic is dropped"),
        "{stdout}"
    );
    // The same file named an ip6tables-save file by --family 6 / -6.
    for flag in [&["--family", "6"][..], &["-6"][..]] {
        let mut args = vec!["import-iptables"];
        args.extend_from_slice(flag);
        args.push(save.to_str().unwrap());
        let toml = String::from_utf8(xgate(&args).stdout).unwrap();
        assert!(
            toml.contains("rules_v6 = ") && !toml.contains("rules_v4 = "),
            "{toml}"
        );
    }

    // What check refuses, import refuses: a nat OUTPUT rule.
    std::fs::write(
        &script,
        "iptables -t nat -A OUTPUT -p tcp --dport 80 -j DNAT --to-destination 10.0.0.1\n",
    )
    .unwrap();
    let out = xgate(&["import-iptables", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fw.sh:1: not converted:") && err.contains("nat OUTPUT never sees a packet"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// Whether namespaces can be made here (root) and iptables-nft exists.
fn sandbox_available() -> Option<&'static str> {
    let ok = Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Some("no network and mount namespaces (not root?)");
    }
    if !Path::new("/usr/sbin/xtables-nft-multi").exists() {
        return Some("no iptables-nft (scripts/setup-debian.sh installs it)");
    }
    None
}

/// `import-iptables --run`: a script built from a function, a loop and a
/// start/stop case imports as it ran, and the run leaves the machine as
/// it was: the host's iptables untouched, its files unwritten, nothing it
/// started still running.
#[test]
fn import_run_imports_what_a_script_leaves_and_leaves_nothing_behind() {
    if let Some(why) = sandbox_available() {
        println!("skipped: {why}");
        return;
    }
    let d = scratch("import-run");
    let tag = format!("xgate-sandbox-{}", std::process::id());
    // Written to /tmp (a layer that goes with the run) and elsewhere
    // (read-only).
    let leak = d.join("written-by-the-script");
    let leak2 = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-written"));
    let script = d.join("fw.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             LAN=lan\nWAN=wan\n\
             allow() {{ iptables -A FORWARD -i $WAN -o $LAN -p tcp --dport $1 -j ACCEPT; }}\n\
             case \"$1\" in\n\
             start)\n\
               modprobe nf_conntrack_ftp\n\
               iptables -P FORWARD DROP\n\
               iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
               for p in 22 80 443; do allow $p; done\n\
               /usr/sbin/iptables -t nat -A POSTROUTING -o $WAN -j MASQUERADE\n\
               ip6tables -P FORWARD DROP\n\
               iptables -P INPUT DROP -w\n\
               echo written > {leak}\n\
               echo written > {leak2}\n\
               bash -c 'sleep 300; : {tag}' &\n\
               ;;\n\
             stop) iptables -P FORWARD ACCEPT ;;\n\
             esac\n",
            leak = leak.display(),
            leak2 = leak2.display(),
        ),
    )
    .unwrap();
    let host_before = Command::new("iptables-save").output().unwrap().stdout;
    let out = xgate(&[
        "import-iptables",
        "--run",
        script.to_str().unwrap(),
        "start",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("(run with: start)"), "{toml}");
    let fw = xgate_control::parse(&format!("{CFG}\n{toml}"), "gw.toml")
        .unwrap()
        .firewall
        .unwrap();
    let v4 = fw.v4.rules.as_deref().unwrap();
    for line in [
        ":FORWARD DROP",
        ":INPUT DROP",
        "-A FORWARD -i wan -o lan -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A FORWARD -i wan -o lan -p tcp -m tcp --dport 443 -j ACCEPT",
        "-A POSTROUTING -o wan -j MASQUERADE",
    ] {
        assert!(v4.contains(line), "{line} missing:\n{toml}");
    }
    assert!(
        fw.v6.rules.as_deref().unwrap().contains(":FORWARD DROP"),
        "{toml}"
    );
    assert!(err.contains("ignored: modprobe nf_conntrack_ftp"), "{err}");
    assert!(
        err.contains("Read-only file system"),
        "the write was not refused:\n{err}"
    );
    assert!(
        !leak.exists() && !leak2.exists(),
        "the script wrote to the host's files"
    );
    let host_after = Command::new("iptables-save").output().unwrap().stdout;
    assert_eq!(host_before, host_after, "the host's ruleset changed");
    let survivor = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&tag))
    });
    assert!(!survivor, "a process the script started outlived the run");

    // Read rather than run, the same script is refused for its shell
    // logic, with the advice to run it.
    let out = xgate(&["import-iptables", script.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is a shell script: --run runs it in a sandbox"),
        "{err}"
    );

    // Never weaker: a failed command and a variable nothing set are
    // refused, with the script line, and nothing is printed.
    std::fs::write(
        &script,
        "iptables -P FORWARD DROP\n\
         iptables -A FORWARD -s no-such-host.invalid -j DROP\n\
         env -i /usr/sbin/iptables -A FORWARD -s no-such-host2.invalid -j DROP\n\
         iptables -D FORWARD -j NOT-THERE 2>/dev/null\n\
         nft add table inet guard\n\
         echo x > /dev/shm/xgate-cli-canary\n\
         iptables -A FORWARD -i \"$LAN_IF\" -j ACCEPT\n",
    )
    .unwrap();
    let out = xgate(&["import-iptables", "--run", script.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("fw.sh:2: not converted: iptables -A FORWARD -s no-such-host.invalid -j DROP")
            && err.contains("failed when the script ran"),
        "{err}"
    );
    assert!(
        err.contains("LAN_IF: unbound variable") && err.contains("exit status 1"),
        "{err}"
    );
    // A command run with its environment cleared is still logged; a
    // failed delete adds nothing; nft's own rules are not iptables-save's.
    assert!(
        err.contains("no-such-host2.invalid -j DROP (failed"),
        "{err}"
    );
    assert!(
        err.contains("fw.sh:4: ignored: iptables -D FORWARD"),
        "{err}"
    );
    assert!(
        err.contains("fw.sh:5: not converted: nft add table inet guard"),
        "{err}"
    );
    assert!(err.contains("not converted: nft table inet guard"), "{err}");
    assert!(
        !Path::new("/dev/shm/xgate-cli-canary").exists(),
        "wrote the host's /dev/shm"
    );
    // --partial keeps them as comments that check warns about.
    let out = xgate(&[
        "import-iptables",
        "--partial",
        "--run",
        script.to_str().unwrap(),
    ]);
    let toml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        toml.matches(xgate_control::import::NOT_CONVERTED).count(),
        5,
        "{toml}"
    );

    // The machine's interfaces have stand-ins: a script that reads an
    // address off one gets the machine's.
    let host = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    let first = host
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() > 3 && w[1] != "lo");
    if let Some(w) = first {
        let (dev, cidr) = (w[1], w[3]);
        std::fs::write(
            &script,
            format!(
                "read -r _ _ _ cidr _ < <(ip -4 -o addr show dev {dev})\n\
                 iptables -A INPUT -d \"${{cidr%/*}}\" -j ACCEPT\n"
            ),
        )
        .unwrap();
        let out = xgate(&["import-iptables", "--run", script.to_str().unwrap()]);
        let toml = String::from_utf8_lossy(&out.stdout);
        let addr = cidr.split('/').next().unwrap();
        assert!(
            toml.contains(&format!("-A INPUT -d {addr}/32 -j ACCEPT")),
            "{toml}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A script that does not end is stopped.
    std::fs::write(&script, "iptables -P FORWARD DROP\nsleep 60\n").unwrap();
    let t = std::time::Instant::now();
    let out = xgate(&[
        "import-iptables",
        "--run",
        "--timeout",
        "1",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still running after 1 s"));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&d);
}

/// `xgate ctl` against a control server running in this process.
#[test]
fn ctl_talks_to_the_control_socket_in_text_and_json() {
    use std::sync::Arc;
    use xgate_control::api::Runtime;
    use xgate_control::api::server::CtlServer;
    use xgate_control::publish::Publisher;
    let d = scratch("ctl");
    let cfg = d.join("gw.toml");
    std::fs::write(&cfg, CFG).unwrap();
    let p = Publisher::load(
        &cfg,
        Box::new(|_, p| Some(xgate_control::compile::synthetic_mac(p))),
    )
    .unwrap();
    let rt = Arc::new(Runtime::new(Arc::new(p), Box::new(|| 0)));
    let sock = d.join("xgate.sock");
    let server = CtlServer::bind(&sock).unwrap().spawn(rt).unwrap();
    let s = sock.to_str().unwrap();

    let out = xgate(&["ctl", "--socket", s, "route", "get", "8.8.8.8"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("8.8.8.8 via 203.0.113.1 dev wan table main"),
        "{text}"
    );

    for args in [
        &["stats"][..],
        &["conntrack"],
        &["conntrack", "-p", "tcp", "-s", "192.168.1.10"],
        &["routes"],
        &["routes", "table", "local"],
        &["route", "get", "192.168.1.7", "from", "192.168.1.1"],
        &[
            "route",
            "add",
            "10.9.0.0/16",
            "via",
            "192.168.1.2",
            "metric",
            "3",
        ],
        &[
            "route",
            "del",
            "10.9.0.0/16",
            "via",
            "192.168.1.2",
            "metric",
            "3",
        ],
        &["rules"],
        &["neigh"],
        &["reload"],
        &["trace", "add", "5", "-p", "udp"],
        &["trace", "show"],
        &["trace", "clear"],
        &["conntrack", "-F"],
    ] {
        let mut a = vec!["ctl", "--socket", s];
        a.extend_from_slice(args);
        a.push("--json");
        let out = xgate(&a);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: --json output does not parse: {e}"));
        assert!(v.is_object(), "{args:?}: {v}");
    }
    // A refused reload: exit 1, the errors on stderr.
    std::fs::write(&cfg, CFG.replace("via = ", "vai = ")).unwrap();
    let out = xgate(&["ctl", "--socket", s, "reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gw.toml:16: route[0].vai"), "{err}");
    // No server: a clear error.
    let out = xgate(&["ctl", "--socket", "/nonexistent/x.sock", "stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is xgate running?"));
    server.shutdown();
    assert!(!sock.exists());
    let _ = std::fs::remove_dir_all(&d);
}
