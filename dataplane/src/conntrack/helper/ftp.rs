//! The FTP helper's reading and writing of the control connection
//! (RFC 959, RFC 2428): the commands and replies that announce a data
//! connection's address and port, and the text a rewrite puts in their
//! place. Pure functions over byte slices; `pipeline/helper.rs` applies
//! them.
//!
//! As Linux's `nf_conntrack_ftp`:
//! - From the client (original direction): `PORT h1,h2,h3,h4,p1,p2` and
//!   `EPRT |af|addr|port|`; from the server (reply direction): `227 ...
//!   (h1,h2,h3,h4,p1,p2)` and `229 ... (|||port|)`. Case-insensitive.
//! - Only a segment that starts with the command is read (the caller also
//!   checks that the segment starts a line), and the numbers must end
//!   within the segment: a command split across segments is not
//!   reassembled. A segment holding only the start of one is
//!   [`Parsed::Partial`] (Linux drops it, expecting the sender to
//!   retransmit it whole, which Linux's TCP does by collapsing the
//!   retransmission with what follows).
//! - Unlike Linux, which drops a segment whose numbers do not parse, a
//!   malformed command is [`Parsed::Malformed`]: counted and left alone.
//!
//! Nothing here panics on any input (see the tests, and the fuzz-like
//! loop over every prefix and mutation of real commands).

use std::fmt::Write;

use crate::addr::v4_key;
use crate::conntrack::Dir;

/// Which command or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `PORT h1,h2,h3,h4,p1,p2` (RFC 959, client).
    Port,
    /// `EPRT |1|addr|port|` or `|2|...` (RFC 2428, client).
    Eprt,
    /// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (server).
    Pasv,
    /// `229 Entering Extended Passive Mode (|||port|)` (server).
    Epsv,
}

/// A command that announces a data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub form: Form,
    /// The announced address (IPv4 as an IPv4-mapped key); `None` for
    /// EPSV, whose address is the sender's.
    pub addr: Option<u128>,
    /// The address is IPv6 (EPRT `|2|`).
    pub v6: bool,
    pub port: u16,
    /// The bytes of the segment's payload a rewrite replaces:
    /// `start..end` (the numbers, or EPRT/EPSV's delimited part).
    pub start: usize,
    pub end: usize,
}

/// What a segment's payload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No command of interest.
    Nothing,
    /// The start of one, cut off by the end of the segment.
    Partial,
    /// A command of interest that does not parse.
    Malformed,
    Command(Command),
}

/// The longest numbers part read (a longer one is malformed).
const MAX_FIELD: usize = 128;

/// Reads the command at the start of `data`, a segment's payload
/// travelling in direction `dir`.
pub fn parse(dir: Dir, data: &[u8]) -> Parsed {
    let patterns: &[(&[u8], Form)] = match dir {
        Dir::Original => &[(b"PORT", Form::Port), (b"EPRT", Form::Eprt)],
        Dir::Reply => &[(b"227 ", Form::Pasv), (b"229 ", Form::Epsv)],
    };
    for &(pat, form) in patterns {
        if data.len() <= pat.len() {
            if data[..].eq_ignore_ascii_case(&pat[..data.len()]) && !data.is_empty() {
                return Parsed::Partial;
            }
            continue;
        }
        if !data[..pat.len()].eq_ignore_ascii_case(pat) {
            continue;
        }
        let mut i = pat.len();
        return match form {
            Form::Port | Form::Eprt => {
                // "PORT" then spaces.
                while i < data.len() && data[i] == b' ' {
                    i += 1;
                }
                if i == data.len() {
                    return Parsed::Partial;
                }
                if i == pat.len() {
                    // "PORTS..." is another word.
                    return Parsed::Nothing;
                }
                if form == Form::Port {
                    rfc959(form, data, i, |c| c == b'\r' || c == b'\n')
                } else {
                    eprt(data, i)
                }
            }
            Form::Pasv | Form::Epsv => {
                // To the '(' (for 227 also the first digit, as some
                // servers leave the parentheses out), within the line.
                loop {
                    let Some(&c) = data.get(i) else {
                        return Parsed::Partial;
                    };
                    if c == b'\n' || i > MAX_FIELD + pat.len() {
                        return Parsed::Malformed;
                    }
                    if c == b'(' {
                        i += 1;
                        break;
                    }
                    if form == Form::Pasv && c.is_ascii_digit() {
                        break;
                    }
                    i += 1;
                }
                if form == Form::Pasv {
                    rfc959(form, data, i, |c| !c.is_ascii_digit() && c != b',')
                } else {
                    epsv(data, i)
                }
            }
        };
    }
    Parsed::Nothing
}

