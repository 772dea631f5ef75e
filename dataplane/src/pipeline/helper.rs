//! The helpers' slow path: packets of connections with a helper
//! (`CtMeta::helper`, one bit of the state word the lookup read), in
//! FORWARD after their translation, as Linux runs helpers after NAT at
//! POSTROUTING. Also the attach of a helper at confirm.
//!
//! - FTP (`conntrack::helper::ftp`): a segment that starts a line and a
//!   command (PORT, EPRT from the client; 227, 229 from the server) gets
//!   an expectation for the data connection, in the master's NAT; when
//!   the master is NAT'd, the command's address and port are rewritten
//!   to what the peer must use (`nat::mangle`), and a length change is
//!   recorded for the sequence adjustment (`nat::seqadj`), which every
//!   later packet of the connection then gets, both directions (sequence
//!   and acknowledgement numbers, SACK blocks). A segment holding only
//!   the start of a command is dropped (`helper_partial`, as Linux);
//!   malformed commands and addresses that are not the sender's are
//!   counted and left alone.
//! - TFTP (`conntrack::helper::tftp`): a read or write request expects the
//!   server's answer from a new port.
//!
//! Reads: the frame, `CtMeta`, the connection table. Changes: the frame
//! (payload, lengths, checksums, sequence numbers), the helper record
//! (sequence adjustment, line state), the expectation table.
//!
//! Drops: helper_partial.

use std::sync::Arc;

use super::{Ctx, L3, L3_OFF, Meta, Pipeline, TraceWhat};
use crate::conntrack::helper::{self as h, HelperKind, ftp, tftp};
use crate::conntrack::{ConnId, Dir, Expectation, FlowKey, PROTO_TCP, PROTO_UDP};
use crate::io::Port;
use crate::nat::{mangle, seqadj};
use crate::stats::DropReason;

