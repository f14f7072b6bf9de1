//! DRAM: the byte array, and the memory model shared with the Verilator harness — a fixed
//! read latency plus random `ready` stalls from a seeded xorshift64.
//!
//! The harness must reproduce the model exactly, so the rules are simple and written down:
//! - every port calls [`ReadyGen::ready`] exactly once per clock cycle, whether or not it has a
//!   request, starting at cycle 0;
//! - a request is accepted in a cycle where the port is ready and the master has one;
//! - a read accepted in cycle `t` returns its data in cycle `t + latency` (in order);
//! - a write is posted: it is complete when accepted;
//! - a bus word that is not wholly inside the DRAM is a bus error (AXI DECERR), which stops
//!   the engine with `ERROR`.

use std::collections::VecDeque;

/// DRAM sizes are rounded up to this, the largest bus width `EngineConfig` allows, so a bus
/// word is either wholly inside or wholly outside.
pub const DRAM_ALIGN: usize = 128;

/// The xorshift64 state used when the seed is 0 (xorshift never leaves 0).
const ZERO_SEED_REPLACEMENT: u64 = 0x9E37_79B9_7F4A_7C15;

/// Per-cycle `ready` of one memory port: xorshift64 (Marsaglia 2003, shifts 13, 7, 17); the
/// port stalls when the top 16 bits of the new state are below `stall_per_65536`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyGen {
    state: u64,
    stall_per_65536: u32,
}

impl ReadyGen {
    /// `stall_per_65536` = 0 never stalls, 65 536 always does.
    pub fn new(seed: u64, stall_per_65536: u32) -> Self {
        ReadyGen {
            state: if seed == 0 {
                ZERO_SEED_REPLACEMENT
            } else {
                seed
            },
            stall_per_65536: stall_per_65536.min(1 << 16),
        }
    }

    /// Stall probability `p` in [0, 1], rounded to 1/65 536.
    pub fn with_probability(seed: u64, p: f64) -> Self {
        Self::new(seed, (p.clamp(0.0, 1.0) * 65536.0).round() as u32)
    }

    /// Advances one cycle; true when the port accepts a request this cycle.
    pub fn ready(&mut self) -> bool {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        ((x >> 48) as u32) >= self.stall_per_65536
    }
}

/// How the engine's two ports see DRAM. Latency comes from `EngineConfig::dram_latency`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryModel {
    /// Probability of a stall cycle, in units of 1/65 536 (0 = always ready).
    pub stall_per_65536: u32,
    pub seed: u64,
}

impl MemoryModel {
    /// The instruction port's generator: seeded with `seed`.
    pub fn instr_port(&self) -> ReadyGen {
        ReadyGen::new(self.seed, self.stall_per_65536)
    }

    /// The data port's generator: seeded with `seed ^ 0x9E3779B97F4A7C15` so the two
    /// ports stall independently.
    pub fn data_port(&self) -> ReadyGen {
        ReadyGen::new(self.seed ^ ZERO_SEED_REPLACEMENT, self.stall_per_65536)
    }
}

/// One memory port: the ready generator and the in-flight reads, each carrying a `T`
/// until its response cycle (the cycle model: the address of a bus error, if any; the
/// Verilator harness: the data words).
#[derive(Clone, Debug)]
pub(crate) struct MemPort<T = Option<u64>> {
    latency: u64,
    gen: ReadyGen,
    ready: bool,
    /// Reads in flight: (cycle the response arrives, payload).
    in_flight: VecDeque<(u64, T)>,
}

impl<T> MemPort<T> {
    pub fn new(latency: u64, gen: ReadyGen) -> Self {
        MemPort {
            latency,
            gen,
            ready: false,
            in_flight: VecDeque::new(),
        }
    }

    /// Start of a cycle: sample `ready` (once per cycle, always).
    pub fn tick(&mut self) -> bool {
        self.ready = self.gen.ready();
        self.ready
    }

    /// Issue a read in cycle `now`; the caller has checked `ready`.
    pub fn read(&mut self, now: u64, payload: T) {
        debug_assert!(self.ready);
        self.in_flight.push_back((now + self.latency, payload));
    }

    /// The response arriving in cycle `now`, if any (for the cycle model `Some(None)` is
    /// data, `Some(Some(a))` a bus error at address `a`). One request per cycle means at
    /// most one response per cycle.
    pub fn response(&mut self, now: u64) -> Option<T> {
        if self.in_flight.front().is_some_and(|&(due, _)| due == now) {
            self.in_flight.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }
}

/// The DRAM contents. Host-side writes grow it; the engine's bus accesses never do (they
/// raise a bus error instead, see [`Dram::word_in_range`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dram {
    bytes: Vec<u8>,
}

