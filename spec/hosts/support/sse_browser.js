// client:sse in a real browser (spec/hosts/sse_nginx_spec.lua): Debian's chromium driven by playwright-core
// (spec/npm), never a downloaded browser.  argv[2] is a JSON object: { url (the page's, its tenant in the query),
// generate (the URL that starts a run; `avoid=PID` is added: a run on another worker than the stream's) }.
// The page (the spec's) keeps every event its EventSource was told in sessionStorage, and opens its stream after
// a reload with the last id it saw.  Here: the page opened; a run started on a worker other than the stream's;
// the page reloaded mid-run; the worker serving its stream then killed (the EventSource comes back by itself, with
// Last-Event-ID); until the run's `saved`.  Prints one JSON line: the events seen ({id, type}), the workers that
// served the stream, the run's worker, how many events were seen before the reload and before the kill.
'use strict';
const path = require('path');
const http = require('http');
const { chromium } = require(path.join(__dirname, '../../npm/node_modules/playwright-core'));

const o = JSON.parse(process.argv[2]);
const out = { page_errors: [] };

// A GET on a connection of its own (no keep-alive: the kernel hands each to any worker): status and body.
function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (r) => {
      let body = '';
      r.on('data', (c) => { body += c; });
      r.on('end', () => resolve({ status: r.statusCode, body }));
    }).on('error', reject);
  });
}

const worker = (page) => page.waitForFunction(() => window.worker, null, { timeout: 15000 }).then((h) => h.jsonValue());
const count = (page) => page.evaluate(() => JSON.parse(sessionStorage.seen || '[]').length);
const waitCount = (page, n) => page.waitForFunction((k) => JSON.parse(sessionStorage.seen || '[]').length >= k, n,
  { timeout: 30000, polling: 20 });

async function run(browser) {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => out.page_errors.push(String(e))); // (the killed stream's cut chunk is no page error)
  await page.goto(o.url);
  out.workers = [await worker(page)];
  for (let i = 0; i < 40 && !out.run_worker; i += 1) {
    const r = await get(`${o.generate}&avoid=${out.workers[0]}`);
    if (r.status === 200) out.run_worker = Number(r.body);
  }
  if (!out.run_worker) throw new Error('no run on a worker other than the stream\'s in 40 tries');
  await waitCount(page, 2);
  out.before_reload = await count(page);
  // the page reloaded mid-run, until its stream is on a worker other than the run's (the one to kill next)
  for (let i = 0; i < 40; i += 1) {
    await page.reload();
    const w = await worker(page);
    out.workers.push(w);
    if (w !== out.run_worker) break;
  }
  const killed = out.workers[out.workers.length - 1];
  if (killed === out.run_worker) throw new Error('no stream on a worker other than the run\'s in 40 reloads');
  await waitCount(page, out.before_reload + 1);
  out.before_kill = await count(page);
  process.kill(killed, 'SIGKILL');
  out.killed = killed;
  await page.waitForFunction(() => JSON.parse(sessionStorage.seen || '[]').some((e) => e.type === 'saved'), null,
    { timeout: 60000, polling: 20 });
  out.workers.push(await page.evaluate(() => window.worker));
  out.seen = await page.evaluate(() => JSON.parse(sessionStorage.seen));
}

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  try {
    await run(browser);
  } catch (e) {
    out.failure = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
