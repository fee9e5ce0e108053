// embedmap.js - the job page's embedding map: the t-SNE map of the job's test embeddings
// (embedding_map.json, written after the evaluations) drawn as points coloured by label, the image
// (or text) of the point under the cursor, and on click that point's 8 nearest neighbours in the
// encoder's space, listed and joined to it on the map.
// Not here: computing the map (engine/methods/embed_map.c), the rest of the job page (job.js).

import { get } from './api.js';
import { h } from './util.js';

export const MAP_FILE = 'embedding_map.json';
export const SPRITE_FILE = 'embedding_map_sprite.png';   // shown through the map, not the gallery
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#7f7f7f'];
const HOVER_PX = 10;    // the nearest point within this distance is "under the cursor"
const THUMB = 84;       // px of a neighbour's picture

export function labelColour(label) {
  if (!(label >= 0)) return '#9aa0aa';
  return label < PALETTE.length ? PALETTE[label] : `hsl(${(label * 137.5) % 360} 55% 50%)`;
}

export class EmbedMap {
  // section: an (empty, hidden) element the view fills from the job's artifacts listing.
  constructor(section) {
    this.section = section;
    this.data = null;
    this.sprite = null;
    this.loadedSig = '';
    this.hover = -1;
    this.selected = -1;
  }

  // Called with each artifacts listing; loads the map once it is there (again if it changed).
  async update(artifacts) {
    const a = (artifacts || []).find((x) => x.name === MAP_FILE);
    if (!a || a.sha256 + a.size === this.loadedSig) return;
    this.loadedSig = a.sha256 + a.size;
    const data = await get(a.url);
    const sp = data.sprite && (artifacts || []).find((x) => x.name === data.sprite.file);
    this.sprite = sp ? await loadImage(sp.url) : null;
    this.data = data;
    this.render();
  }

