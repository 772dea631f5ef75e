//! Match options: addresses, interfaces, protocol, ports, TCP flags, ICMP
//! types and the match modules (multiport, state/conntrack, statistic,
//! mark, comment), and what each needs once the line is read: its module
//! (`-m`), its protocol (`-p`), one address family.

use std::collections::HashSet;

use ipnet::IpNet;

use super::super::ext::{self, Reader};
use super::super::model::*;
use super::R;
use super::values::{
    Cursor, parse_flags, parse_icmp_type, parse_iface, parse_mark, parse_net, parse_port_list,
    parse_port_range, parse_proto, parse_states, set,
};

const MAX_COMMENT: usize = 256;

/// `-m statistic` options, checked together once the line is read.
#[derive(Default)]
struct StatOpts {
    mode: Option<String>,
    every: Option<(bool, String)>,
    packet: Option<String>,
    probability: Option<(bool, String)>,
}

/// A rule's match options as read so far.
#[derive(Default)]
pub(super) struct MatchOpts {
    m: Matches,
    modules: HashSet<String>,
    stat: StatOpts,
    /// `!` before `--every` or `--probability`.
    stat_neg: bool,
    /// Options that need a module or protocol, checked once the line is read.
    needs: Vec<(&'static str, String)>,
    /// The readers of the other modules (`super::super::ext`), in `-m`
    /// order; an option goes to the last one that takes it.
    readers: Vec<(String, Box<dyn Reader>)>,
    /// Options given to each reader (by index).
    used: Vec<usize>,
    /// Every `-m` in order.
    order: Vec<String>,
}

/// The one address family a rule's parts name (`Some(true)`: IPv6).
#[derive(Default)]
pub(super) struct Family(Option<bool>);

impl Family {
    /// `what` names family `v6`: an error if another part named the other.
    pub(super) fn check(&mut self, v6: bool, what: &str) -> R<()> {
        match self.0 {
            Some(f) if f != v6 => Err(format!("{what} mixes IPv4 and IPv6 in one rule")),
            _ => {
                self.0 = Some(v6);
                Ok(())
            }
        }
    }
}

impl MatchOpts {
    /// `-m NAME`.
    pub(super) fn module(&mut self, v: String) -> R<()> {
        self.order.push(v.clone());
        if let Some(r) = ext::reader(&v) {
            if self.readers.iter().any(|(n, _)| *n == v) {
                return Err(format!("-m {v} given twice"));
            }
            self.readers.push((v.clone(), r));
            self.used.push(0);
            if v != "conntrack" {
                return Ok(());
            }
        } else if !matches!(
            v.as_str(),
            "tcp"
                | "udp"
                | "icmp"
                | "icmp6"
                | "multiport"
                | "state"
                | "conntrack"
                | "statistic"
                | "mark"
                | "comment"
        ) {
            return Err(format!("unsupported match module -m {v}"));
        }
        self.modules.insert(v);
        Ok(())
    }

    /// `--syn` (`n`: negated), the one match option without a value.
    pub(super) fn syn(&mut self, o: &str, n: bool) -> R<()> {
        self.needs.push(("tcp", o.into()));
        let f = TcpFlags {
            mask: tcp_flag::FIN | tcp_flag::SYN | tcp_flag::RST | tcp_flag::ACK,
            comp: tcp_flag::SYN,
        };
        set(&mut self.m.tcp_flags, Neg::new(n, f), "--tcp-flags/--syn")
    }

