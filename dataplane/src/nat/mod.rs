//! Network address translation: what iptables' `nat` table (SNAT,
//! MASQUERADE, DNAT) does, on top of connection tracking. Not yet wired
//! into the pipeline.
//!
//! In the packet walk, PREROUTING applies the destination part of a
//! connection's translation (before routing, so the route is the translated
//! destination's) and POSTROUTING the source part (after the filter). This
//! module reads the packet's connection (both tuples) and, for a first
//! packet, the port allocator; it changes the packet's addresses, ports,
//! ICMP identifiers and checksums (for an ICMP error also the packet it
//! quotes) and the allocator's table. Its one drop reason, no free port
//! ([`NatPorts::acquire`] answers `None`), is the caller's to count.
//!
//! - [`rewrite`]: one part of a target written into a packet or an ICMP
//!   error, checksums updated incrementally.
//! - [`ports`]: the shared lock-free allocator of external ports and ICMP
//!   identifiers, endpoint-independent (RFC 4787 REQ-1).
//!
//! # Design
//!
//! **A translation is a reply tuple.** As in Linux, conntrack stores for
//! each connection the original tuple and the tuple its answers will carry;
//! a connection is translated exactly when `reply != original.reverse()`.
//! Nothing else is stored: the table indexes both tuples, so a packet of
//! either direction finds its connection, and the target for a packet of
//! direction `d` is the other tuple reversed ([`translation`]): an original
//! packet must look like what the reply answers (`reply.reverse()`), a
//! reply like what the original sender expects (`original.reverse()`).
//!
//! **Two parts.** PREROUTING writes the target's destination part
//! (destination address and TCP/UDP port, [`rewrite::rewrite_dst`]) and
//! POSTROUTING its source part ([`rewrite::rewrite_src`]), each only when it
//! differs from the packet's tuple. An ICMP query identifier is one field
//! for both directions, so either part writes `target.sport` there (Linux's
//! `icmp_manip_pkt`). An ICMP error is looked up by the tuple it quotes
//! ([`rewrite::quoted_key`], reversed), travels in the direction opposite to
//! the quoted packet's, and gets the same parts, applied to the outer header
//! and, mirrored, to the quote ([`rewrite::rewrite_icmp_error`]).
//!
//! **First packet.** DNAT rules (PREROUTING) and SNAT/MASQUERADE rules
//! (POSTROUTING) decide the reply tuple before conntrack's insert (confirm):
//! DNAT replaces the reply's source, SNAT its destination, with the port
//! from [`NatPorts::acquire`] for the external address's pool. If the insert
//! reports the reply tuple taken by another connection, the caller acquires
//! again with `attempt + 1` (still holding the clashing port), then releases
//! the clashing one; a bounded number of attempts, then drop. On any other
//! insert failure it releases the port. If the mapping turns out to be the
//! identity (the gateway's own address and a preserved port), the reply
//! tuple is `original.reverse()` and the retire hook will not release it:
//! the caller releases at once.
//!
//! **Endpoint-independent mapping.** All connections of one inside
//! (address, port, protocol) share one external port (see [`ports`]), so
//! peers see one stable endpoint (RFC 4787 REQ-1), as games, VoIP and STUN
//! need. Filtering stays address-and-port dependent, as Linux's: only
//! replies to a connection come back in.
//!
//! **Hairpin.** An inside client C reaching an inside server S through the
//! public address P (DNAT P:80 -> S:80) would get S's answer straight from
//! S, with a source C never talked to. So when a DNAT'd packet leaves by the
//! interface it came in on, it is also source-translated to P, the public
//! address the client used, with a port from P's pool: the connection is
//! (C:c -> P:80) / (S:80 -> P:x), and both directions pass the gateway
//! (RFC 4787 REQ-9).
//!
//! **Release.** Conntrack calls its retire hook for every connection that
//! leaves the table (expiry, eviction, removal), on whichever thread
//! removed it; [`NatPorts::retire_hook`] gives that to
//! [`NatPorts::release_flow`], which finds the allocated port on the reply
//! tuple (see there). Nothing is released twice: conntrack retires each
//! connection exactly once.

pub mod mangle;
pub mod ports;
pub mod rewrite;
pub mod seqadj;

use std::sync::Arc;

use crate::conntrack::{Dir, FlowKey, RetireHook};
pub use ports::NatPorts;

/// The translation target for a packet of direction `dir` on the
/// connection (`original`, `reply`): the other tuple reversed, or `None`
/// if the connection is not translated.
pub fn translation(original: &FlowKey, reply: &FlowKey, dir: Dir) -> Option<FlowKey> {
    if *reply == original.reverse() {
        return None;
    }
    Some(match dir {
        Dir::Original => reply.reverse(),
        Dir::Reply => original.reverse(),
    })
}

/// The external port (TCP/UDP) or ICMP identifier a reply tuple is
/// addressed to: the reply of a masqueraded echo is (D -> E, identifier =
/// the allocated one, type echo reply), so for ICMP it is `sport`.
fn reply_port(reply: &FlowKey) -> u16 {
    if reply.is_icmp() {
        reply.sport
    } else {
        reply.dport
    }
}

impl NatPorts {
    /// Gives back the port a retired connection held, if it held one: a
    /// connection whose source side was translated (the reply goes to
    /// another address, or to another port or identifier, than the
    /// original came from) to a registered pool address. Masquerade, SNAT
    /// and hairpin connections release `reply.dst`'s port; untranslated and DNAT-only connections (the reply
    /// goes back to the original source) and SNAT to an address without a
    /// pool hold nothing. The port is the reply's destination port, or for
    /// ICMP its identifier (`sport`).
    pub fn release_flow(&self, original: &FlowKey, reply: &FlowKey) {
        let port = reply_port(reply);
        if reply.dst == original.src && port == original.sport {
            return;
        }
        if self.pool(reply.dst).is_some() {
            self.release(reply.dst, reply.proto, port);
        }
    }

