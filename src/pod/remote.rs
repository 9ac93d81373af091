//! The capture inside the pod: one exec session per pod, running [`SCRIPT`] under `sh`, its
//! stdout (a pcap stream) handed to the pipeline, its stderr to the user, and its stop.
//!
//! **Why a shell wrapper.** Closing the exec session's stdin does not stop tcpdump (it never
//! reads stdin), and the exec API has no "send a signal". The wrapper starts the capture in the
//! background, reads one line from the session's stdin, and then sends the capture SIGTERM
//! (tcpdump and tshark flush and exit 0 on it; SIGINT would be ignored: a background job of a
//! non-interactive shell ignores it). mtlscope stops a capture by writing a newline to stdin,
//! which works on both channel protocols (`v4.channel.k8s.io` closes the whole WebSocket on
//! stdin EOF, so stdin is never closed while output may still come). If the session is cut
//! instead (mtlscope killed, network gone), stdin reaches EOF in the pod, `read` returns and the
//! capture is stopped all the same; a capture writing to the gone stdout also dies of SIGPIPE.
//!
//! **Which tool.** `command -v` (a shell builtin) finds tcpdump, else tshark; with neither the
//! script says so on stderr and exits 127, and without a shell at all the container runtime
//! answers "executable file not found": both are reported as "no capture tool, use
//! --ephemeral". The tool's own arguments are passed as positional parameters, never pasted
//! into the script, so a filter needs no quoting.

use super::error::PodError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Runs in the pod as `sh -c SCRIPT mtlscope FILTER SNAPLEN COUNT` (COUNT 0: no limit). When
/// the capture ends by itself (`--count`), the watcher is killed too: nothing stays behind.
pub const SCRIPT: &str = r#"exec 3<&0 </dev/null
f=$1; s=$2; n=$3
if command -v tcpdump >/dev/null 2>&1; then
  tool=tcpdump; set -- tcpdump -i any -U -n -s "$s" -w -
elif command -v tshark >/dev/null 2>&1; then
  tool=tshark; set -- tshark -i any -F pcap -n -s "$s" -w -
else
  echo "mtlscope: neither tcpdump nor tshark is installed in this container" >&2
  exit 127
fi
if [ "$n" -gt 0 ]; then set -- "$@" -c "$n"; fi
if [ "$tool" = tshark ]; then set -- "$@" -f "$f"; else set -- "$@" "$f"; fi
echo "mtlscope: capturing with $tool" >&2
"$@" &
p=$!
{ read -r _ <&3; kill -TERM "$p"; } >/dev/null 2>&1 &
w=$!
wait "$p"
r=$?
kill "$w" 2>/dev/null
exit "$r"
"#;

/// The stderr line the script writes before it starts the capture.
const TOOL_MARKER: &str = "mtlscope: capturing with ";
/// The stderr line of a container without tcpdump and tshark.
pub const NO_TOOL: &str = "mtlscope: neither tcpdump nor tshark is installed in this container";

/// The command to exec.
pub fn command(filter: &str, snaplen: u32, count: Option<u64>) -> Vec<String> {
    let count = count.unwrap_or(0).to_string();
    let args = ["sh", "-c", SCRIPT, "mtlscope", filter, &snaplen.to_string(), &count];
    args.iter().map(|a| a.to_string()).collect()
}

/// The exec parameters: stdin for the stop line, stdout the capture, stderr the tool's talk.
pub fn attach_params(container: &str) -> AttachParams {
    AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(256 * 1024)
}

/// How long a capture may take to stop after it was asked to, before the session is cut.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Once the session is over, stdout is read until it stays quiet this long.
const DRAIN: Duration = Duration::from_millis(300);
/// Stderr lines kept per pod for the final report.
const STDERR_TAIL: usize = 20;

/// What the user sees of a pod's stderr, as it comes: `(pod label, line)`.
pub type StatusLine = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How one pod's capture ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes of capture read from stdout.
    pub bytes: u64,
    /// `tcpdump` or `tshark`, once the script said which.
    pub tool: Option<String>,
    /// mtlscope asked the capture to stop (Ctrl-C, --duration, the UI's quit).
    pub stop_sent: bool,
    /// The capture did not stop within [`STOP_GRACE`] and the session was cut.
    pub cut_after_stop: bool,
    /// The exit status the API server sent on the error channel, if any.
    pub status: Option<Status>,
    /// Why the session failed (a WebSocket error), if it did.
    pub failure: Option<String>,
    /// The last lines of stderr.
    pub stderr: Vec<String>,
}

impl Outcome {
    /// The exit code in a `NonZeroExitCode` status.
    pub fn exit_code(&self) -> Option<i32> {
        let s = self.status.as_ref()?;
        if s.status.as_deref() == Some("Success") {
            return Some(0);
        }
        let causes = s.details.as_ref()?.causes.as_ref()?;
        causes
            .iter()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.parse().ok())
    }

    pub fn succeeded(&self) -> bool {
        // 143: the capture died of our SIGTERM without handling it (it was asked to stop).
        matches!(self.exit_code(), Some(0)) || (self.stop_sent && self.exit_code() == Some(143))
    }

    /// The session ended without an exit status and nobody asked it to: the stream dropped.
    pub fn dropped(&self) -> bool {
        self.status.is_none() && !self.stop_sent
    }

    fn status_message(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_else(|| "no exit status".into())
    }
}

