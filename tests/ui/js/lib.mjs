// Shared by the browser tests: launches Debian's Chromium through playwright-core,
// takes each step's screenshots (desktop and 360 px wide) and checks each page with
// axe-core. Inputs come from environment variables set by tests/ui/main.rs.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

/** An environment variable the Rust side must set. */
export function need(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is not set`);
  return value;
}

/** Fails the script with `message` unless `condition` holds. */
export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Starts Chromium and a page; `step(name)` screenshots and checks the current page. */
export async function start(testName) {
  const shots = need('UI_SHOT_DIR');
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // bypassCSP: the pages allow no script, but axe-core is injected to check them.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const problems = [];
  async function step(name, { axe = true } = {}) {
    await page.waitForLoadState('load');
    const base = path.join(shots, `${testName}-${name}`);
    await page.screenshot({ path: `${base}.png`, fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
    await page.screenshot({ path: `${base}-360.png`, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    if (overflow) problems.push(`${name}: the page scrolls sideways at 360 px`);
    await page.setViewportSize({ width: 1280, height: 900 });
    if (axe) {
      await page.addScriptTag({ path: AXE });
      // Every rule is on: the overview's self-refresh while a sync runs sits inside
      // <noscript>, so a browser with JavaScript polls instead of reloading.
      const result = await page.evaluate(async () => await window.axe.run(document, {
        resultTypes: ['violations'],
      }));
      for (const violation of result.violations) {
        if (violation.impact === 'serious' || violation.impact === 'critical') {
          problems.push(`${name}: axe ${violation.id} (${violation.impact}): ${violation.help} — ${violation.nodes.map((n) => n.target.join(' ')).join(', ')}`);
        }
      }
    }
    console.log(`step ${name}: ${page.url().replace(/\/connect\/[^/?#]{20,}/, '/connect/<token>')}`);
  }
  async function finish() {
    await browser.close();
    check(problems.length === 0, `accessibility or layout problems:\n  ${problems.join('\n  ')}`);
  }
  return { browser, context, page, step, finish };
}

/** Runs `body` and exits non-zero with its error (and closes the browser). */
export async function run(testName, body) {
  let ui;
  try {
    ui = await start(testName);
    await body(ui);
    await ui.finish();
  } catch (error) {
    console.error(`${testName} failed: ${error && error.stack ? error.stack : error}`);
    if (ui) {
      try {
        await ui.page.screenshot({ path: path.join(need('UI_SHOT_DIR'), `${testName}-failure.png`), fullPage: true });
      } catch { /* the browser may be gone */ }
      await ui.browser.close().catch(() => {});
    }
    process.exit(1);
  }
}

/** Waits until the page (which reloads itself while syncing) shows `text`. */
export async function waitForText(page, text, timeoutMs) {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Prints a result line the Rust side reads. */
export function report(values) {
  console.log(`RESULT ${JSON.stringify(values)}`);
}
