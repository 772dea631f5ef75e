//! The target of a rule (`-j` / `-g`) and its options: ACCEPT, DROP,
//! RETURN, REJECT, LOG, MARK, the NAT targets and jumps to user chains,
//! each checked against the table it is in and the options it takes.

use super::super::model::*;
use super::matches::Family;
use super::values::{parse_log_level, parse_mark, parse_nat_spec, parse_port_range, set};
use super::{R, TARGET_NAMES};

const MAX_LOG_PREFIX: usize = 29;

/// Target options without a value.
pub(super) const TARGET_FLAGS: [&str; 13] = [
    "--log-tcp-sequence",
    "--log-tcp-options",
    "--log-ip-options",
    "--log-uid",
    "--log-macdecode",
    "--checksum-fill",
    "--clamp-mss-to-pmtu",
    "--notrack",
    "--save-mark",
    "--restore-mark",
    "--random",
    "--random-fully",
    "--persistent",
];

/// Options that belong to a target.
pub(super) const TARGET_OPTIONS: [&str; 26] = [
    "--nflog-group",
    "--nflog-prefix",
    "--nflog-range",
    "--nflog-size",
    "--nflog-threshold",
    "--ulog-nlgroup",
    "--ulog-prefix",
    "--ulog-cprange",
    "--ulog-qthreshold",
    "--helper",
    "--set-mss",
    "--nfmask",
    "--ctmask",
    "--mask",
    "--reject-with",
    "--log-prefix",
    "--log-level",
    "--set-mark",
    "--set-xmark",
    "--and-mark",
    "--or-mark",
    "--xor-mark",
    "--to-source",
    "--to-destination",
    "--to-ports",
    // getopt's unambiguous prefix of --to-source / --to-destination.
    "--to",
];

/// A rule's target options as read; each is taken by the target that
/// uses it, and any left over is an error.
#[derive(Default)]
pub(super) struct TargetOpts {
    reject_with: Option<String>,
    log_prefix: Option<String>,
    log_level: Option<String>,
    /// LOG's flags ([`LOG_FLAGS`] bits).
    log_flags: u8,
    /// NFLOG's and ULOG's options: group, prefix, copy range, threshold
    /// (`(option, value)`; `--nflog-size` is `--nflog-range`'s newer name).
    nflog: [Option<(String, String)>; 4],
    /// MARK's one option: (option, value).
    set_mark: Option<(String, String)>,
    to_source: Option<String>,
    to_destination: Option<String>,
    to_ports: Option<String>,
    to: Option<String>,
    /// CT's `--helper` and `--notrack`.
    helper: Option<String>,
    notrack: bool,
    /// CONNMARK's `--nfmask`, `--ctmask`, `--mask`.
    nfmask: Option<String>,
    ctmask: Option<String>,
    mask: Option<String>,
    /// CONNMARK's `--save-mark` (false) or `--restore-mark` (true).
    save_restore: Option<bool>,
    /// TCPMSS's `--set-mss` and `--clamp-mss-to-pmtu`.
    set_mss: Option<String>,
    clamp_mss: bool,
    /// [`TARGET_FLAGS`] given.
    checksum_fill: bool,
    nat_flags: NatFlags,
}

impl TargetOpts {
    /// Target option `o` (one of [`TARGET_OPTIONS`]) with value `v`.
    pub(super) fn option(&mut self, o: &str, v: String) -> R<()> {
        if let Some(i) = nflog_slot(o) {
            if self.nflog[i].is_some() {
                return Err(format!("option {o} given twice"));
            }
            self.nflog[i] = Some((o.to_string(), v));
            return Ok(());
        }
        let slot = match o {
            "--reject-with" => &mut self.reject_with,
            "--log-prefix" => &mut self.log_prefix,
            "--log-level" => &mut self.log_level,
            "--set-mark" | "--set-xmark" | "--and-mark" | "--or-mark" | "--xor-mark" => {
                if self.set_mark.is_some() {
                    return Err(
                        "target MARK takes one of --set-mark, --set-xmark, --and-mark, --or-mark, --xor-mark"
                            .into(),
                    );
                }
                self.set_mark = Some((o.to_string(), v));
                return Ok(());
            }
            "--helper" => &mut self.helper,
            "--set-mss" => &mut self.set_mss,
            "--nfmask" => &mut self.nfmask,
            "--ctmask" => &mut self.ctmask,
            "--mask" => &mut self.mask,
            "--to-source" => &mut self.to_source,
            "--to-destination" => &mut self.to_destination,
            "--to-ports" => &mut self.to_ports,
            "--to" => &mut self.to,
            _ => return Err(format!("unsupported option {o}")),
        };
        set(slot, v, o)
    }

