// dashboard_bench.mjs - how fast the dashboard's job page renders a long job in headless Chromium,
// against a real ssld on loopback. Setup: jobs queued through the API (no workers), then 100,000
// steps of metrics written into their rows by dashboard_bench.py. Measured, per case, over REPS
// cold page loads: time from navigation start until every chart has data and has painted
// (main[data-ready] + two animation frames), and the slowest metrics request inside it.
//   A  100,000 points: one key (loss) at every step            (the page asks max_points=2000)
//   B  100,000 steps x 3 dense keys + health + evaluations      (the page asks max_points=2000)
//   C  case A at full resolution (#/job/N?max_points=100000): 100,000 points drawn by uPlot
// Then the chart libraries alone, on a blank page: one line of 100,000 points drawn into a
// 1200x240 canvas by uPlot (web/vendor), and, when Debian's libjs-chart.js / libjs-dygraphs are
// installed, by Chart.js (without and with its LTTB decimation plugin) and dygraphs: ms from
// construction to painted, median of REPS. This is the measurement behind docs/dashboard.md.
// Needs tests/browser/setup.sh (Chromium, playwright-core). Prints tables, then one JSON line.
//
//   node bench/dashboard_bench.mjs SSLD_EXE [--reps N]

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ssld, launchChromium, sleep } from '../tests/browser/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const exe = process.argv[2];
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg > 0 ? Number(process.argv[repsArg + 1]) : 7;
if (!exe) { console.error('usage: node bench/dashboard_bench.mjs SSLD_EXE [--reps N]'); process.exit(2); }
const STEPS = 100000;

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const d = new Ssld(exe, path.join(here, '..', 'web'));
let b;
const out = {};
try {
  await d.start('--workers', '0');
  const spec = { method: 'simclr', dataset: { name: 'fashion-mnist', limit_train: 512 }, model: { encoder: 'mlp', hidden: [64], out_dim: 32 } };
  const db = path.join(d.stateDir, 'ssld.db');
  const fill = (name, keys) => {
    return d.api('POST', '/v1/jobs', { ...spec, name }).then((r) => {
      const t0 = Date.now();
      const n = Number(execFileSync(process.env.PYTHON || '/usr/bin/python3', [path.join(here, 'dashboard_bench.py'), db, String(r.id), String(STEPS), keys]).toString().trim());
      console.log(`setup: job ${r.id} "${name}": ${n.toLocaleString('en-US')} points written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return { id: r.id, points: n };
    });
  };
  const jobA = await fill('bench-100k-points', 'loss');
  const jobB = await fill('bench-100k-steps-3-keys', 'loss,lr,grad_norm');

  b = await launchChromium({ width: 1360, height: 900 });
  out.load_before = os.loadavg()[0];
  const cases = [
    { name: 'A', what: '100k points (loss), max_points=2000', hash: `#/job/${jobA.id}`, points: jobA.points },
    { name: 'B', what: `${(jobB.points / 1000).toFixed(0)}k points (3 dense keys + health + evals), max_points=2000`, hash: `#/job/${jobB.id}`, points: jobB.points },
    { name: 'C', what: '100k points (loss), full resolution', hash: `#/job/${jobA.id}?max_points=100000`, points: jobA.points },
  ];
  console.log('\ncase  ms to rendered (median / max)  slowest metrics request ms  points drawn  what');
  for (const c of cases) {
    const times = [], reqs = [];
    let drawn = 0;
    for (let i = 0; i < REPS + 1; i++) {
      const page = await b.context.newPage();
      await page.goto(d.url('/') + c.hash, { waitUntil: 'commit' });
      await page.waitForFunction(() => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('[data-key="loss"] canvas'), null, { timeout: 60000, polling: 'raf' });
      const r = await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(() => {
        const metrics = performance.getEntriesByType('resource').filter((e) => e.name.includes('/metrics'));
        res({ t: performance.now(), req: Math.max(0, ...metrics.map((e) => e.duration)),
          drawn: Number(document.querySelector('[data-key="loss"]').dataset.points) });
      }))));
      await page.close();
      if (i === 0) continue;           // the first load warms the server's page cache
      times.push(r.t); reqs.push(r.req); drawn = r.drawn;
      await sleep(100);
    }
    out[c.name] = { what: c.what, points_in_db: c.points, loss_points_drawn: drawn, ms_median: Math.round(median(times)), ms_max: Math.round(Math.max(...times)), metrics_request_ms_median: Math.round(median(reqs)) };
    console.log(`${c.name.padEnd(6)}${(median(times).toFixed(0) + ' / ' + Math.max(...times).toFixed(0)).padEnd(32)}${median(reqs).toFixed(0).padEnd(29)}${String(drawn).padEnd(14)}${c.what}`);
  }
  out.libs = await libraries(b.context);
} finally {
  if (b) await b.close();
  await d.stop();
}

