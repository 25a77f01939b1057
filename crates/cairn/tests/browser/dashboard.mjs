// The operator's dashboard in headless Chromium, at phone width and by keyboard: the job is
// listed (never run), "Run now" starts it, and its run appears with its status.
//
// Run by crates/cairn-server/tests/portal_dashboard.rs:
//   CAIRN_URL=http://127.0.0.1:PORT CAIRN_TOKEN=cairn_… CAIRN_JOB=nightly node dashboard.mjs
// CHROMIUM names the browser (default /usr/bin/chromium).

import { chromium } from "playwright-core";

const url = process.env.CAIRN_URL;
const token = process.env.CAIRN_TOKEN;
const job = process.env.CAIRN_JOB;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const origin = new URL(url).origin;

const problems = [];
const check = (ok, what) => {
  if (!ok) problems.push(what);
};

const browser = await chromium.launch({ executablePath, chromiumSandbox: false, headless: true });
try {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    extraHTTPHeaders: { Authorization: `Bearer ${token}` },
  });
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith("data:") || u.startsWith("about:")) return route.continue();
    problems.push(`a request to another origin: ${u}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("dialog", (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/401|404/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });

  await page.goto(url);
  await page.locator("#dashboard").waitFor({ state: "visible" });
  const row = page.locator(`#jobs tbody tr[data-job="${job}"]`);
  await row.waitFor();
  check((await row.locator("td").first().textContent()).includes(job), "the job's name is shown");
  check(/never run/.test(await row.locator(".last-run").textContent()), "the job has not run yet");

  // Run now, by keyboard.
  const run = row.getByRole("button", { name: `Run ${job} now` });
  await run.focus();
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    (name) => {
      const cell = document.querySelector(`#jobs tr[data-job="${name}"] .last-run`);
      return cell && /succeeded|partial|failed/.test(cell.textContent);
    },
    job,
    { timeout: 120000 },
  );
  const last = await row.locator(".last-run").textContent();
  check(/succeeded/.test(last), `the run succeeded: ${last}`);
  check((await row.locator(".failed").textContent()) === "0", "no failures counted");
  await page.waitForFunction(() => /: (succeeded|partial|failed)/.test(document.getElementById("jobs-status").textContent), null, {
    timeout: 30000,
  });
  check(/None\./.test(await page.locator("#failures").textContent()), "no failures listed");

  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 392, `the page fits a phone: ${wide}px wide`);
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
} finally {
  await browser.close();
}

if (problems.length) {
  for (const p of problems) console.error(`not ok: ${p}`);
  process.exit(1);
}
console.log("ok: the dashboard runs a job and shows its run");
