//! TLS 1.3 client authentication from the sizes of the client's encrypted records.
//!
//! After ServerHello everything is encrypted, but record lengths are not. Each encrypted record
//! is `plaintext + 1 (inner content type) + tag`, and the client's flight is, in order:
//! `[Certificate [CertificateVerify]] Finished`, only when the server sent CertificateRequest.
//! With H the hash length and T the AEAD tag length (8 for CCM_8, else 16):
//!
//! | client flight                          | records (ciphertext lengths)             |
//! |----------------------------------------|------------------------------------------|
//! | Finished only (no CertificateRequest)   | `F = 4 + H + 1 + T` (53 SHA-256, 69 SHA-384) |
//! | empty Certificate, Finished             | `8 + 1 + T` (25), then F; or one record F + 8 |
//! | Certificate, CertificateVerify, Finished | hundreds of bytes before F, or one record >= F + MIN_CERT_FLIGHT |
//!
//! An empty Certificate is 4 (header) + 1 (empty request context) + 3 (empty list) = 8 bytes.
//! EndOfEarlyData is 4 bytes (record 4 + 1 + T) and only follows accepted 0-RTT data.
//!
//! Why MIN_CERT_FLIGHT = 200 plaintext bytes: the smallest real Certificate message carries
//! 13 bytes of framing plus one X.509 certificate; a hand-minimised Ed25519 certificate is
//! ~150 B and a usual one (with a SAN, like a SPIFFE id) ~300 B (this repo's fixture: 345 B).
//! The smallest CertificateVerify is Ed25519's 72 bytes (ECDSA P-256 ~79, RSA-2048 264).
//! So any real Certificate + CertificateVerify exceeds ~235 bytes, while an empty Certificate
//! (8) or EndOfEarlyData (4) stay far below: anything in between fits no rule and reads NoFit.
//!
//! What can mislead: record padding (RFC 8446 5.4) hides sizes. A padded Finished does not
//! equal F, so the separate-record rules fail safe (NoFit); the one-big-record rule could read
//! a heavily padded Finished as a certificate, so equal sizes in the first two records (the
//! mark of pad-to-a-bucket stacks) read NoFit. 0-RTT data before the flight is unbounded, so
//! with early data offered only an EndOfEarlyData-delimited flight is read.

use super::facts::{FlightReading, Tls13Flight};

/// Plaintext bytes before Finished that mean Certificate + CertificateVerify (see above).
pub const MIN_CERT_FLIGHT: u32 = 200;
/// Records examined; past this many without a decision the reading is NoFit.
pub const FLIGHT_RECORDS: usize = 8;
/// An empty TLS 1.3 Certificate message.
const EMPTY_CERT_MSG: u16 = 8;
/// An EndOfEarlyData message.
const EOED_MSG: u16 = 4;

