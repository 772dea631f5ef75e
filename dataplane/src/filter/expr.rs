//! The rule representation every front-end compiles into, modelled on
//! nftables': a rule is a list of [`Expr`]s, each loading one packet,
//! meta or conntrack [`Field`] and comparing it (a masked range, a set of
//! bits, an interface set, a set of ranges), or a stateful expression
//! (`statistic`, `limit`); then one target ([`super::TargetSpec`]). The
//! iptables front-end (control's `compile::firewall`) and the nftables one
//! both emit these; the dataplane lowers them into its compiled
//! [`super::Ruleset`] and evaluates them with one engine.
//!
//! Adding a match means: its parser in a front-end, and, only when it
//! reads a field no expression reads yet, a [`Field`] variant with its
//! load in `eval.rs` (and, if the pipeline must fill something new, one
//! line in `pipeline/netfilter.rs`).
//!
//! Semantics shared by every front-end:
//! - a field the packet does not have (ports of an ICMP packet or of a
//!   later fragment, the ICMP type of a TCP packet, the original tuple of
//!   an untracked packet) makes the expression fail whether negated or
//!   not — the kernel's rule for iptables matches and nftables' payload
//!   dependencies;
//! - an expression naming an address family (an IPv4 prefix, `nfproto`,
//!   protocol ICMP or ICMPv6) narrows the whole rule to that family;
//!   the family test runs before any expression, so `!` never turns an
//!   IPv4 rule into one that matches IPv6 packets;
//! - stateless expressions may be reordered (cheap ones first);
//!   stateful ones (`statistic`, `limit`) run in the order given, after
//!   every stateless expression before them, so they consume a count or a
//!   token only when the rest of the rule so far holds.

use super::spec::{IfaceMatch, Prefix, StatisticSpec};

/// A field an expression loads. Scalar fields are at most 32 bits;
/// address fields (IPv4 mapped into IPv6 like [`super::PacketView`]'s)
/// and the MAC address are 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// Layer-3 family: 2 for IPv4, 10 for IPv6 (`meta nfproto`).
    NfProto,
    /// Transport protocol (`-p`, `meta l4proto`).
    L4Proto,
    /// The packet mark (`-m mark`, `meta mark`).
    Mark,
    /// L3 length (`-m length`, `meta length`).
    Len,
    /// IPv4 TTL / IPv6 hop limit (`-m ttl`, `-m hl`).
    Ttl,
    /// IPv4 TOS / IPv6 traffic class byte (`-m tos`); DSCP is its top six
    /// bits ([`Field::Dscp`]).
    Tos,
    Dscp,
    /// Link-layer kind of the destination: 0 host, 1 broadcast, 2
    /// multicast, 3 other host (`-m pkttype`, `meta pkttype`).
    PktType,
    Sport,
    Dport,
    TcpFlags,
    IcmpType,
    IcmpCode,
    /// `type << 8 | code`, to test both in one expression.
    IcmpTypeCode,
    /// Address types of the source and destination as bits `1 << RTN_*`
    /// (`-m addrtype`, `fib ... type`); see [`super::addr_type`].
    SrcType,
    DstType,
    /// One of [`super::ct`]'s bits.
    CtState,
    /// [`super::ct_status`] bits.
    CtStatus,
    /// The connection's SNAT and DNAT [`super::ct_status`] bits, 0 for a
    /// packet without a connection (`--ctstate SNAT,DNAT`, which holds
    /// negated for INVALID and UNTRACKED packets, as xt_conntrack's).
    CtNat,
    CtMark,
    /// 0 original, 1 reply (`ct direction`).
    CtDir,
    CtOrigSport,
    CtOrigDport,
    CtReplSport,
    CtReplDport,
    /// 128-bit fields.
    Saddr,
    Daddr,
    /// Source MAC in the low 48 bits (`-m mac`, `ether saddr`).
    SrcMac,
    CtOrigSaddr,
    CtOrigDaddr,
    CtReplSaddr,
    CtReplDaddr,
    /// The number the rule's last [`Expr::Draw`] drew in this evaluation
    /// (nftables' register holding `numgen` / `jhash` for a map lookup).
    Reg,
    /// [`super::rpf`] bits: the reverse-path lookup of the source.
    Rpf,
    /// Live connections from the source ([`super::PacketView::conns`]).
    Conns,
    /// [`super::physdev`] bits: whether the packet came by a bridge port,
    /// leaves by one, is bridged (`--physdev-is-in/-is-out/-is-bridged`).
    Physdev,
}

impl Field {
    /// Fields loaded as 128 bits.
    pub fn wide(self) -> bool {
        matches!(
            self,
            Field::Saddr
                | Field::Daddr
                | Field::SrcMac
                | Field::CtOrigSaddr
                | Field::CtOrigDaddr
                | Field::CtReplSaddr
                | Field::CtReplDaddr
        )
    }

    /// Fields whose value is an address of the packet's family.
    pub fn is_addr(self) -> bool {
        self.wide() && self != Field::SrcMac
    }

