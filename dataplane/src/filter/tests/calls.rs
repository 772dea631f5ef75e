//! Chain calls: jumps, gotos, RETURN, policies, counters, call depth and
//! graphs the builder refuses.

use super::*;

/// FORWARD: `-j A`, then `-s 10.0.0.0/8 -j ACCEPT`, policy DROP.
/// The chains under A are built by `f`.
fn calls(f: impl FnOnce(&mut RulesetBuilder, ChainId)) -> Ruleset {
    let mut b = RulesetBuilder::new(2);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.set_policy(fwd, Policy::Drop).unwrap();
    let a = b.chain(TableId::Filter, "A");
    b.add_rule(fwd, spec(1, MatchSpec::default(), TargetSpec::Jump(a)));
    b.add_rule(
        fwd,
        spec(
            2,
            MatchSpec {
                src: Some(Neg::is(Prefix::v4(0x0a00_0000, 8))),
                ..MatchSpec::default()
            },
            TargetSpec::Accept,
        ),
    );
    f(&mut b, a);
    b.build().unwrap()
}

#[test]
fn jump_and_return() {
    let rs = calls(|b, a| {
        // A: from 10.9/16 accept; RETURN; drop (never reached).
        b.add_rule(
            a,
            spec(
                10,
                MatchSpec {
                    src: Some(Neg::is(Prefix::v4(0x0a09_0000, 16))),
                    ..MatchSpec::default()
                },
                TargetSpec::Reject(None),
            ),
        );
        b.add_rule(a, spec(11, MatchSpec::default(), TargetSpec::Return));
        b.add_rule(a, spec(12, MatchSpec::default(), TargetSpec::Drop));
    });
    assert_eq!(
        verdict(&rs, "10.9.1.1"),
        (Outcome::Reject(RejectKind::Icmp4 { typ: 3, code: 3 }), 10)
    );
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Accept, 2));
    assert_eq!(verdict(&rs, "11.1.1.1"), (Outcome::Drop, 0));
}

#[test]
fn falling_off_a_user_chain_returns() {
    let rs = calls(|b, a| {
        b.add_rule(a, spec(10, MatchSpec::default(), TargetSpec::None));
    });
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Accept, 2));
    assert_eq!(verdict(&rs, "11.1.1.1"), (Outcome::Drop, 0));
}

#[test]
fn goto_then_return_skips_the_goto_chain() {
    // A: -g B; then DROP (skipped: B's RETURN goes back to FORWARD).
    let rs = calls(|b, a| {
        let bb = b.chain(TableId::Filter, "B");
        b.add_rule(a, spec(10, MatchSpec::default(), TargetSpec::Goto(bb)));
        b.add_rule(a, spec(11, MatchSpec::default(), TargetSpec::Drop));
        b.add_rule(bb, spec(20, MatchSpec::default(), TargetSpec::Return));
        b.add_rule(bb, spec(21, MatchSpec::default(), TargetSpec::Drop));
    });
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Accept, 2));
    assert_eq!(verdict(&rs, "11.1.1.1"), (Outcome::Drop, 0));
    // Nested: A -j B, B -g C, C falls off -> back in A after the -j B.
    let rs = calls(|b, a| {
        let bb = b.chain(TableId::Filter, "B");
        let cc = b.chain(TableId::Filter, "C");
        b.add_rule(a, spec(10, MatchSpec::default(), TargetSpec::Jump(bb)));
        b.add_rule(a, spec(11, MatchSpec::default(), TargetSpec::Drop));
        b.add_rule(bb, spec(20, MatchSpec::default(), TargetSpec::Goto(cc)));
        b.add_rule(bb, spec(21, MatchSpec::default(), TargetSpec::Accept));
        b.add_rule(cc, spec(30, MatchSpec::default(), TargetSpec::None));
    });
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Drop, 11));
}

#[test]
fn goto_from_builtin_then_fall_off_is_the_policy() {
    let mut b = RulesetBuilder::new(2);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    b.set_policy(fwd, Policy::Drop).unwrap();
    let a = b.chain(TableId::Filter, "A");
    b.add_rule(fwd, spec(1, MatchSpec::default(), TargetSpec::Goto(a)));
    b.add_rule(fwd, spec(2, MatchSpec::default(), TargetSpec::Accept));
    b.add_rule(a, spec(3, MatchSpec::default(), TargetSpec::Return));
    let rs = b.build().unwrap();
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Drop, 0));
    // RETURN in a built-in chain: its policy.
    let rs = forward(
        vec![
            (MatchSpec::default(), TargetSpec::Return),
            (MatchSpec::default(), TargetSpec::Drop),
        ],
        Policy::Accept,
    );
    assert_eq!(verdict(&rs, "10.1.1.1"), (Outcome::Accept, 0));
}

