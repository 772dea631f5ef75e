//! iptables-save / iptables-script text -> [`IptablesRuleset`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::lex::{logical_lines, split_words};
use super::model::*;
use crate::config::ConfigError;

/// Longest chain name iptables accepts.
const MAX_CHAIN_NAME: usize = 28;
/// Longest interface name (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
const MAX_COMMENT: usize = 256;
const MAX_LOG_PREFIX: usize = 29;
const MAX_MULTIPORT: usize = 15;

const TARGET_NAMES: [&str; 10] = [
    "ACCEPT",
    "DROP",
    "RETURN",
    "REJECT",
    "LOG",
    "MARK",
    "MASQUERADE",
    "SNAT",
    "DNAT",
    "REDIRECT",
];

pub(crate) fn parse_ruleset(
    text: &str,
    file: &str,
    first_line: usize,
    field: &str,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        field,
        errors: Vec::new(),
        tables: Vec::new(),
        block: None,
        blocks_seen: HashSet::new(),
    };
    for ll in logical_lines(text) {
        let line = first_line + ll.index;
        if let Err(msg) = p.line(&ll.text, line) {
            p.err(line, msg);
        }
    }
    if let Some(b) = p.block.take() {
        p.err(
            b.header_line,
            format!("table {} is not terminated by COMMIT", b.kind.name()),
        );
    }
    p.check_graph();
    if p.errors.is_empty() {
        Ok(IptablesRuleset { tables: p.tables })
    } else {
        p.errors.sort_by_key(|e| e.line);
        Err(p.errors)
    }
}

struct Block {
    kind: TableKind,
    header_line: usize,
    /// Chains declared with `:NAME` in this block.
    declared: HashSet<String>,
}

struct Parser<'a> {
    file: &'a str,
    field: &'a str,
    errors: Vec<ConfigError>,
    tables: Vec<Table>,
    block: Option<Block>,
    blocks_seen: HashSet<TableKind>,
}

type R<T> = Result<T, String>;

enum Command {
    Append(String),
    Insert(String, usize),
    NewChain(String),
    Policy(String, String),
}

