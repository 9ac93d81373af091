//! What the TLS analyzer learned about one flow: plain data for the verdict, the JSON and the
//! table. Nothing here holds application payload; certificate DER and ticket prefixes are
//! handshake metadata, bounded by the caps below.

use std::fmt;
use std::sync::Arc;

use crate::common::{Dir, Timestamp};

/// Most handshake messages listed (both directions together).
pub const MAX_MESSAGES: usize = 32;
/// Most cleartext alerts kept.
pub const MAX_ALERTS: usize = 8;
/// Most encrypted record sizes kept per direction (the TLS 1.3 evidence).
pub const MAX_ENCRYPTED_RECORDS: usize = 16;
/// Most certificates kept per chain, and most DER bytes per chain.
pub const MAX_CERTS: usize = 10;
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Most entries kept in each ClientHello list (the wire allows ~32k ciphers); counts stay exact.
pub const MAX_LIST: usize = 512;

/// A protocol version as on the wire (open: unknown values are kept, not rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u16);

impl Version {
    pub const SSL3: Version = Version(0x0300);
    pub const TLS10: Version = Version(0x0301);
    pub const TLS11: Version = Version(0x0302);
    pub const TLS12: Version = Version(0x0303);
    pub const TLS13: Version = Version(0x0304);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0200 => "SSL 2.0",
            0x0300 => "SSL 3.0",
            0x0301 => "TLS 1.0",
            0x0302 => "TLS 1.1",
            0x0303 => "TLS 1.2",
            0x0304 => "TLS 1.3",
            _ => return None,
        })
    }

    /// SSL 3.0, TLS 1.0 and TLS 1.1 are deprecated (RFC 8996).
    pub fn is_legacy(self) -> bool {
        self.0 < 0x0303
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

/// A handshake message type (open newtype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HandshakeType(pub u8);

impl HandshakeType {
    pub const CLIENT_HELLO: HandshakeType = HandshakeType(1);
    pub const SERVER_HELLO: HandshakeType = HandshakeType(2);
    pub const NEW_SESSION_TICKET: HandshakeType = HandshakeType(4);
    pub const CERTIFICATE: HandshakeType = HandshakeType(11);
    pub const SERVER_KEY_EXCHANGE: HandshakeType = HandshakeType(12);
    pub const CERTIFICATE_REQUEST: HandshakeType = HandshakeType(13);
    pub const SERVER_HELLO_DONE: HandshakeType = HandshakeType(14);
    pub const CERTIFICATE_VERIFY: HandshakeType = HandshakeType(15);
    pub const CLIENT_KEY_EXCHANGE: HandshakeType = HandshakeType(16);
    pub const FINISHED: HandshakeType = HandshakeType(20);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "HelloRequest",
            1 => "ClientHello",
            2 => "ServerHello",
            3 => "HelloVerifyRequest",
            4 => "NewSessionTicket",
            5 => "EndOfEarlyData",
            8 => "EncryptedExtensions",
            11 => "Certificate",
            12 => "ServerKeyExchange",
            13 => "CertificateRequest",
            14 => "ServerHelloDone",
            15 => "CertificateVerify",
            16 => "ClientKeyExchange",
            20 => "Finished",
            21 => "CertificateURL",
            22 => "CertificateStatus",
            23 => "SupplementalData",
            24 => "KeyUpdate",
            67 => "NextProtocol",
            _ => return None,
        })
    }
}

impl fmt::Display for HandshakeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "HandshakeType({})", self.0),
        }
    }
}

/// Record content types (open newtype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContentType(pub u8);

impl ContentType {
    pub const CHANGE_CIPHER_SPEC: ContentType = ContentType(20);
    pub const ALERT: ContentType = ContentType(21);
    pub const HANDSHAKE: ContentType = ContentType(22);
    pub const APPLICATION_DATA: ContentType = ContentType(23);
    pub const HEARTBEAT: ContentType = ContentType(24);
}

/// An alert description (open newtype); names from the IANA registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "ech_required",
            _ => return None,
        })
    }
}

impl fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name().unwrap_or("unknown"), self.0)
    }
}

/// An alert seen in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Alert {
    pub dir: Option<Dir>,
    /// 1 warning, 2 fatal (kept as sent).
    pub level: u8,
    pub description: AlertDescription,
    pub ts: Timestamp,
}

impl Alert {
    /// RFC 8446 6: every alert but close_notify and user_canceled ends the connection, whatever
    /// its level; TLS <= 1.2 also sends no_renegotiation and SSL 3's no_certificate as warnings.
    pub fn is_fatal(&self) -> bool {
        self.level == 2 || !matches!(self.description.0, 0 | 41 | 90 | 100)
    }
}

