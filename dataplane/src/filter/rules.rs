//! The compiled ruleset and the builder the control plane fills.
//!
//! A rule is one fixed-size record: a bitmask of the matches it has, a
//! bitmask of which are negated, its family filter, the match values inline
//! (interface sets and multiport lists live in side arrays of the ruleset)
//! and its action with jumps resolved to chain numbers. The rules of a chain
//! are contiguous, so a chain is a range of rule indices, and a rule's index
//! is also its counter slot. The builder checks what evaluation relies on:
//! jumps stay in their table and reach user chains, no loops, call depth at
//! most [`MAX_DEPTH`], values in range, and no rule that needs both families.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::eval::RuleCounters;
use super::{AddrRange, Hook, IfIndex, NatAction, Outcome, Policy, RejectKind, TableId};
use crate::route::neighbor::v4_key;

/// Deepest chain of `-j` calls from a built-in chain (`-g` does not count).
pub const MAX_DEPTH: usize = 32;

/// Most entries of `-m multiport`.
const MAX_MULTIPORT: usize = 15;

// ------------------------------------------------------------ build input

/// A match value with its `!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Neg<T> {
    pub negated: bool,
    pub value: T,
}

impl<T> Neg<T> {
    pub fn new(negated: bool, value: T) -> Self {
        Neg { negated, value }
    }

    /// A match without `!`.
    pub fn is(value: T) -> Self {
        Neg::new(false, value)
    }
}

/// `-i`/`-o`: a set of interfaces (a `+` wildcard already expanded).
/// `none` makes a packet without that interface a member too (`-i +`
/// matches packets the router originates, as the kernel's empty-prefix
/// compare does).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IfaceMatch {
    pub ifaces: Vec<IfIndex>,
    pub none: bool,
}

/// An address prefix; `addr` IPv4-mapped for IPv4, `len` within the family
/// (0..=32 or 0..=128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub v4: bool,
    pub addr: u128,
    pub len: u8,
}

impl Prefix {
    pub fn v4(addr: u32, len: u8) -> Self {
        Prefix {
            v4: true,
            addr: v4_key(addr),
            len,
        }
    }

    pub fn v6(addr: u128, len: u8) -> Self {
        Prefix {
            v4: false,
            addr,
            len,
        }
    }

    /// (network, mask) over the 128-bit mapped address.
    fn net_mask(&self) -> (u128, u128) {
        let bits = u32::from(self.len) + if self.v4 { 96 } else { 0 };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits.min(128))
        };
        (self.addr & mask, mask)
    }
}

/// `--icmp-type` / `--icmpv6-type`: `typ` `None` is `any`; `code` `None`
/// is every code of the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMatch {
    pub v6: bool,
    pub typ: Option<u8>,
    pub code: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortDir {
    /// `--sports`
    Src,
    /// `--dports`
    Dst,
    /// `--ports`: either port.
    Either,
}

/// `-m multiport`: inclusive ranges, at most 15.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiportSpec {
    pub dir: PortDir,
    pub ports: Vec<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatisticSpec {
    /// Packet `packet` of every `every` reaching the rule (all workers).
    Nth { every: u32, packet: u32 },
    /// With probability `probability` (0.0..=1.0).
    Random { probability: f64 },
}

/// A rule's matches; every `Some` must match.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MatchSpec {
    pub iif: Option<Neg<IfaceMatch>>,
    pub oif: Option<Neg<IfaceMatch>>,
    pub src: Option<Neg<Prefix>>,
    pub dst: Option<Neg<Prefix>>,
    /// Protocol number; 0 is `all`.
    pub proto: Option<Neg<u8>>,
    /// Inclusive ranges; need the TCP/UDP header.
    pub sport: Option<Neg<(u16, u16)>>,
    pub dport: Option<Neg<(u16, u16)>>,
    /// (mask, comp): `flags & mask == comp`; needs the TCP header.
    pub tcp_flags: Option<Neg<(u8, u8)>>,
    pub icmp: Option<Neg<IcmpMatch>>,
    pub multiport: Option<Neg<MultiportSpec>>,
    /// Set of [`super::ct`] bits.
    pub ctstate: Option<Neg<u8>>,
    /// (value, mask): `mark & mask == value`.
    pub mark: Option<Neg<(u32, u32)>>,
    /// Evaluated after every other match.
    pub statistic: Option<Neg<StatisticSpec>>,
}

