// The studio in a real browser (spec/hosts/studio_spec.lua, studio_spend_spec.lua, studio_lineage_spec.lua): Debian's chromium
// driven by playwright-core (spec/npm), never a downloaded browser.  One run a phase; argv[2] is a
// JSON object: { phase: "first" | "again" | "spend" | "lineage" | "lineage_back" | "card", url, state (the browser's
// cookies, a file), screenshot (a PNG path), prompt, long_model, long_prompt, key (a card's, for "again" and
// "lineage_back" and "card"), end_image, continue_prompt, again_prompt (for "lineage"), cookie (for "card") }.
// Prints one JSON line: what the page showed, when, and every answer it got (to look for
// the API key in).
'use strict';
const path = require('path');
const { chromium } = require(path.join(__dirname, '../../npm/node_modules/playwright-core'));

const o = JSON.parse(process.argv[2]);
const out = { answers: [], console_errors: [] };

// Every answer the page gets: its headers, and its body where one ends (not a video's, not a stream's);
// every error the page's console shows (a script or a style the CSP refused, say).
function record(page) {
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(`${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('response', async (r) => {
    const type = r.headers()['content-type'] || '';
    const a = { url: r.url(), status: r.status(), headers: r.headers() };
    out.answers.push(a);
    if (!/^(video\/|text\/event-stream)/.test(type)) a.body = await r.text().catch(() => '');
  });
}

// The states each card was seen in, in order, kept by the page as they change.
async function watchStates(page) {
  await page.evaluate(() => {
    window.seen = [];
    const note = (el) => {
      const last = window.seen.filter((s) => s.key === el.dataset.key).pop();
      if (!last || last.state !== el.dataset.state) window.seen.push({ key: el.dataset.key, state: el.dataset.state, at: Date.now() });
    };
    document.querySelectorAll('.card').forEach(note);
    new MutationObserver((list) => list.forEach((m) => {
      const el = m.target.closest && m.target.closest('.card');
      if (el) note(el);
      m.addedNodes.forEach((n) => n.classList && n.classList.contains('card') && note(n));
    })).observe(document.getElementById('cards'), { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

// Waits for the card's video to play: its currentTime past 0, then advancing; when it started.
// A video that does not play: { failure, media_error } (the other cases go on).
async function playing(page, key) {
  return play(page, key).catch(async (e) => ({ failure: String(e.message || e).split('\n')[0],
    media_error: await page.$eval(`.card[data-key="${key}"] video`, (v) => v.error && `${v.error.code} ${v.error.message}`)
      .catch(() => 'no video element') }));
}

async function play(page, key) {
  const sel = `.card[data-key="${key}"] video`;
  await page.waitForSelector(sel, { timeout: 60000 });
  const h = await page.waitForFunction((s) => {
    const v = document.querySelector(s);
    return v && (v.error ? -1 : v.currentTime > 0 && !v.paused && Date.now());
  }, sel, { timeout: 15000, polling: 20 });
  const at = await h.jsonValue();
  if (at === -1) throw new Error('the video does not play');
  const t1 = await page.$eval(sel, (v) => v.currentTime);
  await page.waitForTimeout(700);
  const t2 = await page.$eval(sel, (v) => v.currentTime);
  const seek = await page.$eval(sel, (v) => new Promise((done) => {
    v.addEventListener('seeked', () => done(v.currentTime), { once: true });
    v.currentTime = Math.min(1, v.duration / 2);
  }));
  return { at, t1, t2, seek, duration: await page.$eval(sel, (v) => v.duration),
    error: await page.$eval(sel, (v) => (v.error ? v.error.message : undefined)) };
}

async function cardKeys(page) {
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 15000 });
  await page.waitForTimeout(300);
  return page.$$eval('.card', (l) => l.map((c) => ({ key: c.dataset.key, state: c.dataset.state })));
}

async function first(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  record(page);
  let post;
  page.on('request', (r) => { if (r.method() === 'POST') post = { url: r.url(), body: r.postData(), headers: r.headers() }; });
  await page.goto(o.url);
  await page.waitForSelector('#model option', { state: 'attached' });
  out.models = await page.$$eval('#model option', (l) => l.map((x) => x.value));
  await watchStates(page);
  await page.fill('#prompt', o.prompt);
  await page.click('#send');
  await page.waitForSelector('.card', { timeout: 10000 });
  out.key = await page.$eval('.card', (c) => c.dataset.key);
  out.token_sent = Boolean(post && post.headers['x-studio-token']);
  await page.waitForSelector(`.card[data-key="${out.key}"][data-state="saved"]`, { timeout: 60000 });
  out.saved_at = Date.now();
  out.play = await playing(page, out.key);
  out.states = (await page.evaluate(() => window.seen)).filter((s) => s.key === out.key).map((s) => s.state);
  out.card_text = await page.$eval(`.card[data-key="${out.key}"]`, (c) => c.innerText);
  await page.screenshot({ path: o.screenshot, fullPage: true });
  // the library's message for a prompt too long, before anything is sent
  await page.selectOption('#model', o.long_model);
  out.audios_long_model = await page.isVisible('#referenceAudios'); // a model that takes none: no box
  await page.fill('#prompt', o.long_prompt);
  await page.click('#send');
  await page.waitForSelector('#error:not([hidden])', { timeout: 10000 });
  out.long_error = await page.$eval('#error', (e) => e.textContent);
  // a first frame without its last: the library's rule, named
  await page.selectOption('#model', 'videos');
  out.audios_videos = await page.isVisible('#referenceAudios');
  await page.fill('#prompt', o.prompt);
  await page.fill('#first_image', 'https://example.com/first.png');
  await page.click('#send');
  await page.waitForFunction((before) => document.getElementById('error').textContent !== before, out.long_error);
  out.frame_error = await page.$eval('#error', (e) => e.textContent);
  await page.fill('#first_image', '');
  out.cards_after_long = (await page.$$('.card')).length;
  // the page's own create, replayed without its token, then with a token made up
  const bare = { 'content-type': 'application/json' };
  out.replay_status = (await context.request.post(post.url, { data: post.body, headers: bare })).status();
  out.forged_status = (await context.request.post(post.url, { data: post.body,
    headers: { ...bare, 'x-studio-token': '0123456789abcdef0123.' + 'a'.repeat(40) } })).status();
  // a reload, and a second tab: the card is there, its video too
  await page.reload();
  out.after_reload = await cardKeys(page);
  const tab = await context.newPage();
  record(tab);
  await tab.goto(o.url);
  out.second_tab = await cardKeys(tab);
  // another browser is another tenant: none of these cards
  const other = await browser.newContext();
  const stranger = await other.newPage();
  await stranger.goto(o.url);
  out.other_browser = await cardKeys(stranger);
  out.other_video_status = (await other.request.get(new URL(`/videos/${out.key}.mp4`, o.url).href)).status();
  await context.storageState({ path: o.state });
}

async function again(browser) {
  const context = await browser.newContext({ storageState: o.state });
  const page = await context.newPage();
  record(page);
  await page.goto(o.url);
  out.cards = await cardKeys(page);
  out.play = await playing(page, o.key);
}

// The rows of the page's spend panel.
function spendPanel(page) {
  return page.$$eval('#spend-rows tr', (l) => l.map((r) => ({ limit: Number(r.dataset.limit), scope: r.dataset.scope,
    spent: Number(r.dataset.spent), reserved: Number(r.dataset.reserved), amount: Number(r.dataset.amount),
    text: r.innerText })));
}

// Waits until the panel's row of limit n says spent.
function spentIs(page, n, spent) {
  return page.waitForFunction(([i, want]) => {
    const r = document.querySelector(`#spend-rows tr[data-limit="${i}"]`);
    return r && Number(r.dataset.spent) === want;
  }, [n, spent], { timeout: 30000 });
}

