//! The nft printer (control/src/nft/print.rs) against the parser and the
//! real `nft`.
//!
//! For every corpus file (tests/corpus/nft/*.nft) and every case nft_parse.rs
//! accepts: parse -> apply -> print -> parse -> apply gives the same tables
//! (compared whole, locations left out), and printing those again gives
//! the same text. The printed text of each is accepted by `unshare -n nft
//! -c -f` (skipped with a printed reason where nft or a network namespace
//! is not available). Counters from the callback show in the rules.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use xgate_control::nft::print::{self, print_ruleset, print_tables};
use xgate_control::nft::state::{self, TableState};
use xgate_control::nft::{self, Element, Expr, MetaKey, Options, StmtKind, Value};

/// The accepted cases of nft_parse.rs, copied verbatim (an integration
/// test's private functions cannot be shared);
/// `the_cases_are_those_of_nft_parse` keeps the copy in step.
mod cases {
    #![allow(dead_code)]
    include!("nft_cases/accepted.rs");

    pub fn all() -> Vec<(&'static str, String)> {
        accepted()
    }
}

// ---------------------------------------------------------------- harness

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus rulesets (not SOURCES, not rejected/), by name.
fn corpus() -> Vec<PathBuf> {
    let dir = manifest().join("tests/corpus/nft");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "nft"))
        .collect();
    out.sort();
    out
}

/// Why nft cannot be run here, or `None` if it can.
fn nft_missing() -> Option<&'static str> {
    static WHY: OnceLock<Option<&'static str>> = OnceLock::new();
    *WHY.get_or_init(|| {
        if Command::new("nft").arg("--version").output().is_err() {
            return Some("nft is not installed");
        }
        match Command::new("unshare").args(["-n", "true"]).status() {
            Ok(s) if s.success() => None,
            _ => Some("cannot create a network namespace (unshare -n needs root)"),
        }
    })
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "xgate-nft-print-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `nft -c -f FILE` in a fresh network namespace, with a veth interface
/// made for each name of `ifaces` first (nft resolves `iif`/`oif` names
/// to indexes when it reads them).
fn nft_check(file: &Path, ifaces: &[String]) -> Result<(), String> {
    let mut script = String::from("set -e\n");
    for (i, n) in ifaces.iter().enumerate() {
        script.push_str(&format!(
            "ip link add '{n}' type veth peer name xgp{i} 2>/dev/null || true\n"
        ));
    }
    script.push_str("nft -c -f \"$1\"\n");
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script, "sh"])
        .arg(file)
        .output()
        .expect("run unshare");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The interface names matched with `iif`/`oif` (by index) anywhere in
