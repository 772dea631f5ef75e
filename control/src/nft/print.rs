//! A ruleset printed back as nft text, the way `nft list ruleset` prints
//! it: each table's objects (counters, quotas, limits, ct helpers), then
//! its sets and maps, then its chains with their base chain spec and
//! rules, blank lines between them.
//!
//! What is printed reads back (through [`super::parse`] and
//! [`super::state::apply`]) as the same tables, and `nft -c` accepts it
//! (control/tests/nft_print.rs checks both on the corpus): constants are
//! printed by the symbol they were written with where the AST kept one
//! (`ssh`, `established`), numbers otherwise; priorities by name where they
//! were written by name (`priority dstnat - 10`); strings quoted. What
//! [`TableState`] does not keep is not printed: table and chain comments,
//! table flags other than `dormant`, and flowtables (so a rule's `flow add
//! @ft` names a flowtable the printed text does not declare).
//!
//! Rule counters can be shown as nft shows them: [`print_ruleset`] takes
//! a callback giving (packets, bytes) per rule, printed in the rule's own
//! `counter` statement if it has one, else as `counter packets P bytes B`
//! before the rule's verdict.

use std::fmt::Write as _;

use super::ast::*;
use super::state::{ChainState, TableState};
use super::types::{META_KEYS, payload_fields};

/// (packets, bytes) for rule `index` of `chain` in `table`, or `None` to
/// print the rule as written.
pub type Counters<'a> = &'a dyn Fn(&TableState, &ChainState, usize) -> Option<(u64, u64)>;

/// `tables` as nft text, without counters added: the rules as written.
pub fn print_tables(tables: &[TableState]) -> String {
    print_ruleset(tables, &|_, _, _| None)
}

/// `tables` as nft text, each rule with the counter values `counters`
/// gives for it.
pub fn print_ruleset(tables: &[TableState], counters: Counters<'_>) -> String {
    let mut out = String::new();
    for t in tables {
        table(&mut out, t, counters);
    }
    out
}

fn table(out: &mut String, t: &TableState, counters: Counters<'_>) {
    let _ = writeln!(out, "table {} {} {{", t.id.family.name(), name(&t.id.name));
    if t.dormant {
        out.push_str("\tflags dormant\n");
    }
    let mut first = !t.dormant;
    let mut sep = |out: &mut String| {
        if !first {
            out.push('\n');
        }
        first = false;
    };
    for o in &t.objects {
        sep(out);
        object(out, o);
    }
    for s in &t.sets {
        sep(out);
        set(out, s);
    }
    for c in &t.chains {
        sep(out);
        chain(out, t, c, counters);
    }
    out.push_str("}\n");
}

fn object(out: &mut String, o: &Object) {
    let kind = match &o.kind {
        ObjectBody::Counter { .. } => "counter",
        ObjectBody::Quota(_) => "quota",
        ObjectBody::Limit(_) => "limit",
        ObjectBody::CtHelper { .. } => "ct helper",
    };
    let _ = writeln!(out, "\t{kind} {} {{", name(&o.name));
    match &o.kind {
        ObjectBody::Counter { packets, bytes } => {
            let _ = writeln!(out, "\t\tpackets {packets} bytes {bytes}");
        }
        ObjectBody::Quota(q) => {
            let _ = writeln!(out, "\t\t{}", quota(q));
        }
        ObjectBody::Limit(l) => {
            let _ = writeln!(out, "\t\trate {}", limit(l));
        }
        ObjectBody::CtHelper {
            helper,
            protocol,
            l3proto,
        } => {
            let proto = match protocol {
                17 => "udp",
                _ => "tcp",
            };
            let _ = writeln!(out, "\t\ttype {} protocol {proto}", quoted(helper));
            if let Some(f) = l3proto {
                let _ = writeln!(out, "\t\tl3proto {}", f.name());
            }
        }
    }
    if let Some(c) = &o.comment {
        let _ = writeln!(out, "\t\tcomment {}", quoted(c));
    }
    out.push_str("\t}\n");
}