// Sends a prompt on videos; waits for its card to leave `creating`: its key, state and error.
async function ask(page, prompt) {
  const before = await page.$$eval('.card', (l) => l.map((c) => c.dataset.key));
  await page.fill('#prompt', prompt);
  await page.click('#send');
  const h = await page.waitForFunction((b) => {
    const c = [...document.querySelectorAll('.card')].find((x) => !b.includes(x.dataset.key));
    const cost = c && [...c.querySelectorAll('dd.cost')].map((d) => d.textContent)[0];
    return c && c.dataset.state !== 'creating' && { key: c.dataset.key, state: c.dataset.state,
      error: c.querySelector('.err').textContent, cost };
  }, before, { timeout: 30000 });
  return h.jsonValue();
}

async function opened(browser) {
  const page = await (await browser.newContext()).newPage();
  record(page);
  await page.goto(o.url);
  await page.waitForSelector('#spend:not([hidden])', { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 15000 });
  return page;
}

// Two browsers (two tenants) under the studio's spend limits (the key's 1.20, each tenant's 0.80, at 0.40 a
// create): A's two creates and its third refused, B's one and its second refused; each panel as it changed.
async function spend(browser) {
  const a = await opened(browser);
  out.a_before = await spendPanel(a);
  out.a_asks = [await ask(a, 'A heron, take 1'), await ask(a, 'A heron, take 2')];
  await spentIs(a, 2, 0.8);
  out.a_after_two = await spendPanel(a);
  out.a_refused = await ask(a, 'A heron, take 3');
  await a.waitForSelector('#error:not([hidden])', { timeout: 10000 });
  out.a_error = await a.$eval('#error', (e) => e.textContent);
  const b = await opened(browser);
  out.b_before = await spendPanel(b);
  out.b_asks = [await ask(b, 'A fox, take 1')];
  await spentIs(b, 1, 1.2);
  out.b_after_one = await spendPanel(b);
  out.b_refused = await ask(b, 'A fox, take 2');
  await b.waitForSelector('#error:not([hidden])', { timeout: 10000 });
  out.b_error = await b.$eval('#error', (e) => e.textContent);
  await spentIs(a, 1, 1.2); // A's page: the key's spend, pushed as B's task was made
  out.a_end = await spendPanel(a);
  await a.screenshot({ path: o.screenshot, fullPage: true });
}

