// Talking to vlproxy: every request goes through call(), which records it for the request log
// (Copy as curl, Server-Timing waterfall) and turns ES-shaped errors into readable messages.

const listeners = [];
let nextID = 1;

/** onRequest registers f(record) to be called when a request finishes. */
export function onRequest(f) { listeners.push(f); }

/**
 * call sends one request to the proxy serving this page and returns its record:
 * {id, label, method, url, headers, body, status, ok, respHeaders, json, text, error, ms}.
 * body may be a string, a Blob or an object (sent as JSON). It never throws.
 */
export async function call(method, url, { headers = {}, body, label = '' } = {}) {
  const rec = { id: nextID++, label, method, url, headers: { ...headers }, status: 0, ok: false, ms: 0 };
  let sent = body;
  if (body !== undefined && typeof body === 'object' && !(body instanceof Blob)) {
    sent = JSON.stringify(body);
    rec.headers['Content-Type'] ??= 'application/json';
  }
  rec.body = body instanceof Blob ? body : sent;
  const t0 = performance.now();
  try {
    const resp = await fetch(url, { method, headers: rec.headers, body: sent, credentials: 'same-origin', cache: 'no-store' });
    rec.status = resp.status;
    rec.ok = resp.ok;
    rec.respHeaders = Object.fromEntries(resp.headers.entries());
    rec.text = await resp.text();
    try { rec.json = JSON.parse(rec.text); } catch { rec.json = undefined; }
    if (!resp.ok) rec.error = describeError(resp.status, rec.json, rec.text);
  } catch (e) {
    rec.error = `cannot reach vlproxy: ${e.message}`;
  }
  rec.ms = performance.now() - t0;
  for (const f of listeners) f(rec);
  return rec;
}

/** describeError renders an ES-shaped error (or any other body) as one readable sentence. */
export function describeError(status, json, text) {
  const e = json && json.error;
  if (e && typeof e === 'object') {
    const causes = (e.root_cause || []).map(c => c.reason).filter(r => r && r !== e.reason);
    let msg = `${status} ${e.type || 'error'}: ${e.reason || ''}`;
    if (causes.length) msg += ` (caused by: ${causes.join('; ')})`;
    return msg;
  }
  if (typeof e === 'string') return `${status}: ${e}`;
  return `${status}: ${(text || '').slice(0, 300) || 'no body'}`;
}

/** serverTiming parses "name;dur=1.5, other;dur=2" into [{name, dur}]. */
export function serverTiming(header) {
  if (!header) return [];
  return header.split(',').map(part => {
    const [name, ...params] = part.trim().split(';');
    let dur = 0;
    for (const p of params) {
      const [k, v] = p.trim().split('=');
      if (k === 'dur') dur = parseFloat(v) || 0;
    }
    return { name: name.trim(), dur };
  }).filter(t => t.name);
}

/** shellQuote quotes s for a POSIX shell. */
function shellQuote(s) { return `'${String(s).replaceAll("'", `'\\''`)}'`; }

/** curl renders a request record as a curl command line. Large bodies (images) go to a file. */
export function curl(rec) {
  const origin = location.origin;
  const parts = ['curl', '-sS'];
  if (rec.method !== 'GET') parts.push('-X', rec.method);
  parts.push(shellQuote(new URL(rec.url, origin).href));
  for (const [k, v] of Object.entries(rec.headers)) parts.push('-H', shellQuote(`${k}: ${v}`));
  if (rec.body instanceof Blob) {
    parts.push('--data-binary', '@photo.jpg');
  } else if (rec.body !== undefined) {
    parts.push('--data-binary', shellQuote(rec.body));
  }
  return parts.join(' ');
}
