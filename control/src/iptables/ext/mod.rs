//! Match modules beyond the base ones (`-m length`, `-m limit`,
//! `-m addrtype`, ...): each module's options, its iptables-save text and
//! its lowering into the dataplane's expressions live together in one
//! file of this folder. Adding a module means: its variant in [`Ext`], its
//! reader in [`reader`], and its file; plus a dataplane field only when
//! it reads something no expression reads yet.

mod connlimit;
mod ct;
mod hashlimit;
mod header;
mod nfacct;
mod physdev;
mod rate;
mod recent;
mod rpfilter;
mod set;

use std::fmt;

use xgate_dataplane::filter::{Expr, Hook, IfaceMatch};

pub use connlimit::ConnLimit;
pub use ct::{Connmark, Conntrack, Options as ConntrackOptions};
pub use hashlimit::HashLimit;
pub use header::{AddrType, Dscp, IpRange, Length, Mac, PktType, Tos, Ttl};
pub use nfacct::NfAcct;
pub use physdev::Physdev;
pub use rate::Limit;
pub use recent::Recent;
pub use rpfilter::RpFilter;
pub use set::Set;

type R<T> = Result<T, String>;

/// One match module of a rule, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Ext {
    Length(Length),
    Ttl(Ttl),
    Tos(Tos),
    Dscp(Dscp),
    PktType(PktType),
    Mac(Mac),
    IpRange(IpRange),
    AddrType(AddrType),
    Limit(Limit),
    Conntrack(Conntrack),
    Connmark(Connmark),
    RpFilter(RpFilter),
    HashLimit(HashLimit),
    Recent(Recent),
    ConnLimit(ConnLimit),
    Set(Set),
    NfAcct(NfAcct),
    Physdev(Physdev),
}

impl Ext {
    /// The family it names (`Some(true)`: IPv6), for the rule's check.
    pub fn family(&self) -> Option<bool> {
        match self {
            Ext::Ttl(t) => Some(t.v6),
            Ext::IpRange(r) => r.family(),
            Ext::Conntrack(c) => c.family(),
            _ => None,
        }
    }

    /// Its expressions for a rule in built-in chain `hook` (`None`: a
    /// user chain), or why xgate cannot run it. `resolve`: an interface
    /// name (`-m physdev`) -> the interfaces it names.
    pub fn lower(
        &self,
        hook: Option<Hook>,
        resolve: &dyn Fn(&crate::iptables::Iface) -> R<IfaceMatch>,
    ) -> R<Vec<Expr>> {
        match self {
            Ext::Length(x) => Ok(x.lower()),
            Ext::Ttl(x) => Ok(x.lower()),
            Ext::Tos(x) => Ok(x.lower()),
            Ext::Dscp(x) => Ok(x.lower()),
            Ext::PktType(x) => Ok(x.lower()),
            Ext::Mac(x) => x.lower(hook),
            Ext::IpRange(x) => Ok(x.lower()),
            Ext::AddrType(x) => Ok(x.lower()),
            Ext::Limit(x) => Ok(x.lower()),
            Ext::Conntrack(x) => x.lower(),
            Ext::Connmark(x) => Ok(x.lower()),
            Ext::RpFilter(x) => x.lower(hook),
            Ext::HashLimit(x) => Ok(x.lower()),
            Ext::Recent(x) => Ok(x.lower()),
            Ext::ConnLimit(x) => Ok(x.lower()),
            Ext::Set(x) => x.lower(),
            Ext::NfAcct(x) => Ok(x.lower()),
            Ext::Physdev(x) => x.lower(hook, resolve),
        }
    }
}

