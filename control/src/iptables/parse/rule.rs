//! One rule: its options read left to right (`!` before the option it
//! negates, or in the old form between an option and its value), each
//! handed to the matches or the target, then the checks that need the
//! whole line.

use super::super::model::*;
use super::R;
use super::matches::MatchOpts;
use super::targets::{TARGET_FLAGS, TARGET_OPTIONS, TargetOpts, build_target};
use super::values::Cursor;

/// Options `!` cannot negate.
const NOT_NEGATABLE: [&str; 9] = [
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
    "--comment",
    "--mode",
    "--packet",
];

/// A rule's options as read so far.
#[derive(Default)]
struct RuleOpts {
    matches: MatchOpts,
    /// `-j NAME` or `-g NAME`: (name, goto).
    target: Option<(String, bool)>,
    topts: TargetOpts,
}

/// The rule of a `-A` / `-I` line (`words`: what follows the command) in
/// `table`.
pub(super) fn parse_rule(
    words: &[String],
    table: TableKind,
    line: usize,
    counters: Counters,
) -> R<Rule> {
    let mut o = RuleOpts::default();
    o.read(words)?;
    let proto = o.matches.protocol();
    let (matches, mut family) = o.matches.finish()?;
    let (target, nat_flags) = build_target(o.target, o.topts, table, proto, &mut family)?;
    Ok(Rule {
        line,
        matches,
        target,
        nat_flags,
        counters,
    })
}

impl RuleOpts {
    /// Every option of `words`, in order.
    fn read(&mut self, words: &[String]) -> R<()> {
        let mut cur = Cursor { words, i: 0 };
        let mut neg = false;
        while cur.i < words.len() {
            let opt = words[cur.i].clone();
            cur.i += 1;
            if opt == "!" {
                if neg {
                    return Err("\"!\" given twice".into());
                }
                neg = true;
                continue;
            }
            let o = opt.as_str();
            let negatable = !NOT_NEGATABLE.contains(&o)
                && !TARGET_OPTIONS.contains(&o)
                && !TARGET_FLAGS.contains(&o);
            if neg && !negatable {
                return Err(format!("option {o} cannot be negated with !"));
            }
            if !is_known_option(o) {
                return Err(format!("unsupported option {o}"));
            }
            let n = std::mem::take(&mut neg);
            self.option(o, n, negatable, &mut cur)?;
        }
        if neg {
            return Err("\"!\" at the end of the rule".into());
        }
        Ok(())
    }

    /// Option `o` (`n`: a `!` before it), its value read from `cur`.
    fn option(&mut self, o: &str, mut n: bool, negatable: bool, cur: &mut Cursor) -> R<()> {
        if o == "--syn" {
            return self.matches.syn(o, n);
        }
        if TARGET_FLAGS.contains(&o) {
            return self.topts.flag(o);
        }
        if self.matches.ext_flag(o) {
            return self.matches.ext_option(o, n, None);
        }
        let v = cur.value(o, &mut n, negatable)?;
        if o == "--match-set" {
            // Two words: the set's name and its flags.
            let flags = cur.value(o, &mut n, false)?;
            return self.matches.option(o, n, format!("{v} {flags}"), cur);
        }
        match o {
            "-m" | "--match" => self.matches.module(v),
            "-j" | "--jump" | "-g" | "--goto" => {
                if self.target.is_some() {
                    return Err("only one -j or -g per rule".into());
                }
                self.target = Some((v, o == "-g" || o == "--goto"));
                Ok(())
            }
            // Before `-j`, a module given so far that takes the option
            // has it (`-m recent ... --mask`, not CONNMARK's `--mask`).
            _ if self.target.is_none() && self.matches.ext_takes_value(o) => {
                self.matches.option(o, n, v, cur)
            }
            _ if TARGET_OPTIONS.contains(&o) => self.topts.option(o, v),
            _ => self.matches.option(o, n, v, cur),
        }
    }
}

fn is_known_option(o: &str) -> bool {
    super::super::ext::is_option(o)
        || matches!(
            o,
            "-s" | "--source"
                | "--src"
                | "-d"
                | "--destination"
                | "--dst"
                | "-i"
                | "--in-interface"
                | "-o"
                | "--out-interface"
                | "-p"
                | "--protocol"
                | "-m"
                | "--match"
                | "-j"
                | "--jump"
                | "-g"
                | "--goto"
                | "--sport"
                | "--source-port"
                | "--dport"
                | "--destination-port"
                | "--tcp-flags"
                | "--syn"
                | "--icmp-type"
                | "--icmpv6-type"
                | "--dports"
                | "--destination-ports"
                | "--sports"
                | "--source-ports"
                | "--ports"
                | "--state"
                | "--ctstate"
                | "--mode"
                | "--every"
                | "--packet"
                | "--probability"
                | "--mark"
                | "--comment"
        )
        // Every target's options, from one list.
        || TARGET_OPTIONS.contains(&o)
        || TARGET_FLAGS.contains(&o)
}
