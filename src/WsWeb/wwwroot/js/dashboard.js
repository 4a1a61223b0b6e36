// WsWeb dashboard: live updates over the SignalR hub (/hubs/flows), actions over the REST API.
// Pages are rendered on the server (Razor components); this module only adds what changes after load.
// Rows built here mirror Components/Shared/FlowRow.razor and MessageRow.razor.

const HUB_URL = "/hubs/flows";
const POLL_MS = 1000;
const FILTERED_REFETCH_MS = 1000;
const MAX_FLOW_ROWS = 500;
const MAX_MESSAGE_ROWS = 2000;
const TRIM_TO = 1500;
const PREVIEW_CHARS = 160;
const PREVIEW_BYTES = 24;

// A shared WsWeb that restarted (a new sign-in token) answers 401 with X-WsWeb-Sign-In: go and sign in again
// rather than leave a page that silently stopped updating. Covers this module's fetches and htmx's requests.
function toSignIn(response) {
  const signIn = response.status === 401 && response.headers.get("X-WsWeb-Sign-In");
  if (signIn) location.assign(`${signIn}?returnUrl=${encodeURIComponent(location.pathname + location.search)}`);
}
const nativeFetch = window.fetch.bind(window);
window.fetch = async (...args) => { const response = await nativeFetch(...args); toSignIn(response); return response; };
document.addEventListener("htmx:responseError", (e) => toSignIn({ status: e.detail.xhr.status, headers: { get: (name) => e.detail.xhr.getResponseHeader(name) } }));

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// ---------- formatting (mirrors Dashboard/Fmt.cs) ----------