/// A chain of the ruleset being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainId(u32);

#[derive(Clone, Debug, PartialEq)]
pub enum TargetSpec {
    /// No target: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    Jump(ChainId),
    Goto(ChainId),
    /// `None`: port unreachable in the packet's family (REJECT's default).
    Reject(Option<RejectKind>),
    Log {
        prefix: String,
        level: u8,
    },
    /// `mark = (mark & !mask) | value`.
    Mark {
        value: u32,
        mask: u32,
    },
    Nat(NatAction),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Source line, kept for traces and counter listings.
    pub line: usize,
    pub matches: MatchSpec,
    pub target: TargetSpec,
}

/// Why a ruleset could not be built; `line` is the rule's (0 when the
/// problem is not one rule's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BuildError {
    pub line: usize,
    pub message: String,
}

impl BuildError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        BuildError {
            line,
            message: message.into(),
        }
    }
}

struct BuildChain {
    name: String,
    table: TableId,
    hook: Option<Hook>,
    policy: Option<Policy>,
    rules: Vec<RuleSpec>,
}

/// Collects chains and rules, then compiles them into a [`Ruleset`].
pub struct RulesetBuilder {
    n_ifaces: usize,
    chains: Vec<BuildChain>,
}

impl RulesetBuilder {
    /// `n_ifaces`: how many interfaces exist (interface indices are below).
    pub fn new(n_ifaces: usize) -> Self {
        RulesetBuilder {
            n_ifaces,
            chains: Vec::new(),
        }
    }

    /// The chain `name` of `table`, created on first use. A built-in name
    /// of the table (`FORWARD` in filter) is the built-in chain, policy
    /// ACCEPT until [`Self::set_policy`]; any other name is a user chain.
    pub fn chain(&mut self, table: TableId, name: &str) -> ChainId {
        if let Some(i) = self
            .chains
            .iter()
            .position(|c| c.table == table && c.name == name)
        {
            return ChainId(i as u32);
        }
        let hook = Hook::from_name(name).filter(|h| table.hooks().contains(h));
        self.chains.push(BuildChain {
            name: name.to_string(),
            table,
            hook,
            policy: hook.map(|_| Policy::Accept),
            rules: Vec::new(),
        });
        ChainId((self.chains.len() - 1) as u32)
    }

    /// Sets a built-in chain's policy; user chains have none.
    pub fn set_policy(&mut self, chain: ChainId, policy: Policy) -> Result<(), BuildError> {
        let c = &mut self.chains[chain.0 as usize];
        if c.hook.is_none() {
            return Err(BuildError::new(
                0,
                format!("user chain {} cannot have a policy", c.name),
            ));
        }
        c.policy = Some(policy);
        Ok(())
    }

    /// Appends a rule to `chain`.
    pub fn add_rule(&mut self, chain: ChainId, rule: RuleSpec) {
        self.chains[chain.0 as usize].rules.push(rule);
    }

    /// Compiles the ruleset, or returns every problem found.
    pub fn build(self) -> Result<Ruleset, Vec<BuildError>> {
        let mut errors = Vec::new();
        self.check_graph(&mut errors);

        // Built-in chains first would not change anything: chains keep
        // their creation order, each a contiguous range of rules.
        let if_words = (self.n_ifaces + 1).div_ceil(64);
        let mut c = Compiler {
            n_ifaces: self.n_ifaces,
            if_words,
            ifsets: Vec::new(),
            mports: Vec::new(),
            nth: 0,
            log_prefixes: Vec::new(),
            nat: Vec::new(),
        };
        let mut rules = Vec::new();
        let mut lines = Vec::new();
        let mut chains = Vec::new();
        for bc in &self.chains {
            let start = rules.len() as u32;
            for spec in &bc.rules {
                match c.rule(spec) {
                    Ok(r) => {
                        rules.push(r);
                        lines.push(spec.line);
                    }
                    Err(e) => errors.push(e),
                }
            }
            chains.push(ChainInfo {
                name: bc.name.clone().into_boxed_str(),
                table: bc.table,
                hook: bc.hook,
                policy: bc.policy,
                start,
                end: rules.len() as u32,
            });
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(errors);
        }
        let mut entry = [NO_CHAIN; SLOTS];
        let mut trivial = [true; SLOTS];
        for (i, ch) in chains.iter().enumerate() {
            if let Some(h) = ch.hook {
                let s = slot(ch.table, h);
                entry[s] = i as u32;
                trivial[s] = ch.start == ch.end && ch.policy == Some(Policy::Accept);
            }
        }
        let by_state = decide_all(&rules, &lines, &chains, &entry);
        Ok(Ruleset {
            rules: rules.into_boxed_slice(),
            lines: lines.into_boxed_slice(),
            chains: chains.into_boxed_slice(),
            entry,
            trivial,
            n_ifaces: self.n_ifaces,
            ifsets: c.ifsets.into_boxed_slice(),
            mports: c.mports.into_boxed_slice(),
            nth: (0..c.nth)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            log_prefixes: c.log_prefixes.into_boxed_slice(),
            nat: c.nat.into_boxed_slice(),
            by_state,
        })
    }

