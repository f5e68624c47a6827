// Drives the embedded dashboard in headless Chromium (Debian's /usr/bin/chromium, no browser
// download): logs in with the key once, checks the overview, creates a rule and finds it in the
// rules table and the audit viewer, searches the audit (q=), builds the report, places and lifts
// a legal hold, changes a config value with a reason, creates and ends a maintenance window, and renders at
// 1280x800 and at phone width. Screenshots go to tests/e2e/artifacts/.
// Usage: node dashboard.mjs BASE_URL API_KEY ARTIFACT_DIR
import { chromium } from "playwright-core";
import fs from "node:fs";

const [base, key, artifacts] = process.argv.slice(2);
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
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
const rule = "browser-rule-" + Date.now();

await step("asks for the key once and keeps it for the tab", async () => {
  await page.goto(base + "/");
  await page.waitForSelector("#login.show", { timeout: 5000 });
  await page.fill("#login-form input[name=key]", key);
  await page.click("#login-form button[type=submit]");
  await page.waitForFunction(() => !document.getElementById("login").classList.contains("show"));
  check(await page.evaluate(() => sessionStorage.getItem("mutt_api_key")) === key, "key not in sessionStorage");
});

await step("overview shows rates, 24 h chart and depths", async () => {
  await page.waitForFunction(() => /^[0-9.]+$/.test(document.getElementById("m-cur").textContent), null, { timeout: 5000 });
  const points = await page.locator("#chart circle").count();
  check(points === 24, "chart has " + points + " points");
  check(/^[0-9]+$/.test(await page.textContent("#q-ingest")), "ingest depth missing");
  await page.screenshot({ path: artifacts + "/dashboard-1280x800.png", fullPage: true });
});

await step("Test shows the dry-run counts and examples before Save", async () => {
  await page.click("#tabs button[data-tab=rules]");
  await page.fill("#rule-form input[name=match_string]", "browser-sample");
  await page.fill("#rule-form input[name=team_assignment]", "BrowserTeam");
  await page.click("#rule-test");
  await page.waitForSelector("#rule-test-result:not([hidden])", { timeout: 5000 });
  check(await page.textContent("#dr-examined") === "3", "examined " + await page.textContent("#dr-examined"));
  check(await page.textContent("#dr-would") === "2", "would match " + await page.textContent("#dr-would"));
  check(await page.textContent("#dr-unhandled") === "2", "unhandled now handled " + await page.textContent("#dr-unhandled"));
  const rows = await page.locator("#dr-examples tbody tr").count();
  check(rows === 2, "examples: " + rows + " rows");
  check((await page.textContent("#dr-examples tbody")).includes("browser-sample one"), "example event missing");
  const saved = await page.evaluate(async (k) => (await fetch("/api/v2/rules", { headers: { "X-API-KEY": k } })).json(), key);
  check(saved.rules.length === 0, "Test saved a rule");
  await page.screenshot({ path: artifacts + "/rule-test.png", fullPage: true });
});

await step("creates a rule and sees it in the table", async () => {
  await page.click("#tabs button[data-tab=rules]");
  await page.fill("#rule-form input[name=match_string]", rule);
  await page.fill("#rule-form input[name=team_assignment]", "BrowserTeam");
  await page.fill("#rule-form input[name=reason]", "browser test");
  await page.click("#rule-save");
  await page.waitForSelector(`#rules-table td:text-is("${rule}")`, { timeout: 5000 });
  await page.screenshot({ path: artifacts + "/rules.png", fullPage: true });
});

await step("deactivates the rule from the table", async () => {
  page.once("dialog", (d) => d.accept("browser deactivate"));
  const row = page.locator("#rules-table tr", { has: page.locator(`td:text-is("${rule}")`) });
  await row.locator("button", { hasText: "Deactivate" }).click();
  await page.waitForFunction((r) => [...document.querySelectorAll("#rules-table tr.inactive td")].some((td) => td.textContent === r), rule, { timeout: 5000 });
});

await step("the rule's CREATE shows in the audit viewer", async () => {
  await page.goto(base + "/audit");
  await page.selectOption("#filters select[name=table_name]", "alert_rules");
  await page.selectOption("#filters select[name=operation]", "CREATE");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#audit-table tbody tr").length > 0, null, { timeout: 5000 });
  const txt = await page.textContent("#audit-table tbody");
  check(txt.includes("browser test"), "reason of the CREATE not listed");
  await page.screenshot({ path: artifacts + "/audit.png", fullPage: true });
});

