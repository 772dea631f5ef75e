//! nft text -> [`Ruleset`]: a recursive-descent parser over the tokens of
//! lex.rs.
//!
//! This file holds the token cursor (with `$var` substitution and
//! `include` splicing, both at the token level as nft's scanner does them),
//! the limits, and the top-level commands. Tables, chains and their blocks
//! are in [`table`], sets, maps, elements and named objects in [`set`],
//! rule statements in [`stmt`], the expressions they match on in [`expr`],
//! and constants read by the type they are compared with in [`value`].

mod expr;
mod set;
mod stmt;
mod table;
mod value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ast::*;
use super::lex::{Tok, Token, lex};
use super::{ErrorKind, NftError, Options};

/// All the text read, over every file.
const MAX_BYTES: usize = 16 << 20;
/// nft's MAX_INCLUDE_DEPTH.
const MAX_INCLUDE_DEPTH: u32 = 16;
/// Nesting of sets in sets, expressions in parentheses, ...
const MAX_NESTING: u32 = 64;
/// Tokens after `define` substitution.
const MAX_TOKENS: usize = 1 << 20;

pub(super) type R<T> = Result<T, NftError>;

struct SourceFile {
    name: String,
    dir: Option<PathBuf>,
    depth: u32,
}

pub(super) struct Parser<'o> {
    toks: Vec<Token>,
    pos: usize,
    files: Vec<SourceFile>,
    defines: HashMap<String, Vec<Token>>,
    opts: &'o Options,
    bytes: usize,
    nesting: u32,
    /// Reading the operand of a bitwise operator: a top-level `|` is the
    /// next operator (`ct mark & 0xf0 | 0x01`), not a flag list.
    operand: bool,
    /// The family of the table being read (for `ct original saddr`,
    /// priorities, NAT addresses).
    family: Family,
    /// The hook of the base chain being read, if any.
    hook: Option<Hook>,
    /// The sets declared so far: key types, value types, flags (so that
    /// `add element` reads its values by the set's types).
    sets: HashMap<(Family, String), SetDecl>,
}

type SetDecl = (Vec<DataType>, Option<Vec<DataType>>, Vec<SetFlag>);

pub(crate) fn parse_ruleset(text: &str, file: &str, opts: &Options) -> R<Ruleset> {
    let dir = Path::new(file).parent().map(Path::to_path_buf);
    let mut p = Parser {
        toks: Vec::new(),
        pos: 0,
        files: vec![SourceFile {
            name: file.to_string(),
            dir,
            depth: 0,
        }],
        defines: HashMap::new(),
        opts,
        bytes: 0,
        nesting: 0,
        operand: false,
        family: Family::Ip,
        hook: None,
        sets: HashMap::new(),
    };
    p.toks = p.lex_file(text, 0)?;
    let commands = p.commands()?;
    Ok(Ruleset {
        files: p.files.into_iter().map(|f| f.name).collect(),
        commands,
    })
}

