// (d) Every page at desktop and 360 px with axe-core: overview, settings (and with an
// invalid field), preview, people, history, connect, credentials, error pages.
import { need, check, run, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, context, browser, step }) => {
  const base = need('BASE_URL');
  const app = new URL(need('APP_URL'));
  const pages = [];
  const visit = async (label, url) => {
    const response = await page.goto(url);
    await step(label);
    pages.push({ label, status: response ? response.status() : null });
  };
  // Without a session: the connect pages and the session error.
  await visit('01-no-session', app.href);
  await visit('02-connect-unknown-link', `${base}/connect/0123456789abcdef0123456789abcdef`);
  await context.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  await visit('03-connect', `${base}/connect`);
  await visit('04-credentials', `${base}/connect/credentials`);
  await visit('05-overview', app.href);
  // Keyboard: the skip link, then the navigation, with a visible focus.
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  check(skip === 'Skip to content', `the first Tab reaches the skip link, not ${skip}`);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(outline !== 'none', 'the focused link shows an outline');
  await visit('06-settings', new URL('settings', app).href);
  // An invalid value: the form again, the field marked and described.
  await page.getByLabel('Invite new joiners').selectOption({ label: 'Days before their start date' });
  await page.getByLabel('Days before').fill('400');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('alert').first().waitFor();
  const days = page.getByLabel('Days before');
  check(await days.getAttribute('aria-invalid') === 'true', 'the invalid field is marked');
  const described = await days.getAttribute('aria-describedby');
  const message = await page.locator(`#${described}`).innerText();
  check(/0 to 365/.test(message), `the field says what is wrong: ${message}`);
  await step('07-settings-invalid');
  pages.push({ label: '07-settings-invalid' });
  // Advanced open, a time zone from the list.
  await page.getByText('Advanced').click();
  check(await page.locator('#timezones option[value="Europe/Berlin"]').count() === 1, 'the time zones are listed');
  await step('08-settings-advanced');
  pages.push({ label: '08-settings-advanced' });
  // The preview (not confirmed).
  await page.getByLabel('Days before').fill('7');
  await page.getByLabel('Invite new joiners').selectOption({ label: 'Immediately' });
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Preview of your change' }).waitFor({ timeout: 60_000 });
  await step('09-preview');
  pages.push({ label: '09-preview' });
  // A preview changed in the page is not applied.
  await page.locator('input[name="settings"]').evaluate((input) => { input.value = input.value.replace('immediately', 'on_hire_date'); });
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('This preview is no longer valid').waitFor();
  await step('09b-preview-tampered');
  pages.push({ label: '09b-preview-tampered' });
  // A change that invites and deactivates nobody is saved at once, without a preview.
  await page.getByText('Advanced').click();
  await page.getByLabel('Time zone').fill('Europe/Berlin');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor({ timeout: 60_000 });
  await visit('10-people', new URL('people', app).href);
  await visit('11-history', new URL(`people/${need('PERSON_ID')}`, app).href);
  await visit('12-person-not-found', new URL('people/999999999', app).href);
  await visit('13-page-not-found', new URL('no-such-page', app).href);
  await visit('14-other-tenant', `${base}/app/other/`);
  // A form posted with a wrong CSRF token.
  await page.goto(app.href);
  await page.locator('form[action$="/sync"] input[name="csrf"]').evaluate((input) => { input.value = 'forged'; });
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.getByRole('heading', { name: 'This form has expired' }).waitFor();
  await step('15-form-expired');
  pages.push({ label: '15-form-expired' });
  // Sync now with the right token: back on the overview.
  await page.goto(app.href);
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  check(page.url().startsWith(app.href), `Sync now returns to the overview, not ${page.url()}`);
  await step('16-sync-now');
  pages.push({ label: '16-sync-now' });
  // Another tenant's invitation link in this browser: asked first, nothing swapped.
  await visit('17-switch-tenant', need('OTHER_LINK'));
  await page.getByRole('button', { name: 'Continue with other' }).waitFor();
  check(await page.getByRole('link', { name: 'Stay with acme' }).isVisible(), 'the page offers to stay');
  // Without JavaScript the settings page shows `Days before` always, with its hint.
  const plain = await browser.newContext({ javaScriptEnabled: false });
  await plain.addCookies([{ name: 'psync_session', value: need('SESSION_ID'), domain: app.hostname, path: '/', httpOnly: true, sameSite: 'Lax' }]);
  const noScript = await plain.newPage();
  await noScript.goto(new URL('settings', app).href);
  check(await noScript.getByLabel('Days before').isVisible(), 'without JavaScript `Days before` is shown');
  const hint = await noScript.locator('#days-hint').innerText();
  check(hint.includes('Used only with'), `without JavaScript its hint says when it applies: ${hint}`);
  await plain.close();
  report({ pages });
});
