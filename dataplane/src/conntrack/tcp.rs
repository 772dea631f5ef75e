//! The TCP connection state machine, after Linux's nf_conntrack_proto_tcp.
//!
//! A packet's flags are first checked against the combinations a TCP stack
//! sends (Linux's `tcp_valid_flags`, ignoring PSH, ECE and CWR): SYN,
//! SYN+ACK, RST, RST+ACK, FIN+ACK, ACK, each optionally with URG (SYN+URG,
//! FIN+ACK+URG, ACK+URG). Anything else (SYN+FIN, SYN+RST, no flags, FIN
//! without ACK, ...) is INVALID and changes nothing. A valid packet is then
//! reduced to one of six events (RST wins, then SYN or SYN+ACK, then FIN,
//! then ACK) and the transition is read from a table indexed by direction,
//! event and current state, with the semantics of the kernel's
//! `tcp_conntracks` table (Linux 5.x/6.x, including SYN_SENT2 for a
//! simultaneous open). A cell is a new state, "ignore" (the packet passes,
//! the connection is unchanged: e.g. a SYN on an established connection) or
//! "invalid".
//!
//! Window tracking (Linux's `tcp_in_window`) is [`window`]: per direction
//! the highest sequence number sent ([`Side::end`]), the highest the
//! receiver's window allows ([`Side::maxend`]), the largest window seen
//! ([`Side::maxwin`]), the highest ack sent ([`Side::maxack`]) and the
//! window scale from the SYN options. A segment is checked against the
//! other direction's state: its sequence number must not pass the
//! receiver's window (else INVALID), its ack must not acknowledge data not
//! yet sent (INVALID); a segment wholly below the window (an old
//! retransmission) or an ack far behind is passed without updating
//! anything (Linux's `NFCT_TCP_IGNORE`). SACK blocks are not read: the
//! checks use the cumulative ack (as Linux does for a receiver that did not
//! offer SACK). Pure functions: the table (`table/`) keeps the state in
//! atomics and applies the results (`table/window.rs`).

use super::Dir;

/// TCP header flag bits: the packet module's, re-exported here for callers.
pub use crate::packet::tcp::flags;

/// Conntrack's view of a TCP connection (`/proc/net/nf_conntrack` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    SynSent = 1,
    SynRecv = 2,
    Established = 3,
    FinWait = 4,
    CloseWait = 5,
    LastAck = 6,
    TimeWait = 7,
    Close = 8,
    /// Both ends sent a SYN (simultaneous open).
    SynSent2 = 9,
}

impl TcpState {
    pub const ALL: [TcpState; 10] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];

    /// The state of a 4-bit code (codes above 9 read as `None`).
    pub fn from_code(c: u8) -> TcpState {
        Self::ALL
            .get(usize::from(c))
            .copied()
            .unwrap_or(TcpState::None)
    }

    /// The name Linux prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }
}

/// What a packet does to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Move to this state (possibly the same one).
    To(TcpState),
    /// Accept the packet, leave the connection as it is.
    Ignore,
    /// The packet does not fit the connection: INVALID.
    Invalid,
}

/// Whether the flag combination is one a TCP stack sends.
pub fn valid_flags(f: u8) -> bool {
    use flags::*;
    const SYN_ACK: u8 = SYN | ACK;
    const RST_ACK: u8 = RST | ACK;
    const FIN_ACK: u8 = FIN | ACK;
    const SYN_URG: u8 = SYN | URG;
    const FIN_ACK_URG: u8 = FIN | ACK | URG;
    const ACK_URG: u8 = ACK | URG;
    matches!(
        f & !(PSH | ECE | CWR),
        SYN | SYN_URG | SYN_ACK | RST | RST_ACK | FIN_ACK | FIN_ACK_URG | ACK | ACK_URG
    )
}

/// The event row of a (valid) flag combination.
fn event(f: u8) -> usize {
    use flags::*;
    if f & RST != 0 {
        4
    } else if f & SYN != 0 {
        if f & ACK != 0 { 1 } else { 0 }
    } else if f & FIN != 0 {
        2
    } else if f & ACK != 0 {
        3
    } else {
        5
    }
}

