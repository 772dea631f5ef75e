//! Sets and maps (`type`/`typeof`, flags, timeout, size, elements),
//! `add element`, and the named objects of a table: counters, quotas,
//! limits, ct helpers, flowtables.

use super::super::ast::*;
use super::super::lex::Tok;
use super::{Parser, R};

impl Parser<'_> {
    /// After `add set|map T`: `NAME { ... }`.
    pub(super) fn set_command(&mut self, map: bool) -> R<Set> {
        let loc = self.loc();
        let name = self.name("a set name")?;
        self.expect(Tok::LBrace, "'{'")?;
        let set = self.set_block(loc, name, map)?;
        self.expect(Tok::RBrace, "'}'")?;
        Ok(set)
    }

    /// The inside of a set's or map's braces.
    pub(super) fn set_block(&mut self, loc: Loc, name: String, map: bool) -> R<Set> {
        let mut set = Set {
            loc,
            name,
            key: SetType {
                types: Vec::new(),
                typeof_exprs: Vec::new(),
            },
            map: None,
            flags: Vec::new(),
            timeout: None,
            gc_interval: None,
            size: None,
            elements: Vec::new(),
            comment: None,
            counter: false,
            auto_merge: false,
            policy: None,
        };
        loop {
            self.skip_separators()?;
            if self.at(&Tok::RBrace)? || self.at(&Tok::Eof)? {
                break;
            }
            let (w, wloc) = self.any_word("type, typeof, flags, elements, ...")?;
            match w.as_str() {
                "type" => {
                    set.key.types = self.type_list()?;
                    if map {
                        self.expect(Tok::Colon, "':' and the mapped type")?;
                        let types = self.type_list()?;
                        set.map = Some(SetType {
                            types,
                            typeof_exprs: Vec::new(),
                        });
                    }
                }
                "typeof" => {
                    set.key = self.typeof_list()?;
                    if map {
                        self.expect(Tok::Colon, "':' and the mapped expression")?;
                        set.map = Some(if self.eat_word("verdict")? {
                            SetType {
                                types: vec![DataType::Verdict],
                                typeof_exprs: Vec::new(),
                            }
                        } else {
                            self.typeof_list()?
                        });
                    }
                }
                "flags" => loop {
                    let (f, floc) = self.any_word("a set flag")?;
                    set.flags.push(match f.as_str() {
                        "constant" => SetFlag::Constant,
                        "interval" => SetFlag::Interval,
                        "timeout" => SetFlag::Timeout,
                        "dynamic" => SetFlag::Dynamic,
                        _ => return self.invalid_at(floc, format!("unknown set flag '{f}'")),
                    });
                    if !self.eat(&Tok::Comma)? {
                        break;
                    }
                },
                "timeout" => set.timeout = Some(self.duration()?),
                "gc-interval" => set.gc_interval = Some(self.duration()?),
                "size" => set.size = Some(self.number("a size")?),
                "policy" => {
                    let (p, ploc) = self.any_word("performance or memory")?;
                    if p != "performance" && p != "memory" {
                        return self.invalid_at(ploc, "set policy is performance or memory");
                    }
                    set.policy = Some(p);
                }
                "auto-merge" => set.auto_merge = true,
                "counter" => set.counter = true,
                "comment" => set.comment = Some(self.string("a quoted comment")?),
                "elements" => {
                    self.expect(Tok::Assign, "'='")?;
                    if set.key.types.is_empty() {
                        return self
                            .invalid_at(wloc, "the set's type must come before its elements");
                    }
                    let val = set.map.as_ref().map(|m| m.types.clone());
                    let elems = self.set_body(&set.key.types.clone(), val.as_deref())?;
                    set.elements.extend(elems);
                }
                _ => {
                    self.pos -= 1;
                    return self.expected("type, typeof, flags, timeout, size, elements, ...");
                }
            }
            self.end_of_item()?;
        }
        if set.key.types.is_empty() {
            return self.invalid_at(loc, format!("set {} has no type", set.name));
        }
        self.check_elements(&set.flags, &set.elements)?;
        self.sets.insert(
            (self.family, set.name.clone()),
            (
                set.key.types.clone(),
                set.map.as_ref().map(|m| m.types.clone()),
                set.flags.clone(),
            ),
        );
        Ok(set)
    }

    /// Ranges and prefixes need `flags interval`, as nft says.
    fn check_elements(&self, flags: &[SetFlag], elems: &[Element]) -> R<()> {
        if flags.contains(&SetFlag::Interval) {
            return Ok(());
        }
        for e in elems {
            if has_interval(&e.key) {
                return self
                    .invalid_at(e.loc, "a range or prefix in a set without 'flags interval'");
            }
        }
        Ok(())
    }

    /// `ipv4_addr . inet_service`.
    fn type_list(&mut self) -> R<Vec<DataType>> {
        let mut out = Vec::new();
        loop {
            let (t, tloc) = self.any_word("a type name (ipv4_addr, inet_service, ...)")?;
            match DataType::from_type_name(&t) {
                Some(ty) => out.push(ty),
                None => return self.invalid_at(tloc, format!("unknown type '{t}'")),
            }
            if !self.eat(&Tok::Dot)? {
                return Ok(out);
            }
        }
    }

    /// `ip saddr . tcp dport` as a set's type.
    fn typeof_list(&mut self) -> R<SetType> {
        let (e, types) = self.expr()?;
        let typeof_exprs = match e {
            Expr::Concat(parts) => parts,
            e => vec![e],
        };
        Ok(SetType {
            types,
            typeof_exprs,
        })
    }

    /// After `add|delete element T S`: `{ ... }` typed by the set's
    /// declaration earlier in the text.
    pub(super) fn element_command(&mut self, table: &TableId, set: &str) -> R<Vec<Element>> {
        let loc = self.loc();
        let Some((key, val, flags)) = self.sets.get(&(table.family, set.to_string())).cloned()
        else {
            return self.invalid_at(
                loc,
                format!(
                    "set {set} is not declared in table {} {}",
                    table.family.name(),
                    table.name
                ),
            );
        };
        let elems = self.set_body(&key, val.as_deref())?;
        self.check_elements(&flags, &elems)?;
        Ok(elems)
    }

    /// After `add counter|quota|limit|ct helper T`: `NAME [{ ... }]`.
    pub(super) fn object_command(&mut self, what: &str) -> R<Object> {
        let loc = self.loc();
        self.object_decl(loc, what)
    }

    /// `NAME [{ ... }]` of a counter, quota, limit or ct helper.
    pub(super) fn object_decl(&mut self, loc: Loc, what: &str) -> R<Object> {
        let name = self.name("an object name")?;
        let braces = self.eat(&Tok::LBrace)?;
        let mut comment = None;
        let mut body = None;
        loop {
            if braces {
                self.skip_separators()?;
                if self.at(&Tok::RBrace)? {
                    break;
                }
            }
            if self.eat_word("comment")? {
                comment = Some(self.string("a quoted comment")?);
            } else if body.is_none() {
                body = Some(self.object_body(what, braces)?);
            } else {
                return self.expected("'}'");
            }
            if !braces {
                break;
            }
            self.end_of_item()?;
        }
        if braces {
            self.expect(Tok::RBrace, "'}'")?;
        }
        let kind = match body {
            Some(b) => b,
            None if what == "counter" => ObjectBody::Counter {
                packets: 0,
                bytes: 0,
            },
            None => return self.invalid_at(loc, format!("{what} {name} has no definition")),
        };
        Ok(Object {
            loc,
            name,
            kind,
            comment,
        })
    }

    fn object_body(&mut self, what: &str, braces: bool) -> R<ObjectBody> {
        Ok(match what {
            "counter" => {
                let (packets, bytes) = self.counter_values()?;
                ObjectBody::Counter { packets, bytes }
            }
            "quota" => ObjectBody::Quota(self.quota()?),
            "limit" => {
                self.expect_word("rate")?;
                ObjectBody::Limit(self.limit_rate()?)
            }
            _ => {
                if !braces {
                    return self.expected("'{'");
                }
                let mut helper = None;
                let mut protocol = None;
                let mut l3proto = None;
                loop {
                    match self.word()? {
                        Some("type") => {
                            self.pos += 1;
                            helper = Some(self.string("a quoted helper name")?);
                            self.expect_word("protocol")?;
                            let (p, ploc) = self.any_word("tcp or udp")?;
                            protocol = Some(match p.as_str() {
                                "tcp" => 6,
                                "udp" => 17,
                                _ => {
                                    return self
                                        .invalid_at(ploc, "a helper's protocol is tcp or udp");
                                }
                            });
                        }
                        Some("l3proto") => {
                            self.pos += 1;
                            let (f, floc) = self.any_word("ip, ip6 or inet")?;
                            l3proto = match Family::from_name(&f) {
                                Some(f @ (Family::Ip | Family::Ip6 | Family::Inet)) => Some(f),
                                _ => return self.invalid_at(floc, "l3proto is ip, ip6 or inet"),
                            };
                        }
                        _ => break,
                    }
                    self.end_of_item()?;
                    self.skip_separators()?;
                }
                let (Some(helper), Some(protocol)) = (helper, protocol) else {
                    return self.expected("type \"NAME\" protocol tcp|udp");
                };
                ObjectBody::CtHelper {
                    helper,
                    protocol,
                    l3proto,
                }
            }
        })
    }

    /// After `add flowtable T`.
    pub(super) fn flowtable_command(&mut self) -> R<Flowtable> {
        let loc = self.loc();
        self.flowtable_decl(loc)
    }

    /// `NAME { hook ingress priority P; devices = { ... }; [flags
    /// offload;] [counter] }`.
    pub(super) fn flowtable_decl(&mut self, loc: Loc) -> R<Flowtable> {
        let name = self.name("a flowtable name")?;
        self.expect(Tok::LBrace, "'{'")?;
        let mut ft = Flowtable {
            loc,
            name,
            hook: Hook::Ingress,
            priority: Priority {
                value: 0,
                named: None,
            },
            devices: Vec::new(),
            offload: false,
            counter: false,
        };
        let mut hooked = false;
        loop {
            self.skip_separators()?;
            if self.at(&Tok::RBrace)? || self.at(&Tok::Eof)? {
                break;
            }
            let (w, wloc) = self.any_word("hook, devices, flags or counter")?;
            match w.as_str() {
                "hook" => {
                    self.expect_word("ingress")?;
                    self.expect_word("priority")?;
                    ft.priority = self.priority(Family::Netdev, Hook::Ingress)?;
                    hooked = true;
                }
                "devices" => {
                    self.expect(Tok::Assign, "'='")?;
                    ft.devices = self.device_list()?;
                }
                "flags" => {
                    self.expect_word("offload")?;
                    ft.offload = true;
                }
                "counter" => ft.counter = true,
                _ => return self.invalid_at(wloc, format!("unexpected '{w}' in a flowtable")),
            }
            self.end_of_item()?;
        }
        self.expect(Tok::RBrace, "'}'")?;
        if !hooked {
            return self.invalid_at(loc, "a flowtable needs 'hook ingress priority P'");
        }
        Ok(ft)
    }
}

fn has_interval(e: &Expr) -> bool {
    match e {
        Expr::Range(..) | Expr::Prefix(..) => true,
        // An interface name wildcard is a prefix of the name, an interval
        // to nft.
        Expr::Const(Const {
            value: Value::Str(s),
            ..
        }) => s.ends_with('*') && !s.ends_with("\\*"),
        Expr::Concat(parts) => parts.iter().any(has_interval),
        _ => false,
    }
}
