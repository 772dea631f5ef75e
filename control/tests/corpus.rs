//! The corpus of real rulesets (control/tests/corpus/, README.md there):
//! every file goes through `import-iptables` as the `xgate` binary runs it,
//! with and without `--partial`, and the partial output through `xgate
//! check`. What this asserts:
//!
//! (a) a non-partial import either succeeds (and what it prints passes
//!     check, without the partial warning) or fails with nothing printed;
//! (b) every `--partial` import passes check (import never prints what
//!     check refuses), warning exactly when lines were left out;
//! (c) the share of rule lines converted, per file and overall, is printed
//!     (`cargo test -p xgate-control --test corpus -- --nocapture`) with
//!     the refusal reasons counted by their first words, and the overall
//!     share must not fall below `MIN_SHARE_PERCENT`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use xgate_control::import::{self, Import, NOT_CONVERTED};
use xgate_control::iptables::{Family, IptablesRuleset};

/// The overall share of rule lines the importer converts today (36.6% on
/// 2026-12-04), rounded down to a whole percent: a floor, so a regression
/// fails. It should only rise: raise it whenever a new match, target or
/// command lifts the share the test prints (and record the new figure in
/// tests/corpus/README.md). Adding a corpus file changes it too.
const MIN_SHARE_PERCENT: u32 = 40;

/// Files whose import output (whole or `--partial`) check refuses today,
/// with the words of check's error: import bugs (import should refuse such
/// a line itself), reported and not fixed here. Each must still fail as
/// said, so that a fix shows here: then remove its entry.
const KNOWN_CHECK_FAILURES: &[(&str, &str)] = &[
    // Empty: ip6tables' `-p icmp` (protocol 1 in an IPv6 ruleset), the
    // one case found, is now legal in check too.
];

/// The words of check's error for a file of `KNOWN_CHECK_FAILURES`.
fn known(name: &str) -> Option<&'static str> {
    KNOWN_CHECK_FAILURES
        .iter()
        .find(|(f, _)| *f == name)
        .map(|(_, why)| *why)
}

fn corpus(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(sub)
}

/// The corpus files of `sub` (not SOURCES, README or the `rejected/` folder),
/// by name.
fn files(sub: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus(sub))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus(sub).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n != "SOURCES" && !n.starts_with("README")
        })
        .collect();
    out.sort();
    out
}

/// The family a user names for the file: `-6` for an ip6tables-save file
/// (`rules.v6`), else none (the importer's own guess), as the binary.
fn family_of(path: &Path) -> Option<Family> {
    let n = path.file_name().unwrap().to_string_lossy();
    (n.ends_with(".v6") || n.ends_with("-v6.sh") || n.ends_with(".rules6")).then_some(Family::V6)
}

/// What `xgate import-iptables FILE [--partial]` prints on stdout (None:
/// nothing) and whether it exits 0, following src/cli/import.rs.
struct Run {
    imp: Option<Import>,
    stdout: Option<String>,
    success: bool,
    /// The decode error (exit 2) when the file is not text.
    decode_error: Option<String>,
}

fn run_import(path: &Path, partial: bool) -> Run {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).unwrap();
    let text = match import::decode(&bytes, &name) {
        Ok(t) => t,
        Err(e) => {
            return Run {
                imp: None,
                stdout: None,
                success: false,
                decode_error: Some(e),
            };
        }
    };
    printed(
        import::import_family(&text, &name, family_of(path)),
        &name,
        partial,
    )
}

/// What the binary prints for an import, with or without `--partial`
/// (src/cli/import.rs): the block when nothing was refused, the partial
/// block when asked, else nothing.
fn printed(imp: Import, name: &str, partial: bool) -> Run {
    let success = imp.skipped.is_empty();
    let stdout = if success {
        Some(import::to_toml(&imp, name))
    } else if partial {
        Some(import::to_toml_partial(&imp, name, &imp.skipped))
    } else {
        None
    };
    Run {
        imp: Some(imp),
        stdout,
        success,
        decode_error: None,
    }
}

fn rulesets(imp: &Import) -> impl Iterator<Item = &IptablesRuleset> {
    imp.v4.iter().chain(imp.v6.iter())
}

