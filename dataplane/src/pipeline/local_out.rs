//! Stage `local-out`: the packets the router sends itself (echo replies,
//! ICMP errors, TCP resets, and the host kernel's frames from its taps),
//! collected in a second batch (`out`) by the stages that make them. Each
//! gets the translation of the connection it answers (`local_nat`, before
//! routing, so a REDIRECT's reset comes from the address the client used),
//! is routed (no iif in the policy lookup, no ICMP errors about it),
//! filtered by filter OUTPUT with the confirm of the kernel's own new
//! connections (nat POSTROUTING), and rewritten without the TTL decrement.
//!
//! Reads: the `out` batch, the connection table, the ruleset. Changes:
//! the frame (translation), the connection table (updates, inserts).
//!
//! Drops: filter_output, filter_reject, no_free_frame (`out` full), and
//! those of route, confirm and rewrite.

use super::conntrack::{CtKind, CtMeta};
use super::{BATCH, Ctx, L3, L3_OFF, Meta, Next, Pipeline, flags};
use crate::conntrack::CtState;
use crate::filter::{Hook, TableId, ct};
use crate::io::Port;
use crate::nat::rewrite::Part;
use crate::stats::DropReason;

impl Pipeline {
    /// Routes, rewrites and queues the packets the router generated.
    pub(super) fn local_out<P: Port>(&mut self, ctx: &mut Ctx<'_, P>) {
        while !self.out.is_empty() {
            // Both vectors keep their capacity: taking them allocates nothing.
            let mut batch = std::mem::take(&mut self.batch);
            batch.clear();
            // Generated packets can be more than a batch; take a batch at a time.
            let take = self.out.len().min(BATCH);
            batch.extend(self.out.drain(..take));
            self.local_nat(ctx, &mut batch);
            self.route(ctx, &mut batch);
            self.output(ctx, &mut batch);
            self.rewrite(ctx, &mut batch);
            self.batch = batch;
        }
    }

    /// Moves a packet the router now sends (in place) to the local-output batch.
    pub(super) fn push_out<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta) {
        // The router's own packet: the mark of what it answers does not
        // carry over (Linux's fwmark_reflect=0).
        m.mark = 0;
        if self.out.len() < self.out.capacity() {
            self.out.push(*m);
            m.next = Next::Done;
        } else {
            self.drop_pkt(ctx, m, DropReason::NoFreeFrame);
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
                // Its segments move its direction's TCP window as
                // forwarded ones do.
                let seg = super::conntrack::tcp_seg(l3, m);
                let s = self.shared.conntrack.update_seg(
                    id,
                    tcp_flags,
                    u32::from(m.l3_len),
                    ctx.now,
                    seg.as_ref(),
                );
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
            if c.changes_dst() {
                self.translate(ctx, m, &c, Part::Dst);
            }
            if c.changes_src() {
                self.translate(ctx, m, &c, Part::Src);
            }
        }
    }

    /// The conntrack line of a traced frame from the host kernel, which
    /// is matched like a received packet (`i`: its batch index).
    pub(super) fn trace_kernel_ct(&mut self, m: &Meta, i: usize) {
        if m.has(flags::TRACE) {
            let what = self.ct[i].trace();
            self.trace.record(m.seq, "conntrack", what);
        }
    }

    /// filter OUTPUT for the router's own packets (after routing; their
    /// states come from `local_nat`), then the confirm of the connections
    /// the host kernel opens (with nat POSTROUTING).
    pub(super) fn output<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Output);
        let mangle_out = self.has_mangle(Hook::Output);
        let mangle_post = self.has_mangle(Hook::Postrouting);
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Forward {
                continue;
            }
            let c = self.ct[i];
            if mangle_out && !self.mangle(ctx, m, &c, Hook::Output, "mangle-out") {
                continue;
            }
            if filter && !self.filter(ctx, m, &c, Hook::Output, "filter-out") {
                continue;
            }
            if mangle_post && !self.mangle(ctx, m, &c, Hook::Postrouting, "mangle-post") {
                continue;
            }
            if c.kind == CtKind::New && self.confirm(ctx, m, i) {
                let c = self.ct[i];
                if c.changes_src() {
                    self.translate(ctx, m, &c, Part::Src);
                }
            }
        }
    }
}
