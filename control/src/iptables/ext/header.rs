//! Modules that test header fields: `length`, `ttl` / `hl`, `tos`,
//! `dscp`, `pkttype`, `mac`, `iprange`, `addrtype`.

use std::fmt;
use std::net::IpAddr;

use xgate_dataplane::addr::ip_key;
use xgate_dataplane::filter::{Expr, Field, Hook, addr_type};

use super::{Ext, R, Reader, bang, no_neg, num, once, val};

/// `-m length --length LO[:HI]`: the L3 length (IPv6: with its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    pub neg: bool,
    pub lo: u16,
    pub hi: u16,
}

impl Length {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::range(
            Field::Len,
            self.neg,
            self.lo.into(),
            self.hi.into(),
        )]
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " -m length{} --length {}", bang(self.neg), self.lo)?;
        if self.hi != self.lo {
            write!(f, ":{}", self.hi)?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct LengthReader(Option<Length>);

impl Reader for LengthReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--length").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let (lo, hi) = match v.split_once(':') {
            Some((a, b)) => (
                if a.is_empty() { 0 } else { num(a, o, 65535)? },
                if b.is_empty() {
                    65535
                } else {
                    num(b, o, 65535)?
                },
            ),
            None => {
                let n = num(&v, o, 65535)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("--length range {v} is reversed"));
        }
        once(
            &mut self.0,
            Length {
                neg,
                lo: lo as u16,
                hi: hi as u16,
            },
            o,
        )
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::Length)
            .ok_or("-m length needs --length".into())
    }
}

/// How `-m ttl` / `-m hl` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlOp {
    Eq,
    Ne,
    Lt,
    Gt,
}

/// `-m ttl` (IPv4) or `-m hl` (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    pub v6: bool,
    pub op: TtlOp,
    pub value: u8,
}

impl Ttl {
    pub(super) fn lower(&self) -> Vec<Expr> {
        let v = u32::from(self.value);
        let cmp = match self.op {
            TtlOp::Eq => Expr::range(Field::Ttl, false, v, v),
            TtlOp::Ne => Expr::range(Field::Ttl, true, v, v),
            // `< 0` holds for nothing.
            TtlOp::Lt if v == 0 => Expr::Bits {
                field: Field::Ttl,
                neg: false,
                bits: 0,
            },
            TtlOp::Lt => Expr::range(Field::Ttl, false, 0, v - 1),
            TtlOp::Gt if v == 255 => Expr::Bits {
                field: Field::Ttl,
                neg: false,
                bits: 0,
            },
            TtlOp::Gt => Expr::range(Field::Ttl, false, v + 1, 255),
        };
        vec![Expr::family(!self.v6), cmp]
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, p) = if self.v6 {
            ("hl", "hl")
        } else {
            ("ttl", "ttl")
        };
        let (neg, op) = match self.op {
            TtlOp::Eq => ("", "eq"),
            TtlOp::Ne => (" !", "eq"),
            TtlOp::Lt => ("", "lt"),
            TtlOp::Gt => ("", "gt"),
        };
        write!(f, " -m {m}{neg} --{p}-{op} {}", self.value)
    }
}

pub(super) struct TtlReader {
    v6: bool,
    got: Option<Ttl>,
}

impl TtlReader {
    pub(super) fn new(v6: bool) -> Self {
        TtlReader { v6, got: None }
    }
}

impl Reader for TtlReader {
    fn takes(&self, o: &str) -> Option<bool> {
        let p = if self.v6 { "--hl-" } else { "--ttl-" };
        o.strip_prefix(p)
            .is_some_and(|s| matches!(s, "eq" | "lt" | "gt"))
            .then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let value = num(&val(v, o)?, o, 255)? as u8;
        let op = match &o[o.len() - 2..] {
            "eq" if neg => TtlOp::Ne,
            "eq" => TtlOp::Eq,
            "lt" => TtlOp::Lt,
            _ => TtlOp::Gt,
        };
        if neg && op != TtlOp::Ne {
            return no_neg(neg, o);
        }
        if self.got.is_some() {
            return Err(format!("-m {} takes one comparison", self.name()));
        }
        self.got = Some(Ttl {
            v6: self.v6,
            op,
            value,
        });
        Ok(())
    }
    fn finish(&mut self) -> R<Ext> {
        let name = self.name();
        self.got
            .map(Ext::Ttl)
            .ok_or_else(|| format!("-m {name} needs --{name}-eq, --{name}-lt or --{name}-gt"))
    }
}

