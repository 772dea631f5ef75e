//! The packet filter: the compiled iptables ruleset and its evaluator.
//!
//! In the packet walk this is every netfilter hook the pipeline runs
//! (mangle PREROUTING, nat PREROUTING/POSTROUTING, filter
//! INPUT/FORWARD/OUTPUT). The pipeline fills a [`PacketView`] for the packet
//! and asks [`Ruleset::eval`] for the verdict of one table at one hook. The
//! evaluator reads the view; it may change the view's `mark` (`-j MARK`),
//! counts matched rules and taken policies in the worker's
//! [`RuleCounters`], and pushes LOG lines to the shared [`LogRing`]. It
//! drops nothing itself: it answers an [`Outcome`] (accept, drop, reject
//! with an ICMP error or TCP reset, or a NAT action) and the caller acts on
//! it (counting its drops as the firewall's).
//!
//! A ruleset holds chains of one [`Family`] or of both. Each family has its
//! own built-in chains (own policies) and user chains, as iptables and
//! ip6tables keep them; the rules of an `inet` chain serve both, like
//! nftables' `inet` family. A rule that names anything of one family only
//! (an IPv4 prefix, `-p icmp`, an ICMPv4 reject, an IPv4 NAT address), or
//! that sits in a chain of one family, applies only to packets of that
//! family. The family test runs before the matches, so `!` never turns an
//! IPv4 rule into one that matches IPv6 packets.
//!
//! The ruleset is built once by the control plane ([`RulesetBuilder`]) and
//! shared read-only by all workers; evaluation allocates nothing, takes no
//! lock and makes no system call. The only writes shared between workers
//! are `-m statistic --mode nth` counters (one atomic add when the rule's
//! other matches matched) and the LOG ring (rate limited per worker).
//!
//! Measured (`filter::tests::eval::ten_simple_rules_are_cheap` built with
//! `--release`, 2 shared cores): ten rules that miss on `--dport` after
//! matching `-i`, `-s`, `-p` and `--ctstate`, then an ACCEPT: 26-39 ns per
//! packet.

mod builder;
pub mod chains;
mod counters;
mod eval;
mod expr;
mod log;
mod lower;
mod ruleset;
mod spec;

pub mod dynset;
pub mod ipset;
#[cfg(test)]
mod tests;

pub use builder::{RulesetBuilder, std_priority};
pub use counters::{ChainCounters, RuleCounters, RuleCounts};
pub use eval::EvalCtx;
pub use expr::{DrawKind, Expr, Field, LimitSpec, RecentMode, hash_fields};
pub use log::{LogRecord, LogRing};
pub use ruleset::{MAX_DEPTH, Ruleset};
pub use spec::{
    BuildError, ChainId, IcmpMatch, IfaceMatch, MatchSpec, MultiportSpec, Neg, PortDir, Prefix,
    RuleSpec, StatisticSpec, TargetSpec,
};

use crate::iface::IfIndex;

/// Connection-state bits of [`PacketView::ctstate`], the same bits as
/// `-m conntrack --ctstate` sets in the control plane's model.
pub mod ct {
    use crate::conntrack::CtState;

    pub const INVALID: u8 = 0x01;
    pub const NEW: u8 = 0x02;
    pub const ESTABLISHED: u8 = 0x04;
    pub const RELATED: u8 = 0x08;
    pub const UNTRACKED: u8 = 0x10;

    /// The state's name as iptables prints it.
    pub fn name(bit: u8) -> &'static str {
        match bit {
            INVALID => "INVALID",
            NEW => "NEW",
            ESTABLISHED => "ESTABLISHED",
            RELATED => "RELATED",
            _ => "UNTRACKED",
        }
    }

    /// The bit of a conntrack answer.
    pub fn bit(s: CtState) -> u8 {
        match s {
            CtState::New => NEW,
            CtState::Established => ESTABLISHED,
            CtState::Related => RELATED,
            CtState::Invalid => INVALID,
        }
    }
}

/// What a ruleset needs the pipeline to fill in a [`PacketView`] beyond
/// the fields it always fills ([`Ruleset::needs`]).
pub mod needs {
    /// `src_mac`, `pkttype`.
    pub const L2: u8 = 0x01;
    /// `src_type`, `dst_type`.
    pub const ADDR_TYPE: u8 = 0x02;
    /// `ct`.
    pub const CT: u8 = 0x04;
    /// `rpf` (a route lookup of the source).
    pub const RPF: u8 = 0x08;
    /// `conns` (the connection table's count for the source).
    pub const CONNS: u8 = 0x10;
}

/// [`PacketView::rpf`] bits: what a reverse-path lookup of the source
/// found (`-m rpfilter`, nft's `fib saddr [. iif] oif`).
pub mod rpf {
    /// A unicast route back to the source exists.
    pub const LOOSE: u8 = 0x01;
    /// ... and leaves by the interface the packet came in on.
    pub const STRICT: u8 = 0x02;
}

