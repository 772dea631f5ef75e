//! What every netfilter hook stage shares: the packet view the rules
//! match on, the evaluation of one table at one hook, the trace line of a
//! verdict, the filter verdict (with the connection-state shortcut) and
//! REJECT's answers. The stages that call it: prerouting (mangle, nat),
//! input, forward (filter, nat POSTROUTING in `confirm`), local_out
//! (filter OUTPUT).
//!
//! Reads: the frame, `Meta`, the ruleset. Changes: the rule counters and
//! LOG ring (through `EvalCtx`); a REJECT turns the packet into the
//! router's answer (pushed to the local-output batch).
//!
//! Drops: filter_input, filter_forward, filter_output, filter_reject.

use super::conntrack::CtMeta;
use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Pipeline, TraceWhat, flags};
use crate::addr::v4_key;
use crate::conntrack::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::filter::{Hook, Outcome, PacketView, RejectKind, TableId};
use crate::io::Port;
use crate::packet::{ipv4, ipv6};
use crate::stats::DropReason;

/// The TTL (hop limit) filter FORWARD and nat POSTROUTING see for a
/// forwarded packet: Linux decrements it before the FORWARD hook (the
/// rewrite stage does it here, after the filter), so LOG prints the
/// decremented value, as `iptables -j LOG` does on a Linux router.
pub(super) fn forwarded_ttl(ttl: u8) -> u8 {
    ttl.saturating_sub(1)
}

impl Pipeline {
    /// The view the rules match on, from the frame and the metadata.
    pub(super) fn packet_view(&self, umem: &[u8], m: &Meta, state: u8) -> PacketView {
        let l3 = &m.desc.bytes(umem)[L3_OFF..L3_OFF + m.l3_len as usize];
        let v4 = m.l3 == L3::V4;
        let mut v = PacketView {
            iif: (!m.has(flags::LOCAL_ORIGIN)).then_some(m.iif),
            oif: None,
            v4,
            proto: m.proto,
            ctstate: state,
            mark: m.mark,
            len: u32::from(m.l3_len),
            ..PacketView::default()
        };
        if v4 {
            let ip = ipv4::Packet::new_unchecked(l3);
            v.src = v4_key(ip.src_u32());
            v.dst = v4_key(ip.dst_u32());
            v.ttl = ip.ttl();
            v.ip_id = u16::from_be_bytes([l3[4], l3[5]]);
            v.tos = l3[1];
        } else {
            let ip = ipv6::Packet::new_unchecked(l3);
            v.src = ip.src_u128();
            v.dst = ip.dst_u128();
            v.ttl = ip.hop_limit();
            v.tos = (u16::from_be_bytes([l3[0], l3[1]]) >> 4) as u8;
        }
        if m.has(flags::LATER_FRAGMENT) {
            return v;
        }
        let l4 = &l3[(m.l4_off as usize).min(l3.len())..];
        match m.proto {
            PROTO_TCP | PROTO_UDP if l4.len() >= 4 => {
                v.has_ports = true;
                v.sport = u16::from_be_bytes([l4[0], l4[1]]);
                v.dport = u16::from_be_bytes([l4[2], l4[3]]);
                if m.proto == PROTO_TCP {
                    v.tcp_flags = l4.get(13).copied().unwrap_or(0);
                }
            }
            PROTO_ICMP | PROTO_ICMPV6 if l4.len() >= 2 => v.icmp = Some((l4[0], l4[1])),
            _ => {}
        }
        v
    }

    /// Evaluates `table` at `hook` for a packet.
    pub(super) fn eval(
        &mut self,
        table: TableId,
        hook: Hook,
        view: &mut PacketView,
        now: u64,
    ) -> Outcome {
        self.eval.now = now;
        self.tables.filter.eval(table, hook, view, &mut self.eval)
    }

