//! On-chip buffer planning: which half of a double-buffered buffer the next load goes to,
//! and how a conv's per-pass constants (weights, PBUF records) stream through them.

use crate::error::LayerError;
use contract::{Buffer, EngineConfig};
use std::ops::Range;

/// Which half of a double-buffered on-chip buffer the next load goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Halves {
    buffer: Buffer,
    entries: usize,
    pub half: usize,
    bases: [usize; 2],
    next: usize,
    /// Where the last resident data ends, and its half: more goes beside it while it fits.
    fill: Option<(usize, usize)>,
    /// Where each half's last data ends. With `rotate`, the next take of a half goes there
    /// while it fits, not back to the half's base: it overwrites the oldest data in the
    /// half, so the STORE or CONV that last used it ran further back and the instruction
    /// writing it waits less. WBUF and PBUF keep their bases (docs/compiler.md, "Overlap").
    cursor: [usize; 2],
    rotate: bool,
}

impl Halves {
    pub fn new(buffer: Buffer, cfg: &EngineConfig) -> Self {
        let entries = buffer.entries(cfg);
        Halves {
            buffer,
            entries,
            half: entries / 2,
            bases: [0, entries / 2],
            next: 0,
            fill: None,
            cursor: [0, entries / 2],
            rotate: matches!(buffer, Buffer::Abuf | Buffer::Obuf),
        }
    }

    /// Base of the next half (alternating), checking `need` entries of `what` fit in it.
    pub fn take(&mut self, need: usize, what: &'static str) -> Result<usize, LayerError> {
        self.check(need, what)?;
        Ok(self.next_base(need))
    }

    /// Whether `need` entries of `what` fit one half.
    pub fn check(&self, need: usize, what: &'static str) -> Result<(), LayerError> {
        if need > self.half {
            return Err(LayerError::Buffer {
                what,
                buffer: self.buffer,
                need,
                have: self.half,
                entries: self.entries,
            });
        }
        Ok(())
    }

    /// Keeps `k` entries at the top of a half for a while: both halves shrink to
    /// `entries / 2 − k`, at the same bases, so every take still alternates between them
    /// and none reaches the top `k` of either (docs/compiler.md, "The SE map kept").
    pub fn pin(&mut self, k: usize) {
        self.half = self.entries / 2 - k;
    }

    /// Keeps everything from `end` on for a while: the halves become the two halves of
    /// `0 .. end`, the first taken first. They need not lie in the usual halves, so the
    /// caller places every pending store first.
    pub fn pin_below(&mut self, end: usize) {
        self.half = end / 2;
        self.bases = [0, end / 2];
        self.cursor = self.bases;
        self.next = 0;
    }

    /// Back to the usual halves; after `pin_below`, the next take goes to the upper one,
    /// clear of `0 .. end` when `end` is at most half the buffer.
    pub fn unpin(&mut self) {
        if self.bases[1] != self.entries / 2 {
            self.next = 1;
        }
        self.half = self.entries / 2;
        self.bases = [0, self.entries / 2];
        self.cursor = self.bases;
    }

    /// Whether the next take of `need` entries goes to the bottom of the buffer.
    pub fn bottom_next(&self, need: usize) -> bool {
        let c = self.cursor[0];
        self.next == 0
            && (!self.rotate || c == self.bases[0] || c + need > self.bases[0] + self.half)
    }

    /// Makes the next take go to the bottom of the buffer, out of turn (not where the lower
    /// half's rotation is): the caller has placed every pending store, and what comes next
    /// waits for it.
    pub fn bottom(&mut self) {
        self.next = 0;
        self.cursor[0] = self.bases[0];
        self.fill = None;
    }

    /// The top `k` entries of the half that `base` is not in.
    pub fn top_of_other_half(&self, base: usize, k: usize) -> usize {
        let full = self.entries / 2;
        if base < full {
            self.entries - k
        } else {
            full - k
        }
    }

