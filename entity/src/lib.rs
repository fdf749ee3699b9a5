//! Database entities of authd. Rows that hold secrets (password hashes, token and code hashes) derive no
//! `Serialize`, so they cannot be written into a response or a log by accident.
//!
//! Their `Debug` output omits the secret columns.
//!
//! # Data model
//!
//! Row ids are UUIDv7, except the auto-increment ids of `session_revocations` and `mail_outbox` and the natural
//! keys of `ws_tickets`, `session_presence` and `address_throttles`. Times are `timestamp with time zone`, except
//! the columns ending in `_ms`, which are Unix milliseconds (they are compared inside SQL and order the same way
//! on SQLite and PostgreSQL).
//!
//! Each table, what it is for, and its secret material and how it is stored:
//!
//! - `users`: one account: normalised email (unique), name, `email_verified_at`, `mfa_email_otp`, `mfa_totp`.
//!   Secret: `password_hash`, an argon2id PHC string.
//! - `sessions`: one signed-in device: IP, `User-Agent` (at most 512 characters), device label, `created_at`,
//!   `last_used_at` (moved by each rotation), `expires_at` (absolute end), `revoked_at`, `revoked_reason`. The
//!   JWT's `sid` points here; `auth_methods` (the `amr` of its tokens, space-separated) and `authenticated_at`
//!   (its sign-in or latest reauthentication: `auth_time`, and what step-up checks). Deleted with the user
//!   (foreign key, cascade). No secret.
//! - `refresh_tokens`: one link of a session's refresh chain: `session_id`, `parent_id` (the token it replaced;
//!   unique, so one successor at most), `created_at` (for a successor: the moment its parent was rotated),
//!   `rotated_at` (written only by earlier versions). Deleted with the session. Secret: `token_hash`, the hex
//!   SHA-256 of the token (unique); the token itself is never stored.
//! - `otps`: one emailed code: user, purpose, challenge id (login challenges), attempts, `expires_at`,
//!   `consumed_at`. A new code of a purpose deletes the user's older ones. Deleted with the user. Secret:
//!   `code_hash`, the hex HMAC-SHA256 of the code under a key derived from `OTP_SECRET`, bound to user, purpose
//!   and challenge.
//! - `registrations`: one registration of a not-yet-verified address: user, name, IP, device label,
//!   `created_at`; kept 24 hours, and ended with every other pending one when the address is verified or its
//!   password reset. Secrets: primary key `handle_hash`, the hex SHA-256 of the handle only the registering
//!   client holds; `password_hash`, the argon2id hash of the password it chose.
//! - `session_revocations`: the log of ended sessions: session, user, reason, `revoked_at` (indexed). No foreign
//!   key, so it outlives deleted sessions and accounts. Read at start and after a bus reconnect. Written by the
//!   trigger `session_revocation_log` (after `revoked_at` goes from NULL to a time) on both databases. No
//!   secret.
//! - `ws_tickets`: single-use WebSocket tickets: session, user, `expires_at` (30 s), `used_at`. Tickets expired
//!   for over 5 minutes are deleted whenever a new one is issued. Secret: primary key `ticket_hash`, the hex
//!   SHA-256 of the ticket.
//! - `session_presence`: which node has a WebSocket open for which session: `(node_id, session_id)` primary key,
//!   user, `seen_at`. Rows unseen for an hour are deleted by every node's heartbeat. No secret.
//! - `address_throttles`: per key `login:<email>` or `otp:<purpose>:<email>` (normalised, whether or not an
//!   account exists): `failures`, `lock_level`, `locked_until_ms`, `last_mail_ms`, `last_failure_ms`, and
//!   `code_attempts` (tries at the code an address sent none would hold, so code checks answer alike with or
//!   without an account). No secret; addresses are stored in clear.
//! - `mail_outbox`: mail waiting to be sent: recipient and kind in clear, `created_at`, `attempts`,
//!   `next_attempt_ms`, `claimed_until_ms`, `sent_at`, `last_error`. Secret: `payload`, the mail sealed with
//!   XChaCha20-Poly1305 (key derived from `OTP_SECRET`, random 24-byte nonce); set to NULL once the mail is sent
//!   or dropped.
//!
//! - `signing_keys`: the keys that sign access tokens when `ACCESS_TOKEN_ALG` is `EdDSA` or `ES256`: `kid`,
//!   `generation` (unique), algorithm, the public JWK, `created_at` (published from), `active_from` (signs
//!   from). Secret: `private_key`, the PKCS #8 key sealed with XChaCha20-Poly1305 under a key derived from
//!   `KEY_ENCRYPTION_SECRET`, its `kid` as associated data. Deleted once no token they signed can live.
//!
//! - `backend_keys`: keys of apps' backends (revocation feed, introspection): id, name, `created_at`,
//!   `revoked_at`. Secret: `key_hash`, the hex SHA-256 of the key (unique); the key is shown once at creation.
//!
//! - `backchannel_receivers`: each URL of `BACKCHANNEL_LOGOUT_URLS` with its place in the revocation log
//!   (`position`), failed attempts, `next_attempt_ms` (back-off), `claimed_until_ms` (the node delivering),
//!   `last_error`. No secret.
//!
//! - `totp_factors`: a user's authenticator app: `confirmed_at` (pending until set), `last_used_step` (the
//!   newest 30-second step accepted; older and equal steps are refused, so a code works once). Secret:
//!   `secret`, sealed with XChaCha20-Poly1305 under a key derived from `OTP_SECRET`, the user id as associated
//!   data. Deleted with the user.
//! - `recovery_codes`: ten single-use codes per user with an authenticator app: `used_at`. Secret: `code_hash`,
//!   the hex HMAC-SHA256 of the code (under a key derived from `OTP_SECRET`, bound to the user). Deleted with
//!   the user, and all at once when the set is replaced or the app turned off.
//! - `login_challenges`: a sign-in waiting for its second factor: user, the methods that may finish it, what
//!   its first step proved (`auth_methods`), `expires_at` (`OTP_TTL`), `consumed_at`, and with passkeys the
//!   passkey ceremony's state (`webauthn_state`). Deleted with the user. No secret.
//! - `passkeys`: a user's WebAuthn credentials: name, `credential_id` (base64url, unique), `credential` (the
//!   public key and flags as webauthn-rs stores them, JSON), `sign_count` (moved only forward, by a conditional
//!   UPDATE), `created_at`, `last_used_at`. Deleted with the user. No secret: public keys only.
//! - `webauthn_ceremonies`: a passkey registration or passwordless sign-in between its two requests: user (none
//!   for a passwordless sign-in), purpose, `state` (the challenge sent, JSON), `expires_at` (5 minutes). Deleted
//!   when used (the delete decides which request uses it) or when expired. No secret.
//!
//! The keys that exist only in memory are described in the authd crate's `tokens` module.
//!
//! The migrations create these indexes besides the primary and unique keys: `sessions.user_id`,
//! `refresh_tokens.session_id`, `otps.user_id`, `session_revocations.revoked_at`, `session_presence.user_id` and
//! `mail_outbox(sent_at, next_attempt_ms)`.

pub mod address_throttle;
pub mod backchannel_receiver;
pub mod backend_key;
pub mod login_challenge;
pub mod mail_outbox;
pub mod otp;
pub mod passkey;
pub mod recovery_code;
pub mod refresh_token;
pub mod registration;
pub mod session;
pub mod session_presence;
pub mod session_revocation;
pub mod signing_key;
pub mod totp_factor;
pub mod user;
pub mod webauthn_ceremony;
pub mod ws_ticket;
