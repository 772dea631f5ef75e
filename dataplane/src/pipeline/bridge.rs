//! Stage `bridge`: frames that arrived by a bridge port (parse marked
//! them with `phys_in`). The source MAC is learned (shared MAC table, no
//! lock). A frame for the bridge's routed interface was already handed to
//! it by parse and walks on as routed. A switched (BRIDGED) frame goes to
//! the port its destination was learned on, or is flooded to the VLAN's
//! other ports (broadcast, multicast, unknown unicast; a token bucket per
//! bridge bounds flooding, so a loop of two ports cannot melt the
//! worker). Broadcast and multicast also reach the routed interface (a
//! local copy: ARP, DHCP, mDNS). When the bridge sends its IP traffic
//! through netfilter (br_netfilter), a switched IPv4/IPv6 frame is not
//! sent here: it walks conntrack, PREROUTING, FORWARD and POSTROUTING
//! like a routed packet (in and out by the bridge's interface, with
//! `physdev` ports), and `rewrite` sends it by `bridge_out` (no TTL, no
//! MAC change).
//!
//! Reads: `Meta` (`phys_in`, `vid`), the bridges, the MAC table. Changes:
//! the MAC table (learning), VLAN tags on egress; new frames for flooded
//! copies and local copies.
//!
//! Drops: bridge_same_port, bridge_flood_limited, no_free_frame (copies);
//! parse drops bridge_bad_source and bridge_vlan_filtered.

use super::conntrack::CtMeta;
use super::{Ctx, L3, Meta, Next, Pipeline, TraceWhat, flags};
use crate::bridge::Learned;
use crate::filter::{Hook, Outcome, TableId};
use crate::iface::{Bridging, IfIndex};
use crate::io::Port;
use crate::packet::ether::{self, VlanStack};
use crate::stats::DropReason;

const NS: u64 = 1_000_000_000;

