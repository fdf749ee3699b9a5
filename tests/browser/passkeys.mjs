#!/usr/bin/env node
// Browser test of passkeys (WebAuthn) in the authd demo console, in headless Chromium.
//
// Two isolated browser contexts (device A and device B) sign in to the same verified account with the password.
// A gets Chromium's virtual authenticator through the DevTools protocol (a platform authenticator that keeps
// discoverable credentials and verifies the user at once) and adds a passkey named "Test key". B must show it, count
// and list, within a few seconds and without a reload (the server's security_changed message). A then signs out and
// in again with the password: the second step offers the passkey, and using it signs A in. A signs out once more and
// signs in with the passkey alone ("Sign in with a passkey"; the virtual authenticator of the same context still
// holds the discoverable credential). Last, A renames the passkey (B shows the new name) and removes it, giving the
// password if the page asks for it; both pages then show no passkeys.
//
// WebAuthn refuses IP addresses: --url must name the host (http://localhost:PORT, not http://127.0.0.1:PORT), and
// the server must accept that origin (WEBAUTHN_RP_ID=localhost, WEBAUTHN_ORIGINS=http://localhost:PORT).
//
// The account must exist, be verified, have no authenticator app, no email code, no passkey and no other live
// session; its password sign-in then asks for a second step only once the passkey exists. A passing run removes the
// passkey again, so it can be run again right away.
//
// Usage:
//   node passkeys.mjs --url http://localhost:5000 --email you@example.com --password '...' --out ./shots
//
// Prints one JSON line on success, e.g. {"security_changed_within_ms":35,"second_factor_with_passkey":true,
// "passwordless_with_passkey":true,"passkeys_after_delete":0,"screenshots":[...]}, and exits 0.
// On failure prints the reason to stderr, saves failure screenshots into --out, and exits 1.

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
const READY_TIMEOUT_MS = 10_000; // signed in, live channel connected, passkeys counted
const SECURITY_CHANGED_TIMEOUT_MS = 5_000;
const PASSKEY_NAME = "Test key";
const NEW_NAME = "Renamed key";

