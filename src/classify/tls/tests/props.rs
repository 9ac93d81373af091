//! Prefix, split and chunking properties on the real vectors.

use super::*;

/// NeedMore until an answer, then the same answer for every longer prefix.
fn check_all_prefixes<T: PartialEq + std::fmt::Debug>(
    n: usize,
    mut at: impl FnMut(usize) -> Peek<T>,
) -> Option<(usize, Peek<T>)> {
    let mut answer: Option<(usize, Peek<T>)> = None;
    for len in 0..=n {
        let got = at(len);
        match &answer {
            None if got == Peek::NeedMore => {}
            None => answer = Some((len, got)),
            Some((_, a)) => assert_eq!(&got, a, "answer flipped at prefix {len}"),
        }
    }
    answer
}

fn sniff_peek(b: &[u8]) -> Peek<()> {
    match sniff(b) {
        Sniff::Yes => Peek::Done(()),
        Sniff::No => Peek::No(NotClientHello::NotTls),
        Sniff::NeedMore => Peek::NeedMore,
    }
}

#[test]
fn sniff_every_prefix_of_every_stream() {
    for name in VECTORS {
        let v = load(name);
        for dir in [Dir::ToServer, Dir::ToClient] {
            let b = bytes_of(&v, dir);
            let (at, answer) =
                check_all_prefixes(b.len().min(64), |n| sniff_peek(&b[..n])).expect("answered");
            assert_eq!(answer, Peek::Done(()), "{name} {dir}");
            assert!(at <= 6, "{name} {dir}: answered at {at}");
        }
    }
}

#[test]
fn client_hello_every_prefix() {
    for name in VECTORS {
        let v = load(name);
        let whole = replay(&v, Limits::default()).0.facts().client_hello.clone().expect("hello");
        let (at, answer) =
            check_all_prefixes(v.c2s.len(), |n| peek_client_hello(&v.c2s[..n], 1 << 16))
                .expect("answered");
        assert_eq!(answer, Peek::Done(whole.clone()), "{name}");
        assert_eq!(at, 5 + client_hello_msg(&v).len(), "{name}: done exactly when the record is");
        // The analyzer agrees at every prefix too.
        for n in (0..=at + 8).chain([v.c2s.len()]) {
            let mut a = TlsAnalyzer::new(Limits::default());
            a.feed(Dir::ToServer, &v.c2s[..n.min(v.c2s.len())], Timestamp(0));
            let got = a.facts().client_hello.as_ref();
            assert_eq!(got, (n >= at).then_some(&whole), "{name}: prefix {n}");
        }
    }
}

fn feed_split(b: &[u8], dir: Dir, k: usize, first: Option<(&[u8], Dir)>) -> TlsFacts {
    let mut a = TlsAnalyzer::new(Limits::default());
    if let Some((other, d)) = first {
        a.feed(d, other, Timestamp(1));
    }
    a.feed(dir, &b[..k], Timestamp(1));
    a.feed(dir, &b[k..], Timestamp(1));
    a.facts().clone()
}

#[test]
fn every_split_point_gives_the_same_facts() {
    for name in VECTORS {
        let v = load(name);
        for dir in [Dir::ToServer, Dir::ToClient] {
            let b = bytes_of(&v, dir);
            let other = bytes_of(&v, dir.flip());
            // Alone, and after the whole other direction (so TLS 1.3 sizes are read with F known).
            for first in [None, Some((other, dir.flip()))] {
                let whole = feed_split(b, dir, b.len(), first);
                for k in 0..b.len() {
                    assert!(feed_split(b, dir, k, first) == whole, "{name} {dir}: split at {k}");
                }
            }
        }
    }
}

#[test]
fn one_byte_at_a_time_gives_the_same_facts_and_stays_bounded() {
    for name in VECTORS {
        let v = load(name);
        let (want, _) = replay(&v, Limits::default());
        let mut a = TlsAnalyzer::new(Limits::default());
        let mut pos = [0usize; 2];
        for (i, &(dir, len)) in v.chunks.iter().enumerate() {
            let Some(n) = len else { continue };
            let p = &mut pos[dir.index()];
            for byte in bytes_of(&v, dir)[*p..*p + n].chunks(1) {
                a.feed(dir, byte, Timestamp(i as i64 * 1_000_000));
                assert!(a.buffered() <= Limits::default().max_buffer);
            }
            *p += n;
        }
        assert!(a.facts() == want.facts(), "{name}");
    }
}

#[test]
fn random_chunkings_give_the_same_facts() {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for name in VECTORS {
        let v = load(name);
        let (want, _) = replay(&v, Limits::default());
        for _ in 0..20 {
            let mut a = TlsAnalyzer::new(Limits::default());
            let mut pos = [0usize; 2];
            for (i, &(dir, len)) in v.chunks.iter().enumerate() {
                let Some(n) = len else { continue };
                let p = &mut pos[dir.index()];
                let end = *p + n;
                while *p < end {
                    let step = 1 + (xorshift(&mut seed) % 300) as usize;
                    let q = (*p + step).min(end);
                    a.feed(dir, &bytes_of(&v, dir)[*p..q], Timestamp(i as i64 * 1_000_000));
                    *p = q;
                }
            }
            assert!(a.facts() == want.facts(), "{name}");
        }
    }
}
