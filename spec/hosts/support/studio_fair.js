// Two browsers' creates on the studio's key (spec/hosts/studio_fair_spec.lua, issue 82): Debian's chromium driven
// by playwright-core (spec/npm), never a downloaded browser, in two contexts: two browsers, each a tenant of the
// studio (its own signed cookie).  argv[2] is a JSON object: { url, model, a (A's creates), b (B's), go (a file's
// path) }.  Browser A's page sends A's creates ("A 1" ...) as the page sends one (its fetch, its own token), all at
// once, and prints a line "a {at, answers}" once the studio answered each; then, once the file go exists (the spec
// makes it when 8 of A's reached the emulator), browser B's page sends B's ("B 1" ...) the same way.  Its last line
// is JSON: { a, b } ({at: the wall clock's ms before the first fetch, answers: each answer's status}), or
// { failure }.
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require(path.join(__dirname, '../../npm/node_modules/playwright-core'));

const o = JSON.parse(process.argv[2]);
const GUARD_MS = 180000; // the spec gives up long before: this is for a spec that died

// A browser of its own (a context: a tenant) on the studio's page, once the page drew its picker.
async function opened(browser) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(o.url);
  await page.waitForSelector('#model option', { state: 'attached' });
  return page;
}

// n creates of tenant (prompts "T 1" ...) sent by page as the page sends one: { at, answers }.
function sent(page, tenant, n) {
  return page.evaluate(async ([t, count, model]) => {
    const token = document.querySelector('meta[name="studio-token"]').content;
    const at = Date.now();
    const answers = await Promise.all(Array.from({ length: count }, (_, i) => fetch('/tasks', { method: 'POST',
      credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-Studio-Token': token },
      body: JSON.stringify({ model, prompt: `${t} ${i + 1}`, duration: 5 }) }).then((r) => r.status)));
    return { at, answers };
  }, [tenant, n, o.model]);
}

// Waits for the file to exist (the spec's word).
async function told(file) {
  const until = Date.now() + GUARD_MS;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} never came`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

(async () => {
  const out = {};
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox'] });
  try {
    const a = await opened(browser);
    const b = await opened(browser);
    out.a = await sent(a, 'A', o.a);
    process.stdout.write(`a ${JSON.stringify(out.a)}\n`);
    await told(o.go);
    out.b = await sent(b, 'B', o.b);
  } catch (e) {
    out.failure = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
