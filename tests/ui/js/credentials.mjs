// "Use API credentials": invitation link → connect page → the credentials form. With
// EXPECT=connected waits for the initial sync on the overview; with EXPECT=refused
// expects the form again with every `|`-separated part of EXPECT_TEXT in its alert.
import { need, check, run, waitForText, report } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, step }) => {
  await page.goto(need('INVITE_URL'));
  await step('1-connect');
  await page.getByRole('link', { name: 'Use API credentials' }).click();
  await page.getByLabel('Client ID').waitFor();
  await step('2-credentials');
  await page.getByLabel('Client ID').fill(need('CLIENT_ID'));
  await page.getByLabel('Client secret').fill(need('CLIENT_SECRET'));
  await page.getByRole('button', { name: 'Connect' }).click();
  if (process.env.EXPECT === 'refused') {
    await page.getByRole('alert').waitFor();
    await step('3-refused');
    const alert = await page.getByRole('alert').innerText();
    for (const text of need('EXPECT_TEXT').split('|')) {
      check(alert.includes(text), `the page says "${text}"; it says: ${alert}`);
    }
    const html = await page.content();
    check(!html.includes(need('CLIENT_SECRET')), 'the page does not repeat the client secret');
    const missing = await page.getByRole('alert').locator('li').allInnerTexts();
    report({ alert, missing });
    return;
  }
  await page.getByText('Connected', { exact: true }).first().waitFor();
  await step('3-connected');
  await waitForText(page, 'Everything is up to date', 180_000);
  await step('4-synced');
  const linked = await page.locator('dt:text-is("People linked") + dd').innerText();
  const created = await page.locator('dt:text-is("Created") + dd').innerText();
  const connection = await page.locator('dt:text-is("Personio") + dd').innerText();
  report({ linked: Number(linked), created: Number(created), connection });
});