impl Parser<'_> {
    fn err(&mut self, line: usize, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, line, self.field, message));
    }

    fn table_mut(&mut self, kind: TableKind) -> &mut Table {
        let idx = match self.tables.iter().position(|t| t.kind == kind) {
            Some(i) => i,
            None => {
                self.tables.push(Table::new(kind));
                self.tables.len() - 1
            }
        };
        &mut self.tables[idx]
    }

    fn line(&mut self, text: &str, line: usize) -> R<()> {
        let mut words = split_words(text)?;
        if words.is_empty() {
            return Ok(());
        }
        let first = words[0].as_str();
        if let Some(name) = first.strip_prefix('*') {
            if words.len() > 1 {
                return Err(format!("unexpected {:?} after table header", words[1]));
            }
            let kind = TableKind::from_name(name).ok_or_else(|| {
                format!("unsupported table {name:?} (supported: filter, nat, mangle)")
            })?;
            if let Some(b) = self.block.take() {
                self.err(
                    b.header_line,
                    format!("table {} is not terminated by COMMIT", b.kind.name()),
                );
            }
            if !self.blocks_seen.insert(kind) {
                return Err(format!("table {name} appears twice"));
            }
            self.table_mut(kind);
            self.block = Some(Block {
                kind,
                header_line: line,
                declared: HashSet::new(),
            });
            return Ok(());
        }
        if first == "COMMIT" {
            if words.len() > 1 {
                return Err(format!("unexpected {:?} after COMMIT", words[1]));
            }
            return match self.block.take() {
                Some(_) => Ok(()),
                None => Err("COMMIT without a table header".into()),
            };
        }
        if let Some(name) = first.strip_prefix(':') {
            return self.chain_decl(name, &words[1..]);
        }
        // Optional `[pkts:bytes]` counters before a rule.
        let mut counters = Counters::default();
        if first.starts_with('[') {
            counters = parse_counters(first)?;
            words.remove(0);
        }
        // Shell-script form: `iptables -A ...`; the table defaults to filter.
        let mut script = false;
        if let Some(w) = words.first() {
            let base = w.rsplit('/').next().unwrap_or(w);
            if base == "iptables" || base == "ip6tables" {
                script = true;
                words.remove(0);
            }
        }
        if words.is_empty() {
            return Err("missing command (-A, -I, -N or -P)".into());
        }
        self.command(&words, line, counters, script)
    }

    fn chain_decl(&mut self, name: &str, rest: &[String]) -> R<()> {
        let Some(block) = &self.block else {
            return Err(format!("chain :{name} before any table header"));
        };
        let kind = block.kind;
        let (policy, counters) = match rest {
            [p] => (p.as_str(), Counters::default()),
            [p, c] => (p.as_str(), parse_counters(c)?),
            [] => return Err(format!("chain :{name} needs a policy (ACCEPT, DROP or -)")),
            _ => return Err(format!("unexpected {:?} after chain :{name}", rest[2])),
        };
        let builtin = kind.builtin_chains().contains(&name);
        let block = self.block.as_mut().expect("checked");
        if !block.declared.insert(name.to_string()) {
            return Err(format!("duplicate chain definition :{name}"));
        }
        if builtin {
            let policy = parse_policy(policy).ok_or_else(|| {
                format!("built-in chain {name} needs policy ACCEPT or DROP, not {policy:?}")
            })?;
            let table = self.table_mut(kind);
            let chain = table
                .chains
                .iter_mut()
                .find(|c| c.name == name)
                .expect("built-in");
            chain.policy = Some(policy);
            chain.counters = counters;
            Ok(())
        } else {
            if policy != "-" {
                return Err(format!(
                    "user chain {name} cannot have a policy (write :{name} -)"
                ));
            }
            check_chain_name(name, kind)?;
            let table = self.table_mut(kind);
            if table.chain(name).is_some() {
                return Err(format!("duplicate chain definition :{name}"));
            }
            table.chains.push(Chain {
                name: name.to_string(),
                builtin: false,
                policy: None,
                counters,
                rules: Vec::new(),
            });
            Ok(())
        }
    }

    fn command(
        &mut self,
        words: &[String],
        line: usize,
        counters: Counters,
        script: bool,
    ) -> R<()> {
        let mut table: Option<TableKind> = None;
        let mut command: Option<Command> = None;
        let mut rest: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let arg = |i: &mut usize| -> R<String> {
                *i += 1;
                words
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| format!("option {w} needs a value"))
            };
            let cmd = match w {
                "-t" | "--table" => {
                    let name = arg(&mut i)?;
                    if table.is_some() {
                        return Err("option -t given twice".into());
                    }
                    table = Some(TableKind::from_name(&name).ok_or_else(|| {
                        format!("unsupported table {name:?} (supported: filter, nat, mangle)")
                    })?);
                    None
                }
                "-A" | "--append" => Some(Command::Append(arg(&mut i)?)),
                "-N" | "--new-chain" => Some(Command::NewChain(arg(&mut i)?)),
                "-P" | "--policy" => {
                    let c = arg(&mut i)?;
                    Some(Command::Policy(c, arg(&mut i)?))
                }
                "-I" | "--insert" => {
                    let c = arg(&mut i)?;
                    let mut pos = 1;
                    if let Some(n) = words
                        .get(i + 1)
                        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    {
                        pos = n
                            .parse::<usize>()
                            .ok()
                            .filter(|&p| p >= 1)
                            .ok_or_else(|| format!("invalid rule number {n:?} for -I"))?;
                        i += 1;
                    }
                    Some(Command::Insert(c, pos))
                }
                _ => {
                    rest.push(words[i].clone());
                    None
                }
            };
            if let Some(c) = cmd {
                if command.is_some() {
                    return Err(format!("only one command per line ({w} after another)"));
                }
                command = Some(c);
            }
            i += 1;
        }
        let Some(command) = command else {
            return match rest.first() {
                Some(w) if w.starts_with('-') && w.len() == 2 => {
                    Err(format!("unsupported command {w}"))
                }
                Some(w) => Err(format!("unexpected {w:?} (expected -A, -I, -N or -P)")),
                None => Err("missing command (-A, -I, -N or -P)".into()),
            };
        };
        let kind = match (table, &self.block) {
            (Some(t), Some(b)) if t != b.kind => {
                return Err(format!(
                    "-t {} inside *{} (missing COMMIT?)",
                    t.name(),
                    b.kind.name()
                ));
            }
            (Some(t), _) => t,
            (None, Some(b)) => b.kind,
            (None, None) if script => TableKind::Filter,
            (None, None) => {
                return Err("rule before any table header (*filter, *nat, *mangle)".into());
            }
        };
        match command {
            Command::NewChain(name) => {
                if let Some(w) = rest.first() {
                    return Err(format!("unexpected {w:?} after -N {name}"));
                }
                check_chain_name(&name, kind)?;
                let t = self.table_mut(kind);
                if t.chain(&name).is_some() {
                    return Err(format!("duplicate chain definition -N {name}"));
                }
                t.chains.push(Chain {
                    name,
                    builtin: false,
                    policy: None,
                    counters: Counters::default(),
                    rules: Vec::new(),
                });
                Ok(())
            }
            Command::Policy(name, policy) => {
                if let Some(w) = rest.first() {
                    return Err(format!("unexpected {w:?} after -P {name} {policy}"));
                }
                let p = parse_policy(&policy)
                    .ok_or_else(|| format!("policy must be ACCEPT or DROP, not {policy:?}"))?;
                let t = self.table_mut(kind);
                match t.chains.iter_mut().find(|c| c.name == name && c.builtin) {
                    Some(c) => {
                        c.policy = Some(p);
                        Ok(())
                    }
                    None => Err(format!(
                        "-P needs a built-in chain of table {}, not {name:?}",
                        kind.name()
                    )),
                }
            }
            Command::Append(chain) | Command::Insert(chain, _)
                if self.table_mut(kind).chain(&chain).is_none() =>
            {
                Err(format!(
                    "no chain {chain} in table {} (declare it with -N {chain} or :{chain} -)",
                    kind.name()
                ))
            }
            Command::Append(chain) => {
                let rule = parse_rule(&rest, kind, line, counters)?;
                let t = self.table_mut(kind);
                let c = t
                    .chains
                    .iter_mut()
                    .find(|c| c.name == chain)
                    .expect("exists");
                c.rules.push(rule);
                Ok(())
            }
            Command::Insert(chain, pos) => {
                let rule = parse_rule(&rest, kind, line, counters)?;
                let t = self.table_mut(kind);
                let c = t
                    .chains
                    .iter_mut()
                    .find(|c| c.name == chain)
                    .expect("exists");
                if pos > c.rules.len() + 1 {
                    return Err(format!(
                        "-I {chain} {pos}: index too big (chain has {} rules)",
                        c.rules.len()
                    ));
                }
                c.rules.insert(pos - 1, rule);
                Ok(())
            }
        }
    }

    /// Jumps to undefined chains, loops, and targets used in chains they are
    /// not allowed in (directly or reached through user chains).
    fn check_graph(&mut self) {
        let mut errors = Vec::new();
        for t in &self.tables {
            let user: HashSet<&str> = t
                .chains
                .iter()
                .filter(|c| !c.builtin)
                .map(|c| c.name.as_str())
                .collect();
            let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
            for c in &t.chains {
                for r in &c.rules {
                    let (Target::Jump(to) | Target::Goto(to)) = &r.target else {
                        continue;
                    };
                    if user.contains(to.as_str()) {
                        edges.entry(c.name.as_str()).or_default().push(to.as_str());
                    } else if t.kind.builtin_chains().contains(&to.as_str()) {
                        errors.push((r.line, format!("cannot jump to built-in chain {to}")));
                    } else {
                        let known: Vec<&str> = TARGET_NAMES
                            .iter()
                            .copied()
                            .chain(user.iter().copied())
                            .collect();
                        let hint = match suggest(to, &known) {
                            Some(s) => format!(" (did you mean {s}?)"),
                            None => String::new(),
                        };
                        errors.push((
                            r.line,
                            format!(
                                "undefined chain or unsupported target {to} in table {}{hint}",
                                t.kind.name()
                            ),
                        ));
                    }
                }
            }
            // Reachability from each built-in chain; loops.
            let mut reached: HashMap<&str, Vec<&str>> = HashMap::new();
            for b in t.kind.builtin_chains() {
                let mut stack = vec![*b];
                let mut seen = HashSet::new();
                while let Some(c) = stack.pop() {
                    if !seen.insert(c) {
                        continue;
                    }
                    reached.entry(c).or_default().push(b);
                    stack.extend(edges.get(c).into_iter().flatten().copied());
                }
            }
            if let Some(cycle) = find_cycle(&edges, &user) {
                let line = t
                    .chain(cycle[0])
                    .and_then(|c| {
                        c.rules.iter().find(|r| {
                            matches!(&r.target, Target::Jump(x) | Target::Goto(x) if x == cycle[1])
                        })
                    })
                    .map(|r| r.line)
                    .unwrap_or(0);
                errors.push((line, format!("chain loop: {}", cycle.join(" -> "))));
            }
            for c in &t.chains {
                let hooks: Vec<&str> = if c.builtin {
                    vec![c.name.as_str()]
                } else {
                    reached.get(c.name.as_str()).cloned().unwrap_or_default()
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
        for (line, msg) in errors {
            self.err(line, msg);
        }
    }
}

fn find_cycle<'a>(
    edges: &HashMap<&'a str, Vec<&'a str>>,
    user: &HashSet<&'a str>,
) -> Option<Vec<&'a str>> {
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut names: Vec<&str> = user.iter().copied().collect();
    names.sort_unstable();
    fn dfs<'a>(
        n: &'a str,
        edges: &HashMap<&'a str, Vec<&'a str>>,
        state: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        state.insert(n, 1);
        path.push(n);
        for &m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|&x| x == m).unwrap_or(0);
                    let mut cyc = path[start..].to_vec();
                    cyc.push(m);
                    return Some(cyc);
                }
                0 => {
                    if let Some(c) = dfs(m, edges, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    for n in names {
        if state.get(n).copied().unwrap_or(0) == 0 {
            let mut path = Vec::new();
            if let Some(c) = dfs(n, edges, &mut state, &mut path) {
                return Some(c);
            }
        }
    }
    None
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

fn parse_policy(s: &str) -> Option<Policy> {
    match s {
        "ACCEPT" => Some(Policy::Accept),
        "DROP" => Some(Policy::Drop),
        _ => None,
    }
}

fn parse_counters(s: &str) -> R<Counters> {
    let bad = || format!("invalid counters {s:?} (expected [packets:bytes])");
    let inner = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(bad)?;
    let (p, b) = inner.split_once(':').ok_or_else(bad)?;
    Ok(Counters {
        packets: p.parse().map_err(|_| bad())?,
        bytes: b.parse().map_err(|_| bad())?,
    })
}

fn check_chain_name(name: &str, kind: TableKind) -> R<()> {
    if name.is_empty() {
        return Err("empty chain name".into());
    }
    if name.len() > MAX_CHAIN_NAME {
        return Err(format!(
            "chain name {name:?} is longer than {MAX_CHAIN_NAME} characters"
        ));
    }
    // Quotes, backslashes and '#' would not survive printing back unquoted.
    if name.starts_with('-')
        || name.starts_with('!')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '#'))
    {
        return Err(format!("invalid chain name {name:?}"));
    }
    if kind.builtin_chains().contains(&name) {
        return Err(format!(
            "{name} is a built-in chain of table {}",
            kind.name()
        ));
    }
    if TARGET_NAMES.contains(&name) || name == "QUEUE" {
        return Err(format!("chain name {name} is reserved for a target"));
    }
    Ok(())
}