    /// Target flag `o` (one of [`TARGET_FLAGS`]).
    pub(super) fn flag(&mut self, o: &str) -> R<()> {
        if let Some(&(_, bit)) = LOG_FLAGS.iter().find(|(n, _)| *n == o) {
            if self.log_flags & bit != 0 {
                return Err(format!("option {o} given twice"));
            }
            self.log_flags |= bit;
            return Ok(());
        }
        let bit = match o {
            "--notrack" => {
                if std::mem::replace(&mut self.notrack, true) {
                    return Err(format!("option {o} given twice"));
                }
                return Ok(());
            }
            "--save-mark" | "--restore-mark" => {
                if self.save_restore.is_some() {
                    return Err("target CONNMARK takes one of --save-mark, --restore-mark".into());
                }
                self.save_restore = Some(o == "--restore-mark");
                return Ok(());
            }
            "--clamp-mss-to-pmtu" => {
                if std::mem::replace(&mut self.clamp_mss, true) {
                    return Err(format!("option {o} given twice"));
                }
                return Ok(());
            }
            "--checksum-fill" => {
                if self.checksum_fill {
                    return Err(format!("option {o} given twice"));
                }
                self.checksum_fill = true;
                return Ok(());
            }
            "--random" => NatFlags::RANDOM,
            "--random-fully" => NatFlags::RANDOM_FULLY,
            _ => NatFlags::PERSISTENT,
        };
        if self.nat_flags.0 & bit != 0 {
            return Err(format!("option {o} given twice"));
        }
        self.nat_flags.0 |= bit;
        Ok(())
    }

    /// An option no target took: not valid for target `tname`.
    fn check_taken(&self, tname: &str) -> R<()> {
        for (opt, v) in [
            ("--reject-with", &self.reject_with),
            ("--log-prefix", &self.log_prefix),
            ("--log-level", &self.log_level),
            (
                "--set-mark",
                &self.set_mark.as_ref().map(|(o, _)| o.clone()),
            ),
            ("--to-source", &self.to_source),
            ("--to-destination", &self.to_destination),
            ("--to-ports", &self.to_ports),
            ("--to", &self.to),
            ("--helper", &self.helper),
            ("--set-mss", &self.set_mss),
            ("--clamp-mss-to-pmtu", &self.clamp_mss.then(String::new)),
            (
                "--log-tcp-sequence/--log-tcp-options/--log-ip-options/--log-uid/--log-macdecode",
                &(self.log_flags != 0).then(String::new),
            ),
            (
                self.nflog
                    .iter()
                    .flatten()
                    .next()
                    .map_or("", |(o, _)| o.as_str()),
                &self.nflog.iter().flatten().next().map(|(_, v)| v.clone()),
            ),
            ("--notrack", &self.notrack.then(String::new)),
            ("--nfmask", &self.nfmask),
            ("--ctmask", &self.ctmask),
            ("--mask", &self.mask),
            (
                "--save-mark/--restore-mark",
                &self.save_restore.map(|r| r.to_string()),
            ),
        ] {
            if v.is_some() {
                let t = if tname.is_empty() { "(no -j)" } else { tname };
                return Err(format!("option {opt} is not valid for target {t}"));
            }
        }
        let t = if tname.is_empty() { "(no -j)" } else { tname };
        if self.checksum_fill {
            return Err(format!(
                "option --checksum-fill is not valid for target {t}"
            ));
        }
        for (opt, bit) in NatFlags::NAMES {
            if self.nat_flags.0 & bit != 0 {
                return Err(format!("option {opt} is not valid for target {t}"));
            }
        }
        Ok(())
    }
}

/// What a target is checked against: its name, the table, the rule's
/// protocol (`-p`, not negated).
struct Ctx<'a> {
    tname: &'a str,
    table: TableKind,
    proto: Option<Protocol>,
}

