//! The config file: model, TOML parsing and validation (docs/config.md).
//!
//! `load` / `parse` return a [`Config`] only when the whole file is valid;
//! otherwise every error found, each naming file, line and field
//! (`rules.toml:14: interface[1].address[0]: invalid prefix ...`). Nothing is
//! applied from a config with any error.

mod error;
mod model;
mod parse;
mod validate;
pub mod values;

use std::path::Path;

use toml::de::DeTable;

pub use error::{ConfigError, render_errors};
pub use model::{
    BindMode, Config, ConntrackCfg, Control, DEFAULT_FLOWS, DEFAULT_METRICS, DEFAULT_MTU,
    DEFAULT_SOCKET, DEFAULT_TIMEOUTS, Dataplane, FamilyRules, Firewall, HelperCfg, Interface,
    MAX_FLOWS, MAX_MIRROR_BATCH_MS, MAX_MTU, MAX_QUEUES, MAX_RULE_PRIORITY, MAX_WEIGHT,
    MAX_WORKERS, MIN_FLOWS, MIN_MTU, MIN_MTU_V6, Mirror, MirrorCfg, NeighborCfg, NexthopCfg,
    Offload, RouteCfg, RouteType, RuleCfg, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, XdpMode,
};

use error::LineIndex;

/// Reads and parses the config file at `path`. Errors name the file as `path`
/// is written; `rules_file` is resolved relative to `path`'s directory.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        vec![ConfigError::new(
            &file,
            1,
            "file",
            format!("cannot read: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        vec![ConfigError::new(&file, line, "file", "not valid UTF-8")]
    })?;
    parse(&text, &file)
}