// ---------------------------------------------------------------- rules

#[derive(Default)]
struct TargetOpts {
    reject_with: Option<String>,
    log_prefix: Option<String>,
    log_level: Option<String>,
    set_mark: Option<String>,
    to_source: Option<String>,
    to_destination: Option<String>,
    to_ports: Option<String>,
}

#[derive(Default)]
struct StatOpts {
    mode: Option<String>,
    every: Option<(bool, String)>,
    packet: Option<String>,
    probability: Option<(bool, String)>,
}

fn set<T>(slot: &mut Option<T>, v: T, opt: &str) -> R<()> {
    if slot.is_some() {
        return Err(format!("option {opt} given twice"));
    }
    *slot = Some(v);
    Ok(())
}

struct Cursor<'a> {
    words: &'a [String],
    i: usize,
}

impl Cursor<'_> {
    /// The value of `opt`; accepts the old form `opt ! value` when `negatable`.
    fn value(&mut self, opt: &str, neg: &mut bool, negatable: bool) -> R<String> {
        let mut v = self
            .words
            .get(self.i)
            .ok_or_else(|| format!("option {opt} needs a value"))?;
        if v == "!" && negatable {
            if *neg {
                return Err(format!("option {opt} negated twice"));
            }
            *neg = true;
            self.i += 1;
            v = self
                .words
                .get(self.i)
                .ok_or_else(|| format!("option {opt} needs a value"))?;
        }
        self.i += 1;
        Ok(v.clone())
    }
}

