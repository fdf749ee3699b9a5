//! A small but real SMTP server: it speaks the protocol to lettre over TCP and keeps what it receives.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::{Mutex, Notify},
};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub recipients: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }

    /// The message with quoted-printable soft line breaks joined, so a sentence reads as one line.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=\n", "")
    }

    /// The six-digit code after "Code: ".
    pub fn code(&self) -> Option<String> {
        let start = self.data.find("Code: ")? + "Code: ".len();
        let code: String = self.data[start..].chars().take(6).collect();
        (code.len() == 6 && code.chars().all(|character| character.is_ascii_digit())).then_some(code)
    }
}

#[derive(Clone)]
pub struct MailServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
    /// The listener and every open connection, so the server can be stopped like a crashed relay.
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl MailServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Self {
            port,
            mails: Arc::default(),
            arrived: Arc::default(),
            tasks: Arc::default(),
        };
        server.accept(listener);
        server
    }

    fn accept(&self, listener: TcpListener) {
        let accepting = self.clone();
        let handle = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = accepting.clone();
                let task = tokio::spawn(async move {
                    if let Err(error) = connection.serve(stream).await {
                        eprintln!("smtp connection failed: {error}");
                    }
                });
                accepting.tasks.lock().unwrap().push(task.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(handle.abort_handle());
    }

    /// Stops listening and drops every connection: connecting is refused until `resume`.
    pub async fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Listens again on the same port.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.accept(listener);
    }

    async fn serve(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer.write_all(b"220 localhost ESMTP test\r\n").await?;
        let mut recipients = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_ascii_uppercase();
            if command.starts_with("EHLO") {
                writer
                    .write_all(b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?;
            } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") || command.starts_with("NOOP") {
                writer.write_all(b"250 OK\r\n").await?;
            } else if command.starts_with("RSET") {
                recipients.clear();
                writer.write_all(b"250 OK\r\n").await?;
            } else if command.starts_with("RCPT TO") {
                let address = line.trim_end()[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_lowercase();
                recipients.push(address);
                writer.write_all(b"250 OK\r\n").await?;
            } else if command == "DATA" {
                writer.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                }
                self.mails.lock().await.push(ReceivedMail {
                    recipients: std::mem::take(&mut recipients),
                    data,
                });
                self.arrived.notify_waiters();
                writer.write_all(b"250 queued\r\n").await?;
            } else if command.starts_with("QUIT") {
                writer.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                writer.write_all(b"502 not implemented\r\n").await?;
            }
        }
    }

    /// Every mail received so far for `address`.
    pub async fn mails_to(&self, address: &str) -> Vec<ReceivedMail> {
        let address = address.to_lowercase();
        self.mails
            .lock()
            .await
            .iter()
            .filter(|mail| mail.recipients.contains(&address))
            .cloned()
            .collect()
    }

    /// Waits until `address` has received more than `already` mails, and answers the newest.
    pub async fn wait_for_mail(&self, address: &str, already: usize) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self.arrived.notified();
            let mails = self.mails_to(address).await;
            if mails.len() > already {
                return mails.last().cloned().unwrap();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let all = self
                    .mails
                    .lock()
                    .await
                    .iter()
                    .map(|mail| mail.recipients.clone())
                    .collect::<Vec<_>>();
                panic!("no mail for {address} within 15 s; this server has: {all:?}");
            }
        }
    }

    /// Waits until `address` has received a mail with `subject`.
    pub async fn wait_for_subject(&self, address: &str, subject: &str) -> ReceivedMail {
        self.wait_for_new_subject(address, subject, 0).await
    }

    /// How many mails with `subject` `address` has received.
    pub async fn count_subject(&self, address: &str, subject: &str) -> usize {
        self.mails_to(address)
            .await
            .iter()
            .filter(|mail| mail.subject() == subject)
            .count()
    }

    /// Waits until `address` has more than `already` mails with `subject`, and answers the newest.
    pub async fn wait_for_new_subject(&self, address: &str, subject: &str, already: usize) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self.arrived.notified();
            let matching: Vec<ReceivedMail> = self
                .mails_to(address)
                .await
                .into_iter()
                .filter(|mail| mail.subject() == subject)
                .collect();
            if matching.len() > already {
                return matching.last().cloned().unwrap();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("no new mail '{subject}' for {address} within 15 s");
            }
        }
    }

    /// Asserts that `address` receives no further mail within a short wait.
    pub async fn assert_no_new_mail(&self, address: &str, already: usize) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            self.mails_to(address).await.len(),
            already,
            "an unexpected mail arrived for {address}"
        );
    }
}
