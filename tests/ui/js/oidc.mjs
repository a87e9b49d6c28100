// "Sign in with Personio": invitation link → connect page → the simulator's login and
// consent → back on the service. EXPECT=connected waits for the initial sync to finish
// on the overview; EXPECT=refused expects the connect page to show EXPECT_TEXT.
import { need, check, run, waitForText, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, step }) => {
  await page.goto(need('INVITE_URL'));
  check(new URL(page.url()).pathname === '/connect', `the invitation leads to /connect, not ${page.url()}`);
  await step('1-connect');
  await page.getByRole('button', { name: 'Sign in with Personio' }).click();
  await page.getByLabel('Email').waitFor();
  await step('2-provider-login', { axe: false });
  await page.getByLabel('Email').fill(need('LOGIN_EMAIL'));
  await page.getByLabel('Password').fill(need('LOGIN_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await step('3-provider-consent', { axe: false });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => !url.href.startsWith(need('PROVIDER_BASE')), { timeout: 30_000 });
  if (process.env.EXPECT === 'refused') {
    await page.getByRole('alert').waitFor();
    await step('4-refused');
    const alert = await page.getByRole('alert').innerText();
    for (const text of need('EXPECT_TEXT').split('|')) {
      check(alert.includes(text), `the page says "${text}"; it says: ${alert}`);
    }
    check(new URL(page.url()).pathname.startsWith('/connect'), `still on the connect pages: ${page.url()}`);
    report({ alert });
    return;
  }
  await page.getByText('Connected', { exact: true }).first().waitFor();
  await step('4-connected');
  await waitForText(page, 'Everything is up to date', 180_000);
  await step('5-synced');
  const linked = await page.locator('dt:text-is("People linked") + dd').innerText();
  const created = await page.locator('dt:text-is("Created") + dd').innerText();
  const connection = await page.locator('dt:text-is("Personio") + dd').innerText();
  // The invitation link, opened again once connected, leads to the overview.
  await page.goto(need('INVITE_URL'));
  check(new URL(page.url()).pathname.startsWith('/app/'), `a used link leads to the overview, not ${page.url()}`);
  await step('6-link-again');
  report({ linked: Number(linked), created: Number(created), connection });
});
