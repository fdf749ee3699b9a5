//! A real WebSocket client (tokio-tungstenite) for the real-time channel.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use super::TestApp;

pub struct Socket {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How an upgrade was refused: the HTTP status and the problem body.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    pub fn ws_url(&self, query: &str) -> String {
        format!(
            "ws://127.0.0.1:{}/api/ws{query}",
            self.address.rsplit(':').next().unwrap()
        )
    }

    pub async fn try_socket(&self, query: &str, headers: &[(&str, &str)]) -> Result<Socket, Refusal> {
        let mut request = self.ws_url(query).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Socket { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .map(|bytes| serde_json::from_slice(bytes).unwrap())
                    .unwrap_or(Value::Null);
                Err(Refusal { status, body })
            }
            Err(error) => panic!("cannot connect: {error}"),
        }
    }

    /// A socket opened with a Bearer token, past its `hello`.
    pub async fn socket(&self, access_token: &str) -> Socket {
        let mut socket = self
            .try_socket("", &[("authorization", &format!("Bearer {access_token}"))])
            .await
            .expect("upgrade accepted");
        let hello = socket.next_json().await;
        assert_eq!(hello["type"], "hello");
        socket
    }

    pub async fn ticket(&self, access_token: &str) -> String {
        let response = self.post_authed("/api/auth/ws-ticket", access_token, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 30);
        body["ticket"].as_str().unwrap().to_owned()
    }
}

impl Socket {
    /// The next JSON text frame (pings are answered by the client on the way).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .expect("no frame within 5 s")
                .expect("the socket closed")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next JSON frame whose type is not among `kinds`: on another node an announcement may arrive after
    /// a socket that opened later.
    pub async fn next_json_ignoring(&mut self, kinds: &[&str]) -> Value {
        loop {
            let frame = self.next_json().await;
            if !kinds.iter().any(|kind| frame["type"] == *kind) {
                return frame;
            }
        }
    }

    /// The socket is told its session ended for `reason`, then closed with 4001.
    pub async fn expect_revoked(&mut self, reason: &str) {
        let event = self.next_json().await;
        assert_eq!(event["type"], "session_revoked");
        assert_eq!(event["reason"], reason);
        assert_eq!(self.close_code(Duration::from_secs(5)).await, 4001);
    }

    /// Waits for the server's close frame and answers its code.
    pub async fn close_code(&mut self, within: Duration) -> u16 {
        loop {
            let message = tokio::time::timeout(within, self.stream.next())
                .await
                .expect("no close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return 1005,
                Some(Ok(Message::Text(text))) => {
                    panic!("unexpected frame before the close: {text}")
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("socket error before a close frame: {error}"),
                None => panic!("the socket ended without a close frame"),
            }
        }
    }

    pub async fn send(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// Asserts that nothing but pings arrives for a short while.
    pub async fn assert_quiet(&mut self) {
        let quiet = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    other => return other,
                }
            }
        })
        .await;
        assert!(quiet.is_err(), "unexpected frame: {quiet:?}");
    }
}
