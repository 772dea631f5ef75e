//! Per-state connection timeouts, Linux's defaults, overridable by name.
//!
//! Names are those of the config's `[timeouts]` section (and of Linux's
//! `nf_conntrack_*_timeout*` sysctls without the prefix). Values are whole
//! seconds; the table works in milliseconds. `tcp_unack` caps the timeout
//! of a connection picked up mid-stream until it sees an answer (Linux
//! applies it to connections with unacknowledged data; xgate does not
//! track sequence windows, and an unanswered pickup is the case that
//! matters). SYN_SENT2 uses `tcp_syn_sent`, as Linux. Plain data, no
//! shared state.

use super::key::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use super::tcp::TcpState;

/// The longest timeout accepted: the table keeps expiry times in 35 bits
/// of milliseconds and compares them modulo 2^35 (~397 days).
pub const MAX_TIMEOUT_SECS: u64 = 180 * 86_400;

/// Seconds a connection lives without traffic, per protocol and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_established: u64,
    pub tcp_fin_wait: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub tcp_unack: u64,
    /// UDP before a reply is seen.
    pub udp: u64,
    /// UDP once replied (assured).
    pub udp_stream: u64,
    pub icmp: u64,
    pub icmpv6: u64,
    /// Any other protocol.
    pub generic: u64,
}

impl Default for Timeouts {
    /// Linux's defaults.
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            tcp_unack: 300,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
            icmpv6: 30,
            generic: 600,
        }
    }
}

/// A bad `[timeouts]` entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeoutError {
    #[error("unknown timeout `{0}` (expected one of {names})", names = Timeouts::NAMES.join(", "))]
    UnknownName(String),
    #[error("timeout `{name}` = {secs} s is longer than the maximum {MAX_TIMEOUT_SECS} s")]
    TooLong { name: String, secs: u64 },
}

impl Timeouts {
    /// The names `set` accepts, in declaration order.
    pub const NAMES: [&'static str; 14] = [
        "tcp_syn_sent",
        "tcp_syn_recv",
        "tcp_established",
        "tcp_fin_wait",
        "tcp_close_wait",
        "tcp_last_ack",
        "tcp_time_wait",
        "tcp_close",
        "tcp_unack",
        "udp",
        "udp_stream",
        "icmp",
        "icmpv6",
        "generic",
    ];

    /// Linux's defaults with `overrides` (name, seconds) applied in order.
    /// The config's `(name, seconds, line)` list maps to this with
    /// `.iter().map(|(n, s, _)| (n.as_str(), *s))`; an error names the key,
    /// the caller adds the line.
    pub fn from_overrides<'a>(
        overrides: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Result<Self, TimeoutError> {
        let mut t = Timeouts::default();
        for (name, secs) in overrides {
            t.set(name, secs)?;
        }
        Ok(t)
    }

    /// Sets one timeout by name.
    pub fn set(&mut self, name: &str, secs: u64) -> Result<(), TimeoutError> {
        if secs > MAX_TIMEOUT_SECS {
            return Err(TimeoutError::TooLong {
                name: name.to_string(),
                secs,
            });
        }
        let field = match name {
            "tcp_syn_sent" => &mut self.tcp_syn_sent,
            "tcp_syn_recv" => &mut self.tcp_syn_recv,
            "tcp_established" => &mut self.tcp_established,
            "tcp_fin_wait" => &mut self.tcp_fin_wait,
            "tcp_close_wait" => &mut self.tcp_close_wait,
            "tcp_last_ack" => &mut self.tcp_last_ack,
            "tcp_time_wait" => &mut self.tcp_time_wait,
            "tcp_close" => &mut self.tcp_close,
            "tcp_unack" => &mut self.tcp_unack,
            "udp" => &mut self.udp,
            "udp_stream" => &mut self.udp_stream,
            "icmp" => &mut self.icmp,
            "icmpv6" => &mut self.icmpv6,
            "generic" => &mut self.generic,
            _ => return Err(TimeoutError::UnknownName(name.to_string())),
        };
        *field = secs;
        Ok(())
    }

