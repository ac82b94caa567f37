//! `connect`'s flags, and the client configuration they describe.

use crate::config::{
    AckSpec, ConfigSpec, DeliverySpec, HeartbeatModeSpec, HeartbeatSpec, OutboxSpec, RetrySpec,
    ScheduleSpec,
};
use crate::duration::{Dur, parse};
use crate::exit::Failure;
use std::time::Duration;

/// Connect to a WebSocket server and stay connected.
///
/// Lines from stdin go out as text messages; messages received go to
/// stdout, one per line (binary ones encoded, see --binary). The
/// connection's life (state changes, reconnects and their countdown, RTT)
/// goes to stderr: a live status line on a terminal, plain lines otherwise.
/// At the end of stdin the connection closes once everything sent is
/// delivered (written, or acked with --ack), waiting at most
/// --drain-timeout.
///
/// Exit codes: 0 closed normally; 1 other failure (e.g. the handshake was
/// refused with a status other than 401/403/407); 2 bad arguments;
/// 3 authentication rejected (401/403/407); 4 retry budget spent;
/// 5 the server closed with a fatal code (1003, 1007-1010, --fatal-code);
/// 6 TLS failure; 7 with --once: the first connection failed or the
/// connection was lost; 8 closed with messages undelivered; 130 interrupted.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ConnectArgs {
    /// The server: ws://HOST:PORT/PATH or wss://...
    pub(crate) url: String,

    /// A request header, 'Name: value' (repeatable). Values are never printed.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,

    /// Send 'Authorization: Bearer TOKEN'.
    #[arg(
        long,
        env = "STEADFAST_BEARER",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) bearer: Option<String>,

    /// Offer this subprotocol (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub(crate) subprotocols: Vec<String>,

    /// How liveness is checked.
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Heartbeat")]
    pub(crate) heartbeat: Option<HeartbeatModeSpec>,

    /// Quiet time before a ping [core default: 15s].
    #[arg(long, value_parser = parse, value_name = "DURATION", help_heading = "Heartbeat")]
    pub(crate) heartbeat_interval: Option<Duration>,

    /// How long a ping may go unanswered [core default: 10s].
    #[arg(long, value_parser = parse, value_name = "DURATION", help_heading = "Heartbeat")]
    pub(crate) pong_timeout: Option<Duration>,

    /// Unanswered pings tolerated before the server is declared dead [default: 0].
    #[arg(long, value_name = "N", help_heading = "Heartbeat")]
    pub(crate) tolerated_missed: Option<u32>,

    /// Ping only when the link is quiet, or at a fixed interval.
    #[arg(long, value_enum, value_name = "WHEN", help_heading = "Heartbeat")]
    pub(crate) ping_schedule: Option<ScheduleSpec>,

    /// The application-level ping, with --heartbeat app [default: ping].
    #[arg(long, value_name = "TEXT", help_heading = "Heartbeat")]
    pub(crate) ping_message: Option<String>,

    /// The application-level pong, with --heartbeat app [default: pong].
    #[arg(long, value_name = "TEXT", help_heading = "Heartbeat")]
    pub(crate) pong_message: Option<String>,

    /// Give up after this many attempts in a row fail to open [default: never].
    #[arg(long, value_name = "N", help_heading = "Retry")]
    pub(crate) max_attempts: Option<u32>,

    /// Delay before the first retry of an outage [core default: 1s].
    #[arg(long, value_parser = parse, value_name = "DURATION", help_heading = "Retry")]
    pub(crate) initial_delay: Option<Duration>,

    /// Cap on the delay between attempts [core default: 30s].
    #[arg(long, value_parser = parse, value_name = "DURATION", help_heading = "Retry")]
    pub(crate) max_delay: Option<Duration>,

    /// Deadline of one connection attempt [core default: 10s].
    #[arg(long, value_parser = parse, value_name = "DURATION", help_heading = "Retry")]
    pub(crate) connect_timeout: Option<Duration>,

    /// Never reconnect: fail at once if the first connection fails or the
    /// connection is lost (exit 7), e.g. to fall back to polling.
    #[arg(long, help_heading = "Retry")]
    pub(crate) once: bool,

    /// Treat this close code from the server as fatal (repeatable; exit 5).
    #[arg(long = "fatal-code", value_name = "CODE", help_heading = "Retry")]
    pub(crate) fatal_codes: Vec<u16>,

    /// Seed of the backoff jitter, to replay a run [default: from the OS].
    #[arg(long, help_heading = "Retry")]
    pub(crate) seed: Option<u64>,

    /// Delivery guarantee [default: at-most-once; at-least-once with --ack].
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Delivery")]
    pub(crate) delivery: Option<DeliverySpec>,

    /// The server's acks, e.g. 'ack:{key}': a line stays queued (and is
    /// replayed after a reconnect) until the server acks its key. Lines are
    /// keyed 1, 2, 3...; put the key in what is sent with --send.
    #[arg(long, value_name = "PATTERN", help_heading = "Delivery")]
    pub(crate) ack: Option<String>,

    /// The server's refusals, e.g. 'nack:{key}' (then ':reason').
    #[arg(
        long,
        value_name = "PATTERN",
        requires = "ack",
        help_heading = "Delivery"
    )]
    pub(crate) nack: Option<String>,

    /// What is sent for each line: {line} is the line, {key} its number.
    #[arg(
        long,
        default_value = "{line}",
        value_name = "TEMPLATE",
        help_heading = "Delivery"
    )]
    pub(crate) send: String,

    /// At the end of stdin, wait at most this long for delivery before closing.
    #[arg(long, value_parser = parse, default_value = "10s", value_name = "DURATION", help_heading = "Delivery")]
    pub(crate) drain_timeout: Duration,

    /// Keep the connection open after stdin ends (until Ctrl-C or a failure).
    #[arg(long)]
    pub(crate) keep_open: bool,

    /// How binary messages are printed.
    #[arg(long, value_enum, default_value = "hex", value_name = "ENCODING")]
    pub(crate) binary: BinaryEncoding,

    /// Write every event as one JSON object per line on stdout (messages
    /// included), and nothing on stderr.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How binary messages are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BinaryEncoding {
    /// Lower-case hexadecimal.
    Hex,
    /// Standard base64, padded.
    Base64,
}

