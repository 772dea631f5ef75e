//! The compiled ruleset: what [`super::RulesetBuilder`] produces and the
//! evaluator reads.
//!
//! A rule is one fixed-size record: its family filter, the range of its
//! compiled expressions ([`Op`]s, constants inline; interface sets and
//! range lists in side arrays of the ruleset) and its action with jumps
//! resolved to chain numbers. The rules of a chain are contiguous, so a
//! chain is a range of rule indices, and a rule's index is also its
//! counter slot.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::expr::{Field, LimitSpec};
use super::{Hook, NatAction, Outcome, Policy, RejectKind, TableId};

/// Deepest chain of `-j` calls from a built-in chain (`-g` does not count).
pub const MAX_DEPTH: usize = 32;

/// Family bits of [`Rule::family`]: which families the rule applies to.
pub(super) const FAM_V4: u8 = 1;
pub(super) const FAM_V6: u8 = 2;

/// Compiled `-m statistic`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stat {
    /// `counter` indexes [`Ruleset::nth`].
    Nth {
        every: u32,
        packet: u32,
        counter: u32,
    },
    /// Matches when the top 32 bits of the worker's random draw are below.
    Random { threshold: u64 },
}

/// A compiled expression ([`super::Expr`] lowered): constants inline,
/// lists in the ruleset's side arrays.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    /// `field & mask` in `lo..=hi` (a scalar field).
    Cmp {
        field: Field,
        neg: bool,
        mask: u32,
        lo: u32,
        hi: u32,
    },
    /// `field & mask == value` (a 128-bit field).
    Wide {
        field: Field,
        neg: bool,
        mask: u128,
        value: u128,
    },
    Bits {
        field: Field,
        neg: bool,
        bits: u32,
    },
    /// Offset into [`Ruleset::ifsets`].
    Iface {
        out: bool,
        phys: bool,
        neg: bool,
        off: u32,
    },
    /// `len` ranges from `off` in [`Ruleset::ranges`].
    InRanges {
        field: Field,
        alt: Option<Field>,
        neg: bool,
        off: u32,
        len: u32,
    },
    Stat {
        neg: bool,
        stat: Stat,
    },
    /// Indexes [`Ruleset::limits`].
    Limit {
        neg: bool,
        id: u32,
    },
    /// [`super::Expr::Draw`]; `arg`: the `nth` counter (inc) or the seed
    /// (hash).
    Draw {
        kind: u8,
        fields: u8,
        modulus: u32,
        offset: u32,
        arg: u32,
    },
    /// [`super::Expr::SetLookup`]: `set` indexes [`Ruleset::dynsets`].
    SetLookup {
        set: u16,
        fields: u8,
        neg: bool,
    },
    /// [`super::Expr::SetUpdate`]; `limit`: an index into
    /// [`Ruleset::limits`] (its interval and tolerance; the state is the
    /// element's) or `u32::MAX`.
    SetUpdate {
        set: u16,
        fields: u8,
        refresh: bool,
        over: bool,
        full_holds: bool,
        timeout_ms: u32,
        limit: u32,
    },
    /// [`super::Expr::Recent`]; `mode` as [`super::RecentMode`] in
    /// declaration order.
    Recent {
        set: u16,
        fields: u8,
        mode: u8,
        neg: bool,
        hitcount: u16,
        seconds: u32,
    },
    /// [`super::Expr::IpSet`]: `set` indexes [`Ruleset::ipsets`].
    IpSet {
        set: u16,
        field: Field,
        port: Option<Field>,
        neg: bool,
    },
    /// [`super::Field::Reg`] in `lo..=hi`.
    Reg {
        neg: bool,
        lo: u32,
        hi: u32,
    },
}

/// [`Op::Draw`] kinds.
pub(super) const DRAW_INC: u8 = 0;
pub(super) const DRAW_RANDOM: u8 = 1;
pub(super) const DRAW_HASH: u8 = 2;
pub(super) const DRAW_SYMHASH: u8 = 3;

impl Op {
    /// Evaluation order within a run of stateless expressions: cheap
    /// scalar compares first, then interface sets, addresses, lists.
    pub(super) fn cost(&self) -> u8 {
        match self {
            Op::Cmp { .. } | Op::Bits { .. } | Op::Reg { .. } => 0,
            Op::SetLookup { .. } => 3,
            Op::Iface { .. } => 1,
            Op::Wide { .. } => 2,
            Op::InRanges { .. } | Op::IpSet { .. } => 3,
            Op::Stat { .. }
            | Op::Limit { .. }
            | Op::Draw { .. }
            | Op::SetUpdate { .. }
            | Op::Recent { .. } => u8::MAX,
        }
    }
}

/// A `limit` shared by all workers: GCRA on one atomic, the theoretical
/// arrival time of the next packet in nanoseconds.
#[derive(Debug)]
pub(super) struct Limiter {
    /// Nanoseconds one packet costs (`per_ns / rate`).
    pub interval: u64,
    /// How far ahead of now the arrival time may run (`interval * (burst - 1)`).
    pub tolerance: u64,
    pub tat: CachePadded<AtomicU64>,
}