/// Parses config `text`. `file_name` is used in errors, and its directory
/// (if any; else the current directory) to resolve `[firewall] rules_file`.
pub fn parse(text: &str, file_name: &str) -> Result<Config, Vec<ConfigError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let index = LineIndex::new(text);
        let mut errors: Vec<ConfigError> = syntax
            .iter()
            .map(|e| {
                let line = e.span().map_or(1, |s| index.line(s.start));
                let msg = e.message().trim().replace('\n', "; ");
                ConfigError::new(file_name, line, "toml", format!("syntax error: {msg}"))
            })
            .collect();
        errors.sort_by_key(|e| e.line);
        errors.dedup();
        return Err(errors);
    }
    let base_dir = Path::new(file_name).parent().unwrap_or(Path::new(""));
    let mut ctx = parse::Ctx::new(file_name, text);
    let cfg = parse::document(&mut ctx, doc.get_ref(), base_dir);
    validate::check(&cfg, &mut ctx);
    // All errors at once: with other errors the config is never compiled,
    // so the firewall rules' own syntax errors are collected here (a
    // valid config reads them when it is compiled).
    if ctx.has_errors()
        && let Some(fw) = &cfg.firewall
        && let Err(e) = crate::iptables::load_all(fw, file_name)
    {
        ctx.extend(e);
    }
    ctx.finish(cfg)
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// One short paragraph for `xgate check`: what the config defines.
pub fn check_summary(cfg: &Config) -> String {
    let source = |text: &Option<String>, file: &Option<std::path::PathBuf>| match (text, file) {
        (Some(text), _) => Some(format!("inline, {}", count(text.lines().count(), "line"))),
        (None, Some(path)) => Some(format!("from {}", path.display())),
        (None, None) => None,
    };
    // What a family without rules gets, said on a line of its own.
    let mut notes = String::new();
    let firewall = match &cfg.firewall {
        Some(
            fw @ Firewall {
                rules: Some(text), ..
            },
        ) if fw.is_inet() => format!(
            "inline firewall rules for IPv4 and IPv6 ({})",
            count(text.lines().count(), "line")
        ),
        Some(Firewall {
            rules_file: Some(path),
            ..
        }) => format!("firewall rules for IPv4 and IPv6 from {}", path.display()),
        Some(fw) if fw.v4.is_set() || fw.v6.is_set() => {
            let mut parts = Vec::new();
            for (fam, key, fr) in [("IPv4", "rules_v4", &fw.v4), ("IPv6", "rules_v6", &fw.v6)] {
                match source(&fr.rules, &fr.rules_file) {
                    Some(s) => parts.push(format!("{fam} firewall rules ({key}: {s})")),
                    None => {
                        notes.push_str(&format!(
                            "\n{fam}: no {key}: forwarded and local {fam} traffic is dropped \
                             (INPUT and FORWARD policy DROP, OUTPUT ACCEPT)"
                        ));
                    }
                }
            }
            parts.join(", ")
        }
        _ => "no firewall rules".to_owned(),
    };
    let firewall = match cfg.firewall.as_ref().map(|fw| &fw.nft) {
        Some(n) if n.is_set() => {
            let nft = match (&n.rules, &n.rules_file) {
                (Some(text), _) => format!(
                    "an inline nftables ruleset ({})",
                    count(text.lines().count(), "line")
                ),
                (None, Some(p)) => format!("the nftables ruleset of {}", p.display()),
                (None, None) => unreachable!("is_set"),
            };
            if firewall == "no firewall rules" {
                nft
            } else {
                format!("{firewall} and {nft}")
            }
        }
        _ => firewall,
    };
    let workers = cfg
        .dataplane
        .workers
        .map_or_else(|| "one worker per core".to_owned(), |n| count(n, "worker"));
    let metrics = if cfg.control.metrics.is_empty() {
        "metrics disabled".to_owned()
    } else {
        format!("metrics on {}", cfg.control.metrics)
    };
    let mirrored: Vec<String> = cfg
        .interfaces
        .iter()
        .filter(|i| i.mirror.any())
        .map(|i| {
            let what: Vec<&str> = [
                (i.mirror.addresses, "addresses"),
                (i.mirror.routes, "routes"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
            format!("{} ({})", i.name, what.join(", "))
        })
        .collect();
    if !mirrored.is_empty() {
        notes.push_str(&format!(
            "\nmirrored from the kernel: {}; tables {}",
            mirrored.join(", "),
            cfg.mirror
                .tables
                .iter()
                .map(|t| values::table_name(*t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for b in &cfg.bridges {
        let nf = match (b.nf_call_iptables, b.nf_call_ip6tables) {
            (true, true) => "bridged IPv4 and IPv6 pass conntrack and FORWARD",
            (true, false) => {
                "bridged IPv4 passes conntrack and FORWARD, bridged IPv6 is not filtered"
            }
            (false, true) => {
                "bridged IPv6 passes conntrack and FORWARD, bridged IPv4 is not filtered"
            }
            (false, false) => "bridged traffic is not filtered (nf_call_iptables = false)",
        };
        let ports: Vec<&str> = b.ports.iter().map(|p| p.interface.as_str()).collect();
        notes.push_str(&format!(
            "\nbridge {}: ports {}{}; {nf}",
            b.name,
            ports.join(", "),
            if b.vlan_filtering {
                " (VLAN-aware)"
            } else {
                ""
            }
        ));
    }
    let routes = match &cfg.routes_file {
        Some((path, _)) => format!(
            "{} + routes from {}",
            count(cfg.routes.len(), "route"),
            path.display()
        ),
        None => count(cfg.routes.len(), "route"),
    };
    format!(
        "{}: OK: {}, {}, {}, {}; {}; {}; {}, {} flows; control socket {}, {}.",
        cfg.source,
        count(cfg.interfaces.len(), "interface"),
        routes,
        count(cfg.rules.len(), "rule"),
        count(cfg.neighbors.len(), "neighbor"),
        firewall,
        count(cfg.timeouts.len(), "timeout override"),
        workers,
        cfg.dataplane.flows,
        cfg.control.socket,
        metrics,
    ) + &notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_the_empty_file() {
        let parsed = parse("", "").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn summary_counts_singular_and_plural() {
        assert_eq!(count(1, "route"), "1 route");
        assert_eq!(count(0, "route"), "0 routes");
        let mut cfg = Config {
            source: "gw.toml".into(),
            ..Config::default()
        };
        cfg.dataplane.workers = Some(1);
        let s = check_summary(&cfg);
        assert!(s.starts_with("gw.toml: OK: 0 interfaces"), "{s}");
        assert!(s.contains("1 worker,"), "{s}");
    }
}