/// `h1,h2,h3,h4,p1,p2` at `data[at..]`, ended by a byte `term` accepts.
fn rfc959(form: Form, data: &[u8], at: usize, term: impl Fn(u8) -> bool) -> Parsed {
    let mut n = [0u32; 6];
    let mut x = 0;
    let mut digits = 0;
    let mut i = at;
    loop {
        let Some(&c) = data.get(i) else {
            return Parsed::Partial;
        };
        if i - at > MAX_FIELD {
            return Parsed::Malformed;
        }
        if c.is_ascii_digit() {
            digits += 1;
            n[x] = n[x] * 10 + u32::from(c - b'0');
            if digits > 3 || n[x] > 255 {
                return Parsed::Malformed;
            }
        } else if c == b',' && x < 5 && digits > 0 {
            x += 1;
            digits = 0;
        } else if x == 5 && digits > 0 && term(c) {
            break;
        } else {
            return Parsed::Malformed;
        }
        i += 1;
    }
    let a = n[0] << 24 | n[1] << 16 | n[2] << 8 | n[3];
    Parsed::Command(Command {
        form,
        addr: Some(v4_key(a)),
        v6: false,
        port: (n[4] << 8 | n[5]) as u16,
        start: at,
        end: i,
    })
}

/// A port ended by `delim` at `data[at..]`; returns it and the index
/// after the delimiter.
fn port_to(data: &[u8], at: usize, delim: u8) -> Result<(u16, usize), Parsed> {
    let mut p: u32 = 0;
    let mut i = at;
    loop {
        let Some(&c) = data.get(i) else {
            return Err(Parsed::Partial);
        };
        if c == delim && i > at {
            break;
        }
        if !c.is_ascii_digit() || i - at >= 5 {
            return Err(Parsed::Malformed);
        }
        p = p * 10 + u32::from(c - b'0');
        i += 1;
    }
    if p == 0 || p > 65_535 {
        return Err(Parsed::Malformed);
    }
    Ok((p as u16, i + 1))
}

fn delimiter(c: u8) -> bool {
    (33..=126).contains(&c) && !c.is_ascii_digit()
}

/// `|af|addr|port|` at `data[at..]` (RFC 2428 section 2).
fn eprt(data: &[u8], at: usize) -> Parsed {
    if data.len() < at + 4 {
        return Parsed::Partial;
    }
    let d = data[at];
    if !delimiter(d) || data[at + 2] != d {
        return Parsed::Malformed;
    }
    let v6 = match data[at + 1] {
        b'1' => false,
        b'2' => true,
        _ => return Parsed::Malformed,
    };
    let a0 = at + 3;
    let Some(len) = data[a0..].iter().take(MAX_FIELD).position(|&c| c == d) else {
        return if data.len() - a0 < MAX_FIELD {
            Parsed::Partial
        } else {
            Parsed::Malformed
        };
    };
    let Ok(text) = std::str::from_utf8(&data[a0..a0 + len]) else {
        return Parsed::Malformed;
    };
    let addr = if v6 {
        match text.parse::<std::net::Ipv6Addr>() {
            Ok(a) => u128::from(a),
            Err(_) => return Parsed::Malformed,
        }
    } else {
        match text.parse::<std::net::Ipv4Addr>() {
            Ok(a) => v4_key(u32::from(a)),
            Err(_) => return Parsed::Malformed,
        }
    };
    match port_to(data, a0 + len + 1, d) {
        Ok((port, end)) => Parsed::Command(Command {
            form: Form::Eprt,
            addr: Some(addr),
            v6,
            port,
            start: at,
            end,
        }),
        Err(p) => p,
    }
}

/// `|||port|` at `data[at..]` (RFC 2428 section 3).
fn epsv(data: &[u8], at: usize) -> Parsed {
    if data.len() < at + 4 {
        return Parsed::Partial;
    }
    let d = data[at];
    if !delimiter(d) || data[at + 1] != d || data[at + 2] != d {
        return Parsed::Malformed;
    }
    match port_to(data, at + 3, d) {
        Ok((port, end)) => Parsed::Command(Command {
            form: Form::Epsv,
            addr: None,
            v6: false,
            port,
            start: at,
            end,
        }),
        Err(p) => p,
    }
}