/// Detail kept for a certificate-carrying message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CertSummary {
    pub count: u32,
    pub bytes: u32,
}

/// One handshake message seen in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HandshakeMsg {
    pub dir: Option<Dir>,
    pub kind: HandshakeType,
    /// Body length from the message header.
    pub len: u32,
    pub ts: Timestamp,
    /// Set for Certificate messages that could be parsed.
    pub certs: Option<CertSummary>,
    /// Too big for the buffer cap: counted and skipped, not parsed.
    pub skipped: bool,
    /// A ServerHello that is a HelloRetryRequest.
    pub retry: bool,
}

impl fmt::Display for HandshakeMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.retry {
            return f.write_str("HelloRetryRequest");
        }
        write!(f, "{}", self.kind)?;
        match self.certs {
            Some(c) if self.kind == HandshakeType::CERTIFICATE => {
                let s = if c.count == 1 { "" } else { "s" };
                write!(f, "({} cert{s}, {} B)", c.count, c.bytes)
            }
            _ if self.skipped => write!(f, "({} B, not parsed)", self.len),
            _ => Ok(()),
        }
    }
}

/// A certificate chain seen in the clear (TLS <= 1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertChain {
    /// Certificate message body length.
    pub message_len: u32,
    /// Certificates in the message (0 = an empty list), when it was parsed.
    pub count: u32,
    /// Whether the body was parsed (false when over the buffer cap: only the length is known).
    pub parsed: bool,
    /// The list did not match its length fields.
    pub malformed: bool,
    /// DER of the first certificates, at most MAX_CERTS / MAX_CERT_BYTES, shared by the flows
    /// that sent the same certificate (see [`crate::classify::tls::intern_cert`]).
    pub der: Vec<Arc<[u8]>>,
    /// Some certificates were not kept because of those caps.
    pub der_truncated: bool,
}

impl CertChain {
    /// An empty certificate_list: the 3-byte zero length and nothing else.
    pub fn is_empty(&self) -> bool {
        if self.parsed {
            self.count == 0 && !self.malformed
        } else {
            self.message_len <= 3
        }
    }

    pub fn summary(&self) -> CertSummary {
        CertSummary { count: self.count, bytes: self.message_len }
    }
}

/// The ClientHello (the first one when a HelloRetryRequest made the client send two).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHelloFacts {
    /// Handshake body length.
    pub len: u32,
    /// Sent in the SSL 2.0-compatible format.
    pub sslv2_format: bool,
    pub legacy_version: Version,
    /// supported_versions, in order (GREASE kept).
    pub supported_versions: Vec<Version>,
    /// server_name, with non-printable bytes escaped (see `escape`).
    pub sni: Option<String>,
    /// ALPN protocols in order, escaped the same way.
    pub alpn: Vec<String>,
    pub cipher_suites_count: u32,
    /// Cipher suites in order (first MAX_LIST).
    pub cipher_suites: Vec<u16>,
    /// Extension types in order (first MAX_LIST).
    pub extensions: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
    pub supported_groups: Vec<u16>,
    pub ec_point_formats: Vec<u8>,
    pub compression_methods: Vec<u8>,
    pub session_id: Vec<u8>,
    /// session_ticket extension: its length (0 = asks for a new ticket, >0 = offers one).
    pub session_ticket: Option<u32>,
    /// FNV-1a 64 of an offered ticket, to match a NewSessionTicket seen earlier.
    pub session_ticket_hash: Option<u64>,
    pub pre_shared_key: bool,
    pub psk_key_exchange_modes: Vec<u8>,
    pub early_data: bool,
    pub key_share_groups: Vec<u16>,
    pub post_handshake_auth: bool,
    /// The 32-byte client random: the key log's index.
    pub random: Option<[u8; 32]>,
    /// TLS 1.3 pre_shared_key identities offered, as FNV-1a 64 hashes of the identity bytes
    /// (the ticket a NewSessionTicket carried), to link PSK resumption to its origin.
    pub psk_identities: Vec<u64>,
    /// The body could not be fully parsed; what was read is kept.
    pub malformed: bool,
}

impl ClientHelloFacts {
    pub fn offers(&self, v: Version) -> bool {
        self.supported_versions.contains(&v)
    }
}

