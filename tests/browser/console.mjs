#!/usr/bin/env node
// Browser test of the authd demo console in headless Chromium.
//
// Two isolated browser contexts (two cookie jars, two user agents) sign in to the same verified account through the
// console's login form, wait until each sees both devices online over the live channel, then device A signs out
// everywhere and device B must show the signed-out notice with the reason `logout_all` within 1000 ms.
//
// The account must exist, be verified, and have no other live session (the device list must show exactly the two
// browsers). A passing run ends every session of the account, so it can be run again right away.
//
// Usage:
//   node console.mjs --url http://127.0.0.1:5000 --email you@example.com --password '...' --out ./shots
//
// Prints one JSON line on success, e.g. {"signed_out_within_ms":42,"screenshots":[...]}, and exits 0.
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
  watchPage,
} from "./common.mjs";

const OVERALL_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 10_000; // both devices listed, the other one online
const SIGNED_OUT_LIMIT_MS = 1_000;

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

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node console.mjs --url <base url> --email <email> --password <password> --out <screenshot dir>\n`,
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

async function signIn(page, name, args) {
  await openConsole(page, name, args.url);
  await signInWithPassword(page, name, args.email, args.password);
}

/** What the page shows about the live channel and the devices, for checks and for failure messages. */
function readView(page) {
  return page.evaluate(() => {
    const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
    const visible = (node) => Boolean(node && !node.hidden && node.getClientRects().length > 0);
    const rows = [...document.querySelectorAll('[data-testid="session-list"] [data-testid="session-row"]')].map(
      (row) => ({
        id: row.dataset.sessionId,
        online: row.dataset.online,
        current: Boolean(row.querySelector('[data-testid="this-device"]')),
        hasRevoke: Boolean(row.querySelector('[data-testid="revoke"]')),
      }),
    );
    return {
      signedIn: visible(byId("signed-in")),
      signedOut: visible(byId("signed-out")),
      reason: (byId("signed-out-reason")?.textContent || "").trim(),
      ws: (byId("ws-status")?.textContent || "").trim(),
      error: visible(byId("error")) ? byId("error").textContent.trim() : "",
      rows,
    };
  });
}

/** Signed in, live channel connected, two sessions listed, ours badged, the other one online. */
async function waitUntilReady(page, name) {
  try {
    await page.waitForFunction(
      () => {
        const byId = (id) => document.querySelector(`[data-testid="${id}"]`);
        const signedIn = byId("signed-in");
        if (!signedIn || signedIn.hidden) return false;
        if ((byId("ws-status")?.textContent || "").trim() !== "connected") return false;
        const rows = [...document.querySelectorAll('[data-testid="session-list"] [data-testid="session-row"]')];
        if (rows.length !== 2) return false;
        const current = rows.filter((row) => row.querySelector('[data-testid="this-device"]'));
        if (current.length !== 1) return false;
        const other = rows.find((row) => !row.querySelector('[data-testid="this-device"]'));
        return other.dataset.online === "true" && rows.every((row) => row.querySelector('[data-testid="revoke"]'));
      },
      null,
      { timeout: READY_TIMEOUT_MS, polling: 100 },
    );
  } catch {
    throw new Failure(
      `${name}: within ${READY_TIMEOUT_MS} ms the page did not show ws-status "connected" and 2 sessions with the other one online; it shows ${JSON.stringify(await readView(page))}`,
    );
  }
}

async function main() {
  const args = readArgs();
  await mkdir(args.out, { recursive: true });

  const problems = [];
  const pages = {};
  const shots = [];
  let browser;

  const screenshot = async (key, suffix) => {
    const file = path.join(args.out, `${key}-${suffix}.png`);
    await pages[key].screenshot({ path: file, fullPage: true, animations: "disabled" });
    shots.push(file);
    return file;
  };

  const saveFailureShots = async () => {
    for (const key of Object.keys(pages)) {
      if (pages[key].url() === "about:blank") continue;
      try {
        const file = path.join(args.out, `${key}-failure.png`);
        await pages[key].screenshot({ path: file, fullPage: true, timeout: 5_000 });
        process.stderr.write(`failure screenshot: ${file}\n`);
      } catch {
        // the page may be gone
      }
    }
  };

  let timer;
  const overall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`overall timeout of ${OVERALL_TIMEOUT_MS} ms reached`)), OVERALL_TIMEOUT_MS);
  });

  const run = async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true, timeout: 20_000 });

    for (const [key, device] of Object.entries(DEVICES)) {
      const context = await browser.newContext(device.options);
      context.setDefaultTimeout(10_000);
      pages[key] = await context.newPage();
      watchPage(pages[key], device.label, problems);
    }

    // Sign in one after the other, so device A sees device B arrive live.
    await signIn(pages.a, DEVICES.a.label, args);
    await signIn(pages.b, DEVICES.b.label, args);
    await Promise.all([waitUntilReady(pages.a, DEVICES.a.label), waitUntilReady(pages.b, DEVICES.b.label)]);

    const [viewA, viewB] = [await readView(pages.a), await readView(pages.b)];
    const idsA = viewA.rows.map((row) => row.id).sort();
    const idsB = viewB.rows.map((row) => row.id).sort();
    if (JSON.stringify(idsA) !== JSON.stringify(idsB)) {
      throw new Failure(`the two devices list different sessions: A ${JSON.stringify(idsA)}, B ${JSON.stringify(idsB)}`);
    }
    const currentA = viewA.rows.find((row) => row.current).id;
    const currentB = viewB.rows.find((row) => row.current).id;
    if (currentA === currentB) throw new Failure(`both devices badge the same session ${currentA} as "this device"`);
    await checkNoStoredTokens(pages.a, DEVICES.a.label);
    await checkNoStoredTokens(pages.b, DEVICES.b.label);
    if (problems.length) throw new Failure(problems.join("\n"));

    await screenshot("a", "signed-in");
    await screenshot("b", "signed-in");

    // Timestamps are taken inside the pages (one machine, one clock): the click event on A, and the moment B's
    // DOM first shows the signed-out notice with the reason code.
    await pages.b.evaluate(() => {
      window.__signedOutAt = null;
      const shown = () => {
        const box = document.querySelector('[data-testid="signed-out"]');
        const reason = document.querySelector('[data-testid="signed-out-reason"]');
        return Boolean(
          box && !box.hidden && box.getClientRects().length > 0 && reason && reason.textContent.includes("logout_all"),
        );
      };
      const observer = new MutationObserver(() => {
        if (window.__signedOutAt === null && shown()) {
          window.__signedOutAt = Date.now();
          observer.disconnect();
        }
      });
      observer.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    const button = pages.a.getByTestId("logout-all");
    await button.waitFor({ state: "visible" });
    await pages.a.evaluate(() => {
      window.__clickedAt = null;
      const target = document.querySelector('[data-testid="logout-all"]');
      target.addEventListener("click", () => (window.__clickedAt ??= Date.now()), { capture: true, once: true });
    });

    await button.click();
    try {
      await pages.b.waitForFunction(() => window.__signedOutAt !== null, null, { timeout: 5_000, polling: 10 });
    } catch {
      throw new Failure(
        `B did not show signed-out with reason "logout_all" within 5000 ms of the click; it shows ${JSON.stringify(await readView(pages.b))}`,
      );
    }
    const clickedAt = await pages.a.evaluate(() => window.__clickedAt);
    const signedOutAt = await pages.b.evaluate(() => window.__signedOutAt);
    if (clickedAt === null) throw new Failure("the click on A's logout-all button was not seen by the page");
    const withinMs = Math.max(0, signedOutAt - clickedAt);
    if (withinMs > SIGNED_OUT_LIMIT_MS) {
      throw new Failure(`B showed signed-out ${withinMs} ms after the click on A (limit ${SIGNED_OUT_LIMIT_MS} ms)`);
    }

    // A signed itself out everywhere: it shows the same state.
    try {
      await pages.a.waitForFunction(
        () => {
          const box = document.querySelector('[data-testid="signed-out"]');
          const reason = document.querySelector('[data-testid="signed-out-reason"]');
          return Boolean(box && !box.hidden && box.getClientRects().length > 0 && reason?.textContent.includes("logout_all"));
        },
        null,
        { timeout: 5_000, polling: 50 },
      );
    } catch {
      throw new Failure(`A did not show signed-out with reason "logout_all"; it shows ${JSON.stringify(await readView(pages.a))}`);
    }
    for (const key of ["a", "b"]) {
      const view = await readView(pages[key]);
      if (view.signedIn) throw new Failure(`${DEVICES[key].label}: the signed-in view is still visible after signing out`);
      if (view.ws !== "disconnected") throw new Failure(`${DEVICES[key].label}: ws-status is "${view.ws}" after signing out`);
    }
    if (problems.length) throw new Failure(problems.join("\n"));

    await screenshot("a", "signed-out");
    await screenshot("b", "signed-out");

    return { signed_out_within_ms: withinMs, screenshots: shots };
  };

  let code = 0;
  try {
    const result = await Promise.race([run(), overall]);
    process.stdout.write(
      `${JSON.stringify({ signed_out_within_ms: result.signed_out_within_ms, screenshots: result.screenshots })}\n`,
    );
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
