//! `xgate import-iptables`: a saved ruleset (iptables-save output) or a
//! shell script of `iptables` commands -> the config's `[firewall]` block.
//!
//! Never weaker than the input: a line that cannot be converted (an
//! unsupported match or target, a shell construct that is not an iptables
//! command) fails the whole import, because leaving out a `-j DROP`, or a
//! `-j RETURN` that guards an ACCEPT, yields a firewall more open than the
//! one the user wrote. With `--partial` the user takes that risk knowingly:
//! the block is printed with every refused line kept in it as a comment
//! (`# xgate-import: not converted: ...`), and `xgate check` warns about a
//! ruleset that holds such lines.
//!
//! Before parsing, a command continued over several lines with `\` is
//! joined into its first line, so a refused command is refused whole
//! (never re-read from its next line), and simple shell variables
//! (`IPT=/sbin/iptables`, then `$IPT -A ...`) are expanded. Lines that only
//! set the system up (`sysctl`, `modprobe`, `echo 1 > /proc/sys/...`,
//! `set -e`, `exit`) are not firewall rules: they are ignored and named.
//! Bytes that are not UTF-8 are tolerated in comments (lossily) and are an
//! error naming the line anywhere else.

use crate::iptables::{self, Counters, IptablesRuleset};
use std::collections::HashMap;

/// The marker `--partial` puts before each refused line in the block, and
/// that `xgate check` looks for.
pub const NOT_CONVERTED: &str = "# xgate-import: not converted:";

/// A line left out of the conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the input.
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// The converted ruleset, what was refused, and what was ignored as
/// system set-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub ruleset: IptablesRuleset,
    /// Lines that could not be converted: the import is incomplete.
    pub skipped: Vec<Skipped>,
    /// Lines that are not firewall rules (sysctl, modprobe, ...).
    pub ignored: Vec<Skipped>,
}

/// The input as text: invalid UTF-8 is replaced in comment lines and in
/// `--comment` arguments, and refused elsewhere with the line and column.
pub fn decode(bytes: &[u8], file: &str) -> Result<String, String> {
    let mut out = String::with_capacity(bytes.len());
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match std::str::from_utf8(raw) {
            Ok(s) => out.push_str(s),
            Err(e) => {
                let bad = e.valid_up_to();
                let before = String::from_utf8_lossy(&raw[..bad]);
                let comment = before.trim_start().starts_with('#')
                    || before.contains("--comment")
                    || before.contains(" #");
                if !comment {
                    return Err(format!(
                        "{file}:{}: byte 0x{:02x} at column {} is not UTF-8 text (only comments may hold such bytes)",
                        i + 1,
                        raw[bad],
                        bad + 1
                    ));
                }
                out.push_str(&String::from_utf8_lossy(raw));
            }
        }
    }
    Ok(out)
}