    /// What a user calls it, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Field::NfProto => "the family",
            Field::L4Proto => "the protocol",
            Field::Mark => "the mark",
            Field::Len => "the length",
            Field::Ttl => "the TTL",
            Field::Tos => "the TOS",
            Field::Dscp => "the DSCP",
            Field::PktType => "the packet type",
            Field::Sport => "the source port",
            Field::Dport => "the destination port",
            Field::TcpFlags => "the TCP flags",
            Field::IcmpType => "the ICMP type",
            Field::IcmpCode => "the ICMP code",
            Field::IcmpTypeCode => "the ICMP type and code",
            Field::SrcType => "the source address type",
            Field::DstType => "the destination address type",
            Field::CtState => "the conntrack state",
            Field::CtStatus => "the conntrack status",
            Field::CtNat => "the connection's translation",
            Field::CtMark => "the connection mark",
            Field::CtDir => "the conntrack direction",
            Field::CtOrigSport => "the original source port",
            Field::CtOrigDport => "the original destination port",
            Field::CtReplSport => "the reply source port",
            Field::CtReplDport => "the reply destination port",
            Field::Saddr => "the source address",
            Field::Daddr => "the destination address",
            Field::SrcMac => "the source MAC address",
            Field::CtOrigSaddr => "the original source address",
            Field::CtOrigDaddr => "the original destination address",
            Field::CtReplSaddr => "the reply source address",
            Field::CtReplDaddr => "the reply destination address",
            Field::Reg => "the number drawn (numgen, jhash)",
            Field::Rpf => "the reverse path",
            Field::Conns => "the source's connections",
            Field::Physdev => "the bridge ports",
        }
    }

    /// The largest value the field holds (scalars).
    pub fn max(self) -> u32 {
        match self {
            Field::NfProto
            | Field::L4Proto
            | Field::Ttl
            | Field::Tos
            | Field::TcpFlags
            | Field::IcmpType
            | Field::IcmpCode
            | Field::CtState
            | Field::PktType => 0xff,
            Field::Dscp => 0x3f,
            Field::IcmpTypeCode => 0xffff,
            Field::CtDir => 1,
            Field::Sport
            | Field::Dport
            | Field::CtOrigSport
            | Field::CtOrigDport
            | Field::CtReplSport
            | Field::CtReplDport => 0xffff,
            _ => u32::MAX,
        }
    }

    /// What the pipeline must fill in the [`super::PacketView`] for this
    /// field beyond what it always fills ([`super::needs`] bits).
    pub(super) fn needs(self) -> u8 {
        use super::needs;
        match self {
            Field::SrcMac | Field::PktType => needs::L2,
            Field::SrcType | Field::DstType => needs::ADDR_TYPE,
            Field::Rpf => needs::RPF,
            Field::Conns => needs::CONNS,
            Field::CtStatus
            | Field::CtNat
            | Field::CtMark
            | Field::CtDir
            | Field::CtOrigSport
            | Field::CtOrigDport
            | Field::CtReplSport
            | Field::CtReplDport
            | Field::CtOrigSaddr
            | Field::CtOrigDaddr
            | Field::CtReplSaddr
            | Field::CtReplDaddr => needs::CT,
            _ => 0,
        }
    }
}

/// `limit`: at most `rate` packets per `per_ns` nanoseconds after a burst
/// of `burst`, across all workers (iptables `-m limit`, nftables `limit
/// rate`). The expression holds while the packet is within the limit; an
/// `over` limit (nftables `limit rate over`) is the negation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSpec {
    pub rate: u32,
    pub per_ns: u64,
    pub burst: u32,
}

/// How [`Expr::Draw`] draws its number, before `% modulus + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawKind {
    /// A counter shared by all workers (`numgen inc`).
    Inc,
    /// The worker's random generator (`numgen random`).
    Random,
    /// A hash of the packet's fields (`jhash`: [`hash_fields`] bits;
    /// `symhash`: the same both ways). Spreads like the kernel's jhash;
    /// the values differ.
    Hash {
        fields: u8,
        seed: u32,
        symmetric: bool,
    },
}

/// Fields [`DrawKind::Hash`] may hash.
pub mod hash_fields {
    pub const SADDR: u8 = 1;
    pub const DADDR: u8 = 2;
    pub const SPORT: u8 = 4;
    pub const DPORT: u8 = 8;
    pub const L4PROTO: u8 = 16;
}