impl Parser<'_> {
    fn lex_file(&mut self, text: &str, file: u32) -> R<Vec<Token>> {
        self.bytes += text.len();
        if self.bytes > MAX_BYTES {
            let loc = Loc {
                file,
                line: 1,
                col: 1,
            };
            return Err(self.error_at(loc, ErrorKind::Limit("more than 16 MiB of text".into())));
        }
        lex(text, file).map_err(|e| self.error_at(e.loc, ErrorKind::Lex(e.message)))
    }

    pub(super) fn error_at(&self, loc: Loc, kind: ErrorKind) -> NftError {
        let file = self
            .files
            .get(loc.file as usize)
            .map_or_else(String::new, |f| f.name.clone());
        NftError {
            file,
            line: loc.line,
            col: loc.col,
            kind,
        }
    }

    /// An error at the current token.
    pub(super) fn err(&mut self, kind: ErrorKind) -> NftError {
        let loc = self.loc();
        self.error_at(loc, kind)
    }

    pub(super) fn invalid<T>(&mut self, msg: impl Into<String>) -> R<T> {
        Err(self.err(ErrorKind::Invalid(msg.into())))
    }

    pub(super) fn invalid_at<T>(&self, loc: Loc, msg: impl Into<String>) -> R<T> {
        Err(self.error_at(loc, ErrorKind::Invalid(msg.into())))
    }

    /// "expected X, found <the current token>".
    pub(super) fn expected<T>(&mut self, what: &str) -> R<T> {
        let found = match self.peek() {
            Ok(t) => t.describe(),
            Err(e) => return Err(e),
        };
        Err(self.err(ErrorKind::Expected {
            expected: what.to_string(),
            found,
        }))
    }

    /// Substitutes `$var` at the cursor until the token there is not one.
    fn expand(&mut self) -> R<()> {
        while let Tok::Var(name) = &self.toks[self.pos].tok {
            let loc = self.toks[self.pos].loc;
            let Some(body) = self.defines.get(name) else {
                let name = name.clone();
                return Err(self.error_at(loc, ErrorKind::UndefinedVariable(name)));
            };
            if self.toks.len() + body.len() > MAX_TOKENS {
                return Err(self.error_at(loc, ErrorKind::Limit("too many tokens".into())));
            }
            let body: Vec<Token> = body
                .iter()
                .map(|t| Token {
                    tok: t.tok.clone(),
                    loc,
                })
                .collect();
            self.toks.splice(self.pos..=self.pos, body);
        }
        Ok(())
    }

    pub(super) fn peek(&mut self) -> R<&Tok> {
        self.expand()?;
        Ok(&self.toks[self.pos].tok)
    }

    /// The token after the current one (no substitution there).
    pub(super) fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }

    pub(super) fn loc(&self) -> Loc {
        self.toks[self.pos].loc
    }

    pub(super) fn next(&mut self) -> R<Token> {
        self.expand()?;
        let t = self.toks[self.pos].clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        Ok(t)
    }

    pub(super) fn at(&mut self, t: &Tok) -> R<bool> {
        Ok(self.peek()? == t)
    }

    pub(super) fn eat(&mut self, t: &Tok) -> R<bool> {
        if self.at(t)? {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(super) fn expect(&mut self, t: Tok, what: &str) -> R<Loc> {
        let loc = self.loc();
        if self.eat(&t)? {
            Ok(loc)
        } else {
            self.expected(what)
        }
    }

    /// The current token if it is a word.
    pub(super) fn word(&mut self) -> R<Option<&str>> {
        Ok(match self.peek()? {
            Tok::Word(w) => Some(w.as_str()),
            _ => None,
        })
    }

    pub(super) fn is_word(&mut self, w: &str) -> R<bool> {
        Ok(self.word()? == Some(w))
    }

    pub(super) fn eat_word(&mut self, w: &str) -> R<bool> {
        if self.is_word(w)? {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(super) fn expect_word(&mut self, w: &str) -> R<()> {
        if self.eat_word(w)? {
            Ok(())
        } else {
            self.expected(&format!("'{w}'"))
        }
    }

    /// Any word, consumed.
    pub(super) fn any_word(&mut self, what: &str) -> R<(String, Loc)> {
        let loc = self.loc();
        match self.peek()? {
            Tok::Word(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok((w, loc))
            }
            _ => self.expected(what),
        }
    }

    /// A name: a word or a quoted string.
    pub(super) fn name(&mut self, what: &str) -> R<String> {
        match self.peek()? {
            Tok::Word(w) | Tok::Str(w) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.expected(what),
        }
    }

    pub(super) fn string(&mut self, what: &str) -> R<String> {
        match self.peek()? {
            Tok::Str(s) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.expected(what),
        }
    }

    /// An unsigned number (decimal or 0x hex).
    pub(super) fn number(&mut self, what: &str) -> R<u64> {
        if let Some(n) = self.word()?.and_then(value::parse_u64) {
            self.pos += 1;
            Ok(n)
        } else {
            self.expected(what)
        }
    }

    pub(super) fn nest(&mut self) -> R<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err(ErrorKind::Limit("nesting deeper than 64".into())));
        }
        Ok(())
    }

    pub(super) fn unnest(&mut self) {
        self.nesting -= 1;
    }

    /// Whether the current token ends a statement list (rule).
    pub(super) fn at_end(&mut self) -> R<bool> {
        Ok(matches!(
            self.peek()?,
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof
        ))
    }

    /// Skips newlines (inside braces, where they separate nothing).
    pub(super) fn skip_newlines(&mut self) -> R<()> {
        while self.eat(&Tok::Newline)? {}
        Ok(())
    }

    /// Skips separators and handles the `include`s and `define`s between
    /// items (of the file, a table block, a chain block, a set block).
    pub(super) fn skip_separators(&mut self) -> R<()> {
        loop {
            match self.peek()? {
                Tok::Newline | Tok::Semi => self.pos += 1,
                Tok::Word(w) if w == "include" => self.include()?,
                Tok::Word(w) if w == "define" || w == "redefine" => self.define()?,
                Tok::Word(w) if w == "undefine" => {
                    self.pos += 1;
                    let (name, loc) = self.any_word("a variable name")?;
                    if self.defines.remove(&name).is_none() {
                        return Err(self.error_at(loc, ErrorKind::UndefinedVariable(name)));
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The end of an item: a newline, `;`, or (not consumed) `}` / end.
    pub(super) fn end_of_item(&mut self) -> R<()> {
        match self.peek()? {
            Tok::Newline | Tok::Semi => {
                self.pos += 1;
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            _ => self.expected("newline or ';'"),
        }
    }

    /// After a block's `}`: nft wants a newline or `;` (or the end).
    pub(super) fn end_of_block(&mut self) -> R<()> {
        match self.peek()? {
            Tok::Newline | Tok::Semi => {
                self.pos += 1;
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => self.expected("newline or ';'"),
        }
    }

    /// `define NAME = VALUE`: the value's tokens up to the end of the line
    /// (after substituting the variables it uses, as nft does).
    fn define(&mut self) -> R<()> {
        let redefine = self.is_word("redefine")?;
        self.pos += 1;
        let (name, nloc) = self.any_word("a variable name")?;
        if !redefine && self.defines.contains_key(&name) {
            return self.invalid_at(nloc, format!("redefinition of ${name} (use redefine)"));
        }
        self.expect(Tok::Assign, "'='")?;
        let start = self.loc();
        let mut body = Vec::new();
        let mut depth = 0u32;
        loop {
            let t = self.peek()?.clone();
            match t {
                Tok::Eof => break,
                Tok::Newline | Tok::Semi if depth == 0 => break,
                Tok::LBrace => depth += 1,
                Tok::RBrace if depth == 0 => break,
                Tok::RBrace => depth -= 1,
                _ => {}
            }
            body.push(self.next()?);
        }
        if body.is_empty() {
            return self.invalid_at(start, format!("define {name}: no value"));
        }
        self.defines.insert(name, body);
        Ok(())
    }

    /// `include "PATH"`: the file's tokens replace the two tokens.
    fn include(&mut self) -> R<()> {
        let loc = self.loc();
        self.pos += 1;
        let path = self.string("a quoted file name after include")?;
        if !self.opts.includes {
            return Err(self.error_at(
                loc,
                ErrorKind::Include(format!("include \"{path}\": includes are disabled here")),
            ));
        }
        let parent = &self.files[loc.file as usize];
        if parent.depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(self.error_at(
                loc,
                ErrorKind::Include(format!("include {path}: nested deeper than 16")),
            ));
        }
        let depth = parent.depth + 1;
        let files = self.resolve_include(&path, loc)?;
        let mut spliced = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| {
                self.error_at(
                    loc,
                    ErrorKind::Include(format!("cannot read {}: {e}", f.display())),
                )
            })?;
            let idx = self.files.len() as u32;
            self.files.push(SourceFile {
                name: f.display().to_string(),
                dir: f.parent().map(Path::to_path_buf),
                depth,
            });
            let mut toks = self.lex_file(&text, idx)?;
            let eof = toks.pop().expect("lex ends with Eof");
            toks.push(Token {
                tok: Tok::Newline,
                loc: eof.loc,
            });
            spliced.extend(toks);
        }
        if self.toks.len() + spliced.len() > MAX_TOKENS {
            return Err(self.error_at(loc, ErrorKind::Limit("too many tokens".into())));
        }
        self.toks.splice(self.pos..self.pos, spliced);
        Ok(())
    }

    /// The files an include names: an absolute path, or a relative one
    /// beside the including file, then in the include path; a `*`/`?`
    /// pattern in the last component matches any number of files (sorted).
    fn resolve_include(&self, path: &str, loc: Loc) -> R<Vec<PathBuf>> {
        let p = Path::new(path);
        let mut candidates = Vec::new();
        if p.is_absolute() {
            candidates.push(p.to_path_buf());
        } else {
            if let Some(d) = &self.files[loc.file as usize].dir {
                candidates.push(d.join(p));
            }
            candidates.extend(self.opts.include_path.iter().map(|d| d.join(p)));
        }
        let glob = path.contains(['*', '?']);
        for c in &candidates {
            if glob {
                let found = glob_files(c);
                if !found.is_empty() {
                    return Ok(found);
                }
            } else if c.is_file() {
                return Ok(vec![c.clone()]);
            }
        }
        if glob {
            return Ok(Vec::new());
        }
        let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        Err(self.error_at(
            loc,
            ErrorKind::Include(format!(
                "include \"{path}\": no such file (looked at {})",
                looked.join(", ")
            )),
        ))
    }

    /// Top level: commands until the end.
    fn commands(&mut self) -> R<Vec<Command>> {
        let mut out = Vec::new();
        loop {
            self.skip_separators()?;
            if self.at(&Tok::Eof)? {
                return Ok(out);
            }
            let cmd = self.command()?;
            out.push(cmd);
        }
    }

    fn command(&mut self) -> R<Command> {
        let loc = self.loc();
        let Some(verb) = self.word()?.map(str::to_string) else {
            return self.expected("a command");
        };
        let kind = match verb.as_str() {
            "add" | "create" => {
                self.pos += 1;
                self.add_command(verb == "create")?
            }
            "insert" | "replace" => {
                self.pos += 1;
                self.expect_word("rule")?;
                self.rule_command(verb == "insert", verb == "replace")?
            }
            "delete" | "destroy" => {
                self.pos += 1;
                self.delete_command()?
            }
            "flush" => {
                self.pos += 1;
                self.flush_command()?
            }
            "list" => {
                // nft prints; a ruleset file is unchanged by it.
                self.pos += 1;
                let mut what = Vec::new();
                while !matches!(self.peek()?, Tok::Newline | Tok::Semi | Tok::Eof) {
                    match self.next()?.tok {
                        Tok::Word(w) | Tok::Str(w) => what.push(w),
                        t => what.push(t.describe()),
                    }
                }
                CommandKind::List(what.join(" "))
            }
            "reset" | "monitor" | "describe" | "export" | "import" | "rename" | "get" => {
                return self.invalid(format!(
                    "'{verb}' is not a ruleset command (a ruleset file adds, \
                     flushes and deletes)"
                ));
            }
            _ => self.add_command(false)?,
        };
        Ok(Command { loc, kind })
    }

    /// `[add|create] table|chain|rule|set|map|element|counter|quota|limit|
    /// flowtable|ct helper ...` (the verb already read).
    fn add_command(&mut self, create: bool) -> R<CommandKind> {
        let (what, wloc) = self.any_word("table, chain, rule, set, map, element, ...")?;
        let kind = match what.as_str() {
            "table" => {
                let table = self.table_command(wloc)?;
                CommandKind::Table { table, create }
            }
            "chain" => {
                let table = self.table_id()?;
                let chain = self.chain_command(&table)?;
                CommandKind::Chain {
                    table,
                    chain,
                    create,
                }
            }
            "rule" => return self.rule_command(false, false),
            "set" | "map" => {
                let table = self.table_id()?;
                let set = self.set_command(what == "map")?;
                CommandKind::Set { table, set }
            }
            "element" => {
                let table = self.table_id()?;
                let set = self.name("a set name")?;
                let elements = self.element_command(&table, &set)?;
                CommandKind::Elements {
                    table,
                    set,
                    delete: false,
                    elements,
                }
            }
            "counter" | "quota" | "limit" | "ct" => {
                if what == "ct" {
                    self.expect_word("helper")?;
                }
                let table = self.table_id()?;
                let object = self.object_command(&what)?;
                CommandKind::Object { table, object }
            }
            "flowtable" => {
                let table = self.table_id()?;
                let flowtable = self.flowtable_command()?;
                CommandKind::Flowtable { table, flowtable }
            }
            _ => {
                self.pos -= 1;
                return self.expected("table, chain, rule, set, map, element, counter, ...");
            }
        };
        self.end_of_item()?;
        Ok(kind)
    }

    /// `[FAMILY] NAME`.
    pub(super) fn table_id(&mut self) -> R<TableId> {
        let family = match self.word()?.and_then(Family::from_name) {
            Some(f) if matches!(self.peek2(), Tok::Word(_) | Tok::Str(_) | Tok::Var(_)) => {
                self.pos += 1;
                f
            }
            _ => Family::Ip,
        };
        let name = self.name("a table name")?;
        self.family = family;
        Ok(TableId { family, name })
    }

    /// `add rule T C [handle N|index N|position N] STMTS`, `insert rule`,
    /// `replace rule T C handle N STMTS`.
    fn rule_command(&mut self, insert: bool, replace: bool) -> R<CommandKind> {
        let table = self.table_id()?;
        let chain = self.name("a chain name")?;
        let anchor = if self.eat_word("handle")? || self.eat_word("position")? {
            Some(Anchor::Handle(self.number("a rule handle")?))
        } else if self.eat_word("index")? {
            Some(Anchor::Index(self.number("a rule index")?))
        } else {
            None
        };
        let position = match (replace, anchor) {
            (true, Some(Anchor::Handle(h))) => RulePosition::Replace(h),
            (true, _) => return self.expected("'handle N' (replace rule needs a handle)"),
            (false, a) if insert => RulePosition::Insert(a),
            (false, a) => RulePosition::Append(a),
        };
        self.hook = None;
        let rule = self.rule()?;
        self.end_of_item()?;
        Ok(CommandKind::Rule {
            table,
            chain,
            position,
            rule,
        })
    }

    fn flush_command(&mut self) -> R<CommandKind> {
        let (what, _) = self.any_word("ruleset, table, chain, set or map")?;
        let f = match what.as_str() {
            "ruleset" => {
                let fam = match self.word()?.and_then(Family::from_name) {
                    Some(f) => {
                        self.pos += 1;
                        Some(f)
                    }
                    None => None,
                };
                Flush::Ruleset(fam)
            }
            "table" => Flush::Table(self.table_id()?),
            "chain" => {
                let t = self.table_id()?;
                Flush::Chain(t, self.name("a chain name")?)
            }
            "set" | "map" => {
                let t = self.table_id()?;
                Flush::Set(t, self.name("a set name")?)
            }
            _ => {
                self.pos -= 1;
                return self.expected("ruleset, table, chain, set or map");
            }
        };
        self.end_of_item()?;
        Ok(CommandKind::Flush(f))
    }

    fn delete_command(&mut self) -> R<CommandKind> {
        let (what, _) = self.any_word("table, chain, rule, set, element, ...")?;
        let d = match what.as_str() {
            "table" => {
                if let Some(fam) = self.word()?.and_then(Family::from_name)
                    && matches!(self.peek2(), Tok::Word(w) if w == "handle")
                {
                    self.pos += 2;
                    let h = self.number("a table handle")?;
                    self.end_of_item()?;
                    return Ok(CommandKind::Delete(Delete::TableHandle(fam, h)));
                }
                if self.eat_word("handle")? {
                    let h = self.number("a table handle")?;
                    Delete::TableHandle(Family::Ip, h)
                } else {
                    Delete::Table(self.table_id()?)
                }
            }
            "chain" => {
                let t = self.table_id()?;
                if self.eat_word("handle")? {
                    Delete::ChainHandle(t, self.number("a chain handle")?)
                } else {
                    Delete::Chain(t, self.name("a chain name")?)
                }
            }
            "rule" => {
                let t = self.table_id()?;
                let c = self.name("a chain name")?;
                self.expect_word("handle")?;
                Delete::Rule(t, c, self.number("a rule handle")?)
            }
            "set" | "map" => {
                let t = self.table_id()?;
                Delete::Set(t, self.name("a set name")?)
            }
            "element" => {
                let table = self.table_id()?;
                let set = self.name("a set name")?;
                let elements = self.element_command(&table, &set)?;
                self.end_of_item()?;
                return Ok(CommandKind::Elements {
                    table,
                    set,
                    delete: true,
                    elements,
                });
            }
            "counter" | "quota" | "limit" | "flowtable" | "ct" => {
                let kind = match what.as_str() {
                    "counter" => ObjectKind::Counter,
                    "quota" => ObjectKind::Quota,
                    "limit" => ObjectKind::Limit,
                    "ct" => {
                        self.expect_word("helper")?;
                        ObjectKind::CtHelper
                    }
                    _ => {
                        let t = self.table_id()?;
                        let n = self.name("a flowtable name")?;
                        self.end_of_item()?;
                        return Ok(CommandKind::Delete(Delete::Flowtable(t, n)));
                    }
                };
                let t = self.table_id()?;
                Delete::Object(t, kind, self.name("an object name")?)
            }
            _ => {
                self.pos -= 1;
                return self.expected("table, chain, rule, set, map, element, ...");
            }
        };
        self.end_of_item()?;
        Ok(CommandKind::Delete(d))
    }
}

/// Files matching `pattern`'s last component (`*`, `?`), sorted.
fn glob_files(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(pat)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let pat = pat.to_string_lossy();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file() && glob_match(&pat, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