/// Address types of [`PacketView::src_type`] / `dst_type`: bit `1 << N`
/// for the kernel's route type N (`RTN_*`), as `-m addrtype` tests them.
pub mod addr_type {
    pub const UNICAST: u16 = 1 << 1;
    pub const LOCAL: u16 = 1 << 2;
    pub const BROADCAST: u16 = 1 << 3;
    pub const ANYCAST: u16 = 1 << 4;
    pub const MULTICAST: u16 = 1 << 5;
    pub const BLACKHOLE: u16 = 1 << 6;
    pub const UNREACHABLE: u16 = 1 << 7;
    pub const PROHIBIT: u16 = 1 << 8;
    /// `UNSPEC` is bit 0.
    pub const UNSPEC: u16 = 1 << 0;
    /// In the order `-m addrtype` names them.
    pub const NAMES: [(&str, u16); 9] = [
        ("UNSPEC", UNSPEC),
        ("UNICAST", UNICAST),
        ("LOCAL", LOCAL),
        ("BROADCAST", BROADCAST),
        ("ANYCAST", ANYCAST),
        ("MULTICAST", MULTICAST),
        ("BLACKHOLE", BLACKHOLE),
        ("UNREACHABLE", UNREACHABLE),
        ("PROHIBIT", PROHIBIT),
    ];
}

/// Conntrack status bits of [`CtView::status`], the kernel's `IPS_*`.
pub mod ct_status {
    pub const EXPECTED: u32 = 1 << 0;
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const CONFIRMED: u32 = 1 << 3;
    pub const SNAT: u32 = 1 << 4;
    pub const DNAT: u32 = 1 << 5;
    pub const NAMES: [(&str, u32); 6] = [
        ("EXPECTED", EXPECTED),
        ("SEEN_REPLY", SEEN_REPLY),
        ("ASSURED", ASSURED),
        ("CONFIRMED", CONFIRMED),
        ("SNAT", SNAT),
        ("DNAT", DNAT),
    ];
}

/// The packet's connection as rules see it (`-m conntrack --ctorig*`,
/// `ct original saddr`, ...): the original and reply tuples (addresses
/// IPv4-mapped), status bits, connection mark and direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtView {
    /// (source, destination) of the original direction.
    pub orig: (u128, u128),
    pub orig_ports: (u16, u16),
    /// (source, destination) of the reply direction.
    pub repl: (u128, u128),
    pub repl_ports: (u16, u16),
    pub status: u32,
    pub mark: u32,
    /// The packet goes in the reply direction.
    pub reply: bool,
}

/// TCP flag bits of [`PacketView::tcp_flags`], as in the TCP header.
pub mod tcp_flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// What rules match on; the pipeline builds one per packet per hook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketView {
    /// Ingress interface; `None` for packets the router originates.
    pub iif: Option<IfIndex>,
    /// Egress interface; `None` before routing (PREROUTING) and in INPUT.
    pub oif: Option<IfIndex>,
    pub v4: bool,
    /// Addresses, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
    pub src: u128,
    pub dst: u128,
    /// Transport protocol (IPv6: after extension headers).
    pub proto: u8,
    /// TCP/UDP ports, 0 otherwise.
    pub sport: u16,
    pub dport: u16,
    /// TCP or UDP with the header present (not a later fragment).
    pub has_ports: bool,
    /// TCP flags ([`tcp_flag`]); TCP only.
    pub tcp_flags: u8,
    /// ICMP/ICMPv6 type and code, when the header is present.
    pub icmp: Option<(u8, u8)>,
    /// Exactly one of the [`ct`] bits.
    pub ctstate: u8,
    pub mark: u32,
    /// L3 length (byte counters, LOG).
    pub len: u32,
    /// TTL / hop limit, IPv4 ID (LOG lines), TOS / traffic class.
    pub ttl: u8,
    pub ip_id: u16,
    pub tos: u8,
    /// Filled when the ruleset [`needs`] them ([`Ruleset::needs`]):
    /// 0 host, 1 broadcast, 2 multicast, 3 other host ([`needs::L2`]);
    pub pkttype: u8,
    /// the source MAC in the low 48 bits, `None` for packets the router
    /// originates ([`needs::L2`]);
    pub src_mac: Option<u64>,
    /// [`addr_type`] bits of the source and destination ([`needs::ADDR_TYPE`]);
    pub src_type: u16,
    pub dst_type: u16,
    /// the connection, `None` when untracked or invalid ([`needs::CT`]).
    pub ct: Option<CtView>,
    /// Set by the raw table: do not track the packet (`NOTRACK`, `CT
    /// --notrack`); the helper to attach to its new connection (`CT
    /// --helper`).
    pub notrack: bool,
    pub helper: Option<crate::conntrack::HelperKind>,
    /// Set by `TCPMSS` / `tcp option maxseg size set`: the largest MSS a
    /// SYN may announce, [`MSS_PMTU`] for the egress MTU's; 0: none.
    pub mss: u16,
    /// [`rpf`] bits ([`needs::RPF`]); packets the router originates have
    /// both.
    pub rpf: u8,
    /// Live connections from the source address, this packet's own new
    /// one included ([`needs::CONNS`]; `-m connlimit`).
    pub conns: u32,
    /// The bridge ports a packet came and goes by (`-m physdev`), when
    /// its bridge sends it through netfilter; `bridged`: switched, not
    /// routed (a flooded frame has no `phys_out` yet).
    pub phys_in: Option<IfIndex>,
    pub phys_out: Option<IfIndex>,
    pub bridged: bool,
}

