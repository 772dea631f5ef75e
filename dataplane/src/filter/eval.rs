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
use super::dynset::{KeyVals, gcra, hash_key};
use super::expr::Field;
use super::log::{LogRecord, LogRing};
use super::ruleset::{
    Action, DRAW_INC, DRAW_RANDOM, DRAW_SYMHASH, FAM_V4, FAM_V6, MAX_DEPTH, NO_CHAIN, Op, Rule,
    Ruleset, Stat, slot,
};
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
    /// The number the last `numgen`/`jhash` drew ([`super::Field::Reg`]).
    reg: u32,
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
            reg: 0,
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
        // The base chain running: nftables may put several at one hook,
        // run in priority order; an accept ends only the one that gives
        // it, anything else (drop, reject, a translation) is final.
        let mut base = &self.chains[entry as usize];
        let (mut i, mut end) = (base.start, base.end);
        loop {
            if i == end {
                if depth == 0 {
                    cx.counters.hit(base.policy_ctr[f] as usize, pkt.len);
                    if base.policy == Some(Policy::Drop) {
                        return Outcome::Drop;
                    }
                    match base.next[f] {
                        NO_CHAIN => return Outcome::Accept,
                        n => {
                            base = &self.chains[n as usize];
                            (i, end) = (base.start, base.end);
                            continue;
                        }
                    }
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
                Action::Accept if base.next[f] != NO_CHAIN => {
                    base = &self.chains[base.next[f] as usize];
                    (i, end, depth) = (base.start, base.end, 0);
                    continue;
                }
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
                    pkt.mark = (pkt.mark & !mask) ^ value;
                    continue;
                }
                Action::Mss(v) => {
                    pkt.mss = if pkt.mss == 0 { v } else { pkt.mss.min(v) };
                    continue;
                }
                Action::Notrack => {
                    pkt.notrack = true;
                    continue;
                }
                Action::Helper(k) => {
                    pkt.helper = Some(k);
                    continue;
                }
                Action::CtMark { value, mask } => {
                    if let Some(c) = pkt.ct.as_mut() {
                        c.mark = (c.mark & !mask) ^ value;
                    }
                    continue;
                }
                Action::SaveMark { nfmask, ctmask } => {
                    let mark = pkt.mark;
                    if let Some(c) = pkt.ct.as_mut() {
                        c.mark = (c.mark & !ctmask) ^ (mark & nfmask);
                    }
                    continue;
                }
                Action::RestoreMark { nfmask, ctmask } => {
                    if let Some(c) = pkt.ct {
                        pkt.mark = (pkt.mark & !nfmask) ^ (c.mark & ctmask);
                    }
                    continue;
                }
            };
            cx.last_rule_line = self.lines[idx];
            return verdict;
        }
    }

    /// Family filter, then every expression in its compiled order.
    #[inline(always)]
    fn matches(&self, r: &Rule, p: &PacketView, fam: u8, cx: &mut EvalCtx) -> bool {
        if r.family & fam == 0 {
            return false;
        }
        let start = r.ops_start as usize;
        let ops = &self.ops[start..start + r.ops_len as usize];
        ops.iter().all(|op| self.op(op, p, cx))
    }

    /// One expression. A field the packet lacks fails it, `!` or not.
    #[inline(always)]
    fn op(&self, op: &Op, p: &PacketView, cx: &mut EvalCtx) -> bool {
        match *op {
            Op::Cmp {
                field,
                neg,
                mask,
                lo,
                hi,
            } => match load(field, p) {
                Some(v) => {
                    let v = v & mask;
                    (lo <= v && v <= hi) != neg
                }
                None => false,
            },
            Op::Wide {
                field,
                neg,
                mask,
                value,
            } => match load_wide(field, p) {
                Some(v) => (v & mask == value) != neg,
                None => false,
            },
            Op::Bits { field, neg, bits } => match load(field, p) {
                Some(v) => (v & bits != 0) != neg,
                None => false,
            },
            Op::Iface {
                out,
                phys,
                neg,
                off,
            } => {
                let i = match (phys, out) {
                    (false, false) => p.iif,
                    (false, true) => p.oif,
                    (true, false) => p.phys_in,
                    (true, true) => p.phys_out,
                };
                self.if_member(off, i) != neg
            }
            Op::InRanges {
                field,
                alt,
                neg,
                off,
                len,
            } => {
                let list = &self.ranges[off as usize..(off + len) as usize];
                let Some(a) = load_any(field, p) else {
                    return false;
                };
                let mut hit = in_ranges(list, a);
                if let Some(f) = alt
                    && !hit
                {
                    let Some(b) = load_any(f, p) else {
                        return false;
                    };
                    hit = in_ranges(list, b);
                }
                hit != neg
            }
            Op::Stat { neg, stat } => {
                let hit = match stat {
                    Stat::Nth {
                        every,
                        packet,
                        counter,
                    } => match self.nth.get(counter as usize) {
                        Some(n) => {
                            n.fetch_add(1, Ordering::Relaxed) % u64::from(every)
                                == u64::from(packet)
                        }
                        None => false,
                    },
                    Stat::Random { threshold } => (cx.random() >> 32) < threshold,
                };
                hit != neg
            }
            Op::Limit { neg, id } => {
                self.limits
                    .get(id as usize)
                    .is_some_and(|l| l.admit(cx.now))
                    != neg
            }
            Op::Draw {
                kind,
                fields,
                modulus,
                offset,
                arg,
            } => {
                let n: u64 = match kind {
                    DRAW_INC => self
                        .nth
                        .get(arg as usize)
                        .map_or(0, |n| n.fetch_add(1, Ordering::Relaxed)),
                    DRAW_RANDOM => cx.random() >> 32,
                    _ => hash_fields(p, fields, arg, kind == DRAW_SYMHASH),
                };
                cx.reg = (n % u64::from(modulus)) as u32 + offset;
                true
            }
            Op::Reg { neg, lo, hi } => (lo <= cx.reg && cx.reg <= hi) != neg,
            Op::Recent {
                set,
                fields,
                mode,
                neg,
                hitcount,
                seconds,
            } => {
                use super::expr::RecentMode as M;
                let s = &self.dynsets[set as usize];
                let tag = s.tag(&KeyVals::of(p), fields);
                let now = cx.now;
                let hit = if mode == M::Set as u8 {
                    if let Some(k) = s.upsert_at(tag, now, s.timeout_ns, true) {
                        s.hit(k, now);
                    }
                    true
                } else {
                    match s.find(tag, now) {
                        None => false,
                        Some(k) if mode == M::Remove as u8 => {
                            s.remove(k);
                            true
                        }
                        Some(k) => {
                            let held = if seconds == 0 && hitcount == 0 {
                                true
                            } else {
                                let since = if seconds == 0 {
                                    0
                                } else {
                                    now.saturating_sub(u64::from(seconds) * 1_000_000_000)
                                };
                                s.hits_since(k, since) >= u32::from(hitcount.max(1))
                            };
                            if held && mode == M::Update as u8 {
                                s.hit(k, now);
                                // Refreshed: the least recently seen go first.
                                s.upsert_at(tag, now, s.timeout_ns, true);
                            }
                            held
                        }
                    }
                };
                hit != neg
            }
            Op::IpSet {
                set,
                field,
                port,
                neg,
            } => {
                let s = &self.ipsets[set as usize];
                match (load_any(field, p), port) {
                    (Some(a), None) => s.contains(a) != neg,
                    (Some(a), Some(f)) => match load(f, p) {
                        Some(pt) => s.contains_port(a, p.proto, pt as u16) != neg,
                        None => false,
                    },
                    (None, _) => false,
                }
            }
            Op::SetLookup { set, fields, neg } => {
                let s = &self.dynsets[set as usize];
                s.contains(s.tag(&KeyVals::of(p), fields), cx.now) != neg
            }
            Op::SetUpdate {
                set,
                fields,
                refresh,
                over,
                full_holds,
                timeout_ms,
                limit,
            } => {
                let s = &self.dynsets[set as usize];
                let timeout = if timeout_ms == 0 {
                    s.timeout_ns
                } else {
                    u64::from(timeout_ms) * 1_000_000
                };
                let Some(slot) = s.upsert(s.tag(&KeyVals::of(p), fields), cx.now, timeout, refresh)
                else {
                    return full_holds;
                };
                match self.limits.get(limit as usize) {
                    None => true,
                    Some(l) => gcra(&slot.tat, l.interval, l.tolerance, cx.now) != over,
                }
            }
        }
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

/// The hash `jhash`/`symhash` draw from: the chosen fields under the
/// seed (`dynset::hash_key`); `symmetric` orders addresses and ports so
/// both directions of a flow hash alike, over all of them.
fn hash_fields(p: &PacketView, fields: u8, seed: u32, symmetric: bool) -> u64 {
    let mut k = KeyVals::of(p);
    let mut fields = fields;
    if symmetric {
        if (k.src, k.sport) > (k.dst, k.dport) {
            (k.src, k.dst, k.sport, k.dport) = (k.dst, k.src, k.dport, k.sport);
        }
        fields = 0xff;
    }
    hash_key(&k, fields, u64::from(seed))
}

/// A scalar field of the packet; `None` when the packet lacks it.
#[inline(always)]
fn load(f: Field, p: &PacketView) -> Option<u32> {
    let tcp_udp = || p.has_ports.then_some(());
    let ct = || p.ct.as_ref();
    Some(match f {
        Field::NfProto => {
            if p.v4 {
                2
            } else {
                10
            }
        }
        Field::L4Proto => p.proto.into(),
        Field::Mark => p.mark,
        Field::Len => p.len,
        Field::Ttl => p.ttl.into(),
        Field::Tos => p.tos.into(),
        Field::Dscp => (p.tos >> 2).into(),
        Field::PktType => p.pkttype.into(),
        Field::Sport => {
            tcp_udp()?;
            p.sport.into()
        }
        Field::Dport => {
            tcp_udp()?;
            p.dport.into()
        }
        Field::TcpFlags => {
            tcp_udp()?;
            if p.proto != 6 {
                return None;
            }
            p.tcp_flags.into()
        }
        Field::IcmpType => p.icmp?.0.into(),
        Field::IcmpCode => p.icmp?.1.into(),
        Field::IcmpTypeCode => {
            let (t, c) = p.icmp?;
            u32::from(t) << 8 | u32::from(c)
        }
        Field::SrcType => p.src_type.into(),
        Field::DstType => p.dst_type.into(),
        Field::CtState => p.ctstate.into(),
        Field::CtStatus => ct()?.status,
        Field::CtNat => p
            .ct
            .map_or(0, |c| c.status & (super::ct_status::SNAT | super::ct_status::DNAT)),
        Field::Conns => p.conns,
        Field::Rpf => p.rpf.into(),
        Field::Physdev => {
            let out = p.phys_out.is_some() || p.bridged;
            let mut bits = 0;
            if p.phys_in.is_some() {
                bits |= super::physdev::IS_IN;
            }
            if out {
                bits |= super::physdev::IS_OUT | super::physdev::IS_BRIDGED;
            }
            bits
        }
        Field::CtMark => ct()?.mark,
        Field::CtDir => ct()?.reply.into(),
        Field::CtOrigSport => ct()?.orig_ports.0.into(),
        Field::CtOrigDport => ct()?.orig_ports.1.into(),
        Field::CtReplSport => ct()?.repl_ports.0.into(),
        Field::CtReplDport => ct()?.repl_ports.1.into(),
        Field::Saddr
        | Field::Daddr
        | Field::SrcMac
        | Field::CtOrigSaddr
        | Field::CtOrigDaddr
        | Field::CtReplSaddr
        | Field::CtReplDaddr
        // Lowered to its own op (`Op::Reg`), never loaded here.
        | Field::Reg => return None,
    })
}

/// A 128-bit field of the packet; `None` when the packet lacks it.
#[inline(always)]
fn load_wide(f: Field, p: &PacketView) -> Option<u128> {
    let ct = || p.ct.as_ref();
    Some(match f {
        Field::Saddr => p.src,
        Field::Daddr => p.dst,
        Field::SrcMac => u128::from(p.src_mac?),
        Field::CtOrigSaddr => ct()?.orig.0,
        Field::CtOrigDaddr => ct()?.orig.1,
        Field::CtReplSaddr => ct()?.repl.0,
        Field::CtReplDaddr => ct()?.repl.1,
        _ => return None,
    })
}

/// Any field, widened.
#[inline]
fn load_any(f: Field, p: &PacketView) -> Option<u128> {
    if f.wide() {
        load_wide(f, p)
    } else {
        load(f, p).map(u128::from)
    }
}

/// Whether `v` lies in one of the sorted, inclusive `ranges`.
#[inline]
fn in_ranges(ranges: &[(u128, u128)], v: u128) -> bool {
    if ranges.len() <= 8 {
        return ranges.iter().any(|&(lo, hi)| lo <= v && v <= hi);
    }
    // Sorted and merged by the compiler: the last range starting at or
    // below `v` is the only candidate.
    let n = ranges.partition_point(|&(lo, _)| lo <= v);
    n > 0 && v <= ranges[n - 1].1
}