fn set(out: &mut String, s: &Set) {
    let kw = if s.map.is_some() { "map" } else { "set" };
    let _ = writeln!(out, "\t{kw} {} {{", name(&s.name));
    let typeof_ = !s.key.typeof_exprs.is_empty();
    let mut ty = if typeof_ {
        format!("typeof {}", join(&s.key.typeof_exprs, " . "))
    } else {
        format!("type {}", type_names(&s.key.types))
    };
    if let Some(m) = &s.map {
        ty.push_str(" : ");
        if !m.typeof_exprs.is_empty() {
            ty.push_str(&join(&m.typeof_exprs, " . "));
        } else {
            ty.push_str(&type_names(&m.types));
        }
    }
    let _ = writeln!(out, "\t\t{ty}");
    if !s.flags.is_empty() {
        let flags: Vec<&str> = s
            .flags
            .iter()
            .map(|f| match f {
                SetFlag::Constant => "constant",
                SetFlag::Interval => "interval",
                SetFlag::Timeout => "timeout",
                SetFlag::Dynamic => "dynamic",
            })
            .collect();
        let _ = writeln!(out, "\t\tflags {}", flags.join(","));
    }
    if let Some(t) = s.timeout {
        let _ = writeln!(out, "\t\ttimeout {}", duration(t));
    }
    if let Some(t) = s.gc_interval {
        let _ = writeln!(out, "\t\tgc-interval {}", duration(t));
    }
    if let Some(n) = s.size {
        let _ = writeln!(out, "\t\tsize {n}");
    }
    if let Some(p) = &s.policy {
        let _ = writeln!(out, "\t\tpolicy {p}");
    }
    if s.counter {
        out.push_str("\t\tcounter\n");
    }
    if s.auto_merge {
        out.push_str("\t\tauto-merge\n");
    }
    if let Some(c) = &s.comment {
        let _ = writeln!(out, "\t\tcomment {}", quoted(c));
    }
    if !s.elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {}", elements(&s.elements));
    }
    out.push_str("\t}\n");
}

fn chain(out: &mut String, t: &TableState, c: &ChainState, counters: Counters<'_>) {
    let _ = writeln!(out, "\tchain {} {{", name(&c.name));
    if let Some(b) = &c.base {
        let kind = match b.kind {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        };
        let _ = write!(out, "\t\ttype {kind} hook {}", b.hook.name());
        if let [d] = b.devices.as_slice() {
            let _ = write!(out, " device {}", quoted(d));
        }
        let _ = write!(out, " priority {};", priority(&b.priority));
        if let Some(p) = b.policy {
            let p = match p {
                Policy::Accept => "accept",
                Policy::Drop => "drop",
            };
            let _ = write!(out, " policy {p};");
        }
        out.push('\n');
        if b.devices.len() > 1 {
            let devs: Vec<String> = b.devices.iter().map(|d| quoted(d)).collect();
            let _ = writeln!(out, "\t\tdevices = {{ {} }};", devs.join(", "));
        }
    }
    for (i, r) in c.rules.iter().enumerate() {
        let _ = writeln!(out, "\t\t{}", rule_with(r, counters(t, c, i)));
    }
    out.push_str("\t}\n");
}

/// A priority as written: `filter`, `dstnat - 10`, `-300`.
pub fn priority(p: &Priority) -> String {
    match &p.named {
        Some((n, 0)) => n.clone(),
        Some((n, o)) if *o > 0 => format!("{n} + {o}"),
        Some((n, o)) => format!("{n} - {}", o.unsigned_abs()),
        None => p.value.to_string(),
    }
}

/// One rule on one line: its statements, then its comment.
pub fn rule(r: &Rule) -> String {
    rule_with(r, None)
}

