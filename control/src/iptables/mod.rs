//! iptables-save syntax for `[firewall]` rules: parser and rule model.
//!
//! Accepts iptables-save text (`*filter` / `:CHAIN POLICY [p:b]` / `-A ...` /
//! `COMMIT`) and the script form users write (`-N CHAIN`, `-I CHAIN [N]`,
//! `-P CHAIN POLICY`, `-t nat -A ...`, optionally prefixed by `iptables`,
//! lines continued with `\`). Every unsupported option, module or target is
//! an error naming its line; nothing is silently ignored.
//!
//! `Display` on [`IptablesRuleset`] prints canonical iptables-save text, which parses
//! back to the same model.

pub mod ext;
pub mod ipset;
mod lex;
pub mod model;
mod parse;

pub use model::*;
pub use xgate_dataplane::filter::Family;

use crate::config::ConfigError;

/// The `field` errors from [`parse`] carry.
pub const FIELD: &str = "firewall.rules";

/// Parses `text` (iptables-save or script form). `first_line` is the line of
/// `file` where `text` starts, so errors name the right line. Returns every
/// error found (one per line at most, plus whole-ruleset checks), sorted by line.
pub fn parse(
    text: &str,
    file: &str,
    first_line: usize,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    parse::parse_ruleset(text, file, first_line, FIELD)
}

/// Like [`parse`], with the error `field` chosen by the caller
/// (e.g. `firewall.rules_file`).
pub fn parse_with_field(
    text: &str,
    file: &str,
    first_line: usize,
    field: &str,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    parse::parse_ruleset(text, file, first_line, field)
}

/// The ruleset of a config's `[firewall]`: its inline `rules` (errors name
/// the config file's lines) or its `rules_file` (errors name that file).
pub fn load(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<IptablesRuleset, Vec<ConfigError>> {
    match (&fw.rules, &fw.rules_file) {
        (Some(text), _) => parse(text, config_file, fw.rules_line),
        (None, Some(path)) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![ConfigError::new(
                    config_file,
                    fw.line,
                    "firewall.rules_file",
                    format!("cannot read {name}: {e}"),
                )]
            })?;
            parse_with_field(&text, &name, 1, "firewall.rules_file")
        }
        (None, None) => Ok(IptablesRuleset::default()),
    }
}

/// One ruleset of `[firewall]`: its family and where it came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FamilyRuleset {
    pub family: Family,
    /// The config key it was read from (`rules`, `rules_v4_file`, ...);
    /// empty for the default a missing family gets ([`default_drop`]).
    pub key: String,
    /// The file its lines are in (the config file for inline rules).
    pub file: String,
    /// The field its errors carry (`firewall.rules_v4`, ...).
    pub field: String,
    pub ruleset: IptablesRuleset,
}

/// Every ruleset of `[firewall]`: one `inet` ruleset, or an IPv4 and an
/// IPv6 one (a missing family gets [`default_drop`]), or none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirewallRules {
    pub sets: Vec<FamilyRuleset>,
    /// `ipsets` / `ipsets_file`, by name: the tables `-m set` rules look
    /// up, whose contents `xgate ctl ipset` changes.
    pub ipsets: std::collections::BTreeMap<
        String,
        std::sync::Arc<xgate_dataplane::filter::ipset::IpSetTable>,
    >,
    /// `nft` / `nft_file`, applied (its commands run in order).
    pub nft: Option<NftRules>,
}

/// The nftables ruleset of `[firewall]`: the text as given and the
/// tables its commands leave.
#[derive(Debug, Clone, PartialEq)]
pub struct NftRules {
    /// `nft` or `nft_file`.
    pub key: String,
    /// Where the text is (the config file, or the `nft_file`).
    pub file: String,
    pub field: String,
    /// Config line of the text's first line (1 for a file).
    pub first_line: usize,
    pub text: String,
    pub tables: Vec<crate::nft::state::TableState>,
    /// Per rule (table, chain, rule indices into `tables`), the compiled
    /// rules that count it: (chain index, position) in the ruleset's
    /// counters view. Filled by the compile.
    pub counters: crate::nft::compile::RuleCounterMap,
}

