//! Which forwarded packets hand their connection to the XDP offload
//! (issue 16; design in docs/architecture.md, "Offload"). Three checks,
//! where the pipeline already has what each needs:
//!
//! 1. `conntrack` ([`candidate`]): a TCP or UDP packet of a known
//!    connection, ESTABLISHED (TCP: in state ESTABLISHED; UDP: answered),
//!    no helper, not a fragment, not traced, no SYN/FIN/RST, received on
//!    a port running the offload program, on an interface that is no
//!    bridge port and has at most one tag, and its direction not asked
//!    for yet; the ruleset has no raw, mangle or (nftables) filter
//!    PREROUTING rule and no filter POSTROUTING rule. Its IP and
//!    transport headers are kept as they arrived. A FIN or RST of an
//!    offloaded connection queues its teardown instead.
//! 2. `forward`: filter FORWARD accepted it by its connection state alone
//!    (the chain's leading state rule, `Ruleset::eval_state`, or no FORWARD
//!    rules) and mangle has no FORWARD or POSTROUTING rule: nothing that
//!    looks at each packet (LOG, limit, statistic, marks, a length
//!    match, ...) stands before the verdict. Then the packet is flagged.
//! 3. `tx` ([`Pipeline::offload_learn`]): the flagged packet leaves by an
//!    interface that is no bridge and has at most one tag, on a device
//!    that takes redirected frames (the control thread asks the kernel),
//!    and is no fragment; the one worker that wins the connection word's bit queues
//!    the record (`crate::offload`).

use super::conntrack::{CtKind, CtMeta};
use super::{Ctx, L3_OFF, Meta, Pipeline, flags};
use crate::conntrack::{ConnId, Conntrack, PROTO_TCP, PROTO_UDP, TcpState};
use crate::filter::{Hook, TableId, ct};
use crate::iface::{Bridging, Interfaces};
use crate::io::Port;
use crate::offload::{Learned, OffloadQueue, RX_HEAD, Request, TX_HEAD};

/// A candidate's headers as they arrived (per batch, `Meta::cap` - 1).
#[derive(Clone, Copy)]
pub(super) struct Cap {
    seq: u64,
    conn: ConnId,
    rx: [u8; RX_HEAD],
    rx_len: u8,
}

/// The flags no candidate may carry.
const NOT_OFFLOADED: u16 = flags::FRAGMENT
    | flags::TRACE
    | flags::LOCAL_ORIGIN
    | flags::BRIDGED
    | flags::L2_MULTICAST
    | flags::L2_BROADCAST
    | flags::TO_GROUP;

impl Pipeline {
    /// Whether the ruleset lets any packet be offloaded before FORWARD:
    /// no raw or mangle PREROUTING rule (they see every packet).
    pub(super) fn offload_possible(&self) -> bool {
        let f = &self.tables.filter;
        self.shared.conntrack.offload_enabled()
            && f.is_empty(TableId::Raw, Hook::Prerouting)
            && f.is_empty(TableId::Mangle, Hook::Prerouting)
            // nftables' filter chains at the prerouting hook.
            && f.is_empty(TableId::Filter, Hook::Prerouting)
            && f.is_empty(TableId::Filter, Hook::Postrouting)
    }

    /// The frame `m` leaves by `port` now (its Ethernet header written):
    /// queues its direction to the control thread if it was flagged.
    #[cold]
    #[inline(never)]
    pub(super) fn offload_learn<P: Port>(&mut self, ctx: &Ctx<'_, P>, port: usize, m: &Meta) {
        let Some(cap) = usize::from(m.cap)
            .checked_sub(1)
            .and_then(|i| self.caps.get(i))
            .filter(|c| c.seq == m.seq)
        else {
            return;
        };
        if m.flags & NOT_OFFLOADED != 0 {
            return;
        }
        let ifs = &self.tables.interfaces;
        let (hin, hout) = (ifs.hot(m.iif), ifs.hot(m.oif));
        if hout.bridge != Bridging::None
            || hout.vlans.len > 1
            || usize::from(hout.port) != port
            || !self.shared.offload.tx_port(hout.port)
        {
            return;
        }
        let ct = &self.shared.conntrack;
        if !ct.offload_request(cap.conn) {
            return;
        }
        let frame = m.desc.bytes(ctx.umem);
        let n = frame.len().min(TX_HEAD);
        let mut tx = [0u8; TX_HEAD];
        tx[..n].copy_from_slice(&frame[..n]);
        let rec = Learned {
            rx: cap.rx,
            rx_len: cap.rx_len,
            tx,
            tx_len: n as u8,
            rx_port: hin.port,
            rx_vlan: hin.vlans.as_slice().first().copied().unwrap_or(0),
            tx_port: hout.port,
            mtu: hout.mtu,
            oif: m.oif,
            nexthop: m.nexthop,
            conn: cap.conn,
            rx_mac: hin.mac,
            tables_gen: self.tables_gen,
        };
        if !self.shared.offload.push(Request::Learn(rec)) {
            // Full: a later packet asks again.
            ct.offload_mark(cap.conn, cap.conn.dir(), false, true);
        }
    }
}

/// Check 1 for packet `m` of the batch (conntrack found `c`): its
/// capture's number + 1 in `caps`, or 0.
#[inline]
pub(super) fn candidate(
    ct: &Conntrack,
    q: &OffloadQueue,
    ifs: &Interfaces,
    frame: &[u8],
    m: &Meta,
    c: &CtMeta,
    caps: &mut Vec<Cap>,
) -> u8 {
    let Some(id) = c.conn else {
        return 0;
    };
    if c.kind != CtKind::Tracked
        || c.state != ct::ESTABLISHED
        || c.helper
        || !(c.key.proto == PROTO_TCP || c.key.proto == PROTO_UDP)
        || m.flags & NOT_OFFLOADED != 0
    {
        return 0;
    }
    let hot = ifs.hot(m.iif);
    if hot.bridge != Bridging::None || hot.vlans.len > 1 || !q.rx_port(hot.port) {
        return 0;
    }
    if c.key.proto == PROTO_TCP {
        // SYN, FIN, RST: the workers' (a FIN or RST ends the offload).
        if c.tcp_flags & 0x07 != 0 {
            if c.tcp_flags & 0x05 != 0 && ct.offload_installed_conn(id) {
                q.push(Request::Teardown(id));
            }
            return 0;
        }
        // Segments without ACK: the program leaves them to the workers.
        if c.tcp_flags & 0x10 == 0 {
            return 0;
        }
        if ct.tcp_state(id) != Some(TcpState::Established) {
            return 0;
        }
    }
    // Nowhere to redirect to (no device takes redirected frames): no
    // capture, no request.
    if !q.any_tx_port() || ct.offload_requested(id) || caps.len() == caps.capacity() {
        return 0;
    }
    let l3 = &frame[L3_OFF..L3_OFF + usize::from(m.l3_len)];
    let n = l3.len().min(RX_HEAD);
    let mut rx = [0u8; RX_HEAD];
    rx[..n].copy_from_slice(&l3[..n]);
    caps.push(Cap {
        seq: m.seq,
        conn: id,
        rx,
        rx_len: n as u8,
    });
    caps.len() as u8
}
