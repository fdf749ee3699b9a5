use std::{path::PathBuf, time::Duration};

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::Mailbox};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Mail;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("MAIL_FROM is not a mailbox")]
    From,
    #[error("SMTP_URL is not usable: {0}")]
    Url(String),
}

/// Hands mails to a background task; `send` never waits for the network.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::UnboundedSender<(String, Mail)>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Mailer {
    /// Starts the sender task. Without `smtp_url`, every mail becomes an `.eml` file in `mail_dir`.
    pub fn start(
        smtp_url: Option<&Secret>,
        from: &str,
        mail_dir: PathBuf,
    ) -> Result<Self, MailerError> {
        let from: Mailbox = from.parse().map_err(|_| MailerError::From)?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    // The URL may hold credentials: only the kind of error is shown.
                    .map_err(|error| {
                        MailerError::Url(if error.is_client() {
                            "malformed".to_owned()
                        } else {
                            "rejected".to_owned()
                        })
                    })?
                    .timeout(Some(Duration::from_secs(10)))
                    .build(),
            ),
            None => Transport::Files(mail_dir),
        };
        let (queue, mut receiver) = mpsc::unbounded_channel::<(String, Mail)>();
        tokio::spawn(async move {
            while let Some((to, mail)) = receiver.recv().await {
                deliver(&transport, &from, &to, &mail).await;
            }
        });
        Ok(Self { queue })
    }

    /// Queues a mail to `to`.
    pub fn send(&self, to: &str, mail: Mail) {
        if self.queue.send((to.to_owned(), mail)).is_err() {
            tracing::error!("the mail sender has stopped; a mail was dropped");
        }
    }
}

async fn deliver(transport: &Transport, from: &Mailbox, to: &str, mail: &Mail) {
    let message = match mail.build(from, to) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(kind = mail.kind(), %error, "cannot build a mail");
            return;
        }
    };
    match transport {
        Transport::Smtp(smtp) => {
            let mut delay = Duration::from_millis(200);
            for attempt in 1..=5 {
                match smtp.send(message.clone()).await {
                    Ok(_) => {
                        tracing::info!(kind = mail.kind(), "mail sent");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(kind = mail.kind(), attempt, error = %error, "mail not sent yet");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
            tracing::error!(kind = mail.kind(), "mail given up after 5 attempts");
        }
        Transport::Files(directory) => {
            let path = directory.join(format!(
                "{}-{}.eml",
                chrono::Utc::now().format("%Y%m%dT%H%M%S"),
                Uuid::now_v7()
            ));
            let written = async {
                tokio::fs::create_dir_all(directory).await?;
                tokio::fs::write(&path, message.formatted()).await
            }
            .await;
            match written {
                Ok(()) => {
                    tracing::info!(kind = mail.kind(), path = %path.display(), "mail written")
                }
                Err(error) => {
                    tracing::error!(kind = mail.kind(), %error, "cannot write a mail file")
                }
            }
        }
    }
}
