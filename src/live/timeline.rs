//! A TLS flow's handshake as a timeline, for the terminal UI's detail pane: the handshake
//! messages read in the clear (and from a key log), the encrypted records with their direction
//! and size, and alerts, in packet-time order.
//!
//! It is read from the engine's [`TlsFacts`] before the verdict compacts them (compaction drops
//! the server's encrypted records), and only when the UI asks for it
//! ([`super::LiveConfig::timelines`]). Bounded: at most [`MAX_STEPS`] steps, built from lists
//! the analyzer already caps (32 messages, 16 records a direction, 8 alerts); the timeline is
//! owned by the UI's row and freed with it.

use crate::classify::tls::{
    Alert, ContentType, FlightReading, HandshakeMsg, HandshakeType, TlsFacts, Version,
};
use crate::classify::Classification;
use crate::flow::FlowRecord;
use crate::{Dir, Timestamp};

/// Most steps kept per flow; the rest are counted in [`Timeline::dropped`].
pub const MAX_STEPS: usize = 40;

/// What the wire showed of one TLS flow's handshake, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    pub steps: Vec<Step>,
    /// Steps (or handshake messages the analyzer did not keep) left out by the caps.
    pub dropped: usize,
    /// Payload bytes (client->server, server->client) the TLS reader did not see record by
    /// record: once the verdict is settled the engine stops reading a flow's records and
    /// only counts its bytes (application data, tickets, close_notify).
    pub unread: [u64; 2],
}

/// One thing seen, with when (nanoseconds after the flow's first packet) and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub at_ns: u64,
    pub dir: Option<Dir>,
    pub what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A handshake message read in the clear.
    Message(HandshakeMsg),
    /// A handshake message read from a record decrypted with the key log.
    Decrypted(HandshakeMsg),
    /// An encrypted record: its ciphertext length and what its place says it is.
    Record { len: u16, kind: RecordKind },
    /// An alert in the clear.
    Alert(Alert),
}

/// What an encrypted record is, as far as its place in the flow shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// TLS 1.3: one of the client's encrypted handshake records (Certificate, CertificateVerify,
    /// Finished), the ones the size inference reads.
    ClientFlight,
    /// TLS 1.3: a server record sent before the client's flight (EncryptedExtensions,
    /// CertificateRequest, Certificate, CertificateVerify, Finished).
    ServerFlight,
    /// TLS <= 1.2: the encrypted Finished after ChangeCipherSpec.
    Finished,
    /// Application data (TLS <= 1.2, or a TLS 1.3 client's records after its flight).
    AppData,
    /// Encrypted, and its place does not say more (TLS 1.3 server records after the client's
    /// flight: a NewSessionTicket or application data).
    Encrypted,
    /// An encrypted alert.
    Alert,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::ClientFlight => "encrypted handshake (client flight)",
            RecordKind::ServerFlight => "encrypted handshake (server flight)",
            RecordKind::Finished => "encrypted Finished",
            RecordKind::AppData => "application data",
            RecordKind::Encrypted => "encrypted (ticket or data)",
            RecordKind::Alert => "encrypted alert",
        }
    }
}

impl Step {
    /// "+1.204ms  S->C  Certificate(2 certs, 1002 B)".
    pub fn line(&self) -> String {
        let arrow = match self.dir {
            Some(Dir::ToServer) => "C->S",
            Some(Dir::ToClient) => "S->C",
            None => "    ",
        };
        let at = format!("+{}.{:03}ms", self.at_ns / 1_000_000, self.at_ns / 1_000 % 1_000);
        let what = match self.what {
            What::Message(m) => message(&m),
            What::Decrypted(m) => format!("{} (decrypted)", message(&m)),
            What::Record { len, kind } => format!("{} {len} B", kind.as_str()),
            What::Alert(a) => {
                let level = if a.level == 2 { "fatal" } else { "warning" };
                format!("alert {level} {}", a.description)
            }
        };
        format!("{at:>11}  {arrow}  {what}")
    }
}

/// "ServerHello 86 B", "Certificate(2 certs, 1002 B)", "Certificate(0 certs, 3 B)".
fn message(m: &HandshakeMsg) -> String {
    if m.certs.is_some() || m.skipped || m.retry {
        m.to_string()
    } else {
        format!("{m} {} B", m.len)
    }
}

