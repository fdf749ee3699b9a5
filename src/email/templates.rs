//! Every mail kind, with its subject and its text and HTML bodies; user text is escaped in the HTML. The kinds:
//! verification code, "you already have an account", sign-in code, password-reset code, new sign-in on a device
//! label not seen before for the account, password changed, a session ended for refresh-token reuse, and the
//! changes of second factors (authenticator app added or removed, a recovery code used, codes replaced, a passkey
//! added or removed).

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// Every mail authd sends. Codes appear only in the body, never in a subject or a log.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mail {
    /// Names the registration the code confirms (its time, device and IP), whoever asked for the code, so an
    /// owner can tell a stranger's sign-up from theirs. A code from before any registration names none.
    VerifyEmail {
        code: String,
        minutes: u64,
        device: Option<String>,
        ip: Option<String>,
        at: Option<DateTime<Utc>>,
    },
    AlreadyRegistered,
    LoginCode {
        code: String,
        minutes: u64,
    },
    /// The code of a password sign-in's second step: the same words as a sign-in code, a kind of its own so
    /// that these mails can be counted apart.
    ChallengeCode {
        code: String,
        minutes: u64,
    },
    PasswordResetCode {
        code: String,
        minutes: u64,
    },
    NewSignIn {
        device: String,
        ip: String,
        at: DateTime<Utc>,
    },
    PasswordChanged,
    RefreshTokenReused {
        device: String,
    },
    AuthenticatorAdded,
    AuthenticatorRemoved,
    RecoveryCodeUsed {
        left: u64,
    },
    RecoveryCodesReplaced,
    PasskeyAdded {
        name: String,
    },
    PasskeyRemoved {
        name: String,
    },
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.kind())
    }
}

