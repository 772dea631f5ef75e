//! The config model: plain data the control plane compiles into dataplane
//! tables. Values here have passed validation (see `parse` and `validate`).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// Default conntrack capacity (entries).
pub const DEFAULT_FLOWS: usize = 1 << 20;
/// Default cap of live connections per source address (RFC 6888 REQ-4).
pub const DEFAULT_FLOWS_PER_SOURCE: u32 = 65_536;
/// Default cap of NAT ports one inside address holds (all NAT addresses
/// and protocols together).
pub const DEFAULT_NAT_PORTS_PER_SOURCE: u32 = 16_384;
/// Smallest accepted conntrack capacity.
pub const MIN_FLOWS: usize = 1024;
/// Largest accepted conntrack capacity (2^26).
pub const MAX_FLOWS: usize = 1 << 26;
/// Largest accepted `workers`.
pub const MAX_WORKERS: usize = 1024;
/// Largest accepted `queues`.
pub const MAX_QUEUES: usize = 1024;
/// Default AF_XDP ring sizes (entries): rx, tx (and completion), fill.
pub const DEFAULT_RX_RING: u32 = 1024;
pub const DEFAULT_TX_RING: u32 = 1024;
pub const DEFAULT_FILL_RING: u32 = 2048;
/// Accepted ring sizes: powers of two in this range.
pub const MIN_RING: u32 = 64;
pub const MAX_RING: u32 = 16384;
/// Default interface MTU.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU (IPv4 minimum, RFC 791).
pub const MIN_MTU: u16 = 68;
/// Largest MTU (jumbo frames).
pub const MAX_MTU: u16 = 9000;
/// Smallest MTU of an interface with an IPv6 address (RFC 8200).
pub const MIN_MTU_V6: u16 = 1280;
/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/xgate/xgate.sock";
/// Default Prometheus listen address.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9482";
/// Routing table ids with names, as in /etc/iproute2/rt_tables.
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_LOCAL: u32 = 255;
pub const TABLE_DEFAULT: u32 = 253;
/// Largest rule priority; 0 is reserved for the local-table rule.
pub const MAX_RULE_PRIORITY: u32 = 32767;
/// Largest ECMP weight (as `ip route ... nexthop weight`).
pub const MAX_WEIGHT: u16 = 256;

/// The `[timeouts]` keys and their defaults in seconds (Linux nf_conntrack sysctls:
/// `nf_conntrack_tcp_timeout_*`, `nf_conntrack_udp_timeout[_stream]`,
/// `nf_conntrack_icmp[v6]_timeout`, `nf_conntrack_generic_timeout`).
pub const DEFAULT_TIMEOUTS: [(&str, u64); 14] = [
    ("tcp_syn_sent", 120),
    ("tcp_syn_recv", 60),
    ("tcp_established", 432_000),
    ("tcp_fin_wait", 120),
    ("tcp_close_wait", 60),
    ("tcp_last_ack", 30),
    ("tcp_time_wait", 120),
    ("tcp_close", 10),
    ("tcp_unack", 300),
    ("udp", 30),
    ("udp_stream", 120),
    ("icmp", 30),
    ("icmpv6", 30),
    ("generic", 600),
];

/// A whole, validated config file. `Default` is the empty file's config
/// (with an empty `source`), handy for building configs in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub dataplane: Dataplane,
    pub interfaces: Vec<Interface>,
    pub routes: Vec<RouteCfg>,
    pub rules: Vec<RuleCfg>,
    pub neighbors: Vec<NeighborCfg>,
    pub firewall: Option<Firewall>,
    /// `[timeouts]` overrides in file order: (name, seconds, line).
    pub timeouts: Vec<(String, u64, usize)>,
    pub control: Control,
    /// `[conntrack]`: the helpers connections get by port.
    pub conntrack: ConntrackCfg,
    /// `routes_file`: a file of `ip route`-like lines (see
    /// [`crate::routes`]), resolved like `rules_file`, and the key's line.
    pub routes_file: Option<(PathBuf, usize)>,
    /// `[mirror]`: what the kernel's tables give the interfaces whose
    /// `mirror` key asks for it.
    pub mirror: MirrorCfg,
    /// `[[bridge]]`: bridge domains over interfaces.
    pub bridges: Vec<BridgeCfg>,
    /// The file name errors and `check_summary` mention.
    pub source: String,
}

