//! Stage `input`: filter INPUT for packets routed to the router, then the
//! confirm of their new connections (as netfilter confirms at the last
//! hook a packet passes).
//!
//! Reads: `Meta` (packets with `Next::Local`), `CtMeta`, the ruleset.
//! Changes: the connection table (insert), rule counters.
//!
//! Drops: filter_input, filter_reject, conntrack_full.

use super::conntrack::CtKind;
use super::{Ctx, Meta, Next, Pipeline};
use crate::filter::{Hook, TableId};
use crate::io::Port;

impl Pipeline {
    /// filter INPUT for packets routed to the router, then the confirm.
    pub(super) fn input<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, batch: &mut [Meta]) {
        let filter = !self.tables.filter.is_empty(TableId::Filter, Hook::Input);
        let mangle = self.has_mangle(Hook::Input);
        if !filter && !mangle && !self.tables.tracking {
            return;
        }
        for (i, m) in batch.iter_mut().enumerate() {
            if m.next != Next::Local {
                continue;
            }
            let c = self.ct[i];
            if mangle && !self.mangle(ctx, m, &c, Hook::Input, "mangle-in") {
                continue;
            }
            if filter && !self.filter(ctx, m, &c, Hook::Input, "filter-in") {
                continue;
            }
            if c.kind == CtKind::New && !self.confirm(ctx, m, i) {
                continue;
            }
        }
    }
}
