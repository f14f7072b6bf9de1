//! The quantised model and its oracle, with no floats in the arithmetic: the graph the
//! quantiser produces and the compiler lowers ([`ir`]), and the functional int8 forward
//! pass every engine backend is checked against ([`reference`]).

pub mod ir;
pub mod reference;

pub use ir::{QConv, QEwise, QModel, QOp, QPool, QTensorInfo, TensorId};