/// `[[bridge]]`: a bridge domain. Its ports are interfaces; an
/// interface whose `device` is the bridge's name is its routed interface
/// (Linux's `br0`; with `vlan = N` on a VLAN-aware bridge, `br0.N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeCfg {
    pub name: String,
    pub ports: Vec<BridgePortCfg>,
    /// 802.1Q-aware (`vlan_filtering 1`): ports carry VLANs.
    pub vlan_filtering: bool,
    /// The VLAN of a port's untagged frames unless the port says
    /// (`default_pvid`, 1 as Linux), and the VLAN of the bridge's own
    /// untagged routed interface.
    pub default_pvid: u16,
    /// br_netfilter: bridged IPv4 / IPv6 walks conntrack and the hooks.
    pub nf_call_iptables: bool,
    pub nf_call_ip6tables: bool,
    /// MAC ageing in seconds (0: never).
    pub ageing: u64,
    /// MAC table entries at most.
    pub fdb_max: u64,
    /// Flooded frames per second per worker, and the burst (0: no limit).
    pub flood_rate: u32,
    pub flood_burst: u32,
    /// Static MAC entries.
    pub fdb: Vec<FdbCfg>,
    pub line: usize,
}

/// A bridge port: an interface, and on a VLAN-aware bridge its VLANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePortCfg {
    pub interface: String,
    /// VLAN of untagged frames (None: `default_pvid`; Some(0): none).
    pub pvid: Option<u16>,
    /// VLANs carried tagged.
    pub vlans: Vec<u16>,
    /// Field path (`bridge[0].ports[1]`) for errors.
    pub field: String,
}

/// `[[bridge.fdb]]`: a static MAC entry (`bridge fdb add ... static`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbCfg {
    pub mac: [u8; 6],
    pub port: String,
    pub vlan: Option<u16>,
    pub line: usize,
}

/// Bridge defaults (Linux's: ageing 300 s, default_pvid 1).
pub const DEFAULT_AGEING: u64 = 300;
pub const DEFAULT_FDB_MAX: u64 = 4096;
pub const MAX_FDB: u64 = 1 << 22;
pub const DEFAULT_FLOOD_RATE: u32 = 20_000;
pub const DEFAULT_FLOOD_BURST: u32 = 1_000;

/// `[mirror]`: settings of the netlink mirror (`control/src/mirror/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorCfg {
    /// `tables = ["main", 100]`: the kernel routing tables whose routes are
    /// mirrored (into xgate's table of the same number); default main.
    pub tables: Vec<u32>,
    /// `batch_ms = 50`: kernel changes are gathered this long (from the
    /// first one) into one publication of xgate's tables.
    pub batch_ms: u64,
    /// `rx_buffer = 8388608`: receive buffer of the socket the kernel's
    /// changes wait in, bytes (set past `net.core.rmem_max` as root). A
    /// burst larger than it overruns the socket and costs a resync.
    pub rx_buffer: usize,
    /// Line of the `[mirror]` header (0 when absent).
    pub line: usize,
}

/// Most milliseconds `[mirror] batch_ms` may be.
pub const MAX_MIRROR_BATCH_MS: u64 = 10_000;
/// Bounds of `[mirror] rx_buffer`, bytes.
pub const MIN_MIRROR_RX_BUFFER: u64 = 4096;
pub const MAX_MIRROR_RX_BUFFER: u64 = 1 << 30;

impl Default for MirrorCfg {
    fn default() -> Self {
        MirrorCfg {
            tables: vec![TABLE_MAIN],
            batch_ms: 50,
            rx_buffer: 8 << 20,
            line: 0,
        }
    }
}

/// An interface's `mirror = ["addresses", "routes"]`: what it takes from
/// the kernel's view of its tap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Mirror {
    /// The tap's addresses become the interface's (the config's are the
    /// tap's first ones).
    pub addresses: bool,
    /// Routes of `[mirror] tables` that leave by the tap become xgate's.
    pub routes: bool,
}