/// The ServerHello (the real one, after any HelloRetryRequest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerHelloFacts {
    pub legacy_version: Version,
    /// Negotiated: supported_versions when present (TLS 1.3), else the legacy field.
    pub version: Version,
    pub cipher_suite: u16,
    /// IANA name from tls-parser's table.
    pub cipher_name: Option<&'static str>,
    /// Cipher suite with NULL encryption (no confidentiality).
    pub null_cipher: bool,
    /// Anonymous key exchange (the server is not authenticated either).
    pub anonymous: bool,
    /// Pre-shared-key suite of TLS <= 1.2 (authenticated by a shared key, no certificates).
    pub psk_suite: bool,
    pub compression: u8,
    pub session_id: Vec<u8>,
    /// The client's non-empty session id came back: TLS <= 1.2 resumption by id.
    pub session_id_echoed: bool,
    /// ALPN selected in the clear (TLS <= 1.2; TLS 1.3 sends it encrypted).
    pub alpn: Option<String>,
    /// TLS 1.3 pre_shared_key in ServerHello: PSK resumption accepted.
    pub psk_accepted: bool,
    pub key_share_group: Option<u16>,
    /// session_ticket extension present: a NewSessionTicket will follow (TLS <= 1.2).
    pub session_ticket: bool,
    pub extensions: Vec<u16>,
    pub malformed: bool,
}

/// A HelloRetryRequest (TLS 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloRetryFacts {
    pub cipher_suite: u16,
    pub selected_group: Option<u16>,
}

/// A TLS <= 1.2 CertificateRequest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertRequestFacts {
    /// ClientCertificateType values (1 rsa_sign, 64 ecdsa_sign, ...).
    pub cert_types: Vec<u8>,
    pub ca_names: u32,
}

/// A TLS <= 1.2 NewSessionTicket (RFC 5077).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketFacts {
    pub lifetime_hint: u32,
    pub len: u32,
    /// FNV-1a 64 of the ticket, to link a later ClientHello that offers it.
    pub hash: u64,
}

/// How a TLS 1.3 client's encrypted records read against the size rules (see `flight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlightReading {
    /// Not enough records yet.
    #[default]
    Pending,
    /// One record of exactly the Finished size: no Certificate was sent (none requested).
    FinishedOnly,
    /// An empty Certificate, then Finished (separate or in one record).
    EmptyCertificate,
    /// Handshake bytes beyond a Finished large enough to hold Certificate + CertificateVerify.
    Certificate {
        /// Plaintext handshake bytes before the Finished (Certificate + CertificateVerify).
        bytes: u32,
    },
    /// Sizes fit no rule (padding, 0-RTT data, an unknown stack).
    NoFit,
}

/// The result of the size rules with the records they used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tls13Flight {
    pub reading: FlightReading,
    /// How many of the client's encrypted records make up the flight (0 when undecided).
    pub records: u8,
    /// Total ciphertext bytes of those records.
    pub bytes: u32,
}

/// One record after a direction's handshake went dark (or any record mid-stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncRecord {
    pub content_type: ContentType,
    /// Record body length (ciphertext).
    pub len: u16,
    pub ts: Timestamp,
    /// Offset of the record header in this direction's stream.
    pub offset: u64,
    /// Bytes the other direction had delivered when this record completed: orders records
    /// across directions without trusting equal timestamps.
    pub peer_bytes: u64,
}

/// Records seen, by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordCounts {
    pub change_cipher_spec: u64,
    pub alert: u64,
    pub handshake: u64,
    pub application_data: u64,
    pub heartbeat: u64,
    pub sslv2: u64,
}

impl RecordCounts {
    pub fn total(&self) -> u64 {
        self.change_cipher_spec
            + self.alert
            + self.handshake
            + self.application_data
            + self.heartbeat
            + self.sslv2
    }
}

/// Why a direction stopped being read as TLS records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    BadContentType(u8),
    BadVersion(u16),
    RecordTooLong(u16),
    /// A non-handshake record arrived inside a fragmented handshake message.
    InterleavedHandshake,
    /// A gap hid a record boundary: counting stopped.
    LostSync,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::BadContentType(t) => write!(f, "record content type {t} is not TLS"),
            StreamError::BadVersion(v) => write!(f, "record version 0x{v:04x} is not TLS"),
            StreamError::RecordTooLong(l) => write!(f, "record length {l} is over 2^14+2048"),
            StreamError::InterleavedHandshake => {
                f.write_str("another record arrived inside a fragmented handshake message")
            }
            StreamError::LostSync => f.write_str("a capture gap hid a record boundary"),
        }
    }
}

