// The restore portal in headless Chromium, at phone width and by keyboard: find a hostile
// message, preview it (nothing of it runs, nothing remote loads), restore it to a folder
// beside the original and follow the task to its report.
//
// Run by crates/cairn-server/tests/preview.rs:
//   CAIRN_URL=http://127.0.0.1:PORT CAIRN_TOKEN=cairn_… CAIRN_SUBJECT=… CAIRN_ATTACHMENT=… \
//   node portal.mjs
// CHROMIUM names the browser (default /usr/bin/chromium); CAIRN_SCREENSHOT a PNG to write.

import { chromium } from "playwright-core";

const url = process.env.CAIRN_URL;
const token = process.env.CAIRN_TOKEN;
const subject = process.env.CAIRN_SUBJECT;
const attachment = process.env.CAIRN_ATTACHMENT;
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
  // Nothing leaves for another origin: remote images, trackers, CDNs.
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin) || u.startsWith("data:") || u.startsWith("about:")) return route.continue();
    problems.push(`a request to another origin: ${u}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("dialog", (d) => {
    problems.push(`a dialog opened (script ran): ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/401|404/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });

  await page.goto(url);
  await page.locator("#points button").first().waitFor();
  await page.locator("#items tbody tr").first().waitFor();

  // Search by keyboard.
  await page.locator("#q").focus();
  await page.keyboard.type("Invoice");
  await page.keyboard.press("Enter");
  const row = page.locator("#items tbody tr", { hasText: "Invoice" }).first();
  await row.waitFor();
  const cell = row.locator("td").nth(1);
  check((await cell.textContent()) === subject, `the subject is shown as text: ${await cell.textContent()}`);
  check((await cell.locator("*").count()) === 0, "no element made of the subject");

  // Preview by keyboard.
  await row.getByRole("button", { name: /Preview/ }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#preview").waitFor({ state: "visible" });
  const shown = await page.locator("#preview-headers dd").first().textContent();
  check(shown === subject, `the preview's subject as text: ${shown}`);
  const frame = page.locator("#preview-html");
  check((await frame.getAttribute("sandbox")) === "", "the body's frame is sandboxed without scripts");
  const srcdoc = (await frame.getAttribute("srcdoc")) || "";
  check(srcdoc.includes("Please pay"), `the body is shown: ${srcdoc}`);
  check(!/<script|onerror|onload|javascript:|evil\.example/i.test(srcdoc), `the body is clean: ${srcdoc}`);
  await page.frameLocator("#preview-html").getByText("Please pay").waitFor();
  const link = page.locator("#preview-attachments a").first();
  check((await link.textContent()) === attachment, "the attachment's name as text");
  check((await link.getAttribute("href")).startsWith("/api/v1/preview/attachment?"), "the attachment is a download");
  check(!(await page.locator("#preview-blocked").isHidden()), "blocked remote images are told");

  // Restore beside the original, and follow it.
  await row.locator("input[type=checkbox]").check();
  await page.locator("input[name=to][value=folder]").check();
  await page.locator("#restore").click();
  const status = page.locator("#task-status");
  await page.waitForFunction(
    () => /succeeded|partial|failed/.test(document.getElementById("task-status").textContent),
    null,
    { timeout: 60000 },
  );
  const text = await status.textContent();
  check(/succeeded/.test(text), `the restore succeeded: ${text}`);
  check((await page.locator("#task-report dt").count()) > 0, "the report is shown");

  // Phone width: nothing wider than the screen.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 392, `the page fits a phone: ${wide}px wide`);

  if (process.env.CAIRN_SCREENSHOT) await page.screenshot({ path: process.env.CAIRN_SCREENSHOT, fullPage: true });
  await page.waitForTimeout(300);
} catch (e) {
  problems.push(`failed: ${e.stack || e}`);
} finally {
  await browser.close();
}

if (problems.length) {
  for (const p of problems) console.error(`not ok: ${p}`);
  process.exit(1);
}
console.log("ok: the portal previews safely and restores");
