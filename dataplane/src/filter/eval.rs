//! The evaluator: one table at one hook over a [`PacketView`].
//!
//! Netfilter's walk: rules in order; a rule matches when its family filter
//! and every match hold; matching counts the rule (packets, bytes), then
//! its target runs. LOG, MARK and rules without a target continue; ACCEPT,
//! DROP, REJECT and NAT targets end the walk; `-j` pushes a return point on
//! a fixed stack, `-g` does not; RETURN or the end of a user chain pops
//! (after a `-g`, back to the chain that did the last `-j`); with nothing
//! to pop, the built-in chain's policy decides and is counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::counters::RuleCounters;
use super::log::{LogRecord, LogRing};
use super::ruleset::{
    Action, FAM_V4, FAM_V6, MAX_DEPTH, NO_CHAIN, Rule, Ruleset, SLOTS, Stat, m, slot,
};
use super::spec::PortDir;
use super::{Family, Hook, IfIndex, Outcome, PacketView, Policy, RejectKind, TableId};

/// LOG lines a worker may emit: 5 per second, bursts of 10 (the kernel's
/// `net_ratelimit` budget).
const LOG_INTERVAL_NS: u64 = 200_000_000;
const LOG_BURST: u64 = 10;

/// A worker's evaluation context, kept for the worker's life: its
/// counters, the shared LOG ring, the clock the caller sets per batch, the
/// state of `-m statistic --mode random` and of the LOG rate limit, and
/// what decided the last verdict.
#[derive(Debug)]
pub struct EvalCtx {
    pub counters: Arc<RuleCounters>,
    pub log: Arc<LogRing>,
    /// Nanoseconds, monotonic; set by the caller.
    pub now: u64,
    /// xorshift64 state (never 0).
    pub rng: u64,
    /// LOG budget in nanoseconds of refill (one line costs
    /// [`LOG_INTERVAL_NS`]) and when it was last refilled.
    log_credit: u64,
    log_last: u64,
    /// Return points of `-j` calls: (next rule, end of its chain). Kept
    /// here so an evaluation does not clear a fresh stack.
    stack: [(u32, u32); MAX_DEPTH],
    /// Source line of the rule that gave the last verdict; 0 when a policy
    /// (or an empty hook) did.
    pub last_rule_line: usize,
}

impl EvalCtx {
    /// `seed` fixes the random-match sequence (0 is replaced by a constant).
    pub fn new(counters: Arc<RuleCounters>, log: Arc<LogRing>, seed: u64) -> Self {
        EvalCtx {
            counters,
            log,
            now: 0,
            rng: if seed == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                seed
            },
            log_credit: LOG_BURST * LOG_INTERVAL_NS,
            log_last: 0,
            stack: [(0, 0); MAX_DEPTH],
            last_rule_line: 0,
        }
    }

    #[inline]
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Token bucket of the LOG rate limit.
    fn log_allowed(&mut self) -> bool {
        let elapsed = self.now.saturating_sub(self.log_last);
        self.log_last = self.log_last.max(self.now);
        self.log_credit = self
            .log_credit
            .saturating_add(elapsed)
            .min(LOG_BURST * LOG_INTERVAL_NS);
        if self.log_credit >= LOG_INTERVAL_NS {
            self.log_credit -= LOG_INTERVAL_NS;
            true
        } else {
            false
        }
    }
}

impl Ruleset {
    /// The verdict of `table`'s built-in chain at `hook` for a packet of
    /// `len` bytes, family `v4` and conntrack state `state` (one
    /// [`super::ct`] bit), when the chain's leading rules test nothing but
    /// the state: counted exactly as [`Ruleset::eval`] counts it. `None`:
    /// the packet must go through [`Ruleset::eval`]. Most packets of a
    /// stateful gateway are ESTABLISHED and meet
    /// `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT` first: this
    /// answers them without building a [`PacketView`].
    #[inline]
    pub fn eval_state(
        &self,
        table: TableId,
        hook: Hook,
        v4: bool,
        state: u8,
        len: u32,
        cx: &mut EvalCtx,
    ) -> Option<Outcome> {
        let k = state.trailing_zeros() as usize;
        if state.count_ones() != 1 {
            return None;
        }
        let d = (*self.by_state[slot(table, hook)][Family::index(v4)].get(k)?)?;
        cx.counters.hit(d.slot as usize, len);
        cx.last_rule_line = d.line as usize;
        Some(d.outcome)
    }