/// How a direction's stream began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamStart {
    #[default]
    Nothing,
    /// The expected hello (ClientHello from the client, ServerHello from the server).
    Hello,
    /// Application data, CCS or an encrypted record first: the handshake was not captured.
    MidStream,
    /// A handshake message other than the expected hello came first (capture began inside
    /// the handshake, or the flow's client/server roles are swapped).
    UnexpectedHandshake(HandshakeType),
}

/// Facts about one direction's stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirFacts {
    /// Stream bytes fed (lost bytes excluded).
    pub bytes: u64,
    pub records: RecordCounts,
    pub first_record: Option<Timestamp>,
    pub last_record: Option<Timestamp>,
    /// Version field of the first record header (only a hint: TLS 1.3 writes 0x0303).
    pub first_record_version: Option<Version>,
    pub start: StreamStart,
    pub change_cipher_spec: bool,
    /// Records after the handshake went dark in this direction, first MAX_ENCRYPTED_RECORDS.
    /// For the client in TLS 1.3: type-23 records after its last ClientHello.
    pub encrypted_records: Vec<EncRecord>,
    /// Bytes lost to capture gaps.
    pub gap_bytes: u64,
    /// A gap hit while the handshake was still in the clear: later messages were not parsed.
    pub gap_in_handshake: bool,
    /// The buffer cap was hit: a message was skipped unparsed.
    pub buffer_capped: bool,
    /// Reading stopped here (not TLS, or a gap hid a record boundary).
    pub error: Option<StreamError>,
    pub error_offset: Option<u64>,
    /// Handshake message in progress when the bytes ran out: type, bytes held, body length.
    pub partial_message: Option<(HandshakeType, u32, u32)>,
}

/// Something an operator should know; rendered by the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsNote {
    HelloRetry,
    Sslv2ClientHello,
    /// The flow's first direction started with a ServerHello (roles look swapped).
    RolesSwapped,
}

/// Everything the analyzer learned about a flow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFacts {
    /// client->server stream.
    pub client: DirFacts,
    /// server->client stream.
    pub server: DirFacts,
    /// Handshake messages in the clear, both directions, in the order seen (first MAX_MESSAGES).
    pub messages: Vec<HandshakeMsg>,
    pub messages_dropped: u32,
    /// Alerts in the clear (first MAX_ALERTS).
    pub alerts: Vec<Alert>,
    pub client_hello: Option<ClientHelloFacts>,
    pub client_hellos: u8,
    pub hello_retry: Option<HelloRetryFacts>,
    pub server_hello: Option<ServerHelloFacts>,
    pub server_certs: Option<CertChain>,
    pub server_key_exchange: bool,
    pub certificate_request: Option<CertRequestFacts>,
    pub server_hello_done: bool,
    pub client_certs: Option<CertChain>,
    pub client_key_exchange: bool,
    /// The client's CertificateVerify (TLS <= 1.2: proof it holds the certificate's key).
    pub certificate_verify: bool,
    pub session_ticket: Option<TicketFacts>,
    /// TLS <= 1.2 abbreviated handshake: the server sent ChangeCipherSpec right after
    /// ServerHello (session id or ticket resumption), so no certificates were exchanged.
    pub abbreviated: bool,
    /// TLS 1.3: ciphertext length of a record holding only Finished
    /// (4 + hash length + 1 + AEAD tag length).
    pub finished_record_len: Option<u16>,
    /// TLS 1.3 AEAD tag length of the negotiated suite.
    pub aead_tag_len: Option<u16>,
    /// TLS 1.3: the client's encrypted flight read against the size rules.
    pub tls13_client_flight: Option<Tls13Flight>,
    pub notes: Vec<TlsNote>,
    /// TLS 1.3 handshake read with keys from a key log (None: no keys for this flow).
    pub decrypted: Option<DecryptedHandshake>,
}

/// What decrypting a TLS 1.3 handshake with key-log secrets showed. Application data is
/// never decrypted; post-handshake records of the server are opened only to find
/// NewSessionTicket messages and are dropped unread otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecryptedHandshake {
    /// Handshake messages read from the decrypted records, both directions, in order.
    pub messages: Vec<HandshakeMsg>,
    /// The server's EncryptedExtensions selected this ALPN protocol.
    pub alpn: Option<String>,
    /// The server sent a CertificateRequest.
    pub certificate_request: bool,
    pub server_certs: Option<CertChain>,
    /// The client's Certificate message (present but empty: `count == 0`).
    pub client_certs: Option<CertChain>,
    /// The client sent CertificateVerify (proof it holds the certificate's key).
    pub client_certificate_verify: bool,
    /// Both Finished messages were decrypted: the handshake is complete.
    pub server_finished: bool,
    pub client_finished: bool,
    /// TLS 1.3 NewSessionTickets (hash of the ticket bytes, to link PSK resumption).
    pub tickets: Vec<TicketFacts>,
    /// Why decryption stopped early (wrong key, unsupported suite, gap), if it did.
    pub error: Option<String>,
}

