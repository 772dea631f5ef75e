//! Later fragments follow their first fragment (shallow virtual
//! reassembly).
//!
//! Linux reassembles a fragmented datagram before conntrack, so NAT and the
//! filter decide once for the whole datagram. xgate forwards fragments as
//! they come, and a later fragment carries no transport header: it cannot
//! be matched to its connection by itself. So each worker remembers, per
//! datagram (source, destination, protocol, identification), what
//! happened to its first fragment: its connection's tuple after the
//! destination part of the translation (written at PREROUTING), then
//! whether it was forwarded and with which full translation (written at
//! FORWARD). A later fragment of the same datagram takes the same
//! translation and the same verdict, without a filter walk of its own, as
//! the reassembled datagram would have had on Linux.
//!
//! Limits, counted: a later fragment that arrives before its first one (or
//! after its record was overwritten or expired) is not held for reordering;
//! with NAT configured it is dropped (`nat_fragment`), as before this
//! table; without NAT it goes through the filter on its own as an
//! UNTRACKED packet. A later fragment whose first fragment was not
//! forwarded is dropped (`fragment_unforwarded`). The table is direct
//! mapped (a newer datagram takes the slot of an older one) and records
//! live 2 seconds: enough for a datagram's fragments, which travel
//! together.
//!
//! Reads: the IP header (and an IPv6 Fragment header). Changes: only this
//! worker's table. Allocates only when the pipeline is built.

use super::{L3, L3_OFF, Meta};
use crate::addr::v4_key;
use crate::conntrack::FlowKey;
use crate::packet::{ipv4, ipv6};

/// Slots of a worker's table.
const SLOTS: usize = 1024;
/// How long a datagram's record is kept, nanoseconds.
const LIFETIME_NS: u64 = 2_000_000_000;

/// A datagram: addresses, protocol and identification as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct FragKey {
    src: u128,
    dst: u128,
    id: u32,
    proto: u8,
}

impl FragKey {
    fn new(src: u128, dst: u128, id: u32, proto: u8) -> Self {
        FragKey {
            src,
            dst,
            id,
            proto,
        }
    }

    /// The datagram of a fragment whose connection tuple as received is
    /// `conn` (`CtMeta::key`: the datagram's addresses before any
    /// rewrite); the identification is read from the packet, which NAT
    /// does not change.
    pub fn of_conn(umem: &[u8], m: &Meta, conn: &FlowKey) -> Option<FragKey> {
        Some(FragKey::new(
            conn.src,
            conn.dst,
            Self::id(umem, m)?,
            m.proto,
        ))
    }

    /// The datagram of a fragment, from its IP header as it is now (call
    /// before any rewrite); `None` if it is no fragment.
    pub fn received(umem: &[u8], m: &Meta) -> Option<FragKey> {
        let l3 = m.desc.bytes(umem).get(L3_OFF..L3_OFF + m.l3_len as usize)?;
        let (src, dst) = match m.l3 {
            L3::V4 => {
                let ip = ipv4::Packet::new_unchecked(l3);
                (v4_key(ip.src_u32()), v4_key(ip.dst_u32()))
            }
            L3::V6 => {
                let ip = ipv6::Packet::new_unchecked(l3);
                (ip.src_u128(), ip.dst_u128())
            }
            _ => return None,
        };
        Some(FragKey::new(src, dst, Self::id(umem, m)?, m.proto))
    }

    /// A fragment's identification (IPv4 header, or IPv6 Fragment
    /// header); NAT does not change it.
    fn id(umem: &[u8], m: &Meta) -> Option<u32> {
        let l3 = m.desc.bytes(umem).get(L3_OFF..L3_OFF + m.l3_len as usize)?;
        match m.l3 {
            L3::V4 => Some(u32::from(ipv4::Packet::new_unchecked(l3).ident())),
            L3::V6 => ipv6::walk_extensions(l3).ok()?.fragment_id,
            _ => None,
        }
    }

    fn slot(&self) -> usize {
        let h = crate::conntrack::mix(
            self.src as u64 ^ (self.dst as u64).rotate_left(17),
            u64::from(self.id) << 8 | u64::from(self.proto) | 1 << 63,
        );
        (h as usize) % SLOTS
    }
}

/// What the first fragment of a datagram came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Fate {
    #[default]
    Unknown,
    /// Past PREROUTING: `target` holds the destination part.
    Routing,
    /// Forwarded with `target` as its whole translation.
    Forwarded,
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    key: FragKey,
    until: u64,
    fate: Fate,
    /// The connection's tuple as received (`CtMeta::key`).
    conn_key: FlowKey,
    /// The tuple the datagram leaves with (`CtMeta::target`).
    target: FlowKey,
}

/// One worker's records of fragmented datagrams.
pub(super) struct FragTable {
    slots: Box<[Record]>,
}

impl Default for FragTable {
    fn default() -> Self {
        FragTable {
            slots: vec![Record::default(); SLOTS].into_boxed_slice(),
        }
    }
}

impl FragTable {
    /// A first fragment passed PREROUTING: its connection's tuple and the
    /// target so far (the destination part).
    pub fn routing(&mut self, key: FragKey, conn_key: FlowKey, target: FlowKey, now: u64) {
        self.slots[key.slot()] = Record {
            key,
            until: now.saturating_add(LIFETIME_NS),
            fate: Fate::Routing,
            conn_key,
            target,
        };
    }

    /// A first fragment was forwarded with `target` as its translation.
    pub fn forwarded(&mut self, key: FragKey, target: FlowKey) {
        let r = &mut self.slots[key.slot()];
        if r.key == key && r.fate != Fate::Unknown {
            r.fate = Fate::Forwarded;
            r.target = target;
        }
    }

    /// The record of a later fragment's datagram: (fate, connection tuple,
    /// target), if its first fragment was seen and the record is current.
    pub fn get(&self, key: &FragKey, now: u64) -> Option<(Fate, FlowKey, FlowKey)> {
        let r = &self.slots[key.slot()];
        (r.key == *key && r.fate != Fate::Unknown && now < r.until)
            .then_some((r.fate, r.conn_key, r.target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: v4_key(0x0a00_0002),
            dst: v4_key(0xc633_6407),
            id,
            proto: 17,
        }
    }

    #[test]
    fn records_follow_the_first_fragment() {
        let mut t = FragTable::default();
        let k = FlowKey::v4(0x0a00_0002, 0xc633_6407, 17, 7000, 53);
        let mut out = k;
        out.src = v4_key(0xcb00_7102);
        assert_eq!(t.get(&key(1), 0), None);
        t.routing(key(1), k, k, 0);
        assert_eq!(t.get(&key(1), 1), Some((Fate::Routing, k, k)));
        t.forwarded(key(1), out);
        assert_eq!(t.get(&key(1), 1), Some((Fate::Forwarded, k, out)));
        // Another datagram, the same addresses: not this record.
        assert_eq!(t.get(&key(2), 1), None);
        t.forwarded(key(2), out);
        assert_eq!(t.get(&key(2), 1), None);
        // Records expire.
        assert_eq!(t.get(&key(1), LIFETIME_NS), None);
    }
}
