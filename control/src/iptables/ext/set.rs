//! `-m set [!] --match-set NAME src|dst[,...]`: the packet's source or
//! destination address is in ipset NAME, given in the config
//! (`[firewall] ipsets` / `ipsets_file`, `ipset save` text; see
//! `iptables::ipset`). The sets xgate reads have one dimension, so the
//! first flag decides, as the kernel's `hash:ip`/`hash:net` use it.

use std::fmt;

use xgate_dataplane::filter::{Expr, Field};

use super::{Ext, R, Reader, once, val};
use std::sync::Arc;
use xgate_dataplane::filter::ipset::IpSetTable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    /// The flags as written (`src`, `dst,dst`).
    pub flags: String,
    pub neg: bool,
    /// The set, filled from the config's ipsets when it is loaded (one
    /// table per name, shared by the rules naming it and changed live by
    /// `xgate ctl ipset`).
    pub members: Option<Arc<IpSetTable>>,
}

impl Set {
    pub(super) fn lower(&self) -> R<Vec<Expr>> {
        let Some(m) = &self.members else {
            return Err(format!(
                "-m set: no ipset {} (give its `ipset save` text in [firewall] ipsets or ipsets_file)",
                self.name
            ));
        };
        let dir = |f: Option<&str>| match f {
            Some("src") => Ok(true),
            Some("dst") => Ok(false),
            _ => Err(format!(
                "--match-set {} {}: src or dst for each of the set's dimensions",
                self.name, self.flags
            )),
        };
        let mut flags = self.flags.split(',');
        let field = if dir(flags.next())? {
            Field::Saddr
        } else {
            Field::Daddr
        };
        // hash:ip,port: the second flag says which port.
        let port = if m.has_ports() {
            Some(if dir(flags.next())? {
                Field::Sport
            } else {
                Field::Dport
            })
        } else {
            None
        };
        // A set has one family; as in the kernel, its match (negated or
        // not) only ever holds for packets of that family.
        Ok(vec![
            Expr::family(m.is_v4()),
            Expr::IpSet {
                set: m.clone(),
                field,
                port,
                neg: self.neg,
            },
        ])
    }
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = if self.neg { " !" } else { "" };
        write!(f, " -m set{bang} --match-set {} {}", self.name, self.flags)
    }
}

#[derive(Default)]
pub(super) struct SetReader(Option<Set>);

impl Reader for SetReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--match-set").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        // The rule parser gives `NAME FLAGS` as one value.
        let v = val(v, o)?;
        let (name, flags) = v
            .split_once(' ')
            .ok_or("--match-set needs a set name and src or dst")?;
        once(
            &mut self.0,
            Set {
                name: name.into(),
                flags: flags.into(),
                neg,
                members: None,
            },
            o,
        )
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .take()
            .map(Ext::Set)
            .ok_or("-m set needs --match-set NAME src|dst".into())
    }
}
