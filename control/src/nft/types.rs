//! nft's vocabulary: families, hooks, data types, header fields, meta keys
//! and the symbolic constants of each type, with the numbers nft gives them.
//!
//! Service names (`ssh`) and protocol names (`tcp`) come from tables here,
//! not from /etc/services and /etc/protocols as nft reads them, so that a
//! ruleset means the same on every machine; a name not in them is an error
//! naming where it was used.

/// A table's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ip,
    Ip6,
    Inet,
    Arp,
    Bridge,
    Netdev,
}

impl Family {
    pub fn from_name(s: &str) -> Option<Family> {
        Some(match s {
            "ip" => Family::Ip,
            "ip6" => Family::Ip6,
            "inet" => Family::Inet,
            "arp" => Family::Arp,
            "bridge" => Family::Bridge,
            "netdev" => Family::Netdev,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    /// The hooks a base chain of this family may name.
    pub fn hooks(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            Family::Ip | Family::Ip6 => &[Prerouting, Input, Forward, Output, Postrouting],
            Family::Inet => &[Prerouting, Input, Forward, Output, Postrouting, Ingress],
            Family::Bridge => &[Prerouting, Input, Forward, Output, Postrouting],
            Family::Arp => &[Input, Output],
            Family::Netdev => &[Ingress, Egress],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
    Egress,
}

impl Hook {
    pub fn from_name(s: &str) -> Option<Hook> {
        Some(match s {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            "ingress" => Hook::Ingress,
            "egress" => Hook::Egress,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

/// The number of a standard priority name in a family at a hook, as nft
/// 1.0.6 resolves it (`dstnat` only at prerouting, `srcnat` only at
/// postrouting; bridge has its own numbers; arp and netdev only `filter`).
pub fn std_priority(family: Family, hook: Hook, name: &str) -> Option<i32> {
    match family {
        Family::Bridge => match name {
            "dstnat" if hook == Hook::Prerouting => Some(-300),
            "filter" => Some(-200),
            "out" if hook == Hook::Output => Some(100),
            "srcnat" if hook == Hook::Postrouting => Some(300),
            _ => None,
        },
        Family::Arp | Family::Netdev => (name == "filter").then_some(0),
        Family::Ip | Family::Ip6 | Family::Inet => match name {
            "raw" => Some(-300),
            "mangle" => Some(-150),
            "dstnat" if hook == Hook::Prerouting => Some(-100),
            "filter" => Some(0),
            "security" => Some(50),
            "srcnat" if hook == Hook::Postrouting => Some(100),
            _ => None,
        },
    }
}

/// The type of a value: what a constant is read as and what a set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// An integer of unknown or 64-bit width.
    Integer,
    /// An integer header field of that many bits (`ip ttl`: 8).
    Bits(u8),
    String,
    Ipv4Addr,
    Ipv6Addr,
    EtherAddr,
    EtherType,
    InetProto,
    InetService,
    Mark,
    /// `iif`/`oif`: an interface, by name (resolved when loaded).
    IfIndex,
    /// `iifname`/`oifname`: a name, `*` at the end is a wildcard.
    IfName,
    IfType,
    CtState,
    CtStatus,
    CtDir,
    CtLabel,
    TcpFlag,
    IcmpType,
    IcmpCode,
    Icmpv6Type,
    Icmpv6Code,
    IcmpxCode,
    Pkttype,
    NfProto,
    FibAddrType,
    Dscp,
    Ecn,
    Verdict,
    /// A duration (`ct expiration`, element timeouts).
    Time,
    Uid,
    Gid,
    Devgroup,
    Realm,
    Boolean,
    Day,
    Hour,
}

impl DataType {
    /// The type named in a set's `type` (`ipv4_addr`, `inet_service`).
    pub fn from_type_name(s: &str) -> Option<DataType> {
        use DataType::*;
        Some(match s {
            "ipv4_addr" => Ipv4Addr,
            "ipv6_addr" => Ipv6Addr,
            "ether_addr" => EtherAddr,
            "ether_type" => EtherType,
            "inet_proto" => InetProto,
            "inet_service" => InetService,
            "mark" => Mark,
            "iface_index" => IfIndex,
            "ifname" => IfName,
            "iface_type" => IfType,
            "ct_state" => CtState,
            "ct_status" => CtStatus,
            "ct_dir" => CtDir,
            "ct_label" => CtLabel,
            "tcp_flag" => TcpFlag,
            "icmp_type" => IcmpType,
            "icmp_code" => IcmpCode,
            "icmpv6_type" => Icmpv6Type,
            "icmpv6_code" => Icmpv6Code,
            "icmpx_code" => IcmpxCode,
            "pkt_type" => Pkttype,
            "nf_proto" => NfProto,
            "fib_addrtype" => FibAddrType,
            "dscp" => Dscp,
            "ecn" => Ecn,
            "verdict" => Verdict,
            "time" => Time,
            "uid" => Uid,
            "gid" => Gid,
            "devgroup" => Devgroup,
            "realm" => Realm,
            "boolean" => Boolean,
            "day" => Day,
            "hour" => Hour,
            "string" => String,
            _ => return None,
        })
    }

    /// Whether a comma list of its values means "any of these bits".
    pub fn is_bitmask(self) -> bool {
        matches!(
            self,
            DataType::CtState | DataType::CtStatus | DataType::TcpFlag
        )
    }

    /// Whether values are strings (`iifname eth0`, `ct helper "ftp"`).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            DataType::IfName | DataType::IfIndex | DataType::String
        )
    }
}

/// The protocol a payload expression names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Ether,
    Vlan,
    Ip,
    Ip6,
    Tcp,
    Udp,
    Udplite,
    Sctp,
    Dccp,
    /// `th`: the transport header, whichever protocol it is.
    Th,
    Icmp,
    Icmpv6,
    Ah,
    Esp,
}

impl Proto {
    pub fn from_name(s: &str) -> Option<Proto> {
        Some(match s {
            "ether" => Proto::Ether,
            "vlan" => Proto::Vlan,
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "udplite" => Proto::Udplite,
            "sctp" => Proto::Sctp,
            "dccp" => Proto::Dccp,
            "th" => Proto::Th,
            "icmp" => Proto::Icmp,
            "icmpv6" => Proto::Icmpv6,
            "ah" => Proto::Ah,
            "esp" => Proto::Esp,
            _ => return None,
        })
    }
}

/// A header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadField {
    Saddr,
    Daddr,
    Type,
    Id,
    Pcp,
    Cfi,
    Version,
    Hdrlength,
    Dscp,
    Ecn,
    Length,
    FragOff,
    Ttl,
    Protocol,
    Checksum,
    Flowlabel,
    Nexthdr,
    Hoplimit,
    Sport,
    Dport,
    Sequence,
    Ackseq,
    Doff,
    Flags,
    Window,
    Urgptr,
    Vtag,
    Code,
    Mtu,
    Gateway,
    Spi,
}

/// The fields of `proto` nft knows (a subset: those rulesets use), with
/// their names and value types.
pub fn payload_fields(proto: Proto) -> &'static [(&'static str, PayloadField, DataType)] {
    use DataType as T;
    use PayloadField as F;
    match proto {
        Proto::Ether => &[
            ("saddr", F::Saddr, T::EtherAddr),
            ("daddr", F::Daddr, T::EtherAddr),
            ("type", F::Type, T::EtherType),
        ],
        Proto::Vlan => &[
            ("id", F::Id, T::Bits(12)),
            ("pcp", F::Pcp, T::Bits(3)),
            ("cfi", F::Cfi, T::Bits(1)),
            ("type", F::Type, T::EtherType),
        ],
        Proto::Ip => &[
            ("saddr", F::Saddr, T::Ipv4Addr),
            ("daddr", F::Daddr, T::Ipv4Addr),
            ("protocol", F::Protocol, T::InetProto),
            ("ttl", F::Ttl, T::Bits(8)),
            ("length", F::Length, T::Bits(16)),
            ("dscp", F::Dscp, T::Dscp),
            ("ecn", F::Ecn, T::Ecn),
            ("version", F::Version, T::Bits(4)),
            ("hdrlength", F::Hdrlength, T::Bits(4)),
            ("id", F::Id, T::Bits(16)),
            ("frag-off", F::FragOff, T::Bits(16)),
            ("checksum", F::Checksum, T::Bits(16)),
        ],
        Proto::Ip6 => &[
            ("saddr", F::Saddr, T::Ipv6Addr),
            ("daddr", F::Daddr, T::Ipv6Addr),
            ("nexthdr", F::Nexthdr, T::InetProto),
            ("hoplimit", F::Hoplimit, T::Bits(8)),
            ("length", F::Length, T::Bits(16)),
            ("dscp", F::Dscp, T::Dscp),
            ("ecn", F::Ecn, T::Ecn),
            ("flowlabel", F::Flowlabel, T::Bits(20)),
            ("version", F::Version, T::Bits(4)),
        ],
        Proto::Tcp => &[
            ("sport", F::Sport, T::InetService),
            ("dport", F::Dport, T::InetService),
            ("flags", F::Flags, T::TcpFlag),
            ("sequence", F::Sequence, T::Bits(32)),
            ("ackseq", F::Ackseq, T::Bits(32)),
            ("doff", F::Doff, T::Bits(4)),
            ("window", F::Window, T::Bits(16)),
            ("checksum", F::Checksum, T::Bits(16)),
            ("urgptr", F::Urgptr, T::Bits(16)),
        ],
        Proto::Udp | Proto::Udplite => &[
            ("sport", F::Sport, T::InetService),
            ("dport", F::Dport, T::InetService),
            ("length", F::Length, T::Bits(16)),
            ("checksum", F::Checksum, T::Bits(16)),
        ],
        Proto::Sctp => &[
            ("sport", F::Sport, T::InetService),
            ("dport", F::Dport, T::InetService),
            ("vtag", F::Vtag, T::Bits(32)),
            ("checksum", F::Checksum, T::Bits(32)),
        ],
        Proto::Dccp => &[
            ("sport", F::Sport, T::InetService),
            ("dport", F::Dport, T::InetService),
            ("type", F::Type, T::Bits(4)),
        ],
        Proto::Th => &[
            ("sport", F::Sport, T::InetService),
            ("dport", F::Dport, T::InetService),
        ],
        Proto::Icmp => &[
            ("type", F::Type, T::IcmpType),
            ("code", F::Code, T::IcmpCode),
            ("checksum", F::Checksum, T::Bits(16)),
            ("id", F::Id, T::Bits(16)),
            ("sequence", F::Sequence, T::Bits(16)),
            ("mtu", F::Mtu, T::Bits(16)),
            ("gateway", F::Gateway, T::Ipv4Addr),
        ],
        Proto::Icmpv6 => &[
            ("type", F::Type, T::Icmpv6Type),
            ("code", F::Code, T::Icmpv6Code),
            ("checksum", F::Checksum, T::Bits(16)),
            ("id", F::Id, T::Bits(16)),
            ("sequence", F::Sequence, T::Bits(16)),
            ("mtu", F::Mtu, T::Bits(32)),
        ],
        Proto::Ah => &[
            ("nexthdr", F::Nexthdr, T::InetProto),
            ("spi", F::Spi, T::Bits(32)),
            ("sequence", F::Sequence, T::Bits(32)),
        ],
        Proto::Esp => &[
            ("spi", F::Spi, T::Bits(32)),
            ("sequence", F::Sequence, T::Bits(32)),
        ],
    }
}

/// A `meta` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKey {
    Length,
    Protocol,
    Priority,
    Mark,
    Iif,
    Oif,
    Iifname,
    Oifname,
    Iiftype,
    Oiftype,
    Skuid,
    Skgid,
    Nftrace,
    Rtclassid,
    Secmark,
    Nfproto,
    L4proto,
    Ibrname,
    Obrname,
    Pkttype,
    Cpu,
    Iifgroup,
    Oifgroup,
    Cgroup,
    Random,
    Ipsec,
    Iifkind,
    Oifkind,
    Time,
    Day,
    Hour,
    Sdif,
    Sdifname,
}