const escapeHtml = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${Math.round(bytes / 100) / 10} kB`;
  if (bytes < 1e9) return `${Math.round(bytes / 1e5) / 10} MB`;
  return `${Math.round(bytes / 1e7) / 100} GB`;
}

const iso = (ts) => new Date(ts * 1000).toISOString().replace("T", " ").replace("Z", " UTC");
const clock = (ts, ms = false) => new Date(ts * 1000).toLocaleTimeString([], ms
  ? { hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3 }
  : { hour12: false });
const relative = (ts, t0) => `+${Math.max(0, ts - t0).toFixed(3)}`;

// Times a person reads are in the browser's zone (LocalTime.razor renders UTC, with the full UTC time as the title).
function localizeTimes(root = document) {
  for (const t of root.querySelectorAll("time[data-ts]")) t.textContent = clock(parseFloat(t.dataset.ts), t.hasAttribute("data-ms"));
}

function base64Bytes(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function preview(m) {
  if (m.encoding === "base64") {
    const bytes = base64Bytes(m.content);
    const hex = Array.from(bytes.subarray(0, PREVIEW_BYTES), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return bytes.length > PREVIEW_BYTES ? `${hex} …` : hex;
  }
  const text = m.content.length > PREVIEW_CHARS ? `${m.content.slice(0, PREVIEW_CHARS)}…` : m.content;
  return showInvisible(text.replaceAll("\r", "").replaceAll("\n", "⏎").replaceAll("\t", " "));
}

// As Fmt.ShowInvisible(text, controls: true): bidirectional controls as ⟨U+202E⟩, other C0 controls as ␀-style pictures.
function showInvisible(text) {
  return text.replace(/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, (c) => {
    const code = c.charCodeAt(0);
    if (code === 0x7f) return "\u2421";
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    return `⟨U+${code.toString(16).toUpperCase().padStart(4, "0")}⟩`;
  });
}

function badges(m) {
  let html = "";
  if (m.resolution === "held") html += '<span class="badge b-held">held</span>';
  if (m.dropped) html += '<span class="badge b-dropped">dropped</span>';
  if (m.injected) html += '<span class="badge b-injected">injected</span>';
  if (m.edited) html += '<span class="badge b-edited">edited</span>';
  if (["released", "timeout-released", "timeout-dropped", "flow-ended"].includes(m.resolution)) html += `<span class="badge b-res">${escapeHtml(m.resolution)}</span>`;
  return html;
}

function messageRow(m, t0) {
  const dir = m.fromClient
    ? '<span class="dir dir-out" title="client → server">→</span>'
    : '<span class="dir dir-in" title="server → client">←</span>';
  return `<tr class="msg-row${m.dropped ? " msg-dropped" : ""}" data-index="${m.index}" tabindex="-1">` +
    `<td class="c-idx">${m.index}</td><td class="c-dir">${dir}</td><td class="c-type">${escapeHtml(m.type)}</td>` +
    `<td class="c-size">${formatBytes(m.length)}</td><td class="c-rel" title="${iso(m.timestamp)}">${relative(m.timestamp, t0)}</td>` +
    `<td class="c-preview font-monospace text-truncate">${escapeHtml(preview(m))}</td><td class="c-flags">${badges(m)}</td></tr>`;
}

function flowState(f) {
  if (f.isLive) return f.isWebSocket ? ["open", "text-bg-success"] : ["pending", "text-bg-info"];
  if (f.isWebSocket) {
    return [`closed${f.closeCode != null ? ` ${f.closeCode}` : ""}`, [1000, 1001, 1005].includes(f.closeCode) ? "text-bg-secondary" : "text-bg-warning"];
  }
  if (f.error) return ["error", "text-bg-danger"];
  return [f.status != null ? String(f.status) : "—", statusCss(f.status)];
}

// Mirrors Fmt.StatusCss.
function statusCss(status) {
  if (status >= 400) return "text-bg-danger";
  return status >= 200 && status < 300 ? "text-bg-light border border-success text-success" : "text-bg-light border";
}

// Mirrors Fmt.ReplayTitle.
const replayTitle = (replay) => (replay === "response"
  ? "its response was played back from a recording (mitmproxy's server replay)"
  : "its request was sent again (a replay)");

function flowRow(f) {
  const [state, css] = flowState(f);
  const by = f.closedByClient === true ? "client" : f.closedByClient === false ? "server" : "?";
  // A plain HTTP flow has no messages: its bytes are the request and response bodies.
  const up = f.isWebSocket ? f.bytesFromClient : (f.requestContentLength ?? 0);
  const down = f.isWebSocket ? f.bytesFromServer : (f.responseContentLength ?? 0);
  const bytesTitle = f.isWebSocket ? `${up} B ↑ · ${down} B ↓` : `request body ${up} B · response body ${down} B`;
  const stateTitle = f.isWebSocket && !f.isLive ? `closed by ${by}: ${f.closeCode ?? ""} ${f.closeReason ?? ""}`.trimEnd() : (f.error ?? "");
  return `<tr class="flow-row${f.isLive ? " live" : ""}" data-id="${escapeHtml(f.id)}">` +
    `<td class="c-time"><time data-ts="${f.timestampCreated}" title="${iso(f.timestampCreated)}">${clock(f.timestampCreated)}</time></td>` +
    `<td class="c-client font-monospace text-truncate" title="${escapeHtml(f.client)}">${escapeHtml(f.client)}</td>` +
    `<td class="c-url text-truncate"><span class="flow-kind${f.isWebSocket ? " k-ws" : ""}" title="${f.isWebSocket ? "WebSocket" : `${escapeHtml(f.method)} request`}">` +
    `${f.isWebSocket ? "WS" : escapeHtml(f.method)}</span><a class="font-monospace" href="/flows/${encodeURIComponent(f.id)}" title="${escapeHtml(f.url)}">${escapeHtml(f.url)}</a></td>` +
    `<td class="c-proto text-truncate" title="${escapeHtml(f.subprotocol)}">${escapeHtml(f.subprotocol)}</td>` +
    `<td class="c-state"><span class="badge ${css}" title="${escapeHtml(stateTitle)}">${escapeHtml(state)}</span>` +
    `${f.imported ? '<span class="badge text-bg-light border ms-1 imported" title="read from a file, not captured here">imported</span>' : ""}` +
    `${f.replay ? `<span class="badge text-bg-light border ms-1 replay" title="${escapeHtml(replayTitle(f.replay))}">replay</span>` : ""}</td>` +
    `<td class="c-num" title="messages client → server">${f.messagesFromClient}</td>` +
    `<td class="c-num" title="messages server → client">${f.messagesFromServer}</td>` +
    `<td class="c-bytes" title="${bytesTitle}">${formatBytes(up + down)}</td></tr>`;
}

function parseRows(html) {
  const template = document.createElement("template");
  template.innerHTML = `<table><tbody>${html}</tbody></table>`;
  return Array.from(template.content.querySelectorAll("tbody > tr"));
}

// ---------- REST and problem details ----------

export async function api(method, url, body, headers = {}) {
  const init = { method, headers: { Accept: "application/json, application/problem+json", ...headers } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw responseError(response, text);
  try { return text ? JSON.parse(text) : null; } catch { return null; }
}

/** An Error for a failed answer, carrying its problem details (or the start of its body) for problemHtml. */
function responseError(response, text) {
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  const error = new Error(data?.title ?? `${response.status} ${response.statusText}`);
  error.status = response.status;
  error.problem = data ?? { title: `${response.status} ${response.statusText}`, detail: text.slice(0, 300) };
  return error;
}

/**
 * POSTs a form with a file, reporting upload progress (fetch cannot): a large capture takes a while
 * to send, and the user should see it moving. Errors have the same shape as api()'s.
 */
function upload(url, body, onProgress, onUploaded) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json, application/problem+json");
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.upload.onload = () => onUploaded();
    xhr.onerror = () => reject(new Error("The upload failed: the connection to WsWeb was lost."));
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
      const error = new Error(data?.title ?? `${xhr.status} ${xhr.statusText}`);
      error.status = xhr.status;
      error.problem = data ?? { title: `${xhr.status} ${xhr.statusText}`, detail: xhr.responseText.slice(0, 300) };
      reject(error);
    };
    xhr.send(body);
  });
}

function problemHtml(error) {
  const p = error.problem ?? { title: error.message };
  // ASP.NET's title for a 400 with field errors says nothing the list below does not: say what it means instead.
  const title = p.errors && /^One or more validation errors occurred/.test(p.title ?? "") ? "Not accepted: fix what is listed below" : p.title;
  let html = `<div class="alert alert-danger" role="alert"><strong>${escapeHtml(title ?? "Request failed")}</strong>`;
  if (p.status) html += ` <span class="text-body-secondary">(${p.status})</span>`;
  if (p.detail) html += `<div>${escapeHtml(p.detail)}</div>`;
  if (p.errors) {
    html += "<ul class=\"mb-0 ps-3\">";
    for (const [field, messages] of Object.entries(p.errors)) {
      // The field as the form labels it ("replace.pattern" is the pattern box); the API's name stays in the tooltip.
      const label = field.split(".").pop();
      for (const message of [].concat(messages)) html += `<li><span class="fw-semibold" title="${escapeHtml(field)}">${escapeHtml(label)}</span>: ${escapeHtml(message)}</li>`;
    }
    html += "</ul>";
  }
  return `${html}</div>`;
}

// A textarea's value has its line breaks as LF; its default value (the markup's text) may have CR LF or CR.
const asLineFeeds = (text) => text.replace(/\r\n?/g, "\n");

/** Whether a control still holds what the page rendered (or last loaded into it as its default). */
function isUnchanged(el) {
  if (el.tagName === "SELECT") return Array.from(el.options).every((o) => o.selected === o.defaultSelected);
  if (el.type === "checkbox") return el.checked === el.defaultChecked;
  return el.value === asLineFeeds(el.defaultValue);
}

/**
 * The form's fields as JSON (dotted names nest). Fields marked data-omit-unchanged are left out when all of them
 * are unchanged: a held message released without an edit goes on as it was caught, not as the textarea holds it
 * (a textarea turns CR LF into LF).
 */
function formJson(form) {
  const body = {};
  const omittable = Array.from(form.elements).filter((el) => el.hasAttribute("data-omit-unchanged"));
  const omit = omittable.length > 0 && omittable.every(isUnchanged);
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "file" || el.type === "submit" || el.type === "button") continue;
    if (omit && el.hasAttribute("data-omit-unchanged")) continue;
    if (el.closest(".d-none")) continue;
    let value;
    if (el.type === "checkbox") value = el.checked;
    else {
      value = el.value;
      if (value === "" && el.name !== "content") continue;
      if (el.dataset.type === "int") value = parseInt(value, 10);
      else if (el.dataset.type === "number") value = parseFloat(value);
      else if (el.dataset.type === "bool") value = value === "true";
    }
    const path = el.name.split(".");
    let target = body;
    for (const key of path.slice(0, -1)) target = target[key] ??= {};
    target[path.at(-1)] = value;
  }
  return body;
}

/** A short confirmation that fades after 3 s; a report the user has to read (sticky) stays until the next run. */
function showResult(scope, text, sticky = false) {
  const result = scope && $(".action-result", scope);
  if (!result) return;
  result.textContent = text;
  clearTimeout(result._timer);
  if (!sticky) result._timer = setTimeout(() => { result.textContent = ""; }, 3000);
}

/** The If-Match header for a version the page shows (an ETag is the version in quotes). */
const ifMatchHeader = (version) => (version ? { "If-Match": `"${version}"` } : {});

/**
 * Says that what a form edits was changed by someone else, without touching what the user typed: "Load theirs" puts
 * the current version in the form, "Keep mine" lets the next save replace it (the user has seen it).
 */
function showChanged(notice, what, { load, keep }) {
  notice.innerHTML = `<div class="alert alert-warning py-1 px-2 small mt-2 mb-0" role="status">Changed by someone else: ${what}. ` +
    '<button type="button" class="btn btn-link btn-sm p-0 align-baseline changed-load">Load theirs</button> or ' +
    '<button type="button" class="btn btn-link btn-sm p-0 align-baseline changed-keep">keep mine</button> (saving replaces theirs).</div>';
  $(".changed-load", notice).addEventListener("click", () => { notice.innerHTML = ""; load(); });
  $(".changed-keep", notice).addEventListener("click", () => { notice.innerHTML = ""; keep(); });
}

/** Whether an action of this form (or of this button outside a form) is running: a second one must wait for it. */
const busy = (source, form) => (form ?? source).getAttribute("aria-busy") === "true";

/**
 * Runs a form[data-api] or a button[data-api] (in the form it acts for, or on its own). A destructive one asks first
 * (data-confirm: Cancel sends nothing). A button on its own, or a form, names the box for its problem (data-problem, a
 * selector): the box sits outside what re-renders the button, or where the form has no room for it (the flow header).
 */
async function runAction(source, form, body) {
  // One action per form at a time: its buttons are disabled meanwhile (a second click on Import imported the file
  // twice), and a submit that gets through anyway (Enter, a script) is ignored.
  const scope = form ?? source;
  if (busy(source, form)) return;
  if (source.dataset.confirm && !confirm(source.dataset.confirm)) return;
  scope.setAttribute("aria-busy", "true");
  const disabled = (form ? $$("button", form) : [source]).filter((b) => !b.disabled);
  for (const button of disabled) button.disabled = true;
  const problemBox = source.dataset.problem ?? form?.dataset.problem;
  const problem = problemBox ? $(problemBox) : form ? $(".problem", form) : null;
  if (problem) problem.innerHTML = "";
  showResult(form, "", true);
  document.dispatchEvent(new CustomEvent("wsweb:start", { detail: { source, form } }));
  const method = source.dataset.method ?? "POST";
  const url = source.dataset.api;
  // Shared settings (a rule, the intercept filter) are changed only if they are still what this page shows.
  const ifMatch = source.dataset.ifMatch ?? form?.dataset.ifMatch;
  try {
    const progress = form ? $("progress", form) : null;
    let data;
    if (body instanceof FormData && progress) {
      progress.value = 0;
      progress.classList.remove("d-none");
      // Sent is not done: a large capture takes a while to read once it is all uploaded.
      data = await upload(url, body, (fraction) => { progress.value = fraction; }, () => {
        progress.value = 1;
        showResult(form, "Uploaded; processing…", true);
      });
      progress.value = 1;
    } else {
      data = await api(method, url, body, ifMatchHeader(ifMatch));
    }
    // An injection that has not gone out yet is queued (202): say what it waits for, until the next run.
    if (data?.queued) showResult(form, data.detail, true);
    else showResult(form, source.dataset.done ?? "Done");
    if (source.dataset.reload) { location.reload(); return; }
    document.dispatchEvent(new CustomEvent("wsweb:done", { detail: { source, form, data } }));
  } catch (error) {
    showResult(form, "", true);
    // A full bar beside the error would say the import went through.
    if (form) $("progress", form)?.classList.add("d-none");
    if (problem) problem.innerHTML = problemHtml(error);
    else alert(error.message);
    document.dispatchEvent(new CustomEvent("wsweb:failed", { detail: { source, form, error } }));
  } finally {
    scope.removeAttribute("aria-busy");
    for (const button of disabled) button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  // The box already says where its filter is wrong: the server would only say so again, further away.
  const badFilter = $(".filter-box input.is-invalid", form);
  if (badFilter) {
    badFilter.focus();
    return;
  }
  const body = form.dataset.upload ? new FormData(form) : formJson(form);
  runAction(form, form, body);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-api]");
  if (!button || button.type === "submit") return;
  event.preventDefault();
  // A button in a page's GET form (the flow list's Clear, beside the filter) does not act for that form.
  runAction(button, button.closest("form[data-api]"), undefined);
});

// "/" goes to the page's filter, as in many web tools; not while typing somewhere.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
  const filter = $("#message-filter") ?? $("#flow-filter");
  if (!filter) return;
  event.preventDefault();
  filter.focus();
  filter.select();
});

// Filter boxes: htmx swaps the server's verdict under the input; mark the input invalid with it.
document.addEventListener("htmx:afterSwap", (event) => {
  const feedback = event.detail.target;
  if (!feedback.classList?.contains("filter-feedback")) return;
  const input = $("input", feedback.previousElementSibling ?? feedback.parentElement);
  input?.classList.toggle("is-invalid", !!$(".filter-error", feedback));
});

// ---------- live connection ----------

const status = $("#live-status");

// The nav badge per state: its text, its colour (green: live; amber: on the way there, or current by polling; red:
// WsWeb cannot be reached; grey: nothing to follow) and a title saying what it means.
const LIVE_STATES = {
  hub: ["live", "text-bg-success", "Live: changes arrive as they happen."],
  polling: ["polling", "text-bg-warning", "The live connection cannot be made (a proxy in the way?): the page reads changes every second and tries again."],
  connecting: ["connecting", "text-bg-warning", "Connecting for live updates…"],
  reconnecting: ["reconnecting", "text-bg-warning", "The live connection dropped: reconnecting. What is shown may be behind until then."],
  offline: ["offline", "text-bg-danger", "WsWeb cannot be reached (stopped or restarting): trying again every few seconds. What is shown may be out of date."],
  gone: ["not live", "text-bg-secondary", "This flow no longer exists in WsWeb: there is nothing left to follow."],
};

function setLive(state) {
  document.body.dataset.live = state;
  // Offline is the one state a badge is too quiet for: the page looks usable, and nothing on it works.
  $("#offline-bar")?.classList.toggle("d-none", state !== "offline");
  if (!status) return;
  const [text, css, title] = LIVE_STATES[state] ?? [state, "text-bg-secondary", ""];
  status.textContent = text;
  status.className = `badge rounded-pill ${css}`;
  status.title = title;
}

/** The nav's held-message count (MainLayout.razor renders it at load): hidden when nothing is held. */
function showHeldCount(n) {
  const badge = $("#nav-held");
  if (!badge) return;
  badge.textContent = n;
  badge.classList.toggle("d-none", n === 0);
}

/** The nav's "on" next to Intercept (MainLayout.razor renders it at load), from an InterceptChanged or GET /api/intercept. */
function showIntercepting(state) {
  const badge = $("#nav-intercepting");
  if (!badge) return;
  badge.classList.toggle("d-none", !state.enabled);
  badge.title = state.enabled ? `Intercept is on: messages matching ${state.filter} are held` : "";
}

// Waits between attempts to reach the hub again while polling: soon at first, then every 15 s.
const RECONNECT_MS = [1000, 2000, 5000, 10_000, 15_000];
// Waits between polls while they fail (WsWeb is stopped or unreachable): soon at first, then every 5 s, so a
// restarted WsWeb is picked up within about 5 s.
const OFFLINE_POLL_MS = [1000, 2000, 5000];

/**
 * Connects to the hub with the page's handlers and keeps it connected. While the hub cannot be reached (a proxy in
 * the way), the page polls the REST API every POLL_MS so it stays current, and tries the hub again with backoff
 * (RECONNECT_MS). While the polls fail too (WsWeb stopped or restarting: "offline"), they are the only thing that
 * runs, backing off (OFFLINE_POLL_MS), and the hub is tried at once when one succeeds (WsWeb is back). Polling stops
 * once connected. onConnected subscribes and catches up after every (re)connect; the badge says "live" only when
 * it has completed (if it fails, the connection is dropped and the page starts over). Returns { stop, connected },
 * stop ending all of it (the page has nothing left to follow), connected saying whether the hub is followed.
 */
function goLive({ handlers, onConnected, poll, quiet = false }) {
  // The badge speaks for the page's content: a page that follows only the nav's held count leaves it hidden.
  const show = quiet ? () => {} : setLive;
  let pollTimer = null;
  let polling = false;
  let pollRun = 0; // which run of polling a poll belongs to: one stopped meanwhile schedules no more
  let pollFailures = 0;
  let retryTimer = null;
  let attempt = 0;
  let connecting = false;
  let connected = false;
  let stopped = false;
  let lastPollOk = true;
  let connection = null;

  // A poll that fails (the server is gone) shows "offline" until one succeeds again. One poll at a time, each
  // scheduling the next: every POLL_MS while they succeed, backing off while they fail.
  const pollOnce = async (run) => {
    pollTimer = null;
    let ok;
    try { ok = (await poll()) !== false; } catch { ok = false; }
    if (stopped || connected || !polling || run !== pollRun) return;
    show(ok ? "polling" : "offline");
    if (ok) {
      pollFailures = 0;
      if (!lastPollOk) connect();
    } else {
      pollFailures++;
      // Offline, the polls are the one schedule: the first that succeeds tries the hub.
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    lastPollOk = ok;
    if (polling && run === pollRun && !connected && !pollTimer) {
      const wait = ok ? POLL_MS : OFFLINE_POLL_MS[Math.min(pollFailures - 1, OFFLINE_POLL_MS.length - 1)];
      pollTimer = setTimeout(() => pollOnce(run), wait);
    }
  };
  // Polls now, and on from there.
  const startPolling = () => {
    if (polling) return;
    polling = true;
    pollOnce(++pollRun);
  };
  const stopPolling = () => { polling = false; pollRun++; clearTimeout(pollTimer); pollTimer = null; };
  const scheduleRetry = () => {
    if (stopped || retryTimer || !connection || !lastPollOk) return;
    retryTimer = setTimeout(() => { retryTimer = null; connect(); }, RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)]);
    attempt++;
  };
  // Not connected: poll now and on from there, and try the hub again later (unless the polls fail too).
  const fallBack = (state) => {
    if (stopped) return;
    show(state);
    startPolling();
    scheduleRetry();
  };

  const connect = async () => {
    if (stopped || connecting || connected) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    connecting = true;
    try {
      await connection.start();
    } catch {
      connecting = false;
      fallBack(document.body.dataset.live === "connecting" ? "polling" : document.body.dataset.live);
      return;
    }
    try {
      await onConnected(connection);
      // Counts only: every page shows how many messages are held (the intercept page reads its cards itself).
      await connection.invoke("SubscribeInterceptCounts");
    } catch {
      // Connected but not subscribed, or not caught up (or the connection dropped meanwhile): start over.
      connecting = false;
      await connection.stop().catch(() => {});
      fallBack(document.body.dataset.live === "connecting" ? "polling" : document.body.dataset.live);
      return;
    }
    connecting = false;
    if (stopped) { connection.stop(); return; }
    connected = true;
    attempt = 0;
    stopPolling();
    show("hub");
  };

  show("connecting");
  if (!window.signalR) {
    fallBack("polling");
    return { stop() { stopped = true; stopPolling(); }, connected: () => false };
  }
  connection = new signalR.HubConnectionBuilder()
    .withUrl(HUB_URL)
    .configureLogging(signalR.LogLevel.None)
    .build();
  for (const [name, handler] of Object.entries(handlers)) connection.on(name, handler);
  // Every live page keeps the nav's held count current: held messages stall their flows, wherever the user is.
  connection.on("HeldCounts", (byFlow) => showHeldCount(Object.values(byFlow).reduce((sum, n) => sum + n, 0)));
  connection.on("InterceptChanged", showIntercepting);
  connection.onclose(() => {
    const wasConnected = connected;
    connected = false;
    if (stopped || connecting) return;
    fallBack(wasConnected ? "reconnecting" : document.body.dataset.live);
  });
  connect();

  return {
    stop() {
      stopped = true;
      stopPolling();
      clearTimeout(retryTimer);
      retryTimer = null;
      connection.stop();
    },
    connected: () => connected,
  };
}

/**
 * Coalesces calls: at most one run in flight, and one more after it if asked meanwhile. Resolves to false when
 * the last run failed (a fetch while the server is gone) instead of rejecting: most callers fire and forget.
 */
function serial(fn) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      let ok = true;
      do {
        again = false;
        try { await fn(); ok = true; } catch { ok = false; }
      } while (again);
      return ok;
    })().finally(() => { running = null; });
    return running;
  };
  return run;
}

function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(); return; }
    if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

// For reads whose cost grows with the store (a filter run over every message): one at a time, and while changes keep
// coming at most every minMs, or four times as long as the last read took, whichever is longer, so that a few tabs
// over a large capture do not keep WsWeb's cores busy.
function adaptiveThrottle(fn, minMs) {
  const run = serial(fn);
  let timer = null;
  let last = 0;
  let took = 0;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + Math.max(minMs, 4 * took) - Date.now());
    timer = setTimeout(async () => {
      timer = null;
      last = Date.now();
      const started = performance.now();
      await run();
      took = performance.now() - started;
    }, wait);
  };
}

// ---------- Flows page ----------

// Mirrors Fmt.HeldTitle.
const heldTitle = (n) => `${n} message${n === 1 ? " is" : "s are"} held by intercept: open the flow or Intercept to decide`;

function flowsPage(root) {
  // A filter that does not parse lists nothing (the box says where it is wrong): there are no updates to follow.
  if (root.dataset.filterInvalid) return;
  const tbody = $("#flow-rows");
  // Messages intercept holds, by flow (HeldCounts): a flow waiting on someone shows it in the list, as the server
  // renders it (FlowRow.razor). Null until the hub says: the rows as rendered are right until then.
  let heldByFlow = null;
  const markHeld = () => {
    if (!heldByFlow) return;
    for (const row of tbody.rows) {
      const n = heldByFlow.get(row.dataset.id) ?? 0;
      row.classList.toggle("has-held", n > 0);
      const state = $(".c-state", row);
      let badge = $(".held", state);
      if (!n) { badge?.remove(); continue; }
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "badge b-held ms-1 held";
        state.append(badge);
      }
      badge.textContent = `held ${n}`;
      badge.title = heldTitle(n);
    }
  };
  const empty = $("#flows-empty");
  const count = $("#flow-count");
  const filter = root.dataset.filter ?? "";
  let pending = new Map();
  let frame = 0;
  // Flows matching the page's filter, shown or not: the table keeps only the newest MAX_FLOW_ROWS.
  let total = parseInt(count?.dataset.total ?? "0", 10);

  const updateCounts = () => {
    const n = tbody.rows.length;
    total = Math.max(total, n);
    if (count) {
      count.dataset.total = total;
      count.textContent = n < total ? `newest ${n} of ${total}` : `${n}`;
    }
    empty?.classList.toggle("d-none", n > 0);
  };

  // Hub changes received while a refetch is in flight: its snapshot may be older than they are (a flow that
  // started meanwhile is not in it), so they are applied again over it.
  let refetching = false;
  let lastSnapshot = null;
  let changedDuring = new Map();
  let removedDuring = new Set();

  const refetch = serial(async () => {
    refetching = true;
    changedDuring = new Map();
    removedDuring = new Set();
    try {
      const response = await fetch(`/ui/flows/rows?filter=${encodeURIComponent(filter)}`);
      if (!response.ok) return;
      const html = await response.text();
      // Polling reads the list every second: an unchanged answer leaves the rows (and a text selection) alone.
      if (html !== lastSnapshot) tbody.innerHTML = html;
      lastSnapshot = html;
      total = parseInt(response.headers.get("X-Total") ?? "0", 10);
      for (const id of removedDuring) tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.remove();
      if (!filter && changedDuring.size) {
        upsertRows(Array.from(changedDuring.values()));
        refreshTotal();
      }
      localizeTimes(tbody);
      updateCounts();
    } finally {
      refetching = false;
    }
  });

  // Filtered, the list is read again whole on a change, and the server runs the filter over the whole store (a body
  // filter reads every message): three tabs reading it on every batch kept a core at 94 %.
  const refetchFiltered = adaptiveThrottle(refetch, FILTERED_REFETCH_MS);

  // Unfiltered, live rows arrive one by one; the store's count says how many fell off the end.
  const refreshTotal = throttle(async () => {
    const response = await fetch("/ui/flows/count").catch(() => null);
    if (!response?.ok) return;
    total = parseInt(await response.text(), 10);
    updateCounts();
  }, 1000);

  // Newest first: a row already shown is replaced, a new one goes on top; the table keeps the newest MAX_FLOW_ROWS.
  function upsertRows(flows) {
    for (const f of flows.sort((a, b) => a.timestampCreated - b.timestampCreated)) {
      const [row] = parseRows(flowRow(f));
      const existing = tbody.querySelector(`tr[data-id="${CSS.escape(f.id)}"]`);
      if (existing) existing.replaceWith(row);
      else { row.classList.add("flash"); tbody.prepend(row); }
    }
    while (tbody.rows.length > MAX_FLOW_ROWS) tbody.rows[tbody.rows.length - 1].remove();
    markHeld();
  }

  const flush = () => {
    frame = 0;
    const batch = Array.from(pending.values());
    pending = new Map();
    upsertRows(batch);
    updateCounts();
    refreshTotal();
  };

  tbody.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row && !event.target.closest("a")) location.href = `/flows/${encodeURIComponent(row.dataset.id)}`;
  });

  // Clear (FlowsPage.razor): the hub's FlowsRemoved takes the rows away; a page that only polls reads the list again.
  // Clear removes what the list shows, by the filter applied: one typed in the box and not applied yet would be taken
  // for it (a narrower filter, and the flows of the wider one went too). Until it is applied, Clear waits.
  const clear = $("#flows-clear");
  const box = $("#flow-filter");
  if (clear && box) {
    const title = clear.title;
    box.addEventListener("input", () => {
      const pending = box.value.trim() !== filter.trim();
      clear.disabled = pending;
      clear.title = pending ? "Apply the filter in the box first (Enter): Clear removes the flows the list shows" : title;
    });
  }

  document.addEventListener("wsweb:done", ({ detail: { source, data } }) => {
    if (source.id !== "flows-clear") return;
    showResult(source.parentElement, `Removed ${data.removed}${data.live ? ` · ${data.live} live kept` : ""}`);
    if (document.body.dataset.live !== "hub") refetch();
  });

  goLive({
    handlers: {
      FlowsChanged: (flows) => {
        if (filter) { refetchFiltered(); return; }
        for (const f of flows) {
          pending.set(f.id, f);
          if (refetching) { changedDuring.set(f.id, f); removedDuring.delete(f.id); }
        }
        if (!frame) frame = requestAnimationFrame(flush);
      },
      FlowsRemoved: (ids) => {
        for (const id of ids) {
          tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.remove();
          pending.delete(id);
          if (refetching) { removedDuring.add(id); changedDuring.delete(id); }
        }
        if (filter) { refetchFiltered(); return; }
        total = Math.max(0, total - ids.length);
        updateCounts();
      },
      Gap: () => refetch(),
      HeldCounts: (byFlow) => {
        heldByFlow = new Map(Object.entries(byFlow));
        markHeld();
      },
    },
    onConnected: async (connection) => {
      await connection.invoke("SubscribeFlows");
      if (!(await refetch())) throw new Error("The flow list could not be read after subscribing.");
    },
    poll: refetch,
  });
}

// ---------- Flow detail page ----------

/** FlowActions.razor's notice for a flow that is not live, for one that ends while its page is open. */
function showNotLiveNotice(actions) {
  if (!actions || $("#not-live-notice", actions)) return;
  const notice = document.createElement("div");
  notice.id = "not-live-notice";
  notice.className = "alert alert-secondary py-1 px-2 small";
  notice.setAttribute("role", "status");
  notice.textContent = "This flow is not live: inject, close and kill need an open connection.";
  actions.prepend(notice);
}

/**
 * The flow header's Delete (a data-api button; the header is re-rendered as the flow changes): back to the list
 * after. setDeleting(true) while the delete is under way: the hub's FlowsRemoved for it may come before its answer.
 */
function flowDelete(setDeleting = () => {}) {
  const on = (type, then) => document.addEventListener(type, ({ detail }) => { if (detail.source.id === "flow-delete") then(); });
  on("wsweb:start", () => setDeleting(true));
  on("wsweb:done", () => location.assign("/flows"));
  on("wsweb:failed", () => setDeleting(false));
}

/** The flow header's Replay (FlowHeader.razor): on to the new flow's page, where it is followed like any other. */
function flowReplay() {
  document.addEventListener("wsweb:done", ({ detail: { form, data } }) => {
    if (form?.id === "flow-replay-form") location.assign(`/flows/${encodeURIComponent(data.id)}`);
  });
}

/**
 * The page of a flow that is not a WebSocket: its request and response as rendered, Delete and Replay. One still
 * running is read again once its response head has arrived (a slow or streamed body can take long after it) and once it
 * has ended: the flow list's FlowsChanged says so; polling reads its header, whose response bytes read "—" before then.
 */
function httpFlowPage(root) {
  const flowId = root.dataset.flowId;
  flowDelete();
  flowReplay();
  if (root.dataset.live !== "true") return;
  const answered = !$("#http-no-response");
  const check = async () => {
    const response = await fetch(`/ui/flows/${encodeURIComponent(flowId)}/header`);
    if (response.ok) {
      const header = document.createElement("template");
      header.innerHTML = await response.text();
      const ended = header.content.querySelector(".flow-header")?.dataset.live === "false";
      const down = header.content.querySelector("#body-in")?.textContent;
      if (ended || (!answered && down != null && down !== "—")) location.reload();
    }
    return response.ok;
  };
  const changed = (f) => f.id === flowId && (!f.isLive || (!answered && f.status != null));
  goLive({
    handlers: { FlowsChanged: (flows) => { if (flows.some(changed)) location.reload(); } },
    onConnected: async (connection) => {
      await connection.invoke("SubscribeFlows");
      if (!(await check())) throw new Error("The flow could not be read after subscribing.");
    },
    poll: check,
  });
}

// The activity strip of a WebSocket flow: when its messages went, in equal slices of its life (GET .../activity).
// Client → server above the line, server → client below; a bar's height is its slice's messages, square-root
// scaled so one message beside a burst still shows; a red mark tops a slice with dropped messages. A slice's title
// gives its counts and bytes; a click shows its first message. Returns the (throttled) refresh.
const ACTIVITY_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
function activityStrip(host, flowId, filter, t0, onPick, active) {
  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  const seconds = (s) => (s < 10 ? `${s.toFixed(2)} s` : s < 600 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);
  const load = async () => {
    // A flow that is gone (or a page left) has nothing more to draw: no request goes out for it.
    if (!host.isConnected || !active()) return;
    const count = Math.max(20, Math.min(400, Math.floor(host.clientWidth / 5)));
    const response = await fetch(`/api/flows/${encodeURIComponent(flowId)}/activity?slices=${count}&filter=${encodeURIComponent(filter)}`).catch(() => null);
    // Gone, unreachable or a filter that does not parse: the strip keeps what it drew (the page says why elsewhere).
    if (!response?.ok) return;
    render(await response.json());
  };
  const render = (activity) => {
    const slices = activity.slices;
    const peak = Math.max(1, ...slices.map((s) => Math.max(s.messagesFromClient, s.messagesFromServer)));
    const height = (n) => (n ? Math.max(1.5, 18 * Math.sqrt(n / peak)) : 0);
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${slices.length} 40`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const span = activity.end - activity.start;
    svg.setAttribute("aria-label", `${plural(activity.messages, "message")} over ${seconds(span)}`);
    const rect = (cls, x, y, w, h) => {
      const r = document.createElementNS(SVG_NS, "rect");
      r.setAttribute("class", cls);
      r.setAttribute("x", x);
      r.setAttribute("y", y);
      r.setAttribute("width", w);
      r.setAttribute("height", h);
      return r;
    };
    svg.append(rect("axis", 0, 19.75, slices.length, 0.5));
    slices.forEach((s, i) => {
      if (s.firstIndex === null) return;
      const from = activity.start + i * activity.sliceSeconds;
      const slice = rect("slice", i, 0, 1, 40);
      slice.dataset.first = s.firstIndex;
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = `${relative(from, t0)} s – ${relative(from + activity.sliceSeconds, t0)} s\n` +
        `→ ${plural(s.messagesFromClient, "message")} · ${formatBytes(s.bytesFromClient)}\n` +
        `← ${plural(s.messagesFromServer, "message")} · ${formatBytes(s.bytesFromServer)}` +
        (s.dropped ? `\n${s.dropped.toLocaleString()} dropped` : "") + (s.injected ? `\n${s.injected.toLocaleString()} injected` : "") +
        `\nClick to show message #${s.firstIndex}`;
      slice.append(title);
      const out = height(s.messagesFromClient);
      const into = height(s.messagesFromServer);
      svg.append(slice);
      if (out) svg.append(rect("out", i + 0.1, 19.5 - out, 0.8, out));
      if (into) svg.append(rect("in", i + 0.1, 20.5, 0.8, into));
      if (s.dropped) svg.append(rect("dropped", i, 0, 1, 1.5));
    });
    const caption = document.createElement("div");
    caption.className = "activity-caption";
    caption.textContent = `${plural(activity.messages, "message")}${filter ? " matching the filter" : ""} over ${seconds(span)}` +
      (activity.trimmed ? ` (${activity.trimmed.toLocaleString()} older trimmed)` : "") + " · → above, ← below";
    host.replaceChildren(svg, caption);
  };
  host.addEventListener("click", (event) => {
    const slice = event.target.closest("[data-first]");
    if (slice) onPick(parseInt(slice.dataset.first, 10));
  });
  // With a filter the server reads every retained message: as the filtered flow list.
  const refresh = adaptiveThrottle(load, ACTIVITY_MS);
  // Slices follow the width: observing draws the strip the first time too.
  new ResizeObserver(refresh).observe(host);
  return refresh;
}

