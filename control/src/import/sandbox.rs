//! `xgate import-iptables --run SCRIPT [ARG...]`: a firewall script whose
//! rules come from shell logic (functions, loops, `case "$1"`, variables
//! from a sourced file) cannot be read line by line; it is run instead, as
//! its user runs it, and what it leaves in iptables is imported.
//!
//! The script runs under `unshare --net --mount --pid` (sandbox.sh): its
//! iptables calls change a network namespace of its own, never the
//! host's; the file system is read-only, with what it writes to `/tmp`,
//! `/run`, `/var/tmp` or `/dev/shm` kept in layers that go with the run;
//! `/proc/sys` is read-only but for `net`, `/sys` is the namespace's own;
//! the machine's interfaces have stand-ins there (veth pairs with their
//! names, addresses and up/down state), for scripts that read them;
//! it runs without CAP_SYS_ADMIN (it cannot undo the mounts or enter
//! another namespace); what it starts is killed when it ends or times
//! out. This keeps a firewall script's effects off the machine; it is
//! not a jail for a hostile script, which runs as root as it would on
//! the gateway. Every
//! iptables-family call goes through a shim (shim.sh) that logs its exit
//! status and script line, so nothing the script asked for can silently
//! go missing. Then `iptables-save` and `ip6tables-save` in that namespace
//! give the rulesets, imported as saved rulesets are (each in its own
//! family).
//!
//! Never weaker than the script: these are refused like unconvertible
//! lines (the import fails, or with `--partial` they are kept as
//! comments): a command that failed (a host name that does not resolve,
//! a module the kernel lacks, a typo) unless it only deletes, flushes,
//! checks or lists; an `ebtables`/`arptables` call (not converted); an
//! `nft` call that changes rules, an nftables table iptables-nft did not
//! make, an iptables table nft made incompatible (iptables-save does not
//! show their rules); a script that did not finish with status 0 (it
//! stopped before the end, e.g. on a variable nothing set: it runs with
//! `bash -u`); and every line of the saved rulesets the importer refuses.
//! The shim has the log's path written in (a script that clears its
//! environment is still logged) and stops the script if it cannot log.

use super::{Import, Skipped, import_family};
use crate::iptables::Family;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SANDBOX: &str = include_str!("sandbox.sh");
const SHIM: &str = include_str!("shim.sh");
const ENV: &str = include_str!("env.sh");

/// What a run did, beside the import it produced.
#[derive(Debug)]
pub struct ScriptRun {
    /// The import of what the script left, with every failed command (and
    /// a bad exit status) among its refused lines.
    pub import: Import,
    /// iptables-family commands the script ran (module loads not counted).
    pub commands: usize,
    /// The saved rulesets, as `iptables-save` / `ip6tables-save` printed
    /// them in the sandbox.
    pub saved_v4: String,
    pub saved_v6: String,
    /// What the script printed (stdout and stderr, interleaved).
    pub output: String,
}

/// The work directory on /dev/shm, removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn work_dir() -> Result<WorkDir, String> {
    let base = Path::new("/dev/shm");
    // What an interrupted run (Ctrl-C) left: its process is gone.
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("xgate-import.")
                .and_then(|r| r.split('.').next())
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    for n in 0..100u32 {
        let p = base.join(format!("xgate-import.{}.{n}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(WorkDir(p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    Err("no free work directory on /dev/shm".into())
}

fn write_exec(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One logged command: (exit status, script line, command name, its
/// error, its arguments).
fn parse_log(log: &str) -> Vec<(i32, usize, String, String, String)> {
    log.lines()
        .filter_map(|l| {
            let mut f = l.splitn(5, '\t');
            let rc = f.next()?.parse().ok()?;
            let line = f.next()?.parse().unwrap_or(0);
            let name = f.next()?.to_owned();
            let err = f.next()?.trim().to_owned();
            let args = f.next().unwrap_or("").to_owned();
            Some((rc, line, name, err, args))
        })
        .collect()
}

/// Runs `script` with `args` in the sandbox (root needed) and imports what
/// it leaves. `Err` when the sandbox itself cannot run (not root, no
/// iptables-nft, the script not found or over `timeout`).
pub fn run_script(script: &Path, args: &[String], timeout: Duration) -> Result<ScriptRun, String> {
    let name = script.display().to_string();
    let script = std::fs::canonicalize(script).map_err(|e| format!("{name}: {e}"))?;
    if !Path::new("/usr/sbin/xtables-nft-multi").exists() {
        return Err(
            "--run needs iptables (nf_tables) installed: /usr/sbin/xtables-nft-multi is missing"
                .into(),
        );
    }
    let dir = work_dir()?;
    write_exec(&dir.0.join("sandbox.sh"), SANDBOX)?;
    write_exec(&dir.0.join("shim"), SHIM)?;
    write_exec(&dir.0.join("env.sh"), ENV)?;
    // The machine's interfaces and addresses, for the stand-ins.
    for (file, what) in [("host-links", "link"), ("host-addrs", "addr")] {
        if let Ok(out) = Command::new("ip").args(["-o", what, "show"]).output() {
            let _ = std::fs::write(dir.0.join(file), out.stdout);
        }
    }
    let mut child = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
        ])
        .arg("bash")
        .arg(dir.0.join("sandbox.sh"))
        .arg(&dir.0)
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("unshare: {e} (--run needs util-linux's unshare)"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                // --kill-child: the namespace's processes go with unshare.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name}: still running after {} s; stopped (a script that waits for input or runs forever cannot be imported this way)",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("unshare: {e}")),
        }
    };
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f));
    let rc = read("rc").ok().and_then(|s| s.trim().parse::<i32>().ok());
    let (Some(rc), Ok(saved_v4), Ok(saved_v6)) = (rc, read("v4"), read("v6")) else {
        return Err(if status.success() {
            "the sandbox left no result".to_string()
        } else {
            format!(
                "the sandbox did not start ({status}): --run needs root (it makes network and mount namespaces)"
            )
        });
    };
    // Bytes, decoded lossily: one odd byte must not lose the log.
    let log = match std::fs::read(dir.0.join("log")) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("the sandbox's command log: {e}")),
    };
    let tables = read("tables").unwrap_or_default();
    let mut run = import_run(&name, rc, &log, saved_v4, saved_v6);
    refuse_foreign_tables(&tables, &mut run.import.skipped);
    run.output = output_tail(&dir.0.join("output"));
    Ok(run)
}

