//! Conntrack tests: state machines through the table with an explicit
//! clock, full-table behaviour, a HashMap model, and a multi-threaded
//! stress test checking the table's invariants.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;

use super::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use super::*;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn tcp_key() -> FlowKey {
    FlowKey::v4(0xc0a8_0102, 0x0808_0808, PROTO_TCP, 40000, 443)
}

fn table(flows: usize) -> Conntrack {
    Conntrack::with_config(CtConfig {
        seed: Some(7),
        ..CtConfig::new(flows)
    })
}

fn state(t: &Conntrack, k: &FlowKey, now: u64) -> Flow {
    t.get(t.lookup(k, now).expect("tracked")).expect("live")
}

#[test]
fn memory_per_flow() {
    // 64-byte hot line, 48 bytes of IPv6 addresses, 32 of TCP window.
    const { assert!(Conntrack::ENTRY_BYTES <= 144) };
    for flows in [1, 7, 1000, 65_536, 1 << 20] {
        let t = table(flows);
        if flows >= 1000 {
            assert!(
                t.bytes_per_flow() <= 160.0,
                "{flows}: {}",
                t.bytes_per_flow()
            );
        }
    }
}

#[test]
fn tcp_handshake_data_close() {
    let t = table(64);
    let k = tcp_key();
    let r = k.reverse();
    let tr = |key: &FlowKey, f: u8, now: u64| t.track(key, f, 60, now).unwrap().state;
    assert_eq!(tr(&k, SYN, 0), CtState::New);
    assert_eq!(state(&t, &k, 0).tcp, TcpState::SynSent);
    assert_eq!(state(&t, &k, 0).remaining_ms(0), 120_000);
    assert_eq!(tr(&k, SYN, S), CtState::New, "retransmitted SYN");
    assert_eq!(tr(&r, SYN | ACK, 2 * S), CtState::Established);
    let f = state(&t, &k, 2 * S);
    assert_eq!(
        (f.tcp, f.seen_reply, f.assured),
        (TcpState::SynRecv, true, false)
    );
    assert_eq!(f.remaining_ms(2 * S), 60_000);
    assert_eq!(tr(&k, ACK, 3 * S), CtState::Established);
    let f = state(&t, &k, 3 * S);
    assert_eq!((f.tcp, f.assured), (TcpState::Established, true));
    assert_eq!(f.remaining_ms(3 * S), 432_000_000);
    for i in 0..10 {
        assert_eq!(tr(&k, ACK | PSH, 4 * S + i), CtState::Established);
        assert_eq!(tr(&r, ACK, 4 * S + i), CtState::Established);
    }
    let f = state(&t, &k, 5 * S);
    assert_eq!(f.packets, [13, 11]);
    assert_eq!(f.bytes, [13 * 60, 11 * 60]);
    // Client closes first.
    assert_eq!(tr(&k, FIN | ACK, 10 * S), CtState::Established);
    assert_eq!(state(&t, &k, 10 * S).tcp, TcpState::FinWait);
    assert_eq!(tr(&r, ACK, 10 * S), CtState::Established);
    assert_eq!(state(&t, &k, 10 * S).tcp, TcpState::CloseWait);
    assert_eq!(tr(&r, FIN | ACK, 11 * S), CtState::Established);
    assert_eq!(state(&t, &k, 11 * S).tcp, TcpState::LastAck);
    assert_eq!(state(&t, &k, 11 * S).remaining_ms(11 * S), 30_000);
    assert_eq!(tr(&k, ACK, 12 * S), CtState::Established);
    let f = state(&t, &k, 12 * S);
    assert_eq!(f.tcp, TcpState::TimeWait);
    assert_eq!(f.remaining_ms(12 * S), 120_000);
    // TIME_WAIT lasts 120 s, then the lookup itself expires it.
    assert!(t.lookup(&k, 132 * S - MS).is_some());
    assert!(t.lookup(&r, 132 * S).is_none());
    assert_eq!(t.stats().expired, 1);
    assert!(t.is_empty());
    t.check_consistency().unwrap();
}

#[test]
fn tcp_reopen_from_time_wait() {
    let t = table(16);
    let k = tcp_key();
    let r = k.reverse();
    for (key, f) in [
        (&k, SYN),
        (&r, SYN | ACK),
        (&k, ACK),
        (&k, FIN | ACK),
        (&r, FIN | ACK),
        (&k, ACK),
    ] {
        t.track(key, f, 40, 0).unwrap();
    }
    let old = t.lookup(&k, 0).unwrap();
    assert_eq!(t.get(old).unwrap().tcp, TcpState::TimeWait);
    let tr = t.track(&k, SYN, 40, S).unwrap();
    assert_eq!(tr.state, CtState::New);
    assert!(!tr.conn.unwrap().same_conn(&old) || t.get(old).is_none());
    assert_eq!(state(&t, &k, S).tcp, TcpState::SynSent);
    assert_eq!(t.stats().killed, 1);
    assert_eq!(t.len(), 1);
    t.check_consistency().unwrap();
}