fn parse_rule(words: &[String], table: TableKind, line: usize, counters: Counters) -> R<Rule> {
    let mut m = Matches::default();
    let mut modules: HashSet<String> = HashSet::new();
    let mut target_name: Option<(String, bool)> = None; // (name, goto)
    let mut topts = TargetOpts::default();
    let mut stat = StatOpts::default();
    let mut stat_neg = false;
    // Options that need a module or protocol, checked once the line is read.
    let mut needs: Vec<(&'static str, String)> = Vec::new();
    let mut cur = Cursor { words, i: 0 };
    let mut neg = false;
    while cur.i < words.len() {
        let opt = words[cur.i].clone();
        cur.i += 1;
        if opt == "!" {
            if neg {
                return Err("\"!\" given twice".into());
            }
            neg = true;
            continue;
        }
        let o = opt.as_str();
        let negatable = !matches!(
            o,
            "-m" | "--match"
                | "-j"
                | "--jump"
                | "-g"
                | "--goto"
                | "--comment"
                | "--mode"
                | "--packet"
                | "--reject-with"
                | "--log-prefix"
                | "--log-level"
                | "--set-mark"
                | "--to-source"
                | "--to-destination"
                | "--to-ports"
        );
        if neg && !negatable {
            return Err(format!("option {o} cannot be negated with !"));
        }
        if !is_known_option(o) {
            return Err(format!("unsupported option {o}"));
        }
        let mut n = neg;
        neg = false;
        if o == "--syn" {
            needs.push(("tcp", o.into()));
            let f = TcpFlags {
                mask: tcp_flag::FIN | tcp_flag::SYN | tcp_flag::RST | tcp_flag::ACK,
                comp: tcp_flag::SYN,
            };
            set(&mut m.tcp_flags, Neg::new(n, f), "--tcp-flags/--syn")?;
            continue;
        }
        let v = cur.value(o, &mut n, negatable)?;
        match o {
            "-s" | "--source" | "--src" => set(&mut m.src, Neg::new(n, parse_net(&v)?), "-s")?,
            "-d" | "--destination" | "--dst" => set(&mut m.dst, Neg::new(n, parse_net(&v)?), "-d")?,
            "-i" | "--in-interface" => set(&mut m.in_iface, Neg::new(n, parse_iface(&v)?), "-i")?,
            "-o" | "--out-interface" => set(&mut m.out_iface, Neg::new(n, parse_iface(&v)?), "-o")?,
            "-p" | "--protocol" => set(&mut m.protocol, Neg::new(n, parse_proto(&v)?), "-p")?,
            "-m" | "--match" => {
                if !matches!(
                    v.as_str(),
                    "tcp"
                        | "udp"
                        | "icmp"
                        | "icmp6"
                        | "multiport"
                        | "state"
                        | "conntrack"
                        | "statistic"
                        | "mark"
                        | "comment"
                ) {
                    return Err(format!("unsupported match module -m {v}"));
                }
                modules.insert(v);
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                if target_name.is_some() {
                    return Err("only one -j or -g per rule".into());
                }
                target_name = Some((v, o == "-g" || o == "--goto"));
            }
            "--sport" | "--source-port" => {
                needs.push(("tcp/udp", o.into()));
                set(&mut m.sport, Neg::new(n, parse_port_range(&v, ':')?), o)?
            }
            "--dport" | "--destination-port" => {
                needs.push(("tcp/udp", o.into()));
                set(&mut m.dport, Neg::new(n, parse_port_range(&v, ':')?), o)?
            }
            "--tcp-flags" => {
                needs.push(("tcp", o.into()));
                let comp = cur.value(o, &mut n, false)?;
                let f = TcpFlags {
                    mask: parse_flags(&v)?,
                    comp: parse_flags(&comp)?,
                };
                set(&mut m.tcp_flags, Neg::new(n, f), "--tcp-flags/--syn")?
            }
            "--icmp-type" => {
                needs.push(("icmp", o.into()));
                set(
                    &mut m.icmp_type,
                    Neg::new(n, parse_icmp_type(&v, false)?),
                    o,
                )?
            }
            "--icmpv6-type" => {
                needs.push(("icmpv6", o.into()));
                set(&mut m.icmp_type, Neg::new(n, parse_icmp_type(&v, true)?), o)?
            }
            "--dports" | "--destination-ports" | "--sports" | "--source-ports" | "--ports" => {
                needs.push(("multiport", o.into()));
                let dir = match o {
                    "--dports" | "--destination-ports" => PortDir::Dst,
                    "--sports" | "--source-ports" => PortDir::Src,
                    _ => PortDir::Either,
                };
                let ports = parse_port_list(&v)?;
                set(
                    &mut m.multiport,
                    Neg::new(n, Multiport { dir, ports }),
                    "--dports/--sports/--ports",
                )?
            }
            "--state" | "--ctstate" => {
                let module = if o == "--state" { "state" } else { "conntrack" };
                needs.push((module, o.into()));
                set(
                    &mut m.ctstate,
                    Neg::new(n, parse_states(&v)?),
                    "--state/--ctstate",
                )?
            }
            "--mode" => {
                needs.push(("statistic", o.into()));
                set(&mut stat.mode, v, o)?
            }
            "--every" => {
                needs.push(("statistic", o.into()));
                set(&mut stat.every, (n, v), o)?
            }
            "--packet" => {
                needs.push(("statistic", o.into()));
                set(&mut stat.packet, v, o)?
            }
            "--probability" => {
                needs.push(("statistic", o.into()));
                set(&mut stat.probability, (n, v), o)?
            }
            "--mark" => {
                needs.push(("mark", o.into()));
                set(&mut m.mark, Neg::new(n, parse_mark(&v)?), o)?
            }
            "--comment" => {
                needs.push(("comment", o.into()));
                if v.len() > MAX_COMMENT {
                    return Err(format!("--comment is longer than {MAX_COMMENT} bytes"));
                }
                set(&mut m.comment, v, o)?
            }
            "--syn" => unreachable!("handled as flag"),
            "--reject-with" => set(&mut topts.reject_with, v, o)?,
            "--log-prefix" => set(&mut topts.log_prefix, v, o)?,
            "--log-level" => set(&mut topts.log_level, v, o)?,
            "--set-mark" => set(&mut topts.set_mark, v, o)?,
            "--to-source" => set(&mut topts.to_source, v, o)?,
            "--to-destination" => set(&mut topts.to_destination, v, o)?,
            "--to-ports" => set(&mut topts.to_ports, v, o)?,
            _ => return Err(format!("unsupported option {o}")),
        }
        if o == "--every" || o == "--probability" {
            stat_neg |= n;
        }
    }
    if neg {
        return Err("\"!\" at the end of the rule".into());
    }

    // Module and protocol requirements.
    let proto = m
        .protocol
        .as_ref()
        .and_then(|p| (!p.negated).then_some(p.value));
    for module in ["tcp", "udp", "icmp", "icmp6"] {
        if modules.contains(module) {
            let ok = match module {
                "tcp" => proto == Some(Protocol::Tcp),
                "udp" => proto == Some(Protocol::Udp),
                "icmp" => proto == Some(Protocol::Icmp),
                _ => proto == Some(Protocol::Icmpv6),
            };
            if !ok {
                let p = if module == "icmp6" { "icmpv6" } else { module };
                return Err(format!("-m {module} needs -p {p}"));
            }
        }
    }
    for (need, o) in &needs {
        let ok = match *need {
            "tcp/udp" => matches!(proto, Some(Protocol::Tcp | Protocol::Udp)),
            "tcp" => proto == Some(Protocol::Tcp),
            "icmp" => proto == Some(Protocol::Icmp),
            "icmpv6" => proto == Some(Protocol::Icmpv6),
            module => modules.contains(module),
        };
        if !ok {
            let what = match *need {
                "tcp/udp" => "-p tcp or -p udp".to_string(),
                "tcp" | "icmp" | "icmpv6" => format!("-p {need}"),
                module => format!("-m {module}"),
            };
            return Err(format!("option {o} needs {what}"));
        }
    }
    if m.multiport.is_some() && !matches!(proto, Some(Protocol::Tcp | Protocol::Udp)) {
        return Err("-m multiport needs -p tcp or -p udp".into());
    }
    for (module, present) in [
        ("state", m.ctstate.is_some()),
        ("conntrack", m.ctstate.is_some()),
        ("multiport", m.multiport.is_some()),
        ("statistic", stat.mode.is_some()),
        ("mark", m.mark.is_some()),
        ("comment", m.comment.is_some()),
    ] {
        if modules.contains(module) && !present {
            let o = match module {
                "state" => "--state",
                "conntrack" => "--ctstate",
                "multiport" => "--dports, --sports or --ports",
                "statistic" => "--mode",
                "mark" => "--mark",
                _ => "--comment",
            };
            return Err(format!("-m {module} needs {o}"));
        }
    }
    if let Some(mode) = &stat.mode {
        m.statistic = Some(Neg::new(stat_neg, parse_statistic(mode, &stat)?));
    }
    // Address family consistency.
    let mut family: Option<bool> = None; // Some(true) = IPv6
    let mut fam = |v6: bool, what: &str| -> R<()> {
        match family {
            Some(f) if f != v6 => Err(format!("{what} mixes IPv4 and IPv6 in one rule")),
            _ => {
                family = Some(v6);
                Ok(())
            }
        }
    };
    if let Some(s) = &m.src {
        fam(matches!(s.value, IpNet::V6(_)), "-s")?;
    }
    if let Some(d) = &m.dst {
        fam(matches!(d.value, IpNet::V6(_)), "-d")?;
    }
    match proto {
        Some(Protocol::Icmp) => fam(false, "-p icmp")?,
        Some(Protocol::Icmpv6) => fam(true, "-p icmpv6")?,
        _ => {}
    }

    let target = build_target(target_name, topts, table, proto, &mut fam)?;
    Ok(Rule {
        line,
        matches: m,
        target,
        counters,
    })
}

fn is_known_option(o: &str) -> bool {
    matches!(
        o,
        "-s" | "--source"
            | "--src"
            | "-d"
            | "--destination"
            | "--dst"
            | "-i"
            | "--in-interface"
            | "-o"
            | "--out-interface"
            | "-p"
            | "--protocol"
            | "-m"
            | "--match"
            | "-j"
            | "--jump"
            | "-g"
            | "--goto"
            | "--sport"
            | "--source-port"
            | "--dport"
            | "--destination-port"
            | "--tcp-flags"
            | "--syn"
            | "--icmp-type"
            | "--icmpv6-type"
            | "--dports"
            | "--destination-ports"
            | "--sports"
            | "--source-ports"
            | "--ports"
            | "--state"
            | "--ctstate"
            | "--mode"
            | "--every"
            | "--packet"
            | "--probability"
            | "--mark"
            | "--comment"
            | "--reject-with"
            | "--log-prefix"
            | "--log-level"
            | "--set-mark"
            | "--to-source"
            | "--to-destination"
            | "--to-ports"
    )
}

fn build_target(
    name: Option<(String, bool)>,
    mut o: TargetOpts,
    table: TableKind,
    proto: Option<Protocol>,
    fam: &mut dyn FnMut(bool, &str) -> R<()>,
) -> R<Target> {
    let tcp_udp = matches!(proto, Some(Protocol::Tcp | Protocol::Udp));
    let tname: String = name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
    let only_in = |allowed: TableKind| -> R<()> {
        if table != allowed {
            return Err(format!(
                "target {tname} is only valid in table {}, not {}",
                allowed.name(),
                table.name()
            ));
        }
        Ok(())
    };
    let nat_ports = |s: &str, opt: &str| -> R<PortRange> {
        if !tcp_udp {
            return Err(format!("{opt} with ports needs -p tcp or -p udp"));
        }
        parse_port_range(s, '-')
    };
    let target = match name {
        None => Target::None,
        Some((n, true)) => {
            if TARGET_NAMES.contains(&n.as_str()) {
                return Err(format!("-g needs a user chain, not {n}"));
            }
            Target::Goto(n)
        }
        Some((n, false)) => match n.as_str() {
            "ACCEPT" => Target::Accept,
            "DROP" => {
                if table == TableKind::Nat {
                    return Err(
                        "target DROP is not allowed in table nat (filter in table filter)".into(),
                    );
                }
                Target::Drop
            }
            "RETURN" => Target::Return,
            "REJECT" => {
                only_in(TableKind::Filter)?;
                let r = match o.reject_with.take() {
                    None => RejectWith::IcmpPortUnreachable,
                    Some(s) => RejectWith::from_name(&s).ok_or_else(|| {
                        format!("unsupported --reject-with {s} (e.g. icmp-port-unreachable, icmp-host-prohibited, tcp-reset)")
                    })?,
                };
                if r == RejectWith::TcpReset && proto != Some(Protocol::Tcp) {
                    return Err("--reject-with tcp-reset needs -p tcp".into());
                }
                // A bare `-j REJECT` is stored as icmp-port-unreachable and
                // answers in the packet's family, so that kind (like
                // tcp-reset) ties the rule to neither family.
                if !matches!(r, RejectWith::TcpReset | RejectWith::IcmpPortUnreachable) {
                    fam(r.is_icmp6(), "--reject-with")?;
                }
                Target::Reject(r)
            }
            "LOG" => {
                let prefix = o.log_prefix.take();
                if let Some(p) = &prefix
                    && p.len() > MAX_LOG_PREFIX
                {
                    return Err(format!(
                        "--log-prefix is longer than {MAX_LOG_PREFIX} bytes"
                    ));
                }
                let level = o
                    .log_level
                    .take()
                    .map(|l| parse_log_level(&l))
                    .transpose()?;
                Target::Log { prefix, level }
            }
            "MARK" => {
                only_in(TableKind::Mangle)?;
                let v = o
                    .set_mark
                    .take()
                    .ok_or("target MARK needs --set-mark VALUE[/MASK]")?;
                Target::Mark(parse_mark(&v)?)
            }
            "MASQUERADE" => {
                only_in(TableKind::Nat)?;
                let ports = o
                    .to_ports
                    .take()
                    .map(|p| nat_ports(&p, "--to-ports"))
                    .transpose()?;
                Target::Masquerade { ports }
            }
            "REDIRECT" => {
                only_in(TableKind::Nat)?;
                let ports = o
                    .to_ports
                    .take()
                    .map(|p| nat_ports(&p, "--to-ports"))
                    .transpose()?;
                Target::Redirect { ports }
            }
            "SNAT" | "DNAT" => {
                only_in(TableKind::Nat)?;
                let (slot, opt) = if n == "SNAT" {
                    (o.to_source.take(), "--to-source")
                } else {
                    (o.to_destination.take(), "--to-destination")
                };
                let s = slot
                    .ok_or_else(|| format!("target {n} needs {opt} ADDR[-ADDR][:PORT[-PORT]]"))?;
                let spec = parse_nat_spec(&s)?;
                if spec.ports.is_some() && !tcp_udp {
                    return Err(format!("{opt} with ports needs -p tcp or -p udp"));
                }
                fam(spec.addrs.0.is_ipv6(), opt)?;
                if n == "SNAT" {
                    Target::Snat(spec)
                } else {
                    Target::Dnat(spec)
                }
            }
            _ => Target::Jump(n),
        },
    };
    for (opt, v) in [
        ("--reject-with", &o.reject_with),
        ("--log-prefix", &o.log_prefix),
        ("--log-level", &o.log_level),
        ("--set-mark", &o.set_mark),
        ("--to-source", &o.to_source),
        ("--to-destination", &o.to_destination),
        ("--to-ports", &o.to_ports),
    ] {
        if v.is_some() {
            let t = if tname.is_empty() {
                "(no -j)"
            } else {
                tname.as_str()
            };
            return Err(format!("option {opt} is not valid for target {t}"));
        }
    }
    Ok(target)
}

// ---------------------------------------------------------------- values

fn parse_net(s: &str) -> R<IpNet> {
    if s.contains(',') {
        return Err(format!(
            "address lists ({s}) are not supported; write one rule per address"
        ));
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("invalid address {addr:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => {
            if let Ok(n) = l.parse::<u8>() {
                if n > max {
                    return Err(format!("invalid prefix length /{l} for {addr}"));
                }
                n
            } else if let (true, Ok(mask)) = (ip.is_ipv4(), l.parse::<Ipv4Addr>()) {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(format!("non-contiguous netmask {l}"));
                }
                bits.leading_ones() as u8
            } else {
                return Err(format!("invalid prefix length /{l}"));
            }
        }
    };
    let net = IpNet::new(ip, prefix).map_err(|e| e.to_string())?;
    Ok(net.trunc())
}