/// Reads the client's type-23 record lengths (after its last ClientHello, compatibility
/// ChangeCipherSpec skipped). `fin` is F, `tag` the AEAD tag length.
pub fn read_flight(sizes: &[u16], fin: u16, tag: u16, early_data: bool) -> Tls13Flight {
    let r = &sizes[..sizes.len().min(FLIGHT_RECORDS)];
    let overhead = 1 + u32::from(tag);
    let plain = |x: u16| u32::from(x).saturating_sub(overhead);
    let empty_rec = EMPTY_CERT_MSG.saturating_add(tag.saturating_add(1));
    let eoed_rec = EOED_MSG.saturating_add(tag.saturating_add(1));
    let total = |n: usize| r[..n].iter().map(|&x| u32::from(x)).sum::<u32>();
    let flight = |reading, n: usize| Tls13Flight {
        reading,
        records: u8::try_from(n).unwrap_or(u8::MAX),
        bytes: total(n),
    };

    if let Some(k) = r.iter().position(|&x| x == fin) {
        let mut pre = &r[..k];
        if early_data {
            match pre.iter().position(|&x| x == eoed_rec) {
                Some(j) => pre = &pre[j + 1..],
                None if !pre.is_empty() => return flight(FlightReading::NoFit, k + 1),
                None => {}
            }
        }
        let reading = if pre.is_empty() {
            FlightReading::FinishedOnly
        } else if pre == [empty_rec] {
            FlightReading::EmptyCertificate
        } else {
            let bytes: u32 = pre.iter().map(|&x| plain(x)).sum();
            if bytes >= MIN_CERT_FLIGHT {
                FlightReading::Certificate { bytes }
            } else {
                FlightReading::NoFit
            }
        };
        return flight(reading, k + 1);
    }
    let undecided = |r: &[u16]| {
        if r.len() >= FLIGHT_RECORDS {
            flight(FlightReading::NoFit, 0)
        } else {
            Tls13Flight::default()
        }
    };
    let Some(&first) = r.first() else {
        return Tls13Flight::default();
    };
    // Below, the first record must hold the whole flight or at least the Certificate: early
    // data could be anything, and equal first sizes suggest padding.
    if early_data || (r.len() >= 2 && r[0] == r[1]) {
        return undecided(r);
    }
    if first == fin.saturating_add(EMPTY_CERT_MSG) {
        return flight(FlightReading::EmptyCertificate, 1);
    }
    if u32::from(first) >= u32::from(fin) + MIN_CERT_FLIGHT {
        let bytes = plain(first).saturating_sub(plain(fin));
        return flight(FlightReading::Certificate { bytes }, 1);
    }
    undecided(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlightReading::*;

    fn read(sizes: &[u16]) -> FlightReading {
        read_flight(sizes, 53, 16, false).reading
    }

    #[test]
    fn separate_records() {
        assert_eq!(read(&[53, 22, 19]), FinishedOnly);
        assert_eq!(read(&[25, 53, 22]), EmptyCertificate);
        assert_eq!(read(&[863, 95, 53, 22]), Certificate { bytes: 846 + 78 });
        assert_eq!(read_flight(&[863, 95, 53], 53, 16, false).records, 3);
        assert_eq!(read_flight(&[863, 95, 53], 53, 16, false).bytes, 1011);
    }

    #[test]
    fn coalesced_records() {
        assert_eq!(read(&[61]), EmptyCertificate);
        assert_eq!(read(&[53 + 300, 22]), Certificate { bytes: 300 });
        assert_eq!(read(&[53 + 150]), Pending);
    }

    #[test]
    fn ccm8_and_sha384() {
        assert_eq!(read_flight(&[17, 45], 45, 8, false).reading, EmptyCertificate);
        assert_eq!(
            read_flight(&[855, 88, 45], 45, 8, false).reading,
            Certificate { bytes: 846 + 79 }
        );
        assert_eq!(read_flight(&[25, 69], 69, 16, false).reading, EmptyCertificate);
    }

    #[test]
    fn sizes_that_fit_no_rule() {
        assert_eq!(read(&[100, 53]), NoFit); // 83 bytes: neither empty nor a certificate
                                             // Equal sizes look like padding: no single-record reading; a later Finished decides.
        assert_eq!(read(&[25, 25, 60]), Pending);
        assert_eq!(read(&[512, 512]), Pending);
        assert_eq!(read(&[512, 512, 53]), Certificate { bytes: 990 });
        assert_eq!(read(&[60; 8]), NoFit);
        assert_eq!(read(&[60; 7]), Pending);
        assert_eq!(read(&[]), Pending);
    }

    #[test]
    fn early_data() {
        let ed = |s: &[u16]| read_flight(s, 53, 16, true).reading;
        assert_eq!(ed(&[53]), FinishedOnly);
        assert_eq!(ed(&[100, 21, 53]), FinishedOnly); // 0-RTT record, EndOfEarlyData, Finished
        assert_eq!(ed(&[100, 21, 25, 53]), EmptyCertificate);
        assert_eq!(ed(&[400, 53]), NoFit); // 0-RTT data or a certificate: cannot tell
        assert_eq!(ed(&[400]), Pending);
    }
}