impl DirFacts {
    /// Lengths of the encrypted records carried as application data (TLS 1.3's outer type).
    pub fn app_record_sizes(&self) -> impl Iterator<Item = u16> + '_ {
        self.encrypted_records
            .iter()
            .filter(|r| r.content_type == ContentType::APPLICATION_DATA)
            .map(|r| r.len)
    }
}

impl TlsFacts {
    pub fn dir(&self, dir: Dir) -> &DirFacts {
        match dir {
            Dir::ToServer => &self.client,
            Dir::ToClient => &self.server,
        }
    }

    pub fn dir_mut(&mut self, dir: Dir) -> &mut DirFacts {
        match dir {
            Dir::ToServer => &mut self.client,
            Dir::ToClient => &mut self.server,
        }
    }

    /// The negotiated version: ServerHello's, or 1.3 when only a HelloRetryRequest was seen.
    pub fn version(&self) -> Option<Version> {
        match (&self.server_hello, &self.hello_retry) {
            (Some(sh), _) => Some(sh.version),
            (None, Some(_)) => Some(Version::TLS13),
            _ => None,
        }
    }

    pub fn is_tls13(&self) -> bool {
        self.version() == Some(Version::TLS13)
    }

    /// "ClientHello, ServerHello, Certificate(1 cert, 901 B), ..." for people.
    pub fn message_summary(&self) -> String {
        let mut s = String::new();
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&m.to_string());
        }
        if self.messages_dropped > 0 {
            s.push_str(&format!(", ... ({} more)", self.messages_dropped));
        }
        s
    }

    /// Drop what only the analysis needed (raw lists, certificate DER, records past the
    /// client's flight) so that a finished flow costs little to keep until the report.
    pub fn compact(&mut self) {
        if let Some(ch) = &mut self.client_hello {
            for list in [&mut ch.cipher_suites, &mut ch.extensions, &mut ch.signature_algorithms] {
                *list = Vec::new();
            }
            ch.supported_groups = Vec::new();
            ch.key_share_groups = Vec::new();
            ch.ec_point_formats = Vec::new();
            ch.compression_methods = Vec::new();
            ch.session_id = Vec::new();
            ch.psk_key_exchange_modes = Vec::new();
        }
        if let Some(sh) = &mut self.server_hello {
            sh.extensions = Vec::new();
            sh.session_id = Vec::new();
        }
        for chain in [&mut self.server_certs, &mut self.client_certs].into_iter().flatten() {
            chain.der = Vec::new();
        }
        // Decrypted chains too: identities are read from the DER before compaction.
        if let Some(d) = &mut self.decrypted {
            for chain in [&mut d.server_certs, &mut d.client_certs].into_iter().flatten() {
                chain.der = Vec::new();
            }
        }
        let flight = self.tls13_client_flight.map_or(0, |f| usize::from(f.records));
        self.client.encrypted_records.truncate(flight.max(1));
        self.client.encrypted_records.shrink_to_fit();
        self.server.encrypted_records = Vec::new();
        self.messages.shrink_to_fit();
        self.alerts.shrink_to_fit();
    }

    pub(crate) fn note(&mut self, n: TlsNote) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}

/// Printable ASCII kept, backslash and everything else as `\\` / `\xNN` (reversible).
pub fn escape(bytes: &[u8]) -> String {
    crate::classify::printable(bytes, usize::MAX)
}

/// A readable name for a named group (key shares, HelloRetryRequest).
pub fn group_name(g: u16) -> String {
    match g {
        23 => "secp256r1".into(),
        24 => "secp384r1".into(),
        25 => "secp521r1".into(),
        29 => "x25519".into(),
        30 => "x448".into(),
        0x0100..=0x0104 => {
            format!("ffdhe{}", [2048, 3072, 4096, 6144, 8192][usize::from(g - 0x100)])
        }
        0x11ec => "X25519MLKEM768".into(),
        0x11eb => "SecP256r1MLKEM768".into(),
        0x6399 => "X25519Kyber768Draft00".into(),
        _ => format!("0x{g:04x}"),
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free digest to link tickets (not a security hash).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
