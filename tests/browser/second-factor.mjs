#!/usr/bin/env node
// Browser test of two-step verification with an authenticator app in the authd demo console, in headless Chromium.
//
// Two isolated browser contexts (device A and device B) sign in to the same verified account. A sets up an
// authenticator app: the test reads the key from the page and computes the app's codes itself (RFC 6238: HMAC-SHA1,
// 30 s steps, 6 digits), confirms, reads the recovery codes the page shows once and puts them away. B must show the
// app as on within a few seconds, without a reload (the server's security_changed message). A then signs out and in
// again with the password: the page asks for the app's code, and the sign-in ends signed in. Once more with a
// recovery code instead, after which 9 recovery codes are left. Last, A turns the app off with the password and
// another recovery code, and B shows it off.
//
// The account must exist, be verified, have the authenticator app off and have no other live session. A passing
// run turns the app off again, so it can be run again right away.
//
// Usage:
//   node second-factor.mjs --url http://127.0.0.1:5000 --email you@example.com --password '...' --out ./shots
//
// Prints one JSON line on success, e.g. {"security_changed_within_ms":35,"signed_in_with_totp":true,
// "signed_in_with_recovery_code":true,"recovery_codes_left_after":9,"screenshots":[...]}, and exits 0.
// On failure prints the reason to stderr, saves failure screenshots into --out, and exits 1.

import { createHmac } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

import {
  CHROMIUM,
  Failure,
  LAUNCH_ARGS,
  checkNoStoredTokens,
  failureMessage,
  openConsole,
  signInWithPassword,
  visibleText,
  watchPage,
} from "./common.mjs";

const OVERALL_TIMEOUT_MS = 90_000;
const READY_TIMEOUT_MS = 10_000; // signed in, live channel connected, factors loaded
const SECURITY_CHANGED_TIMEOUT_MS = 5_000;
const STEP_SECONDS = 30;

const DEVICES = {
  a: {
    label: "A (Firefox on Linux)",
    options: {
      userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      viewport: { width: 1180, height: 860 },
      locale: "en-GB",
    },
  },
  b: {
    label: "B (Safari on iPhone)",
    options: {
      userAgent:
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      locale: "en-US",
    },
  },
};