/// The target `name` (`(name, goto)`: from `-j`, or `-g` when `goto`)
/// with its options `o`, in `table`; a target of one family must agree
/// with `fam`, the family of the matches.
pub(super) fn build_target(
    name: Option<(String, bool)>,
    mut o: TargetOpts,
    table: TableKind,
    proto: Option<Protocol>,
    fam: &mut Family,
) -> R<(Target, NatFlags)> {
    let tname: String = name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
    let cx = Ctx {
        tname: &tname,
        table,
        proto,
    };
    let target = match name {
        None => Target::None,
        Some((n, true)) => {
            if TARGET_NAMES.contains(&n.as_str()) {
                return Err(format!("-g needs a user chain, not {n}"));
            }
            Target::Goto(n)
        }
        Some((n, false)) => match n.as_str() {
            "ACCEPT" => Target::Accept,
            "DROP" => {
                if table == TableKind::Nat {
                    return Err(
                        "target DROP is not allowed in table nat (filter in table filter)".into(),
                    );
                }
                Target::Drop
            }
            "RETURN" => Target::Return,
            "REJECT" => cx.reject(&mut o, fam)?,
            "LOG" => log(&mut o)?,
            "NFLOG" | "ULOG" => nflog(&mut o, n == "ULOG")?,
            // MARK works in every table (the kernel's xt_MARK has no table
            // restriction); it is `--set-xmark` underneath.
            "MARK" => {
                let (opt, v) = o
                    .set_mark
                    .take()
                    .ok_or("target MARK needs --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark")?;
                Target::Mark(mark_op(&opt, &v)?)
            }
            "CONNMARK" => connmark(&mut o)?,
            "NOTRACK" => {
                cx.only_in(TableKind::Raw)?;
                Target::Notrack { ct_form: false }
            }
            "CT" => {
                cx.only_in(TableKind::Raw)?;
                match (o.helper.take(), std::mem::take(&mut o.notrack)) {
                    (Some(_), true) => {
                        return Err("target CT takes --notrack or --helper, not both".into());
                    }
                    (Some(h), false) => Target::CtHelper(h),
                    (None, true) => Target::Notrack { ct_form: true },
                    (None, false) => {
                        return Err(
                            "target CT needs --notrack or --helper NAME (xgate does not do --zone, --timeout, --ctevents)"
                                .into(),
                        );
                    }
                }
            }
            "MASQUERADE" => {
                cx.only_in(TableKind::Nat)?;
                Target::Masquerade {
                    ports: cx.to_ports(&mut o)?,
                }
            }
            "REDIRECT" => {
                cx.only_in(TableKind::Nat)?;
                Target::Redirect {
                    ports: cx.to_ports(&mut o)?,
                }
            }
            "SNAT" | "DNAT" => cx.snat_dnat(&mut o, fam)?,
            "TCPMSS" => {
                if !matches!(table, TableKind::Filter | TableKind::Mangle) {
                    return Err(format!(
                        "target TCPMSS: xgate runs it in tables filter and mangle, not {}",
                        table.name()
                    ));
                }
                if proto != Some(Protocol::Tcp) {
                    return Err("target TCPMSS needs -p tcp".into());
                }
                match (o.set_mss.take(), std::mem::take(&mut o.clamp_mss)) {
                    (Some(v), false) => Target::TcpMss(Some(
                        v.parse::<u16>()
                            .ok()
                            .filter(|&n| n >= 1)
                            .ok_or_else(|| format!("--set-mss {v}: a number 1..65535"))?,
                    )),
                    (None, true) => Target::TcpMss(None),
                    _ => {
                        return Err(
                            "target TCPMSS takes one of --set-mss N, --clamp-mss-to-pmtu".into(),
                        );
                    }
                }
            }
            "CHECKSUM" => {
                cx.only_in(TableKind::Mangle)?;
                if !std::mem::take(&mut o.checksum_fill) {
                    return Err("target CHECKSUM needs --checksum-fill".into());
                }
                Target::ChecksumFill
            }
            _ => Target::Jump(n),
        },
    };
    // Which flags each NAT target takes (as iptables-extensions(8)).
    let allowed = match target {
        Target::Snat(_) => NatFlags::RANDOM | NatFlags::RANDOM_FULLY | NatFlags::PERSISTENT,
        Target::Masquerade { .. } => NatFlags::RANDOM | NatFlags::RANDOM_FULLY,
        Target::Dnat(_) => NatFlags::RANDOM | NatFlags::PERSISTENT,
        _ => 0,
    };
    let flags = NatFlags(o.nat_flags.0 & allowed);
    o.nat_flags.0 &= !allowed;
    o.check_taken(&tname)?;
    Ok((target, flags))
}

