// A restore operator in headless Chromium, at phone width: picks another user's restore
// point, opens their OneDrive, selects one folder and restores it into a third user's
// OneDrive; the task succeeds and its report is shown.
//
// Run by crates/cairn-server/tests/portal_dashboard.rs:
//   CAIRN_URL=http://127.0.0.1:PORT CAIRN_TOKEN=cairn_… CAIRN_FROM=UPN CAIRN_FOLDER=NAME
//   CAIRN_TO=UPN node operator.mjs
// CHROMIUM names the browser (default /usr/bin/chromium).

import { chromium } from "playwright-core";

const url = process.env.CAIRN_URL;
const token = process.env.CAIRN_TOKEN;
const from = process.env.CAIRN_FROM;
const folder = process.env.CAIRN_FOLDER;
const to = process.env.CAIRN_TO;
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
  await page.locator("#points button").first().waitFor();
  const option = await page.locator("#resource option", { hasText: from }).first().getAttribute("value");
  await page.locator("#resource").selectOption(option);
  await page.locator("#crumbs", { hasText: "Restore point" }).waitFor();
  await page.locator("#folders button", { hasText: /^onedrive / }).click();
  await page.locator("#crumbs [aria-current=location]", { hasText: "onedrive" }).waitFor();
  const box = page.getByRole("checkbox", { name: `Select folder ${folder}`, exact: true });
  await box.check();
  check(/1 selected/.test(await page.locator("#selection").textContent()), "the folder is selected");

  // Another user, by keyboard.
  const choice = page.locator("input[name=to][value=user]");
  check(await choice.isVisible(), "an operator is offered another user as the destination");
  await choice.focus();
  await page.keyboard.press("Space");
  await page.locator("#to-user").fill(to);
  await page.locator("#restore").click();
  const status = page.locator("#task-status");
  await page.waitForFunction(() => /: (succeeded|partial|failed)/.test(document.getElementById("task-status").textContent), null, {
    timeout: 120000,
  });
  const text = await status.textContent();
  check(/succeeded/.test(text), `the restore succeeded: ${text}`);
  check((await page.locator("#task-report dt").count()) > 0, "the report is shown");
  check(await page.locator("#error").isHidden(), `no error: ${await page.locator("#error").textContent()}`);

  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  const over = await page.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > 392)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
  );
  check(wide <= 392, `the page fits a phone: ${wide}px wide (${over.join(", ")})`);
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
} finally {
  await browser.close();
}

if (problems.length) {
  for (const p of problems) console.error(`not ok: ${p}`);
  process.exit(1);
}
console.log("ok: an operator restored a folder into another user's OneDrive");