impl TtlReader {
    fn name(&self) -> &'static str {
        if self.v6 { "hl" } else { "ttl" }
    }
}

/// `-m tos --tos VALUE[/MASK]`: `tos & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tos {
    pub neg: bool,
    pub value: u8,
    pub mask: u8,
}

impl Tos {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::masked(
            Field::Tos,
            self.neg,
            self.mask.into(),
            self.value.into(),
        )]
    }
}

impl fmt::Display for Tos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " -m tos{} --tos {:#04x}/{:#04x}",
            bang(self.neg),
            self.value,
            self.mask
        )
    }
}

/// The TOS names of RFC 1349, compared under the TOS field's mask.
const TOS_NAMES: [(&str, u8); 5] = [
    ("Minimize-Delay", 0x10),
    ("Maximize-Throughput", 0x08),
    ("Maximize-Reliability", 0x04),
    ("Minimize-Cost", 0x02),
    ("Normal-Service", 0x00),
];

#[derive(Default)]
pub(super) struct TosReader(Option<Tos>);

impl Reader for TosReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--tos").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let (value, mask) =
            if let Some((_, t)) = TOS_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(&v)) {
                (*t, 0x3f)
            } else {
                match v.split_once('/') {
                    Some((a, m)) => (num(a, o, 255)? as u8, num(m, o, 255)? as u8),
                    None => (num(&v, o, 255)? as u8, 0xff),
                }
            };
        once(&mut self.0, Tos { neg, value, mask }, o)
    }
    fn finish(&mut self) -> R<Ext> {
        self.0.map(Ext::Tos).ok_or("-m tos needs --tos".into())
    }
}

/// `-m dscp --dscp N` / `--dscp-class CLASS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dscp {
    pub neg: bool,
    pub value: u8,
}

impl Dscp {
    pub(super) fn lower(&self) -> Vec<Expr> {
        let v = u32::from(self.value);
        vec![Expr::range(Field::Dscp, self.neg, v, v)]
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " -m dscp{} --dscp {:#04x}", bang(self.neg), self.value)
    }
}

/// The DSCP classes `--dscp-class` knows (RFC 2474, 2597, 3246).
fn dscp_class(s: &str) -> Option<u8> {
    let s = s.to_ascii_uppercase();
    match s.as_str() {
        "BE" => Some(0),
        "EF" => Some(46),
        _ => {
            if let Some(n) = s.strip_prefix("CS") {
                let n: u8 = n.parse().ok().filter(|&n| n <= 7)?;
                return Some(n << 3);
            }
            let n = s.strip_prefix("AF")?;
            let (c, d) = (
                n.get(..1)?.parse::<u8>().ok()?,
                n.get(1..)?.parse::<u8>().ok()?,
            );
            ((1..=4).contains(&c) && (1..=3).contains(&d)).then_some(c << 3 | d << 1)
        }
    }
}

#[derive(Default)]
pub(super) struct DscpReader(Option<Dscp>);

impl Reader for DscpReader {
    fn takes(&self, o: &str) -> Option<bool> {
        matches!(o, "--dscp" | "--dscp-class").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let value = if o == "--dscp" {
            num(&v, o, 63)? as u8
        } else {
            dscp_class(&v)
                .ok_or_else(|| format!("unknown --dscp-class {v:?} (BE, EF, CS0-CS7, AF11-AF43)"))?
        };
        if self.0.is_some() {
            return Err("-m dscp takes one of --dscp, --dscp-class".into());
        }
        self.0 = Some(Dscp { neg, value });
        Ok(())
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::Dscp)
            .ok_or("-m dscp needs --dscp or --dscp-class".into())
    }
}