#[test]
fn tcp_rst() {
    let t = table(16);
    let k = tcp_key();
    let r = k.reverse();
    t.track(&k, SYN, 40, 0).unwrap();
    t.track(&r, SYN | ACK, 40, 0).unwrap();
    t.track(&k, ACK, 40, 0).unwrap();
    assert_eq!(t.track(&r, RST, 40, S).unwrap().state, CtState::Established);
    let f = state(&t, &k, S);
    assert_eq!(f.tcp, TcpState::Close);
    assert_eq!(f.remaining_ms(S), 10_000);
    assert!(t.lookup(&k, 11 * S).is_none());

    // A connection refused: the only answer is a reset; it goes at once.
    let k2 = FlowKey::v4(1, 2, PROTO_TCP, 1000, 23);
    assert_eq!(t.track(&k2, SYN, 40, 0).unwrap().state, CtState::New);
    assert_eq!(
        t.track(&k2.reverse(), RST | ACK, 40, 0).unwrap().state,
        CtState::Established
    );
    assert!(t.lookup(&k2, 0).is_none());
    assert_eq!(t.stats().killed, 1);
    t.check_consistency().unwrap();
}

#[test]
fn tcp_invalid() {
    let t = table(16);
    let k = tcp_key();
    let invalid = Tracked {
        conn: None,
        state: CtState::Invalid,
    };
    assert_eq!(t.track(&k, SYN | FIN, 40, 0).unwrap(), invalid);
    assert_eq!(t.track(&k, 0, 40, 0).unwrap(), invalid, "no flags");
    assert_eq!(t.track(&k, FIN, 40, 0).unwrap(), invalid, "FIN without ACK");
    assert_eq!(
        t.track(&k, SYN | ACK, 40, 0).unwrap(),
        invalid,
        "SYN/ACK opens nothing"
    );
    assert_eq!(t.track(&k, RST, 40, 0).unwrap(), invalid);
    assert!(t.is_empty());
    // On a tracked connection: invalid, and nothing changes.
    t.track(&k, SYN, 40, 0).unwrap();
    let tr = t.track(&k, SYN | RST, 40, S).unwrap();
    assert_eq!(tr.state, CtState::Invalid);
    assert!(tr.conn.is_some());
    let f = state(&t, &k, S);
    assert_eq!((f.tcp, f.packets[0]), (TcpState::SynSent, 1));
    // The client may not answer its own SYN with an ACK before the SYN/ACK.
    assert_eq!(
        t.track(&k.reverse(), FIN | ACK, 40, S).unwrap().state,
        CtState::Invalid
    );
}

#[test]
fn tcp_loose_pickup() {
    let t = table(16);
    let k = tcp_key();
    assert_eq!(t.track(&k, ACK, 40, 0).unwrap().state, CtState::New);
    let f = state(&t, &k, 0);
    assert_eq!(f.tcp, TcpState::Established);
    assert_eq!(f.remaining_ms(0), 300_000, "unanswered pickup: tcp_unack");
    assert_eq!(
        t.track(&k.reverse(), ACK, 40, S).unwrap().state,
        CtState::Established
    );
    assert_eq!(state(&t, &k, S).remaining_ms(S), 432_000_000);
    assert!(!state(&t, &k, S).assured);
    t.track(&k, ACK, 40, S).unwrap();
    assert!(state(&t, &k, S).assured, "a valid answer to a pickup");

    let strict = Conntrack::with_config(CtConfig {
        tcp_loose: false,
        ..CtConfig::new(16)
    });
    assert_eq!(
        strict.track(&k, ACK, 40, 0).unwrap().state,
        CtState::Invalid
    );
}

#[test]
fn tcp_simultaneous_open() {
    let t = table(16);
    let k = tcp_key();
    let r = k.reverse();
    t.track(&k, SYN, 40, 0).unwrap();
    assert_eq!(t.track(&r, SYN, 40, 0).unwrap().state, CtState::Established);
    assert_eq!(state(&t, &k, 0).tcp, TcpState::SynSent2);
    t.track(&k, SYN | ACK, 40, 0).unwrap();
    assert_eq!(state(&t, &k, 0).tcp, TcpState::SynRecv);
    t.track(&k, ACK, 40, 0).unwrap();
    assert_eq!(state(&t, &k, 0).tcp, TcpState::Established);
}