await step("audit page: search, report and a legal hold placed and lifted", async () => {
  await page.goto(base + "/audit");
  await page.fill("#filters input[name=q]", "browser");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#audit-table tbody tr").length > 0, null, { timeout: 5000 });
  check((await page.textContent("#audit-table tbody")).includes("browser test"), "q= search did not find the rule's reason");
  await page.click("#report-form button[type=submit]");
  await page.waitForFunction(() => /changes from/.test(document.getElementById("report-total").textContent), null, { timeout: 5000 });
  check((await page.textContent('#report-sections [data-section="by_table"]')).includes("alert_rules"), "report has no alert_rules");
  const reason = "browser hold " + Date.now();
  await page.selectOption("#hold-form select[name=table]", "event_audit_log");
  await page.fill("#hold-form input[name=from]", "2020-01-01");
  await page.fill("#hold-form input[name=to]", "2020-01-31");
  await page.fill("#hold-form input[name=reason]", reason);
  await page.click("#hold-save");
  const row = page.locator("#holds-table tr", { has: page.locator(`td:text-is("${reason}")`) });
  await row.waitFor({ timeout: 5000 });
  await page.screenshot({ path: artifacts + "/audit-holds.png", fullPage: true });
  page.once("dialog", (d) => d.accept("browser lift"));
  await row.locator("button", { hasText: "Lift" }).click();
  await row.waitFor({ state: "detached", timeout: 5000 });
});

await step("changes a config value with a reason", async () => {
  await page.goto(base + "/");
  await page.click("#tabs button[data-tab=config]");
  const row = page.locator('#config-table tr[data-key="unhandled_threshold"]');
  await row.waitFor({ timeout: 5000 });
  await row.locator("input").nth(0).fill("77");
  await row.locator("input").nth(1).fill("browser tuning");
  await row.locator("button").click();
  await page.waitForFunction(() => { const r = document.querySelector('#config-table tr[data-key="unhandled_threshold"]'); return r && r.children[1].textContent === "77"; }, null, { timeout: 5000 });
  const res = await page.evaluate(async (k) => (await fetch("/api/v2/config/unhandled_threshold", { headers: { "X-API-KEY": k } })).json(), key);
  check(res.value === "77" && res.source === "redis", "value not stored: " + JSON.stringify(res));
  await page.screenshot({ path: artifacts + "/config.png", fullPage: true });
});

await step("creates a maintenance window and ends it", async () => {
  await page.click("#tabs button[data-tab=maint]");
  await page.fill("#maint-form input[name=hostname_pattern]", "browser-*");
  await page.fill("#maint-form input[name=reason]", "browser maintenance");
  await page.click("#maint-save");
  const row = page.locator("#maint-table tr", { has: page.locator('td:text-is("browser-*")') });
  await row.waitFor({ timeout: 5000 });
  check((await row.locator("td").nth(1).textContent()) === "active", "the new window is not active");
  page.once("dialog", (d) => d.accept("browser end"));
  await row.locator("button", { hasText: "End now" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("#maint-table tr")].some((tr) =>
    tr.children[2] && tr.children[2].textContent === "browser-*" && tr.children[1].textContent === "ended"), null, { timeout: 5000 });
  await page.screenshot({ path: artifacts + "/maintenance.png", fullPage: true });
});

await step("renders at phone width without horizontal page scroll", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#tabs button[data-tab=overview]");
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, "page is " + overflow + " px wider than the phone");
  await page.screenshot({ path: artifacts + "/dashboard-phone.png", fullPage: true });
});

// every tab's section is its own child of <main> (a section left open nests the next tab inside
// it, hidden whenever its parent is)
await step("each tab has its own top-level section", async () => {
  const r = await page.evaluate(() => {
    const tabs = [...document.querySelectorAll("#tabs button[data-tab]")].map((b) => b.dataset.tab);
    return tabs.filter((t) => { const s = document.getElementById(t); return !s || s.parentElement.tagName !== "MAIN"; });
  });
  check(r.length === 0, "tabs without a top-level section: " + r.join(", "));
});

await step("no JavaScript errors", async () => { check(consoleErrors.length === 0, consoleErrors.join(" | ")); });

await browser.close();
console.log(failures ? failures + " browser step(s) failed" : "browser test passed");
process.exit(failures ? 1 : 0);