    fn next_base(&mut self, need: usize) -> usize {
        let h = self.next;
        let end = self.bases[h] + self.half;
        let base = if self.rotate && self.cursor[h] + need <= end {
            self.cursor[h]
        } else {
            self.bases[h]
        };
        self.cursor[h] = base + need;
        self.next ^= 1;
        self.fill = None;
        base
    }

    /// Where `need` entries that stay for a whole op go: right after the last resident
    /// data when they fit its half, otherwise at the next half. Either way they overlap
    /// nothing the previous op reads, so its successor's loads can go behind its last tile.
    fn resident(&mut self, need: usize) -> usize {
        match self.fill {
            Some((end, h)) if end + need <= self.bases[h] + self.half => {
                self.fill = Some((end + need, h));
                self.cursor[h] = end + need;
                end
            }
            _ => {
                let h = self.next;
                let base = self.next_base(need);
                self.fill = Some((base + need, h));
                base
            }
        }
    }
}

/// Per-pass constant data of a conv (weights or PBUF records) and where it goes on chip:
/// resident in one half (every pass at its own place, loaded with the first row of tiles)
/// when all passes fit it, otherwise streamed per tile into alternating halves.
pub(crate) struct Stream {
    blob: u32,
    /// Buffer entries and DRAM bytes per pass.
    pub entries: usize,
    bytes: usize,
    /// Where the passes start, when resident.
    resident: Option<usize>,
    /// Where the most recent tile's first pass went.
    pub last: usize,
}

impl Stream {
    pub fn new(
        blob: u32,
        entries: usize,
        entry_bytes: usize,
        halves: &mut Halves,
        passes: usize,
    ) -> Self {
        let resident = (passes * entries <= halves.half).then(|| halves.resident(passes * entries));
        Stream {
            blob,
            entries,
            bytes: entries * entry_bytes,
            resident,
            last: 0,
        }
    }

    pub fn is_resident(&self) -> bool {
        self.resident.is_some()
    }

    /// Whether a tile of `passes` fits (always, when resident).
    pub fn fits(&self, passes: usize, halves: &Halves) -> bool {
        self.resident.is_some() || passes * self.entries <= halves.half
    }

    /// The load a tile of `passes` needs, if any: `(DRAM, buffer address, entries)`. The
    /// caller has checked `fits`.
    pub fn next(
        &mut self,
        passes: Range<usize>,
        first_row: bool,
        halves: &mut Halves,
    ) -> Option<(u32, usize, usize)> {
        let n = passes.len() * self.entries;
        let dram = self.blob + (passes.start * self.bytes) as u32;
        match self.resident {
            Some(base) => {
                self.last = base + passes.start * self.entries;
                first_row.then_some((dram, self.last, n))
            }
            None => {
                debug_assert!(n <= halves.half, "checked by fits");
                self.last = halves.next_base(n);
                Some((dram, self.last, n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row that must sit at the bottom (slots or a kept map at the top of the OBUF) goes
    /// there even when the lower half's rotation points higher: at 112, a row of 840 and
    /// slots of 1 120 at the top of 2 048 entries would share 112 .. 952 − 928.
    #[test]
    fn a_row_for_the_bottom_goes_to_the_bottom() {
        let cfg = EngineConfig::default();
        let mut obuf = Halves::new(Buffer::Obuf, &cfg);
        assert!(obuf.bottom_next(840));
        assert_eq!(obuf.take(112, "a").unwrap(), 0);
        assert_eq!(obuf.take(100, "b").unwrap(), obuf.half);
        // the rotation would put the row at 112
        assert!(!obuf.bottom_next(840));
        obuf.bottom();
        assert!(obuf.bottom_next(840));
        assert_eq!(obuf.take(840, "the row").unwrap(), 0);
        // when the row does not fit beside the rotation's cursor it goes to the base anyway
        let mut obuf = Halves::new(Buffer::Obuf, &cfg);
        obuf.take(112, "a").unwrap();
        obuf.take(100, "b").unwrap();
        assert!(obuf.bottom_next(obuf.half - 100));
    }
}
