//! `-m connlimit --connlimit-upto|--connlimit-above N`: the number of live
//! connections from the packet's source address, its own new one
//! included, as the kernel's xt_connlimit counts them. xgate reads the
//! connection table's per-source counts (the ones `flows_per_source`
//! caps): approximate in one way only, two sources sharing a counter make
//! each other's count larger (an `--above ... -j DROP` rule then drops
//! sooner, never later). Only whole addresses (`--connlimit-mask 32` /
//! `128`) and source addresses.

use std::fmt;

use xgate_dataplane::filter::{Expr, Field};

use super::{Ext, R, Reader, no_neg, num, once, val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimit {
    pub limit: u32,
    /// `--connlimit-above` (else `--connlimit-upto`).
    pub above: bool,
}

impl ConnLimit {
    pub(super) fn lower(&self) -> Vec<Expr> {
        vec![if self.above {
            Expr::range(Field::Conns, false, self.limit.saturating_add(1), u32::MAX)
        } else {
            Expr::range(Field::Conns, false, 0, self.limit)
        }]
    }
}

impl fmt::Display for ConnLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.above { "above" } else { "upto" };
        write!(
            f,
            " -m connlimit --connlimit-{kind} {} --connlimit-mask 32 --connlimit-saddr",
            self.limit
        )
    }
}

#[derive(Default)]
pub(super) struct ConnLimitReader(Option<ConnLimit>);

impl Reader for ConnLimitReader {
    fn takes(&self, o: &str) -> Option<bool> {
        match o {
            "--connlimit-upto" | "--connlimit-above" | "--connlimit-mask" => Some(true),
            "--connlimit-saddr" | "--connlimit-daddr" => Some(false),
            _ => None,
        }
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        match o {
            "--connlimit-upto" | "--connlimit-above" => {
                // `! --connlimit-above N` is `--connlimit-upto N`.
                let above = (o == "--connlimit-above") != neg;
                let limit = num(&val(v, o)?, o, u32::MAX)?;
                once(
                    &mut self.0,
                    ConnLimit { limit, above },
                    "--connlimit-upto/above",
                )
            }
            "--connlimit-mask" => {
                no_neg(neg, o)?;
                let n = num(&val(v, o)?, o, 128)?;
                if n == 32 || n == 128 {
                    Ok(())
                } else {
                    Err(format!(
                        "--connlimit-mask {n}: counting by network is not supported (32 or 128)"
                    ))
                }
            }
            "--connlimit-saddr" => no_neg(neg, o),
            _ => Err(
                "--connlimit-daddr is not supported (connections are counted per source)".into(),
            ),
        }
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .map(Ext::ConnLimit)
            .ok_or("-m connlimit needs --connlimit-upto or --connlimit-above".into())
    }
}
