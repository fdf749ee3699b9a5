//! The demo console in real headless Chromium (Debian's `chromium`, driven by playwright-core): two
//! isolated browser profiles sign in as one user; "sign out everywhere" in the first; the second shows
//! its signed-out state with the reason within a second. `.ci/run` installs Chromium and the driver.

use std::process::Command;

use crate::helpers::{app::PASSWORD, spawn_app_with};

#[actix_web::test]
#[ignore = "needs Chromium and `npm ci --prefix tests/browser`: .ci/run installs both and runs it"]
async fn signing_out_everywhere_shows_on_the_other_browser_within_a_second() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/browser/console.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "install Debian's chromium first"
    );

    // The page's origin must be allowed before the server starts, so its port is chosen here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let origin = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(&[("PORT", &port), ("ALLOWED_ORIGINS", &origin)]).await;
    let (email, tokens) = app.user_with_session().await;
    // Verifying signed this client in; the two browsers are to be the only devices.
    assert_eq!(
        app.post_authed("/api/auth/logout", &tokens.access, None).await.status(),
        204
    );

    let output_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&output_dir).unwrap();
    let browser = tokio::process::Command::from(Command::new("node"))
        .arg(&script)
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
    let within = summary["signed_out_within_ms"].as_f64().unwrap();
    assert!(within <= 1000.0, "signed out after {within} ms");
    for screenshot in summary["screenshots"].as_array().unwrap() {
        assert!(std::path::Path::new(screenshot.as_str().unwrap()).exists());
    }
    println!("screenshots in {}", output_dir.display());
}