#[test]
fn counters_count_matched_rules_including_non_terminal() {
    let rs = calls(|b, a| {
        b.add_rule(
            a,
            spec(
                10,
                MatchSpec::default(),
                TargetSpec::Log {
                    prefix: "A: ".into(),
                    level: 4,
                },
            ),
        );
        b.add_rule(
            a,
            spec(
                11,
                MatchSpec {
                    proto: Some(Neg::is(17)),
                    ..MatchSpec::default()
                },
                TargetSpec::Drop,
            ),
        );
        b.add_rule(
            a,
            spec(
                12,
                MatchSpec::default(),
                TargetSpec::Mark {
                    value: 7,
                    mask: u32::MAX,
                },
            ),
        );
    });
    let mut w1 = cx(&rs);
    let mut w2 = cx(&rs);
    for (w, src) in [(1, "10.1.1.1"), (1, "11.1.1.1"), (2, "10.2.2.2")] {
        let c = if w == 1 { &mut w1 } else { &mut w2 };
        let mut p = tcp4(src, "2.2.2.2", 1, 2, SYN);
        rs.eval(TableId::Filter, Hook::Forward, &mut p, c);
    }
    let idx = |chain: &str, pos: usize| rs.rule_counter_index(TableId::Filter, chain, pos).unwrap();
    assert_eq!(w1.counters.packets(idx("FORWARD", 0)), 2); // -j A
    assert_eq!(w1.counters.packets(idx("A", 0)), 2); // LOG
    assert_eq!(w1.counters.packets(idx("A", 1)), 0); // -p udp
    assert_eq!(w1.counters.packets(idx("A", 2)), 2); // MARK
    assert_eq!(w1.counters.bytes(idx("A", 2)), 120);
    assert_eq!(w1.counters.packets(idx("FORWARD", 1)), 1);
    assert_eq!(rs.rule_counter_index(TableId::Filter, "A", 3), None);
    assert_eq!(rs.rule_line(idx("A", 2)), 12);

    let view = rs.counters_view(&[&w1.counters, &w2.counters]);
    let fwd = view.iter().find(|c| c.name == "FORWARD").unwrap();
    assert_eq!(fwd.policy, Some(Policy::Drop));
    assert_eq!(
        fwd.rules,
        vec![
            RuleCounts {
                line: 1,
                packets: 3,
                bytes: 180
            },
            RuleCounts {
                line: 2,
                packets: 2,
                bytes: 120
            },
        ]
    );
    assert_eq!(fwd.policy_counts.packets, 1);
    let a = view.iter().find(|c| c.name == "A").unwrap();
    assert_eq!(a.policy, None);
    assert_eq!(
        a.rules
            .iter()
            .map(|r| (r.line, r.packets))
            .collect::<Vec<_>>(),
        vec![(10, 3), (11, 0), (12, 3)]
    );
}

/// `n` user chains each jumping (or going) to the next from FORWARD.
fn chain_of(n: usize, goto_every: usize) -> Result<Ruleset, Vec<BuildError>> {
    let mut b = RulesetBuilder::new(0);
    let mut prev = b.chain(TableId::Filter, "FORWARD");
    for k in 0..n {
        let c = b.chain(TableId::Filter, &format!("C{k}"));
        let t = if goto_every > 0 && k % goto_every == 0 {
            TargetSpec::Goto(c)
        } else {
            TargetSpec::Jump(c)
        };
        b.add_rule(prev, spec(k + 1, MatchSpec::default(), t));
        prev = c;
    }
    b.add_rule(prev, spec(1000, MatchSpec::default(), TargetSpec::Accept));
    b.build()
}

#[test]
fn call_depth_is_bounded() {
    let rs = chain_of(MAX_DEPTH, 0).unwrap();
    assert_eq!(verdict(&rs, "1.1.1.1"), (Outcome::Accept, 1000));
    let e = chain_of(MAX_DEPTH + 1, 0).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, MAX_DEPTH + 1);
    assert!(e[0].message.contains("deeper than 32"), "{e:?}");
    // Gotos do not push: 40 chains, every other one reached by -g.
    let rs = chain_of(40, 2).unwrap();
    assert_eq!(verdict(&rs, "1.1.1.1"), (Outcome::Accept, 1000));
}

#[test]
fn bad_graphs_are_refused() {
    let mut b = RulesetBuilder::new(0);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    let a = b.chain(TableId::Filter, "A");
    let bb = b.chain(TableId::Filter, "B");
    b.add_rule(fwd, spec(1, MatchSpec::default(), TargetSpec::Jump(a)));
    b.add_rule(a, spec(2, MatchSpec::default(), TargetSpec::Goto(bb)));
    b.add_rule(bb, spec(3, MatchSpec::default(), TargetSpec::Goto(a)));
    let e = b.build().unwrap_err();
    assert!(e[0].message.contains("loop"), "{e:?}");
    assert_ne!(e[0].line, 0);

    let mut b = RulesetBuilder::new(0);
    let fwd = b.chain(TableId::Filter, "FORWARD");
    let input = b.chain(TableId::Filter, "INPUT");
    let nat = b.chain(TableId::Nat, "X");
    b.add_rule(fwd, spec(1, MatchSpec::default(), TargetSpec::Jump(input)));
    b.add_rule(fwd, spec(2, MatchSpec::default(), TargetSpec::Jump(nat)));
    assert!(b.set_policy(nat, Policy::Drop).is_err());
    let e = b.build().unwrap_err();
    assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), vec![1, 2]);
}