/// [`expr::Field::Physdev`]'s bits (xt_physdev's `--physdev-is-*`).
pub mod physdev {
    pub const IS_IN: u32 = 1;
    pub const IS_OUT: u32 = 2;
    pub const IS_BRIDGED: u32 = 4;
}

/// [`PacketView::mss`]: clamp to the egress interface's MTU less the IP
/// and TCP headers (`--clamp-mss-to-pmtu`, `rt mtu`).
pub const MSS_PMTU: u16 = u16::MAX;

/// A netfilter hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    /// The built-in chain's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    pub fn from_name(s: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == s)
    }
}

/// A table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableId {
    Filter,
    Nat,
    Mangle,
    /// Before connection tracking: `NOTRACK`, `CT --notrack`, `CT
    /// --helper`.
    Raw,
}

impl TableId {
    pub const ALL: [TableId; 4] = [TableId::Filter, TableId::Nat, TableId::Mangle, TableId::Raw];

    pub fn name(self) -> &'static str {
        match self {
            TableId::Filter => "filter",
            TableId::Nat => "nat",
            TableId::Mangle => "mangle",
            TableId::Raw => "raw",
        }
    }

    /// Hooks the table has a built-in chain at, in iptables-save order.
    pub fn hooks(self) -> &'static [Hook] {
        match self {
            TableId::Filter => &[Hook::Input, Hook::Forward, Hook::Output],
            TableId::Nat => &[
                Hook::Prerouting,
                Hook::Input,
                Hook::Output,
                Hook::Postrouting,
            ],
            TableId::Mangle => &Hook::ALL,
            TableId::Raw => &[Hook::Prerouting, Hook::Output],
        }
    }
}

/// Which packets a chain and its rules see: both families (an `inet`
/// ruleset, like nftables) or one (an iptables or ip6tables ruleset).
/// Built-in chains of each family have their own policy; user chains of
/// different families are different chains even when they share a name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Family {
    #[default]
    Inet,
    V4,
    V6,
}

impl Family {
    /// Family indices ([`Family::index`]) this family's chains serve.
    pub(crate) fn indices(self) -> &'static [usize] {
        match self {
            Family::Inet => &[0, 1],
            Family::V4 => &[0],
            Family::V6 => &[1],
        }
    }

    /// 0 for IPv4 packets, 1 for IPv6.
    #[inline]
    pub(crate) fn index(v4: bool) -> usize {
        usize::from(!v4)
    }

    /// How iptables users name the ruleset: `inet`, `IPv4`, `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// The built-in chain policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

/// What a REJECT answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectKind {
    Icmp4 { typ: u8, code: u8 },
    Icmp6 { typ: u8, code: u8 },
    TcpReset,
}

impl RejectKind {
    /// Port unreachable in the packet's family: REJECT's default.
    pub fn port_unreachable(v4: bool) -> Self {
        if v4 {
            RejectKind::Icmp4 { typ: 3, code: 3 }
        } else {
            RejectKind::Icmp6 { typ: 1, code: 4 }
        }
    }
}

/// An inclusive address range of one family (IPv4 mapped, like
/// [`PacketView`] addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    pub v4: bool,
    pub lo: u128,
    pub hi: u128,
}

impl AddrRange {
    /// Number of addresses in the range (saturating at `u128::MAX`).
    pub fn count(&self) -> u128 {
        (self.hi - self.lo).saturating_add(1)
    }
}

/// A NAT target. Address pools are resolved by the caller from `addrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatAction {
    Snat {
        addrs: AddrRange,
        ports: Option<(u16, u16)>,
    },
    Masquerade {
        ports: Option<(u16, u16)>,
    },
    Dnat {
        addrs: AddrRange,
        ports: Option<(u16, u16)>,
    },
    Redirect {
        ports: Option<(u16, u16)>,
    },
}

impl NatAction {
    /// The family the action's addresses belong to, if it names any.
    pub fn v4(&self) -> Option<bool> {
        match self {
            NatAction::Snat { addrs, .. } | NatAction::Dnat { addrs, .. } => Some(addrs.v4),
            NatAction::Masquerade { .. } | NatAction::Redirect { .. } => None,
        }
    }
}

/// The verdict of one table at one hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Drop,
    Reject(RejectKind),
    Nat(NatAction),
}