impl Mirror {
    pub const NAMES: [&'static str; 2] = ["addresses", "routes"];

    pub fn any(self) -> bool {
        self.addresses || self.routes
    }
}

/// `[conntrack]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConntrackCfg {
    /// `helpers = [ { helper = "ftp", ports = [21] } ]`: a new connection
    /// to one of the ports (after DNAT) gets the helper, for users who
    /// write no raw table (`-j CT --helper`).
    pub helpers: Vec<HelperCfg>,
    /// `checksum = false` turns off the transport checksum check of
    /// packets that open or change a connection (Linux's
    /// `nf_conntrack_checksum`, default on).
    pub checksum: bool,
    /// `tcp_be_liberal = true`: TCP segments outside their connection's
    /// window are not INVALID (Linux's `nf_conntrack_tcp_be_liberal`;
    /// default false, as Linux).
    pub tcp_be_liberal: bool,
}

impl Default for ConntrackCfg {
    fn default() -> Self {
        ConntrackCfg {
            helpers: Vec::new(),
            checksum: true,
            tcp_be_liberal: false,
        }
    }
}

/// One `[conntrack] helpers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperCfg {
    pub helper: xgate_dataplane::conntrack::HelperKind,
    /// Server ports (default: 21 for ftp, 69 for tftp).
    pub ports: Vec<u16>,
    pub line: usize,
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// None: one worker per online core.
    pub workers: Option<usize>,
    pub xdp_mode: XdpMode,
    pub bind: BindMode,
    /// 0: every receive queue of every device; N: queues 0..N of every
    /// device (the XDP program drops what the others receive).
    pub queues: usize,
    /// Conntrack capacity in entries.
    pub flows: usize,
    /// AF_XDP ring entries per socket: rx, tx (and completion), fill.
    pub rx_ring: u32,
    pub tx_ring: u32,
    pub fill_ring: u32,
    /// Live connections one source address may hold (0: no limit).
    pub flows_per_source: u32,
    /// NAT ports one inside address may hold (0: no limit).
    pub nat_ports_per_source: u32,
    /// Established connections forwarded by xgate's XDP program
    /// (issue 16): `auto` where the program runs natively, or `off`.
    pub offload: Offload,
}

impl Default for Dataplane {
    fn default() -> Self {
        Self {
            workers: None,
            xdp_mode: XdpMode::Auto,
            bind: BindMode::Auto,
            queues: 0,
            flows: DEFAULT_FLOWS,
            rx_ring: DEFAULT_RX_RING,
            tx_ring: DEFAULT_TX_RING,
            fill_ring: DEFAULT_FILL_RING,
            flows_per_source: DEFAULT_FLOWS_PER_SOURCE,
            nat_ports_per_source: DEFAULT_NAT_PORTS_PER_SOURCE,
            offload: Offload::Off,
        }
    }
}

/// `[dataplane] offload`: whether established connections are forwarded
/// in XDP (docs/architecture.md, "Offload").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offload {
    /// Off: every packet walks the pipeline (the default, as Linux's
    /// flowtable is only there when a ruleset asks for it).
    Off,
    /// Where the program attached natively and the egress device takes
    /// redirected frames.
    Auto,
}

