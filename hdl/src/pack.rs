//! `{lane7, …, lane0}`: gathers the G = 8 byte-lane RAM outputs of one OBUF bank into an
//! entry. A 3-line `Verilog::Custom` leaf because hdl_gen cannot build a concatenation.
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct Pack8 {
    // separate fields, not a Vec: `self.pack[r].lane[l]` would be two indices (field notes P3)
    pub lane0: Signal<In, Bits<8>>,
    pub lane1: Signal<In, Bits<8>>,
    pub lane2: Signal<In, Bits<8>>,
    pub lane3: Signal<In, Bits<8>>,
    pub lane4: Signal<In, Bits<8>>,
    pub lane5: Signal<In, Bits<8>>,
    pub lane6: Signal<In, Bits<8>>,
    pub lane7: Signal<In, Bits<8>>,
    pub entry: Signal<Out, Bits<64>>,
}

impl Logic for Pack8 {
    fn update(&mut self) {
        let lanes = [
            &self.lane0,
            &self.lane1,
            &self.lane2,
            &self.lane3,
            &self.lane4,
            &self.lane5,
            &self.lane6,
            &self.lane7,
        ];
        let mut v = 0u64;
        for (l, s) in lanes.iter().enumerate() {
            v |= s.val().to_u64() << (8 * l);
        }
        self.entry.next = v.into();
    }
    fn connect(&mut self) {
        self.entry.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(
            "always @(*) entry = {lane7, lane6, lane5, lane4, lane3, lane2, lane1, lane0};".into(),
        )
    }
}