impl Mail {
    /// A name for logs and the outbox; carries nothing secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::AlreadyRegistered => "already_registered",
            Self::LoginCode { .. } => "login_code",
            Self::ChallengeCode { .. } => Self::CHALLENGE_CODE_KIND,
            Self::PasswordResetCode { .. } => "password_reset_code",
            Self::NewSignIn { .. } => "new_sign_in",
            Self::PasswordChanged => "password_changed",
            Self::RefreshTokenReused { .. } => "refresh_token_reused",
            Self::AuthenticatorAdded => "authenticator_added",
            Self::AuthenticatorRemoved => "authenticator_removed",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::RecoveryCodesReplaced => "recovery_codes_replaced",
            Self::PasskeyAdded { .. } => "passkey_added",
            Self::PasskeyRemoved { .. } => "passkey_removed",
        }
    }

    fn subject(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "Confirm your email address",
            Self::AlreadyRegistered => "You already have an account",
            Self::LoginCode { .. } | Self::ChallengeCode { .. } => "Your sign-in code",
            Self::PasswordResetCode { .. } => "Your password reset code",
            Self::NewSignIn { .. } => "New sign-in to your account",
            Self::PasswordChanged => "Your password was changed",
            Self::RefreshTokenReused { .. } => "A session of yours was ended for your safety",
            Self::AuthenticatorAdded => "An authenticator app was added to your account",
            Self::AuthenticatorRemoved => "Two-step verification by authenticator app was turned off",
            Self::RecoveryCodeUsed { .. } => "A recovery code of yours was used",
            Self::RecoveryCodesReplaced => "Your recovery codes were replaced",
            Self::PasskeyAdded { .. } => "A passkey was added to your account",
            Self::PasskeyRemoved { .. } => "A passkey was removed from your account",
        }
    }

    /// Paragraphs of plain text; user-supplied parts are escaped when they go into HTML.
    fn paragraphs(&self) -> Vec<String> {
        match self {
            Self::VerifyEmail {
                code,
                minutes,
                device,
                ip,
                at,
            } => {
                let mut paragraphs = vec![
                    "Use this code to confirm your email address.".to_owned(),
                    format!("Code: {code}"),
                    format!("It works once, for {minutes} minutes."),
                ];
                if let (Some(device), Some(ip), Some(at)) = (device, ip, at) {
                    paragraphs.push(format!(
                        "It confirms the sign-up made at {} from {device} ({ip}).",
                        at.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
                paragraphs.push(
                    "If you did not sign up, ignore this mail and give the code to nobody: whoever types it signs in \
                     as this address."
                        .to_owned(),
                );
                paragraphs
            }
            Self::AlreadyRegistered => vec![
                "Someone tried to create an account with this email address, but you already have one.".to_owned(),
                "If it was you, sign in or reset your password. If not, you can ignore this mail.".to_owned(),
            ],
            Self::LoginCode { code, minutes } | Self::ChallengeCode { code, minutes } => vec![
                "Use this code to sign in.".to_owned(),
                format!("Code: {code}"),
                format!("It works once, for {minutes} minutes. If you did not ask for it, ignore this mail."),
            ],
            Self::PasswordResetCode { code, minutes } => vec![
                "Use this code to choose a new password.".to_owned(),
                format!("Code: {code}"),
                format!("It works once, for {minutes} minutes. If you did not ask for it, ignore this mail."),
            ],
            Self::NewSignIn { device, ip, at } => vec![
                "Your account was just signed in on a new device.".to_owned(),
                format!("Device: {device}"),
                format!("IP address: {ip}"),
                format!("Time: {}", at.format("%Y-%m-%d %H:%M UTC")),
                "If it was not you, change your password: that signs every other device out.".to_owned(),
            ],
            Self::PasswordChanged => vec![
                "The password of your account was changed and your other devices were signed out.".to_owned(),
                "If it was not you, reset your password now.".to_owned(),
            ],
            Self::RefreshTokenReused { device } => vec![
                format!("A sign-in token of your session on {device} was used twice, which can mean it was copied."),
                "We ended that session. If you see this often, change your password.".to_owned(),
            ],
            Self::AuthenticatorAdded => vec![
                "An authenticator app now gives the second step of every sign-in to your account.".to_owned(),
                "If it was not you, reset your password now and contact support.".to_owned(),
            ],
            Self::AuthenticatorRemoved => vec![
                "Signing in to your account no longer asks for a code from your authenticator app.".to_owned(),
                "If it was not you, reset your password now and set the app up again.".to_owned(),
            ],
            Self::RecoveryCodeUsed { left } => vec![
                "One of your recovery codes was just used to sign in or to confirm a change.".to_owned(),
                format!("Codes left: {left}. Make a new set in your account when few are left."),
                "If it was not you, reset your password now: someone holds your codes.".to_owned(),
            ],
            Self::RecoveryCodesReplaced => vec![
                "A new set of recovery codes was made for your account; the earlier codes no longer work.".to_owned(),
                "If it was not you, reset your password now.".to_owned(),
            ],
            Self::PasskeyAdded { name } => vec![
                format!("A passkey named \"{name}\" can now sign in to your account."),
                "If it was not you, reset your password now and delete the passkey in your account.".to_owned(),
            ],
            Self::PasskeyRemoved { name } => vec![
                format!("The passkey named \"{name}\" was removed from your account and no longer signs in."),
                "If it was not you, reset your password now.".to_owned(),
            ],
        }
    }

    /// The kind of a second-step code mail, as the outbox records it.
    pub const CHALLENGE_CODE_KIND: &'static str = "challenge_code";

    pub fn build(&self, from: &Mailbox, to: &str) -> Result<lettre::Message, lettre::error::Error> {
        let to: Mailbox = to.parse().map_err(|_| lettre::error::Error::MissingTo)?;
        let paragraphs = self.paragraphs();
        let text = format!("{}\n\n-- \nauthd\n", paragraphs.join("\n\n"));
        let html = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\n{}\n<p style=\"color:#666\">authd</p>\n</body></html>\n",
            paragraphs
                .iter()
                .map(|paragraph| format!("<p>{}</p>", escape_html(paragraph)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject())
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(html)),
            )
    }
}

pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_in_html() {
        let mail = Mail::NewSignIn {
            device: "<script>x</script>".to_owned(),
            ip: "127.0.0.1".to_owned(),
            at: Utc::now(),
        };
        let from: Mailbox = "authd <no-reply@localhost>".parse().unwrap();
        let message = String::from_utf8(mail.build(&from, "a@example.com").unwrap().formatted()).unwrap();
        assert!(message.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!message.contains("<p>Device: <script>"));
    }
}
