//! A rule: statements until the end of the line, `;` or `}`. Matches
//! (`EXPR [op] VALUE`), `EXPR set VALUE`, `EXPR vmap {...}`, verdicts,
//! `counter`, `log`, `limit`, `quota`, `reject`, NAT (`snat`, `dnat`,
//! `masquerade`, `redirect`), `notrack`, `flow add`, `add/update/delete
//! @set`, `queue`, and the rule's `comment`.

use super::super::ErrorKind;
use super::super::ast::*;
use super::super::lex::Tok;
use super::expr::starts_expr;
use super::{Parser, R};

/// Statements nft has and xgate's parser does not read yet.
const UNSUPPORTED: &[&str] = &[
    "dup",
    "fwd",
    "tproxy",
    "synproxy",
    "secmark",
    "xt",
    "osf",
    "socket",
    "exthdr",
    "ipsec",
    "synproxy",
    "last",
    "connlimit",
];

impl Parser<'_> {
    /// One rule (the cursor at its first statement).
    pub(super) fn rule(&mut self) -> R<Rule> {
        let loc = self.loc();
        let mut rule = Rule {
            loc,
            stmts: Vec::new(),
            comment: None,
        };
        let mut l4 = L4::default();
        while !self.at_end()? {
            if self.eat_word("comment")? {
                rule.comment = Some(self.string("a quoted comment")?);
                continue;
            }
            let s = self.stmt(l4)?;
            if let StmtKind::Match(m) = &s.kind {
                l4.nat |= sets_l4(&m.left, true);
                l4.ct |= sets_l4(&m.left, false);
                l4.l3 = l4.l3.or(sets_l3(m));
            }
            rule.stmts.push(s);
        }
        if rule.stmts.is_empty() {
            return self.expected("a statement");
        }
        Ok(rule)
    }

    /// One statement; `l4`: what earlier matches said about the transport
    /// protocol.
    pub(super) fn stmt(&mut self, l4: L4) -> R<Stmt> {
        let loc = self.loc();
        let kind = self.stmt_kind(l4)?;
        Ok(Stmt { loc, kind })
    }

    fn stmt_kind(&mut self, l4: L4) -> R<StmtKind> {
        if let Some(v) = self.verdict()? {
            return Ok(StmtKind::Verdict(v));
        }
        let Some(w) = self.word()?.map(str::to_string) else {
            return self.expected("a statement");
        };
        if starts_expr(&w) {
            return self.expr_stmt(l4);
        }
        let wloc = self.loc();
        self.pos += 1;
        match w.as_str() {
            "counter" => {
                if self.eat_word("name")? {
                    return Ok(StmtKind::Counter(CounterStmt::Named(
                        self.name("a counter name")?,
                    )));
                }
                let (packets, bytes) = self.counter_values()?;
                Ok(StmtKind::Counter(CounterStmt::Anonymous { packets, bytes }))
            }
            "log" => self.log(),
            "limit" => {
                if self.eat_word("name")? {
                    return Ok(StmtKind::Limit(LimitStmt::Named(
                        self.name("a limit name")?,
                    )));
                }
                self.expect_word("rate")?;
                Ok(StmtKind::Limit(LimitStmt::Rate(self.limit_rate()?)))
            }
            "quota" => {
                if self.eat_word("name")? {
                    return Ok(StmtKind::Quota(QuotaStmt::Named(
                        self.name("a quota name")?,
                    )));
                }
                Ok(StmtKind::Quota(QuotaStmt::Bytes(self.quota()?)))
            }
            "reject" => self.reject(),
            "snat" | "dnat" | "masquerade" | "redirect" => self.nat(&w, wloc, l4),
            "notrack" => Ok(StmtKind::Notrack),
            "flow" => {
                if !self.eat_word("add")? {
                    self.expect_word("offload")?;
                }
                match self.next()?.tok {
                    Tok::At(name) => Ok(StmtKind::Flow { flowtable: name }),
                    _ => {
                        self.pos -= 1;
                        self.expected("@flowtable")
                    }
                }
            }
            "add" | "update" | "delete" => {
                let op = match w.as_str() {
                    "add" => DynsetOp::Add,
                    "update" => DynsetOp::Update,
                    _ => DynsetOp::Delete,
                };
                self.dynset(op)
            }
            "queue" => self.queue(),
            _ if UNSUPPORTED.contains(&w.as_str()) => self.invalid_at(
                wloc,
                format!("the '{w}' statement is not supported by xgate"),
            ),
            _ => {
                self.pos -= 1;
                self.expected("a match or a statement")
            }
        }
    }

    /// A statement starting with an expression: a match, `set`, `vmap`.
    fn expr_stmt(&mut self, l4: L4) -> R<StmtKind> {
        let lloc = self.loc();
        let (left, tys) = self.expr()?;
        if !l4.ct
            && matches!(
                left,
                Expr::Ct(Ct {
                    key: CtKey::ProtoSrc | CtKey::ProtoDst,
                    ..
                })
            )
        {
            return self.invalid_at(
                lloc,
                "ct proto-src/proto-dst need a transport protocol match first \
                 (meta l4proto tcp)",
            );
        }
        if self.eat_word("set")? {
            if tys.len() != 1 {
                return self.invalid("cannot set a concatenation");
            }
            let value = if self.word()?.is_some_and(starts_expr) {
                let (e, etys) = self.expr()?;
                if self.eat_word("map")? {
                    self.map_lookup(e, &etys, &tys)?
                } else {
                    e
                }
            } else {
                self.value(tys[0])?
            };
            return Ok(StmtKind::Set {
                target: left,
                value,
            });
        }
        if self.eat_word("vmap")? {
            let map = match self.peek()?.clone() {
                Tok::At(n) => {
                    self.pos += 1;
                    Expr::SetRef(n)
                }
                _ => Expr::Set(self.set_body(&tys, Some(&[DataType::Verdict]))?),
            };
            return Ok(StmtKind::VerdictMap { key: left, map });
        }
        let op = match self.peek()? {
            Tok::EqEq => Some(RelOp::Eq),
            Tok::Ne => Some(RelOp::Ne),
            Tok::Lt => Some(RelOp::Lt),
            Tok::Gt => Some(RelOp::Gt),
            Tok::Le => Some(RelOp::Le),
            Tok::Ge => Some(RelOp::Ge),
            Tok::Word(w) => match w.as_str() {
                "eq" => Some(RelOp::Eq),
                "ne" => Some(RelOp::Ne),
                "lt" => Some(RelOp::Lt),
                "gt" => Some(RelOp::Gt),
                "le" => Some(RelOp::Le),
                "ge" => Some(RelOp::Ge),
                _ => None,
            },
            _ => None,
        };
        if op.is_some() {
            self.pos += 1;
        }
        if self.at_end()? {
            return self.expected("a value to match");
        }
        let right = self.rhs(&tys)?;
        // `tcp flags syn / fin,syn,rst,ack`: the flags under the mask are
        // the value.
        if self.at(&Tok::Slash)? && tys.len() == 1 && tys[0].is_bitmask() {
            self.pos += 1;
            let mask = self.rhs(&tys)?;
            return Ok(StmtKind::Match(Match {
                left: Expr::Binop {
                    op: BinOp::And,
                    left: Box::new(left),
                    right: Box::new(mask),
                },
                op: op.unwrap_or(RelOp::Eq),
                right,
            }));
        }
        Ok(StmtKind::Match(Match {
            left,
            op: op.unwrap_or(RelOp::Implicit),
            right,
        }))
    }

    /// After `KEY map`: `{ k : v, ... }` or `@m`, values of types `val`.
    fn map_lookup(&mut self, key: Expr, key_tys: &[DataType], val: &[DataType]) -> R<Expr> {
        let map = match self.peek()?.clone() {
            Tok::At(n) => {
                self.pos += 1;
                Expr::SetRef(n)
            }
            _ => Expr::Set(self.set_body(key_tys, Some(val))?),
        };
        Ok(Expr::Map {
            key: Box::new(key),
            map: Box::new(map),
        })
    }

    /// After `log`.
    fn log(&mut self) -> R<StmtKind> {
        let mut log = Log::default();
        while let Some(w) = self.word()?.map(str::to_string) {
            match w.as_str() {
                "prefix" => {
                    self.pos += 1;
                    let p = self.string("a quoted prefix")?;
                    if p.len() > 127 {
                        return self.invalid("log prefix longer than 127 characters");
                    }
                    log.prefix = Some(p);
                }
                "level" => {
                    self.pos += 1;
                    let (l, lloc) = self.any_word("a log level")?;
                    const LEVELS: [&str; 9] = [
                        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit",
                    ];
                    if !LEVELS.contains(&l.as_str()) {
                        return self.invalid_at(lloc, format!("unknown log level '{l}'"));
                    }
                    log.level = Some(l);
                }
                "group" => {
                    self.pos += 1;
                    let loc = self.loc();
                    let g = self.number("a log group")?;
                    log.group = Some(
                        u16::try_from(g).or_else(|_| self.invalid_at(loc, "group out of range"))?,
                    );
                }
                "snaplen" => {
                    self.pos += 1;
                    log.snaplen = Some(self.number("a length")? as u32);
                }
                "queue-threshold" => {
                    self.pos += 1;
                    log.queue_threshold = Some(self.number("a threshold")? as u16);
                }
                "flags" => {
                    self.pos += 1;
                    self.log_flags(&mut log)?;
                }
                _ => break,
            }
        }
        Ok(StmtKind::Log(log))
    }

    fn log_flags(&mut self, log: &mut Log) -> R<()> {
        let (f, floc) = self.any_word("tcp, ip, skuid, ether or all")?;
        match f.as_str() {
            "tcp" => loop {
                let (o, oloc) = self.any_word("sequence or options")?;
                if o != "sequence" && o != "options" {
                    return self.invalid_at(oloc, "tcp log flags are sequence and options");
                }
                log.flags.push(format!("tcp {o}"));
                if !self.eat(&Tok::Comma)? {
                    return Ok(());
                }
            },
            "ip" => {
                self.expect_word("options")?;
                log.flags.push("ip options".into());
            }
            "skuid" | "ether" | "all" => log.flags.push(f),
            _ => return self.invalid_at(floc, format!("unknown log flag '{f}'")),
        }
        Ok(())
    }

    /// After `limit rate`: `[over|until] N/unit [burst M packets]` or
    /// `N bytes-unit/unit [burst M bytes-unit]`.
    pub(super) fn limit_rate(&mut self) -> R<Limit> {
        let over = self.eat_word("over")?;
        if !over {
            self.eat_word("until")?;
        }
        let loc = self.loc();
        let (w, _) = self.any_word("a rate (10/second)")?;
        let (n, mut unit_word) = match w.split_once('/') {
            Some((n, u)) => (n.to_string(), Some(u.to_string())),
            None => (w.clone(), None),
        };
        let Some(mut rate) = super::value::parse_u64(&n) else {
            return self.invalid_at(loc, format!("'{w}' is not a rate"));
        };
        let mut bytes = false;
        if unit_word.is_none() {
            if let Some(u) = self.word()?.map(str::to_string) {
                let (b, per) = match u.split_once('/') {
                    Some((b, p)) => (b.to_string(), Some(p.to_string())),
                    None => (u.clone(), None),
                };
                if let Some(m) = byte_unit(&b) {
                    self.pos += 1;
                    bytes = true;
                    rate = rate.saturating_mul(m);
                    unit_word = per;
                }
            }
            if unit_word.is_none() {
                self.expect(Tok::Slash, "'/' and a time unit")?;
                unit_word = Some(self.any_word("second, minute, hour, day or week")?.0);
            }
        }
        let unit = unit_word.unwrap_or_default();
        let Some(per_secs) = time_unit(&unit) else {
            return self.invalid_at(loc, format!("unknown time unit '{unit}'"));
        };
        if rate == 0 {
            return self.invalid_at(loc, "a rate of 0");
        }
        let mut burst = None;
        if self.eat_word("burst")? {
            let b = self.number("a burst")?;
            let (u, uloc) = self.any_word("packets or a byte unit")?;
            match (u.as_str(), bytes) {
                ("packets", false) => burst = Some(b),
                (u, true) if byte_unit(u).is_some() => {
                    burst = Some(b.saturating_mul(byte_unit(u).unwrap_or(1)))
                }
                _ => return self.invalid_at(uloc, "the burst's unit must match the rate's"),
            }
        }
        Ok(Limit {
            rate,
            per_secs,
            bytes,
            burst,
            over,
        })
    }

    /// `[over|until] N unit [used N unit]`.
    pub(super) fn quota(&mut self) -> R<Quota> {
        let over = self.eat_word("over")?;
        if !over {
            self.eat_word("until")?;
        }
        let bytes = self.byte_amount()?;
        let used = if self.eat_word("used")? {
            self.byte_amount()?
        } else {
            0
        };
        Ok(Quota { bytes, used, over })
    }

    fn byte_amount(&mut self) -> R<u64> {
        let n = self.number("a byte count")?;
        let (u, uloc) = self.any_word("bytes, kbytes, mbytes or gbytes")?;
        match byte_unit(&u) {
            Some(m) => Ok(n.saturating_mul(m)),
            None => self.invalid_at(uloc, format!("unknown byte unit '{u}'")),
        }
    }

    /// After `reject`.
    fn reject(&mut self) -> R<StmtKind> {
        if !self.eat_word("with")? {
            return Ok(StmtKind::Reject(Reject::Default));
        }
        let (k, kloc) = self.any_word("icmp, icmpv6, icmpx or tcp")?;
        let ty = match k.as_str() {
            "tcp" => {
                self.expect_word("reset")?;
                return Ok(StmtKind::Reject(Reject::TcpReset));
            }
            "icmp" => DataType::IcmpCode,
            "icmpv6" => DataType::Icmpv6Code,
            "icmpx" => DataType::IcmpxCode,
            _ => return self.invalid_at(kloc, format!("reject with '{k}'?")),
        };
        if matches!(
            (ty, self.family),
            (DataType::IcmpCode, Family::Ip6) | (DataType::Icmpv6Code, Family::Ip)
        ) {
            return self.invalid_at(
                kloc,
                format!("reject with {k} in a {} table", self.family.name()),
            );
        }
        self.eat_word("type")?;
        let vloc = self.loc();
        let Expr::Const(c) = self.value(ty)? else {
            return self.invalid_at(vloc, "a single reject code");
        };
        Ok(StmtKind::Reject(match ty {
            DataType::IcmpCode => Reject::Icmp(c),
            DataType::Icmpv6Code => Reject::Icmpv6(c),
            _ => Reject::Icmpx(c),
        }))
    }

    /// After `snat`/`dnat`/`masquerade`/`redirect`.
    fn nat(&mut self, w: &str, wloc: Loc, l4: L4) -> R<StmtKind> {
        let kind = match w {
            "snat" => NatKind::Snat,
            "dnat" => NatKind::Dnat,
            "masquerade" => NatKind::Masquerade,
            _ => NatKind::Redirect,
        };
        let mut nat = Nat {
            kind,
            family: None,
            addr_port: false,
            addr: None,
            port: None,
            flags: Vec::new(),
        };
        let with_addr = matches!(kind, NatKind::Snat | NatKind::Dnat);
        if with_addr {
            // `snat ip to ...` names the family; `snat ip saddr map
            // { ... }` looks the address up (no family word).
            let next_is = |t: &Tok| matches!(t, Tok::Word(w) if w == "to" || w == "addr");
            if let Some(f) = self.word()?.and_then(Family::from_name)
                && matches!(f, Family::Ip | Family::Ip6)
                && next_is(self.peek2())
            {
                self.pos += 1;
                nat.family = Some(f);
            }
            if self.eat_word("addr")? {
                self.expect(Tok::Dot, "'.'")?;
                self.expect_word("port")?;
                nat.addr_port = true;
            }
            // `to` may be left out (fw4 writes `dnat 192.168.1.2:22`).
            self.eat_word("to")?;
            let fam = match (nat.family, self.family) {
                (Some(f), _) => f,
                (None, Family::Ip) | (None, Family::Ip6) => self.family,
                // In an inet table without `ip`/`ip6`, nft takes the
                // family from the address.
                (None, _) => match l4.l3 {
                    // nft takes the family from an earlier match.
                    Some(f) => f,
                    None => {
                        return self.invalid_at(
                            wloc,
                            "ip or ip6 must be given with the address in inet tables \
                             (dnat ip to ...), or an earlier match must name the family",
                        );
                    }
                },
            };
            if fam != self.family && self.family != Family::Inet {
                return self.invalid_at(
                    wloc,
                    format!("{} in a {} table", fam.name(), self.family.name()),
                );
            }
            let addr_ty = if fam == Family::Ip6 {
                DataType::Ipv6Addr
            } else {
                DataType::Ipv4Addr
            };
            nat.addr = Some(self.nat_addr(addr_ty, nat.addr_port)?);
            if self.eat(&Tok::Colon)? {
                nat.port = Some(if self.word()?.is_some_and(starts_expr) {
                    let (key, key_tys) = self.expr()?;
                    self.expect_word("map")?;
                    self.map_lookup(key, &key_tys, &[DataType::InetService])?
                } else {
                    self.value(DataType::InetService)?
                });
            }
        } else if self.eat_word("to")? {
            // `redirect to :8080`; fw4 writes `redirect to 8080`.
            self.eat(&Tok::Colon)?;
            nat.port = Some(self.value(DataType::InetService)?);
        }
        // A map looked up by a port (`dnat tcp dport map { ... }`) names
        // the transport protocol itself.
        let keyed_by_port = |e: &Option<Expr>| {
            matches!(e, Some(Expr::Map { key, .. }) if matches!(&**key, Expr::Payload { proto, .. }
                if !matches!(proto, Proto::Ip | Proto::Ip6 | Proto::Ether | Proto::Vlan)))
        };
        if nat.port.is_some() && !l4.nat && !keyed_by_port(&nat.addr) && !keyed_by_port(&nat.port) {
            return self.invalid_at(
                wloc,
                "a port translation is only valid after a transport protocol match",
            );
        }
        while let Some(f @ ("random" | "fully-random" | "persistent" | "netmap")) = self.word()? {
            let f = f.to_string();
            self.pos += 1;
            nat.flags.push(f);
            if !self.eat(&Tok::Comma)? {
                break;
            }
        }
        Ok(StmtKind::Nat(nat))
    }

    /// The address of `snat/dnat to`: a constant (range, prefix, `[v6]`)
    /// or an expression looked up in a map.
    fn nat_addr(&mut self, ty: DataType, addr_port: bool) -> R<Expr> {
        if !self.word()?.is_some_and(starts_expr) {
            if addr_port {
                return self.invalid("addr . port wants a map lookup");
            }
            return self.value(ty);
        }
        let (key, key_tys) = self.expr()?;
        self.expect_word("map")?;
        self.map_lookup(key, &key_tys, &[ty, DataType::InetService])
    }

    /// After `add`/`update`/`delete`: `@set { KEY [timeout T] [stmts] }`.
    fn dynset(&mut self, op: DynsetOp) -> R<StmtKind> {
        let set = match self.next()?.tok {
            Tok::At(n) => n,
            _ => {
                self.pos -= 1;
                return self.expected("@set");
            }
        };
        self.expect(Tok::LBrace, "'{'")?;
        let (key, _) = self.expr()?;
        let mut timeout = None;
        if self.eat_word("timeout")? {
            timeout = Some(self.duration()?);
        }
        let mut stmts = Vec::new();
        while !self.at(&Tok::RBrace)? {
            if self.at_end()? {
                return self.expected("'}'");
            }
            let s = self.stmt(L4::default())?;
            if !matches!(
                s.kind,
                StmtKind::Limit(_) | StmtKind::Counter(_) | StmtKind::Quota(_)
            ) {
                return self.invalid_at(
                    s.loc,
                    "only limit, counter and quota apply to a set element",
                );
            }
            stmts.push(s);
        }
        self.pos += 1;
        Ok(StmtKind::Dynset(Dynset {
            op,
            set,
            key,
            timeout,
            stmts,
        }))
    }

    /// After `queue`: `[flags F,...] [num N[-M]] [bypass|fanout,...]`.
    fn queue(&mut self) -> R<StmtKind> {
        let mut num = None;
        let mut flags = Vec::new();
        loop {
            if self.eat_word("num")? {
                num = Some(self.value(DataType::Integer)?);
            } else if self.eat_word("flags")? {
                loop {
                    flags.push(self.any_word("bypass or fanout")?.0);
                    if !self.eat(&Tok::Comma)? {
                        break;
                    }
                }
            } else if let Some(f @ ("bypass" | "fanout")) = self.word()? {
                let f = f.to_string();
                self.pos += 1;
                flags.push(f);
                self.eat(&Tok::Comma)?;
            } else {
                break;
            }
        }
        for f in &flags {
            if f != "bypass" && f != "fanout" {
                let f = f.clone();
                return Err(self.err(ErrorKind::Invalid(format!("unknown queue flag '{f}'"))));
            }
        }
        Ok(StmtKind::Queue { num, flags })
    }
}