    /// Jump targets, loops and call depth.
    fn check_graph(&self, errors: &mut Vec<BuildError>) {
        for c in &self.chains {
            for r in &c.rules {
                if let TargetSpec::Jump(to) | TargetSpec::Goto(to) = &r.target {
                    let Some(t) = self.chains.get(to.0 as usize) else {
                        errors.push(BuildError::new(
                            r.line,
                            "jump to a chain of another ruleset",
                        ));
                        continue;
                    };
                    if t.table != c.table {
                        errors.push(BuildError::new(
                            r.line,
                            format!(
                                "jump from table {} to chain {} of table {}",
                                c.table.name(),
                                t.name,
                                t.table.name()
                            ),
                        ));
                    } else if t.hook.is_some() {
                        errors.push(BuildError::new(
                            r.line,
                            format!("cannot jump to built-in chain {}", t.name),
                        ));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return;
        }
        // Deepest call stack below each chain (jumps push, gotos do not);
        // state 1 = being computed (a second visit is a loop).
        let n = self.chains.len();
        let mut depth: Vec<Option<usize>> = vec![None; n];
        let mut state = vec![0u8; n];
        for i in 0..n {
            if let Err(e) = self.depth_below(i, &mut depth, &mut state) {
                errors.push(e);
                return;
            }
        }
        for (i, c) in self.chains.iter().enumerate() {
            if c.hook.is_some() && depth[i].unwrap_or(0) > MAX_DEPTH {
                errors.push(self.too_deep(i, &depth));
            }
        }
    }

    fn depth_below(
        &self,
        i: usize,
        depth: &mut Vec<Option<usize>>,
        state: &mut Vec<u8>,
    ) -> Result<usize, BuildError> {
        if let Some(d) = depth[i] {
            return Ok(d);
        }
        if state[i] == 1 {
            return Err(BuildError::new(
                0,
                format!("chain loop through {}", self.chains[i].name),
            ));
        }
        state[i] = 1;
        let mut d = 0;
        for r in &self.chains[i].rules {
            let (to, push) = match r.target {
                TargetSpec::Jump(to) => (to, 1),
                TargetSpec::Goto(to) => (to, 0),
                _ => continue,
            };
            let below = self.depth_below(to.0 as usize, depth, state).map_err(|e| {
                if e.line == 0 {
                    BuildError::new(r.line, e.message)
                } else {
                    e
                }
            })?;
            d = d.max(below + push);
        }
        state[i] = 2;
        depth[i] = Some(d);
        Ok(d)
    }

    /// The error for a too deep built-in chain: names the first jump on
    /// the deepest path that goes past [`MAX_DEPTH`].
    fn too_deep(&self, builtin: usize, depth: &[Option<usize>]) -> BuildError {
        let mut chain = builtin;
        let mut pushed = 0;
        loop {
            let best = self.chains[chain]
                .rules
                .iter()
                .filter_map(|r| match r.target {
                    TargetSpec::Jump(to) => Some((r, to, 1)),
                    TargetSpec::Goto(to) => Some((r, to, 0)),
                    _ => None,
                })
                .max_by_key(|(_, to, push)| depth[to.0 as usize].unwrap_or(0) + push);
            let Some((r, to, push)) = best else {
                return BuildError::new(0, "chain calls nest too deep");
            };
            pushed += push;
            if pushed > MAX_DEPTH {
                return BuildError::new(
                    r.line,
                    format!(
                        "chain calls nest deeper than {MAX_DEPTH} from {} (jump to {})",
                        self.chains[builtin].name, self.chains[to.0 as usize].name
                    ),
                );
            }
            chain = to.0 as usize;
        }
    }
}

// ------------------------------------------------------------ compiled form

/// Match bits of [`Rule::present`] / [`Rule::negated`].
pub(super) mod m {
    pub const IIF: u16 = 1 << 0;
    pub const OIF: u16 = 1 << 1;
    pub const SRC: u16 = 1 << 2;
    pub const DST: u16 = 1 << 3;
    pub const PROTO: u16 = 1 << 4;
    pub const SPORT: u16 = 1 << 5;
    pub const DPORT: u16 = 1 << 6;
    pub const FLAGS: u16 = 1 << 7;
    pub const MPORT: u16 = 1 << 8;
    pub const ICMP: u16 = 1 << 9;
    pub const CT: u16 = 1 << 10;
    pub const MARK: u16 = 1 << 11;
    pub const STAT: u16 = 1 << 12;
    /// Matches that need the TCP/UDP header.
    pub const L4: u16 = SPORT | DPORT | FLAGS | MPORT;
}

/// Family bits of [`Rule::family`]: which families the rule applies to.
pub(super) const FAM_V4: u8 = 1;
pub(super) const FAM_V6: u8 = 2;

#[derive(Clone, Copy, Debug)]
pub(super) enum Stat {
    None,
    /// `counter` indexes [`Ruleset::nth`].
    Nth {
        every: u32,
        packet: u32,
        counter: u32,
    },
    /// Matches when the top 32 bits of the worker's random draw are below.
    Random {
        threshold: u64,
    },
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Action {
    None,
    Accept,
    Drop,
    Return,
    Jump(u32),
    Goto(u32),
    Reject(RejectKind),
    /// Port unreachable in the packet's family.
    RejectDefault,
    /// `prefix` indexes [`Ruleset::log_prefixes`].
    Log {
        level: u8,
        prefix: u32,
    },
    Mark {
        value: u32,
        mask: u32,
    },
    /// Indexes [`Ruleset::nat`] (kept out of line: rules stay small).
    Nat(u32),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    pub present: u16,
    pub negated: u16,
    pub family: u8,
    pub proto: u8,
    pub flags_mask: u8,
    pub flags_comp: u8,
    pub ctstate: u8,
    pub icmp_any: bool,
    pub icmp_type: u8,
    pub icmp_code: (u8, u8),
    pub mport_dir: PortDir,
    pub mport_len: u8,
    pub mport_off: u32,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    /// Offsets into [`Ruleset::ifsets`].
    pub iif: u32,
    pub oif: u32,
    pub mark: (u32, u32),
    /// (network, mask).
    pub src: (u128, u128),
    pub dst: (u128, u128),
    pub stat: Stat,
    pub action: Action,
}

#[derive(Clone)]
pub(super) struct ChainInfo {
    pub name: Box<str>,
    pub table: TableId,
    pub hook: Option<Hook>,
    pub policy: Option<Policy>,
    /// Rules `start..end`.
    pub start: u32,
    pub end: u32,
}

pub(super) const SLOTS: usize = 15;
pub(super) const NO_CHAIN: u32 = u32::MAX;

/// Index of a (table, hook) built-in chain: policy counters and entry points.
pub(super) fn slot(table: TableId, hook: Hook) -> usize {
    table as usize * 5 + hook as usize
}

/// The compiled, immutable ruleset (see the module comment).
pub struct Ruleset {
    pub(super) rules: Box<[Rule]>,
    pub(super) lines: Box<[usize]>,
    pub(super) chains: Box<[ChainInfo]>,
    /// Built-in chain per [`slot`], or [`NO_CHAIN`].
    pub(super) entry: [u32; SLOTS],
    /// Per [`slot`]: no rules and policy ACCEPT (or no chain).
    pub(super) trivial: [bool; SLOTS],
    pub(super) n_ifaces: usize,
    /// Interface bitsets, `(n_ifaces + 1) / 64` words each rounded up; bit
    /// `n_ifaces` stands for "no interface".
    pub(super) ifsets: Box<[u64]>,
    pub(super) mports: Box<[(u16, u16)]>,
    /// `-m statistic --mode nth` counters, shared by all workers.
    pub(super) nth: Box<[CachePadded<AtomicU64>]>,
    pub(super) log_prefixes: Box<[Box<str>]>,
    pub(super) nat: Box<[NatAction]>,
    /// Per [`slot`], family (v4, v6) and conntrack state: the verdict the
    /// built-in chain gives every such packet, when its leading rules look
    /// at nothing but the state (see [`Ruleset::eval_state`]).
    pub(super) by_state: [[[Option<Decided>; CT_STATES]; 2]; SLOTS],
}

/// The five `--ctstate` bits ([`super::ct`]), one index each.
pub(super) const CT_STATES: usize = 5;

/// A verdict known from a packet's family and conntrack state alone: the
/// counter slot it counts in and the rule's line (0: the policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decided {
    pub slot: u32,
    pub line: u32,
    pub outcome: Outcome,
}

/// What every packet of family `fam` and state `state` gets from the
/// built-in chain `entry` (slot `s`), found by walking it as
/// [`Ruleset::eval`] would: a rule that applies to the family and tests
/// anything besides the state ends the walk with `None` (the packet must
/// be evaluated), as does a matching rule whose target is not a final
/// ACCEPT / DROP / REJECT (a jump, LOG, MARK, NAT, RETURN).
fn decide(
    rules: &[Rule],
    lines: &[usize],
    chain: &ChainInfo,
    s: usize,
    fam: u8,
    state: u8,
) -> Option<Decided> {
    for idx in chain.start..chain.end {
        let r = &rules[idx as usize];
        if r.family & fam == 0 {
            continue;
        }
        if r.present & !m::CT != 0 {
            return None;
        }
        let hit = r.present == 0 || ((state & r.ctstate != 0) != (r.negated & m::CT != 0));
        if !hit {
            continue;
        }
        let outcome = match r.action {
            Action::Accept => Outcome::Accept,
            Action::Drop => Outcome::Drop,
            Action::Reject(k) => Outcome::Reject(k),
            Action::RejectDefault => Outcome::Reject(RejectKind::port_unreachable(fam == FAM_V4)),
            _ => return None,
        };
        return Some(Decided {
            slot: idx,
            line: u32::try_from(lines[idx as usize]).ok()?,
            outcome,
        });
    }
    Some(Decided {
        slot: (rules.len() + s) as u32,
        line: 0,
        outcome: match chain.policy {
            Some(Policy::Drop) => Outcome::Drop,
            _ => Outcome::Accept,
        },
    })
}

/// [`decide`] for every built-in chain, family and state.
fn decide_all(
    rules: &[Rule],
    lines: &[usize],
    chains: &[ChainInfo],
    entry: &[u32; SLOTS],
) -> [[[Option<Decided>; CT_STATES]; 2]; SLOTS] {
    let mut out = [[[None; CT_STATES]; 2]; SLOTS];
    for (s, per_fam) in out.iter_mut().enumerate() {
        let Some(chain) = chains.get(entry[s] as usize) else {
            continue;
        };
        for (f, per_state) in per_fam.iter_mut().enumerate() {
            let fam = if f == 0 { FAM_V4 } else { FAM_V6 };
            for (k, d) in per_state.iter_mut().enumerate() {
                *d = decide(rules, lines, chain, s, fam, 1 << k);
            }
        }
    }
    out
}

/// A copy for tables that differ elsewhere (a live route change): the
/// `-m statistic --mode nth` counters continue from their current values.
impl Clone for Ruleset {
    fn clone(&self) -> Self {
        Ruleset {
            rules: self.rules.clone(),
            lines: self.lines.clone(),
            chains: self.chains.clone(),
            entry: self.entry,
            trivial: self.trivial,
            n_ifaces: self.n_ifaces,
            ifsets: self.ifsets.clone(),
            mports: self.mports.clone(),
            nth: self
                .nth
                .iter()
                .map(|c| CachePadded::new(AtomicU64::new(c.load(Ordering::Relaxed))))
                .collect(),
            log_prefixes: self.log_prefixes.clone(),
            nat: self.nat.clone(),
            by_state: self.by_state,
        }
    }
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("chains", &self.chains.len())
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Default for Ruleset {
    /// No rules, every policy ACCEPT.
    fn default() -> Self {
        Ruleset {
            rules: Box::new([]),
            lines: Box::new([]),
            chains: Box::new([]),
            entry: [NO_CHAIN; SLOTS],
            trivial: [true; SLOTS],
            n_ifaces: 0,
            ifsets: Box::new([]),
            mports: Box::new([]),
            nth: Box::new([]),
            log_prefixes: Box::new([]),
            nat: Box::new([]),
            by_state: [[[None; CT_STATES]; 2]; SLOTS],
        }
    }
}

/// Summed counters of one rule or policy, with its source line (0 for a
/// policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RuleCounts {
    pub line: usize,
    pub packets: u64,
    pub bytes: u64,
}

/// Counters of one chain, summed over workers (`iptables-save -c`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCounters<'a> {
    pub table: TableId,
    pub name: &'a str,
    /// `Some` for built-in chains.
    pub policy: Option<Policy>,
    /// Packets the policy decided (zero for user chains).
    pub policy_counts: RuleCounts,
    pub rules: Vec<RuleCounts>,
}

impl Ruleset {
    /// True when the built-in chain of `table` at `hook` would accept every
    /// packet without counting anything: no rules, policy ACCEPT (or the
    /// table has no such chain).
    #[inline]
    pub fn is_empty(&self, table: TableId, hook: Hook) -> bool {
        self.trivial[slot(table, hook)]
    }

    /// Counter slots a worker's [`RuleCounters`] needs: one per rule, then
    /// one per (table, hook) policy.
    pub fn counter_slots(&self) -> usize {
        self.rules.len() + SLOTS
    }

    /// Fresh counters for one worker.
    pub fn new_counters(&self) -> RuleCounters {
        RuleCounters::new(self.counter_slots())
    }

    /// The counter slot of rule `pos` (0-based) of chain `chain` of `table`.
    pub fn rule_counter_index(&self, table: TableId, chain: &str, pos: usize) -> Option<usize> {
        let c = self
            .chains
            .iter()
            .find(|c| c.table == table && &*c.name == chain)?;
        let i = c.start as usize + pos;
        (i < c.end as usize).then_some(i)
    }

    /// The counter slot of the policy of `table`'s chain at `hook`.
    pub fn policy_counter_index(&self, table: TableId, hook: Hook) -> usize {
        self.rules.len() + slot(table, hook)
    }

    /// The source line of the rule in counter slot `idx` (0 for policies).
    pub fn rule_line(&self, idx: usize) -> usize {
        self.lines.get(idx).copied().unwrap_or(0)
    }

    /// Number of rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Every chain with its rules' counters summed over `per_worker`, in
    /// build order.
    pub fn counters_view(&self, per_worker: &[&RuleCounters]) -> Vec<ChainCounters<'_>> {
        let sum = |i: usize, line: usize| {
            let mut c = RuleCounts {
                line,
                ..RuleCounts::default()
            };
            for w in per_worker {
                c.packets += w.packets(i);
                c.bytes += w.bytes(i);
            }
            c
        };
        self.chains
            .iter()
            .map(|ch| ChainCounters {
                table: ch.table,
                name: &ch.name,
                policy: ch.policy,
                policy_counts: match ch.hook {
                    Some(h) => sum(self.policy_counter_index(ch.table, h), 0),
                    None => RuleCounts::default(),
                },
                rules: (ch.start as usize..ch.end as usize)
                    .map(|i| sum(i, self.lines[i]))
                    .collect(),
            })
            .collect()
    }
}

/// Lowers [`RuleSpec`]s into [`Rule`]s, filling the side arrays.
struct Compiler {
    n_ifaces: usize,
    if_words: usize,
    ifsets: Vec<u64>,
    mports: Vec<(u16, u16)>,
    nth: u32,
    log_prefixes: Vec<Box<str>>,
    nat: Vec<NatAction>,
}

impl Compiler {
    fn ifset(&mut self, m: &IfaceMatch, line: usize) -> Result<u32, BuildError> {
        let off = self.ifsets.len();
        self.ifsets.resize(off + self.if_words, 0);
        let mut set = |bit: usize| self.ifsets[off + bit / 64] |= 1 << (bit % 64);
        for &i in &m.ifaces {
            if i as usize >= self.n_ifaces {
                return Err(BuildError::new(line, format!("no interface {i}")));
            }
            set(i as usize);
        }
        if m.none {
            set(self.n_ifaces);
        }
        Ok(off as u32)
    }