const SS: u8 = 1;
const SR: u8 = 2;
const ES: u8 = 3;
const FW: u8 = 4;
const CW: u8 = 5;
const LA: u8 = 6;
const TW: u8 = 7;
const CL: u8 = 8;
const S2: u8 = 9;
const IV: u8 = 10;
const IG: u8 = 11;

/// [direction][event: syn, synack, fin, ack, rst, none][state: NONE SS SR ES
/// FW CW LA TW CL S2]. The semantics of Linux's table, row by row:
/// - original SYN opens (or reopens a TIME_WAIT/CLOSE connection), is a
///   retransmission in SYN_SENT, ignored on a synchronised connection;
/// - reply SYN in SYN_SENT is a simultaneous open (SYN_SENT2);
/// - SYN+ACK from the responder moves SYN_SENT/SYN_SENT2 to SYN_RECV; from
///   the initiator it only fits a simultaneous open;
/// - FIN: ESTABLISHED/SYN_RECV -> FIN_WAIT, the second FIN -> LAST_ACK, in
///   TIME_WAIT stays, in CLOSE stays;
/// - ACK: completes the handshake, after FINs moves to CLOSE_WAIT /
///   TIME_WAIT; a lone ACK from NONE picks a connection up mid-stream;
/// - RST closes from any state but NONE; no flags is always invalid.
const TABLE: [[[u8; 10]; 6]; 2] = [
    [
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV; 10],
    ],
    [
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV; 10],
    ],
];

/// The transition for a packet with flags `f` in direction `dir` of a
/// connection in state `s` (`TcpState::None` for a packet that would open
/// one). Invalid flag combinations are `Invalid` whatever the state.
pub fn transition(dir: Dir, f: u8, s: TcpState) -> Transition {
    step(row(dir, f), s)
}

/// The part of [`transition`] that depends on the packet only: the table
/// row of its direction and flags (`None`: an invalid flag combination).
/// For a caller that may run [`step`] more than once per packet.
#[inline]
pub fn row(dir: Dir, f: u8) -> Option<&'static [u8; 10]> {
    valid_flags(f).then(|| &TABLE[dir as usize][event(f)])
}

/// [`transition`] from a [`row`] and the connection's state.
#[inline]
pub fn step(row: Option<&[u8; 10]>, s: TcpState) -> Transition {
    match row.map(|r| r[s as usize]) {
        None | Some(IV) => Transition::Invalid,
        Some(IG) => Transition::Ignore,
        Some(c) => Transition::To(TcpState::from_code(c)),
    }
}

/// What window tracking reads from a TCP segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSeg {
    pub seq: u32,
    pub ack: u32,
    /// The window field as sent (unscaled).
    pub win: u16,
    /// Payload bytes (after the TCP header).
    pub len: u32,
    /// The window-scale option's shift (SYN segments only; `None`: absent).
    pub wscale: Option<u8>,
}

impl TcpSeg {
    /// Reads the segment from a TCP header and what follows it (`tcp`:
    /// from the TCP header to the end of the IP payload). `None` if the
    /// header is cut or its data offset is bad.
    pub fn parse(tcp: &[u8]) -> Option<TcpSeg> {
        if tcp.len() < 20 {
            return None;
        }
        let be32 = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
        let hl = usize::from(tcp[12] >> 4) * 4;
        if hl < 20 || hl > tcp.len() {
            return None;
        }
        let wscale = if tcp[13] & flags::SYN != 0 {
            wscale_option(&tcp[20..hl])
        } else {
            None
        };
        Some(TcpSeg {
            seq: be32(4),
            ack: be32(8),
            win: u16::from_be_bytes([tcp[14], tcp[15]]),
            len: (tcp.len() - hl) as u32,
            wscale,
        })
    }

    /// The sequence number after the segment (SYN and FIN count one).
    #[inline]
    pub fn end(&self, f: u8) -> u32 {
        self.seq
            .wrapping_add(self.len)
            .wrapping_add(u32::from(f & flags::SYN != 0))
            .wrapping_add(u32::from(f & flags::FIN != 0))
    }
}

