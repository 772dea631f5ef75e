//! What a rule matches on: payload fields (`ip saddr`, `tcp dport`, `th
//! dport`), `meta` keys (qualified or not: `meta l4proto`, `iifname`), `ct
//! [original|reply] KEY`, `fib FLAGS RESULT`, `numgen`, `jhash`/`symhash`;
//! concatenations with `.` and bitwise operators (`tcp flags & (syn|ack)`,
//! `meta mark & 0xff`). Each comes with the types of its value, so the
//! right side can be read by them.

use super::super::ErrorKind;
use super::super::ast::*;
use super::super::lex::Tok;
use super::super::types::{META_KEYS, payload_fields};
use super::{Parser, R};

/// Words that start an expression (where a statement could also start).
pub(super) fn starts_expr(w: &str) -> bool {
    Proto::from_name(w).is_some()
        || matches!(
            w,
            "meta" | "ct" | "fib" | "numgen" | "jhash" | "symhash" | "rt"
        )
        || META_KEYS.iter().any(|(n, _, bare, _)| *bare && *n == w)
}

const CT_KEYS: &[(&str, CtKey)] = &[
    ("state", CtKey::State),
    ("status", CtKey::Status),
    ("mark", CtKey::Mark),
    ("direction", CtKey::Direction),
    ("helper", CtKey::Helper),
    ("expiration", CtKey::Expiration),
    ("zone", CtKey::Zone),
    ("label", CtKey::Label),
    ("l3proto", CtKey::L3proto),
    ("protocol", CtKey::Protocol),
    ("bytes", CtKey::Bytes),
    ("packets", CtKey::Packets),
    ("avgpkt", CtKey::Avgpkt),
    ("id", CtKey::Id),
    ("saddr", CtKey::Saddr(None)),
    ("daddr", CtKey::Daddr(None)),
    ("proto-src", CtKey::ProtoSrc),
    ("proto-dst", CtKey::ProtoDst),
];