/// Every meta key: its name, whether it may be written without `meta`
/// (`iifname eth0`, `mark 1`), and its value type. The same list as nft
/// 1.0.6 gives in its error for an unknown key.
pub const META_KEYS: &[(&str, MetaKey, bool, DataType)] = &[
    ("length", MetaKey::Length, false, DataType::Integer),
    ("protocol", MetaKey::Protocol, false, DataType::EtherType),
    ("priority", MetaKey::Priority, false, DataType::Integer),
    ("mark", MetaKey::Mark, true, DataType::Mark),
    ("iif", MetaKey::Iif, true, DataType::IfIndex),
    ("oif", MetaKey::Oif, true, DataType::IfIndex),
    ("iifname", MetaKey::Iifname, true, DataType::IfName),
    ("oifname", MetaKey::Oifname, true, DataType::IfName),
    ("iiftype", MetaKey::Iiftype, true, DataType::IfType),
    ("oiftype", MetaKey::Oiftype, true, DataType::IfType),
    ("skuid", MetaKey::Skuid, true, DataType::Uid),
    ("skgid", MetaKey::Skgid, true, DataType::Gid),
    ("nftrace", MetaKey::Nftrace, true, DataType::Integer),
    ("rtclassid", MetaKey::Rtclassid, true, DataType::Realm),
    ("secmark", MetaKey::Secmark, false, DataType::Integer),
    ("nfproto", MetaKey::Nfproto, false, DataType::NfProto),
    ("l4proto", MetaKey::L4proto, false, DataType::InetProto),
    ("ibrname", MetaKey::Ibrname, true, DataType::IfName),
    ("obrname", MetaKey::Obrname, true, DataType::IfName),
    ("pkttype", MetaKey::Pkttype, true, DataType::Pkttype),
    ("cpu", MetaKey::Cpu, true, DataType::Integer),
    ("iifgroup", MetaKey::Iifgroup, true, DataType::Devgroup),
    ("oifgroup", MetaKey::Oifgroup, true, DataType::Devgroup),
    ("cgroup", MetaKey::Cgroup, true, DataType::Integer),
    ("random", MetaKey::Random, false, DataType::Integer),
    ("ipsec", MetaKey::Ipsec, true, DataType::Boolean),
    ("iifkind", MetaKey::Iifkind, false, DataType::String),
    ("oifkind", MetaKey::Oifkind, false, DataType::String),
    ("time", MetaKey::Time, true, DataType::Integer),
    ("day", MetaKey::Day, true, DataType::Day),
    ("hour", MetaKey::Hour, true, DataType::Hour),
    ("sdif", MetaKey::Sdif, false, DataType::IfIndex),
    ("sdifname", MetaKey::Sdifname, false, DataType::IfName),
];