/// A rule with `counter` showing `(packets, bytes)`: in the rule's first
/// anonymous counter statement if it has one, else a `counter` statement
/// put before the rule's verdict (or at its end).
pub fn rule_with(r: &Rule, counter: Option<(u64, u64)>) -> String {
    let mut parts: Vec<String> = r.stmts.iter().map(|s| stmt(&s.kind)).collect();
    if let Some((packets, bytes)) = counter {
        let shown = format!("counter packets {packets} bytes {bytes}");
        let own = r
            .stmts
            .iter()
            .position(|s| matches!(s.kind, StmtKind::Counter(CounterStmt::Anonymous { .. })));
        match own {
            Some(i) => parts[i] = shown,
            None => {
                let at = r
                    .stmts
                    .iter()
                    .position(|s| is_terminal(&s.kind))
                    .unwrap_or(parts.len());
                parts.insert(at, shown);
            }
        }
    }
    if let Some(c) = &r.comment {
        parts.push(format!("comment {}", quoted(c)));
    }
    parts.join(" ")
}

/// Statements that end a rule's evaluation (what a counter goes before).
fn is_terminal(s: &StmtKind) -> bool {
    matches!(
        s,
        StmtKind::Verdict(_)
            | StmtKind::VerdictMap { .. }
            | StmtKind::Reject(_)
            | StmtKind::Nat(_)
            | StmtKind::Queue { .. }
    )
}

/// One statement.
pub fn stmt(s: &StmtKind) -> String {
    match s {
        StmtKind::Match(m) => match_(m),
        StmtKind::Verdict(v) => verdict(v),
        StmtKind::VerdictMap { key, map } => format!("{} vmap {}", expr(key), expr(map)),
        StmtKind::Counter(CounterStmt::Anonymous { packets, bytes }) => {
            format!("counter packets {packets} bytes {bytes}")
        }
        StmtKind::Counter(CounterStmt::Named(n)) => format!("counter name {}", quoted(n)),
        StmtKind::Log(l) => log(l),
        StmtKind::Limit(LimitStmt::Rate(l)) => format!("limit rate {}", limit(l)),
        StmtKind::Limit(LimitStmt::Named(n)) => format!("limit name {}", quoted(n)),
        StmtKind::Quota(QuotaStmt::Bytes(q)) => format!("quota {}", quota(q)),
        StmtKind::Quota(QuotaStmt::Named(n)) => format!("quota name {}", quoted(n)),
        StmtKind::Reject(r) => match r {
            Reject::Default => "reject".into(),
            Reject::Icmp(c) => format!("reject with icmp type {}", constant(c)),
            Reject::Icmpv6(c) => format!("reject with icmpv6 type {}", constant(c)),
            Reject::Icmpx(c) => format!("reject with icmpx type {}", constant(c)),
            Reject::TcpReset => "reject with tcp reset".into(),
        },
        StmtKind::Nat(n) => nat(n),
        StmtKind::Set { target, value } => format!("{} set {}", expr(target), expr(value)),
        StmtKind::Notrack => "notrack".into(),
        StmtKind::Flow { flowtable } => format!("flow add @{flowtable}"),
        StmtKind::Dynset(d) => {
            let op = match d.op {
                DynsetOp::Add => "add",
                DynsetOp::Update => "update",
                DynsetOp::Delete => "delete",
            };
            let mut s = format!("{op} @{} {{ {}", d.set, expr(&d.key));
            if let Some(t) = d.timeout {
                let _ = write!(s, " timeout {}", duration(t));
            }
            for st in &d.stmts {
                let _ = write!(s, " {}", stmt(&st.kind));
            }
            s.push_str(" }");
            s
        }
        StmtKind::Queue { num, flags } => {
            let mut s = String::from("queue");
            if let Some(n) = num {
                let _ = write!(s, " num {}", expr(n));
            }
            if !flags.is_empty() {
                let _ = write!(s, " {}", flags.join(","));
            }
            s
        }
    }
}