impl Parser<'_> {
    /// An expression and the types of its value (one per concatenated
    /// part), with `.` concatenation and `& | ^ << >>` operators.
    pub(super) fn expr(&mut self) -> R<(Expr, Vec<DataType>)> {
        let (first, ty) = self.primary_expr()?;
        let mut parts = vec![first];
        let mut tys = vec![ty];
        while self.at(&Tok::Dot)? {
            self.pos += 1;
            let (e, t) = self.primary_expr()?;
            parts.push(e);
            tys.push(t);
        }
        let mut e = if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::Concat(parts)
        };
        loop {
            let op = match self.peek()? {
                Tok::Amp => BinOp::And,
                Tok::Pipe => BinOp::Or,
                Tok::Caret => BinOp::Xor,
                Tok::Shl => BinOp::Shl,
                Tok::Shr => BinOp::Shr,
                Tok::Word(w) => match w.as_str() {
                    "and" => BinOp::And,
                    "or" => BinOp::Or,
                    "xor" => BinOp::Xor,
                    "lshift" => BinOp::Shl,
                    "rshift" => BinOp::Shr,
                    _ => break,
                },
                _ => break,
            };
            if tys.len() != 1 {
                return self
                    .invalid("a bitwise operator needs a single value, not a concatenation");
            }
            self.pos += 1;
            // A top-level `|` after the operand is the next operator.
            let operand = std::mem::replace(&mut self.operand, true);
            let right = if matches!(op, BinOp::Shl | BinOp::Shr) {
                self.value(DataType::Integer)
            } else {
                self.operand(tys[0])
            };
            self.operand = operand;
            let right = right?;
            e = Expr::Binop {
                op,
                left: Box::new(e),
                right: Box::new(right),
            };
        }
        Ok((e, tys))
    }

    /// The right side of a bitwise operator or a `set` statement: an
    /// expression (`ct mark`, `meta mark`) or a constant of `ty`.
    pub(super) fn operand(&mut self, ty: DataType) -> R<Expr> {
        if self.word()?.is_some_and(starts_expr) {
            let (e, _) = self.expr()?;
            Ok(e)
        } else {
            self.value(ty)
        }
    }

    fn primary_expr(&mut self) -> R<(Expr, DataType)> {
        self.nest()?;
        let r = self.primary_inner();
        self.unnest();
        r
    }

    fn primary_inner(&mut self) -> R<(Expr, DataType)> {
        let loc = self.loc();
        let Some(w) = self.word()?.map(str::to_string) else {
            if self.eat(&Tok::LParen)? {
                let r = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                return match r.1.as_slice() {
                    [t] => Ok((r.0, *t)),
                    _ => self.invalid_at(loc, "a concatenation in parentheses"),
                };
            }
            return self.expected("an expression (ip saddr, tcp dport, meta ..., ct ...)");
        };
        self.pos += 1;
        if let Some(proto) = Proto::from_name(&w) {
            return self.payload(proto, &w);
        }
        match w.as_str() {
            "meta" => {
                let (k, kloc) = self.any_word("a meta key")?;
                match META_KEYS.iter().find(|(n, ..)| *n == k) {
                    Some((_, key, _, ty)) => Ok((Expr::Meta(*key), *ty)),
                    None => Err(self.error_at(
                        kloc,
                        ErrorKind::UnknownKey {
                            what: "meta key",
                            name: k,
                            known: META_KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
                        },
                    )),
                }
            }
            "ct" => self.ct(),
            "fib" => self.fib(),
            "rt" => {
                let (k, kloc) = self.any_word("mtu, classid or nexthop")?;
                match k.as_str() {
                    "mtu" => Ok((Expr::Rt(RtKey::Mtu), DataType::Bits(16))),
                    "classid" => Ok((Expr::Rt(RtKey::Classid), DataType::Realm)),
                    "nexthop" => match self.family {
                        Family::Ip => {
                            Ok((Expr::Rt(RtKey::Nexthop(Family::Ip)), DataType::Ipv4Addr))
                        }
                        Family::Ip6 => {
                            Ok((Expr::Rt(RtKey::Nexthop(Family::Ip6)), DataType::Ipv6Addr))
                        }
                        _ => self.invalid_at(
                            kloc,
                            "cannot tell the IP version of rt nexthop outside ip and ip6 tables",
                        ),
                    },
                    _ => Err(self.error_at(
                        kloc,
                        ErrorKind::UnknownKey {
                            what: "rt key",
                            name: k,
                            known: "mtu, classid, nexthop".into(),
                        },
                    )),
                }
            }
            "numgen" => {
                let (m, mloc) = self.any_word("inc or random")?;
                let random = match m.as_str() {
                    "inc" => false,
                    "random" => true,
                    _ => return self.invalid_at(mloc, "numgen wants inc or random"),
                };
                let (modulus, offset) = self.mod_offset(false)?.0;
                Ok((
                    Expr::Numgen {
                        random,
                        modulus,
                        offset,
                    },
                    DataType::Integer,
                ))
            }
            "jhash" => {
                let (key, _) = self.expr()?;
                let ((modulus, offset), seed) = self.mod_offset(true)?;
                Ok((
                    Expr::Hash {
                        key: Some(Box::new(key)),
                        modulus,
                        seed,
                        offset,
                    },
                    DataType::Integer,
                ))
            }
            "symhash" => {
                let ((modulus, offset), _) = self.mod_offset(false)?;
                Ok((
                    Expr::Hash {
                        key: None,
                        modulus,
                        seed: None,
                        offset,
                    },
                    DataType::Integer,
                ))
            }
            _ => match META_KEYS.iter().find(|(n, _, bare, _)| *bare && *n == w) {
                Some((_, key, _, ty)) => Ok((Expr::Meta(*key), *ty)),
                None => {
                    self.pos -= 1;
                    self.expected("an expression (ip saddr, tcp dport, meta ..., ct ...)")
                }
            },
        }
    }

    /// `mod N [seed S] [offset K]`.
    fn mod_offset(&mut self, seed_ok: bool) -> R<((u32, u32), Option<u32>)> {
        self.expect_word("mod")?;
        let loc = self.loc();
        let m = self.number("a modulus")?;
        if m == 0 || m > u32::MAX as u64 {
            return self.invalid_at(loc, "the modulus must be between 1 and 2^32-1");
        }
        let mut seed = None;
        if seed_ok && self.eat_word("seed")? {
            seed = Some(self.number("a seed")? as u32);
        }
        let mut offset = 0;
        if self.eat_word("offset")? {
            let oloc = self.loc();
            let o = self.number("an offset")?;
            offset = u32::try_from(o).or_else(|_| self.invalid_at(oloc, "offset out of range"))?;
        }
        Ok(((m as u32, offset), seed))
    }

    fn payload(&mut self, proto: Proto, name: &str) -> R<(Expr, DataType)> {
        if proto == Proto::Tcp && self.eat_word("option")? {
            return self.tcp_option();
        }
        let fields = payload_fields(proto);
        let (f, floc) = match self.peek()? {
            Tok::Word(f) => {
                let f = f.clone();
                let l = self.loc();
                self.pos += 1;
                (f, l)
            }
            _ => return self.expected(&format!("a field of {name}")),
        };
        match fields.iter().find(|(n, ..)| *n == f) {
            Some((_, field, ty)) => Ok((
                Expr::Payload {
                    proto,
                    field: *field,
                },
                *ty,
            )),
            None => Err(self.error_at(
                floc,
                ErrorKind::UnknownKey {
                    what: "header field",
                    name: format!("{name} {f}"),
                    known: fields.iter().map(|f| f.0).collect::<Vec<_>>().join(", "),
                },
            )),
        }
    }

    /// After `tcp option`: `NAME|NUMBER [FIELD]`.
    fn tcp_option(&mut self) -> R<(Expr, DataType)> {
        let (o, oloc) = self.any_word("a TCP option (maxseg, window, sack-perm, ...)")?;
        let kind = match o.as_str() {
            "eol" => 0,
            "nop" => 1,
            "maxseg" | "mss" => 2,
            "window" => 3,
            "sack-perm" | "sack-permitted" => 4,
            "sack" | "sack0" => 5,
            "timestamp" => 8,
            _ => match super::value::parse_u64(&o) {
                Some(n) if n <= 255 => n as u8,
                _ => {
                    return Err(self.error_at(
                        oloc,
                        ErrorKind::UnknownKey {
                            what: "TCP option",
                            name: o,
                            known: "eol, nop, maxseg, window, sack-perm, sack, timestamp, 0-255"
                                .into(),
                        },
                    ));
                }
            },
        };
        let field = match (kind, self.word()?) {
            (_, Some("length")) => Some((TcpOptionField::Length, DataType::Bits(8))),
            (2, Some("size")) => Some((TcpOptionField::Size, DataType::Bits(16))),
            (3, Some("count")) => Some((TcpOptionField::Count, DataType::Bits(8))),
            (5, Some("left")) => Some((TcpOptionField::Left, DataType::Bits(32))),
            (5, Some("right")) => Some((TcpOptionField::Right, DataType::Bits(32))),
            (8, Some("tsval")) => Some((TcpOptionField::Tsval, DataType::Bits(32))),
            (8, Some("tsecr")) => Some((TcpOptionField::Tsecr, DataType::Bits(32))),
            _ => None,
        };
        if field.is_some() {
            self.pos += 1;
        }
        Ok((
            Expr::TcpOption {
                kind,
                field: field.map(|f| f.0),
            },
            field.map_or(DataType::Boolean, |f| f.1),
        ))
    }

    /// After `ct`: `[original|reply] KEY`, `original ip saddr`.
    fn ct(&mut self) -> R<(Expr, DataType)> {
        let dir = if self.eat_word("original")? {
            Some(CtDir::Original)
        } else if self.eat_word("reply")? {
            Some(CtDir::Reply)
        } else {
            None
        };
        let (mut k, mut kloc) = self.any_word("a ct key")?;
        let mut fam = None;
        if (k == "ip" || k == "ip6") && dir.is_some() {
            fam = Family::from_name(&k);
            (k, kloc) = self.any_word("saddr or daddr")?;
        }
        let Some(&(_, key)) = CT_KEYS.iter().find(|(n, _)| *n == k) else {
            return Err(self.error_at(
                kloc,
                ErrorKind::UnknownKey {
                    what: "ct key",
                    name: k,
                    known: CT_KEYS.iter().map(|k| k.0).collect::<Vec<_>>().join(", "),
                },
            ));
        };
        let addr_ty = |f: Option<Family>| match f {
            Some(Family::Ip6) => DataType::Ipv6Addr,
            _ => DataType::Ipv4Addr,
        };
        let (key, ty) = match key {
            CtKey::Saddr(_) | CtKey::Daddr(_) => {
                let f = match fam {
                    Some(f) => Some(f),
                    None => match self.family {
                        Family::Ip | Family::Ip6 => Some(self.family),
                        _ => {
                            return self.invalid_at(
                                kloc,
                                "cannot tell the IP version: write ct original ip saddr or \
                                 ct original ip6 saddr",
                            );
                        }
                    },
                };
                let k = if matches!(key, CtKey::Saddr(_)) {
                    CtKey::Saddr(fam)
                } else {
                    CtKey::Daddr(fam)
                };
                (k, addr_ty(f))
            }
            CtKey::State => (key, DataType::CtState),
            CtKey::Status => (key, DataType::CtStatus),
            CtKey::Mark => (key, DataType::Mark),
            CtKey::Direction => (key, DataType::CtDir),
            CtKey::Helper => (key, DataType::String),
            CtKey::Expiration => (key, DataType::Time),
            CtKey::Label => (key, DataType::CtLabel),
            CtKey::L3proto => (key, DataType::NfProto),
            CtKey::Protocol => (key, DataType::InetProto),
            CtKey::ProtoSrc | CtKey::ProtoDst => (key, DataType::InetService),
            _ => (key, DataType::Integer),
        };
        if dir.is_none()
            && matches!(
                key,
                CtKey::Saddr(_) | CtKey::Daddr(_) | CtKey::ProtoSrc | CtKey::ProtoDst
            )
        {
            return self.invalid_at(kloc, "this ct key needs a direction (original or reply)");
        }
        Ok((Expr::Ct(Ct { dir, key }), ty))
    }

    /// After `fib`: `FLAG [. FLAG]... oif|oifname|type`.
    fn fib(&mut self) -> R<(Expr, DataType)> {
        let mut flags = Vec::new();
        loop {
            let (f, floc) = self.any_word("saddr, daddr, mark, iif or oif")?;
            let flag = match f.as_str() {
                "saddr" => FibFlag::Saddr,
                "daddr" => FibFlag::Daddr,
                "mark" => FibFlag::Mark,
                "iif" => FibFlag::Iif,
                "oif" => FibFlag::Oif,
                _ => {
                    return Err(self.error_at(
                        floc,
                        ErrorKind::UnknownKey {
                            what: "fib flag",
                            name: f,
                            known: "saddr, daddr, mark, iif, oif".into(),
                        },
                    ));
                }
            };
            flags.push(flag);
            if !self.eat(&Tok::Dot)? {
                break;
            }
        }
        let (r, rloc) = self.any_word("oif, oifname or type")?;
        let (result, ty) = match r.as_str() {
            "oif" => (FibResult::Oif, DataType::IfIndex),
            "oifname" => (FibResult::Oifname, DataType::IfName),
            "type" => (FibResult::Type, DataType::FibAddrType),
            _ => {
                return self.invalid_at(
                    rloc,
                    format!("unknown fib result '{r}' (oif, oifname, type)"),
                );
            }
        };
        let addrs = flags
            .iter()
            .filter(|f| matches!(f, FibFlag::Saddr | FibFlag::Daddr))
            .count();
        if addrs != 1 {
            return self.invalid_at(rloc, "fib needs exactly one of saddr and daddr");
        }
        if flags.contains(&FibFlag::Iif) && flags.contains(&FibFlag::Oif) {
            return self.invalid_at(rloc, "fib: iif and oif are mutually exclusive");
        }
        Ok((Expr::Fib(Fib { flags, result }), ty))
    }
}
