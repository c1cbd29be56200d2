// DOM rendering. Everything that comes from a response is set with textContent or as an
// attribute value, never parsed as HTML.

import { serverTiming, curl } from './api.js';

/** el builds an element: el('div', {class: 'x', onclick: f}, child, 'text', …). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const pretty = v => JSON.stringify(v, null, 2);

export function kb(n) { return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`; }

/** status renders one X-VLProxy-* value as a badge coloured by what it means. */
export function badge(name, value) {
  let cls = 'ok';
  if (!value) cls = 'none';
  else if (/^(fallback|partial|error)/.test(value)) cls = 'warn';
  else if (/^(off|skipped|bypass|miss)/.test(value)) cls = 'none';
  return el('span', { class: `badge ${cls}`, title: `${name}: ${value || '—'}` },
    el('b', {}, name.replace(/^X-VLProxy-/i, '').toLowerCase()), ' ', value || '—');
}

const statusHeaders = ['x-vlproxy-rewrite', 'x-vlproxy-retrieval', 'x-vlproxy-rerank', 'x-vlproxy-cache', 'x-vlproxy-variant'];

/** statuses renders every X-VLProxy-* header of a response as badges (known ones first). */
export function statuses(rec) {
  const h = rec.respHeaders || {};
  const names = [...statusHeaders.filter(n => n in h), ...Object.keys(h).filter(n => n.startsWith('x-vlproxy-') && !statusHeaders.includes(n))];
  return names.map(n => badge(n, h[n]));
}

/** imageOf finds a hit's photo: the URL template, else the image field (data URI, URL or base64). */
export function imageOf(hit, cfg) {
  const src = hit._source || {};
  if (cfg.image_url_template) {
    return cfg.image_url_template.replace(/\{([^}]+)\}/g, (_, f) => {
      const v = f === '_id' ? hit._id : f === '_index' ? hit._index : src[f];
      return encodeURIComponent(v ?? '');
    });
  }
  let v = src[cfg.image_field];
  if (Array.isArray(v)) v = v[0];
  if (typeof v !== 'string' || !v) return '';
  if (/^(data:image\/|https?:\/\/|\/)/.test(v)) return v;
  if (/^[A-Za-z0-9+/=\s]+$/.test(v.slice(0, 64))) return `data:image/jpeg;base64,${v}`;
  return '';
}