    /// Match option `o` with value `v` (`n`: negated); `--tcp-flags` reads
    /// its second value from `cur`.
    pub(super) fn option(&mut self, o: &str, n: bool, v: String, cur: &mut Cursor) -> R<()> {
        // `-m connmark --mark`: the last of the two modules given takes
        // it, as iptables reads options.
        if o == "--mark" && self.connmark_last() {
            return self.ext_option(o, n, Some(v));
        }
        let m = &mut self.m;
        match o {
            "-s" | "--source" | "--src" => set(&mut m.src, Neg::new(n, parse_net(&v)?), "-s"),
            "-d" | "--destination" | "--dst" => set(&mut m.dst, Neg::new(n, parse_net(&v)?), "-d"),
            "-i" | "--in-interface" => set(&mut m.in_iface, Neg::new(n, parse_iface(&v)?), "-i"),
            "-o" | "--out-interface" => set(&mut m.out_iface, Neg::new(n, parse_iface(&v)?), "-o"),
            "-p" | "--protocol" => set(&mut m.protocol, Neg::new(n, parse_proto(&v)?), "-p"),
            "--sport" | "--source-port" => {
                self.needs.push(("tcp/udp", o.into()));
                set(&mut m.sport, Neg::new(n, parse_port_range(&v, ':')?), o)
            }
            "--dport" | "--destination-port" => {
                self.needs.push(("tcp/udp", o.into()));
                set(&mut m.dport, Neg::new(n, parse_port_range(&v, ':')?), o)
            }
            "--tcp-flags" => {
                self.needs.push(("tcp", o.into()));
                // Not negatable: the `!` of the first value stays.
                let mut second = n;
                let comp = cur.value(o, &mut second, false)?;
                let f = TcpFlags {
                    mask: parse_flags(&v)?,
                    comp: parse_flags(&comp)?,
                };
                set(&mut m.tcp_flags, Neg::new(n, f), "--tcp-flags/--syn")
            }
            "--icmp-type" => {
                self.needs.push(("icmp", o.into()));
                set(
                    &mut m.icmp_type,
                    Neg::new(n, parse_icmp_type(&v, false)?),
                    o,
                )
            }
            "--icmpv6-type" => {
                self.needs.push(("icmpv6", o.into()));
                set(&mut m.icmp_type, Neg::new(n, parse_icmp_type(&v, true)?), o)
            }
            "--dports" | "--destination-ports" | "--sports" | "--source-ports" | "--ports" => {
                self.needs.push(("multiport", o.into()));
                let dir = match o {
                    "--dports" | "--destination-ports" => PortDir::Dst,
                    "--sports" | "--source-ports" => PortDir::Src,
                    _ => PortDir::Either,
                };
                let ports = parse_port_list(&v)?;
                set(
                    &mut m.multiport,
                    Neg::new(n, Multiport { dir, ports }),
                    "--dports/--sports/--ports",
                )
            }
            "--state" | "--ctstate" => {
                let module = if o == "--state" { "state" } else { "conntrack" };
                self.needs.push((module, o.into()));
                set(
                    &mut m.ctstate,
                    Neg::new(n, parse_states(&v)?),
                    "--state/--ctstate",
                )
            }
            "--mode" | "--every" | "--packet" | "--probability" => self.statistic(o, n, v),
            "--mark" => {
                self.needs.push(("mark", o.into()));
                set(&mut m.mark, Neg::new(n, parse_mark(&v)?), o)
            }
            "--comment" => {
                self.needs.push(("comment", o.into()));
                if v.len() > MAX_COMMENT {
                    return Err(format!("--comment is longer than {MAX_COMMENT} bytes"));
                }
                set(&mut m.comment, v, o)
            }
            _ => self.ext_option(o, n, Some(v)),
        }
    }

    /// Whether `-m connmark` came after any `-m mark`.
    fn connmark_last(&self) -> bool {
        self.order
            .iter()
            .rev()
            .find(|m| *m == "mark" || *m == "connmark")
            .is_some_and(|m| m == "connmark")
    }

    /// Whether `o` is a flag (no value) of a module given so far.
    pub(super) fn ext_flag(&self, o: &str) -> bool {
        self.readers
            .iter()
            .rev()
            .find_map(|(_, r)| r.takes(o))
            .is_some_and(|value| !value)
    }

    /// Whether a module given so far takes option `o` with a value.
    pub(super) fn ext_takes_value(&self, o: &str) -> bool {
        self.readers
            .iter()
            .rev()
            .find_map(|(_, r)| r.takes(o))
            .unwrap_or(false)
    }

    /// An option of the other modules: the last one given that takes it.
    pub(super) fn ext_option(&mut self, o: &str, n: bool, v: Option<String>) -> R<()> {
        match self.readers.iter().rposition(|(_, r)| r.takes(o).is_some()) {
            Some(i) => {
                self.used[i] += 1;
                self.readers[i].1.option(o, n, v)
            }
            None if ext::is_option(o) => Err(format!(
                "option {o} needs its -m module before it (see iptables-extensions(8))"
            )),
            None => Err(format!("unsupported option {o}")),
        }
    }

    /// `-m statistic` options; the `!` of `--every` / `--probability`
    /// negates the whole match.
    fn statistic(&mut self, o: &str, n: bool, v: String) -> R<()> {
        self.needs.push(("statistic", o.into()));
        let s = &mut self.stat;
        match o {
            "--mode" => set(&mut s.mode, v, o),
            "--every" => set(&mut s.every, (n, v), o),
            "--packet" => set(&mut s.packet, v, o),
            _ => set(&mut s.probability, (n, v), o),
        }?;
        if o == "--every" || o == "--probability" {
            self.stat_neg |= n;
        }
        Ok(())
    }

    /// The protocol of `-p` (not negated).
    pub(super) fn protocol(&self) -> Option<Protocol> {
        self.m
            .protocol
            .as_ref()
            .and_then(|p| (!p.negated).then_some(p.value))
    }

    /// The matches, once the line is read: every option has its module
    /// and protocol, every module its options, and the parts one family.
    pub(super) fn finish(mut self) -> R<(Matches, Family)> {
        let proto = self.protocol();
        self.check_modules(proto)?;
        self.check_needs(proto)?;
        if self.m.multiport.is_some() && !matches!(proto, Some(Protocol::Tcp | Protocol::Udp)) {
            return Err("-m multiport needs -p tcp or -p udp".into());
        }
        self.check_used()?;
        if let Some(mode) = &self.stat.mode {
            self.m.statistic = Some(Neg::new(self.stat_neg, parse_statistic(mode, &self.stat)?));
        }
        for (i, (name, r)) in self.readers.iter_mut().enumerate() {
            // `-m conntrack` with only `--ctstate` is the base match.
            if name == "conntrack" && self.used[i] == 0 {
                continue;
            }
            self.m.ext.push(r.finish()?);
        }
        let family = family(&self.m, proto)?;
        Ok((self.m, family))
    }