/// What the matches before a statement said about the transport
/// protocol: NAT ports and `ct ... proto-dst` need it named, and nft
/// counts different matches for each.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct L4 {
    /// For a port translation (`ct protocol` counts, `th` does not).
    pub nat: bool,
    /// For `ct original proto-dst` (`ct protocol` does not count).
    pub ct: bool,
    /// The network family an earlier match named (`ip saddr`, `meta
    /// nfproto ipv6`): what `snat to ADDR` in an inet table translates.
    pub l3: Option<Family>,
}

/// The family a match names, if it names one.
fn sets_l3(m: &Match) -> Option<Family> {
    match &m.left {
        Expr::Payload {
            proto: Proto::Ip | Proto::Icmp,
            ..
        } => Some(Family::Ip),
        Expr::Payload {
            proto: Proto::Ip6 | Proto::Icmpv6,
            ..
        } => Some(Family::Ip6),
        Expr::Meta(MetaKey::Nfproto) if m.op != RelOp::Ne => match &m.right {
            Expr::Const(Const {
                value: Value::Int(2),
                ..
            }) => Some(Family::Ip),
            Expr::Const(Const {
                value: Value::Int(10),
                ..
            }) => Some(Family::Ip6),
            _ => None,
        },
        Expr::Concat(parts) => parts.iter().find_map(|p| {
            sets_l3(&Match {
                left: p.clone(),
                op: RelOp::Eq,
                right: m.right.clone(),
            })
            .filter(|_| !matches!(p, Expr::Meta(_)))
        }),
        _ => None,
    }
}

/// Whether a match on `e` names the transport protocol.
fn sets_l4(e: &Expr, nat: bool) -> bool {
    match e {
        Expr::Payload { proto, field } => {
            matches!(
                proto,
                Proto::Tcp | Proto::Udp | Proto::Udplite | Proto::Sctp | Proto::Dccp
            ) || matches!(
                (proto, field),
                (Proto::Ip, PayloadField::Protocol) | (Proto::Ip6, PayloadField::Nexthdr)
            )
        }
        Expr::Meta(MetaKey::L4proto) => true,
        Expr::Ct(Ct {
            key: CtKey::Protocol,
            ..
        }) => nat,
        Expr::Concat(parts) => parts.iter().any(|p| sets_l4(p, nat)),
        Expr::Binop { left, .. } => sets_l4(left, nat),
        _ => false,
    }
}

fn byte_unit(s: &str) -> Option<u64> {
    Some(match s {
        "bytes" => 1,
        "kbytes" => 1 << 10,
        "mbytes" => 1 << 20,
        "gbytes" => 1 << 30,
        _ => return None,
    })
}

fn time_unit(s: &str) -> Option<u64> {
    Some(match s {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        "week" => 604800,
        _ => return None,
    })
}
