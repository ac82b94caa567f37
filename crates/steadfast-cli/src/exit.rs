//! The command's exit codes, and which of the core's typed errors leads to
//! which.

use steadfast_core::{Cause, CloseCode, Error, Event};

/// How `steadfast` ends. The numbers are part of the interface: scripts
/// test them, and `steadfast connect --help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: closed normally (stdin ended and everything was delivered; with
    /// `--once`, the server closed with 1000).
    Ok = 0,
    /// 1: a failure not listed below (a handshake refused with a status
    /// other than 401/403/407, no agreed subprotocol, an I/O error).
    Failure = 1,
    /// 2: bad arguments, an invalid URL, configuration or scenario file.
    Usage = 2,
    /// 3: authentication rejected (HTTP 401, 403 or 407).
    AuthRejected = 3,
    /// 4: the retry budget is spent.
    RetriesExhausted = 4,
    /// 5: the server closed with a code classified fatal (1003, 1007–1010
    /// by default, and those given with `--fatal-code`), or broke the protocol.
    FatalClose = 5,
    /// 6: TLS failed (a certificate the client does not trust, say).
    Tls = 6,
    /// 7: `--once`: the first connection failed, or the connection was lost.
    Lost = 7,
    /// 8: closed, but messages were still undelivered (not written, or not
    /// acked at least once, within `--drain-timeout`).
    Undelivered = 8,
    /// 130: interrupted (Ctrl-C); the connection was closed first.
    Interrupted = 130,
}

impl Exit {
    /// The exit code for a connection that gave up with `error`.
    pub(crate) fn of_error(error: &Error) -> Exit {
        match error {
            Error::Unauthorized { .. } | Error::AuthRejected { .. } => Exit::AuthRejected,
            Error::Tls => Exit::Tls,
            Error::ClosedByServer { .. } | Error::ProtocolFailure { .. } => Exit::FatalClose,
            Error::RetriesExhausted { .. } | Error::WindowExhausted { .. } => {
                Exit::RetriesExhausted
            }
            Error::ReconnectDisabled {
                cause: Cause::Closed { code, .. },
            } if *code == CloseCode::NORMAL => Exit::Ok,
            Error::FirstConnectFailed { .. } | Error::ReconnectDisabled { .. } => Exit::Lost,
            Error::HandshakeRejected { .. }
            | Error::RequestRefused
            | Error::Subprotocol
            | Error::Internal => Exit::Failure,
        }
    }
}

impl Exit {
    /// The exit code if `event` ends the connection: a close with nothing
    /// left undelivered is normal.
    pub(crate) fn of_terminal(event: &Event) -> Option<Exit> {
        match event {
            Event::Closed { undelivered, .. } if undelivered.is_empty() => Some(Exit::Ok),
            Event::Closed { .. } => Some(Exit::Undelivered),
            Event::Failed { error, .. } => Some(Exit::of_error(error)),
            _ => None,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// A reason to stop before or outside a connection: one line for stderr,
/// and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Bad arguments (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::new(Exit::Usage, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_core::{Budget, HandshakeError};

    #[test]
    fn each_way_of_giving_up_has_its_own_code() {
        let cases = [
            (Error::Unauthorized { status: 401 }, 3),
            (Error::Tls, 6),
            (
                Error::ClosedByServer {
                    code: CloseCode::POLICY,
                    reason: String::new(),
                },
                5,
            ),
            (
                Error::RetriesExhausted {
                    attempts: 2,
                    budget: Budget::FailedAttempts,
                    last: Cause::Handshake(HandshakeError::Unreachable),
                },
                4,
            ),
            (
                Error::ReconnectDisabled {
                    cause: Cause::HeartbeatTimeout,
                },
                7,
            ),
            (
                Error::ReconnectDisabled {
                    cause: Cause::Closed {
                        code: CloseCode::NORMAL,
                        reason: String::new(),
                    },
                },
                0,
            ),
            (Error::HandshakeRejected { status: 404 }, 1),
        ];
        for (error, code) in cases {
            assert_eq!(Exit::of_error(&error) as u8, code, "{error}");
        }
    }
}
