//! TLS key logs in the NSS format (`SSLKEYLOGFILE`, `openssl s_client -keylogfile`, the pcapng
//! Decryption Secrets Block): `LABEL <client random, hex> <secret, hex>` per line.
//!
//! One [`KeyLog`] serves a whole run: `--keylog` files are read before the captures, and a
//! capture's Decryption Secrets Blocks are added as they are read, so it is shared as
//! `Arc<KeyLog>` with interior locking (lookups happen once per TLS 1.3 flow direction).
//! Comments, blank lines and unknown labels are ignored; malformed lines are counted, never fatal.

use rustc_hash::FxHashMap;
use std::sync::RwLock;

/// The secrets logged for one client random (TLS 1.3 labels; CLIENT_RANDOM for TLS <= 1.2).
/// `Debug` says which secrets are present, never their bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    pub client_traffic_0: Option<Vec<u8>>,
    pub server_traffic_0: Option<Vec<u8>>,
    pub client_early: Option<Vec<u8>>,
    /// TLS <= 1.2 master secret (kept for completeness; not used for decryption).
    pub master: Option<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has = |s: &Option<Vec<u8>>| if s.is_some() { "<secret>" } else { "-" };
        f.debug_struct("Secrets")
            .field("client_handshake", &has(&self.client_handshake))
            .field("server_handshake", &has(&self.server_handshake))
            .field("client_traffic_0", &has(&self.client_traffic_0))
            .field("server_traffic_0", &has(&self.server_traffic_0))
            .field("client_early", &has(&self.client_early))
            .field("master", &has(&self.master))
            .finish()
    }
}

/// Counts of what was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Lines with a known label that were stored.
    pub entries: u64,
    /// Lines that could not be read (wrong field count, bad hex, wrong lengths).
    pub malformed: u64,
    /// Lines with a label this tool does not use.
    pub unknown_labels: u64,
    /// Distinct client randoms with at least one secret.
    pub client_randoms: u64,
}

impl KeyLogStats {
    fn add(&mut self, o: KeyLogStats) {
        self.entries += o.entries;
        self.malformed += o.malformed;
        self.unknown_labels += o.unknown_labels;
    }
}

#[derive(Default)]
struct Inner {
    map: FxHashMap<[u8; 32], Secrets>,
    stats: KeyLogStats,
}

