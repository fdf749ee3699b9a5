//! The demo console in real headless Chromium (Debian's `chromium`, driven by playwright-core): two
//! isolated browser profiles sign in as one user; "sign out everywhere" in the first; the second shows
//! its signed-out state with the reason within a second. Registration through the console's form; an
//! authenticator app set up in one profile, seen live in the other, then asked for at sign-in; a passkey added
//! with Chromium's virtual authenticator, seen live in the other, then used after the password and alone.
//! `.ci/run` installs Chromium and the driver.

use std::process::Command;

use crate::helpers::{app::PASSWORD, spawn_app_with};

/// A server whose console origin is allowed (its port is chosen before it starts, since the origin must be
/// known then), that origin, and the folder for screenshots.
async fn console_app() -> (crate::helpers::TestApp, String, std::path::PathBuf) {
    console_app_at("127.0.0.1").await
}

/// The same with the console opened at `host`. A host name (not an IP address) is also made the passkeys'
/// relying party, with the console as their origin: WebAuthn refuses IP addresses, so passkeys need `localhost`.
async fn console_app_at(host: &str) -> (crate::helpers::TestApp, String, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let origin = format!("http://{host}:{port}");
    let mut overrides = vec![("PORT", port.as_str()), ("ALLOWED_ORIGINS", origin.as_str())];
    if host.parse::<std::net::IpAddr>().is_err() {
        overrides.extend([("WEBAUTHN_RP_ID", host), ("WEBAUTHN_ORIGINS", origin.as_str())]);
    }
    let app = spawn_app_with(&overrides).await;
    let output_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&output_dir).unwrap();
    (app, origin, output_dir)
}

/// Runs `script` of `tests/browser/` against a fresh server as two browsers of one verified user with no other
/// session, and answers the summary line it prints on success.
async fn run_two_browser_script(script: &str) -> serde_json::Value {
    run_two_browser_script_at(script, "127.0.0.1").await
}

/// The same with the console opened at `host` (see `console_app_at`).
async fn run_two_browser_script_at(script: &str, host: &str) -> serde_json::Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "install Debian's chromium first"
    );

    let (app, origin, output_dir) = console_app_at(host).await;
    let (email, tokens) = app.user_with_session().await;
    // Verifying signed this client in; the two browsers are to be the only devices.
    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );

    let browser = tokio::process::Command::from(Command::new("node"))
        .arg(root.join("tests/browser").join(script))
        .args(["--url", &origin, "--email", &email, "--password", PASSWORD, "--out"])
        .arg(&output_dir)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&browser.stdout);
    let stderr = String::from_utf8_lossy(&browser.stderr);
    println!("{stdout}");
    assert!(browser.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let screenshots = summary["screenshots"].as_array().unwrap();
    assert!(!screenshots.is_empty());
    for screenshot in screenshots {
        assert!(std::path::Path::new(screenshot.as_str().unwrap()).exists());
    }
    println!("screenshots in {}", output_dir.display());
    summary
}

#[actix_web::test]
#[ignore = "needs Chromium and `npm ci --prefix tests/browser`: .ci/run installs both and runs it"]
async fn signing_out_everywhere_shows_on_the_other_browser_within_a_second() {
    let summary = run_two_browser_script("console.mjs").await;
    let within = summary["signed_out_within_ms"].as_f64().unwrap();
    assert!(within <= 1000.0, "signed out after {within} ms");
}

/// Registration in the console: the page keeps the registration's handle and sends it with the code, so the
/// password chosen in that browser becomes the account's (it signs in with it afterwards).
#[actix_web::test]
#[ignore = "needs Chromium and `npm ci --prefix tests/browser`: .ci/run installs both and runs it"]
async fn registering_in_the_console_sets_the_password_chosen_there() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first"
    );
    let (app, origin, output_dir) = console_app().await;
    let email = crate::helpers::app::unique_email();
    let mut browser = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/register.mjs"))
        .args(["--url", &origin, "--email", &email, "--password", PASSWORD, "--out"])
        .arg(&output_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let awaiting = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("the code step in time")
        .unwrap();
    let Some(awaiting) = awaiting else {
        let output = browser.wait_with_output().await.unwrap();
        panic!("the browser test failed:\n{}", String::from_utf8_lossy(&output.stderr));
    };
    assert_eq!(awaiting, r#"{"awaiting_code":true}"#);
    let code = app.mail.wait_for_mail(&email, 0).await.code().unwrap();
    let mut stdin = browser.stdin.take().unwrap();
    stdin.write_all(format!("{code}\n").as_bytes()).await.unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("the browser test ends in time")
        .unwrap();
    let output = browser.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
    assert_eq!(summary["password_sign_in"], true);
    // The account's password is the one typed in the browser, and its name the one given there.
    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(tokens.status(), 200);
    assert_eq!(tokens.json::<serde_json::Value>().await.unwrap()["user"]["name"], "Ada");
}

/// An authenticator app set up in one browser: the other browser shows it on within two seconds (without a
/// reload), and the next password sign-ins in the first browser ask for its code, or take a recovery code instead.
#[actix_web::test]
#[ignore = "needs Chromium and `npm ci --prefix tests/browser`: .ci/run installs both and runs it"]
async fn an_authenticator_app_set_up_in_one_browser_guards_the_next_sign_ins() {
    let summary = run_two_browser_script("second-factor.mjs").await;
    let within = summary["security_changed_within_ms"].as_f64().unwrap();
    assert!(
        within <= 2000.0,
        "the other browser showed the app on after {within} ms"
    );
    assert_eq!(summary["signed_in_with_totp"], true);
    assert_eq!(summary["signed_in_with_recovery_code"], true);
    assert_eq!(summary["recovery_codes_left_after"], 9);
}

/// A passkey added in one browser (Chromium's virtual authenticator): the other browser lists it within two seconds
/// (without a reload); the next password sign-in in the first browser takes it as the second step, and it signs in
/// alone as well. Renamed and removed there, none is left. The console is opened at localhost, as WebAuthn refuses
/// IP addresses.
#[actix_web::test]
#[ignore = "needs Chromium and `npm ci --prefix tests/browser`: .ci/run installs both and runs it"]
async fn a_passkey_added_in_one_browser_signs_in_after_the_password_and_alone() {
    let summary = run_two_browser_script_at("passkeys.mjs", "localhost").await;
    let within = summary["security_changed_within_ms"].as_f64().unwrap();
    assert!(
        within <= 2000.0,
        "the other browser listed the passkey after {within} ms"
    );
    assert_eq!(summary["second_factor_with_passkey"], true);
    assert_eq!(summary["passwordless_with_passkey"], true);
    assert_eq!(summary["passkeys_after_delete"], 0);
}
