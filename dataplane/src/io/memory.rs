//! The in-memory port backend: receive and transmit queues in process.
//!
//! Tests, benchmarks and `xgate replay` put frames on a port's receive queue
//! with [`MemoryPort::inject`] and take what the pipeline transmitted with
//! [`MemoryPort::drain_tx`]. Transmit queues are bounded like a real ring,
//! so "ring full" behaviour is exercised too.

use super::{Desc, FramePool, HEADROOM, MAX_FRAME_LEN, Port};
use std::collections::VecDeque;

#[derive(Debug)]
pub struct MemoryPort {
    rx: VecDeque<Desc>,
    tx: VecDeque<Desc>,
    tx_capacity: usize,
}

/// Why a frame could not be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// Larger than a UMEM frame can hold after the headroom.
    TooLong,
    /// No free frame in the pool.
    NoFrame,
}

impl MemoryPort {
    pub fn new(tx_capacity: usize) -> Self {
        MemoryPort {
            rx: VecDeque::with_capacity(256),
            tx: VecDeque::with_capacity(tx_capacity),
            tx_capacity,
        }
    }

    /// Copies `frame` into a fresh UMEM frame and queues it for receive.
    pub fn inject(
        &mut self,
        umem: &mut [u8],
        pool: &mut FramePool,
        frame: &[u8],
    ) -> Result<(), InjectError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(InjectError::TooLong);
        }
        let mut d = pool.alloc().ok_or(InjectError::NoFrame)?;
        debug_assert_eq!(d.headroom(), HEADROOM);
        d.len = frame.len() as u32;
        d.bytes_mut(umem).copy_from_slice(frame);
        self.rx.push_back(d);
        Ok(())
    }

    /// Hands every transmitted frame to `f`, then frees it.
    pub fn drain_tx(&mut self, umem: &[u8], pool: &mut FramePool, mut f: impl FnMut(&[u8])) {
        while let Some(d) = self.tx.pop_front() {
            f(d.bytes(umem));
            pool.free(d);
        }
    }

    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }
}

impl Port for MemoryPort {
    fn rx_burst(&mut self, out: &mut [Desc]) -> usize {
        let n = out.len().min(self.rx.len());
        for (slot, d) in out.iter_mut().zip(self.rx.drain(..n)) {
            *slot = d;
        }
        n
    }

    fn tx_burst(&mut self, _umem: &mut [u8], descs: &[Desc]) -> usize {
        let n = descs.len().min(self.tx_capacity - self.tx.len());
        self.tx.extend(&descs[..n]);
        n
    }

    fn service(&mut self, _umem: &mut [u8], _pool: &mut FramePool) {
        // Transmitted frames are freed by drain_tx; nothing to refill.
    }
}

/// A worker over in-memory ports, driven by its caller instead of a poll
/// loop: tests, benchmarks and `xgate replay` put frames in with
/// [`MemoryWorker::receive`] and take the transmitted frames out with
/// [`MemoryWorker::drain`]. It runs exactly the pipeline a live worker runs.
pub struct MemoryWorker {
    pub umem: Vec<u8>,
    pub pool: FramePool,
    pub ports: Vec<MemoryPort>,
    pub pipeline: crate::pipeline::Pipeline,
    rx: Vec<Desc>,
}

impl MemoryWorker {
    /// `frames` UMEM frames; one port per device of the interface table.
    pub fn new(
        tables: std::sync::Arc<crate::pipeline::Tables>,
        shared: std::sync::Arc<crate::pipeline::Shared>,
        frames: usize,
    ) -> Self {
        let ports = (0..tables.interfaces.ports())
            .map(|_| MemoryPort::new(4096))
            .collect();
        let pool = FramePool::new(frames);
        MemoryWorker {
            umem: vec![0u8; pool.umem_len()],
            pool,
            ports,
            pipeline: crate::pipeline::Pipeline::new(tables, shared),
            rx: vec![Desc::default(); crate::pipeline::BATCH],
        }
    }

    /// Receives `frames` on `port` at time `now` (ns) and runs them through
    /// the pipeline, a burst at a time.
    pub fn receive(&mut self, port: u16, frames: &[&[u8]], now: u64) -> Result<(), InjectError> {
        let p = port as usize;
        for f in frames {
            self.ports[p].inject(&mut self.umem, &mut self.pool, f)?;
        }
        loop {
            let n = self.ports[p].rx_burst(&mut self.rx);
            if n == 0 {
                return Ok(());
            }
            self.pipeline.process(
                &mut self.umem,
                &mut self.pool,
                &mut self.ports,
                port,
                &self.rx[..n],
                now,
            );
        }
    }

    /// Runs what the host kernel sent (queued on the pipeline's punt
    /// channel) through the local-output path, as the live worker loop
    /// does every round.
    pub fn kernel_input(&mut self, now: u64) {
        while self
            .pipeline
            .kernel_input(&mut self.umem, &mut self.pool, &mut self.ports, now)
            > 0
        {}
    }

    /// Lets time pass without traffic (neighbour retries and timeouts).
    pub fn tick(&mut self, now: u64) {
        self.pipeline
            .tick(&mut self.umem, &mut self.pool, &mut self.ports, now);
    }

    /// Hands every transmitted frame, with its port, to `f`, port by port.
    pub fn drain(&mut self, mut f: impl FnMut(u16, &[u8])) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            p.drain_tx(&self.umem, &mut self.pool, |b| f(i as u16, b));
        }
    }

    /// Frames not in the free pool: in flight, pending, or leaked.
    pub fn frames_in_use(&self) -> usize {
        self.pool.frames() - self.pool.available()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FRAME_SIZE;

    #[test]
    fn inject_receive_transmit_drain() {
        let mut pool = FramePool::new(8);
        let mut umem = vec![0u8; 8 * FRAME_SIZE];
        let mut a = MemoryPort::new(2);
        a.inject(&mut umem, &mut pool, &[1, 2, 3]).unwrap();
        a.inject(&mut umem, &mut pool, &[4; 60]).unwrap();
        assert_eq!(
            a.inject(&mut umem, &mut pool, &[0; MAX_FRAME_LEN + 1]),
            Err(InjectError::TooLong)
        );
        let mut descs = [Desc::default(); 4];
        assert_eq!(a.rx_burst(&mut descs), 2);
        assert_eq!(descs[0].bytes(&umem), &[1, 2, 3]);
        assert_eq!(pool.available(), 6);
        // Ring of 2: the third frame is refused and stays the caller's.
        let extra = pool.alloc().unwrap();
        assert_eq!(a.tx_burst(&mut umem, &[descs[0], descs[1], extra]), 2);
        pool.free(extra);
        let mut seen = Vec::new();
        a.drain_tx(&umem, &mut pool, |f| seen.push(f.len()));
        assert_eq!(seen, vec![3, 60]);
        assert_eq!(pool.available(), 8);
    }
}