impl Limiter {
    pub(super) fn new(spec: &LimitSpec) -> Self {
        let interval = (spec.per_ns / u64::from(spec.rate.max(1))).max(1);
        Limiter {
            interval,
            tolerance: interval.saturating_mul(u64::from(spec.burst.max(1) - 1)),
            tat: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Whether a packet at `now` is within the limit (and takes its
    /// place if so).
    #[inline]
    pub(super) fn admit(&self, now: u64) -> bool {
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance {
                return false;
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }
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
    CtMark {
        value: u32,
        mask: u32,
    },
    SaveMark {
        nfmask: u32,
        ctmask: u32,
    },
    RestoreMark {
        nfmask: u32,
        ctmask: u32,
    },
    Notrack,
    Mss(u16),
    Helper(crate::conntrack::HelperKind),
    /// Indexes [`Ruleset::nat`] (kept out of line: rules stay small).
    Nat(u32),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Rule {
    /// [`FAM_V4`] / [`FAM_V6`] bits.
    pub family: u8,
    /// Its expressions: `ops[start..start + len]`.
    pub ops_len: u16,
    pub ops_start: u32,
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
    /// A base chain: per family index, the base chain that runs after it
    /// at the same (table, hook) slot when it accepts ([`NO_CHAIN`]: none).
    pub next: [u32; 2],
    /// A base chain: per family index, the counter slot of its policy.
    pub policy_ctr: [u32; 2],
}

pub(super) const SLOTS: usize = 20;
pub(super) const NO_CHAIN: u32 = u32::MAX;

/// Index of a (table, hook) built-in chain: policy counters and entry points.
pub(super) fn slot(table: TableId, hook: Hook) -> usize {
    table as usize * 5 + hook as usize
}

/// The compiled, immutable ruleset (see the module comment).
pub struct Ruleset {
    pub(super) rules: Box<[Rule]>,
    pub(super) ops: Box<[Op]>,
    pub(super) lines: Box<[usize]>,
    pub(super) chains: Box<[ChainInfo]>,
    /// Per family (IPv4, IPv6), the first base chain per [`slot`], or
    /// [`NO_CHAIN`]; the others follow through [`ChainInfo::next`].
    pub(super) entry: [[u32; SLOTS]; 2],
    /// Policy counters beyond the first base chain of each slot.
    pub(super) extra_policies: u32,
    /// Per family and [`slot`]: no rules and policy ACCEPT (or no chain).
    pub(super) trivial: [[bool; SLOTS]; 2],
    pub(super) n_ifaces: usize,
    /// Interface bitsets, `(n_ifaces + 1) / 64` words each rounded up; bit
    /// `n_ifaces` stands for "no interface".
    pub(super) ifsets: Box<[u64]>,
    pub(super) ranges: Box<[(u128, u128)]>,
    /// `limit` states, shared by all workers.
    pub(super) limits: Box<[Limiter]>,
    /// Sets the packet path writes, shared by all workers (and by copies
    /// of this ruleset).
    pub(super) dynsets: std::sync::Arc<[super::dynset::DynSet]>,
    /// The ipsets rules name (shared with the control plane, which
    /// changes their contents).
    pub(super) ipsets: Box<[std::sync::Arc<super::ipset::IpSetTable>]>,
    /// [`super::needs`] bits: what the pipeline must fill in the view.
    pub(super) needs: u8,
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
            ops: self.ops.clone(),
            lines: self.lines.clone(),
            chains: self.chains.clone(),
            entry: self.entry,
            extra_policies: self.extra_policies,
            trivial: self.trivial,
            n_ifaces: self.n_ifaces,
            ifsets: self.ifsets.clone(),
            ranges: self.ranges.clone(),
            limits: self
                .limits
                .iter()
                .map(|l| Limiter {
                    interval: l.interval,
                    tolerance: l.tolerance,
                    tat: CachePadded::new(AtomicU64::new(l.tat.load(Ordering::Relaxed))),
                })
                .collect(),
            needs: self.needs,
            dynsets: self.dynsets.clone(),
            ipsets: self.ipsets.clone(),
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
            ops: Box::new([]),
            lines: Box::new([]),
            chains: Box::new([]),
            entry: [[NO_CHAIN; SLOTS]; 2],
            extra_policies: 0,
            trivial: [[true; SLOTS]; 2],
            n_ifaces: 0,
            ifsets: Box::new([]),
            ranges: Box::new([]),
            limits: Box::new([]),
            dynsets: std::sync::Arc::new([]),
            ipsets: Box::new([]),
            needs: 0,
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

    /// What the pipeline must fill in a [`super::PacketView`] beyond the
    /// fields it always fills ([`super::needs`] bits).
    #[inline]
    pub fn needs(&self) -> u8 {
        self.needs
    }

    /// Whether a rule names the bridge port a packet leaves by
    /// (`--physdev-out`): flooded bridge frames are then checked per port.
    pub fn uses_physdev_out(&self) -> bool {
        self.ops.iter().any(|o| {
            matches!(
                o,
                Op::Iface {
                    phys: true,
                    out: true,
                    ..
                }
            )
        })
    }

    /// Per dynamic set: its name, elements held (expired ones not yet
    /// reused included) and insertions refused because it was full.
    pub fn set_stats(&self) -> Vec<(String, u32, u64)> {
        self.dynsets
            .iter()
            .map(|s| (s.name.to_string(), s.len(), s.full.load(Ordering::Relaxed)))
            .collect()
    }

    /// Number of rules in all chains.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}
