//! Running the real `steadfast` binary from tests: stdin to write, stdout
//! read line by line, stderr collected, every wait bounded.
#![allow(dead_code, unreachable_pub)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

/// Generous bound for anything a test waits on over real sockets.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `steadfast`.
pub struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    /// The task collecting stderr: it ends at the pipe's end.
    stderr_reader: tokio::task::JoinHandle<()>,
    /// Stdout lines read so far.
    pub seen: Vec<String>,
}

impl Cli {
    /// Start `steadfast ARGS...`.
    pub fn spawn(args: &[&str]) -> Cli {
        let mut child = Command::new(env!("CARGO_BIN_EXE_steadfast"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start steadfast");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let collected = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                collected.lock().expect("stderr").push_str(&text);
            }
        });
        Cli {
            child,
            stdin,
            stdout,
            stderr,
            stderr_reader,
            seen: Vec::new(),
        }
    }

    /// Write one line to its stdin.
    pub async fn write(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// End its stdin.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line (panics after `WAIT` or at the end of stdout).
    pub async fn line(&mut self) -> String {
        match timeout(WAIT, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => {
                self.seen.push(line.clone());
                line
            }
            other => panic!(
                "no stdout line ({other:?}); seen {:?}; stderr:\n{}",
                self.seen,
                self.stderr()
            ),
        }
    }

    /// Read stdout until a line satisfies `f`; that line.
    pub async fn line_where(&mut self, f: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.line().await;
            if f(&line) {
                return line;
            }
        }
    }

    /// Whether stdout stays silent for `quiet` (no line in that time).
    pub async fn silent_for(&mut self, quiet: Duration) -> bool {
        match timeout(quiet, self.stdout.next_line()).await {
            Err(_) => true,
            Ok(Ok(Some(line))) => {
                self.seen.push(line);
                false
            }
            Ok(_) => false,
        }
    }

    /// Send it SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT {pid}");
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Wait until stderr holds `text`.
    pub async fn stderr_has(&self, text: &str) {
        let waited = timeout(WAIT, async {
            while !self.stderr().contains(text) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "stderr never said {text:?}:\n{}",
            self.stderr()
        );
    }

    /// Close stdin, read the rest of stdout, and wait for the exit code.
    pub async fn finish(mut self) -> Finished {
        self.close_stdin();
        self.exited().await
    }

    /// With stdin left open (the run must end on its own), read the rest of
    /// stdout and wait for the exit code.
    pub async fn exited(mut self) -> Finished {
        while let Ok(Ok(Some(line))) = timeout(WAIT, self.stdout.next_line()).await {
            self.seen.push(line);
        }
        let status = timeout(WAIT, self.child.wait())
            .await
            .expect("steadfast exits in time")
            .expect("exit status");
        // The stderr reader takes the last bytes and ends at the pipe's end.
        timeout(WAIT, &mut self.stderr_reader)
            .await
            .expect("stderr ends with the process")
            .expect("the stderr reader");
        Finished {
            code: status.code(),
            stdout: self.seen,
            stderr: self.stderr.lock().expect("stderr").clone(),
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<String>,
    pub stderr: String,
}

/// Run `steadfast ARGS...` with stdin closed at once and wait for the end.
pub async fn run(args: &[&str]) -> Finished {
    Cli::spawn(args).finish().await
}

/// The `ws://...` URL on a `listening on ws://... ` line.
pub fn url_of(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned()
}
