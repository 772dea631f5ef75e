//! Whole-ruleset checks, once every line is read: jumps to chains that
//! do not exist (or to built-in ones), loops of calls, and targets used in
//! chains they are not allowed in, directly or reached through user
//! chains. Loops and reachability come from the dataplane's
//! [`CallGraph`], the same walk its ruleset builder checks with.

use std::collections::{HashMap, HashSet};

use xgate_dataplane::filter::chains::{Call, CallGraph};

use super::super::model::*;
use super::{Parser, TARGET_NAMES};

impl Parser<'_> {
    /// Jumps to undefined chains, loops, and targets used in chains they are
    /// not allowed in (directly or reached through user chains).
    pub(super) fn check_graph(&mut self) {
        let mut errors = Vec::new();
        for t in &self.tables {
            check_table(t, &mut errors);
        }
        for (line, msg) in errors {
            self.err(line, msg);
        }
    }
}

/// The checks of [`Parser::check_graph`] for one table.
fn check_table(t: &Table, errors: &mut Vec<(usize, String)>) {
    let index: HashMap<&str, usize> = t
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let graph = calls(t, &index, errors);
    check_loops(t, &index, &graph, errors);
    check_targets(t, &index, &graph, errors);
}

/// The calls between the table's chains; a jump to a built-in or unknown
/// chain is an error.
fn calls(t: &Table, index: &HashMap<&str, usize>, errors: &mut Vec<(usize, String)>) -> CallGraph {
    let user: HashSet<&str> = t
        .chains
        .iter()
        .filter(|c| !c.builtin)
        .map(|c| c.name.as_str())
        .collect();
    let mut graph = CallGraph::new(t.chains.len());
    for (i, c) in t.chains.iter().enumerate() {
        for r in &c.rules {
            let (to, jump) = match &r.target {
                Target::Jump(to) => (to, true),
                Target::Goto(to) => (to, false),
                _ => continue,
            };
            if user.contains(to.as_str()) {
                let to = index[to.as_str()];
                graph.add(
                    i,
                    Call {
                        to,
                        jump,
                        line: r.line,
                    },
                );
            } else if t.kind.builtin_chains().contains(&to.as_str()) {
                errors.push((r.line, format!("cannot jump to built-in chain {to}")));
            } else {
                errors.push((r.line, unknown_jump(to, t, &user)));
            }
        }
    }
    graph
}

/// Targets of iptables and its extensions that xgate does not run: a
/// `-j` naming one is an unsupported target, never an unknown chain.
const OTHER_TARGETS: &[&str] = &[
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNMARK",
    "CONNSECMARK",
    "CT",
    "DNPT",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "MIRROR",
    "NETMAP",
    "NFQUEUE",
    "NOTRACK",
    "QUEUE",
    "RATEEST",
    "SAME",
    "SECMARK",
    "SET",
    "SNPT",
    "SYNPROXY",
    "TARPIT",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TPROXY",
    "TRACE",
    "TTL",
];

/// The error of a `-j`/`-g` naming neither a user chain nor a target
/// xgate runs: an iptables target it does not support is called a
/// target; anything else is a missing chain (with a suggestion only for
/// a near miss of the same length, a typo, never `LOGDROP` -> `LOG`).
fn unknown_jump(to: &str, t: &Table, user: &HashSet<&str>) -> String {
    let supported = TARGET_NAMES.join(", ");
    if OTHER_TARGETS.contains(&to.to_ascii_uppercase().as_str()) {
        return format!(
            "-j {to}: unsupported target {to} (xgate runs {supported} and user chains)"
        );
    }
    let mut known: Vec<&str> = user.iter().copied().collect();
    known.sort_unstable();
    let hint = suggest(to, &known)
        .or_else(|| suggest(to, &TARGET_NAMES).filter(|s| s.len() == to.len()))
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default();
    format!(
        "-j {to}: no chain {to} in table {} (declare it with -N {to} or :{to} -), \
         and no target xgate runs ({supported}){hint}",
        t.kind.name()
    )
}

/// The first loop of calls, walked from the user chains in name order.
fn check_loops(
    t: &Table,
    index: &HashMap<&str, usize>,
    graph: &CallGraph,
    errors: &mut Vec<(usize, String)>,
) {
    let mut starts: Vec<usize> = t
        .chains
        .iter()
        .filter(|c| !c.builtin)
        .map(|c| index[c.name.as_str()])
        .collect();
    starts.sort_unstable_by_key(|&i| t.chains[i].name.as_str());
    if let Err(l) = graph.depths(starts) {
        let cycle = l.cycle();
        let mut names: Vec<&str> = cycle
            .iter()
            .map(|(from, _)| t.chains[*from].name.as_str())
            .collect();
        names.push(names[0]);
        errors.push((
            cycle[0].1.line,
            format!("chain loop: {}", names.join(" -> ")),
        ));
    }
}

/// Targets used in chains they are not allowed in, directly or reached
/// through user chains.
fn check_targets(
    t: &Table,
    index: &HashMap<&str, usize>,
    graph: &CallGraph,
    errors: &mut Vec<(usize, String)>,
) {
    // The hooks each chain runs at.
    let mut reached: Vec<Vec<&str>> = vec![Vec::new(); t.chains.len()];
    for b in t.kind.builtin_chains() {
        let Some(&bi) = index.get(b) else { continue };
        for (c, hit) in graph.reachable(bi).into_iter().enumerate() {
            if hit {
                reached[c].push(b);
            }
        }
    }
    for (i, c) in t.chains.iter().enumerate() {
        let hooks: Vec<&str> = if c.builtin {
            vec![c.name.as_str()]
        } else {
            reached[i].clone()
        };
        for r in &c.rules {
            let Some((name, allowed)) = allowed_chains(&r.target) else {
                continue;
            };
            for h in &hooks {
                if !allowed.contains(h) {
                    let via = if c.builtin {
                        String::new()
                    } else {
                        format!(" (chain {} is reached from {h})", c.name)
                    };
                    errors.push((
                        r.line,
                        format!(
                            "target {name} is only allowed in {}, not in {h}{via}",
                            allowed.join("/")
                        ),
                    ));
                    break;
                }
            }
        }
    }
}

/// Built-in chains a target may be used from (the table is checked at parse time).
fn allowed_chains(t: &Target) -> Option<(&'static str, &'static [&'static str])> {
    match t {
        Target::Reject(_) => Some(("REJECT", &["INPUT", "FORWARD", "OUTPUT"])),
        Target::Dnat(_) => Some(("DNAT", &["PREROUTING", "OUTPUT"])),
        Target::Redirect { .. } => Some(("REDIRECT", &["PREROUTING", "OUTPUT"])),
        Target::Snat(_) => Some(("SNAT", &["POSTROUTING", "INPUT"])),
        Target::Masquerade { .. } => Some(("MASQUERADE", &["POSTROUTING", "INPUT"])),
        _ => None,
    }
}

fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let upper = word.to_ascii_uppercase();
    candidates
        .iter()
        .map(|c| (distance(&upper, &c.to_ascii_uppercase()), *c))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
