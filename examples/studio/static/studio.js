// The studio's page: the picker from /models, a create with this load's token, the cards (/tasks) and the spend
// panel (/spend) asked again whenever the library's event stream tells something (/events: no polling here).
// Data is set as text, never as HTML.
'use strict';
const token = document.querySelector('meta[name="studio-token"]').content;
const $ = (id) => document.getElementById(id);
const REFS = [['referenceImages', 'max_images'], ['referenceVideos', 'max_videos'], ['referenceAudios', 'max_audios']];
let models = {};
const mine = new Set(); // the cards this page asked for: a spend limit's refusal of one is said above the form
const told = new Set();

function options(select, values, chosen) {
  select.replaceChildren(...values.map((v) => new Option(v || 'default', v, false, v === chosen)));
}

function count() {
  const m = models[$('model').value];
  const n = [...$('prompt').value].length;
  $('count').textContent = m && m.prompt_max ? `${n} / ${m.prompt_max} characters` : `${n} characters`;
}

// The fields of the chosen model: its durations, ratios, resolutions and reference slots.
function pick() {
  const m = models[$('model').value];
  const d = m.duration;
  $('duration').min = d.min;
  $('duration').max = d.max;
  $('duration').value = d.default || Math.min(Math.max(5, d.min), d.max);
  $('dur-lim').textContent = `${d.min} to ${d.max}${d.required ? '' : ', optional'}`;
  options($('ratio'), m.ratios, m.default_ratio);
  const res = Array.isArray(m.resolutions) ? m.resolutions : [];
  options($('resolution'), [''].concat(res), '');
  $('res-box').hidden = res.length === 0;
  for (const [id, limit] of REFS) {
    const n = m[limit] || 0;
    $(id).closest('label').hidden = n === 0;
    $(id).closest('label').querySelector('.lim').textContent = `at most ${n}`;
  }
  count();
}

function showError(text) {
  $('error').textContent = text || '';
  $('error').hidden = !text;
}

// A create (or a card's child) POSTed with this load's token, button held meanwhile: its card's key, or null (the
// studio's refusal shown above the form).
async function post(body, button) {
  button.disabled = true;
  try {
    const r = await fetch('/tasks', { method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json', 'X-Studio-Token': token } });
    const answer = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
    showError(r.ok ? '' : answer.error);
    if (r.ok) { mine.add(answer.key); refresh(); return answer.key; } // (its card, at once)
  } catch (e) {
    showError(`the studio did not answer: ${e.message}`);
  } finally {
    button.disabled = false;
  }
  return null;
}

async function send(ev) {
  ev.preventDefault();
  const body = { model: $('model').value, prompt: $('prompt').value, duration: $('duration').value,
    ratio: $('ratio').value, resolution: $('resolution').value,
    first_image: $('first_image').value.trim(), last_image: $('last_image').value.trim() };
  for (const [id] of REFS) {
    if (!$(id).closest('label').hidden) body[id] = $(id).value.split('\n').map((s) => s.trim()).filter(Boolean);
  }
  if (await post(body, $('send'))) { $('prompt').value = ''; count(); }
}

// A card's children: again (its create again, a new prompt if given), remix (its video as a reference video) and
// continue (from its last frame to the end frame's URL asked for here); each made by the library from the journal.
const ACTS = [['again', 'Again'], ['remix', 'Remix'], ['continue', 'Continue']];
const byKey = new Map(); // the cards shown, by key: a child names its parent by the parent's prompt

function field(label, input) {
  const l = document.createElement('label');
  l.append(label, input);
  return l;
}

// The form of a child of the card el: a prompt (empty: the parent's), and a continue's end frame.
function ask(el, act) {
  const old = el.querySelector('form.ask');
  if (old) old.remove();
  const f = Object.assign(document.createElement('form'), { className: 'ask', noValidate: true });
  f.dataset.act = act;
  const prompt = Object.assign(document.createElement('textarea'), { name: 'prompt', rows: 2 });
  f.append(field(act === 'again' ? 'New prompt (empty: the same)' : 'Prompt (empty: the parent\'s)', prompt));
  if (act === 'continue') {
    f.append(field('End frame URL (the last image)',
      Object.assign(document.createElement('input'), { name: 'last_image', type: 'url', placeholder: 'https://...' })));
  }
  const go = Object.assign(document.createElement('button'), { type: 'submit', className: 'go', textContent: act });
  const cancel = Object.assign(document.createElement('button'), { type: 'button', className: 'cancel',
    textContent: 'cancel' });
  cancel.addEventListener('click', () => f.remove());
  f.append(go, cancel);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { from: el.dataset.key, relation: act, prompt: f.elements.prompt.value.trim() };
    if (f.elements.last_image) body.last_image = f.elements.last_image.value.trim();
    if (await post(body, go)) f.remove();
  });
  el.querySelector('.acts').after(f);
  prompt.focus();
}