/// the tables, but `lo`, which every namespace has.
fn iif_oif_names(tables: &[TableState]) -> Vec<String> {
    fn strings(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Const(c) => {
                if let Value::Str(s) = &c.value {
                    out.push(s.clone());
                }
            }
            Expr::Set(elems) => elems.iter().for_each(|x: &Element| strings(&x.key, out)),
            Expr::Concat(parts) | Expr::List(parts) => parts.iter().for_each(|p| strings(p, out)),
            _ => {}
        }
    }
    let by_index = |e: &Expr| matches!(e, Expr::Meta(MetaKey::Iif | MetaKey::Oif));
    let mut out = Vec::new();
    for t in tables {
        for c in &t.chains {
            for r in &c.rules {
                for s in &r.stmts {
                    match &s.kind {
                        StmtKind::Match(m) if by_index(&m.left) => strings(&m.right, &mut out),
                        StmtKind::VerdictMap { key, map } if by_index(key) => {
                            strings(map, &mut out)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    out.retain(|n| n != "lo" && !n.ends_with('*'));
    out.sort();
    out.dedup();
    out
}

/// `Debug` of the tables with every `Loc` left out: what must survive
/// printing and reading back.
fn without_locs(tables: &[TableState]) -> String {
    let s = format!("{tables:?}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("Loc { file: ") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(" }").expect("Loc's closing brace") + 2;
        out.push_str("Loc");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Parses and applies `text`.
fn tables_of(text: &str, file: &str) -> Result<Vec<TableState>, String> {
    let rs = nft::parse(text, file).map_err(|e| format!("parse: {e}"))?;
    state::apply(&rs).map_err(|e| format!("apply: {}:{}: {}", e.loc.line, e.loc.col, e.msg))
}

/// Prints `tables`, reads the text back, and checks that it gives the same
/// tables and prints the same; the printed text.
fn round_trip(tables: &[TableState]) -> Result<String, String> {
    let printed = print_tables(tables);
    let again = tables_of(&printed, "printed.nft")
        .map_err(|e| format!("the printed text does not read back: {e}\n{printed}"))?;
    let (a, b) = (without_locs(tables), without_locs(&again));
    if a != b {
        let at = a
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(a.len().min(b.len()), |((i, _), _)| i);
        let from = at.saturating_sub(200);
        return Err(format!(
            "the tables differ after printing and reading back\n  before: ...{}\n  after:  ...{}\n{printed}",
            &a[from..(at + 200).min(a.len())],
            &b[from..(at + 200).min(b.len())],
        ));
    }
    let printed2 = print_tables(&again);
    if printed2 != printed {
        return Err(format!(
            "printing the read-back tables gives other text:\n{printed}\n---\n{printed2}"
        ));
    }
    Ok(printed)
}

// ------------------------------------------------------------------ tests

#[test]
fn the_cases_are_those_of_nft_parse() {
    let parse = std::fs::read_to_string(manifest().join("tests/nft_parse.rs")).unwrap();
    let copy = std::fs::read_to_string(manifest().join("tests/nft_cases/accepted.rs")).unwrap();
    let start = parse.find("/// A chain of family").expect("start marker");
    let end = parse
        .find("/// Text nft refuses")
        .expect("end marker in nft_parse.rs");
    assert_eq!(
        parse[start..end].trim_end(),
        copy.trim_end(),
        "tests/nft_cases/accepted.rs is no longer a copy of nft_parse.rs's cases: copy \
         nft_parse.rs from '/// A chain of family' up to '/// Text nft refuses' again"
    );
}

#[test]
fn corpus_prints_and_reads_back() {
    let mut failures = Vec::new();
    let files = corpus();
    assert!(files.len() >= 20, "corpus files: {}", files.len());
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let tables = nft::parse_file(f, &Options::default())
            .map_err(|e| e.to_string())
            .and_then(|rs| state::apply(&rs).map_err(|e| e.msg));
        match tables {
            Ok(t) => {
                if let Err(e) = round_trip(&t) {
                    failures.push(format!("{name}: {e}"));
                }
            }
            Err(e) => failures.push(format!("{name}: does not read: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn accepted_cases_print_and_read_back() {
    let mut failures = Vec::new();
    let cases = cases::all();
    assert!(cases.len() > 100);
    for (name, text) in cases {
        match tables_of(&text, "case.nft") {
            Ok(t) => {
                if let Err(e) = round_trip(&t) {
                    failures.push(format!("{name}: {e}"));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Checks the printed text of each `(name, tables)` with nft; a failure
/// counts only where nft accepts the original (`orig`), else it is an
/// environment limit, printed.
fn nft_accepts_printed(test: &str, items: Vec<(String, PathBuf, Vec<TableState>)>) {
    if let Some(why) = nft_missing() {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let dir = temp_dir();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, (name, orig, tables)) in items.into_iter().enumerate() {
        let ifaces = iif_oif_names(&tables);
        let file = dir.join(format!("printed{i}.nft"));
        std::fs::write(&file, print_tables(&tables)).unwrap();
        match nft_check(&file, &ifaces) {
            Ok(()) => checked += 1,
            Err(e) => match nft_check(&orig, &ifaces) {
                Ok(()) => failures.push(format!(
                    "{name}: nft refuses the printed text: {e}\n{}",
                    print_tables(&tables)
                )),
                Err(o) => eprintln!(
                    "{test}: {name}: skipped: nft refuses the original here too ({})",
                    o.lines().next().unwrap_or("")
                ),
            },
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{test}: nft accepted {checked} printed rulesets");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn printed_corpus_is_accepted_by_nft() {
    let items = corpus()
        .into_iter()
        .map(|f| {
            let rs = nft::parse_file(&f, &Options::default()).unwrap();
            let t = state::apply(&rs).unwrap();
            (f.file_name().unwrap().to_string_lossy().into_owned(), f, t)
        })
        .collect();
    nft_accepts_printed("printed_corpus_is_accepted_by_nft", items);
}

#[test]
fn printed_cases_are_accepted_by_nft() {
    let dir = temp_dir();
    let items = cases::all()
        .into_iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let orig = dir.join(format!("case{i}.nft"));
            std::fs::write(&orig, &text).unwrap();
            (
                name.to_string(),
                orig,
                tables_of(&text, "case.nft").unwrap(),
            )
        })
        .collect();
    nft_accepts_printed("printed_cases_are_accepted_by_nft", items);
    let _ = std::fs::remove_dir_all(&dir);
}

const SHOWN: &str = r#"define LAN = 192.168.1.0/24
table inet filter {
	counter ssh-hits {
		packets 3 bytes 180
	}

	quota monthly {
		over 25 mbytes
	}

	ct helper ftp-standard {
		type "ftp" protocol tcp
		l3proto ip
	}

	set blocked {
		type ipv4_addr . inet_service
		flags interval,timeout
		timeout 1h
		counter
		elements = { 10.0.0.0/8 . 22 counter packets 0 bytes 0, 172.16.0.1-172.16.0.9 . 80 counter packets 2 bytes 120 timeout 30s comment "web" }
	}

	map ports {
		type inet_service : verdict
		elements = { 22 : jump ssh, 23 : drop }
	}

	chain input {
		type filter hook input priority filter - 10; policy drop;
		ct state established,related accept
		ip saddr . tcp dport @blocked counter drop
		tcp flags syn / fin,syn,rst,ack limit rate over 10/second burst 20 packets log prefix "flood: " level warn drop
		ip saddr $LAN tcp dport vmap @ports
		icmp type { echo-request, echo-reply } accept comment "ping"
		tcp flags & (syn | ack) == syn reject with tcp reset
		meta l4proto udp reject with icmpx type admin-prohibited
	}

	chain ssh {
		counter name "ssh-hits" accept
	}

	chain pre {
		type filter hook prerouting priority raw;
		tcp dport 21 ct helper set "ftp-standard"
	}
}
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat + 5;
		iifname "wan" tcp dport 8080 dnat to 192.168.1.10:80
		iifname "wan" meta mark set 0x2a
	}

	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan" ip saddr 192.168.1.0/24 masquerade random,persistent
		ip saddr 10.0.0.0/8 snat to 203.0.113.1-203.0.113.9
	}
}
"#;

/// The printed form itself: symbols, named priorities, quoting, sets,
/// concatenations, maps, NAT, log, limit, reject, comments.
#[test]
fn prints_as_nft_lists() {
    let tables = tables_of(SHOWN, "shown.nft").unwrap();
    let printed = print_tables(&tables);
    let want = SHOWN.replace("define LAN = 192.168.1.0/24\n", "").replace(
        "ip saddr . tcp dport @blocked counter drop",
        "ip saddr . tcp dport @blocked counter packets 0 bytes 0 drop",
    );
    let want = want.replace("ip saddr $LAN", "ip saddr 192.168.1.0/24");
    assert_eq!(printed, want);
    round_trip(&tables).unwrap();
    let dir = temp_dir();
    let file = dir.join("shown.nft");
    std::fs::write(&file, &printed).unwrap();
    match nft_missing() {
        Some(why) => eprintln!("prints_as_nft_lists: nft check skipped: {why}"),
        None => nft_check(&file, &[]).unwrap_or_else(|e| panic!("nft refuses: {e}\n{printed}")),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn counters_from_the_callback() {
    let tables = tables_of(SHOWN, "shown.nft").unwrap();
    let counters = |_: &TableState, c: &state::ChainState, i: usize| {
        (c.name == "input" || c.name == "postrouting")
            .then_some((10 * i as u64 + 1, 100 * i as u64 + 60))
    };
    let printed = print_ruleset(&tables, &counters);
    let lines: Vec<&str> = printed.lines().map(str::trim).collect();
    // Appended before the verdict.
    assert!(
        lines.contains(&"ct state established,related counter packets 1 bytes 60 accept"),
        "{printed}"
    );
    // In the rule's own counter statement.
    assert!(
        lines.contains(&"ip saddr . tcp dport @blocked counter packets 11 bytes 160 drop"),
        "{printed}"
    );
    // Before a verdict map, a reject, a NAT statement.
    assert!(
        lines.contains(
            &"ip saddr 192.168.1.0/24 counter packets 31 bytes 360 tcp dport vmap @ports"
        ),
        "{printed}"
    );
    assert!(
        lines.contains(
            &"meta l4proto udp counter packets 61 bytes 660 reject with icmpx type admin-prohibited"
        ),
        "{printed}"
    );
    assert!(
        lines.contains(&"oifname \"wan\" ip saddr 192.168.1.0/24 counter packets 1 bytes 60 masquerade random,persistent"),
        "{printed}"
    );
    // Chains the callback says nothing of print as written.
    assert!(
        lines.contains(&"counter name \"ssh-hits\" accept"),
        "{printed}"
    );
    assert!(
        lines.contains(&"iifname \"wan\" meta mark set 0x2a"),
        "{printed}"
    );
    // What is printed with counters reads back, with the counters.
    let again = tables_of(&printed, "counted.nft").unwrap();
    let input = again[0].chain("input").unwrap();
    assert_eq!(
        print::rule(&input.rules[0]),
        "ct state established,related counter packets 1 bytes 60 accept"
    );
}
