//! Stage 3: the flow table, per-direction reassembly and timeouts.

pub mod reassembly;
