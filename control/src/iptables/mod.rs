//! iptables-save syntax for `[firewall]` rules: parser and rule model.
//!
//! Accepts iptables-save text (`*filter` / `:CHAIN POLICY [p:b]` / `-A ...` /
//! `COMMIT`) and the script form users write (`-N CHAIN`, `-I CHAIN [N]`,
//! `-P CHAIN POLICY`, `-t nat -A ...`, optionally prefixed by `iptables`,
//! lines continued with `\`). Every unsupported option, module or target is
//! an error naming its line; nothing is silently ignored.
//!
//! `Display` on [`IptablesRuleset`] prints canonical iptables-save text, which parses
//! back to the same model.

mod lex;
pub mod model;
mod parse;

pub use model::*;

use crate::config::ConfigError;

/// The `field` errors from [`parse`] carry.
pub const FIELD: &str = "firewall.rules";

/// Parses `text` (iptables-save or script form). `first_line` is the line of
/// `file` where `text` starts, so errors name the right line. Returns every
/// error found (one per line at most, plus whole-ruleset checks), sorted by line.
pub fn parse(
    text: &str,
    file: &str,
    first_line: usize,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    parse::parse_ruleset(text, file, first_line, FIELD)
}

/// Like [`parse`], with the error `field` chosen by the caller
/// (e.g. `firewall.rules_file`).
pub fn parse_with_field(
    text: &str,
    file: &str,
    first_line: usize,
    field: &str,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    parse::parse_ruleset(text, file, first_line, field)
}

/// The ruleset of a config's `[firewall]`: its inline `rules` (errors name
/// the config file's lines) or its `rules_file` (errors name that file).
pub fn load(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    match (&fw.rules, &fw.rules_file) {
        (Some(text), _) => parse(text, config_file, fw.rules_line),
        (None, Some(path)) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![ConfigError::new(
                    config_file,
                    fw.line,
                    "firewall.rules_file",
                    format!("cannot read {name}: {e}"),
                )]
            })?;
            parse_with_field(&text, &name, 1, "firewall.rules_file")
        }
        (None, None) => Ok(IptablesRuleset::default()),
    }
}