function flowPage(root) {
  const flowId = root.dataset.flowId;
  const t0 = parseFloat(root.dataset.t0);
  const filter = root.dataset.filter ?? "";
  const filterInvalid = !!root.dataset.filterInvalid;
  const scroller = $("#messages-scroll");
  const tbody = $("#message-rows");
  const older = $("#older");
  const empty = $("#messages-empty");
  const follow = $("#follow");
  const view = $("#message-view");
  const views = new Map(); // message index -> the content view the user picked for it
  // The frontier: every message up to this index is on the page or queued for it (pending). Hub adds move it only
  // while no catch-up runs; a catch-up reads from its own cursor and moves it when done.
  let cursor = parseInt(root.dataset.cursor, 10);
  let lastRendered = tbody.rows.length ? parseInt(tbody.rows[tbody.rows.length - 1].dataset.index, 10) : -1;
  let moreBefore = root.dataset.moreBefore === "1";
  let selected = null;
  let pending = [];
  let frame = 0;
  let loadingOlder = false;
  let live = root.dataset.live === "true";

  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
  const scrollToEnd = () => { scroller.scrollTop = scroller.scrollHeight; };
  // "N new ↓": rows added below while follow is off (the user is reading further up). Going to them follows again.
  const newButton = $("#new-messages");
  let newBelow = 0;
  const showNewBelow = (n) => {
    newBelow = n;
    if (!newButton) return;
    newButton.textContent = `${n} new ↓`;
    newButton.classList.toggle("d-none", n === 0);
  };
  const setMoreBefore = (value) => { moreBefore = value; older.classList.toggle("d-none", !value); };

  // Roving tab stop: exactly one row is in the tab order (the selected one, else the newest); the arrow keys move it.
  const tabStop = () => tbody.querySelector('tr[tabindex="0"]');
  const setTabStop = (row) => {
    const current = tabStop();
    if (current === row || !row) return;
    current?.setAttribute("tabindex", "-1");
    row.setAttribute("tabindex", "0");
  };
  const ensureTabStop = () => {
    if (tabStop()) return;
    setTabStop(tbody.querySelector(`tr[data-index="${selected}"]`) ?? tbody.rows[tbody.rows.length - 1]);
  };

  // A row in place of the one shown for the same message, keeping its selection, tab stop and focus.
  const replaceRow = (row, fresh) => {
    if (fresh.dataset.index === String(selected)) fresh.classList.add("selected");
    fresh.setAttribute("tabindex", row.getAttribute("tabindex") ?? "-1");
    const focused = document.activeElement === row;
    row.replaceWith(fresh);
    if (focused) fresh.focus();
  };

  // Adds rows in index order. With replace (a catch-up's rows: newer than what is shown), a row already on the
  // page is replaced; otherwise it is kept (a hub batch older than the catch-up that already showed it).
  const appendRows = (rows, replace = false) => {
    const stick = follow.checked;
    const fragment = document.createDocumentFragment();
    let added = 0;
    for (const row of rows) {
      const index = parseInt(row.dataset.index, 10);
      if (index === selected) row.classList.add("selected");
      if (index > lastRendered) {
        lastRendered = index;
        fragment.append(row);
        added++;
        continue;
      }
      const shown = tbody.querySelector(`tr[data-index="${index}"]`);
      if (shown) {
        if (replace) replaceRow(shown, row);
      } else {
        // A hub batch that lost the race with a catch-up fetch: into its place, never dropped. Older than
        // every row shown while older ones are unloaded: scrolling up brings it.
        const next = Array.from(tbody.rows).find((r) => parseInt(r.dataset.index, 10) > index);
        if (next && (next !== tbody.rows[0] || !moreBefore)) { next.before(row); added++; }
      }
    }
    if (!added) return;
    const below = fragment.childNodes.length;
    tbody.append(fragment);
    empty.classList.add("d-none");
    if (stick && tbody.rows.length > MAX_MESSAGE_ROWS) {
      const remove = tbody.rows.length - TRIM_TO;
      for (let i = 0; i < remove; i++) tbody.rows[0].remove();
      setMoreBefore(true);
    }
    ensureTabStop();
    if (stick) scrollToEnd();
    else if (below) showNewBelow(newBelow + below);
  };

  // Nothing to draw for a filter that does not parse (no message is listed either).
  const activityHost = $("#activity");
  const refreshActivity = filterInvalid || !activityHost ? () => {} : activityStrip(activityHost, flowId, filter, t0, (index) => showMessage(index), () => !gone);

  const refreshHeader = throttle(async () => {
    refreshActivity();
    const response = await fetch(`/ui/flows/${encodeURIComponent(flowId)}/header`).catch(() => null);
    if (response?.status === 404) flowGone();
    if (!response?.ok) return;
    const replay = $("#flow-replay-form");
    $("#flow-header").innerHTML = await response.text();
    // The replay form is the same for the flow's whole life: the one shown stays, with its tick and a replay under way.
    if (replay) $("#flow-replay-form")?.replaceWith(replay);
    localizeTimes($("#flow-header"));
    const header = $(".flow-header");
    if (header?.dataset.live === "false" && live) setNotLive();
  }, 1000);

  const setNotLive = () => {
    live = false;
    root.dataset.live = "false";
    const actions = $("#flow-actions");
    if (actions) actions.disabled = true;
    showNotLiveNotice(actions);
    closeResend();
  };

  // The shown message's Resend, as MessageContent.razor renders it for a closed flow.
  const closeResend = () => {
    const button = $("#message-resend", view);
    if (!button) return;
    button.disabled = true;
    $("#message-resend-wrap", view).title = RESEND_CLOSED_TITLE;
  };

  // An injection waits behind a held message of its direction (the relay forwards each direction in order), for as
  // long as that stays held: say which, while the form is busy. Checked when it is sent and whenever a message of
  // the flow changes (held, released).
  const injectForm = $("#inject-form");
  let injectFromClient = false; // the running injection's direction, as sent (the select may change meanwhile)
  const showInjectWait = async () => {
    if (!injectForm || !busy(null, injectForm)) return;
    const fromClient = injectFromClient;
    const held = await api("GET", "/api/intercept/held?preview=true").catch(() => []);
    if (!busy(null, injectForm)) return; // answered meanwhile: its own result is shown
    const blocking = held.find((h) => h.flowId === flowId && h.message.fromClient === fromClient);
    showResult(injectForm, blocking ? `Waiting for held message #${blocking.index} to be released or dropped (Intercept page)…` : "", true);
  };
  document.addEventListener("wsweb:start", (event) => {
    if (event.detail.form !== injectForm) return;
    injectFromClient = injectForm.elements.toClient.value === "false";
    showInjectWait();
  });

  // The flow is not in WsWeb any more (a teammate deleted it, WsWeb restarted, or retention removed it): say so,
  // keep what is shown, and stop following (no hub subscription to make, nothing to poll).
  let gone = false;
  let deleting = false; // deleted here: on the way back to the list, not "gone"
  let liveUpdates = null;
  const flowGone = () => {
    if (gone || deleting) return;
    gone = true;
    setNotLive();
    clearTimeout(retryTimer);
    liveUpdates?.stop();
    setLive("gone");
    const notice = document.createElement("div");
    notice.id = "flow-gone";
    notice.className = "alert alert-warning py-1 px-2 mb-2 small";
    notice.setAttribute("role", "status");
    notice.innerHTML = "This flow no longer exists: someone deleted it, WsWeb restarted, or retention removed it. The messages below are what this page had read. <a href=\"/\">Back to flows</a>";
    $("#flow-header").before(notice);
  };

  // Catch-up: reads the messages after a cursor through the server (filtered or not), page by page until a page
  // comes back empty, after (re)connecting, after a hub gap (from the gap's cursor), when the flow closes, and
  // while polling. It keeps its own cursor: hub adds that arrive meanwhile are held back and applied after it
  // (they follow on from what it read), so they cannot move the frontier past messages it has not read yet.
  // Resolves to false when it could not finish (WsWeb unreachable, an error answer): the hole stays asked for,
  // and it is tried again (backing off) rather than given up.
  const HELD_MAX = MAX_MESSAGE_ROWS;
  let catchFrom = Infinity; // lowest cursor a waiting catch-up must read after
  let catchAgain = false; // a catch-up is asked for (again)
  let catching = null; // the running catch-up
  let holding = false; // hub adds are held back (a catch-up is running or about to)
  let held = []; // those adds, in order, at most HELD_MAX (past that they are left for the catch-up to read)
  let heldPast = -1; // the highest index of an add left out of held
  let retryTimer = null;
  let retryDelay = POLL_MS;

  // The newest page of messages, the one the page renders first, when the page is further behind than it keeps
  // (TRIM_TO): it replaces the rows shown, and reading goes on from its cursor. Resolves to the cursor read to (the
  // one given when it was close enough to read on), or null when the flow is gone.
  const CATCH_UP_PAGE = 200; // MessagePaging.PageSize
  const jumpToNewest = async (after) => {
    const response = await fetch(`/ui/flows/${encodeURIComponent(flowId)}/messages?filter=${encodeURIComponent(filter)}`);
    if (response.status === 404) { flowGone(); return null; }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    const newest = parseInt(response.headers.get("X-Cursor") ?? "-1", 10);
    if (newest - after <= TRIM_TO) return after;
    const rows = parseRows(await response.text());
    for (const row of rows) if (row.dataset.index === String(selected)) row.classList.add("selected");
    tbody.replaceChildren(...rows);
    lastRendered = rows.length ? parseInt(rows[rows.length - 1].dataset.index, 10) : newest;
    cursor = Math.max(cursor, newest);
    setMoreBefore(response.headers.get("X-More-Before") === "1" && rows.length > 0);
    empty.classList.toggle("d-none", rows.length > 0);
    ensureTabStop();
    scrollToEnd();
    return newest;
  };

  const messagesUrl = (after) => `/ui/flows/${encodeURIComponent(flowId)}/messages?after=${after}&filter=${encodeURIComponent(filter)}`;

  const holdAdds = (messages) => {
    for (const m of messages) {
      if (held.length < HELD_MAX && heldPast < 0) held.push(m);
      else heldPast = Math.max(heldPast, m.index);
    }
  };

  // New messages get contiguous indices, so a first add past cursor + 1 means adds were discarded into the hole a
  // gap left open: those bring no new Gap (docs/hub.md), and a catch-up that read to the end before they were
  // recorded would never see them. Adds at or below the cursor are old news from a race with a catch-up.
  const jumpAt = (messages) => {
    const next = messages.find((m) => m.index > cursor);
    return next && next.index > cursor + 1 ? next.index : -1;
  };

  const runCatchUp = async () => {
    await Promise.resolve(); // `catching` is set before this run can end (and clear it)
    let after = cursor;
    let rereadFor = -1; // the held add a read again was for: once only, or messages trimmed by retention would loop
    try {
      while (catchAgain) {
        catchAgain = false;
        after = Math.min(catchFrom, cursor);
        catchFrom = Infinity;
        for (let pages = 1; ; pages++) {
          const response = await fetch(messagesUrl(after));
          if (response.status === 404) { flowGone(); return false; }
          if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
          const next = parseInt(response.headers.get("X-Cursor") ?? `${after}`, 10);
          const rows = parseRows(await response.text());
          appendRows(rows, true);
          if (rows.length === 0 || next <= after) break;
          after = next;
          // A full page: there may be far more (a burst, a long disconnect). Following, the page keeps only the newest
          // rows, so reading all of them would throw most away: past what it keeps, jump to the newest page (older ones
          // load on scroll-up). Asked after the first full page and every few after it (a burst that goes on).
          if (rows.length >= CATCH_UP_PAGE && follow.checked && (pages === 1 || pages % 8 === 0)) {
            const jumped = await jumpToNewest(after);
            if (jumped === null) return false;
            after = Math.max(after, jumped);
          }
        }
        cursor = Math.max(cursor, after);
        // Adds left out of held (too many while this ran) are in the store: read on to them.
        if (heldPast > cursor) catchAgain = true;
        // Held adds that jump past what was read: the store has them (the hub sent them), and the missing ones before
        // them unless retention trimmed those, so one more read reaches them.
        const jump = jumpAt(held);
        if (jump >= 0 && jump !== rereadFor) { rereadFor = jump; catchAgain = true; }
      }
    } catch (error) {
      // The hole stays open from where this got to.
      catchFrom = Math.min(catchFrom, after);
      catchAgain = true;
      // Live on the hub, nothing else would ask again (a gap with no traffic after it): retry, backing off. Not
      // connected, the polls (goLive) are what ask again, on their own backoff: a second schedule beside them
      // doubled the requests to a stopped WsWeb.
      if (!retryTimer && !gone && liveUpdates?.connected()) {
        retryTimer = setTimeout(() => { retryTimer = null; if (catchAgain && liveUpdates?.connected()) catchUp(); }, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30_000);
      }
      return false;
    } finally {
      catching = null; // before the caller's continuation: a catch-up asked for after this point starts a new run
    }
    retryDelay = POLL_MS;
    clearTimeout(retryTimer);
    retryTimer = null;
    // The adds held back follow on from what the catch-up read (the hub sends every message from its start on,
    // or a gap, which asks for another catch-up): those past the frontier go on the page.
    holding = false;
    for (const m of held) {
      if (m.index > cursor) { pending.push(m); cursor = m.index; }
    }
    held = [];
    heldPast = -1;
    if (pending.length && !frame) frame = requestAnimationFrame(flush);
    refreshHeader();
    return true;
  };

  /** Catches up after `after` (default: the frontier). Resolves to whether the page is complete up to the store's end. */
  const catchUp = (after = cursor) => {
    if (gone) return Promise.resolve(false);
    // A filter that does not parse lists no message (as on the flow list): there is nothing to read, only the header.
    if (filterInvalid) { refreshHeader(); return Promise.resolve(true); }
    catchFrom = Math.min(catchFrom, after);
    catchAgain = true;
    holding = true;
    catching ??= runCatchUp();
    return catching;
  };

  // A row shown held may have been decided (released, edited, dropped) while the page was not listening: such changes
  // come only as MessagesChanged, which a reconnect does not replay, and polling reads only what is new. So the
  // catch-up after (re)connecting, and each poll, reads again from the first row shown held, and the message view
  // shows what became of it.
  let polls = 0;
  const catchUpWithHeld = async ({ everyFew = false } = {}) => {
    // Polling (the hub unreachable), every fifth poll is enough: each re-read replaces the rows from the held one on.
    if (everyFew && ++polls % 5 !== 0) return catchUp();
    const heldRow = tbody.querySelector("tr .b-held")?.closest("tr");
    const from = heldRow ? parseInt(heldRow.dataset.index, 10) : null;
    const selectedHeld = selected !== null && !!tbody.querySelector(`tr[data-index="${selected}"] .b-held`);
    const complete = await catchUp(from === null ? cursor : Math.min(cursor, from - 1));
    if (complete && selectedHeld) showMessage(selected);
    return complete;
  };

  const flush = () => {
    frame = 0;
    const batch = pending;
    pending = [];
    appendRows(parseRows(batch.map((m) => messageRow(m, t0)).join("")));
  };

  const loadOlder = async () => {
    if (loadingOlder || !moreBefore) return;
    loadingOlder = true;
    try {
      const first = tbody.rows.length ? tbody.rows[0].dataset.index : "";
      const response = await fetch(`/ui/flows/${encodeURIComponent(flowId)}/messages?before=${first}&filter=${encodeURIComponent(filter)}`);
      if (!response.ok) return;
      const rows = parseRows(await response.text());
      const height = scroller.scrollHeight;
      const fragment = document.createDocumentFragment();
      fragment.append(...rows);
      tbody.prepend(fragment);
      scroller.scrollTop += scroller.scrollHeight - height;
      setMoreBefore(response.headers.get("X-More-Before") === "1" && rows.length > 0);
      if (rows.length) empty.classList.add("d-none");
      ensureTabStop();
    } finally {
      loadingOlder = false;
    }
  };

  const showMessage = async (index) => {
    selected = index;
    for (const row of tbody.querySelectorAll("tr.selected")) row.classList.remove("selected");
    const row = tbody.querySelector(`tr[data-index="${index}"]`);
    row?.classList.add("selected");
    setTabStop(row);
    const chosen = views.get(index) ?? "";
    const response = await fetch(`/ui/flows/${encodeURIComponent(flowId)}/messages/${index}/view?view=${chosen}`);
    view.innerHTML = response.ok ? await response.text() : `<div class="empty-state">Message ${index} is no longer available.</div>`;
    if (!live) closeResend(); // rendered before the flow ended
    localizeTimes(view);
    bootstrap.Tab.getOrCreateInstance($("#tab-message")).show();
  };

  // Resend (the message view's button, or "e" on a row): the Inject form gets the message the same way round (a
  // client's goes to the server again), with its type and its whole content, for the user to edit and send; nothing
  // goes out from here. The content is read from the REST API: the view shows it rendered (pretty JSON, a hex dump),
  // and only its first 256 KiB. Only the latest Resend fills the form.
  let resendRun = 0;
  const resend = async (button) => {
    const run = ++resendRun;
    const index = button.dataset.index;
    const toClient = button.dataset.fromClient !== "true";
    const type = button.dataset.type;
    const maxMessage = Number(injectForm.dataset.maxMessageSize);
    const maxBody = injectForm.dataset.maxBody ? Number(injectForm.dataset.maxBody) : Infinity;
    const tooLarge = (length) => new Error(`Message #${index} is ${formatBytes(length)}: more than an injection can carry ` +
      `(${formatBytes(maxMessage)} a message).`);
    const problem = $("#resend-problem", view);
    if (problem) problem.innerHTML = "";
    try {
      if (Number(button.dataset.length) > maxMessage) throw tooLarge(Number(button.dataset.length));
      const response = await fetch(`/api/flows/${encodeURIComponent(flowId)}/messages/${index}/content`);
      if (!response.ok) throw responseError(response, await response.text());
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (run !== resendRun) return;
      if (!live) throw new Error("The flow closed meanwhile: nothing can be sent on it.");
      const bodySize = (encoding, content) => new TextEncoder().encode(JSON.stringify({ toClient, type, encoding, content })).length;
      let [encoding, content, why] = resendContent(bytes, type === "text");
      // Escaped text, or hex at three characters a byte, can outgrow the body limit where base64 cannot (the limit
      // leaves room for a message of the maximum size in base64).
      if (encoding !== "base64" && bodySize(encoding, content) > maxBody) [encoding, content, why] = ["base64", bytesBase64(bytes), ""];
      if (bytes.length > maxMessage || bodySize(encoding, content) > maxBody) throw tooLarge(bytes.length);
      const fields = injectForm.elements;
      fields.toClient.value = String(toClient);
      fields.type.value = type;
      fields.encoding.value = encoding;
      fields.content.value = content;
      $(".problem", injectForm).innerHTML = "";
      showResult(injectForm, `Message #${index}${why ? ` in ${ENCODING_NAMES[encoding]}: ${why}` : ""}. Edit it, then Inject.`, true);
      bootstrap.Tab.getOrCreateInstance($("#tab-actions")).show();
      injectForm.scrollIntoView({ block: "nearest" });
      fields.content.focus();
    } catch (error) {
      // In the view the Resend was pressed in, if it is still the one shown.
      if (run === resendRun && problem?.isConnected) problem.innerHTML = problemHtml(error);
    }
  };

  tbody.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (row) showMessage(parseInt(row.dataset.index, 10));
  });
  let arrowShow = 0;
  tbody.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (!row || event.altKey || event.ctrlKey || event.metaKey) return;
    let next = null;
    if (event.key === "ArrowDown") next = row.nextElementSibling;
    else if (event.key === "ArrowUp") next = row.previousElementSibling;
    else if (event.key === "Home") next = tbody.rows[0];
    else if (event.key === "End") next = tbody.rows[tbody.rows.length - 1];
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault(); // Space would scroll the list
      showMessage(parseInt(row.dataset.index, 10));
      return;
    } else if (event.key === "e" || event.key === "E") {
      // Edit and resend: the message is shown, then its Resend acts (on a closed flow it stays disabled, saying why).
      event.preventDefault();
      const index = parseInt(row.dataset.index, 10);
      showMessage(index).then(() => {
        const button = $("#message-resend", view);
        if (selected === index && button?.dataset.index === String(index) && !button.disabled) resend(button);
      });
      return;
    } else return;
    event.preventDefault();
    if (!next) {
      if (event.key === "ArrowUp") loadOlder();
      return;
    }
    setTabStop(next);
    next.focus();
    // As in a browser's network panel, the message follows the arrows; once they rest, so a held-down key is not a
    // fetch per row.
    clearTimeout(arrowShow);
    arrowShow = setTimeout(() => { if (document.activeElement === next) showMessage(parseInt(next.dataset.index, 10)); }, 150);
  });
  // A row focused by the mouse or a screen reader becomes the tab stop too.
  tbody.addEventListener("focusin", (event) => {
    const row = event.target.closest("tr[data-index]");
    if (row) setTabStop(row);
  });
  view.addEventListener("click", (event) => {
    const resendButton = event.target.closest("#message-resend");
    if (resendButton) { resend(resendButton); return; }
    const button = event.target.closest("button[data-view]");
    if (!button || selected == null) return;
    views.set(selected, button.dataset.view);
    showMessage(selected);
  });
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < 60) loadOlder();
    if (!atBottom() && follow.checked && scroller.dataset.auto !== "1") follow.checked = false;
    else if (atBottom()) { follow.checked = true; showNewBelow(0); }
  }, { passive: true });
  newButton?.addEventListener("click", () => {
    follow.checked = true;
    showNewBelow(0);
    scrollToEnd();
  });
  follow.addEventListener("change", () => {
    if (!follow.checked) return;
    showNewBelow(0);
    scrollToEnd();
  });
  flowDelete((value) => { deleting = value; });
  flowReplay();

  document.addEventListener("wsweb:done", (event) => {
    if (event.detail.form?.id === "kill-form" || event.detail.form?.id === "close-form") refreshHeader();
    if (event.detail.form?.id === "inject-form") catchUp();
  });

  ensureTabStop();
  scrollToEnd();
  liveUpdates = goLive({
    handlers: {
      MessagesAdded: (id, messages) => {
        if (id !== flowId) return;
        if (filter || filterInvalid) { catchUp(); return; }
        if (holding) { holdAdds(messages); return; }
        // A hole the hub will say nothing more about: read it first, these adds follow on from it.
        if (jumpAt(messages) >= 0) { catchUp(); holdAdds(messages); return; }
        for (const m of messages) {
          if (m.index > cursor) { pending.push(m); cursor = m.index; }
        }
        if (!frame) frame = requestAnimationFrame(flush);
        refreshHeader();
      },
      MessagesChanged: (id, messages) => {
        if (id !== flowId) return;
        showInjectWait();
        refreshActivity();
        const changed = new Map(messages.map((m) => [m.index, m]));
        // Adds not on the page yet take the change too (they would show the state they were added in).
        const update = (list) => list.map((m) => changed.get(m.index) ?? m);
        pending = update(pending);
        held = update(held);
        for (const m of messages) {
          const row = tbody.querySelector(`tr[data-index="${m.index}"]`);
          if (row) replaceRow(row, parseRows(messageRow(m, t0))[0]);
          if (m.index === selected) showMessage(selected);
        }
      },
      // Sent after the flow's last MessagesAdded: read to the end, so a hole left by a gap is filled even when
      // no traffic follows.
      FlowClosed: (id) => {
        if (id !== flowId) return;
        setNotLive();
        catchUp();
        refreshHeader();
      },
      FlowsRemoved: (ids) => { if (ids.includes(flowId)) flowGone(); },
      // Everything from the gap's cursor on is re-read (and replaces what is shown: a change may be what was lost).
      Gap: (_scope, id, gapCursor) => {
        if (id !== flowId) return;
        catchUp(Number.isFinite(gapCursor) ? gapCursor - 1 : cursor);
      },
    },
    // Hub adds are held back from before the subscription takes effect until the catch-up has read what came
    // before its start (a batch can arrive before the subscription's answer).
    onConnected: async (connection) => {
      holding = true;
      let refused = null;
      try { await connection.invoke("SubscribeFlow", flowId); } catch (error) { refused = error; }
      const complete = await catchUpWithHeld();
      if (refused) throw refused;
      if (!complete) throw new Error("The catch-up after subscribing failed.");
    },
    poll: () => catchUpWithHeld({ everyFew: true }),
  });
}

