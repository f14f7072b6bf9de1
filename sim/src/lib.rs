//! Cycle-accurate model of the engine and the Verilator harness.
