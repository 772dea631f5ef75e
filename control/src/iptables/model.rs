//! The parsed ruleset: tables, chains, rules with typed matches and targets.
//!
//! `Display` on [`IptablesRuleset`] prints canonical iptables-save text; parsing that
//! text again gives the same model (apart from `Rule::line`).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// A whole ruleset, tables in order of first appearance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IptablesRuleset {
    pub tables: Vec<Table>,
}

impl IptablesRuleset {
    pub fn table(&self, kind: TableKind) -> Option<&Table> {
        self.tables.iter().find(|t| t.kind == kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Filter,
    Nat,
    Mangle,
    Raw,
}

impl TableKind {
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Filter => "filter",
            TableKind::Nat => "nat",
            TableKind::Mangle => "mangle",
            TableKind::Raw => "raw",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "filter" => Some(TableKind::Filter),
            "nat" => Some(TableKind::Nat),
            "mangle" => Some(TableKind::Mangle),
            "raw" => Some(TableKind::Raw),
            _ => None,
        }
    }

    /// Built-in chains of the table, in iptables-save order.
    pub fn builtin_chains(self) -> &'static [&'static str] {
        match self {
            TableKind::Filter => &["INPUT", "FORWARD", "OUTPUT"],
            TableKind::Nat => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
            TableKind::Mangle => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
            TableKind::Raw => &["PREROUTING", "OUTPUT"],
        }
    }
}

/// One table. Always holds all its built-in chains first (in
/// [`TableKind::builtin_chains`] order), then user chains in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub kind: TableKind,
    pub chains: Vec<Chain>,
}

impl Table {
    /// A table with its built-in chains, policy ACCEPT, no rules.
    pub fn new(kind: TableKind) -> Self {
        let chains = kind
            .builtin_chains()
            .iter()
            .map(|n| Chain {
                name: (*n).to_string(),
                builtin: true,
                policy: Some(Policy::Accept),
                counters: Counters::default(),
                rules: Vec::new(),
            })
            .collect();
        Table { kind, chains }
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub builtin: bool,
    /// `Some` for built-in chains, `None` for user chains.
    pub policy: Option<Policy>,
    pub counters: Counters,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Line of the rule in the source file (first line of a continued line).
    pub line: usize,
    pub matches: Matches,
    pub target: Target,
    /// `--random`, `--random-fully`, `--persistent` of SNAT, DNAT and
    /// MASQUERADE: accepted and kept for printing; xgate's allocator
    /// already picks ports at random and keeps a mapping per connection.
    pub nat_flags: NatFlags,
    pub counters: Counters,
}

/// `-j NFLOG` (or the older `-j ULOG`) with its options as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfLog {
    pub ulog: bool,
    pub group: Option<u16>,
    pub prefix: Option<String>,
    /// Bytes of the packet to copy (`--nflog-size`/`--nflog-range`,
    /// `--ulog-cprange`).
    pub range: Option<u32>,
    /// `--nflog-size` was the name given (not `--nflog-range`).
    pub size_name: bool,
    pub threshold: Option<u16>,
}

/// The flag options of the NAT targets ([`NatFlags::NAMES`] bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatFlags(pub u8);

impl NatFlags {
    pub const RANDOM: u8 = 0x01;
    pub const RANDOM_FULLY: u8 = 0x02;
    pub const PERSISTENT: u8 = 0x04;
    /// In the order iptables-save prints them.
    pub const NAMES: [(&'static str, u8); 3] = [
        ("--random", Self::RANDOM),
        ("--random-fully", Self::RANDOM_FULLY),
        ("--persistent", Self::PERSISTENT),
    ];
}

/// A match value with its `!`.
#[derive(Debug, Clone, PartialEq)]
pub struct Neg<T> {
    pub negated: bool,
    pub value: T,
}

impl<T> Neg<T> {
    pub fn new(negated: bool, value: T) -> Self {
        Neg { negated, value }
    }
}

/// All matches of a rule; every `Some` must match (AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matches {
    pub in_iface: Option<Neg<Iface>>,
    pub out_iface: Option<Neg<Iface>>,
    pub src: Option<Neg<IpNet>>,
    pub dst: Option<Neg<IpNet>>,
    pub protocol: Option<Neg<Protocol>>,
    /// `--sport` (tcp/udp; protocol is then non-negated tcp or udp).
    pub sport: Option<Neg<PortRange>>,
    pub dport: Option<Neg<PortRange>>,
    pub tcp_flags: Option<Neg<TcpFlags>>,
    /// `--icmp-type` with `-p icmp`, or `--icmpv6-type` with `-p icmpv6`.
    pub icmp_type: Option<Neg<IcmpType>>,
    pub multiport: Option<Neg<Multiport>>,
    /// `-m state --state` or `-m conntrack --ctstate`.
    pub ctstate: Option<Neg<CtStates>>,
    pub statistic: Option<Neg<Statistic>>,
    pub mark: Option<Neg<Mark>>,
    /// The other match modules, in the order given.
    pub ext: Vec<super::ext::Ext>,
    pub comment: Option<String>,
}