impl Dir {
    fn other(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// The master's tuples as the command's direction sees them: the tuple
/// of direction `dir` and of the other one.
struct Tuples {
    this: FlowKey,
    other: FlowKey,
    nat: bool,
}

impl Pipeline {
    /// **The raw table's call** (`-t raw -A PREROUTING ... -j CT --helper
    /// NAME`, evaluated for packet `i` of the batch before nat
    /// PREROUTING): asks for helper `kind` on the packet's connection.
    /// Only a first packet (`CtKind::New`, not an expected one) opens a
    /// connection, so only then does it do anything, as in Linux; the
    /// helper is attached when the connection is confirmed (after filter
    /// FORWARD / INPUT accepted it), and takes precedence over
    /// `[conntrack] helpers`. `HelperKind::from_name` maps `--helper`'s
    /// names ("ftp", "tftp"); a helper of another protocol than the
    /// packet's is ignored at confirm.
    pub(super) fn request_helper(&mut self, i: usize, kind: HelperKind) {
        if let Some(c) = self.ct.get_mut(i)
            && c.kind == super::conntrack::CtKind::New
            && !c.expected
        {
            c.want_helper = Some(kind);
        }
    }

    /// At confirm: attaches the helper the raw table asked for
    /// (`CtMeta::want_helper`), else the one `[conntrack] helpers` gives
    /// the connection's (translated) destination port.
    #[inline(never)]
    pub(super) fn attach_helper(&mut self, i: usize, id: ConnId) {
        let c = &self.ct[i];
        if c.expected {
            return;
        }
        let kind = match c.want_helper {
            Some(k) => Some(k),
            None if self.tables.helper_ports.is_empty() => None,
            None => self.tables.helper_ports.lookup(c.key.proto, c.target.dport),
        };
        if let Some(k) = kind
            && k.proto() == c.key.proto
            && self.shared.conntrack.attach_helper(id, k)
        {
            // The first packet is the helper's too (a TFTP request).
            self.ct[i].helper = true;
        }
    }

    /// A forwarded packet of a helper connection, translated (`i`: its
    /// batch index). Cold and out of line: the forward loop of every
    /// other packet keeps its size and registers.
    #[cold]
    #[inline(never)]
    pub(super) fn help<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, i: usize) {
        let Some(id) = self.ct[i].conn else { return };
        let shared = Arc::clone(&self.shared);
        let ct = &shared.conntrack;
        let Some((kind, slot)) = ct.helper_of(id) else {
            return;
        };
        match (kind, m.proto) {
            (HelperKind::Ftp, PROTO_TCP) => self.help_ftp(ctx, m, id, slot),
            (HelperKind::Tftp, PROTO_UDP) => help_tftp(ctx, m, &shared.conntrack, id),
            _ => {}
        }
    }

    fn help_ftp<P: Port>(&mut self, ctx: &mut Ctx<'_, P>, m: &mut Meta, id: ConnId, slot: u16) {
        let shared = Arc::clone(&self.shared);
        let ct = &shared.conntrack;
        let dir = id.dir();
        let l4 = m.l4_off as usize;
        let l3_len = m.l3_len as usize;
        let frame = m.desc.bytes(ctx.umem);
        let Some(l3) = frame.get(L3_OFF..L3_OFF + l3_len) else {
            return;
        };
        let Some(hdr) = l3.get(l4..l4 + 20) else {
            return;
        };
        let doff = usize::from(hdr[12] >> 4) * 4;
        let seq = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let data_at = l4 + doff;
        if doff < 20 || data_at > l3_len {
            return;
        }
        let payload = &l3[data_at..];
        let sent = payload.len();
        let ends_line = payload.last() == Some(&b'\n');
        if sent > 0 && ct.helpers.starts_line(slot, dir, seq) {
            match ftp::parse(dir, payload) {
                ftp::Parsed::Nothing => {}
                ftp::Parsed::Partial => {
                    ct.helper_count(h::H_PARTIAL);
                    self.trace_helper(m, "ftp: command cut by the segment's end", 0, 0);
                    self.drop_pkt(ctx, m, DropReason::HelperPartial);
                    return;
                }
                ftp::Parsed::Malformed => {
                    ct.helper_count(h::H_PARSE_ERRORS);
                    self.trace_helper(m, "ftp: malformed command left alone", 0, 0);
                }
                ftp::Parsed::Command(cmd) => {
                    self.ftp_command(ctx, m, id, slot, seq, data_at, cmd);
                }
            }
        }
        if sent > 0 && ends_line {
            // In the sender's numbering, as sent (before any rewrite).
            ct.helpers
                .newline_at(slot, dir, seq.wrapping_add(sent as u32));
        }
        // Every packet of the connection, once a rewrite changed a length.
        let this = ct.helpers.seqadj(slot, dir);
        let other = ct.helpers.seqadj(slot, dir.other());
        if !this.is_zero() || !other.is_zero() {
            let l3_len = m.l3_len as usize;
            let l3 = &mut m.desc.bytes_mut(ctx.umem)[L3_OFF..L3_OFF + l3_len];
            if let Some(tcp) = l3.get_mut(l4..l4 + doff) {
                seqadj::adjust_tcp(tcp, this, other);
            }
        }
    }

    /// A command of the FTP control connection `id`: the expectation,
    /// and the rewrite when the master is NAT'd.
    #[allow(clippy::too_many_arguments)]
    fn ftp_command<P: Port>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        m: &mut Meta,
        id: ConnId,
        slot: u16,
        seq: u32,
        data_at: usize,
        cmd: ftp::Command,
    ) {
        let shared = Arc::clone(&self.shared);
        let ct = &shared.conntrack;
        let dir = id.dir();
        let Some(t) = tuples(ct, id) else { return };
        let v4 = t.this.is_v4();
        // The announced address must be the sender's (Linux's rule; an
        // EPSV reply names none).
        let announced = cmd.addr.unwrap_or(t.this.src);
        let family_ok = cmd.addr.is_none() || cmd.v6 != v4;
        if !family_ok || announced != t.this.src {
            ct.helper_count(h::H_WRONG_ADDRESS);
            self.trace_helper(m, "ftp: address is not the sender's, no expectation", 0, 0);
            return;
        }
        let what = match cmd.form {
            ftp::Form::Port => "ftp PORT",
            ftp::Form::Eprt => "ftp EPRT",
            ftp::Form::Pasv => "ftp 227",
            ftp::Form::Epsv => "ftp 229",
        };
        // The data connection comes from the other side: from the
        // address the master's peer uses, to the address it sends to;
        // it leaves as the master's NAT has it (nf_nat_follow_master).
        let e = Expectation {
            key: FlowKey {
                src: t.other.src,
                dst: t.other.dst,
                sport: 0,
                dport: cmd.port,
                proto: PROTO_TCP,
            },
            target: FlowKey {
                src: t.this.dst,
                dst: t.this.src,
                sport: 0,
                dport: cmd.port,
                proto: PROTO_TCP,
            },
            master: id,
            helper: HelperKind::Ftp,
            expires_ms: 0,
        };
        let Ok(port) = ct.expect(&e, dir.other(), t.nat, ctx.now) else {
            self.trace_helper(m, "ftp: expectation refused (full)", 0, 0);
            return;
        };
        if !t.nat {
            self.trace_helper(m, what, port, 0);
            return;
        }
        // The text the peer must read: where the data connection reaches
        // the sender through the NAT.
        let mut text = [0u8; ftp::MAX_TEXT];
        let n = ftp::format(cmd.form, !v4, t.other.dst, port, &mut text);
        let (at, old_len) = (data_at + cmd.start, cmd.end - cmd.start);
        let l3_len = m.l3_len as usize;
        let start = m.desc.addr as usize + L3_OFF;
        let room_end = m.desc.addr as usize + m.desc.len as usize + m.desc.tailroom();
        let Some(buf) = ctx.umem.get_mut(start..room_end) else {
            return;
        };
        if buf[at..at + old_len] == text[..n] {
            self.trace_helper(m, what, port, 0);
            return;
        }
        let new_len = l3_len - old_len + n;
        let diff = n as i32 - old_len as i32;
        if new_len > buf.len() || new_len > usize::from(u16::MAX) {
            ct.helper_count(h::H_REWRITE_REFUSED);
            return;
        }
        // The offset first: a refused one leaves the segment as it is.
        if !ct.helpers.record_rewrite(slot, dir, seq, diff) {
            ct.helper_count(h::H_REWRITE_REFUSED);
            return;
        }
        let v4l3 = m.l3 == L3::V4;
        match mangle::replace(
            buf,
            l3_len,
            v4l3,
            m.l4_off as usize,
            PROTO_TCP,
            at,
            old_len,
            &text[..n],
        ) {
            Ok(len) => {
                m.l3_len = len as u16;
                m.desc.len = (m.desc.len as i64 + i64::from(diff)) as u32;
                ct.helper_count(h::H_REWRITES);
                self.trace_helper(m, what, port, diff as i16);
            }
            Err(_) => ct.helper_count(h::H_REWRITE_REFUSED),
        }
    }
}

