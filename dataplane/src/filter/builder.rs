//! The builder the control plane fills: chains and rule specs in, a
//! [`Ruleset`] out. It checks what evaluation relies on: jumps stay in
//! their table and reach user chains, no loops, call depth at most
//! [`MAX_DEPTH`], values in range, and no rule that needs both families.
//! It also works out, per built-in chain, the verdicts a packet's family
//! and conntrack state alone decide ([`Ruleset::eval_state`]).

use std::sync::atomic::AtomicU64;

use crossbeam_utils::CachePadded;

use super::chains::{Call, CallGraph};
use super::expr::Field;
use super::lower::Compiler;
use super::ruleset::{
    Action, CT_STATES, ChainInfo, Decided, FAM_V4, FAM_V6, Limiter, MAX_DEPTH, NO_CHAIN, Op, Rule,
    Ruleset, SLOTS, slot,
};
use super::spec::{BuildError, ChainId, RuleSpec, TargetSpec};
use super::{Family, Hook, Outcome, Policy, RejectKind, TableId};

struct BuildChain {
    name: String,
    family: Family,
    table: TableId,
    hook: Option<Hook>,
    policy: Option<Policy>,
    /// Base chains: the order among the base chains of one slot (lower
    /// first). An iptables built-in chain has its table's standard
    /// priority ([`std_priority`]).
    priority: i32,
    /// An iptables built-in chain (at most one per family and slot).
    builtin: bool,
    rules: Vec<RuleSpec>,
}