impl NftRules {
    /// The config or file line of a location in the ruleset (includes
    /// keep their own line numbers).
    pub fn line_of(&self, loc: crate::nft::Loc) -> usize {
        if loc.file == 0 {
            loc.line as usize + self.first_line - 1
        } else {
            loc.line as usize
        }
    }
}

impl FirewallRules {
    /// One `inet` ruleset.
    pub fn inet(ruleset: IptablesRuleset) -> Self {
        FirewallRules {
            sets: vec![FamilyRuleset {
                family: Family::Inet,
                key: "rules".into(),
                file: String::new(),
                field: FIELD.into(),
                ruleset,
            }],
            ipsets: Default::default(),
            nft: None,
        }
    }

    /// The family rulesets given as a default, not by the config.
    pub fn defaults(&self) -> impl Iterator<Item = &FamilyRuleset> {
        self.sets.iter().filter(|s| s.key.is_empty())
    }
}

/// What a missing family's default does, for `xgate check`, `ctl rules`
/// and the docs.
pub fn default_note(family: Family) -> String {
    let (v, key, other) = match family {
        Family::V6 => ("IPv6", "rules_v6", "rules_v4"),
        _ => ("IPv4", "rules_v4", "rules_v6"),
    };
    format!(
        "{v}: no {key} (only {other}): forwarded and local {v} traffic is dropped \
         (INPUT and FORWARD policy DROP, OUTPUT ACCEPT)"
    )
}