    /// Seconds for a TCP connection in state `s`.
    pub fn tcp(&self, s: TcpState) -> u64 {
        match s {
            TcpState::SynSent | TcpState::SynSent2 => self.tcp_syn_sent,
            TcpState::SynRecv => self.tcp_syn_recv,
            TcpState::Established => self.tcp_established,
            TcpState::FinWait => self.tcp_fin_wait,
            TcpState::CloseWait => self.tcp_close_wait,
            TcpState::LastAck => self.tcp_last_ack,
            TcpState::TimeWait => self.tcp_time_wait,
            TcpState::Close | TcpState::None => self.tcp_close,
        }
    }

    /// Seconds for a non-TCP connection of protocol `proto`; `replied`
    /// selects UDP's stream timeout.
    pub fn other(&self, proto: u8, replied: bool) -> u64 {
        match proto {
            PROTO_UDP if replied => self.udp_stream,
            PROTO_UDP => self.udp,
            PROTO_ICMP => self.icmp,
            PROTO_ICMPV6 => self.icmpv6,
            PROTO_TCP => self.tcp_close,
            _ => self.generic,
        }
    }
}

/// Timeouts in milliseconds, indexed for the packet path.
#[derive(Clone, Debug)]
pub(crate) struct TimeoutsMs {
    /// By `TcpState` code.
    pub tcp: [u64; 10],
    pub tcp_unack: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
    pub icmpv6: u64,
    pub generic: u64,
}

impl From<&Timeouts> for TimeoutsMs {
    fn from(t: &Timeouts) -> Self {
        let ms = |s: u64| s.min(MAX_TIMEOUT_SECS) * 1000;
        TimeoutsMs {
            tcp: TcpState::ALL.map(|s| ms(t.tcp(s))),
            tcp_unack: ms(t.tcp_unack),
            udp: ms(t.udp),
            udp_stream: ms(t.udp_stream),
            icmp: ms(t.icmp),
            icmpv6: ms(t.icmpv6),
            generic: ms(t.generic),
        }
    }
}

impl TimeoutsMs {
    #[inline]
    pub fn other(&self, proto: u8, replied: bool) -> u64 {
        match proto {
            PROTO_UDP if replied => self.udp_stream,
            PROTO_UDP => self.udp,
            PROTO_ICMP => self.icmp,
            PROTO_ICMPV6 => self.icmpv6,
            _ => self.generic,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d = Timeouts::default();
        assert_eq!(d.tcp(TcpState::Established), 432_000);
        assert_eq!(d.tcp(TcpState::SynSent2), 120);
        assert_eq!(d.other(PROTO_UDP, false), 30);
        assert_eq!(d.other(PROTO_UDP, true), 120);
        assert_eq!(d.other(47, false), 600);
        let cfg = [
            ("udp".to_string(), 10u64, 3usize),
            ("tcp_established".to_string(), 3600, 4),
        ];
        let t = Timeouts::from_overrides(cfg.iter().map(|(n, s, _)| (n.as_str(), *s))).unwrap();
        assert_eq!(t.udp, 10);
        assert_eq!(t.tcp_established, 3600);
        assert_eq!(t.icmp, 30);
        for name in Timeouts::NAMES {
            let mut t = Timeouts::default();
            t.set(name, 7).unwrap();
            assert_ne!(t, Timeouts::default(), "{name}");
        }
        assert_eq!(
            Timeouts::from_overrides([("tcp_bogus", 1)]),
            Err(TimeoutError::UnknownName("tcp_bogus".into()))
        );
        assert!(matches!(
            Timeouts::from_overrides([("udp", MAX_TIMEOUT_SECS + 1)]),
            Err(TimeoutError::TooLong { .. })
        ));
    }
}
