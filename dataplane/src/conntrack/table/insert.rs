//! First packets: whether a packet may open a connection, the insert of
//! both tuples (with the clash check against a concurrent insert and early
//! drop when the table is full), and `track`, which looks up, updates or
//! inserts in one call.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::fence;

use super::super::key::{FlowKey, PROTO_TCP};
use super::super::tcp::{self, TcpSeg, TcpState, Transition};
use super::super::{CtState, Dir};
use super::*;

impl Conntrack {
    /// The initial TCP state and timeout of a connection opened by a
    /// packet with tuple `orig` and flags `f`.
    pub(super) fn opening(&self, orig: &FlowKey, f: u8) -> Result<(TcpState, u64), InsertError> {
        if !orig.may_open() {
            return Err(InsertError::Invalid);
        }
        if orig.proto != PROTO_TCP {
            return Ok((TcpState::None, self.timeouts.other(orig.proto, false)));
        }
        match tcp::transition(Dir::Original, f, TcpState::None) {
            Transition::To(s @ TcpState::SynSent) => Ok((s, self.tcp_timeout(s, false))),
            Transition::To(s @ TcpState::Established) if self.tcp_loose => {
                Ok((s, self.tcp_timeout(s, false)))
            }
            _ => Err(InsertError::Invalid),
        }
    }

    /// Whether a packet with tuple `key` and TCP flags `tcp_flags` may open
    /// a connection (its state is NEW rather than INVALID).
    pub fn can_open(&self, key: &FlowKey, tcp_flags: u8) -> bool {
        self.opening(key, tcp_flags).is_ok()
    }

    /// Confirms a new connection for a first packet with tuple `orig`
    /// whose answers will carry `reply` (`orig.reverse()`, or a NAT'd
    /// tuple), counting that packet. The packet's state is NEW.
    ///
    /// A TCP connection inserted without its segment is not window
    /// tracked: see [`Conntrack::insert_seg`].
    pub fn insert(
        &self,
        orig: &FlowKey,
        reply: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: u64,
    ) -> Result<ConnId, InsertError> {
        self.insert_seg(orig, reply, tcp_flags, len, now, None)
    }

    /// [`Conntrack::insert`] with the first TCP segment, which starts the
    /// connection's window tracking (a SYN: its sequence number, window
    /// and scale; a segment picked up mid-stream: its numbers, and the
    /// connection is liberal, as the window scale is unknown).
    pub fn insert_seg(
        &self,
        orig: &FlowKey,
        reply: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: u64,
        seg: Option<&TcpSeg>,
    ) -> Result<ConnId, InsertError> {
        let nm = now_ms(now);
        let (tcp_state, timeout) = self.opening(orig, tcp_flags)?;
        if !self.sources.enter(orig.src) {
            self.counters[C_SOURCE_LIMITED].fetch_add(1, Relaxed);
            return Err(InsertError::SourceLimit);
        }
        let (h0, h1) = (self.hash(orig), self.hash(reply));
        let idx = match self.pop_free().or_else(|| self.early_drop(h0, nm)) {
            Some(i) => i,
            None => {
                self.sources.leave(orig.src);
                self.counters[C_REFUSED].fetch_add(1, Relaxed);
                return Err(InsertError::Full);
            }
        };
        let e = &self.entries[idx as usize];
        let generation = (gen_of(e.state.load(Relaxed)) + 1) & GEN_LIMIT;
        // Pairs with the reader's fence in `matches`: a reader that sees
        // any of the writes below also sees the entry's older state change.
        fence(Release);
        let v4 = orig.is_v4() && reply.is_v4();
        self.write_keys(idx, orig, reply, v4);
        e.ports.store(
            u64::from(orig.sport)
                | u64::from(orig.dport) << 16
                | u64::from(reply.sport) << 32
                | u64::from(reply.dport) << 48,
            Relaxed,
        );
        e.mark.store(u64::from(generation) << 32, Relaxed);
        e.packets[0].store(1, Relaxed);
        e.packets[1].store(0, Relaxed);
        e.bytes[0].store(u64::from(len), Relaxed);
        e.bytes[1].store(0, Relaxed);
        if orig.proto == PROTO_TCP {
            self.window_open(idx, tcp_flags, seg, tcp_state);
        }
        let nat = if *reply != orig.reverse() { NAT } else { 0 };
        let base = u64::from(generation) << GEN_SHIFT
            | nat
            | if v4 { V4 } else { 0 }
            | u64::from(orig.proto) << PROTO_SHIFT
            | (tcp_state as u64) << TCP_SHIFT
            | ((nm + timeout) & EXP_MASK);
        e.state.store(BUSY | base, Release);
        self.link(idx, Dir::Original, h0);
        self.link(idx, Dir::Reply, h1);
        let rival = self
            .rival(orig, h0, idx, nm)
            .or_else(|| self.rival(reply, h1, idx, nm));
        if let Some(rival) = rival {
            e.state.store(base, Release);
            self.unlink(idx, Dir::Original);
            self.unlink(idx, Dir::Reply);
            self.push_free(idx);
            self.sources.leave(orig.src);
            self.counters[C_CLASHES].fetch_add(1, Relaxed);
            return Err(rival.map_or(InsertError::Clash, InsertError::Exists));
        }
        e.state.store(LIVE | base, Release);
        self.counters[C_INSERTED].fetch_add(1, Relaxed);
        Ok(ConnId {
            idx,
            generation,
            dir: Dir::Original,
        })
    }