/// Interface name; `wildcard` means the name is a prefix (`eth+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub wildcard: bool,
}

impl Iface {
    pub fn matches(&self, ifname: &str) -> bool {
        if self.wildcard {
            ifname.starts_with(&self.name)
        } else {
            ifname == self.name
        }
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, if self.wildcard { "+" } else { "" })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    All,
    /// Any other IP protocol number (never 0, 1, 6, 17, 58).
    Number(u8),
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Icmpv6 => 58,
            Protocol::All => 0,
            Protocol::Number(n) => n,
        }
    }

    pub fn from_number(n: u8) -> Self {
        match n {
            0 => Protocol::All,
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            58 => Protocol::Icmpv6,
            n => Protocol::Number(n),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Icmpv6 => f.write_str("icmpv6"),
            Protocol::All => f.write_str("all"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

/// Inclusive port range, `lo <= hi` (matches allow port 0, NAT targets
/// start at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn single(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// Printed iptables style, `lo:hi` (match syntax).
impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}:{}", self.lo, self.hi)
        }
    }
}

/// TCP flag bits as in the TCP header.
pub mod tcp_flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ALL: u8 = 0x3f;
    pub const NAMES: [(&str, u8); 6] = [
        ("FIN", FIN),
        ("SYN", SYN),
        ("RST", RST),
        ("PSH", PSH),
        ("ACK", ACK),
        ("URG", URG),
    ];
}

/// `--tcp-flags MASK COMP`: `(flags & mask) == comp`. `--syn` is
/// `mask = FIN|SYN|RST|ACK, comp = SYN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFlags {
    pub mask: u8,
    pub comp: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpType {
    /// `any`.
    Any,
    /// Type, and code if given (`type/code`).
    Type { typ: u8, code: Option<u8> },
}

impl fmt::Display for IcmpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpType::Any => f.write_str("any"),
            IcmpType::Type { typ, code: None } => write!(f, "{typ}"),
            IcmpType::Type { typ, code: Some(c) } => write!(f, "{typ}/{c}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortDir {
    /// `--sports`
    Src,
    /// `--dports`
    Dst,
    /// `--ports` (either)
    Either,
}

/// `-m multiport`: at most 15 ports (a range counts as two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multiport {
    pub dir: PortDir,
    pub ports: Vec<PortRange>,
}

/// Set of conntrack states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CtStates(pub u8);

impl CtStates {
    pub const INVALID: u8 = 0x01;
    pub const NEW: u8 = 0x02;
    pub const ESTABLISHED: u8 = 0x04;
    pub const RELATED: u8 = 0x08;
    pub const UNTRACKED: u8 = 0x10;
    /// `--ctstate SNAT` / `DNAT`: xt_conntrack's virtual states, the
    /// connection's source (destination) translated.
    pub const SNAT: u8 = 0x20;
    pub const DNAT: u8 = 0x40;
    /// The states proper (not [`Self::SNAT`], [`Self::DNAT`]).
    pub const STATES: u8 = 0x1f;
    pub const NAMES: [(&'static str, u8); 7] = [
        ("INVALID", Self::INVALID),
        ("NEW", Self::NEW),
        ("RELATED", Self::RELATED),
        ("ESTABLISHED", Self::ESTABLISHED),
        ("UNTRACKED", Self::UNTRACKED),
        ("SNAT", Self::SNAT),
        ("DNAT", Self::DNAT),
    ];

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

impl fmt::Display for CtStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, bit) in Self::NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// Matches packet number `packet` of every `every` (0 <= packet < every).
    Nth { every: u32, packet: u32 },
    /// Matches with probability `probability` (0.0..=1.0).
    Random { probability: f64 },
}