/// One expression of a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `field & mask` within `lo..=hi`: equality, ranges, prefixes,
    /// masked compares (marks, TCP flags). For a 128-bit field only
    /// equality after the mask (`lo == hi`) or a plain range (all-ones
    /// mask) are allowed.
    Cmp {
        field: Field,
        neg: bool,
        mask: u128,
        lo: u128,
        hi: u128,
    },
    /// `field & bits != 0`: a set of states, types or flags.
    Bits { field: Field, neg: bool, bits: u32 },
    /// The input (`out` false) or output interface is in the set; with
    /// `phys`, the bridge port it came or goes by (`-m physdev`).
    Iface {
        out: bool,
        neg: bool,
        set: IfaceMatch,
        phys: bool,
    },
    /// The field — or, with `alt`, either of two fields (`-m multiport
    /// --ports`) — lies in one of the inclusive ranges.
    InRanges {
        field: Field,
        alt: Option<Field>,
        neg: bool,
        ranges: Vec<(u128, u128)>,
    },
    /// The field (an address) is in ipset `set` (`-m set`), whose
    /// contents change while the ruleset runs.
    IpSet {
        set: std::sync::Arc<super::ipset::IpSetTable>,
        field: Field,
        /// A `hash:ip,port` set's port ([`Field::Sport`] or
        /// [`Field::Dport`]; the protocol goes with it).
        port: Option<Field>,
        neg: bool,
    },
    /// `-m statistic`.
    Statistic { neg: bool, spec: StatisticSpec },
    /// `-m limit`.
    Limit { neg: bool, spec: LimitSpec },
    /// Draws a number into [`Field::Reg`] and holds (nftables' `numgen`,
    /// `jhash`, `symhash`, compared or looked up in a map by the
    /// expressions after it, in this rule and the next ones of the same
    /// evaluation).
    Draw {
        kind: DrawKind,
        modulus: u32,
        offset: u32,
    },
    /// The key of `fields` ([`hash_fields`] bits) is in dynamic set `set`
    /// (nft `ip saddr @s` for a set the packet path writes).
    SetLookup {
        set: std::sync::Arc<super::dynset::DynSetSpec>,
        fields: u8,
        neg: bool,
    },
    /// Adds the key of `fields` to `set` (nft `add @s { ... }`, or with
    /// `refresh` `update @s { ... }`, moving its expiry to `timeout_ns`
    /// from now, 0: the set's), then, with `limit`, tests the element's
    /// own limiter (`over`: holds when over the rate: a meter, iptables'
    /// `hashlimit`). Holds unless the set is full or the limit says no.
    SetUpdate {
        set: std::sync::Arc<super::dynset::DynSetSpec>,
        fields: u8,
        refresh: bool,
        timeout_ns: u64,
        limit: Option<(LimitSpec, bool)>,
        /// When the set is full: holds if true (iptables' hashlimit drops
        /// the packet then: an `--hashlimit-above ... -j DROP` rule
        /// matching does that), else fails (nft's dynset breaks).
        full_holds: bool,
    },
    /// iptables' `-m recent` on `set` (a set with hit history that
    /// evicts): see [`RecentMode`]; `seconds` / `hitcount` (0: not given)
    /// narrow `Check` and `Update` to that many hits in that window.
    Recent {
        set: std::sync::Arc<super::dynset::DynSetSpec>,
        fields: u8,
        mode: RecentMode,
        seconds: u32,
        hitcount: u16,
        neg: bool,
    },
}

/// What `-m recent` does with the packet's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecentMode {
    /// `--set`: remember it (a hit); holds.
    Set,
    /// `--rcheck`: holds if remembered (with enough recent hits).
    Check,
    /// `--update`: as `Check`, and a hit is recorded when it holds.
    Update,
    /// `--remove`: holds if remembered, and forgets it.
    Remove,
}

impl Expr {
    /// `field == value`.
    pub fn eq(field: Field, value: u32) -> Self {
        Expr::range(field, false, value, value)
    }

    /// `field` in `lo..=hi` (`neg`: not in).
    pub fn range(field: Field, neg: bool, lo: u32, hi: u32) -> Self {
        Expr::Cmp {
            field,
            neg,
            mask: u128::from(u32::MAX),
            lo: lo.into(),
            hi: hi.into(),
        }
    }

    /// The packet is IPv4 (`v4`) or IPv6: narrows the rule's family.
    pub fn family(v4: bool) -> Self {
        Expr::eq(Field::NfProto, if v4 { 2 } else { 10 })
    }

    /// `field & mask == value`.
    pub fn masked(field: Field, neg: bool, mask: u32, value: u32) -> Self {
        Expr::Cmp {
            field,
            neg,
            mask: mask.into(),
            lo: value.into(),
            hi: value.into(),
        }
    }

    /// An address field in a prefix.
    pub fn prefix(field: Field, neg: bool, p: Prefix) -> Self {
        let (net, mask) = p.net_mask();
        Expr::Cmp {
            field,
            neg,
            mask,
            lo: net,
            hi: net,
        }
    }

    /// Whether it keeps state between packets (runs in written order).
    pub fn stateful(&self) -> bool {
        matches!(
            self,
            Expr::Statistic { .. }
                | Expr::Limit { .. }
                | Expr::Draw { .. }
                | Expr::SetUpdate { .. }
                | Expr::Recent { .. }
        )
    }

    /// The field it loads, if one.
    pub fn field(&self) -> Option<Field> {
        match self {
            Expr::Cmp { field, .. }
            | Expr::Bits { field, .. }
            | Expr::InRanges { field, .. }
            | Expr::IpSet { field, .. } => Some(*field),
            _ => None,
        }
    }
}
