//! Our streaming reader must see exactly the packets libpcap sees, byte for byte, in every
//! fixture capture (libpcap is the reference implementation of both formats).

use mtlscope::capture::CaptureReader;
use std::path::Path;

fn our_packets(path: &Path) -> Vec<(i64, Vec<u8>, u32)> {
    let file = std::fs::File::open(path).expect("open");
    let mut reader = CaptureReader::new(std::io::BufReader::new(file)).expect("capture header");
    let mut out = Vec::new();
    while reader
        .next_packet(&mut |p| out.push((p.ts.0 / 1000, p.data.to_vec(), p.orig_len)))
        .expect("readable fixture")
    {}
    out
}

fn libpcap_packets(path: &Path) -> Vec<(i64, Vec<u8>, u32)> {
    let mut cap = pcap::Capture::from_file(path).expect("libpcap opens the fixture");
    let mut out = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
                out.push((ts, p.data.to_vec(), p.header.len));
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => panic!("{}: libpcap: {e}", path.display()),
        }
    }
    out
}

#[test]
fn reader_agrees_with_libpcap_on_every_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if ext != "pcap" && ext != "pcapng" {
            continue;
        }
        let ours = our_packets(&path);
        let theirs = libpcap_packets(&path);
        assert_eq!(ours.len(), theirs.len(), "{}: packet count", path.display());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{}: packet {i} differs", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures checked");
}