const DEVICES = {
  a: {
    label: "A (Chromium with a virtual authenticator)",
    options: {
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

// ---------------------------------------------------------------- arguments

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node passkeys.mjs --url <base url, by host name> --email <email> --password <password> --out <screenshot dir>\n`,
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
  if (/^\d+(\.\d+){3}$/.test(url.hostname) || url.hostname.startsWith("[")) {
    usage(`WebAuthn refuses IP addresses: use the host's name, e.g. http://localhost:${url.port || 80}, not ${values.url}`);
  }
  return { ...values, url: new URL("/", url).href, out: path.resolve(values.out) };
}

// ---------------------------------------------------------------- reading the page

/** What the page shows about sign-in and passkeys, for checks and for failure messages. */
function readView(page) {
  return page.evaluate(() => {
    const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
    const visible = (node) => Boolean(node && !node.hidden && node.getClientRects().length > 0);
    const text = (id) => (visible(byId(id)) ? byId(id).textContent.trim() : "");
    return {
      signedIn: visible(byId("signed-in")),
      codeStep: visible(byId("code-form")) ? byId("code-form").dataset.method : "",
      ws: (byId("ws-status")?.textContent || "").trim(),
      passkeys: byId("passkey-count")?.dataset.count ?? "unknown",
      names: [...document.querySelectorAll('[data-testid="passkey-row"] [data-testid="passkey-name"]')].map((node) =>
        node.textContent.trim(),
      ),
      error: text("error"),
      securityError: text("security-error"),
      securityFoot: (document.getElementById("security-foot")?.textContent || "").trim(),
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

/** Signed in, live channel connected, and `count` passkeys counted, listed with `names` when given. */
async function waitUntilReady(page, name, count, names = null, timeout = READY_TIMEOUT_MS) {
  try {
    await page.waitForFunction(
      ({ expected, expectedNames }) => {
        const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
        const signedIn = byId("signed-in");
        if (!signedIn || signedIn.hidden) return false;
        if ((byId("ws-status")?.textContent || "").trim() !== "connected") return false;
        if (byId("passkey-count")?.dataset.count !== expected) return false;
        const shown = [...document.querySelectorAll('[data-testid="passkey-row"] [data-testid="passkey-name"]')].map(
          (node) => node.textContent.trim(),
        );
        return expectedNames === null || JSON.stringify(shown) === JSON.stringify(expectedNames);
      },
      { expected: String(count), expectedNames: names },
      { timeout, polling: 100 },
    );
  } catch {
    throw new Failure(
      `${name}: within ${timeout} ms the page did not show ws-status "connected" and ${count} passkeys${names ? ` named ${JSON.stringify(names)}` : ""}; it shows ${JSON.stringify(await readView(page))}`,
    );
  }
}

/** Starts recording, inside the page, the first moment it counts `count` passkeys and lists `listed` by name. */
function watchPasskeys(page, count, listed) {
  return page.evaluate(
    ({ expected, names }) => {
      window.__passkeysShownAt = null;
      const shown = () => {
        const counter = document.querySelector('[data-testid="passkey-count"]');
        if (!counter || counter.dataset.count !== expected || counter.getClientRects().length === 0) return false;
        const rows = [...document.querySelectorAll('[data-testid="passkey-row"] [data-testid="passkey-name"]')];
        return JSON.stringify(rows.map((node) => node.textContent.trim())) === JSON.stringify(names);
      };
      const observer = new MutationObserver(() => {
        if (window.__passkeysShownAt === null && shown()) {
          window.__passkeysShownAt = Date.now();
          observer.disconnect();
        }
      });
      observer.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
    },
    { expected: String(count), names: listed },
  );
}

async function waitForWatched(page, name, what) {
  await page
    .waitForFunction(() => window.__passkeysShownAt !== null, null, {
      timeout: SECURITY_CHANGED_TIMEOUT_MS,
      polling: 10,
    })
    .catch(async () => {
      throw new Failure(`${name} did not show ${what} within ${SECURITY_CHANGED_TIMEOUT_MS} ms; it shows ${JSON.stringify(await readView(page))}`);
    });
  return page.evaluate(() => window.__passkeysShownAt);
}

// ---------------------------------------------------------------- steps

/** Chromium's virtual authenticator for `page`: a built-in one that verifies the user and keeps passkeys. */
async function addVirtualAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/**
 * A sensitive change may ask for the password first (the sign-in is then not recent enough); give it if asked.
 * `done` is the locator of what shows when the change went through.
 */
async function passPasswordPromptIfAsked(page, name, password, done, what) {
  const prompt = page.getByTestId("reauthenticate-form");
  const failed = page.getByTestId("security-error");
  // `or` matches in document order, hidden ones included: only a visible one answers.
  await done
    .or(prompt)
    .or(failed)
    .filter({ visible: true })
    .first()
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(async () => {
      throw new Failure(`${name}: neither ${what} nor a password prompt showed; the page shows ${JSON.stringify(await readView(page))}`);
    });
  if (await prompt.isVisible()) {
    await page.getByTestId("reauthenticate-password").fill(password);
    await page.getByTestId("reauthenticate-submit").click();
    await done
      .or(failed)
      .filter({ visible: true })
      .first()
      .waitFor({ state: "visible", timeout: 10_000 })
      .catch(async () => {
        throw new Failure(`${name}: ${what} did not show after the password; the page shows ${JSON.stringify(await readView(page))}`);
      });
  }
  if (!(await done.isVisible())) {
    throw new Failure(`${name}: ${what} failed: ${await visibleText(page, "security-error")}`);
  }
  return done;
}

async function signOut(page, name) {
  await page.getByTestId("logout").click();
  await waitVisible(page, name, "login-email", "the login form after signing out");
}

/** A password sign-in that must stop at the second step and offer the passkey first. */
async function signInToPasskeyStep(page, name, email, password) {
  await page.getByTestId("login-email").fill(email);
  await page.getByTestId("login-password").fill(password);
  await page.getByTestId("login-submit").click();
  try {
    await page.waitForFunction(
      () => document.querySelector('[data-testid="code-form"]:not([hidden])')?.dataset.method === "webauthn",
      null,
      { timeout: 10_000, polling: 50 },
    );
  } catch {
    throw new Failure(`${name}: the sign-in did not offer the passkey as its second step; the page shows ${JSON.stringify(await readView(page))}`);
  }
  await waitVisible(page, name, "passkey-verify", 'the "Use a passkey" button');
}

async function waitSignedIn(page, name, what) {
  await page
    .getByTestId("signed-in")
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(async () => {
      throw new Failure(`${name}: not signed in after ${what}; the page shows ${JSON.stringify(await readView(page))}`);
    });
}

// ---------------------------------------------------------------- the run

async function main() {
  const args = readArgs();
  await mkdir(args.out, { recursive: true });

  const problems = [];
  const pages = {};
  const contexts = {};
  const shots = [];
  let browser;

  const screenshot = async (key, suffix) => {
    const file = path.join(args.out, `passkeys-${key}-${suffix}.png`);
    await pages[key].screenshot({ path: file, fullPage: true, animations: "disabled" });
    shots.push(file);
    return file;
  };

  const saveFailureShots = async () => {
    for (const key of Object.keys(pages)) {
      if (pages[key].url() === "about:blank") continue;
      try {
        const file = path.join(args.out, `passkeys-${key}-failure.png`);
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
      contexts[key] = await browser.newContext(device.options);
      contexts[key].setDefaultTimeout(10_000);
      pages[key] = await contexts[key].newPage();
      watchPage(pages[key], device.label, problems);
    }
    const { a, b } = pages;
    // Only A uses passkeys; B only watches.
    const authenticator = await addVirtualAuthenticator(contexts.a, a);

    for (const [page, device] of [[a, deviceA], [b, deviceB]]) {
      await openConsole(page, device.label, args.url);
      await signInWithPassword(page, device.label, args.email, args.password);
    }
    await Promise.all([waitUntilReady(a, deviceA.label, 0), waitUntilReady(b, deviceB.label, 0)]);
    // Survives only as long as B's page is not reloaded.
    await b.evaluate(() => {
      window.__sameDocument = true;
    });

    // A: add a passkey. The latency is counted from the moment A sends the new credential to the server.
    await watchPasskeys(b, 1, [PASSKEY_NAME]);
    let registeredAt = null;
    a.on("request", (sent) => {
      if (registeredAt === null && sent.method() === "POST" && new URL(sent.url()).pathname === "/api/users/me/passkeys") {
        registeredAt = Date.now();
      }
    });
    await a.getByTestId("passkey-add").click();
    await waitVisible(a, deviceA.label, "passkey-add-form", "the form naming the new passkey");
    await a.getByTestId("passkey-add-name").fill(PASSKEY_NAME);
    await a.getByTestId("passkey-add-submit").click();
    const added = a.getByTestId("passkey-row").filter({ hasText: PASSKEY_NAME });
    await passPasswordPromptIfAsked(a, deviceA.label, args.password, added, "the new passkey in the list");
    await waitUntilReady(a, deviceA.label, 1, [PASSKEY_NAME]);
    // Passwordless sign-in below needs the credential discoverable (resident) in the authenticator.
    const { credentials } = await authenticator.cdp.send("WebAuthn.getCredentials", {
      authenticatorId: authenticator.authenticatorId,
    });
    if (credentials.length !== 1 || !credentials[0].isResidentCredential) {
      const held = credentials.map((item) => ({ resident: item.isResidentCredential, rpId: item.rpId }));
      throw new Failure(`A: the authenticator holds ${credentials.length} credentials, not one discoverable passkey: ${JSON.stringify(held)}`);
    }
    await screenshot("a", "passkey-added");

    // B: the change arrives over the live channel, without a reload.
    const shownAt = await waitForWatched(b, deviceB.label, `the passkey "${PASSKEY_NAME}" (count 1)`);
    if (registeredAt === null) throw new Failure("A did not send the new passkey to POST /api/users/me/passkeys");
    if (!(await b.evaluate(() => window.__sameDocument === true))) throw new Failure("B's page was reloaded");
    const securityChangedWithinMs = Math.max(0, shownAt - registeredAt);
    await screenshot("b", "passkey-listed");
    checkProblems();

    // A: a password sign-in now asks for a second step, the passkey; it signs in.
    await signOut(a, deviceA.label);
    await signInToPasskeyStep(a, deviceA.label, args.email, args.password);
    await screenshot("a", "passkey-step");
    await a.getByTestId("passkey-verify").click();
    await waitSignedIn(a, deviceA.label, "the passkey as the second step");
    const secondFactorWithPasskey = true;
    await waitUntilReady(a, deviceA.label, 1, [PASSKEY_NAME]);

    // A: signed out, the passkey alone signs in: the authenticator offers the discoverable credential.
    await signOut(a, deviceA.label);
    await waitVisible(a, deviceA.label, "passkey-login", 'the "Sign in with a passkey" button');
    const hint = await visibleText(a, "passkey-login-hint");
    if (hint) throw new Failure(`A: the sign-in card says passkeys cannot work here: ${hint}`);
    await screenshot("a", "signed-out");
    await a.getByTestId("passkey-login").click();
    await waitSignedIn(a, deviceA.label, '"Sign in with a passkey"');
    const passwordlessWithPasskey = true;
    await waitUntilReady(a, deviceA.label, 1, [PASSKEY_NAME]);
    const used = await a.getByTestId("passkey-row").first().innerText();
    if (/not used yet/i.test(used)) throw new Failure(`A: the passkey still shows as never used after two sign-ins: ${JSON.stringify(used)}`);

    for (const [page, device] of [[a, deviceA], [b, deviceB]]) await checkNoStoredTokens(page, device.label);
    checkProblems();

    // A: rename; B shows the new name.
    await watchPasskeys(b, 1, [NEW_NAME]);
    await a.getByTestId("passkey-row").filter({ hasText: PASSKEY_NAME }).getByTestId("passkey-rename").click();
    await waitVisible(a, deviceA.label, "passkey-rename-form", "the rename form");
    await a.getByTestId("passkey-rename-name").fill(NEW_NAME);
    await a.getByTestId("passkey-rename-submit").click();
    await waitUntilReady(a, deviceA.label, 1, [NEW_NAME]).catch(async (error) => {
      const shown = await visibleText(a, "security-error");
      throw shown ? new Failure(`A: renaming the passkey failed: ${shown}`) : error;
    });
    await waitForWatched(b, deviceB.label, `the new name "${NEW_NAME}"`);
    await screenshot("a", "passkey-renamed");

    // A: remove it (the password if asked); both show none, and the account is as it was.
    await watchPasskeys(b, 0, []);
    await a.getByTestId("passkey-row").filter({ hasText: NEW_NAME }).getByTestId("passkey-delete").click();
    await waitVisible(a, deviceA.label, "passkey-delete-form", "the confirmation to remove the passkey");
    await screenshot("a", "passkey-remove");
    await a.getByTestId("passkey-delete-submit").click();
    const none = a.locator('[data-testid="passkey-count"][data-count="0"]');
    await passPasswordPromptIfAsked(a, deviceA.label, args.password, none, "no passkeys after removing it");
    await waitUntilReady(a, deviceA.label, 0, []);
    await waitForWatched(b, deviceB.label, "no passkeys after the removal");
    const passkeysAfterDelete = Number((await readView(a)).passkeys);
    await screenshot("b", "passkey-removed");

    for (const [page, device] of [[a, deviceA], [b, deviceB]]) await checkNoStoredTokens(page, device.label);
    checkProblems();

    return {
      security_changed_within_ms: securityChangedWithinMs,
      second_factor_with_passkey: secondFactorWithPasskey,
      passwordless_with_passkey: passwordlessWithPasskey,
      passkeys_after_delete: passkeysAfterDelete,
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
