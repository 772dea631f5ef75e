//! The compiled ruleset: what [`super::RulesetBuilder`] produces and the
//! evaluator reads.
//!
//! A rule is one fixed-size record: a bitmask of the matches it has, a
//! bitmask of which are negated, its family filter, the match values inline
//! (interface sets and multiport lists live in side arrays of the ruleset)
//! and its action with jumps resolved to chain numbers. The rules of a chain
//! are contiguous, so a chain is a range of rule indices, and a rule's index
//! is also its counter slot.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::spec::PortDir;
use super::{Hook, NatAction, Outcome, Policy, RejectKind, TableId};

/// Deepest chain of `-j` calls from a built-in chain (`-g` does not count).
pub const MAX_DEPTH: usize = 32;

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
    pub family: super::Family,
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
    /// Per family (IPv4, IPv6), built-in chain per [`slot`], or
    /// [`NO_CHAIN`].
    pub(super) entry: [[u32; SLOTS]; 2],
    /// Per family and [`slot`]: no rules and policy ACCEPT (or no chain).
    pub(super) trivial: [[bool; SLOTS]; 2],
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
            entry: [[NO_CHAIN; SLOTS]; 2],
            trivial: [[true; SLOTS]; 2],
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

impl Ruleset {
    /// True when the built-in chains of `table` at `hook` would accept
    /// every packet of either family without counting anything: no rules,
    /// policy ACCEPT (or the table has no such chain).
    #[inline]
    pub fn is_empty(&self, table: TableId, hook: Hook) -> bool {
        let s = slot(table, hook);
        self.trivial[0][s] && self.trivial[1][s]
    }

    /// The source line of the rule in counter slot `idx` (0 for policies).
    pub fn rule_line(&self, idx: usize) -> usize {
        self.lines.get(idx).copied().unwrap_or(0)
    }

    /// Number of rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}