// ---------- Intercept page ----------

// Mirrors HeldList.razor's CarriageReturnNote.
const CR_NOTE = "This text has carriage returns (CR), which the editor cannot keep: released unedited they go on as they are; an edit sends line feeds only.";

function bytesBase64(bytes) {
  // In slices: String.fromCharCode.apply takes only so many arguments.
  let raw = "";
  for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(raw);
}

// ---------- content encodings (a held message's editor, a message resent from its flow's page) ----------

const ENCODING_NAMES = { utf8: "UTF-8", hex: "hex", base64: "base64" };

/** The bytes a content stands for in an encoding (as the API reads it: ContentCodec), or an Error saying why not. */
function contentBytes(text, encoding) {
  if (encoding === "utf8") return new TextEncoder().encode(text);
  const compact = text.replace(/\s+/g, "");
  if (encoding === "hex") {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(compact)) throw new Error("the text is not valid hex (an even number of 0-9a-f digits)");
    const bytes = new Uint8Array(compact.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(compact.substr(i * 2, 2), 16);
    return bytes;
  }
  if (encoding === "base64") {
    try { return base64Bytes(compact); } catch { throw new Error("the text is not valid base64"); }
  }
  throw new Error(`unknown encoding ${encoding}`);
}

// MessageContent.ClosedTitle, for a flow that ends while its page is open.
const RESEND_CLOSED_TITLE = "This flow is closed: nothing can be sent on it. Replay it (header) for a new live flow";

