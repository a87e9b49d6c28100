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
  // Hold the real answer back: take the provider's redirect off the consent form's
  // answer instead of following it, and send a forged one in its place.
  let real;
  const isConsent = (url) => url.pathname === '/oauth/authorize/consent';
  await page.route(isConsent, async (route) => {
    const answer = await route.fetch({ maxRedirects: 0 });
    real = new URL(answer.headers()['location']);
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'held back by the test' });
  });
  await page.getByRole('button', { name: 'Allow' }).click();
  const deadline = Date.now() + 20_000;
  while (!real && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  check(real && real.pathname === '/connect/callback', `the provider sends the browser back to /connect/callback, not ${real}`);
  await page.unroute(isConsent);
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