impl Pipeline {
    fn trace_helper(&mut self, m: &Meta, what: &'static str, port: u16, diff: i16) {
        if m.has(super::flags::TRACE) {
            self.trace
                .record(m.seq, "helper", TraceWhat::Helper { what, port, diff });
        }
    }
}

/// The master's tuples from the direction of connection handle `id`.
fn tuples(ct: &crate::conntrack::Conntrack, id: ConnId) -> Option<Tuples> {
    let f = ct.get(id)?;
    let nat = f.reply != f.original.reverse();
    Some(match id.dir() {
        Dir::Original => Tuples {
            this: f.original,
            other: f.reply,
            nat,
        },
        Dir::Reply => Tuples {
            this: f.reply,
            other: f.original,
            nat,
        },
    })
}

/// TFTP: a read or write request expects the server's answer (from any
/// port) back to the client, in the master's translation.
fn help_tftp<P: Port>(
    ctx: &mut Ctx<'_, P>,
    m: &Meta,
    ct: &crate::conntrack::Conntrack,
    id: ConnId,
) {
    if id.dir() != Dir::Original {
        return;
    }
    let l4 = m.l4_off as usize;
    let l3_len = m.l3_len as usize;
    let frame = m.desc.bytes(ctx.umem);
    let Some(payload) = frame.get(L3_OFF + l4 + 8..L3_OFF + l3_len) else {
        return;
    };
    if !tftp::starts_transfer(payload) {
        return;
    }
    let Some(t) = tuples(ct, id) else { return };
    let e = Expectation {
        key: FlowKey {
            src: t.other.src,
            dst: t.other.dst,
            sport: 0,
            dport: t.other.dport,
            proto: PROTO_UDP,
        },
        target: FlowKey {
            src: t.this.dst,
            dst: t.this.src,
            sport: 0,
            dport: t.this.sport,
            proto: PROTO_UDP,
        },
        master: id,
        helper: HelperKind::Tftp,
        expires_ms: 0,
    };
    let _ = ct.expect(&e, Dir::Reply, false, ctx.now);
}

