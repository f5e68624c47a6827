// The dashboard's Changes tab (issue 17) in headless Chromium: logs in as an approver, finds the
// pending change request another user filed, approves it through the tab (answering the reason
// prompt) and sees it leave the pending list and appear as approved. Screenshot in ARTIFACT_DIR.
// Usage: node changes.mjs BASE_URL APPROVER_KEY CHANGE_ID ARTIFACT_DIR
import { chromium } from "playwright-core";
import fs from "node:fs";

const [base, key, id, artifacts] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
fs.mkdirSync(artifacts, { recursive: true });

let failures = 0;
async function step(name, fn) {
  try {
    await fn();
    console.log("ok   " + name);
  } catch (e) {
    failures++;
    console.log("FAIL " + name + ": " + (e && e.message ? e.message.split("\n")[0] : e));
  }
}
function check(cond, msg) { if (!cond) throw new Error(msg); }

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("dialog", (d) => d.accept("approved in the browser"));

await step("logs in and opens the Changes tab with the pending request", async () => {
  await page.goto(base + "/");
  await page.waitForSelector("#login.show", { timeout: 5000 });
  await page.fill("#login-form input[name=key]", key);
  await page.click("#login-form button[type=submit]");
  await page.click("#tabs button[data-tab=changes]");
  await page.waitForSelector(`#changes-table tr[data-id="${id}"]`, { timeout: 5000 });
  const row = await page.textContent(`#changes-table tr[data-id="${id}"]`);
  check(row.includes("pending") && row.includes("webui_api:alice") && row.includes("/config/moog_rate_limit"),
    "row does not show the request: " + row);
  await page.screenshot({ path: artifacts + "/changes.png", fullPage: true });
});

await step("approves it from the tab", async () => {
  await page.click(`#changes-table tr[data-id="${id}"] button:text-is("Approve")`);
  await page.waitForFunction((i) => !document.querySelector(`#changes-table tr[data-id="${i}"]`), id, { timeout: 5000 });
  await page.selectOption("#changes-status", "approved");
  await page.waitForSelector(`#changes-table tr[data-id="${id}"]`, { timeout: 5000 });
  const row = await page.textContent(`#changes-table tr[data-id="${id}"]`);
  check(row.includes("approved") && row.includes("webui_api:bob"), "row after approval: " + row);
});

await step("no script errors", async () => { check(errors.length === 0, errors.join("; ")); });
await browser.close();
process.exit(failures ? 1 : 0);