impl Offload {
    pub const NAMES: [&'static str; 2] = ["off", "auto"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Driver mode.
    Native,
    /// Generic (SKB) mode.
    Skb,
    /// Native if the driver supports it, else SKB.
    Auto,
}

impl XdpMode {
    pub const NAMES: [&'static str; 3] = ["native", "skb", "auto"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "native" => Some(Self::Native),
            "skb" => Some(Self::Skb),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Skb => "skb",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// AF_XDP bind mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindMode {
    Copy,
    ZeroCopy,
    /// Zero-copy if the NIC supports it, else copy.
    Auto,
}

impl BindMode {
    pub const NAMES: [&'static str; 3] = ["copy", "zerocopy", "auto"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "copy" => Some(Self::Copy),
            "zerocopy" => Some(Self::ZeroCopy),
            "auto" => Some(Self::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copy => "copy",
            Self::ZeroCopy => "zerocopy",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for BindMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[interface]]`: a logical interface (a device, optionally with VLAN tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub device: String,
    /// None: use the device's MAC.
    pub mac: Option<[u8; 6]>,
    /// `[]` untagged, `[vid]` 802.1Q, `[outer, inner]` QinQ.
    pub vlan: Vec<u16>,
    /// Host addresses with their prefix length; host bits are kept.
    pub addresses: Vec<IpNet>,
    pub mtu: u16,
    /// The kernel's view of this interface: a TAP device of this name that
    /// `xgate run` creates (same MAC, MTU and addresses); traffic for the
    /// router that xgate does not answer itself goes to it, and what the
    /// kernel sends through it leaves by this interface. None: xgate
    /// answers everything addressed to the router itself.
    pub tap: Option<String>,
    /// Multicast groups (prefixes) that go to the tap when they arrive by
    /// this interface, for the host's daemons (mDNS, OSPF, RIP, VRRP).
    pub tap_groups: Vec<IpNet>,
    /// `mirror = ["addresses", "routes"]`: what this interface takes from
    /// the kernel's side of its tap (needs `tap`).
    pub mirror: Mirror,
    /// Line of the `[[interface]]` header.
    /// `rp_filter = "strict" | "loose" | "off"` (Linux's sysctl of that
    /// name; default off, the kernel's default).
    pub rp_filter: xgate_dataplane::iface::RpFilter,
    /// `bc_forwarding = true`: directed broadcasts received here for
    /// another interface's subnet are forwarded (default false, as Linux).
    pub bc_forwarding: bool,
    pub line: usize,
}

impl Interface {
    /// The longest prefix among this interface's subnets that contains `ip`.
    pub fn subnet_containing(&self, ip: IpAddr) -> Option<IpNet> {
        self.addresses
            .iter()
            .map(IpNet::trunc)
            .filter(|n| n.contains(&ip))
            .max_by_key(IpNet::prefix_len)
    }

    /// True if `ip` is one of this interface's own addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr() == ip)
    }
}

/// Route type, as `ip route add TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    Unicast,
    /// Drop silently.
    Blackhole,
    /// Drop, ICMP host/net unreachable.
    Unreachable,
    /// Drop, ICMP administratively prohibited.
    Prohibit,
}

impl RouteType {
    pub const NAMES: [&'static str; 4] = ["unicast", "blackhole", "unreachable", "prohibit"];

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "unicast" => Some(Self::Unicast),
            "blackhole" => Some(Self::Blackhole),
            "unreachable" => Some(Self::Unreachable),
            "prohibit" => Some(Self::Prohibit),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
        }
    }
}

impl fmt::Display for RouteType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCfg {
    /// Destination network (host bits zero).
    pub to: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: u32,
    pub table: u32,
    pub rtype: RouteType,
    /// ECMP next hops; empty unless the route uses `nexthops`.
    pub nexthops: Vec<NexthopCfg>,
    /// Line of the `[[route]]` header.
    pub line: usize,
}

impl RouteCfg {
    /// A unicast route straight out of an interface (`dev` only): its
    /// destinations are on-link, like a connected subnet.
    pub fn is_link_route(&self) -> bool {
        self.rtype == RouteType::Unicast
            && self.via.is_none()
            && self.nexthops.is_empty()
            && self.dev.is_some()
    }
}

/// One ECMP next hop of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopCfg {
    pub via: IpAddr,
    pub dev: Option<String>,
    /// 1..=256, default 1.
    pub weight: u16,
}

/// `[[rule]]`: a policy routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCfg {
    /// 1..=32767, lower first.
    pub priority: u32,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    /// (value, mask).
    pub fwmark: Option<(u32, u32)>,
    pub table: u32,
    /// Line of the `[[rule]]` header.
    pub line: usize,
}

/// `[[neighbor]]`: a static ARP / NDP entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborCfg {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    pub dev: String,
    /// Line of the `[[neighbor]]` header.
    pub line: usize,
}