// Past this many bytes a message the Inject form gets as bytes is in base64: hex takes three characters a byte, and is
// no easier to edit at that size.
const RESEND_HEX_MAX = 64 * 1024;

/**
 * A message's bytes as the Inject form's content, in an encoding its textarea gives back unchanged: UTF-8 for text
 * (not for text with carriage returns: a textarea's value has none), else hex, or base64 when large.
 * [encoding, content, why text is not in UTF-8].
 */
function resendContent(bytes, isText) {
  let why = "";
  if (isText) {
    try {
      const text = contentText(bytes, "utf8");
      if (!text.includes("\r")) return ["utf8", text, ""];
      why = "its carriage returns would not survive the box as text";
    } catch (error) {
      why = error.message;
    }
  }
  const encoding = bytes.length <= RESEND_HEX_MAX ? "hex" : "base64";
  return [encoding, contentText(bytes, encoding), why];
}

/** Bytes as a content in an encoding; UTF-8 only when they are valid UTF-8 (nothing is replaced). */
function contentText(bytes, encoding) {
  if (encoding === "hex") return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
  if (encoding === "base64") return bytesBase64(bytes);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error("its bytes are not valid UTF-8 text");
  }
}

/**
 * A select[data-convert] (a held message's encoding) converts the content in its form's textarea when it changes:
 * the same bytes in the new encoding. Text that is not valid in the old encoding (or bytes that are not UTF-8) stay
 * as they are, with the old encoding still selected, and the reason next to the box.
 */
