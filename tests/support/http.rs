//! The fake API servers' HTTP/1.1 reading, shared by `tests/kube_live.rs` and `tests/pod_fake`.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads into `buf` until it holds a whole request head; its length, or `None` once the peer
/// has gone.
pub async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 4096];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