// The card's buttons: again once its task is known and ended, remix and continue once its video is saved.
function acts(el, c) {
  const box = el.querySelector('.acts');
  if (!box.firstChild) {
    for (const [act, label] of ACTS) {
      const b = Object.assign(document.createElement('button'), { type: 'button', textContent: label });
      b.dataset.act = act;
      b.addEventListener('click', () => ask(el, act));
      box.append(b);
    }
  }
  for (const b of box.children) {
    b.disabled = !(c.state === 'saved' || (b.dataset.act === 'again' && c.state === 'failed' && c.id));
  }
}

const clip = (text, n) => ([...text].length > n ? `${[...text].slice(0, n).join('')}…` : text);

// A child's line: its relation and its parent, a link to the parent's card (its prompt's start, else its task id).
function from(p, c) {
  p.hidden = !c.relation;
  if (!c.relation) return;
  const parent = byKey.get(c.parent);
  const a = document.createElement('a');
  if (c.parent) a.href = `#card-${c.parent}`;
  a.textContent = parent && parent.prompt ? clip(parent.prompt, 40) : `task ${c.parent_id}`;
  p.dataset.parent = c.parent || '';
  p.replaceChildren(`${c.relation} of `, a);
}

// A size as people read it: bytes, kB or MB (of 1000), one decimal.
function size(n) {
  if (n < 1000) return `${n} B`;
  return n < 999950 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

// The bytes of a download, and its total when known: the whole file's size once they meet; where the
// rounded sizes of a download not done would read the same (18.8 kB of 18.8 kB), the exact numbers.
function bytesText(bytes, total) {
  if (!total) return size(bytes);
  if (bytes === total) return size(total);
  const [got, all] = [size(bytes), size(total)];
  if (got !== all) return `${got} of ${all}`;
  return `${bytes.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} bytes`;
}

// One card's rows: what changes as the task goes.
function rows(c) {
  const r = [['state', c.state], ['model', c.model]];
  if (c.state === 'queued' || c.state === 'processing') r.push(['ETA', c.eta != null ? `~${c.eta} s` : 'learning']);
  if (c.bytes != null) r.push(['bytes', bytesText(c.bytes, c.total)]);
  if (c.cost != null) r.push(['cost', c.cost.toFixed(2)]);
  if (c.id) r.push(['task', c.id]);
  if (c.reason) r.push(['why', c.advice ? `${c.reason}: ${c.advice}` : c.reason]);
  for (const w of c.warnings || []) r.push(['warning', w]);
  if (c.request_id) r.push(['request id', c.request_id]);
  if (c.server_request_id && c.server_request_id !== c.request_id) r.push(['server request id', c.server_request_id]);
  return r;
}

function draw(el, c) {
  el.dataset.state = c.state;
  el.querySelector('.prompt').textContent = c.prompt || '';
  el.querySelector('dl').replaceChildren(...rows(c).flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    dd.className = k.replace(/ /g, '-');
    return [dt, dd];
  }));
  el.querySelector('.err').textContent = c.error || '';
  from(el.querySelector('.from'), c);
  acts(el, c);
  const media = el.querySelector('.media');
  if (c.video && !media.querySelector('video')) {
    const v = document.createElement('video');
    Object.assign(v, { src: c.video, controls: true, muted: true, autoplay: true, loop: true, playsInline: true });
    media.replaceChildren(v);
  } else if (!c.video) {
    media.textContent = c.state === 'failed' ? 'failed' : `${c.state}…`;
  }
}

function card(key) {
  let el = document.querySelector(`.card[data-key="${CSS.escape(key)}"]`);
  if (el) return el;
  el = document.createElement('article');
  el.className = 'card';
  el.dataset.key = key;
  el.id = `card-${key}`;
  const parts = [['div', 'media'], ['p', 'prompt'], ['p', 'from'], ['dl', ''], ['p', 'err'], ['div', 'acts']];
  for (const [tag, cls] of parts) {
    const x = document.createElement(tag);
    if (cls) x.className = cls;
    el.append(x);
  }
  return el;
}

