//! Evaluation as a whole: its cost, record sizes, sharing across workers
//! and the per-state fast path against full evaluation.

use super::*;

#[test]
fn ten_simple_rules_are_cheap() {
    // Ten rules that miss (ports, addresses, interfaces), then ACCEPT.
    let mut rules = Vec::new();
    for k in 0..10u16 {
        rules.push((
            MatchSpec {
                iif: Some(Neg::is(ifs(&[0]))),
                src: Some(Neg::is(Prefix::v4(0x0a00_0000, 8))),
                proto: Some(Neg::is(6)),
                dport: Some(Neg::is((1000 + k, 1000 + k))),
                ctstate: Some(Neg::is(ct::NEW)),
                ..MatchSpec::default()
            },
            TargetSpec::Drop,
        ));
    }
    rules.push((MatchSpec::default(), TargetSpec::Accept));
    let rs = forward(rules, Policy::Drop);
    let mut c = cx(&rs);
    let n = 200_000;
    let t = std::time::Instant::now();
    let base = tcp4("10.1.1.1", "2.2.2.2", 1, 80, SYN);
    for i in 0..n {
        let mut p = base;
        p.sport = i as u16;
        assert_eq!(
            rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c),
            Outcome::Accept
        );
    }
    let per = t.elapsed().as_nanos() / n;
    eprintln!("11 rules: {per} ns per packet");
    // A loose bound (tests run unoptimised on shared cores); the release
    // figure is in the module's notes.
    assert!(per < 5_000, "{per} ns");
}

#[test]
fn rule_records_stay_small() {
    // Under three cache lines; NAT actions and LOG prefixes live out of line.
    assert!(std::mem::size_of::<crate::filter::ruleset::Rule>() <= 160);
    assert!(std::mem::size_of::<crate::filter::ruleset::Action>() <= 16);
}

#[test]
fn shared_across_workers() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Ruleset>();
    send_sync::<RuleCounters>();
    send_sync::<LogRing>();
    send::<EvalCtx>();
}

/// One generated FORWARD rule: an optional `--ctstate` (negated or not),
/// optionally `-p tcp` (a match besides the state), and a target.
#[derive(Clone, Debug)]
struct GenRule {
    ctstate: Option<(bool, u8)>,
    proto: bool,
    target: u8,
}

fn gen_rule() -> impl proptest::strategy::Strategy<Value = GenRule> {
    use proptest::prelude::*;
    (
        proptest::option::of((any::<bool>(), 1u8..32)),
        proptest::bool::weighted(0.2),
        0u8..7,
    )
        .prop_map(|(ctstate, proto, target)| GenRule {
            ctstate,
            proto,
            target,
        })
}

/// FORWARD from generated rules (user chain U holds one ACCEPT of TCP).
fn gen_ruleset(rules: &[GenRule], drop: bool) -> Ruleset {
    let mut b = RulesetBuilder::new(2);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    let policy = if drop { Policy::Drop } else { Policy::Accept };
    b.set_policy(fwd, policy).unwrap();
    let u = b.chain(TableId::Filter, "U");
    let tcp = MatchSpec {
        proto: Some(Neg::is(6)),
        ..MatchSpec::default()
    };
    b.add_rule(u, spec(100, tcp.clone(), TargetSpec::Accept));
    for (i, g) in rules.iter().enumerate() {
        let mut m = if g.proto {
            tcp.clone()
        } else {
            MatchSpec::default()
        };
        m.ctstate = g.ctstate.map(|(n, s)| Neg::new(n, s));
        let target = match g.target {
            0 => TargetSpec::Accept,
            1 => TargetSpec::Drop,
            2 => TargetSpec::Reject(None),
            // IPv6 only (the family filter).
            3 => TargetSpec::Reject(Some(RejectKind::Icmp6 { typ: 1, code: 1 })),
            4 => TargetSpec::Jump(u),
            5 => TargetSpec::Mark { value: 1, mask: 1 },
            _ => TargetSpec::None,
        };
        b.add_rule(fwd, spec(i + 1, m, target));
    }
    b.build().unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whenever `eval_state` answers from the state alone, its verdict,
    /// deciding line and counters are those of the full walk.
    #[test]
    fn eval_state_agrees_with_eval(
        rules in proptest::collection::vec(gen_rule(), 0..6),
        drop in proptest::prelude::any::<bool>(),
    ) {
        let rs = gen_ruleset(&rules, drop);
        for v4 in [true, false] {
            for k in 0..5 {
                let state = 1u8 << k;
                let mut p = if v4 {
                    tcp4("1.1.1.1", "2.2.2.2", 1, 2, ACK)
                } else {
                    udp6("::1", "::2", 1, 2)
                };
                p.ctstate = state;
                let (mut fast, mut slow) = (cx(&rs), cx(&rs));
                let Some(out) =
                    rs.eval_state(TableId::Filter, Hook::Forward, v4, state, p.len, &mut fast)
                else {
                    continue;
                };
                let full = rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut slow);
                proptest::prop_assert_eq!(out, full);
                proptest::prop_assert_eq!(fast.last_rule_line, slow.last_rule_line);
                for i in 0..rs.counter_slots() {
                    proptest::prop_assert_eq!(fast.counters.packets(i), slow.counters.packets(i));
                    proptest::prop_assert_eq!(fast.counters.bytes(i), slow.counters.bytes(i));
                }
            }
        }
    }
}

#[test]
fn eval_state_answers_the_usual_stateful_chain() {
    let st = |s: u8| MatchSpec {
        ctstate: Some(Neg::is(s)),
        ..MatchSpec::default()
    };
    let rs = forward(
        vec![
            (st(ct::INVALID), TargetSpec::Drop),
            (st(ct::ESTABLISHED | ct::RELATED), TargetSpec::Accept),
            (
                MatchSpec {
                    iif: Some(Neg::is(ifs(&[1]))),
                    ..MatchSpec::default()
                },
                TargetSpec::Accept,
            ),
        ],
        Policy::Drop,
    );
    let mut c = cx(&rs);
    let f = |s: u8, c: &mut EvalCtx| rs.eval_state(TableId::Filter, Hook::Forward, true, s, 60, c);
    assert_eq!(f(ct::ESTABLISHED, &mut c), Some(Outcome::Accept));
    assert_eq!(c.last_rule_line, 2);
    assert_eq!(f(ct::RELATED, &mut c), Some(Outcome::Accept));
    assert_eq!(f(ct::INVALID, &mut c), Some(Outcome::Drop));
    assert_eq!(c.last_rule_line, 1);
    // NEW meets the interface rule: the packet must be evaluated.
    assert_eq!(f(ct::NEW, &mut c), None);
    assert_eq!((c.counters.packets(0), c.counters.packets(1)), (1, 2));
    assert_eq!(c.counters.bytes(1), 120);
}
