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
//!
//! A script whose rules come from shell logic is run instead of read:
//! [`sandbox`] (`--run`).

pub mod sandbox;

use crate::iptables::{self, Counters, Family, IptablesRuleset, TableKind};
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

/// The converted rulesets, what was refused, and what was ignored as
/// system set-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// The IPv4 ruleset: `iptables` commands and an iptables-save file;
    /// `None` when the input holds no IPv4 line.
    pub v4: Option<IptablesRuleset>,
    /// The IPv6 ruleset: `ip6tables` commands and an ip6tables-save file
    /// (recognised by its IPv6 addresses, or named by `--family 6`).
    pub v6: Option<IptablesRuleset>,
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

/// `iptables -L`, `-nvL`, `-S`, `--list` ...: a command that only lists
/// (no command that changes a chain among its options).
pub(super) fn listing(cmd: &str) -> bool {
    let mut words = cmd.split_whitespace();
    if !matches!(words.next(), Some("iptables" | "ip6tables")) {
        return false;
    }
    let mut lists = false;
    for w in words {
        match w {
            "--list" | "--list-rules" | "-S" => lists = true,
            "--append" | "--insert" | "--delete" | "--replace" | "--new-chain"
            | "--delete-chain" | "--flush" | "--policy" | "--zero" | "--rename-chain" => {
                return false;
            }
            _ if w.starts_with('-') && !w.starts_with("--") => {
                let flags = &w[1..];
                if flags.chars().any(|c| "AIDRNXFPZE".contains(c)) {
                    return false;
                }
                if flags.contains('L') {
                    lists = true;
                }
            }
            _ => {}
        }
    }
    lists
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
        if t.starts_with("*)") {
            refused.push(Skipped {
                line: start + 1,
                text: original,
                reason: "`*)` is not an iptables command (a shell case label)".into(),
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
                if known && listing(&e) {
                    ignored.push(Skipped {
                        line: start + 1,
                        text: original,
                        reason: "lists the ruleset, changes nothing".into(),
                    });
                } else if known {
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

/// Which family's ruleset each line of `lines` belongs to: `ip6tables`
/// commands IPv6, `iptables` commands IPv4, iptables-save lines the
/// file's family (`family`, else IPv6 when they name IPv6 things only,
/// else IPv4); `None` for blank lines.
fn line_families(lines: &[String], family: Option<Family>) -> Vec<Option<Family>> {
    let save = |l: &str| {
        let t = l.trim_start();
        t.starts_with(['-', ':', '*', '[']) || t == "COMMIT"
    };
    let file_family = family.unwrap_or_else(|| {
        let (mut v4, mut v6) = (false, false);
        for l in lines.iter().filter(|l| save(l)) {
            let words: Vec<&str> = l.split_whitespace().collect();
            for w in words.windows(2) {
                if matches!(w[0], "-s" | "-d" | "--source" | "--destination") {
                    let a = w[1].split(['/', ',']).next().unwrap_or("");
                    match a.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(_)) => v4 = true,
                        Ok(std::net::IpAddr::V6(_)) => v6 = true,
                        Err(_) => {}
                    }
                }
            }
            v6 |= words
                .iter()
                .any(|w| w.contains("icmpv6") || w.contains("icmp6") || *w == "ipv6-icmp");
            v4 |= words.iter().any(|w| *w == "icmp" || w.starts_with("icmp-"));
        }
        if v6 && !v4 { Family::V6 } else { Family::V4 }
    });
    lines
        .iter()
        .map(|l| {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                None
            } else if t.starts_with("ip6tables") {
                Some(Family::V6)
            } else if t.starts_with("iptables") {
                Some(Family::V4)
            } else if save(t) {
                Some(file_family)
            } else {
                Some(Family::V4)
            }
        })
        .collect()
}

/// Converts `text` (named `file` in reasons): `iptables` commands and
/// iptables-save lines into the IPv4 ruleset, `ip6tables` commands into
/// the IPv6 one. An ip6tables-save file is recognised by its IPv6
/// addresses; [`import_family`] names the file's family instead.
pub fn import(text: &str, file: &str) -> Import {
    import_family(text, file, None)
}

/// [`import`], with the family of the iptables-save lines given
/// (`--family 6`), not guessed.
pub fn import_family(text: &str, file: &str, family: Option<Family>) -> Import {
    let (mut lines, mut skipped, ignored) = prepare(text);
    stricter_policies(&mut lines, &mut skipped);
    let fams = line_families(&lines, family);
    let mut out = Import {
        v4: None,
        v6: None,
        skipped: Vec::new(),
        ignored,
    };
    for fam in [Family::V4, Family::V6] {
        let mine: Vec<String> = lines
            .iter()
            .zip(&fams)
            .map(|(l, f)| {
                if *f == Some(fam) {
                    l.clone()
                } else {
                    String::new()
                }
            })
            .collect();
        if mine.iter().all(|l| l.trim().is_empty()) {
            continue;
        }
        let rs = import_lines(text, file, mine, &mut skipped);
        match fam {
            Family::V6 => out.v6 = Some(iptables::as_ipv6(rs)),
            _ => out.v4 = Some(rs),
        }
    }
    skipped.sort_by_key(|s: &Skipped| s.line);
    out.skipped = skipped;
    out
}

/// A script that branches (`if`, `case`: lines import refuses) may set a
/// chain's policy in each branch, as init scripts do for `start` and
/// `stop`; with the branches gone, the last line would win and could
/// open the firewall. When a refused line branches and one chain's
/// policy is set both ACCEPT and DROP, the ACCEPT lines are refused too
/// (the stricter policy stays).
/// A policy line's (table, chain, family word).
type PolicyKey = (String, String, String);

fn stricter_policies(lines: &mut [String], skipped: &mut Vec<Skipped>) {
    let branches = skipped.iter().any(|s| {
        let first = s.text.split_whitespace().next().unwrap_or("");
        matches!(
            first,
            "if" | "then" | "else" | "elif" | "fi" | "case" | "esac" | ";;"
        ) || first.ends_with(')')
    });
    if !branches {
        return;
    }
    // (table, chain, family word) -> lines per policy.
    let mut seen: HashMap<PolicyKey, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some(p) = w.iter().position(|x| matches!(*x, "-P" | "--policy")) else {
            continue;
        };
        let (Some(chain), Some(policy)) = (w.get(p + 1), w.get(p + 2)) else {
            continue;
        };
        let table = w
            .iter()
            .position(|x| matches!(*x, "-t" | "--table"))
            .and_then(|t| w.get(t + 1))
            .unwrap_or(&"filter");
        let fam = w.first().copied().unwrap_or("").to_string();
        let e = seen
            .entry((table.to_string(), chain.to_string(), fam))
            .or_default();
        match *policy {
            "ACCEPT" => e.0.push(i),
            "DROP" => e.1.push(i),
            _ => {}
        }
    }
    for ((table, chain, _), (accepts, drops)) in seen {
        if accepts.is_empty() || drops.is_empty() {
            continue;
        }
        for i in accepts {
            skipped.push(Skipped {
                line: i + 1,
                text: lines[i].clone(),
                reason: format!(
                    "policy ACCEPT of {table} {chain} conflicts with policy DROP on line {}, \
                     and the script branches (if/case) in lines not converted: the stricter DROP is kept",
                    drops[0] + 1
                ),
            });
            lines[i].clear();
        }
    }
}

/// One family's lines of the input (the others blank): parsed, leaving
/// out and adding to `skipped` every line the parser refuses or xgate
/// would refuse (rules in chains it never runs).
fn import_lines(
    text: &str,
    file: &str,
    mut lines: Vec<String>,
    skipped: &mut Vec<Skipped>,
) -> IptablesRuleset {
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
        let errs = match iptables::parse(&lines.join("\n"), file, 1) {
            Ok(mut rs) => {
                let mut never = never_run_rules(&rs);
                never.extend(never_run_policies(&lines));
                if never.is_empty() {
                    for t in &mut rs.tables {
                        for c in &mut t.chains {
                            c.counters = Counters::default();
                            for r in &mut c.rules {
                                r.counters = Counters::default();
                            }
                        }
                    }
                    return rs;
                }
                never
            }
            Err(errs) => errs.into_iter().map(|e| (e.line, e.message)).collect(),
        };
        let mut removed = false;
        for (line, message) in &errs {
            let Some(l) = lines.get_mut(line.wrapping_sub(1)) else {
                continue;
            };
            if l.trim().is_empty() {
                continue;
            }
            skipped.push(Skipped {
                line: *line,
                text: original(*line),
                reason: message.clone(),
            });
            l.clear();
            removed = true;
        }
        if !removed {
            // An error no line can be blamed for: nothing converts.
            skipped.extend(errs.iter().map(|(line, message)| Skipped {
                line: *line,
                text: String::new(),
                reason: message.clone(),
            }));
            return IptablesRuleset::default();
        }
    }
}