function fieldText(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * movement compares a hit's rank with its rank in the reference column:
 * {text, cls, label} for the marker ("▲2", "▼1", "=", "new").
 */
export function movement(refRanks, id, rank) {
  if (!refRanks) return null;
  if (!refRanks.has(id)) return { text: 'new', cls: 'new', label: 'not in the first column' };
  const d = refRanks.get(id) - rank;
  if (d > 0) return { text: `▲${d}`, cls: 'up', label: `up ${d} from rank ${refRanks.get(id)}` };
  if (d < 0) return { text: `▼${-d}`, cls: 'down', label: `down ${-d} from rank ${refRanks.get(id)}` };
  return { text: '=', cls: 'same', label: 'same rank as in the first column' };
}

/** clock formats seconds as m:ss. */
function clock(s) {
  const t = Math.max(0, Math.round(Number(s) || 0));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/** videoOf finds a hit's video URL in the video field (http(s) or a path on this server). */
function videoOf(hit, cfg) {
  const v = (hit._source || {})[cfg.video_field];
  return typeof v === 'string' && /^(https?:\/\/|\/)/.test(v) ? v : '';
}

const seekTargets = new WeakMap(); // player → the second its last moment click asked for

/** playFrom plays player from second t. A browser cannot seek in a video whose server does not
 * answer Range requests (it plays from 0 instead), so a seek that lands elsewhere says so in note. */
function playFrom(player, t, note) {
  seekTargets.set(player, t);
  note.hidden = true;
  const landed = () => {
    player.removeEventListener('seeked', landed);
    if (seekTargets.get(player) !== t || Math.abs(player.currentTime - t) < 0.5) return;
    note.textContent = `Cannot play from ${clock(t)}: the video's server does not answer Range requests, so the browser cannot seek in it.`;
    note.hidden = false;
  };
  player.addEventListener('seeked', landed);
  player.currentTime = t;
  player.play?.().catch(() => {});
}

/** moments renders a hit's matching video segments (inner_hits of a moments clause), each a
 * button that plays the hit's video from that second when it has one. */
export function moments(hit, cfg) {
  const ms = hit.inner_hits?.moments?.hits?.hits || [];
  if (!ms.length) return null;
  const url = videoOf(hit, cfg);
  const player = url ? el('video', { class: 'clip', controls: '', preload: 'none', src: url }) : null;
  const note = el('p', { class: 'hint seek-note', role: 'status', hidden: true });
  const items = ms.map(m => {
    const s = m._source || {};
    const label = `${clock(s.start)}–${clock(s.end)} ${s.description || ''}`;
    return el('li', {}, player
      ? el('button', { type: 'button', class: 'link moment', 'aria-label': `Play from ${clock(s.start)}: ${s.description || ''}`,
        onclick: () => playFrom(player, Number(s.start) || 0, note) }, label)
      : el('span', { class: 'moment' }, label));
  });
  return el('div', { class: 'moments' }, el('ol', { class: 'moment-list', 'aria-label': 'Matching moments' }, items), player, player ? note : null);
}

/** card renders one hit. */
export function card(hit, rank, cfg, move, onOpen) {
  const src = hit._source || {};
  const img = imageOf(hit, cfg);
  const title = fieldText(src[cfg.title_field]) || hit._id;
  const facts = cfg.fields.filter(f => src[f] !== undefined).map(f => el('li', {}, el('span', { class: 'k' }, f), ' ', fieldText(src[f])));
  return el('li', { class: 'card' },
    el('button', {
      type: 'button', class: 'card-btn', 'data-id': hit._id,
      'aria-label': `Rank ${rank}: ${title}${move ? `, ${move.label}` : ''}. Show its source and explain record`,
      onclick: onOpen,
    },
    el('span', { class: 'rank' }, `#${rank}`),
    move ? el('span', { class: `move ${move.cls}`, title: move.label, 'aria-hidden': 'true' }, move.text) : null,
    img ? el('img', { src: img, alt: '', loading: 'lazy', class: 'thumb' }) : el('span', { class: 'thumb none', 'aria-hidden': 'true' }, 'no photo'),
    el('span', { class: 'title' }, title),
    el('ul', { class: 'fields' }, facts),
    el('span', { class: 'score' }, hit._score != null ? `score ${Number(hit._score).toFixed(3)}` : ''),
    ),
    moments(hit, cfg));
}

/** waterfall draws a request's Server-Timing stages on one time axis, plus the browser's view. */
export function waterfall(rec) {
  const stages = serverTiming(rec.respHeaders?.['server-timing']);
  const get = n => stages.find(s => s.name === n)?.dur ?? 0;
  const total = Math.max(get('total'), rec.ms, 0.001);
  // Where each stage starts: the pipeline runs rewrite, then the search, then the rerank;
  // model time is spent inside rewrite and rerank, so it is drawn from the start.
  const after = { search: get('rewrite'), upstream: get('rewrite'), rerank: get('rewrite') + (get('search') || get('upstream')) };
  const rows = [...stages.filter(s => s.name !== 'total'), { name: 'total', dur: get('total') }, { name: 'browser', dur: rec.ms }];
  return el('div', { class: 'waterfall', role: 'img', 'aria-label': `Server-Timing: ${stages.map(s => `${s.name} ${s.dur.toFixed(1)} ms`).join(', ')}; browser ${rec.ms.toFixed(1)} ms` },
    rows.map(s => {
      const bar = el('span', { class: `bar ${s.name}` });
      bar.style.left = `${((after[s.name] || 0) / total) * 100}%`;
      bar.style.width = `${Math.max((s.dur / total) * 100, 0.5)}%`;
      return el('div', { class: 'wf-row' }, el('span', { class: 'wf-name' }, s.name), el('span', { class: 'wf-track' }, bar), el('span', { class: 'wf-ms' }, `${s.dur.toFixed(1)} ms`));
    }));
}

/** requestItem renders one entry of the request log. */
export function requestItem(rec) {
  const cmd = curl(rec);
  const copied = el('span', { class: 'hint', role: 'status', 'aria-live': 'polite' });
  const pre = el('pre', { class: 'curl', tabindex: '0', 'aria-label': 'curl command' }, cmd);
  const copy = el('button', {
    type: 'button', class: 'link', 'aria-label': `Copy request ${rec.id} as curl`,
    onclick: async () => {
      try { await navigator.clipboard.writeText(cmd); copied.textContent = 'copied'; } catch {
        const r = document.createRange(); r.selectNodeContents(pre);
        const s = getSelection(); s.removeAllRanges(); s.addRange(r);
        copied.textContent = 'selected: press Ctrl+C';
      }
    },
  }, 'Copy as curl');
  return el('li', { class: rec.ok ? 'req' : 'req failed', 'data-id': String(rec.id) },
    el('div', { class: 'req-head' },
      el('span', { class: `code s${String(rec.status)[0]}` }, rec.status || 'ERR'),
      el('span', { class: 'method' }, rec.method), el('span', { class: 'url' }, rec.url),
      rec.label ? el('span', { class: 'hint' }, rec.label) : null,
      copy, copied),
    rec.error ? el('p', { class: 'error' }, rec.error) : null,
    waterfall(rec),
    el('details', {}, el('summary', {}, 'curl'), pre));
}
