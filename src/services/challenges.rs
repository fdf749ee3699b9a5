//! Sign-ins that proved one factor and wait for the second.
//!
//! A password sign-in of an account with a second factor, or a mailed-code sign-in of an account with an
//! authenticator app or a passkey, answers a challenge instead of tokens: a `login_challenges` row naming the
//! methods that may finish it (`email_otp` when the mailed second factor is on; `totp` and `recovery_code` when
//! an app is; `webauthn` when the account has passkeys, with the passkey ceremony's state) and what the first
//! step proved. `POST /api/auth/login/verify` finishes it with one of those methods; the challenge is used up
//! by a conditional UPDATE, so a challenge signs in once whatever methods race for it.
//!
//! With `email_otp` among the methods a code bound to the challenge is mailed at once: no cooldown, so a second
//! sign-in a moment after the first gets its own code, but at most `CHALLENGE_MAILS_PER_HOUR` such mails an hour.
//! Past that, an account with an app gets a challenge without the mailed method; one without is answered its
//! newest live challenge, whose code was mailed already, or `rate_limited` when none is left.

use entity::{login_challenge, otp as otp_entity, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, sea_query::Expr};
use uuid::Uuid;

use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::{
    AppState, ClientInfo,
    factors::{self, CodeFactor},
    now, otp, passkeys, seconds,
    sessions::{self, SignedIn},
};
use crate::{
    domain::{Authentication, OtpPurpose},
    email::Mail,
    error::{AppError, AppResult},
};

/// How a sign-in step ended: signed in, or waiting for a second factor.
pub enum LoginOutcome {
    SignedIn(SignedIn),
    SecondFactor(Challenge),
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: Uuid,
    pub methods: Vec<&'static str>,
    pub expires_in: u64,
    /// With `webauthn` among the methods: the options for `navigator.credentials.get`.
    pub webauthn: Option<RequestChallengeResponse>,
}

/// A way to finish a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    EmailOtp,
    Totp,
    RecoveryCode,
    Webauthn,
}

impl ChallengeMethod {
    const ALL: [Self; 4] = [Self::EmailOtp, Self::Totp, Self::RecoveryCode, Self::Webauthn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailOtp => "email_otp",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Webauthn => "webauthn",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == stored)
    }
}