// A card as the page shows it: its state, error, and (a child's) the line naming its parent and the link's target.
function cardOf(page, key) {
  return page.$eval(`.card[data-key="${key}"]`, (c) => {
    const from = c.querySelector('.from');
    const a = from.querySelector('a');
    return { key: c.dataset.key, state: c.dataset.state, error: c.querySelector('.err').textContent,
      from: from.hidden ? null : from.textContent, href: a && a.getAttribute('href'), parent: from.dataset.parent };
  });
}

// The child of the card key its button act makes (fill: the fields of the form the button opens), waited for
// until saved or failed: the card, its video playing when saved.
async function child(page, key, act, fill) {
  const before = await page.$$eval('.card', (l) => l.map((c) => c.dataset.key));
  await page.click(`.card[data-key="${key}"] .acts button[data-act="${act}"]`);
  for (const [name, value] of Object.entries(fill)) {
    await page.fill(`.card[data-key="${key}"] form.ask [name="${name}"]`, value);
  }
  await page.click(`.card[data-key="${key}"] form.ask button.go`);
  const h = await page.waitForFunction((b) => {
    const c = [...document.querySelectorAll('.card')].find((x) => !b.includes(x.dataset.key));
    return c && ['saved', 'failed'].includes(c.dataset.state) && c.dataset.key;
  }, before, { timeout: 60000 });
  const made = await cardOf(page, await h.jsonValue());
  if (made.state === 'saved') made.play = await playing(page, made.key);
  return made;
}

// Waits for the page's #error to say something new: what it says.
async function newError(page, before) {
  await page.waitForFunction((b) => {
    const e = document.getElementById('error');
    return !e.hidden && e.textContent !== b;
  }, before, { timeout: 30000 });
  return page.$eval('#error', (e) => e.textContent);
}

// Every card the page shows once it is live with at least n.
async function cardsShown(page, n) {
  await page.waitForFunction((k) => document.getElementById('live').textContent === 'live'
    && document.querySelectorAll('.card').length >= k, n, { timeout: 30000 });
  const keys = await page.$$eval('.card', (l) => l.map((c) => c.dataset.key));
  return Promise.all(keys.map((k) => cardOf(page, k)));
}

// A card's children (studio.lineage): a prompt sent and saved, then its continue (to the end frame o.end_image),
// its again with a new prompt and its remix, each saved and playing; a continue without its end frame refused
// with the library's message; the child's link followed; the cards after a reload.
async function lineage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  record(page);
  await page.goto(o.url);
  await page.waitForSelector('#model option', { state: 'attached' });
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 15000 });
  out.parent = await ask(page, o.prompt);
  await page.waitForSelector(`.card[data-key="${out.parent.key}"][data-state="saved"]`, { timeout: 60000 });
  const key = out.parent.key;
  out.continued = await child(page, key, 'continue', { prompt: o.continue_prompt, last_image: o.end_image });
  out.again = await child(page, key, 'again', { prompt: o.again_prompt });
  out.remix = await child(page, key, 'remix', {});
  out.no_end = await child(page, key, 'continue', { prompt: o.continue_prompt });
  out.no_end_error = await newError(page, '');
  await page.click(`.card[data-key="${out.continued.key}"] .from a`);
  // (the link's hash is set after the click resolves on a loaded machine: waited for, at most 10 s, then read)
  await page.waitForFunction(() => window.location.hash !== '', null, { timeout: 10000 }).catch(() => {});
  out.followed = await page.evaluate(() => window.location.hash);
  await page.reload();
  out.after_reload = await cardsShown(page, 5);
  await page.screenshot({ path: o.screenshot, fullPage: true });
  await context.storageState({ path: o.state });
}

// The same browser after a restart (of a studio without a bucket): the cards and their parents, then a remix
// refused with the library's message.
async function lineageBack(browser) {
  const context = await browser.newContext({ storageState: o.state });
  const page = await context.newPage();
  record(page);
  await page.goto(o.url);
  out.cards = await cardsShown(page, 4); // (the refused continue was never in the journal)
  out.no_bucket = await child(page, o.key, 'remix', {});
  out.no_bucket_error = await newError(page, '');
}

// The rows of the card o.key as the page of the browser of cookie o.cookie draws them: [class, text] each.
async function cardRows(browser) {
  const context = await browser.newContext();
  await context.addCookies([{ name: 'studio_tenant', value: o.cookie, url: o.url }]);
  const page = await context.newPage();
  record(page);
  await page.goto(o.url);
  const sel = `.card[data-key="${o.key}"]`;
  await page.waitForSelector(sel, { timeout: 15000 });
  out.rows = await page.$$eval(`${sel} dd`, (l) => l.map((d) => [d.className, d.textContent]));
  out.error = await page.$eval(`${sel} .err`, (e) => e.textContent);
}

const PHASES = { first, again, spend, lineage, lineage_back: lineageBack, card: cardRows };

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
  try {
    await PHASES[o.phase](browser);
  } catch (e) {
    out.failure = String(e && e.stack || e);
  } finally {
    await new Promise((r) => setTimeout(r, 200)); // the last answers' bodies
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
