// The app layout of a connected tenant: header, navigation, overview; another
// tenant's pages refused.
import { need, check, run, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, context, step }) => {
  const app = new URL(need('APP_URL'));
  await context.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await page.goto(app.href);
  await page.getByText('Connected', { exact: true }).waitFor();
  for (const link of ['Overview', 'Settings', 'People']) {
    check(await page.getByRole('link', { name: link }).count() === 1, `a ${link} link`);
  }
  check(await page.getByRole('main').count() === 1, 'a main landmark');
  await step('1-overview');
  const tenant = await page.locator('header .tenant').innerText();
  check(tenant === 'acme', `the header names the tenant, not ${tenant}`);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await step('2-focus', { axe: false });
  const other = await page.goto(need('OTHER_URL'));
  check(other.status() === 403, `another tenant's pages are refused, not ${other.status()}`);
  await step('3-other-tenant');
  report({ cookies: (await context.cookies()).map((cookie) => cookie.name) });
});