document.addEventListener("change", (event) => {
  const select = event.target.closest?.("select[data-convert]");
  if (!select) return;
  const form = select.closest("form");
  const textarea = $("textarea[name=content]", form);
  if (!textarea) return;
  const original = Array.from(select.options).find((o) => o.defaultSelected)?.value;
  const from = select.dataset.current ?? original;
  const to = select.value;
  $(".encoding-error", form)?.remove();
  textarea.classList.remove("is-invalid");
  if (from === to) return;
  // Unedited, the markup's text is the message as caught, carriage returns included (the textarea's value has none).
  const text = from === original && isUnchanged(textarea) ? textarea.defaultValue : textarea.value;
  try {
    textarea.value = contentText(contentBytes(text, from), to);
    select.dataset.current = to;
  } catch (error) {
    select.value = from;
    textarea.classList.add("is-invalid");
    const note = document.createElement("div");
    note.className = "small text-danger mb-1 encoding-error";
    note.setAttribute("role", "alert");
    note.textContent = `Still ${ENCODING_NAMES[from] ?? from}: ${error.message}, so it cannot be shown as ${ENCODING_NAMES[to] ?? to}.`;
    textarea.after(note);
  }
});

// What the user types clears a conversion's complaint: it was about the text before.
document.addEventListener("input", (event) => {
  const textarea = event.target.closest?.("textarea[name=content]");
  const form = textarea?.form;
  if (!form || !$("select[data-convert]", form)) return;
  $(".encoding-error", form)?.remove();
  textarea.classList.remove("is-invalid");
});

/**
 * The held list carries previews (HeldView.truncated): a card whose content was cut loads the whole content
 * from the REST API once, then becomes editable and releasable. Until then Release stays disabled, because
 * releasing the preview would forward it as an edit.
 */
async function loadWholeContent(card) {
  const textarea = $("textarea[data-content-url]", card);
  if (!textarea || textarea.dataset.loading) return;
  textarea.dataset.loading = "true";
  const problem = $(".problem", card);
  try {
    const response = await fetch(textarea.dataset.contentUrl);
    if (!response.ok) throw responseError(response, await response.text());
    const whole = textarea.dataset.encoding === "base64"
      ? bytesBase64(new Uint8Array(await response.arrayBuffer()))
      : await response.text();
    if (card.classList.contains("held-gone")) return; // decided elsewhere meanwhile: it stays as it was
    // The whole content is what "unchanged" means from now on (released unedited, nothing is sent).
    textarea.defaultValue = whole;
    textarea.value = whole;
    if (textarea.dataset.encoding === "utf8" && whole.includes("\r") && !$(".held-cr-note", card)) {
      const note = document.createElement("div");
      note.className = "small text-warning-emphasis mb-1 held-cr-note";
      note.textContent = CR_NOTE;
      textarea.after(note);
    }
    textarea.removeAttribute("data-content-url");
    textarea.readOnly = false;
    const encoding = $("select[name=encoding]", card);
    if (encoding) encoding.disabled = false;
    const release = $("button[type=submit]", card);
    if (release) release.disabled = false;
    $(".held-loading", card)?.remove();
    if (problem) problem.innerHTML = "";
  } catch (error) {
    // Left read-only; the next refresh tries again. Drop still works.
    if (problem) problem.innerHTML = problemHtml(error);
  } finally {
    delete textarea.dataset.loading;
  }
}

// A card whose message someone else decided (another page, a script, the timeout, the flow's end) stays where it
// was as a tombstone: what the user typed is still there to copy, and the cards below do not move under the pointer.
// At most this many are kept; past it the oldest go.
const MAX_TOMBSTONES = 50;

const GONE_TEXT = {
  released: "Released elsewhere",
  edited: "Released with an edit elsewhere",
  dropped: "Dropped elsewhere",
  "timeout-released": "Released by the intercept timeout",
  "timeout-dropped": "Dropped by the intercept timeout",
  "flow-ended": "Never sent: its flow ended",
};

const goneText = (resolution, edited) => `${GONE_TEXT[resolution] ?? "No longer held"}${edited ? " — your edit was not sent" : ""}.`;

/** Whether the user changed a held card's content or encoding (what Release would send as an edit). */
const cardEdited = (card) => !$$("[data-omit-unchanged]", card).every(isUnchanged);

/** What became of a held message, from the REST API (null when the flow or message is gone). */
async function readResolution(key) {
  const slash = key.lastIndexOf("/");
  const [flowId, index] = [key.slice(0, slash), key.slice(slash + 1)];
  try {
    const page = await api("GET", `/api/flows/${encodeURIComponent(flowId)}/messages?after=${parseInt(index, 10) - 1}&limit=1`);
    const message = page?.messages?.[0];
    return message && String(message.index) === index ? message.resolution : null;
  } catch {
    return null;
  }
}

/**
 * Turns a held card into a tombstone: read-only (its text can still be selected and copied), its buttons disabled,
 * a note saying what happened instead (read from REST), and a Dismiss button. Its problem box keeps any 409 the
 * user's own click got.
 */
function markGone(card, bulkResolution = null) {
  const edited = cardEdited(card);
  card.classList.add("held-gone");
  const textarea = $("textarea", card);
  if (textarea) {
    textarea.readOnly = true;
    textarea.removeAttribute("data-content-url"); // nothing left to load it for
  }
  $(".held-loading", card)?.remove();
  for (const control of $$("button, select", card)) control.disabled = true;
  const note = document.createElement("span");
  note.className = "held-gone-note small fw-semibold text-warning-emphasis";
  note.setAttribute("role", "status");
  note.textContent = goneText(null, edited);
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "btn btn-sm btn-outline-secondary held-dismiss ms-auto";
  dismiss.textContent = "Dismiss";
  const row = $(".action-result", card)?.parentElement ?? $(".held-form", card);
  row.append(note, dismiss);
  readResolution(card.dataset.key).then((resolution) => {
    // Decided by this page's Release all / Drop all (bulkResolution): say so, not "elsewhere".
    note.textContent = resolution && resolution === bulkResolution && edited ? BULK_GONE_TEXT[resolution] : goneText(resolution, edited);
  });
}

/** The held list's empty state, as HeldList.razor renders it. */
function emptyHeld() {
  const empty = document.createElement("div");
  empty.className = "empty-state";
  empty.id = "held-empty";
  empty.textContent = "Nothing is held. Messages matching the intercept filter (or a hold rule) wait here for you.";
  return empty;
}

/** Forgets the oldest tombstones past MAX_TOMBSTONES. */
function trimTombstones(list) {
  const tombstones = $$(".held-gone", list);
  for (const card of tombstones.slice(0, Math.max(0, tombstones.length - MAX_TOMBSTONES))) card.remove();
}

