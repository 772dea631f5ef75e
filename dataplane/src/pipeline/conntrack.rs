//! Stage `conntrack` (PREROUTING): every received IP packet is matched to
//! its connection before routing, as netfilter's conntrack hook does.
//!
//! Three passes over the batch, so that the two cache misses of a lookup
//! (index bucket, then entry) overlap across packets instead of stalling
//! each one: (1) build every packet's [`FlowKey`], hash it and prefetch
//! its bucket; (2) prefetch the entries the buckets point at; (3) look up
//! and run the TCP state machine / refresh the timeout. A packet of a
//! known connection gets its state (NEW until answered, ESTABLISHED); an
//! ICMP error quoting a tracked packet is RELATED; a first packet that may
//! open a connection is NEW (the connection is created only when the
//! packet is accepted: [`Pipeline::confirm`], after the filter, like
//! netfilter's confirm at the last hook); anything else is INVALID.
//! Non-first fragments have no transport header to match and are
//! UNTRACKED here; PREROUTING then gives each the connection its first
//! fragment had (`frag.rs`).
//!
//! Reads: the frame's L3/L4 headers. Changes: the shared connection table
//! (state, counters, expiry) and the per-batch [`CtMeta`]; NAT
//! (`prerouting.rs`, `nat.rs`) then rewrites the frame. Drops nothing
//! itself.

use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::conntrack::{
    ConnId, CtState, Dir, FlowKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TcpSeg,
};
use crate::filter::ct;
use crate::io::Port;
use crate::nat::rewrite::{quoted_key, quoting_error};
use crate::packet::{ipv4, ipv6};

/// How a packet relates to the connection table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum CtKind {
    /// Not looked at (ARP, router-originated, tracking off, a later fragment).
    #[default]
    Untracked,
    /// Part of a tracked connection (`conn` is set).
    Tracked,
    /// May open a connection: created at confirm if accepted.
    New,
    /// An ICMP error quoting a tracked connection's packet (`conn` is set,
    /// in the error's direction).
    Related,
    /// Fits no connection, cannot open one.
    Invalid,
    /// A later fragment whose first fragment was seen: it takes that
    /// fragment's connection tuple and translation (`frag.rs`).
    Fragment,
}

/// Per packet of the batch (same index as the batch): what conntrack
/// found, and the NAT target the later stages apply.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CtMeta {
    pub kind: CtKind,
    /// The packet's tuple as it arrived (for an ICMP error, the key of the
    /// connection direction the error travels in).
    pub key: FlowKey,
    pub hash: u64,
    /// The index slot the prefetch pass found first (a lookup hint).
    pub hint: u32,
    pub conn: Option<ConnId>,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// The `-m conntrack --ctstate` bit ([`crate::filter::ct`]).
    pub state: u8,
    /// The tuple the packet leaves with: for a NAT'd connection its
    /// translation; for a NEW packet the original tuple after DNAT and
    /// (at POSTROUTING) SNAT; equal to `key` when nothing is translated.
    pub target: FlowKey,
    /// The connection has a helper: the packet takes the helper's slow
    /// path (`helper.rs`) after its translation. Copied from the state
    /// word the lookup read.
    pub helper: bool,
    /// A first packet an expectation announced (`state` is RELATED,
    /// `target` the master's NAT applied to it): the nat table is not
    /// consulted for it, as Linux's `nf_nat_follow_master` set it up.
    pub expected: bool,
    /// **The raw table's hook**: the helper to attach to this packet's
    /// connection when it is confirmed (`-j CT --helper NAME` sets it in
    /// PREROUTING; a first packet only). `None`: the config's
    /// `[conntrack] helpers` port list decides.
    pub want_helper: Option<crate::conntrack::HelperKind>,
}

impl CtMeta {
    /// A packet conntrack does not look at.
    pub fn untracked() -> Self {
        CtMeta {
            state: ct::UNTRACKED,
            ..CtMeta::default()
        }
    }

    /// Whether the packet's translation changes its destination side.
    #[inline]
    pub fn changes_dst(&self) -> bool {
        self.target.dst != self.key.dst || self.target.dport != self.key.dport
    }

    /// Whether the packet's translation changes its source side (for ICMP
    /// queries the identifier is `sport`).
    #[inline]
    pub fn changes_src(&self) -> bool {
        self.target.src != self.key.src || self.target.sport != self.key.sport
    }

    /// Whether the prerouting stage has nothing to do for packet `m`
    /// (without mangle rules): it belongs to a known connection, its
    /// destination is not translated and it is not a fragment.
    #[inline]
    pub fn usual_prerouting(&self, m: &Meta) -> bool {
        matches!(self.kind, CtKind::Tracked | CtKind::Related)
            && !self.changes_dst()
            && !m.has(flags::FRAGMENT)
    }

    /// The conntrack line of a traced packet.
    pub fn trace(&self) -> TraceWhat {
        TraceWhat::Conntrack {
            state: self.state,
            reply: self.conn.is_some_and(|id| id.dir() == Dir::Reply),
        }
    }
}

