// charts.js - line charts on uPlot (web/vendor/uplot, loaded by index.html as window.uPlot): one
// class for a metric curve (one or several series, log y, EMA smoothing, x as step or time) and
// one for the label-efficiency picture. Colours come from the CSS variables, so dark mode follows.
// Not here: fetching (series.js) or page layout.

import { ema } from './series.js';
import { fmtNum, h } from './util.js';

const uPlot = window.uPlot;

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function palette() {
  const out = [];
  for (let i = 1; i <= 8; i++) out.push(css('--c' + i, '#2563eb'));
  return out;
}

function axisStyle() {
  const fg = css('--muted', '#667');
  const grid = css('--grid', 'rgba(0,0,0,0.08)');
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
}

function yAxis(extra) {
  return Object.assign(axisStyle(), { size: 56, values: (u, vals) => vals.map((v) => fmtNum(v, 3)) }, extra);
}

function alpha(color, a) {
  // '#rrggbb' -> rgba with alpha; other forms are returned unchanged.
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!m) return color;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${a})`;
}

// Width of an element's content box, for charts that fill their card.
function widthOf(el) {
  return Math.max(200, Math.floor(el.getBoundingClientRect().width));
}

// A card holding one chart: <figure> with a caption, a fixed-height box (so nothing jumps when
// data arrives) and the uPlot instance inside.
//   const c = new MetricChart(parent, { title: 'loss', height: 200 });
//   c.setSeries([{ label: 'job 3', x: [...steps], y: [...values], t: [...times] }], { log, smoothing, xMode });
export class MetricChart {
  constructor(parent, { title, height = 200, description } = {}) {
    this.height = height;
    this.title = title;
    this.caption = h('figcaption', {}, h('span', { class: 'ctitle' }, title), h('span', { class: 'clatest' }));
    this.box = h('div', { class: 'chart-box', style: { height: height + 34 + 'px' } });
    this.el = h('figure', { class: 'chart-card', role: 'group', 'aria-label': description || 'chart of ' + title },
      this.caption, this.box);
    this.summary = h('p', { class: 'visually-hidden' });
    this.el.append(this.summary);
    parent.append(this.el);
    this.u = null;
    this.sig = '';
    this.ro = new ResizeObserver(() => {
      if (this.u) {
        const w = widthOf(this.box);
        if (w !== this.u.width) this.u.setSize({ width: w, height: this.height });
      }
    });
    this.ro.observe(this.box);
  }

  // series: [{ label, x, y, t }]; opts: { log, smoothing (0..0.999), xMode: 'step'|'time' }
  setSeries(series, { log = false, smoothing = 0, xMode = 'step', timeOf = null } = {}) {
    const colors = palette();
    const single = series.length === 1;
    const useTime = xMode === 'time';
    // x per series, then one aligned table (uPlot.join) so series with different steps overlay.
    const tables = [];
    const defs = [];
    series.forEach((s, i) => {
      let x = s.x;
      if (useTime) x = s.t && s.t.every((v) => v !== null) ? s.t : s.x.map((st) => (timeOf ? timeOf(s, st) : st));
      let y = s.y;
      if (log) y = y.map((v) => (v !== null && v > 0 ? v : null));
      const color = s.color || colors[i % colors.length];
      const sm = smoothing > 0 ? ema(y, smoothing) : null;
      if (sm && single) {
        tables.push([x, y, sm]);
        defs.push({ label: s.label + ' (raw)', stroke: alpha(color, 0.28), width: 1 });
        defs.push({ label: s.label, stroke: color, width: 1.75 });
      } else {
        tables.push([x, sm || y]);
        defs.push({ label: s.label, stroke: color, width: single ? 1.5 : 1.75 });
      }
    });
    const data = tables.length === 1 ? tables[0] : tables.length ? uPlot.join(tables) : [[]];
    // Markers only where a line cannot show the data (a handful of points, e.g. one evaluation).
    const few = (u, si) => (u.data[si] || []).filter((v) => v !== null).length < 4;
    const sig = [log, useTime, defs.map((d) => d.label + d.stroke).join('|')].join(';');
    if (!this.u || sig !== this.sig) {
      this.destroyPlot();
      this.sig = sig;
      const opts = {
        width: widthOf(this.box),
        height: this.height,
        scales: {
          x: { time: useTime },
          y: log ? { distr: 3, log: 10 } : { auto: true },
        },
        series: [
          { label: useTime ? 'time' : 'step', value: (u, v) => (v === null ? '—' : useTime ? new Date(v * 1000).toLocaleTimeString([], { hour12: false }) : fmtNum(v)) },
          ...defs.map((d) => ({ label: d.label, stroke: d.stroke, width: d.width, spanGaps: true, points: { show: few, size: 5, fill: d.stroke },
            value: (u, v) => fmtNum(v) })),
        ],
        axes: [axisStyle(), yAxis()],
        legend: { show: true, live: true },
        cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      };
      this.u = new uPlot(opts, data, this.box);
    } else {
      this.u.setData(data);
    }
    // caption: latest value of the first (or only) series
    const s0 = series[0];
    const last = s0 && s0.y.length ? s0.y[s0.y.length - 1] : null;
    const latest = this.caption.querySelector('.clatest');
    const txt = series.length === 1 && last !== null ? fmtNum(last) + ' @ ' + fmtNum(s0.x[s0.x.length - 1]) : '';
    if (latest.textContent !== txt) latest.textContent = txt;
    this.summary.textContent = series.map((s) => `${s.label}: ${s.x.length} points, latest ${fmtNum(s.y[s.y.length - 1])}`).join('; ');
    this.el.dataset.points = String(series.reduce((n, s) => n + s.x.length, 0));
  }

  destroyPlot() {
    if (this.u) {
      this.u.destroy();
      this.u = null;
    }
  }

  destroy() {
    this.ro.disconnect();
    this.destroyPlot();
    this.el.remove();
  }
}

// Test accuracy against label fraction (log x), one line per protocol: the label-efficiency
// picture. rows: [{ protocol, label_fraction, test_accuracy }].
export class EfficiencyChart {
  constructor(parent, { height = 200 } = {}) {
    this.height = height;
    this.box = h('div', { class: 'chart-box', style: { height: height + 34 + 'px' } });
    this.el = h('figure', { class: 'chart-card', role: 'group', 'aria-label': 'test accuracy against the fraction of labels, per protocol' },
      h('figcaption', {}, h('span', { class: 'ctitle' }, 'label efficiency'), h('span', { class: 'clatest' }, 'test accuracy vs. labels')), this.box);
    parent.append(this.el);
    this.u = null;
    this.sig = '';
    this.ro = new ResizeObserver(() => {
      if (this.u) {
        const w = widthOf(this.box);
        if (w !== this.u.width) this.u.setSize({ width: w, height: this.height });
      }
    });
    this.ro.observe(this.box);
  }

  set(rows, protocols) {
    const colors = palette();
    const fr = [...new Set(rows.map((r) => r.label_fraction))].filter((f) => f > 0).sort((a, b) => a - b);
    const data = [fr];
    for (const p of protocols) data.push(fr.map((f) => {
      const r = rows.find((q) => q.protocol === p && q.label_fraction === f);
      return r && Number.isFinite(r.test_accuracy) ? r.test_accuracy : null;
    }));
    const sig = protocols.join('|') + fr.length;
    if (this.u && sig === this.sig) { this.u.setData(data); return; }
    if (this.u) this.u.destroy();
    this.sig = sig;
    const baseline = css('--muted', '#777');
    this.u = new uPlot({
      width: widthOf(this.box),
      height: this.height,
      scales: {
        x: { time: false, distr: 3, log: 10, range: (u, mn, mx) => [mn / 2, mx * 2] },
        y: { range: (u, mn, mx) => [Math.max(0, Math.floor((mn - 0.05) * 10) / 10), Math.min(1, Math.ceil((mx + 0.05) * 10) / 10)] },
      },
      series: [
        { label: 'labels', value: (u, v) => (v === null ? '—' : fmtPctShort(v)) },
        ...protocols.map((p, i) => ({
          label: p, spanGaps: true, width: 2,
          stroke: p === 'supervised' ? baseline : colors[i % colors.length],
          dash: p === 'supervised' ? [6, 4] : undefined,
          points: { show: true, size: 7 },
          value: (u, v) => (v === null ? '—' : (v * 100).toFixed(1) + '%'),
        })),
      ],
      axes: [
        Object.assign(axisStyle(), { values: (u, vals) => vals.map((v) => (v === null ? '' : fmtPctShort(v))) }),
        yAxis({ values: (u, vals) => vals.map((v) => Math.round(v * 100) + '%') }),
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
    }, data, this.box);
  }

  destroy() {
    this.ro.disconnect();
    if (this.u) this.u.destroy();
    this.el.remove();
  }
}

function fmtPctShort(v) {
  const p = v * 100;
  return (p >= 1 ? Number(p.toPrecision(3)) : Number(p.toPrecision(2))) + '%';
}