#[test]
fn udp_unreplied_then_assured() {
    let t = table(16);
    let k = FlowKey::v6(
        0x2001_0db8 << 96 | 1,
        0x2001_0db8 << 96 | 2,
        PROTO_UDP,
        5353,
        53,
    );
    let t0 = 1_700_000_000 * S; // pcap-like absolute time
    assert_eq!(t.track(&k, 0, 80, t0).unwrap().state, CtState::New);
    assert_eq!(t.track(&k, 0, 80, t0 + S).unwrap().state, CtState::New);
    let f = state(&t, &k, t0 + S);
    assert!(!f.seen_reply && !f.assured);
    assert_eq!(f.remaining_ms(t0 + S), 30_000);
    assert!(t.lookup(&k, t0 + 31 * S - MS).is_some());
    assert_eq!(
        t.track(&k.reverse(), 0, 120, t0 + 2 * S).unwrap().state,
        CtState::Established
    );
    assert_eq!(
        t.track(&k, 0, 80, t0 + 3 * S).unwrap().state,
        CtState::Established
    );
    let f = state(&t, &k, t0 + 3 * S);
    assert!(f.seen_reply && f.assured);
    // Refreshed to the stream timeout (a refresh by less than 1/64 of it
    // may be skipped).
    let left = f.remaining_ms(t0 + 3 * S);
    assert!((120_000 - 120_000 / 64..=120_000).contains(&left), "{left}");
    assert_eq!((f.packets, f.bytes), ([3, 1], [240, 120]));
    // Expiry exactly at the expiry time, found by the sweep this time.
    let end = t0 + 3 * S + left * MS;
    assert_eq!(t.expire(end - MS, 16), 0);
    assert_eq!(t.expire(end, 16), 1);
    assert!(t.is_empty());
    t.check_consistency().unwrap();
}

#[test]
fn unreplied_udp_expires_after_configured_timeout() {
    let timeouts = Timeouts::from_overrides([("udp", 5)]).unwrap();
    let t = Conntrack::new(16, timeouts);
    let k = FlowKey::v4(1, 2, PROTO_UDP, 1, 2);
    t.track(&k, 0, 10, 0).unwrap();
    assert!(t.lookup(&k, 5 * S - 1).is_some());
    assert!(t.lookup(&k, 5 * S).is_none());
}

#[test]
fn icmp_echo() {
    let t = table(16);
    let req = FlowKey::icmp_v4(0x0a00_0001, 0x0101_0101, 8, 0x1234);
    let rep = FlowKey::icmp_v4(0x0101_0101, 0x0a00_0001, 0, 0x1234);
    assert_eq!(
        t.track(&rep, 0, 84, 0).unwrap().state,
        CtState::Invalid,
        "reply opens nothing"
    );
    assert_eq!(t.track(&req, 0, 84, 0).unwrap().state, CtState::New);
    let c = t.lookup(&rep, 0).unwrap();
    assert_eq!(c.dir(), Dir::Reply);
    assert_eq!(t.track(&rep, 0, 84, 0).unwrap().state, CtState::Established);
    assert_eq!(state(&t, &req, 0).remaining_ms(0), 30_000);
    // The other side pinging back with the same id is another flow.
    let back = FlowKey::icmp_v4(0x0101_0101, 0x0a00_0001, 8, 0x1234);
    assert_eq!(t.track(&back, 0, 84, 0).unwrap().state, CtState::New);
    assert_eq!(t.len(), 2);
    let v6 = FlowKey::icmp_v6(1, 2, 128, 9);
    assert_eq!(t.track(&v6, 0, 64, 0).unwrap().state, CtState::New);
    assert_eq!(
        t.track(&v6.reverse(), 0, 64, 0).unwrap().state,
        CtState::Established
    );
    assert!(t.lookup(&v6, 30 * S).is_none());
}