#[cfg(test)]
mod tests {
    use super::super::conntrack::{CtKind, CtMeta};
    use super::super::{HelperPorts, Pipeline, Shared, Tables};
    use crate::conntrack::{FlowKey, HelperKind, PROTO_TCP};
    use std::sync::Arc;

    fn pipeline(ports: Vec<(HelperKind, u16)>) -> Pipeline {
        let tables = Arc::new(Tables {
            interfaces: crate::iface::Interfaces::new(Vec::new()),
            fib: crate::route::Fib::new(),
            icmp: Default::default(),
            filter: Default::default(),
            tracking: true,
            helper_ports: HelperPorts { ports },
            ct_checksum: true,
            bridges: Default::default(),
        });
        Pipeline::new(tables, Arc::new(Shared::new(64)))
    }

    /// A first packet to `dport`, confirmed: the helper its connection got.
    fn confirmed(
        p: &mut Pipeline,
        dport: u16,
        raw: Option<HelperKind>,
        kind: CtKind,
    ) -> Option<HelperKind> {
        // A new source port each time: each call a new connection.
        let sport = 30_000 + p.shared.conntrack.len() as u16;
        let key = FlowKey::v4(0x0a00_0002, 0x0a00_0102, PROTO_TCP, sport, dport);
        p.ct.clear();
        p.ct.push(CtMeta {
            kind,
            key,
            target: key,
            ..CtMeta::untracked()
        });
        if let Some(k) = raw {
            p.request_helper(0, k);
        }
        let id = p
            .shared
            .conntrack
            .insert(&key, &key.reverse(), 0x02, 60, 0)
            .unwrap();
        p.attach_helper(0, id);
        p.shared.conntrack.helper(id)
    }

    #[test]
    fn raw_table_request_then_port_list() {
        let mut p = pipeline(vec![(HelperKind::Ftp, 21)]);
        // The port list alone.
        assert_eq!(
            confirmed(&mut p, 21, None, CtKind::New),
            Some(HelperKind::Ftp)
        );
        assert_eq!(confirmed(&mut p, 2121, None, CtKind::New), None);
        // The raw table's request, on any port; it wins over the list.
        assert_eq!(
            confirmed(&mut p, 2121, Some(HelperKind::Ftp), CtKind::New),
            Some(HelperKind::Ftp)
        );
        // A helper of another protocol (TFTP on a TCP connection): none.
        assert_eq!(
            confirmed(&mut p, 22, Some(HelperKind::Tftp), CtKind::New),
            None
        );
        // Only a first packet can ask.
        assert_eq!(
            confirmed(&mut p, 2222, Some(HelperKind::Ftp), CtKind::Tracked),
            None
        );
        assert!(p.ct[0].want_helper.is_none());
        // The first packet is the helper's too.
        confirmed(&mut p, 21, None, CtKind::New);
        assert!(p.ct[0].helper);
    }
}