impl Ctx<'_> {
    fn only_in(&self, allowed: TableKind) -> R<()> {
        if self.table != allowed {
            return Err(format!(
                "target {} is only valid in table {}, not {}",
                self.tname,
                allowed.name(),
                self.table.name()
            ));
        }
        Ok(())
    }

    fn tcp_udp(&self) -> bool {
        matches!(self.proto, Some(Protocol::Tcp | Protocol::Udp))
    }

    /// `-j REJECT [--reject-with TYPE]`.
    fn reject(&self, o: &mut TargetOpts, fam: &mut Family) -> R<Target> {
        self.only_in(TableKind::Filter)?;
        let r = match o.reject_with.take() {
            None => RejectWith::IcmpPortUnreachable,
            Some(s) => RejectWith::from_name(&s).ok_or_else(|| {
                format!("unsupported --reject-with {s} (e.g. icmp-port-unreachable, icmp-host-prohibited, tcp-reset)")
            })?,
        };
        if r == RejectWith::TcpReset && self.proto != Some(Protocol::Tcp) {
            return Err("--reject-with tcp-reset needs -p tcp".into());
        }
        // A bare `-j REJECT` is stored as icmp-port-unreachable and
        // answers in the packet's family, so that kind (like
        // tcp-reset) ties the rule to neither family.
        if !matches!(r, RejectWith::TcpReset | RejectWith::IcmpPortUnreachable) {
            fam.check(r.is_icmp6(), "--reject-with")?;
        }
        Ok(Target::Reject(r))
    }

    /// `--to-ports` of MASQUERADE and REDIRECT.
    fn to_ports(&self, o: &mut TargetOpts) -> R<Option<PortRange>> {
        o.to_ports
            .take()
            .map(|p| {
                if !self.tcp_udp() {
                    return Err("--to-ports with ports needs -p tcp or -p udp".to_string());
                }
                parse_port_range(&p, '-')
            })
            .transpose()
    }

    /// `-j SNAT --to-source ...` / `-j DNAT --to-destination ...`.
    fn snat_dnat(&self, o: &mut TargetOpts, fam: &mut Family) -> R<Target> {
        self.only_in(TableKind::Nat)?;
        let n = self.tname;
        let (slot, opt) = if n == "SNAT" {
            (o.to_source.take(), "--to-source")
        } else {
            (o.to_destination.take(), "--to-destination")
        };
        let slot = match (slot, o.to.take()) {
            (Some(_), Some(_)) => return Err(format!("option {opt} given twice (--to)")),
            (a, b) => a.or(b),
        };
        let s = slot.ok_or_else(|| format!("target {n} needs {opt} ADDR[-ADDR][:PORT[-PORT]]"))?;
        let spec = parse_nat_spec(&s)?;
        if spec.ports.is_some() && !self.tcp_udp() {
            return Err(format!("{opt} with ports needs -p tcp or -p udp"));
        }
        fam.check(spec.addrs.0.is_ipv6(), opt)?;
        Ok(if n == "SNAT" {
            Target::Snat(spec)
        } else {
            Target::Dnat(spec)
        })
    }
}

/// `-j LOG [--log-prefix P] [--log-level L]`.
fn log(o: &mut TargetOpts) -> R<Target> {
    let prefix = o.log_prefix.take();
    if let Some(p) = &prefix
        && p.len() > MAX_LOG_PREFIX
    {
        return Err(format!(
            "--log-prefix is longer than {MAX_LOG_PREFIX} bytes"
        ));
    }
    let level = o
        .log_level
        .take()
        .map(|l| parse_log_level(&l))
        .transpose()?;
    let flags = std::mem::take(&mut o.log_flags);
    Ok(Target::Log {
        prefix,
        level,
        flags,
    })
}

/// LOG's flags, in the order iptables-save prints them, and their bits.
pub(crate) const LOG_FLAGS: [(&str, u8); 5] = [
    ("--log-tcp-sequence", 1),
    ("--log-tcp-options", 2),
    ("--log-ip-options", 4),
    ("--log-uid", 8),
    ("--log-macdecode", 16),
];

/// The slot in `TargetOpts::nflog` of an NFLOG or ULOG option.
fn nflog_slot(o: &str) -> Option<usize> {
    Some(match o {
        "--nflog-group" | "--ulog-nlgroup" => 0,
        "--nflog-prefix" | "--ulog-prefix" => 1,
        "--nflog-range" | "--nflog-size" | "--ulog-cprange" => 2,
        "--nflog-threshold" | "--ulog-qthreshold" => 3,
        _ => return None,
    })
}

