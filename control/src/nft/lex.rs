//! nft's tokens, each with its file, line and column.
//!
//! `#` starts a comment to the end of the line, `\` before a newline joins
//! lines, newlines and `;` separate commands and statements (both become
//! [`Tok::Newline`] / [`Tok::Semi`]), strings are `"..."` without escapes
//! (as nft's scanner). Unquoted text is a [`Tok::Word`]: names, numbers,
//! addresses, prefixes (`10.0.0.0/8`), ranges (`1-1024`), rates
//! (`10/second`) and wildcards (`eth*`) stay one word, split later by the
//! type of what they are compared with. A `:` splits words (`10.0.0.1:80`,
//! `22:accept`) except inside an IPv6 or Ethernet address, as in nft.

use std::net::Ipv6Addr;

use super::ast::Loc;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Word(String),
    Str(String),
    /// `$name`.
    Var(String),
    /// `@name`.
    At(String),
    Newline,
    Semi,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Dot,
    Slash,
    Minus,
    Plus,
    /// `=` (in `elements = {`, `devices = {`, `define x = y`).
    Assign,
    EqEq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Amp,
    Pipe,
    Caret,
    Shl,
    Shr,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Var(v) => format!("${v}"),
            Tok::At(v) => format!("@{v}"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
            t => format!("'{}'", t.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Tok::Semi => ";",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Dot => ".",
            Tok::Slash => "/",
            Tok::Minus => "-",
            Tok::Plus => "+",
            Tok::Assign => "=",
            Tok::EqEq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub loc: Loc,
}

/// A lexing error: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct LexError {
    pub loc: Loc,
    pub message: String,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '/' | '*' | '%')
}

/// Splits `text` (file number `file`) into tokens, ending with [`Tok::Eof`].
pub fn lex(text: &str, file: u32) -> Result<Vec<Token>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let loc = |line, col| Loc { file, line, col };
    while i < chars.len() {
        let c = chars[i];
        let start = loc(line, col);
        let push = |tok, n: usize, out: &mut Vec<Token>| {
            out.push(Token { tok, loc: start });
            n
        };
        let n = match c {
            '\n' => {
                out.push(Token {
                    tok: Tok::Newline,
                    loc: start,
                });
                i += 1;
                line += 1;
                col = 1;
                continue;
            }
            ' ' | '\t' | '\r' => 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\\' => {
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\r') {
                    j += 1;
                }
                if j >= chars.len() || chars[j] != '\n' {
                    return Err(LexError {
                        loc: start,
                        message: "'\\' is only allowed at the end of a line".into(),
                    });
                }
                i = j + 1;
                line += 1;
                col = 1;
                continue;
            }
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' && chars[j] != '\n' {
                    j += 1;
                }
                if j >= chars.len() || chars[j] != '"' {
                    return Err(LexError {
                        loc: start,
                        message: "unterminated string".into(),
                    });
                }
                let s: String = chars[i + 1..j].iter().collect();
                push(Tok::Str(s), j + 1 - i, &mut out)
            }
            '$' | '@' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '-' | '.'))
                {
                    j += 1;
                }
                if j == i + 1 {
                    return Err(LexError {
                        loc: start,
                        message: format!("a name must follow '{c}'"),
                    });
                }
                let s: String = chars[i + 1..j].iter().collect();
                let t = if c == '$' { Tok::Var(s) } else { Tok::At(s) };
                push(t, j - i, &mut out)
            }
            ';' => push(Tok::Semi, 1, &mut out),
            '{' => push(Tok::LBrace, 1, &mut out),
            '}' => push(Tok::RBrace, 1, &mut out),
            '(' => push(Tok::LParen, 1, &mut out),
            ')' => push(Tok::RParen, 1, &mut out),
            '[' => push(Tok::LBracket, 1, &mut out),
            ']' => push(Tok::RBracket, 1, &mut out),
            ',' => push(Tok::Comma, 1, &mut out),
            '+' => push(Tok::Plus, 1, &mut out),
            '&' => push(Tok::Amp, 1, &mut out),
            '|' => push(Tok::Pipe, 1, &mut out),
            '^' => push(Tok::Caret, 1, &mut out),
            '=' if chars.get(i + 1) == Some(&'=') => push(Tok::EqEq, 2, &mut out),
            '=' => push(Tok::Assign, 1, &mut out),
            '!' if chars.get(i + 1) == Some(&'=') => push(Tok::Ne, 2, &mut out),
            '<' if chars.get(i + 1) == Some(&'=') => push(Tok::Le, 2, &mut out),
            '<' if chars.get(i + 1) == Some(&'<') => push(Tok::Shl, 2, &mut out),
            '<' => push(Tok::Lt, 1, &mut out),
            '>' if chars.get(i + 1) == Some(&'=') => push(Tok::Ge, 2, &mut out),
            '>' if chars.get(i + 1) == Some(&'>') => push(Tok::Shr, 2, &mut out),
            '>' => push(Tok::Gt, 1, &mut out),
            c if is_word_char(c) => {
                let mut j = i;
                while j < chars.len() && is_word_char(chars[j]) {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                split_word(&word, start, &mut out);
                j - i
            }
            c => {
                return Err(LexError {
                    loc: start,
                    message: format!("unexpected character {c:?}"),
                });
            }
        };
        i += n;
        col += n as u32;
    }
    out.push(Token {
        tok: Tok::Eof,
        loc: loc(line, col),
    });
    Ok(out)
}

