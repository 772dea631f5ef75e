//! `xgate import-iptables`: a saved ruleset (iptables-save output) or a
//! shell script of `iptables` commands -> the config's `[firewall]` block.
//!
//! Everything the iptables parser accepts is converted; every line it
//! refuses (an unsupported match or target, a shell command that is not
//! iptables, a listing like `iptables -L`) is left out and named with the
//! parser's reason, so nothing is dropped silently. The block holds the
//! canonical iptables-save text of what was converted, which the config
//! parses back to the same ruleset.

use crate::iptables::{self, Counters, IptablesRuleset};

/// A line left out of the conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the input.
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// The converted ruleset and what was left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub ruleset: IptablesRuleset,
    pub skipped: Vec<Skipped>,
}

/// `sudo iptables ...` and `/sbin/iptables ...` are `iptables ...`.
fn normalise(line: &str) -> String {
    let t = line.trim_start();
    let t = t.strip_prefix("sudo ").map_or(t, str::trim_start);
    let first = t.split_whitespace().next().unwrap_or("");
    match first.rsplit_once('/') {
        Some((_, cmd)) if cmd == "iptables" || cmd == "ip6tables" => {
            format!("{cmd}{}", &t[first.len()..])
        }
        _ => t.to_owned(),
    }
}

/// Converts `text` (named `file` in reasons).
pub fn import(text: &str, file: &str) -> Import {
    let mut lines: Vec<String> = text.lines().map(normalise).collect();
    let mut skipped = Vec::new();
    // Each round leaves out the lines the parser refused; a line's error
    // may hide others behind it (a chain whose `-N` was refused), so
    // parse again until it succeeds. Every round removes at least one
    // line: the loop ends.
    loop {
        match iptables::parse(&lines.join("\n"), file, 1) {
            Ok(mut rs) => {
                for t in &mut rs.tables {
                    for c in &mut t.chains {
                        c.counters = Counters::default();
                        for r in &mut c.rules {
                            r.counters = Counters::default();
                        }
                    }
                }
                skipped.sort_by_key(|s: &Skipped| s.line);
                return Import {
                    ruleset: rs,
                    skipped,
                };
            }
            Err(errs) => {
                let mut removed = false;
                for e in &errs {
                    let Some(l) = lines.get_mut(e.line.wrapping_sub(1)) else {
                        continue;
                    };
                    if l.trim().is_empty() {
                        continue;
                    }
                    skipped.push(Skipped {
                        line: e.line,
                        text: text.lines().nth(e.line - 1).unwrap_or("").to_owned(),
                        reason: e.message.clone(),
                    });
                    l.clear();
                    removed = true;
                }
                if !removed {
                    // An error no line can be blamed for: nothing converts.
                    skipped.extend(errs.iter().map(|e| Skipped {
                        line: e.line,
                        text: String::new(),
                        reason: e.message.clone(),
                    }));
                    return Import {
                        ruleset: IptablesRuleset::default(),
                        skipped,
                    };
                }
            }
        }
    }
}

/// The `[firewall]` block for `rs`: its canonical iptables-save text in a
/// TOML multi-line string.
pub fn to_toml(rs: &IptablesRuleset, source: &str) -> String {
    let text = rs.to_string();
    // A basic string: escape what TOML would read as escapes or an end.
    let body = text.replace('\\', "\\\\").replace("\"\"\"", "\"\"\\\"");
    format!(
        "# Converted by xgate import-iptables from {source}\n[firewall]\nrules = \"\"\"\n{body}\"\"\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_what_it_can_and_names_the_rest() {
        let script = "#!/bin/sh\n\
            echo 1 > /proc/sys/net/ipv4/ip_forward\n\
            sudo /sbin/iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n\
            iptables -A FORWARD -m frobnicate -j ACCEPT\n\
            iptables -P FORWARD DROP\n";
        let imp = import(script, "fw.sh");
        let lines: Vec<usize> = imp.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 4], "{:?}", imp.skipped);
        assert_eq!(
            imp.skipped[1].text,
            "iptables -A FORWARD -m frobnicate -j ACCEPT"
        );
        let text = imp.ruleset.to_string();
        assert!(
            text.contains("-A POSTROUTING -o eth0 -j MASQUERADE"),
            "{text}"
        );
        assert!(text.contains(":FORWARD DROP [0:0]"), "{text}");
        let toml = to_toml(&imp.ruleset, "fw.sh");
        assert!(
            toml.contains("[firewall]\nrules = \"\"\"\n*nat\n"),
            "{toml}"
        );
    }
}
