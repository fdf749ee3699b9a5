//! One WebSocket connection (actix-web-actors): says hello, relays what the `SessionManager` pushes, pings,
//! drops a silent client, enforces the message size, and ends its session when the session's life is up.
//!
//! The session-end timer fires at the session's absolute or idle end, and is set again when a refresh has moved
//! the idle limit (see `services::revocation`, reason `expired`).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws::{self, CloseCode, CloseReason, Message, ProtocolError, WebsocketContext};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    events::{Expiry, ServerMessage},
    frame_limit::{FrameLimit, InputFaults},
    session_manager::{Admission, Connect, Disconnect, Push, SessionManager},
    socket_slots::SocketSlot,
};
use crate::error::AppError;

/// The largest message a client may send, fragments added up.
pub const MAXIMUM_MESSAGE_BYTES: usize = 4 * 1024;
/// The close code of a connection whose session has ended.
pub const SESSION_ENDED_CLOSE_CODE: u16 = 4001;

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// Given a user and one of their sessions, ends the session if it is past its limit and answers what it found;
/// the service behind it is the revocation road, which the socket reaches only through this handle.
pub type ExpiryCheck = std::sync::Arc<
    dyn Fn(Uuid, Uuid) -> futures_util::future::BoxFuture<'static, Result<Expiry, AppError>> + Send + Sync,
>;

/// What every socket of this node needs of the rest of it, built once at start.
#[derive(Clone)]
pub struct SocketContext {
    pub manager: Addr<SessionManager>,
    pub live_sockets: prometheus::IntGauge,
    /// How often the server pings (`WS_PING_INTERVAL`) and how long a silent socket is kept (`WS_CLIENT_TIMEOUT`).
    pub ping_interval: Duration,
    pub client_timeout: Duration,
    pub expiry_check: ExpiryCheck,
}

pub struct WsSession {
    user: Uuid,
    session: Uuid,
    socket: u64,
    /// When the session ends unless it is refreshed: checked again then.
    ends_at: DateTime<Utc>,
    context: SocketContext,
    last_heard: Instant,
    /// Bytes of the fragmented message being received, and its text so far (to check its UTF-8 at the end).
    fragment_bytes: usize,
    fragment_text: Option<Vec<u8>>,
    /// What the input's reader saw go wrong: tells the errors that actix-web-actors reports alike apart.
    input_faults: InputFaults,
    /// This socket's place under the per-session and per-user caps, freed when the actor is dropped.
    _slot: SocketSlot,
}

/// Upgrades the request and starts the connection's actor. The caller has authenticated it.
pub fn start(
    request: &HttpRequest,
    stream: web::Payload,
    context: SocketContext,
    slot: SocketSlot,
    user: Uuid,
    session: Uuid,
    ends_at: DateTime<Utc>,
) -> Result<HttpResponse, actix_web::Error> {
    let actor = WsSession {
        user,
        session,
        socket: NEXT_SOCKET.fetch_add(1, Ordering::Relaxed),
        ends_at,
        context,
        last_heard: Instant::now(),
        fragment_bytes: 0,
        fragment_text: None,
        input_faults: InputFaults::default(),
        _slot: slot,
    };
    let stream = FrameLimit::new(stream, MAXIMUM_MESSAGE_BYTES, actor.input_faults.clone());
    ws::WsResponseBuilder::new(actor, request, stream)
        .frame_size(MAXIMUM_MESSAGE_BYTES)
        .start()
}

/// Whether the request is a well-formed WebSocket upgrade, checked before a ticket is used up.
pub fn is_upgrade(request: &HttpRequest) -> bool {
    ws::handshake(request).is_ok()
}

impl WsSession {
    fn manager(&self) -> Addr<SessionManager> {
        self.context.manager.clone()
    }

    fn close(context: &mut WebsocketContext<Self>, code: CloseCode, description: &str) {
        context.close(Some(CloseReason {
            code,
            description: Some(description.to_owned()),
        }));
        context.stop();
    }

    /// Closes the connection once it has been silent for the configured time, checking again whenever it
    /// was heard from in between.
    fn watch_silence(&self, context: &mut WebsocketContext<Self>) {
        let timeout = self.context.client_timeout;
        let wait = (self.last_heard + timeout).saturating_duration_since(Instant::now());
        context.run_later(wait, move |actor, context| {
            if actor.last_heard.elapsed() >= timeout {
                Self::close(context, CloseCode::Away, "idle");
            } else {
                actor.watch_silence(context);
            }
        });
    }

