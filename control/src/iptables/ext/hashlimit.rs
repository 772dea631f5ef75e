//! `-m hashlimit`: a `limit` per source and/or destination address and
//! port (`--hashlimit-mode`), each key with its own budget, in a bounded
//! table named by `--hashlimit-name` (rules naming one table share it, as
//! the kernel's `/proc/net/ipt_hashlimit/NAME`). Built on the dataplane's
//! dynamic sets: an entry expires `--hashlimit-htable-expire` ms after
//! its last packet (default 10 s), the table holds at most
//! `--hashlimit-htable-max` keys (default 65536); when it is full the
//! kernel drops the packet, which xgate does by letting an `--above`
//! match hold (the rule's DROP runs) and an `--upto` match fail.

use std::fmt;
use std::sync::Arc;

use xgate_dataplane::filter::dynset::DynSetSpec;
use xgate_dataplane::filter::{Expr, LimitSpec, hash_fields as hf};

use super::{Ext, R, Reader, no_neg, num, once, val};

/// `--hashlimit-upto/above` units, in nanoseconds.
const UNITS: [(&str, &str, u64); 4] = [
    ("sec", "second", 1_000_000_000),
    ("min", "minute", 60_000_000_000),
    ("hour", "hour", 3_600_000_000_000),
    ("day", "day", 86_400_000_000_000),
];

const MODES: [(&str, u8); 4] = [
    ("srcip", hf::SADDR),
    ("srcport", hf::SPORT),
    ("dstip", hf::DADDR),
    ("dstport", hf::DPORT),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashLimit {
    pub name: String,
    pub rate: u32,
    pub per_ns: u64,
    pub burst: u32,
    /// `--hashlimit-above`: matches over the rate (else `--upto`: within).
    pub above: bool,
    /// [`hf`] bits of `--hashlimit-mode` (0: one budget for all).
    pub mode: u8,
    pub max: u32,
    pub expire_ms: u64,
}

impl HashLimit {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::SetUpdate {
            set: Arc::new(DynSetSpec {
                name: format!("hashlimit {}", self.name),
                capacity: self.max,
                timeout_ns: self.expire_ms.saturating_mul(1_000_000),
                elements: Vec::new(),
                history: 0,
                evict: false,
            }),
            fields: self.mode,
            refresh: true,
            timeout_ns: 0,
            limit: Some((
                LimitSpec {
                    rate: self.rate,
                    per_ns: self.per_ns,
                    burst: self.burst,
                },
                self.above,
            )),
            full_holds: self.above,
        }]
    }
}

impl fmt::Display for HashLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = UNITS
            .iter()
            .find(|u| u.2 == self.per_ns)
            .map_or("sec", |u| u.0);
        let kind = if self.above { "above" } else { "upto" };
        write!(
            f,
            " -m hashlimit --hashlimit-{kind} {}/{unit} --hashlimit-burst {}",
            self.rate, self.burst
        )?;
        let modes: Vec<&str> = MODES
            .iter()
            .filter(|(_, b)| self.mode & b != 0)
            .map(|(n, _)| *n)
            .collect();
        if !modes.is_empty() {
            write!(f, " --hashlimit-mode {}", modes.join(","))?;
        }
        write!(
            f,
            " --hashlimit-name {} --hashlimit-htable-max {} --hashlimit-htable-expire {}",
            self.name, self.max, self.expire_ms
        )
    }
}

#[derive(Default)]
pub(super) struct HashLimitReader {
    rate: Option<(u32, u64, bool)>,
    burst: Option<u32>,
    mode: Option<u8>,
    name: Option<String>,
    max: Option<u32>,
    expire: Option<u64>,
}

impl Reader for HashLimitReader {
    fn takes(&self, o: &str) -> Option<bool> {
        matches!(
            o,
            "--hashlimit"
                | "--hashlimit-upto"
                | "--hashlimit-above"
                | "--hashlimit-burst"
                | "--hashlimit-mode"
                | "--hashlimit-name"
                | "--hashlimit-htable-size"
                | "--hashlimit-htable-max"
                | "--hashlimit-htable-expire"
                | "--hashlimit-htable-gcinterval"
                | "--hashlimit-srcmask"
                | "--hashlimit-dstmask"
        )
        .then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        no_neg(neg, o)?;
        let v = val(v, o)?;
        match o {
            "--hashlimit" | "--hashlimit-upto" | "--hashlimit-above" => {
                let bad = || {
                    format!(
                        "invalid {o} {v:?} (N/second, N/minute, N/hour or N/day; byte rates are not supported)"
                    )
                };
                let (n, unit) = v.split_once('/').unwrap_or((&v, "second"));
                let rate: u32 = n.parse().map_err(|_| bad())?;
                let unit = unit.to_ascii_lowercase();
                let per_ns = UNITS
                    .iter()
                    .find(|u| !unit.is_empty() && u.1.starts_with(&unit))
                    .map(|u| u.2)
                    .ok_or_else(bad)?;
                if rate == 0 {
                    return Err(format!("{o} {v}: the rate must be at least 1"));
                }
                once(
                    &mut self.rate,
                    (rate, per_ns, o == "--hashlimit-above"),
                    "--hashlimit-upto/--hashlimit-above",
                )
            }
            "--hashlimit-burst" => once(&mut self.burst, num(&v, o, 10_000)?.max(1), o),
            "--hashlimit-mode" => {
                let mut bits = 0;
                for m in v.split(',') {
                    bits |= MODES
                        .iter()
                        .find(|(n, _)| *n == m)
                        .map(|(_, b)| *b)
                        .ok_or_else(|| {
                            format!(
                                "unknown --hashlimit-mode {m:?} (srcip, srcport, dstip, dstport)"
                            )
                        })?;
                }
                once(&mut self.mode, bits, o)
            }
            "--hashlimit-name" => once(&mut self.name, v, o),
            "--hashlimit-htable-max" => once(&mut self.max, num(&v, o, 1 << 24)?.max(1), o),
            "--hashlimit-htable-expire" => {
                once(&mut self.expire, u64::from(num(&v, o, u32::MAX)?), o)
            }
            // Sizing hints of the kernel's hash table: xgate sizes its
            // own from htable-max.
            "--hashlimit-htable-size" | "--hashlimit-htable-gcinterval" => {
                num(&v, o, u32::MAX).map(|_| ())
            }
            _ => {
                // --hashlimit-srcmask / --dstmask: only the full length.
                let n = num(&v, o, 128)?;
                if n == 32 || n == 128 {
                    Ok(())
                } else {
                    Err(format!(
                        "{o} {n}: grouping addresses by prefix is not supported (only 32 / 128)"
                    ))
                }
            }
        }
    }
    fn finish(&mut self) -> R<Ext> {
        let (rate, per_ns, above) = self
            .rate
            .ok_or("-m hashlimit needs --hashlimit-upto or --hashlimit-above")?;
        let name = self
            .name
            .take()
            .ok_or("-m hashlimit needs --hashlimit-name")?;
        Ok(Ext::HashLimit(HashLimit {
            name,
            rate,
            per_ns,
            burst: self.burst.unwrap_or(5),
            above,
            mode: self.mode.unwrap_or(0),
            max: self.max.unwrap_or(65536),
            expire_ms: self.expire.unwrap_or(10_000),
        }))
    }
}