/**
 * The intercept page's settings form and badge, kept current from InterceptChanged (and polls): the badge always
 * shows what is in force; the form follows too unless the user is editing it, who is told instead (showChanged).
 */
function interceptSettings(onChange) {
  const form = $("#intercept-form");
  const badge = $("#intercept-state");
  const notice = $("#intercept-notice");
  const problem = $(".problem", form);
  // The version a 412 in the problem box reports as current: once newer settings arrive, its version and its advice
  // are out of date, and the notice above it (showChanged) already says what is in force now.
  let refusedAt = null;
  const { filter, timeoutSeconds, timeoutAction } = form.elements;
  const version = () => Number(form.dataset.ifMatch);
  const describe = (s) => (s.enabled
    ? `holding <code>${escapeHtml(s.filter)}</code>, timeout ${s.timeoutSeconds == null ? "none" : `${s.timeoutSeconds} s then ${s.timeoutAction}`}`
    : "intercept is off");
  const showBadge = (s) => {
    badge.className = `badge ${s.enabled ? "text-bg-warning" : "text-bg-secondary"}`;
    badge.innerHTML = s.enabled ? `holding <code class="text-reset">${escapeHtml(s.filter)}</code>` : "off";
    badge.dataset.enabled = String(s.enabled);
    onChange();
  };
  // Values and defaults both: "unchanged" (isUnchanged) means "as loaded" from now on.
  const load = (s) => {
    filter.value = filter.defaultValue = s.filter ?? "";
    timeoutSeconds.value = timeoutSeconds.defaultValue = s.timeoutSeconds ?? "";
    for (const option of timeoutAction.options) option.selected = option.defaultSelected = option.value === s.timeoutAction;
    filter.classList.remove("is-invalid");
    form.dataset.ifMatch = s.version;
    notice.innerHTML = "";
  };
  const editing = () => [filter, timeoutSeconds, timeoutAction].some((el) => !isUnchanged(el) || el === document.activeElement);
  const changed = (s) => showChanged(notice, describe(s), { load: () => load(s), keep: () => { form.dataset.ifMatch = s.version; } });

  const apply = (s) => {
    if (s.version < version()) return; // an answer overtaken by a newer one
    if (refusedAt !== null && s.version > refusedAt) {
      problem.innerHTML = "";
      refusedAt = null;
    }
    showBadge(s);
    if (s.version === version()) return;
    if (editing()) changed(s);
    else load(s);
  };
  document.addEventListener("wsweb:done", ({ detail }) => {
    if (detail.form !== form || !detail.data) return;
    refusedAt = null;
    load(detail.data);
    showBadge(detail.data);
  });
  document.addEventListener("wsweb:failed", ({ detail: { form: failed, error } }) => {
    if (failed !== form) return;
    refusedAt = null; // another failure's box (a bad filter) stays until the next Set
    if (error.status !== 412 || !error.problem.current) return;
    refusedAt = error.problem.current.version;
    showBadge(error.problem.current);
    changed(error.problem.current);
  });
  return { apply, poll: async () => apply(await api("GET", "/api/intercept")) };
}

// Mirrors InterceptPage.razor's OffNotice.
const offNotice = (n) => `Intercept is off; ${n} ${n === 1 ? "message is" : "messages are"} still held — release or drop them.`;

// What a card decided by this page's Release all / Drop all says when the user had edited it (the edit was not sent).
const BULK_GONE_TEXT = {
  released: "Released by Release all — your edit was not sent.",
  dropped: "Dropped by Drop all — your edit was not sent.",
};

function interceptPage() {
  const list = $("#held-list");
  const count = $("#held-count");
  const releaseAll = $("#held-release-all");
  const dropAll = $("#held-drop-all");
  const bulkActions = $("#held-actions");
  const bulkProblem = $("#held-bulk-problem");
  const offNote = $("#held-off-notice");
  let heldCount = Number(count?.textContent ?? 0);
  let bulkRunning = false;
  // Turning intercept off leaves held messages held (as mitmproxy does): say so while any are, rather than silently.
  const showHeldState = () => {
    const off = $("#intercept-state")?.dataset.enabled === "false";
    if (offNote) {
      offNote.hidden = !off || heldCount === 0;
      offNote.textContent = offNote.hidden ? "" : offNotice(heldCount);
    }
    if (releaseAll) releaseAll.disabled = bulkRunning || heldCount === 0;
    if (dropAll) dropAll.disabled = bulkRunning || heldCount === 0;
  };
  const settings = interceptSettings(showHeldState);
  const isGone = (card) => card.classList.contains("held-gone");
  const loadCut = () => { for (const card of $$(".held-card", list)) if (!isGone(card)) loadWholeContent(card); };
  // Messages this page released or dropped itself: their cards go at once (the user saw the outcome), and a list read
  // before the decision that still shows them must not bring them back.
  const decidedHere = new Set();
  // Cards a Release all / Drop all of this page is deciding: a list read meanwhile leaves them as they are (the
  // answer decides), as it does a card whose own decision is in flight.
  const bulkPending = new Set();
  let lastHeld = new Set();

  const showEmpty = () => {
    if ($(".held-card", list)) $("#held-empty", list)?.remove();
    else if (!$("#held-empty", list)) list.append(emptyHeld());
  };

  // Keyed merge: cards already on screen stay where they are (with whatever the user typed). One no longer held
  // becomes a tombstone, unless this page's own decision on it is still in flight (its answer decides: gone if it
  // won, a tombstone with the 409 if it lost). New ones go after all of them: they were caught later.
  const refresh = serial(async () => {
    const response = await fetch("/ui/intercept/held");
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    const fresh = Array.from(template.content.querySelectorAll(".held-card"));
    const held = new Set(fresh.map((card) => card.dataset.key));
    const shown = new Set();
    for (const card of $$(".held-card", list)) {
      shown.add(card.dataset.key);
      if (!held.has(card.dataset.key) && !isGone(card) && !busy(null, $(".held-form", card)) && !bulkPending.has(card.dataset.key)) markGone(card);
    }
    for (const card of fresh) {
      if (!shown.has(card.dataset.key) && !decidedHere.has(card.dataset.key)) list.append(card);
    }
    trimTombstones(list);
    showEmpty();
    localizeTimes(list);
    if (count) count.textContent = fresh.length;
    showHeldCount(fresh.length);
    lastHeld = held;
    heldCount = fresh.length;
    showHeldState();
    loadCut();
  });
  loadCut();
  showHeldState();

  // Release all / Drop all: every message held when clicked, unchanged (mitmweb's resume all, Burp's forward all).
  // The cards they decided go, as a card's own Release does; one the user had edited stays as a tombstone saying its
  // edit was not sent. Those decided elsewhere meanwhile become tombstones as usual.
  const bulk = async (action) => {
    if (bulkRunning) return;
    const live = $$(".held-card", list).filter((card) => !isGone(card) && !busy(null, $(".held-form", card)));
    const edited = live.filter(cardEdited).length;
    if (action === "drop") {
      if (!confirm(`Drop all ${heldCount} held message${heldCount === 1 ? "" : "s"}? None of them will reach its peer.`)) return;
    } else if (edited > 0 && !confirm(`${edited} held message${edited === 1 ? " has an edit" : "s have edits"} that Release all does not send: every message goes on as it was caught. Release all?`)) {
      return;
    }
    bulkRunning = true;
    showHeldState();
    bulkProblem.innerHTML = "";
    showResult(bulkActions, "", true);
    for (const card of live) bulkPending.add(card.dataset.key);
    try {
      const answer = await api("POST", `/api/intercept/held/${action}`);
      const n = action === "drop" ? answer.dropped : answer.released;
      await refresh();
      for (const card of live) {
        if (lastHeld.has(card.dataset.key) || isGone(card) || !card.isConnected) continue;
        if (cardEdited(card)) {
          markGone(card, action === "drop" ? "dropped" : "released");
        } else {
          decidedHere.add(card.dataset.key);
          card.remove();
        }
      }
      showEmpty();
      showResult(bulkActions, `${action === "drop" ? "Dropped" : "Released"} ${n} message${n === 1 ? "" : "s"}`);
    } catch (error) {
      bulkProblem.innerHTML = problemHtml(error);
    } finally {
      bulkPending.clear();
      bulkRunning = false;
      showHeldState();
      refresh();
    }
  };
  releaseAll?.addEventListener("click", () => bulk("release"));
  dropAll?.addEventListener("click", () => bulk("drop"));

  // A tombstone's form sends nothing, however it is submitted.
  list.addEventListener("submit", (event) => {
    if (!event.target.closest(".held-gone")) return;
    event.preventDefault();
    event.stopPropagation();
  }, true);
  list.addEventListener("click", (event) => {
    const card = event.target.closest(".held-dismiss") && event.target.closest(".held-card");
    if (!card) return;
    card.remove();
    showEmpty();
  });
  document.addEventListener("wsweb:done", (event) => {
    const card = event.detail.form?.classList.contains("held-form") && event.detail.form.closest(".held-card");
    if (!card) return;
    decidedHere.add(card.dataset.key);
    card.remove();
    refresh();
  });
  // A decision that failed (409: someone else decided first) leaves the card; the refresh makes it a tombstone if
  // it is no longer held, keeping the answer in its problem box.
  document.addEventListener("wsweb:failed", (event) => { if (event.detail.form?.classList.contains("held-form")) refresh(); });
  goLive({
    // The cards are read as HTML on every change (they carry the editors): the hub only says when.
    handlers: { HeldCounts: () => refresh(), Gap: () => refresh(), InterceptChanged: settings.apply },
    onConnected: async (connection) => {
      await connection.invoke("SubscribeInterceptCounts");
      if (!(await refresh())) throw new Error("The held messages could not be read after subscribing.");
    },
    poll: async () => { await settings.poll(); return refresh(); },
  });
}

// ---------- Rules page ----------

// Mirrors RuleTable.razor's details column and counters cell.
function ruleDetails(rule) {
  if (rule.action === "replace" && rule.replace) return `${rule.replace.binary ? "bytes " : ""}${rule.replace.pattern} → ${rule.replace.replacement}`;
  return rule.action === "delay" ? `${rule.delayMs} ms` : "";
}

function ruleCounters({ hits, filterTimeouts }) {
  let html = `<span class="c-hits">${hits}</span>`;
  if (filterTimeouts > 0) {
    html += `<span class="badge text-bg-warning d-block mt-1 c-slow" title="A regex of this filter timed out on ${filterTimeouts} messages (100 ms each), which counted as no match. Simplify the regex.">${filterTimeouts} slow</span>`;
  }
  return html;
}

/** A row of the rules table as RuleTable.razor renders it. */
function ruleRow(rule) {
  const row = document.createElement("tr");
  row.className = "rule-row";
  row.dataset.id = rule.id;
  row.dataset.rule = JSON.stringify(rule);
  row.innerHTML = `<td class="text-end c-order"></td><td class="c-name">${escapeHtml(rule.name)}</td><td class="c-filter font-monospace">${escapeHtml(rule.filter)}</td>` +
    `<td><span class="badge text-bg-light border">${escapeHtml(rule.action)}</span></td><td class="font-monospace small">${escapeHtml(ruleDetails(rule))}</td>` +
    `<td class="text-end c-counters">${ruleCounters(rule)}</td>` +
    `<td><button type="button" class="btn btn-sm py-0 ${rule.enabled ? "btn-success" : "btn-outline-secondary"} rule-toggle" role="switch" ` +
    `aria-checked="${rule.enabled}" aria-label="Rule ${escapeHtml(rule.name)} enabled">${rule.enabled ? "on" : "off"}</button></td>` +
    `<td class="text-end text-nowrap"><button type="button" class="btn btn-sm btn-outline-secondary py-0 px-1 rule-up" aria-label="Move rule ${escapeHtml(rule.name)} up" title="Run earlier">↑</button> ` +
    `<button type="button" class="btn btn-sm btn-outline-secondary py-0 px-1 rule-down" aria-label="Move rule ${escapeHtml(rule.name)} down" title="Run later">↓</button> ` +
    `<button type="button" class="btn btn-sm btn-outline-primary py-0 rule-edit" aria-label="Edit rule ${escapeHtml(rule.name)}">Edit</button> ` +
    `<button type="button" class="btn btn-sm btn-outline-danger py-0 rule-delete" aria-label="Delete rule ${escapeHtml(rule.name)}">Delete</button></td>`;
  return row;
}