// ---------------------------------------------------------------- RFC 6238

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Decode(text) {
  const bytes = [];
  let buffer = 0;
  let bits = 0;
  for (const char of text.toUpperCase().replace(/[\s=-]/g, "")) {
    const value = BASE32.indexOf(char);
    if (value < 0) throw new Failure(`the key shown is not base32: ${JSON.stringify(text)}`);
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The 6-digit code of time step `step` (Unix seconds / 30) for `key`. */
function totpCode(key, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac("sha1", key).update(counter).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

// RFC 6238 appendix B (SHA-1, T = 59 s), cut to 6 digits, and RFC 4648's base32 of the same key: a wrong
// implementation here would read as a server bug.
if (
  totpCode(Buffer.from("12345678901234567890"), 1) !== "287082" ||
  base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").toString() !== "12345678901234567890"
) {
  throw new Error("the test's own TOTP implementation is wrong");
}

// ---------------------------------------------------------------- arguments

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node second-factor.mjs --url <base url> --email <email> --password <password> --out <screenshot dir>\n`,
  );
  process.exit(1);
}

function readArgs() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        email: { type: "string" },
        password: { type: "string" },
        out: { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    usage(error.message);
  }
  for (const name of ["url", "email", "password", "out"]) {
    if (!values[name]) usage(`missing --${name}`);
  }
  let url;
  try {
    url = new URL(values.url);
  } catch {
    usage(`not a URL: ${values.url}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") usage(`not an http(s) URL: ${values.url}`);
  return { ...values, url: new URL("/", url).href, out: path.resolve(values.out) };
}

// ---------------------------------------------------------------- reading the page

/** What the page shows about sign-in and two-step verification, for checks and for failure messages. */
function readView(page) {
  return page.evaluate(() => {
    const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
    const visible = (node) => Boolean(node && !node.hidden && node.getClientRects().length > 0);
    const text = (id) => (visible(byId(id)) ? byId(id).textContent.trim() : "");
    return {
      signedIn: visible(byId("signed-in")),
      codeStep: visible(byId("code-form")) ? byId("code-form").dataset.method : "",
      ws: (byId("ws-status")?.textContent || "").trim(),
      totp: byId("totp-status")?.dataset.enabled ?? "unknown",
      emailCode: byId("email-otp-status")?.dataset.enabled ?? "unknown",
      recoveryCodesLeft: byId("recovery-codes-left")?.dataset.count ?? "",
      error: text("error"),
      securityError: text("security-error"),
    };
  });
}

async function waitVisible(page, name, testId, what, timeout = 10_000) {
  await page
    .getByTestId(testId)
    .waitFor({ state: "visible", timeout })
    .catch(async () => {
      throw new Failure(`${name}: ${what} did not show; the page shows ${JSON.stringify(await readView(page))}`);
    });
}

/** Signed in, live channel connected, and the factors loaded with the authenticator app in state `totp`. */
async function waitUntilReady(page, name, totp) {
  try {
    await page.waitForFunction(
      (expected) => {
        const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
        const signedIn = byId("signed-in");
        if (!signedIn || signedIn.hidden) return false;
        if ((byId("ws-status")?.textContent || "").trim() !== "connected") return false;
        return byId("totp-status")?.dataset.enabled === expected;
      },
      String(totp),
      { timeout: READY_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    throw new Failure(
      `${name}: within ${READY_TIMEOUT_MS} ms the page did not show ws-status "connected" and the authenticator app ${totp ? "on" : "off"}; it shows ${JSON.stringify(await readView(page))}`,
    );
  }
}

/** Starts recording, inside the page, the first moment the authenticator app shows as `expected` ("true"/"false"). */
function watchTotpStatus(page, expected) {
  return page.evaluate((wanted) => {
    window.__totpShownAt = null;
    const shown = () => {
      const status = document.querySelector('[data-testid="totp-status"]');
      return Boolean(status && status.dataset.enabled === wanted && status.getClientRects().length > 0);
    };
    const observer = new MutationObserver(() => {
      if (window.__totpShownAt === null && shown()) {
        window.__totpShownAt = Date.now();
        observer.disconnect();
      }
    });
    observer.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
  }, expected);
}

/** Records, inside the page, when the button with `testId` is clicked. */
function watchClick(page, testId) {
  return page.evaluate((id) => {
    window.__clickedAt = null;
    const target = document.querySelector(`[data-testid="${id}"]`);
    target.addEventListener("click", () => (window.__clickedAt ??= Date.now()), { capture: true, once: true });
  }, testId);
}

// ---------------------------------------------------------------- steps

/** Sets up the authenticator app on `page` and returns its key and the step of the code that confirmed it. */
async function setUpAuthenticator(page, name, password) {
  await page.getByTestId("totp-setup").click();
  // A sign-in a moment ago is recent enough; should the server still ask, the page asks for the password.
  await page
    .locator('[data-testid="totp-secret"]:visible, [data-testid="reauthenticate-form"]:visible')
    .first()
    .waitFor({ timeout: 10_000 })
    .catch(async () => {
      throw new Failure(`${name}: neither the app's key nor a password prompt showed; the page shows ${JSON.stringify(await readView(page))}`);
    });
  if (await page.getByTestId("reauthenticate-form").isVisible()) {
    await page.getByTestId("reauthenticate-password").fill(password);
    await page.getByTestId("reauthenticate-submit").click();
    await waitVisible(page, name, "totp-secret", "the app's key after the password");
  }

  const shown = await page.evaluate(async () => {
    const image = document.querySelector('[data-testid="totp-qr"]');
    let decoded = false;
    try {
      await image.decode();
      decoded = true;
    } catch {
      decoded = false;
    }
    return {
      secret: document.querySelector('[data-testid="totp-secret"]').textContent.trim(),
      image: image.getAttribute("src") || "",
      decoded,
      link: document.getElementById("totp-link")?.getAttribute("href") || "",
    };
  });
  if (!/^[A-Z2-7 =]+$/i.test(shown.secret)) throw new Failure(`${name}: the app's key is not base32: ${JSON.stringify(shown.secret)}`);
  if (!shown.image.startsWith("data:image/svg+xml")) {
    throw new Failure(`${name}: the QR code is not an SVG data URI: ${JSON.stringify(shown.image.slice(0, 40))}`);
  }
  if (!shown.decoded) throw new Failure(`${name}: the QR code image does not load`);
  if (shown.link) {
    let inLink;
    try {
      inLink = new URL(shown.link).searchParams.get("secret") || "";
    } catch {
      throw new Failure(`${name}: the authenticator link is not a URI: ${JSON.stringify(shown.link)}`);
    }
    if (inLink.toUpperCase() !== shown.secret.replace(/\s/g, "").toUpperCase()) {
      throw new Failure(`${name}: the key shown (${shown.secret}) is not the one in the otpauth link (${inLink})`);
    }
  }
  return base32Decode(shown.secret);
}

/** Reads the recovery codes shown once, puts them away, and checks they are gone from the page. */
async function collectRecoveryCodes(page, name) {
  await waitVisible(page, name, "recovery-codes", "the recovery codes after confirming");
  const codes = await page
    .getByTestId("recovery-codes")
    .getByTestId("recovery-code")
    .evaluateAll((items) => items.map((item) => item.textContent.trim()));
  if (codes.length !== 10) throw new Failure(`${name}: ${codes.length} recovery codes shown, not 10: ${JSON.stringify(codes)}`);
  const malformed = codes.filter((code) => !/^[a-z2-9]{5}-[a-z2-9]{5}$/.test(code));
  if (malformed.length) throw new Failure(`${name}: recovery codes not like abcde-fghij: ${JSON.stringify(malformed)}`);
  if (new Set(codes).size !== codes.length) throw new Failure(`${name}: recovery codes repeat: ${JSON.stringify(codes)}`);
  return codes;
}

async function dismissRecoveryCodes(page, name, codes, secret) {
  await page.getByTestId("recovery-codes-saved").click();
  await page.getByTestId("recovery-codes").waitFor({ state: "hidden" });
  const left = await page.evaluate(
    ({ first, key }) => {
      const html = document.documentElement.outerHTML;
      return { code: html.includes(first), key: html.includes(key) };
    },
    { first: codes[0], key: secret },
  );
  if (left.code) throw new Failure(`${name}: the recovery codes are still in the page after "I have saved them"`);
  if (left.key) throw new Failure(`${name}: the app's key is still in the page after the setup ended`);
}

async function signOut(page, name) {
  await page.getByTestId("logout").click();
  await waitVisible(page, name, "login-email", "the login form after signing out");
}

/** A password sign-in that must stop at the second step, with the authenticator app's code asked first. */
async function signInToSecondStep(page, name, email, password) {
  await page.getByTestId("login-email").fill(email);
  await page.getByTestId("login-password").fill(password);
  await page.getByTestId("login-submit").click();
  try {
    await page.waitForFunction(
      () => document.querySelector('[data-testid="code-form"]:not([hidden])')?.dataset.method === "totp",
      null,
      { timeout: 10_000, polling: 50 },
    );
  } catch {
    throw new Failure(`${name}: the sign-in did not ask for the authenticator app's code; the page shows ${JSON.stringify(await readView(page))}`);
  }
  const label = await visibleText(page, "code-label");
  if (!/authenticator/i.test(label)) throw new Failure(`${name}: the code field is labelled ${JSON.stringify(label)}`);
}

async function submitCode(page, name, code, what) {
  await page.getByTestId("code-input").fill(code);
  await page.getByTestId("code-submit").click();
  await page
    .getByTestId("signed-in")
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(async () => {
      throw new Failure(`${name}: not signed in after ${what}; the page shows ${JSON.stringify(await readView(page))}`);
    });
}

async function waitForRecoveryCodesLeft(page, name, count) {
  try {
    await page.waitForFunction(
      (expected) => document.querySelector('[data-testid="recovery-codes-left"]')?.dataset.count === expected,
      String(count),
      { timeout: 10_000, polling: 100 },
    );
  } catch {
    throw new Failure(`${name}: the page does not show ${count} recovery codes left; it shows ${JSON.stringify(await readView(page))}`);
  }
}

// ---------------------------------------------------------------- the run

async function main() {
  const args = readArgs();
  await mkdir(args.out, { recursive: true });

  const problems = [];
  const pages = {};
  const shots = [];
  let browser;

  const screenshot = async (key, suffix) => {
    const file = path.join(args.out, `second-factor-${key}-${suffix}.png`);
    await pages[key].screenshot({ path: file, fullPage: true, animations: "disabled" });
    shots.push(file);
    return file;
  };

  const saveFailureShots = async () => {
    for (const key of Object.keys(pages)) {
      if (pages[key].url() === "about:blank") continue;
      try {
        const file = path.join(args.out, `second-factor-${key}-failure.png`);
        await pages[key].screenshot({ path: file, fullPage: true, timeout: 5_000 });
        process.stderr.write(`failure screenshot: ${file}\n`);
      } catch {
        // the page may be gone
      }
    }
  };

  const checkProblems = () => {
    if (problems.length) throw new Failure(problems.join("\n"));
  };

  let timer;
  const overall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`overall timeout of ${OVERALL_TIMEOUT_MS} ms reached`)), OVERALL_TIMEOUT_MS);
  });

  const run = async () => {
    const { a: deviceA, b: deviceB } = DEVICES;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true, timeout: 20_000 });
    for (const [key, device] of Object.entries(DEVICES)) {
      const context = await browser.newContext(device.options);
      context.setDefaultTimeout(10_000);
      pages[key] = await context.newPage();
      watchPage(pages[key], device.label, problems);
    }
    const { a, b } = pages;

    for (const [page, device] of [[a, deviceA], [b, deviceB]]) {
      await openConsole(page, device.label, args.url);
      await signInWithPassword(page, device.label, args.email, args.password);
    }
    await Promise.all([waitUntilReady(a, deviceA.label, false), waitUntilReady(b, deviceB.label, false)]);
    // Survives only as long as B's page is not reloaded.
    await b.evaluate(() => {
      window.__sameDocument = true;
    });

    // A: set up the authenticator app.
    const key = await setUpAuthenticator(a, deviceA.label, args.password);
    const secret = await a.getByTestId("totp-secret").innerText();
    await screenshot("a", "setup");

    await watchTotpStatus(b, "true");
    await watchClick(a, "totp-confirm");
    const confirmStep = currentStep();
    await a.getByTestId("totp-code").fill(totpCode(key, confirmStep));
    await a.getByTestId("totp-confirm").click();
    const codes = await collectRecoveryCodes(a, deviceA.label);
    await screenshot("a", "recovery-codes");
    await dismissRecoveryCodes(a, deviceA.label, codes, secret.trim());
    await waitForRecoveryCodesLeft(a, deviceA.label, 10);

    // B: the change arrives over the live channel, without a reload.
    try {
      await b.waitForFunction(() => window.__totpShownAt !== null, null, {
        timeout: SECURITY_CHANGED_TIMEOUT_MS,
        polling: 10,
      });
    } catch {
      throw new Failure(
        `B did not show the authenticator app as on within ${SECURITY_CHANGED_TIMEOUT_MS} ms of the confirmation on A; it shows ${JSON.stringify(await readView(b))}`,
      );
    }
    const clickedAt = await a.evaluate(() => window.__clickedAt);
    const shownAt = await b.evaluate(() => window.__totpShownAt);
    if (clickedAt === null) throw new Failure("the click on A's confirm button was not seen by the page");
    if (!(await b.evaluate(() => window.__sameDocument === true))) throw new Failure("B's page was reloaded");
    const securityChangedWithinMs = Math.max(0, shownAt - clickedAt);
    await waitForRecoveryCodesLeft(b, deviceB.label, 10);
    await screenshot("b", "authenticator-on");
    checkProblems();

    // A: a password sign-in now asks for the app's code. The one that confirmed the setup is spent, and a code is
    // taken once per step: use a later step (one step ahead of the server's clock is accepted).
    await signOut(a, deviceA.label);
    await signInToSecondStep(a, deviceA.label, args.email, args.password);
    await screenshot("a", "app-code-step");
    await submitCode(a, deviceA.label, totpCode(key, Math.max(currentStep(), confirmStep + 1)), "the app's code");
    await waitUntilReady(a, deviceA.label, true);
    const signedInWithTotp = true;

    // A: once more, with a recovery code instead.
    await signOut(a, deviceA.label);
    await signInToSecondStep(a, deviceA.label, args.email, args.password);
    await a.getByTestId("use-recovery-code").click();
    try {
      await a.waitForFunction(() => document.querySelector('[data-testid="code-form"]')?.dataset.method === "recovery_code", null, {
        timeout: 5_000,
      });
    } catch {
      throw new Failure(`A: the code step did not switch to a recovery code; it shows ${JSON.stringify(await readView(a))}`);
    }
    await submitCode(a, deviceA.label, codes[0], "a recovery code");
    const signedInWithRecoveryCode = true;
    await waitUntilReady(a, deviceA.label, true);
    await waitForRecoveryCodesLeft(a, deviceA.label, 9);
    const recoveryCodesLeft = Number((await readView(a)).recoveryCodesLeft);
    await screenshot("a", "signed-in-with-recovery-code");

    for (const [page, device] of [[a, deviceA], [b, deviceB]]) await checkNoStoredTokens(page, device.label);
    checkProblems();

    // A: turn the app off (password and another recovery code), which B sees too; the account is as it was.
    await watchTotpStatus(b, "false");
    await a.getByTestId("totp-disable").click();
    await a.getByTestId("totp-disable-password").fill(args.password);
    await a.getByTestId("totp-disable-code").fill(codes[1]);
    await a.getByTestId("totp-disable-submit").click();
    await waitUntilReady(a, deviceA.label, false).catch(async (error) => {
      const shown = await visibleText(a, "security-error");
      throw shown ? new Failure(`A: turning the app off failed: ${shown}`) : error;
    });
    await b
      .waitForFunction(() => window.__totpShownAt !== null, null, { timeout: SECURITY_CHANGED_TIMEOUT_MS, polling: 50 })
      .catch(async () => {
        throw new Failure(`B did not show the authenticator app as off; it shows ${JSON.stringify(await readView(b))}`);
      });
    checkProblems();

    return {
      security_changed_within_ms: securityChangedWithinMs,
      signed_in_with_totp: signedInWithTotp,
      signed_in_with_recovery_code: signedInWithRecoveryCode,
      recovery_codes_left_after: recoveryCodesLeft,
      screenshots: shots,
    };
  };

  let code = 0;
  try {
    const result = await Promise.race([run(), overall]);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    code = 1;
    const message = failureMessage(error);
    process.stderr.write(`FAIL: ${message}\n`);
    if (problems.length && !(error instanceof Failure && message.includes(problems[0]))) {
      process.stderr.write(`page problems:\n${problems.join("\n")}\n`);
    }
    await saveFailureShots();
  } finally {
    clearTimeout(timer);
    if (browser) await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  }
  process.exit(code);
}

main();
