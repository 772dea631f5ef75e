//! What the control plane builds a ruleset from: each rule as a list of
//! [`Expr`]s and a [`TargetSpec`] (interfaces already resolved to
//! indices, chains to [`ChainId`]s), and the [`BuildError`] a spec the
//! dataplane cannot run gets. [`MatchSpec`] is a shorthand for the
//! matches every iptables rule may have; [`MatchSpec::exprs`] turns it
//! into expressions.

use super::expr::{Expr, Field};
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
    pub fn net_mask(&self) -> (u128, u128) {
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

/// The common matches of a rule as a struct; every `Some` must match. A
/// shorthand: the ruleset holds [`Expr`]s ([`MatchSpec::exprs`]).
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

impl MatchSpec {
    /// The expressions these matches stand for, statistic last.
    pub fn exprs(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        for (out_dir, m) in [(false, &self.iif), (true, &self.oif)] {
            if let Some(n) = m {
                out.push(Expr::Iface {
                    phys: false,
                    out: out_dir,
                    neg: n.negated,
                    set: n.value.clone(),
                });
            }
        }
        for (field, m) in [(Field::Saddr, &self.src), (Field::Daddr, &self.dst)] {
            if let Some(n) = m {
                out.push(Expr::prefix(field, n.negated, n.value));
            }
        }
        if let Some(n) = &self.proto {
            // `-p all` is no test, but `! -p all` matches nothing.
            if n.value == 0 {
                if n.negated {
                    out.push(Expr::Bits {
                        field: Field::L4Proto,
                        neg: false,
                        bits: 0,
                    });
                }
            } else {
                out.push(Expr::range(
                    Field::L4Proto,
                    n.negated,
                    n.value.into(),
                    n.value.into(),
                ));
            }
        }
        for (field, m) in [(Field::Sport, &self.sport), (Field::Dport, &self.dport)] {
            if let Some(n) = m {
                out.push(Expr::range(
                    field,
                    n.negated,
                    n.value.0.into(),
                    n.value.1.into(),
                ));
            }
        }
        if let Some(n) = &self.tcp_flags {
            out.push(Expr::masked(
                Field::TcpFlags,
                n.negated,
                n.value.0.into(),
                n.value.1.into(),
            ));
        }
        if let Some(n) = &self.icmp {
            let v = n.value;
            out.push(Expr::family(!v.v6));
            match v.typ {
                // `any`: the header is there, whatever the type; `!
                // any` matches nothing.
                None => out.push(Expr::Cmp {
                    field: Field::IcmpType,
                    neg: n.negated,
                    mask: 0,
                    lo: 0,
                    hi: 0,
                }),
                Some(t) => {
                    let (lo, hi) = v.code.map_or((0, 255), |c| (c, c));
                    // type and code together, one expression: `!`
                    // negates both.
                    out.push(Expr::InRanges {
                        field: Field::IcmpTypeCode,
                        alt: None,
                        neg: n.negated,
                        ranges: vec![(
                            u128::from(t) << 8 | u128::from(lo),
                            u128::from(t) << 8 | u128::from(hi),
                        )],
                    });
                }
            }
        }
        if let Some(n) = &self.multiport {
            let (field, alt) = match n.value.dir {
                PortDir::Src => (Field::Sport, None),
                PortDir::Dst => (Field::Dport, None),
                PortDir::Either => (Field::Sport, Some(Field::Dport)),
            };
            out.push(Expr::InRanges {
                field,
                alt,
                neg: n.negated,
                ranges: n
                    .value
                    .ports
                    .iter()
                    .map(|&(lo, hi)| (lo.into(), hi.into()))
                    .collect(),
            });
        }
        if let Some(n) = &self.ctstate {
            out.push(Expr::Bits {
                field: Field::CtState,
                neg: n.negated,
                bits: n.value.into(),
            });
        }
        if let Some(n) = &self.mark {
            out.push(Expr::masked(Field::Mark, n.negated, n.value.1, n.value.0));
        }
        if let Some(n) = &self.statistic {
            out.push(Expr::Statistic {
                neg: n.negated,
                spec: n.value,
            });
        }
        out
    }
}

/// A chain of the ruleset being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainId(pub(super) u32);

impl ChainId {
    /// Its index: the chain's place in [`super::Ruleset::counters_view`]
    /// (chains keep their creation order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

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
    /// `mark = (mark & !mask) ^ value` (iptables' `--set-xmark`).
    Mark {
        value: u32,
        mask: u32,
    },
    /// The connection's mark, the same way (`CONNMARK --set-xmark`, `ct
    /// mark set`); nothing for a packet without a connection.
    CtMark {
        value: u32,
        mask: u32,
    },
    /// raw: `NOTRACK`, `CT --notrack`: the packet is not tracked.
    Notrack,
    /// `TCPMSS`: a SYN's MSS option lowered to at most this
    /// ([`super::MSS_PMTU`]: the egress MTU's).
    Mss(u16),
    /// raw: `CT --helper`: the helper of the packet's new connection.
    Helper(crate::conntrack::HelperKind),
    /// `CONNMARK --save-mark`: `ctmark = (ctmark & !ctmask) ^ (mark &
    /// nfmask)`.
    SaveMark {
        nfmask: u32,
        ctmask: u32,
    },
    /// `CONNMARK --restore-mark`: `mark = (mark & !nfmask) ^ (ctmark &
    /// ctmask)`.
    RestoreMark {
        nfmask: u32,
        ctmask: u32,
    },
    Nat(NatAction),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Source line, kept for traces and counter listings.
    pub line: usize,
    /// Every expression must hold.
    pub exprs: Vec<Expr>,
    pub target: TargetSpec,
}

impl RuleSpec {
    /// A rule of the common matches.
    pub fn new(line: usize, matches: &MatchSpec, target: TargetSpec) -> Self {
        RuleSpec {
            line,
            exprs: matches.exprs(),
            target,
        }
    }
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
