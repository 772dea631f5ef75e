//! Stage `prerouting`: mangle and nat PREROUTING, after the conntrack
//! lookup. Marks (mangle), the destination part of known translations,
//! DNAT / REDIRECT for first packets (nat); a later fragment takes its
//! first fragment's connection (`frag.rs`), and a first fragment records
//! its own for the fragments that follow. Skipped for a batch of usual
//! packets (see [`CtMeta::usual_prerouting`]).
//!
//! Reads: the frame, `CtMeta`, the ruleset, the fragment table. Changes:
//! the frame's destination (translation), `Meta::mark`, `CtMeta::target`
//! of first packets, the fragment table.
//!
//! Drops: filter_prerouting, nat_no_address, nat_fragment.

use super::conntrack::{CtKind, CtMeta};
use super::frag::FragKey;
use super::{Ctx, L3, Meta, Next, Pipeline, flags};
use crate::filter::{Hook, Outcome, TableId};
use crate::io::Port;
use crate::nat::rewrite::Part;
use crate::stats::DropReason;

impl Pipeline {
    /// raw PREROUTING (its rules run after the conntrack lookup here, not
    /// before it as in Linux, but before anything reads the result):
    /// `NOTRACK` makes the packet UNTRACKED (no connection is created for
    /// it; a packet of an existing connection still refreshed it), `CT
    /// --helper` asks for a helper on the connection a first packet
    /// opens, a DROP drops (`filter_prerouting`).
    #[cold]
    fn raw<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Continue || m.l3 == L3::Arp {
                continue;
            }
            let c = self.ct[i];
            let mut view = self.packet_view(ctx.umem, m, &c);
            let out = self.eval(TableId::Raw, Hook::Prerouting, &mut view, ctx.now);
            m.mark = view.mark;
            self.trace_verdict(m, "raw", &out);
            if matches!(out, Outcome::Drop | Outcome::Reject(_)) {
                self.drop_pkt(ctx, m, DropReason::FilterPrerouting);
                continue;
            }
            if view.notrack {
                self.ct[i] = CtMeta::untracked();
                self.prerouting_work = true;
            } else if let Some(k) = view.helper {
                self.request_helper(i, k);
            }
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
        // nftables filter chains at prerouting after DNAT (priority -100
        // and above): marks and drops on the translated packet.
        let after_dnat = !self
            .tables
            .filter
            .is_empty(TableId::Filter, Hook::Prerouting);
        if !self.tables.filter.is_empty(TableId::Raw, Hook::Prerouting) {
            self.raw(ctx, batch);
        }
        // Any translation at all (DNAT here or SNAT later).
        let translating = nat || !self.tables.filter.is_empty(TableId::Nat, Hook::Postrouting);
        if !mangle && !nat && !after_dnat && !self.tables.tracking {
            return;
        }
        if !mangle && !after_dnat && self.tables.tracking && !self.prerouting_work {
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
            if !mangle && !after_dnat && c.usual_prerouting(m) {
                continue;
            }
            let c = *c;
            if mangle {
                let mut view = self.packet_view(ctx.umem, m, &c);
                let out = self.eval(TableId::Mangle, Hook::Prerouting, &mut view, ctx.now);
                self.keep_marks(m, &c, &view);
                if out == Outcome::Drop {
                    self.trace_verdict(m, "mangle", &out);
                    self.drop_pkt(ctx, m, DropReason::FilterPrerouting);
                    continue;
                }
                if let Some(k) = view.helper {
                    self.request_helper(i, k);
                }
            }
            match c.kind {
                CtKind::Tracked | CtKind::Related if c.changes_dst() => {
                    self.translate(ctx, m, &c, Part::Dst);
                }
                // An expected connection: the master's translation, not
                // the nat table's.
                CtKind::New if c.expected && c.changes_dst() => {
                    self.translate(ctx, m, &c, Part::Dst);
                }
                CtKind::New if c.expected => {}
                CtKind::New if nat => {
                    let mut view = self.packet_view(ctx.umem, m, &c);
                    let out = self.eval(TableId::Nat, Hook::Prerouting, &mut view, ctx.now);
                    self.keep_marks(m, &c, &view);
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
                            if c.changes_dst() {
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
            if after_dnat && m.next == Next::Continue {
                let c = self.ct[i];
                let mut view = self.packet_view(ctx.umem, m, &c);
                let out = self.eval(TableId::Filter, Hook::Prerouting, &mut view, ctx.now);
                self.keep_marks(m, &c, &view);
                if out == Outcome::Drop {
                    self.trace_verdict(m, "filter-pre", &out);
                    self.drop_pkt(ctx, m, DropReason::FilterPrerouting);
                    continue;
                }
                // `ct helper set` (fw4 does it here): the new
                // connection's helper, before it is confirmed.
                if let Some(k) = view.helper {
                    self.request_helper(i, k);
                }
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
}
