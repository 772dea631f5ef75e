//! iptables-save / iptables-script text -> [`IptablesRuleset`].
//!
//! [`parse_ruleset`] reads logical lines: table headers and `COMMIT`, chain
//! declarations (`:NAME POLICY`) and commands (`-A`, `-I`, `-N`, `-P`, with
//! an optional `-t`). A rule's options are read by [`rule`] (matches in
//! [`matches`], the target in [`targets`], values in [`values`]); once
//! every line is read, [`graph`] checks jumps, loops and where targets are
//! used.

mod graph;
mod matches;
mod rule;
mod targets;
mod values;

pub(crate) use targets::LOG_FLAGS;
pub(crate) use values::parse_iface;

use std::collections::HashSet;

use super::lex::{logical_lines, split_words};
use super::model::*;
use crate::config::ConfigError;
use rule::parse_rule;

/// Longest chain name iptables accepts.
const MAX_CHAIN_NAME: usize = 28;

const TARGET_NAMES: [&str; 13] = [
    "ACCEPT",
    "DROP",
    "RETURN",
    "REJECT",
    "LOG",
    "NFLOG",
    "ULOG",
    "MARK",
    "MASQUERADE",
    "SNAT",
    "DNAT",
    "REDIRECT",
    "CHECKSUM",
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
    /// `-F [CHAIN]`: remove the chain's rules (no chain: every chain's).
    Flush(Option<String>),
    /// `-X [CHAIN]`: delete an empty, unreferenced user chain (no chain:
    /// every user chain of the table).
    DeleteChain(Option<String>),
    /// `-Z [CHAIN]`: zero counters; nothing to do on a ruleset being read.
    Zero,
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
                format!("unsupported table {name:?} (supported: filter, nat, mangle, raw)")
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
            let chain = self.chain_mut(kind, name);
            chain.policy = Some(policy);
            chain.counters = counters;
            Ok(())
        } else {
            if policy != "-" {
                return Err(format!(
                    "user chain {name} cannot have a policy (write :{name} -)"
                ));
            }
            self.add_user_chain(kind, name, counters, &format!(":{name}"))
        }
    }

    /// A new user chain `name` in table `kind`, declared by `decl`.
    fn add_user_chain(
        &mut self,
        kind: TableKind,
        name: &str,
        counters: Counters,
        decl: &str,
    ) -> R<()> {
        check_chain_name(name, kind)?;
        let table = self.table_mut(kind);
        if table.chain(name).is_some() {
            return Err(format!("duplicate chain definition {decl}"));
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

    /// Chain `name` of table `kind`, which exists.
    fn chain_mut(&mut self, kind: TableKind, name: &str) -> &mut Chain {
        self.table_mut(kind)
            .chains
            .iter_mut()
            .find(|c| c.name == name)
            .expect("exists")
    }

    fn command(
        &mut self,
        words: &[String],
        line: usize,
        counters: Counters,
        script: bool,
    ) -> R<()> {
        let (table, command, rest) = split_command(words)?;
        let kind = self.table_of(table, script)?;
        match command {
            Command::NewChain(name) => self.new_chain(kind, &name, &rest),
            Command::Policy(name, policy) => self.set_policy(kind, &name, &policy, &rest),
            Command::Zero | Command::Flush(_) | Command::DeleteChain(_) if !rest.is_empty() => {
                Err(format!("unexpected {:?} after the command", rest[0]))
            }
            Command::Zero => Ok(()),
            Command::Flush(chain) => self.flush(kind, chain.as_deref()),
            Command::DeleteChain(chain) => self.delete_chain(kind, chain.as_deref()),
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
                self.rules_mut(kind, &chain).push(rule);
                Ok(())
            }
            Command::Insert(chain, pos) => {
                let rule = parse_rule(&rest, kind, line, counters)?;
                let rules = self.rules_mut(kind, &chain);
                if pos > rules.len() + 1 {
                    return Err(format!(
                        "-I {chain} {pos}: index too big (chain has {} rules)",
                        rules.len()
                    ));
                }
                rules.insert(pos - 1, rule);
                Ok(())
            }
        }
    }

    /// The table a command acts on: its `-t`, else the block's, else
    /// (script form only) filter.
    fn table_of(&self, table: Option<TableKind>, script: bool) -> R<TableKind> {
        match (table, &self.block) {
            (Some(t), Some(b)) if t != b.kind => Err(format!(
                "-t {} inside *{} (missing COMMIT?)",
                t.name(),
                b.kind.name()
            )),
            (Some(t), _) => Ok(t),
            (None, Some(b)) => Ok(b.kind),
            (None, None) if script => Ok(TableKind::Filter),
            (None, None) => Err("rule before any table header (*filter, *nat, *mangle)".into()),
        }
    }

    /// `-F [CHAIN]`, as iptables does it at that point of the script.
    fn flush(&mut self, kind: TableKind, chain: Option<&str>) -> R<()> {
        let t = self.table_mut(kind);
        for c in t.chains.iter_mut() {
            if chain.is_none_or(|n| n == c.name) {
                c.rules.clear();
            }
        }
        match chain {
            Some(n) if t.chain(n).is_none() => {
                Err(format!("-F {n}: no chain {n} in table {}", kind.name()))
            }
            _ => Ok(()),
        }
    }

    /// `-X [CHAIN]`: as iptables, refused for a chain that has rules or
    /// that a rule jumps to.
    fn delete_chain(&mut self, kind: TableKind, chain: Option<&str>) -> R<()> {
        let t = self.table_mut(kind);
        let doomed: Vec<String> = t
            .chains
            .iter()
            .filter(|c| !c.builtin && chain.is_none_or(|n| n == c.name))
            .map(|c| c.name.clone())
            .collect();
        if let Some(n) = chain
            && doomed.is_empty()
        {
            return Err(format!(
                "-X {n}: no user chain {n} in table {}",
                kind.name()
            ));
        }
        for name in &doomed {
            let c = t.chain(name).expect("listed");
            if !c.rules.is_empty() {
                return Err(format!(
                    "-X {name}: chain {name} is not empty (flush it first with -F)"
                ));
            }
            let used = t
                .chains
                .iter()
                .flat_map(|c| &c.rules)
                .any(|r| matches!(&r.target, Target::Jump(j) | Target::Goto(j) if j == name));
            if used {
                return Err(format!("-X {name}: chain {name} is still jumped to"));
            }
        }
        t.chains.retain(|c| !doomed.contains(&c.name));
        Ok(())
    }

    /// `-N NAME`.
    fn new_chain(&mut self, kind: TableKind, name: &str, rest: &[String]) -> R<()> {
        if let Some(w) = rest.first() {
            return Err(format!("unexpected {w:?} after -N {name}"));
        }
        self.add_user_chain(kind, name, Counters::default(), &format!("-N {name}"))
    }

    /// `-P CHAIN POLICY`.
    fn set_policy(&mut self, kind: TableKind, name: &str, policy: &str, rest: &[String]) -> R<()> {
        if let Some(w) = rest.first() {
            return Err(format!("unexpected {w:?} after -P {name} {policy}"));
        }
        let p = parse_policy(policy)
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

    /// The rules of chain `chain` of table `kind`, which exists.
    fn rules_mut(&mut self, kind: TableKind, chain: &str) -> &mut Vec<Rule> {
        &mut self.chain_mut(kind, chain).rules
    }
}

/// A command line's `-t`, its one command and the words left (the rule).
fn split_command(words: &[String]) -> R<(Option<TableKind>, Command, Vec<String>)> {
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
                    format!("unsupported table {name:?} (supported: filter, nat, mangle, raw)")
                })?);
                None
            }
            // `iptables -w [SECONDS]` / `-W USEC` (script form): waiting
            // for the xtables lock means nothing here.
            "-w" | "--wait" => {
                if words
                    .get(i + 1)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 1;
                }
                None
            }
            "-W" | "--wait-interval" => {
                let v = arg(&mut i)?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("invalid -W {v:?} (microseconds)"));
                }
                None
            }
            "-A" | "--append" => Some(Command::Append(arg(&mut i)?)),
            "-N" | "--new-chain" => Some(Command::NewChain(arg(&mut i)?)),
            "-F" | "--flush" | "-X" | "--delete-chain" | "-Z" | "--zero" => {
                // The chain is optional: the next word, if not an option.
                let chain = words.get(i + 1).filter(|n| !n.starts_with('-')).cloned();
                if chain.is_some() {
                    i += 1;
                }
                Some(match w {
                    "-F" | "--flush" => Command::Flush(chain),
                    "-X" | "--delete-chain" => Command::DeleteChain(chain),
                    _ => Command::Zero,
                })
            }
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
    Ok((table, command, rest))
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
