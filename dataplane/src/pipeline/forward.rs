//! Stage `forward`: filter FORWARD, then for first packets nat
//! POSTROUTING and the confirm (`confirm.rs`), then the source part of the
//! translation. The usual packet, accepted by its connection state alone,
//! takes a straight line. A later fragment shares its first fragment's
//! verdict and translation.
//!
//! Reads: `Meta` (packets with `Next::Forward`), `CtMeta`, the ruleset,
//! the fragment table. Changes: the frame's source (translation), the
//! connection table and NAT ports (through confirm), the fragment table.
//!
//! Drops: filter_forward, filter_reject, conntrack_full, conntrack_clash,
//! nat_ports_exhausted, nat_no_address, fragment_unforwarded, helper_partial
//! (`helper.rs`).

use super::conntrack::{CtKind, CtMeta};
use super::frag::{Fate, FragKey};
use super::{Ctx, Meta, Next, Pipeline, TraceWhat, flags};
use crate::filter::{Hook, Outcome, TableId};
use crate::io::Port;
use crate::nat::rewrite::Part;
use crate::stats::DropReason;

impl Pipeline {
    /// filter FORWARD, then nat POSTROUTING and the confirm, then the
    /// source part of the translation.
    pub(super) fn forward<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Forward);
        let mangle_fwd = self.has_mangle(Hook::Forward);
        let mangle_post = self.has_mangle(Hook::Postrouting);
        if !filter && !mangle_fwd && !mangle_post && !self.tables.tracking {
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
            if mangle_fwd {
                let c = self.ct[i];
                if !self.mangle(ctx, m, &c, Hook::Forward, "mangle-fwd") {
                    continue;
                }
            }
            // Accepted by its state alone (or no rule): nothing looked at
            // this packet itself, so its direction may be offloaded.
            let mut by_state = !filter;
            if filter {
                // The usual packet, accepted by its state alone, is not
                // traced: a straight line.
                let decided = self.state_verdict(m, state, Hook::Forward);
                by_state = matches!(decided, Some(Outcome::Accept));
                if !by_state || m.has(flags::TRACE) {
                    let c = self.ct[i];
                    if !self.filter_decided(ctx, m, &c, Hook::Forward, "filter-fwd", decided) {
                        continue;
                    }
                }
            }
            if m.cap != 0 && by_state && !mangle_fwd && !mangle_post {
                m.flags |= flags::OFFLOAD;
            }
            if mangle_post {
                let c = self.ct[i];
                if !self.mangle(ctx, m, &c, Hook::Postrouting, "mangle-post") {
                    continue;
                }
            }
            match kind {
                CtKind::New if !self.confirm(ctx, m, i) => continue,
                CtKind::New | CtKind::Tracked | CtKind::Related => {
                    // Confirm may have chosen the source translation.
                    let c = &self.ct[i];
                    // (Never set for an ICMP error or an expected first
                    // packet: one byte test.)
                    let helper = c.helper;
                    if c.changes_src() {
                        let (kind, target) = (c.kind, c.target);
                        self.translate_to(ctx, m, kind, &target, Part::Src);
                    }
                    // A helper connection's packet, translated: the
                    // helper's slow path (one flag for the others).
                    if helper {
                        self.help(ctx, m, i);
                        if m.next == Next::Done {
                            continue;
                        }
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
        if c.changes_src() {
            self.translate(ctx, m, &c, Part::Src);
        }
    }
}