    pub(super) fn trace_verdict(&mut self, m: &Meta, stage: &'static str, out: &Outcome) {
        if m.has(flags::TRACE) {
            let verdict = match out {
                Outcome::Accept => "accept",
                Outcome::Drop => "drop",
                Outcome::Reject(_) => "reject",
                Outcome::Nat(_) => "nat",
            };
            let line = self.eval.last_rule_line as u32;
            self.trace
                .record(m.seq, stage, TraceWhat::Verdict { verdict, line });
        }
    }

    /// The verdict of filter `hook` when the chain's first rules decide by
    /// the connection state alone ([`crate::filter::Ruleset::eval_state`]:
    /// counted, no packet view built).
    #[inline]
    pub(super) fn state_verdict(&mut self, m: &Meta, state: u8, hook: Hook) -> Option<Outcome> {
        let v4 = m.l3 == L3::V4;
        let len = u32::from(m.l3_len);
        self.tables
            .filter
            .eval_state(TableId::Filter, hook, v4, state, len, &mut self.eval)
    }

    /// Runs filter `hook` on a packet; false if it was dropped or rejected.
    pub(super) fn filter<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        c: &CtMeta,
        hook: Hook,
        stage: &'static str,
    ) -> bool {
        let decided = self.state_verdict(m, c.state, hook);
        self.filter_decided(ctx, m, c, hook, stage, decided)
    }

    /// [`Pipeline::filter`] after [`Pipeline::state_verdict`] answered
    /// `decided` (`None`: the rules are walked).
    pub(super) fn filter_decided<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        c: &CtMeta,
        hook: Hook,
        stage: &'static str,
        decided: Option<Outcome>,
    ) -> bool {
        let out = match decided {
            Some(out) => out,
            None => {
                let mut view = self.packet_view(ctx.umem, m, c.state);
                if hook != Hook::Input {
                    view.oif = Some(m.oif);
                }
                if hook == Hook::Forward {
                    view.ttl = forwarded_ttl(view.ttl);
                }
                self.eval(TableId::Filter, hook, &mut view, ctx.now)
            }
        };
        self.trace_verdict(m, stage, &out);
        match out {
            Outcome::Accept | Outcome::Nat(_) => true,
            Outcome::Drop => {
                let r = match hook {
                    Hook::Input => DropReason::FilterInput,
                    Hook::Output => DropReason::FilterOutput,
                    _ => DropReason::FilterForward,
                };
                self.drop_pkt(ctx, m, r);
                false
            }
            Outcome::Reject(kind) => {
                self.reject(ctx, m, c, kind);
                false
            }
        }
    }

    /// REJECT: the chosen ICMP error or TCP reset, then the packet is dropped.
    pub(super) fn reject<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        c: &CtMeta,
        kind: RejectKind,
    ) {
        let v4 = m.l3 == L3::V4;
        let kind = match kind {
            RejectKind::Icmp4 { .. } if !v4 => RejectKind::port_unreachable(false),
            RejectKind::Icmp6 { .. } if v4 => RejectKind::port_unreachable(true),
            RejectKind::TcpReset if m.proto != PROTO_TCP || m.has(flags::LATER_FRAGMENT) => {
                RejectKind::port_unreachable(v4)
            }
            k => k,
        };
        if m.has(flags::LOCAL_ORIGIN) {
            // The router does not answer its own packets.
            self.drop_pkt(ctx, m, DropReason::FilterReject);
            return;
        }
        // Answer as the address the sender used (see `restore_dst`).
        self.undo_dst(ctx, m, c);
        match kind {
            RejectKind::TcpReset => {
                if self.tcp_reset(ctx, m) {
                    self.stats.count_drop(DropReason::FilterReject);
                    self.push_out(ctx, m);
                } else {
                    self.drop_pkt(ctx, m, DropReason::FilterReject);
                }
            }
            RejectKind::Icmp4 { typ, code } | RejectKind::Icmp6 { typ, code } => {
                self.icmp_error(ctx, m, IcmpError::Raw { typ, code });
                self.drop_pkt(ctx, m, DropReason::FilterReject);
            }
        }
    }
}