function render(list) {
  const box = $('cards');
  list.forEach((c) => byKey.set(c.key, c));
  list.forEach((c, i) => {
    const el = card(c.key);
    draw(el, c);
    if (box.children[i] !== el) box.insertBefore(el, box.children[i] || null);
    // a create this page asked for and a limit or the library refused before sending it: its message above the form
    const refused = c.kind === 'spend_limited' || (c.relation && c.state === 'failed' && !c.id);
    if (refused && mine.has(c.key) && !told.has(c.key)) { told.add(c.key); showError(c.error); }
  });
}

// A limit's row of the spend panel: whose it is and its window, what is spent and reserved, when it resets.
const WINDOWS = { day: 'a day', month: 'a month' };
function spendRow(e, i) {
  const who = e.scope === 'model' ? `model ${e.model}` : e.scope === 'tenant' ? 'you (this browser)' : 'the key';
  const per = e.per == null ? 'for good' : WINDOWS[e.per] || `every ${e.per} s`;
  const resets = e.resets_at == null ? 'never (no window)'
    : `${new Date(e.resets_at * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, { limit: i + 1, scope: e.scope, spent: e.spent, reserved: e.reserved, amount: e.amount,
    full: e.spent + e.reserved >= e.amount });
  const cells = [['who', `${who}, ${per}`], ['spent', e.spent.toFixed(2)], ['reserved', e.reserved.toFixed(2)],
    ['amount', e.amount.toFixed(2)], ['resets', resets]];
  for (const [cls, text] of cells) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    if (cls === 'spent') {
      const m = Object.assign(document.createElement('meter'), { min: 0, max: e.amount || 1, value: e.spent });
      td.append(m);
    }
    tr.append(td);
  }
  return tr;
}

// A step of a spend limit (50%, 80%, 100%), as the library said it, once.
function said(message) {
  const li = document.createElement('li');
  li.textContent = message;
  $('spend-said').append(li);
  $('spend').hidden = false;
}

function renderSpend(list) {
  $('spend-rows').replaceChildren(...list.map(spendRow));
  $('spend').hidden = false;
}

// The page's look at the server again: the tenant's cards (/tasks) and, with a spend limit, its panel (/spend),
// asked at most once at a time, and once more when the stream told something meanwhile.
let asking = null;
let again = false;
async function refresh() {
  if (asking) { again = true; return; }
  asking = (async () => {
    const r = await fetch('/tasks', { credentials: 'same-origin' });
    if (r.ok) render((await r.json()).cards);
    const s = await fetch('/spend', { credentials: 'same-origin' });
    const panel = s.ok ? (await s.json()).spend : null;
    if (panel) renderSpend(panel);
  })().catch(() => {}).finally(() => {
    asking = null;
    if (again) { again = false; refresh(); }
  });
}

// The library's event stream of this browser's tasks (client:sse, /events): each event makes the page look
// again; a spend limit's step is said under the panel (a limit of this browser's own: "you (this browser)").
// One the studio refused (a browser holds at most 4: a tab each) is closed, not retried by the browser: asked
// again every 10 s, the page says so meanwhile.
const KINDS = ['created', 'status', 'progress', 'warning', 'late', 'taken', 'saved', 'failed'];
const steps = new Set();
function listen() {
  const es = new EventSource('/events');
  es.onopen = () => { $('live').textContent = 'live'; refresh(); };
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) { $('live').textContent = 'reconnecting…'; return; }
    $('live').textContent = 'not live: the studio refused this tab\'s updates (too many tabs open?); trying again';
    setTimeout(listen, 10000);
  };
  for (const kind of KINDS) {
    es.addEventListener(kind, (e) => {
      const ev = JSON.parse(e.data);
      if (kind === 'warning' && ev.field === 'spend_limit' && ev.percent && !steps.has(e.lastEventId)) {
        steps.add(e.lastEventId);
        said(ev.message.replace(/for tenant "[^"]*"/, 'for you (this browser)'));
      }
      refresh();
    });
  }
}

async function start() {
  models = await (await fetch('/models', { credentials: 'same-origin' })).json();
  const names = Object.keys(models).sort();
  options($('model'), names, names.includes('videos') ? 'videos' : names[0]);
  pick();
  $('model').addEventListener('change', pick);
  $('prompt').addEventListener('input', count);
  $('ask').addEventListener('submit', send);
  listen();
}

start();
