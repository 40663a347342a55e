// Drives Debian's Chromium for the dashboard's C# tests (Tests/Support/Browser.cs), one JSON command a line on stdin,
// one JSON answer a line on stdout: {"id":1,"op":"goto","url":"..."} -> {"id":1,"ok":true,"value":...}.
// Each "open" starts a fresh context (empty sessionStorage, no cookies) and records every request its pages make, so
// a test can check that nothing left the node's origin.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

// Without the background-networking flags Chromium calls Google's hosts at start, which a closed network refuses.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  chromiumSandbox: false,
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let context = null;
let page = null;
let requests = [];
let errors = [];

const ops = {
  async open({ width = 1400, height = 900 }) {
    await context?.close();
    context = await browser.newContext({ viewport: { width, height } });
    requests = [];
    errors = [];
    context.on('request', (request) => requests.push(request.url()));
    page = await context.newPage();
    page.on('pageerror', (error) => errors.push(String(error)));
    // A 401 or 400 the page handles still logs "Failed to load resource"; the tests check statuses themselves.
    page.on('console', (message) => message.type() === 'error' && !message.text().startsWith('Failed to load resource') && errors.push(message.text()));
    page.setDefaultTimeout(15000);
  },
  goto: ({ url }) => page.goto(url).then(() => null),
  waitText: ({ selector, text, timeout }) => page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout }).then(() => null),
  waitVisible: ({ selector, timeout }) => page.locator(selector).first().waitFor({ state: 'visible', timeout }).then(() => null),
  waitHidden: ({ selector, timeout }) => page.locator(selector).first().waitFor({ state: 'hidden', timeout }).then(() => null),
  waitCount: ({ selector, count, timeout }) =>
    page.waitForFunction(([s, n]) => document.querySelectorAll(s).length === n, [selector, count], { timeout }).then(() => null),
  text: ({ selector }) => page.locator(selector).first().innerText(),
  texts: ({ selector }) => page.locator(selector).allInnerTexts(),
  count: ({ selector }) => page.locator(selector).count(),
  attribute: ({ selector, name }) => page.locator(selector).first().getAttribute(name),
  click: ({ selector }) => page.locator(selector).first().click().then(() => null),
  check: ({ selector }) => page.locator(selector).first().check().then(() => null),
  fill: ({ selector, value }) => page.locator(selector).first().fill(value).then(() => null),
  press: ({ selector, key }) => page.locator(selector).first().press(key).then(() => null),
  evaluate: ({ expression }) => page.evaluate(expression),
  screenshot: ({ path, fullPage = false }) => page.screenshot({ path, fullPage }).then(() => null),
  requests: () => requests,
  errors: () => errors,
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) {
    continue;
  }
  const command = JSON.parse(line);
  let answer;
  try {
    const value = await ops[command.op](command);
    answer = { id: command.id, ok: true, value: value ?? null };
  } catch (error) {
    answer = { id: command.id, ok: false, error: String(error?.message ?? error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await browser.close();