fn parse_iface(s: &str) -> R<Iface> {
    let (name, wildcard) = match s.strip_suffix('+') {
        Some(n) => (n, true),
        None => (s, false),
    };
    // -i / -o name logical interfaces, whose names the config limits to
    // these characters (which also never need quoting when printed back).
    if (name.is_empty() && !wildcard)
        || name.len() > MAX_IFNAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "invalid interface name {s:?} (letters, digits, '_', '.', '-', optionally ending in '+')"
        ));
    }
    Ok(Iface {
        name: name.to_string(),
        wildcard,
    })
}

fn parse_proto(s: &str) -> R<Protocol> {
    let lower = s.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => Protocol::Icmp,
        "icmpv6" | "ipv6-icmp" | "icmp6" => Protocol::Icmpv6,
        "all" => Protocol::All,
        "gre" => Protocol::Number(47),
        "esp" => Protocol::Number(50),
        "ah" => Protocol::Number(51),
        "sctp" => Protocol::Number(132),
        _ => Protocol::from_number(lower.parse::<u8>().map_err(|_| {
            format!("unsupported protocol {s:?} (tcp, udp, icmp, icmpv6, all or a number 0-255)")
        })?),
    })
}

fn parse_port(s: &str) -> R<u16> {
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(_) => Err(format!("port {s} out of range 1-65535")),
        Err(_) => Err(format!("invalid port {s:?}")),
    }
}