/// What the user answers a challenge with.
pub enum Answer<'a> {
    Code(&'a str),
    Passkey(&'a PublicKeyCredential),
}

/// The methods that may finish a sign-in whose first step proved `first`; empty when the account needs no
/// second step.
pub async fn second_steps(
    state: &AppState,
    account: &user::Model,
    first: &Authentication,
) -> AppResult<Vec<ChallengeMethod>> {
    let has_passkeys = passkeys::count(state, account.id).await? > 0;
    Ok(second_steps_of(account, first, has_passkeys))
}

/// `second_steps` when whether the account has passkeys was read already.
pub fn second_steps_of(account: &user::Model, first: &Authentication, has_passkeys: bool) -> Vec<ChallengeMethod> {
    let mut methods = Vec::new();
    // A mailed code is a second factor only after a password: after a mailed code it would be the same one.
    if account.mfa_email_otp && *first == Authentication::password() {
        methods.push(ChallengeMethod::EmailOtp);
    }
    if account.mfa_totp {
        methods.extend([ChallengeMethod::Totp, ChallengeMethod::RecoveryCode]);
    }
    if has_passkeys {
        methods.push(ChallengeMethod::Webauthn);
    }
    methods
}

/// Code mails an address may get in an hour from challenged sign-ins: each needs the password, but whoever has
/// it could otherwise mail-bomb the owner.
const CHALLENGE_MAILS_PER_HOUR: u64 = 10;

/// Starts the second step for `account`, whose first step proved `first`, with `methods` from `second_steps`.
pub async fn start(
    state: &AppState,
    account: &user::Model,
    first: Authentication,
    mut methods: Vec<ChallengeMethod>,
) -> AppResult<Challenge> {
    let at = now();
    if methods.contains(&ChallengeMethod::EmailOtp) && mail_budget_spent(state, account).await? {
        if methods.len() > 1 {
            methods.retain(|method| *method != ChallengeMethod::EmailOtp);
        } else {
            return newest_live(state, account).await;
        }
    }
    let mut webauthn = None;
    let mut webauthn_state = None;
    if methods.contains(&ChallengeMethod::Webauthn) {
        match passkeys::second_step_options(state, account.id).await? {
            Some((options, ceremony)) => {
                webauthn = Some(options);
                webauthn_state = Some(ceremony);
            }
            // The last passkey was deleted a moment ago.
            None => methods.retain(|method| *method != ChallengeMethod::Webauthn),
        }
    }
    if methods.is_empty() {
        return Err(AppError::Internal(
            "a challenge for an account with no second factor".to_owned(),
        ));
    }
    let id = Uuid::now_v7();
    let expires_at = at + seconds(state.settings.otp_ttl);
    let transaction = state.store.begin_write().await?;
    login_challenge::Entity::insert(login_challenge::ActiveModel {
        id: Set(id),
        user_id: Set(account.id),
        methods: Set(methods
            .iter()
            .map(|method| method.as_str())
            .collect::<Vec<_>>()
            .join(" ")),
        auth_methods: Set(first.to_stored()),
        expires_at: Set(expires_at),
        consumed_at: Set(None),
        created_at: Set(at),
        webauthn_state: Set(webauthn_state),
    })
    .exec(&transaction)
    .await?;
    // Challenges of the account that ended long ago go with each new one, so the table stays small.
    login_challenge::Entity::delete_many()
        .filter(login_challenge::Column::UserId.eq(account.id))
        .filter(login_challenge::Column::ExpiresAt.lt(at - chrono::Duration::hours(1)))
        .exec(&transaction)
        .await?;
    let mailed = methods.contains(&ChallengeMethod::EmailOtp);
    if mailed {
        let code = otp::issue(state, &transaction, account.id, OtpPurpose::LoginChallenge, Some(id)).await?;
        let minutes = state.settings.otp_ttl.as_secs() / 60;
        state
            .mailer
            .queue(&transaction, &account.email, &Mail::ChallengeCode { code, minutes })
            .await?;
    }
    transaction.commit().await?;
    if mailed {
        state.mailer.wake();
    }
    Ok(Challenge {
        id,
        methods: methods.into_iter().map(ChallengeMethod::as_str).collect(),
        expires_in: state.settings.otp_ttl.as_secs(),
        webauthn,
    })
}

fn recent_challenge_mails(account: &user::Model) -> sea_orm::Select<entity::mail_outbox::Entity> {
    entity::mail_outbox::Entity::find()
        .filter(entity::mail_outbox::Column::Recipient.eq(account.email.clone()))
        .filter(entity::mail_outbox::Column::Kind.eq(Mail::CHALLENGE_CODE_KIND))
        .filter(entity::mail_outbox::Column::CreatedAt.gt(now() - chrono::Duration::hours(1)))
}

async fn mail_budget_spent(state: &AppState, account: &user::Model) -> AppResult<bool> {
    Ok(recent_challenge_mails(account).count(state.store.connection()).await? >= CHALLENGE_MAILS_PER_HOUR)
}

/// The challenge of the account's newest live mailed code, answered again when no more code mails may go out
/// (only accounts with no other second factor come here, so the mailed code is its one method); `rate_limited` until the
/// hour's oldest mail ages out when none is left. A newer code replaces an older one, so only the newest
/// challenge can still be finished by mail.
async fn newest_live(state: &AppState, account: &user::Model) -> AppResult<Challenge> {
    let at = now();
    let live = otp_entity::Entity::find()
        .filter(otp_entity::Column::UserId.eq(account.id))
        .filter(otp_entity::Column::Purpose.eq(OtpPurpose::LoginChallenge.as_str()))
        .filter(otp_entity::Column::ConsumedAt.is_null())
        .filter(otp_entity::Column::ExpiresAt.gt(at))
        .order_by_desc(otp_entity::Column::CreatedAt)
        .one(state.store.connection())
        .await?;
    if let Some(live) = live
        && let Some(id) = live.challenge_id
    {
        return Ok(Challenge {
            id,
            methods: vec![ChallengeMethod::EmailOtp.as_str()],
            expires_in: u64::try_from((live.expires_at - at).num_seconds()).unwrap_or(0),
            webauthn: None,
        });
    }
    let oldest = recent_challenge_mails(account)
        .order_by_asc(entity::mail_outbox::Column::CreatedAt)
        .one(state.store.connection())
        .await?
        .map_or(at, |mail| mail.created_at);
    Err(AppError::RateLimited {
        retry_after_seconds: u64::try_from((oldest + chrono::Duration::hours(1) - at).num_seconds()).unwrap_or(1),
    })
}

async fn mailed_code_lives(state: &AppState, challenge: Uuid) -> AppResult<bool> {
    Ok(otp_entity::Entity::find()
        .filter(otp_entity::Column::ChallengeId.eq(challenge))
        .filter(otp_entity::Column::ConsumedAt.is_null())
        .count(state.store.connection())
        .await?
        > 0)
}

/// Ends the user's pending challenges: a new password, or none, decides what the first step proves now.
pub async fn end_pending(connection: &impl sea_orm::ConnectionTrait, user: Uuid) -> AppResult<()> {
    login_challenge::Entity::delete_many()
        .filter(login_challenge::Column::UserId.eq(user))
        .exec(connection)
        .await?;
    Ok(())
}

fn methods_of(challenge: &login_challenge::Model) -> Vec<ChallengeMethod> {
    challenge
        .methods
        .split_whitespace()
        .filter_map(ChallengeMethod::parse)
        .collect()
}

/// Completes a challenged sign-in with one of its methods.
pub async fn finish(
    state: &AppState,
    challenge: Uuid,
    method: ChallengeMethod,
    answer: Answer<'_>,
    client: &ClientInfo,
) -> AppResult<SignedIn> {
    let stored = login_challenge::Entity::find_by_id(challenge)
        .one(state.store.connection())
        .await?
        .filter(|row| row.consumed_at.is_none() && row.expires_at > now())
        .filter(|row| methods_of(row).contains(&method))
        .ok_or(AppError::ChallengeInvalid)?;
    let account = user::Entity::find_by_id(stored.user_id)
        .one(state.store.connection())
        .await?
        .ok_or(AppError::ChallengeInvalid)?;
    let passkey = matches!(answer, Answer::Passkey(_));
    // A newer challenge's mailed code replaced this one's: this challenge can no longer be finished by mail, and
    // a try at it is no wrong code.
    if method == ChallengeMethod::EmailOtp && !mailed_code_lives(state, challenge).await? {
        return Err(AppError::ChallengeInvalid);
    }
    match (method, answer) {
        (ChallengeMethod::EmailOtp, Answer::Code(code)) => otp::check(
            state,
            &account.email,
            Some(account.id),
            OtpPurpose::LoginChallenge,
            Some(challenge),
            code,
        )
        .await
        .map(|_| ())
        .map_err(|error| match error {
            AppError::OtpExpired => AppError::ChallengeInvalid,
            other => other,
        })?,
        (ChallengeMethod::Totp, Answer::Code(code)) => factors::verify(state, &account, CodeFactor::Totp, code).await?,
        (ChallengeMethod::RecoveryCode, Answer::Code(code)) => {
            factors::verify(state, &account, CodeFactor::RecoveryCode, code).await?
        }
        (ChallengeMethod::Webauthn, Answer::Passkey(credential)) => {
            let ceremony = stored.webauthn_state.as_deref().ok_or(AppError::ChallengeInvalid)?;
            passkeys::finish_second_step(state, account.id, ceremony, credential).await?
        }
        // The handler pairs each method with its kind of answer.
        _ => return Err(AppError::ChallengeInvalid),
    }
    // Two methods may race for one challenge (the mailed code and the app): one sign-in comes of it.
    let consumed = login_challenge::Entity::update_many()
        .col_expr(login_challenge::Column::ConsumedAt, Expr::value(now()))
        .filter(login_challenge::Column::Id.eq(challenge))
        .filter(login_challenge::Column::ConsumedAt.is_null())
        .exec(state.store.connection())
        .await?;
    if consumed.rows_affected == 0 {
        return Err(AppError::ChallengeInvalid);
    }
    let first = Authentication::parse(&stored.auth_methods);
    let authentication = if passkey {
        first.and_passkey()
    } else {
        first.and_second_code()
    };
    sessions::sign_in(state, &account, client, &authentication).await
}
