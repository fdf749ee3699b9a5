use std::process::Command;

use authd::config::Settings;

const WEAK: &str = "short-secret-value";

fn authd(variables: &[(&str, &str)]) -> std::process::Output {
    let folder = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    std::fs::create_dir_all(&folder).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_authd"));
    command
        .env_clear()
        .current_dir(&folder)
        .env("DATA_DIR", folder.join("data"))
        .env("PORT", "0");
    for (name, value) in variables {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn production_refuses_a_weak_secret_and_names_it_without_its_value() {
    let output = authd(&[
        ("APP_ENV", "production"),
        ("JWT_ACCESS_SECRET", WEAK),
        ("OTP_SECRET", "an-otp-secret-that-is-long-enough-for-production"),
        ("SMTP_URL", "smtp://127.0.0.1:1"),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_ACCESS_SECRET"), "{stderr}");
    assert!(!stderr.contains(WEAK), "the secret was printed: {stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(WEAK));
    assert!(!stderr.contains("OTP_SECRET"), "a good secret was reported: {stderr}");
}

#[test]
fn production_refuses_guessable_secrets_of_any_length() {
    let repeated = "a".repeat(64);
    let pattern = "password".repeat(5);
    let period_twenty = "0123456789abcdefghij".repeat(3);
    for guessable in [repeated.as_str(), pattern.as_str(), period_twenty.as_str()] {
        let lookup = |name: &str| match name {
            "APP_ENV" => Some("production".to_owned()),
            "JWT_ACCESS_SECRET" => Some(guessable.to_owned()),
            "OTP_SECRET" => Some("Zk3q9-Xv2Lp_8sWn4Rb7Tc1Yh6Fd0Gm5Jw".to_owned()),
            "SMTP_URL" => Some("smtp://127.0.0.1:1".to_owned()),
            _ => None,
        };
        let Err(error) = Settings::from_lookup(lookup) else {
            panic!("a guessable secret was taken");
        };
        let error = error.to_string();
        assert!(error.contains("JWT_ACCESS_SECRET does not look random"), "{error}");
        assert!(!error.contains(guessable), "the secret was printed: {error}");
        assert!(!error.contains("OTP_SECRET"), "a good secret was reported: {error}");
    }
    // Random hex, which has only 16 symbols, is taken.
    let hex = "3f9a0c7e51b2d84e6a1f0b9c3d7e2a58";
    let lookup = |name: &str| match name {
        "APP_ENV" => Some("production".to_owned()),
        "JWT_ACCESS_SECRET" | "OTP_SECRET" | "KEY_ENCRYPTION_SECRET" => Some(hex.to_owned()),
        "SMTP_URL" => Some("smtp://127.0.0.1:1".to_owned()),
        _ => None,
    };
    assert!(Settings::from_lookup(lookup).is_ok(), "a random hex secret was refused");
}

#[test]
fn production_names_every_missing_setting() {
    let output = authd(&[("APP_ENV", "production")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in ["JWT_ACCESS_SECRET", "OTP_SECRET", "KEY_ENCRYPTION_SECRET", "SMTP_URL"] {
        assert!(stderr.contains(name), "{name} not named: {stderr}");
    }
}

#[test]
fn development_secrets_are_generated_once_and_reused() {
    let folder = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    let data_dir = folder.display().to_string();
    let lookup = |name: &str| (name == "DATA_DIR").then(|| data_dir.clone());
    let first = Settings::from_lookup(lookup).unwrap();
    let second = Settings::from_lookup(lookup).unwrap();
    assert!(first.jwt_access_secret.expose().len() >= 32);
    assert_eq!(first.jwt_access_secret, second.jwt_access_secret);
    assert_eq!(first.otp_secret, second.otp_secret);
    assert_ne!(first.jwt_access_secret, first.otp_secret);
    assert!(
        !format!("{first:?}").contains(first.jwt_access_secret.expose()),
        "Debug shows a secret"
    );
}

#[test]
fn malformed_numbers_are_named() {
    let error = Settings::from_lookup(|name| match name {
        "ACCESS_TOKEN_TTL" => Some("fifteen".to_owned()),
        "DATA_DIR" => Some(
            std::env::temp_dir()
                .join("authd-tests")
                .join("numbers")
                .display()
                .to_string(),
        ),
        _ => None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("ACCESS_TOKEN_TTL"));
}

#[test]
fn durations_past_ten_years_are_refused_at_start() {
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join("durations")
        .display()
        .to_string();
    let settings = |value: &'static str| {
        Settings::from_lookup(|name| match name {
            "SESSION_TTL" => Some(value.to_owned()),
            "DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        })
    };
    let error = settings("18446744073709551615").unwrap_err().to_string();
    assert!(
        error.contains("SESSION_TTL must be at most 315360000 seconds"),
        "{error}"
    );
    assert_eq!(settings("315360000").unwrap().session_ttl.as_secs(), 315_360_000);
}

#[test]
fn the_default_database_lives_in_the_data_dir_and_socket_timers_must_be_positive() {
    let folder = std::env::temp_dir()
        .join("authd-tests")
        .join(uuid::Uuid::now_v7().to_string());
    let data_dir = folder.display().to_string();
    let settings = Settings::from_lookup(|name| (name == "DATA_DIR").then(|| data_dir.clone())).unwrap();
    assert_eq!(
        settings.database_url,
        format!("sqlite://{}?mode=rwc", folder.join("authd.db").display())
    );
    let error = Settings::from_lookup(|name| match name {
        "DATA_DIR" => Some(data_dir.clone()),
        "WS_PING_INTERVAL" => Some("0".to_owned()),
        _ => None,
    })
    .unwrap_err();
    assert!(error.to_string().contains("WS_PING_INTERVAL"));
}

#[test]
fn password_hash_threads_default_to_the_cores_and_are_bounded() {
    let data_dir = std::env::temp_dir()
        .join("authd-tests")
        .join("hash-threads")
        .display()
        .to_string();
    let settings = |value: Option<&'static str>| {
        Settings::from_lookup(|name| match name {
            "PASSWORD_HASH_THREADS" => value.map(str::to_owned),
            "DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        })
    };
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    assert_eq!(settings(None).unwrap().password_hash_threads, cores.min(256));
    assert_eq!(settings(Some("1")).unwrap().password_hash_threads, 1);
    assert_eq!(settings(Some("256")).unwrap().password_hash_threads, 256);
    for refused in ["0", "257", "-1", "two"] {
        let error = settings(Some(refused)).unwrap_err().to_string();
        assert!(error.contains("PASSWORD_HASH_THREADS"), "{refused}: {error}");
        assert!(!error.contains(refused), "the value is echoed: {error}");
    }
}

/// Passkeys work on the development port whatever it is, and an origin WebAuthn would refuse (an IP address, or
/// a host outside the relying party) stops the start instead of every ceremony.
#[test]
fn passkey_origins_follow_the_port_and_must_be_under_the_relying_party() {
    let data_dir = std::env::temp_dir().join("authd-tests").join("webauthn-settings");
    let settings = |variables: &[(&str, &str)]| {
        let data_dir = data_dir.display().to_string();
        let variables: Vec<(String, String)> = variables
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Settings::from_lookup(move |name| {
            if name == "DATA_DIR" {
                return Some(data_dir.clone());
            }
            variables
                .iter()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone())
        })
    };
    let defaults = settings(&[("PORT", "5123")]).unwrap();
    assert_eq!(defaults.webauthn_rp_id, "localhost");
    assert_eq!(defaults.webauthn_origins[0].as_str(), "http://localhost:5123/");
    for origin in ["http://127.0.0.1:5000", "https://example.org"] {
        let error = settings(&[("WEBAUTHN_ORIGINS", origin)]).unwrap_err().to_string();
        assert!(error.contains("WEBAUTHN_ORIGINS"), "{origin}: {error}");
    }
    let production_like = settings(&[
        ("WEBAUTHN_RP_ID", "example.org"),
        ("WEBAUTHN_ORIGINS", "https://example.org, https://login.example.org"),
    ])
    .unwrap();
    assert_eq!(production_like.webauthn_origins.len(), 2);
}