impl std::fmt::Display for FirewallRules {
    /// iptables-save text; with one ruleset per family, each after a
    /// `# IPv4 (rules_v4)` / `# IPv6 (rules_v6)` line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.sets {
            match s.family {
                Family::Inet => {}
                fam if s.key.is_empty() => writeln!(f, "# {}", default_note(fam))?,
                fam => writeln!(f, "# {} ({})", fam.name(), s.key)?,
            }
            write!(f, "{}", s.ruleset)?;
        }
        if let Some(n) = &self.nft {
            writeln!(f, "# nftables ({})", n.key)?;
            write!(f, "{}", n.text)?;
            if !n.text.ends_with('\n') {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// The ruleset a family without rules gets when the other family has
/// some: nothing forwarded or delivered, the router's own packets sent.
/// The other family's rules never govern it (that would apply, say, an
/// IPv4 FORWARD ACCEPT to IPv6 as well).
pub fn default_drop() -> IptablesRuleset {
    parse(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        "default",
        1,
    )
    .expect("the default ruleset parses")
}

/// Every ruleset of a config's `[firewall]`, each parsed from its inline
/// text (errors name the config file's lines) or its file: the iptables
/// rulesets and the nftables one. All errors at once.
pub fn load_all(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<FirewallRules, Vec<ConfigError>> {
    let ipt = load_iptables(fw, config_file);
    let nft = load_nft(fw, config_file);
    let sets = load_ipsets(fw, config_file);
    match (ipt, nft) {
        (Ok(mut all), Ok(nft)) => {
            all.nft = nft;
            let sets = sets.map_err(|e| vec![e])?;
            all.ipsets = sets
                .into_iter()
                .map(|(name, s)| {
                    use xgate_dataplane::filter::ipset::IpSetTable;
                    let t = match s.ports {
                        Some(entries) => IpSetTable::with_ports(&name, s.v4, s.maxelem, entries),
                        None => IpSetTable::new(&name, s.v4, s.maxelem, s.ranges),
                    };
                    (name, std::sync::Arc::new(t))
                })
                .collect();
            let sets = &all.ipsets;
            let mut errors = Vec::new();
            for s in &mut all.sets {
                for t in &mut s.ruleset.tables {
                    for r in t.chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
                        for x in &mut r.matches.ext {
                            let ext::Ext::Set(m) = x else { continue };
                            m.members = sets.get(&m.name).cloned();
                            // iptables refuses a set of the other family
                            // ("incompatible with the protocol family").
                            let wrong = match (s.family, &m.members) {
                                (Family::V4, Some(set)) => !set.is_v4(),
                                (Family::V6, Some(set)) => set.is_v4(),
                                _ => false,
                            };
                            if wrong {
                                errors.push(ConfigError::new(
                                    &s.file,
                                    r.line,
                                    &s.field,
                                    format!(
                                        "-m set: ipset {} is of the other family than this ruleset",
                                        m.name
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            if errors.is_empty() {
                Ok(all)
            } else {
                Err(errors)
            }
        }
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// `ipsets` / `ipsets_file`: the sets `-m set` names.
fn load_ipsets(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<std::collections::BTreeMap<String, ipset::IpSet>, ConfigError> {
    let s = &fw.ipsets;
    let (file, field, first, text) = match (&s.rules, &s.rules_file) {
        (Some(t), _) => (
            config_file.to_string(),
            "firewall.ipsets",
            s.rules_line,
            t.clone(),
        ),
        (None, Some(p)) => {
            let name = p.display().to_string();
            let t = std::fs::read_to_string(p).map_err(|e| {
                ConfigError::new(
                    config_file,
                    fw.line,
                    "firewall.ipsets_file",
                    format!("cannot read {name}: {e}"),
                )
            })?;
            (name, "firewall.ipsets_file", 1, t)
        }
        (None, None) => return Ok(Default::default()),
    };
    ipset::parse(&text, first).map_err(|(line, msg)| ConfigError::new(&file, line, field, msg))
}

/// `nft` / `nft_file`: parsed and applied.
fn load_nft(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<Option<NftRules>, Vec<ConfigError>> {
    let n = &fw.nft;
    let (key, file, first_line, text) = match (&n.rules, &n.rules_file) {
        (Some(t), _) => ("nft", config_file.to_string(), n.rules_line, t.clone()),
        (None, Some(p)) => {
            let name = p.display().to_string();
            match std::fs::read_to_string(p) {
                Ok(t) => ("nft_file", name, 1, t),
                Err(e) => {
                    return Err(vec![ConfigError::new(
                        config_file,
                        fw.line,
                        "firewall.nft_file",
                        format!("cannot read {name}: {e}"),
                    )]);
                }
            }
        }
        (None, None) => return Ok(None),
    };
    let field = format!("firewall.{key}");
    let mut rules = NftRules {
        key: key.into(),
        file,
        field,
        first_line,
        text,
        tables: Vec::new(),
        counters: Vec::new(),
    };
    // Relative includes: beside the file (the config's directory for
    // inline text), then /etc as nft.
    let dir = std::path::Path::new(&rules.file)
        .parent()
        .map(|d| d.to_path_buf())
        .unwrap_or_default();
    let opts = crate::nft::Options {
        include_path: vec![dir, std::path::PathBuf::from("/etc")],
        includes: true,
    };
    let at = |r: &NftRules, file: &str, loc: crate::nft::Loc, msg: String| {
        let top = file == r.file;
        ConfigError::new(
            file,
            if top {
                r.line_of(loc)
            } else {
                loc.line as usize
            },
            r.field.as_str(),
            if loc.col > 0 {
                format!("column {}: {msg}", loc.col)
            } else {
                msg
            },
        )
    };
    let parsed = match crate::nft::parse_with(&rules.text, &rules.file, &opts) {
        Ok(p) => p,
        Err(e) => {
            let loc = crate::nft::Loc {
                file: if e.file == rules.file { 0 } else { 1 },
                line: e.line,
                col: e.col,
            };
            return Err(vec![at(&rules, &e.file, loc, e.kind.to_string())]);
        }
    };
    match crate::nft::state::apply(&parsed) {
        Ok(tables) => rules.tables = tables,
        Err(e) => {
            let file = parsed
                .files
                .get(e.loc.file as usize)
                .cloned()
                .unwrap_or_else(|| rules.file.clone());
            return Err(vec![at(&rules, &file, e.loc, e.msg)]);
        }
    }
    Ok(Some(rules))
}

/// The iptables rulesets of `[firewall]`.
fn load_iptables(
    fw: &crate::config::Firewall,
    config_file: &str,
) -> Result<FirewallRules, Vec<ConfigError>> {
    if fw.is_inet() {
        let mut all = FirewallRules::inet(load(fw, config_file)?);
        let s = &mut all.sets[0];
        (s.file, s.field, s.key) = match &fw.rules_file {
            Some(p) if fw.rules.is_none() => (
                p.display().to_string(),
                "firewall.rules_file".into(),
                "rules_file".into(),
            ),
            _ => (config_file.into(), FIELD.into(), "rules".into()),
        };
        return Ok(all);
    }
    if !fw.v4.is_set() && !fw.v6.is_set() {
        return Ok(FirewallRules::default());
    }
    let mut sets = Vec::new();
    let mut errors = Vec::new();
    for (family, fr, key) in [
        (Family::V4, &fw.v4, "rules_v4"),
        (Family::V6, &fw.v6, "rules_v6"),
    ] {
        let (key, file, field, parsed) = match (&fr.rules, &fr.rules_file) {
            (Some(text), _) => {
                let field = format!("firewall.{key}");
                let r = parse_with_field(text, config_file, fr.rules_line, &field);
                (key.to_string(), config_file.to_string(), field, r)
            }
            (None, Some(path)) => {
                let name = path.display().to_string();
                let key = format!("{key}_file");
                let field = format!("firewall.{key}");
                let r = match std::fs::read_to_string(path) {
                    Ok(text) => parse_with_field(&text, &name, 1, &field),
                    Err(e) => Err(vec![ConfigError::new(
                        config_file,
                        fw.line,
                        field.as_str(),
                        format!("cannot read {name}: {e}"),
                    )]),
                };
                (key, name, field, r)
            }
            (None, None) => (
                String::new(),
                "default".into(),
                "firewall".into(),
                Ok(default_drop()),
            ),
        };
        let parsed = match (family, parsed) {
            (Family::V6, Ok(rs)) => {
                let (text, first) = match (&fr.rules, &fr.rules_file) {
                    (Some(t), _) => (t.clone(), fr.rules_line),
                    (None, Some(p)) => (std::fs::read_to_string(p).unwrap_or_default(), 1),
                    (None, None) => (String::new(), 1),
                };
                let bad = ipv4_reject_lines(&text, first);
                if bad.is_empty() {
                    Ok(as_ipv6(rs))
                } else {
                    Err(bad
                        .into_iter()
                        .map(|l| {
                            ConfigError::new(
                                file.as_str(),
                                l,
                                field.as_str(),
                                "--reject-with icmp-port-unreachable is IPv4 only, not allowed \
                                 in the IPv6 ruleset (ip6tables: icmp6-port-unreachable)",
                            )
                        })
                        .collect())
                }
            }
            (_, p) => p,
        };
        match parsed {
            Ok(ruleset) => sets.push(FamilyRuleset {
                family,
                key,
                file,
                field,
                ruleset,
            }),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(FirewallRules {
            sets,
            ipsets: Default::default(),
            nft: None,
        })
    } else {
        Err(errors)
    }
}

/// Lines of `text` (the first is line `first`) that ask for the ICMPv4
/// `--reject-with icmp-port-unreachable` by name. The model keeps a bare
/// `-j REJECT` as that kind too (port unreachable in the packet's
/// family), so an IPv6 ruleset is checked on its text.
fn ipv4_reject_lines(text: &str, first: usize) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(2)
                .any(|p| p[0] == "--reject-with" && p[1] == "icmp-port-unreachable")
        })
        .map(|(i, _)| first + i)
        .collect()
}

/// `ruleset` as an IPv6 ruleset prints it: a bare `-j REJECT` (kept as
/// icmp-port-unreachable, answered in the packet's family) becomes
/// ip6tables' `icmp6-port-unreachable`, which means the same there.
pub fn as_ipv6(mut ruleset: IptablesRuleset) -> IptablesRuleset {
    for t in &mut ruleset.tables {
        for r in t.chains.iter_mut().flat_map(|c| &mut c.rules) {
            if r.target == Target::Reject(RejectWith::IcmpPortUnreachable) {
                r.target = Target::Reject(RejectWith::Icmp6PortUnreachable);
            }
        }
    }
    ruleset
}
