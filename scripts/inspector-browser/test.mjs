// The memory inspector page (namm serve's /) in headless Chromium, driven
// by Playwright: runs a prompt under the full cache and StreamingLLM side
// by side, waits for both streams to end, and checks that the layers x
// tokens grid shows no evicted token for the full cache and some for
// StreamingLLM, as many as the server's own summary counts; then moves
// over the grid with the keyboard and saves a screenshot.
//
// usage: node test.mjs URL OUT_DIR [API_KEY]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outDir, apiKey] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node test.mjs URL OUT_DIR [API_KEY]");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "namm-inspector-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name}: ${detail}`); }
}

try {
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on("pageerror", e => errors.push(e.message));
  page.on("console", m => {
    // Without the key the page's first request is refused, as it should be.
    if (m.type() === "error" && !(apiKey && /status of 401/.test(m.text()))) errors.push(m.text());
  });
  await page.goto(url, { waitUntil: "load" });
  if (apiKey) {
    await page.locator("#api-key-box").waitFor({ state: "visible", timeout: 10000 });
    await page.fill("#api-key", apiKey);
    await page.click("#run"); // loads the policies with the key (the prompt runs too)
    await page.waitForFunction(() => document.body.dataset.runs === "1", null, { timeout: 60000 });
  }
  await page.waitForFunction(() => document.querySelectorAll("#policy-a .p-name option").length > 1, null, { timeout: 10000 });
  const names = await page.$$eval("#policy-a .p-name option", os => os.map(o => o.value));
  check("the policy selector lists every policy and the server's default", ["", "full", "h2o", "namm", "streaming", "tova", "snapkv"].every(n => names.includes(n)), names.join(","));

  await page.selectOption("#policy-a .p-name", "full");
  await page.fill("#policy-a .p-budget", "");
  await page.selectOption("#policy-b .p-name", "streaming");
  await page.fill("#policy-b .p-budget", "16");
  await page.fill("#max-tokens", "12");
  const before = await page.evaluate(() => document.body.dataset.runs || "0");
  // Run from the keyboard: Ctrl+Enter in the prompt.
  await page.focus("#prompt");
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(b => (document.body.dataset.runs || "0") !== b, before, { timeout: 60000 });

  const panels = await page.$$eval(".panel", ps => ps.map(p => ({
    state: p.dataset.state,
    title: p.querySelector(".p-title").textContent,
    answer: p.querySelector(".p-answer").textContent,
    evicted: Number(p.querySelector(".p-grid").dataset.evicted),
    kept: Number(p.querySelector(".p-grid").dataset.kept),
    layers: Number(p.querySelector(".p-grid").dataset.layers),
    positions: Number(p.querySelector(".p-grid").dataset.positions),
    summaryEvicted: Number(p.dataset.summaryEvicted),
    stats: p.querySelector(".p-stats").textContent,
    tokens: p.querySelectorAll(".p-tokens span").length,
    gone: p.querySelectorAll(".p-tokens span.gone").length,
    lines: p.querySelectorAll(".p-plot polyline").length,
  })));
  check("two panels, both done", panels.length === 2 && panels.every(p => p.state === "done"), JSON.stringify(panels.map(p => p.state)));
  const [full, streaming] = panels;
  check("full cache: the grid shows no evicted token", full.evicted === 0 && full.kept === full.layers * full.positions && full.positions > 16,
    `evicted ${full.evicted}, kept ${full.kept}, ${full.layers} layers x ${full.positions} positions`);
  check("streaming: the grid shows evicted tokens", streaming.evicted > 0, `evicted ${streaming.evicted}`);
  check("streaming: the grid's evicted cells are the server's count", streaming.evicted === streaming.summaryEvicted,
    `grid ${streaming.evicted}, server ${streaming.summaryEvicted}`);
  check("streaming: 16 kept per layer at the end", streaming.kept === 16 * streaming.layers, `kept ${streaming.kept}`);
  check("streaming: tokens no layer keeps are struck out", streaming.gone > 0 && full.gone === 0, `${streaming.gone} / ${full.gone}`);
  check("answers streamed", panels.every(p => p.answer.length > 0), JSON.stringify(panels.map(p => p.answer)));
  check("KV figures against the full cache", /KV mean .* full/.test(streaming.stats) && /KV peak/.test(streaming.stats), streaming.stats);
  check("a KV line per layer and the full cache's", streaming.lines === streaming.layers + 1, `${streaming.lines} lines`);

  // The grid from the keyboard: focus it, move right.
  await page.focus(".panel:nth-child(2) .p-grid");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  const cell = await page.textContent(".panel:nth-child(2) .p-cell");
  check("the grid's cursor describes the cell", /layer 0 · position 5 .*evicted at step 0/.test(cell), cell);
  const marked = await page.$$eval(".panel:nth-child(2) .p-tokens span", ss => ss.findIndex(s => s.classList.contains("cur")));
  check("the grid's cursor marks its token", marked === 5, `token ${marked} marked`);
  check("no script errors", errors.length === 0, errors.join("; "));

  await page.screenshot({ path: join(outDir, "inspector.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(outDir, "inspector-1280x800.png") });
  console.log(`screenshots: ${join(outDir, "inspector.png")}, ${join(outDir, "inspector-1280x800.png")}`);
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack || e}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
