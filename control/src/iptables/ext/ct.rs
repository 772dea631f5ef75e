//! `-m conntrack` beyond `--ctstate` (which the base matches read): the
//! connection's protocol, original and reply addresses and ports, status
//! and direction. `--ctproto` tests the packet's protocol, which is the
//! connection's except for an ICMP error RELATED to it.

use std::fmt;

use ipnet::IpNet;
use xgate_dataplane::addr::ip_key;
use xgate_dataplane::filter::{Expr, Field, ct_status};

use super::{Ext, R, Reader, bang, num, once, val};

/// `-m connmark --mark VALUE[/MASK]`: `ctmark & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connmark {
    pub neg: bool,
    pub value: u32,
    pub mask: u32,
}

impl Connmark {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::masked(Field::CtMark, self.neg, self.mask, self.value)]
    }
}

impl fmt::Display for Connmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " -m connmark{} --mark {:#x}", bang(self.neg), self.value)?;
        if self.mask != u32::MAX {
            write!(f, "/{:#x}", self.mask)?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct ConnmarkReader(Option<Connmark>);

impl Reader for ConnmarkReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--mark").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let (value, mask) = match v.split_once('/') {
            Some((a, m)) => (num(a, o, u32::MAX)?, num(m, o, u32::MAX)?),
            None => (num(&v, o, u32::MAX)?, u32::MAX),
        };
        once(&mut self.0, Connmark { neg, value, mask }, o)
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::Connmark)
            .ok_or("-m connmark needs --mark".into())
    }
}

/// An address option: `!`, prefix.
type AddrOpt = Option<(bool, IpNet)>;
/// A port option: `!`, first and last port.
type PortOpt = Option<(bool, u16, u16)>;

/// The options of `-m conntrack` other than `--ctstate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conntrack {
    pub proto: Option<(bool, u8)>,
    pub orig_src: AddrOpt,
    pub orig_dst: AddrOpt,
    pub repl_src: AddrOpt,
    pub repl_dst: AddrOpt,
    pub orig_sport: PortOpt,
    pub orig_dport: PortOpt,
    pub repl_sport: PortOpt,
    pub repl_dport: PortOpt,
    /// [`ct_status`] bits.
    pub status: Option<(bool, u32)>,
    /// `Some(true)`: REPLY.
    pub reply: Option<bool>,
}

const ADDRS: [(&str, Field); 4] = [
    ("--ctorigsrc", Field::CtOrigSaddr),
    ("--ctorigdst", Field::CtOrigDaddr),
    ("--ctreplsrc", Field::CtReplSaddr),
    ("--ctrepldst", Field::CtReplDaddr),
];

const PORTS: [(&str, Field); 4] = [
    ("--ctorigsrcport", Field::CtOrigSport),
    ("--ctorigdstport", Field::CtOrigDport),
    ("--ctreplsrcport", Field::CtReplSport),
    ("--ctrepldstport", Field::CtReplDport),
];

impl Conntrack {
    fn addrs(&self) -> [AddrOpt; 4] {
        [self.orig_src, self.orig_dst, self.repl_src, self.repl_dst]
    }

    fn ports(&self) -> [PortOpt; 4] {
        [
            self.orig_sport,
            self.orig_dport,
            self.repl_sport,
            self.repl_dport,
        ]
    }

    pub(super) fn family(&self) -> Option<bool> {
        self.addrs()
            .into_iter()
            .flatten()
            .next()
            .map(|(_, n)| matches!(n, IpNet::V6(_)))
    }

    pub(super) fn lower(&self) -> R<Vec<Expr>> {
        let mut out = Vec::new();
        if let Some((neg, p)) = self.proto {
            out.push(Expr::range(Field::L4Proto, neg, p.into(), p.into()));
        }
        for ((_, field), a) in ADDRS.iter().zip(self.addrs()) {
            if let Some((neg, net)) = a {
                let len =
                    u32::from(net.prefix_len()) + if matches!(net, IpNet::V4(_)) { 96 } else { 0 };
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let v = ip_key(net.addr()) & mask;
                out.push(Expr::Cmp {
                    field: *field,
                    neg,
                    mask,
                    lo: v,
                    hi: v,
                });
            }
        }
        for ((_, field), p) in PORTS.iter().zip(self.ports()) {
            if let Some((neg, lo, hi)) = p {
                out.push(Expr::range(*field, neg, lo.into(), hi.into()));
            }
        }
        if let Some((neg, bits)) = self.status {
            out.push(Expr::Bits {
                field: Field::CtStatus,
                neg,
                bits,
            });
        }
        if let Some(reply) = self.reply {
            out.push(Expr::eq(Field::CtDir, u32::from(reply)));
        }
        Ok(out)
    }
}

impl fmt::Display for Conntrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " -m conntrack{}", Options(self))
    }
}