/// The window-scale option (kind 3, length 3) in an option list; shifts
/// above 14 count as 14 (RFC 7323).
fn wscale_option(mut o: &[u8]) -> Option<u8> {
    while let Some(&kind) = o.first() {
        match kind {
            0 => return None,
            1 => o = &o[1..],
            _ => {
                let len = usize::from(*o.get(1)?);
                if len < 2 || len > o.len() {
                    return None;
                }
                if kind == 3 && len == 3 {
                    return Some(o[2].min(14));
                }
                o = &o[len..];
            }
        }
    }
    None
}

/// [`Side::flags`]: the direction's SYN had the window-scale option.
pub const W_SCALE_OK: u8 = 1;
/// Window failures of this direction are not INVALID (a connection picked
/// up mid-stream, whose window scale is unknown; `[conntrack]
/// tcp_be_liberal`; Linux's `IP_CT_TCP_FLAG_BE_LIBERAL`).
pub const W_LIBERAL: u8 = 2;
/// [`Side::maxack`] holds an ack this direction sent.
pub const W_MAXACK: u8 = 4;

/// One direction's window state (Linux's `ip_ct_tcp_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Side {
    /// Highest sequence number sent, + 1 (`td_end`).
    pub end: u32,
    /// Highest sequence number the receiver's window allowed (`td_maxend`).
    pub maxend: u32,
    /// Largest (scaled) window this direction advertised (`td_maxwin`);
    /// 0: nothing seen yet.
    pub maxwin: u32,
    /// Highest ack this direction sent (valid with [`W_MAXACK`]).
    pub maxack: u32,
    /// Window scale of this direction's window field.
    pub scale: u8,
    pub flags: u8,
}

/// [`window`]'s verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinVerdict {
    /// In the window: the sides were updated.
    Accept,
    /// Passed, but tracks nothing (an old retransmission, an overly
    /// delayed ack): the connection is not changed, the packet keeps its
    /// state (Linux's `NFCT_TCP_IGNORE`).
    Ignore,
    /// Out of window: INVALID, the connection is not changed.
    Invalid,
}

/// [`window`]'s result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinOut {
    pub verdict: WinVerdict,
    /// A reset inside the window but not at the expected sequence number:
    /// passed (the peer answers it with a challenge ACK, RFC 5961) but the
    /// connection keeps its state.
    pub keep_state: bool,
    /// The side was (re)initialised from a SYN: its fields are replaced,
    /// not raised.
    pub init: [bool; 2],
}

/// Whether `a` comes before `b` in sequence space.
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Whether `a` comes after `b` in sequence space.
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// Linux's MAXACKWINDOW: how far behind the receiver's end an ack may be.
#[inline]
fn max_ack_window(s: &Side) -> u32 {
    s.maxwin.max(66000)
}

/// Initial window state of a connection opened by segment `seg` with flags
/// `f` (a SYN, or with `pickup` a segment picked up mid-stream): the
/// original direction's side; the reply side is empty.
pub fn open_sides(seg: &TcpSeg, f: u8, pickup: bool) -> [Side; 2] {
    let end = seg.end(f);
    let mut s = Side {
        end,
        maxend: end,
        maxwin: u32::from(seg.win).max(1),
        ..Side::default()
    };
    let mut r = Side::default();
    if pickup {
        // History lost: assume the worst (no known scale) and be liberal.
        s.maxend = end.wrapping_add(s.maxwin);
        s.flags = W_LIBERAL;
        r.flags = W_LIBERAL;
    } else if let Some(w) = seg.wscale {
        s.scale = w;
        s.flags = W_SCALE_OK;
    }
    [s, r]
}

/// (Re)initialises a side from a SYN or SYN+ACK; `dir` is the SYN's.
fn init_sender(sides: &mut [Side; 2], dir: Dir, seg: &TcpSeg, end: u32) {
    let d = dir as usize;
    let liberal = sides[d].flags & W_LIBERAL;
    let s = &mut sides[d];
    s.end = end;
    s.maxend = end;
    s.maxwin = u32::from(seg.win).max(1);
    s.flags = liberal;
    s.scale = 0;
    if let Some(w) = seg.wscale {
        s.scale = w;
        s.flags |= W_SCALE_OK;
    }
    // RFC 7323: scaling only when both SYNs offered it (decided at the
    // answering SYN).
    if dir == Dir::Reply && sides[0].flags & sides[1].flags & W_SCALE_OK == 0 {
        sides[0].scale = 0;
        sides[1].scale = 0;
    }
}

