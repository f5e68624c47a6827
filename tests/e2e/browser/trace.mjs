// Drives the dashboard's Trace tab in headless Chromium (D63): looks an event up by its id and by
// its correlation id and reads the timeline table and state; an unknown id shows the 404 text.
// The lineage hashes are seeded by the caller (test_web_ui.sh). Screenshot in ARTIFACT_DIR.
// Usage: node trace.mjs BASE_URL API_KEY ARTIFACT_DIR EVENT_ID CORRELATION_ID
import { chromium } from "playwright-core";
import fs from "node:fs";

const [base, key, artifacts, eventId, cid] = process.argv.slice(2);
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

async function lookUp(id) {
  await page.fill("#trace-form input[name=id]", id);
  await page.click("#trace-form button[type=submit]");
}

await step("logs in and opens the Trace tab", async () => {
  await page.goto(base + "/");
  await page.waitForSelector("#login.show", { timeout: 5000 });
  await page.fill("#login-form input[name=key]", key);
  await page.click("#login-form button[type=submit]");
  await page.click("#tabs button[data-tab=trace]");
  await page.waitForSelector("#trace.active #trace-form", { timeout: 5000 });
});

await step("an event id shows its timeline and state", async () => {
  await lookUp(eventId);
  await page.waitForSelector(`.trace-event[data-event-id="${eventId}"] .trace-timeline tbody tr`, { timeout: 5000 });
  const rows = await page.locator(".trace-timeline tbody tr").allTextContents();
  check(rows.length === 3, "rows: " + rows.length);
  check(/ingest\s*accepted/.test(rows[0]) && /pod=browser-pod/.test(rows[0]), "row 1: " + rows[0]);
  check(/alert\s*handled/.test(rows[1]) && /team=NetOps/.test(rows[1]), "row 2: " + rows[1]);
  check(/forward\s*delivered/.test(rows[2]) && /status=200/.test(rows[2]), "row 3: " + rows[2]);
  check((await page.textContent(".trace-state")) === "delivered", "state");
  await page.screenshot({ path: artifacts + "/trace.png", fullPage: true });
});

await step("a correlation id shows its events", async () => {
  await lookUp(cid);
  await page.waitForFunction(() => document.querySelectorAll(".trace-event").length === 2, null, { timeout: 5000 });
  const states = await page.locator(".trace-state").allTextContents();
  check(states.join(",") === "delivered,unhandled", "states: " + states.join(","));
});

await step("an unknown id says so", async () => {
  await lookUp("no-such-event");
  await page.waitForSelector("#trace-error", { timeout: 5000 });
  check((await page.textContent("#trace-error")).includes("unknown or expired event"), "error text");
});

await step("no page errors", async () => { check(errors.length === 0, errors.join("; ")); });

await browser.close();
process.exit(failures ? 1 : 0);
