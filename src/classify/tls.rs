//! TLS record and handshake analysis. (skeleton: the TLS helper implements it.)