#[test]
fn timeouts_per_tcp_state() {
    let timeouts = Timeouts::from_overrides([
        ("tcp_syn_sent", 3),
        ("tcp_syn_recv", 4),
        ("tcp_established", 50),
        ("tcp_close", 2),
    ])
    .unwrap();
    let t = Conntrack::new(16, timeouts);
    let k = tcp_key();
    let r = k.reverse();
    t.track(&k, SYN, 40, 0).unwrap();
    assert!(t.lookup(&k, 3 * S - MS).is_some());
    assert!(t.lookup(&k, 3 * S).is_none(), "SYN_SENT after 3 s");
    t.track(&k, SYN, 40, 10 * S).unwrap();
    t.track(&r, SYN | ACK, 40, 10 * S).unwrap();
    assert!(t.lookup(&k, 14 * S).is_none(), "SYN_RECV after 4 s");
    t.track(&k, SYN, 40, 20 * S).unwrap();
    t.track(&r, SYN | ACK, 40, 20 * S).unwrap();
    t.track(&k, ACK, 40, 20 * S).unwrap();
    assert!(t.lookup(&k, 69 * S).is_some());
    t.track(&k, RST, 40, 69 * S).unwrap();
    assert!(t.lookup(&k, 71 * S).is_none(), "CLOSE after 2 s");
    assert_eq!(t.stats().expired, 3);
}

#[test]
fn nat_reply_tuple() {
    let t = table(16);
    // 192.168.0.10:5000 -> 8.8.8.8:53 masqueraded as 2.2.2.2:61000.
    let orig = FlowKey::v4(0xc0a8_000a, 0x0808_0808, PROTO_UDP, 5000, 53);
    let reply = FlowKey::v4(0x0808_0808, 0x0202_0202, PROTO_UDP, 53, 61000);
    let c = t.insert(&orig, &reply, 0, 60, 0).unwrap();
    let back = t.lookup(&reply, 0).unwrap();
    assert!(back.same_conn(&c));
    assert_eq!(back.dir(), Dir::Reply);
    assert!(t.lookup(&orig.reverse(), 0).is_none());
    let f = t.get(back).unwrap();
    assert_eq!((f.original, f.reply), (orig, reply));
    // Another flow whose reply tuple would collide is refused.
    let other = FlowKey::v4(0xc0a8_000b, 0x0808_0808, PROTO_UDP, 6000, 53);
    assert_eq!(
        t.insert(&other, &reply, 0, 60, 0),
        Err(InsertError::Exists(back))
    );
    assert_eq!(
        t.insert(&orig, &orig.reverse(), 0, 60, 0),
        Err(InsertError::Exists(c))
    );
    t.check_consistency().unwrap();
}

#[test]
fn mark_and_stale_handles() {
    let t = table(4);
    let k = FlowKey::v4(1, 2, PROTO_UDP, 1, 2);
    let c = t.track(&k, 0, 1, 0).unwrap().conn.unwrap();
    assert_eq!(t.mark(c), Some(0));
    assert!(t.set_mark(c, 0xbeef));
    assert_eq!(t.mark(t.lookup(&k.reverse(), 0).unwrap()), Some(0xbeef));
    assert!(t.remove(c));
    assert!(!t.remove(c));
    // The entry is reused by another flow: the old handle sees nothing.
    let k2 = FlowKey::v4(3, 4, PROTO_UDP, 1, 2);
    let c2 = t.track(&k2, 0, 1, 0).unwrap().conn.unwrap();
    assert_eq!(c2.index(), c.index());
    assert!(!t.set_mark(c, 1));
    assert_eq!(t.mark(c), None);
    assert_eq!(t.update(c, 0, 1, 0), None);
    assert_eq!(t.get(c), None);
    assert_eq!(t.mark(c2), Some(0));
}

#[test]
fn full_table_evicts_unreplied_only() {
    let retired = Arc::new(AtomicU64::new(0));
    let r2 = retired.clone();
    let t = Conntrack::with_config(CtConfig {
        seed: Some(1),
        on_retire: Some(Box::new(move |_, why| {
            if why == Retired::Evicted {
                r2.fetch_add(1, Ordering::Relaxed);
            }
        })),
        ..CtConfig::new(8)
    });
    let udp = |i: u16| FlowKey::v4(1, 2, PROTO_UDP, 1000 + i, 53);
    for i in 0..8 {
        t.track(&udp(i), 0, 1, 0).unwrap();
    }
    // Assure half of them.
    for i in 0..4 {
        t.track(&udp(i).reverse(), 0, 1, 0).unwrap();
    }
    // Each new flow evicts an unassured one, then is answered (assured).
    for i in 8..12 {
        assert_eq!(t.track(&udp(i), 0, 1, S).unwrap().state, CtState::New);
        assert_eq!(
            t.track(&udp(i).reverse(), 0, 1, S).unwrap().state,
            CtState::Established
        );
    }
    assert_eq!(t.stats().evicted, 4);
    assert_eq!(retired.load(Ordering::Relaxed), 4);
    for i in (0..4).chain(8..12) {
        assert!(t.lookup(&udp(i), S).is_some(), "assured flow {i} kept");
    }
    // Only assured flows left: refuse.
    assert_eq!(t.track(&udp(99), 0, 1, S), Err(InsertError::Full));
    assert_eq!(t.stats().refused, 1);
    assert_eq!(t.len(), 8);
    t.check_consistency().unwrap();
    // An expired entry is reclaimed, not counted as an eviction.
    assert_eq!(
        t.track(&udp(99), 0, 1, 200 * S).unwrap().state,
        CtState::New
    );
    assert_eq!(t.stats().evicted, 4);
    assert!(t.stats().expired >= 1);
    t.check_consistency().unwrap();
}