impl Pipeline {
    pub(super) fn bridge<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut Vec<Meta>) {
        let n = batch.len();
        for i in 0..n {
            let m = &mut batch[i];
            let Some(port) = m.phys_in else {
                continue;
            };
            if m.next != Next::Continue {
                continue;
            }
            let Bridging::Port(b) = self.tables.interfaces.hot(port).bridge else {
                continue;
            };
            let br = self.tables.bridges.get(b);
            let ageing = br.ageing_ns;
            let frame = m.desc.bytes(ctx.umem);
            let src: [u8; 6] = frame[6..12].try_into().unwrap();
            let dst: [u8; 6] = frame[0..6].try_into().unwrap();
            match self.shared.fdb.learn(b, m.vid, &src, port, ctx.now, ageing) {
                Learned::New => self.stats.fdb_learned.inc(),
                Learned::Full => self.stats.fdb_full.inc(),
                Learned::Known | Learned::Static => {}
            }
            if !m.has(flags::BRIDGED) {
                continue;
            }
            let nf = m.l3 != L3::L2;
            if ether::is_multicast(&dst) {
                let mut m = batch[i];
                self.bridge_group(ctx, &mut m, b, nf, batch);
                batch[i] = m;
                continue;
            }
            let out = self.shared.fdb.lookup(b, m.vid, &dst, ctx.now, ageing);
            let mut m = batch[i];
            match out {
                Some(p) if p == port => self.drop_pkt(ctx, &mut m, DropReason::BridgeSamePort),
                Some(p) => {
                    m.phys_out = Some(p);
                    if !nf {
                        self.bridge_out(ctx, &mut m, None);
                    }
                }
                None => {
                    m.phys_out = None;
                    if !nf {
                        self.bridge_out(ctx, &mut m, None);
                    }
                }
            }
            batch[i] = m;
        }
    }

    /// A broadcast or multicast frame: flooded to the VLAN's other ports
    /// and, when the VLAN has a routed interface, delivered to it too.
    fn bridge_group<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        b: u8,
        nf: bool,
        batch: &mut Vec<Meta>,
    ) {
        let bvi = self.tables.bridges.get(b).bvi(m.vid);
        m.phys_out = None;
        if nf {
            // The frame itself walks FORWARD and floods in `rewrite`; the
            // routed interface gets a copy that walks the local path.
            if let Some(bvi) = bvi
                && batch.len() < batch.capacity()
                && let Some(copy) = self.copy_frame(ctx, m)
            {
                let mut c = *m;
                c.desc = copy;
                self.seq += 1;
                c.seq = self.seq;
                if let Some(c) = self.deliver_to_bvi(ctx, c, bvi) {
                    batch.push(c);
                }
            }
            return;
        }
        if self.flood_allowed(b, ctx.now) {
            self.flood(ctx, m, None);
        } else {
            self.stats.count_drop(DropReason::BridgeFloodLimited);
        }
        match bvi {
            Some(bvi) => {
                if let Some(c) = self.deliver_to_bvi(ctx, *m, bvi) {
                    *m = c;
                } else {
                    m.next = Next::Done;
                }
            }
            None => {
                ctx.pool.free(m.desc);
                m.next = Next::Done;
            }
        }
    }

    /// A group frame as the routed interface `bvi` receives it (parsed
    /// again as L3); None when it was dropped.
    fn deliver_to_bvi<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        mut c: Meta,
        bvi: IfIndex,
    ) -> Option<Meta> {
        c.flags &= !flags::BRIDGED;
        c.flags |= flags::L2_MULTICAST;
        c.iif = bvi;
        c.next = Next::Continue;
        let f = c.desc.bytes(ctx.umem);
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        match self.parse_l3(ctx.umem, &mut c, ethertype) {
            Ok(()) => Some(c),
            Err(r) => {
                self.drop_pkt(ctx, &mut c, r);
                None
            }
        }
    }

    /// A new frame with `m`'s bytes (None: no free frame, counted).
    fn copy_frame<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &Meta) -> Option<crate::io::Desc> {
        let Some(mut d) = ctx.pool.alloc() else {
            self.stats.count_drop(DropReason::NoFreeFrame);
            return None;
        };
        let len = m.desc.len as usize;
        ctx.umem.copy_within(
            m.desc.addr as usize..m.desc.addr as usize + len,
            d.addr as usize,
        );
        d.len = len as u32;
        Some(d)
    }

    /// Whether bridge `b` may flood one more frame now (its token bucket).
    fn flood_allowed(&mut self, b: u8, now: u64) -> bool {
        let br = self.tables.bridges.get(b);
        let (rate, burst) = (u64::from(br.flood_rate), u64::from(br.flood_burst.max(1)));
        if rate == 0 {
            return true;
        }
        let (tokens, last) = &mut self.flood[usize::from(b)];
        let cap = burst * NS;
        let elapsed = now.saturating_sub(*last);
        *tokens = (*tokens)
            .saturating_add(elapsed.saturating_mul(rate))
            .min(cap);
        *last = now;
        if *tokens >= NS {
            *tokens -= NS;
            true
        } else {
            false
        }
    }

    /// Sends a switched frame out of its port (`m.phys_out`) or, with none,
    /// floods it to the VLAN's ports but the one it came by. `ct`: the
    /// packet's connection when it walked netfilter (flooded copies are
    /// then checked against `--physdev-out` rules per port).
    pub(super) fn bridge_out<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        ct: Option<CtMeta>,
    ) {
        match m.phys_out {
            Some(p) => {
                self.stats.bridged.inc();
                if m.has(flags::TRACE) {
                    self.trace.record(
                        m.seq,
                        "bridge",
                        TraceWhat::Bridged {
                            port: p,
                            flood: false,
                        },
                    );
                }
                self.port_out(ctx, m, p);
            }
            None => {
                let b = match self.tables.interfaces.hot(m.iif).bridge {
                    Bridging::Bvi(b) => b,
                    _ => match m.phys_in.map(|p| self.tables.interfaces.hot(p).bridge) {
                        Some(Bridging::Port(b)) => b,
                        _ => return self.drop_pkt(ctx, m, DropReason::UnknownVlan),
                    },
                };
                if !self.flood_allowed(b, ctx.now) {
                    return self.drop_pkt(ctx, m, DropReason::BridgeFloodLimited);
                }
                self.flood(ctx, m, ct);
                ctx.pool.free(m.desc);
                m.next = Next::Done;
            }
        }
    }

    /// Copies `m` to every port of its bridge VLAN but `m.phys_in` (the
    /// frame itself stays with the caller). Counted once as flooded.
    fn flood<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &Meta, ct: Option<CtMeta>) {
        let b = match (m.phys_in, self.tables.interfaces.hot(m.iif).bridge) {
            (_, Bridging::Bvi(b)) => b,
            (Some(p), _) => match self.tables.interfaces.hot(p).bridge {
                Bridging::Port(b) => b,
                _ => return,
            },
            _ => return,
        };
        self.stats.flooded.inc();
        if m.has(flags::TRACE) {
            self.trace.record(
                m.seq,
                "bridge",
                TraceWhat::Bridged {
                    port: IfIndex::MAX,
                    flood: true,
                },
            );
        }
        let recheck = ct.is_some() && self.tables.bridges.physdev_out;
        let tables = self.tables.clone();
        let br = tables.bridges.get(b);
        for bp in &br.ports {
            if Some(bp.iface) == m.phys_in || bp.egress(br.vlan_filtering, m.vid).is_none() {
                continue;
            }
            if let Some(c) = ct
                && recheck
            {
                // Linux runs FORWARD once per flooded copy: a rule that
                // names the out port decides that copy.
                let mut probe = *m;
                probe.phys_out = Some(bp.iface);
                let mut v = self.packet_view(ctx.umem, &probe, &c);
                v.oif = Some(probe.oif);
                let out = self.eval(TableId::Filter, Hook::Forward, &mut v, ctx.now);
                if !matches!(out, Outcome::Accept) {
                    continue;
                }
            }
            let Some(d) = self.copy_frame(ctx, m) else {
                continue;
            };
            let mut c = *m;
            c.desc = d;
            self.stats.flood_copies.inc();
            self.port_out(ctx, &mut c, bp.iface);
        }
    }

    /// Pushes the egress tags of port `p` for the frame's VLAN and queues
    /// it on the port's device.
    fn port_out<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, p: IfIndex) {
        let hot = *self.tables.interfaces.hot(p);
        let Bridging::Port(b) = hot.bridge else {
            return self.drop_pkt(ctx, m, DropReason::UnknownVlan);
        };
        let br = self.tables.bridges.get(b);
        let vlans = if br.vlan_filtering {
            match br.port(p).and_then(|bp| bp.egress(true, m.vid)) {
                Some(true) => VlanStack::from_slice(&[m.vid]).unwrap_or_default(),
                Some(false) => VlanStack::NONE,
                None => return self.drop_pkt(ctx, m, DropReason::BridgeVlanFiltered),
            }
        } else {
            hot.vlans
        };
        let push = vlans.len as usize * ether::TAG_LEN;
        if push > m.desc.headroom() {
            return self.drop_pkt(ctx, m, DropReason::NoFreeFrame);
        }
        if push > 0 {
            m.desc.addr -= push as u64;
            m.desc.len += push as u32;
            ether::write_tags(m.desc.bytes_mut(ctx.umem), &vlans);
        }
        m.oif = p;
        self.enqueue_tx(ctx, hot.port as usize, m);
        m.next = Next::Done;
    }

    /// A routed frame leaving by a bridge's routed interface (`m.oif`),
    /// its MACs written: to the port its destination MAC was learned on,
    /// else flooded to the interface's VLAN.
    pub(super) fn bvi_out<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        b: u8,
        dst: &[u8; 6],
    ) {
        let br = self.tables.bridges.get(b);
        let vid = br.bvi_vlan(m.oif).unwrap_or(0);
        let ageing = br.ageing_ns;
        m.vid = vid;
        m.phys_in = None;
        m.phys_out = if ether::is_multicast(dst) {
            None
        } else {
            self.shared.fdb.lookup(b, vid, dst, ctx.now, ageing)
        };
        // Flooding finds the bridge by the routed interface.
        m.iif = m.oif;
        self.bridge_out(ctx, m, None);
    }
}