/// The tuple of a packet and its TCP flags; `None` for a non-first fragment.
/// For an ICMP error, the second value is true and the key is the quoted
/// packet's tuple reversed (the direction the error travels in), or
/// `None` if the quote is unusable.
#[inline(always)]
pub(super) fn packet_key(l3: &[u8], m: &Meta) -> Option<(FlowKey, u8, bool)> {
    if m.has(flags::LATER_FRAGMENT) {
        return None;
    }
    let v4 = m.l3 == L3::V4;
    let (src, dst) = if v4 {
        let ip = ipv4::Packet::new_unchecked(l3);
        (
            crate::addr::v4_key(ip.src_u32()),
            crate::addr::v4_key(ip.dst_u32()),
        )
    } else {
        let ip = ipv6::Packet::new_unchecked(l3);
        (ip.src_u128(), ip.dst_u128())
    };
    let l4 = &l3[(m.l4_off as usize).min(l3.len())..];
    let word = |i: usize| match l4.get(i..i + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    };
    let (sport, dport, tcp_flags) = match m.proto {
        PROTO_TCP => (word(0), word(2), l4.get(13).copied().unwrap_or(0)),
        PROTO_UDP => (word(0), word(2), 0),
        PROTO_ICMP | PROTO_ICMPV6 => {
            let ty = l4.first().copied().unwrap_or(0);
            let icmp = (m.proto == PROTO_ICMP) == v4;
            if icmp && quoting_error(v4, ty) {
                let q = quoted_key(l3, v4, m.l4_off as usize)?;
                return Some((q.reverse(), 0, true));
            }
            // Queries: identifier and type (id 0 for other messages).
            (word(4), u16::from(ty) << 8, 0)
        }
        _ => (0, 0, 0),
    };
    let key = FlowKey {
        src,
        dst,
        sport,
        dport,
        proto: m.proto,
    };
    Some((key, tcp_flags, false))
}

/// Whether the transport checksum of `l3`'s packet is right (TCP, UDP,
/// ICMP, ICMPv6 over their pseudo-headers; an IPv4 UDP checksum of 0 is
/// "none"); other protocols have none to check.
fn l4_checksum_ok(l3: &[u8], m: &Meta) -> bool {
    use crate::packet::checksum::{pseudo_v4, pseudo_v6, verify};
    let off = (m.l4_off as usize).min(l3.len());
    let l4 = &l3[off..];
    let v4 = m.l3 == L3::V4;
    if m.proto == PROTO_UDP && l4.len() >= 8 && l4[6] == 0 && l4[7] == 0 {
        return v4;
    }
    let v6 = |proto: u8| {
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        src.copy_from_slice(&l3[8..24]);
        dst.copy_from_slice(&l3[24..40]);
        pseudo_v6(&src, &dst, proto, l4.len() as u32)
    };
    let pseudo = match m.proto {
        PROTO_TCP | PROTO_UDP if v4 => pseudo_v4(
            [l3[12], l3[13], l3[14], l3[15]],
            [l3[16], l3[17], l3[18], l3[19]],
            m.proto,
            l4.len() as u16,
        ),
        PROTO_TCP | PROTO_UDP => v6(m.proto),
        PROTO_ICMPV6 if !v4 => v6(m.proto),
        PROTO_ICMP if v4 => 0,
        _ => return true,
    };
    verify(l4, pseudo)
}

/// The TCP segment of packet `m` (`l3`: its IP header and payload) for
/// window tracking; `None` if it is not TCP or its header is cut.
#[inline]
pub(super) fn tcp_seg(l3: &[u8], m: &Meta) -> Option<TcpSeg> {
    if m.proto != PROTO_TCP || m.has(flags::LATER_FRAGMENT) {
        return None;
    }
    TcpSeg::parse(l3.get(m.l4_off as usize..)?)
}