/// A key log: client random -> secrets. Read, never echoed: `Debug` shows only the counts.
#[derive(Default)]
pub struct KeyLog {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLog").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// How one line reads.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Skip,
    Unknown,
    Malformed,
    Entry(Label, [u8; 32], Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    ClientHandshake,
    ServerHandshake,
    ClientTraffic0,
    ServerTraffic0,
    ClientEarly,
    Master,
    /// Known but not needed (exporter secrets).
    Ignored,
}

fn label(s: &str) -> Option<Label> {
    Some(match s {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshake,
        "CLIENT_TRAFFIC_SECRET_0" => Label::ClientTraffic0,
        "SERVER_TRAFFIC_SECRET_0" => Label::ServerTraffic0,
        "CLIENT_EARLY_TRAFFIC_SECRET" => Label::ClientEarly,
        "CLIENT_RANDOM" => Label::Master,
        "EXPORTER_SECRET" | "EARLY_EXPORTER_SECRET" => Label::Ignored,
        _ => return None,
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn parse_line(line: &[u8]) -> Line {
    let Ok(line) = std::str::from_utf8(line) else {
        return Line::Malformed;
    };
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Skip;
    }
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(label) = label(fields[0]) else {
        return Line::Unknown;
    };
    if fields.len() != 3 {
        return Line::Malformed;
    }
    let (Some(random), Some(secret)) = (hex(fields[1]), hex(fields[2])) else {
        return Line::Malformed;
    };
    let Ok(random) = <[u8; 32]>::try_from(random) else {
        return Line::Malformed;
    };
    // TLS 1.3 secrets are a hash output (SHA-256 or SHA-384); a master secret is 48 bytes.
    let ok = match label {
        Label::Master => secret.len() == 48,
        _ => matches!(secret.len(), 32 | 48),
    };
    if !ok {
        return Line::Malformed;
    }
    Line::Entry(label, random, secret)
}

impl KeyLog {
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Reads key-log text and adds its secrets; returns the counts of this text alone.
    pub fn add(&self, text: &[u8]) -> KeyLogStats {
        let mut st = KeyLogStats::default();
        let mut lines: Vec<(Label, [u8; 32], Vec<u8>)> = Vec::new();
        for line in text.split(|&b| b == b'\n') {
            match parse_line(line) {
                Line::Skip => {}
                Line::Unknown => st.unknown_labels += 1,
                Line::Malformed => st.malformed += 1,
                Line::Entry(Label::Ignored, _, _) => st.entries += 1,
                Line::Entry(l, r, s) => {
                    st.entries += 1;
                    lines.push((l, r, s));
                }
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for (l, random, secret) in lines {
            let e = inner.map.entry(random).or_default();
            let slot = match l {
                Label::ClientHandshake => &mut e.client_handshake,
                Label::ServerHandshake => &mut e.server_handshake,
                Label::ClientTraffic0 => &mut e.client_traffic_0,
                Label::ServerTraffic0 => &mut e.server_traffic_0,
                Label::ClientEarly => &mut e.client_early,
                Label::Master | Label::Ignored => &mut e.master,
            };
            *slot = Some(secret);
        }
        inner.stats.add(st);
        inner.stats.client_randoms = inner.map.len() as u64;
        st
    }

    /// The secrets logged for a client random.
    pub fn lookup(&self, client_random: &[u8; 32]) -> Option<Secrets> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.map.get(client_random).cloned()
    }

    /// Counts over everything added so far.
    pub fn stats(&self) -> KeyLogStats {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).stats
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

    #[test]
    fn debug_never_shows_a_secret() {
        let log = KeyLog::new();
        let r = "a5".repeat(32);
        log.add(format!("CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\n", "c3".repeat(32)).as_bytes());
        let shown = format!("{log:?} {:?}", log.lookup(&[0xa5; 32]));
        assert!(shown.contains("entries: 1") && shown.contains("<secret>"), "{shown}");
        assert!(!shown.contains("c3c3") && !shown.contains("195, 195"), "{shown}");
    }

    #[test]
    fn reads_labels_and_ignores_the_rest() {
        let secret = "11".repeat(32);
        let text = format!(
            "# comment\r\n\nSERVER_HANDSHAKE_TRAFFIC_SECRET {R} {secret}\r\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R} {secret}\nECH_SECRET {R} {secret}\n\
             EXPORTER_SECRET {R} {secret}\nCLIENT_TRAFFIC_SECRET_0 {R} zz\n\
             SERVER_TRAFFIC_SECRET_0 {R}\nCLIENT_RANDOM 00 {secret}\n"
        );
        let log = KeyLog::new();
        let st = log.add(text.as_bytes());
        assert_eq!((st.entries, st.malformed, st.unknown_labels), (3, 3, 1));
        let random: [u8; 32] = hex(R).and_then(|v| v.try_into().ok()).expect("random");
        let s = log.lookup(&random).expect("found");
        assert_eq!(s.server_handshake, Some(vec![0x11; 32]));
        assert_eq!(s.client_handshake, Some(vec![0x11; 32]));
        assert_eq!(s.client_traffic_0, None);
        assert_eq!(log.stats().client_randoms, 1);
        assert!(log.lookup(&[0; 32]).is_none());
    }

    #[test]
    fn later_text_is_merged() {
        let log = KeyLog::new();
        let random = [0xa5; 32];
        let r = "a5".repeat(32);
        log.add(format!("SERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\n", "22".repeat(48)).as_bytes());
        log.add(format!("SERVER_TRAFFIC_SECRET_0 {r} {}", "33".repeat(48)).as_bytes());
        let s = log.lookup(&random).expect("found");
        assert_eq!(s.server_handshake.map(|v| v.len()), Some(48));
        assert_eq!(s.server_traffic_0.map(|v| v.len()), Some(48));
        assert_eq!(log.stats().entries, 2);
    }

    #[test]
    fn garbage_never_panics() {
        let log = KeyLog::new();
        let st = log.add(b"\xff\xfe CLIENT_RANDOM \n\x00\x01\nCLIENT_RANDOM\n   \n");
        assert_eq!(st.malformed, 2);
        assert!(log.is_empty());
    }
}
