//! Rule counters: each worker's own (packets, bytes) per rule and per
//! built-in chain policy, and the sums `iptables-save -c` shows.

use super::ruleset::{Ruleset, SLOTS, slot};
use super::{Family, Hook, Policy, TableId};
use crate::stats::Counter;

#[derive(Debug, Default)]
struct Slot {
    packets: Counter,
    bytes: Counter,
}

/// One worker's rule counters: a (packets, bytes) pair per
/// [`Ruleset::counter_slots`] slot, written by that worker only and summed
/// by [`Ruleset::counters_view`]. Made for one ruleset
/// ([`Ruleset::new_counters`]); a new ruleset starts new counters, as
/// iptables-restore does.
#[derive(Debug)]
pub struct RuleCounters {
    slots: Box<[Slot]>,
    /// LOG lines this worker left out by its rate limit.
    pub log_suppressed: Counter,
}

impl RuleCounters {
    pub fn new(slots: usize) -> Self {
        RuleCounters {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            log_suppressed: Counter::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn packets(&self, slot: usize) -> u64 {
        self.slots.get(slot).map_or(0, |s| s.packets.get())
    }

    pub fn bytes(&self, slot: usize) -> u64 {
        self.slots.get(slot).map_or(0, |s| s.bytes.get())
    }

    #[inline]
    pub(super) fn hit(&self, slot: usize, len: u32) {
        // Counters made for another ruleset miss some slots: those counts
        // are lost rather than the worker stopped.
        if let Some(s) = self.slots.get(slot) {
            s.packets.inc();
            s.bytes.add(u64::from(len));
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
    pub family: Family,
    pub table: TableId,
    pub name: &'a str,
    /// `Some` for built-in chains.
    pub policy: Option<Policy>,
    /// Packets the policy decided (zero for user chains).
    pub policy_counts: RuleCounts,
    pub rules: Vec<RuleCounts>,
}

impl Ruleset {
    /// Counter slots a worker's [`RuleCounters`] needs: one per rule, then
    /// one per (family, table, hook) policy.
    pub fn counter_slots(&self) -> usize {
        self.rules.len() + 2 * SLOTS + self.extra_policies as usize
    }

    /// Fresh counters for one worker.
    pub fn new_counters(&self) -> RuleCounters {
        RuleCounters::new(self.counter_slots())
    }

    /// The counter slot of rule `pos` (0-based) of chain `chain` of `table`
    /// (the first family's chain of that name).
    pub fn rule_counter_index(&self, table: TableId, chain: &str, pos: usize) -> Option<usize> {
        let c = self
            .chains
            .iter()
            .find(|c| c.table == table && &*c.name == chain)?;
        let i = c.start as usize + pos;
        (i < c.end as usize).then_some(i)
    }

    /// [`Self::rule_counter_index`] of the chain of `family`.
    pub fn family_rule_counter_index(
        &self,
        family: Family,
        table: TableId,
        chain: &str,
        pos: usize,
    ) -> Option<usize> {
        let c = self
            .chains
            .iter()
            .find(|c| c.family == family && c.table == table && &*c.name == chain)?;
        let i = c.start as usize + pos;
        (i < c.end as usize).then_some(i)
    }

    /// The counter slot of the policy of `table`'s chain at `hook` for
    /// packets of family `v4` (an `inet` chain counts each family in its
    /// own slot; [`Self::counters_view`] sums them).
    pub fn policy_counter_index(&self, table: TableId, hook: Hook, v4: bool) -> usize {
        self.rules.len() + Family::index(v4) * SLOTS + slot(table, hook)
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
                family: ch.family,
                table: ch.table,
                name: &ch.name,
                policy: ch.policy,
                policy_counts: match ch.hook {
                    Some(_) => {
                        let mut c = RuleCounts::default();
                        for &f in ch.family.indices() {
                            let n = sum(ch.policy_ctr[f] as usize, 0);
                            c.packets += n.packets;
                            c.bytes += n.bytes;
                        }
                        c
                    }
                    None => RuleCounts::default(),
                },
                rules: (ch.start as usize..ch.end as usize)
                    .map(|i| sum(i, self.lines[i]))
                    .collect(),
            })
            .collect()
    }
}
