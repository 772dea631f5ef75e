//! Per-family rulesets: an IPv4 and an IPv6 ruleset side by side, as
//! iptables and ip6tables keep them.

use super::*;

fn pair(v4_policy: Policy, v6_policy: Policy) -> Ruleset {
    let mut b = RulesetBuilder::new(4);
    let f4 = b.family_chain(Family::V4, TableId::Filter, "FORWARD");
    b.set_policy(f4, v4_policy).unwrap();
    let f6 = b.family_chain(Family::V6, TableId::Filter, "FORWARD");
    b.set_policy(f6, v6_policy).unwrap();
    b.build().unwrap()
}

fn eval(rs: &Ruleset, p: PacketView) -> (Outcome, EvalCtx) {
    let mut c = cx(rs);
    let mut p = p;
    let o = rs.eval(TableId::Filter, Hook::Forward, &mut p, &mut c);
    (o, c)
}

#[test]
fn each_family_has_its_own_policy_and_counter() {
    let rs = pair(Policy::Accept, Policy::Drop);
    let v4 = tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN);
    let v6 = udp6("2001:db8::1", "2001:db8::2", 1, 2);
    let (o, c) = eval(&rs, v4);
    assert_eq!(o, Outcome::Accept);
    assert_eq!(
        c.counters
            .packets(rs.policy_counter_index(TableId::Filter, Hook::Forward, true)),
        1
    );
    let (o, c) = eval(&rs, v6);
    assert_eq!(o, Outcome::Drop);
    assert_eq!(
        c.counters
            .packets(rs.policy_counter_index(TableId::Filter, Hook::Forward, false)),
        1
    );
    let rs = pair(Policy::Drop, Policy::Accept);
    assert_eq!(eval(&rs, v4).0, Outcome::Drop);
    assert_eq!(eval(&rs, v6).0, Outcome::Accept);
    // The state shortcut answers per family too.
    for (v4, want) in [(true, Outcome::Drop), (false, Outcome::Accept)] {
        let mut c = cx(&rs);
        let got = rs.eval_state(TableId::Filter, Hook::Forward, v4, ct::NEW, 60, &mut c);
        assert_eq!(got, Some(want));
    }
}

#[test]
fn a_family_rule_never_sees_the_other_family() {
    // An IPv4 ruleset's match-everything DROP leaves IPv6 alone.
    let mut b = RulesetBuilder::new(4);
    let f4 = b.family_chain(Family::V4, TableId::Filter, "FORWARD");
    b.add_rule(f4, spec(1, MatchSpec::default(), TargetSpec::Drop));
    let rs = b.build().unwrap();
    assert_eq!(
        eval(&rs, tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN)).0,
        Outcome::Drop
    );
    assert_eq!(
        eval(&rs, udp6("2001:db8::1", "2001:db8::2", 1, 2)).0,
        Outcome::Accept
    );
}

#[test]
fn user_chains_of_one_name_stay_apart() {
    let mut b = RulesetBuilder::new(4);
    for (fam, target) in [
        (Family::V4, TargetSpec::Accept),
        (Family::V6, TargetSpec::Drop),
    ] {
        let fwd = b.family_chain(fam, TableId::Filter, "FORWARD");
        let navy = b.family_chain(fam, TableId::Filter, "NAVY");
        b.add_rule(fwd, spec(1, MatchSpec::default(), TargetSpec::Jump(navy)));
        b.add_rule(navy, spec(2, MatchSpec::default(), target));
    }
    let rs = b.build().unwrap();
    assert_eq!(
        eval(&rs, tcp4("1.1.1.1", "2.2.2.2", 1, 2, SYN)).0,
        Outcome::Accept
    );
    assert_eq!(
        eval(&rs, udp6("2001:db8::1", "2001:db8::2", 1, 2)).0,
        Outcome::Drop
    );
    let view = rs.counters_view(&[]);
    assert_eq!(view.iter().filter(|c| c.name == "NAVY").count(), 2);
}

#[test]
fn the_other_familys_things_are_errors() {
    let mut b = RulesetBuilder::new(4);
    let f6 = b.family_chain(Family::V6, TableId::Filter, "FORWARD");
    let m = MatchSpec {
        src: Some(Neg::is(Prefix::v4(0x0a00_0000, 8))),
        ..MatchSpec::default()
    };
    b.add_rule(f6, spec(7, m, TargetSpec::Accept));
    let e = b.build().unwrap_err();
    assert_eq!(e[0].line, 7);
    assert!(e[0].message.contains("IPv4 only"), "{e:?}");
    // A jump across families is refused.
    let mut b = RulesetBuilder::new(4);
    let f4 = b.family_chain(Family::V4, TableId::Filter, "FORWARD");
    let x6 = b.family_chain(Family::V6, TableId::Filter, "X");
    b.add_rule(f4, spec(3, MatchSpec::default(), TargetSpec::Jump(x6)));
    assert!(b.build().is_err());
    // So is a built-in chain both inet and one family's.
    let mut b = RulesetBuilder::new(4);
    b.chain(TableId::Filter, "FORWARD");
    b.family_chain(Family::V4, TableId::Filter, "FORWARD");
    assert!(b.build().is_err());
}
