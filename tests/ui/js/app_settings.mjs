// (a) Settings: `Invite new joiners` → `Days before their start date`, `Days before` 7,
// `Save` → the preview lists each future joiner's invitation → `Confirm` → the People
// table shows each future joiner's invitation date. JOINERS: [{email, name, scheduled,
// invitation}] from the Rust side.
import { need, check, run, report } from './lib.mjs';

const name = need('UI_TEST');
const joiners = JSON.parse(need('JOINERS'));
await run(name, async ({ page, context, step }) => {
  const app = new URL(need('APP_URL'));
  await context.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await page.goto(app.href);
  await page.getByRole('link', { name: 'Settings' }).click();
  const invite = page.getByLabel('Invite new joiners');
  await invite.waitFor();
  check(await page.getByLabel('Days before').isHidden(), '`Days before` is hidden unless its option is chosen');
  await step('1-settings');
  const options = await invite.locator('option').allInnerTexts();
  check(JSON.stringify(options) === JSON.stringify(['Immediately', 'On their start date', 'Days before their start date', 'Manually']), `the options: ${options}`);
  await invite.selectOption({ label: 'Days before their start date' });
  const days = page.getByLabel('Days before');
  await days.waitFor({ state: 'visible' });
  await days.fill('7');
  await step('2-days-before');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Preview of your change' }).waitFor({ timeout: 60_000 });
  await step('3-preview');
  const invited = page.getByRole('table', { name: 'People who would be invited, and when' });
  const rows = await invited.locator('tbody tr').allInnerTexts();
  for (const joiner of joiners) {
    const row = rows.find((text) => text.includes(joiner.email));
    check(row, `the preview lists ${joiner.email} among the invitations`);
    if (joiner.scheduled) {
      const day = joiner.invitation.replace('Scheduled for ', '');
      check(row.includes(`On ${day}`), `the preview says ${joiner.email} is invited on ${day}: ${row}`);
    } else {
      check(row.includes('Now'), `the preview invites ${joiner.email} now: ${row}`);
    }
  }
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await step('4-confirmed');
  // The confirmed change restarts the tenant, which reconciles; People shows the days.
  let checked = 0;
  for (const joiner of joiners) {
    const deadline = Date.now() + 90_000;
    for (;;) {
      await page.goto(new URL(`people?query=${encodeURIComponent(joiner.email)}`, app).href);
      const text = await page.locator('table.people tbody').innerText().catch(() => '');
      if (text.includes(joiner.invitation)) break;
      check(Date.now() < deadline, `People shows "${joiner.invitation}" for ${joiner.email}; it shows: ${text}`);
      await page.waitForTimeout(300);
    }
    checked += 1;
  }
  await page.getByRole('link', { name: 'People' }).click();
  await page.getByLabel('Search people').waitFor();
  await step('5-people');
  report({ checked });
});