#[test]
fn established_tcp_never_evicted() {
    let t = table(4);
    for i in 0..4u16 {
        let k = FlowKey::v4(1, 2, PROTO_TCP, 1000 + i, 80);
        t.track(&k, ACK, 1, 0).unwrap(); // picked up: ESTABLISHED, unassured
    }
    let k = FlowKey::v4(1, 2, PROTO_TCP, 9, 80);
    assert_eq!(t.track(&k, SYN, 1, 0), Err(InsertError::Full));
}

#[test]
fn sweep_in_budgets() {
    let t = table(1000);
    for i in 0..1000u16 {
        let k = FlowKey::v4(1, 2, PROTO_UDP, i, 53);
        t.track(&k, 0, 1, u64::from(i % 2) * 100 * S).unwrap();
    }
    let now = 31 * S + 100 * S - 40 * S; // odd ones still alive at 91 s
    let mut n = 0;
    for _ in 0..10 {
        n += t.expire(now, 100);
    }
    assert_eq!(n, 500);
    assert_eq!(t.len(), 500);
    t.check_consistency().unwrap();
}

/// Operations for the model test.
#[derive(Clone, Debug)]
enum Op {
    Packet { flow: usize, reply: bool },
    Advance(u64),
    Expire(usize),
    Remove(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..24usize, any::<bool>()).prop_map(|(flow, reply)| Op::Packet { flow, reply }),
        2 => (0..40_000u64).prop_map(Op::Advance),
        1 => (1..64usize).prop_map(Op::Expire),
        1 => (0..24usize).prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// UDP flows against a HashMap keyed by original tuple.
    #[test]
    fn model(ops in prop::collection::vec(op(), 1..200)) {
        let t = table(64);
        let pool: Vec<FlowKey> =
            (0..24u16).map(|i| FlowKey::v4(1 + u32::from(i % 3), 9, PROTO_UDP, 100 + i, 53)).collect();
        // original tuple -> (expiry ms, replied)
        let mut model: HashMap<FlowKey, (u64, bool)> = HashMap::new();
        let mut now_ms = 1_000u64;
        let live = |m: &HashMap<FlowKey, (u64, bool)>, k: &FlowKey, now: u64| {
            m.get(k).filter(|e| e.0 > now).map(|_| (*k, false))
                .or_else(|| m.get(&k.reverse()).filter(|e| e.0 > now).map(|_| (k.reverse(), true)))
        };
        for op in ops {
            match op {
                Op::Packet { flow, reply } => {
                    let k = if reply { pool[flow].reverse() } else { pool[flow] };
                    let tr = t.track(&k, 0, 10, now_ms * MS).unwrap();
                    match live(&model, &k, now_ms) {
                        Some((orig, is_reply)) => {
                            let e = model.get_mut(&orig).unwrap();
                            let was = e.1;
                            e.1 |= is_reply;
                            let timeout = if e.1 { 120_000 } else { 30_000 };
                            // The table skips a refresh that moves the
                            // expiry by at most 1/64 of the timeout.
                            if e.1 != was || now_ms + timeout - e.0 > timeout >> 6 {
                                e.0 = now_ms + timeout;
                            }
                            let want = if e.1 { CtState::Established } else { CtState::New };
                            prop_assert_eq!(tr.state, want);
                        }
                        None => {
                            model.retain(|o, _| *o != k && *o != k.reverse());
                            model.insert(k, (now_ms + 30_000, false));
                            prop_assert_eq!(tr.state, CtState::New);
                        }
                    }
                }
                Op::Advance(ms) => now_ms += ms,
                Op::Expire(budget) => {
                    t.expire(now_ms * MS, budget);
                }
                Op::Remove(flow) => {
                    let k = pool[flow];
                    let found = t.lookup(&k, now_ms * MS);
                    let m = live(&model, &k, now_ms);
                    prop_assert_eq!(found.is_some(), m.is_some());
                    if let (Some(c), Some((orig, _))) = (found, m) {
                        prop_assert!(t.remove(c));
                        model.remove(&orig);
                    }
                }
            }
            for k in &pool {
                for key in [*k, k.reverse()] {
                    let found = t.lookup(&key, now_ms * MS).and_then(|c| t.get(c).map(|f| (c, f)));
                    let want = live(&model, &key, now_ms);
                    prop_assert_eq!(found.is_some(), want.is_some(), "{:?}", key);
                    if let (Some((c, f)), Some((orig, is_reply))) = (found, want) {
                        prop_assert_eq!(f.original, orig);
                        prop_assert_eq!(c.dir() == Dir::Reply, is_reply);
                    }
                }
            }
        }
        t.expire(now_ms * MS, 64);
        prop_assert_eq!(t.len(), model.values().filter(|e| e.0 > now_ms).count());
        t.check_consistency().map_err(TestCaseError::fail)?;
    }
}