/// The priority netfilter registers an iptables table's chain at `hook`
/// with (`NF_IP_PRI_*`): raw -300, mangle -150, nat -100 (DNAT) or 100
/// (SNAT), filter 0. nftables base chains name the same numbers.
pub fn std_priority(table: TableId, hook: Hook) -> i32 {
    match table {
        TableId::Raw => -300,
        TableId::Mangle => -150,
        TableId::Nat => match hook {
            Hook::Prerouting | Hook::Output => -100,
            _ => 100,
        },
        TableId::Filter => 0,
    }
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
        self.family_chain(Family::Inet, table, name)
    }

    /// [`Self::chain`] of one family's ruleset: its rules see only that
    /// family's packets, a built-in chain is that family's entry (with its
    /// own policy), and a user chain is apart from other families' chains
    /// of the same name. A ruleset holds either `inet` chains or IPv4 and
    /// IPv6 ones for a given built-in chain, never both (checked by
    /// [`Self::build`]).
    pub fn family_chain(&mut self, family: Family, table: TableId, name: &str) -> ChainId {
        if let Some(i) = self
            .chains
            .iter()
            .position(|c| c.family == family && c.table == table && c.name == name)
        {
            return ChainId(i as u32);
        }
        let hook = Hook::from_name(name).filter(|h| table.hooks().contains(h));
        self.chains.push(BuildChain {
            family,
            name: name.to_string(),
            table,
            hook,
            policy: hook.map(|_| Policy::Accept),
            priority: hook.map_or(0, |h| std_priority(table, h)),
            builtin: hook.is_some(),
            rules: Vec::new(),
        });
        ChainId((self.chains.len() - 1) as u32)
    }

    /// An nftables base chain: it runs at `table`'s stage at `hook`, with
    /// the other base chains of that stage (and the iptables built-in
    /// chain there) in `priority` order, an iptables chain first on a tie.
    /// `name` must be unique among the family's chains of `table`.
    pub fn base_chain(
        &mut self,
        family: Family,
        table: TableId,
        hook: Hook,
        name: &str,
        priority: i32,
        policy: Policy,
    ) -> ChainId {
        self.chains.push(BuildChain {
            family,
            name: name.to_string(),
            table,
            hook: Some(hook),
            policy: Some(policy),
            priority,
            builtin: false,
            rules: Vec::new(),
        });
        ChainId((self.chains.len() - 1) as u32)
    }

    /// A regular (user) chain `name` of `family` in `table`, created on
    /// first use; unlike [`Self::family_chain`], a built-in name is not
    /// special (nftables names its chains freely).
    pub fn user_chain(&mut self, family: Family, table: TableId, name: &str) -> ChainId {
        if let Some(i) = self
            .chains
            .iter()
            .position(|c| c.family == family && c.table == table && c.name == name)
        {
            return ChainId(i as u32);
        }
        self.chains.push(BuildChain {
            family,
            name: name.to_string(),
            table,
            hook: None,
            policy: None,
            priority: 0,
            builtin: false,
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
        let mut c = Compiler::new(self.n_ifaces);
        let mut rules = Vec::new();
        let mut lines = Vec::new();
        let mut chains = Vec::new();
        for bc in &self.chains {
            let start = rules.len() as u32;
            for spec in &bc.rules {
                match c.rule(spec, bc.family) {
                    Ok(r) => {
                        rules.push(r);
                        lines.push(spec.line);
                    }
                    Err(e) => errors.push(e),
                }
            }
            chains.push(ChainInfo {
                name: bc.name.clone().into_boxed_str(),
                family: bc.family,
                table: bc.table,
                hook: bc.hook,
                policy: bc.policy,
                start,
                end: rules.len() as u32,
                next: [NO_CHAIN; 2],
                policy_ctr: [NO_CHAIN; 2],
            });
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(errors);
        }
        // Per family and slot, the base chains in priority order.
        let mut entry = [[NO_CHAIN; SLOTS]; 2];
        let mut trivial = [[true; SLOTS]; 2];
        let mut extra_policies = 0u32;
        for (f, (entry, trivial)) in entry.iter_mut().zip(&mut trivial).enumerate() {
            for (s, (entry, trivial)) in entry.iter_mut().zip(trivial.iter_mut()).enumerate() {
                let mut bases: Vec<usize> = (0..chains.len())
                    .filter(|&i| {
                        let ch = &chains[i];
                        ch.hook.is_some_and(|h| slot(ch.table, h) == s)
                            && ch.family.indices().contains(&f)
                    })
                    .collect();
                bases.sort_by_key(|&i| (self.chains[i].priority, !self.chains[i].builtin, i));
                let builtins: Vec<usize> = bases
                    .iter()
                    .copied()
                    .filter(|&i| self.chains[i].builtin)
                    .collect();
                if builtins.len() > 1 {
                    let ch = &chains[builtins[1]];
                    errors.push(BuildError::new(
                        0,
                        format!(
                            "{} {} is both an inet chain and a {} one",
                            ch.table.name(),
                            ch.name,
                            if ch.family == Family::Inet {
                                chains[builtins[0]].family.name()
                            } else {
                                ch.family.name()
                            }
                        ),
                    ));
                    continue;
                }
                for (k, &i) in bases.iter().enumerate() {
                    chains[i].policy_ctr[f] = if k == 0 {
                        (rules.len() + f * SLOTS + s) as u32
                    } else {
                        extra_policies += 1;
                        (rules.len() + 2 * SLOTS) as u32 + extra_policies - 1
                    };
                    chains[i].next[f] = bases.get(k + 1).map_or(NO_CHAIN, |&n| n as u32);
                    *trivial &= chains[i].start == chains[i].end
                        && chains[i].policy == Some(Policy::Accept);
                }
                *entry = bases.first().map_or(NO_CHAIN, |&i| i as u32);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let by_state = decide_all(&rules, &c.ops, &lines, &chains, &entry);
        Ok(Ruleset {
            rules: rules.into_boxed_slice(),
            ops: c.ops.into_boxed_slice(),
            lines: lines.into_boxed_slice(),
            chains: chains.into_boxed_slice(),
            entry,
            extra_policies,
            trivial,
            n_ifaces: self.n_ifaces,
            ifsets: c.ifsets.into_boxed_slice(),
            ranges: c.ranges.into_boxed_slice(),
            limits: c.limits.iter().map(Limiter::new).collect(),
            ipsets: c.ipsets.into_boxed_slice(),
            dynsets: {
                let seed = std::hash::BuildHasher::hash_one(
                    &std::collections::hash_map::RandomState::new(),
                    c.dynsets.len(),
                );
                c.dynsets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| super::dynset::DynSet::new(s, seed ^ i as u64))
                    .collect()
            },
            needs: c.needs,
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
        let mut graph = CallGraph::new(self.chains.len());
        for (i, c) in self.chains.iter().enumerate() {
            for r in &c.rules {
                let (to, jump) = match r.target {
                    TargetSpec::Jump(to) => (to, true),
                    TargetSpec::Goto(to) => (to, false),
                    _ => continue,
                };
                let Some(t) = self.chains.get(to.0 as usize) else {
                    errors.push(BuildError::new(
                        r.line,
                        "jump to a chain of another ruleset",
                    ));
                    continue;
                };
                if t.family != c.family {
                    errors.push(BuildError::new(
                        r.line,
                        format!(
                            "jump from an {} chain to chain {} of the {} ruleset",
                            c.family.name(),
                            t.name,
                            t.family.name()
                        ),
                    ));
                } else if t.table != c.table {
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
                } else {
                    graph.add(
                        i,
                        Call {
                            to: to.0 as usize,
                            jump,
                            line: r.line,
                        },
                    );
                }
            }
        }
        if !errors.is_empty() {
            return;
        }
        let depth = match graph.depths(0..self.chains.len()) {
            Ok(d) => d,
            Err(l) => {
                // Named after the chain reached again, at the innermost
                // call with a line.
                let again = l.path.last().map_or(0, |(_, c)| c.to);
                let line = l
                    .path
                    .iter()
                    .rev()
                    .map(|(_, c)| c.line)
                    .find(|&x| x != 0)
                    .unwrap_or(0);
                errors.push(BuildError::new(
                    line,
                    format!("chain loop through {}", self.chains[again].name),
                ));
                return;
            }
        };
        for (i, c) in self.chains.iter().enumerate() {
            if c.hook.is_some() && depth[i].unwrap_or(0) > MAX_DEPTH {
                errors.push(match graph.first_call_past(i, &depth, MAX_DEPTH) {
                    Some(call) => BuildError::new(
                        call.line,
                        format!(
                            "chain calls nest deeper than {MAX_DEPTH} from {} (jump to {})",
                            c.name, self.chains[call.to].name
                        ),
                    ),
                    None => BuildError::new(0, "chain calls nest too deep"),
                });
            }
        }
    }
}

/// What every packet of family `fam` and state `state` gets from the
/// built-in chain `entry` (slot `s`), found by walking it as
/// [`Ruleset::eval`] would: a rule that applies to the family and tests
/// anything besides the state ends the walk with `None` (the packet must
/// be evaluated), as does a matching rule whose target is not a final
/// ACCEPT / DROP / REJECT (a jump, LOG, MARK, NAT, RETURN).
fn decide(
    rules: &[Rule],
    ops: &[Op],
    lines: &[usize],
    chain: &ChainInfo,
    f: usize,
    fam: u8,
    state: u8,
) -> Option<Decided> {
    for idx in chain.start..chain.end {
        let r = &rules[idx as usize];
        if r.family & fam == 0 {
            continue;
        }
        let start = r.ops_start as usize;
        let mut hit = true;
        for op in &ops[start..start + r.ops_len as usize] {
            match *op {
                Op::Bits {
                    field: Field::CtState,
                    neg,
                    bits,
                } => hit &= (u32::from(state) & bits != 0) != neg,
                _ => return None,
            }
        }
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
        slot: chain.policy_ctr[f],
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
    ops: &[Op],
    lines: &[usize],
    chains: &[ChainInfo],
    entry: &[[u32; SLOTS]; 2],
) -> [[[Option<Decided>; CT_STATES]; 2]; SLOTS] {
    let mut out = [[[None; CT_STATES]; 2]; SLOTS];
    for (s, per_fam) in out.iter_mut().enumerate() {
        for (f, per_state) in per_fam.iter_mut().enumerate() {
            let Some(chain) = chains.get(entry[f][s] as usize) else {
                continue;
            };
            let fam = if f == 0 { FAM_V4 } else { FAM_V6 };
            for (k, d) in per_state.iter_mut().enumerate() {
                *d = decide(rules, ops, lines, chain, f, fam, 1 << k)
                    // An accept of one base chain of several decides nothing.
                    .filter(|d| chain.next[f] == NO_CHAIN || d.outcome != Outcome::Accept);
            }
        }
    }
    out
}
