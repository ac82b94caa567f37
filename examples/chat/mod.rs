//! The chat system hand-written servers are built as, on steadfast: users
//! with tokens (the token in the subprotocol, as browsers send it), rooms,
//! direct messages, a duplicate login replacing the old session, dead
//! clients reaped and graceful restarts, all by `steadfast_hub` through
//! `steadfast_tokio::server`. This module holds only the chat's own rules.
//!
//! The protocol, text lines both ways:
//! - a client says `hello` to its room; everyone in it gets `alice: hello`;
//! - `/to bob hi` reaches bob alone as `alice → you: hi`;
//! - `/join kitchen` moves the sender to another room (everyone starts in
//!   `lobby`);
//! - the server announces `* bob joined lobby` and `* bob left (reaped)`;
//! - an unknown user id gets `{"type":"error","reason":"unknown user"}`
//!   and a close with 1008; a bad token is refused with 401 before the upgrade.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use steadfast_tokio::core::{CloseCode, Message};
use steadfast_tokio::server::{
    Events, HubConfig, HubEvent, LeaveReason, Rejection, Request, Server, Verdict,
};

/// The subprotocol the chat speaks; echoed to every accepted client.
pub const PROTOCOL: &str = "chat";
/// The room everyone starts in.
pub const LOBBY: &str = "lobby";
/// The browser client, served at `/`.
pub const PAGE: &str = include_str!("page.html");

/// The subprotocol that carries a token: `token.<token>`.
pub fn token_protocol(token: &str) -> String {
    format!("token.{token}")
}

/// Who may chat: user id → token. Its `Debug` shows the ids only.
#[derive(Clone, Default)]
pub struct Users(BTreeMap<String, String>);

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Users {
    /// The demo's users: alice, bob and carol, each with `<name>-token`.
    pub fn demo() -> Self {
        ["alice", "bob", "carol"]
            .iter()
            .map(|u| (u.to_string(), format!("{u}-token")))
            .collect()
    }

    /// Parses `name:token`.
    pub fn parse_entry(entry: &str) -> Result<(String, String), String> {
        match entry.split_once(':') {
            Some((user, token)) if !user.is_empty() && !token.is_empty() => {
                Ok((user.to_owned(), token.to_owned()))
            }
            _ => Err(format!("expected name:token, got {entry:?}")),
        }
    }

    /// The verdict on a handshake: `?id=` names the user, an offered
    /// `token.<token>` subprotocol proves it.
    pub fn verify(&self, req: &Request) -> Verdict<String> {
        let Some(id) = req.query_param("id") else {
            return Verdict::Reject(Rejection::new(400, "missing ?id="));
        };
        let Some(token) = self.0.get(id.as_ref()) else {
            return Verdict::Refuse {
                message: Some(Message::text(r#"{"type":"error","reason":"unknown user"}"#)),
                code: CloseCode::POLICY,
                reason: "unknown user".into(),
                protocol: req.offers(PROTOCOL).then(|| PROTOCOL.to_owned()),
            };
        };
        if !req.offers(&token_protocol(token)) {
            return Verdict::Reject(Rejection::unauthorized());
        }
        Verdict::Accept {
            user: id.into_owned(),
            protocol: req.offers(PROTOCOL).then(|| PROTOCOL.to_owned()),
        }
    }
}

impl FromIterator<(String, String)> for Users {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Users(iter.into_iter().collect())
    }
}

/// Starts a chat server on `addr` with these users and hub settings.
pub async fn bind(
    addr: &str,
    users: Users,
    hub: HubConfig,
) -> std::io::Result<(Server<String>, Events<String>)> {
    let users = Arc::new(users);
    Server::builder(hub)
        .verify(move |req| users.verify(req))
        .page("/", "text/html; charset=utf-8", PAGE)
        .bind(addr)
        .await
}

/// The hub settings the chat server runs with: ping after 10 s of silence,
/// reap 5 s later.
pub fn hub_config() -> HubConfig {
    HubConfig {
        liveness: steadfast_tokio::server::LivenessConfig {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        },
        ..HubConfig::default()
    }
}

fn leave_reason(reason: &LeaveReason) -> &'static str {
    match reason {
        LeaveReason::PeerClosed(_) => "closed",
        LeaveReason::Reaped => "reaped",
        LeaveReason::Replaced => "replaced",
        LeaveReason::SlowConsumer => "too slow",
        LeaveReason::Shutdown => "server restart",
        LeaveReason::Closed => "closed by the server",
    }
}

/// The chat's rules, applied to one event.
pub fn handle(server: &Server<String>, event: HubEvent<String>) {
    match event {
        HubEvent::Joined { user, session } => {
            let rooms: Vec<String> =
                server.with_hub(|hub| hub.rooms_of(&user).map(str::to_owned).collect());
            if rooms.is_empty() {
                let _ = server.join(&user, LOBBY);
                server.send_to_room(LOBBY, format!("* {user} joined {LOBBY}"));
            } else {
                // A reconnect that replaced the old session keeps its rooms.
                let _ = server.send_to_session(session, format!("* welcome back, {user}"));
            }
        }
        HubEvent::Left { user, reason, .. } => {
            if !server.with_hub(|hub| hub.is_connected(&user)) {
                server.broadcast(format!("* {user} left ({})", leave_reason(&reason)));
            }
        }
        HubEvent::Message { user, session, msg } => {
            let Some(text) = msg.as_text() else {
                let _ = server.send_to_session(session, "* text only, please");
                return;
            };
            if let Some(rest) = text.strip_prefix("/to ") {
                let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
                if server
                    .send_to(&to.to_owned(), format!("{user} → you: {body}"))
                    .is_err()
                {
                    let _ = server.send_to_session(session, format!("* {to} is not here"));
                }
            } else if let Some(room) = text.strip_prefix("/join ") {
                let room = room.trim();
                let old: Vec<String> =
                    server.with_hub(|hub| hub.rooms_of(&user).map(str::to_owned).collect());
                for r in &old {
                    server.leave(&user, r);
                    server.send_to_room(r, format!("* {user} went to {room}"));
                }
                let _ = server.join(&user, room);
                server.send_to_room(room, format!("* {user} joined {room}"));
            } else {
                let rooms: Vec<String> =
                    server.with_hub(|hub| hub.rooms_of(&user).map(str::to_owned).collect());
                for room in rooms {
                    server.send_to_room(&room, format!("{user}: {text}"));
                }
            }
        }
        HubEvent::Undelivered { user, reason, .. } => {
            tracing::debug!(%user, ?reason, "a chat line was not delivered");
        }
    }
}

/// Runs the chat until the server stops.
pub async fn serve(server: Server<String>, mut events: Events<String>) {
    while let Some(event) = events.recv().await {
        handle(&server, event);
    }
}
