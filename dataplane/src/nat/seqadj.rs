//! TCP sequence adjustment after a payload rewrite changed a segment's
//! length (Linux's `nf_conntrack_seqadj`): per direction, the sequence
//! number where the last length change happened and the offsets before
//! and after it. A packet's own sequence number moves by its direction's
//! offset; its acknowledgement number and SACK blocks, which acknowledge
//! the other direction's data, move back by the other direction's offset.
//!
//! One direction's state packs into one `u64` (position, offset after
//! the change as 24 signed bits, the change itself as 8 signed bits), so
//! a helper connection's packet reads it with one atomic load and a
//! rewrite records it with one compare-and-swap. An FTP command rewrite
//! changes a length by at most a few dozen bytes; a total offset beyond
//! ±8 MiB is refused (the rewrite is not done, and counted).
//!
//! Sequence numbers compare modulo 2^32 (RFC 1982 style, as `after()`).

use crate::packet::checksum;

/// One direction's adjustment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdj {
    /// Sequence number of the last rewritten segment.
    pub pos: u32,
    /// Offset for sequence numbers up to `pos`.
    pub before: i32,
    /// Offset for sequence numbers after `pos`.
    pub after: i32,
}

const AFTER_MIN: i32 = -(1 << 23);
const AFTER_MAX: i32 = (1 << 23) - 1;

/// Whether `a` comes after `b` in sequence space.
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

impl SeqAdj {
    /// Whether nothing is adjusted.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.before == 0 && self.after == 0
    }

    /// The packed word; `None` when out of range.
    pub fn pack(self) -> Option<u64> {
        let diff = self.after.checked_sub(self.before)?;
        if !(AFTER_MIN..=AFTER_MAX).contains(&self.after) || i8::try_from(diff).is_err() {
            return None;
        }
        Some(
            u64::from(self.pos)
                | (u64::from(self.after as u32) & 0xff_ffff) << 32
                | u64::from(diff as i8 as u8) << 56,
        )
    }

    pub fn unpack(w: u64) -> Self {
        // Sign-extend the 24-bit offset.
        let after = (((w >> 32) as u32) << 8) as i32 >> 8;
        let diff = (w >> 56) as u8 as i8 as i32;
        SeqAdj {
            pos: w as u32,
            before: after - diff,
            after,
        }
    }

    /// After a rewrite changed the segment at `seq` by `diff` bytes:
    /// a first change, or one past the last, moves the position; a
    /// retransmission of the rewritten segment (same `seq`) or of an
    /// older one changes nothing (Linux's `nf_ct_seqadj_set`).
    pub fn record(self, seq: u32, diff: i32) -> Self {
        if diff == 0 {
            return self;
        }
        if self.before == self.after || after(seq, self.pos) {
            SeqAdj {
                pos: seq,
                before: self.after,
                after: self.after.wrapping_add(diff),
            }
        } else {
            self
        }
    }

    /// A sequence number of this direction, as the receiver counts it.
    #[inline]
    pub fn seq(&self, seq: u32) -> u32 {
        let off = if after(seq, self.pos) {
            self.after
        } else {
            self.before
        };
        seq.wrapping_add(off as u32)
    }

    /// An acknowledgement (or SACK edge) of this direction's data, as its
    /// sender counts it.
    #[inline]
    pub fn ack(&self, ack: u32) -> u32 {
        let off = if after(ack.wrapping_sub(self.before as u32), self.pos) {
            self.after
        } else {
            self.before
        };
        ack.wrapping_sub(off as u32)
    }
}

/// TCP option kinds.
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_SACK: u8 = 5;