/// Lines setting policy DROP on a chain xgate never runs (`:OUTPUT DROP`
/// in `*nat`, `iptables -t mangle -P FORWARD DROP`), which `check`
/// refuses: (line, check's reason).
fn never_run_policies(lines: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut block: Option<TableKind> = None;
    for (i, l) in lines.iter().enumerate() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some(first) = w.first() else { continue };
        if let Some(name) = first.strip_prefix('*') {
            block = TableKind::from_name(name);
            continue;
        }
        let table_opt = w
            .windows(2)
            .find(|p| matches!(p[0], "-t" | "--table"))
            .and_then(|p| TableKind::from_name(p[1]));
        let table = table_opt.or(block).unwrap_or(TableKind::Filter);
        let chain = if let Some(name) = first.strip_prefix(':') {
            (w.get(1) == Some(&"DROP")).then_some(name)
        } else {
            w.windows(3)
                .find(|p| matches!(p[0], "-P" | "--policy") && p[2] == "DROP")
                .map(|p| p[1])
        };
        if let Some(chain) = chain
            && let Some(why) = crate::compile::firewall::never_runs_chain(table, chain)
        {
            out.push((
                i + 1,
                format!("policy DROP of {} {chain}: {why}", table.name()),
            ));
        }
    }
    out
}

