//! Constants read by the type of what they are compared with or stored in:
//! `22`, `ssh`, `10.0.0.0/8`, `1024-65535`, `established,related`,
//! `(syn|ack)`, `"eth*"`, `1h30m`; concatenations `a . b`; anonymous sets
//! `{ ... }` and `@name`; set and map elements with their options.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::super::ErrorKind;
use super::super::ast::*;
use super::super::lex::{Tok, parse_ether};
use super::super::types::{has_symbols, symbol};
use super::{Parser, R};

/// Decimal or `0x` hexadecimal.
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// A duration: `30`, `30s`, `1h30m`, `500ms`, `2d`, `1w` -> milliseconds.
pub(super) fn parse_time(s: &str) -> Option<u64> {
    if let Some(n) = parse_u64(s) {
        return n.checked_mul(1000);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (mult, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.bytes().next()? {
                b's' => (1000, 1),
                b'm' => (60_000, 1),
                b'h' => (3_600_000, 1),
                b'd' => (86_400_000, 1),
                b'w' => (604_800_000, 1),
                _ => return None,
            }
        };
        rest = &rest[len..];
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(total)
}

/// The widest value of a numeric type, where nft checks it.
fn max_value(ty: DataType) -> u64 {
    use DataType as T;
    match ty {
        T::Bits(n) if n < 64 => (1u64 << n) - 1,
        T::InetService | T::EtherType => 0xffff,
        T::InetProto | T::IcmpType | T::IcmpCode | T::Icmpv6Type | T::Icmpv6Code => 0xff,
        T::IcmpxCode | T::TcpFlag | T::Pkttype | T::NfProto => 0xff,
        T::Dscp => 0x3f,
        T::Ecn => 3,
        T::CtDir | T::Boolean => 1,
        T::Mark | T::CtState | T::CtStatus | T::Uid | T::Gid | T::Devgroup | T::Realm => {
            u32::MAX as u64
        }
        T::FibAddrType | T::IfType => u32::MAX as u64,
        _ => u64::MAX,
    }
}

fn int(ty: DataType, v: u64, symbol: Option<&str>) -> Expr {
    Expr::Const(Const {
        ty,
        value: Value::Int(v),
        symbol: symbol.map(str::to_string),
    })
}

impl Parser<'_> {
    /// One constant of `ty` written as `word` (no prefix or range).
    fn constant(&self, word: &str, ty: DataType, loc: Loc) -> R<Expr> {
        use DataType as T;
        let c = |value| {
            Ok(Expr::Const(Const {
                ty,
                value,
                symbol: None,
            }))
        };
        let bad = |what: &str| self.invalid_at(loc, format!("'{word}' is not {what}"));
        match ty {
            T::Ipv4Addr => match word.parse::<Ipv4Addr>() {
                Ok(a) => c(Value::V4(a)),
                Err(_) if word.parse::<Ipv6Addr>().is_ok() => bad("an IPv4 address"),
                Err(_) => self.invalid_at(
                    loc,
                    format!("'{word}' is not an IPv4 address (host names are not resolved)"),
                ),
            },
            T::Ipv6Addr => match word.parse::<Ipv6Addr>() {
                Ok(a) => c(Value::V6(a)),
                Err(_) => self.invalid_at(
                    loc,
                    format!("'{word}' is not an IPv6 address (host names are not resolved)"),
                ),
            },
            T::EtherAddr => match parse_ether(word) {
                Some(m) => c(Value::Ether(m)),
                None => bad("an Ethernet address"),
            },
            T::IfIndex if word == "missing" || word == "exists" => {
                Ok(int(ty, (word == "exists") as u64, Some(word)))
            }
            T::IfName | T::IfIndex if word.len() > 15 => self.invalid_at(
                loc,
                format!("interface name '{word}' is longer than 15 characters"),
            ),
            T::IfName | T::IfIndex | T::String | T::CtLabel | T::Hour => {
                if word.len() > 255 {
                    return bad("a name (too long)");
                }
                c(Value::Str(word.to_string()))
            }
            T::Time => match parse_time(word) {
                Some(ms) => c(Value::Millis(ms)),
                None => bad("a duration"),
            },
            T::Verdict => bad("a verdict"),
            _ => {
                if let Some(v) = parse_u64(word) {
                    if v > max_value(ty) {
                        return self.invalid_at(
                            loc,
                            format!(
                                "value {v} exceeds the range of {ty:?} (0-{})",
                                max_value(ty)
                            ),
                        );
                    }
                    return Ok(int(ty, v, None));
                }
                match symbol(ty, word) {
                    Some(v) => Ok(int(ty, v, Some(word))),
                    None if has_symbols(ty) || ty == T::InetService => Err(self.error_at(
                        loc,
                        ErrorKind::UnknownSymbol {
                            ty,
                            name: word.to_string(),
                        },
                    )),
                    None => bad("a number"),
                }
            }
        }
    }

    /// A word as a value of `ty`: a constant, `a-b`, `addr/len`.
    pub(super) fn atom(&self, word: &str, ty: DataType, loc: Loc) -> R<Expr> {
        use DataType as T;
        if ty.is_string() || ty == T::Time {
            return self.constant(word, ty, loc);
        }
        if let Ok(e) = self.constant(word, ty, loc) {
            return Ok(e);
        }
        if let Some((a, len)) = word.rsplit_once('/')
            && matches!(ty, T::Ipv4Addr | T::Ipv6Addr)
        {
            let max = if ty == T::Ipv4Addr { 32 } else { 128 };
            let addr = self.constant(a, ty, loc)?;
            return match parse_u64(len) {
                Some(n) if n <= max => Ok(Expr::Prefix(Box::new(addr), n as u8)),
                _ => self.invalid_at(loc, format!("invalid prefix length in '{word}'")),
            };
        }
        for (i, _) in word.match_indices('-') {
            let (a, b) = (&word[..i], &word[i + 1..]);
            if a.is_empty() || b.is_empty() {
                continue;
            }
            if let (Ok(lo), Ok(hi)) = (self.constant(a, ty, loc), self.constant(b, ty, loc)) {
                return self.range(lo, hi, loc);
            }
        }
        self.constant(word, ty, loc)
    }

    fn range(&self, lo: Expr, hi: Expr, loc: Loc) -> R<Expr> {
        let key = |e: &Expr| match e {
            Expr::Const(Const { value, .. }) => match value {
                Value::Int(v) => Some(*v as u128),
                Value::V4(a) => Some(u32::from(*a) as u128),
                Value::V6(a) => Some(u128::from(*a)),
                _ => None,
            },
            _ => None,
        };
        if let (Some(a), Some(b)) = (key(&lo), key(&hi))
            && a > b
        {
            return self.invalid_at(loc, "range has a negative size");
        }
        Ok(Expr::Range(Box::new(lo), Box::new(hi)))
    }

    /// One value of `ty`: a word (with `-`/`/` forms, spaced or not), a
    /// string, `(a|b)`, `a|b`, `[v6addr]`.
    pub(super) fn value(&mut self, ty: DataType) -> R<Expr> {
        let loc = self.loc();
        let first = match self.peek()?.clone() {
            Tok::Word(w) => {
                self.pos += 1;
                self.atom(&w, ty, loc)?
            }
            Tok::Str(s) => {
                self.pos += 1;
                if ty.is_string() {
                    self.constant(&s, ty, loc)?
                } else {
                    self.atom(&s, ty, loc)?
                }
            }
            Tok::LParen => {
                self.pos += 1;
                self.nest()?;
                // Inside parentheses `|` joins flags again: `& (syn|ack)`.
                let operand = std::mem::replace(&mut self.operand, false);
                let v = self.value(ty);
                self.operand = operand;
                let v = v?;
                self.unnest();
                self.expect(Tok::RParen, "')'")?;
                v
            }
            Tok::LBracket if ty == DataType::Ipv6Addr => {
                self.pos += 1;
                let v = self.value(ty)?;
                self.expect(Tok::RBracket, "']'")?;
                v
            }
            _ => return self.expected(&format!("a value of type {ty:?}")),
        };
        let v = match self.peek()? {
            Tok::Minus if !matches!(first, Expr::Range(..) | Expr::Prefix(..)) => {
                self.pos += 1;
                let hi = self.value(ty)?;
                return self.range(first, hi, loc);
            }
            Tok::Slash if matches!(ty, DataType::Ipv4Addr | DataType::Ipv6Addr) => {
                self.pos += 1;
                let n = self.number("a prefix length")?;
                let max = if ty == DataType::Ipv4Addr { 32 } else { 128 };
                if n > max {
                    return self.invalid_at(loc, "invalid prefix length");
                }
                Expr::Prefix(Box::new(first), n as u8)
            }
            _ => first,
        };
        if !self.operand
            && self.at(&Tok::Pipe)?
            && !ty.is_string()
            && let Some(mut acc) = const_int(&v)
        {
            while self.eat(&Tok::Pipe)? {
                let next = self.value(ty)?;
                match const_int(&next) {
                    Some(n) => acc |= n,
                    None => return self.invalid_at(loc, "'|' joins numbers or flags"),
                }
            }
            return Ok(int(ty, acc, None));
        }
        Ok(v)
    }

    /// Values joined by `.`, one per type of `tys`; with `at_least_one`,
    /// fewer parts than types are allowed (a NAT map's `addr [. port]`).
    pub(super) fn concat_value(&mut self, tys: &[DataType], at_least_one: bool) -> R<Expr> {
        let loc = self.loc();
        let mut parts = vec![self.value(tys[0])?];
        while parts.len() < tys.len() && self.eat(&Tok::Dot)? {
            parts.push(self.value(tys[parts.len()])?);
        }
        if parts.len() < tys.len() && !at_least_one {
            return self.invalid_at(
                loc,
                format!("a concatenation of {} values is wanted here", tys.len()),
            );
        }
        if self.at(&Tok::Dot)? {
            return self.invalid_at(loc, "too many values in this concatenation");
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::Concat(parts)
        })
    }

    /// The right side of a match: `{ set }`, `@set`, a (concatenated)
    /// value, or a comma list of flags.
    pub(super) fn rhs(&mut self, tys: &[DataType]) -> R<Expr> {
        match self.peek()?.clone() {
            Tok::LBrace => Ok(Expr::Set(self.set_body(tys, None)?)),
            Tok::At(name) => {
                self.pos += 1;
                Ok(Expr::SetRef(name))
            }
            _ => {
                let loc = self.loc();
                let v = self.concat_value(tys, false)?;
                if !self.at(&Tok::Comma)? {
                    return Ok(v);
                }
                if tys.len() != 1 || !tys[0].is_bitmask() {
                    return self.invalid_at(
                        loc,
                        format!(
                            "a comma list needs a flag type ({:?} is not): use {{ a, b }}",
                            tys[0]
                        ),
                    );
                }
                let mut list = vec![v];
                while self.eat(&Tok::Comma)? {
                    list.push(self.value(tys[0])?);
                }
                Ok(Expr::List(list))
            }
        }
    }

    /// A verdict: `accept`, `drop`, `continue`, `return`, `jump C`, `goto C`.
    pub(super) fn verdict(&mut self) -> R<Option<Verdict>> {
        let v = match self.word()? {
            Some("accept") => Verdict::Accept,
            Some("drop") => Verdict::Drop,
            Some("continue") => Verdict::Continue,
            Some("return") => Verdict::Return,
            Some("jump") | Some("goto") => {
                let jump = self.is_word("jump")?;
                self.pos += 1;
                let c = self.name("a chain name")?;
                return Ok(Some(if jump {
                    Verdict::Jump(c)
                } else {
                    Verdict::Goto(c)
                }));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(v))
    }

    /// `{ elem, ... }` (braces included): keys of types `key`, and for maps
    /// `key : value` with values of types `val` (`[Verdict]` for vmaps).
    /// Nested anonymous sets (from variables) are flattened, as nft does.
    pub(super) fn set_body(
        &mut self,
        key: &[DataType],
        val: Option<&[DataType]>,
    ) -> R<Vec<Element>> {
        self.nest()?;
        self.expect(Tok::LBrace, "'{'")?;
        let mut out = Vec::new();
        loop {
            self.skip_newlines()?;
            if self.eat(&Tok::RBrace)? {
                break;
            }
            if self.at(&Tok::LBrace)? {
                out.extend(self.set_body(key, val)?);
            } else {
                out.push(self.element(key, val)?);
            }
            self.skip_newlines()?;
            if !self.eat(&Tok::Comma)? {
                self.skip_newlines()?;
                self.expect(Tok::RBrace, "',' or '}'")?;
                break;
            }
        }
        self.unnest();
        Ok(out)
    }

    fn element(&mut self, key: &[DataType], val: Option<&[DataType]>) -> R<Element> {
        let loc = self.loc();
        let k = self.concat_value(key, false)?;
        let mut e = Element::new(loc, k);
        self.element_options(&mut e)?;
        if let Some(val) = val {
            self.expect(Tok::Colon, "':' and the mapped value")?;
            let v = if val == [DataType::Verdict] {
                match self.verdict()? {
                    Some(v) => Expr::Verdict(v),
                    None => return self.expected("a verdict"),
                }
            } else {
                self.concat_value(val, true)?
            };
            e.value = Some(v);
            self.element_options(&mut e)?;
        }
        Ok(e)
    }

    /// `timeout T`, `expires T`, `comment "..."`, `counter [packets N
    /// bytes M]` after an element.
    fn element_options(&mut self, e: &mut Element) -> R<()> {
        loop {
            match self.word()? {
                Some("timeout") => {
                    self.pos += 1;
                    e.timeout = Some(self.duration()?);
                }
                Some("expires") => {
                    self.pos += 1;
                    e.expires = Some(self.duration()?);
                }
                Some("comment") => {
                    self.pos += 1;
                    e.comment = Some(self.string("a quoted comment")?);
                }
                Some("counter") => {
                    self.pos += 1;
                    e.counter = Some(self.counter_values()?);
                }
                _ => return Ok(()),
            }
        }
    }

    /// `[packets N bytes M]`.
    pub(super) fn counter_values(&mut self) -> R<(u64, u64)> {
        if self.eat_word("packets")? {
            let p = self.number("a packet count")?;
            self.expect_word("bytes")?;
            let b = self.number("a byte count")?;
            Ok((p, b))
        } else {
            Ok((0, 0))
        }
    }

    /// A duration word, in milliseconds.
    pub(super) fn duration(&mut self) -> R<u64> {
        let (w, loc) = self.any_word("a duration (30s, 1h, 2d...)")?;
        match parse_time(&w) {
            Some(ms) => Ok(ms),
            None => self.invalid_at(loc, format!("'{w}' is not a duration")),
        }
    }
}

fn const_int(e: &Expr) -> Option<u64> {
    match e {
        Expr::Const(Const {
            value: Value::Int(v),
            ..
        }) => Some(*v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations() {
        assert_eq!(parse_u64("0x1f"), Some(31));
        assert_eq!(parse_u64("12"), Some(12));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_time("1h30m"), Some(5_400_000));
        assert_eq!(parse_time("500ms"), Some(500));
        assert_eq!(parse_time("10"), Some(10_000));
        assert_eq!(parse_time("h"), None);
        assert_eq!(parse_time("1x"), None);
    }
}