/// Shell lines that set the system up and hold no firewall rule.
fn system_setup(words: &[&str]) -> bool {
    match words {
        [] => false,
        ["set", ..] | ["exit", ..] | ["modprobe", ..] | ["sysctl", ..] | ["true"] => true,
        ["echo", .., ">", path] => path.starts_with("/proc/sys/"),
        ["echo", rest @ ..] => rest.iter().any(|w| w.starts_with(">/proc/sys/")),
        _ => false,
    }
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

/// `NAME=value` (a shell assignment without spaces), unquoted.
fn assignment(line: &str) -> Option<(String, String)> {
    let (name, value) = line.trim().split_once('=')?;
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !value.contains(char::is_whitespace);
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    ok.then(|| (name.to_owned(), value.to_owned()))
}

/// Expands `$NAME` and `${NAME}`; an unknown variable is an error.
fn expand(line: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}').ok_or("unterminated ${...}")?;
            (&b[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match vars.get(name) {
            Some(v) if !name.is_empty() => out.push_str(v),
            _ => return Err(format!("shell variable ${name} is not set by the script")),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The input's lines, one per input line: a continued command joined into
/// its first line (the rest left empty), variables expanded, system set-up
/// and unusable shell blanked and reported.
fn prepare(text: &str) -> (Vec<String>, Vec<Skipped>, Vec<Skipped>) {
    let raw: Vec<&str> = text.lines().collect();
    let mut lines = vec![String::new(); raw.len()];
    let mut refused = Vec::new();
    let mut ignored = Vec::new();
    let mut vars = HashMap::new();
    let mut i = 0;
    while i < raw.len() {
        let start = i;
        let mut joined = String::new();
        loop {
            let l = raw[i];
            match l.trim_end().strip_suffix('\\') {
                Some(body) if i + 1 < raw.len() => {
                    joined.push_str(body);
                    joined.push(' ');
                    i += 1;
                }
                _ => {
                    joined.push_str(l);
                    i += 1;
                    break;
                }
            }
        }
        let original = raw[start..i].join("\n");
        let t = joined.trim();
        if t.is_empty() || t.starts_with('#') {
            lines[start] = joined;
            continue;
        }
        if let Some((k, v)) = assignment(t) {
            vars.insert(k, v);
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        if system_setup(&words) {
            ignored.push(Skipped {
                line: start + 1,
                text: original,
                reason: "system set-up, not a firewall rule".into(),
            });
            continue;
        }
        // iptables-save lines are data: `$` in them is no variable.
        let save_line = t.starts_with(['-', ':', '*', '[']) || t == "COMMIT";
        let expanded = if save_line {
            Ok(t.to_owned())
        } else {
            expand(t, &vars)
        };
        match expanded {
            Ok(e) => {
                let e = normalise(&e);
                let cmd = e.split_whitespace().next().unwrap_or("");
                let known = cmd.starts_with(['-', ':', '*', '['])
                    || matches!(cmd, "COMMIT" | "iptables" | "ip6tables");
                if known {
                    lines[start] = e;
                } else {
                    refused.push(Skipped {
                        line: start + 1,
                        text: original,
                        reason: format!("`{cmd}` is not an iptables command"),
                    });
                }
            }
            Err(reason) => refused.push(Skipped {
                line: start + 1,
                text: original,
                reason,
            }),
        }
    }
    (lines, refused, ignored)
}

/// Converts `text` (named `file` in reasons).
pub fn import(text: &str, file: &str) -> Import {
    let (mut lines, mut skipped, ignored) = prepare(text);
    let original = |line: usize| {
        // The whole command, continuation lines included.
        let raw: Vec<&str> = text.lines().collect();
        let mut end = line;
        while end < raw.len() && raw[end - 1].trim_end().ends_with('\\') {
            end += 1;
        }
        raw[line - 1..end.min(raw.len())].join("\n")
    };
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
                    ignored,
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
                        text: original(e.line),
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
                    skipped.sort_by_key(|s: &Skipped| s.line);
                    return Import {
                        ruleset: IptablesRuleset::default(),
                        skipped,
                        ignored,
                    };
                }
            }
        }
    }
}

/// The `[firewall]` block for `rs`: its canonical iptables-save text in a
/// TOML multi-line string. `refused` (given only for `--partial`) goes
/// first in the text, one comment per line that was not converted.
pub fn to_toml(rs: &IptablesRuleset, source: &str) -> String {
    to_toml_partial(rs, source, &[])
}

/// [`to_toml`] for a partial import: the refused lines stay in the block
/// as comments saying why, where `xgate check` finds them.
pub fn to_toml_partial(rs: &IptablesRuleset, source: &str, refused: &[Skipped]) -> String {
    let mut text = String::new();
    for s in refused {
        let what = s.text.split_whitespace().collect::<Vec<_>>().join(" ");
        text.push_str(&format!(
            "{NOT_CONVERTED} line {}: {what} ({})\n",
            s.line,
            s.reason.replace('\n', " ")
        ));
    }
    text.push_str(&rs.to_string());
    // A basic string: escape what TOML would read as escapes or an end.
    let body = text.replace('\\', "\\\\").replace("\"\"\"", "\"\"\\\"");
    let partial = if refused.is_empty() {
        String::new()
    } else {
        format!(
            " (PARTIAL: {} line(s) not converted, kept below as comments)",
            refused.len()
        )
    };
    format!(
        "# Converted by xgate import-iptables from {source}{partial}\n[firewall]\nrules = \"\"\"\n{body}\"\"\"\n"
    )
}

/// The lines of a ruleset text that a `--partial` import could not
/// convert (what `xgate check` warns about).
pub fn partial_lines(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter(|l| l.trim_start().starts_with(NOT_CONVERTED))
        .collect()
}

/// `xgate check`'s warning for a config whose firewall rules hold lines a
/// `--partial` import could not convert (`None` if they hold none).
pub fn partial_warning(fw: &crate::config::Firewall) -> Option<String> {
    let read = |rules: &Option<String>, file: &Option<std::path::PathBuf>| match (rules, file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let text = [
        read(&fw.rules, &fw.rules_file),
        read(&fw.v4.rules, &fw.v4.rules_file),
        read(&fw.v6.rules, &fw.v6.rules_file),
    ]
    .join("\n");
    let lines = partial_lines(&text);
    if lines.is_empty() {
        return None;
    }
    let mut w = format!(
        "warning: the firewall rules are a PARTIAL import: {} line(s) of the original were not converted, \
         so this ruleset differs from the one written (it may accept what the original drops):",
        lines.len()
    );
    for l in lines {
        w.push_str("\n  ");
        w.push_str(l.trim_start().trim_start_matches(NOT_CONVERTED).trim());
    }
    Some(w)
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
        assert_eq!(lines, vec![4], "{:?}", imp.skipped);
        assert_eq!(imp.ignored.len(), 1);
        assert_eq!(imp.ignored[0].line, 2);
        assert_eq!(
            imp.skipped[0].text,
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

    /// A refused continued command is refused whole: its later lines are
    /// never read as a command of their own (which here would be an
    /// unconditional ACCEPT).
    #[test]
    fn a_refused_continued_command_is_refused_whole() {
        let script = "iptables -P FORWARD DROP\n\
            iptables \\\n  -m set --match-set trusted src \\\n  --table filter --append FORWARD --jump ACCEPT\n";
        let imp = import(script, "fw.sh");
        assert_eq!(imp.skipped.len(), 1, "{:?}", imp.skipped);
        assert_eq!(imp.skipped[0].line, 2);
        assert!(imp.skipped[0].text.contains("--jump ACCEPT"));
        let text = imp.ruleset.to_string();
        assert!(!text.contains("-A FORWARD"), "{text}");
    }

    #[test]
    fn shell_variables_are_expanded_and_unknown_ones_refused() {
        let script = "IPT=/sbin/iptables\nWAN=\"eth0\"\n\
            $IPT -t nat -A POSTROUTING -o ${WAN} -j MASQUERADE\n\
            $IPT -A FORWARD -i $LAN -j ACCEPT\n";
        let imp = import(script, "fw.sh");
        assert!(
            imp.ruleset
                .to_string()
                .contains("-A POSTROUTING -o eth0 -j MASQUERADE")
        );
        assert_eq!(imp.skipped.len(), 1);
        assert_eq!(imp.skipped[0].line, 4);
        assert!(imp.skipped[0].reason.contains("$LAN"), "{:?}", imp.skipped);
    }

    #[test]
    fn partial_blocks_keep_refused_lines_as_comments() {
        let script = "iptables -P FORWARD DROP\niptables -A FORWARD -m frob -j RETURN\n";
        let imp = import(script, "fw.sh");
        let toml = to_toml_partial(&imp.ruleset, "fw.sh", &imp.skipped);
        assert!(toml.contains("PARTIAL: 1 line(s)"), "{toml}");
        let v: toml::Value = toml::from_str(&toml).unwrap();
        let rules = v["firewall"]["rules"].as_str().unwrap();
        let partial = partial_lines(rules);
        assert_eq!(partial.len(), 1, "{rules}");
        assert!(partial[0].contains("line 2: iptables -A FORWARD -m frob -j RETURN"));
        // The block still parses: the comments are comments.
        iptables::parse(rules, "gw.toml", 1).unwrap();
    }

    #[test]
    fn non_utf8_is_tolerated_in_comments_only() {
        let ok = b"# caf\xe9\n-A FORWARD -m comment --comment \"caf\xe9\" -j ACCEPT\n";
        let text = decode(ok, "r").unwrap();
        assert!(text.contains("caf\u{fffd}"));
        let bad = b"*filter\n-A FORWARD -i eth\xff -j ACCEPT\n";
        let e = decode(bad, "r").unwrap_err();
        assert!(e.starts_with("r:2: byte 0xff at column 18"), "{e}");
    }
}
