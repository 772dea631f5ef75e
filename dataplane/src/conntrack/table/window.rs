//! TCP window tracking's state in the table: one 32-byte record per entry
//! (two per cache line, beside the entries, touched only by TCP packets
//! while window tracking is on), and the application of
//! [`tcp::window`]'s results to it.
//!
//! # Without locks
//!
//! Linux updates a connection's window under its spinlock; here both
//! directions' workers may update one record at once (with NAT the two
//! directions of a flow are on different queues). Every field is its own
//! `AtomicU32` and, once a side is initialised, only ever moves forward:
//! `end`, `maxend` and `maxack` in sequence space, `maxwin` numerically,
//! flags are only set. So an update is a *raise*: a relaxed load, and a
//! compare-and-swap only if the new value is ahead (retried while it still
//! is), so two concurrent raises keep the larger and nothing moves back.
//! The check itself reads a snapshot of both sides that another worker may
//! be raising at the same instant; the races that remain are benign: a
//! packet judged against a state one segment old is judged as if it had
//! arrived a moment earlier, and the window only ever grows, never closes
//! on a packet that was in it. A side's (re)initialisation from a SYN is a
//! plain store (a handshake is not processed concurrently with itself).
//! A packet in the window costs at most three compare-and-swaps, on a
//! line the entry's hot line already bounces between the same two
//! workers; an update that moves nothing writes nothing.
//!
//! `maxwin` is kept in 32-byte units (rounded up; windows up to 1 GiB)
//! so that the scale and flags fit beside it: the lower edge of the
//! window is up to 31 bytes more lenient than Linux's.
//!
//! A helper connection's acks are moved back by the other direction's
//! sequence adjustment (`nat/seqadj.rs`) before the check, as Linux's
//! `nf_ct_seq_offset` does: the table sees segments as they arrive, before
//! the helper's rewrite.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use super::super::Dir;
use super::super::tcp::{self, Side, TcpSeg, TcpState, W_LIBERAL, WinOut};
use super::*;

/// `meta` word: maxwin units (25 bits), scale (4), flags (3).
const UNIT_SHIFT: u32 = 5;
const UNITS_MASK: u32 = (1 << 25) - 1;
const SCALE_SHIFT: u32 = 25;
const FLAGS_SHIFT: u32 = 29;

/// One connection's window record: per direction end, maxend, maxack,
/// meta.
#[derive(Default)]
#[repr(C, align(32))]
pub(super) struct Win {
    side: [[AtomicU32; 4]; 2],
}

const _: () = assert!(std::mem::size_of::<Win>() == 32);

const END: usize = 0;
const MAXEND: usize = 1;
const MAXACK: usize = 2;
const META: usize = 3;

fn meta(s: &Side) -> u32 {
    let units = s.maxwin.div_ceil(1 << UNIT_SHIFT).min(UNITS_MASK);
    units | u32::from(s.scale & 0xf) << SCALE_SHIFT | u32::from(s.flags & 7) << FLAGS_SHIFT
}

fn unmeta(m: u32, s: &mut Side) {
    s.maxwin = (m & UNITS_MASK) << UNIT_SHIFT;
    s.scale = (m >> SCALE_SHIFT) as u8 & 0xf;
    s.flags = (m >> FLAGS_SHIFT) as u8 & 7;
}

/// Raises `a` to `v` if `v` is ahead (sequence space).
#[inline]
fn raise_seq(a: &AtomicU32, v: u32) {
    let mut cur = a.load(Relaxed);
    while tcp::after(v, cur) {
        match a.compare_exchange_weak(cur, v, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(x) => cur = x,
        }
    }
}

impl Win {
    pub(super) fn sides(&self) -> [Side; 2] {
        let mut out = [Side::default(); 2];
        for (s, w) in out.iter_mut().zip(&self.side) {
            s.end = w[END].load(Relaxed);
            s.maxend = w[MAXEND].load(Relaxed);
            s.maxack = w[MAXACK].load(Relaxed);
            unmeta(w[META].load(Relaxed), s);
        }
        out
    }

    /// Replaces both sides (a new connection; the entry is private).
    pub(super) fn store(&self, sides: &[Side; 2]) {
        for (s, w) in sides.iter().zip(&self.side) {
            w[END].store(s.end, Relaxed);
            w[MAXEND].store(s.maxend, Relaxed);
            w[MAXACK].store(s.maxack, Relaxed);
            w[META].store(meta(s), Relaxed);
        }
    }

