//! `xgate import-iptables FILE [--partial]`: iptables-save output (or a
//! script of iptables commands) -> the `[firewall]` TOML block on stdout.
//! A line that cannot be converted fails the import (exit 1, nothing on
//! stdout, every such line named on stderr): a ruleset missing one of its
//! lines can be more open than the one written. `--partial` prints the
//! block anyway, with each refused line kept in it as a comment that
//! `xgate check` warns about. `--run` runs a script in a sandbox and
//! imports what it leaves (control/src/import/sandbox.rs).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use xgate_control::import;
use xgate_control::iptables::Family;

/// `family`: the family of iptables-save lines (`--family 4|6`); `None`:
/// IPv6 when they name IPv6 addresses only, else IPv4.
pub fn run(path: &Path, partial: bool, family: Option<Family>) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(bytes) => match import::decode(&bytes, &name) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("xgate import-iptables: {e}");
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprintln!("xgate import-iptables: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let imp = import::import_family(&text, &name, family);
    finish(&imp, &name, &name, partial)
}

/// `--run`: the script run in the sandbox, then the same output as a read
/// file's.
pub fn run_script(path: &Path, partial: bool, args: &[String], timeout: Duration) -> ExitCode {
    let name = path.display().to_string();
    match import::sandbox::run_script(path, args, timeout) {
        Ok(run) => {
            for l in run.output.lines() {
                eprintln!("{name} (running): {l}");
            }
            eprintln!(
                "xgate import-iptables: {name}: ran {} iptables command(s) in a sandbox",
                run.commands
            );
            let source = if args.is_empty() {
                format!("{name} (run)")
            } else {
                format!("{name} (run with: {})", args.join(" "))
            };
            finish(&run.import, &name, &source, partial)
        }
        Err(e) => {
            eprintln!("xgate import-iptables: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reports what was ignored and refused, then prints the block (or not).
fn finish(imp: &import::Import, name: &str, source: &str, partial: bool) -> ExitCode {
    let at = |line: usize| {
        if line == 0 {
            name.to_string()
        } else {
            format!("{name}:{line}")
        }
    };
    for s in &imp.ignored {
        eprintln!("{}: ignored: {} ({})", at(s.line), s.text.trim(), s.reason);
    }
    for s in &imp.skipped {
        eprintln!(
            "{}: not converted: {} ({})",
            at(s.line),
            s.text.split_whitespace().collect::<Vec<_>>().join(" "),
            s.reason
        );
    }
    if imp.skipped.is_empty() {
        print!("{}", import::to_toml(imp, source));
        return ExitCode::SUCCESS;
    }
    if partial {
        print!("{}", import::to_toml_partial(imp, source, &imp.skipped));
        eprintln!(
            "xgate import-iptables: PARTIAL: {} line(s) not converted, kept in the block as comments; \
             the ruleset differs from the one written",
            imp.skipped.len()
        );
    } else {
        eprintln!(
            "xgate import-iptables: {} line(s) not converted; nothing printed \
             (the ruleset would differ from the one written; --partial prints it anyway)",
            imp.skipped.len()
        );
        let shell =
            |r: &str| r.contains("is not an iptables command") || r.starts_with("shell variable");
        if imp.skipped.iter().any(|s| shell(&s.reason)) {
            eprintln!(
                "xgate import-iptables: {name} is a shell script: --run runs it in a sandbox \
                 and imports what it sets up (root needed; e.g. --run {name} start)"
            );
        }
    }
    ExitCode::FAILURE
}
