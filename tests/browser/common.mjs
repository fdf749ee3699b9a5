// What the browser tests of the console share: how Chromium is started, and the checks every page must pass.

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const LAUNCH_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export class Failure extends Error {}

/** Everything the page reports that points at a bug: uncaught errors and content-security-policy refusals. */
export function watchPage(page, name, problems) {
  page.on("pageerror", (error) => problems.push(`${name}: uncaught error in the page: ${error.message}`));
  page.on("console", (message) => {
    const text = message.text();
    if (message.type() === "error" && /Content Security Policy/i.test(text)) {
      problems.push(`${name}: CSP violation: ${text}`);
    }
  });
}

export async function visibleText(page, testId) {
  const locator = page.getByTestId(testId);
  if ((await locator.count()) === 0 || !(await locator.first().isVisible())) return "";
  return (await locator.first().innerText()).trim();
}

/** Neither the access token nor the refresh token may be kept where scripts or other tabs can read them later. */
export async function checkNoStoredTokens(page, name) {
  const stored = await page.evaluate(() => ({
    local: Object.keys(localStorage),
    session: Object.keys(sessionStorage),
    cookie: document.cookie,
    url: location.href,
  }));
  if (stored.local.length || stored.session.length) {
    throw new Failure(`${name}: the page keeps data in web storage: ${JSON.stringify(stored)}`);
  }
  if (/refresh_token/.test(stored.cookie)) {
    throw new Failure(`${name}: the refresh cookie is readable from script (it must be HttpOnly)`);
  }
  if (/token|ticket/i.test(stored.url)) throw new Failure(`${name}: a token is in the page URL: ${stored.url}`);
}

/** Opens the console and waits for its sign-in forms. */
export async function openConsole(page, name, url) {
  let response;
  try {
    response = await page.goto(url, { waitUntil: "domcontentloaded" });
  } catch (error) {
    throw new Failure(`${name}: cannot open ${url}: ${String(error.message).split("\n")[0]}`);
  }
  if (!response || !response.ok()) {
    throw new Failure(`${name}: GET ${url} answered ${response ? response.status() : "nothing"}`);
  }
  await page
    .getByTestId("login-email")
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(() => {
      throw new Failure(`${name}: the login form did not appear`);
    });
}

/** Signs in through the login form and waits for the signed-in view. */
export async function signInWithPassword(page, name, email, password) {
  await page.getByTestId("login-email").fill(email);
  await page.getByTestId("login-password").fill(password);
  await page.getByTestId("login-submit").click();
  await page
    .getByTestId("signed-in")
    .waitFor({ state: "visible", timeout: 10_000 })
    .catch(async () => {
      const error = await visibleText(page, "error");
      throw new Failure(`${name}: not signed in after submitting the login form${error ? `: ${error}` : ""}`);
    });
}

/** A message for a failure, whatever was thrown. */
export function failureMessage(error) {
  return error instanceof Failure ? error.message : String(error?.message || error).replace(/\u001b\[[0-9;]*m/g, "");
}
