#!/usr/bin/env node
// Browser test of registration in the authd demo console, in headless Chromium.
//
// One browser registers a new address through the console's form. The console keeps the registration's handle
// in the page; the test then reads one line from standard input, the code from the verification mail (the
// caller, which runs the mail server, passes it on), and types it. The browser must be signed in with the
// password it chose: it signs out and signs in again with that password through the login form.
//
// Usage:
//   node register.mjs --url http://127.0.0.1:5000 --email new@example.com --password '...' --out ./shots
//
// Prints {"awaiting_code":true} when the code step shows, then, on success, one JSON line such as
// {"password_sign_in":true,"screenshots":[...]}, and exits 0. On failure prints the reason to stderr, saves a
// failure screenshot into --out, and exits 1.

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

const OVERALL_TIMEOUT_MS = 60_000;
const NAME = "registering browser";

function readArgs() {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      email: { type: "string" },
      password: { type: "string" },
      out: { type: "string" },
    },
    strict: true,
  });
  for (const name of ["url", "email", "password", "out"]) {
    if (!values[name]) {
      process.stderr.write(`missing --${name}\n`);
      process.exit(1);
    }
  }
  return { ...values, url: new URL("/", values.url).href, out: path.resolve(values.out) };
}

/** The next line of standard input. */
function readLine() {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const onData = (chunk) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end >= 0) {
        stop();
        resolve(buffered.slice(0, end).trim());
      }
    };
    const onEnd = () => {
      stop();
      reject(new Failure("standard input closed before a code arrived"));
    };
    const stop = () => {
      process.stdin.off("data", onData);
      process.stdin.off("end", onEnd);
      process.stdin.pause();
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
    process.stdin.on("end", onEnd);
  });
}

async function waitVisible(page, testId, what) {
  await page
    .getByTestId(testId)
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(async () => {
      const error = await visibleText(page, "error");
      throw new Failure(`${NAME}: ${what} did not show${error ? `: ${error}` : ""}`);
    });
}

async function main() {
  const args = readArgs();
  await mkdir(args.out, { recursive: true });
  const problems = [];
  const shots = [];
  let browser;
  let page;
  let timer;
  const overall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`overall timeout of ${OVERALL_TIMEOUT_MS} ms reached`)), OVERALL_TIMEOUT_MS);
  });

  const run = async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true, timeout: 20_000 });
    const context = await browser.newContext({ viewport: { width: 1180, height: 860 }, locale: "en-GB" });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    watchPage(page, NAME, problems);

    await openConsole(page, NAME, args.url);
    await page.getByTestId("register-email").fill(args.email);
    await page.getByTestId("register-password").fill(args.password);
    await page.getByTestId("register-name").fill("Ada");
    await page.getByTestId("register-submit").click();
    await waitVisible(page, "code-input", "the code step");
    await checkNoStoredTokens(page, NAME);
    const file = path.join(args.out, "register-code-step.png");
    await page.screenshot({ path: file, fullPage: true, animations: "disabled" });
    shots.push(file);

    process.stdout.write(`${JSON.stringify({ awaiting_code: true })}\n`);
    const code = await readLine();
    if (!/^\d{6}$/.test(code)) throw new Failure(`not a code on standard input: ${JSON.stringify(code)}`);
    await page.getByTestId("code-input").fill(code);
    await page.getByTestId("code-submit").click();
    await waitVisible(page, "signed-in", "the signed-in view after the code");
    await checkNoStoredTokens(page, NAME);

    // The password chosen in this browser is the account's: sign out, then in again with it.
    await page.getByTestId("logout").click();
    await waitVisible(page, "login-email", "the login form after signing out");
    await signInWithPassword(page, NAME, args.email, args.password);
    const signedIn = path.join(args.out, "register-signed-in.png");
    await page.screenshot({ path: signedIn, fullPage: true, animations: "disabled" });
    shots.push(signedIn);
    if (problems.length) throw new Failure(problems.join("\n"));
    return { password_sign_in: true, screenshots: shots };
  };

  let exitCode = 0;
  try {
    const result = await Promise.race([run(), overall]);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    exitCode = 1;
    process.stderr.write(`FAIL: ${failureMessage(error)}\n`);
    if (problems.length) process.stderr.write(`page problems:\n${problems.join("\n")}\n`);
    if (page) {
      try {
        const file = path.join(args.out, "register-failure.png");
        await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
        process.stderr.write(`failure screenshot: ${file}\n`);
      } catch {
        // the page may be gone
      }
    }
  } finally {
    clearTimeout(timer);
    if (browser) await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5_000))]);
  }
  process.exit(exitCode);
}

main();
