// (b) The overview of a tenant whose long initial sync runs: samples the progress
// bar's aria-valuenow until it reads 100 (the page stays open; its script moves it).
import { need, check, run, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, context, step }) => {
  const app = new URL(need('APP_URL'));
  await context.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await page.goto(app.href);
  const bar = page.getByRole('progressbar', { name: 'Sync progress' });
  await bar.waitFor({ timeout: 30_000 });
  const samples = [];
  let shot = false;
  const deadline = Date.now() + 240_000;
  for (;;) {
    const now = await bar.getAttribute('aria-valuenow', { timeout: 2_000 }).catch(() => null);
    if (now !== null) {
      const percent = Number(now);
      if (samples[samples.length - 1] !== percent) samples.push(percent);
      if (!shot && percent > 0 && percent < 100) {
        shot = true;
        await step('1-syncing', { axe: true });
      }
      if (percent === 100) break;
    }
    check(Date.now() < deadline, `the bar reached 100%; samples: ${samples}`);
    await page.waitForTimeout(40);
  }
  console.log(`samples: ${samples.join(' ')}`);
  // After a moment the page shows the finished sync's counts.
  await page.getByText('Everything is up to date').waitFor({ timeout: 30_000 });
  await step('2-finished');
  report({ samples });
});