fn match_(m: &Match) -> String {
    let op = match m.op {
        RelOp::Implicit => "",
        RelOp::Eq => "==",
        RelOp::Ne => "!=",
        RelOp::Lt => "<",
        RelOp::Gt => ">",
        RelOp::Le => "<=",
        RelOp::Ge => ">=",
    };
    // `tcp flags syn / fin,syn,rst,ack`: a comma list of flags cannot
    // follow `&`, so the mask is written after the value.
    if let Expr::Binop {
        op: BinOp::And,
        left,
        right,
    } = &m.left
        && let Expr::List(_) = &**right
    {
        let op = if m.op == RelOp::Eq { "" } else { op };
        return [
            expr(left),
            op.into(),
            expr(&m.right),
            "/".into(),
            expr(right),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    }
    if op.is_empty() {
        format!("{} {}", expr(&m.left), expr(&m.right))
    } else {
        format!("{} {op} {}", expr(&m.left), expr(&m.right))
    }
}

/// A verdict: `accept`, `jump NAME`.
pub fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {}", name(c)),
        Verdict::Goto(c) => format!("goto {}", name(c)),
    }
}

fn log(l: &Log) -> String {
    let mut s = String::from("log");
    if let Some(p) = &l.prefix {
        let _ = write!(s, " prefix {}", quoted(p));
    }
    if let Some(v) = &l.level {
        let _ = write!(s, " level {v}");
    }
    if let Some(g) = l.group {
        let _ = write!(s, " group {g}");
    }
    if let Some(n) = l.snaplen {
        let _ = write!(s, " snaplen {n}");
    }
    if let Some(n) = l.queue_threshold {
        let _ = write!(s, " queue-threshold {n}");
    }
    let tcp: Vec<&str> = l
        .flags
        .iter()
        .filter_map(|f| f.strip_prefix("tcp "))
        .collect();
    if !tcp.is_empty() {
        let _ = write!(s, " flags tcp {}", tcp.join(","));
    }
    for f in l.flags.iter().filter(|f| !f.starts_with("tcp ")) {
        let _ = write!(s, " flags {f}");
    }
    s
}

/// After `rate`: `[over] 10/second [burst 5 packets]`, `1 mbytes/second`.
fn limit(l: &Limit) -> String {
    let per = match l.per_secs {
        60 => "minute",
        3600 => "hour",
        86400 => "day",
        604800 => "week",
        _ => "second",
    };
    let over = if l.over { "over " } else { "" };
    let mut s = if l.bytes {
        format!("{over}{}/{per}", bytes(l.rate))
    } else {
        format!("{over}{}/{per}", l.rate)
    };
    if let Some(b) = l.burst {
        if l.bytes {
            let _ = write!(s, " burst {}", bytes(b));
        } else {
            let _ = write!(s, " burst {b} packets");
        }
    }
    s
}

fn quota(q: &Quota) -> String {
    let mut s = String::new();
    if q.over {
        s.push_str("over ");
    }
    s.push_str(&bytes(q.bytes));
    if q.used != 0 {
        let _ = write!(s, " used {}", bytes(q.used));
    }
    s
}