/// The longest text [`format`] writes (EPRT with a full IPv6 address).
pub const MAX_TEXT: usize = 64;

/// A fixed buffer `fmt::Write` fills (no allocation).
struct Buf {
    b: [u8; MAX_TEXT],
    n: usize,
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > MAX_TEXT {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// The text that replaces `start..end` of a command of `form` announcing
/// `addr` (an IPv4-mapped key unless `v6`) and `port`, as Linux's
/// `nf_nat_ftp` writes it. Writes into `out`, returns the length.
pub fn format(form: Form, v6: bool, addr: u128, port: u16, out: &mut [u8; MAX_TEXT]) -> usize {
    let mut b = Buf {
        b: [0; MAX_TEXT],
        n: 0,
    };
    let r = match form {
        Form::Port | Form::Pasv => {
            let a = (addr as u32).to_be_bytes();
            write!(
                b,
                "{},{},{},{},{},{}",
                a[0],
                a[1],
                a[2],
                a[3],
                port >> 8,
                port & 0xff
            )
        }
        Form::Eprt if v6 => write!(b, "|2|{}|{}|", std::net::Ipv6Addr::from(addr), port),
        Form::Eprt => write!(b, "|1|{}|{}|", std::net::Ipv4Addr::from(addr as u32), port),
        Form::Epsv => write!(b, "|||{port}|"),
    };
    debug_assert!(r.is_ok());
    out[..b.n].copy_from_slice(&b.b[..b.n]);
    b.n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(dir: Dir, s: &str) -> Command {
        match parse(dir, s.as_bytes()) {
            Parsed::Command(c) => c,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn port_and_pasv() {
        let c = cmd(Dir::Original, "PORT 192,168,1,10,200,10\r\n");
        assert_eq!(c.form, Form::Port);
        assert_eq!(c.addr, Some(v4_key(0xc0a8_010a)));
        assert_eq!(c.port, 200 * 256 + 10);
        assert_eq!((c.start, c.end), (5, 24));
        let c = cmd(Dir::Original, "port 1,2,3,4,0,21\r\n");
        assert_eq!(c.port, 21);
        let c = cmd(
            Dir::Reply,
            "227 Entering Passive Mode (192,168,1,11,39,16).\r\n",
        );
        assert_eq!(c.form, Form::Pasv);
        assert_eq!(c.addr, Some(v4_key(0xc0a8_010b)));
        assert_eq!(c.port, 39 * 256 + 16);
        assert_eq!(
            &"227 Entering Passive Mode (192,168,1,11,39,16)."[c.start..c.end],
            "192,168,1,11,39,16"
        );
        // No parentheses.
        let c = cmd(Dir::Reply, "227 Entering Passive Mode 10,0,0,1,4,1\r\n");
        assert_eq!(c.port, 1025);
        // Not commands of interest.
        for (d, s) in [
            (Dir::Original, "USER anonymous\r\n"),
            (Dir::Original, "PORTS\r\n"),
            (Dir::Reply, "226 Transfer complete.\r\n"),
            (Dir::Reply, "PORT 1,2,3,4,5,6\r\n"),
            (Dir::Original, "227 (1,2,3,4,5,6)\r\n"),
            (Dir::Original, ""),
        ] {
            assert_eq!(parse(d, s.as_bytes()), Parsed::Nothing, "{s:?}");
        }
    }

    #[test]
    fn eprt_and_epsv() {
        let c = cmd(Dir::Original, "EPRT |1|132.235.1.2|6275|\r\n");
        assert_eq!((c.v6, c.port), (false, 6275));
        assert_eq!(c.addr, Some(v4_key(0x84eb_0102)));
        assert_eq!(
            &"EPRT |1|132.235.1.2|6275|"[c.start..c.end],
            "|1|132.235.1.2|6275|"
        );
        let c = cmd(Dir::Original, "EPRT |2|1080::8:800:200C:417A|5282|\r\n");
        assert!(c.v6);
        assert_eq!(
            c.addr,
            Some(u128::from(
                "1080::8:800:200c:417a"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
            ))
        );
        assert_eq!(c.port, 5282);
        let c = cmd(
            Dir::Reply,
            "229 Entering Extended Passive Mode (|||6446|)\r\n",
        );
        assert_eq!((c.form, c.addr, c.port), (Form::Epsv, None, 6446));
        assert_eq!(
            &"229 Entering Extended Passive Mode (|||6446|)"[c.start..c.end],
            "|||6446|"
        );
    }

    #[test]
    fn partial_and_malformed() {
        for (d, s) in [
            (Dir::Original, "PORT 192,168,1,10,200"),
            (Dir::Original, "PORT 192,168,1,10,200,10"),
            (Dir::Original, "POR"),
            (Dir::Original, "PORT "),
            (Dir::Original, "EPRT |2|::1|"),
            (Dir::Reply, "227 Entering Passive Mode (1,2,3"),
            (Dir::Reply, "229 Entering (|||6"),
        ] {
            assert_eq!(parse(d, s.as_bytes()), Parsed::Partial, "{s:?}");
        }
        for (d, s) in [
            (Dir::Original, "PORT 256,1,1,1,1,1\r\n"),
            (Dir::Original, "PORT 1,2,3,4,5\r\n"),
            (Dir::Original, "PORT 1,2,3,4,5,6,7\r\n"),
            (Dir::Original, "PORT 1,,3,4,5,6\r\n"),
            (Dir::Original, "PORT 0001,2,3,4,5,6\r\n"),
            (Dir::Original, "PORT a,b\r\n"),
            (Dir::Original, "EPRT |3|1.2.3.4|5|\r\n"),
            (Dir::Original, "EPRT |1|1.2.3|5|\r\n"),
            (Dir::Original, "EPRT |1|1.2.3.4|0|\r\n"),
            (Dir::Original, "EPRT |1|1.2.3.4|65536|\r\n"),
            (Dir::Original, "EPRT 1|1|1.2.3.4|5|\r\n"),
            (Dir::Reply, "229 Entering (||6446|)\r\n"),
            (Dir::Reply, "227 Entering Passive Mode\r\n"),
        ] {
            assert_eq!(parse(d, s.as_bytes()), Parsed::Malformed, "{s:?}");
        }
    }

    #[test]
    fn oversize_is_malformed_and_nothing_panics() {
        let long = format!("PORT {}\r\n", "1".repeat(5000));
        assert_eq!(parse(Dir::Original, long.as_bytes()), Parsed::Malformed);
        let long = format!("227 {}\r\n", "x".repeat(5000));
        assert_eq!(parse(Dir::Reply, long.as_bytes()), Parsed::Malformed);
        let samples: [&[u8]; 4] = [
            b"PORT 192,168,1,10,200,10\r\n",
            b"EPRT |2|1080::8:800:200C:417A|5282|\r\n",
            b"227 Entering Passive Mode (192,168,1,11,39,16).\r\n",
            b"229 Entering Extended Passive Mode (|||6446|)\r\n",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for s in samples {
            for n in 0..=s.len() {
                for d in [Dir::Original, Dir::Reply] {
                    let _ = parse(d, &s[..n]);
                }
            }
            for _ in 0..2000 {
                let mut v = s.to_vec();
                for _ in 0..3 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = (rng % v.len() as u64) as usize;
                    v[i] = (rng >> 32) as u8;
                }
                for d in [Dir::Original, Dir::Reply] {
                    if let Parsed::Command(c) = parse(d, &v) {
                        assert!(c.start <= c.end && c.end <= v.len());
                    }
                }
            }
        }
    }

    #[test]
    fn formats_as_linux() {
        let mut out = [0u8; MAX_TEXT];
        let n = format(Form::Port, false, v4_key(0xa87e_7f06), 0x1234, &mut out);
        assert_eq!(&out[..n], b"168,126,127,6,18,52");
        let n = format(Form::Eprt, false, v4_key(0x0102_0304), 40000, &mut out);
        assert_eq!(&out[..n], b"|1|1.2.3.4|40000|");
        let a = u128::from("2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap());
        let n = format(Form::Eprt, true, a, 5282, &mut out);
        assert_eq!(&out[..n], b"|2|2001:db8::1|5282|");
        let n = format(Form::Epsv, false, 0, 65535, &mut out);
        assert_eq!(&out[..n], b"|||65535|");
        let full = u128::from(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse::<std::net::Ipv6Addr>()
                .unwrap(),
        );
        let n = format(Form::Eprt, true, full, 65535, &mut out);
        assert!(n <= MAX_TEXT);
    }
}
