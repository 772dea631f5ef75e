//! The netfilter hooks around routing: mangle and nat PREROUTING (before
//! routing), filter INPUT (local delivery), filter FORWARD and nat
//! POSTROUTING (forwarded packets), filter OUTPUT (the router's own
//! packets), and the confirm of new connections.
//!
//! NAT is represented by the connection's reply tuple (`conntrack`): a
//! packet of a NAT'd connection carries its translation target in
//! [`CtMeta::target`]. As in netfilter, the destination part is applied in
//! PREROUTING, so that routing and the FORWARD filter see the real
//! destination, and the source part in POSTROUTING. Only the first packet
//! of a connection traverses the nat table; the binding it chooses (DNAT
//! here, SNAT / MASQUERADE / automatic hairpin SNAT at POSTROUTING) becomes
//! the reply tuple of the connection inserted at confirm. Source ports
//! come from the shared lock-free allocator ([`crate::nat::NatPorts`]):
//! endpoint-independent mapping, port preservation when free.
//!
//! Reads: the frame, [`CtMeta`], the ruleset. Changes: the frame
//! (addresses, ports, checksums), `Meta::mark`, the connection table
//! (insert) and NAT ports.
//!
//! Drops: filter_input, filter_forward, filter_output, filter_prerouting,
//! filter_reject, conntrack_full, conntrack_clash, nat_ports_exhausted,
//! nat_no_address, nat_fragment.

