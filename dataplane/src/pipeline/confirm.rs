//! The confirm of a first packet, at the last hook it passes (filter
//! INPUT, FORWARD or OUTPUT): nat POSTROUTING (SNAT, MASQUERADE, the
//! automatic hairpin SNAT), the source port from the shared lock-free
//! allocator ([`crate::nat::NatPorts`]: endpoint-independent mapping, port
//! preservation when free), then the insert of the connection with the
//! reply tuple the translation implies. A packet the filter dropped leaves
//! no entry.
//!
//! Reads: `CtMeta`, the nat table. Changes: the connection table (insert),
//! NAT ports, `CtMeta::conn` / `CtMeta::target`.
//!
//! Drops: conntrack_full, conntrack_clash, nat_ports_exhausted,
//! nat_no_address, nat_source_limit, conntrack_source_limit (the per-source
//! caps, RFC 6888 REQ-4).

use super::netfilter::forwarded_ttl;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, flags};
use crate::conntrack::{InsertError, PROTO_TCP, PROTO_UDP};
use crate::filter::{Hook, NatAction, Outcome, TableId};
use crate::io::Port;
use crate::nat::ports::Refused;
use crate::stats::DropReason;

/// How many times a first packet retries its insert with another source
/// port when the reply tuple it would get is taken.
const NAT_ATTEMPTS: u32 = 4;

impl Pipeline {
    /// nat POSTROUTING for a first packet (forwarded ones), then inserts its
    /// connection with the reply tuple the translation implies. False if
    /// the packet was dropped (table full, no NAT port).
    pub(super) fn confirm<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        i: usize,
    ) -> bool {
        let c = self.ct[i];
        let mut snat = None;
        if c.expected {
            // RELATED by an expectation: its source translation is the
            // master's (nf_nat_follow_master), the nat table is not
            // consulted. A port is taken from the address's pool when
            // it has one, so that the retire hook's release balances.
            if c.target.src != c.key.src && self.shared.nat.pool(c.target.src).is_some() {
                snat = Some(NatAction::Snat {
                    addrs: crate::filter::AddrRange {
                        v4: m.l3 == L3::V4,
                        lo: c.target.src,
                        hi: c.target.src,
                    },
                    ports: None,
                });
            }
        } else if m.next == Next::Forward {
            if !self.tables.filter.is_empty(TableId::Nat, Hook::Postrouting) {
                let mut view = self.packet_view(ctx.umem, m, &c);
                view.oif = Some(m.oif);
                if !m.has(flags::LOCAL_ORIGIN) {
                    view.ttl = forwarded_ttl(view.ttl);
                }
                let out = self.eval(TableId::Nat, Hook::Postrouting, &mut view, ctx.now);
                self.keep_marks(m, &c, &view);
                self.trace_verdict(m, "nat-post", &out);
                if let Outcome::Nat(a) = out {
                    snat = Some(a);
                }
            }
            // Hairpin (RFC 4787 REQ-9): a DNAT'd packet leaving by the
            // interface it came in must come from the public address the
            // client used, or the server would answer the client directly.
            if snat.is_none() && c.changes_dst() && m.oif == m.iif {
                let a = crate::filter::AddrRange {
                    v4: m.l3 == L3::V4,
                    lo: c.key.dst,
                    hi: c.key.dst,
                };
                snat = Some(NatAction::Snat {
                    addrs: a,
                    ports: None,
                });
            }
        }
        // First packets only: a reference count, so that the tables stay
        // borrowed while the pipeline drops or counts.
        let shared = std::sync::Arc::clone(&self.shared);
        let ct = &shared.conntrack;
        let len = u32::from(m.l3_len);
        // The first segment starts the connection's TCP window tracking.
        let seg = if c.key.proto == PROTO_TCP {
            let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..L3_OFF + m.l3_len as usize];
            super::conntrack::tcp_seg(l3, m)
        } else {
            None
        };
        let Some(action) = snat else {
            // No source translation: the reply tuple is the target reversed.
            return match ct.insert_seg(
                &c.key,
                &c.target.reverse(),
                c.tcp_flags,
                len,
                ctx.now,
                seg.as_ref(),
            ) {
                Ok(id) => {
                    self.ct[i].conn = Some(id);
                    if m.ctmark != 0 {
                        ct.set_mark(id, m.ctmark);
                    }
                    self.attach_helper(i, id);
                    true
                }
                // Another worker confirmed the same connection first: the
                // packet is part of it.
                Err(InsertError::Exists(_) | InsertError::Clash | InsertError::Invalid) => true,
                Err(InsertError::Full) => {
                    self.drop_pkt(ctx, m, DropReason::ConntrackFull);
                    false
                }
                Err(InsertError::SourceLimit) => {
                    self.drop_pkt(ctx, m, DropReason::ConntrackSourceLimit);
                    false
                }
            };
        };
        let Some((addr, range)) = self.snat_source(m, &c, action) else {
            self.drop_pkt(ctx, m, DropReason::NatNoAddress);
            return false;
        };
        let nat = &shared.nat;
        let allocates =
            matches!(c.key.proto, PROTO_TCP | PROTO_UDP) || (c.key.is_icmp() && c.key.may_open());
        let pool = nat.pool(addr);
        // A port whose reply tuple was taken stays held while the next
        // attempt picks another, so that it is not offered again.
        let mut clashed: Option<u16> = None;
        let release = |p: Option<u16>| {
            if let Some(p) = p {
                nat.release(addr, c.key.proto, p);
            }
        };
        for attempt in 0..NAT_ATTEMPTS {
            let mut t = c.target;
            t.src = addr;
            if allocates {
                let Some(pool) = pool else {
                    self.drop_pkt(ctx, m, DropReason::NatNoAddress);
                    return false;
                };
                let got = nat.try_acquire(pool, t.proto, c.key.src, c.key.sport, range, attempt);
                release(clashed.take());
                match got {
                    Ok(p) => t.sport = p,
                    Err(why) => {
                        let r = match why {
                            Refused::Exhausted => DropReason::NatPortsExhausted,
                            Refused::SourceLimit => DropReason::NatSourceLimit,
                        };
                        self.drop_pkt(ctx, m, r);
                        return false;
                    }
                }
            }
            match ct.insert_seg(
                &c.key,
                &t.reverse(),
                c.tcp_flags,
                len,
                ctx.now,
                seg.as_ref(),
            ) {
                Ok(id) => {
                    self.ct[i].conn = Some(id);
                    if m.ctmark != 0 {
                        ct.set_mark(id, m.ctmark);
                    }
                    self.ct[i].target = t;
                    self.attach_helper(i, id);
                    return true;
                }
                Err(InsertError::Exists(id)) if ct.lookup(&c.key, ctx.now).is_some() => {
                    // The connection itself was confirmed by another
                    // worker meanwhile: use its binding.
                    release(allocates.then_some(t.sport));
                    if let Some(t) = ct.translation(id) {
                        self.ct[i].target = t;
                    }
                    return true;
                }
                Err(InsertError::Exists(_) | InsertError::Clash) if allocates => {
                    clashed = Some(t.sport);
                }
                Err(e) => {
                    release(allocates.then_some(t.sport));
                    let r = match e {
                        InsertError::Full => DropReason::ConntrackFull,
                        InsertError::SourceLimit => DropReason::ConntrackSourceLimit,
                        _ => DropReason::ConntrackClash,
                    };
                    self.drop_pkt(ctx, m, r);
                    return false;
                }
            }
        }
        release(clashed);
        self.drop_pkt(ctx, m, DropReason::ConntrackClash);
        false
    }
}
