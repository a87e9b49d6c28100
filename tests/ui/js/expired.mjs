// A link used once, then again after it expired: the second time a page says it
// expired and what to do, and no session is started.
import { need, check, run } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, context, step }) => {
  await page.goto(need('INVITE_URL'));
  check(new URL(page.url()).pathname === '/connect', `a fresh link opens the connect page, not ${page.url()}`);
  await step('1-connect');
  // The link expires a few seconds later (the Rust side made it so); retry until the
  // service says so, each time without the session an earlier try started.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await context.clearCookies();
    const response = await page.goto(need('INVITE_URL'));
    if (response.status() === 410) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await step('2-expired');
  const text = await page.locator('main').innerText();
  check(text.includes('expired'), `the page says the link expired: ${text}`);
  check(text.includes('new invitation'), `the page says what to do: ${text}`);
  const cookies = await context.cookies();
  check(cookies.length === 0, `no session for an expired link: ${cookies.map((c) => c.name).join(', ')}`);
});
