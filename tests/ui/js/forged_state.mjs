// A callback whose state was not sent by this session: the admin signs in and allows
// access, but the answer coming back carries another state. It must be refused.
import { need, check, run } from './lib.mjs';

const name = need('UI_TEST');
await run(name, async ({ page, step }) => {
  await page.goto(need('INVITE_URL'));
  await step('1-connect');
  await page.getByRole('button', { name: 'Sign in with Personio' }).click();
  await page.getByLabel('Email').fill(need('LOGIN_EMAIL'));
  await page.getByLabel('Password').fill(need('LOGIN_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Hold the real answer back and send a forged one in its place.
  let real;
  await page.route('**/connect/callback?**', async (route) => {
    real = new URL(route.request().url());
    await route.abort();
  });
  await page.getByRole('button', { name: 'Allow' }).click().catch(() => {});
  const deadline = Date.now() + 20_000;
  while (!real && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  check(real, 'the provider sent the browser back to /connect/callback');
  await page.unroute('**/connect/callback?**');
  const forged = new URL(real);
  forged.searchParams.set('state', 'forged-' + real.searchParams.get('state').slice(0, 8));
  const response = await page.goto(forged.href);
  check(response.status() === 400, `a forged state is refused with 400, not ${response.status()}`);
  await step('2-refused');
  const alert = await page.getByRole('alert').innerText();
  check(alert.includes('refused'), `the page says the sign-in was refused: ${alert}`);
  // The real answer cannot be used afterwards either: the pending sign-in is spent.
  const again = await page.goto(real.href);
  check(again.status() === 400, `the held-back answer is refused too, not ${again.status()}`);
  await step('3-real-answer-after-forgery');
});