/// `value/mask`; mask defaults to 0xffffffff. Matches `(mark & mask) == value`
/// (`-m mark`); as a target, `mark = (mark & !mask) ^ value` (`-j MARK
/// --set-xmark`, which every MARK option reduces to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub value: u32,
    pub mask: u32,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mask == u32::MAX {
            write!(f, "{:#x}", self.value)
        } else {
            write!(f, "{:#x}/{:#x}", self.value, self.mask)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// No `-j`: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    /// `-j CHAIN` (a user chain of the same table).
    Jump(String),
    /// `-g CHAIN`.
    Goto(String),
    Reject(RejectWith),
    Log {
        prefix: Option<String>,
        /// Syslog level 0..=7 (default 4, warning).
        level: Option<u8>,
        /// `--log-tcp-sequence`, `--log-tcp-options`, ... (bits of
        /// `LOG_FLAGS`): kept, the line xgate writes does not add those
        /// fields.
        flags: u8,
    },
    /// `-j NFLOG` / `-j ULOG`: logged as LOG logs, with the prefix.
    NfLog(NfLog),
    Mark(Mark),
    /// `-j CONNMARK`.
    ConnMark(ConnMark),
    /// raw: `-j NOTRACK` (`notrack_target`: written so) or `-j CT
    /// --notrack`.
    Notrack {
        ct_form: bool,
    },
    /// raw: `-j CT --helper NAME`.
    CtHelper(String),
    Masquerade {
        ports: Option<PortRange>,
    },
    /// `-j CHECKSUM --checksum-fill` (mangle): a no-op, xgate always
    /// writes correct checksums.
    ChecksumFill,
    /// `-j TCPMSS --set-mss N` (`Some`) or `--clamp-mss-to-pmtu`.
    TcpMss(Option<u16>),
    Snat(NatSpec),
    Dnat(NatSpec),
    Redirect {
        ports: Option<PortRange>,
    },
}

/// What `-j CONNMARK` does, as libxt_CONNMARK reduces its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnMark {
    /// `ctmark = (ctmark & !mask) ^ value` (`--set-xmark`; `--set-mark`,
    /// `--and-mark`, `--or-mark`, `--xor-mark` reduce to it).
    Set(Mark),
    /// `--save-mark`: `ctmark = (ctmark & !ctmask) ^ (mark & nfmask)`.
    Save { nfmask: u32, ctmask: u32 },
    /// `--restore-mark`: `mark = (mark & !nfmask) ^ (ctmark & ctmask)`.
    Restore { nfmask: u32, ctmask: u32 },
}

/// `ADDR[-ADDR][:PORT[-PORT]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatSpec {
    /// First and last address (equal for one address); same family.
    pub addrs: (IpAddr, IpAddr),
    pub ports: Option<PortRange>,
}

fn fmt_nat_ports(f: &mut fmt::Formatter<'_>, p: &PortRange) -> fmt::Result {
    if p.lo == p.hi {
        write!(f, "{}", p.lo)
    } else {
        write!(f, "{}-{}", p.lo, p.hi)
    }
}

