//! `-m physdev`: the bridge ports of bridged traffic (xt_physdev), for
//! bridges that send their IP traffic through netfilter
//! (`nf_call_iptables`): `--physdev-in`/`--physdev-out` name port
//! interfaces (`+` wildcards as `-i`), `--physdev-is-in`,
//! `--physdev-is-out`, `--physdev-is-bridged` test that there is one.
//! Each may be negated. A packet that did not come through a bridge
//! matches exactly the negated options, as in the kernel.

use std::fmt;

use xgate_dataplane::filter::{Expr, Field, Hook, IfaceMatch, physdev};

use super::{Ext, R, Reader, once, val};
use crate::iptables::Iface;
use crate::iptables::parse::parse_iface;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Physdev {
    pub phys_in: Option<(bool, Iface)>,
    pub phys_out: Option<(bool, Iface)>,
    /// (negated) for each flag.
    pub is_in: Option<bool>,
    pub is_out: Option<bool>,
    pub is_bridged: Option<bool>,
}

impl Physdev {
    /// Its expressions; `resolve` turns a port name into its interface set.
    pub(super) fn lower(
        &self,
        hook: Option<Hook>,
        resolve: &dyn Fn(&Iface) -> R<IfaceMatch>,
    ) -> R<Vec<Expr>> {
        if hook == Some(Hook::Output) && (self.phys_out.is_some() || self.is_out.is_some()) {
            return Err(
                "--physdev-out and --physdev-is-out cannot be used in OUTPUT: as in \
                        iptables, FORWARD and POSTROUTING (bridged traffic) only"
                    .into(),
            );
        }
        let mut out = Vec::new();
        for (o, dir) in [(&self.phys_in, false), (&self.phys_out, true)] {
            if let Some((neg, name)) = o {
                let set = resolve(name)
                    .map_err(|e| format!("--physdev-{}: {e}", if dir { "out" } else { "in" }))?;
                out.push(Expr::Iface {
                    out: dir,
                    neg: *neg,
                    set,
                    phys: true,
                });
            }
        }
        for (flag, bits) in [
            (self.is_in, physdev::IS_IN),
            (self.is_out, physdev::IS_OUT),
            (self.is_bridged, physdev::IS_BRIDGED),
        ] {
            if let Some(neg) = flag {
                out.push(Expr::Bits {
                    field: Field::Physdev,
                    neg,
                    bits,
                });
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Physdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = |neg: bool| if neg { " !" } else { "" };
        f.write_str(" -m physdev")?;
        if let Some((neg, i)) = &self.phys_in {
            write!(f, "{} --physdev-in {i}", bang(*neg))?;
        }
        if let Some((neg, i)) = &self.phys_out {
            write!(f, "{} --physdev-out {i}", bang(*neg))?;
        }
        for (flag, o) in [
            (self.is_in, "--physdev-is-in"),
            (self.is_out, "--physdev-is-out"),
            (self.is_bridged, "--physdev-is-bridged"),
        ] {
            if let Some(neg) = flag {
                write!(f, "{} {o}", bang(neg))?;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct PhysdevReader(Physdev);

impl Reader for PhysdevReader {
    fn takes(&self, o: &str) -> Option<bool> {
        match o {
            "--physdev-in" | "--physdev-out" => Some(true),
            "--physdev-is-in" | "--physdev-is-out" | "--physdev-is-bridged" => Some(false),
            _ => None,
        }
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        let p = &mut self.0;
        match o {
            "--physdev-in" => once(&mut p.phys_in, (neg, parse_iface(&val(v, o)?)?), o),
            "--physdev-out" => once(&mut p.phys_out, (neg, parse_iface(&val(v, o)?)?), o),
            "--physdev-is-in" => once(&mut p.is_in, neg, o),
            "--physdev-is-out" => once(&mut p.is_out, neg, o),
            _ => once(&mut p.is_bridged, neg, o),
        }
    }
    fn finish(&mut self) -> R<Ext> {
        let p = &self.0;
        if p.phys_in.is_none()
            && p.phys_out.is_none()
            && p.is_in.is_none()
            && p.is_out.is_none()
            && p.is_bridged.is_none()
        {
            return Err(
                "-m physdev needs at least one of --physdev-in, --physdev-out, \
                        --physdev-is-in, --physdev-is-out, --physdev-is-bridged"
                    .into(),
            );
        }
        Ok(Ext::Physdev(p.clone()))
    }
}
