// The playground page: query panel, model output, result columns per variant, request log and
// experiments. It talks only to the vlproxy that serves it.

import { call, onRequest } from './api.js';
import { el, pretty, kb, statuses, card, movement, requestItem } from './render.js';

const $ = sel => document.querySelector(sel);
const API = location.pathname.replace(/\/+$/, '') + '/api';

const state = {
  cfg: { image_field: 'image', title_field: 'title', fields: [], experiments: [] },
  photo: null, // {file, dataURI}
  forcedVariants: new Set(), // "experiment/variant" columns
  run: 0,
};

// ---- request log ----
onRequest(rec => {
  const list = $('#request-list');
  list.prepend(requestItem(rec));
  while (list.children.length > 60) list.lastChild.remove();
});

// ---- start-up ----
async function init() {
  const c = await call('GET', `${API}/config`, { label: 'playground config' });
  if (c.ok) state.cfg = c.json;
  await Promise.all([loadHealth(), loadIndices(), loadExperiments()]);
}

async function loadHealth() {
  const r = await call('GET', '/_vlproxy/health', { label: 'health' });
  const h = r.json;
  if (!h) { $('#health').textContent = r.error || 'vlproxy health unknown'; return; }
  const parts = [`cluster via vlproxy: ${h.status}`];
  for (const [name, c] of Object.entries(h.components || {})) parts.push(`${name}: ${c.up ? 'up' : 'DOWN'}`);
  $('#health').textContent = parts.join(' · ');
  $('#health').className = `health ${h.status === 'green' && Object.values(h.components || {}).every(c => c.up) ? 'good' : 'bad'}`;
}

async function loadIndices() {
  const r = await call('GET', '/_cat/indices?format=json&h=index,docs.count&s=index', { label: 'index picker' });
  const sel = $('#index');
  sel.replaceChildren();
  if (!r.ok || !Array.isArray(r.json)) {
    $('#index-help').textContent = `cannot list indices: ${r.error || 'unexpected answer'}`;
    return;
  }
  const names = r.json.filter(i => !i.index.startsWith('.')).map(i => ({ name: i.index, docs: i['docs.count'] }));
  for (const i of names) sel.append(el('option', { value: i.name }, `${i.name} (${i.docs} docs)`));
  const want = state.cfg.default_index || (names.some(i => i.name === 'products') ? 'products' : '');
  if (want && names.some(i => i.name === want)) sel.value = want;
  $('#index-help').textContent = names.length ? '' : 'no indices in the cluster';
}