  render() {
    const d = this.data;
    const n = d.x.length;
    const classes = d.classes || [];
    this.canvas = h('canvas', { class: 'emap-canvas', tabindex: '0', role: 'img',
      'aria-label': `t-SNE map of ${n} test samples coloured by label; click a point for its nearest neighbours` });
    this.tip = h('div', { class: 'emap-tip', hidden: true, role: 'tooltip' });
    this.wrap = h('div', { class: 'emap-wrap' }, this.canvas, this.tip);
    this.panel = h('div', { class: 'emap-nn', 'aria-live': 'polite' },
      h('p', { class: 'hint' }, 'Click a point to see its 8 nearest neighbours in the encoder’s space.'));
    const counts = new Map();
    for (const l of d.label) counts.set(l, (counts.get(l) || 0) + 1);
    const legend = h('ul', { class: 'emap-legend', 'aria-label': 'labels' },
      [...counts.keys()].sort((a, b) => a - b).map((l) => h('li', {},
        h('span', { class: 'swatch', style: { background: labelColour(l) } }),
        l >= 0 ? (classes[l] ?? String(l)) : 'unlabelled', h('span', { class: 'sub' }, ' ' + counts.get(l)))));
    const trust = Number.isFinite(d.trustworthiness) ? ` · trustworthiness ${d.trustworthiness.toFixed(3)} (k = ${d.trustworthiness_k})` : '';
    this.section.replaceChildren(
      h('h2', { id: 'h-emap' }, 'Embedding map'),
      h('p', { class: 'hint' }, `${n.toLocaleString('en-US')} of ${Number(d.test_samples).toLocaleString('en-US')} test samples, ` +
        `t-SNE (perplexity ${d.perplexity}, ${d.iterations} iterations, seed ${d.seed}) of the encoder’s ${d.dim}-d embeddings${trust}. ` +
        'Nearby points have nearby embeddings; neighbours are by L2 distance in the encoder’s space.'),
      h('div', { class: 'emap-layout' }, h('div', { class: 'emap-main' }, this.wrap, legend), this.panel));
    this.section.hidden = false;
    this.section.dataset.points = String(n);
    this.section.embedMap = this;   // for tests: screenPos(i)
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => { this.hover = -1; this.tip.hidden = true; this.draw(); });
    this.canvas.addEventListener('click', (e) => { const i = this.pick(e); if (i >= 0) this.select(i); });
    if (!this.resizer) {
      this.resizer = new ResizeObserver(() => this.layout());
      this.resizer.observe(this.section);
    }
    this.layout();
  }

  layout() {
    if (!this.canvas) return;
    const w = Math.max(200, this.wrap.clientWidth);
    const hgt = Math.min(560, Math.max(260, Math.round(w * 0.75)));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.height = hgt + 'px';
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.w = w;
    this.hgt = hgt;
    this.dpr = dpr;
    // equal scale on both axes (t-SNE distances are isotropic), centred
    const d = this.data;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < d.x.length; i++) {
      x0 = Math.min(x0, d.x[i]); x1 = Math.max(x1, d.x[i]);
      y0 = Math.min(y0, d.y[i]); y1 = Math.max(y1, d.y[i]);
    }
    const pad = 10;
    const s = Math.min((w - 2 * pad) / Math.max(x1 - x0, 1e-9), (hgt - 2 * pad) / Math.max(y1 - y0, 1e-9));
    this.tx = (x) => w / 2 + (x - (x0 + x1) / 2) * s;
    this.ty = (y) => hgt / 2 - (y - (y0 + y1) / 2) * s;
    this.draw();
  }

  // Canvas-relative CSS pixel position of point i.
  screenPos(i) {
    return { x: this.tx(this.data.x[i]), y: this.ty(this.data.y[i]) };
  }

  draw() {
    const d = this.data, c = this.canvas.getContext('2d');
    c.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    c.clearRect(0, 0, this.w, this.hgt);
    const sel = this.selected, nbrs = sel >= 0 ? d.neighbours[sel] : [];
    c.globalAlpha = sel >= 0 ? 0.35 : 0.85;
    for (let i = 0; i < d.x.length; i++) {
      c.fillStyle = labelColour(d.label[i]);
      c.fillRect(this.tx(d.x[i]) - 2, this.ty(d.y[i]) - 2, 4, 4);
    }
    c.globalAlpha = 1;
    const ring = (i, r, colour, width) => {
      c.beginPath();
      c.arc(this.tx(d.x[i]), this.ty(d.y[i]), r, 0, 2 * Math.PI);
      c.strokeStyle = colour;
      c.lineWidth = width;
      c.stroke();
    };
    if (sel >= 0) {
      const fg = getComputedStyle(this.canvas).color || '#000';
      c.strokeStyle = fg;
      c.lineWidth = 1;
      c.globalAlpha = 0.6;
      for (const j of nbrs) {
        c.beginPath();
        c.moveTo(this.tx(d.x[sel]), this.ty(d.y[sel]));
        c.lineTo(this.tx(d.x[j]), this.ty(d.y[j]));
        c.stroke();
      }
      c.globalAlpha = 1;
      for (const j of nbrs) ring(j, 4.5, labelColour(d.label[j]), 2);
      ring(sel, 6, fg, 2.5);
    }
    if (this.hover >= 0) ring(this.hover, 5, getComputedStyle(this.canvas).color || '#000', 1.5);
  }

  pick(e) {
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const d = this.data;
    let best = -1, bd = HOVER_PX * HOVER_PX;
    for (let i = 0; i < d.x.length; i++) {
      const dx = this.tx(d.x[i]) - mx, dy = this.ty(d.y[i]) - my, dd = dx * dx + dy * dy;
      if (dd < bd) { bd = dd; best = i; }
    }
    return best;
  }

  onMove(e) {
    const i = this.pick(e);
    if (i === this.hover) return;
    this.hover = i;
    this.draw();
    if (i < 0) { this.tip.hidden = true; return; }
    const p = this.screenPos(i);
    this.tip.replaceChildren(this.picture(i, THUMB), h('div', { class: 'emap-cap' }, this.caption(i)));
    this.tip.dataset.index = String(this.data.index[i]);
    this.tip.hidden = false;
    const left = p.x + 14 + THUMB + 24 > this.w ? p.x - THUMB - 30 : p.x + 14;
    this.tip.style.left = Math.max(0, left) + 'px';
    this.tip.style.top = Math.max(0, Math.min(this.hgt - THUMB - 40, p.y - THUMB / 2)) + 'px';
  }

  caption(i) {
    const d = this.data, l = d.label[i];
    return `${l >= 0 ? ((d.classes || [])[l] ?? l) : 'unlabelled'} · test #${d.index[i]}`;
  }

  // The sample's image cut from the sprite sheet, or its text.
  picture(i, size) {
    const d = this.data;
    if (this.sprite && d.sprite) {
      const s = d.sprite, cv = h('canvas', { class: 'emap-thumb', width: size, height: Math.round(size * s.h / s.w) });
      const c = cv.getContext('2d');
      c.imageSmoothingEnabled = false;
      c.drawImage(this.sprite, (i % s.cols) * s.w, Math.floor(i / s.cols) * s.h, s.w, s.h, 0, 0, cv.width, cv.height);
      return cv;
    }
    if (d.text) return h('p', { class: 'emap-text' }, d.text[i]);
    return h('span', { class: 'muted' }, '(no preview)');
  }

  select(i) {
    this.selected = i;
    this.draw();
    const d = this.data;
    const same = d.neighbours[i].filter((j) => d.label[j] === d.label[i]).length;
    const fig = (j, cls) => h('figure', { class: 'emap-fig ' + cls, dataset: { index: String(d.index[j]), label: String(d.label[j]) } },
      this.picture(j, THUMB), h('figcaption', {}, h('span', { class: 'swatch', style: { background: labelColour(d.label[j]) } }), this.caption(j)));
    this.panel.replaceChildren(
      h('h3', {}, 'Nearest neighbours'),
      h('p', { class: 'hint' }, `${same} of ${d.neighbours[i].length} share its label.`),
      h('div', { class: 'emap-query' }, fig(i, 'query')),
      h('ol', { class: 'emap-list' }, d.neighbours[i].map((j) => h('li', {}, fig(j, d.label[j] === d.label[i] ? 'same' : 'other')))));
    this.section.dataset.selected = String(d.index[i]);
  }

  destroy() {
    if (this.resizer) this.resizer.disconnect();
  }
}

function loadImage(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);   // the map still draws; previews say there are none
    img.src = url;
  });
}