/// Window tracking of a segment `seg` with flags `f` travelling in `dir`
/// on a connection in state `old` whose state machine moves it to `new`;
/// `seg.ack` must already be in the receiver's sequence space (a helper's
/// sequence adjustment undone). Updates `sides` when the verdict is
/// `Accept` (and when a SYN (re)initialises its side).
pub fn window(
    sides: &mut [Side; 2],
    dir: Dir,
    old: TcpState,
    new: TcpState,
    f: u8,
    seg: &TcpSeg,
) -> WinOut {
    use flags::*;
    let d = dir as usize;
    let mut out = WinOut {
        verdict: WinVerdict::Accept,
        keep_state: false,
        init: [false; 2],
    };
    let liberal = sides[d].flags & W_LIBERAL != 0;
    let fail = |v: WinVerdict, mut out: WinOut| {
        out.verdict = if liberal { WinVerdict::Accept } else { v };
        out
    };
    let mut seq = seg.seq;
    let mut end = seg.end(f);
    let mut ack = seg.ack;
    let win = u32::from(seg.win);

    // Resets (Linux's tcp_packet, TCP_CONNTRACK_CLOSE): one below what the
    // peer already acknowledged is stale or forged; one in the window but
    // not where the sender's data ends keeps the connection (RFC 5961's
    // challenge ACK answers it).
    if f & RST != 0 && new == TcpState::Close {
        let peer = sides[1 - d];
        if peer.flags & W_MAXACK != 0 && !(seq == 0 && old != TcpState::Established) {
            if before(seq, peer.maxack) {
                return WinOut {
                    verdict: WinVerdict::Invalid,
                    ..out
                };
            }
            if old == TcpState::Established && seq != peer.maxack && seq != sides[d].end {
                out.keep_state = true;
            }
        }
    }

    if sides[d].maxwin == 0 {
        if f & SYN != 0 {
            // SYN+ACK answering a SYN, or the reply's SYN of a
            // simultaneous open.
            init_sender(sides, dir, seg, end);
            out.init[d] = true;
            if f & ACK == 0 {
                return out;
            }
        } else {
            // First segment of this direction without its SYN.
            let s = &mut sides[d];
            s.end = end;
            s.maxwin = (win << s.scale).max(1);
            s.maxend = end.wrapping_add(s.maxwin);
            out.init[d] = true;
            let r = &mut sides[1 - d];
            if r.maxwin == 0 {
                r.end = ack;
                r.maxend = ack;
                out.init[1 - d] = true;
            } else if ack == r.end.wrapping_add(1) {
                // Likely the answer to a keepalive.
                r.end = ack;
            }
        }
    } else if f & SYN != 0
        && after(end, sides[d].end)
        && matches!(old, TcpState::SynSent | TcpState::SynRecv)
    {
        // A SYN (or SYN+ACK) sent again with a new sequence number.
        init_sender(sides, dir, seg, end);
        out.init[d] = true;
        if dir == Dir::Reply && f & ACK == 0 {
            return out;
        }
    }
    let (s, r) = (sides[d], sides[1 - d]);
    if f & ACK == 0 || (f & RST != 0 && ack == 0) {
        // No ack (or a broken stack's zero ack on a reset): assume it fine.
        ack = r.end;
    }
    if f & RST != 0 && seq == 0 && old == TcpState::SynSent {
        // A reset answering a SYN.
        seq = s.end;
        end = s.end;
    }

    if !before(seq, s.maxend.wrapping_add(1)) {
        // Beyond the receiver's window. Linux accepts a segment that
        // overshoots by less than a window if all else is right (stacks
        // that send more than allowed), and tracks its end.
        let overshot = end.wrapping_sub(s.maxend).wrapping_add(1);
        let in_recv = r.maxwin != 0 && after(end, s.end.wrapping_sub(r.maxwin).wrapping_sub(1));
        if in_recv
            && after(ack, r.end.wrapping_sub(max_ack_window(&s)).wrapping_sub(1))
            && overshot <= r.maxwin
            && before(ack, r.end.wrapping_add(1))
        {
            if after(end, s.end) {
                sides[d].end = end;
            }
            return out;
        }
        return fail(WinVerdict::Invalid, out);
    }
    if !before(ack, r.end.wrapping_add(1)) {
        // Acknowledges data not sent yet.
        return fail(WinVerdict::Invalid, out);
    }
    let in_recv = r.maxwin == 0 || after(end, s.end.wrapping_sub(r.maxwin).wrapping_sub(1));
    if !in_recv || !after(ack, r.end.wrapping_sub(max_ack_window(&s)).wrapping_sub(1)) {
        // Data already acknowledged, or an ack far behind.
        return fail(WinVerdict::Ignore, out);
    }

    let win = if f & SYN == 0 { win << s.scale } else { win };
    let sm = &mut sides[d];
    sm.maxwin = sm.maxwin.max(win);
    if after(end, sm.end) {
        sm.end = end;
    }
    if f & ACK != 0 && (sm.flags & W_MAXACK == 0 || after(ack, sm.maxack)) {
        sm.maxack = ack;
        sm.flags |= W_MAXACK;
    }
    let smaxend = sm.maxend;
    let rm = &mut sides[1 - d];
    if rm.maxwin != 0 && after(end, smaxend) {
        rm.maxwin = rm.maxwin.saturating_add(end.wrapping_sub(smaxend));
    }
    let limit = ack.wrapping_add(win);
    if after(limit, rm.maxend.wrapping_sub(1)) {
        rm.maxend = limit.wrapping_add(u32::from(win == 0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;
    use TcpState::*;

    #[test]
    fn flag_combinations() {
        for ok in [
            SYN,
            SYN | ACK,
            RST,
            RST | ACK,
            FIN | ACK,
            ACK,
            ACK | URG,
            SYN | URG,
        ] {
            assert!(valid_flags(ok), "{ok:#x}");
            assert!(valid_flags(ok | PSH | ECE | CWR), "{ok:#x} with PSH/ECN");
        }
        for bad in [
            0,
            SYN | FIN,
            SYN | RST,
            FIN,
            FIN | RST,
            URG,
            PSH,
            FIN | PSH,
            SYN | FIN | ACK,
        ] {
            assert!(!valid_flags(bad), "{bad:#x}");
            assert_eq!(
                transition(Dir::Original, bad, Established),
                Transition::Invalid
            );
        }
        assert!(valid_flags(FIN | ACK | URG | PSH));
        assert!(!valid_flags(RST | URG));
    }

    #[test]
    fn table_spot_checks() {
        let t = |d, f, s| transition(d, f, s);
        use Dir::{Original as O, Reply as R};
        assert_eq!(t(O, SYN, None), Transition::To(SynSent));
        assert_eq!(
            t(O, ACK, None),
            Transition::To(Established),
            "mid-stream pickup"
        );
        assert_eq!(t(O, SYN | ACK, None), Transition::Invalid);
        assert_eq!(t(R, SYN | ACK, SynSent), Transition::To(SynRecv));
        assert_eq!(t(O, ACK, SynRecv), Transition::To(Established));
        assert_eq!(t(R, SYN, SynSent), Transition::To(SynSent2));
        assert_eq!(t(O, SYN | ACK, SynSent2), Transition::To(SynRecv));
        assert_eq!(t(O, SYN, Established), Transition::Ignore);
        assert_eq!(t(R, ACK, SynSent), Transition::Ignore);
        assert_eq!(t(O, FIN | ACK, Established), Transition::To(FinWait));
        assert_eq!(t(R, ACK, FinWait), Transition::To(CloseWait));
        assert_eq!(t(R, FIN | ACK, CloseWait), Transition::To(LastAck));
        assert_eq!(t(O, ACK, LastAck), Transition::To(TimeWait));
        assert_eq!(t(O, RST, Established), Transition::To(Close));
        assert_eq!(t(O, SYN, TimeWait), Transition::To(SynSent), "reopen");
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_code(s as u8), s);
        }
    }

    const NO: Option<u8> = Option::None;

    /// A handshake: client ISN 1000 (window 64240, scale `cw`), server ISN
    /// 5000 (window 65535, scale `sw`), then the client's ACK.
    fn handshake(cw: Option<u8>, sw: Option<u8>) -> [Side; 2] {
        let syn = TcpSeg {
            seq: 1000,
            win: 64240,
            wscale: cw,
            ..TcpSeg::default()
        };
        let mut w = open_sides(&syn, SYN, false);
        let sa = TcpSeg {
            seq: 5000,
            ack: 1001,
            win: 65535,
            wscale: sw,
            ..TcpSeg::default()
        };
        let o = window(&mut w, Dir::Reply, SynSent, SynRecv, SYN | ACK, &sa);
        assert_eq!(o.verdict, WinVerdict::Accept);
        let a = seg(1001, 5001, 502, 0);
        assert_eq!(
            window(&mut w, Dir::Original, SynRecv, Established, ACK, &a).verdict,
            WinVerdict::Accept
        );
        w
    }

    fn seg(seq: u32, ack: u32, win: u16, len: u32) -> TcpSeg {
        TcpSeg {
            seq,
            ack,
            win,
            len,
            wscale: NO,
        }
    }

    fn check(w: &mut [Side; 2], dir: Dir, f: u8, s: TcpSeg) -> WinOut {
        let new = if f & RST != 0 { Close } else { Established };
        window(w, dir, Established, new, f, &s)
    }

    #[test]
    fn in_window_data_moves_the_edges() {
        let mut w = handshake(NO, NO);
        let o = check(&mut w, Dir::Original, ACK | PSH, seg(1001, 5001, 502, 100));
        assert_eq!(o.verdict, WinVerdict::Accept);
        assert_eq!(w[0].end, 1101);
        assert_eq!(w[0].maxack, 5001);
        // The server acks it: the client may send up to ack + window.
        let o = check(&mut w, Dir::Reply, ACK, seg(5001, 1101, 65535, 0));
        assert_eq!(o.verdict, WinVerdict::Accept);
        assert_eq!(w[0].maxend, 1101 + 65535);
        assert_eq!(w[1].maxack, 1101);
    }

    #[test]
    fn out_of_window_data_is_invalid_and_changes_nothing() {
        let mut w = handshake(NO, NO);
        let before_ = w;
        let far = 1001u32.wrapping_add(1 << 30);
        let o = check(&mut w, Dir::Original, ACK | PSH, seg(far, 5001, 502, 3));
        assert_eq!(o.verdict, WinVerdict::Invalid);
        assert_eq!(w, before_);
        // An ack of data the server never sent.
        let o = check(&mut w, Dir::Original, ACK, seg(1001, 90_000, 502, 0));
        assert_eq!(o.verdict, WinVerdict::Invalid);
        // Liberal: passed, nothing tracked.
        w[0].flags |= W_LIBERAL;
        let o = check(&mut w, Dir::Original, ACK | PSH, seg(far, 5001, 502, 3));
        assert_eq!(o.verdict, WinVerdict::Accept);
        assert_eq!(w[0].end, before_[0].end);
    }

    #[test]
    fn resets_out_of_window_or_behind_are_invalid() {
        let mut w = handshake(NO, NO);
        check(&mut w, Dir::Original, ACK | PSH, seg(1001, 5001, 502, 5));
        // Far ahead of the server's window.
        let o = check(
            &mut w,
            Dir::Reply,
            RST,
            seg(5001u32.wrapping_add(1 << 30), 0, 0, 0),
        );
        assert_eq!(o.verdict, WinVerdict::Invalid);
        // Behind what the client acknowledged.
        let o = check(&mut w, Dir::Reply, RST, seg(4000, 0, 0, 0));
        assert_eq!(o.verdict, WinVerdict::Invalid);
        // In the window but not exact: passed, the connection stays.
        let o = check(&mut w, Dir::Reply, RST, seg(5100, 0, 0, 0));
        assert_eq!(o.verdict, WinVerdict::Accept);
        assert!(o.keep_state);
        // Exactly where the server's data ends: closes.
        let o = check(&mut w, Dir::Reply, RST, seg(5001, 0, 0, 0));
        assert_eq!(o.verdict, WinVerdict::Accept);
        assert!(!o.keep_state);
    }

    #[test]
    fn window_scaling_from_the_syn_options() {
        let mut w = handshake(Some(7), Some(7));
        assert_eq!((w[0].scale, w[1].scale), (7, 7));
        // The server's window 2048 << 7: 262144 bytes may be in flight.
        check(&mut w, Dir::Reply, ACK, seg(5001, 1001, 2048, 0));
        assert_eq!(w[0].maxend, 1001 + (2048 << 7));
        let o = check(
            &mut w,
            Dir::Original,
            ACK,
            seg(1001 + 200_000, 5001, 502, 1400),
        );
        assert_eq!(o.verdict, WinVerdict::Accept);
        // Only one side offered scaling: neither is scaled.
        let w = handshake(Some(7), NO);
        assert_eq!((w[0].scale, w[1].scale), (0, 0));
        let w = handshake(NO, Some(7));
        assert_eq!((w[0].scale, w[1].scale), (0, 0));
        assert_eq!(
            TcpSeg::parse(&[
                0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, SYN, 0xff, 0xff, 0, 0, 0, 0, 1, 3, 3, 9
            ])
            .unwrap()
            .wscale,
            Some(9)
        );
    }

    #[test]
    fn retransmissions_pass() {
        let mut w = handshake(NO, NO);
        let data = seg(1001, 5001, 502, 100);
        check(&mut w, Dir::Original, ACK | PSH, data);
        let after_first = w;
        // The same segment again: in the window, nothing moves.
        assert_eq!(
            check(&mut w, Dir::Original, ACK | PSH, data).verdict,
            WinVerdict::Accept
        );
        assert_eq!(w, after_first);
        // Long after it was acknowledged, below the window: ignored.
        check(&mut w, Dir::Reply, ACK, seg(5001, 1101, 200, 0));
        for k in 0..1000u32 {
            check(&mut w, Dir::Reply, ACK, seg(5001, 1101 + 100 * k, 200, 0));
            check(
                &mut w,
                Dir::Original,
                ACK,
                seg(1101 + 100 * k, 5001, 502, 100),
            );
        }
        let o = check(&mut w, Dir::Original, ACK | PSH, data);
        assert_eq!(o.verdict, WinVerdict::Ignore);
    }

    #[test]
    fn sequence_numbers_wrap_at_2_32() {
        // Client ISN just below 2^32: its data crosses zero.
        let syn = TcpSeg {
            seq: u32::MAX - 10,
            win: 64240,
            ..TcpSeg::default()
        };
        let mut w = open_sides(&syn, SYN, false);
        let sa = TcpSeg {
            seq: 5000,
            ack: u32::MAX - 9,
            win: 65535,
            ..TcpSeg::default()
        };
        window(&mut w, Dir::Reply, SynSent, SynRecv, SYN | ACK, &sa);
        let mut seq = u32::MAX - 9;
        for _ in 0..10 {
            let o = check(&mut w, Dir::Original, ACK, seg(seq, 5001, 502, 1000));
            assert_eq!(o.verdict, WinVerdict::Accept, "{seq}");
            let o = check(
                &mut w,
                Dir::Reply,
                ACK,
                seg(5001, seq.wrapping_add(1000), 65535, 0),
            );
            assert_eq!(o.verdict, WinVerdict::Accept, "{seq}");
            seq = seq.wrapping_add(1000);
        }
        assert_eq!(w[0].end, seq);
        assert!(seq < 20_000);
        let far = seq.wrapping_add(1 << 30);
        assert_eq!(
            check(&mut w, Dir::Original, ACK, seg(far, 5001, 502, 10)).verdict,
            WinVerdict::Invalid
        );
    }

    #[test]
    fn mid_stream_pickup_is_liberal() {
        let first = seg(70_000, 9_000, 1000, 100);
        let mut w = open_sides(&first, ACK, true);
        assert!(w[0].flags & w[1].flags & W_LIBERAL != 0);
        // Whatever the peers' (unknown) window scale, nothing is INVALID.
        let o = check(&mut w, Dir::Reply, ACK, seg(9_000, 70_100, 10, 0));
        assert_eq!(o.verdict, WinVerdict::Accept);
        let o = check(
            &mut w,
            Dir::Original,
            ACK,
            seg(70_100 + 500_000, 9_000, 10, 1400),
        );
        assert_eq!(o.verdict, WinVerdict::Accept);
    }
}