    /// The verdict of `table`'s built-in chain at `hook` for `pkt`. May
    /// change `pkt.mark` (MARK). A hook the table has no chain at accepts.
    pub fn eval(
        &self,
        table: TableId,
        hook: Hook,
        pkt: &mut PacketView,
        cx: &mut EvalCtx,
    ) -> Outcome {
        let s = slot(table, hook);
        cx.last_rule_line = 0;
        let f = Family::index(pkt.v4);
        let entry = self.entry[f][s];
        if entry == NO_CHAIN {
            return Outcome::Accept;
        }
        let fam = if pkt.v4 { FAM_V4 } else { FAM_V6 };
        let mut depth = 0;
        let chain = &self.chains[entry as usize];
        let (mut i, mut end) = (chain.start, chain.end);
        loop {
            if i == end {
                if depth == 0 {
                    self.counters_policy(f * SLOTS + s, pkt, cx);
                    return match chain.policy {
                        Some(Policy::Drop) => Outcome::Drop,
                        _ => Outcome::Accept,
                    };
                }
                depth -= 1;
                (i, end) = cx.stack[depth];
                continue;
            }
            let idx = i as usize;
            let r = &self.rules[idx];
            i += 1;
            if !self.matches(r, pkt, fam, cx) {
                continue;
            }
            cx.counters.hit(idx, pkt.len);
            let verdict = match r.action {
                Action::None => continue,
                Action::Accept => Outcome::Accept,
                Action::Drop => Outcome::Drop,
                Action::Reject(k) => Outcome::Reject(k),
                Action::RejectDefault => Outcome::Reject(RejectKind::port_unreachable(pkt.v4)),
                Action::Nat(n) => Outcome::Nat(self.nat[n as usize]),
                Action::Return => {
                    i = end;
                    continue;
                }
                Action::Jump(c) => {
                    // The builder bounds the call depth by MAX_DEPTH.
                    cx.stack[depth] = (i, end);
                    depth += 1;
                    let c = &self.chains[c as usize];
                    (i, end) = (c.start, c.end);
                    continue;
                }
                Action::Goto(c) => {
                    let c = &self.chains[c as usize];
                    (i, end) = (c.start, c.end);
                    continue;
                }
                Action::Log { level, .. } => {
                    self.log(idx, level, pkt, cx);
                    continue;
                }
                Action::Mark { value, mask } => {
                    pkt.mark = (pkt.mark & !mask) | value;
                    continue;
                }
            };
            cx.last_rule_line = self.lines[idx];
            return verdict;
        }
    }

    /// `fs`: family index * [`SLOTS`] + slot.
    fn counters_policy(&self, fs: usize, pkt: &PacketView, cx: &mut EvalCtx) {
        cx.counters.hit(self.rules.len() + fs, pkt.len);
    }

    /// Family filter, then the matches in a fixed order with statistic
    /// last (it consumes a count or a random draw only when the rest hold).
    #[inline(always)]
    fn matches(&self, r: &Rule, p: &PacketView, fam: u8, cx: &mut EvalCtx) -> bool {
        if r.family & fam == 0 {
            return false;
        }
        let present = r.present;
        if present == 0 {
            return true;
        }
        let neg = r.negated;
        // A present match must give `true` xor its `!`; `$hit` is only
        // computed for a present match.
        macro_rules! fails {
            ($bit:expr, $hit:expr) => {
                present & $bit != 0 && ($hit) == (neg & $bit != 0)
            };
        }
        // Port and flag matches never match a packet without its TCP/UDP
        // header, negated or not (the kernel's fragment rule).
        if present & m::L4 != 0 && !p.has_ports {
            return false;
        }
        // Cheap scalar compares first, then interface sets and addresses.
        if fails!(m::PROTO, r.proto == 0 || r.proto == p.proto)
            || fails!(m::DPORT, r.dport.0 <= p.dport && p.dport <= r.dport.1)
            || fails!(m::SPORT, r.sport.0 <= p.sport && p.sport <= r.sport.1)
            || fails!(m::FLAGS, p.tcp_flags & r.flags_mask == r.flags_comp)
            || fails!(m::CT, p.ctstate & r.ctstate != 0)
            || fails!(m::MARK, p.mark & r.mark.1 == r.mark.0)
            || fails!(m::IIF, self.if_member(r.iif, p.iif))
            || fails!(m::OIF, self.if_member(r.oif, p.oif))
            || fails!(m::SRC, p.src & r.src.1 == r.src.0)
            || fails!(m::DST, p.dst & r.dst.1 == r.dst.0)
        {
            return false;
        }
        if fails!(m::MPORT, self.multiport(r, p)) {
            return false;
        }
        if present & m::ICMP != 0 {
            let Some((t, c)) = p.icmp else {
                return false;
            };
            let hit = r.icmp_any || (t == r.icmp_type && r.icmp_code.0 <= c && c <= r.icmp_code.1);
            if fails!(m::ICMP, hit) {
                return false;
            }
        }
        if present & m::STAT != 0 {
            let hit = match r.stat {
                Stat::None => true,
                Stat::Nth {
                    every,
                    packet,
                    counter,
                } => match self.nth.get(counter as usize) {
                    Some(n) => {
                        n.fetch_add(1, Ordering::Relaxed) % u64::from(every) == u64::from(packet)
                    }
                    None => false,
                },
                Stat::Random { threshold } => (cx.random() >> 32) < threshold,
            };
            if fails!(m::STAT, hit) {
                return false;
            }
        }
        true
    }

    /// Whether interface `i` (`None`: no interface) is in the set at `off`.
    #[inline]
    fn if_member(&self, off: u32, i: Option<IfIndex>) -> bool {
        let bit = match i {
            Some(x) if (x as usize) < self.n_ifaces => x as usize,
            Some(_) => return false,
            None => self.n_ifaces,
        };
        self.ifsets
            .get(off as usize + bit / 64)
            .is_some_and(|w| (w >> (bit % 64)) & 1 != 0)
    }

    fn multiport(&self, r: &Rule, p: &PacketView) -> bool {
        let off = r.mport_off as usize;
        let Some(list) = self.mports.get(off..off + r.mport_len as usize) else {
            return false;
        };
        let has = |port: u16| list.iter().any(|&(lo, hi)| lo <= port && port <= hi);
        match r.mport_dir {
            PortDir::Src => has(p.sport),
            PortDir::Dst => has(p.dport),
            PortDir::Either => has(p.sport) || has(p.dport),
        }
    }

    /// LOG: rate limited per worker, then queued (never blocking).
    fn log(&self, rule: usize, level: u8, pkt: &PacketView, cx: &mut EvalCtx) {
        if !cx.log_allowed() {
            cx.counters.log_suppressed.inc();
            return;
        }
        cx.log.push(LogRecord {
            now: cx.now,
            rule: rule as u32,
            level,
            view: *pkt,
        });
    }
}