/// `P` or `A<sep>B` (`:` in matches, `-` in NAT targets); `A:` / `:B` open ranges.
fn parse_port_range(s: &str, sep: char) -> R<PortRange> {
    let r = match s.split_once(sep) {
        None => PortRange::single(parse_port(s)?),
        Some((a, b)) => PortRange {
            lo: if a.is_empty() && sep == ':' {
                1
            } else {
                parse_port(a)?
            },
            hi: if b.is_empty() && sep == ':' {
                65535
            } else {
                parse_port(b)?
            },
        },
    };
    if r.lo > r.hi {
        return Err(format!(
            "port range {s} is reversed (first port must not exceed the second)"
        ));
    }
    Ok(r)
}

fn parse_port_list(s: &str) -> R<Vec<PortRange>> {
    let mut out = Vec::new();
    let mut slots = 0;
    for part in s.split(',') {
        let r = parse_port_range(part, ':')?;
        slots += if r.lo == r.hi { 1 } else { 2 };
        out.push(r);
    }
    if slots > MAX_MULTIPORT {
        return Err(format!(
            "too many ports in {s} (at most {MAX_MULTIPORT}, a range counts as two)"
        ));
    }
    Ok(out)
}

fn parse_flags(s: &str) -> R<u8> {
    let mut bits = 0;
    for f in s.split(',') {
        bits |= match f.to_ascii_uppercase().as_str() {
            "ALL" => tcp_flag::ALL,
            "NONE" => 0,
            name => tcp_flag::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| *b)
                .ok_or_else(|| format!("unknown TCP flag {f:?}"))?,
        };
    }
    Ok(bits)
}

