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
        // Before 1970 reads as the epoch (capture clocks are never set that far back).
        let secs = self.0.secs().max(0);
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        // A Timestamp reaches only the year 2262: always four digits.
        put_civil(&mut out, secs);
        put_digits(&mut out[20..26], u64::from(self.0.subsec_nanos() / 1000));
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

/// RFC 3339 (seconds, UTC) for any second since the epoch, including before 1970 (certificate
/// dates), without building a `String`.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339Secs(pub i64);

impl std::fmt::Display for Rfc3339Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = *b"0000-00-00T00:00:00Z";
        if put_civil(&mut out, self.0) {
            return f.write_str(std::str::from_utf8(&out).unwrap_or_default());
        }
        // Years before 0 or after 9999 (a certificate may say anything).
        let (year, month, day, h, m, s) = civil_from_unix(self.0);
        write!(f, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// A second since the Unix epoch as the civil date and time (UTC): (year, month, day, hour,
/// minute, second). Howard Hinnant's `civil_from_days`, valid for any `i64` day count.
fn civil_from_unix(t: i64) -> (i64, u8, u8, u8, u8, u8) {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // All in range by construction: month 1-12, day 1-31, h < 24, m and s < 60.
    let small = |v: i64| v as u8;
    (year, small(month), small(day), small(rem / 3600), small(rem / 60 % 60), small(rem % 60))
}

/// Writes `YYYY-MM-DDTHH:MM:SS` of `t` into the first 19 bytes of `out`, when the year has four
/// digits; returns whether it did. By hand: `write!` with six padded numbers was 4% of a JSON
/// run's instructions.
fn put_civil(out: &mut [u8], t: i64) -> bool {
    let (year, month, day, h, m, s) = civil_from_unix(t);
    let Ok(year @ 0..=9999) = u64::try_from(year) else { return false };
    put_digits(&mut out[0..4], year);
    for (at, v) in [(5, month), (8, day), (11, h), (14, m), (17, s)] {
        put_digits(&mut out[at..at + 2], u64::from(v));
    }
    true
}

/// `v`'s last `out.len()` decimal digits, zero-padded, into `out`.
fn put_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
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

    /// Formatted by hand: the same text as humantime's, from the epoch to the last nanosecond
    /// a `Timestamp` holds; before the epoch it reads as the epoch.
    #[test]
    fn rfc3339_agrees_with_humantime() {
        let mut times: Vec<i64> = (0..i64::MAX - 999_999_999).step_by((1 << 47) + 12_345).collect();
        times.extend([0, 999, 1_000, 951_782_399_999_999_999, 951_782_400_000_000_001, i64::MAX]);
        for t in times {
            let ts = Timestamp(t);
            let time = std::time::UNIX_EPOCH
                + std::time::Duration::new(ts.secs() as u64, ts.subsec_nanos() / 1000 * 1000);
            let want = humantime::format_rfc3339_micros(time).to_string();
            assert_eq!(ts.rfc3339(), want, "nanosecond {t}");
        }
        assert_eq!(Timestamp(-1).rfc3339(), "1970-01-01T00:00:00.999999Z");
        assert_eq!(Timestamp(i64::MIN).rfc3339(), "1970-01-01T00:00:00.145224Z");
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
