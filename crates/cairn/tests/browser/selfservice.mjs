// The restore portal in headless Chromium with a person signing in through Entra ID (the
// simulator's sign-in page): a self-service user finds a message they lost, previews it,
// restores it where it was and follows the task to its report; another user's mailbox is
// neither offered nor reachable by editing an API call (403); a hostile message previews
// without anything of it running. Screenshots of the pages go to CAIRN_SHOTS.
//
// Run by crates/cairn-server/tests/portal_e2e.rs:
//   CAIRN_URL=http://127.0.0.1:PORT/ CAIRN_SIM=http://127.0.0.1:SIMPORT CAIRN_TENANT=contoso \
//   CAIRN_UPN=… CAIRN_PASSWORD=… CAIRN_OTHER=<another UPN> CAIRN_SUBJECT=<the lost message> \
//   CAIRN_HOSTILE_SUBJECT=… CAIRN_ATTACHMENT=… [CAIRN_SHOTS=dir] node selfservice.mjs
// CHROMIUM names the browser (default /usr/bin/chromium).

import { chromium } from "playwright-core";
import path from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("CAIRN_URL");
const sim = env("CAIRN_SIM");
const tenant = env("CAIRN_TENANT");
const upn = env("CAIRN_UPN");
const password = env("CAIRN_PASSWORD");
const other = env("CAIRN_OTHER");
const subject = env("CAIRN_SUBJECT");
const hostileSubject = env("CAIRN_HOSTILE_SUBJECT");
const attachment = env("CAIRN_ATTACHMENT");
const shots = process.env.CAIRN_SHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const origin = new URL(url).origin;
const simOrigin = new URL(sim).origin;

const problems = [];
const check = (ok, what) => {
  if (!ok) problems.push(what);
};
const step = (what) => console.log(`- ${what}`);

