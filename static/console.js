// authd demo console: sign in, list devices, follow them live over the WebSocket.
//
// The refresh token lives only in the HttpOnly cookie the server sets (Path=/api/auth); this script never sees or
// stores it. The access token is kept in memory only, renewed through POST /api/auth/refresh shortly before it
// expires, and dropped as soon as the session ends. What two-step verification shows only once (an authenticator
// app's secret, recovery codes) stays in the page only until its form is closed. Passkeys (WebAuthn) keep nothing
// here either: their private keys stay in the authenticator, and a ceremony's options live only while it runs.
"use strict";

(() => {
  // ---------------------------------------------------------------- settings

  const POLL_MS = 4000; // device list refresh, keeps the online dots right
  const RENEW_BEFORE_S = 60; // renew the access token this long before it expires
  const RECONNECT_MIN_MS = 1000;
  const RECONNECT_MAX_MS = 30000;
  const SESSION_ENDED_CLOSE = 4001;

  /** Words for every reason a session can end (WebSocket reasons and HTTP error codes). */
  const REASONS = {
    logout: "signed out in another tab of this browser",
    logout_all: "signed out everywhere from another device or tab",
    revoked: "this device was revoked from another device or tab",
    refresh_token_reused: "an old sign-in token was used again, so the session was ended for safety",
    password_changed: "the password was changed",
    password_reset: "the password was reset",
    expired: "the session reached its time limit",
    session_revoked: "the session was ended",
    session_expired: "the session reached its time limit",
    refresh_token_invalid: "the session is no longer valid",
    unauthorized: "the sign-in is no longer valid",
  };

  /** Words for the changes to two-step verification another device announces over the WebSocket. */
  const SECURITY_CHANGES = {
    totp_enabled: "the authenticator app was turned on",
    totp_disabled: "the authenticator app was turned off",
    recovery_codes_regenerated: "new recovery codes were made",
    email_otp_enabled: "the email code was turned on",
    email_otp_disabled: "the email code was turned off",
    passkey_added: "a passkey was added",
    passkey_removed: "a passkey was removed",
    passkey_renamed: "a passkey was renamed",
  };

  /** How the code step looks for each second step a sign-in challenge can offer. */
  const METHODS = {
    email_otp: {
      title: "Enter the 6-digit code",
      label: "Code from the email",
      lead: (email) => `This account asks for a second step: we sent a 6-digit code to ${email}.`,
    },
    totp: {
      title: "Two-step verification",
      label: "Code from your authenticator app",
      lead: () => "This account asks for a second step: enter the 6-digit code your authenticator app shows now.",
    },
    recovery_code: {
      title: "Use a recovery code",
      label: "Recovery code",
      lead: () => "Enter one of the recovery codes you saved when you set up the authenticator app. Each one works once.",
    },
    webauthn: {
      title: "Use your passkey",
      label: "Passkey",
      lead: () => "This account asks for a second step: confirm with one of its passkeys, saved on this device, a phone or a security key.",
    },
  };
  // A passkey is one touch and cannot be phished; the app is next quickest; a recovery code is the last resort, as
  // it is used up.
  const METHOD_PREFERENCE = ["webauthn", "totp", "email_otp", "recovery_code"];

  /** Words for the same reasons when this page asked for it. */
  const OWN_REASONS = {
    logout: "signed out on this device",
    logout_all: "signed out everywhere",
    revoked: "this device was revoked from its own device list",
  };

  // ---------------------------------------------------------------- state

  const state = {
    accessToken: null, // memory only
    tokenExpiresAt: 0, // ms since epoch
    sessionId: null,
    user: null,
    sessions: new Map(), // id -> Session, in display order
    fresh: new Set(), // ids added by a live event, highlighted once
    ending: new Set(), // ids this page is ending itself: their session_ended event needs no notice
    epoch: 0, // bumps on every sign-in and sign-out; late answers of an older epoch are ignored
    signedIn: false,
    refreshing: null, // the one refresh in flight
    renewTimer: 0,
    pollTimer: 0,
    socket: null,
    socketOpen: false,
    reconnectTimer: 0,
    reconnectDelay: RECONNECT_MIN_MS,
    revokedReason: null, // from the session_revoked frame, used when the 4001 close follows
    code: null, // the code step: {mode: "verify_email" | "login" | "mfa", email, challengeId?, methods?, method?, webauthn?, registration?}
    factors: null, // GET /api/users/me/mfa: {email_otp, totp, recovery_codes_left, passkeys}
    passkeys: null, // GET /api/users/me/passkeys: [{id, name, created_at, last_used_at}], newest first
    freshPasskeys: new Set(), // ids new since the last list, highlighted once
    panel: null, // the open form of the two-step verification card, a key of `panels`
    reauthenticate: null, // the SENSITIVE_ACTIONS key the password form sends again
    subject: null, // what the open passkey form is about: a passkey {id, name}, or the name of the one to add
    ceremony: null, // the AbortController of the WebAuthn request in flight
    ownAction: null, // the reason code this page's own request in flight would end the session with
  };

  // ---------------------------------------------------------------- DOM

  const $ = (id) => document.getElementById(id);
  const el = {
    loading: $("loading"),
    error: $("error"),
    authView: $("auth-view"),
    authForms: $("auth-forms"),
    loginForm: $("login-form"),
    loginEmail: $("login-email"),
    loginPassword: $("login-password"),
    loginWithCode: $("login-with-code"),
    loginVerify: $("login-verify"),
    registerForm: $("register-form"),
    registerEmail: $("register-email"),
    registerPassword: $("register-password"),
    registerName: $("register-name"),
    codeForm: $("code-form"),
    codeTitle: $("code-title"),
    codeLead: $("code-lead"),
    codeLabel: $("code-label"),
    codeField: $("code-field"),
    codeInput: $("code-input"),
    codeSubmit: $("code-submit"),
    passkeyStep: $("passkey-step"),
    passkeyVerify: $("passkey-verify"),
    passkeyVerifyHint: $("passkey-verify-hint"),
    passkeyLogin: $("passkey-login"),
    passkeyLoginHint: $("passkey-login-hint"),
    mailHint: $("mail-hint"),
    codeMethods: $("code-methods"),
    methodButtons: [$("use-webauthn"), $("use-totp"), $("use-recovery-code"), $("use-email-otp")],
    codeResend: $("code-resend"),
    codeBack: $("code-back"),
    signedOut: $("signed-out"),
    signedOutReason: $("signed-out-reason"),
    signedOutTime: $("signed-out-time"),
    dismissSignedOut: $("dismiss-signed-out"),
    signedIn: $("signed-in"),
    avatar: $("avatar"),
    profileName: $("profile-name"),
    profileEmail: $("profile-email"),
    profileMeta: $("profile-meta"),
    live: $("live-indicator"),
    wsStatus: $("ws-status"),
    sessionList: $("session-list"),
    sessionCount: $("session-count"),
    devicesFoot: $("devices-foot"),
    rowTemplate: $("session-row-template"),
    logout: $("logout"),
    logoutOthers: $("logout-others"),
    logoutAll: $("logout-all"),
    toasts: $("toasts"),
    factorList: $("factor-list"),
    emailOtpStatus: $("email-otp-status"),
    emailOtpToggle: $("email-otp-toggle"),
    totpStatus: $("totp-status"),
    totpSetup: $("totp-setup"),
    totpDisable: $("totp-disable"),
    recoveryCodesLeft: $("recovery-codes-left"),
    recoveryCodesNew: $("recovery-codes-new"),
    securityError: $("security-error"),
    securityFoot: $("security-foot"),
    reauthenticateForm: $("reauthenticate-form"),
    reauthenticateLead: $("reauthenticate-lead"),
    reauthenticatePassword: $("reauthenticate-password"),
    reauthenticateSubmit: $("reauthenticate-submit"),
    emailOtpForm: $("email-otp-form"),
    emailOtpTitle: $("email-otp-title"),
    emailOtpPassword: $("email-otp-password"),
    emailOtpSubmit: $("email-otp-submit"),
    totpSetupForm: $("totp-setup-form"),
    totpQr: $("totp-qr"),
    totpSecret: $("totp-secret"),
    totpLinkLine: $("totp-link-line"),
    totpLink: $("totp-link"),
    totpCode: $("totp-code"),
    totpConfirm: $("totp-confirm"),
    totpDisableForm: $("totp-disable-form"),
    totpDisablePassword: $("totp-disable-password"),
    totpDisableCode: $("totp-disable-code"),
    totpDisableSubmit: $("totp-disable-submit"),
    recoveryCodesPanel: $("recovery-codes-panel"),
    recoveryCodes: $("recovery-codes"),
    recoveryCodesSaved: $("recovery-codes-saved"),
    recoveryCodesCopy: $("recovery-codes-copy"),
    passkeyCount: $("passkey-count"),
    passkeyAdd: $("passkey-add"),
    passkeyAddHint: $("passkey-add-hint"),
    passkeyList: $("passkey-list"),
    passkeyRowTemplate: $("passkey-row-template"),
    passkeyAddForm: $("passkey-add-form"),
    passkeyAddName: $("passkey-add-name"),
    passkeyAddSubmit: $("passkey-add-submit"),
    passkeyRenameForm: $("passkey-rename-form"),
    passkeyRenameName: $("passkey-rename-name"),
    passkeyRenameSubmit: $("passkey-rename-submit"),
    passkeyDeleteForm: $("passkey-delete-form"),
    passkeyDeleteName: $("passkey-delete-name"),
    passkeyDeleteSubmit: $("passkey-delete-submit"),
  };

  /** The forms of the two-step verification card; at most one is open. */
  const panels = {
    reauthenticate: el.reauthenticateForm,
    email_otp: el.emailOtpForm,
    totp_setup: el.totpSetupForm,
    totp_disable: el.totpDisableForm,
    recovery_codes: el.recoveryCodesPanel,
    passkey_add: el.passkeyAddForm,
    passkey_rename: el.passkeyRenameForm,
    passkey_delete: el.passkeyDeleteForm,
  };

  const show = (node, visible) => {
    node.hidden = !visible;
  };

  // ---------------------------------------------------------------- messages

  /** `kind` "info" is for what is no failure, such as a passkey prompt the user closed. */
  function showError(message, kind = "error") {
    el.error.textContent = message;
    el.error.classList.toggle("alert-info", kind === "info");
    el.error.classList.toggle("alert-error", kind !== "info");
    show(el.error, Boolean(message));
  }

  function clearError() {
    showError("");
  }

  function toast(message, kind = "info") {
    const item = document.createElement("div");
    item.className = `toast toast-${kind}`;
    item.textContent = message;
    el.toasts.append(item);
    while (el.toasts.childElementCount > 3) el.toasts.firstElementChild.remove();
    setTimeout(() => item.classList.add("toast-leaving"), 4200);
    setTimeout(() => item.remove(), 4600);
  }

  /** A readable message for a problem+json answer (or a network failure). */
  function describeProblem(problem) {
    if (!problem) return "Something went wrong.";
    let text = problem.detail || problem.title || "Something went wrong.";
    if (Array.isArray(problem.errors) && problem.errors.length) {
      const parts = problem.errors
        .filter((error) => error && error.message)
        .map((error) => {
          const field = error.field ? String(error.field).replace(/_/g, " ") : "";
          const sentence = field ? `${field} ${error.message}` : String(error.message);
          return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1).replace(/\.?$/, ".")}`;
        });
      if (parts.length) text += ` ${parts.join(" ")}`;
    }
    if (problem.retryAfter) text += ` Try again in ${problem.retryAfter} s.`;
    return text;
  }

  function reasonWords(code, own = false) {
    return (own && OWN_REASONS[code]) || REASONS[code] || "the session was ended";
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, problem) {
      super(describeProblem(problem));
      this.status = status;
      this.problem = problem || {};
      this.code = (problem && problem.code) || (status === 0 ? "network" : "error");
    }
  }

  async function request(method, path, { body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, { detail: "The server cannot be reached. Check the connection and try again." });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const problem = data && typeof data === "object" ? data : { detail: `${response.status} ${response.statusText}` };
      const retryAfter = response.headers.get("Retry-After");
      if (retryAfter) problem.retryAfter = retryAfter;
      throw new ApiError(response.status, problem);
    }
    return data;
  }

  const SESSION_GONE = new Set(["session_revoked", "session_expired", "refresh_token_invalid", "refresh_token_reused"]);

  /** Renews the access token with the refresh cookie; one call at a time. */
  function refreshAccess() {
    if (!state.refreshing) {
      const epoch = state.epoch;
      state.refreshing = request("POST", "/api/auth/refresh")
        .then((tokens) => {
          if (epoch === state.epoch && state.signedIn) acceptTokens(tokens);
          return tokens;
        })
        .finally(() => {
          state.refreshing = null;
        });
    }
    return state.refreshing;
  }

  /** An authenticated call: renews an expired token once, and signs out when the session is gone. */
  async function api(method, path, body) {
    const epoch = state.epoch;
    if (!state.accessToken) throw new ApiError(401, { code: "unauthorized", detail: "Not signed in." });
    if (Date.now() > state.tokenExpiresAt - 5000) await renewOrSignOut(epoch);
    try {
      try {
        return await request(method, path, { body, token: state.accessToken });
      } catch (error) {
        if (epoch !== state.epoch || error.code !== "token_expired") throw error;
        await renewOrSignOut(epoch);
        return await request(method, path, { body, token: state.accessToken });
      }
    } catch (error) {
      if (epoch === state.epoch && SESSION_GONE.has(error.code)) sessionGone(error.code);
      throw error;
    }
  }

  /**
   * An HTTP answer says the session has ended. The WebSocket names the precise reason (logout_all, revoked, ...)
   * within a second, so while it is connected wait briefly for it before falling back to the HTTP code.
   */
  let goneTimer = 0;
  function sessionGone(code) {
    if (!state.signedIn) return;
    if (!state.socketOpen) {
      signOut(code);
      return;
    }
    if (goneTimer) return;
    const epoch = state.epoch;
    goneTimer = setTimeout(() => {
      goneTimer = 0;
      if (epoch === state.epoch) signOut(code);
    }, 1500);
  }

  async function renewOrSignOut(epoch) {
    try {
      await refreshAccess();
    } catch (error) {
      if (epoch === state.epoch && error.status === 401) sessionGone(error.code);
      throw error;
    }
  }

  // ---------------------------------------------------------------- sign-in and sign-out

  function acceptTokens(tokens) {
    state.accessToken = tokens.access_token;
    state.tokenExpiresAt = Date.now() + Number(tokens.expires_in || 0) * 1000;
    state.sessionId = tokens.session_id;
    state.user = tokens.user;
    scheduleRenewal(Number(tokens.expires_in || 0));
    renderProfile();
  }

  /** Renews `lead` seconds before the token's end (at most RENEW_BEFORE_S, less for very short tokens). */
  function scheduleRenewal(expiresIn, retryMs = 0) {
    clearTimeout(state.renewTimer);
    const lead = Math.min(RENEW_BEFORE_S, Math.max(5, expiresIn / 5));
    const delay = retryMs || Math.max(5, expiresIn - lead) * 1000;
    const epoch = state.epoch;
    state.renewTimer = setTimeout(async () => {
      if (epoch !== state.epoch) return;
      try {
        await refreshAccess();
      } catch (error) {
        if (epoch !== state.epoch) return;
        if (error.status === 401) sessionGone(error.code);
        else scheduleRenewal(0, 10000); // a network hiccup: try again in 10 s
      }
    }, delay);
  }

  /** Enters the signed-in view with a TokenResponse. */
  function signIn(tokens) {
    state.epoch += 1;
    state.signedIn = true;
    state.sessions.clear();
    state.fresh.clear();
    state.ending.clear();
    state.revokedReason = null;
    state.ownAction = null;
    state.code = null;
    cancelCeremony();
    acceptTokens(tokens);
    clearError();
    show(el.signedOut, false);
    show(el.loading, false);
    show(el.authView, false);
    show(el.signedIn, true);
    show(el.live, true);
    el.loginPassword.value = "";
    el.registerPassword.value = "";
    el.codeInput.value = "";
    resetSecurity();
    setWsStatus(false);
    loadSessions();
    loadFactors();
    loadPasskeys();
    startPolling();
    state.reconnectDelay = RECONNECT_MIN_MS;
    connectSocket();
  }

  /** Leaves the signed-in view, drops the access token and says why (`reason` is the raw code). */
  function signOut(reason) {
    if (!state.signedIn) return;
    state.epoch += 1;
    state.signedIn = false;
    state.accessToken = null;
    state.tokenExpiresAt = 0;
    state.sessionId = null;
    state.sessions.clear();
    state.fresh.clear();
    clearTimeout(state.renewTimer);
    clearInterval(state.pollTimer);
    clearTimeout(state.reconnectTimer);
    clearTimeout(goneTimer);
    goneTimer = 0;
    cancelCeremony();
    closeSocket();
    setWsStatus(false);
    clearError();
    el.toasts.replaceChildren();

    const own = state.ownAction === reason;
    state.ownAction = null;
    el.signedOutReason.replaceChildren(`${reasonWords(reason, own)} (`, codeNode(reason), ")");
    el.signedOutTime.textContent = `At ${formatClock(new Date())}. Sign in again to continue.`;
    show(el.signedOut, true);
    show(el.signedIn, false);
    show(el.live, false);
    el.sessionList.replaceChildren();
    resetSecurity();
    showAuthForms();
    show(el.authView, true);
    if (state.user) el.loginEmail.value = state.user.email;
    state.user = null;
    document.title = "Signed out · authd console";
  }

  function codeNode(text) {
    const code = document.createElement("code");
    code.className = "reason-code";
    code.textContent = text;
    return code;
  }

  // ---------------------------------------------------------------- the WebSocket

  function setWsStatus(connected) {
    state.socketOpen = connected;
    el.wsStatus.textContent = connected ? "connected" : "disconnected";
    el.live.classList.toggle("is-connected", connected);
  }

  function closeSocket() {
    const socket = state.socket;
    state.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close(1000, "bye");
      } catch {
        // already closed
      }
    }
  }

  let connectSeq = 0;
  async function connectSocket() {
    const epoch = state.epoch;
    const seq = ++connectSeq; // a later call supersedes this one
    clearTimeout(state.reconnectTimer);
    closeSocket();
    let ticket;
    try {
      ({ ticket } = await api("POST", "/api/auth/ws-ticket"));
    } catch {
      if (epoch === state.epoch && seq === connectSeq && state.signedIn) scheduleReconnect();
      return;
    }
    if (epoch !== state.epoch || seq !== connectSeq || !state.signedIn) return;

    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/ws?ticket=${encodeURIComponent(ticket)}`);
    state.socket = socket;

    socket.onmessage = (event) => {
      if (state.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      handleServerMessage(message);
    };
    socket.onclose = (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      setWsStatus(false);
      if (event.code === SESSION_ENDED_CLOSE) {
        signOut(state.revokedReason || "session_revoked");
        return;
      }
      if (state.signedIn && epoch === state.epoch) scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(state.reconnectTimer);
    const delay = state.reconnectDelay;
    state.reconnectDelay = Math.min(RECONNECT_MAX_MS, state.reconnectDelay * 2);
    const jittered = delay / 2 + Math.random() * (delay / 2);
    el.devicesFoot.textContent = `Live updates lost; reconnecting in ${Math.ceil(jittered / 1000)} s…`;
    state.reconnectTimer = setTimeout(() => {
      if (state.signedIn) connectSocket();
    }, jittered);
  }

  function handleServerMessage(message) {
    switch (message.type) {
      case "hello":
        setWsStatus(true);
        state.reconnectDelay = RECONNECT_MIN_MS;
        el.devicesFoot.textContent = "";
        loadSessions(); // our own dot just turned green
        loadFactors(); // a change may have been announced while this page was not connected
        loadPasskeys();
        break;
      case "session_revoked":
        if (!message.session_id || message.session_id === state.sessionId) {
          state.revokedReason = message.reason || "session_revoked";
          signOut(state.revokedReason);
        }
        break;
      case "session_created": {
        const session = message.session;
        if (!session || !session.id) break;
        if (!state.sessions.has(session.id)) {
          state.sessions = new Map([[session.id, { ...session, current: false }], ...state.sessions]);
          state.fresh.add(session.id);
          renderSessions();
        }
        toast(`New sign-in: ${session.device || "unknown device"}`, "success");
        // The new device opens its own WebSocket right after signing in: look again soon for its dot.
        const epoch = state.epoch;
        for (const wait of [800, 2000]) {
          setTimeout(() => epoch === state.epoch && loadSessions(), wait);
        }
        break;
      }
      case "session_ended": {
        const gone = state.sessions.get(message.session_id);
        if (message.session_id && message.session_id !== state.sessionId) {
          state.sessions.delete(message.session_id);
          renderSessions();
          if (gone && !state.ending.has(message.session_id)) {
            toast(`Device signed out: ${gone.device || "unknown device"} (${message.reason || "ended"})`);
          }
        }
        loadSessions();
        break;
      }
      case "security_changed": {
        const words = SECURITY_CHANGES[message.change];
        toast(words ? `On another device, ${words}.` : "Two-step verification was changed on another device.");
        loadFactors();
        loadPasskeys();
        break;
      }
      default:
        break; // unknown frames are ignored
    }
  }

  // ---------------------------------------------------------------- the device list

  function startPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = setInterval(() => {
      if (state.signedIn && document.visibilityState !== "hidden") loadSessions();
    }, POLL_MS);
  }

  let loadSeq = 0;
  async function loadSessions() {
    if (!state.signedIn) return;
    const epoch = state.epoch;
    const seq = ++loadSeq;
    try {
      const data = await api("GET", "/api/auth/sessions");
      if (epoch !== state.epoch || seq !== loadSeq) return; // a newer answer wins
      state.sessions = new Map((data.sessions || []).map((session) => [session.id, session]));
      renderSessions();
    } catch (error) {
      if (epoch === state.epoch && state.signedIn && error.code !== "token_expired") {
        el.devicesFoot.textContent = `Could not load the devices: ${error.message}`;
      }
    }
  }

  function renderSessions() {
    const rows = [];
    for (const session of state.sessions.values()) rows.push(renderRow(session));
    el.sessionList.replaceChildren(...rows);
    const count = state.sessions.size;
    el.sessionCount.textContent = String(count);
    const online = [...state.sessions.values()].filter((session) => session.online).length;
    el.sessionCount.title = `${count} signed in, ${online} online`;
    el.logoutOthers.disabled = count < 2;
    if (!el.devicesFoot.textContent.startsWith("Live updates lost")) {
      el.devicesFoot.textContent = count ? `${online} of ${count} online · updated ${formatClock(new Date())}` : "";
    }
  }

  function renderRow(session) {
    const row = el.rowTemplate.content.firstElementChild.cloneNode(true);
    const online = Boolean(session.online);
    row.dataset.sessionId = session.id;
    row.dataset.online = String(online);
    row.classList.toggle("is-online", online);
    row.classList.toggle("is-current", Boolean(session.current));
    if (state.fresh.has(session.id)) {
      row.classList.add("is-fresh");
      state.fresh.delete(session.id);
    }
    const dot = row.querySelector(".dot");
    dot.title = online ? "Online now" : "Offline";

    const device = row.querySelector(".session-device");
    device.textContent = session.device || "Unknown device";
    if (session.user_agent) device.title = session.user_agent;

    const badge = row.querySelector("[data-testid=this-device]");
    if (!session.current) badge.remove();
    row.querySelector(".presence").textContent = online ? "online" : "offline";

    row.querySelector(".meta-ip").textContent = session.ip || "unknown IP";
    setTime(row.querySelector(".meta-created"), "Signed in", session.created_at);
    setTime(row.querySelector(".meta-used"), "Last active", session.last_used_at);

    const revoke = row.querySelector("[data-testid=revoke]");
    revoke.title = session.current ? "End this session (signs this browser out)" : `End the session of ${device.textContent}`;
    revoke.addEventListener("click", () => revokeSession(session, revoke));
    return row;
  }

  function setTime(node, label, iso) {
    const date = iso ? new Date(iso) : null;
    if (!date || Number.isNaN(date.getTime())) {
      node.textContent = `${label} —`;
      return;
    }
    node.textContent = `${label} ${formatRelative(date)}`;
    node.title = `${label} ${formatFull(date)}`;
  }

  // ---------------------------------------------------------------- times

  const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  const full = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" });
  const clock = new Intl.DateTimeFormat("en", { timeStyle: "medium" });
  const day = new Intl.DateTimeFormat("en", { dateStyle: "medium" });

  function formatRelative(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    if (abs < 45) return "just now";
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
    return `on ${day.format(date)}`;
  }

  const formatFull = (date) => full.format(date);
  const formatClock = (date) => clock.format(date);

  // ---------------------------------------------------------------- the profile

  function renderProfile() {
    const user = state.user;
    if (!user) return;
    const name = user.name && user.name.trim() ? user.name.trim() : null;
    el.profileName.textContent = name || user.email;
    el.profileEmail.textContent = name ? user.email : "No name set";
    const since = user.created_at ? ` · Account since ${day.format(new Date(user.created_at))}` : "";
    el.profileMeta.textContent = `${user.email_verified ? "Email verified" : "Email not verified"}${since}`;
    const source = name || user.email;
    const initials = name
      ? name.split(/\s+/).filter(Boolean).slice(0, 2).map((part) => part[0]).join("")
      : source.charAt(0);
    el.avatar.textContent = initials.toUpperCase();
    document.title = `${name || user.email} · authd console`;
  }

  // ---------------------------------------------------------------- actions

  async function busy(button, work) {
    if (button.disabled) return;
    button.disabled = true;
    button.classList.add("is-busy");
    try {
      await work();
    } finally {
      button.disabled = false;
      button.classList.remove("is-busy");
    }
  }

  function revokeSession(session, button) {
    busy(button, async () => {
      clearError();
      const epoch = state.epoch;
      state.ending.add(session.id);
      if (session.current) state.ownAction = "revoked";
      try {
        await api("DELETE", `/api/auth/sessions/${encodeURIComponent(session.id)}`);
        if (epoch !== state.epoch) return;
        if (session.current) {
          signOut("revoked");
          return;
        }
        state.sessions.delete(session.id);
        renderSessions();
        toast(`Revoked: ${session.device || "device"}`);
        loadSessions();
      } catch (error) {
        state.ending.delete(session.id);
        state.ownAction = null;
        if (epoch === state.epoch) showError(error.message);
      }
    });
  }

  el.logout.addEventListener("click", () =>
    busy(el.logout, async () => {
      clearError();
      const epoch = state.epoch;
      state.ownAction = "logout";
      try {
        await api("POST", "/api/auth/logout");
        if (epoch === state.epoch) signOut("logout");
      } catch (error) {
        state.ownAction = null;
        if (epoch === state.epoch) showError(error.message);
      }
    }),
  );

  el.logoutOthers.addEventListener("click", () =>
    busy(el.logoutOthers, async () => {
      clearError();
      const epoch = state.epoch;
      const others = [...state.sessions.values()].filter((session) => !session.current);
      for (const session of others) state.ending.add(session.id);
      try {
        await api("POST", "/api/auth/logout-all", { keep_current: true });
        if (epoch !== state.epoch) return;
        for (const [id, session] of state.sessions) if (!session.current) state.sessions.delete(id);
        renderSessions();
        toast(others.length === 1 ? "Signed out 1 other device" : `Signed out ${others.length} other devices`, "success");
        loadSessions();
      } catch (error) {
        if (epoch === state.epoch) showError(error.message);
      }
    }),
  );

  el.logoutAll.addEventListener("click", () =>
    busy(el.logoutAll, async () => {
      clearError();
      const epoch = state.epoch;
      state.ownAction = "logout_all";
      try {
        await api("POST", "/api/auth/logout-all", { keep_current: false });
        if (epoch === state.epoch) signOut("logout_all");
      } catch (error) {
        state.ownAction = null;
        if (epoch === state.epoch) showError(error.message);
      }
    }),
  );

  el.dismissSignedOut.addEventListener("click", () => show(el.signedOut, false));

  // ---------------------------------------------------------------- two-step verification

  function showSecurityError(message, kind = "error") {
    el.securityError.textContent = message;
    el.securityError.classList.toggle("alert-info", kind === "info");
    el.securityError.classList.toggle("alert-error", kind !== "info");
    show(el.securityError, Boolean(message));
  }

  function clearSecurityError() {
    showSecurityError("");
  }

  /** Closes the open form and forgets what it held: passwords, the app's secret, recovery codes. */
  function closePanel() {
    for (const panel of Object.values(panels)) show(panel, false);
    for (const input of [
      el.reauthenticatePassword,
      el.emailOtpPassword,
      el.totpCode,
      el.totpDisablePassword,
      el.totpDisableCode,
      el.passkeyAddName,
      el.passkeyRenameName,
    ]) {
      input.value = "";
    }
    el.passkeyDeleteName.textContent = "";
    el.totpSecret.textContent = "";
    el.totpQr.removeAttribute("src");
    el.totpLink.removeAttribute("href");
    el.recoveryCodes.replaceChildren();
    state.panel = null;
    state.reauthenticate = null;
    state.subject = null;
    renderFactors();
  }

  function openPanel(name) {
    closePanel();
    clearSecurityError();
    state.panel = name;
    show(panels[name], true);
    renderFactors();
  }

  function resetSecurity() {
    state.factors = null;
    state.passkeys = null;
    state.freshPasskeys.clear();
    el.passkeyList.replaceChildren();
    closePanel();
    clearSecurityError();
    el.securityFoot.textContent = "";
  }

  function setFactorState(node, enabled) {
    node.textContent = enabled === null ? "…" : enabled ? "On" : "Off";
    node.classList.toggle("is-on", enabled === true);
    if (enabled === null) delete node.dataset.enabled;
    else node.dataset.enabled = String(enabled);
  }

  function renderFactors() {
    const factors = state.factors;
    const known = Boolean(factors);
    setFactorState(el.emailOtpStatus, known ? Boolean(factors.email_otp) : null);
    setFactorState(el.totpStatus, known ? Boolean(factors.totp) : null);
    show(el.emailOtpToggle, known);
    el.emailOtpToggle.textContent = known && factors.email_otp ? "Turn off" : "Turn on";
    show(el.totpSetup, known && !factors.totp);
    show(el.totpDisable, known && Boolean(factors.totp));
    show(el.recoveryCodesNew, known && Boolean(factors.totp));
    const left = known && factors.totp ? Number(factors.recovery_codes_left) || 0 : null;
    el.recoveryCodesLeft.textContent = left === null ? "" : `${left} ${left === 1 ? "recovery code" : "recovery codes"} left`;
    if (left === null) delete el.recoveryCodesLeft.dataset.count;
    else el.recoveryCodesLeft.dataset.count = String(left);
    el.recoveryCodesLeft.classList.toggle("is-low", left !== null && left <= 3);
    renderPasskeyCount();
    // Codes on screen are shown only once: no other change until they are put away.
    el.factorList.inert = state.panel === "recovery_codes";
  }

  /** Which state of the authenticator app each form assumes; another device can change it under an open form. */
  const NEEDS_TOTP = { totp_setup: false, totp_disable: true, recovery_codes_new: true };

  let factorsSeq = 0;
  async function loadFactors() {
    if (!state.signedIn) return;
    const epoch = state.epoch;
    const seq = ++factorsSeq;
    try {
      const factors = await api("GET", "/api/users/me/mfa");
      if (epoch !== state.epoch || seq !== factorsSeq) return; // a newer answer wins
      state.factors = factors || {};
      el.securityFoot.textContent = "";
      const action = state.panel === "reauthenticate" ? state.reauthenticate : state.panel;
      const needs = NEEDS_TOTP[action];
      if (needs !== undefined && needs !== Boolean(state.factors.totp)) {
        closePanel();
        showSecurityError("The authenticator app was changed on another device meanwhile.");
      }
      renderFactors();
    } catch (error) {
      if (epoch === state.epoch && state.signedIn && error.code !== "token_expired") {
        el.securityFoot.textContent = `Could not load the two-step verification settings: ${error.message}`;
      }
    }
  }

  /** A change the server answered for this page: shown at once, then read back for the recovery code count. */
  function factorsChanged(change, user) {
    if (user && user.email) {
      state.user = user;
      renderProfile();
    }
    state.factors = { ...(state.factors || {}), ...change };
    renderFactors();
    loadFactors();
  }

  function showRecoveryCodes(codes) {
    openPanel("recovery_codes");
    const items = (Array.isArray(codes) ? codes : []).map((code) => {
      const item = document.createElement("li");
      item.dataset.testid = "recovery-code";
      item.textContent = String(code);
      return item;
    });
    el.recoveryCodes.replaceChildren(...items);
    el.recoveryCodesSaved.focus();
  }

  function showTotpSetup(enrolment) {
    openPanel("totp_setup");
    const image = String(enrolment.qr_code || "");
    const hasImage = image.startsWith("data:image/");
    if (hasImage) el.totpQr.src = image;
    show(el.totpQr, hasImage);
    el.totpSecret.textContent = String(enrolment.secret || "");
    const uri = String(enrolment.otpauth_uri || "");
    const hasUri = uri.startsWith("otpauth://");
    if (hasUri) el.totpLink.href = uri;
    show(el.totpLinkLine, hasUri);
    el.totpCode.focus();
  }

  /** Changes the server accepts only soon after a sign-in, or with the password in the body. */
  const SENSITIVE_ACTIONS = {
    totp_setup: {
      path: "/api/users/me/mfa/totp",
      lead: "You signed in a while ago: enter your password to set up an authenticator app.",
      done: showTotpSetup,
    },
    recovery_codes_new: {
      path: "/api/users/me/mfa/recovery-codes",
      lead: "You signed in a while ago: enter your password to make new recovery codes.",
      done: (answer) => {
        showRecoveryCodes(answer.recovery_codes);
        factorsChanged({ recovery_codes_left: (answer.recovery_codes || []).length });
      },
    },
    passkey_add: {
      path: "/api/users/me/passkeys/options",
      lead: "You signed in a while ago: enter your password to add a passkey.",
      done: (answer, name) => registerPasskey(answer, name),
    },
    passkey_delete: {
      method: "DELETE",
      path: (passkey) => `/api/users/me/passkeys/${encodeURIComponent(passkey.id)}`,
      lead: "You signed in a while ago: enter your password to remove the passkey.",
      done: (_answer, passkey) => {
        closePanel();
        passkeysChanged((list) => list.filter((item) => item.id !== passkey.id));
        toast(`Passkey “${passkey.name}” removed`, "success");
      },
    },
  };

  /**
   * Without a recent sign-in the server answers reauthentication_required: ask for the password, then send again.
   * `subject` is what the action is about (see state.subject); it outlives the password form.
   */
  async function runSensitive(name, password, subject = null) {
    const action = SENSITIVE_ACTIONS[name];
    const epoch = state.epoch;
    clearSecurityError();
    try {
      const path = typeof action.path === "function" ? action.path(subject) : action.path;
      const answer = await api(action.method || "POST", path, password === undefined ? {} : { password });
      if (epoch !== state.epoch) return;
      await action.done(answer || {}, subject);
    } catch (error) {
      if (epoch !== state.epoch) return;
      if (error.code === "reauthentication_required" && password === undefined) {
        openPanel("reauthenticate");
        state.reauthenticate = name;
        state.subject = subject;
        el.reauthenticateLead.textContent = action.lead;
        el.reauthenticatePassword.focus();
        return;
      }
      const retryable = error.status === 0 || ["invalid_password", "account_locked", "validation_failed"].includes(error.code);
      if (password !== undefined && retryable) {
        showSecurityError(error.message);
        el.reauthenticatePassword.select();
        return;
      }
      if (state.panel === "reauthenticate") closePanel();
      if (error.code === "not_found" && name === "passkey_delete") {
        showSecurityError("That passkey no longer exists: it was removed meanwhile.");
        loadPasskeys();
        loadFactors();
        return;
      }
      showSecurityError(error.message);
      if (["totp_already_enabled", "totp_not_enabled"].includes(error.code)) loadFactors();
    }
  }

  el.totpSetup.addEventListener("click", () => busy(el.totpSetup, () => runSensitive("totp_setup")));
  el.recoveryCodesNew.addEventListener("click", () => busy(el.recoveryCodesNew, () => runSensitive("recovery_codes_new")));

  el.reauthenticateForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = state.reauthenticate;
    const password = el.reauthenticatePassword.value;
    if (!name) return;
    if (!password) {
      showSecurityError("Enter your password.");
      el.reauthenticatePassword.focus();
      return;
    }
    busy(el.reauthenticateSubmit, () => runSensitive(name, password, state.subject));
  });

  el.totpCode.addEventListener("input", () => {
    const digits = el.totpCode.value.replace(/\D/g, "").slice(0, 6);
    if (digits !== el.totpCode.value) el.totpCode.value = digits;
  });

  el.totpSetupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = el.totpCode.value.trim();
    if (!/^\d{6}$/.test(code)) {
      showSecurityError("The code has 6 digits.");
      el.totpCode.focus();
      return;
    }
    busy(el.totpConfirm, async () => {
      clearSecurityError();
      const epoch = state.epoch;
      try {
        const answer = await api("POST", "/api/users/me/mfa/totp/confirm", { code });
        if (epoch !== state.epoch) return;
        const codes = (answer && answer.recovery_codes) || [];
        showRecoveryCodes(codes);
        factorsChanged({ totp: true, recovery_codes_left: codes.length }, answer && answer.user);
        toast("Authenticator app turned on", "success");
      } catch (error) {
        if (epoch !== state.epoch) return;
        if (error.code === "totp_not_enabled") {
          // The setup expired or was restarted elsewhere: its QR code is no longer the one to scan.
          closePanel();
          showSecurityError(`${error.message} Start the setup again.`);
          loadFactors();
          return;
        }
        showSecurityError(error.message);
        el.totpCode.select();
      }
    });
  });

  el.totpDisable.addEventListener("click", () => {
    openPanel("totp_disable");
    el.totpDisablePassword.focus();
  });

  el.totpDisableForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const password = el.totpDisablePassword.value;
    const code = el.totpDisableCode.value.trim().toLowerCase();
    if (!password) {
      showSecurityError("Enter your password.");
      el.totpDisablePassword.focus();
      return;
    }
    if (!code) {
      showSecurityError("Enter a code from your authenticator app, or a recovery code.");
      el.totpDisableCode.focus();
      return;
    }
    busy(el.totpDisableSubmit, async () => {
      clearSecurityError();
      const epoch = state.epoch;
      try {
        const answer = await api("DELETE", "/api/users/me/mfa/totp", { password, code });
        if (epoch !== state.epoch) return;
        closePanel();
        factorsChanged({ totp: false, recovery_codes_left: 0 }, answer && answer.user ? answer.user : answer);
        toast("Authenticator app turned off", "success");
      } catch (error) {
        if (epoch !== state.epoch) return;
        showSecurityError(error.message);
        if (error.code === "invalid_password") el.totpDisablePassword.select();
        else if (error.code === "otp_invalid") el.totpDisableCode.select();
        else if (error.code === "totp_not_enabled") {
          closePanel();
          showSecurityError(error.message);
          loadFactors();
        }
      }
    });
  });

  el.emailOtpToggle.addEventListener("click", () => {
    if (!state.factors) return;
    const enable = !state.factors.email_otp;
    openPanel("email_otp");
    el.emailOtpForm.dataset.enable = String(enable);
    el.emailOtpTitle.textContent = enable ? "Turn on the email code" : "Turn off the email code";
    el.emailOtpSubmit.textContent = enable ? "Turn on" : "Turn off";
    el.emailOtpPassword.focus();
  });

  el.emailOtpForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const enabled = el.emailOtpForm.dataset.enable === "true";
    const password = el.emailOtpPassword.value;
    if (!password) {
      showSecurityError("Enter your password.");
      el.emailOtpPassword.focus();
      return;
    }
    busy(el.emailOtpSubmit, async () => {
      clearSecurityError();
      const epoch = state.epoch;
      try {
        const user = await api("PUT", "/api/users/me/mfa/email-otp", { enabled, password });
        if (epoch !== state.epoch) return;
        closePanel();
        factorsChanged({ email_otp: enabled }, user);
        toast(enabled ? "Email code turned on" : "Email code turned off", "success");
      } catch (error) {
        if (epoch !== state.epoch) return;
        showSecurityError(error.message);
        el.emailOtpPassword.select();
      }
    });
  });

  for (const button of document.querySelectorAll("[data-panel-cancel]")) {
    button.addEventListener("click", () => {
      cancelCeremony(); // a passkey prompt still open belongs to the form being closed
      closePanel();
      clearSecurityError();
    });
  }

  el.recoveryCodesSaved.addEventListener("click", () => {
    closePanel();
    clearSecurityError();
  });

  el.recoveryCodesCopy.addEventListener("click", async () => {
    const text = [...el.recoveryCodes.children].map((item) => item.textContent).join("\n");
    try {
      await navigator.clipboard.writeText(text);
      toast("Recovery codes copied", "success");
    } catch {
      toast("This browser does not allow copying here: select the codes and copy them by hand.");
    }
  });

  // ---------------------------------------------------------------- passkeys (WebAuthn)

  /** Where the console must be opened for passkeys: the same port, by name. */
  function localhostUrl() {
    return `${location.protocol}//localhost${location.port ? `:${location.port}` : ""}`;
  }

  /** WebAuthn refuses IP addresses as the relying party, 127.0.0.1 included: only a domain name will do. */
  function onIpAddress() {
    const host = location.hostname;
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":") || host.startsWith("[");
  }

  /** Why passkeys cannot work on this page, or "" when they can. */
  function passkeyObstacle() {
    if (onIpAddress()) {
      return `Passkeys need the console at ${localhostUrl()}: browsers refuse them on an IP address such as ${location.hostname}.`;
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      return "This browser offers no passkeys on this page: they need https, or http://localhost.";
    }
    return "";
  }

  /** The same explanation beside each passkey button, with the address as a link to follow. */
  function renderPasskeyHints() {
    const obstacle = passkeyObstacle();
    for (const hint of [el.passkeyLoginHint, el.passkeyVerifyHint, el.passkeyAddHint]) {
      if (onIpAddress()) {
        const link = document.createElement("a");
        link.href = localhostUrl();
        link.textContent = localhostUrl();
        hint.replaceChildren("Passkeys need the console at ", link, ": browsers refuse them on an IP address.");
      } else {
        hint.textContent = obstacle;
      }
      show(hint, Boolean(obstacle));
    }
  }

  function bytesFromBase64url(text) {
    // The server sends base64url without padding; plain base64 and padding are taken as well.
    const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
    return bytes.buffer;
  }

  function base64urlFromBytes(data) {
    const bytes = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /** The options without null members: an absent value may arrive as null, which browsers refuse or read as 0. */
  function withoutNulls(value) {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (!value || typeof value !== "object") return value;
    const copy = {};
    for (const [key, member] of Object.entries(value)) if (member !== null) copy[key] = withoutNulls(member);
    return copy;
  }

  function withIds(descriptors) {
    return (descriptors || []).map((descriptor) => ({ ...descriptor, id: bytesFromBase64url(descriptor.id) }));
  }

  function creationOptions(json) {
    const options = withoutNulls(json);
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(options);
    }
    return {
      ...options,
      challenge: bytesFromBase64url(options.challenge),
      user: { ...options.user, id: bytesFromBase64url(options.user.id) },
      excludeCredentials: withIds(options.excludeCredentials),
    };
  }

  function requestOptions(json) {
    const options = withoutNulls(json);
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(options);
    }
    return {
      ...options,
      challenge: bytesFromBase64url(options.challenge),
      allowCredentials: withIds(options.allowCredentials),
    };
  }

  /**
   * The credential as the server reads it: base64url fields, and only those it names. Transports and the client's
   * extension outputs stay out, so a browser's newer values cannot make the server refuse the whole credential.
   */
  function credentialJson(credential, kind) {
    const encoded = typeof credential.toJSON === "function" ? credential.toJSON() : null;
    const response = credential.response;
    const field = (name) => {
      if (encoded && encoded.response && typeof encoded.response[name] === "string") return encoded.response[name];
      return response[name] ? base64urlFromBytes(response[name]) : null;
    };
    const names =
      kind === "create"
        ? ["attestationObject", "clientDataJSON"]
        : ["authenticatorData", "clientDataJSON", "signature", "userHandle"];
    return {
      id: credential.id,
      rawId: encoded && typeof encoded.rawId === "string" ? encoded.rawId : base64urlFromBytes(credential.rawId),
      type: "public-key",
      response: Object.fromEntries(names.map((name) => [name, field(name)])),
      extensions: {},
    };
  }

  /** One WebAuthn ceremony ("create" or "get") with the server's `publicKey` options; answers the credential JSON. */
  async function passkeyCeremony(kind, publicKey) {
    if (!publicKey) throw new ApiError(502, { detail: "The server sent no passkey options." });
    cancelCeremony();
    const controller = new AbortController();
    state.ceremony = controller;
    try {
      const credential =
        kind === "create"
          ? await navigator.credentials.create({ publicKey: creationOptions(publicKey), signal: controller.signal })
          : await navigator.credentials.get({ publicKey: requestOptions(publicKey), signal: controller.signal });
      if (!credential) throw new DOMException("No passkey was chosen.", "NotAllowedError");
      return credentialJson(credential, kind);
    } finally {
      if (state.ceremony === controller) state.ceremony = null;
    }
  }

  /** Closes a passkey prompt this page opened, when what it was for is gone (signed out, form closed, back). */
  function cancelCeremony() {
    const controller = state.ceremony;
    state.ceremony = null;
    if (controller) controller.abort();
  }

  /** Words for a passkey attempt that failed; "" when this page cancelled it itself. */
  function passkeyProblem(error) {
    if (error instanceof ApiError) return error.message;
    switch (error && error.name) {
      case "AbortError":
        return "";
      case "NotAllowedError":
        // Also what the browser says when the prompt timed out, or found no passkey for this site.
        return "No passkey was used: the prompt was closed, timed out or found none for this site. Try again when you are ready.";
      case "InvalidStateError":
        return "This device or security key already holds a passkey of this account; add one on another.";
      case "SecurityError":
        return passkeyObstacle() || "The browser refused passkeys for this address.";
      case "NotSupportedError":
        return "This browser or device cannot make the kind of passkey asked for (one that checks it is you).";
      default:
        return `The browser could not use a passkey: ${error && error.message ? error.message : error}`;
    }
  }

  /** Shows a failed passkey attempt with `display`: a closed prompt calmly, as it is no error. */
  function reportPasskeyProblem(error, display) {
    const message = passkeyProblem(error);
    if (message) display(message, error && error.name === "NotAllowedError" ? "info" : "error");
    return Boolean(message);
  }

  /** The server's rule for names: 1 to 64 characters once trimmed. */
  function passkeyNameProblem(name) {
    if (!name) return "Give the passkey a name.";
    if ([...name].length > 64) return "A passkey's name has at most 64 characters.";
    return "";
  }

  // The count comes from GET /api/users/me/mfa; the list, when that has no count yet.
  function renderPasskeyCount() {
    const fromFactors = state.factors && typeof state.factors.passkeys === "number" ? state.factors.passkeys : null;
    const count = fromFactors ?? (state.passkeys ? state.passkeys.length : null);
    const words = count === 0 ? "None" : `${count} ${count === 1 ? "passkey" : "passkeys"}`;
    el.passkeyCount.textContent = count === null ? "" : words;
    el.passkeyCount.classList.toggle("is-on", Boolean(count));
    if (count === null) delete el.passkeyCount.dataset.count;
    else el.passkeyCount.dataset.count = String(count);
    show(el.passkeyAdd, count !== null);
  }

  function renderPasskeys() {
    el.passkeyList.replaceChildren(...(state.passkeys || []).map(renderPasskeyRow));
    renderPasskeyCount();
  }

  function renderPasskeyRow(passkey) {
    const row = el.passkeyRowTemplate.content.firstElementChild.cloneNode(true);
    const name = passkey.name || "Passkey";
    row.dataset.passkeyId = passkey.id;
    if (state.freshPasskeys.has(passkey.id)) {
      row.classList.add("is-fresh");
      state.freshPasskeys.delete(passkey.id);
    }
    row.querySelector("[data-testid=passkey-name]").textContent = name;
    setTime(row.querySelector(".meta-created"), "Added", passkey.created_at);
    const used = row.querySelector(".meta-used");
    if (passkey.last_used_at) setTime(used, "Last used", passkey.last_used_at);
    else used.textContent = "Not used yet";
    const rename = row.querySelector("[data-testid=passkey-rename]");
    rename.setAttribute("aria-label", `Rename the passkey ${name}`);
    rename.addEventListener("click", () => {
      openPanel("passkey_rename");
      state.subject = { id: passkey.id, name };
      el.passkeyRenameName.value = name;
      el.passkeyRenameName.select();
    });
    const remove = row.querySelector("[data-testid=passkey-delete]");
    remove.setAttribute("aria-label", `Remove the passkey ${name}`);
    remove.addEventListener("click", () => {
      openPanel("passkey_delete");
      state.subject = { id: passkey.id, name };
      el.passkeyDeleteName.textContent = `“${name}”`;
      el.passkeyDeleteSubmit.focus();
    });
    return row;
  }

  let passkeysSeq = 0;
  async function loadPasskeys() {
    if (!state.signedIn) return;
    const epoch = state.epoch;
    const seq = ++passkeysSeq;
    try {
      const data = await api("GET", "/api/users/me/passkeys");
      if (epoch !== state.epoch || seq !== passkeysSeq) return; // a newer answer wins
      const known = state.passkeys ? new Set(state.passkeys.map((passkey) => passkey.id)) : null;
      state.passkeys = Array.isArray(data && data.passkeys) ? data.passkeys : [];
      if (known) for (const passkey of state.passkeys) if (!known.has(passkey.id)) state.freshPasskeys.add(passkey.id);
      // A form about a passkey another device removed meanwhile has nothing left to act on.
      const action = state.panel === "reauthenticate" ? state.reauthenticate : state.panel;
      const subject = state.subject;
      const gone = subject && !state.passkeys.some((passkey) => passkey.id === subject.id);
      if (gone && ["passkey_rename", "passkey_delete"].includes(action)) {
        closePanel();
        showSecurityError(`The passkey “${subject.name}” was removed on another device meanwhile.`);
      }
      renderPasskeys();
    } catch (error) {
      if (epoch === state.epoch && state.signedIn && error.code !== "token_expired") {
        el.securityFoot.textContent = `Could not load the passkeys: ${error.message}`;
      }
    }
  }

  /** A change the server answered for this page: shown at once, then read back. */
  function passkeysChanged(update) {
    if (state.passkeys) {
      state.passkeys = update(state.passkeys);
      if (state.factors) state.factors = { ...state.factors, passkeys: state.passkeys.length };
    }
    renderPasskeys();
    loadPasskeys();
    loadFactors();
  }

  /** After the options: the browser's prompt makes the credential, and the server keeps it under `name`. */
  async function registerPasskey(answer, name) {
    const epoch = state.epoch;
    try {
      const credential = await passkeyCeremony("create", answer.options && answer.options.publicKey);
      if (epoch !== state.epoch) return;
      const passkey = await api("POST", "/api/users/me/passkeys", {
        ceremony_id: answer.ceremony_id,
        name,
        credential,
      });
      if (epoch !== state.epoch) return;
      closePanel();
      if (passkey && passkey.id) {
        state.freshPasskeys.add(passkey.id);
        passkeysChanged((list) => [passkey, ...list.filter((item) => item.id !== passkey.id)]);
      } else {
        passkeysChanged((list) => list);
      }
      toast(`Passkey “${name}” added`, "success");
    } catch (error) {
      if (epoch !== state.epoch) return;
      // Back to the name, whichever form asked last: a new try right away needs no password again.
      if (!passkeyProblem(error)) return;
      if (state.panel !== "passkey_add") openPanel("passkey_add");
      el.passkeyAddName.value = name;
      reportPasskeyProblem(error, showSecurityError);
      if (error.code === "validation_failed") el.passkeyAddName.select();
    }
  }

  /** The current device's name, as the list of devices shows it: where a new passkey most often lives. */
  function suggestedPasskeyName() {
    const current = state.sessionId && state.sessions.get(state.sessionId);
    return current && current.device ? String(current.device).slice(0, 64) : "";
  }

  el.passkeyAdd.addEventListener("click", () => {
    const obstacle = passkeyObstacle();
    if (obstacle) {
      showSecurityError(obstacle);
      return;
    }
    openPanel("passkey_add");
    el.passkeyAddName.value = suggestedPasskeyName();
    el.passkeyAddName.select();
  });

  el.passkeyAddForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = el.passkeyAddName.value.trim();
    const problem = passkeyNameProblem(name);
    if (problem) {
      showSecurityError(problem);
      el.passkeyAddName.focus();
      return;
    }
    busy(el.passkeyAddSubmit, () => runSensitive("passkey_add", undefined, name));
  });

  el.passkeyRenameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const passkey = state.subject;
    const name = el.passkeyRenameName.value.trim();
    if (!passkey) return;
    const problem = passkeyNameProblem(name);
    if (problem) {
      showSecurityError(problem);
      el.passkeyRenameName.focus();
      return;
    }
    busy(el.passkeyRenameSubmit, async () => {
      clearSecurityError();
      const epoch = state.epoch;
      try {
        const renamed = await api("PATCH", `/api/users/me/passkeys/${encodeURIComponent(passkey.id)}`, { name });
        if (epoch !== state.epoch) return;
        closePanel();
        passkeysChanged((list) =>
          list.map((item) => (item.id === passkey.id ? { ...item, ...(renamed || {}), name } : item)),
        );
        toast(`Passkey renamed to “${name}”`, "success");
      } catch (error) {
        if (epoch !== state.epoch) return;
        if (error.code === "not_found") {
          closePanel();
          showSecurityError(`The passkey “${passkey.name}” no longer exists: it was removed meanwhile.`);
          loadPasskeys();
          loadFactors();
          return;
        }
        showSecurityError(error.message);
        el.passkeyRenameName.select();
      }
    });
  });

  el.passkeyDeleteForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const passkey = state.subject;
    if (!passkey) return;
    busy(el.passkeyDeleteSubmit, () => runSensitive("passkey_delete", undefined, passkey));
  });

  // Passwordless: the authenticator offers the passkeys it holds for this site, and the one chosen names the account.
  el.passkeyLogin.addEventListener("click", () => {
    const obstacle = passkeyObstacle();
    if (obstacle) {
      showError(obstacle);
      return;
    }
    busy(el.passkeyLogin, async () => {
      clearError();
      try {
        const answer = await request("POST", "/api/auth/passkey/options");
        const credential = await passkeyCeremony("get", answer && answer.options && answer.options.publicKey);
        const tokens = await request("POST", "/api/auth/passkey/login", {
          body: { ceremony_id: answer.ceremony_id, credential },
        });
        signIn(tokens);
      } catch (error) {
        reportPasskeyProblem(error, showError);
      }
    });
  });

  /** The second step with a passkey: the challenge carries the request options, limited to the account's passkeys. */
  function verifyWithPasskey() {
    const step = state.code;
    if (!step || step.mode !== "mfa" || !step.webauthn) return;
    const obstacle = passkeyObstacle();
    if (obstacle) {
      showError(obstacle);
      return;
    }
    busy(el.passkeyVerify, async () => {
      clearError();
      try {
        const credential = await passkeyCeremony("get", step.webauthn.publicKey);
        if (state.code !== step) return; // the user went back meanwhile
        const tokens = await request("POST", "/api/auth/login/verify", {
          body: { challenge_id: step.challengeId, method: "webauthn", credential },
        });
        signIn(tokens);
      } catch (error) {
        if (state.code !== step) return;
        if (error.code === "challenge_invalid") {
          showAuthForms();
          showError(`${error.message} Sign in again.`);
          return;
        }
        reportPasskeyProblem(error, showError);
      }
    });
  }

  el.passkeyVerify.addEventListener("click", verifyWithPasskey);

  // ---------------------------------------------------------------- forms

  function showAuthForms() {
    state.code = null;
    cancelCeremony();
    show(el.codeForm, false);
    show(el.authForms, true);
  }

  function showCodeStep(code) {
    state.code = code;
    show(el.authForms, false);
    show(el.codeForm, true);
    renderCodeStep();
  }

  /** A sign-in that needs a second step: the challenge names the methods it accepts. */
  function showSecondStep(email, challenge) {
    const offered = Array.isArray(challenge.methods) ? challenge.methods : [];
    // A passkey needs the request options the challenge carries along.
    const webauthn = challenge.webauthn && challenge.webauthn.publicKey ? challenge.webauthn : null;
    const methods = METHOD_PREFERENCE.filter(
      (method) => offered.includes(method) && (method !== "webauthn" || webauthn),
    );
    if (!methods.length) {
      showAuthForms();
      showError("This account needs a second step this console does not support.");
      return;
    }
    // Where passkeys cannot work (an IP address), start with another method if there is one.
    const method = methods.find((name) => name !== "webauthn" || !passkeyObstacle()) || methods[0];
    showCodeStep({ mode: "mfa", email, challengeId: challenge.challenge_id, methods, method, webauthn });
  }

  function renderCodeStep() {
    const code = state.code;
    const method = code.mode === "mfa" ? code.method : null;
    if (method) {
      el.codeTitle.textContent = METHODS[method].title;
      el.codeLead.textContent = METHODS[method].lead(code.email);
      el.codeLabel.textContent = METHODS[method].label;
    } else {
      const leads = {
        verify_email: `We sent a 6-digit code to ${code.email} to confirm the address.`,
        login: `We sent a 6-digit sign-in code to ${code.email} (if it has a verified account).`,
      };
      el.codeTitle.textContent = code.mode === "verify_email" ? "Confirm your email" : "Enter the 6-digit code";
      el.codeLead.textContent = leads[code.mode];
      el.codeLabel.textContent = "Code";
    }
    el.codeForm.dataset.method = method || "email_otp";
    const mailed = !method || method === "email_otp";
    const passkey = method === "webauthn";
    show(el.mailHint, mailed);
    show(el.codeResend, mailed);
    show(el.codeField, !passkey);
    show(el.codeSubmit, !passkey);
    show(el.passkeyStep, passkey);
    for (const button of el.methodButtons) {
      show(button, Boolean(method) && button.dataset.method !== method && code.methods.includes(button.dataset.method));
    }
    show(el.codeMethods, el.methodButtons.some((button) => !button.hidden));
    setCodeInputKind(method === "recovery_code");
    el.codeInput.value = "";
    if (passkey) el.passkeyVerify.focus();
    else el.codeInput.focus();
  }

  /** Six digits, or a recovery code: letters and digits in two groups of five. */
  function setCodeInputKind(recovery) {
    const input = el.codeInput;
    input.classList.toggle("is-recovery", recovery);
    input.setAttribute("inputmode", recovery ? "text" : "numeric");
    input.setAttribute("autocomplete", recovery ? "off" : "one-time-code");
    input.setAttribute("spellcheck", "false");
    input.setAttribute("autocapitalize", "off");
    input.maxLength = recovery ? 11 : 6;
    input.placeholder = recovery ? "abcde-fghij" : "000000";
    if (recovery) input.removeAttribute("pattern");
    else input.setAttribute("pattern", "[0-9]{6}");
  }

  function isRecoveryStep() {
    return Boolean(state.code && state.code.mode === "mfa" && state.code.method === "recovery_code");
  }

  function formButton(form) {
    return form.querySelector("button[type=submit]");
  }

  function requireFields(pairs) {
    for (const [input, message] of pairs) {
      if (!input.value.trim()) {
        showError(message);
        input.focus();
        return false;
      }
    }
    return true;
  }

  el.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const email = el.loginEmail.value.trim();
    const password = el.loginPassword.value;
    if (!requireFields([[el.loginEmail, "Enter your email address."], [el.loginPassword, "Enter your password."]])) return;
    busy(formButton(el.loginForm), async () => {
      clearError();
      try {
        const answer = await request("POST", "/api/auth/login", { body: { email, password } });
        if (answer && answer.mfa_required) {
          showSecondStep(email, answer);
          return;
        }
        signIn(answer);
      } catch (error) {
        if (error.code === "invalid_credentials") {
          // An address not confirmed yet has no password: the same answer as a wrong one, so point at the code.
          showError(`${error.message} Signed up but not confirmed yet? Use "Confirm my email with a code" below.`);
          return;
        }
        showError(error.message);
      }
    });
  });

  el.loginVerify.addEventListener("click", () => {
    const email = el.loginEmail.value.trim();
    if (!requireFields([[el.loginEmail, "Enter your email address first."]])) return;
    busy(el.loginVerify, async () => {
      clearError();
      if (await requestCode(email, "verify_email")) showCodeStep({ mode: "verify_email", email });
    });
  });

  el.loginWithCode.addEventListener("click", () => {
    const email = el.loginEmail.value.trim();
    if (!requireFields([[el.loginEmail, "Enter your email address first."]])) return;
    busy(el.loginWithCode, async () => {
      clearError();
      if (await requestCode(email, "login")) showCodeStep({ mode: "login", email });
    });
  });

  el.registerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const email = el.registerEmail.value.trim();
    const password = el.registerPassword.value;
    const name = el.registerName.value.trim();
    if (!requireFields([[el.registerEmail, "Enter an email address."], [el.registerPassword, "Choose a password."]])) return;
    busy(formButton(el.registerForm), async () => {
      clearError();
      const body = { email, password };
      if (name) body.name = name;
      try {
        const answer = await request("POST", "/api/auth/register", { body });
        showCodeStep({ mode: "verify_email", email, registration: answer.registration });
      } catch (error) {
        showError(error.message);
      }
    });
  });

  el.codeInput.addEventListener("input", () => {
    const cleaned = isRecoveryStep()
      ? el.codeInput.value.toLowerCase().replace(/[^a-z0-9-]/g, "").slice(0, 11)
      : el.codeInput.value.replace(/\D/g, "").slice(0, 6);
    if (cleaned !== el.codeInput.value) el.codeInput.value = cleaned;
  });

  for (const button of el.methodButtons) {
    button.addEventListener("click", () => {
      const step = state.code;
      if (!step || step.mode !== "mfa" || !step.methods.includes(button.dataset.method)) return;
      clearError();
      cancelCeremony();
      step.method = button.dataset.method;
      renderCodeStep();
    });
  }

  el.codeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const step = state.code;
    if (!step) return;
    if (step.mode === "mfa" && step.method === "webauthn") {
      verifyWithPasskey(); // no code to send: Enter here starts the passkey prompt
      return;
    }
    const code = el.codeInput.value.trim();
    const recovery = isRecoveryStep();
    if (recovery ? !/^[a-z0-9]{10}$/.test(code.replace(/-/g, "")) : !/^\d{6}$/.test(code)) {
      showError(recovery ? "A recovery code has 10 letters and digits, like abcde-fghij." : "The code has 6 digits.");
      el.codeInput.focus();
      return;
    }
    busy(formButton(el.codeForm), async () => {
      clearError();
      try {
        let tokens;
        if (step.mode === "verify_email") {
          // The handle lives in this page's memory only, like the tokens: with it the code sets the password
          // chosen here; without it (another browser, a reload) the address is verified but gets no password.
          const body = { email: step.email, code };
          if (step.registration) body.registration = step.registration;
          tokens = await request("POST", "/api/auth/verify-email", { body });
          if (tokens && tokens.mfa_required) {
            showSecondStep(step.email, tokens);
            return;
          }
          if (tokens.password_set === false) {
            toast("Address confirmed. This browser did not create the account, so no password was set: sign in with an emailed code.", "info");
          }
        } else if (step.mode === "login") {
          // The mailed code is only the first step when the account has an authenticator app.
          tokens = await request("POST", "/api/auth/otp/login", { body: { email: step.email, code } });
          if (tokens && tokens.mfa_required) {
            showSecondStep(step.email, tokens);
            return;
          }
        } else {
          tokens = await request("POST", "/api/auth/login/verify", {
            body: { challenge_id: step.challengeId, method: step.method, code },
          });
        }
        signIn(tokens);
      } catch (error) {
        if (error.code === "challenge_invalid") {
          // Used, expired or unknown: only a new first step makes a new challenge.
          showAuthForms();
          showError(`${error.message} Sign in again.`);
          return;
        }
        showError(error.message);
        el.codeInput.select();
      }
    });
  });

  async function requestCode(email, purpose) {
    try {
      await request("POST", "/api/auth/otp/request", { body: { email, purpose } });
      return true;
    } catch (error) {
      showError(error.message);
      return false;
    }
  }

  el.codeResend.addEventListener("click", () => {
    const step = state.code;
    if (!step) return;
    busy(el.codeResend, async () => {
      clearError();
      if (step.mode === "mfa") {
        showError("Sign in again with your password to get a new code.");
        return;
      }
      if (await requestCode(step.email, step.mode)) toast("If the address can receive one, a new code is on its way (at most one a minute).");
    });
  });

  el.codeBack.addEventListener("click", () => {
    clearError();
    showAuthForms();
  });

  // ---------------------------------------------------------------- start

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !state.signedIn) return;
    loadSessions();
    loadFactors();
    loadPasskeys();
    if (!state.socket && !state.socketOpen) connectSocket();
  });

  // Relative times stay fresh between polls.
  setInterval(() => {
    if (state.signedIn && document.visibilityState !== "hidden") {
      renderSessions();
      if (state.passkeys) renderPasskeys();
    }
  }, 30000);

  async function start() {
    renderPasskeyHints();
    try {
      // No body: the HttpOnly refresh cookie, if any, restores the session.
      const tokens = await request("POST", "/api/auth/refresh");
      signIn(tokens);
    } catch (error) {
      show(el.loading, false);
      showAuthForms();
      show(el.authView, true);
      if (error.code === "refresh_token_reused") {
        el.signedOutReason.replaceChildren(`${reasonWords(error.code)} (`, codeNode(error.code), ")");
        el.signedOutTime.textContent = "Sign in again to continue.";
        show(el.signedOut, true);
      } else if (error.status === 0 || error.status >= 500) {
        showError(error.message);
      }
      el.loginEmail.focus();
    }
  }

  start();
})();