impl Timeline {
    /// The timeline of a TLS flow (None for anything else). Call before the record is
    /// compacted: compaction drops the encrypted records past the client's flight.
    pub fn of(record: &FlowRecord) -> Option<Timeline> {
        let Classification::Tls { facts, preamble } = &record.classification else { return None };
        let mut t = Self::of_facts(facts, record.first_seen);
        // Bytes before a STARTTLS-style upgrade are not TLS: only count after a clean start.
        if preamble.is_none() {
            for dir in [Dir::ToServer, Dir::ToClient] {
                let d = facts.dir(dir);
                let seen = d.bytes + d.gap_bytes;
                t.unread[dir.index()] = record.dirs[dir.index()].payload_bytes.saturating_sub(seen);
            }
        }
        Some(t)
    }

    pub fn of_facts(f: &TlsFacts, start: Timestamp) -> Timeline {
        // (time, order within the same time, step): handshake messages first, as they were
        // seen, then decrypted ones, records and alerts.
        let mut all: Vec<(Timestamp, usize, Step)> = Vec::new();
        let step = |ts: Timestamp, dir: Option<Dir>, what: What| Step {
            at_ns: ts.since(start),
            dir,
            what,
        };
        for m in &f.messages {
            all.push((m.ts, all.len(), step(m.ts, m.dir, What::Message(*m))));
        }
        if let Some(d) = &f.decrypted {
            for m in &d.messages {
                all.push((m.ts, all.len(), step(m.ts, m.dir, What::Decrypted(*m))));
            }
        }
        let tls13 = f.version() == Some(Version::TLS13);
        let flight = f.tls13_client_flight.filter(|fl| fl.reading != FlightReading::Pending);
        let flight_records = flight.map_or(0, |fl| usize::from(fl.records));
        let client_flight_start = f.client.encrypted_records.first().map(|r| r.offset);
        for dir in [Dir::ToServer, Dir::ToClient] {
            let mut finished_seen = false;
            for (i, r) in f.dir(dir).encrypted_records.iter().enumerate() {
                let kind = match r.content_type {
                    ContentType::ALERT => RecordKind::Alert,
                    ContentType::HANDSHAKE if !tls13 && !finished_seen => {
                        finished_seen = true;
                        RecordKind::Finished
                    }
                    _ if !tls13 => RecordKind::AppData,
                    _ if dir == Dir::ToServer && i < flight_records => RecordKind::ClientFlight,
                    _ if dir == Dir::ToServer && flight.is_some() => RecordKind::AppData,
                    _ if dir == Dir::ToServer => RecordKind::Encrypted,
                    // A server record finished before the client's flight began is part of
                    // the server's own flight.
                    _ if client_flight_start.is_none_or(|o| r.peer_bytes <= o) => {
                        RecordKind::ServerFlight
                    }
                    _ => RecordKind::Encrypted,
                };
                let what = What::Record { len: r.len, kind };
                all.push((r.ts, all.len(), step(r.ts, Some(dir), what)));
            }
        }
        for a in &f.alerts {
            all.push((a.ts, all.len(), step(a.ts, a.dir, What::Alert(*a))));
        }
        all.sort_by_key(|(ts, order, _)| (*ts, *order));
        let dropped = all.len().saturating_sub(MAX_STEPS) + f.messages_dropped as usize;
        let steps = all.into_iter().take(MAX_STEPS).map(|(_, _, s)| s).collect();
        Timeline { steps, dropped, unread: [0, 0] }
    }

    /// The client's Certificate message, when one was read (in the clear or decrypted):
    /// "2 certs", "empty". None when none was seen: not sent, or encrypted (TLS 1.3 without a
    /// key log; the evidence sentence says what the record sizes showed).
    pub fn client_certificate(&self) -> Option<String> {
        self.steps.iter().find_map(|s| match s.what {
            What::Message(m) | What::Decrypted(m)
                if s.dir == Some(Dir::ToServer) && m.kind == HandshakeType::CERTIFICATE =>
            {
                Some(match m.certs {
                    Some(c) if c.count == 0 => "empty".to_string(),
                    Some(c) => format!("{} cert{}", c.count, if c.count == 1 { "" } else { "s" }),
                    None => format!("{} B, not parsed", m.len),
                })
            }
            _ => None,
        })
    }

