//! `xgate import-iptables FILE [--partial]`: iptables-save output (or a
//! script of iptables commands) -> the `[firewall]` TOML block on stdout.
//! A line that cannot be converted fails the import (exit 1, nothing on
//! stdout, every such line named on stderr): a ruleset missing one of its
//! lines can be more open than the one written. `--partial` prints the
//! block anyway, with each refused line kept in it as a comment that
//! `xgate check` warns about.

use std::path::Path;
use std::process::ExitCode;
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
    for s in &imp.ignored {
        eprintln!(
            "{name}:{}: ignored: {} ({})",
            s.line,
            s.text.trim(),
            s.reason
        );
    }
    for s in &imp.skipped {
        eprintln!(
            "{name}:{}: not converted: {} ({})",
            s.line,
            s.text.split_whitespace().collect::<Vec<_>>().join(" "),
            s.reason
        );
    }
    if imp.skipped.is_empty() {
        print!("{}", import::to_toml(&imp, &name));
        return ExitCode::SUCCESS;
    }
    if partial {
        print!("{}", import::to_toml_partial(&imp, &name, &imp.skipped));
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
    }
    ExitCode::FAILURE
}