/// ` -m NAME --option value ...` as iptables-save prints it.
impl fmt::Display for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ext::Length(x) => x.fmt(f),
            Ext::Ttl(x) => x.fmt(f),
            Ext::Tos(x) => x.fmt(f),
            Ext::Dscp(x) => x.fmt(f),
            Ext::PktType(x) => x.fmt(f),
            Ext::Mac(x) => x.fmt(f),
            Ext::IpRange(x) => x.fmt(f),
            Ext::AddrType(x) => x.fmt(f),
            Ext::Limit(x) => x.fmt(f),
            Ext::Conntrack(x) => x.fmt(f),
            Ext::Connmark(x) => x.fmt(f),
            Ext::RpFilter(x) => x.fmt(f),
            Ext::HashLimit(x) => x.fmt(f),
            Ext::Recent(x) => x.fmt(f),
            Ext::ConnLimit(x) => x.fmt(f),
            Ext::Set(x) => x.fmt(f),
            Ext::NfAcct(x) => x.fmt(f),
            Ext::Physdev(x) => x.fmt(f),
        }
    }
}

/// A module being read: it takes its options one by one, then checks
/// them together.
pub(crate) trait Reader {
    /// Whether `o` is one of its options, and if so whether it takes a
    /// value (`Some(false)`: a flag).
    fn takes(&self, o: &str) -> Option<bool>;
    /// Option `o` (`neg`: a `!` before it) with its value.
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()>;
    /// The module, once the line is read.
    fn finish(&mut self) -> R<Ext>;
}

/// The reader of module `name` (`-m name`), if it is one of these.
pub(crate) fn reader(name: &str) -> Option<Box<dyn Reader>> {
    Some(match name {
        "length" => Box::<header::LengthReader>::default(),
        "ttl" => Box::new(header::TtlReader::new(false)),
        "hl" => Box::new(header::TtlReader::new(true)),
        "tos" => Box::<header::TosReader>::default(),
        "dscp" => Box::<header::DscpReader>::default(),
        "pkttype" => Box::<header::PktTypeReader>::default(),
        "mac" => Box::<header::MacReader>::default(),
        "iprange" => Box::<header::IpRangeReader>::default(),
        "addrtype" => Box::<header::AddrTypeReader>::default(),
        "limit" => Box::<rate::LimitReader>::default(),
        "conntrack" => Box::<ct::ConntrackReader>::default(),
        "connmark" => Box::<ct::ConnmarkReader>::default(),
        "rpfilter" => Box::<rpfilter::RpFilterReader>::default(),
        "hashlimit" => Box::<hashlimit::HashLimitReader>::default(),
        "recent" => Box::<recent::RecentReader>::default(),
        "connlimit" => Box::<connlimit::ConnLimitReader>::default(),
        "set" => Box::<set::SetReader>::default(),
        "nfacct" => Box::<nfacct::NfAcctReader>::default(),
        "physdev" => Box::<physdev::PhysdevReader>::default(),
        _ => return None,
    })
}

/// Whether any module here has option `o` (the parser's list of known
/// options).
pub(crate) fn is_option(o: &str) -> bool {
    [
        "length",
        "ttl",
        "hl",
        "tos",
        "dscp",
        "pkttype",
        "mac",
        "iprange",
        "addrtype",
        "limit",
        "conntrack",
        "connmark",
        "rpfilter",
        "hashlimit",
        "recent",
        "connlimit",
        "set",
        "nfacct",
        "physdev",
    ]
    .iter()
    .filter_map(|m| reader(m))
    .any(|r| r.takes(o).is_some())
}

/// Keeps the first value of an option given once.
fn once<T>(slot: &mut Option<T>, v: T, o: &str) -> R<()> {
    if slot.is_some() {
        return Err(format!("option {o} given twice"));
    }
    *slot = Some(v);
    Ok(())
}

/// The value of an option that takes one.
fn val(v: Option<String>, o: &str) -> R<String> {
    v.ok_or_else(|| format!("option {o} needs a value"))
}

/// `!` is refused for `o`.
fn no_neg(neg: bool, o: &str) -> R<()> {
    if neg {
        Err(format!("option {o} cannot be negated with !"))
    } else {
        Ok(())
    }
}

/// A number with an optional `0x` prefix.
fn num(s: &str, o: &str, max: u32) -> R<u32> {
    let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    n.filter(|&n| n <= max)
        .ok_or_else(|| format!("invalid {o} value {s:?} (0 to {max})"))
}

/// ` ! ` or ` ` before an option, as iptables-save writes it.
fn bang(neg: bool) -> &'static str {
    if neg { " !" } else { "" }
}