/// `-m pkttype --pkt-type TYPE`: 0 unicast (to this host), 1 broadcast,
/// 2 multicast, 3 other host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktType {
    pub neg: bool,
    pub kind: u8,
}

const PKT_TYPES: [(&str, u8); 5] = [
    ("unicast", 0),
    ("broadcast", 1),
    ("multicast", 2),
    ("otherhost", 3),
    ("host", 0),
];

impl PktType {
    pub(super) fn lower(&self) -> Vec<Expr> {
        let k = u32::from(self.kind);
        vec![Expr::range(Field::PktType, self.neg, k, k)]
    }
}

impl fmt::Display for PktType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = PKT_TYPES
            .iter()
            .find(|(_, k)| *k == self.kind)
            .map_or("unicast", |(n, _)| n);
        write!(f, " -m pkttype{} --pkt-type {name}", bang(self.neg))
    }
}

#[derive(Default)]
pub(super) struct PktTypeReader(Option<PktType>);

impl Reader for PktTypeReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--pkt-type").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let kind = PKT_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&v))
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("unknown --pkt-type {v:?} (unicast, broadcast, multicast)"))?;
        once(&mut self.0, PktType { neg, kind }, o)
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::PktType)
            .ok_or("-m pkttype needs --pkt-type".into())
    }
}

/// `-m mac --mac-source XX:XX:XX:XX:XX:XX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac {
    pub neg: bool,
    pub addr: [u8; 6],
}

impl Mac {
    pub(super) fn lower(&self, hook: Option<Hook>) -> R<Vec<Expr>> {
        if let Some(h @ (Hook::Output | Hook::Postrouting)) = hook {
            return Err(format!(
                "-m mac cannot be used in {}: as in iptables, only PREROUTING, INPUT and FORWARD see a source MAC",
                h.name()
            ));
        }
        let v = self.addr.iter().fold(0u128, |a, &b| a << 8 | u128::from(b));
        Ok(vec![Expr::Cmp {
            field: Field::SrcMac,
            neg: self.neg,
            mask: (1 << 48) - 1,
            lo: v,
            hi: v,
        }])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.addr;
        write!(
            f,
            " -m mac{} --mac-source {:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            bang(self.neg),
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            a[5]
        )
    }
}

#[derive(Default)]
pub(super) struct MacReader(Option<Mac>);

impl Reader for MacReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--mac-source").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let bad = || format!("invalid --mac-source {v:?} (XX:XX:XX:XX:XX:XX)");
        let parts: Vec<&str> = v.split(':').collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut addr = [0u8; 6];
        for (b, p) in addr.iter_mut().zip(parts) {
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        once(&mut self.0, Mac { neg, addr }, o)
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::Mac)
            .ok_or("-m mac needs --mac-source".into())
    }
}

/// One side of `-m iprange`: `!`, first and last address.
pub type Range = (bool, IpAddr, IpAddr);

/// `-m iprange --src-range A-B --dst-range A-B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpRange {
    pub src: Option<Range>,
    pub dst: Option<Range>,
}

impl IpRange {
    pub(super) fn family(&self) -> Option<bool> {
        self.src.or(self.dst).map(|(_, a, _)| a.is_ipv6())
    }

