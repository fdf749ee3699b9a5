//! The durable mail outbox and its sender.
//!
//! - `Mailer::queue` inserts into `mail_outbox` on the connection it is given: the caller's transaction. The mail
//!   therefore exists exactly when the change that caused it commits. Callers wake the sender after the commit.
//!   Nothing is sent on the request path. Every mail is queued in a transaction, the refresh-token-reuse notice
//!   included (through `end_sessions_telling`).
//! - The payload is the mail serialised to JSON and sealed with XChaCha20-Poly1305 under a key derived from
//!   `OTP_SECRET`, with a random 24-byte nonce. It may hold a code, so it is set to NULL once the mail is sent or
//!   dropped.
//! - One sender task per node wakes when notified or every second and reads up to 20 due rows
//!   (`sent_at IS NULL`, `next_attempt_ms <= now`, claim free). It claims each with
//!
//!   ```text
//!   UPDATE ... SET claimed_until_ms = now + 30 s, attempts = attempts + 1
//!   WHERE id = ? AND sent_at IS NULL AND (claimed_until_ms IS NULL OR claimed_until_ms < now)
//!   ```
//!
//!   Only the node whose update changed the row sends it.
//! - Transport: lettre's SMTP transport (10 s timeout) when `SMTP_URL` is set, otherwise an `.eml` file in
//!   `DATA_DIR/mail/`.
//! - A failed send sets `next_attempt_ms` to now plus 1 s, 2 s, 4 s, ... up to 5 minutes, and clears the claim.
//!   A row the SMTP server rejects for good, whose payload cannot be opened, or that is still unsent a day after
//!   it was created, is dropped (`sent_at` set, payload erased, `last_error` says why).
//! - Delivery is at least once. If a node crashes after the SMTP server accepted a mail but before it marked the
//!   row sent, the claim expires after 30 s and a sender sends the mail again.

use std::{path::PathBuf, sync::Arc, time::Duration};

use entity::mail_outbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::Mailbox};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::Mail;
use crate::services::now_ms;
use crate::{sealing::Sealer, secret::Secret, tokens::HmacKey};

