//! NAT on the frame: applying and undoing a connection's translation, and
//! choosing the addresses translations go to. NAT is represented by the
//! connection's reply tuple (`conntrack`): a packet of a NAT'd connection
//! carries its translation target in [`CtMeta::target`]. As in netfilter,
//! the destination part is applied in PREROUTING, so that routing and the
//! FORWARD filter see the real destination, and the source part in
//! POSTROUTING (`forward`, `local_out`). Only the first packet of a
//! connection traverses the nat table; the binding it chooses becomes the
//! reply tuple of the connection inserted at `confirm`.
//!
//! Reads: `CtMeta`, the interfaces' addresses. Changes: the frame
//! (addresses, ports, checksums, ICMP error quotes). Drops: none (callers
//! drop with nat_no_address when no address is found).

use super::conntrack::{CtKind, CtMeta};
use super::{Ctx, L3, L3_OFF, Meta, Pipeline, TraceWhat, flags};
use crate::addr::v4_key;
use crate::conntrack::{FlowKey, PROTO_TCP, PROTO_UDP};
use crate::filter::NatAction;
use crate::iface::IfIndex;
use crate::io::Port;
use crate::nat::rewrite::{self, Part};

impl Pipeline {
    /// The address an interface translates to (MASQUERADE out of it,
    /// REDIRECT into it): its first IPv4 address, or its first global IPv6
    /// one.
    pub(super) fn nat_address(&self, ifx: IfIndex, l3: L3) -> Option<u128> {
        let ic = self.tables.interfaces.get(ifx);
        if l3 == L3::V4 {
            ic.v4.first().map(|(a, _)| v4_key(u32::from(*a)))
        } else {
            ic.v6
                .iter()
                .map(|(a, _)| *a)
                .find(|a| !a.is_unicast_link_local())
                .map(u128::from)
        }
    }

    /// The original tuple after a DNAT / REDIRECT action.
    pub(super) fn dnat_target(&self, m: &Meta, c: &CtMeta, action: NatAction) -> Option<FlowKey> {
        let mut t = c.key;
        let (addr, ports) = match action {
            NatAction::Dnat { addrs, ports } => {
                // Spread clients over an address range by their tuple's
                // hash, so one client keeps its server.
                let n = addrs.count().min(u128::from(u64::MAX)) as u64;
                (addrs.lo + u128::from(c.hash % n.max(1)), ports)
            }
            NatAction::Redirect { ports } => (self.nat_address(m.iif, m.l3)?, ports),
            // SNAT / MASQUERADE are POSTROUTING targets (the parser checks).
            _ => return Some(t),
        };
        t.dst = addr;
        if let Some((lo, hi)) = ports
            && (t.proto == PROTO_TCP || t.proto == PROTO_UDP)
            && !(lo..=hi).contains(&t.dport)
        {
            t.dport = lo + (c.hash >> 32) as u16 % (hi - lo).saturating_add(1).max(1);
        }
        Some(t)
    }

    /// Applies one part of `c`'s translation to the frame.
    pub(super) fn translate<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        c: &CtMeta,
        part: Part,
    ) {
        self.translate_to(ctx, m, c.kind, &c.target, part);
    }

    /// [`Pipeline::translate`] given the packet's kind and target tuple.
    pub(super) fn translate_to<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        kind: CtKind,
        target: &FlowKey,
        part: Part,
    ) {
        let len = m.l3_len as usize;
        let l3 = &mut m.desc.bytes_mut(ctx.umem)[L3_OFF..L3_OFF + len];
        let v4 = m.l3 == L3::V4;
        let l4 = m.l4_off as usize;
        if kind == CtKind::Related {
            rewrite::rewrite_icmp_error(l3, v4, l4, target, part);
        } else {
            let later = m.has(flags::LATER_FRAGMENT);
            match part {
                Part::Dst => rewrite::rewrite_dst(l3, v4, l4, m.proto, later, target),
                Part::Src => rewrite::rewrite_src(l3, v4, l4, m.proto, later, target),
            }
        }
        if m.has(flags::TRACE) {
            let (addr, port) = match part {
                // ICMP queries: the identifier, which both parts write.
                _ if target.is_icmp() && kind != CtKind::Related => {
                    let a = if part == Part::Dst {
                        target.dst
                    } else {
                        target.src
                    };
                    (a, target.sport)
                }
                Part::Dst => (target.dst, target.dport),
                Part::Src => (target.src, target.sport),
            };
            let what = TraceWhat::Nat {
                src: part == Part::Src,
                addr: crate::addr::key_ip(addr),
                port,
            };
            self.trace.record(m.seq, "nat", what);
        }
    }

    /// Before the router answers a received packet it drops (an ICMP error,
    /// a reset): undoes the destination part of its translation, so that
    /// the answer quotes (or comes from) what the sender sent, not the
    /// inside address it was translated to. `i` is its batch index.
    pub(super) fn restore_dst<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, i: usize) {
        if let Some(c) = self.ct.get(i).copied() {
            self.undo_dst(ctx, m, &c);
        }
    }

    /// [`Pipeline::restore_dst`] for a packet whose `CtMeta` is at hand.
    pub(super) fn undo_dst<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, c: &CtMeta) {
        if matches!(c.kind, CtKind::Tracked | CtKind::New) && c.changes_dst() {
            let undo = CtMeta {
                target: c.key,
                ..*c
            };
            self.translate(ctx, m, &undo, Part::Dst);
        }
    }

    /// The external address and port range of an SNAT / MASQUERADE action.
    pub(super) fn snat_source(
        &self,
        m: &Meta,
        c: &CtMeta,
        action: NatAction,
    ) -> Option<(u128, Option<(u16, u16)>)> {
        match action {
            NatAction::Snat { addrs, ports } => {
                let n = addrs.count().min(u128::from(u64::MAX)) as u64;
                // One inside host keeps one outside address (Linux hashes
                // the source address only, for the same reason).
                let h = crate::conntrack::FlowKey {
                    dst: 0,
                    sport: 0,
                    dport: 0,
                    ..c.key
                }
                .hash(0);
                Some((addrs.lo + u128::from(h % n.max(1)), ports))
            }
            NatAction::Masquerade { ports } => Some((self.nat_address(m.oif, m.l3)?, ports)),
            _ => None,
        }
    }
}
