// Cairn's restore portal: a front end of the REST API under /api/v1, nothing more.
//
// Rules this file keeps (the server's Content Security Policy enforces the first two):
// no inline script or style; nothing loaded from elsewhere; data (subjects, names,
// addresses, reports) is only ever set with textContent or as attribute values, never
// parsed as HTML. A message body is shown only as the server's sanitised HTML, in an
// <iframe sandbox> that may not run scripts.

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  csrf: null,
  resource: null, // {tenant, resource}
  point: null, // restore point number
  path: "",
  // Selected items and folders: key "POINT\nPATH" -> {point, path}
  selected: new Map(),
};

// ---------------------------------------------------------------------------------------
// Talking to the API

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the server answered ${status}`);
    this.status = status;
    this.hint = e.hint || null;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    const csrf = cookie("cairn_csrf") || state.csrf;
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await r.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (r.status === 401) {
    showSignIn();
    throw new ApiError(401, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  return q.toString();
}

// ---------------------------------------------------------------------------------------
// Small helpers for the page

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function button(text, onClick, attrs = {}) {
  const b = el("button", text, { type: "button", ...attrs });
  b.addEventListener("click", onClick);
  return b;
}

function show(id, visible = true) {
  $(id).hidden = !visible;
}

function say(text) {
  $("status").textContent = text || "";
}

function fail(e) {
  const box = $("error");
  if (e && e.status === 401) return;
  box.textContent = e && e.hint ? `${e.message} (${e.hint})` : String((e && e.message) || e);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function size(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

function fields(dl, pairs) {
  dl.replaceChildren();
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) continue;
    dl.append(el("dt", label), el("dd", Array.isArray(value) ? value.join(", ") : value));
  }
}

function target(point = state.point) {
  return `${state.resource.resource}@${point}`;
}

function itemQuery(point, path, extra = {}) {
  return query({ target: target(point), path, tenant: state.resource.tenant, ...extra });
}

// ---------------------------------------------------------------------------------------
// Who is signed in, and whose data

function showSignIn() {
  for (const id of ["dashboard", "pick", "timeline", "search", "browse", "preview", "act", "task"]) show(id, false);
  show("signin");
  say("");
}

async function start() {
  $("logout").addEventListener("click", logout);
  $("find").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search().catch(fail);
  });
  $("clear-search").addEventListener("click", () => {
    $("find").reset();
    $("search-note").textContent = "";
    browse(state.path).catch(fail);
  });
  $("close-preview").addEventListener("click", closePreview);
  $("restore").addEventListener("click", () => restore().catch(fail));
  $("download").addEventListener("click", () => exportSelection().catch(fail));
  $("refresh-jobs").addEventListener("click", () => loadDashboard().catch(fail));
  $("resource").addEventListener("change", () => {
    const [tenant, resource] = JSON.parse($("resource").value);
    pickResource({ tenant, resource }).catch(fail);
  });

  try {
    state.me = await api("/api/v1/me");
  } catch (e) {
    if (e.status === 401) return;
    // A server without sign-in: API tokens only; carry on with what the token may see.
    state.me = null;
  }
  if (state.me) {
    state.csrf = state.me.csrf || null;
    const role = state.me.role || "self-service";
    $("who").textContent = `${state.me.name || ""} · ${role}${state.me.tenant ? ` · ${state.me.tenant}` : ""}`;
    show("logout");
    if (OPERATORS.includes(role)) await loadDashboard().catch(fail);
  }
  // Restoring into someone else's mailbox or OneDrive is for operators (the server refuses
  // it to anyone else anyway); a token without sign-in is an operator's.
  if (!state.me || RESTORERS.includes(state.me.role)) {
    for (const id of ["to-user-choice", "to-user-label", "to-user"]) show(id);
  }
  await loadResources();
}

async function logout() {
  try {
    await api("/logout", { method: "POST" });
  } catch (e) {
    if (e.status !== 401) return fail(e);
  }
  window.location.assign("/login");
}

async function loadResources() {
  say("Loading restore points…");
  const own = state.me && Array.isArray(state.me.resources) ? state.me.resources : null;
  const tenant = state.me && state.me.tenant ? state.me.tenant : undefined;
  const points = await api(`/api/v1/restore-points?${query({ tenant })}`);
  const seen = new Map();
  for (const p of points) {
    if (own && !own.some((r) => r.toLowerCase() === p.resource.toLowerCase())) continue;
    seen.set(JSON.stringify([p.tenant, p.resource]), { tenant: p.tenant, resource: p.resource });
  }
  const select = $("resource");
  select.replaceChildren();
  for (const [key, r] of seen) {
    select.append(el("option", seen.size > 1 && r.tenant ? `${r.resource} (${r.tenant})` : r.resource, { value: key }));
  }
  show("pick");
  if (!seen.size) {
    say("There are no restore points yet.");
    return;
  }
  say("");
  const first = seen.values().next().value;
  await pickResource(first, points);
}

async function pickResource(r, all) {
  clearError();
  state.resource = r;
  state.selected.clear();
  const points = all
    ? all.filter((p) => p.tenant === r.tenant && p.resource === r.resource)
    : await api(`/api/v1/restore-points?${query({ tenant: r.tenant, resource: r.resource })}`);
  points.sort((a, b) => b.point - a.point);
  const ol = $("points");
  ol.replaceChildren();
  for (const p of points) {
    const li = el("li");
    const label = `${when(p.time)} — ${p.items} items, ${size(p.size)}`;
    const b = button(label, () => pickPoint(p.point).catch(fail), { "data-point": String(p.point) });
    li.append(b);
    if (p.suspect) li.append(el("span", "suspect", { class: "badge warn", title: "Ransomware or mass-change detection found signs in it" }));
    if (p.held_by) li.append(el("span", "on hold", { class: "badge" }));
    ol.append(li);
  }
  show("timeline");
  show("search");
  show("act");
  updateSelection();
  if (points.length) await pickPoint(points[0].point);
}

async function pickPoint(point) {
  state.point = point;
  for (const b of $("points").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", b.dataset.point === String(point) ? "true" : "false");
  }
  await browse("");
}

// ---------------------------------------------------------------------------------------
// Browsing and search

async function browse(path) {
  clearError();
  say("Loading…");
  const v = await api(`/api/v1/ls?${query({ target: target(), tenant: state.resource.tenant, path, limit: 500 })}`);
  state.path = v.path || "";
  say("");
  crumbs();
  const ul = $("folders");
  ul.replaceChildren();
  for (const f of v.folders || []) {
    const li = el("li");
    li.append(selectBox(state.point, f.path, `Select folder ${f.name}`));
    li.append(button(`${f.name} (${f.items} items, ${size(f.size)})`, () => browse(f.path).catch(fail), { class: "link" }));
    ul.append(li);
  }
  rows(v.items || [], state.point);
  $("items-caption").textContent = `Items in ${state.path || "the restore point"}`;
  show("truncated", !!v.truncated);
  show("browse");
}

function crumbs() {
  const ol = $("crumbs");
  ol.replaceChildren();
  const parts = state.path ? state.path.split("/") : [];
  const top = el("li");
  top.append(button(`Restore point ${state.point}`, () => browse("").catch(fail), { class: "link" }));
  ol.append(top);
  parts.forEach((name, i) => {
    const li = el("li");
    const p = parts.slice(0, i + 1).join("/");
    if (i === parts.length - 1) li.append(el("span", name, { "aria-current": "location" }));
    else li.append(button(name, () => browse(p).catch(fail), { class: "link" }));
    ol.append(li);
  });
}

function selectBox(point, path, label) {
  const key = `${point}\n${path}`;
  const box = el("input", null, { type: "checkbox", "aria-label": label });
  box.checked = state.selected.has(key);
  box.addEventListener("change", () => {
    if (box.checked) state.selected.set(key, { point, path });
    else state.selected.delete(key);
    updateSelection();
  });
  return box;
}

function rows(items, pointOf) {
  const body = $("items").querySelector("tbody");
  body.replaceChildren();
  for (const it of items) {
    const point = typeof pointOf === "function" ? pointOf(it) : pointOf;
    const name = it.subject || it.name || it.path.split("/").pop();
    const tr = el("tr");
    const pick = el("td");
    pick.append(selectBox(point, it.path, `Select ${name}`));
    const prev = el("td");
    prev.append(button("Preview", () => openPreview(point, it.path).catch(fail), { "aria-label": `Preview ${name}` }));
    tr.append(pick, el("td", name), el("td", it.from || ""), el("td", when(it.date || it.mtime)), el("td", size(it.size)), prev);
    body.append(tr);
  }
  if (!items.length) {
    const tr = el("tr");
    tr.append(el("td", "No items here.", { colspan: "6" }));
    body.append(tr);
  }
}

async function search() {
  clearError();
  const f = $("find");
  const after = f.after.value ? new Date(`${f.after.value}T00:00:00`) : null;
  const before = f.before.value ? new Date(`${f.before.value}T23:59:59`) : null;
  say("Searching…");
  const v = await api(
    `/api/v1/find?${query({
      q: f.q.value.trim(),
      from: f.sender.value.trim(),
      to: f.recipient.value.trim(),
      resource: state.resource.resource,
      tenant: state.resource.tenant,
      limit: 1000,
    })}`,
  );
  // The API searches by text and people; the date range is applied here.
  const hits = (v.hits || []).filter((h) => {
    const d = h.date || h.mtime ? new Date(h.date || h.mtime) : null;
    if (after && (!d || d < after)) return false;
    if (before && (!d || d > before)) return false;
    return true;
  });
  say("");
  $("search-note").textContent = `${hits.length} found${v.more ? " (more than shown: narrow the search)" : ""}. Each is shown as in the last restore point that holds it.`;
  $("folders").replaceChildren();
  $("crumbs").replaceChildren(el("li", "Search results"));
  $("items-caption").textContent = "Search results";
  rows(hits, (h) => h.last);
  show("truncated", false);
  show("browse");
}

// ---------------------------------------------------------------------------------------
// Preview

function closePreview() {
  show("preview", false);
  $("preview-html").removeAttribute("srcdoc");
}

async function openPreview(point, path) {
  clearError();
  say("Opening…");
  const p = await api(`/api/v1/preview?${itemQuery(point, path)}`);
  say("");
  const h = p.headers || {};
  fields($("preview-headers"), [
    ["Subject", h.subject],
    ["From", h.from],
    ["To", h.to],
    ["Cc", h.cc],
    ["Date", h.date ? when(h.date) : null],
    ["Restore point", String(p.point)],
  ]);
  const frame = $("preview-html");
  if (p.html) {
    // Sanitised by the server; the sandbox (no allow-scripts) and the page's policy keep
    // anything that slipped through from running.
    frame.srcdoc = p.html;
    frame.hidden = false;
  } else {
    frame.removeAttribute("srcdoc");
    frame.hidden = true;
  }
  $("preview-text").textContent = !p.html && p.text ? p.text : "";
  show("preview-text", !p.html && !!p.text);
  const blocked = $("preview-blocked");
  blocked.textContent = p.remote_images_blocked ? `${p.remote_images_blocked} remote images were blocked.` : "";
  blocked.hidden = !p.remote_images_blocked;
  fields($("preview-card"), (p.card || []).map((f) => [f.label, f.value]));
  const list = $("preview-attachments");
  list.replaceChildren();
  for (const a of p.attachments || []) {
    const li = el("li");
    const link = el("a", a.name, {
      href: `/api/v1/preview/attachment?${itemQuery(point, path, { index: a.index })}`,
      download: a.name,
    });
    li.append(link, el("span", ` ${a.content_type}, ${size(a.size)}`, { class: "note" }));
    list.append(li);
  }
  show("attachments-h", (p.attachments || []).length > 0);
  const file = $("preview-file");
  file.replaceChildren();
  if (p.kind !== "message") {
    if (p.previewable) {
      file.append(el("a", "Open", { href: `/api/v1/preview/file?${itemQuery(point, path, { inline: "true" })}`, target: "_blank", rel: "noopener noreferrer" }), " ");
    }
    file.append(el("a", "Download", { href: `/api/v1/preview/file?${itemQuery(point, path)}`, download: "" }));
    if (p.content_type) file.append(el("span", ` ${p.content_type}, ${size(p.size)}`, { class: "note" }));
  }
  file.hidden = p.kind === "message";
  show("preview");
  $("preview").focus();
}

// ---------------------------------------------------------------------------------------
// Restore and download

function updateSelection() {
  const n = state.selected.size;
  $("selection").textContent = n ? `${n} selected.` : "Nothing selected: select items or a folder above.";
  $("restore").disabled = n === 0;
  $("download").disabled = n === 0;
}

function groups() {
  const byPoint = new Map();
  for (const { point, path } of state.selected.values()) {
    if (!byPoint.has(point)) byPoint.set(point, []);
    byPoint.get(point).push(path);
  }
  return byPoint;
}

async function restore() {
  clearError();
  const to = document.querySelector("input[name=to]:checked").value;
  const name = $("folder-name").value.trim();
  let dest = to === "folder" ? (name ? `folder:${name}` : "folder") : "original";
  if (to === "user") {
    const upn = $("to-user").value.trim();
    if (!upn) {
      fail({ message: "Name the user to restore to.", hint: "their sign-in name, such as someone@example.com" });
      return;
    }
    dest = `user:${upn}`;
  }
  for (const [point, paths] of groups()) {
    const t = await api("/api/v1/restores", {
      method: "POST",
      body: { target: target(point), tenant: state.resource.tenant, paths, to: dest, collision: $("collision").value },
    });
    await follow(t.id, "Restore");
  }
}

async function exportSelection() {
  clearError();
  for (const [point, paths] of groups()) {
    const t = await api("/api/v1/exports", {
      method: "POST",
      body: { target: target(point), tenant: state.resource.tenant, paths, format: $("format").value },
    });
    await follow(t.id, "Download");
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow(id, what) {
  show("task");
  const status = $("task-status");
  const bar = $("task-progress");
  const link = $("task-download");
  link.hidden = true;
  bar.removeAttribute("value");
  $("task-report").replaceChildren();
  let t;
  for (;;) {
    t = await api(`/api/v1/tasks/${encodeURIComponent(id)}`);
    status.textContent = `${what} ${t.id}: ${t.status} — ${t.items} items, ${size(t.bytes)}`;
    if (t.status !== "running") break;
    await sleep(1000);
  }
  bar.value = 1;
  bar.max = 1;
  if (t.error) fail({ message: t.error });
  const report = t.report && typeof t.report === "object" ? t.report : {};
  fields(
    $("task-report"),
    Object.entries(report).map(([k, v]) => [k.replaceAll("_", " "), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]),
  );
  if (t.download) {
    link.href = `/api/v1/tasks/${encodeURIComponent(t.id)}/download`;
    link.hidden = false;
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// The operator's dashboard: jobs, their last run, its failures, "Run now"

const OPERATORS = ["admin", "backup-operator", "restore-operator", "auditor"];
// Roles the server lets restore into another user's mailbox or OneDrive.
const RESTORERS = ["admin", "restore-operator"];
// Roles the server lets start a job (it refuses the others anyway).
const RUNNERS = ["admin", "backup-operator"];

function canRun() {
  return !!state.me && RUNNERS.includes(state.me.role);
}

async function loadDashboard() {
  const jobs = await api("/api/v1/jobs");
  jobs.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren();
  const failing = [];
  for (const j of jobs) {
    const tr = el("tr", null, { "data-job": j.name });
    const tenant = j.spec && j.spec.tenant ? j.spec.tenant : "";
    const name = el("td");
    name.append(el("strong", j.name));
    if (tenant) name.append(el("span", ` ${tenant}`, { class: "note" }));
    const r = j.last_run;
    const last = el("td", null, { class: "last-run" });
    if (j.running && (!r || r.status !== "running")) last.append(el("span", "running", { class: "st-running" }));
    if (r) {
      last.append(el("span", r.status, { class: `st-${r.status}` }), el("span", ` ${when(r.started)}`));
      if (r.status !== "running") failing.push(r);
    } else if (!j.running) {
      last.append(el("span", "never run", { class: "note" }));
    }
    const failed = el("td", r ? String(r.failed) : "", { class: "failed" });
    const act = el("td");
    if (canRun()) {
      const b = button("Run now", () => runJob(j.name, b).catch(fail), { "aria-label": `Run ${j.name} now` });
      b.disabled = !!j.running;
      act.append(b);
    }
    tr.append(name, last, failed, act);
    body.append(tr);
  }
  if (!jobs.length) {
    const tr = el("tr");
    tr.append(el("td", "No jobs configured.", { colspan: "4" }));
    body.append(tr);
  }
  await loadFailures(failing.filter((r) => r.failed > 0 || r.error));
  show("dashboard");
  return jobs;
}

async function loadFailures(runs) {
  const ul = $("failures");
  ul.replaceChildren();
  for (const r of runs) {
    let detail = null;
    try {
      detail = await api(`/api/v1/runs/${encodeURIComponent(r.id)}`);
    } catch {
      detail = null;
    }
    if (r.error) ul.append(el("li", `${r.job} (run ${r.id}): ${r.error}`));
    for (const x of (detail && detail.results) || []) {
      if (x.ok) continue;
      ul.append(el("li", `${r.job} (run ${r.id}): ${x.resource} — ${x.error || "failed"}`));
    }
  }
  if (!ul.children.length) ul.append(el("li", "None.", { class: "note" }));
}

async function runJob(name, b) {
  clearError();
  b.disabled = true;
  const started = await api(`/api/v1/jobs/${encodeURIComponent(name)}/run`, { method: "POST" });
  const status = $("jobs-status");
  status.textContent = `Run ${started.id} of ${name} started.`;
  for (let i = 0; i < 600; i += 1) {
    const jobs = await loadDashboard();
    const j = jobs.find((x) => x.name === name);
    if (!j || (!j.running && j.last_run && j.last_run.id >= started.id && j.last_run.status !== "running")) break;
    await sleep(1000);
  }
  const j = (await api(`/api/v1/jobs/${encodeURIComponent(name)}`)) || {};
  const r = j.last_run;
  status.textContent = r ? `Run ${r.id} of ${name}: ${r.status}, ${r.failed} failed.` : `Run ${started.id} of ${name} ended.`;
}

start().catch(fail);