    /// Conntrack's retire hook releasing each retired connection's port.
    pub fn retire_hook(ports: Arc<NatPorts>) -> RetireHook {
        Box::new(move |flow, _| ports.release_flow(&flow.original, &flow.reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::v4_key;
    use crate::conntrack::{Conntrack, CtConfig, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

    const H: u32 = 0xc0a8_010a;
    const S: u32 = 0xc0a8_0114;
    const E: u32 = 0xcb00_7105;
    const D: u32 = 0x5db8_d822;

    fn pool() -> (NatPorts, ports::PoolId) {
        let n = NatPorts::with_seed(2, 3);
        let id = n.register(v4_key(E)).unwrap();
        (n, id)
    }

    #[test]
    fn targets_per_direction() {
        let original = FlowKey::v4(H, D, PROTO_TCP, 40000, 80);
        let reply = FlowKey::v4(D, E, PROTO_TCP, 80, 2000);
        assert_eq!(
            translation(&original, &original.reverse(), Dir::Original),
            None
        );
        let out = translation(&original, &reply, Dir::Original).unwrap();
        assert_eq!(out, FlowKey::v4(E, D, PROTO_TCP, 2000, 80));
        let back = translation(&original, &reply, Dir::Reply).unwrap();
        assert_eq!(back, FlowKey::v4(D, H, PROTO_TCP, 80, 40000));
        // ICMP: the identifier goes with either part.
        let ping = FlowKey::icmp_v4(H, D, 8, 1000);
        let pong = FlowKey::icmp_v4(D, E, 0, 2000);
        assert_eq!(
            translation(&ping, &pong, Dir::Original),
            Some(FlowKey::icmp_v4(E, D, 8, 2000))
        );
        assert_eq!(
            translation(&ping, &pong, Dir::Reply),
            Some(FlowKey::icmp_v4(D, H, 0, 1000))
        );
    }

    #[test]
    fn release_flow_per_kind_of_translation() {
        let (n, id) = pool();
        // Masquerade TCP: the port is the reply's destination port.
        let p = n.acquire(id, PROTO_TCP, v4_key(H), 40000, None, 0).unwrap();
        let original = FlowKey::v4(H, D, PROTO_TCP, 40000, 80);
        n.release_flow(&original, &FlowKey::v4(D, E, PROTO_TCP, 80, p));
        assert_eq!(n.in_use(id, PROTO_TCP), 0);
        // Masqueraded echo: the identifier is the reply's `sport`.
        let i = n.acquire(id, PROTO_ICMP, v4_key(H), 1000, None, 0).unwrap();
        let ping = FlowKey::icmp_v4(H, D, 8, 1000);
        n.release_flow(&ping, &FlowKey::icmp_v4(D, E, 0, i));
        assert_eq!(n.in_use(id, PROTO_ICMP), 0);
        // Hairpin: H reaches S through E:80; the source is E:x from E's pool.
        let x = n.acquire(id, PROTO_TCP, v4_key(H), 5555, None, 0).unwrap();
        let original = FlowKey::v4(H, E, PROTO_TCP, 5555, 80);
        n.release_flow(&original, &FlowKey::v4(S, E, PROTO_TCP, 80, x));
        assert_eq!(n.in_use(id, PROTO_TCP), 0);
        // Untranslated, DNAT only, SNAT to an address without a pool: no
        // port was taken, none is released, nothing is an anomaly.
        let original = FlowKey::v4(D, E, PROTO_UDP, 5000, 53);
        n.release_flow(&original, &original.reverse());
        n.release_flow(&original, &FlowKey::v4(S, D, PROTO_UDP, 53, 5000));
        let original = FlowKey::v4(H, D, PROTO_UDP, 5000, 53);
        n.release_flow(&original, &FlowKey::v4(D, 0x0101_0101, PROTO_UDP, 53, 5000));
        let st = n.stats();
        assert_eq!((st.in_use, st.anomalies), (0, 0));
    }

    #[test]
    fn retire_hook_releases_when_conntrack_retires() {
        let n = Arc::new(NatPorts::with_seed(1, 9));
        let id = n.register(v4_key(E)).unwrap();
        let ct = Conntrack::with_config(CtConfig {
            seed: Some(1),
            on_retire: Some(NatPorts::retire_hook(n.clone())),
            ..CtConfig::new(16)
        });
        let original = FlowKey::v4(H, D, PROTO_UDP, 5353, 53);
        let mut conns = Vec::new();
        // Two connections of one endpoint share one port (EIM).
        for dst in [D, D + 1] {
            let original = FlowKey {
                dst: v4_key(dst),
                ..original
            };
            let p = n.acquire(id, PROTO_UDP, v4_key(H), 5353, None, 0).unwrap();
            assert_eq!(p, 5353);
            let reply = FlowKey::v4(dst, E, PROTO_UDP, 53, p);
            conns.push(ct.insert(&original, &reply, 0, 60, 0).unwrap());
        }
        assert_eq!(n.mapping(id, PROTO_UDP, 5353).unwrap().refs, 2);
        assert!(ct.remove(conns[0]));
        assert_eq!(n.mapping(id, PROTO_UDP, 5353).unwrap().refs, 1);
        // Expiry (UDP's timeout is far below an hour) releases the other.
        ct.expire(3_600_000_000_000, 16);
        assert_eq!(n.mapping(id, PROTO_UDP, 5353), None);
        assert_eq!(n.stats().anomalies, 0);
    }
}
