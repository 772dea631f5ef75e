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
//! Not modelled: sequence-number window tracking (`tcp_in_window`); xgate
//! behaves like Linux with `nf_conntrack_tcp_be_liberal=1`. Pure functions:
//! the table (`table.rs`) applies them inside its compare-and-swap loop.

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
}