let page;
const browser = await chromium.launch({ executablePath, chromiumSandbox: false, headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  // Nothing leaves for anywhere but the server and the sign-in page.
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith(simOrigin) || u.startsWith("data:") || u.startsWith("about:")) {
      return route.continue();
    }
    problems.push(`a request to another origin: ${u}`);
    return route.abort();
  });
  page = await context.newPage();
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  page.on("dialog", (d) => {
    problems.push(`a dialog opened (script ran): ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    const t = m.text();
    if (/pwned/i.test(t)) problems.push(`the hostile message wrote to the console: ${t}`);
    // 401 before signing in, 403 for the other mailbox: expected.
    else if (m.type() === "error" && !/401|403|404/.test(t)) problems.push(`console error: ${t}`);
  });

  // Not signed in: the portal sends the person to sign in.
  step("sign in");
  await page.goto(url);
  await page.locator("#signin a[href='/login']").click();
  await page.getByRole("link", { name: `Sign in to ${tenant}` }).click();
  await page.waitForURL((u) => u.origin === simOrigin);
  check(/\/oauth2\/v2\.0\/authorize/.test(page.url()), `Entra's sign-in page: ${page.url()}`);
  await page.locator("input[name=login]").fill(upn);
  await page.locator("input[name=passwd]").fill(password);
  await shot("signin");
  await page.locator("button[type=submit]").click();
  await page.waitForURL((u) => u.origin === origin && u.pathname === "/", { timeout: 30000 });

  // Signed in as a self-service user: their own mailbox only.
  await page.locator("#points button").first().waitFor();
  const who = await page.locator("#who").textContent();
  check(who.toLowerCase().includes(upn.toLowerCase()) && who.includes("self-service"), `signed in as ${upn}: ${who}`);
  const offered = await page.locator("#resource option").allTextContents();
  check(
    offered.length === 1 && offered[0].toLowerCase() === upn.toLowerCase(),
    `only their own mailbox is offered: ${JSON.stringify(offered)}`,
  );

  // Editing the API calls does not reach someone else's.
  step("another user's mailbox");
  const tries = await page.evaluate(
    async ({ other, tenant }) => {
      const csrf = decodeURIComponent((document.cookie.match(/(?:^|; )cairn_csrf=([^;]*)/) || [])[1] || "");
      const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
      const out = {};
      const q = (o) => new URLSearchParams(o).toString();
      let r = await fetch(`/api/v1/restore-points?${q({ resource: other })}`, { headers, credentials: "same-origin" });
      out.points = r.status;
      r = await fetch(`/api/v1/restore-points?${q({ tenant, resource: other })}`, { headers, credentials: "same-origin" });
      out.pointsTenant = r.status;
      r = await fetch("/api/v1/restores", {
        method: "POST",
        credentials: "same-origin",
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify({ target: `${other}@1`, tenant, paths: ["mail"], to: "original" }),
      });
      out.restore = r.status;
      out.csrf = csrf.length > 0;
      return out;
    },
    { other, tenant },
  );
  check(tries.csrf, "the CSRF cookie is readable by the page");
  check(tries.points === 403, `restore points of ${other}: ${tries.points}`);
  check(tries.pointsTenant === 403, `restore points of ${other} in ${tenant}: ${tries.pointsTenant}`);
  check(tries.restore === 403, `a restore of ${other}'s mailbox: ${tries.restore}`);

  // The lost message: found by its subject.
  step("search");
  await page.locator("#items tbody tr").first().waitFor();
  await page.locator("#q").fill(subject);
  await page.keyboard.press("Enter");
  const row = page
    .locator("#items tbody tr")
    .filter({ has: page.getByRole("cell", { name: subject, exact: true }) })
    .first();
  await row.waitFor();
  await shot("search");

  // Previewed.
  step("preview");
  await row.getByRole("button", { name: /Preview/ }).click();
  await page.locator("#preview").waitFor({ state: "visible" });
  const shown = await page.locator("#preview-headers dd").first().textContent();
  check(shown === subject, `the preview's subject: ${shown}`);
  await shot("preview");

  // Restored where it was.
  step("restore");
  await page.locator("#close-preview").click();
  await row.locator("input[type=checkbox]").check();
  await page.locator("input[name=to][value=original]").check();
  await page.locator("#restore").click();
  await page.waitForFunction(
    () => /succeeded|partial|failed/.test(document.getElementById("task-status").textContent),
    null,
    { timeout: 90000 },
  );
  const status = await page.locator("#task-status").textContent();
  check(/succeeded/.test(status), `the restore succeeded: ${status}`);
  check((await page.locator("#task-report dt").count()) > 0, "the report is shown");
  await page.locator("#task").scrollIntoViewIfNeeded();
  await shot("restored");

  // The hostile message: nothing of it runs in the page or in its frame.
  step("hostile preview");
  await page.evaluate(() => {
    window.__trap = [];
    Object.defineProperty(window, "__pwned", {
      configurable: false,
      get: () => undefined,
      set: (v) => window.__trap.push(String(v)),
    });
    window.alert = window.confirm = window.prompt = (m) => window.__trap.push(`dialog ${m}`);
  });
  await page.locator("#q").fill("Invoice");
  await page.keyboard.press("Enter");
  const bad = page.locator("#items tbody tr", { hasText: hostileSubject }).first();
  await bad.waitFor();
  const cell = bad.locator("td").nth(1);
  check((await cell.textContent()) === hostileSubject, `the subject is text: ${await cell.textContent()}`);
  check((await cell.locator("*").count()) === 0, "no element made of the subject");
  await bad.getByRole("button", { name: /Preview/ }).click();
  await page.locator("#preview").waitFor({ state: "visible" });
  check((await page.locator("#preview-headers dd").first().textContent()) === hostileSubject, "the preview's subject is text");
  const frame = page.locator("#preview-html");
  check((await frame.getAttribute("sandbox")) === "", "the body's frame is sandboxed without scripts");
  const srcdoc = (await frame.getAttribute("srcdoc")) || "";
  check(!/<script|onerror|onload|onclick|javascript:|evil\.example|<iframe|<svg/i.test(srcdoc), `the body is clean: ${srcdoc}`);
  const body = page.frameLocator("#preview-html");
  await body.getByText("Please pay").waitFor();
  await body.getByText("pay here").click({ timeout: 2000 }).catch(() => {});
  await body.getByText("x", { exact: true }).click({ timeout: 2000 }).catch(() => {});
  const link = page.locator("#preview-attachments a").first();
  check((await link.textContent()) === attachment, "the attachment's name is text");
  check((await link.getAttribute("href")).startsWith("/api/v1/preview/attachment?"), "the attachment is a download");
  await page.waitForTimeout(500);
  const trapped = await page.evaluate(() => window.__trap);
  check(trapped.length === 0, `the hostile message ran in the page: ${JSON.stringify(trapped)}`);
  for (const f of page.frames()) {
    const v = await f.evaluate(() => window.__pwned).catch(() => undefined);
    check(v === undefined, `the hostile message ran in a frame (${f.url()}): ${v}`);
  }
  check((await page.locator("#error").isHidden()) === true, `no error shown: ${await page.locator("#error").textContent()}`);

  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 392, `the page fits a phone: ${wide}px wide`);
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
  if (page) {
    const text = await page.locator("main").innerText().catch(() => "");
    problems.push(`the page at ${page.url()} said:\n${text}`);
  }
} finally {
  await browser.close();
}

if (problems.length) {
  for (const p of problems) console.error(`not ok: ${p}`);
  process.exit(1);
}
console.log("ok: signed in, restored, refused another mailbox, previewed safely");
