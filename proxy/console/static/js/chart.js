// A small inline SVG line chart, drawn here: no chart library, no CDN.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** num formats a plotted value to three significant digits. */
export function num(v) {
  if (v === 0) return '0';
  return String(Number(v.toPrecision(3)));
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// hourLabel is an hour's start in the browser's zone, its minutes included:
// a UTC hour starts at half past in India and at a quarter to in Nepal.
function hourLabel(d) {
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * lineChart draws points [{t: Date, y: number|null, tip: string}] in time
 * order; a null y (an hour without a paid order) breaks the line. Returns an
 * <svg>, or null when no point has a value.
 */
export function lineChart(points, { width = 920, height = 280, label = 'chart' } = {}) {
  const vals = points.filter((p) => p.y !== null && Number.isFinite(p.y));
  if (vals.length === 0) return null;
  const m = { l: 64, r: 18, t: 14, b: 38 };
  const w = width - m.l - m.r;
  const hgt = height - m.t - m.b;
  const t0 = points[0].t.getTime();
  const t1 = points[points.length - 1].t.getTime();
  const x = (t) => m.l + (t1 === t0 ? w / 2 : ((t - t0) / (t1 - t0)) * w);
  const ymax = niceMax(Math.max(...vals.map((p) => p.y)));
  const y = (v) => m.t + hgt - (v / ymax) * hgt;

  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg.append(s('line', { class: i === 0 ? 'axis' : 'grid', x1: m.l, x2: m.l + w, y1: y(v), y2: y(v) }));
    svg.append(s('text', { x: m.l - 8, y: y(v) + 4, 'text-anchor': 'end' }, num(v)));
  }
  svg.append(s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + hgt }));

  const ticks = Math.min(points.length, 6);
  for (let i = 0; i < ticks; i++) {
    const p = points[ticks === 1 ? 0 : Math.round((i * (points.length - 1)) / (ticks - 1))];
    svg.append(s('text', { x: x(p.t.getTime()), y: m.t + hgt + 18, 'text-anchor': 'middle' }, hourLabel(p.t)));
  }

  let seg = [];
  const flush = () => {
    if (seg.length > 1) svg.append(s('polyline', { class: 'line', points: seg.join(' ') }));
    seg = [];
  };
  for (const p of points) {
    if (p.y === null || !Number.isFinite(p.y)) { flush(); continue; }
    seg.push(`${x(p.t.getTime()).toFixed(1)},${y(p.y).toFixed(1)}`);
  }
  flush();
  for (const p of vals) {
    const dot = s('circle', { class: 'dot', cx: x(p.t.getTime()), cy: y(p.y), r: 3.5 });
    dot.append(s('title', {}, p.tip));
    svg.append(dot);
  }
  return svg;
}