/// Pushes the tokens of one run of word characters: `.`, `-`, `/` alone
/// are operators; `:` separates unless the run is an IPv6 or Ethernet
/// address (or a prefix or range of them).
fn split_word(word: &str, start: Loc, out: &mut Vec<Token>) {
    let single = match word {
        "." => Some(Tok::Dot),
        "-" => Some(Tok::Minus),
        "/" => Some(Tok::Slash),
        ":" => Some(Tok::Colon),
        _ => None,
    };
    if let Some(t) = single {
        out.push(Token { tok: t, loc: start });
        return;
    }
    if !word.contains(':') || is_colon_address(word) {
        out.push(Token {
            tok: Tok::Word(word.to_string()),
            loc: start,
        });
        return;
    }
    let mut col = start.col;
    for (k, part) in word.split(':').enumerate() {
        if k > 0 {
            out.push(Token {
                tok: Tok::Colon,
                loc: Loc { col, ..start },
            });
            col += 1;
        }
        if !part.is_empty() {
            let loc = Loc { col, ..start };
            split_word(part, loc, out);
            col += part.chars().count() as u32;
        }
    }
}

/// An IPv6 or Ethernet address, optionally `/len` or `a-b`.
fn is_colon_address(word: &str) -> bool {
    let one = |s: &str| {
        let addr = s.split_once('/').map_or(s, |(a, _)| a);
        addr.parse::<Ipv6Addr>().is_ok() || parse_ether(addr).is_some()
    };
    match word.split_once('-') {
        Some((a, b)) => one(a) && one(b),
        None => one(word),
    }
}

/// `00:11:22:33:44:55`.
pub fn parse_ether(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(':') {
        if n == 6 || part.is_empty() || part.len() > 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s, 0).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            toks("tcp dport { 22, 80 } accept # ssh\n"),
            vec![
                w("tcp"),
                w("dport"),
                Tok::LBrace,
                w("22"),
                Tok::Comma,
                w("80"),
                Tok::RBrace,
                w("accept"),
                Tok::Newline,
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("ip saddr . tcp dport != $x @s"),
            vec![
                w("ip"),
                w("saddr"),
                Tok::Dot,
                w("tcp"),
                w("dport"),
                Tok::Ne,
                Tok::Var("x".into()),
                Tok::At("s".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn colons_split_except_in_addresses() {
        assert_eq!(
            toks("10.0.0.1:80 ::1 fe80::/10 ::1-::5 00:11:22:33:44:55 :8080"),
            vec![
                w("10.0.0.1"),
                Tok::Colon,
                w("80"),
                w("::1"),
                w("fe80::/10"),
                w("::1-::5"),
                w("00:11:22:33:44:55"),
                Tok::Colon,
                w("8080"),
                Tok::Eof
            ]
        );
        let t = lex("a 22:accept", 0).unwrap();
        assert_eq!(t[2].tok, Tok::Colon);
        assert_eq!(t[2].loc.col, 5);
        assert_eq!(t[3].loc.col, 6);
    }

    #[test]
    fn strings_continuations_positions() {
        let t = lex("comment \"a b\" \\\n  x;\n\"open", 3);
        let e = t.unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (3, 1));
        let t = lex("comment \"a b\" \\\n  x;", 3).unwrap();
        assert_eq!(t[1].tok, Tok::Str("a b".into()));
        assert_eq!((t[2].loc.line, t[2].loc.col), (2, 3));
        assert_eq!(t[3].tok, Tok::Semi);
        assert!(lex("a \\ b", 0).is_err());
        assert!(lex("iifname 'eth0'", 0).is_err());
    }
}