async function loadExperiments() {
  const r = await call('GET', `${API}/experiments`, { label: 'experiments' });
  const body = $('#exp-body');
  if (!r.ok) { body.replaceChildren(el('p', { class: 'error' }, r.error)); return; }
  const exps = r.json.experiments || [];
  if (!exps.length) { body.replaceChildren(el('p', { class: 'hint' }, 'No experiments configured (config section experiments:).')); return; }
  const metrics = r.json.metrics || {};
  const pct = v => `${(v * 100).toFixed(0)}%`;
  body.replaceChildren(...exps.map(e => el('div', { class: 'exp' },
    el('h3', {}, e.name, ' ', el('span', { class: 'hint' }, `key header ${e.key_header || 'X-User-Id'} · default ${e.default_variant || e.variants[0]?.name}`)),
    el('table', {},
      el('caption', { class: 'sr-only' }, `Variants of experiment ${e.name} and their shadow metrics`),
      el('thead', {}, el('tr', {}, ['variant', 'weight', 'rewrite', 'rerank', 'window', 'scorer', 'requests', 'compared', 'top-1 changed', 'top-k overlap', 'displacement', 'rerank statuses', ''].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, e.variants.map(v => {
        const m = metrics[e.name]?.[v.name];
        const key = `${e.name}/${v.name}`;
        const on = state.forcedVariants.has(key);
        return el('tr', {},
          el('th', { scope: 'row' }, v.name), el('td', {}, v.weight), el('td', {}, v.rewrite === undefined ? '—' : v.rewrite ? 'on' : 'off'),
          el('td', {}, v.rerank || '—'), el('td', {}, v.window_size || '—'), el('td', {}, v.scorer || '—'),
          el('td', {}, m ? m.requests : 0), el('td', {}, m ? m.compared : 0),
          el('td', {}, m && m.compared ? pct(m.top1_change_rate) : '—'),
          el('td', {}, m && m.compared ? pct(m.overlap_mean) : '—'),
          el('td', {}, m && m.compared ? m.displacement_mean.toFixed(2) : '—'),
          el('td', {}, m ? Object.entries(m.rerank_status).map(([s, n]) => `${s} ${n}`).join(', ') : '—'),
          el('td', {}, el('button', {
            type: 'button', class: 'link', 'aria-pressed': String(on),
            'aria-label': `${on ? 'Remove' : 'Add'} a result column forced to variant ${key}`,
            onclick: () => { on ? state.forcedVariants.delete(key) : state.forcedVariants.add(key); loadExperiments(); },
          }, on ? 'in comparison ✓' : 'compare')));
      }))))));
}

// ---- photo ----
async function setPhoto(file) {
  if (!file) return;
  $('#query-error').hidden = true;
  const dataURI = await new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
  state.photo = { file, dataURI };
  $('#photos').hidden = false;
  delete $('#photos').dataset.done;
  $('#photo-sent').src = dataURI;
  $('#photo-model').removeAttribute('src');
  $('#photo-sent-info').textContent = `${kb(file.size)} · ${file.type || 'unknown type'}`;
  $('#photo-model-info').textContent = 'downscaling…';

  $('#photo-sent').onload = () => {
    $('#photo-sent-info').textContent = `${$('#photo-sent').naturalWidth}×${$('#photo-sent').naturalHeight} · ${kb(file.size)} · ${file.type || 'unknown type'}`;
  };
  const r = await call('POST', `${API}/downscale`, { body: file, headers: { 'Content-Type': file.type || 'application/octet-stream' }, label: 'downscale (the proxy\'s own image pipeline)' });
  if (state.photo?.file !== file) return; // another photo came meanwhile
  $('#photos').dataset.done = file.name || 'pasted';
  if (!r.ok) { $('#photo-model-info').textContent = r.error; $('#photo-model-info').className = 'error'; return; }
  const m = r.json.model;
  $('#photo-model').src = m.data_uri;
  $('#photo-model-info').className = '';
  $('#photo-model-info').textContent = `${m.width}×${m.height} · ${kb(m.bytes)} · ${m.format} · ${r.json.resized ? 'downscaled' : 'sent as is'}`;
}

function clearPhoto() {
  state.photo = null;
  $('#photos').hidden = true;
  $('#file').value = '';
  $('#drop').focus();
}

// ---- columns ----
function radio(name) { return document.querySelector(`input[name="${name}"]:checked`)?.value; }

/** specs lists the result columns: the first one is the reference for rank movement. */
function specs(hasText) {
  const mode = $('#mode').value;
  const rerank = radio('rerank');
  const compare = [...document.querySelectorAll('input[name="compare"]:checked')].map(i => i.value);
  const out = [];
  const seen = new Set();
  const add = s => { const k = JSON.stringify([s.mode, s.headers]); if (!seen.has(k)) { seen.add(k); out.push(s); } };
  if (compare.includes('bm25') && hasText) add({ label: 'BM25', mode: '', rerank: 'off', headers: { 'X-VLProxy-Rewrite': 'off', 'X-VLProxy-Rerank': 'off' } });
  for (const m of ['keywords', 'vector', 'hybrid']) if (compare.includes(m)) add({ label: m, mode: m, rerank: 'off', headers: { 'X-VLProxy-Rerank': 'off' } });
  const modeLabel = mode || 'model (profile mode)';
  add({ label: modeLabel, mode, rerank: 'off', headers: { 'X-VLProxy-Rerank': 'off' } });
  if (rerank !== 'off') add({ label: `${modeLabel} + rerank${rerank === 'shadow' ? ' (shadow)' : ''}`, mode, rerank, headers: { 'X-VLProxy-Rerank': rerank } });
  for (const v of state.forcedVariants) add({ label: `variant ${v}`, mode, rerank: 'variant', headers: { 'X-VLProxy-Variant': v } });
  return out;
}

function body(spec, base, size, window) {
  const clause = { ...base };
  if (spec.mode) clause.mode = spec.mode;
  const b = { query: { multimodal: clause }, size, ext: { vlproxy: { explain: true } } };
  if ($('#moments')?.checked) {
    clause.moments = true;
    b._source = { excludes: ['moments.vector'] };
  }
  if (spec.rerank !== 'off') b.ext.vlproxy.rerank = { rank_window_size: window };
  return b;
}

async function search(ev) {
  ev?.preventDefault();
  const text = $('#text').value.trim();
  const err = $('#query-error');
  err.hidden = true;
  if (!text && !state.photo) { err.textContent = 'Give a photo, some text or both.'; err.hidden = false; return; }
  const index = $('#index').value;
  if (!index) { err.textContent = 'Pick an index (none is listed: is the cluster reachable?).'; err.hidden = false; return; }
  const size = Math.max(1, Math.min(100, parseInt($('#size').value, 10) || 8));
  const window = Math.max(1, Math.min(1000, parseInt($('#window').value, 10) || 20));
  const base = {};
  if (text) base.text = text;
  if (state.photo) base.image = state.photo.dataURI;
  if ($('#language').value) base.language = $('#language').value;

  const run = ++state.run;
  const cols = specs(Boolean(text));
  const recs = new Array(cols.length);
  const container = $('#columns');
  container.replaceChildren(...cols.map((c, i) => el('section', { class: 'column', 'aria-busy': 'true', 'data-col': String(i), 'aria-label': `Results: ${c.label}` },
    el('h3', {}, c.label), el('p', { class: 'hint' }, 'searching…'))));
  $('#first-results').textContent = '';
  $('#run').disabled = true;
  const t0 = performance.now();
  let first = 0;
  await Promise.all(cols.map(async (c, i) => {
    const rec = await call('POST', `/${encodeURIComponent(index)}/_search`, { headers: c.headers, body: body(c, base, size, window), label: c.label });
    if (run !== state.run) return;
    recs[i] = rec;
    if (!first && rec.ok) {
      first = performance.now() - t0;
      $('#first-results').textContent = `first results in ${first.toFixed(0)} ms`;
      document.body.dataset.firstResultsMs = first.toFixed(1);
    }
    renderColumns(cols, recs);
  }));
  if (run !== state.run) return;
  $('#run').disabled = false;
  renderModel(cols, recs);
  loadExperiments();
  loadHealth();
}

function hitsOf(rec) { return rec?.json?.hits?.hits || []; }

function renderColumns(cols, recs) {
  const ref = recs[0] && recs[0].ok ? new Map(hitsOf(recs[0]).map((h, i) => [h._id, i + 1])) : null;
  const container = $('#columns');
  cols.forEach((c, i) => {
    const rec = recs[i];
    if (!rec) return;
    const col = container.querySelector(`[data-col="${i}"]`);
    const took = rec.json?.took;
    const total = rec.json?.hits?.total;
    const children = [
      el('h3', {}, c.label),
      el('div', { class: 'statuses' }, rec.status ? statuses(rec) : []),
      el('p', { class: 'hint' }, `${rec.status || 'no answer'} · ${rec.ms.toFixed(0)} ms${took !== undefined ? ` · ES took ${took} ms` : ''}${total ? ` · ${total.value ?? total} hits` : ''}`),
    ];
    if (!rec.ok) {
      children.push(el('p', { class: 'error', role: 'alert' }, rec.error));
    } else if (!hitsOf(rec).length) {
      children.push(el('p', { class: 'hint' }, c.label === 'BM25' || !c.mode ? 'no hits' : 'no hits'));
    } else {
      children.push(el('ol', { class: 'cards' }, hitsOf(rec).map((h, k) =>
        card(h, k + 1, state.cfg, i > 0 ? movement(ref, h._id, k + 1) : null, () => openDetail(c, rec, h, k + 1)))));
    }
    col.replaceChildren(...children);
    col.setAttribute('aria-busy', 'false');
  });
}

function renderModel(cols, recs) {
  // The model's view comes from the first column that asked the model (not BM25).
  let k = cols.findIndex((c, i) => recs[i]?.json?.ext?.vlproxy?.rewrite && c.label !== 'BM25');
  if (k < 0) k = cols.findIndex((c, i) => recs[i] && c.label !== 'BM25');
  if (k < 0) k = 0;
  const rec = recs[k];
  $('#model-empty').hidden = true;
  $('#model-body').hidden = false;
  $('#statuses').replaceChildren(...(rec && rec.status ? statuses(rec) : []),
    rec && !rec.ok ? el('p', { class: 'error', role: 'alert' }, rec.error) : '');
  const rw = rec?.json?.ext?.vlproxy?.rewrite || {};
  const chips = (xs) => xs.length ? xs.map(x => el('span', { class: 'chip' }, x)) : [el('span', { class: 'hint' }, '—')];
  $('#keywords').replaceChildren(...chips(rw.keywords || []));
  $('#category').textContent = rw.category || '—';
  $('#attributes').replaceChildren(...chips(Object.entries(rw.attributes || {}).map(([a, v]) => `${a}: ${v}`)));
  $('#model-name').textContent = [rw.model, rw.prompt_version && `prompt ${rw.prompt_version}`, rw.fallback && `fallback: ${rw.fallback}`].filter(Boolean).join(' · ') || '—';
  $('#rewritten').textContent = rw.query ? pretty(rw.query) : (rec?.error || 'no rewritten query in the response');
}

function openDetail(col, rec, hit, rank) {
  const ext = rec.json?.ext?.vlproxy || {};
  const rr = ext.rerank?.hits?.find(h => h._id === hit._id && (!h._index || h._index === hit._index));
  $('#detail-h').textContent = `#${rank} ${hit._source?.[state.cfg.title_field] || hit._id} — ${col.label}`;
  $('#detail-explain').textContent = pretty({
    _index: hit._index, _id: hit._id, rank, _score: hit._score,
    rerank: rr || (ext.rerank ? 'not in the rerank window' : 'not reranked in this column'),
    rerank_scorer: ext.rerank ? { scorer: ext.rerank.scorer, model: ext.rerank.model, status: ext.rerank.status, window: ext.rerank.window } : undefined,
    status: ext.status,
    keywords: ext.rewrite?.keywords,
  });
  const src = { ...hit._source };
  const img = src[state.cfg.image_field];
  if (typeof img === 'string' && img.length > 200) src[state.cfg.image_field] = `${img.slice(0, 80)}… (${img.length} characters)`;
  $('#detail-source').textContent = pretty(src);
  const d = $('#detail');
  d.returnFocus = document.activeElement;
  d.showModal();
  $('#detail-close').focus();
}

// ---- events ----
function wire() {
  const drop = $('#drop');
  const file = $('#file');
  drop.addEventListener('click', () => file.click());
  drop.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } });
  file.addEventListener('change', () => setPhoto(file.files[0]));
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', e => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = [...(e.dataTransfer?.files || [])].find(f => f.type.startsWith('image/'));
    if (f) setPhoto(f);
  });
  document.addEventListener('paste', e => {
    const item = [...(e.clipboardData?.items || [])].find(i => i.kind === 'file' && i.type.startsWith('image/'));
    if (item) { e.preventDefault(); setPhoto(item.getAsFile()); }
  });
  $('#photo-clear').addEventListener('click', clearPhoto);
  $('#query').addEventListener('submit', search);
  $('#query').addEventListener('keydown', e => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) search(e); });
  $('#exp-refresh').addEventListener('click', loadExperiments);
  const d = $('#detail');
  $('#detail-close').addEventListener('click', () => d.close());
  d.addEventListener('close', () => d.returnFocus?.focus());
  d.addEventListener('click', e => { if (e.target === d) d.close(); });
}

wire();
init().then(() => { document.body.dataset.ready = 'true'; });