/// A byte count in the largest unit that divides it: `25 mbytes`.
fn bytes(n: u64) -> String {
    for (unit, size) in [
        ("gbytes", 1u64 << 30),
        ("mbytes", 1 << 20),
        ("kbytes", 1 << 10),
    ] {
        if n != 0 && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

fn nat(n: &Nat) -> String {
    let mut s = String::from(match n.kind {
        NatKind::Snat => "snat",
        NatKind::Dnat => "dnat",
        NatKind::Masquerade => "masquerade",
        NatKind::Redirect => "redirect",
    });
    if let Some(f) = n.family {
        let _ = write!(s, " {}", f.name());
    }
    if n.addr_port {
        s.push_str(" addr . port");
    }
    match (&n.addr, &n.port) {
        (Some(a), port) => {
            let _ = write!(s, " to {}", nat_addr(a, port.is_some()));
            if let Some(p) = port {
                match p {
                    Expr::Const(_) | Expr::Range(..) => {
                        let _ = write!(s, ":{}", expr(p));
                    }
                    _ => {
                        let _ = write!(s, " : {}", expr(p));
                    }
                }
            }
        }
        (None, Some(p)) => {
            let _ = write!(s, " to :{}", expr(p));
        }
        (None, None) => {}
    }
    if !n.flags.is_empty() {
        let _ = write!(s, " {}", n.flags.join(","));
    }
    s
}

/// A NAT address: IPv6 addresses in brackets when a port follows
/// (`[fe80::1]:80`).
fn nat_addr(a: &Expr, port: bool) -> String {
    let v6 = |e: &Expr| match e {
        Expr::Const(Const {
            value: Value::V6(x),
            ..
        }) => Some(format!("[{x}]")),
        _ => None,
    };
    if !port {
        return expr(a);
    }
    match a {
        Expr::Range(lo, hi) => match (v6(lo), v6(hi)) {
            (Some(l), Some(h)) => format!("{l}-{h}"),
            _ => expr(a),
        },
        _ => v6(a).unwrap_or_else(|| expr(a)),
    }
}

/// An expression as nft writes it.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Payload { proto, field } => payload(*proto, *field),
        Expr::Meta(k) => {
            let n = META_KEYS
                .iter()
                .find(|(_, key, ..)| key == k)
                .map_or("?", |(n, ..)| *n);
            if matches!(
                k,
                MetaKey::Iif
                    | MetaKey::Oif
                    | MetaKey::Iifname
                    | MetaKey::Oifname
                    | MetaKey::Iifgroup
                    | MetaKey::Oifgroup
            ) {
                n.to_string()
            } else {
                format!("meta {n}")
            }
        }
        Expr::Ct(c) => ct(c),
        Expr::Fib(f) => {
            let flags: Vec<&str> = f
                .flags
                .iter()
                .map(|f| match f {
                    FibFlag::Saddr => "saddr",
                    FibFlag::Daddr => "daddr",
                    FibFlag::Mark => "mark",
                    FibFlag::Iif => "iif",
                    FibFlag::Oif => "oif",
                })
                .collect();
            let r = match f.result {
                FibResult::Oif => "oif",
                FibResult::Oifname => "oifname",
                FibResult::Type => "type",
            };
            format!("fib {} {r}", flags.join(" . "))
        }
        Expr::TcpOption { kind, field } => {
            let k = match kind {
                0 => "eol".to_string(),
                1 => "nop".into(),
                2 => "maxseg".into(),
                3 => "window".into(),
                4 => "sack-perm".into(),
                5 => "sack".into(),
                8 => "timestamp".into(),
                n => n.to_string(),
            };
            match field {
                None => format!("tcp option {k}"),
                Some(f) => {
                    let f = match f {
                        TcpOptionField::Length => "length",
                        TcpOptionField::Size => "size",
                        TcpOptionField::Count => "count",
                        TcpOptionField::Left => "left",
                        TcpOptionField::Right => "right",
                        TcpOptionField::Tsval => "tsval",
                        TcpOptionField::Tsecr => "tsecr",
                    };
                    format!("tcp option {k} {f}")
                }
            }
        }
        Expr::Rt(k) => match k {
            RtKey::Mtu => "rt mtu".into(),
            RtKey::Classid => "rt classid".into(),
            RtKey::Nexthop(_) => "rt nexthop".into(),
        },
        Expr::Numgen {
            random,
            modulus,
            offset,
        } => {
            let mode = if *random { "random" } else { "inc" };
            let mut s = format!("numgen {mode} mod {modulus}");
            if *offset != 0 {
                let _ = write!(s, " offset {offset}");
            }
            s
        }
        Expr::Hash {
            key,
            modulus,
            seed,
            offset,
        } => {
            let mut s = match key {
                Some(k) => format!("jhash {} mod {modulus}", expr(k)),
                None => format!("symhash mod {modulus}"),
            };
            if let Some(seed) = seed {
                let _ = write!(s, " seed 0x{seed:x}");
            }
            if *offset != 0 {
                let _ = write!(s, " offset {offset}");
            }
            s
        }
        Expr::Const(c) => constant(c),
        Expr::Range(lo, hi) => format!("{}-{}", expr(lo), expr(hi)),
        Expr::Prefix(a, len) => format!("{}/{len}", expr(a)),
        Expr::Concat(parts) => join(parts, " . "),
        Expr::List(items) => join(items, ","),
        Expr::Set(elems) => elements(elems),
        Expr::SetRef(n) => format!("@{n}"),
        Expr::Binop { op, left, right } => {
            let op = match op {
                BinOp::And => "&",
                BinOp::Or => "|",
                BinOp::Xor => "^",
                BinOp::Shl => "<<",
                BinOp::Shr => ">>",
            };
            format!("{} {op} {}", expr(left), expr(right))
        }
        Expr::Map { key, map } => format!("{} map {}", expr(key), expr(map)),
        Expr::Verdict(v) => verdict(v),
    }
}

