//! nftables rulesets: the language front-end (lexer, parser, typed AST).
//!
//! Reads the text `nft -f` accepts: the declarative blocks of `nft list
//! ruleset` and /etc/nftables.conf (`table inet filter { chain input { ...
//! } }`), the command form (`add table`, `add chain`, `add rule`, `insert
//! rule`, `add element`, `flush ruleset`, `delete ...`), `define`
//! variables (substituted where used) and `include` (spliced in where it
//! stands). The result is a [`Ruleset`] of typed commands; compiling it into
//! the dataplane's rules is a later step, which is also where families and
//! statements xgate does not run (arp, bridge, netdev tables; `queue`) are
//! refused: the AST keeps them so the refusal can say what and where.
//!
//! Why xgate parses nft's language itself rather than asking libnftables
//! for its JSON form (`nft -j`) through a scratch network namespace:
//! `xgate check` and `xgate replay` must work without root and on machines
//! without nft installed, and an error must name the file, line and column
//! of the user's text (nft's JSON has no positions, and the namespace needs
//! CAP_SYS_ADMIN). Fidelity is kept by testing construct by construct
//! against the real `nft` (control/tests/nft_parse.rs runs `unshare -n nft
//! -c -f` on every case: what nft accepts xgate accepts, what nft refuses
//! xgate refuses with a line and column).
//!
//! Differences from nft, on purpose: service and protocol names come from
//! built-in tables (types.rs), not the host's /etc/services and
//! /etc/protocols; host names are refused (nft resolves them through DNS
//! at load time); a relative `include` is looked up beside the including
//! file first, then in the include path (/etc), where nft looks in the
//! include path and the current directory. Parsing stops at the first
//! error.
//!
//! Limits (the parser is fuzzed): 16 MiB of text over all files, include
//! depth 16 (as nft), expression and set nesting 64, 1M tokens after
//! `define` substitution.

pub mod ast;
pub mod compile;
mod lex;
mod parse;
pub mod print;
pub mod state;
pub mod types;

use std::fmt;
use std::path::{Path, PathBuf};

pub use ast::*;
pub use types::DataType;

/// How includes are looked up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directories searched for a relative `include` (after the including
    /// file's own directory). nft's default is /etc.
    pub include_path: Vec<PathBuf>,
    /// Whether `include` reads files at all (`false`: it is an error; for
    /// the fuzzer, which must not read the file system).
    pub includes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            include_path: vec![PathBuf::from("/etc")],
            includes: true,
        }
    }
}

/// An error, with the file, line and column it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct NftError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// A character or string the lexer cannot read.
    Lex(String),
    /// The grammar wanted something else here.
    Expected { expected: String, found: String },
    /// An unknown key after `meta`, `ct`, a protocol, `fib`: the name and
    /// the keys nft knows there.
    UnknownKey {
        what: &'static str,
        name: String,
        known: String,
    },
    /// A symbol that is not a constant of the type it is compared with
    /// (`tcp dport nosuchservice`).
    UnknownSymbol { ty: DataType, name: String },
    /// `$name` without a `define`.
    UndefinedVariable(String),
    /// A value out of range, a priority name invalid for the hook, ...
    Invalid(String),
    /// An include that cannot be read, or nests too deep.
    Include(String),
    /// The input exceeds a size or depth limit.
    Limit(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Lex(m) | ErrorKind::Invalid(m) | ErrorKind::Include(m) => f.write_str(m),
            ErrorKind::Limit(m) => write!(f, "limit exceeded: {m}"),
            ErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::UnknownKey { what, name, known } => {
                write!(f, "unknown {what} '{name}' (known: {known})")
            }
            ErrorKind::UnknownSymbol { ty, name } => {
                write!(f, "'{name}' is not a value of type {ty:?}")
            }
            ErrorKind::UndefinedVariable(v) => write!(f, "undefined variable ${v}"),
        }
    }
}

impl fmt::Display for NftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.kind)
    }
}

impl std::error::Error for NftError {}

/// Parses ruleset `text`, read from `file` (the name errors carry;
/// relative includes are looked up beside it, then in /etc).
pub fn parse(text: &str, file: &str) -> Result<Ruleset, NftError> {
    parse_with(text, file, &Options::default())
}

/// [`parse`] with the include path chosen by the caller.
pub fn parse_with(text: &str, file: &str, opts: &Options) -> Result<Ruleset, NftError> {
    parse::parse_ruleset(text, file, opts)
}

/// Reads and parses the ruleset file at `path`.
pub fn parse_file(path: &Path, opts: &Options) -> Result<Ruleset, NftError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| NftError {
        file: name.clone(),
        line: 0,
        col: 0,
        kind: ErrorKind::Include(format!("cannot read {name}: {e}")),
    })?;
    parse_with(&text, &name, opts)
}