    /// Applies `new` over `old` (the snapshot it was computed from).
    fn apply(&self, old: &[Side; 2], new: &[Side; 2], init: [bool; 2]) {
        for d in 0..2 {
            let (o, n, w) = (&old[d], &new[d], &self.side[d]);
            if o == n {
                continue;
            }
            if init[d] {
                w[END].store(n.end, Relaxed);
                w[MAXEND].store(n.maxend, Relaxed);
                w[MAXACK].store(n.maxack, Relaxed);
                w[META].store(meta(n), Relaxed);
                continue;
            }
            if n.end != o.end {
                raise_seq(&w[END], n.end);
            }
            if n.maxend != o.maxend {
                raise_seq(&w[MAXEND], n.maxend);
            }
            if n.maxack != o.maxack {
                raise_seq(&w[MAXACK], n.maxack);
            }
            let want = meta(n);
            if want != meta(o) {
                let mut cur = w[META].load(Relaxed);
                loop {
                    let units = (cur & UNITS_MASK).max(want & UNITS_MASK);
                    let v = (cur & !UNITS_MASK) | units | (want & (7 << FLAGS_SHIFT));
                    if v == cur {
                        break;
                    }
                    match w[META].compare_exchange_weak(cur, v, Relaxed, Relaxed) {
                        Ok(_) => break,
                        Err(x) => cur = x,
                    }
                }
            }
        }
    }
}

impl Conntrack {
    /// Whether window failures are accepted (`[conntrack] tcp_be_liberal`,
    /// Linux's `nf_conntrack_tcp_be_liberal`): then windows are not
    /// tracked at all, and connections opened meanwhile stay unchecked.
    pub fn tcp_be_liberal(&self) -> bool {
        self.tcp_liberal.load(Relaxed)
    }

    /// Turns window checking off (`true`) or on for new connections.
    pub fn set_tcp_be_liberal(&self, liberal: bool) {
        self.tcp_liberal.store(liberal, Relaxed);
    }

    /// Accepts every segment of entry `idx` from now on, both directions
    /// (flags are only ever set, so no update undoes it).
    pub(super) fn window_liberal(&self, idx: u32) {
        for w in &self.win[idx as usize].side {
            w[META].fetch_or(u32::from(W_LIBERAL) << FLAGS_SHIFT, Relaxed);
        }
    }

    /// The window record of a new TCP connection opened by a segment with
    /// flags `f` (`seg`: `None` when the caller has no segment).
    pub(super) fn window_open(&self, idx: u32, f: u8, seg: Option<&TcpSeg>, state: TcpState) {
        let sides = match seg {
            Some(seg) if !self.tcp_be_liberal() => {
                tcp::open_sides(seg, f, state != TcpState::SynSent)
            }
            _ => {
                let l = Side {
                    flags: W_LIBERAL,
                    ..Side::default()
                };
                [l, l]
            }
        };
        self.win[idx as usize].store(&sides);
    }

    /// Window tracking of a packet of connection `c` (state word `s`) that
    /// moves it from `old` to `new`.
    pub(super) fn window_check(
        &self,
        c: ConnId,
        s: u64,
        old: TcpState,
        new: TcpState,
        f: u8,
        seg: &TcpSeg,
    ) -> WinOut {
        let w = &self.win[c.idx as usize];
        let old_sides = w.sides();
        let d = c.dir as usize;
        if old_sides[d].flags & W_LIBERAL != 0
            && old_sides[1 - d].flags & W_LIBERAL != 0
            && old_sides[d].maxwin == 0
            && old_sides[1 - d].maxwin == 0
        {
            // Opened without window tracking: nothing to do.
            return WinOut {
                verdict: tcp::WinVerdict::Accept,
                keep_state: false,
                init: [false; 2],
            };
        }
        let mut seg = *seg;
        if s & HELPER != 0 {
            // Acks of the other direction's rewritten data, back into the
            // sequence space this table saw.
            let m = self.entries[c.idx as usize].mark.load(Relaxed);
            if let Some(slot) = ((m >> SLOT_SHIFT) as u16).checked_sub(1) {
                let other = if c.dir == Dir::Original {
                    Dir::Reply
                } else {
                    Dir::Original
                };
                seg.ack = self.helpers.seqadj(slot, other).ack(seg.ack);
            }
        }
        let mut sides = old_sides;
        let out = tcp::window(&mut sides, c.dir, old, new, f, &seg);
        if out.verdict == tcp::WinVerdict::Invalid {
            self.counters[C_OUT_OF_WINDOW].fetch_add(1, Relaxed);
        }
        w.apply(&old_sides, &sides, out.init);
        out
    }
}
