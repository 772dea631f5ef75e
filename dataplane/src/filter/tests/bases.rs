//! Several base chains at one hook (nftables): priority order, an accept
//! ends only its own chain, a drop (or reject) anywhere is final, each
//! chain's policy applies at its end and is counted apart; an iptables
//! built-in chain takes its table's standard priority.

use super::*;

fn src(s: &str) -> MatchSpec {
    MatchSpec {
        src: Some(Neg::is(Prefix::v4(
            u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()),
            32,
        ))),
        ..MatchSpec::default()
    }
}

fn run(rs: &Ruleset, from: &str) -> Outcome {
    let mut p = tcp4(from, "2.2.2.2", 1, 2, SYN);
    rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut cx(rs))
}

/// Base chains "a" (priority 10) and "b" (priority -5), added a first.
fn two(
    a: (Vec<(MatchSpec, TargetSpec)>, Policy),
    b: (Vec<(MatchSpec, TargetSpec)>, Policy),
) -> Ruleset {
    let mut bld = RulesetBuilder::new(4);
    for (name, prio, (rules, policy)) in [("a", 10, a), ("b", -5, b)] {
        let id = bld.base_chain(
            Family::Inet,
            TableId::Filter,
            Hook::Forward,
            name,
            prio,
            policy,
        );
        for (i, (m, t)) in rules.into_iter().enumerate() {
            bld.add_rule(id, spec(i + 1, m, t));
        }
    }
    bld.build().unwrap()
}

#[test]
fn accept_ends_only_its_chain_and_drop_is_final() {
    // b (priority -5) runs first: it accepts 1.1.1.1, then a drops it.
    let rs = two(
        (vec![(src("1.1.1.1"), TargetSpec::Drop)], Policy::Accept),
        (vec![(src("1.1.1.1"), TargetSpec::Accept)], Policy::Accept),
    );
    assert_eq!(run(&rs, "1.1.1.1"), Outcome::Drop);
    assert_eq!(run(&rs, "3.3.3.3"), Outcome::Accept);
    // b drops: a never sees it (a would accept).
    let rs = two(
        (vec![(src("1.1.1.1"), TargetSpec::Accept)], Policy::Drop),
        (vec![(src("1.1.1.1"), TargetSpec::Drop)], Policy::Accept),
    );
    assert_eq!(run(&rs, "1.1.1.1"), Outcome::Drop);
    // b's policy drop is final; a's accept never runs.
    let rs = two(
        (
            vec![(MatchSpec::default(), TargetSpec::Accept)],
            Policy::Accept,
        ),
        (vec![(src("1.1.1.1"), TargetSpec::Accept)], Policy::Drop),
    );
    assert_eq!(run(&rs, "1.1.1.1"), Outcome::Accept);
    assert_eq!(run(&rs, "3.3.3.3"), Outcome::Drop);
}

#[test]
fn accept_in_a_called_chain_moves_to_the_next_base_chain() {
    let mut bld = RulesetBuilder::new(4);
    let first = bld.base_chain(
        Family::Inet,
        TableId::Filter,
        Hook::Forward,
        "first",
        0,
        Policy::Accept,
    );
    let second = bld.base_chain(
        Family::Inet,
        TableId::Filter,
        Hook::Forward,
        "second",
        5,
        Policy::Drop,
    );
    let user = bld.user_chain(Family::Inet, TableId::Filter, "user");
    bld.add_rule(first, spec(1, MatchSpec::default(), TargetSpec::Jump(user)));
    bld.add_rule(user, spec(2, MatchSpec::default(), TargetSpec::Accept));
    bld.add_rule(second, spec(3, src("1.1.1.1"), TargetSpec::Accept));
    let rs = bld.build().unwrap();
    let mut c = cx(&rs);
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c),
        Outcome::Accept
    );
    assert_eq!(c.last_rule_line, 3);
    assert_eq!(
        run(&rs, "3.3.3.3"),
        Outcome::Drop,
        "the second chain's policy"
    );
}

#[test]
fn policies_count_per_chain() {
    let rs = two((vec![], Policy::Accept), (vec![], Policy::Accept));
    let counters = rs.new_counters();
    let mut c = EvalCtx::new(Arc::new(counters), Arc::new(LogRing::new(4)), 1);
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c);
    rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c);
    let view = rs.counters_view(&[&c.counters]);
    let pol: Vec<(&str, u64)> = view
        .iter()
        .map(|v| (v.name, v.policy_counts.packets))
        .collect();
    assert_eq!(pol, [("a", 2), ("b", 2)]);
}

#[test]
fn an_iptables_chain_runs_at_its_table_priority() {
    // filter FORWARD is priority 0: a base chain at -10 runs before it,
    // one at 10 after.
    let mut bld = RulesetBuilder::new(4);
    let fwd = bld.chain(TableId::Filter, "FORWARD");
    bld.add_rule(fwd, spec(1, src("1.1.1.1"), TargetSpec::Accept));
    let late = bld.base_chain(
        Family::Inet,
        TableId::Filter,
        Hook::Forward,
        "late",
        10,
        Policy::Accept,
    );
    bld.add_rule(late, spec(2, src("1.1.1.1"), TargetSpec::Drop));
    let early = bld.base_chain(
        Family::V4,
        TableId::Filter,
        Hook::Forward,
        "early",
        -10,
        Policy::Accept,
    );
    bld.add_rule(
        early,
        spec(
            3,
            src("1.1.1.1"),
            TargetSpec::Mark {
                value: 7,
                mask: u32::MAX,
            },
        ),
    );
    let rs = bld.build().unwrap();
    let mut p = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    assert_eq!(
        rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut cx(&rs)),
        Outcome::Drop
    );
    assert_eq!(p.mark, 7, "the early chain ran");
    // Two iptables FORWARD chains of one family are still an error.
    let mut bld = RulesetBuilder::new(4);
    bld.chain(TableId::Filter, "FORWARD");
    bld.family_chain(Family::V4, TableId::Filter, "FORWARD");
    assert!(bld.build().is_err());
}

#[test]
fn the_state_shortcut_keeps_later_chains() {
    // An ESTABLISHED accept in the first chain decides nothing while a
    // later chain may still drop.
    let est = MatchSpec {
        ctstate: Some(Neg::is(ct::ESTABLISHED)),
        ..MatchSpec::default()
    };
    let rs = two(
        (
            vec![(MatchSpec::default(), TargetSpec::Drop)],
            Policy::Accept,
        ),
        (vec![(est, TargetSpec::Accept)], Policy::Accept),
    );
    let mut c = cx(&rs);
    assert_eq!(
        rs.eval_state(
            TableId::Filter,
            Hook::Forward,
            true,
            ct::ESTABLISHED,
            60,
            &mut c
        ),
        None
    );
}