/// At most the last 64 KiB of what the script printed.
fn output_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const MAX: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut out = Vec::new();
    if len > MAX {
        let _ = f.seek(SeekFrom::Start(len - MAX));
        out.extend_from_slice(
            format!("[{} bytes of output before this left out]\n", len - MAX).as_bytes(),
        );
    }
    let _ = f.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The nftables tables iptables-nft makes; any other (made by `nft`,
/// `ebtables` or `arptables`, or by a program the shim does not see)
/// holds rules iptables-save does not show.
fn refuse_foreign_tables(tables: &str, skipped: &mut Vec<Skipped>) {
    for l in tables.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let [_, family, name] = w[..] else {
            continue;
        };
        let iptables = matches!(family, "ip" | "ip6")
            && matches!(name, "filter" | "nat" | "mangle" | "raw" | "security");
        if !iptables {
            skipped.push(Skipped {
                line: 0,
                text: format!("nft table {family} {name}"),
                reason: "the script made an nftables table iptables-save does not show (nft, ebtables or \
                         arptables): its rules are not imported; give nft rulesets to [firewall] nft"
                    .into(),
            });
        }
    }
}

/// A failed command that adds nothing: deleting, flushing, checking,
/// zeroing or listing what is not there (`iptables -D ... 2>/dev/null`,
/// `-C ... || -A ...`). The ruleset the script leaves is the same either
/// way.
fn harmless_failure(args: &str) -> bool {
    let words: Vec<&str> = args.split_whitespace().collect();
    let benign = [
        "-D",
        "--delete",
        "-F",
        "--flush",
        "-X",
        "--delete-chain",
        "-C",
        "--check",
        "-Z",
        "--zero",
    ];
    words.iter().any(|w| benign.contains(w)) || super::listing(&format!("iptables {args}"))
}