fn parse_states(s: &str) -> R<CtStates> {
    let mut bits = 0;
    for st in s.split(',') {
        bits |= CtStates::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(st))
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                format!("unsupported state {st:?} (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED)")
            })?;
    }
    Ok(CtStates(bits))
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_mark(s: &str) -> R<Mark> {
    let bad = || format!("invalid mark {s:?} (expected VALUE[/MASK])");
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (parse_u32(v).ok_or_else(bad)?, parse_u32(m).ok_or_else(bad)?),
        None => (parse_u32(s).ok_or_else(bad)?, u32::MAX),
    };
    Ok(Mark { value: v, mask: m })
}

fn parse_statistic(mode: &str, s: &StatOpts) -> R<Statistic> {
    match mode {
        "nth" => {
            if s.probability.is_some() {
                return Err("--probability needs --mode random".into());
            }
            let (_, every) = s.every.as_ref().ok_or("--mode nth needs --every N")?;
            let every = every
                .parse::<u32>()
                .ok()
                .filter(|&e| e >= 1)
                .ok_or_else(|| format!("invalid --every {every:?} (a number >= 1)"))?;
            let packet = match &s.packet {
                None => 0,
                Some(p) => p
                    .parse::<u32>()
                    .map_err(|_| format!("invalid --packet {p:?}"))?,
            };
            if packet >= every {
                return Err(format!(
                    "--packet {packet} must be less than --every {every}"
                ));
            }
            Ok(Statistic::Nth { every, packet })
        }
        "random" => {
            if s.every.is_some() || s.packet.is_some() {
                return Err("--every/--packet need --mode nth".into());
            }
            let (_, p) = s
                .probability
                .as_ref()
                .ok_or("--mode random needs --probability P")?;
            let probability = p
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| format!("invalid --probability {p:?} (0.0 to 1.0)"))?;
            Ok(Statistic::Random { probability })
        }
        other => Err(format!("unsupported --mode {other:?} (nth or random)")),
    }
}