use super::conntrack::{CtKind, CtMeta};
use super::frag::{Fate, FragKey};
use super::icmp::IcmpError;
use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::conntrack::{
    CtState, FlowKey, InsertError, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use crate::filter::{Hook, NatAction, Outcome, PacketView, RejectKind, TableId, ct};
use crate::iface::IfIndex;
use crate::io::Port;
use crate::nat::rewrite::{self, Part};
use crate::packet::{ipv4, ipv6};
use crate::route::neighbor::v4_key;
use crate::stats::DropReason;

/// Whether the packet's translation changes its destination side.
#[inline]
fn changes_dst(c: &CtMeta) -> bool {
    c.target.dst != c.key.dst || c.target.dport != c.key.dport
}

/// Whether PREROUTING has nothing to do for a packet (without mangle
/// rules): it belongs to a known connection, its destination is not
/// translated and it is not a fragment.
#[inline]
pub(super) fn usual_prerouting(m: &Meta, c: &CtMeta) -> bool {
    matches!(c.kind, CtKind::Tracked | CtKind::Related)
        && !changes_dst(c)
        && !m.has(flags::FRAGMENT)
}

/// Whether the packet's translation changes its source side (for ICMP
/// queries the identifier is `sport`).
#[inline]
fn changes_src(c: &CtMeta) -> bool {
    c.target.src != c.key.src || c.target.sport != c.key.sport
}

/// How many times a first packet retries its insert with another source
/// port when the reply tuple it would get is taken.
const NAT_ATTEMPTS: u32 = 4;

/// The TTL (hop limit) filter FORWARD and nat POSTROUTING see for a
/// forwarded packet: Linux decrements it before the FORWARD hook (the
/// rewrite stage does it here, after the filter), so LOG prints the
/// decremented value, as `iptables -j LOG` does on a Linux router.
fn forwarded_ttl(ttl: u8) -> u8 {
    ttl.saturating_sub(1)
}

impl Pipeline {
    /// The view the rules match on, from the frame and the metadata.
    fn packet_view(&self, umem: &[u8], m: &Meta, state: u8) -> PacketView {
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
    fn eval(&mut self, table: TableId, hook: Hook, view: &mut PacketView, now: u64) -> Outcome {
        self.eval.now = now;
        self.tables.filter.eval(table, hook, view, &mut self.eval)
    }

    fn trace_verdict(&mut self, m: &Meta, stage: &'static str, out: &Outcome) {
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

    /// mangle and nat PREROUTING, after the conntrack lookup: marks, the
    /// destination part of known translations, DNAT / REDIRECT for first
    /// packets.
    pub(super) fn prerouting<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let mangle = !self
            .tables
            .filter
            .is_empty(TableId::Mangle, Hook::Prerouting);
        let nat = !self.tables.filter.is_empty(TableId::Nat, Hook::Prerouting);
        // Any translation at all (DNAT here or SNAT later).
        let translating = nat || !self.tables.filter.is_empty(TableId::Nat, Hook::Postrouting);
        if !mangle && !nat && !self.tables.tracking {
            return;
        }
        if !mangle && self.tables.tracking && !self.prerouting_work {
            // Conntrack saw only usual packets (below): nothing to do.
            return;
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Continue || m.l3 == L3::Arp {
                continue;
            }
            // The usual packet: of a known connection, no destination
            // translation, not a fragment, no mangle rules.
            let c = &self.ct[i];
            if !mangle && usual_prerouting(m, c) {
                continue;
            }
            let c = *c;
            if mangle {
                let mut view = self.packet_view(ctx.umem, m, c.state);
                let out = self.eval(TableId::Mangle, Hook::Prerouting, &mut view, ctx.now);
                m.mark = view.mark;
                if out == Outcome::Drop {
                    self.trace_verdict(m, "mangle", &out);
                    self.drop_pkt(ctx, m, DropReason::FilterPrerouting);
                    continue;
                }
            }
            match c.kind {
                CtKind::Tracked | CtKind::Related if changes_dst(&c) => {
                    self.translate(ctx, m, &c, Part::Dst);
                }
                CtKind::New if nat => {
                    let mut view = self.packet_view(ctx.umem, m, c.state);
                    let out = self.eval(TableId::Nat, Hook::Prerouting, &mut view, ctx.now);
                    self.trace_verdict(m, "nat-pre", &out);
                    if let Outcome::Nat(action) = out {
                        let Some(t) = self.dnat_target(m, &c, action) else {
                            self.drop_pkt(ctx, m, DropReason::NatNoAddress);
                            continue;
                        };
                        self.ct[i].target = t;
                        let c = self.ct[i];
                        self.translate(ctx, m, &c, Part::Dst);
                    }
                }
                CtKind::Untracked if m.has(flags::LATER_FRAGMENT) && self.tables.tracking => {
                    let first =
                        FragKey::received(ctx.umem, m).and_then(|k| self.frags.get(&k, ctx.now));
                    match first {
                        Some((_, key, target)) => {
                            let c = CtMeta {
                                kind: CtKind::Fragment,
                                key,
                                target,
                                ..c
                            };
                            self.ct[i] = c;
                            if changes_dst(&c) {
                                self.translate(ctx, m, &c, Part::Dst);
                            }
                        }
                        // Its connection's translation is unknown: passing
                        // it untranslated could leak inside addresses.
                        None if translating => self.drop_pkt(ctx, m, DropReason::NatFragment),
                        None => {}
                    }
                }
                _ => {}
            }
            // A first fragment: its datagram's later fragments follow it.
            if m.has(flags::FRAGMENT)
                && !m.has(flags::LATER_FRAGMENT)
                && m.next == Next::Continue
                && matches!(self.ct[i].kind, CtKind::Tracked | CtKind::New)
                && let Some(k) = FragKey::of_conn(ctx.umem, m, &self.ct[i].key)
            {
                let c = &self.ct[i];
                self.frags.routing(k, c.key, c.target, ctx.now);
            }
        }
    }

    /// The address an interface translates to (MASQUERADE out of it,
    /// REDIRECT into it): its first IPv4 address, or its first global IPv6
    /// one.
    fn nat_address(&self, ifx: IfIndex, l3: L3) -> Option<u128> {
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
    fn dnat_target(&self, m: &Meta, c: &CtMeta, action: NatAction) -> Option<FlowKey> {
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
    fn translate<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, c: &CtMeta, part: Part) {
        self.translate_to(ctx, m, c.kind, &c.target, part);
    }

    /// [`Pipeline::translate`] given the packet's kind and target tuple.
    fn translate_to<P: Port>(
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
                addr: crate::route::neighbor::key_ip(addr),
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
    fn undo_dst<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, c: &CtMeta) {
        if matches!(c.kind, CtKind::Tracked | CtKind::New) && changes_dst(c) {
            let undo = CtMeta {
                target: c.key,
                ..*c
            };
            self.translate(ctx, m, &undo, Part::Dst);
        }
    }

    /// The router's own packets (echo replies, resets, ICMP errors) answer
    /// packets of tracked connections: they get that connection's
    /// translation (both parts, before routing), and their ctstate for
    /// filter OUTPUT is stored in `self.ct`.
    pub(super) fn local_nat<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        self.ct.clear();
        self.ct.resize(batch.len(), CtMeta::untracked());
        if !self.tables.tracking {
            return;
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Continue || m.l3 == L3::Arp {
                continue;
            }
            let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..L3_OFF + m.l3_len as usize];
            let Some((key, tcp_flags, err)) = super::conntrack::packet_key(l3, m) else {
                continue;
            };
            let ct = &self.shared.conntrack;
            let kernel = m.has(flags::KERNEL);
            let Some(id) = ct.lookup(&key, ctx.now) else {
                self.ct[i] = if !kernel {
                    CtMeta {
                        state: ct::NEW,
                        ..CtMeta::untracked()
                    }
                } else if !err && ct.can_open(&key, tcp_flags) {
                    // The host kernel opens a connection of its own (its
                    // resolver, an ssh client): created at confirm, after
                    // filter OUTPUT, so that the answers are ESTABLISHED.
                    CtMeta {
                        kind: CtKind::New,
                        key,
                        target: key,
                        tcp_flags,
                        state: ct::NEW,
                        ..CtMeta::default()
                    }
                } else {
                    CtMeta {
                        kind: CtKind::Invalid,
                        state: ct::INVALID,
                        ..CtMeta::default()
                    }
                };
                if kernel {
                    self.trace_kernel_ct(m, i);
                }
                continue;
            };
            let c = CtMeta {
                kind: if err {
                    CtKind::Related
                } else {
                    CtKind::Tracked
                },
                key,
                conn: Some(id),
                state: if err { ct::RELATED } else { ct::ESTABLISHED },
                target: ct.translation(id).unwrap_or(key),
                ..CtMeta::default()
            };
            self.ct[i] = c;
            if !err {
                // The router's own packet is part of the connection, as in
                // netfilter's OUTPUT hook: a reset it sends closes it (after
                // its translation was read), an echo reply refreshes it.
                let s = self
                    .shared
                    .conntrack
                    .update(id, tcp_flags, u32::from(m.l3_len), ctx.now);
                if kernel {
                    // The kernel's packets are matched like received ones.
                    self.ct[i].state = match s {
                        Some(CtState::New) => ct::NEW,
                        Some(CtState::Invalid) | None => ct::INVALID,
                        Some(_) => ct::ESTABLISHED,
                    };
                    if self.ct[i].state == ct::INVALID {
                        self.ct[i].kind = CtKind::Invalid;
                    }
                    self.trace_kernel_ct(m, i);
                    if self.ct[i].kind == CtKind::Invalid {
                        continue;
                    }
                }
            } else if kernel {
                self.trace_kernel_ct(m, i);
            }
            if changes_dst(&c) {
                self.translate(ctx, m, &c, Part::Dst);
            }
            if changes_src(&c) {
                self.translate(ctx, m, &c, Part::Src);
            }
        }
    }

    /// The conntrack line of a traced frame from the host kernel, which
    /// is matched like a received packet (`i`: its batch index).
    fn trace_kernel_ct(&mut self, m: &Meta, i: usize) {
        if m.has(flags::TRACE) {
            let what = self.ct[i].trace();
            self.trace.record(m.seq, "conntrack", what);
        }
    }

    /// filter INPUT for packets routed to the router, then the confirm.
    pub(super) fn input<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Input);
        if !filter && !self.tables.tracking {
            return;
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Local {
                continue;
            }
            let c = self.ct[i];
            if filter && !self.filter(ctx, m, &c, Hook::Input, "filter-in") {
                continue;
            }
            if c.kind == CtKind::New && !self.confirm(ctx, m, i) {
                continue;
            }
        }
    }

    /// The verdict of filter `hook` when the chain's first rules decide by
    /// the connection state alone ([`crate::filter::Ruleset::eval_state`]:
    /// counted, no packet view built).
    #[inline]
    fn state_verdict(&mut self, m: &Meta, state: u8, hook: Hook) -> Option<Outcome> {
        let v4 = m.l3 == L3::V4;
        let len = u32::from(m.l3_len);
        self.tables
            .filter
            .eval_state(TableId::Filter, hook, v4, state, len, &mut self.eval)
    }

    /// Runs filter `hook` on a packet; false if it was dropped or rejected.
    fn filter<P: Port>(
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
    fn filter_decided<P: Port>(
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
    fn reject<P: Port>(
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

    /// filter FORWARD, then nat POSTROUTING and the confirm, then the
    /// source part of the translation.
    pub(super) fn forward<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Forward);
        if !filter && !self.tables.tracking {
            return;
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Forward || m.has(flags::LOCAL_ORIGIN) {
                continue;
            }
            let (kind, state) = (self.ct[i].kind, self.ct[i].state);
            if kind == CtKind::Fragment {
                self.forward_fragment(ctx, m, self.ct[i]);
                continue;
            }
            if filter {
                // The usual packet, accepted by its state alone, is not
                // traced: a straight line.
                let decided = self.state_verdict(m, state, Hook::Forward);
                if !matches!(decided, Some(Outcome::Accept)) || m.has(flags::TRACE) {
                    let c = self.ct[i];
                    if !self.filter_decided(ctx, m, &c, Hook::Forward, "filter-fwd", decided) {
                        continue;
                    }
                }
            }
            match kind {
                CtKind::New if !self.confirm(ctx, m, i) => continue,
                CtKind::New | CtKind::Tracked | CtKind::Related => {
                    // Confirm may have chosen the source translation.
                    let c = &self.ct[i];
                    if changes_src(c) {
                        let (kind, target) = (c.kind, c.target);
                        self.translate_to(ctx, m, kind, &target, Part::Src);
                    }
                }
                _ => {}
            }
            if m.has(flags::FRAGMENT) {
                self.fragment_forwarded(ctx, m, i);
            }
        }
    }

    /// A forwarded first fragment: its datagram's later fragments get its
    /// translation (`i`: its batch index).
    fn fragment_forwarded<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &Meta, i: usize) {
        if !m.has(flags::LATER_FRAGMENT)
            && let Some(k) = FragKey::of_conn(ctx.umem, m, &self.ct[i].key)
        {
            self.frags.forwarded(k, self.ct[i].target);
        }
    }

    /// FORWARD for a later fragment: it shares its first fragment's fate
    /// (Linux decides once for the reassembled datagram), taking its
    /// translation's source part if that fragment was forwarded.
    fn forward_fragment<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, c: CtMeta) {
        // `c.key` is the first fragment's tuple as received.
        let first = FragKey::of_conn(ctx.umem, m, &c.key).and_then(|k| self.frags.get(&k, ctx.now));
        if m.has(flags::TRACE) {
            let forwarded = matches!(first, Some((Fate::Forwarded, ..)));
            self.trace
                .record(m.seq, "filter-fwd", TraceWhat::Fragment { forwarded });
        }
        let Some((Fate::Forwarded, _, target)) = first else {
            self.drop_pkt(ctx, m, DropReason::FragmentUnforwarded);
            return;
        };
        let c = CtMeta { target, ..c };
        if changes_src(&c) {
            self.translate(ctx, m, &c, Part::Src);
        }
    }

    /// nat POSTROUTING for a first packet (forwarded ones), then inserts its
    /// connection with the reply tuple the translation implies. False if
    /// the packet was dropped (table full, no NAT port).
    fn confirm<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, i: usize) -> bool {
        let c = self.ct[i];
        let mut snat = None;
        if m.next == Next::Forward {
            if !self.tables.filter.is_empty(TableId::Nat, Hook::Postrouting) {
                let mut view = self.packet_view(ctx.umem, m, c.state);
                view.oif = Some(m.oif);
                if !m.has(flags::LOCAL_ORIGIN) {
                    view.ttl = forwarded_ttl(view.ttl);
                }
                let out = self.eval(TableId::Nat, Hook::Postrouting, &mut view, ctx.now);
                self.trace_verdict(m, "nat-post", &out);
                if let Outcome::Nat(a) = out {
                    snat = Some(a);
                }
            }
            // Hairpin (RFC 4787 REQ-9): a DNAT'd packet leaving by the
            // interface it came in must come from the public address the
            // client used, or the server would answer the client directly.
            if snat.is_none() && changes_dst(&c) && m.oif == m.iif {
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
        let Some(action) = snat else {
            // No source translation: the reply tuple is the target reversed.
            return match ct.insert(&c.key, &c.target.reverse(), c.tcp_flags, len, ctx.now) {
                Ok(id) => {
                    self.ct[i].conn = Some(id);
                    true
                }
                // Another worker confirmed the same connection first: the
                // packet is part of it.
                Err(InsertError::Exists(_) | InsertError::Clash | InsertError::Invalid) => true,
                Err(InsertError::Full) => {
                    self.drop_pkt(ctx, m, DropReason::ConntrackFull);
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
                let got = nat.acquire(pool, t.proto, c.key.src, c.key.sport, range, attempt);
                release(clashed.take());
                match got {
                    Some(p) => t.sport = p,
                    None => {
                        self.drop_pkt(ctx, m, DropReason::NatPortsExhausted);
                        return false;
                    }
                }
            }
            match ct.insert(&c.key, &t.reverse(), c.tcp_flags, len, ctx.now) {
                Ok(id) => {
                    self.ct[i].conn = Some(id);
                    self.ct[i].target = t;
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
                    let r = if e == InsertError::Full {
                        DropReason::ConntrackFull
                    } else {
                        DropReason::ConntrackClash
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

    /// The external address and port range of an SNAT / MASQUERADE action.
    fn snat_source(
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

    /// filter OUTPUT for the router's own packets (after routing; their
    /// states come from `local_nat`), then the confirm of the connections
    /// the host kernel opens (with nat POSTROUTING).
    pub(super) fn output<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Output);
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Forward {
                continue;
            }
            let c = self.ct[i];
            if filter && !self.filter(ctx, m, &c, Hook::Output, "filter-out") {
                continue;
            }
            if c.kind == CtKind::New && self.confirm(ctx, m, i) {
                let c = self.ct[i];
                if changes_src(&c) {
                    self.translate(ctx, m, &c, Part::Src);
                }
            }
        }
    }
}