/// How long a sender may hold a mail before another may take it over.
const CLAIM_MS: i64 = 30_000;
/// Retries back off from one second up to five minutes.
const LONGEST_RETRY_MS: i64 = 300_000;
/// A mail still unsent after a day is dropped (its codes died long before).
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::days(1);
const BATCH: u64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("MAIL_FROM is not a mailbox")]
    From,
    #[error("SMTP_URL is not usable: {0}")]
    Url(&'static str),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Queues mail in the outbox and wakes the sender.
#[derive(Clone)]
pub struct Mailer {
    sealer: Arc<Sealer>,
    wake: Arc<Notify>,
}

impl Mailer {
    /// Starts the sender. Without `smtp_url`, every mail becomes an `.eml` file in `mail_dir`.
    pub fn start(
        database: DatabaseConnection,
        smtp_url: Option<&Secret>,
        from: &str,
        mail_dir: PathBuf,
        otp_secret: &Secret,
    ) -> Result<Self, MailerError> {
        let from: Mailbox = from.parse().map_err(|_| MailerError::From)?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    // The URL may hold credentials: only the kind of problem is told.
                    .map_err(|error| MailerError::Url(if error.is_client() { "malformed" } else { "refused" }))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => Transport::Files(mail_dir),
        };
        let sealer = Arc::new(Sealer::new(HmacKey::derive(otp_secret, "authd mail outbox").mac(&[])));
        let mailer = Self {
            sealer,
            wake: Arc::new(Notify::new()),
        };
        let sender = Sender {
            database,
            transport,
            from,
            mailer: mailer.clone(),
        };
        tokio::spawn(sender.run());
        Ok(mailer)
    }

    /// Writes a mail to the outbox on `connection` (the caller's transaction, so the mail exists exactly
    /// when the change that caused it does). Call `wake` after the commit.
    pub async fn queue(&self, connection: &impl ConnectionTrait, to: &str, mail: &Mail) -> Result<(), DbErr> {
        let payload = self
            .seal(mail)
            .map_err(|_| DbErr::Custom("cannot seal a mail".to_owned()))?;
        mail_outbox::Entity::insert(mail_outbox::ActiveModel {
            id: NotSet,
            recipient: Set(to.to_owned()),
            kind: Set(mail.kind().to_owned()),
            payload: Set(Some(payload)),
            created_at: Set(crate::services::now()),
            attempts: Set(0),
            next_attempt_ms: Set(0),
            claimed_until_ms: Set(None),
            sent_at: Set(None),
            last_error: Set(None),
        })
        .exec(connection)
        .await?;
        Ok(())
    }

    /// Queues a mail that no other change goes with, and wakes the sender.
    pub async fn send(&self, connection: &impl ConnectionTrait, to: &str, mail: &Mail) -> Result<(), DbErr> {
        self.queue(connection, to, mail).await?;
        self.wake();
        Ok(())
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn seal(&self, mail: &Mail) -> Result<String, ()> {
        let plain = serde_json::to_vec(mail).map_err(|_| ())?;
        Ok(self.sealer.seal(&plain, &[]))
    }

    fn open(&self, payload: &str) -> Option<Mail> {
        let plain = self.sealer.open(payload, &[])?;
        serde_json::from_slice(&plain).ok()
    }
}

struct Sender {
    database: DatabaseConnection,
    transport: Transport,
    from: Mailbox,
    mailer: Mailer,
}

impl Sender {
    async fn run(self) {
        loop {
            match self.deliver_due().await {
                Ok(delivered) if delivered > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "the mail outbox could not be read"),
            }
            tokio::select! {
                _ = self.mailer.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Sends the mails that are due; answers how many rows it handled.
    async fn deliver_due(&self) -> Result<usize, DbErr> {
        let now = now_ms();
        let due = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::SentAt.is_null())
            .filter(mail_outbox::Column::NextAttemptMs.lte(now))
            .filter(
                mail_outbox::Column::ClaimedUntilMs
                    .is_null()
                    .or(mail_outbox::Column::ClaimedUntilMs.lt(now)),
            )
            .order_by_asc(mail_outbox::Column::Id)
            .limit(BATCH)
            .all(&self.database)
            .await?;
        let mut handled = 0;
        for row in due {
            // Exactly one sender, on any node, takes each mail; each claim runs from its own moment, as
            // sending the ones before it may have taken a while.
            let now = now_ms();
            let claimed = mail_outbox::Entity::update_many()
                .col_expr(mail_outbox::Column::ClaimedUntilMs, Expr::value(now + CLAIM_MS))
                .col_expr(
                    mail_outbox::Column::Attempts,
                    Expr::col(mail_outbox::Column::Attempts).add(1),
                )
                .filter(mail_outbox::Column::Id.eq(row.id))
                .filter(mail_outbox::Column::SentAt.is_null())
                .filter(
                    mail_outbox::Column::ClaimedUntilMs
                        .is_null()
                        .or(mail_outbox::Column::ClaimedUntilMs.lt(now)),
                )
                .exec(&self.database)
                .await?;
            if claimed.rows_affected == 1 {
                self.deliver(row).await?;
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn deliver(&self, row: mail_outbox::Model) -> Result<(), DbErr> {
        let mail = row.payload.as_deref().and_then(|payload| self.mailer.open(payload));
        let outcome = match &mail {
            None => Err("unreadable"),
            Some(_) if crate::services::now() - row.created_at > GIVE_UP_AFTER => Err("expired"),
            Some(mail) => self.transmit(&row.recipient, mail).await,
        };
        let finished = match outcome {
            Ok(()) => {
                tracing::info!(id = row.id, kind = %row.kind, "mail sent");
                Some(None)
            }
            Err(reason @ ("unreadable" | "expired" | "rejected")) => {
                tracing::error!(id = row.id, kind = %row.kind, reason, "mail dropped");
                Some(Some(format!("dropped: {reason}")))
            }
            Err(reason) => {
                let attempts = row.attempts + 1;
                let delay = Ord::min(
                    1000i64.saturating_mul(1i64 << attempts.clamp(0, 20).saturating_sub(1)),
                    LONGEST_RETRY_MS,
                );
                tracing::warn!(id = row.id, kind = %row.kind, attempts, reason, "mail not sent yet");
                mail_outbox::Entity::update_many()
                    .col_expr(mail_outbox::Column::NextAttemptMs, Expr::value(now_ms() + delay))
                    .col_expr(mail_outbox::Column::ClaimedUntilMs, Expr::value(Option::<i64>::None))
                    .col_expr(mail_outbox::Column::LastError, Expr::value(reason))
                    .filter(mail_outbox::Column::Id.eq(row.id))
                    .exec(&self.database)
                    .await?;
                None
            }
        };
        if let Some(last_error) = finished {
            // The payload may hold a code: it is erased as soon as it is of no more use.
            mail_outbox::Entity::update_many()
                .col_expr(mail_outbox::Column::SentAt, Expr::value(crate::services::now()))
                .col_expr(mail_outbox::Column::Payload, Expr::value(Option::<String>::None))
                .col_expr(mail_outbox::Column::ClaimedUntilMs, Expr::value(Option::<i64>::None))
                .col_expr(mail_outbox::Column::LastError, Expr::value(last_error))
                .filter(mail_outbox::Column::Id.eq(row.id))
                .exec(&self.database)
                .await?;
        }
        Ok(())
    }

    async fn transmit(&self, to: &str, mail: &Mail) -> Result<(), &'static str> {
        let message = mail.build(&self.from, to).map_err(|_| "unreadable")?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|error| {
                tracing::debug!(%error, "smtp");
                if error.is_permanent() {
                    "rejected"
                } else {
                    "unreachable"
                }
            }),
            Transport::Files(directory) => {
                let path = directory.join(format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S"),
                    Uuid::now_v7()
                ));
                tokio::fs::create_dir_all(directory).await.map_err(|_| "unwritable")?;
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|_| "unwritable")?;
                tracing::info!(kind = mail.kind(), path = %path.display(), "mail written");
                Ok(())
            }
        }
    }
}