function rulesPage() {
  const form = $("#rule-form");
  const action = $("#rule-action");
  const tbody = $(".rules-table tbody");
  const notice = $("#rule-notice");
  const problem = $(".problem", form);
  const empty = document.createElement("tr");
  empty.innerHTML = '<td colspan="8" class="empty-state">No rules. Rules drop, rewrite, delay or hold matching messages without you watching.</td>';
  const showOptions = () => {
    for (const el of $$(".rule-opt", form)) el.classList.toggle("d-none", el.dataset.for !== action.value);
  };
  action.addEventListener("change", showOptions);
  showOptions();

  // Editing another rule or starting over: nothing the last submit or filter check said applies any more. Called
  // once the form holds its new values.
  const clearErrors = () => {
    const filter = form.elements.filter;
    problem.innerHTML = "";
    for (const feedback of $$(".filter-feedback", form)) feedback.innerHTML = "";
    for (const el of $$(".is-invalid", form)) el.classList.remove("is-invalid");
    // A check still in flight would bring its verdict back. And the box's check (htmx, "input changed") goes on
    // from the value now in it: typed again, the refused filter is checked again.
    if (window.htmx) htmx.trigger(filter, "htmx:abort");
    filter.dispatchEvent(new Event("input", { bubbles: true }));
  };

  const reset = () => {
    form.reset();
    form.dataset.api = "/api/rules";
    form.dataset.method = "POST";
    delete form.dataset.ifMatch;
    delete form.dataset.ruleId;
    notice.innerHTML = "";
    $("#rule-form-title").textContent = "New rule";
    $("#rule-submit").textContent = "Add rule";
    $("#rule-cancel").classList.add("d-none");
    showOptions();
    clearErrors();
  };
  $("#rule-cancel").addEventListener("click", reset);

  // The edit carries the version it started from (If-Match): saving over someone else's later change is a 412, not a revert.
  const edit = (rule) => {
    form.elements.name.value = rule.name ?? "";
    form.elements.filter.value = rule.filter ?? "";
    form.elements.action.value = rule.action;
    form.elements.enabled.checked = rule.enabled;
    form.elements["replace.pattern"].value = rule.replace?.pattern ?? "";
    form.elements["replace.replacement"].value = rule.replace?.replacement ?? "";
    form.elements["replace.binary"].checked = !!rule.replace?.binary;
    form.elements.delayMs.value = rule.delayMs ?? "";
    form.dataset.api = `/api/rules/${encodeURIComponent(rule.id)}`;
    form.dataset.method = "PUT";
    form.dataset.ifMatch = rule.version;
    form.dataset.ruleId = rule.id;
    notice.innerHTML = "";
    $("#rule-form-title").textContent = `Edit rule ${rule.name}`;
    $("#rule-submit").textContent = "Save";
    $("#rule-cancel").classList.remove("d-none");
    showOptions();
    clearErrors();
  };
  const describe = (rule) => `<code>${escapeHtml(rule.filter)}</code> → ${escapeHtml(rule.action)} ${escapeHtml(ruleDetails(rule))}` +
    ` (${rule.enabled ? "on" : "off"}, version ${rule.version})`;
  // The rule being edited as it is now (undefined: deleted): say so if it moved past the edit's version.
  const checkEdited = (current) => {
    if (form.dataset.method !== "PUT") return;
    if (!current) { notice.innerHTML = '<div class="alert alert-warning py-1 px-2 small mt-2 mb-0" role="status">Deleted by someone else: saving will fail. Cancel the edit, or add it again as a new rule.</div>'; return; }
    if (current.version <= Number(form.dataset.ifMatch)) return;
    showChanged(notice, describe(current), { load: () => edit(current), keep: () => { form.dataset.ifMatch = current.version; } });
  };

  // Rows that did not change stay (the list arrives whole on every change, and once on subscribing): no flicker, and
  // a click or a hover on another row is not lost. The version covers the definition, the counters are compared too.
  const render = (rules) => {
    const shown = new Map($$("tr.rule-row", tbody).map((row) => [row.dataset.id, row]));
    const same = (row, rule) => {
      const old = JSON.parse(row.dataset.rule);
      return old.version === rule.version && old.hits === rule.hits && old.filterTimeouts === rule.filterTimeouts;
    };
    const rows = rules.map((rule) => (shown.has(rule.id) && same(shown.get(rule.id), rule) ? shown.get(rule.id) : ruleRow(rule)));
    tbody.replaceChildren(...(rows.length ? rows : [empty]));
    // The order is the rows' places (RuleTable.razor numbers them the same way): kept rows may have moved.
    rows.forEach((row, i) => {
      if (row === empty) return;
      $(".c-order", row).textContent = i + 1;
      $(".rule-up", row).disabled = i === 0;
      $(".rule-down", row).disabled = i === rows.length - 1;
    });
    checkEdited(rules.find((r) => r.id === form.dataset.ruleId));
  };
  const updateCounters = (counters) => {
    for (const c of counters) {
      const row = $$("tr.rule-row", tbody).find((r) => r.dataset.id === c.id);
      if (!row) continue;
      $(".c-counters", row).innerHTML = ruleCounters(c);
      row.dataset.rule = JSON.stringify({ ...JSON.parse(row.dataset.rule), hits: c.hits, filterTimeouts: c.filterTimeouts });
    }
  };
  const refresh = serial(async () => render(await api("GET", "/api/rules")));

  document.addEventListener("wsweb:done", (event) => {
    if (event.detail.form !== form) return;
    reset();
    if (document.body.dataset.live !== "hub") refresh(); // live, RulesChanged brings the change
  });
  document.addEventListener("wsweb:failed", ({ detail: { form: failed, error } }) => {
    if (failed === form && error.status === 412 && error.problem.current) checkEdited(error.problem.current);
  });

  document.addEventListener("click", (event) => {
    const row = event.target.closest("tr.rule-row");
    if (!row) return;
    const rule = JSON.parse(row.dataset.rule);
    const url = `/api/rules/${encodeURIComponent(rule.id)}`;
    const failed = (error) => { problem.innerHTML = problemHtml(error); };
    if (event.target.closest(".rule-edit")) {
      edit(rule);
      form.scrollIntoView({ block: "nearest" });
    } else if (event.target.closest(".rule-toggle")) {
      // Only "enabled" is sent: a toggle cannot undo a change someone else made to the rest of the rule.
      api("PATCH", url, { enabled: !rule.enabled }).then((changed) => {
        problem.innerHTML = "";
        const shown = $$("tr.rule-row", tbody).find((r) => r.dataset.id === changed.id);
        if (shown && JSON.parse(shown.dataset.rule).version <= changed.version) shown.replaceWith(ruleRow(changed));
      }, failed);
    } else if (event.target.closest(".rule-up, .rule-down")) {
      const place = $$("tr.rule-row", tbody).indexOf(row) + (event.target.closest(".rule-up") ? -1 : 1);
      // Live on the hub, RulesChanged brings the new order, and any change a teammate made meanwhile after it: the
      // answer, older than those, would put their change off the page.
      api("POST", `${url}/move`, { index: place }).then((rules) => {
        problem.innerHTML = "";
        if (document.body.dataset.live !== "hub") render(rules);
      }, failed);
    } else if (event.target.closest(".rule-delete")) {
      // As Clear flows and a flow's Delete: it cannot be undone, and on a shared WsWeb the rule may be a teammate's.
      if (!confirm(`Delete the rule "${rule.name}"? It stops acting on messages at once, for everyone using this WsWeb.`)) return;
      api("DELETE", url, undefined, ifMatchHeader(rule.version)).then(() => { problem.innerHTML = ""; refresh(); }, failed);
    }
  });

  goLive({
    handlers: { RulesChanged: render, RuleHits: updateCounters },
    onConnected: (connection) => connection.invoke("SubscribeRules"),
    poll: refresh,
  });
}

// ---------- Export page ----------

function exportPage() {
  // A bad filter would navigate to the API's bare 400: check it first (htmx may not have answered yet)
  // and only then download, so the error stays inline under the box.
  const filtered = $("#export-filtered-form");
  filtered?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("input[name=filter]", filtered);
    const feedback = $(".filter-feedback", filtered);
    const response = await fetch(`/ui/filter-check?filter=${encodeURIComponent(input.value)}`).catch(() => null);
    if (response?.ok) {
      feedback.innerHTML = await response.text();
      const invalid = !!$(".filter-error", feedback);
      input.classList.toggle("is-invalid", invalid);
      if (invalid) { input.focus(); return; }
    }
    const query = new URLSearchParams({ format: event.submitter?.value ?? "json" });
    if (input.value.trim()) query.set("filter", input.value);
    location.href = `${filtered.action}?${query}`;
  });

  // What did not fit (flows evicted, messages trimmed, a file cut short) is told only by the report's warnings: the
  // counts alone read as if the whole file came in. They belong to one import, so the next one, whatever its outcome,
  // starts without them.
  const importWarnings = $("#import-form .import-warnings");
  document.addEventListener("wsweb:start", (event) => {
    if (event.detail.form?.id === "import-form" && importWarnings) importWarnings.innerHTML = "";
  });
  document.addEventListener("wsweb:done", (event) => {
    const report = event.detail.data;
    if (event.detail.form?.id === "import-form" && report) {
      showResult(event.detail.form,
        `Imported ${report.flows} flows (${report.messages} messages) from ${report.format}` +
        (report.alreadyPresent ? `, ${report.alreadyPresent} already present` : "") + (report.skipped ? `, ${report.skipped} skipped` : "") + ".",
        true);
      if (importWarnings) importWarnings.innerHTML = importWarningsHtml(report.warnings);
    }
  });
}

/** An import report's warnings as one warning box, a line each (the API bounds them to a few dozen); none: nothing. */
function importWarningsHtml(warnings) {
  if (!warnings?.length) return "";
  const items = warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("");
  return `<div class="alert alert-warning py-1 px-2 small mt-2 mb-0 text-break"><strong>${warnings.length === 1 ? "1 warning" : `${warnings.length} warnings`}</strong>` +
    `<ul class="mb-0 ps-3">${items}</ul></div>`;
}

/**
 * Pages that follow nothing else (Export, Onboarding) still keep the nav's held count current: held messages stall
 * their flows wherever the user is. Subscribed first, then read, so no change falls between the two.
 */
function followHeldCount() {
  const read = async () => {
    const state = await api("GET", "/api/intercept");
    showHeldCount(state.held);
    showIntercepting(state);
  };
  goLive({
    handlers: {},
    onConnected: async (connection) => {
      await connection.invoke("SubscribeInterceptCounts");
      await read();
    },
    poll: read,
    quiet: true,
  });
}

// ---------- Onboarding page ----------

// The client TLS handshakes box (ClientTlsStatus.razor), read again every few seconds while the page is shown: someone
// setting up a client watches it for the handshake that fails, and why. Not over the hub: it is one small fragment.
const CLIENT_TLS_MS = 3000;
function onboardingPage() {
  // Compared as the server sent it: the box on the page has its times made local, so it never equals the answer, and
  // replacing it every time would take a selected reason away from someone copying it.
  let last = null;
  const refresh = async () => {
    const box = $("#client-tls");
    if (!box || document.hidden) return;
    const response = await fetch("/ui/client-tls").catch(() => null);
    if (!response?.ok) return;
    const html = await response.text();
    if (html === last) return;
    last = html;
    const fresh = new DOMParser().parseFromString(html, "text/html").body.firstElementChild;
    if (!fresh) return;
    box.replaceWith(fresh);
    localizeTimes(fresh);
  };
  setInterval(refresh, CLIENT_TLS_MS);
}

// ---------- start ----------

localizeTimes();
const root = $("[data-page]");
switch (root?.dataset.page) {
  case "flows": flowsPage(root); break;
  case "flow": if (root.dataset.http) httpFlowPage(root); else flowPage(root); break;
  case "intercept": interceptPage(root); break;
  case "rules": rulesPage(root); break;
  case "export": exportPage(root); followHeldCount(); break;
  case "onboarding": onboardingPage(); followHeldCount(); break;
  default: break;
}
window.wsweb = { api, formatBytes, preview, messageRow, flowRow };