const ICMP_NAMES: [(&str, u8, Option<u8>); 22] = [
    ("echo-reply", 0, None),
    ("pong", 0, None),
    ("destination-unreachable", 3, None),
    ("network-unreachable", 3, Some(0)),
    ("host-unreachable", 3, Some(1)),
    ("protocol-unreachable", 3, Some(2)),
    ("port-unreachable", 3, Some(3)),
    ("fragmentation-needed", 3, Some(4)),
    ("source-route-failed", 3, Some(5)),
    ("network-prohibited", 3, Some(9)),
    ("host-prohibited", 3, Some(10)),
    ("communication-prohibited", 3, Some(13)),
    ("source-quench", 4, None),
    ("redirect", 5, None),
    ("echo-request", 8, None),
    ("ping", 8, None),
    ("router-advertisement", 9, None),
    ("router-solicitation", 10, None),
    ("time-exceeded", 11, None),
    ("ttl-exceeded", 11, None),
    ("parameter-problem", 12, None),
    ("timestamp-request", 13, None),
];

const ICMP6_NAMES: [(&str, u8, Option<u8>); 11] = [
    ("destination-unreachable", 1, None),
    ("no-route", 1, Some(0)),
    ("port-unreachable", 1, Some(4)),
    ("packet-too-big", 2, None),
    ("time-exceeded", 3, None),
    ("parameter-problem", 4, None),
    ("echo-request", 128, None),
    ("echo-reply", 129, None),
    ("router-solicitation", 133, None),
    ("router-advertisement", 134, None),
    ("neighbour-solicitation", 135, None),
];

fn parse_icmp_type(s: &str, v6: bool) -> R<IcmpType> {
    if s == "any" {
        return Ok(IcmpType::Any);
    }
    let table: &[(&str, u8, Option<u8>)] = if v6 { &ICMP6_NAMES } else { &ICMP_NAMES };
    if let Some((_, t, c)) = table.iter().find(|(n, _, _)| *n == s) {
        return Ok(IcmpType::Type { typ: *t, code: *c });
    }
    if s == "neighbor-solicitation" && v6 {
        return Ok(IcmpType::Type {
            typ: 135,
            code: None,
        });
    }
    if (s == "neighbour-advertisement" || s == "neighbor-advertisement") && v6 {
        return Ok(IcmpType::Type {
            typ: 136,
            code: None,
        });
    }
    let bad = || format!("unknown ICMP type {s:?} (a name such as echo-request, or TYPE[/CODE])");
    let (t, c) = match s.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (s, None),
    };
    let typ = t.parse::<u8>().map_err(|_| bad())?;
    let code = c.map(|c| c.parse::<u8>().map_err(|_| bad())).transpose()?;
    Ok(IcmpType::Type { typ, code })
}

fn parse_log_level(s: &str) -> R<u8> {
    let names = [
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
    ];
    if let Some(i) = names.iter().position(|n| *n == s) {
        return Ok(i as u8);
    }
    match s {
        "panic" => return Ok(0),
        "err" => return Ok(3),
        "warn" => return Ok(4),
        _ => {}
    }
    s.parse::<u8>()
        .ok()
        .filter(|&l| l <= 7)
        .ok_or_else(|| format!("invalid --log-level {s:?} (0-7 or a name such as info)"))
}

/// `ADDR[-ADDR][:PORT[-PORT]]`; IPv6 with a port in brackets: `[2001:db8::1]:80`.
fn parse_nat_spec(s: &str) -> R<NatSpec> {
    let bad = || format!("invalid NAT address {s:?} (expected ADDR[-ADDR][:PORT[-PORT]])");
    let (addr_part, port_part): (String, Option<&str>) = if s.starts_with('[') {
        // [a]:p, [a]-[b]:p, [a]
        let mut addrs = String::new();
        let mut rest = s;
        loop {
            let inner = rest.strip_prefix('[').ok_or_else(bad)?;
            let (a, after) = inner.split_once(']').ok_or_else(bad)?;
            addrs.push_str(a);
            rest = after;
            if let Some(r) = rest.strip_prefix('-') {
                addrs.push('-');
                rest = r;
                continue;
            }
            break;
        }
        let port = match rest {
            "" => None,
            r => Some(r.strip_prefix(':').ok_or_else(bad)?),
        };
        (addrs, port)
    } else if s.matches(':').count() > 1 {
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let (a, b) = match addr_part.split_once('-') {
        Some((a, b)) => (a, b),
        None => (addr_part.as_str(), addr_part.as_str()),
    };
    let a: IpAddr = a.parse().map_err(|_| bad())?;
    let b: IpAddr = b.parse().map_err(|_| bad())?;
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!("NAT address range {s} mixes IPv4 and IPv6"));
    }
    if a > b {
        return Err(format!("NAT address range {s} is reversed"));
    }
    let ports = port_part.map(|p| parse_port_range(p, '-')).transpose()?;
    Ok(NatSpec {
        addrs: (a, b),
        ports,
    })
}