    /// "later  then 72 B C->S and 106 B S->C, counted, not read record by record (...)".
    pub fn unread_line(&self) -> Option<String> {
        let [c, s] = self.unread;
        (c + s > 0).then(|| {
            format!(
                "{:>11}  then {c} B C->S and {s} B S->C, counted, not read record by record \
                 (the verdict was settled)",
                "later"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tls::{CertSummary, EncRecord, Tls13Flight};

    fn msg(dir: Dir, kind: u8, len: u32, ts: i64) -> HandshakeMsg {
        HandshakeMsg {
            dir: Some(dir),
            kind: HandshakeType(kind),
            len,
            ts: Timestamp(ts),
            ..HandshakeMsg::default()
        }
    }

    fn rec(ctype: u8, len: u16, ts: i64, offset: u64, peer_bytes: u64) -> EncRecord {
        EncRecord { content_type: ContentType(ctype), len, ts: Timestamp(ts), offset, peer_bytes }
    }

    #[test]
    fn tls13_records_are_placed_by_the_flight_and_ordered_by_time() {
        let mut f = TlsFacts::default();
        f.messages.push(msg(Dir::ToServer, 1, 508, 0));
        f.messages.push(msg(Dir::ToClient, 2, 118, 1_000_000));
        f.server_hello = Some(crate::classify::tls::ServerHelloFacts {
            version: Version::TLS13,
            ..Default::default()
        });
        // Server flight (before the client's first encrypted record at offset 600), then a
        // ticket after it.
        f.server.encrypted_records =
            vec![rec(23, 2400, 1_100_000, 130, 514), rec(23, 250, 3_000_000, 3000, 1900)];
        f.client.encrypted_records = vec![
            rec(23, 1177, 2_000_000, 600, 2600),
            rec(23, 53, 2_000_000, 1782, 2600),
            rec(23, 90, 4_000_000, 1840, 2900),
        ];
        f.tls13_client_flight = Some(Tls13Flight {
            reading: FlightReading::Certificate { bytes: 1100 },
            records: 2,
            bytes: 1230,
        });
        let t = Timeline::of_facts(&f, Timestamp(0));
        let lines: Vec<String> = t.steps.iter().map(Step::line).collect();
        assert_eq!(
            lines,
            [
                "   +0.000ms  C->S  ClientHello 508 B",
                "   +1.000ms  S->C  ServerHello 118 B",
                "   +1.100ms  S->C  encrypted handshake (server flight) 2400 B",
                "   +2.000ms  C->S  encrypted handshake (client flight) 1177 B",
                "   +2.000ms  C->S  encrypted handshake (client flight) 53 B",
                "   +3.000ms  S->C  encrypted (ticket or data) 250 B",
                "   +4.000ms  C->S  application data 90 B",
            ]
        );
        assert_eq!(t.client_certificate(), None, "encrypted: the evidence says what sizes show");
        assert_eq!(t.unread_line(), None);
        assert_eq!(t.dropped, 0);
    }

    #[test]
    fn tls12_shows_the_client_certificate_and_the_encrypted_finished() {
        let mut f = TlsFacts {
            server_hello: Some(crate::classify::tls::ServerHelloFacts {
                version: Version::TLS12,
                ..Default::default()
            }),
            ..TlsFacts::default()
        };
        f.messages.push(msg(Dir::ToServer, 1, 200, 0));
        let mut cert = msg(Dir::ToServer, 11, 1002, 5_000);
        cert.certs = Some(CertSummary { count: 2, bytes: 1002 });
        f.messages.push(cert);
        f.client.encrypted_records = vec![rec(22, 40, 6_000, 0, 0), rec(23, 60, 9_000, 0, 0)];
        let t = Timeline::of_facts(&f, Timestamp(0));
        let lines: Vec<String> = t.steps.iter().map(Step::line).collect();
        assert_eq!(lines[1], "   +0.005ms  C->S  Certificate(2 certs, 1002 B)");
        assert_eq!(lines[2], "   +0.006ms  C->S  encrypted Finished 40 B");
        assert_eq!(lines[3], "   +0.009ms  C->S  application data 60 B");
        assert_eq!(t.client_certificate().as_deref(), Some("2 certs"));
    }

    #[test]
    fn the_timeline_is_bounded() {
        let mut f = TlsFacts::default();
        for i in 0..32 {
            f.messages.push(msg(Dir::ToServer, 1, 1, i));
        }
        f.messages_dropped = 3;
        f.client.encrypted_records = (0..16).map(|i| rec(23, 1, 100 + i, 0, 0)).collect();
        let t = Timeline::of_facts(&f, Timestamp(0));
        assert_eq!(t.steps.len(), MAX_STEPS);
        assert_eq!(t.dropped, 32 + 16 - MAX_STEPS + 3);
    }
}