    /// `-m tcp` and the like need their `-p`.
    fn check_modules(&self, proto: Option<Protocol>) -> R<()> {
        for module in ["tcp", "udp", "icmp", "icmp6"] {
            if self.modules.contains(module) {
                let ok = match module {
                    "tcp" => proto == Some(Protocol::Tcp),
                    "udp" => proto == Some(Protocol::Udp),
                    "icmp" => proto == Some(Protocol::Icmp),
                    _ => proto == Some(Protocol::Icmpv6),
                };
                if !ok {
                    let p = if module == "icmp6" { "icmpv6" } else { module };
                    return Err(format!("-m {module} needs -p {p}"));
                }
            }
        }
        Ok(())
    }

    /// Each option's protocol or module.
    fn check_needs(&self, proto: Option<Protocol>) -> R<()> {
        for (need, o) in &self.needs {
            let ok = match *need {
                "tcp/udp" => matches!(proto, Some(Protocol::Tcp | Protocol::Udp)),
                "tcp" => proto == Some(Protocol::Tcp),
                "icmp" => proto == Some(Protocol::Icmp),
                "icmpv6" => proto == Some(Protocol::Icmpv6),
                module => self.modules.contains(module),
            };
            if !ok {
                let what = match *need {
                    "tcp/udp" => "-p tcp or -p udp".to_string(),
                    "tcp" | "icmp" | "icmpv6" => format!("-p {need}"),
                    module => format!("-m {module}"),
                };
                return Err(format!("option {o} needs {what}"));
            }
        }
        Ok(())
    }

    /// A module given with `-m` has its option.
    fn check_used(&self) -> R<()> {
        let m = &self.m;
        let ct_used = self
            .readers
            .iter()
            .zip(&self.used)
            .any(|((n, _), &u)| n == "conntrack" && u > 0);
        for (module, present) in [
            ("state", m.ctstate.is_some()),
            ("conntrack", m.ctstate.is_some() || ct_used),
            ("multiport", m.multiport.is_some()),
            ("statistic", self.stat.mode.is_some()),
            ("mark", m.mark.is_some()),
            ("comment", m.comment.is_some()),
        ] {
            if self.modules.contains(module) && !present {
                let o = match module {
                    "state" => "--state",
                    "conntrack" => "--ctstate",
                    "multiport" => "--dports, --sports or --ports",
                    "statistic" => "--mode",
                    "mark" => "--mark",
                    _ => "--comment",
                };
                return Err(format!("-m {module} needs {o}"));
            }
        }
        Ok(())
    }
}

/// The family the addresses and the protocol name, if any; an error if
/// they name both.
fn family(m: &Matches, proto: Option<Protocol>) -> R<Family> {
    let mut fam = Family::default();
    if let Some(s) = &m.src {
        fam.check(matches!(s.value, IpNet::V6(_)), "-s")?;
    }
    if let Some(d) = &m.dst {
        fam.check(matches!(d.value, IpNet::V6(_)), "-d")?;
    }
    match proto {
        Some(Protocol::Icmp) => fam.check(false, "-p icmp")?,
        Some(Protocol::Icmpv6) => fam.check(true, "-p icmpv6")?,
        _ => {}
    }
    for x in &m.ext {
        if let Some(v6) = x.family() {
            fam.check(v6, &x.to_string())?;
        }
    }
    Ok(fam)
}

fn parse_statistic(mode: &str, s: &StatOpts) -> R<Statistic> {
    match mode {
        "nth" => {
            if s.probability.is_some() {
                return Err("--probability needs --mode random".into());
            }
            let (_, every) = s.every.as_ref().ok_or("--mode nth needs --every N")?;
            let every = every
                .parse::<u32>()
                .ok()
                .filter(|&e| e >= 1)
                .ok_or_else(|| format!("invalid --every {every:?} (a number >= 1)"))?;
            let packet = match &s.packet {
                None => 0,
                Some(p) => p
                    .parse::<u32>()
                    .map_err(|_| format!("invalid --packet {p:?}"))?,
            };
            if packet >= every {
                return Err(format!(
                    "--packet {packet} must be less than --every {every}"
                ));
            }
            Ok(Statistic::Nth { every, packet })
        }
        "random" => {
            if s.every.is_some() || s.packet.is_some() {
                return Err("--every/--packet need --mode nth".into());
            }
            let (_, p) = s
                .probability
                .as_ref()
                .ok_or("--mode random needs --probability P")?;
            let probability = p
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| format!("invalid --probability {p:?} (0.0 to 1.0)"))?;
            Ok(Statistic::Random { probability })
        }
        other => Err(format!("unsupported --mode {other:?} (nth or random)")),
    }
}
