//! Following authd's revocation feed: every ended session goes into the verifier's set until its tokens can no
//! longer be presented. On any failure the task reconnects half a second later with `Last-Event-ID`, so nothing
//! is missed and nothing is applied twice.

use std::{
    sync::Weak,
    time::{Duration, Instant},
};

use serde::Deserialize;
use uuid::Uuid;

use crate::Inner;

const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Whether the feed is up, and since when it has been down.
pub struct FeedState {
    /// `None` while connected and past its snapshot.
    down_since: Option<Instant>,
    last_event_id: Option<String>,
}

impl FeedState {
    pub fn new() -> Self {
        Self {
            down_since: Some(Instant::now()),
            last_event_id: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.down_since.is_none()
    }

    pub fn down_longer_than(&self, bound: Duration) -> bool {
        self.down_since.is_some_and(|since| since.elapsed() > bound)
    }

    fn connected(&mut self) {
        self.down_since = None;
    }

    fn disconnected(&mut self) {
        self.down_since.get_or_insert_with(Instant::now);
    }
}

#[derive(Deserialize)]
struct Ended {
    session_id: Uuid,
    valid_until: chrono::DateTime<chrono::Utc>,
}

/// Follows the feed for as long as the verifier lives.
pub fn spawn(inner: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let request = follow_request(&strong);
            drop(strong);
            if let Err(error) = follow(&inner, request).await {
                tracing::warn!(%error, "the authd revocation feed failed; reconnecting");
            }
            let Some(strong) = inner.upgrade() else {
                return;
            };
            if let Ok(mut feed) = strong.feed.lock() {
                feed.disconnected();
            }
            drop(strong);
            tokio::time::sleep(RECONNECT_DELAY).await;
        }
    });
}

fn follow_request(inner: &Inner) -> reqwest::RequestBuilder {
    let mut request = inner
        .client
        .get(format!("{}/api/revocations/stream", inner.config.authd_url))
        .bearer_auth(&inner.config.backend_key);
    if let Some(id) = inner.feed.lock().ok().and_then(|feed| feed.last_event_id.clone()) {
        request = request.header("Last-Event-ID", id);
    }
    request
}

async fn follow(inner: &Weak<Inner>, request: reqwest::RequestBuilder) -> Result<(), String> {
    let mut response = request
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|error| error.to_string())?;
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(inner) = inner.upgrade() else {
                return Ok(());
            };
            apply(&inner, &block);
        }
    }
    Err("the stream ended".to_owned())
}

/// One block of the stream: an event, or a comment (`: live` once the snapshot is sent, `: heartbeat`).
fn apply(inner: &Inner, block: &str) {
    let field = |name: &str| {
        block
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    if block.lines().any(|line| line.trim() == ": live") {
        if let Ok(mut feed) = inner.feed.lock() {
            feed.connected();
        }
        return;
    }
    let (Some(id), Some(data)) = (field("id:"), field("data:")) else {
        return;
    };
    let Ok(ended) = serde_json::from_str::<Ended>(&data) else {
        tracing::warn!("an unreadable revocation feed event");
        return;
    };
    let now = chrono::Utc::now();
    if let Ok(mut revoked) = inner.revoked.write() {
        // Sessions whose tokens can no longer be presented are forgotten as new ones come.
        revoked.retain(|_, valid_until| *valid_until > now);
        if ended.valid_until > now {
            revoked.insert(ended.session_id, ended.valid_until);
        }
    }
    if let Ok(mut feed) = inner.feed.lock() {
        feed.last_event_id = Some(id);
    }
}