/// Adjusts the TCP header `tcp` (whole header, options included) of a
/// segment whose direction's state is `this`, the other direction's
/// `other`: sequence number, acknowledgement (with ACK set) and SACK
/// blocks, updating the checksum incrementally. Returns whether anything
/// changed. A malformed option list is left alone from the bad option on.
pub fn adjust_tcp(tcp: &mut [u8], this: SeqAdj, other: SeqAdj) -> bool {
    if tcp.len() < 20 {
        return false;
    }
    let rd = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut csum = u16::from_be_bytes([tcp[16], tcp[17]]);
    let mut changed = false;
    let mut put = |tcp: &mut [u8], i: usize, new: u32, csum: &mut u16| {
        let old = rd(tcp, i);
        if old != new {
            tcp[i..i + 4].copy_from_slice(&new.to_be_bytes());
            *csum = checksum::update32(*csum, old, new);
            changed = true;
        }
    };
    if !this.is_zero() {
        let seq = rd(tcp, 4);
        put(tcp, 4, this.seq(seq), &mut csum);
    }
    if !other.is_zero() {
        if tcp[13] & 0x10 != 0 {
            let ack = rd(tcp, 8);
            put(tcp, 8, other.ack(ack), &mut csum);
        }
        let hlen = (usize::from(tcp[12] >> 4) * 4).min(tcp.len());
        let mut i = 20;
        while i < hlen {
            match tcp[i] {
                OPT_END => break,
                OPT_NOP => i += 1,
                kind => {
                    let Some(&len) = tcp.get(i + 1) else { break };
                    let len = usize::from(len);
                    if len < 2 || i + len > hlen {
                        break;
                    }
                    if kind == OPT_SACK && (len - 2) % 8 == 0 {
                        let mut j = i + 2;
                        while j + 8 <= i + len {
                            for e in [j, j + 4] {
                                let v = rd(tcp, e);
                                put(tcp, e, other.ack(v), &mut csum);
                            }
                            j += 8;
                        }
                    }
                    i += len;
                }
            }
        }
    }
    if changed {
        tcp[16..18].copy_from_slice(&csum.to_be_bytes());
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trip_and_range() {
        for (pos, before, after) in [
            (0, 0, 0),
            (u32::MAX, -5, 3),
            (7, AFTER_MAX - 100, AFTER_MAX),
            (9, AFTER_MIN + 127, AFTER_MIN),
        ] {
            let s = SeqAdj { pos, before, after };
            assert_eq!(SeqAdj::unpack(s.pack().unwrap()), s);
        }
        assert!(
            SeqAdj {
                pos: 0,
                before: 0,
                after: AFTER_MAX + 1
            }
            .pack()
            .is_none()
        );
        assert!(
            SeqAdj {
                pos: 0,
                before: 0,
                after: 200
            }
            .pack()
            .is_none()
        );
    }

    #[test]
    fn record_moves_only_forward() {
        let s = SeqAdj::default().record(1000, 3);
        assert_eq!(
            s,
            SeqAdj {
                pos: 1000,
                before: 0,
                after: 3
            }
        );
        // The retransmission of the rewritten segment: unchanged.
        assert_eq!(s.record(1000, 3), s);
        // An older segment: unchanged.
        assert_eq!(s.record(900, 4), s);
        let t = s.record(2000, -2);
        assert_eq!(
            t,
            SeqAdj {
                pos: 2000,
                before: 3,
                after: 1
            }
        );
    }

    #[test]
    fn seq_and_ack_arithmetic() {
        // Segment at 1000 (20 bytes) grew by 3: the rewritten segment
        // itself keeps its number, later ones move by 3.
        let s = SeqAdj::default().record(1000, 3);
        assert_eq!(s.seq(1000), 1000);
        assert_eq!(s.seq(1020), 1023);
        assert_eq!(s.seq(999), 999);
        // The receiver acknowledges 1023 (all of the 23 bytes): the sender
        // sent 20.
        assert_eq!(s.ack(1023), 1020);
        assert_eq!(s.ack(1000), 1000);
        assert_eq!(s.ack(990), 990);
    }

    #[test]
    fn wraparound() {
        let pos = u32::MAX - 5;
        let s = SeqAdj::default().record(pos, -4);
        assert_eq!(s.seq(pos), pos);
        // 10 bytes on, across the wrap.
        let later = pos.wrapping_add(10);
        assert_eq!(s.seq(later), later.wrapping_sub(4));
        assert_eq!(s.ack(later.wrapping_sub(4)), later);
        assert!(after(3, u32::MAX - 2));
        assert!(!after(u32::MAX - 2, 3));
        let t = s.record(5, 2);
        assert_eq!((t.pos, t.before, t.after), (5, -4, -2));
    }

    fn header(seq: u32, ack: u32, sack: &[(u32, u32)]) -> Vec<u8> {
        let opt = if sack.is_empty() {
            0
        } else {
            2 + 2 + 8 * sack.len()
        };
        let hlen = 20 + opt.div_ceil(4) * 4;
        let mut h = vec![0u8; hlen];
        h[4..8].copy_from_slice(&seq.to_be_bytes());
        h[8..12].copy_from_slice(&ack.to_be_bytes());
        h[12] = ((hlen / 4) as u8) << 4;
        h[13] = 0x10;
        if !sack.is_empty() {
            h[20] = OPT_NOP;
            h[21] = OPT_NOP;
            h[22] = OPT_SACK;
            h[23] = (2 + 8 * sack.len()) as u8;
            for (k, (l, r)) in sack.iter().enumerate() {
                h[24 + 8 * k..28 + 8 * k].copy_from_slice(&l.to_be_bytes());
                h[28 + 8 * k..32 + 8 * k].copy_from_slice(&r.to_be_bytes());
            }
        }
        h
    }

    #[test]
    fn adjusts_header_sack_and_checksum() {
        let this = SeqAdj::default().record(100, 2);
        let other = SeqAdj::default().record(5000, -3);
        let mut h = header(150, 5100, &[(5200, 5300), (4000, 4100)]);
        // A checksum over the header alone, kept valid incrementally.
        let c = checksum::checksum(&h);
        h[16..18].copy_from_slice(&c.to_be_bytes());
        assert!(adjust_tcp(&mut h, this, other));
        let rd = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        assert_eq!(rd(4), 152);
        assert_eq!(rd(8), 5103);
        assert_eq!((rd(24), rd(28)), (5203, 5303));
        assert_eq!((rd(32), rd(36)), (4000, 4100));
        assert_eq!(checksum::checksum(&h), 0);
    }

    #[test]
    fn malformed_options_never_panic() {
        let other = SeqAdj::default().record(0, 5);
        for len in [0u8, 1, 3, 9, 40, 255] {
            let mut h = header(1, 10, &[]);
            h[12] = 0xf0;
            h.resize(60, 0);
            h[20] = OPT_SACK;
            h[21] = len;
            adjust_tcp(&mut h, SeqAdj::default(), other);
            adjust_tcp(&mut h[..25], SeqAdj::default(), other);
        }
    }
}