fn join(es: &[Expr], sep: &str) -> String {
    es.iter().map(expr).collect::<Vec<_>>().join(sep)
}

fn payload(proto: Proto, field: PayloadField) -> String {
    let p = match proto {
        Proto::Ether => "ether",
        Proto::Vlan => "vlan",
        Proto::Ip => "ip",
        Proto::Ip6 => "ip6",
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Udplite => "udplite",
        Proto::Sctp => "sctp",
        Proto::Dccp => "dccp",
        Proto::Th => "th",
        Proto::Icmp => "icmp",
        Proto::Icmpv6 => "icmpv6",
        Proto::Ah => "ah",
        Proto::Esp => "esp",
    };
    let f = payload_fields(proto)
        .iter()
        .find(|(_, f, _)| *f == field)
        .map_or("?", |(n, ..)| *n);
    format!("{p} {f}")
}

fn ct(c: &Ct) -> String {
    let mut s = String::from("ct");
    match c.dir {
        Some(CtDir::Original) => s.push_str(" original"),
        Some(CtDir::Reply) => s.push_str(" reply"),
        None => {}
    }
    let fam = |f: &Option<Family>| f.map_or(String::new(), |f| format!("{} ", f.name()));
    let k = match &c.key {
        CtKey::State => "state".to_string(),
        CtKey::Status => "status".into(),
        CtKey::Mark => "mark".into(),
        CtKey::Direction => "direction".into(),
        CtKey::Helper => "helper".into(),
        CtKey::Expiration => "expiration".into(),
        CtKey::Zone => "zone".into(),
        CtKey::Label => "label".into(),
        CtKey::L3proto => "l3proto".into(),
        CtKey::Protocol => "protocol".into(),
        CtKey::Bytes => "bytes".into(),
        CtKey::Packets => "packets".into(),
        CtKey::Avgpkt => "avgpkt".into(),
        CtKey::Id => "id".into(),
        CtKey::Saddr(f) => format!("{}saddr", fam(f)),
        CtKey::Daddr(f) => format!("{}daddr", fam(f)),
        CtKey::ProtoSrc => "proto-src".into(),
        CtKey::ProtoDst => "proto-dst".into(),
    };
    let _ = write!(s, " {k}");
    s
}

/// `{ a, b : v, ... }`.
fn elements(elems: &[Element]) -> String {
    if elems.is_empty() {
        return "{ }".into();
    }
    let items: Vec<String> = elems.iter().map(element).collect();
    format!("{{ {} }}", items.join(", "))
}

