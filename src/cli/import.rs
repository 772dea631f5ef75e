//! `xgate import-iptables FILE`: iptables-save output (or a script of
//! iptables commands) -> the `[firewall]` TOML block on stdout; every
//! line that could not be converted on stderr; exit 1 if there was any.

use std::path::Path;
use std::process::ExitCode;
use xgate_control::import;

pub fn run(path: &Path) -> ExitCode {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xgate import-iptables: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let imp = import::import(&text, &name);
    print!("{}", import::to_toml(&imp.ruleset, &name));
    for s in &imp.skipped {
        eprintln!(
            "{name}:{}: not converted: {} ({})",
            s.line,
            s.text.trim(),
            s.reason
        );
    }
    if imp.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xgate import-iptables: {} line(s) not converted",
            imp.skipped.len()
        );
        ExitCode::FAILURE
    }
}