/// Several threads insert, look up from both directions, update, remove
/// and expire over a shared pool of flows larger than the table.
#[test]
fn stress_concurrent() {
    const THREADS: usize = 4;
    const POOL: usize = 3000;
    const OPS: usize = 200_000;
    let t = Arc::new(table(1024));
    let clock = Arc::new(AtomicU64::new(S));
    let pool: Arc<Vec<FlowKey>> = Arc::new(
        (0..POOL)
            .map(|i| {
                let p = if i % 3 == 0 { PROTO_TCP } else { PROTO_UDP };
                FlowKey::v4(
                    0x0a00_0000 + (i as u32 % 7),
                    0x0808_0808,
                    p,
                    1024 + i as u16,
                    443,
                )
            })
            .collect(),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let (t, clock, pool) = (t.clone(), clock.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ th as u64;
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for _ in 0..OPS {
                    let r = next();
                    let k = pool[(r % POOL as u64) as usize];
                    let now = clock.load(Ordering::Relaxed);
                    match (r >> 32) % 10 {
                        0..=3 => {
                            let f = if k.proto == PROTO_TCP { SYN } else { 0 };
                            match t.track(&k, f, 64, now) {
                                Ok(tr) => assert_ne!(tr.state, CtState::Invalid),
                                Err(InsertError::Full | InsertError::Clash) => {}
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                        4..=6 => {
                            let key = if r & 1 == 0 { k } else { k.reverse() };
                            if let Some(c) = t.lookup(&key, now) {
                                let f = if key.proto == PROTO_TCP {
                                    if c.dir() == Dir::Reply {
                                        SYN | ACK
                                    } else {
                                        ACK
                                    }
                                } else {
                                    0
                                };
                                t.update(c, f, 64, now);
                                if let Some(flow) = t.get(c) {
                                    let want = if c.dir() == Dir::Original {
                                        flow.original
                                    } else {
                                        flow.reply
                                    };
                                    assert_eq!(want, key, "found entry must match its key");
                                    assert_eq!(flow.reply, flow.original.reverse());
                                }
                            }
                        }
                        7 => {
                            if let Some(c) = t.lookup(&k, now) {
                                t.remove(c);
                            }
                        }
                        8 => {
                            t.expire(now, 64);
                        }
                        _ => {
                            clock.fetch_add(S / 20, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    t.check_consistency().unwrap();
    let s = t.stats();
    assert!(
        s.inserted > 1000 && s.live as usize <= t.capacity(),
        "{s:?}"
    );
    assert!(s.evicted > 0 && s.expired > 0 && s.killed > 0, "{s:?}");
    // Every live flow is found from both directions, exactly once.
    let now = clock.load(Ordering::Relaxed);
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    t.for_each(|c, f| {
        n += 1;
        assert!(seen.insert(f.original), "duplicate {:?}", f.original);
        assert!(seen.insert(f.reply), "duplicate {:?}", f.reply);
        if f.remaining_ms(now) > 0 {
            assert!(t.lookup(&f.original, now).unwrap().same_conn(&c));
            assert!(t.lookup(&f.reply, now).unwrap().same_conn(&c));
        }
    });
    assert_eq!(n as u64, s.live);
    eprintln!("stress: {s:?}");
}

#[test]
fn translation_is_the_other_tuple_reversed() {
    let t = table(64);
    // Inside 192.168.1.2:40000 masqueraded to 203.0.113.2:1024.
    let orig = tcp_key();
    let reply = FlowKey::v4(0x0808_0808, 0xcb00_7102, PROTO_TCP, 443, 1024);
    let c = t.insert(&orig, &reply, SYN, 60, S).unwrap();
    assert_eq!(
        t.translation(c),
        Some(reply.reverse()),
        "original direction"
    );
    let r = t.lookup(&reply, S).expect("reply direction");
    assert_eq!(r.dir(), Dir::Reply);
    assert_eq!(t.translation(r), Some(orig.reverse()), "reply direction");
    // Without NAT there is no translation to apply.
    let plain = FlowKey::v4(1, 2, PROTO_UDP, 5, 6);
    let p = t.insert(&plain, &plain.reverse(), 0, 60, S).unwrap();
    assert_eq!(t.translation(p), None);
    // Gone connections translate nothing.
    assert!(t.remove(c));
    assert_eq!(t.translation(c), None);
}

#[test]
fn can_open_follows_the_state_machine() {
    let t = table(8);
    assert!(t.can_open(&tcp_key(), SYN));
    assert!(!t.can_open(&tcp_key(), SYN | FIN), "SYN+FIN is invalid");
    assert!(t.can_open(&tcp_key(), ACK), "loose pickup mid-stream");
    assert!(!t.can_open(&tcp_key(), RST));
    assert!(t.can_open(&FlowKey::icmp_v4(1, 2, 8, 9), 0), "echo request");
    assert!(!t.can_open(&FlowKey::icmp_v4(1, 2, 0, 9), 0), "echo reply");
}

#[test]
fn hinted_find_agrees_with_lookup_and_translation() {
    let t = table(4096);
    // Every other connection is NAT'd: its reply comes to 203.0.113.1
    // (2001:db8::1 for IPv6, every fourth pair). Every eighth is an ICMP
    // echo, whose reverse is not a swap of the ports.
    let keys: Vec<FlowKey> = (0..2000u32)
        .map(|i| match i % 8 {
            0 | 1 => FlowKey::icmp_v4(0x0a00_0000 | i, 0x0808_0808, 8, 1000 + i as u16),
            4 | 5 => FlowKey::v4(0x0a00_0000 | i, 0x0808_0808, PROTO_UDP, 1000 + i as u16, 53),
            _ => FlowKey::v6(
                0xfd00 << 112 | u128::from(i),
                0x2001_4860 << 96 | 0x8888,
                PROTO_UDP,
                1000 + i as u16,
                53,
            ),
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        let mut reply = k.reverse();
        if i % 2 == 1 {
            reply.dst = if k.is_v4() {
                crate::addr::v4_key(0xcb00_7101)
            } else {
                0x2001_0db8 << 96 | 1
            };
        }
        t.insert(k, &reply, 0, 60, S).unwrap();
    }
    let found = |k: &FlowKey, hint: u32| {
        let mut target = *k;
        t.find_hinted(k, t.hash(k), hint, S, &mut target)
            .map(|f| (f.id, target))
    };
    let plain = |k: &FlowKey| {
        t.lookup(k, S)
            .map(|id| (id, t.translation(id).unwrap_or(*k)))
    };
    for k in keys
        .iter()
        .chain(keys.iter().map(|k| k.reverse()).collect::<Vec<_>>().iter())
    {
        let hint = t.prefetch_entries(t.hash(k), !k.is_v4());
        assert_eq!(found(k, hint), plain(k));
        // A wrong or stale hint still finds the right connection.
        let other = t.prefetch_entries(t.hash(&keys[0]), false);
        assert_eq!(found(k, other), plain(k));
        assert_eq!(found(k, 0), plain(k));
    }
    let translated = found(&keys[1], 0).unwrap().1;
    assert_eq!(translated.src, crate::addr::v4_key(0xcb00_7101));
    let translated = found(&keys[3], 0).unwrap().1;
    assert_eq!(translated.src, 0x2001_0db8 << 96 | 1);
    assert_eq!(
        t.get(found(&keys[3], 0).unwrap().0).unwrap().original,
        keys[3]
    );
    t.check_consistency().unwrap();
    let absent = FlowKey::v4(1, 2, PROTO_UDP, 3, 4);
    let (h, mut target) = (t.hash(&absent), absent);
    let hint = t.prefetch_entries(h, false);
    assert!(t.find_hinted(&absent, h, hint, S, &mut target).is_none());
    assert_eq!(target, absent, "a miss leaves the target as it was");
}

/// The XDP offload's word (`table/offload.rs`): one winner per direction
/// and epoch, a flush voids every request, a reused entry starts empty,
/// and the program's counts move the connection's counters and expiry.
#[test]
fn offload_words_requests_flush_and_fold() {
    let t = Conntrack::with_config(CtConfig {
        seed: Some(7),
        offload: true,
        ..CtConfig::new(64)
    });
    assert!(t.offload_enabled());
    assert!(!table(64).offload_enabled());
    let k = FlowKey::v4(0x0a01_0002, 0x0a02_0002, PROTO_UDP, 6000, 7000);
    let r = k.reverse();
    t.track(&k, 0, 100, 0).unwrap();
    t.track(&r, 0, 100, S).unwrap();
    let orig = t.lookup(&k, S).unwrap();
    let reply = t.lookup(&r, S).unwrap();
    assert!(!t.offload_requested(orig) && !t.offload_any(orig));
    assert!(t.offload_request(orig), "the first asker wins");
    assert!(!t.offload_request(orig), "only once");
    assert!(t.offload_requested(orig) && !t.offload_requested(reply));
    assert!(t.offload_request(reply));
    assert!(!state(&t, &k, S).offloaded, "asked, not installed");
    assert!(t.offload_mark(orig, Dir::Original, true, false));
    assert!(state(&t, &k, S).offloaded, "conntrack -L's [OFFLOAD]");
    // Gone from the map, asked again: forget clears the request.
    assert!(t.offload_mark(orig, Dir::Original, false, true));
    assert!(!t.offload_requested(orig) && t.offload_requested(reply));
    assert!(!state(&t, &k, S).offloaded);
    // A flush voids everything at once.
    t.offload_mark(reply, Dir::Reply, true, false);
    t.offload_flush();
    assert!(!t.offload_any(orig) && !state(&t, &k, S).offloaded);
    assert!(
        !t.offload_mark(reply, Dir::Reply, false, false),
        "old epoch"
    );
    assert!(t.offload_request(reply), "asked anew after the flush");
    // Counts of offloaded packets: counters, and the expiry from the last
    // one seen (UDP answered: 120 s), never earlier.
    let before = state(&t, &k, S);
    assert!(t.offload_fold(orig, Dir::Original, 10, 1000, 50 * S));
    let f = state(&t, &k, 50 * S);
    assert_eq!(f.packets[0], before.packets[0] + 10);
    assert_eq!(f.bytes[0], before.bytes[0] + 1000);
    assert_eq!(f.remaining_ms(50 * S), 120_000);
    assert!(t.offload_fold(orig, Dir::Original, 1, 10, 20 * S));
    assert_eq!(state(&t, &k, 50 * S).remaining_ms(50 * S), 120_000);
    // A removed connection: nothing to fold, and its entry's next life
    // starts with an empty word.
    assert!(t.remove(orig));
    assert!(!t.offload_fold(orig, Dir::Original, 1, 10, 60 * S));
    assert!(!t.offload_request(orig));
    t.track(&k, 0, 100, 61 * S).unwrap();
    let again = t.lookup(&k, 61 * S).unwrap();
    assert!(!t.offload_requested(again));
}

/// An offloaded TCP connection's windows are no longer checked (the
/// workers miss the segments the program forwards), as Linux's flowtable
/// makes it liberal.
#[test]
fn offloaded_tcp_connections_are_liberal() {
    let t = table(64);
    let k = tcp_key();
    let r = k.reverse();
    let seg = |seq: u32, ack: u32| TcpSeg {
        seq,
        ack,
        win: 1000,
        len: 100,
        ..TcpSeg::default()
    };
    let syn = TcpSeg {
        len: 0,
        ..seg(1000, 0)
    };
    let c = t.insert_seg(&k, &r, SYN, 60, 0, Some(&syn)).unwrap();
    let back = t.lookup(&r, 0).unwrap();
    let synack = TcpSeg {
        len: 0,
        ..seg(5000, 1001)
    };
    t.update_seg(back, SYN | ACK, 60, 0, Some(&synack)).unwrap();
    t.update_seg(c, ACK, 60, 0, Some(&seg(1001, 5001))).unwrap();
    // Far beyond the window: invalid while tracked.
    let far = seg(1001 + 50_000_000, 5001);
    assert_eq!(
        t.update_seg(c, ACK, 60, S, Some(&far)),
        Some(CtState::Invalid)
    );
    t.tcp_liberal_conn(c);
    assert_eq!(
        t.update_seg(c, ACK, 60, S, Some(&far)),
        Some(CtState::Established)
    );
    assert_eq!(t.tcp_state(c), Some(TcpState::Established));
}
