// DOM helpers. Every value from the API goes into the page as text (never as
// HTML), so an order description or a user id cannot inject markup.

/**
 * h creates an element. props: class, text, title, dataset, on{Event}
 * handlers, and any other attribute. Children are nodes, strings or arrays;
 * null and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties el and returns it. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

/** money formats integer fen as "998.00 CNY" without floating point. */
export function money(fen, currency = 'CNY') {
  if (fen === null || fen === undefined) return '—';
  const n = Math.trunc(Number(fen));
  const sign = n < 0 ? '-' : '';
  const a = Math.abs(n);
  return `${sign}${Math.trunc(a / 100)}.${String(a % 100).padStart(2, '0')} ${currency || 'CNY'}`;
}

/**
 * llmCost shows an LLM amount of GET /admin/api/stats (an exact decimal
 * string, up to twelve places) at six places, rounded half-up without
 * floating point, and a positive amount that rounds to nothing as
 * "< 0.000001", not as 0 (a cheap model's cost per transaction). null is
 * "—"; a string that is no decimal is shown as it came.
 */
export function llmCost(s) {
  if (s === null || s === undefined) return '—';
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(s));
  if (!m) return String(s);
  const [, sign, int, frac = ''] = m;
  let n = BigInt(int + frac.padEnd(6, '0').slice(0, 6)); // millionths
  if (frac.length > 6 && frac[6] >= '5') n += 1n;
  if (n === 0n) return /[1-9]/.test(frac) ? `${sign ? '> -' : '< '}0.000001` : '0.000000';
  const t = n.toString().padStart(7, '0');
  return `${sign}${t.slice(0, -6)}.${t.slice(-6)}`;
}

const p2 = (x) => String(x).padStart(2, '0');

/**
 * when formats an RFC 3339 time in the browser's zone, to the second. The
 * page names that zone (zoneName, in the bar), and whenCell's tooltip gives
 * the time in UTC: a manager comparing with WeChat Pay's merchant platform
 * (Beijing time) or a server log (UTC) must know which a time is in.
 */
export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  const s = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
  // The bar names the zone's offset now; a time from the other side of a
  // summer-time change was shown an hour off from what the bar said (an
  // order from July, read in December in New York, at EDT under "UTC-05:00").
  // Such a time names its own offset.
  return d.getTimezoneOffset() === new Date().getTimezoneOffset() ? s : `${s} ${zoneName(d)}`;
}

/** utc formats an RFC 3339 time in UTC, to the second, saying so. */
export function utc(ts) {
  const d = new Date(ts);
  if (!ts || Number.isNaN(d.getTime())) return '';
  return d.toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

/** zoneName is the browser's zone as its offset from UTC now: "UTC+08:00". */
export function zoneName(d = new Date()) {
  const m = -d.getTimezoneOffset();
  return `UTC${m < 0 ? '-' : '+'}${p2(Math.trunc(Math.abs(m) / 60))}:${p2(Math.abs(m) % 60)}`;
}

/**
 * whenCell is when() on two lines (date, time; a third for its own offset),
 * for narrow table columns,
 * with the time in UTC as its tooltip.
 */
export function whenCell(ts) {
  const s = when(ts);
  const [d, t, z] = s.split(' ');
  return t ? h('span', { title: utc(ts) }, d, h('br'), t, z ? [h('br'), h('small', { class: 'hint', text: z })] : null) : s;
}

export function status(s) {
  return h('span', { class: 'status ' + String(s || '').replace(/[^a-z_]/g, ''), text: String(s || '').replace(/_/g, ' ') });
}

export function short(hash, n = 12) {
  return hash ? String(hash).slice(0, n) + '…' : '—';
}

/**
 * table renders rows with columns [{th, td(row) → node|string, class}] and
 * rowProps(row) → props for the <tr>. Each cell carries its column's
 * heading (data-label): on a phone's narrow screen the stylesheet stacks a
 * row's cells under their headings, so a row's amount and buttons are on
 * the screen rather than off its right edge.
 */
export function table(columns, rows, rowProps = () => ({})) {
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class, text: c.th })))),
    h('tbody', {}, rows.map((r) => h('tr', rowProps(r), columns.map((c) => h('td', { class: c.class, 'data-label': c.th || null }, c.td(r)))))));
}

export function card(label, value, { attn = false, id, title } = {}) {
  return h('div', { class: 'card' + (attn ? ' attn' : ''), id },
    h('div', { class: 'k', text: label }), h('div', { class: 'v', text: value, title }));
}

export function empty(text) {
  return h('p', { class: 'empty', text });
}
