//! Small types shared by every stage.

use std::fmt;

/// Packet time in nanoseconds since the Unix epoch. Flow expiry and reassembly are driven by
/// packet time, never by the wall clock, so a replay is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(secs.saturating_mul(Self::NANOS_PER_SEC).saturating_add(i64::from(nanos)))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// Nanoseconds elapsed since `earlier` (zero if time went backwards).
    pub fn since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// RFC 3339 in UTC with microsecond precision, e.g. `2024-05-01T10:00:00.123456Z`.
    pub fn rfc3339(self) -> String {
        Rfc3339(self).to_string()
    }
}

/// A timestamp shown as [`Timestamp::rfc3339`] shows it, without building the `String`.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub Timestamp);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = u64::try_from(self.0.secs()).unwrap_or(0);
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::new(secs, self.0.subsec_nanos() / 1000 * 1000);
        std::fmt::Display::fmt(&humantime::format_rfc3339_micros(t), f)
    }
}

/// Direction of a segment or byte stream within a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client (the SYN sender, or the inferred initiator) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Dir {
    pub fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }

    pub fn flip(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }

    pub fn sender(self) -> &'static str {
        match self {
            Dir::ToServer => "client",
            Dir::ToClient => "server",
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dir::ToServer => "client->server",
            Dir::ToClient => "server->client",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_formats_rfc3339_micros() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.subsec_nanos(), 123_456_789);
    }

    #[test]
    fn since_saturates_when_time_goes_backwards() {
        let a = Timestamp(10);
        let b = Timestamp(4);
        assert_eq!(a.since(b), 6);
        assert_eq!(b.since(a), 0);
    }
}

/// Lower-case hex of `bytes`, without a `format!` per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::hex(&[]), "");
    }
}
