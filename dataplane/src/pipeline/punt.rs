//! The punt (part of stages `local` and `local-out`): the router's own traffic to and from the host kernel,
//! through the taps (`crate::io::punt` has the model).
//!
//! To the kernel: `local` hands over what xgate does not answer itself,
//! after filter INPUT and the conntrack confirm, as the frame stands (DNAT
//! applied, tags popped, destination MAC = the interface's, which is the
//! tap's). It goes to the tap of the interface it came in by, as Linux
//! delivers on the ingress device.
//!
//! From the kernel: each frame becomes a packet of the router's own
//! (LOCAL_ORIGIN | KERNEL) on the interface its tap mirrors. IP unicast
//! takes the local-output path, as the router's echo replies do:
//! conntrack (the kernel may open connections), filter OUTPUT, nat
//! POSTROUTING, xgate's routes and neighbours; the kernel's own choice of
//! next hop and MAC is not used (its taps do no ARP). Link-level frames
//! (multicast, broadcast, ARP) leave as the kernel built them, out of the
//! interface, tagged as the interface is.
//!
//! Drops: punt_queue_full, kernel_malformed, unsupported_ethertype,
//! no_free_frame.

use super::{Ctx, L3, L3_OFF, Meta, Next, Pipeline, TraceWhat, flags};
use crate::addr::v4_key;
use crate::iface::IfIndex;
use crate::io::punt::{PuntChannel, Slot};
use crate::io::{FramePool, Port};
use crate::packet::{ether, ipv4, ipv6};
use crate::stats::DropReason;
use std::sync::Arc;

impl Pipeline {
    /// Connects this worker to the host kernel's taps.
    pub fn set_punt(&mut self, channel: Arc<PuntChannel>) {
        self.punt = Some(channel);
    }

    /// The tap packets arriving on `iif` are punted to, if any.
    #[inline]
    pub(super) fn tap_of(&self, iif: IfIndex) -> Option<u16> {
        self.punt.as_ref()?;
        self.tables.interfaces.get(iif).tap
    }

    /// Queues a copy of `m` for the kernel and frees its frame.
    pub(super) fn punt_to_kernel<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, tap: u16) {
        let sent = self
            .punt
            .as_ref()
            .is_some_and(|p| p.send(tap, m.desc.bytes(ctx.umem)));
        if !sent {
            return self.drop_pkt(ctx, m, DropReason::PuntQueueFull);
        }
        self.punted = true;
        self.stats.punted.inc();
        if m.has(flags::TRACE) {
            self.trace.record(m.seq, "punt", TraceWhat::Punt { tap });
        }
        ctx.pool.free(m.desc);
        m.next = Next::Done;
    }

    /// Sends what the host kernel sent through its taps (a batch at most),
    /// then flushes. Called by the worker loop every round: one atomic
    /// load when the kernel sent nothing. Returns the frames taken.
    pub fn kernel_input<P: Port>(
        &mut self,
        umem: &mut [u8],
        pool: &mut FramePool,
        ports: &mut [P],
        now: u64,
    ) -> usize {
        let Some(ch) = self.punt.as_ref().filter(|p| p.has_from_kernel()).cloned() else {
            return 0;
        };
        let mut ctx = Ctx {
            umem,
            pool,
            ports,
            now,
        };
        let mut n = 0;
        while n < super::BATCH {
            let Some(slot) = ch.recv() else { break };
            n += 1;
            self.kernel_frame(&mut ctx, &slot);
            ch.recycle(slot);
        }
        self.finish(&mut ctx);
        n
    }

    fn kernel_frame<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, slot: &Slot) {
        self.stats.from_kernel.inc();
        let frame = slot.frame();
        let iif = self
            .tables
            .interfaces
            .iter()
            .find(|(_, i)| i.tap == Some(slot.tap))
            .map(|(x, _)| x);
        let (Some(iif), Some(head)) = (iif, frame.first_chunk::<{ ether::HEADER_LEN }>()) else {
            self.stats.count_drop(DropReason::KernelMalformed);
            return;
        };
        let Some(mut desc) = ctx.pool.alloc() else {
            self.stats.count_drop(DropReason::NoFreeFrame);
            return;
        };
        desc.len = frame.len() as u32;
        desc.bytes_mut(ctx.umem).copy_from_slice(frame);
        self.seq += 1;
        let mut m = Meta {
            desc,
            seq: self.seq,
            iif,
            oif: iif,
            flags: flags::LOCAL_ORIGIN | flags::KERNEL,
            ..Meta::default()
        };
        if self.trace.enabled() {
            m.flags |= flags::TRACE;
            self.trace
                .record(m.seq, "kernel", TraceWhat::FromKernel { tap: slot.tap });
        }
        let dst: [u8; 6] = head[..6].try_into().unwrap_or_default();
        let ethertype = u16::from_be_bytes([head[12], head[13]]);
        let ip = matches!(ethertype, ether::ETHERTYPE_IPV4 | ether::ETHERTYPE_IPV6);
        if ether::is_multicast(&dst) || ethertype == ether::ETHERTYPE_ARP {
            // Link-level: out as the kernel built it.
            return self.l2_out(ctx, &mut m, &dst);
        }
        if !ip {
            return self.drop_pkt(ctx, &mut m, DropReason::UnsupportedEthertype);
        }
        if self.parse_l3(ctx.umem, &mut m, ethertype).is_err() {
            return self.drop_pkt(ctx, &mut m, DropReason::KernelMalformed);
        }
        self.kernel_neighbor(ctx, &m, &dst);
        m.next = Next::Continue;
        self.push_out(ctx, &mut m);
    }

    /// A unicast frame the kernel addressed to a MAC of its choosing (not
    /// the tap's own, which is what its taps use without ARP) states a
    /// neighbour the kernel was told of: a DHCP server's answer to a client
    /// that has no address yet (dnsmasq writes the client's MAC into the
    /// kernel's neighbour table, SIOCSARP) can be delivered no other way,
    /// since the client answers no ARP request for the offered address.
    /// xgate learns it when the destination is on one of the interface's
    /// subnets; a gateway's MAC is left to xgate's own resolution.
    fn kernel_neighbor<P: Port>(&mut self, ctx: &Ctx<'_, P>, m: &Meta, dst: &[u8; 6]) {
        let ic = self.tables.interfaces.get(m.iif);
        if *dst == ic.mac {
            return;
        }
        let l3 = &m.desc.bytes(ctx.umem)[L3_OFF..];
        let (ip, on_link) = match m.l3 {
            L3::V4 => {
                let d = ipv4::Packet::new_unchecked(l3).dst_u32();
                let on = ic.v4.iter().any(|(a, len)| {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                    (u32::from(*a) ^ d) & mask == 0
                });
                (v4_key(d), on)
            }
            _ => {
                let d = ipv6::Packet::new_unchecked(l3).dst_u128();
                let on = ic.v6.iter().any(|(a, len)| {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                    (u128::from(*a) ^ d) & mask == 0
                });
                (d, on)
            }
        };
        if on_link {
            self.shared.neighbors.learn(m.iif, ip, dst, ctx.now, true);
        }
    }
}
