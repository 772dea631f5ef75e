//! Modules that count packets over time: `limit`.

use std::fmt;

use xgate_dataplane::filter::{Expr, LimitSpec};

use super::{Ext, R, Reader, no_neg, num, once, val};

/// `--limit` units as iptables-save prints them, in nanoseconds.
const UNITS: [(&str, &str, u64); 4] = [
    ("sec", "second", 1_000_000_000),
    ("min", "minute", 60_000_000_000),
    ("hour", "hour", 3_600_000_000_000),
    ("day", "day", 86_400_000_000_000),
];

/// Most packets per second `--limit` takes (iptables': 10000/sec).
const MAX_RATE_PER_SEC: u64 = 10_000;
/// Largest `--limit-burst` (iptables' 10000).
const MAX_BURST: u32 = 10_000;

/// `-m limit --limit RATE/UNIT --limit-burst N`: at most RATE packets
/// per unit on average, bursts of N; shared by every worker, as the
/// kernel's limit is per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub rate: u32,
    /// Nanoseconds of the unit.
    pub per_ns: u64,
    pub burst: u32,
}

impl Default for Limit {
    /// iptables' defaults: 3/hour, burst 5.
    fn default() -> Self {
        Limit {
            rate: 3,
            per_ns: UNITS[2].2,
            burst: 5,
        }
    }
}

impl Limit {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![Expr::Limit {
            neg: false,
            spec: LimitSpec {
                rate: self.rate,
                per_ns: self.per_ns,
                burst: self.burst,
            },
        }]
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = UNITS
            .iter()
            .find(|u| u.2 == self.per_ns)
            .map_or("sec", |u| u.0);
        write!(f, " -m limit --limit {}/{unit}", self.rate)?;
        if self.burst != 5 {
            write!(f, " --limit-burst {}", self.burst)?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct LimitReader {
    rate: Option<(u32, u64)>,
    burst: Option<u32>,
}

impl Reader for LimitReader {
    fn takes(&self, o: &str) -> Option<bool> {
        matches!(o, "--limit" | "--limit-burst").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        no_neg(neg, o)?;
        let v = val(v, o)?;
        if o == "--limit-burst" {
            return once(&mut self.burst, num(&v, o, MAX_BURST)?, o);
        }
        let bad = || format!("invalid --limit {v:?} (N/second, N/minute, N/hour or N/day)");
        let (n, unit) = v.split_once('/').unwrap_or((&v, "second"));
        let rate: u32 = n.parse().map_err(|_| bad())?;
        // Any prefix of the unit's name, in any case, as iptables reads it.
        let unit = unit.to_ascii_lowercase();
        let per_ns = UNITS
            .iter()
            .find(|u| !unit.is_empty() && u.1.starts_with(&unit))
            .map(|u| u.2)
            .ok_or_else(bad)?;
        if rate == 0 {
            return Err(format!("--limit {v}: the rate must be at least 1"));
        }
        if u64::from(rate) * 1_000_000_000 / per_ns > MAX_RATE_PER_SEC {
            return Err(format!(
                "--limit {v} is too fast (at most {MAX_RATE_PER_SEC}/second)"
            ));
        }
        once(&mut self.rate, (rate, per_ns), o)
    }
    fn finish(&mut self) -> R<Ext> {
        let d = Limit::default();
        let (rate, per_ns) = self.rate.unwrap_or((d.rate, d.per_ns));
        let burst = self.burst.unwrap_or(d.burst);
        if burst == 0 {
            return Err("--limit-burst must be at least 1".into());
        }
        Ok(Ext::Limit(Limit {
            rate,
            per_ns,
            burst,
        }))
    }
}