/// NFLOG (`ulog`: the older ULOG): its options checked as
/// libxt_NFLOG/libipt_ULOG check them.
fn nflog(o: &mut TargetOpts, ulog: bool) -> R<Target> {
    let mut given = std::mem::take(&mut o.nflog);
    let own = if ulog { "--ulog-" } else { "--nflog-" };
    for (opt, _) in given.iter().flatten() {
        if !opt.starts_with(own) {
            return Err(format!(
                "option {opt} is not valid for target {}",
                if ulog { "ULOG" } else { "NFLOG" }
            ));
        }
    }
    let num = |slot: &mut Option<(String, String)>, max: u32| -> R<Option<u32>> {
        slot.take()
            .map(|(opt, v)| {
                v.parse::<u32>()
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(|| format!("{opt} {v}: a number 0..{max}"))
            })
            .transpose()
    };
    let (group_max, prefix_max) = if ulog { (32, 32) } else { (65535, 64) };
    let group = num(&mut given[0], group_max)?;
    if ulog && group == Some(0) {
        return Err("--ulog-nlgroup 0: a group 1..32".into());
    }
    let prefix = given[1].take().map(|(_, p)| p);
    if let Some(p) = &prefix
        && p.len() > prefix_max
    {
        return Err(format!("{own}prefix is longer than {prefix_max} bytes"));
    }
    let size_name = matches!(&given[2], Some((opt, _)) if opt == "--nflog-size");
    let range = num(&mut given[2], u32::MAX)?;
    let threshold = num(&mut given[3], u32::from(u16::MAX))?;
    Ok(Target::NfLog(NfLog {
        ulog,
        size_name,
        group: group.map(|g| g as u16),
        prefix,
        range,
        threshold: threshold.map(|t| t as u16),
    }))
}

/// MARK's option as `--set-xmark value/mask` (`mark = (mark & !mask) ^
/// value`), as libxt_MARK turns each into.
fn mark_op(opt: &str, v: &str) -> R<Mark> {
    let m = parse_mark(v)?;
    let plain = || {
        if m.mask != u32::MAX {
            Err(format!("{opt} takes BITS, not VALUE/MASK"))
        } else {
            Ok(m.value)
        }
    };
    Ok(match opt {
        "--set-xmark" => m,
        "--set-mark" => Mark {
            value: m.value,
            mask: m.mask | m.value,
        },
        "--and-mark" => Mark {
            value: 0,
            mask: !plain()?,
        },
        "--or-mark" => {
            let b = plain()?;
            Mark { value: b, mask: b }
        }
        _ => Mark {
            value: plain()?,
            mask: 0,
        },
    })
}

/// `-j CONNMARK`: one of the mark options, or `--save-mark` /
/// `--restore-mark` with `--nfmask`/`--ctmask` (or `--mask` for both;
/// each 0xffffffff by default).
fn connmark(o: &mut TargetOpts) -> R<Target> {
    let masks = [o.nfmask.take(), o.ctmask.take(), o.mask.take()];
    let mask = |v: &Option<String>, name: &str| -> R<Option<u32>> {
        v.as_ref()
            .map(|v| {
                let m = parse_mark(v)?;
                if m.mask != u32::MAX {
                    return Err(format!("--{name} takes one value, not VALUE/MASK"));
                }
                Ok(m.value)
            })
            .transpose()
    };
    let (nf, ct, both) = (
        mask(&masks[0], "nfmask")?,
        mask(&masks[1], "ctmask")?,
        mask(&masks[2], "mask")?,
    );
    let op = match (o.set_mark.take(), o.save_restore.take()) {
        (Some(_), Some(_)) => {
            return Err(
                "target CONNMARK takes a mark option or --save-mark/--restore-mark, not both"
                    .into(),
            );
        }
        (Some((opt, v)), None) => {
            if masks.iter().any(Option::is_some) {
                return Err(
                    "--nfmask, --ctmask and --mask go with --save-mark or --restore-mark".into(),
                );
            }
            ConnMark::Set(mark_op(&opt, &v)?)
        }
        (None, Some(restore)) => {
            if both.is_some() && (nf.is_some() || ct.is_some()) {
                return Err("--mask sets both masks: not with --nfmask or --ctmask".into());
            }
            let nfmask = both.or(nf).unwrap_or(u32::MAX);
            let ctmask = both.or(ct).unwrap_or(u32::MAX);
            if restore {
                ConnMark::Restore { nfmask, ctmask }
            } else {
                ConnMark::Save { nfmask, ctmask }
            }
        }
        (None, None) => {
            return Err("target CONNMARK needs --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark, --save-mark or --restore-mark".into());
        }
    };
    Ok(Target::ConnMark(op))
}
