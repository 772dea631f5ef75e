//! The packet path of the connection table: lookups (plain, hashed, and
//! the batch's prefetch-hinted one with its translation written in place),
//! then the update of a found connection (TCP state machine, counters,
//! timeout refresh).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::atomic::fence;

use super::super::key::{FlowKey, PROTO_TCP, PROTO_UDP, reverse_ports};
use super::super::tcp::{self, TcpSeg, TcpState, Transition, WinOut, WinVerdict};
use super::super::{CtState, Dir};
use super::*;
use crate::addr::v4_key;

impl Conntrack {
    // ---- packet path ----

    /// The connection of a packet with tuple `key`, found from either
    /// direction. An expired connection is removed on the way and not
    /// returned. For an ICMP error, looking up the quoted packet's tuple
    /// tells whether the error is RELATED.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, now: u64) -> Option<ConnId> {
        self.lookup_hashed(key, self.hash(key), now)
    }

    /// [`Conntrack::lookup`] with the hash computed earlier.
    #[inline]
    pub fn lookup_hashed(&self, key: &FlowKey, h: u64, now: u64) -> Option<ConnId> {
        let (idx, dir, s) = self.walk(h, |idx, dir| {
            self.matches(idx, dir, key, LIVE).map(|s| (idx, dir, s))
        })?;
        if self.dead(idx, s, now_ms(now)) {
            self.retire(idx, gen_of(s), Retired::Expired, false);
            return None;
        }
        Some(ConnId {
            idx,
            generation: gen_of(s),
            dir: if dir == 0 { Dir::Original } else { Dir::Reply },
        })
    }

    /// Starts loading the home index bucket of hash `h` (first step of a
    /// batch lookup: hash and prefetch every packet's bucket, then
    /// [`Conntrack::prefetch_entries`], then look up).
    #[inline]
    pub fn prefetch_bucket(&self, h: u64) {
        crate::mem::prefetch(&self.index[self.home(h)]);
    }

    /// Starts loading the first entry the home bucket of `h` points at
    /// with a matching tag (second step; the bucket should be in cache by
    /// now); `v6`: the packet is IPv6, so are the connections it may have.
    /// Returns that slot's value as a hint for [`Conntrack::find_hinted`]
    /// (0: none), so the lookup need not scan the bucket again.
    #[inline]
    pub fn prefetch_entries(&self, h: u64, v6: bool) -> u32 {
        let mask = self.tag_mask();
        let tag = h as u32 & mask;
        for slot in &self.index[self.home(h)].slots {
            let v = slot.load(Relaxed);
            if v != 0 && v & mask == tag {
                let (idx, _) = self.slot_entry(v);
                // The hot line: all an IPv4 connection's packet touches;
                // an IPv6 one's also reads its cold addresses (48 bytes,
                // at most two lines).
                crate::mem::prefetch(&self.entries[idx as usize]);
                if v6 {
                    let c = &self.cold[idx as usize];
                    crate::mem::prefetch(&c[0]);
                    crate::mem::prefetch(&c[5]);
                }
                // The first candidate only: a tag collision (one slot in
                // 2^tag-bits) costs that packet a walk of the chain, where
                // scanning on would cost every packet the rest of the
                // bucket.
                return v;
            }
        }
        0
    }

    /// The connection of a packet with tuple `key` (hash `h`), trying
    /// first the slot value `hint` that [`Conntrack::prefetch_entries`]
    /// returned (it may be stale or a tag collision: then the bucket chain
    /// is walked as usual). `target` holds the packet's tuple on entry;
    /// for a NAT'd connection it gets the tuple the packet leaves with,
    /// read under the same generation check. The batch path's
    /// [`Conntrack::lookup`] + [`Conntrack::translation`]; hand the result
    /// to [`Conntrack::update_found`].
    #[inline(always)]
    pub fn find_hinted(
        &self,
        key: &FlowKey,
        h: u64,
        hint: u32,
        now: u64,
        target: &mut FlowKey,
    ) -> Option<Found> {
        let nm = now_ms(now);
        let hinted = if hint != 0 {
            let (idx, dir) = self.slot_entry(hint);
            self.found(idx, dir, key, target).map(|s| (idx, dir, s))
        } else {
            None
        };
        let (idx, dir, s) = match hinted {
            Some(x) => x,
            None => self.walk(h, |idx, dir| {
                self.found(idx, dir, key, target).map(|s| (idx, dir, s))
            })?,
        };
        if self.dead(idx, s, nm) {
            self.retire(idx, gen_of(s), Retired::Expired, false);
            return None;
        }
        Some(Found {
            id: ConnId {
                idx,
                generation: gen_of(s),
                dir: if dir == 0 { Dir::Original } else { Dir::Reply },
            },
            state: s,
        })
    }

    /// [`Conntrack::matches`] for a live entry; for a NAT'd connection
    /// also writes to `target` the tuple a packet of direction `dir`
    /// leaves with (the other direction's tuple reversed), only once the
    /// entry is known to match.
    #[inline(always)]
    pub(super) fn found(
        &self,
        idx: u32,
        dir: usize,
        key: &FlowKey,
        target: &mut FlowKey,
    ) -> Option<u64> {
        let e = &self.entries[idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & LIVE == 0 || proto_of(s1) != key.proto {
            return None;
        }
        if s1 & V4 != 0 {
            return self.found_v4(e, dir, key, s1, target);
        }
        let k = self.key(idx, dir, s1);
        let translated = (s1 & NAT != 0).then(|| self.key(idx, 1 - dir, s1).reverse());
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        if s2 & LIVE == 0 || (s1 ^ s2) & GEN_MASK != 0 || k != *key {
            return None;
        }
        if let Some(t) = translated {
            *target = t;
        }
        Some(s2)
    }

    /// [`Conntrack::found`] for an IPv4 entry (state word `s1`): the
    /// packed addresses and ports of the hot line are compared as words,
    /// and the target is unpacked only for a NAT'd connection.
    #[inline(always)]
    pub(super) fn found_v4(
        &self,
        e: &Entry,
        dir: usize,
        key: &FlowKey,
        s1: u64,
        target: &mut FlowKey,
    ) -> Option<u64> {
        let ports = e.ports.load(Relaxed);
        let addr = e.addr[dir].load(Relaxed);
        let other = e.addr[1 - dir].load(Relaxed);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        if s2 & LIVE == 0 || (s1 ^ s2) & GEN_MASK != 0 {
            return None;
        }
        let want_addr = key.src as u32 as u64 | (key.dst as u32 as u64) << 32;
        let want_ports = u32::from(key.sport) | u32::from(key.dport) << 16;
        if !(key.is_v4() && addr == want_addr && (ports >> (32 * dir)) as u32 == want_ports) {
            return None;
        }
        if s1 & NAT != 0 {
            // The other direction's tuple, reversed (for ICMP queries the
            // reverse keeps the identifier and inverts the type), built
            // in place: a reversed copy returned through memory was read
            // back before its stores could be forwarded (a store-forwarding
            // stall on every NAT'd packet).
            let p = ports >> (32 * (1 - dir));
            let (sport, dport) = reverse_ports(key.proto, p as u16, (p >> 16) as u16);
            *target = FlowKey {
                src: v4_key((other >> 32) as u32),
                dst: v4_key(other as u32),
                sport,
                dport,
                proto: key.proto,
            };
        }
        Some(s2)
    }

    /// For a NAT'd connection, the tuple a packet of `c`'s direction
    /// should carry after translation: the other direction's tuple
    /// reversed. `None` if the connection is not NAT'd or is gone.
    #[inline]
    pub fn translation(&self, c: ConnId) -> Option<FlowKey> {
        let e = &self.entries[c.idx as usize];
        let s1 = e.state.load(Acquire);
        if s1 & NAT == 0 || s1 & LIVE == 0 || gen_of(s1) != c.generation {
            return None;
        }
        let other = 1 - c.dir as usize;
        let k = self.key(c.idx, other, s1);
        fence(Acquire);
        let s2 = e.state.load(Relaxed);
        (s2 & LIVE != 0 && gen_of(s2) == c.generation).then(|| k.reverse())
    }

    /// Runs a packet of `len` bytes with TCP flags `tcp_flags` (ignored for
    /// other protocols) through its connection: state machine, timeout
    /// refresh, counters. Returns the packet's state, or `None` if the
    /// connection is gone (expired, removed, or closed for a reopening SYN):
    /// the packet is then the first of a new connection.
    ///
    /// Without the segment, TCP windows are neither checked nor updated:
    /// see [`Conntrack::update_seg`].
    pub fn update(&self, c: ConnId, tcp_flags: u8, len: u32, now: u64) -> Option<CtState> {
        self.update_seg(c, tcp_flags, len, now, None)
    }

    /// [`Conntrack::update`] with the TCP segment's sequence numbers and
    /// window: a segment outside its connection's window is INVALID
    /// (`tcp::window`) and changes nothing.
    pub fn update_seg(
        &self,
        c: ConnId,
        tcp_flags: u8,
        len: u32,
        now: u64,
        seg: Option<&TcpSeg>,
    ) -> Option<CtState> {
        let s = self.entries[c.idx as usize].state.load(Acquire);
        self.update_from(c, s, tcp_flags, len, now_ms(now), seg)
    }

    /// [`Conntrack::update_seg`] for what [`Conntrack::find_hinted`]
    /// found, starting from the state word it read.
    #[inline]
    pub fn update_found(
        &self,
        f: &Found,
        tcp_flags: u8,
        len: u32,
        now: u64,
        seg: Option<&TcpSeg>,
    ) -> Option<CtState> {
        self.update_from(f.id, f.state, tcp_flags, len, now_ms(now), seg)
    }

    /// Whether TCP segments of live connections need their
    /// [`TcpSeg`] (window tracking on): otherwise callers may pass `None`.
    #[inline]
    pub fn wants_segments(&self) -> bool {
        !self.tcp_be_liberal()
    }

    /// The state machine from state word `s` (a recent read: the
    /// compare-and-swap catches a stale one), time `nm` in milliseconds.
    #[inline]
    pub(super) fn update_from(
        &self,
        c: ConnId,
        mut s: u64,
        tcp_flags: u8,
        len: u32,
        nm: u64,
        seg: Option<&TcpSeg>,
    ) -> Option<CtState> {
        let e = &self.entries[c.idx as usize];
        // The window verdict, computed once (its updates are applied
        // then), kept if the compare-and-swap below retries.
        let mut win: Option<WinOut> = None;
        // The packet's half of the TCP transition, once and only for TCP
        // (the protocol cannot change under the same generation).
        let row = (proto_of(s) == PROTO_TCP).then(|| tcp::row(c.dir, tcp_flags));
        loop {
            if s & LIVE == 0 || gen_of(s) != c.generation {
                return None;
            }
            if self.dead(c.idx, s, nm) {
                self.retire(c.idx, c.generation, Retired::Expired, false);
                return None;
            }
            let proto = proto_of(s);
            let replied_before = s & SEEN_REPLY != 0;
            let replied = replied_before || c.dir == Dir::Reply;
            let mut status = s & STATUS_MASK;
            if c.dir == Dir::Reply {
                status |= SEEN_REPLY;
            }
            let mut tcp_state = tcp_of(s);
            let timeout = if proto == PROTO_TCP {
                let old = tcp_state;
                match tcp::step(row.flatten(), old) {
                    Transition::Invalid => return Some(CtState::Invalid),
                    Transition::Ignore => return Some(packet_state(c.dir, s)),
                    Transition::To(mut new) => {
                        let reopen = new == TcpState::SynSent
                            && matches!(old, TcpState::TimeWait | TcpState::Close);
                        if let Some(seg) = seg.filter(|_| !reopen) {
                            let w = *win.get_or_insert_with(|| {
                                self.window_check(c, s, old, new, tcp_flags, seg)
                            });
                            match w.verdict {
                                WinVerdict::Invalid => return Some(CtState::Invalid),
                                WinVerdict::Ignore => return Some(packet_state(c.dir, s)),
                                WinVerdict::Accept if w.keep_state => new = old,
                                WinVerdict::Accept => {}
                            }
                        }
                        if new == TcpState::SynSent
                            && matches!(old, TcpState::TimeWait | TcpState::Close)
                        {
                            // A new connection on the same ports (RFC 1122
                            // TIME_WAIT reuse): drop the old one.
                            self.retire(c.idx, c.generation, Retired::Killed, false);
                            return None;
                        }
                        if c.dir == Dir::Reply
                            && !replied_before
                            && tcp_flags & tcp::flags::RST != 0
                        {
                            // Refused: the only answer was a reset.
                            self.count(e, c.dir, len);
                            self.retire(c.idx, c.generation, Retired::Killed, false);
                            return Some(CtState::Established);
                        }
                        if replied_before
                            && status & ASSURED == 0
                            && matches!(old, TcpState::SynRecv | TcpState::Established)
                            && new == TcpState::Established
                        {
                            status |= ASSURED;
                        }
                        tcp_state = new;
                        self.tcp_timeout(new, replied)
                    }
                }
            } else {
                if proto == PROTO_UDP && replied {
                    status |= ASSURED;
                }
                self.timeouts.other(proto, replied)
            };
            let new = (s & (IN_USE | GEN_MASK | PROTO_MASK))
                | status
                | (tcp_state as u64) << TCP_SHIFT
                | ((nm + timeout) & EXP_MASK);
            // Nothing but the expiry moved, and by less than 1/64 of the
            // timeout: skip the write (a locked instruction per packet, and
            // a cache line bounced between cores). The connection may then
            // expire up to 1/64 of its timeout early.
            let moved = (new & EXP_MASK).wrapping_sub(s & EXP_MASK) & EXP_MASK;
            if new & !EXP_MASK == s & !EXP_MASK && moved <= timeout >> 6 {
                break;
            }
            match e.state.compare_exchange_weak(s, new, AcqRel, Acquire) {
                Ok(_) => {
                    s = new;
                    break;
                }
                Err(x) => s = x,
            }
        }
        self.count(e, c.dir, len);
        Some(packet_state(c.dir, s))
    }

    /// Counts a packet. A plain load and store rather than a locked add:
    /// one direction of a flow is nearly always handled by one worker, and
    /// when two count it at the same instant one count may be lost (the
    /// counters are statistics, not state).
    #[inline]
    pub(super) fn count(&self, e: &Entry, dir: Dir, len: u32) {
        let (p, b) = (&e.packets[dir as usize], &e.bytes[dir as usize]);
        p.store(p.load(Relaxed).wrapping_add(1), Relaxed);
        b.store(b.load(Relaxed).wrapping_add(u64::from(len)), Relaxed);
    }

    #[inline]
    pub(super) fn tcp_timeout(&self, s: TcpState, replied: bool) -> u64 {
        let t = self.timeouts.tcp[s as usize];
        // A connection picked up mid-stream that never saw an answer gets
        // Linux's "unacknowledged" timeout, not five days.
        if s == TcpState::Established && !replied {
            t.min(self.timeouts.tcp_unack)
        } else {
            t
        }
    }
}
