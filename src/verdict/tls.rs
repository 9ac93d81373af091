//! TLS facts -> verdict. (skeleton: the TLS helper implements `judge`.)