/// Classifies a capture that ended before it delivered anything: the reason it could not run.
pub fn startup_error(o: &Outcome, who: &Who<'_>, image: &str) -> PodError {
    let msg = o.status_message();
    let missing = if o.stderr.iter().any(|l| l.contains(NO_TOOL)) || o.exit_code() == Some(127) {
        Some("neither tcpdump nor tshark")
    } else if msg.contains("executable file not found") || msg.contains("no such file") {
        Some("no shell (sh) to run tcpdump from")
    } else {
        None
    };
    if let Some(missing) = missing {
        return PodError::NoCaptureTool {
            namespace: who.namespace.into(),
            pod: who.pod.into(),
            container: who.container.into(),
            missing: missing.into(),
            image: image.into(),
        };
    }
    failed(o, who)
}

/// A capture that ran and failed (or never reported how it ended).
pub fn failed(o: &Outcome, who: &Who<'_>) -> PodError {
    let tail = o.stderr.iter().rev().find(|l| !l.starts_with(TOOL_MARKER)).cloned();
    let mut message = match (o.exit_code(), &o.failure) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(f)) => f.clone(),
        (None, None) => o.status_message(),
    };
    if let Some(t) = &tail {
        message = format!("{message}: {t}");
    }
    let text = format!("{message} {}", o.stderr.join(" ")).to_ascii_lowercase();
    let hint = if text.contains("permitted") || text.contains("permission") {
        "; capturing needs the NET_RAW and NET_ADMIN capabilities in that container: use \
         --ephemeral (its debug container gets them) or a sidecar that has them"
    } else {
        ""
    };
    PodError::CaptureFailed {
        namespace: who.namespace.into(),
        pod: who.pod.into(),
        container: who.container.into(),
        message,
        hint: hint.into(),
    }
}

/// Names for messages.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
}

/// Drives one exec session to its end: stdout chunks to `data` (dropped, but still read, once
/// the pipeline is gone), stderr lines to `say` and the outcome's tail, the stop line on
/// `stop`. `started` is told when the first capture bytes arrive.
pub async fn drive(
    mut proc: AttachedProcess,
    label: String,
    data: mpsc::Sender<Vec<u8>>,
    mut stop: watch::Receiver<bool>,
    say: StatusLine,
    started: tokio::sync::oneshot::Sender<()>,
) -> Outcome {
    let mut out = Outcome::default();
    let (Some(mut stdout), Some(stderr), Some(mut stdin)) =
        (proc.stdout(), proc.stderr(), proc.stdin())
    else {
        out.failure = Some("the exec session has no stdout, stderr or stdin".into());
        return out;
    };
    // Resolves with the exit status, or with None when the session's message loop ends
    // without one. kube does not end stdout when the WebSocket fails, so this is what says
    // the session is over; what stdout still holds is read after it.
    let status = proc.take_status();
    let mut status = std::pin::pin!(async move {
        match status {
            Some(s) => s.await,
            None => None,
        }
    });
    let mut session_over: Option<Option<Status>> = None;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let tool = Arc::new(Mutex::new(None));
    let errs = tokio::spawn({
        let (tail, tool, label) = (tail.clone(), tool.clone(), label.clone());
        async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(t) = line.strip_prefix(TOOL_MARKER) {
                    *tool.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.trim().to_string());
                }
                say(&label, &line);
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    });
    let mut started = Some(started);
    let mut pipeline = Some(data);
    let mut buf = vec![0u8; 64 * 1024];
    let mut give_up: Option<tokio::time::Instant> = None;
    let mut stop_open = true;
    loop {
        let grace = async {
            match give_up {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let drained = async {
            match session_over {
                Some(_) => tokio::time::sleep(DRAIN).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = stdout.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.bytes += n as u64;
                    if let Some(s) = started.take() {
                        let _ = s.send(());
                    }
                    if let Some(tx) = &pipeline {
                        if tx.send(buf[..n].to_vec()).await.is_err() {
                            pipeline = None;
                        }
                    }
                }
            },
            changed = stop.changed(), if stop_open => {
                if changed.is_err() || *stop.borrow() {
                    stop_open = false;
                    if !out.stop_sent {
                        out.stop_sent = true;
                        let _ = stdin.write_all(b"\n").await;
                        let _ = stdin.flush().await;
                        give_up = Some(tokio::time::Instant::now() + STOP_GRACE);
                    }
                }
            },
            st = &mut status, if session_over.is_none() => session_over = Some(st),
            () = drained => break,
            () = grace => {
                out.cut_after_stop = true;
                proc.abort();
                break;
            }
        }
    }
    // The pipeline sees the end of the stream now, not when the session is torn down.
    drop(pipeline);
    out.status = match session_over {
        Some(st) => st,
        None => tokio::time::timeout(Duration::from_secs(2), status).await.ok().flatten(),
    };
    if let Err(e) =
        tokio::time::timeout(Duration::from_secs(2), proc.join()).await.unwrap_or(Ok(()))
    {
        out.failure = Some(e.to_string());
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), errs).await;
    out.tool = tool.lock().unwrap_or_else(|e| e.into_inner()).clone();
    out.stderr = tail.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect();
    drop(stdin);
    out
}