/// The names of nft's symbolic constants of `ty` and their numbers.
fn symbols(ty: DataType) -> &'static [(&'static str, u64)] {
    use DataType as T;
    match ty {
        T::CtState => &[
            ("invalid", 1),
            ("established", 2),
            ("related", 4),
            ("new", 8),
            ("untracked", 64),
        ],
        T::CtStatus => &[
            ("expected", 1),
            ("seen-reply", 2),
            ("assured", 4),
            ("confirmed", 8),
            ("snat", 16),
            ("dnat", 32),
            ("dying", 512),
        ],
        T::CtDir => &[("original", 0), ("reply", 1)],
        T::TcpFlag => &[
            ("fin", 0x01),
            ("syn", 0x02),
            ("rst", 0x04),
            ("psh", 0x08),
            ("ack", 0x10),
            ("urg", 0x20),
            ("ecn", 0x40),
            ("cwr", 0x80),
        ],
        T::IcmpType => &[
            ("echo-reply", 0),
            ("destination-unreachable", 3),
            ("source-quench", 4),
            ("redirect", 5),
            ("echo-request", 8),
            ("router-advertisement", 9),
            ("router-solicitation", 10),
            ("time-exceeded", 11),
            ("parameter-problem", 12),
            ("timestamp-request", 13),
            ("timestamp-reply", 14),
            ("info-request", 15),
            ("info-reply", 16),
            ("address-mask-request", 17),
            ("address-mask-reply", 18),
        ],
        T::IcmpCode => &[
            ("net-unreachable", 0),
            ("host-unreachable", 1),
            ("prot-unreachable", 2),
            ("port-unreachable", 3),
            ("frag-needed", 4),
            ("net-prohibited", 9),
            ("host-prohibited", 10),
            ("admin-prohibited", 13),
        ],
        T::Icmpv6Type => &[
            ("destination-unreachable", 1),
            ("packet-too-big", 2),
            ("time-exceeded", 3),
            ("parameter-problem", 4),
            ("echo-request", 128),
            ("echo-reply", 129),
            ("mld-listener-query", 130),
            ("mld-listener-report", 131),
            ("mld-listener-done", 132),
            ("mld-listener-reduction", 132),
            ("nd-router-solicit", 133),
            ("nd-router-advert", 134),
            ("nd-neighbor-solicit", 135),
            ("nd-neighbor-advert", 136),
            ("nd-redirect", 137),
            ("router-renumbering", 138),
            ("ind-neighbor-solicit", 141),
            ("ind-neighbor-advert", 142),
            ("mld2-listener-report", 143),
        ],
        T::Icmpv6Code => &[
            ("no-route", 0),
            ("admin-prohibited", 1),
            ("addr-unreachable", 3),
            ("port-unreachable", 4),
            ("policy-fail", 5),
            ("reject-route", 6),
        ],
        T::IcmpxCode => &[
            ("no-route", 0),
            ("port-unreachable", 1),
            ("host-unreachable", 2),
            ("admin-prohibited", 3),
        ],
        T::Pkttype => &[
            ("host", 0),
            ("unicast", 0),
            ("broadcast", 1),
            ("multicast", 2),
            ("other", 3),
        ],
        T::NfProto => &[("ipv4", 2), ("ipv6", 10)],
        T::EtherType => &[
            ("ip", 0x0800),
            ("arp", 0x0806),
            ("ip6", 0x86dd),
            ("vlan", 0x8100),
            ("8021ad", 0x88a8),
        ],
        T::InetProto => &[
            ("icmp", 1),
            ("igmp", 2),
            ("ipencap", 4),
            ("tcp", 6),
            ("egp", 8),
            ("udp", 17),
            ("dccp", 33),
            ("ipv6", 41),
            ("ipv6-route", 43),
            ("ipv6-frag", 44),
            ("rsvp", 46),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("icmpv6", 58),
            ("ipv6-icmp", 58),
            ("ipv6-nonxt", 59),
            ("ipv6-opts", 60),
            ("ospf", 89),
            ("ipip", 94),
            ("pim", 103),
            ("ipcomp", 108),
            ("comp", 108),
            ("vrrp", 112),
            ("l2tp", 115),
            ("sctp", 132),
            ("udplite", 136),
            ("mpls-in-ip", 137),
        ],
        T::InetService => SERVICES,
        T::FibAddrType => &[
            ("unspec", 0),
            ("unicast", 1),
            ("local", 2),
            ("broadcast", 3),
            ("anycast", 4),
            ("multicast", 5),
            ("blackhole", 6),
            ("unreachable", 7),
            ("prohibit", 8),
        ],
        T::IfType => &[
            ("ether", 1),
            ("ppp", 512),
            ("ipip", 768),
            ("ipip6", 769),
            ("loopback", 772),
            ("sit", 776),
            ("ipgre", 778),
        ],
        T::Dscp => &[
            ("cs0", 0x00),
            ("cs1", 0x08),
            ("cs2", 0x10),
            ("cs3", 0x18),
            ("cs4", 0x20),
            ("cs5", 0x28),
            ("cs6", 0x30),
            ("cs7", 0x38),
            ("df", 0x00),
            ("be", 0x00),
            ("lephb", 0x01),
            ("af11", 0x0a),
            ("af12", 0x0c),
            ("af13", 0x0e),
            ("af21", 0x12),
            ("af22", 0x14),
            ("af23", 0x16),
            ("af31", 0x1a),
            ("af32", 0x1c),
            ("af33", 0x1e),
            ("af41", 0x22),
            ("af42", 0x24),
            ("af43", 0x26),
            ("va", 0x2c),
            ("ef", 0x2e),
        ],
        T::Ecn => &[("not-ect", 0), ("ect1", 1), ("ect0", 2), ("ce", 3)],
        T::Boolean => &[("exists", 1), ("missing", 0)],
        T::Uid | T::Gid => &[("root", 0)],
        T::Day => &[
            ("Sunday", 0),
            ("Monday", 1),
            ("Tuesday", 2),
            ("Wednesday", 3),
            ("Thursday", 4),
            ("Friday", 5),
            ("Saturday", 6),
        ],
        _ => &[],
    }
}

