//! Everything that is neither TLS nor HTTP: well-known plaintext protocols recognised by their
//! first bytes, readable text, and opaque bytes. High entropy alone is never called TLS: it is
//! "opaque" (encrypted by something we cannot name, or compressed).

/// What the first bytes of a non-TLS, non-HTTP stream look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherInfo {
    /// A protocol recognised from its first bytes (e.g. "redis", "postgresql").
    pub protocol: Option<&'static str>,
    pub kind: OtherKind,
    /// The first word of a text protocol (a command name, never arguments), as evidence.
    pub first_word: Option<String>,
    /// Which side spoke first with these bytes.
    pub from_server: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherKind {
    /// Readable text or a known plaintext protocol.
    Plaintext,
    /// A protocol that encrypts after a readable preamble (SSH).
    EncryptedNonTls,
    /// Binary with high entropy and no known framing.
    Opaque,
    /// Binary with low entropy and no known framing: not encrypted, not recognised.
    Binary,
}

/// Bytes needed before we judge unknown data; fewer are judged only when the flow ends.
pub const WANT: usize = 64;
const SAMPLE: usize = 1024;

/// Recognise a stream from its first bytes. `from_server` says which side sent them.
pub fn classify(buf: &[u8], from_server: bool) -> OtherInfo {
    let sample = &buf[..buf.len().min(SAMPLE)];
    let (protocol, kind) = match known_protocol(sample, from_server) {
        Some((name, kind)) => (Some(name), kind),
        None if is_text(sample) => (None, OtherKind::Plaintext),
        None if entropy(sample) >= 7.0 || (sample.len() < 256 && entropy(sample) >= 5.5) => {
            (None, OtherKind::Opaque)
        }
        None => (None, OtherKind::Binary),
    };
    let first_word = matches!(kind, OtherKind::Plaintext | OtherKind::EncryptedNonTls)
        .then(|| first_word(sample))
        .flatten();
    OtherInfo { protocol, kind, first_word, from_server }
}

/// A protocol recognised from its signature alone, without waiting for more bytes.
pub fn known(buf: &[u8], from_server: bool) -> Option<OtherInfo> {
    let sample = &buf[..buf.len().min(SAMPLE)];
    let (name, kind) = known_protocol(sample, from_server)?;
    let first_word = first_word(sample);
    Some(OtherInfo { protocol: Some(name), kind, first_word, from_server })
}

fn known_protocol(b: &[u8], from_server: bool) -> Option<(&'static str, OtherKind)> {
    use OtherKind::*;
    if b.starts_with(b"SSH-") {
        return Some(("ssh", EncryptedNonTls));
    }
    if b.len() >= 8 && b[..4] == [0, 0, 0, 8] && b[4..8] == [0x04, 0xd2, 0x16, 0x2f] {
        return Some(("postgresql-sslrequest", Plaintext));
    }
    if b.len() >= 8 && b[4..8] == [0, 3, 0, 0] {
        return Some(("postgresql", Plaintext));
    }
    if from_server && b.len() > 5 && b[3] == 0 && b[4] == 0x0a && b[5].is_ascii_digit() {
        return Some(("mysql", Plaintext));
    }
    if b.first() == Some(&b'*') && b.get(1).is_some_and(u8::is_ascii_digit) {
        return Some(("redis", Plaintext));
    }
    let text_prefixes: &[(&[u8], &str)] = &[
        (b"220 ", "smtp/ftp"),
        (b"220-", "smtp/ftp"),
        (b"EHLO ", "smtp"),
        (b"HELO ", "smtp"),
        (b"+OK", "pop3"),
        (b"* OK", "imap"),
        (b"<?xml", "xmpp"),
        (b"<stream:stream", "xmpp"),
        (b"NICK ", "irc"),
        (b"CAP LS", "irc"),
        (b"USER ", "ftp/irc"),
        (b"AUTH TLS", "ftp"),
        (b"STARTTLS", "smtp/imap"),
        (b"PING", "redis"),
    ];
    text_prefixes.iter().find(|(p, _)| b.starts_with(p)).map(|(_, name)| (*name, Plaintext))
}

/// Mostly printable ASCII (with CR, LF, TAB).
fn is_text(b: &[u8]) -> bool {
    if b.is_empty() {
        return false;
    }
    let printable = b
        .iter()
        .filter(|&&c| (0x20..0x7f).contains(&c) || c == b'\r' || c == b'\n' || c == b'\t')
        .count();
    printable * 100 >= b.len() * 95
}

/// Shannon entropy in bits per byte.
pub fn entropy(b: &[u8]) -> f64 {
    if b.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The first word that starts with a letter (for Redis' `*3\r\n$3\r\nSET`, `SET`).
fn first_word(b: &[u8]) -> Option<String> {
    let word: String = b
        .iter()
        .skip_while(|c| !c.is_ascii_alphabetic())
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b'.')
        .take(16)
        .map(|&c| char::from(c))
        .collect();
    (!word.is_empty()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_plaintext_protocols() {
        let redis = classify(b"*1\r\n$4\r\nPING\r\n", false);
        assert_eq!(redis.protocol, Some("redis"));
        assert_eq!(redis.kind, OtherKind::Plaintext);
        let pg = classify(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], false);
        assert_eq!(pg.protocol, Some("postgresql-sslrequest"));
        let smtp = classify(b"220 mail.example ESMTP Postfix\r\n", true);
        assert_eq!(smtp.protocol, Some("smtp/ftp"));
        assert_eq!(smtp.first_word.as_deref(), Some("mail.example"));
        let set = known(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n", false).expect("redis");
        assert_eq!(set.first_word.as_deref(), Some("SET"));
    }

    #[test]
    fn ssh_is_encrypted_but_not_tls() {
        let ssh = classify(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", true);
        assert_eq!(ssh.kind, OtherKind::EncryptedNonTls);
    }

    #[test]
    fn random_bytes_are_opaque_text_is_plaintext() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(classify(&random, false).kind, OtherKind::Opaque);
        assert_eq!(
            classify(b"hello there, this is a line of text\n", false).kind,
            OtherKind::Plaintext
        );
        assert_eq!(classify(&[0u8; 200], false).kind, OtherKind::Binary);
    }

    #[test]
    fn first_word_never_includes_arguments() {
        let auth = classify(b"AUTH hunter2-secret\r\n", false);
        assert_eq!(auth.first_word.as_deref(), Some("AUTH"));
    }
}