/// The import of a run: the saved rulesets each in its family, with the
/// run's failures among the refused lines.
fn import_run(name: &str, rc: i32, log: &str, saved_v4: String, saved_v6: String) -> ScriptRun {
    let mut skipped = Vec::new();
    let commands = parse_log(log);
    let mut ignored = Vec::new();
    for (status, line, cmd, err, args) in &commands {
        let text = format!("{cmd} {args}");
        if matches!(cmd.as_str(), "modprobe" | "insmod" | "rmmod") {
            ignored.push(Skipped {
                line: *line,
                text,
                reason: "kernel module loading: system set-up, not run in the sandbox".into(),
            });
        } else if cmd == "nft" {
            if args.split_whitespace().find(|w| !w.starts_with('-')) == Some("list") {
                ignored.push(Skipped {
                    line: *line,
                    text,
                    reason: "lists the ruleset, changes nothing".into(),
                });
            } else {
                skipped.push(Skipped {
                    line: *line,
                    text,
                    reason: "nft rules are not imported by --run (iptables-save does not show \
                             them); give nft rulesets to [firewall] nft"
                        .into(),
                });
            }
        } else if *status != 0 && harmless_failure(args) {
            ignored.push(Skipped {
                line: *line,
                text,
                reason: format!(
                    "failed (exit status {status}) but adds nothing: deletes, flushes, checks or lists"
                ),
            });
        } else if cmd.starts_with("ebtables") || cmd.starts_with("arptables") {
            skipped.push(Skipped {
                line: *line,
                text,
                reason: format!(
                    "{cmd} rules are not converted (xgate filters bridged traffic with iptables' -m physdev)"
                ),
            });
        } else if *status != 0 {
            let why = if err.is_empty() {
                "no message".to_string()
            } else {
                err.clone()
            };
            skipped.push(Skipped {
                line: *line,
                text,
                reason: format!("failed when the script ran (exit status {status}: {why})"),
            });
        }
    }
    if rc != 0 {
        skipped.push(Skipped {
            line: 0,
            text: format!("{name} (the whole script)"),
            reason: format!(
                "the script ended with exit status {rc}, so what it would have set after that is missing \
                 (its output says why; it runs with bash -u, so a variable nothing set stops it)"
            ),
        });
    }
    let mut import = Import {
        v4: None,
        v6: None,
        skipped: Vec::new(),
        ignored,
    };
    for (fam, text, save) in [
        (Family::V4, &saved_v4, "iptables-save"),
        (Family::V6, &saved_v6, "ip6tables-save"),
    ] {
        if text.trim().is_empty() {
            continue;
        }
        if text.contains("is incompatible, use 'nft' tool") {
            skipped.push(Skipped {
                line: 0,
                text: format!("{save}: an incompatible table"),
                reason: "nft added rules to an iptables table that iptables-save cannot print: \
                         not imported"
                    .into(),
            });
        }
        let part = import_family(text, save, Some(fam));
        for s in part.skipped {
            skipped.push(Skipped {
                line: 0,
                text: s.text,
                reason: format!(
                    "{} ({save} line {} of the ruleset the script left)",
                    s.reason, s.line
                ),
            });
        }
        match fam {
            Family::V4 => import.v4 = part.v4,
            _ => import.v6 = part.v6,
        }
    }
    import.skipped = skipped;
    ScriptRun {
        commands: commands
            .iter()
            .filter(|c| !matches!(c.2.as_str(), "modprobe" | "insmod" | "rmmod"))
            .count(),
        import,
        saved_v4,
        saved_v6,
        output: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A FORWARD -i eth1 -o eth0 -j ACCEPT\nCOMMIT\n";

    #[test]
    fn a_clean_run_imports_the_saved_ruleset_in_its_family() {
        let log = "0\t4\tiptables\t\t-P FORWARD DROP\n0\t5\tiptables\t\t-A FORWARD -i eth1 -o eth0 -j ACCEPT\n";
        let run = import_run("fw.sh", 0, log, SAVED.into(), String::new());
        assert!(run.import.skipped.is_empty(), "{:?}", run.import.skipped);
        assert_eq!(run.commands, 2);
        assert!(run.import.v4.is_some());
        assert!(
            run.import.v6.is_none(),
            "no ip6tables call: no IPv6 ruleset"
        );
    }

    #[test]
    fn a_failed_command_a_bad_exit_and_ebtables_are_refused_with_their_lines() {
        let log = "2\t7\tiptables\tiptables v1.8.9 (nf_tables): host/network `a.example' not found\t-A INPUT -s a.example -j DROP\n\
                   0\t9\tebtables\t\t-A FORWARD -j DROP\n";
        let run = import_run("fw.sh", 1, log, SAVED.into(), String::new());
        let s = &run.import.skipped;
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(
            (s[0].line, s[0].text.as_str()),
            (7, "iptables -A INPUT -s a.example -j DROP")
        );
        assert!(s[0].reason.contains("exit status 2") && s[0].reason.contains("a.example"));
        assert_eq!(s[1].line, 9);
        assert!(s[1].reason.contains("ebtables rules are not converted"));
        assert!(s[2].reason.contains("exit status 1"));
    }

    #[test]
    fn a_saved_line_the_importer_refuses_says_where_it_is() {
        let saved =
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n";
        let run = import_run("fw.sh", 0, "", saved.into(), String::new());
        let s = &run.import.skipped;
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(
            s[0].reason.contains("iptables-save line 3"),
            "{}",
            s[0].reason
        );
    }

    #[test]
    fn failures_that_add_nothing_and_nft_are_told_apart() {
        let log = "2\t3\tiptables\t\t-D INPUT -j FW\n1\t4\tiptables\t\t-C FORWARD -j ACCEPT\n\
                   1\t5\tip6tables\t\t-nvL\n1\t6\tiptables\tno chain\t-N FW -w\n\
                   0\t7\tnft\t\tlist ruleset\n0\t8\tnft\t\tadd table inet t\n";
        let run = import_run("fw.sh", 0, log, SAVED.into(), String::new());
        let ignored: Vec<usize> = run.import.ignored.iter().map(|s| s.line).collect();
        assert_eq!(ignored, vec![3, 4, 5, 7]);
        let refused: Vec<usize> = run.import.skipped.iter().map(|s| s.line).collect();
        assert_eq!(refused, vec![6, 8]);
        let mut skipped = Vec::new();
        refuse_foreign_tables(
            "table ip filter\ntable ip6 nat\ntable inet guard\ntable bridge filter\n",
            &mut skipped,
        );
        let names: Vec<&str> = skipped.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(names, ["nft table inet guard", "nft table bridge filter"]);
    }

    #[test]
    fn the_log_keeps_arguments_with_tabs_out_of_the_fields() {
        let l = parse_log(
            "0\t3\tip6tables\t\t-A INPUT -m comment --comment a\\ b -j ACCEPT\nbad line\n",
        );
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].2, "ip6tables");
        assert_eq!(l[0].4, "-A INPUT -m comment --comment a\\ b -j ACCEPT");
    }
}