    /// Another BUSY or live, unexpired entry holding tuple `key` (hash
    /// `h`): `Some(Some(id))` for a live one, `Some(None)` for an insert in
    /// progress. Expired holders are removed on the way.
    pub(super) fn rival(&self, key: &FlowKey, h: u64, own: u32, nm: u64) -> Option<Option<ConnId>> {
        self.walk(h, |idx, dir| {
            if idx == own {
                return None;
            }
            let s = self.matches(idx, dir, key, IN_USE)?;
            if s & LIVE == 0 {
                return Some(None);
            }
            if self.dead(idx, s, nm) {
                self.retire(idx, gen_of(s), Retired::Expired, false);
                return None;
            }
            let dir = if dir == 0 { Dir::Original } else { Dir::Reply };
            Some(Some(ConnId {
                idx,
                generation: gen_of(s),
                dir,
            }))
        })
    }

    /// Frees an entry near hash `h` for a new connection: the first expired
    /// one, else the first evictable one (not assured, not ESTABLISHED).
    /// The returned entry is the caller's.
    pub(super) fn early_drop(&self, h: u64, nm: u64) -> Option<u32> {
        let mut victim = None;
        let mut b = self.home(h);
        for _ in 0..EARLY_DROP_BUCKETS.min(self.index.len()) {
            for slot in &self.index[b].slots {
                let v = slot.load(Acquire);
                if v == 0 {
                    continue;
                }
                let (idx, _) = self.slot_entry(v);
                let s = self.entries[idx as usize].state.load(Acquire);
                if s & LIVE == 0 {
                    continue;
                }
                if self.dead(idx, s, nm) {
                    if self.retire(idx, gen_of(s), Retired::Expired, true) {
                        return Some(idx);
                    }
                } else if victim.is_none() && evictable(s) {
                    victim = Some((idx, gen_of(s)));
                }
            }
            b = self.next(b);
        }
        if let Some((idx, generation)) = victim
            && self.retire(idx, generation, Retired::Evicted, true)
        {
            return Some(idx);
        }
        // Someone else may have freed one meanwhile.
        self.pop_free()
    }

    /// Lookup, then update or insert (with `reply = key.reverse()`): the
    /// whole per-packet job without NAT. `Err` only for a full table or a
    /// persistent clash; a packet that cannot open a connection is
    /// `Ok` with state INVALID and no connection.
    pub fn track(
        &self,
        key: &FlowKey,
        tcp_flags: u8,
        len: u32,
        now: u64,
    ) -> Result<Tracked, InsertError> {
        for _ in 0..3 {
            if let Some(c) = self.lookup(key, now) {
                if let Some(state) = self.update(c, tcp_flags, len, now) {
                    return Ok(Tracked {
                        conn: Some(c),
                        state,
                    });
                }
                continue;
            }
            match self.insert(key, &key.reverse(), tcp_flags, len, now) {
                Ok(c) => {
                    return Ok(Tracked {
                        conn: Some(c),
                        state: CtState::New,
                    });
                }
                Err(InsertError::Invalid) => {
                    return Ok(Tracked {
                        conn: None,
                        state: CtState::Invalid,
                    });
                }
                Err(InsertError::Exists(_) | InsertError::Clash) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(InsertError::Clash)
    }
}