/// The TCP/UDP ports of the service names rulesets use (IANA's numbers,
/// as Debian's /etc/services lists them).
const SERVICES: &[(&str, u64)] = &[
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("http", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("nntp", 119),
    ("ntp", 123),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap2", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("isakmp", 500),
    ("syslog", 514),
    ("printer", 515),
    ("dhcpv6-client", 546),
    ("dhcpv6-server", 547),
    ("submission", 587),
    ("ipp", 631),
    ("ldaps", 636),
    ("domain-s", 853),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("nfs", 2049),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("ipsec-nat-t", 4500),
    ("sip", 5060),
    ("sip-tls", 5061),
    ("xmpp-client", 5222),
    ("postgresql", 5432),
    ("mdns", 5353),
    ("x11", 6000),
    ("redis", 6379),
    ("http-alt", 8080),
    ("git", 9418),
];

/// The number of symbol `name` of type `ty`.
pub fn symbol(ty: DataType, name: &str) -> Option<u64> {
    symbols(ty)
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}

/// Whether `ty` has symbolic names at all (for the error message).
pub fn has_symbols(ty: DataType) -> bool {
    !symbols(ty).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_per_family_and_hook() {
        assert_eq!(
            std_priority(Family::Inet, Hook::Prerouting, "dstnat"),
            Some(-100)
        );
        assert_eq!(std_priority(Family::Inet, Hook::Output, "dstnat"), None);
        assert_eq!(
            std_priority(Family::Ip, Hook::Postrouting, "srcnat"),
            Some(100)
        );
        assert_eq!(
            std_priority(Family::Bridge, Hook::Input, "filter"),
            Some(-200)
        );
        assert_eq!(std_priority(Family::Netdev, Hook::Ingress, "raw"), None);
    }

    #[test]
    fn symbols_by_type() {
        assert_eq!(symbol(DataType::InetService, "ssh"), Some(22));
        assert_eq!(symbol(DataType::CtState, "established"), Some(2));
        assert_eq!(symbol(DataType::IcmpType, "echo-request"), Some(8));
        assert_eq!(symbol(DataType::Icmpv6Type, "echo-request"), Some(128));
        assert_eq!(symbol(DataType::Ipv4Addr, "local"), None);
    }
}