/// `key [counter ...] [timeout T] [expires T] [comment "c"] [: value]`:
/// nft 1.0.6 wants an element's counter right after its key.
fn element(e: &Element) -> String {
    let mut s = expr(&e.key);
    if let Some((p, b)) = e.counter {
        let _ = write!(s, " counter packets {p} bytes {b}");
    }
    if let Some(t) = e.timeout {
        let _ = write!(s, " timeout {}", duration(t));
    }
    if let Some(t) = e.expires {
        let _ = write!(s, " expires {}", duration(t));
    }
    if let Some(c) = &e.comment {
        let _ = write!(s, " comment {}", quoted(c));
    }
    if let Some(v) = &e.value {
        let _ = write!(s, " : {}", expr(v));
    }
    s
}

/// A constant: its symbol if it was written with one, else its value in
/// the type's usual notation.
pub fn constant(c: &Const) -> String {
    if let Some(s) = &c.symbol {
        return s.clone();
    }
    match &c.value {
        Value::Int(v) => int(c.ty, *v),
        Value::V4(a) => a.to_string(),
        Value::V6(a) => a.to_string(),
        Value::Ether(m) => m
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        Value::Str(s) => quoted(s),
        Value::Millis(ms) => duration(*ms),
    }
}

fn int(ty: DataType, v: u64) -> String {
    match ty {
        // Several flags at once (`(syn|ack)` was written): by name, in
        // parentheses so that `|` cannot read as an operator.
        DataType::CtState | DataType::CtStatus | DataType::TcpFlag if v.count_ones() > 1 => {
            let mut names = Vec::new();
            for bit in 0..64 {
                let b = 1u64 << bit;
                if v & b != 0 {
                    match flag_name(ty, b) {
                        Some(n) => names.push(n.to_string()),
                        None => return format!("0x{v:x}"),
                    }
                }
            }
            format!("({})", names.join(" | "))
        }
        DataType::Mark | DataType::EtherType | DataType::CtState | DataType::CtStatus => {
            format!("0x{v:x}")
        }
        _ => v.to_string(),
    }
}

/// The name of one flag bit of a flag type.
fn flag_name(ty: DataType, bit: u64) -> Option<&'static str> {
    const CT_STATE: &[&str] = &["invalid", "established", "related", "new"];
    const CT_STATUS: &[&str] = &[
        "expected",
        "seen-reply",
        "assured",
        "confirmed",
        "snat",
        "dnat",
    ];
    const TCP: &[&str] = &["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"];
    let i = bit.trailing_zeros() as usize;
    match ty {
        DataType::CtState if bit == 64 => Some("untracked"),
        DataType::CtState => CT_STATE.get(i).copied(),
        DataType::CtStatus if bit == 512 => Some("dying"),
        DataType::CtStatus => CT_STATUS.get(i).copied(),
        DataType::TcpFlag => TCP.get(i).copied(),
        _ => None,
    }
}

/// A duration in milliseconds as nft writes it: `1h30m`, `500ms`, `0s`.
pub fn duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut s = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000u64),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(s, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    s
}

/// The names of a set's key or value types: `ipv4_addr . inet_service`.
fn type_names(types: &[DataType]) -> String {
    types
        .iter()
        .map(|t| type_name(*t))
        .collect::<Vec<_>>()
        .join(" . ")
}

