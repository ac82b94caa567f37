//! Lines from stdin, numbered, read on a thread of their own.

use std::io::BufRead;
use tokio::sync::mpsc;

/// One line of stdin and its key: its number, from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) key: u64,
    pub(crate) text: String,
}

/// Read stdin on its own thread (a blocked read must not hold up the
/// runtime's end), line by line; the channel closes at the end of stdin.
pub(crate) fn spawn_reader() -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for (key, text) in (1..).zip(stdin.lock().lines()) {
            let Ok(text) = text else { break };
            if tx.blocking_send(Line { key, text }).is_err() {
                break;
            }
        }
    });
    rx
}