/// One family's rules of `[firewall]` (`rules_v4` / `rules_v4_file`, or
/// the `_v6` keys): iptables-save text, kept raw for the iptables parser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FamilyRules {
    pub rules: Option<String>,
    /// Line of the first line of `rules`' text.
    pub rules_line: usize,
    /// Resolved relative to the config file's directory; exists at load time.
    pub rules_file: Option<PathBuf>,
}

impl FamilyRules {
    pub fn is_set(&self) -> bool {
        self.rules.is_some() || self.rules_file.is_some()
    }
}

/// `[firewall]`: iptables-save text, kept raw for the iptables parser.
/// Either one `inet` ruleset for both families (`rules` / `rules_file`)
/// or an IPv4 and an IPv6 ruleset (`v4`, `v6`), never both forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// The `inet` ruleset: governs IPv4 and IPv6 packets alike.
    pub rules: Option<String>,
    /// Line of the first line of `rules`' text (the line after an opening `"""`
    /// that ends its line); add the 0-based line index within `rules`.
    pub rules_line: usize,
    /// Resolved relative to the config file's directory; exists at load time.
    pub rules_file: Option<PathBuf>,
    /// `rules_v4` / `rules_v4_file`: the IPv4 ruleset (iptables).
    pub v4: FamilyRules,
    /// `rules_v6` / `rules_v6_file`: the IPv6 ruleset (ip6tables).
    pub v6: FamilyRules,
    /// `nft` / `nft_file`: an nftables ruleset (`nft -f` text); its base
    /// chains run with the iptables tables' in priority order.
    pub nft: FamilyRules,
    /// `ipsets` / `ipsets_file`: `ipset save` text for `-m set`.
    pub ipsets: FamilyRules,
    /// Line of the `[firewall]` header.
    pub line: usize,
}

impl Firewall {
    /// The one-ruleset (`inet`) form is used.
    pub fn is_inet(&self) -> bool {
        self.rules.is_some() || self.rules_file.is_some()
    }
}

/// `[control]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Unix socket of `xgate ctl`.
    pub socket: String,
    /// Prometheus listen address `host:port`; empty disables.
    pub metrics: String,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            socket: DEFAULT_SOCKET.into(),
            metrics: DEFAULT_METRICS.into(),
        }
    }
}

impl Config {
    /// Whether `device` names a `[[bridge]]` (an interface on it is the
    /// bridge's own, with no kernel device).
    pub fn is_bridge(&self, device: &str) -> bool {
        self.bridges.iter().any(|b| b.name == device)
    }

    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The interface with the longest connected subnet (from its addresses)
    /// containing `ip`. IPv6 link-local addresses are not resolved this way
    /// (they are on every interface): such a gateway needs an explicit `dev`.
    pub fn connected_dev(&self, ip: IpAddr) -> Option<&Interface> {
        self.interfaces
            .iter()
            .filter_map(|i| i.subnet_containing(ip).map(|n| (n.prefix_len(), i)))
            .max_by_key(|&(len, _)| len)
            .map(|(_, i)| i)
    }

    /// The interface a gateway `via` is reached on: a connected subnet if one
    /// contains it, else the longest link route (`dev` without `via`) that
    /// contains it, in any table.
    pub fn gateway_dev(&self, via: IpAddr) -> Option<&Interface> {
        self.connected_dev(via).or_else(|| {
            self.routes
                .iter()
                .filter(|r| r.is_link_route() && r.to.contains(&via))
                .max_by_key(|r| r.to.prefix_len())
                .and_then(|r| r.dev.as_deref())
                .and_then(|d| self.interface(d))
        })
    }

    /// The interface owning address `ip`, if any.
    pub fn owner_of(&self, ip: IpAddr) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.owns(ip))
    }

    /// The effective conntrack timeout `name` in seconds: the `[timeouts]`
    /// override, else the Linux default. None for a name not in `DEFAULT_TIMEOUTS`.
    pub fn timeout(&self, name: &str) -> Option<u64> {
        if let Some((_, secs, _)) = self.timeouts.iter().find(|(n, _, _)| n == name) {
            return Some(*secs);
        }
        DEFAULT_TIMEOUTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, secs)| secs)
    }
}