impl Pipeline {
    /// PREROUTING's connection lookup for every received IP packet.
    pub(super) fn conntrack<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let offload = self.offload_possible();
        let ct = &self.shared.conntrack;
        let cts = &mut self.ct;
        cts.clear();
        // Pass 1: keys, hashes, bucket prefetch; each packet's meta written
        // once.
        cts.extend(batch.iter().map(|m| {
            if m.next != Next::Continue || m.l3 == L3::Arp || m.has(flags::LOCAL_ORIGIN) {
                return CtMeta::untracked();
            }
            let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..L3_OFF + m.l3_len as usize];
            match packet_key(l3, m) {
                None if m.has(flags::LATER_FRAGMENT) => CtMeta::untracked(),
                None => CtMeta {
                    kind: CtKind::Invalid,
                    ..CtMeta::untracked()
                },
                Some((key, tcp_flags, error)) => {
                    let hash = ct.hash(&key);
                    ct.prefetch_bucket(hash);
                    CtMeta {
                        kind: if error {
                            CtKind::Related
                        } else {
                            CtKind::Tracked
                        },
                        key,
                        hash,
                        tcp_flags,
                        target: key,
                        ..CtMeta::untracked()
                    }
                }
            }
        }));
        // Pass 2: the entries those buckets point at; the first candidate
        // is kept as the lookup's hint.
        for (m, c) in batch.iter().zip(cts.iter_mut()) {
            if matches!(c.kind, CtKind::Tracked | CtKind::Related) {
                c.hint = ct.prefetch_entries(c.hash, m.l3 == L3::V6);
            }
        }
        // Pass 3: look up, run the state machine.
        let now = ctx.now;
        let windows = ct.wants_segments();
        let mut prerouting_work = false;
        let check = self.tables.ct_checksum;
        // Linux's nf_conntrack_checksum: a wrong transport checksum makes
        // the packet INVALID. Checked where state would change (a first
        // packet, an ICMP error, a TCP SYN/FIN/RST), not on every data
        // segment: a corrupted segment of a known connection changes no
        // state and its receiver drops it, and the check costs a pass
        // over the payload (documented in docs/architecture.md).
        let bad_sum = |m: &Meta| {
            check
                && !m.has(flags::FRAGMENT)
                && !l4_checksum_ok(
                    &m.desc.bytes(ctx.umem)[L3_OFF..L3_OFF + m.l3_len as usize],
                    m,
                )
        };
        let caps = &mut self.caps;
        caps.clear();
        for (m, c) in batch.iter_mut().zip(cts.iter_mut()) {
            if matches!(c.kind, CtKind::Related | CtKind::Tracked)
                && (c.kind == CtKind::Related || c.tcp_flags & 0x07 != 0)
                && bad_sum(m)
            {
                c.kind = CtKind::Invalid;
            }
            match c.kind {
                CtKind::Related => {
                    // An error is not part of the connection: no state
                    // change, no timeout refresh.
                    (c.kind, c.state) =
                        match ct.find_hinted(&c.key, c.hash, c.hint, now, &mut c.target) {
                            Some(f) => {
                                c.conn = Some(f.id);
                                (CtKind::Related, ct::RELATED)
                            }
                            None => (CtKind::Invalid, ct::INVALID),
                        };
                }
                CtKind::Tracked => {
                    let found = ct
                        .find_hinted(&c.key, c.hash, c.hint, now, &mut c.target)
                        .and_then(|f| {
                            // Window tracking reads the TCP header's
                            // numbers (the frame is in cache: pass 1 read
                            // its ports).
                            let seg = if windows && c.key.proto == PROTO_TCP {
                                let l3 =
                                    &m.desc.bytes(ctx.umem)[L3_OFF..L3_OFF + m.l3_len as usize];
                                tcp_seg(l3, m)
                            } else {
                                None
                            };
                            ct.update_found(&f, c.tcp_flags, u32::from(m.l3_len), now, seg.as_ref())
                                .map(|s| (f, s))
                        });
                    (c.kind, c.state) = match found {
                        // Like netfilter, an invalid packet is left without
                        // its connection: no NAT applies to it.
                        Some((_, CtState::Invalid)) => (CtKind::Invalid, ct::INVALID),
                        Some((f, state)) => {
                            c.conn = Some(f.id);
                            // The one test helpers cost a packet.
                            c.helper = f.has_helper();
                            // Not answered yet: still NEW to the filter.
                            let s = if state == CtState::New {
                                ct::NEW
                            } else {
                                ct::ESTABLISHED
                            };
                            (CtKind::Tracked, s)
                        }
                        // (A SYN, FIN or RST was checked above.)
                        None if c.tcp_flags & 0x07 == 0 && bad_sum(m) => {
                            (CtKind::Invalid, ct::INVALID)
                        }
                        None if ct.can_open(&c.key, c.tcp_flags) => {
                            match ct.take_expected(&c.key, now) {
                                // Announced by a helper: RELATED, with the
                                // master's translation.
                                Some(e) => {
                                    c.expected = true;
                                    c.target = e.target;
                                    (CtKind::New, ct::RELATED)
                                }
                                None => (CtKind::New, ct::NEW),
                            }
                        }
                        None => (CtKind::Invalid, ct::INVALID),
                    };
                }
                CtKind::Invalid => c.state = ct::INVALID,
                _ => c.state = ct::UNTRACKED,
            }
            m.cap = 0;
            if offload && c.conn.is_some() {
                m.cap = super::offload::candidate(
                    ct,
                    &self.shared.offload,
                    &self.tables.interfaces,
                    m.desc.bytes(ctx.umem),
                    m,
                    c,
                    caps,
                );
            }
            prerouting_work |=
                m.next == Next::Continue && m.l3 != L3::Arp && !c.usual_prerouting(m);
            if m.has(flags::TRACE) {
                self.trace.record(m.seq, "conntrack", c.trace());
            }
        }
        self.prerouting_work = prerouting_work;
    }
}