    pub(super) fn lower(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        for (field, r) in [(Field::Saddr, self.src), (Field::Daddr, self.dst)] {
            if let Some((neg, a, b)) = r {
                out.push(Expr::InRanges {
                    field,
                    alt: None,
                    neg,
                    ranges: vec![(ip_key(a), ip_key(b))],
                });
            }
        }
        out
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(" -m iprange")?;
        for (o, r) in [("--src-range", self.src), ("--dst-range", self.dst)] {
            if let Some((neg, a, b)) = r {
                write!(f, "{} {o} {a}-{b}", bang(neg))?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct IpRangeReader(IpRange);

impl Reader for IpRangeReader {
    fn takes(&self, o: &str) -> Option<bool> {
        matches!(o, "--src-range" | "--dst-range").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let bad = || format!("invalid {o} {v:?} (FIRST-LAST addresses of one family)");
        let (a, b) = match v.split_once('-') {
            Some((a, b)) => (a.parse::<IpAddr>(), b.parse::<IpAddr>()),
            None => (v.parse(), v.parse()),
        };
        let (a, b) = (a.map_err(|_| bad())?, b.map_err(|_| bad())?);
        if a.is_ipv6() != b.is_ipv6() {
            return Err(bad());
        }
        if ip_key(a) > ip_key(b) {
            return Err(format!("{o} {v} is reversed"));
        }
        let slot = if o == "--src-range" {
            &mut self.0.src
        } else {
            &mut self.0.dst
        };
        once(slot, (neg, a, b), o)?;
        if let (Some(s), Some(d)) = (self.0.src, self.0.dst)
            && s.1.is_ipv6() != d.1.is_ipv6()
        {
            return Err("-m iprange mixes IPv4 and IPv6".into());
        }
        Ok(())
    }
    fn finish(&mut self) -> R<Ext> {
        if self.0.src.is_none() && self.0.dst.is_none() {
            return Err("-m iprange needs --src-range or --dst-range".into());
        }
        Ok(Ext::IpRange(self.0))
    }
}

/// `-m addrtype --src-type TYPES --dst-type TYPES`: [`addr_type`] bits,
/// each side with its `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrType {
    pub src: Option<(bool, u16)>,
    pub dst: Option<(bool, u16)>,
}

impl AddrType {
    pub(super) fn lower(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        for (field, t) in [(Field::SrcType, self.src), (Field::DstType, self.dst)] {
            if let Some((neg, bits)) = t {
                out.push(Expr::Bits {
                    field,
                    neg,
                    bits: bits.into(),
                });
            }
        }
        out
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(" -m addrtype")?;
        for (o, t) in [("--src-type", self.src), ("--dst-type", self.dst)] {
            if let Some((neg, bits)) = t {
                let names: Vec<&str> = addr_type::NAMES
                    .iter()
                    .filter(|(_, b)| bits & b != 0)
                    .map(|(n, _)| *n)
                    .collect();
                write!(f, "{} {o} {}", bang(neg), names.join(","))?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct AddrTypeReader(AddrType);

impl Reader for AddrTypeReader {
    fn takes(&self, o: &str) -> Option<bool> {
        match o {
            "--src-type" | "--dst-type" => Some(true),
            "--limit-iface-in" | "--limit-iface-out" => Some(false),
            _ => None,
        }
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        if o.starts_with("--limit-iface") {
            return Err(format!(
                "-m addrtype {o} is not supported: xgate tests address types against all of the router's addresses, not one interface's"
            ));
        }
        let v = val(v, o)?;
        let mut bits = 0u16;
        for name in v.split(',') {
            let (_, b) = addr_type::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!("unknown address type {name:?} in {o} (LOCAL, UNICAST, BROADCAST, MULTICAST, ...)")
                })?;
            bits |= b;
        }
        for (name, b) in [
            ("ANYCAST", addr_type::ANYCAST),
            ("UNSPEC", addr_type::UNSPEC),
        ] {
            if bits & b != 0 {
                return Err(format!(
                    "address type {name} in {o} is not supported: xgate's routes have no such type"
                ));
            }
        }
        let slot = if o == "--src-type" {
            &mut self.0.src
        } else {
            &mut self.0.dst
        };
        once(slot, (neg, bits), o)
    }
    fn finish(&mut self) -> R<Ext> {
        if self.0.src.is_none() && self.0.dst.is_none() {
            return Err("-m addrtype needs --src-type or --dst-type".into());
        }
        Ok(Ext::AddrType(self.0))
    }
}
