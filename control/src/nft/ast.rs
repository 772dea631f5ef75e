//! The typed syntax tree of an nftables ruleset, as `nft -f` reads it.
//!
//! A [`Ruleset`] is the sequence of commands of the file (the declarative
//! `table ... { }` blocks of `nft list ruleset` and nftables.conf are
//! [`CommandKind::Table`] commands, as `nft` treats them), with `define`s
//! substituted and `include`s spliced in. Nothing is evaluated against a
//! running ruleset: whether a chain a rule names exists is the compiler's
//! question. Symbolic constants (`established`, `ssh`, `echo-request`) are
//! resolved to their numbers by the type of what they are compared with,
//! keeping the name for display. Every node that a message or a counter
//! may point at carries its [`Loc`].

use std::net::{Ipv4Addr, Ipv6Addr};

pub use super::types::{DataType, Family, Hook, MetaKey, PayloadField, Proto};

/// Where a node starts: `file` indexes [`Ruleset::files`]; line and column
/// count from 1 (the column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// A parsed ruleset file and everything it included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    /// Every file read, the top one first (for [`Loc::file`]).
    pub files: Vec<String>,
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub loc: Loc,
    pub kind: CommandKind,
}

/// A table named with its family (`ip` when omitted, as nft does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableId {
    pub family: Family,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandKind {
    /// `table F N { ... }`, `add table`, `create table` (`create`: fail if
    /// it exists).
    Table {
        table: Table,
        create: bool,
    },
    /// `add chain F T N [{ ... }]`, `create chain`.
    Chain {
        table: TableId,
        chain: Chain,
        create: bool,
    },
    /// `add rule`, `insert rule`, `replace rule`.
    Rule {
        table: TableId,
        chain: String,
        position: RulePosition,
        rule: Rule,
    },
    /// `add set`, `add map`.
    Set {
        table: TableId,
        set: Set,
    },
    /// `add element` / `delete element`.
    Elements {
        table: TableId,
        set: String,
        delete: bool,
        elements: Vec<Element>,
    },
    /// `add counter`, `add quota`, `add limit`, `add ct helper`.
    Object {
        table: TableId,
        object: Object,
    },
    /// `add flowtable`.
    Flowtable {
        table: TableId,
        flowtable: Flowtable,
    },
    Flush(Flush),
    Delete(Delete),
    /// `list ...`: nft prints; the ruleset is unchanged.
    List(String),
}