    /// Ends the session when it reaches its absolute or idle limit, so every device of it hears within a
    /// moment; a refresh in between moves the idle limit, and the check is made again then.
    fn watch_expiry(&self, context: &mut WebsocketContext<Self>) {
        let remaining = (self.ends_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        context.run_later(remaining, |actor, context| {
            let check = (actor.context.expiry_check)(actor.user, actor.session);
            context.spawn(check.into_actor(actor).map(|outcome, actor, context| match outcome {
                Ok(Expiry::Later(next)) => {
                    actor.ends_at = next;
                    actor.watch_expiry(context);
                }
                // The manager has the end, and closes this socket with the others of the session.
                Ok(Expiry::Over) => {}
                Err(error) => tracing::error!(%error, "cannot end an expired session"),
            }));
        });
    }

    fn add_fragment(&mut self, bytes: &[u8], context: &mut WebsocketContext<Self>) -> bool {
        self.fragment_bytes += bytes.len();
        if self.fragment_bytes > MAXIMUM_MESSAGE_BYTES {
            Self::close(context, CloseCode::Size, "message too big");
            return false;
        }
        if let Some(text) = &mut self.fragment_text {
            text.extend_from_slice(bytes);
        }
        true
    }
}

impl Actor for WsSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, context: &mut Self::Context) {
        let connect = Connect {
            user: self.user,
            session: self.session,
            socket: self.socket,
            recipient: context.address().recipient(),
        };
        // Nothing else is handled until the manager has answered, so `hello` is always the first frame.
        self.manager()
            .send(connect)
            .into_actor(self)
            .then(|admission, actor, context| {
                match admission {
                    Ok(Admission::Accepted) => {
                        let hello = ServerMessage::Hello {
                            session_id: actor.session,
                            user_id: actor.user,
                        };
                        context.text(hello.to_json());
                    }
                    // Ended between the upgrade's check and now: told as if it had ended a moment later.
                    Ok(Admission::Ended(reason)) => {
                        let revoked = ServerMessage::SessionRevoked {
                            session_id: actor.session,
                            reason,
                        };
                        context.text(revoked.to_json());
                        Self::close(context, CloseCode::Other(SESSION_ENDED_CLOSE_CODE), "session_revoked");
                    }
                    Err(_) => Self::close(context, CloseCode::Error, "unavailable"),
                }
                fut::ready(())
            })
            .wait(context);
        self.context.live_sockets.inc();
        let interval = self.context.ping_interval;
        context.run_interval(interval, |_, context| context.ping(b""));
        self.watch_silence(context);
        self.watch_expiry(context);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.context.live_sockets.dec();
        self.manager().do_send(Disconnect {
            user: self.user,
            session: self.session,
            socket: self.socket,
        });
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, push: Push, context: &mut Self::Context) {
        match push {
            Push::Text(text) => context.text(text),
            Push::Revoked(text) => {
                context.text(text);
                Self::close(context, CloseCode::Other(SESSION_ENDED_CLOSE_CODE), "session_revoked");
            }
            Push::ShuttingDown => Self::close(context, CloseCode::Restart, "service restart"),
        }
    }
}

impl StreamHandler<Result<Message, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<Message, ProtocolError>, context: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(Message::Ping(payload)) => context.pong(&payload),
            Ok(Message::Close(reason)) => {
                context.close(reason);
                context.stop();
            }
            // Clients have nothing to say: other frames are ignored.
            Ok(Message::Pong(_) | Message::Text(_) | Message::Binary(_) | Message::Nop) => {}
            Ok(Message::Continuation(item)) => match item {
                Item::FirstText(bytes) => {
                    self.fragment_bytes = 0;
                    self.fragment_text = Some(Vec::new());
                    self.add_fragment(&bytes, context);
                }
                Item::FirstBinary(bytes) => {
                    self.fragment_bytes = 0;
                    self.fragment_text = None;
                    self.add_fragment(&bytes, context);
                }
                Item::Continue(bytes) => {
                    self.add_fragment(&bytes, context);
                }
                Item::Last(bytes) => {
                    if self.add_fragment(&bytes, context)
                        && let Some(text) = self.fragment_text.take()
                        && std::str::from_utf8(&text).is_err()
                    {
                        Self::close(context, CloseCode::Invalid, "invalid utf-8");
                    }
                    self.fragment_bytes = 0;
                }
            },
            Err(ProtocolError::Overflow) => Self::close(context, CloseCode::Size, "message too big"),
            Err(ProtocolError::Io(_)) if self.input_faults.oversized() => {
                Self::close(context, CloseCode::Size, "message too big")
            }
            // The other I/O errors actix-web-actors reports: the connection's own failure or reserved bits,
            // both seen by the input's reader, and otherwise a text frame that is not UTF-8.
            Err(ProtocolError::Io(_)) if !self.input_faults.broken() => {
                Self::close(context, CloseCode::Invalid, "invalid utf-8")
            }
            Err(_) => Self::close(context, CloseCode::Protocol, "protocol error"),
        }
    }
}