    fn rule(&mut self, spec: &RuleSpec) -> Result<Rule, BuildError> {
        let line = spec.line;
        let err = |msg: String| BuildError::new(line, msg);
        let ms = &spec.matches;
        let mut r = Rule {
            present: 0,
            negated: 0,
            family: FAM_V4 | FAM_V6,
            proto: 0,
            flags_mask: 0,
            flags_comp: 0,
            ctstate: 0,
            icmp_any: false,
            icmp_type: 0,
            icmp_code: (0, 0),
            mport_dir: PortDir::Either,
            mport_len: 0,
            mport_off: 0,
            sport: (0, 0),
            dport: (0, 0),
            iif: 0,
            oif: 0,
            mark: (0, 0),
            src: (0, 0),
            dst: (0, 0),
            stat: Stat::None,
            action: Action::None,
        };
        let family = |r: &mut Rule, v4: bool, what: &str| -> Result<(), BuildError> {
            let f = if v4 { FAM_V4 } else { FAM_V6 };
            if r.family & f == 0 {
                return Err(err(format!("{what} mixes IPv4 and IPv6 in one rule")));
            }
            r.family = f;
            Ok(())
        };
        fn mark_present<T>(r: &mut Rule, bit: u16, n: &Neg<T>) {
            r.present |= bit;
            if n.negated {
                r.negated |= bit;
            }
        }
        let range = |(lo, hi): (u16, u16), what: &str| {
            if lo > hi {
                Err(err(format!("{what} range {lo}:{hi} is reversed")))
            } else {
                Ok((lo, hi))
            }
        };

        if let Some(n) = &ms.iif {
            mark_present(&mut r, m::IIF, n);
            r.iif = self.ifset(&n.value, line)?;
        }
        if let Some(n) = &ms.oif {
            mark_present(&mut r, m::OIF, n);
            r.oif = self.ifset(&n.value, line)?;
        }
        for (bit, p, what) in [(m::SRC, &ms.src, "-s"), (m::DST, &ms.dst, "-d")] {
            if let Some(n) = p {
                let max = if n.value.v4 { 32 } else { 128 };
                if n.value.len > max {
                    return Err(err(format!(
                        "{what}: prefix length {} too long",
                        n.value.len
                    )));
                }
                family(&mut r, n.value.v4, what)?;
                mark_present(&mut r, bit, n);
                let nm = n.value.net_mask();
                if bit == m::SRC {
                    r.src = nm;
                } else {
                    r.dst = nm;
                }
            }
        }
        if let Some(n) = &ms.proto {
            mark_present(&mut r, m::PROTO, n);
            r.proto = n.value;
            match n.value {
                1 => family(&mut r, true, "-p icmp")?,
                58 => family(&mut r, false, "-p icmpv6")?,
                _ => {}
            }
        }
        if let Some(n) = &ms.sport {
            mark_present(&mut r, m::SPORT, n);
            r.sport = range(n.value, "--sport")?;
        }
        if let Some(n) = &ms.dport {
            mark_present(&mut r, m::DPORT, n);
            r.dport = range(n.value, "--dport")?;
        }
        if let Some(n) = &ms.tcp_flags {
            mark_present(&mut r, m::FLAGS, n);
            (r.flags_mask, r.flags_comp) = n.value;
        }
        if let Some(n) = &ms.icmp {
            mark_present(&mut r, m::ICMP, n);
            family(&mut r, !n.value.v6, "--icmp-type")?;
            match (n.value.typ, n.value.code) {
                (None, _) => r.icmp_any = true,
                (Some(t), c) => {
                    r.icmp_type = t;
                    r.icmp_code = c.map_or((0, 255), |c| (c, c));
                }
            }
        }
        if let Some(n) = &ms.multiport {
            if n.value.ports.is_empty() || n.value.ports.len() > MAX_MULTIPORT {
                return Err(err(format!(
                    "-m multiport needs 1 to {MAX_MULTIPORT} ports, not {}",
                    n.value.ports.len()
                )));
            }
            mark_present(&mut r, m::MPORT, n);
            r.mport_dir = n.value.dir;
            r.mport_off = self.mports.len() as u32;
            r.mport_len = n.value.ports.len() as u8;
            for p in &n.value.ports {
                self.mports.push(range(*p, "multiport")?);
            }
        }
        if let Some(n) = &ms.ctstate {
            mark_present(&mut r, m::CT, n);
            r.ctstate = n.value;
        }
        if let Some(n) = &ms.mark {
            mark_present(&mut r, m::MARK, n);
            r.mark = n.value;
        }
        if let Some(n) = &ms.statistic {
            mark_present(&mut r, m::STAT, n);
            r.stat = match n.value {
                StatisticSpec::Nth { every, packet } => {
                    if every == 0 || packet >= every {
                        return Err(err(format!(
                            "statistic nth: --packet {packet} must be below --every {every}"
                        )));
                    }
                    self.nth += 1;
                    Stat::Nth {
                        every,
                        packet,
                        counter: self.nth - 1,
                    }
                }
                StatisticSpec::Random { probability } => {
                    if !(0.0..=1.0).contains(&probability) {
                        return Err(err(format!(
                            "statistic random: probability {probability} not in 0..1"
                        )));
                    }
                    Stat::Random {
                        threshold: (probability * 4_294_967_296.0).round() as u64,
                    }
                }
            };
        }

        r.action = match &spec.target {
            TargetSpec::None => Action::None,
            TargetSpec::Accept => Action::Accept,
            TargetSpec::Drop => Action::Drop,
            TargetSpec::Return => Action::Return,
            TargetSpec::Jump(c) => Action::Jump(c.0),
            TargetSpec::Goto(c) => Action::Goto(c.0),
            TargetSpec::Reject(None) => Action::RejectDefault,
            TargetSpec::Reject(Some(k)) => {
                match k {
                    RejectKind::Icmp4 { .. } => family(&mut r, true, "REJECT")?,
                    RejectKind::Icmp6 { .. } => family(&mut r, false, "REJECT")?,
                    RejectKind::TcpReset => {}
                }
                Action::Reject(*k)
            }
            TargetSpec::Log { prefix, level } => {
                self.log_prefixes.push(prefix.as_str().into());
                Action::Log {
                    level: *level,
                    prefix: (self.log_prefixes.len() - 1) as u32,
                }
            }
            TargetSpec::Mark { value, mask } => Action::Mark {
                value: *value,
                mask: *mask,
            },
            TargetSpec::Nat(a) => {
                let ports = match a {
                    NatAction::Snat { ports, .. }
                    | NatAction::Dnat { ports, .. }
                    | NatAction::Masquerade { ports }
                    | NatAction::Redirect { ports } => *ports,
                };
                if let Some(p) = ports {
                    range(p, "NAT port")?;
                }
                if let NatAction::Snat { addrs, .. } | NatAction::Dnat { addrs, .. } = a {
                    check_range(addrs).map_err(err)?;
                    family(&mut r, addrs.v4, "NAT address")?;
                }
                self.nat.push(*a);
                Action::Nat((self.nat.len() - 1) as u32)
            }
        };
        Ok(r)
    }
}

/// A NAT range is one family and not reversed.
fn check_range(a: &AddrRange) -> Result<(), String> {
    let mapped = |x: u128| x >> 32 == 0xffff;
    if a.v4 && !(mapped(a.lo) && mapped(a.hi)) {
        return Err("IPv4 NAT range holds a non-IPv4 address".into());
    }
    if !a.v4 && (mapped(a.lo) || mapped(a.hi)) {
        return Err("IPv6 NAT range holds an IPv4-mapped address".into());
    }
    if a.lo > a.hi {
        return Err("NAT address range is reversed".into());
    }
    Ok(())
}