/// Where `add`/`insert`/`replace rule` puts its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePosition {
    /// `add rule` (after `handle`/`index` if given, else at the end).
    Append(Option<Anchor>),
    /// `insert rule` (before the anchor if given, else at the start).
    Insert(Option<Anchor>),
    /// `replace rule ... handle N`.
    Replace(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// `handle N` (`position N` is its old spelling).
    Handle(u64),
    /// `index N`: the Nth rule of the chain, from 0.
    Index(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Flush {
    /// `flush ruleset [FAMILY]`.
    Ruleset(Option<Family>),
    Table(TableId),
    Chain(TableId, String),
    /// `flush set` / `flush map`.
    Set(TableId, String),
}

/// What `delete` names: by name or by `handle N`.
#[derive(Debug, Clone, PartialEq)]
pub enum Delete {
    Table(TableId),
    TableHandle(Family, u64),
    Chain(TableId, String),
    ChainHandle(TableId, u64),
    Rule(TableId, String, u64),
    Set(TableId, String),
    /// `delete counter|quota|limit|ct helper T NAME`.
    Object(TableId, ObjectKind, String),
    Flowtable(TableId, String),
}

/// A table and what its block declares, in the order of the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub loc: Loc,
    pub id: TableId,
    /// `flags dormant`, ...
    pub flags: Vec<String>,
    pub comment: Option<String>,
    pub chains: Vec<Chain>,
    pub sets: Vec<Set>,
    pub objects: Vec<Object>,
    pub flowtables: Vec<Flowtable>,
}

impl Table {
    pub fn new(loc: Loc, id: TableId) -> Self {
        Table {
            loc,
            id,
            flags: Vec::new(),
            comment: None,
            chains: Vec::new(),
            sets: Vec::new(),
            objects: Vec::new(),
            flowtables: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub loc: Loc,
    pub name: String,
    /// `type ... hook ... priority ...;`: a base chain; `None`: a regular
    /// chain, entered by `jump` / `goto` only.
    pub base: Option<BaseChain>,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaseChain {
    pub loc: Loc,
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: Priority,
    /// `policy accept|drop;` (`None`: accept, nft's default).
    pub policy: Option<Policy>,
    /// `device X` / `devices = { ... }` (netdev ingress/egress).
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

/// A chain priority: its number, resolved for the table's family and the
/// chain's hook as nft resolves it, and the name it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    pub value: i32,
    /// `dstnat - 10` is `Some(("dstnat", -10))`; a plain number is `None`.
    pub named: Option<(String, i32)>,
}

/// One rule: its statements in order (matches are statements too, as in
/// nft: a rule runs them left to right and stops at the first that fails).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub loc: Loc,
    pub stmts: Vec<Stmt>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub loc: Loc,
    pub kind: StmtKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `left op right`: `tcp dport 22`, `ip saddr != @blocked`.
    Match(Match),
    Verdict(Verdict),
    /// `left vmap { k : verdict }` / `left vmap @m`.
    VerdictMap {
        key: Expr,
        map: Expr,
    },
    /// `counter`, `counter packets N bytes M`, `counter name X`.
    Counter(CounterStmt),
    Log(Log),
    Limit(LimitStmt),
    Quota(QuotaStmt),
    Reject(Reject),
    Nat(Nat),
    /// `meta mark set X`, `mark set X`, `ct mark set X`, `ct helper set X`,
    /// `ip dscp set X`: what is written and the value.
    Set {
        target: Expr,
        value: Expr,
    },
    Notrack,
    /// `flow add @ft` / `flow offload @ft`.
    Flow {
        flowtable: String,
    },
    /// `add @s { key [timeout T] [stmts] }`, `update @s { ... }`,
    /// `delete @s { ... }`.
    Dynset(Dynset),
    /// `queue [num N[-M]] [bypass,fanout]`: parsed so it can be refused.
    Queue {
        num: Option<Expr>,
        flags: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// No operator written: equality, or "any of these bits" for flag
    /// types (`ct state established,related`, `tcp flags syn`).
    Implicit,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub left: Expr,
    pub op: RelOp,
    pub right: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// An expression: what a packet gives (payload, meta, ct, fib, numgen,
/// hash) or a value (constants, sets, ranges, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A header field: `ip saddr`, `tcp dport`, `th dport`, `vlan id`.
    Payload {
        proto: Proto,
        field: PayloadField,
    },
    Meta(MetaKey),
    Ct(Ct),
    Fib(Fib),
    /// `tcp option maxseg size`, `tcp option sack-perm` (no field: whether
    /// the option is present, compared with `exists` / `missing`).
    TcpOption {
        kind: u8,
        field: Option<TcpOptionField>,
    },
    /// `rt mtu`, `rt classid`, `rt nexthop`: the route the packet takes.
    Rt(RtKey),
    /// `numgen inc|random mod N [offset K]`.
    Numgen {
        random: bool,
        modulus: u32,
        offset: u32,
    },
    /// `jhash EXPR mod N [seed S] [offset K]`, `symhash mod N [offset K]`.
    Hash {
        /// `None` for symhash.
        key: Option<Box<Expr>>,
        modulus: u32,
        seed: Option<u32>,
        offset: u32,
    },
    /// A typed constant.
    Const(Const),
    /// `a-b`.
    Range(Box<Expr>, Box<Expr>),
    /// `addr/len`.
    Prefix(Box<Expr>, u8),
    /// `a . b . c`.
    Concat(Vec<Expr>),
    /// A comma list of flag values without braces: `established,related`
    /// (any of them).
    List(Vec<Expr>),
    /// An anonymous set or map body `{ ... }`.
    Set(Vec<Element>),
    /// `@name`.
    SetRef(String),
    Binop {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `key map { k : v }` / `key map @m`.
    Map {
        key: Box<Expr>,
        map: Box<Expr>,
    },
    /// A verdict as a map value.
    Verdict(Verdict),
}

/// A constant: its value, its type, and the symbol it was written as.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub ty: DataType,
    pub value: Value,
    /// `ssh` for port 22, `established` for ct state 2.
    pub symbol: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(u64),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Ether([u8; 6]),
    /// Interface names (with a trailing `*` wildcard), helper names,
    /// strings.
    Str(String),
    /// A duration in milliseconds (`1h30m`).
    Millis(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ct {
    /// `ct original ...` / `ct reply ...`.
    pub dir: Option<CtDir>,
    pub key: CtKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtDir {
    Original,
    Reply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    State,
    Status,
    Mark,
    Direction,
    Helper,
    Expiration,
    Zone,
    Label,
    L3proto,
    Protocol,
    Bytes,
    Packets,
    Avgpkt,
    Id,
    /// `ct original saddr` or `ct original ip saddr` (`Some(family)`).
    Saddr(Option<Family>),
    Daddr(Option<Family>),
    ProtoSrc,
    ProtoDst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOptionField {
    Length,
    /// `maxseg size`.
    Size,
    /// `window count`.
    Count,
    Left,
    Right,
    Tsval,
    Tsecr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtKey {
    /// The TCP MSS the route allows (`tcp option maxseg size set rt mtu`).
    Mtu,
    Classid,
    /// The next hop, of the table's family (ip or ip6 tables only).
    Nexthop(Family),
}

/// `fib FLAGS RESULT`: `fib saddr . iif oif`, `fib daddr type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fib {
    pub flags: Vec<FibFlag>,
    pub result: FibResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibFlag {
    Saddr,
    Daddr,
    Mark,
    Iif,
    Oif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FibResult {
    Oif,
    Oifname,
    Type,
}

/// A set or map element: key (a value, range, prefix or concatenation),
/// its value for maps, and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub loc: Loc,
    pub key: Expr,
    pub value: Option<Expr>,
    pub timeout: Option<u64>,
    pub expires: Option<u64>,
    pub comment: Option<String>,
    /// `counter [packets N bytes M]` on the element.
    pub counter: Option<(u64, u64)>,
}

impl Element {
    pub fn new(loc: Loc, key: Expr) -> Self {
        Element {
            loc,
            key,
            value: None,
            timeout: None,
            expires: None,
            comment: None,
            counter: None,
        }
    }
}

/// What a set's key or a map's value is: types (`type ipv4_addr .
/// inet_service`) or, with `typeof`, the expressions they are taken from.
#[derive(Debug, Clone, PartialEq)]
pub struct SetType {
    pub types: Vec<DataType>,
    /// The `typeof` expressions (empty for `type`).
    pub typeof_exprs: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub loc: Loc,
    pub name: String,
    pub key: SetType,
    /// Maps: the value type (`verdict` for verdict maps).
    pub map: Option<SetType>,
    /// `constant`, `interval`, `timeout`, `dynamic`.
    pub flags: Vec<SetFlag>,
    pub timeout: Option<u64>,
    pub gc_interval: Option<u64>,
    pub size: Option<u64>,
    pub elements: Vec<Element>,
    pub comment: Option<String>,
    /// `counter` in the set block: every element counts.
    pub counter: bool,
    pub auto_merge: bool,
    /// `policy performance|memory`.
    pub policy: Option<String>,
}

impl Set {
    pub fn is_verdict_map(&self) -> bool {
        self.map
            .as_ref()
            .is_some_and(|m| m.types == [DataType::Verdict])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFlag {
    Constant,
    Interval,
    Timeout,
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Counter,
    Quota,
    Limit,
    CtHelper,
}

/// A named stateful object.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub loc: Loc,
    pub name: String,
    pub kind: ObjectBody,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectBody {
    Counter {
        packets: u64,
        bytes: u64,
    },
    Quota(Quota),
    Limit(Limit),
    /// `ct helper NAME { type "ftp" protocol tcp; l3proto ip; }`.
    CtHelper {
        helper: String,
        protocol: u8,
        l3proto: Option<Family>,
    },
}

impl ObjectBody {
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectBody::Counter { .. } => ObjectKind::Counter,
            ObjectBody::Quota(_) => ObjectKind::Quota,
            ObjectBody::Limit(_) => ObjectKind::Limit,
            ObjectBody::CtHelper { .. } => ObjectKind::CtHelper,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flowtable {
    pub loc: Loc,
    pub name: String,
    pub hook: Hook,
    pub priority: Priority,
    pub devices: Vec<String>,
    /// `flags offload` (hardware offload) and `counter`.
    pub offload: bool,
    pub counter: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CounterStmt {
    Anonymous {
        packets: u64,
        bytes: u64,
    },
    /// `counter name X`: a named counter object of the table.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    pub prefix: Option<String>,
    /// `emerg` ... `debug`, `audit`.
    pub level: Option<String>,
    pub group: Option<u16>,
    pub snaplen: Option<u32>,
    pub queue_threshold: Option<u16>,
    /// `tcp sequence`, `tcp options`, `ip options`, `skuid`, `ether`, `all`.
    pub flags: Vec<String>,
}

/// A rate: `N/unit` packets, or bytes with `bytes: true` (`10 mbytes/second`
/// as 10485760).
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub rate: u64,
    /// The unit's length in seconds (1, 60, 3600, 86400, 604800).
    pub per_secs: u64,
    pub bytes: bool,
    pub burst: Option<u64>,
    /// `over`: the statement matches when the rate is exceeded.
    pub over: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LimitStmt {
    Rate(Limit),
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub bytes: u64,
    pub used: u64,
    pub over: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QuotaStmt {
    Bytes(Quota),
    Named(String),
}

/// `reject [with icmp|icmpv6|icmpx [type] CODE | with tcp reset]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reject {
    /// Plain `reject`: port unreachable in the packet's family (nft's
    /// default, `icmpx port-unreachable` in inet tables).
    Default,
    Icmp(Const),
    Icmpv6(Const),
    Icmpx(Const),
    TcpReset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    Snat,
    Dnat,
    Masquerade,
    Redirect,
}

/// A translation statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Nat {
    pub kind: NatKind,
    /// `snat ip to`, `dnat ip6 to` (required in inet tables).
    pub family: Option<Family>,
    /// `addr . port` (`dnat ip addr . port to ...`): the address expression
    /// gives both.
    pub addr_port: bool,
    /// The address (a constant, range, or map expression).
    pub addr: Option<Expr>,
    /// The port or port range after `:`.
    pub port: Option<Expr>,
    /// `random`, `fully-random`, `persistent`, `netmap`.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynsetOp {
    Add,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dynset {
    pub op: DynsetOp,
    pub set: String,
    pub key: Expr,
    pub timeout: Option<u64>,
    /// Statements attached to the element (`limit rate ...`, `counter`).
    pub stmts: Vec<Stmt>,
}