impl Dram {
    pub fn new(size: usize) -> Self {
        let mut d = Dram::default();
        d.resize(size);
        d
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Resizes to `size` rounded up to [`DRAM_ALIGN`]; new bytes are zero.
    pub fn resize(&mut self, size: usize) {
        self.bytes.resize(size.next_multiple_of(DRAM_ALIGN), 0);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Host-side write: grows the DRAM to hold `data`.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        let end = addr as usize + data.len();
        if end > self.bytes.len() {
            self.resize(end);
        }
        self.bytes[addr as usize..end].copy_from_slice(data);
    }

    /// Host-side read. Panics when the range is outside the DRAM.
    pub fn read(&self, addr: u64, len: usize) -> &[u8] {
        &self.bytes[addr as usize..addr as usize + len]
    }

    /// Is bus word `word` (of `bus_bytes` bytes) inside the DRAM?
    pub fn word_in_range(&self, word: u64, bus_bytes: usize) -> bool {
        (word + 1).saturating_mul(bus_bytes as u64) <= self.bytes.len() as u64
    }

    /// Writes the strobed bytes of bus word `word` (`data.len()` bytes); the caller has
    /// checked the word is in range.
    pub fn write_word(&mut self, word: u64, strobe: u128, data: &[u8]) {
        let base = word as usize * data.len();
        for (b, &byte) in data.iter().enumerate() {
            if strobe >> b & 1 == 1 {
                self.bytes[base + b] = byte;
            }
        }
    }

    /// Engine-side read: bytes outside the DRAM read as zero (the timing model reports the
    /// bus error; the functional model must not panic).
    pub(crate) fn read_clipped(&self, addr: u64, out: &mut [u8]) {
        out.fill(0);
        let len = self.bytes.len() as u64;
        if addr >= len {
            return;
        }
        let n = (len - addr).min(out.len() as u64) as usize;
        out[..n].copy_from_slice(&self.bytes[addr as usize..addr as usize + n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_sequence_is_pinned() {
        // The cycle model and the Verilator harness both draw `ready` from this generator;
        // these values pin it.
        let mut g = ReadyGen::new(1, 0);
        let states: Vec<u64> = (0..3)
            .map(|_| {
                g.ready();
                g.state
            })
            .collect();
        assert_eq!(states, [0x40822041, 0x100041060c011441, 0x9b1e842f6e862629]);
    }

    #[test]
    fn stall_probability_is_respected() {
        assert!((0..1000).all(|_| ReadyGen::new(7, 0).ready()));
        let mut never = ReadyGen::new(7, 1 << 16);
        assert!((0..1000).all(|_| !never.ready()));
        let mut g = ReadyGen::with_probability(42, 0.25);
        let stalls = (0..100_000).filter(|_| !g.ready()).count();
        assert!((24_000..26_000).contains(&stalls), "{stalls}");
        assert_eq!(ReadyGen::new(0, 0), ReadyGen::new(ZERO_SEED_REPLACEMENT, 0));
    }

    #[test]
    fn port_returns_reads_in_order_after_latency() {
        let mut p = MemPort::new(3, ReadyGen::new(1, 0));
        for now in 0..8 {
            p.tick();
            let r = p.response(now);
            match now {
                0..=2 => assert_eq!(r, None),
                3 => assert_eq!(r, Some(None)),
                4 => assert_eq!(r, Some(Some(99))),
                _ => assert_eq!(r, None),
            }
            match now {
                0 => p.read(now, None),
                1 => p.read(now, Some(99)),
                _ => {}
            }
        }
    }

    #[test]
    fn dram_rounds_and_clips() {
        let mut d = Dram::new(1);
        assert_eq!(d.len(), DRAM_ALIGN);
        assert!(d.word_in_range(15, 8) && !d.word_in_range(16, 8));
        d.write(DRAM_ALIGN as u64 + 1, &[5]);
        assert_eq!(d.len(), 2 * DRAM_ALIGN);
        let mut out = [9u8; 4];
        d.read_clipped(2 * DRAM_ALIGN as u64 - 2, &mut out);
        assert_eq!(out, [0, 0, 0, 0]);
    }
}