/// The interfaces the imported rules name with `-i`/`-o` (a `+` wildcard
/// needs none).
fn interfaces(imp: &Import) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for rs in rulesets(imp) {
        for t in &rs.tables {
            for c in &t.chains {
                for r in &c.rules {
                    for i in [&r.matches.in_iface, &r.matches.out_iface]
                        .into_iter()
                        .flatten()
                    {
                        if !i.value.wildcard {
                            out.insert(i.value.name.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

/// The input lines that became at least one rule (`-s a,b` is one line and
/// two rules), counted per ruleset (a run's two saved rulesets number
/// their lines each from 1).
fn converted_lines(imp: &Import) -> usize {
    rulesets(imp)
        .map(|rs| {
            let mut lines = BTreeSet::new();
            for t in &rs.tables {
                for c in &t.chains {
                    lines.extend(c.rules.iter().map(|r| r.line));
                }
            }
            lines.len()
        })
        .sum()
}

/// A minimal config around a `[firewall]` block: one interface per name
/// the rules use, each on a device of its own with an IPv4 and an IPv6
/// address (so MASQUERADE out of it has an address).
fn config(block: &str, ifaces: &BTreeSet<String>) -> String {
    let mut s = String::new();
    for (i, name) in ifaces.iter().enumerate() {
        let (hi, lo) = (i / 250, i % 250 + 1);
        writeln!(
            s,
            "[[interface]]\nname = \"{name}\"\ndevice = \"xgc{i}\"\nmac = \"02:00:00:00:{hi:02x}:{lo:02x}\"\naddress = [\"10.{hi}.{lo}.1/24\", \"fd00:{hi}:{lo}::1/64\"]\n"
        )
        .unwrap();
    }
    s.push_str(block);
    s
}

/// `xgate check` on config text: Ok(the partial warning, if any) or the
/// errors it prints.
fn check(toml: &str) -> Result<Option<String>, String> {
    let cfg = xgate_control::parse(toml, "corpus.toml").map_err(|errs| {
        errs.iter()
            .map(|e| format!("{e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    xgate_control::replay::compile_for_replay(&cfg).map_err(|e| e.to_string())?;
    Ok(cfg
        .firewall
        .as_ref()
        .and_then(xgate_control::import::partial_warning))
}

/// A refusal reason by its first words, so that lines refused for the same
/// cause count together: the words up to the first that names something
/// (an option with its value for `-m`, `-j`, `-p`; a command; a quoted
/// word), trailing explanations dropped, and the parts that vary from
/// ruleset to ruleset (chain names, host names, shell words) replaced by a
/// description. Shell constructs are marked `shell:`: they are not rules.
fn reason_key(reason: &str) -> String {
    let r = reason.split(" (").next().unwrap_or(reason);
    let r = r.split("; ").next().unwrap_or(r);
    if r.starts_with("shell variable $") {
        return "shell variable $... not set by the script (a command using it)".into();
    }
    if let Some(cmd) = r.strip_suffix(" is not an iptables command") {
        return shell_key(cmd.trim_matches('`'));
    }
    if r.starts_with("-j ") && r.contains(": no chain ") {
        return "-j CHAIN: no such chain, and no target xgate runs".into();
    }
    if r.starts_with("no chain ") {
        return "no chain CHAIN in table (never declared, or its -N was refused)".into();
    }
    let quoted = |prefix: &str| {
        r.strip_prefix(prefix)
            .map(|v| v.trim_matches('"').to_owned())
    };
    if let Some(v) = quoted("invalid address ") {
        return if v
            .chars()
            .any(|c| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit())
        {
            "invalid address: a host name".into()
        } else {
            format!("invalid address {v:?}")
        };
    }
    if let Some(v) = quoted("invalid port ") {
        return if v.contains(',') {
            "invalid port: a list without -m multiport".into()
        } else if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !v.chars().all(|c| c.is_ascii_digit())
        {
            "invalid port: a service name".into()
        } else {
            format!("invalid port {v:?}")
        };
    }
    if r.starts_with("chain :") && r.ends_with(" before any table header") {
        return "chain :CHAIN before any table header".into();
    }
    if r.starts_with("address lists") {
        return "address lists (-s/-d A,B) are not supported".into();
    }
    if let Some(t) = r.strip_prefix("unsupported table ")
        && t.trim_matches('"').len() <= 1
    {
        return format!("unsupported table {t} (shell `*)` read as a table header)");
    }
    let words: Vec<&str> = r.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        out.push(w);
        i += 1;
        if matches!(w, "-m" | "-j" | "-p" | "-t" | "--mode") && i < words.len() {
            out.push(words[i]);
            break;
        }
        let names = w.starts_with('-') || w.starts_with(['`', '"', '\'', ':']);
        if (names && out.len() > 1) || out.len() == 8 || w.ends_with(',') {
            break;
        }
    }
    out.join(" ").trim_end_matches(',').to_owned()
}

/// A shell line's first word, by kind.
fn shell_key(word: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
        "{", "}", ";;", "function", "local", "return", "export", "source", ".",
    ];
    const PROGRAMS: &[&str] = &[
        "echo",
        "printf",
        "modprobe",
        "rmmod",
        "cd",
        "sleep",
        "ip",
        "tc",
        "ipset",
        "ebtables",
        "iptables-restore",
        "iptables-save",
        "logger",
        "test",
        "[",
        "[[",
        "cat",
        "grep",
    ];
    if word.ends_with("()") {
        "shell: function definition".into()
    } else if word.contains('=') {
        "shell: assignment with spaces or quotes".into()
    } else if word.ends_with(')') {
        "shell: case label".into()
    } else if KEYWORDS.contains(&word) {
        format!("shell: `{word}`")
    } else if PROGRAMS.contains(&word) {
        format!("shell: command `{word}`")
    } else if word.contains("ipchains") || word.contains("ipfw") || word.contains("nft") {
        format!("shell: other firewall `{word}`")
    } else {
        "shell: call of a script function or other program".into()
    }
}

struct FileResult {
    name: String,
    converted: usize,
    refused: usize,
    ignored: usize,
    whole: bool,
}

/// Imports every file of the corpus, asserts (a) and (b), and returns the
/// per-file counts and the refused lines' reasons.
fn measure(paths: &[PathBuf]) -> (Vec<FileResult>, BTreeMap<String, usize>, Vec<String>) {
    measure_with(paths, |p| (run_import(p, false), run_import(p, true)))
}

/// [`measure`] with the import and the `--partial` import of a file made
/// by `import`.
fn measure_with(
    paths: &[PathBuf],
    import: impl Fn(&Path) -> (Run, Run),
) -> (Vec<FileResult>, BTreeMap<String, usize>, Vec<String>) {
    let mut results = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (whole, partial) = import(path);
        if let Some(e) = &whole.decode_error {
            // Exit 2, nothing printed, with or without --partial.
            assert!(whole.stdout.is_none() && partial.stdout.is_none());
            // A corpus file must be text the import can read.
            failures.push(format!("{name}: not text: {e}"));
            continue;
        }
        let imp = partial.imp.as_ref().unwrap();
        let ifaces = interfaces(imp);
        // (a) Success prints a block check accepts as it is; failure
        // prints nothing.
        if whole.success {
            let out = whole.stdout.as_ref().expect("success prints the block");
            assert_eq!(
                Some(out),
                partial.stdout.as_ref(),
                "{name}: --partial differs on a whole import"
            );
            match (check(&config(out, &ifaces)), known(&name)) {
                (Ok(None), None) => {}
                (Ok(Some(w)), _) => {
                    failures.push(format!("{name}: whole import, yet check warns: {w}"))
                }
                (Err(e), Some(why)) if e.contains(why) => {
                    println!("{name}: known import bug, check refuses the whole import: {why}");
                }
                (Ok(None), Some(why)) => failures.push(format!(
                    "{name}: check now accepts the whole import (known failure {why:?} fixed?): \
                     remove it from KNOWN_CHECK_FAILURES"
                )),
                (Err(e), _) => {
                    failures.push(format!("{name}: whole import refused by check:\n{e}"))
                }
            }
        } else {
            assert!(
                whole.stdout.is_none(),
                "{name}: a failed import printed something"
            );
        }
        // (b) The partial block passes check, warning iff lines are out.
        let out = partial.stdout.as_ref().expect("--partial always prints");
        let comments = out
            .lines()
            .filter(|l| l.trim_start().starts_with(NOT_CONVERTED))
            .count();
        assert_eq!(
            comments,
            imp.skipped.len(),
            "{name}: a refused line is missing from the partial block"
        );
        match (check(&config(out, &ifaces)), known(&name)) {
            (Err(e), Some(why)) if e.contains(why) => {
                println!("{name}: known import bug, check refuses the partial output: {why}");
            }
            (Ok(_), Some(why)) => failures.push(format!(
                "{name}: check now accepts the partial import (known failure {why:?} fixed?): \
                 remove it from KNOWN_CHECK_FAILURES"
            )),
            (Ok(w), None) => {
                let partial = !imp.skipped.is_empty();
                if w.is_some() != partial {
                    failures.push(format!(
                        "{name}: check's partial warning {:?} with {} refused line(s)",
                        w.is_some(),
                        imp.skipped.len()
                    ));
                }
            }
            (Err(e), _) => failures.push(format!(
                "{name}: partial import refused by check:\n{e}\n--- config ---\n{}",
                config(out, &ifaces)
            )),
        }
        for s in &imp.skipped {
            *reasons.entry(reason_key(&s.reason)).or_default() += 1;
            if std::env::var_os("CORPUS_VERBOSE").is_some() {
                println!("{name}:{}: {}", s.line, s.reason);
            }
        }
        results.push(FileResult {
            name,
            converted: converted_lines(imp),
            refused: imp.skipped.len(),
            ignored: imp.ignored.len(),
            whole: whole.success,
        });
    }
    (results, reasons, failures)
}

fn percent(part: usize, all: usize) -> f64 {
    if all == 0 {
        100.0
    } else {
        100.0 * part as f64 / all as f64
    }
}

/// The table (c) and the reasons, as the test prints them.
fn report(results: &[FileResult], reasons: &BTreeMap<String, usize>) -> (String, f64) {
    let mut s = String::new();
    let w = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        s,
        "{:<w$}  {:>9}  {:>7}  {:>7}  {:>6}  whole",
        "file", "converted", "refused", "ignored", "share"
    )
    .unwrap();
    let (mut conv, mut refd, mut ign) = (0, 0, 0);
    for r in results {
        writeln!(
            s,
            "{:<w$}  {:>9}  {:>7}  {:>7}  {:>5.1}%  {}",
            r.name,
            r.converted,
            r.refused,
            r.ignored,
            percent(r.converted, r.converted + r.refused),
            if r.whole { "yes" } else { "no" }
        )
        .unwrap();
        conv += r.converted;
        refd += r.refused;
        ign += r.ignored;
    }
    let share = percent(conv, conv + refd);
    let whole = results.iter().filter(|r| r.whole).count();
    writeln!(
        s,
        "{:<w$}  {:>9}  {:>7}  {:>7}  {:>5.1}%  {whole}/{}",
        "ALL",
        conv,
        refd,
        ign,
        share,
        results.len()
    )
    .unwrap();
    let shell: usize = reasons
        .iter()
        .filter(|(k, _)| k.starts_with("shell:"))
        .map(|(_, n)| n)
        .sum();
    writeln!(
        s,
        "\nshare of rule lines converted: {share:.1}% ({conv} of {}); leaving out the {shell} \
         refused lines that are shell constructs, not iptables commands: {:.1}%",
        conv + refd,
        percent(conv, conv + refd - shell)
    )
    .unwrap();
    let mut shares: Vec<f64> = results
        .iter()
        .map(|r| percent(r.converted, r.converted + r.refused))
        .collect();
    shares.sort_by(f64::total_cmp);
    if let Some(median) = shares.get(shares.len() / 2) {
        writeln!(s, "median share of a file: {median:.1}%").unwrap();
    }
    let mut by_count: Vec<(&String, &usize)> = reasons.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    writeln!(s, "\nrefused lines by reason ({refd} in all):").unwrap();
    for (k, n) in by_count {
        writeln!(s, "{n:>6}  {k}").unwrap();
    }
    (s, share)
}

#[test]
fn iptables_corpus_imports_and_checks() {
    let paths = files("iptables");
    assert!(paths.len() >= 25, "the corpus has {} files", paths.len());
    let (results, reasons, failures) = measure(&paths);
    let (table, share) = report(&results, &reasons);
    println!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        share >= f64::from(MIN_SHARE_PERCENT),
        "the overall share of converted rule lines fell to {share:.1}% (floor {MIN_SHARE_PERCENT}%)"
    );
}

/// A shell script (rather than a saved ruleset): run by `import-iptables
/// --run` in [`iptables_corpus_scripts_run_in_the_sandbox`].
fn is_script(path: &Path) -> bool {
    let n = path.file_name().unwrap().to_string_lossy();
    n.ends_with(".sh") || n.contains(".rc.firewall")
}

/// The share of rule lines converted over the whole corpus when each
/// script is run in the sandbox (`--run start`) and each saved ruleset is
/// read (90.1%, 693 of 769 lines, on 2026-12-06), rounded down: a floor
/// that should rise.
const MIN_RUN_SHARE_PERCENT: u32 = 90;

/// `import-iptables --run FILE start` as the binary does it: one run in
/// the sandbox gives both the whole and the `--partial` result.
fn run_in_sandbox(path: &Path) -> (Run, Run) {
    let name = path.display().to_string();
    let run = import::sandbox::run_script(
        path,
        &["start".to_string()],
        std::time::Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{name}: the sandbox failed: {e}"));
    let imp = run.import;
    (
        printed(imp.clone(), &name, false),
        printed(imp, &name, true),
    )
}

/// Whether this process may make namespaces (CI runs as root).
fn can_sandbox() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "--mount", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/usr/sbin/xtables-nft-multi").exists()
}

/// The corpus's scripts run in the sandbox (`import-iptables --run FILE
/// start`), the saved rulesets read as before: (a) and (b) hold for every
/// run too, and the share over the whole corpus is printed with a floor.
#[test]
fn iptables_corpus_scripts_run_in_the_sandbox() {
    if !can_sandbox() {
        println!("skipped: no network and mount namespaces here (not root) or no iptables-nft");
        return;
    }
    let paths = files("iptables");
    let (scripts, saved): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.into_iter().partition(|p| is_script(p));
    assert!(scripts.len() >= 5, "{} scripts", scripts.len());
    let (mut results, mut reasons, mut failures) = measure_with(&scripts, run_in_sandbox);
    println!("the scripts, run:\n{}", report(&results, &reasons).0);
    let (r, k, f) = measure(&saved);
    results.extend(r);
    for (key, n) in k {
        *reasons.entry(key).or_default() += n;
    }
    failures.extend(f);
    let (table, share) = report(&results, &reasons);
    println!("the whole corpus, scripts run:\n{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        share >= f64::from(MIN_RUN_SHARE_PERCENT),
        "the share of converted rule lines, scripts run, fell to {share:.1}% (floor {MIN_RUN_SHARE_PERCENT}%)"
    );
}

/// The share of nftables corpus files that run whole (91.3%, 21 of 23, on
/// 2026-12-05), rounded down: a floor that should only rise.
const NFT_MIN_SHARE_PERCENT: u32 = 91;

/// The share of the nft corpus's rules check accepts (99.1%, 320 of 323, on
/// 2026-12-05; rules of refused files
/// minus one per error), rounded down: a floor.
const NFT_MIN_RULE_SHARE_PERCENT: u32 = 99;

/// Interface names an nft ruleset compares `iif`/`oif`/`iifname`/`oifname`
/// with (wildcards as one matching name; `lo` left out: xgate has none).
fn nft_interfaces(tables: &[xgate_control::nft::state::TableState]) -> BTreeSet<String> {
    use xgate_control::nft::{Const, Expr, MetaKey, StmtKind, Value};
    fn strings(e: &Expr, sets: &[xgate_control::nft::Set], out: &mut BTreeSet<String>) {
        match e {
            Expr::Const(Const {
                value: Value::Str(s),
                ..
            }) => {
                let n = s.trim_end_matches('*');
                let n = if s.ends_with('*') {
                    format!("{n}0")
                } else {
                    n.to_string()
                };
                if n != "lo" && !n.is_empty() && n.len() <= 15 {
                    out.insert(n);
                }
            }
            Expr::Set(els) => els.iter().for_each(|el| strings(&el.key, sets, out)),
            Expr::SetRef(name) => {
                if let Some(s) = sets.iter().find(|s| &s.name == name) {
                    s.elements.iter().for_each(|el| strings(&el.key, sets, out));
                }
            }
            Expr::Concat(parts) => parts.iter().for_each(|p| strings(p, sets, out)),
            _ => {}
        }
    }
    let is_if = |e: &Expr| {
        matches!(
            e,
            Expr::Meta(MetaKey::Iif | MetaKey::Oif | MetaKey::Iifname | MetaKey::Oifname)
        )
    };
    let mut out = BTreeSet::new();
    for t in tables {
        for c in &t.chains {
            for r in &c.rules {
                for st in &r.stmts {
                    match &st.kind {
                        StmtKind::Match(m) if is_if(&m.left) => {
                            strings(&m.right, &t.sets, &mut out)
                        }
                        StmtKind::VerdictMap { key, map } if is_if(key) => {
                            strings(map, &t.sets, &mut out)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

/// The nftables corpus: each file given to a config as `nft_file`, with
/// the interfaces its rules name, through check. nft rulesets run whole
/// or not at all (no partial form): what is measured is the share of
/// files that run, and the reasons of the others, counted. Every refusal
/// must name the file's line and column.
#[test]
fn nft_corpus_checks() {
    let paths = files("nft");
    assert!(paths.len() >= 20, "the corpus has {} files", paths.len());
    let mut ok = 0;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut table = String::new();
    // Rules over all files, and rules check refused (each error names one).
    let (mut rules, mut refused) = (0usize, 0usize);
    for p in &paths {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let opts = xgate_control::nft::Options {
            include_path: vec![p.parent().unwrap().to_path_buf()],
            includes: true,
        };
        let ifaces = match xgate_control::nft::parse_file(p, &opts)
            .map_err(|e| e.to_string())
            .and_then(|rs| xgate_control::nft::state::apply(&rs).map_err(|e| e.msg))
        {
            Ok(tables) => {
                rules += tables
                    .iter()
                    .flat_map(|t| &t.chains)
                    .map(|c| c.rules.len())
                    .sum::<usize>();
                nft_interfaces(&tables)
            }
            Err(e) => {
                rules += 1;
                refused += 1;
                let _ = writeln!(table, "{name:<42} parse: {e}");
                *reasons
                    .entry(format!("parse: {}", e.split(": ").last().unwrap_or(&e)))
                    .or_default() += 1;
                continue;
            }
        };
        let block = format!("[firewall]\nnft_file = {:?}\n", p.display().to_string());
        match check(&config(&block, &ifaces)) {
            Ok(_) => {
                ok += 1;
                let _ = writeln!(table, "{name:<42} runs");
            }
            Err(e) => {
                refused += e.lines().count().max(1);
                let first = e.lines().next().unwrap_or("").to_string();
                assert!(
                    first.contains(&format!("{}:", p.display())) || first.contains("corpus.toml:"),
                    "{name}: the error names no line: {first}"
                );
                let msg = first.split(": ").skip(2).collect::<Vec<_>>().join(": ");
                let msg = msg.trim_start_matches(|c: char| c != ':' && !c.is_alphabetic());
                let key: String = msg
                    .trim_start_matches("column ")
                    .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == ' ')
                    .split(" (")
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(70)
                    .collect();
                *reasons.entry(key).or_default() += e.lines().count().max(1);
                let _ = writeln!(table, "{name:<42} refused: {first}");
            }
        }
    }
    let share = percent(ok, paths.len());
    let rule_share = percent(rules.saturating_sub(refused), rules);
    println!(
        "{table}\n{ok} of {} nft files run whole ({share:.1}%); {rule_share:.1}% of their {rules} rules pass check\nrefusals:",
        paths.len()
    );
    let mut by_count: Vec<_> = reasons.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (r, n) in by_count {
        println!("{n:>5}  {r}");
    }
    assert!(
        rule_share >= f64::from(NFT_MIN_RULE_SHARE_PERCENT),
        "the share of nft rules check accepts fell to {rule_share:.1}% (floor {NFT_MIN_RULE_SHARE_PERCENT}%)"
    );
    assert!(
        share >= f64::from(NFT_MIN_SHARE_PERCENT),
        "the share of nft files that run fell to {share:.1}% (floor {NFT_MIN_SHARE_PERCENT}%)"
    );
}
