//! Per-direction TCP reassembly. (skeleton: the reassembly helper implements it.)