// One 100k-point line per library, each in a fresh blank page with only that library loaded.
async function libraries(context) {
  const libs = [
    { name: 'uPlot 1.6.32', file: path.join(here, '..', 'web', 'vendor', 'uplot', 'uPlot.iife.min.js'),
      draw: (xs, ys, el) => new window.uPlot({ width: 1200, height: 240, series: [{}, { stroke: '#2563eb' }] }, [xs, ys], el) },
    { name: 'Chart.js 3.9 (Debian)', file: '/usr/share/javascript/chart.js/chart.min.js',
      draw: (xs, ys, el) => {
        const c = document.createElement('canvas'); el.style.width = '1200px'; el.style.height = '240px'; el.append(c);
        return new window.Chart(c, { type: 'line', data: { datasets: [{ data: xs.map((x, i) => ({ x, y: ys[i] })), borderColor: '#2563eb', borderWidth: 1, pointRadius: 0 }] },
          options: { animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false, spanGaps: true,
            scales: { x: { type: 'linear' } }, plugins: { legend: { display: false } } } });
      } },
    { name: 'Chart.js 3.9 + decimation', file: '/usr/share/javascript/chart.js/chart.min.js',
      draw: (xs, ys, el) => {
        const c = document.createElement('canvas'); el.style.width = '1200px'; el.style.height = '240px'; el.append(c);
        return new window.Chart(c, { type: 'line', data: { datasets: [{ data: xs.map((x, i) => ({ x, y: ys[i] })), borderColor: '#2563eb', borderWidth: 1, pointRadius: 0 }] },
          options: { animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false, spanGaps: true,
            scales: { x: { type: 'linear' } }, plugins: { legend: { display: false }, decimation: { enabled: true, algorithm: 'lttb', samples: 2000 } } } });
      } },
    { name: 'dygraphs 2.2 (Debian)', file: '/usr/share/javascript/dygraphs/dygraph.min.js',
      draw: (xs, ys, el) => new window.Dygraph(el, xs.map((x, i) => [x, ys[i]]), { width: 1200, height: 240, labels: ['step', 'loss'] }) },
  ];
  const res = {};
  console.log('\nlibrary                      bytes (min)  gzip     ms to draw 100k points (median / max)');
  for (const lib of libs) {
    if (!fs.existsSync(lib.file)) { console.log(`${lib.name.padEnd(29)}not installed (${lib.file})`); continue; }
    const bytes = fs.statSync(lib.file).size;
    const gz = (await import('node:zlib')).gzipSync(fs.readFileSync(lib.file)).length;
    const times = [];
    for (let i = 0; i < REPS + 1; i++) {
      const page = await context.newPage();
      await page.setContent('<!doctype html><div id="c"></div>');
      await page.addScriptTag({ path: lib.file });
      const t = await page.evaluate(async (src) => {
        const draw = (0, eval)('(' + src + ')');
        const n = 100000, xs = new Array(n), ys = new Array(n);
        let v = 4.5;
        for (let k = 0; k < n; k++) { xs[k] = k + 1; v += (Math.sin(k * 12.9898) * 43758.5453 % 1) * 0.02 - 0.0001 * (v - 3.6) * 10; ys[k] = v; }
        const t0 = performance.now();
        draw(xs, ys, document.getElementById('c'));
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return performance.now() - t0;
      }, lib.draw.toString());
      await page.close();
      if (i > 0) times.push(t);
    }
    res[lib.name] = { bytes, gzip: gz, ms_median: Math.round(median(times)), ms_max: Math.round(Math.max(...times)) };
    console.log(`${lib.name.padEnd(29)}${String(bytes).padEnd(13)}${String(gz).padEnd(9)}${median(times).toFixed(0)} / ${Math.max(...times).toFixed(0)}`);
  }
  return res;
}
// Timings scale with whatever else runs: the 1-minute load average is part of the result.
console.log(`\nload average (1 min) ${out.load_before.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after, on ${os.cpus().length} CPUs`);
console.log(JSON.stringify({ bench: 'dashboard', reps: REPS, steps: STEPS, cpus: os.cpus().length, load_before: out.load_before, load_after: os.loadavg()[0], cases: Object.fromEntries(Object.entries(out).filter(([k]) => k.length === 1)), libraries: out.libs }));
