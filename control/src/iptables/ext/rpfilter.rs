//! `-m rpfilter [--loose] [--validmark] [--invert]`: the reverse-path
//! check as a match (iptables' xt_rpfilter), the way `rp_filter` does it
//! per interface: a unicast route back to the source must exist, leaving
//! by the interface the packet came in on unless `--loose`. The lookup
//! always uses the packet's mark (what `--validmark` asks for).

use std::fmt;

use xgate_dataplane::filter::{Expr, Field, Hook, rpf};

use super::{Ext, R, Reader, no_neg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RpFilter {
    pub loose: bool,
    pub validmark: bool,
    /// `--invert`: matches when the check fails.
    pub invert: bool,
}

impl RpFilter {
    pub(super) fn lower(&self, hook: Option<Hook>) -> R<Vec<Expr>> {
        if let Some(h) = hook
            && h != Hook::Prerouting
        {
            return Err(format!(
                "-m rpfilter cannot be used in {}: as in iptables, PREROUTING only",
                h.name()
            ));
        }
        Ok(vec![Expr::Bits {
            field: Field::Rpf,
            neg: self.invert,
            bits: u32::from(if self.loose { rpf::LOOSE } else { rpf::STRICT }),
        }])
    }
}

impl fmt::Display for RpFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(" -m rpfilter")?;
        for (on, o) in [
            (self.loose, " --loose"),
            (self.validmark, " --validmark"),
            (self.invert, " --invert"),
        ] {
            if on {
                f.write_str(o)?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct RpFilterReader(RpFilter);

impl Reader for RpFilterReader {
    fn takes(&self, o: &str) -> Option<bool> {
        matches!(o, "--loose" | "--validmark" | "--invert" | "--accept-local").then_some(false)
    }
    fn option(&mut self, o: &str, neg: bool, _v: Option<String>) -> R<()> {
        no_neg(neg, o)?;
        let slot = match o {
            "--loose" => &mut self.0.loose,
            "--validmark" => &mut self.0.validmark,
            "--invert" => &mut self.0.invert,
            _ => {
                return Err(
                    "-m rpfilter --accept-local is not supported (the router's own addresses \
                     as sources are martians, dropped before routing)"
                        .into(),
                );
            }
        };
        if std::mem::replace(slot, true) {
            return Err(format!("option {o} given twice"));
        }
        Ok(())
    }
    fn finish(&mut self) -> R<Ext> {
        Ok(Ext::RpFilter(self.0))
    }
}
