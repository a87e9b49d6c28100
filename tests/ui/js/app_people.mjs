// (c) `Search people` finds a person by EMAIL; their history shows CHANGE from a
// webhook.
import { need, check, run, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, context, step }) => {
  const app = new URL(need('APP_URL'));
  await context.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await page.goto(app.href);
  await page.getByRole('link', { name: 'People' }).click();
  const search = page.getByRole('searchbox', { name: 'Search people' });
  await search.waitFor();
  await step('1-people');
  const email = need('EMAIL');
  await search.fill(email);
  await search.press('Enter');
  await page.waitForURL(/query=/);
  const rows = page.locator('table.people tbody tr');
  const count = await rows.count();
  check(count === 1, `one person matches ${email}, not ${count}`);
  check((await rows.first().innerText()).includes(email), 'the row shows the email');
  await step('2-found');
  await rows.first().getByRole('link').click();
  await page.getByRole('heading', { name: 'History' }).waitFor();
  await step('3-history');
  const history = page.getByRole('table', { name: /Every change the sync made/ });
  const entries = await history.locator('tbody tr').allInnerTexts();
  const change = need('CHANGE');
  const webhook = entries.find((text) => text.includes('Webhook') && text.includes(change));
  check(webhook, `the history shows "${change}" from a webhook; it shows:\n${entries.join('\n')}`);
  report({ rows: count, entry: webhook });
});
