//! `-m recent`: addresses remembered by name (`--name`, default
//! `DEFAULT`) with the times of their last hits, as the kernel's
//! xt_recent: `--set` remembers the source (`--rdest`: the destination),
//! `--rcheck` holds if it is remembered, `--update` too and records a hit,
//! `--remove` forgets it; `--seconds N` and `--hitcount N` narrow the
//! check to N hits in the last N seconds. A list keeps 200 addresses and
//! their last 20 hits (the module's `ip_list_tot` / `ip_pkt_list_tot`
//! defaults); when full, the least recently seen address on the new one's
//! probe path goes, as the kernel drops its oldest. An address not seen
//! for a day is forgotten (the kernel keeps it until evicted).

use std::fmt;
use std::sync::Arc;

use xgate_dataplane::filter::dynset::DynSetSpec;
use xgate_dataplane::filter::{Expr, RecentMode, hash_fields as hf};

use super::{Ext, R, Reader, num, once, val};

/// The kernel module's defaults.
const LIST_TOT: u32 = 200;
const PKT_LIST_TOT: u8 = 20;
const FORGET_NS: u64 = 86_400_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub name: String,
    pub mode: RecentMode,
    pub neg: bool,
    pub seconds: u32,
    pub hitcount: u16,
    /// `--rdest` (else `--rsource`).
    pub dest: bool,
    /// `--reap` (a memory hint in the kernel: nothing to do here).
    pub reap: bool,
}

impl Recent {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::Recent {
            set: Arc::new(DynSetSpec {
                name: format!("recent {}", self.name),
                capacity: LIST_TOT,
                timeout_ns: FORGET_NS,
                elements: Vec::new(),
                history: PKT_LIST_TOT,
                evict: true,
            }),
            fields: if self.dest { hf::DADDR } else { hf::SADDR },
            mode: self.mode,
            seconds: self.seconds,
            hitcount: self.hitcount,
            neg: self.neg,
        }]
    }
}

impl fmt::Display for Recent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            RecentMode::Set => "--set",
            RecentMode::Check => "--rcheck",
            RecentMode::Update => "--update",
            RecentMode::Remove => "--remove",
        };
        let bang = if self.neg { "! " } else { "" };
        write!(f, " -m recent {bang}{mode}")?;
        if self.seconds != 0 {
            write!(f, " --seconds {}", self.seconds)?;
        }
        if self.reap {
            f.write_str(" --reap")?;
        }
        if self.hitcount != 0 {
            write!(f, " --hitcount {}", self.hitcount)?;
        }
        write!(
            f,
            " --name {} --mask 255.255.255.255 {}",
            self.name,
            if self.dest { "--rdest" } else { "--rsource" }
        )
    }
}

#[derive(Default)]
pub(super) struct RecentReader {
    mode: Option<(RecentMode, bool)>,
    name: Option<String>,
    seconds: Option<u32>,
    hitcount: Option<u16>,
    dest: Option<bool>,
    reap: bool,
}

impl Reader for RecentReader {
    fn takes(&self, o: &str) -> Option<bool> {
        match o {
            "--set" | "--rcheck" | "--update" | "--remove" | "--rsource" | "--rdest" | "--reap" => {
                Some(false)
            }
            "--name" | "--seconds" | "--hitcount" | "--mask" | "--rttl" => Some(true),
            _ => None,
        }
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let mode = match o {
            "--set" => Some(RecentMode::Set),
            "--rcheck" => Some(RecentMode::Check),
            "--update" => Some(RecentMode::Update),
            "--remove" => Some(RecentMode::Remove),
            _ => None,
        };
        if let Some(m) = mode {
            return once(&mut self.mode, (m, neg), "--set/--rcheck/--update/--remove");
        }
        if neg {
            return Err(format!("option {o} cannot be negated with !"));
        }
        match o {
            "--rsource" | "--rdest" => once(&mut self.dest, o == "--rdest", "--rsource/--rdest"),
            "--reap" => {
                self.reap = true;
                Ok(())
            }
            "--name" => once(&mut self.name, val(v, o)?, o),
            "--seconds" => once(&mut self.seconds, num(&val(v, o)?, o, u32::MAX)?, o),
            "--hitcount" => {
                let n = num(&val(v, o)?, o, u32::from(PKT_LIST_TOT))?;
                once(&mut self.hitcount, n as u16, o)
            }
            "--mask" => {
                let m = val(v, o)?;
                if m == "255.255.255.255" || m == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" {
                    Ok(())
                } else {
                    Err(format!(
                        "--mask {m}: grouping addresses by mask is not supported"
                    ))
                }
            }
            _ => Err("--rttl is not supported (the TTL is not remembered)".into()),
        }
    }
    fn finish(&mut self) -> R<Ext> {
        let (mode, neg) = self
            .mode
            .ok_or("-m recent needs --set, --rcheck, --update or --remove")?;
        let (seconds, hitcount) = (self.seconds.unwrap_or(0), self.hitcount.unwrap_or(0));
        if (seconds != 0 || hitcount != 0)
            && !matches!(mode, RecentMode::Check | RecentMode::Update)
        {
            return Err("--seconds and --hitcount go with --rcheck or --update".into());
        }
        Ok(Ext::Recent(Recent {
            name: self.name.take().unwrap_or_else(|| "DEFAULT".into()),
            mode,
            neg,
            seconds,
            hitcount,
            dest: self.dest.unwrap_or(false),
            reap: self.reap,
        }))
    }
}