/// Rules in chains xgate never runs (nat INPUT/OUTPUT, mangle other than
/// PREROUTING), which `check` refuses: (line, check's reason).
fn never_run_rules(rs: &IptablesRuleset) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for t in &rs.tables {
        for c in t.chains.iter().filter(|c| c.builtin) {
            if let Some(why) = crate::compile::firewall::never_runs_chain(t.kind, &c.name) {
                out.extend(c.rules.iter().map(|r| (r.line, why.clone())));
            }
        }
    }
    out
}

/// The `[firewall]` block of an import: `rules_v4` and/or `rules_v6`,
/// each its ruleset's canonical iptables-save text in a TOML multi-line
/// string.
pub fn to_toml(imp: &Import, source: &str) -> String {
    to_toml_partial(imp, source, &[])
}

/// [`to_toml`] for a partial import: the refused lines stay in the block
/// as comments saying why, where `xgate check` finds them (in the IPv6
/// block for `ip6tables` lines, else in the first block).
pub fn to_toml_partial(imp: &Import, source: &str, refused: &[Skipped]) -> String {
    let partial = if refused.is_empty() {
        String::new()
    } else {
        format!(
            " (PARTIAL: {} line(s) not converted, kept below as comments)",
            refused.len()
        )
    };
    let mut out =
        format!("# Converted by xgate import-iptables from {source}{partial}\n[firewall]\n");
    let v6_line = |s: &Skipped| s.text.trim_start().starts_with("ip6tables");
    let blocks: Vec<(&str, &IptablesRuleset, Family)> = [
        ("rules_v4", imp.v4.as_ref(), Family::V4),
        ("rules_v6", imp.v6.as_ref(), Family::V6),
    ]
    .into_iter()
    .filter_map(|(k, r, f)| r.map(|r| (k, r, f)))
    .collect();
    let empty = IptablesRuleset::default();
    let blocks = if blocks.is_empty() {
        vec![("rules_v4", &empty, Family::V4)]
    } else {
        blocks
    };
    let v6_block = blocks.iter().any(|b| b.2 == Family::V6);
    for (i, (key, rs, fam)) in blocks.iter().enumerate() {
        let mut text = String::new();
        for s in refused {
            let here = if v6_line(s) && v6_block {
                *fam == Family::V6
            } else {
                i == 0
            };
            if !here {
                continue;
            }
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
        out.push_str(&format!("{key} = \"\"\"\n{body}\"\"\"\n"));
    }
    let mut ipsets: Vec<&str> = Vec::new();
    for (_, rs, _) in &blocks {
        for t in &rs.tables {
            for r in t.chains.iter().flat_map(|c| &c.rules) {
                for x in &r.matches.ext {
                    if let iptables::ext::Ext::Set(m) = x
                        && !ipsets.contains(&m.name.as_str())
                    {
                        ipsets.push(&m.name);
                    }
                }
            }
        }
    }
    if !ipsets.is_empty() {
        out.push_str(&format!(
            "# -m set names the ipsets {}: give their contents as `ipset save` prints them, in\n# ipsets_file = \"/etc/iptables/ipsets\" or ipsets = \"\"\"...\"\"\" (xgate check refuses the rules until then)\n",
            ipsets.join(", ")
        ));
    }
    if blocks.len() == 1 {
        out.push_str(&format!(
            "# {}\n",
            iptables::default_note(if blocks[0].2 == Family::V4 {
                Family::V6
            } else {
                Family::V4
            })
        ));
    }
    out
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
        let text = imp.v4.as_ref().unwrap().to_string();
        assert!(
            text.contains("-A POSTROUTING -o eth0 -j MASQUERADE"),
            "{text}"
        );
        assert!(text.contains(":FORWARD DROP [0:0]"), "{text}");
        let toml = to_toml(&imp, "fw.sh");
        assert!(
            toml.contains("[firewall]\nrules_v4 = \"\"\"\n*nat\n"),
            "{toml}"
        );
    }

    /// A refused continued command is refused whole: its later lines are
    /// never read as a command of their own (which here would be an
    /// unconditional ACCEPT).
    #[test]
    fn a_refused_continued_command_is_refused_whole() {
        let script = "iptables -P FORWARD DROP\n\
            iptables \\\n  -m policy --dir in --pol ipsec \\\n  --table filter --append FORWARD --jump ACCEPT\n";
        let imp = import(script, "fw.sh");
        assert_eq!(imp.skipped.len(), 1, "{:?}", imp.skipped);
        assert_eq!(imp.skipped[0].line, 2);
        assert!(imp.skipped[0].text.contains("--jump ACCEPT"));
        let text = imp.v4.as_ref().unwrap().to_string();
        assert!(!text.contains("-A FORWARD"), "{text}");
    }

    #[test]
    fn listings_are_ignored_and_a_case_label_is_not_a_table() {
        let imp = import(
            "iptables -P FORWARD DROP\niptables -nvL\nip6tables -L FORWARD -v\niptables -S\n\
             *)\niptables -L -F\n",
            "fw.sh",
        );
        let ignored: Vec<usize> = imp.ignored.iter().map(|s| s.line).collect();
        assert_eq!(ignored, vec![2, 3, 4]);
        assert!(
            imp.ignored
                .iter()
                .all(|s| s.reason.contains("lists the ruleset"))
        );
        assert_eq!(imp.skipped.len(), 2, "{:?}", imp.skipped);
        assert!(imp.skipped[0].reason.contains("shell case label"));
        assert_eq!(imp.skipped[1].line, 6, "-L -F flushes: not a listing");
    }

    #[test]
    fn shell_variables_are_expanded_and_unknown_ones_refused() {
        let script = "IPT=/sbin/iptables\nWAN=\"eth0\"\n\
            $IPT -t nat -A POSTROUTING -o ${WAN} -j MASQUERADE\n\
            $IPT -A FORWARD -i $LAN -j ACCEPT\n";
        let imp = import(script, "fw.sh");
        assert!(
            imp.v4
                .as_ref()
                .unwrap()
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
        let toml = to_toml_partial(&imp, "fw.sh", &imp.skipped);
        assert!(toml.contains("PARTIAL: 1 line(s)"), "{toml}");
        let v: toml::Value = toml::from_str(&toml).unwrap();
        let rules = v["firewall"]["rules_v4"].as_str().unwrap();
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

    /// `-P INPUT DROP` for iptables and `-P INPUT ACCEPT` for ip6tables
    /// stay each in its family (one ruleset for both would take the last,
    /// ACCEPT, for IPv4 too: fail open).
    #[test]
    fn a_branching_script_keeps_the_stricter_policy() {
        let text = "case \"$1\" in\nstart)\n  iptables -P INPUT DROP\n  iptables -A INPUT -p tcp --dport 22 -j ACCEPT\n  ;;\nstop)\n  iptables -P INPUT ACCEPT\n  ;;\nesac\n";
        let imp = import(text, "fw.sh");
        let v4 = imp.v4.expect("IPv4 rules");
        let input = v4.tables[0].chain("INPUT").unwrap();
        assert_eq!(input.policy, Some(crate::iptables::Policy::Drop));
        assert!(
            imp.skipped
                .iter()
                .any(|s| s.line == 7 && s.reason.contains("stricter DROP")),
            "{:?}",
            imp.skipped
        );
        // Without branches, the script's last word stands.
        let imp = import(
            "iptables -P INPUT DROP\niptables -P INPUT ACCEPT\n",
            "fw.sh",
        );
        let input = imp.v4.unwrap();
        assert_eq!(
            input.tables[0].chain("INPUT").unwrap().policy,
            Some(crate::iptables::Policy::Accept)
        );
    }

    #[test]
    fn iptables_and_ip6tables_policies_stay_apart() {
        let script = "iptables -P INPUT DROP\nip6tables -P INPUT ACCEPT\n";
        let imp = import(script, "fw.sh");
        assert!(imp.skipped.is_empty(), "{:?}", imp.skipped);
        let v4 = imp.v4.as_ref().unwrap().to_string();
        let v6 = imp.v6.as_ref().unwrap().to_string();
        assert!(v4.contains(":INPUT DROP"), "{v4}");
        assert!(v6.contains(":INPUT ACCEPT"), "{v6}");
    }

    #[test]
    fn an_ip6tables_save_file_is_recognised_by_its_addresses() {
        let save = "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n";
        let imp = import(save, "rules.v6");
        assert!(imp.v4.is_none() && imp.v6.is_some(), "{imp:?}");
        let save = "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n";
        let imp = import(save, "rules.v4");
        assert!(imp.v4.is_some() && imp.v6.is_none(), "{imp:?}");
        let imp = import_family("*filter\nCOMMIT\n", "r", Some(Family::V6));
        assert!(imp.v6.is_some() && imp.v4.is_none(), "{imp:?}");
        let toml = to_toml(&imp, "r");
        assert!(toml.contains("rules_v6 = "), "{toml}");
        assert!(toml.contains("# IPv4: no rules_v4"), "{toml}");
    }

    #[test]
    fn chains_xgate_never_runs_are_refused_with_checks_reason() {
        let save = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j MARK --set-mark 1\n\
                    :INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";
        let imp = import(save, "r");
        let lines: Vec<usize> = imp.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![3, 5], "{:?}", imp.skipped);
        assert!(
            imp.skipped[0].reason.contains("nat OUTPUT"),
            "{:?}",
            imp.skipped
        );
        assert!(
            imp.skipped[1].reason.contains("nat INPUT"),
            "{:?}",
            imp.skipped
        );
    }
}