impl BinaryEncoding {
    /// `bytes`, encoded.
    pub(crate) fn encode(self, bytes: &[u8]) -> String {
        match self {
            BinaryEncoding::Hex => data_encoding::HEXLOWER.encode(bytes),
            BinaryEncoding::Base64 => data_encoding::BASE64.encode(bytes),
        }
    }
}

impl ConnectArgs {
    /// The client configuration these flags describe.
    pub(crate) fn config_spec(&self) -> Result<ConfigSpec, Failure> {
        let delivery = match (self.delivery, &self.ack) {
            (Some(DeliverySpec::AtLeastOnce), None) => {
                return Err(Failure::usage(
                    "--delivery at-least-once needs --ack PATTERN: without the server's acks nothing is ever delivered",
                ));
            }
            (None, Some(_)) => Some(DeliverySpec::AtLeastOnce),
            (d, _) => d,
        };
        let dur = |d: Option<Duration>| d.map(Dur);
        Ok(ConfigSpec {
            seed: self.seed,
            connect_timeout: dur(self.connect_timeout),
            close_timeout: None,
            heartbeat: HeartbeatSpec {
                mode: self.heartbeat,
                ping: self.ping_message.clone(),
                pong: self.pong_message.clone(),
                interval: dur(self.heartbeat_interval),
                pong_timeout: dur(self.pong_timeout),
                tolerated_missed: self.tolerated_missed,
                schedule: self.ping_schedule,
            },
            retry: RetrySpec {
                initial_delay: dur(self.initial_delay),
                max_delay: dur(self.max_delay),
                max_attempts: self.max_attempts,
                once: Some(self.once),
                ..Default::default()
            },
            outbox: OutboxSpec {
                delivery,
                ..Default::default()
            },
            acks: self.ack.as_ref().map(|ack| AckSpec {
                ack: ack.clone(),
                nack: self.nack.clone(),
            }),
            fatal_close_codes: self.fatal_codes.clone(),
        })
    }
}
