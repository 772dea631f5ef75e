//! Tables and chains: `table F N { ... }` blocks and their items, `add
//! chain` with its optional block, base chain specs (`type filter hook
//! input priority filter + 10; policy drop;`) checked against the family
//! and hook as nft and the kernel check them.

use super::super::ast::*;
use super::super::lex::Tok;
use super::super::types::std_priority;
use super::{Parser, R};

impl Parser<'_> {
    /// After `table` (command or declaration): `[FAMILY] NAME [{ ... }]`.
    pub(super) fn table_command(&mut self, loc: Loc) -> R<Table> {
        let id = self.table_id()?;
        let mut table = Table::new(loc, id);
        if self.eat(&Tok::LBrace)? {
            self.table_block(&mut table)?;
            self.expect(Tok::RBrace, "'}'")?;
            self.end_of_block_or_item()?;
        }
        Ok(table)
    }

    /// A block's `}` was read at the end of a command: `add_command` reads
    /// the separator, so leave it.
    fn end_of_block_or_item(&mut self) -> R<()> {
        match self.peek()? {
            Tok::Newline | Tok::Semi | Tok::Eof => Ok(()),
            _ => self.expected("newline or ';'"),
        }
    }

    fn table_block(&mut self, table: &mut Table) -> R<()> {
        loop {
            self.skip_separators()?;
            self.family = table.id.family;
            let loc = self.loc();
            let Some(w) = self.word()?.map(str::to_string) else {
                if self.at(&Tok::RBrace)? {
                    return Ok(());
                }
                return self.expected("chain, set, map, counter, ... or '}'");
            };
            self.pos += 1;
            match w.as_str() {
                "chain" => {
                    let name = self.name("a chain name")?;
                    let mut chain = Chain {
                        loc,
                        name,
                        base: None,
                        comment: None,
                        rules: Vec::new(),
                    };
                    self.expect(Tok::LBrace, "'{'")?;
                    self.chain_block(&table.id, &mut chain)?;
                    self.expect(Tok::RBrace, "'}'")?;
                    self.end_of_block()?;
                    table.chains.push(chain);
                }
                "set" | "map" => {
                    let name = self.name("a set name")?;
                    self.expect(Tok::LBrace, "'{'")?;
                    let set = self.set_block(loc, name, w == "map")?;
                    self.expect(Tok::RBrace, "'}'")?;
                    self.end_of_block()?;
                    table.sets.push(set);
                }
                "counter" | "quota" | "limit" | "ct" => {
                    if w == "ct" {
                        self.expect_word("helper")?;
                    }
                    let object = self.object_decl(loc, &w)?;
                    table.objects.push(object);
                    self.end_of_item()?;
                }
                "flowtable" => {
                    let ft = self.flowtable_decl(loc)?;
                    table.flowtables.push(ft);
                    self.end_of_item()?;
                }
                "flags" => {
                    loop {
                        let (f, floc) = self.any_word("a table flag")?;
                        if f != "dormant" && f != "owner" && f != "persist" {
                            return self.invalid_at(floc, format!("unknown table flag '{f}'"));
                        }
                        table.flags.push(f);
                        if !self.eat(&Tok::Comma)? {
                            break;
                        }
                    }
                    self.end_of_item()?;
                }
                "comment" => {
                    table.comment = Some(self.string("a quoted comment")?);
                    self.end_of_item()?;
                }
                _ => {
                    self.pos -= 1;
                    return self.expected("chain, set, map, counter, quota, limit, flowtable, ...");
                }
            }
        }
    }

    /// After `add chain T`: `NAME [{ ... }]`.
    pub(super) fn chain_command(&mut self, table: &TableId) -> R<Chain> {
        let loc = self.loc();
        let name = self.name("a chain name")?;
        let mut chain = Chain {
            loc,
            name,
            base: None,
            comment: None,
            rules: Vec::new(),
        };
        if self.eat(&Tok::LBrace)? {
            self.chain_block(table, &mut chain)?;
            self.expect(Tok::RBrace, "'}'")?;
            self.end_of_block_or_item()?;
        }
        Ok(chain)
    }

    /// The inside of a chain's braces: base chain spec, policy, device(s),
    /// comment, rules.
    fn chain_block(&mut self, table: &TableId, chain: &mut Chain) -> R<()> {
        self.hook = None;
        let mut policy: Option<(Policy, Loc)> = None;
        let mut devices: Vec<String> = Vec::new();
        loop {
            self.skip_separators()?;
            if self.at(&Tok::RBrace)? || self.at(&Tok::Eof)? {
                break;
            }
            let loc = self.loc();
            let str_next = matches!(self.peek2(), Tok::Str(_));
            match self.word()? {
                Some("type") => {
                    self.pos += 1;
                    let base = self.base_chain_spec(table.family, loc)?;
                    devices.extend(base.devices.iter().cloned());
                    chain.base = Some(base);
                }
                Some("policy") => {
                    self.pos += 1;
                    let (p, ploc) = self.any_word("accept or drop")?;
                    let p = match p.as_str() {
                        "accept" => Policy::Accept,
                        "drop" => Policy::Drop,
                        _ => {
                            self.pos -= 1;
                            return self.expected("accept or drop");
                        }
                    };
                    policy = Some((p, ploc));
                }
                Some("devices") => {
                    self.pos += 1;
                    self.expect(Tok::Assign, "'='")?;
                    devices.extend(self.device_list()?);
                }
                Some("comment") if str_next => {
                    self.pos += 1;
                    chain.comment = Some(self.string("a quoted comment")?);
                }
                _ => {
                    let rule = self.rule()?;
                    chain.rules.push(rule);
                }
            }
            self.end_of_item()?;
        }
        match (&mut chain.base, policy) {
            (Some(b), p) => {
                b.policy = p.map(|(p, _)| p);
                b.devices = devices;
                if matches!(b.hook, Hook::Ingress | Hook::Egress) && b.devices.is_empty() {
                    return self
                        .invalid_at(b.loc, format!("an {} chain needs a device", b.hook.name()));
                }
            }
            (None, Some((_, loc))) => {
                return self.invalid_at(loc, "a policy is only allowed in a base chain");
            }
            (None, None) => {}
        }
        self.hook = None;
        Ok(())
    }

    /// `{ a, b }` or a single name: interface names.
    pub(super) fn device_list(&mut self) -> R<Vec<String>> {
        let mut out = Vec::new();
        if self.eat(&Tok::LBrace)? {
            loop {
                self.skip_newlines()?;
                if self.eat(&Tok::RBrace)? {
                    break;
                }
                out.push(self.name("a device name")?);
                self.skip_newlines()?;
                if !self.eat(&Tok::Comma)? {
                    self.skip_newlines()?;
                    self.expect(Tok::RBrace, "',' or '}'")?;
                    break;
                }
            }
        } else {
            out.push(self.name("a device name")?);
        }
        Ok(out)
    }

    /// After `type`: `filter|nat|route hook H [device D] priority P`.
    fn base_chain_spec(&mut self, family: Family, loc: Loc) -> R<BaseChain> {
        let (t, tloc) = self.any_word("filter, nat or route")?;
        let kind = match t.as_str() {
            "filter" => ChainType::Filter,
            "nat" => ChainType::Nat,
            "route" => ChainType::Route,
            _ => return self.invalid_at(tloc, format!("unknown chain type '{t}'")),
        };
        self.expect_word("hook")?;
        let (h, hloc) = self.any_word("a hook")?;
        let hook = match Hook::from_name(&h) {
            Some(hook) if family.hooks().contains(&hook) => hook,
            _ => {
                return self.invalid_at(
                    hloc,
                    format!("'{h}' is not a hook of family {}", family.name()),
                );
            }
        };
        let type_ok = match kind {
            ChainType::Filter => true,
            ChainType::Nat => {
                matches!(family, Family::Ip | Family::Ip6 | Family::Inet)
                    && matches!(
                        hook,
                        Hook::Prerouting | Hook::Input | Hook::Output | Hook::Postrouting
                    )
            }
            ChainType::Route => {
                matches!(family, Family::Ip | Family::Ip6 | Family::Inet) && hook == Hook::Output
            }
        };
        if !type_ok {
            return self.invalid_at(
                tloc,
                format!("a {t} chain cannot hook {h} in family {}", family.name()),
            );
        }
        let mut devices = Vec::new();
        if self.eat_word("device")? {
            devices.extend(self.device_list()?);
        }
        self.expect_word("priority")?;
        let priority = self.priority(family, hook)?;
        self.hook = Some(hook);
        Ok(BaseChain {
            loc,
            kind,
            hook,
            priority,
            policy: None,
            devices,
        })
    }

    /// A priority: a number, or a standard name with an optional `+ N` /
    /// `- N` offset (`filter - 10`, `filter -10`, `dstnat+5`).
    pub(super) fn priority(&mut self, family: Family, hook: Hook) -> R<Priority> {
        let loc = self.loc();
        let (w, _) = self.any_word("a priority (a number or a name)")?;
        if let Some(v) = parse_i32(&w) {
            return Ok(Priority {
                value: v,
                named: None,
            });
        }
        let (name, mut offset) = match w.split_once('-') {
            Some((n, o)) if !n.is_empty() => match parse_i32(o) {
                Some(o) => (n.to_string(), -o),
                None => return self.invalid_at(loc, format!("invalid priority '{w}'")),
            },
            _ => (w.clone(), 0),
        };
        let Some(base) = std_priority(family, hook, &name) else {
            return self.invalid_at(
                loc,
                format!(
                    "priority '{name}' is not valid for a {} chain of family {}",
                    hook.name(),
                    family.name()
                ),
            );
        };
        if offset == 0 {
            let sign = match self.peek()? {
                Tok::Plus => Some(1),
                Tok::Minus => Some(-1),
                Tok::Word(x) if x.starts_with('-') && parse_i32(x).is_some() => {
                    offset = parse_i32(x).unwrap_or(0);
                    self.pos += 1;
                    None
                }
                _ => None,
            };
            if let Some(s) = sign {
                self.pos += 1;
                let n = self.number("a priority offset")?;
                let Ok(n) = i32::try_from(n) else {
                    return self.invalid_at(loc, "priority offset out of range");
                };
                offset = s * n;
            }
        }
        let Some(value) = base.checked_add(offset) else {
            return self.invalid_at(loc, "priority out of range");
        };
        Ok(Priority {
            value,
            named: Some((name, offset)),
        })
    }
}

fn parse_i32(s: &str) -> Option<i32> {
    match s.strip_prefix('-') {
        Some(r) => super::value::parse_u64(r)
            .and_then(|v| i64::try_from(v).ok())
            .and_then(|v| i32::try_from(-v).ok()),
        None => super::value::parse_u64(s).and_then(|v| i32::try_from(v).ok()),
    }
}