/// The name `type` gives `ty` in a set declaration.
pub fn type_name(ty: DataType) -> &'static str {
    use DataType as T;
    match ty {
        T::Ipv4Addr => "ipv4_addr",
        T::Ipv6Addr => "ipv6_addr",
        T::EtherAddr => "ether_addr",
        T::EtherType => "ether_type",
        T::InetProto => "inet_proto",
        T::InetService => "inet_service",
        T::Mark => "mark",
        T::IfIndex => "iface_index",
        T::IfName => "ifname",
        T::IfType => "iface_type",
        T::CtState => "ct_state",
        T::CtStatus => "ct_status",
        T::CtDir => "ct_dir",
        T::CtLabel => "ct_label",
        T::TcpFlag => "tcp_flag",
        T::IcmpType => "icmp_type",
        T::IcmpCode => "icmp_code",
        T::Icmpv6Type => "icmpv6_type",
        T::Icmpv6Code => "icmpv6_code",
        T::IcmpxCode => "icmpx_code",
        T::Pkttype => "pkt_type",
        T::NfProto => "nf_proto",
        T::FibAddrType => "fib_addrtype",
        T::Dscp => "dscp",
        T::Ecn => "ecn",
        T::Verdict => "verdict",
        T::Time => "time",
        T::Uid => "uid",
        T::Gid => "gid",
        T::Devgroup => "devgroup",
        T::Realm => "realm",
        T::Boolean => "boolean",
        T::Day => "day",
        T::Hour => "hour",
        T::String => "string",
        // No `type` name: such sets are declared with `typeof`.
        T::Integer | T::Bits(_) => "integer",
    }
}

/// A table, chain, set or object name: bare when nft's scanner reads it
/// as one string (a letter, `_` or `.`, then letters, digits, `/-_.`; nft
/// 1.0.6 refuses quoted chain names), else quoted.
fn name(n: &str) -> String {
    let bare = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.'))
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if bare { n.to_string() } else { quoted(n) }
}

/// A string in double quotes (nft strings have no escapes).
fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_read_back() {
        use DataType as T;
        for ty in [
            T::Ipv4Addr,
            T::Ipv6Addr,
            T::EtherAddr,
            T::EtherType,
            T::InetProto,
            T::InetService,
            T::Mark,
            T::IfIndex,
            T::IfName,
            T::IfType,
            T::CtState,
            T::CtStatus,
            T::CtDir,
            T::CtLabel,
            T::TcpFlag,
            T::IcmpType,
            T::IcmpCode,
            T::Icmpv6Type,
            T::Icmpv6Code,
            T::IcmpxCode,
            T::Pkttype,
            T::NfProto,
            T::FibAddrType,
            T::Dscp,
            T::Ecn,
            T::Verdict,
            T::Time,
            T::Uid,
            T::Gid,
            T::Devgroup,
            T::Realm,
            T::Boolean,
            T::Day,
            T::Hour,
            T::String,
        ] {
            assert_eq!(DataType::from_type_name(type_name(ty)), Some(ty), "{ty:?}");
        }
    }

    #[test]
    fn durations_bytes_priorities() {
        assert_eq!(duration(5_400_000), "1h30m");
        assert_eq!(duration(500), "500ms");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(90_061_001), "1d1h1m1s1ms");
        assert_eq!(bytes(25 << 20), "25 mbytes");
        assert_eq!(bytes(1000), "1000 bytes");
        assert_eq!(bytes(0), "0 bytes");
        let p = |named: Option<(&str, i32)>, value| Priority {
            value,
            named: named.map(|(n, o)| (n.to_string(), o)),
        };
        assert_eq!(priority(&p(Some(("dstnat", -10)), -110)), "dstnat - 10");
        assert_eq!(priority(&p(Some(("filter", 5)), 5)), "filter + 5");
        assert_eq!(priority(&p(Some(("srcnat", 0)), 100)), "srcnat");
        assert_eq!(priority(&p(None, -300)), "-300");
    }

    #[test]
    fn flags_and_names() {
        let c = |ty, v| Const {
            ty,
            value: Value::Int(v),
            symbol: None,
        };
        assert_eq!(constant(&c(DataType::TcpFlag, 0x12)), "(syn | ack)");
        assert_eq!(constant(&c(DataType::TcpFlag, 0x02)), "2");
        assert_eq!(constant(&c(DataType::Mark, 16)), "0x10");
        assert_eq!(name("input"), "input");
        assert_eq!(name("9x"), "\"9x\"");
        assert_eq!(name("svc-1/tcp/p80"), "svc-1/tcp/p80");
    }
}