impl fmt::Display for NatSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.addrs;
        let v6 = a.is_ipv6();
        let bracket = v6 && self.ports.is_some();
        let addr = |f: &mut fmt::Formatter<'_>, x: IpAddr| {
            if bracket {
                write!(f, "[{x}]")
            } else {
                write!(f, "{x}")
            }
        };
        addr(f, a)?;
        if a != b {
            f.write_str("-")?;
            addr(f, b)?;
        }
        if let Some(p) = &self.ports {
            f.write_str(":")?;
            fmt_nat_ports(f, p)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectWith {
    IcmpNetUnreachable,
    IcmpHostUnreachable,
    IcmpPortUnreachable,
    IcmpProtoUnreachable,
    IcmpNetProhibited,
    IcmpHostProhibited,
    IcmpAdminProhibited,
    TcpReset,
    Icmp6NoRoute,
    Icmp6AdmProhibited,
    Icmp6AddrUnreachable,
    Icmp6PortUnreachable,
    Icmp6PolicyFail,
    Icmp6RejectRoute,
}

impl RejectWith {
    pub const ALL: [(&'static str, RejectWith); 14] = [
        ("icmp-net-unreachable", RejectWith::IcmpNetUnreachable),
        ("icmp-host-unreachable", RejectWith::IcmpHostUnreachable),
        ("icmp-port-unreachable", RejectWith::IcmpPortUnreachable),
        ("icmp-proto-unreachable", RejectWith::IcmpProtoUnreachable),
        ("icmp-net-prohibited", RejectWith::IcmpNetProhibited),
        ("icmp-host-prohibited", RejectWith::IcmpHostProhibited),
        ("icmp-admin-prohibited", RejectWith::IcmpAdminProhibited),
        ("tcp-reset", RejectWith::TcpReset),
        ("icmp6-no-route", RejectWith::Icmp6NoRoute),
        ("icmp6-adm-prohibited", RejectWith::Icmp6AdmProhibited),
        ("icmp6-addr-unreachable", RejectWith::Icmp6AddrUnreachable),
        ("icmp6-port-unreachable", RejectWith::Icmp6PortUnreachable),
        ("icmp6-policy-fail", RejectWith::Icmp6PolicyFail),
        ("icmp6-reject-route", RejectWith::Icmp6RejectRoute),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("icmp-port-unreachable")
    }

    pub fn from_name(s: &str) -> Option<Self> {
        let canonical = match s {
            "net-unreach" => "icmp-net-unreachable",
            "host-unreach" => "icmp-host-unreachable",
            "port-unreach" => "icmp-port-unreachable",
            "proto-unreach" => "icmp-proto-unreachable",
            "net-prohib" => "icmp-net-prohibited",
            "host-prohib" => "icmp-host-prohibited",
            "admin-prohib" => "icmp-admin-prohibited",
            "tcp-rst" => "tcp-reset",
            "no-route" => "icmp6-no-route",
            "adm-prohibited" => "icmp6-adm-prohibited",
            "addr-unreach" => "icmp6-addr-unreachable",
            other => other,
        };
        Self::ALL
            .iter()
            .find(|(n, _)| *n == canonical)
            .map(|(_, r)| *r)
    }

    pub fn is_icmp6(self) -> bool {
        self.name().starts_with("icmp6-")
    }
}

// ---------------------------------------------------------------- printing

/// Quotes a string for iptables-save (always double quotes).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Prints the rule specification (everything after `-A CHAIN`), canonical order.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.matches;
        // Every part is written as " x"; the leading space is dropped below.
        let mut s = String::new();
        {
            use fmt::Write as _;
            let w = &mut s;
            let neg = |w: &mut String, n: bool| {
                if n {
                    w.push_str(" !");
                }
            };
            if let Some(x) = &m.src {
                neg(w, x.negated);
                let _ = write!(w, " -s {}", x.value);
            }
            if let Some(x) = &m.dst {
                neg(w, x.negated);
                let _ = write!(w, " -d {}", x.value);
            }
            if let Some(x) = &m.in_iface {
                neg(w, x.negated);
                let _ = write!(w, " -i {}", x.value);
            }
            if let Some(x) = &m.out_iface {
                neg(w, x.negated);
                let _ = write!(w, " -o {}", x.value);
            }
            if let Some(x) = &m.protocol {
                neg(w, x.negated);
                let _ = write!(w, " -p {}", x.value);
                let proto_opts = m.sport.is_some() || m.dport.is_some() || m.tcp_flags.is_some();
                match x.value {
                    Protocol::Tcp if proto_opts => w.push_str(" -m tcp"),
                    Protocol::Udp if proto_opts => w.push_str(" -m udp"),
                    Protocol::Icmp if m.icmp_type.is_some() => w.push_str(" -m icmp"),
                    Protocol::Icmpv6 if m.icmp_type.is_some() => w.push_str(" -m icmp6"),
                    _ => {}
                }
            }
            if let Some(x) = &m.sport {
                neg(w, x.negated);
                let _ = write!(w, " --sport {}", x.value);
            }
            if let Some(x) = &m.dport {
                neg(w, x.negated);
                let _ = write!(w, " --dport {}", x.value);
            }
            if let Some(x) = &m.tcp_flags {
                neg(w, x.negated);
                let _ = write!(
                    w,
                    " --tcp-flags {} {}",
                    flag_names(x.value.mask),
                    flag_names(x.value.comp)
                );
            }
            if let Some(x) = &m.icmp_type {
                neg(w, x.negated);
                let opt = if m.protocol.as_ref().map(|p| p.value) == Some(Protocol::Icmpv6) {
                    "--icmpv6-type"
                } else {
                    "--icmp-type"
                };
                let _ = write!(w, " {opt} {}", x.value);
            }
            if let Some(x) = &m.multiport {
                w.push_str(" -m multiport");
                neg(w, x.negated);
                let opt = match x.value.dir {
                    PortDir::Src => "--sports",
                    PortDir::Dst => "--dports",
                    PortDir::Either => "--ports",
                };
                let list: Vec<String> = x.value.ports.iter().map(|p| p.to_string()).collect();
                let _ = write!(w, " {opt} {}", list.join(","));
            }
            // `--ctstate` with other conntrack options is one `-m
            // conntrack`, printed where the module's options are in the
            // extension list (so that their order reads back the same).
            let ct_ext = m
                .ext
                .iter()
                .any(|e| matches!(e, super::ext::Ext::Conntrack(_)));
            let ctstate = |w: &mut String, x: &Neg<CtStates>| {
                w.push_str(" -m conntrack");
                neg(w, x.negated);
                let _ = write!(w, " --ctstate {}", x.value);
            };
            if let Some(x) = &m.ctstate
                && !ct_ext
            {
                ctstate(w, x);
            }
            if let Some(x) = &m.statistic {
                w.push_str(" -m statistic");
                match x.value {
                    Statistic::Nth { every, packet } => {
                        w.push_str(" --mode nth");
                        neg(w, x.negated);
                        let _ = write!(w, " --every {every} --packet {packet}");
                    }
                    Statistic::Random { probability } => {
                        w.push_str(" --mode random");
                        neg(w, x.negated);
                        let _ = write!(w, " --probability {probability}");
                    }
                }
            }
            if let Some(x) = &m.mark {
                w.push_str(" -m mark");
                neg(w, x.negated);
                let _ = write!(w, " --mark {}", x.value);
            }
            for x in &m.ext {
                if let (Some(st), super::ext::Ext::Conntrack(c)) = (&m.ctstate, x) {
                    ctstate(w, st);
                    let _ = write!(w, "{}", super::ext::ConntrackOptions(c));
                    continue;
                }
                let _ = write!(w, "{x}");
            }
            if let Some(c) = &m.comment {
                let _ = write!(w, " -m comment --comment {}", quote(c));
            }
            match &self.target {
                Target::None => {}
                Target::Accept => w.push_str(" -j ACCEPT"),
                Target::Drop => w.push_str(" -j DROP"),
                Target::Return => w.push_str(" -j RETURN"),
                Target::Jump(c) => {
                    let _ = write!(w, " -j {c}");
                }
                Target::Goto(c) => {
                    let _ = write!(w, " -g {c}");
                }
                Target::Reject(r) => {
                    let _ = write!(w, " -j REJECT --reject-with {}", r.name());
                }
                Target::Log {
                    prefix,
                    level,
                    flags,
                } => {
                    w.push_str(" -j LOG");
                    if let Some(p) = prefix {
                        let _ = write!(w, " --log-prefix {}", quote(p));
                    }
                    if let Some(l) = level {
                        let _ = write!(w, " --log-level {l}");
                    }
                    for (name, bit) in crate::iptables::parse::LOG_FLAGS {
                        if flags & bit != 0 {
                            let _ = write!(w, " {name}");
                        }
                    }
                }
                Target::NfLog(n) => {
                    let (t, p) = if n.ulog {
                        ("ULOG", "--ulog-")
                    } else {
                        ("NFLOG", "--nflog-")
                    };
                    let _ = write!(w, " -j {t}");
                    if let Some(x) = &n.prefix {
                        let _ = write!(w, " {p}prefix {}", quote(x));
                    }
                    if let Some(g) = n.group {
                        let g_name = if n.ulog { "nlgroup" } else { "group" };
                        let _ = write!(w, " {p}{g_name} {g}");
                    }
                    if let Some(r) = n.range {
                        let r_name = match (n.ulog, n.size_name) {
                            (true, _) => "cprange",
                            (false, true) => "size",
                            (false, false) => "range",
                        };
                        let _ = write!(w, " {p}{r_name} {r}");
                    }
                    if let Some(q) = n.threshold {
                        let q_name = if n.ulog { "qthreshold" } else { "threshold" };
                        let _ = write!(w, " {p}{q_name} {q}");
                    }
                }
                Target::Mark(mk) => {
                    let _ = write!(w, " -j MARK --set-xmark {:#x}/{:#x}", mk.value, mk.mask);
                }
                Target::Masquerade { ports } => {
                    w.push_str(" -j MASQUERADE");
                    if let Some(p) = ports {
                        let _ = write!(w, " --to-ports {}", NatPorts(p));
                    }
                }
                Target::Snat(n) => {
                    let _ = write!(w, " -j SNAT --to-source {n}");
                }
                Target::Dnat(n) => {
                    let _ = write!(w, " -j DNAT --to-destination {n}");
                }
                Target::Redirect { ports } => {
                    w.push_str(" -j REDIRECT");
                    if let Some(p) = ports {
                        let _ = write!(w, " --to-ports {}", NatPorts(p));
                    }
                }
                Target::ChecksumFill => w.push_str(" -j CHECKSUM --checksum-fill"),
                Target::TcpMss(Some(n)) => {
                    let _ = write!(w, " -j TCPMSS --set-mss {n}");
                }
                Target::TcpMss(None) => w.push_str(" -j TCPMSS --clamp-mss-to-pmtu"),
                Target::Notrack { ct_form: true } => w.push_str(" -j CT --notrack"),
                Target::Notrack { ct_form: false } => w.push_str(" -j NOTRACK"),
                Target::CtHelper(h) => {
                    let _ = write!(w, " -j CT --helper {h}");
                }
                Target::ConnMark(c) => {
                    let _ = match c {
                        ConnMark::Set(mk) => {
                            write!(w, " -j CONNMARK --set-xmark {:#x}/{:#x}", mk.value, mk.mask)
                        }
                        ConnMark::Save { nfmask, ctmask } => write!(
                            w,
                            " -j CONNMARK --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
                        ),
                        ConnMark::Restore { nfmask, ctmask } => write!(
                            w,
                            " -j CONNMARK --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
                        ),
                    };
                }
            }
            for (name, bit) in NatFlags::NAMES {
                if self.nat_flags.0 & bit != 0 {
                    let _ = write!(w, " {name}");
                }
            }
        }
        f.write_str(s.strip_prefix(' ').unwrap_or(&s))
    }
}

struct NatPorts<'a>(&'a PortRange);

impl fmt::Display for NatPorts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_nat_ports(f, self.0)
    }
}

fn flag_names(bits: u8) -> String {
    if bits == 0 {
        return "NONE".to_string();
    }
    let names: Vec<&str> = tcp_flag::NAMES
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| *n)
        .collect();
    names.join(",")
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "*{}", self.kind.name())?;
        for c in &self.chains {
            let policy = match c.policy {
                Some(p) => p.to_string(),
                None => "-".to_string(),
            };
            writeln!(
                f,
                ":{} {} [{}:{}]",
                c.name, policy, c.counters.packets, c.counters.bytes
            )?;
        }
        for c in &self.chains {
            for r in &c.rules {
                if r.counters != Counters::default() {
                    write!(f, "[{}:{}] ", r.counters.packets, r.counters.bytes)?;
                }
                let spec = r.to_string();
                if spec.is_empty() {
                    writeln!(f, "-A {}", c.name)?;
                } else {
                    writeln!(f, "-A {} {spec}", c.name)?;
                }
            }
        }
        writeln!(f, "COMMIT")
    }
}

impl fmt::Display for IptablesRuleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            write!(f, "{t}")?;
        }
        Ok(())
    }
}
