//! What the control plane builds a ruleset from: each rule as a
//! [`MatchSpec`] and a [`TargetSpec`] (interfaces already resolved to
//! indices, chains to [`ChainId`]s), and the [`BuildError`] a spec the
//! dataplane cannot run gets.

use super::{IfIndex, NatAction, RejectKind};
use crate::addr::v4_key;

/// A match value with its `!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Neg<T> {
    pub negated: bool,
    pub value: T,
}

impl<T> Neg<T> {
    pub fn new(negated: bool, value: T) -> Self {
        Neg { negated, value }
    }

    /// A match without `!`.
    pub fn is(value: T) -> Self {
        Neg::new(false, value)
    }
}

/// `-i`/`-o`: a set of interfaces (a `+` wildcard already expanded).
/// `none` makes a packet without that interface a member too (`-i +`
/// matches packets the router originates, as the kernel's empty-prefix
/// compare does).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IfaceMatch {
    pub ifaces: Vec<IfIndex>,
    pub none: bool,
}

/// An address prefix; `addr` IPv4-mapped for IPv4, `len` within the family
/// (0..=32 or 0..=128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub v4: bool,
    pub addr: u128,
    pub len: u8,
}

impl Prefix {
    pub fn v4(addr: u32, len: u8) -> Self {
        Prefix {
            v4: true,
            addr: v4_key(addr),
            len,
        }
    }

    pub fn v6(addr: u128, len: u8) -> Self {
        Prefix {
            v4: false,
            addr,
            len,
        }
    }

    /// (network, mask) over the 128-bit mapped address.
    pub(super) fn net_mask(&self) -> (u128, u128) {
        let bits = u32::from(self.len) + if self.v4 { 96 } else { 0 };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits.min(128))
        };
        (self.addr & mask, mask)
    }
}

/// `--icmp-type` / `--icmpv6-type`: `typ` `None` is `any`; `code` `None`
/// is every code of the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMatch {
    pub v6: bool,
    pub typ: Option<u8>,
    pub code: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortDir {
    /// `--sports`
    Src,
    /// `--dports`
    Dst,
    /// `--ports`: either port.
    Either,
}

/// `-m multiport`: inclusive ranges, at most 15.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiportSpec {
    pub dir: PortDir,
    pub ports: Vec<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatisticSpec {
    /// Packet `packet` of every `every` reaching the rule (all workers).
    Nth { every: u32, packet: u32 },
    /// With probability `probability` (0.0..=1.0).
    Random { probability: f64 },
}

/// A rule's matches; every `Some` must match.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MatchSpec {
    pub iif: Option<Neg<IfaceMatch>>,
    pub oif: Option<Neg<IfaceMatch>>,
    pub src: Option<Neg<Prefix>>,
    pub dst: Option<Neg<Prefix>>,
    /// Protocol number; 0 is `all`.
    pub proto: Option<Neg<u8>>,
    /// Inclusive ranges; need the TCP/UDP header.
    pub sport: Option<Neg<(u16, u16)>>,
    pub dport: Option<Neg<(u16, u16)>>,
    /// (mask, comp): `flags & mask == comp`; needs the TCP header.
    pub tcp_flags: Option<Neg<(u8, u8)>>,
    pub icmp: Option<Neg<IcmpMatch>>,
    pub multiport: Option<Neg<MultiportSpec>>,
    /// Set of [`super::ct`] bits.
    pub ctstate: Option<Neg<u8>>,
    /// (value, mask): `mark & mask == value`.
    pub mark: Option<Neg<(u32, u32)>>,
    /// Evaluated after every other match.
    pub statistic: Option<Neg<StatisticSpec>>,
}

/// A chain of the ruleset being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainId(pub(super) u32);

#[derive(Clone, Debug, PartialEq)]
pub enum TargetSpec {
    /// No target: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    Jump(ChainId),
    Goto(ChainId),
    /// `None`: port unreachable in the packet's family (REJECT's default).
    Reject(Option<RejectKind>),
    Log {
        prefix: String,
        level: u8,
    },
    /// `mark = (mark & !mask) | value`.
    Mark {
        value: u32,
        mask: u32,
    },
    Nat(NatAction),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Source line, kept for traces and counter listings.
    pub line: usize,
    pub matches: MatchSpec,
    pub target: TargetSpec,
}

/// Why a ruleset could not be built; `line` is the rule's (0 when the
/// problem is not one rule's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BuildError {
    pub line: usize,
    pub message: String,
}

impl BuildError {
    pub(super) fn new(line: usize, message: impl Into<String>) -> Self {
        BuildError {
            line,
            message: message.into(),
        }
    }
}