/// The options alone, for a rule that prints `--ctstate` in the same
/// `-m conntrack` (as iptables-save does).
pub struct Options<'a>(pub &'a Conntrack);

impl fmt::Display for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = self.0;
        if let Some((neg, p)) = this.proto {
            write!(f, "{} --ctproto {p}", bang(neg))?;
        }
        for ((o, _), a) in ADDRS.iter().zip(this.addrs()) {
            if let Some((neg, net)) = a {
                write!(f, "{} {o} {net}", bang(neg))?;
            }
        }
        if let Some((neg, bits)) = this.status {
            let names: Vec<&str> = ct_status::NAMES
                .iter()
                .filter(|(_, b)| bits & b != 0)
                .map(|(n, _)| *n)
                .collect();
            let names = if names.is_empty() {
                "NONE".to_string()
            } else {
                names.join(",")
            };
            write!(f, "{} --ctstatus {names}", bang(neg))?;
        }
        for ((o, _), p) in PORTS.iter().zip(this.ports()) {
            if let Some((neg, lo, hi)) = p {
                write!(f, "{} {o} {lo}", bang(neg))?;
                if hi != lo {
                    write!(f, ":{hi}")?;
                }
            }
        }
        if let Some(reply) = this.reply {
            write!(f, " --ctdir {}", if reply { "REPLY" } else { "ORIGINAL" })?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct ConntrackReader(Conntrack);

impl Reader for ConntrackReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (matches!(o, "--ctproto" | "--ctstatus" | "--ctdir" | "--ctexpire")
            || ADDRS.iter().chain(&PORTS).any(|(n, _)| *n == o))
        .then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let v = val(v, o)?;
        let c = &mut self.0;
        if let Some(i) = ADDRS.iter().position(|(n, _)| *n == o) {
            let net = v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("invalid {o} address {v:?}"))?;
            let slot = [
                &mut c.orig_src,
                &mut c.orig_dst,
                &mut c.repl_src,
                &mut c.repl_dst,
            ]
            .into_iter()
            .nth(i)
            .expect("four address options");
            once(slot, (neg, net), o)?;
            let fams: Vec<bool> = c
                .addrs()
                .into_iter()
                .flatten()
                .map(|(_, n)| matches!(n, IpNet::V6(_)))
                .collect();
            if fams.windows(2).any(|w| w[0] != w[1]) {
                return Err("-m conntrack addresses mix IPv4 and IPv6".into());
            }
            return Ok(());
        }
        if let Some(i) = PORTS.iter().position(|(n, _)| *n == o) {
            let (lo, hi) = match v.split_once(':') {
                Some((a, b)) => (num(a, o, 65535)?, num(b, o, 65535)?),
                None => {
                    let p = num(&v, o, 65535)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("{o} range {v} is reversed"));
            }
            let slot = [
                &mut c.orig_sport,
                &mut c.orig_dport,
                &mut c.repl_sport,
                &mut c.repl_dport,
            ]
            .into_iter()
            .nth(i)
            .expect("four port options");
            return once(slot, (neg, lo as u16, hi as u16), o);
        }
        match o {
            "--ctproto" => {
                let p = match v.to_ascii_lowercase().as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    "icmp" => 1,
                    "icmpv6" | "ipv6-icmp" => 58,
                    "sctp" => 132,
                    n => num(n, o, 255)?,
                };
                once(&mut c.proto, (neg, p as u8), o)
            }
            "--ctstatus" => {
                let mut bits = 0;
                for name in v.split(',') {
                    if name.eq_ignore_ascii_case("NONE") {
                        continue;
                    }
                    let (_, b) = ct_status::NAMES
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            format!(
                                "unknown --ctstatus {name:?} (NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)"
                            )
                        })?;
                    if matches!(*b, ct_status::SNAT | ct_status::DNAT) {
                        return Err(format!(
                            "unknown --ctstatus {name:?} (NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)"
                        ));
                    }
                    if matches!(*b, ct_status::EXPECTED | ct_status::ASSURED) {
                        return Err(format!(
                            "--ctstatus {name} is not supported: xgate's connection table does not keep it"
                        ));
                    }
                    bits |= b;
                }
                once(&mut c.status, (neg, bits), o)
            }
            "--ctdir" => {
                if neg {
                    return Err("--ctdir cannot be negated with !".into());
                }
                let reply = match v.to_ascii_uppercase().as_str() {
                    "ORIGINAL" => false,
                    "REPLY" => true,
                    _ => return Err(format!("invalid --ctdir {v:?} (ORIGINAL or REPLY)")),
                };
                once(&mut c.reply, reply, o)
            }
            _ => Err(format!(
                "{o} is not supported: xgate does not expose connection timeouts to rules"
            )),
        }
    }
    fn finish(&mut self) -> R<Ext> {
        Ok(Ext::Conntrack(self.0))
    }
}
