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

use super::conntrack::{CtKind, CtMeta};
use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Pipeline, TraceWhat, flags};
use crate::addr::v4_key;
use crate::conntrack::{Dir, FlowKey};
use crate::conntrack::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::filter::{
    CtView, Hook, Outcome, PacketView, RejectKind, TableId, addr_type, ct, ct_status, needs, rpf,
};
use crate::io::Port;
use crate::packet::{ipv4, ipv6};
use crate::route::RouteType;
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
    pub(super) fn packet_view(&self, umem: &[u8], m: &Meta, c: &CtMeta) -> PacketView {
        let state = c.state;
        let frame = m.desc.bytes(umem);
        let l3 = &frame[L3_OFF..L3_OFF + m.l3_len as usize];
        let v4 = m.l3 == L3::V4;
        let mut v = PacketView {
            iif: (!m.has(flags::LOCAL_ORIGIN)).then_some(m.iif),
            oif: None,
            v4,
            proto: m.proto,
            ctstate: state,
            mark: m.mark,
            len: u32::from(m.l3_len),
            phys_in: m.phys_in.filter(|&p| self.bridge_calls_netfilter(p, m)),
            phys_out: m.phys_out,
            bridged: m.has(flags::BRIDGED),
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
        let needs = self.tables.filter.needs();
        if needs != 0 {
            self.view_extra(&mut v, frame, m, c, needs);
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

    /// Whether the bridge of port `p` sends `m`'s family through
    /// netfilter: only then does a packet that came by a bridge port carry
    /// it for `-m physdev` (br_netfilter attaches it), routed or not.
    fn bridge_calls_netfilter(&self, p: crate::iface::IfIndex, m: &Meta) -> bool {
        match self.tables.interfaces.hot(p).bridge {
            crate::iface::Bridging::Port(b) => {
                let br = self.tables.bridges.get(b);
                if m.l3 == L3::V4 {
                    br.nf_call_v4
                } else {
                    br.nf_call_v6
                }
            }
            _ => false,
        }
    }

    /// The view's fields only some rulesets read ([`needs`]): link layer,
    /// address types, the connection.
    #[cold]
    fn view_extra(&self, v: &mut PacketView, frame: &[u8], m: &Meta, c: &CtMeta, need: u8) {
        if need & needs::L2 != 0 && !m.has(flags::LOCAL_ORIGIN) {
            let mac = |b: &[u8]| b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x));
            let dst = mac(&frame[0..6]);
            v.src_mac = Some(mac(&frame[6..12]));
            let ip_multicast = if v.v4 {
                v.dst >> 28 & 0xf == 0xe
            } else {
                v.dst >> 120 == 0xff
            };
            v.pkttype = if dst == 0xffff_ffff_ffff {
                1
            } else if dst >> 40 & 1 == 1 || ip_multicast {
                2
            } else {
                0
            };
        }
        if need & needs::ADDR_TYPE != 0 {
            v.src_type = self.addr_type(v.v4, v.src);
            v.dst_type = self.addr_type(v.v4, v.dst);
        }
        if need & needs::RPF != 0 {
            v.rpf = if m.has(flags::LOCAL_ORIGIN) {
                rpf::LOOSE | rpf::STRICT
            } else {
                self.reverse_path(m, v.src, v.dst)
            };
        }
        if need & needs::CONNS != 0 {
            v.conns = self.shared.conntrack.source_count(v.src) + u32::from(c.kind == CtKind::New);
        }
        if need & needs::CT != 0 {
            v.ct = ct_view(c);
            if let Some(ctv) = v.ct.as_mut() {
                ctv.mark = match c.conn {
                    Some(id) if c.kind != CtKind::New => {
                        self.shared.conntrack.mark(id).unwrap_or(0)
                    }
                    _ => m.ctmark,
                };
            }
        }
    }

    /// `-m addrtype`'s type of `addr`, as Linux finds it: IPv4 limited
    /// broadcast and 0.0.0.0/8 are BROADCAST, class D MULTICAST, else what
    /// the routes say (LOCAL, BROADCAST) or UNICAST; IPv6 ff00::/8 is
    /// MULTICAST, else the route's type (no route: UNREACHABLE).
    fn addr_type(&self, v4: bool, addr: u128) -> u16 {
        let fib = &self.tables.fib;
        if v4 {
            let a = addr as u32;
            if a == u32::MAX || a >> 24 == 0 {
                return addr_type::BROADCAST;
            }
            if a >> 28 == 0xe {
                return addr_type::MULTICAST;
            }
            match fib.lookup_v4(0, a, None, 0).map(|(r, _)| r.rtype) {
                Some(RouteType::Local) => addr_type::LOCAL,
                Some(RouteType::Broadcast) => addr_type::BROADCAST,
                _ => addr_type::UNICAST,
            }
        } else {
            if addr >> 120 == 0xff {
                return addr_type::MULTICAST;
            }
            match fib.lookup_v6(0, addr, None, 0).map(|(r, _)| r.rtype) {
                Some(RouteType::Local) => addr_type::LOCAL,
                Some(RouteType::Broadcast) => addr_type::BROADCAST,
                Some(RouteType::Unicast) => addr_type::UNICAST,
                Some(RouteType::Blackhole) => addr_type::BLACKHOLE,
                Some(RouteType::Prohibit) => addr_type::PROHIBIT,
                Some(RouteType::Unreachable) | None => addr_type::UNREACHABLE,
            }
        }
    }

    /// What a rule changed in the view that outlives the evaluation: the
    /// packet mark (later hooks, routing by fwmark) and the connection
    /// mark (the table's entry; for a first packet, kept until confirm).
    pub(super) fn keep_marks(&self, m: &mut Meta, c: &CtMeta, view: &PacketView) {
        m.mark = view.mark;
        let Some(ctv) = view.ct else {
            return;
        };
        match c.conn {
            Some(id) if c.kind != CtKind::New => {
                if self.shared.conntrack.mark(id) != Some(ctv.mark) {
                    self.shared.conntrack.set_mark(id, ctv.mark);
                }
            }
            _ => m.ctmark = ctv.mark,
        }
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

    /// Whether mangle has rules (or a DROP policy) at `hook`.
    #[inline]
    pub(super) fn has_mangle(&self, hook: Hook) -> bool {
        !self.tables.filter.is_empty(TableId::Mangle, hook)
    }

    /// Runs mangle `hook` (INPUT, FORWARD, OUTPUT, POSTROUTING) on a
    /// packet: marks and connection marks; false if it was dropped or
    /// rejected.
    pub(super) fn mangle<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        c: &CtMeta,
        hook: Hook,
        stage: &'static str,
    ) -> bool {
        let mut view = self.packet_view(ctx.umem, m, c);
        if hook != Hook::Input {
            view.oif = Some(m.oif);
        }
        if (hook == Hook::Forward || (hook == Hook::Postrouting && !m.has(flags::LOCAL_ORIGIN)))
            && !m.has(flags::BRIDGED)
        {
            view.ttl = forwarded_ttl(view.ttl);
        }
        let out = self.eval(TableId::Mangle, hook, &mut view, ctx.now);
        self.keep_marks(m, c, &view);
        if view.mss != 0 && hook != Hook::Input && matches!(out, Outcome::Accept) {
            self.clamp_mss(ctx.umem, m, view.mss);
        }
        self.trace_verdict(m, stage, &out);
        match out {
            Outcome::Accept | Outcome::Nat(_) => true,
            Outcome::Drop => {
                self.drop_pkt(ctx, m, DropReason::FilterMangle);
                false
            }
            Outcome::Reject(kind) => {
                self.reject(ctx, m, c, kind);
                false
            }
        }
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
                let mut view = self.packet_view(ctx.umem, m, c);
                if hook != Hook::Input {
                    view.oif = Some(m.oif);
                }
                if hook == Hook::Forward && !m.has(flags::BRIDGED) {
                    view.ttl = forwarded_ttl(view.ttl);
                }
                let out = self.eval(TableId::Filter, hook, &mut view, ctx.now);
                // `-j MARK`/`CONNMARK` in filter: later hooks see them.
                self.keep_marks(m, c, &view);
                if view.mss != 0 && hook != Hook::Input && matches!(out, Outcome::Accept) {
                    self.clamp_mss(ctx.umem, m, view.mss);
                }
                out
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

/// The connection as rules see it: for a packet of a known connection
/// (or an ICMP error related to one) its tuples from the packet's own
/// and its translated tuple, by direction; for a NEW packet the tuple it
/// opens and the reply it expects after the translation decided so far.
fn ct_view(c: &CtMeta) -> Option<CtView> {
    let rev = |k: &FlowKey| ((k.dst, k.src), (k.dport, k.sport));
    let fwd = |k: &FlowKey| ((k.src, k.dst), (k.sport, k.dport));
    let (reply, confirmed) = match (c.kind, c.conn) {
        (CtKind::New, _) => (false, false),
        (_, Some(id)) => (id.dir() == Dir::Reply, true),
        _ => return None,
    };
    let ((orig, orig_ports), (repl, repl_ports)) = if reply {
        (rev(&c.target), fwd(&c.key))
    } else {
        (fwd(&c.key), rev(&c.target))
    };
    let mut status = 0;
    if confirmed {
        status |= ct_status::CONFIRMED;
    }
    if c.state == ct::ESTABLISHED {
        status |= ct_status::SEEN_REPLY;
    }
    if orig.0 != repl.1 || orig_ports.0 != repl_ports.1 {
        status |= ct_status::SNAT;
    }
    if orig.1 != repl.0 || orig_ports.1 != repl_ports.0 {
        status |= ct_status::DNAT;
    }
    Some(CtView {
        orig,
        orig_ports,
        repl,
        repl_ports,
        status,
        mark: 0,
        reply,
    })
}
