//! `-m nfacct --nfacct-name NAME`: counts the packet in the extended
//! accounting object NAME (nfacct(8)) and always matches, as xt_nfacct
//! does. xgate keeps no accounting objects: the rule's own counters
//! (`xgate ctl rules`) count the same packets, so the match lowers to
//! nothing and the name is kept for re-export. Kubernetes' kube-proxy
//! writes it on its drop and node-port rules.

use std::fmt;

use xgate_dataplane::filter::Expr;

use super::{Ext, R, Reader, no_neg, once, val};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfAcct {
    pub name: String,
}

impl NfAcct {
    pub(super) fn lower(&self) -> Vec<Expr> {
        Vec::new()
    }
}

impl fmt::Display for NfAcct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " -m nfacct --nfacct-name {}", self.name)
    }
}

#[derive(Default)]
pub(super) struct NfAcctReader(Option<NfAcct>);

impl Reader for NfAcctReader {
    fn takes(&self, o: &str) -> Option<bool> {
        (o == "--nfacct-name").then_some(true)
    }
    fn option(&mut self, o: &str, neg: bool, v: Option<String>) -> R<()> {
        no_neg(neg, o)?;
        let name = val(v, o)?;
        // nfacct's names are at most 31 bytes (NFACCT_NAME_MAX less the NUL).
        if name.is_empty() || name.len() > 31 {
            return Err(format!("--nfacct-name {name:?}: 1 to 31 bytes"));
        }
        once(&mut self.0, NfAcct { name }, o)
    }
    fn finish(&mut self) -> R<Ext> {
        self.0
            .take()
            .map(Ext::NfAcct)
            .ok_or("-m nfacct needs --nfacct-name NAME".into())
    }
}
