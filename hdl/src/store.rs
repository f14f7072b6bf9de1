//! The STORE pack: the OBUF read side of STORE. Every byte lane of every bank reads
//! `B/G` consecutive entries at the DMA's word base (`ObufLane`); [`Interleave8`] turns a
//! bank's eight lanes into a bus word, and the DMA's bank selects the word.
use crate::bits::{bits_to_u64s, u64s_to_bits, vec_of};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct StorePack<const BUS: usize, const STRB: usize> {
    /// OBUF lane k = r·G + l, `STRB/8` entries
    pub lanes: Vec<Signal<In, Bits<STRB>>>,
    /// the bank STORE reads (`Dma::ob_bank`)
    pub bank: Signal<In, Bits<16>>,
    pub word: Signal<Out, Bits<BUS>>,
    pack: Vec<Interleave8<BUS, STRB>>,
    row16: Vec<Constant<Bits<16>>>,
    _rows: usize,
}

impl<const BUS: usize, const STRB: usize> StorePack<BUS, STRB> {
    pub fn new(rows: usize) -> Self {
        Self {
            lanes: vec_of(rows * 8),
            bank: Default::default(),
            word: Default::default(),
            pack: vec_of(rows),
            row16: (0..rows)
                .map(|i| Constant::new((i as u64).into()))
                .collect(),
            _rows: rows,
        }
    }
}

impl<const BUS: usize, const STRB: usize> Logic for StorePack<BUS, STRB> {
    #[hdl_gen]
    fn update(&mut self) {
        for r in 0..self._rows {
            self.pack[r].lane0.next = self.lanes[r * 8].val();
            self.pack[r].lane1.next = self.lanes[r * 8 + 1].val();
            self.pack[r].lane2.next = self.lanes[r * 8 + 2].val();
            self.pack[r].lane3.next = self.lanes[r * 8 + 3].val();
            self.pack[r].lane4.next = self.lanes[r * 8 + 4].val();
            self.pack[r].lane5.next = self.lanes[r * 8 + 5].val();
            self.pack[r].lane6.next = self.lanes[r * 8 + 6].val();
            self.pack[r].lane7.next = self.lanes[r * 8 + 7].val();
        }
        self.word.next = self.pack[0].word.val();
        for r in 0..self._rows {
            if self.bank.val() == self.row16[r].val() {
                self.word.next = self.pack[r].word.val();
            }
        }
    }
}

/// Interleaves the eight byte lanes of an OBUF bank (each `STRB` bits = `STRB/8` entries)
/// into a bus word: byte `8p + l` = lane `l`, position `p`. Eight named ports, not a
/// `Vec`: a leaf's Verilog names its ports itself (docs/rust-hdl.md#leaves).
#[derive(LogicBlock, Default)]
pub struct Interleave8<const BUS: usize, const STRB: usize> {
    pub lane0: Signal<In, Bits<STRB>>,
    pub lane1: Signal<In, Bits<STRB>>,
    pub lane2: Signal<In, Bits<STRB>>,
    pub lane3: Signal<In, Bits<STRB>>,
    pub lane4: Signal<In, Bits<STRB>>,
    pub lane5: Signal<In, Bits<STRB>>,
    pub lane6: Signal<In, Bits<STRB>>,
    pub lane7: Signal<In, Bits<STRB>>,
    pub word: Signal<Out, Bits<BUS>>,
}

impl<const BUS: usize, const STRB: usize> Logic for Interleave8<BUS, STRB> {
    fn update(&mut self) {
        let lanes = [
            bits_to_u64s(&self.lane0.val()),
            bits_to_u64s(&self.lane1.val()),
            bits_to_u64s(&self.lane2.val()),
            bits_to_u64s(&self.lane3.val()),
            bits_to_u64s(&self.lane4.val()),
            bits_to_u64s(&self.lane5.val()),
            bits_to_u64s(&self.lane6.val()),
            bits_to_u64s(&self.lane7.val()),
        ];
        let mut out = vec![0u64; BUS / 64];
        for p in 0..STRB / 8 {
            for (l, lane) in lanes.iter().enumerate() {
                let b = (lane[(8 * p) / 64] >> ((8 * p) % 64)) & 0xff;
                out[p] |= b << (8 * l);
            }
        }
        self.word.next = u64s_to_bits(&out);
    }
    fn connect(&mut self) {
        self.word.connect();
    }
    fn hdl(&self) -> Verilog {
        let mut v = String::from("always @(*) begin\n");
        for p in 0..STRB / 8 {
            for l in 0..8 {
                v.push_str(&format!(
                    "   word[{}:{}] = lane{l}[{}:{}];\n",
                    64 * p + 8 * l + 7,
                    64 * p + 8 * l,
                    8 * p + 7,
                    8 * p
                ));
            }
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
