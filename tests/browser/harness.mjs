// harness.mjs - what the browser tests and bench/dashboard_bench.mjs share: start a real
// `ssld serve` on a free loopback port with a temporary state directory, talk HTTP to it, and
// launch Debian's Chromium headless through playwright-core, and the step/check/until helpers the
// tests report with. Skips (exit 77, with the reason) when node modules, Chromium or the dataset
// are missing. Not here: the assertions themselves.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

export const FASHION = '/usr/share/datasets/fashion-mnist';

export function skip(reason) {
  console.log('SKIP: ' + reason);
  process.exit(77);
}

export async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    skip('playwright-core is not installed (run tests/browser/setup.sh): ' + e.message.split('\n')[0]);
  }
}

export function chromiumPath() {
  const p = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(p)) skip(`Chromium not found at ${p} (apt-get install chromium, or run tests/browser/setup.sh)`);
  return p;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- reporting -------------------------------------------------------------------------------

export function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Named steps: each runs, prints ok/FAIL with its time, and a failure does not stop the next.
export class Steps {
  constructor() { this.passed = 0; this.failed = 0; this.problems = []; }

  async run(name, fn) {
    const t0 = Date.now();
    try {
      await fn();
      this.passed++;
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      this.fail(name, e.stack || e);
    }
  }

  fail(name, why) {
    this.failed++;
    this.problems.push(name);
    console.log(`FAIL ${name}: ${why}`);
  }

  // Prints the summary and exits 1 when anything failed.
  finish() {
    console.log(`\n${this.passed} passed, ${this.failed} failed`);
    if (this.failed) console.log('failed: ' + this.problems.join('; '));
    process.exit(this.failed ? 1 : 0);
  }
}

// How long any wait may take before it counts as a failure: a bound for a stuck page, never a
// pace. Waits return as soon as their condition holds, so a generous bound costs nothing when
// things work, and a busy 2-core CI box running sanitizers beside Chromium is slow, not wrong.
export const WAIT = 120000;

// Waits until fn() (run in the page) returns a truthy value, for at least WAIT ms (a larger
// timeoutMs is kept: the caller expects something slower).
export async function until(page, fn, arg, timeoutMs, what) {
  const t = Math.max(timeoutMs || 0, WAIT);
  try {
    return await page.waitForFunction(fn, arg, { timeout: t, polling: 100 });
  } catch (e) {
    throw new Error(`timed out after ${t} ms waiting for ${what}`);
  }
}

// Launches headless Chromium with a fresh profile; returns { context, close() }.
export async function launchChromium({ width = 1360, height = 900, colorScheme = 'light' } = {}) {
  const pw = await loadPlaywright();
  const exe = chromiumPath();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ssld-chromium-'));
  const context = await pw.chromium.launchPersistentContext(profile, {
    executablePath: exe,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width, height },
    colorScheme,
    deviceScaleFactor: 1,
  });
  context.setDefaultTimeout(WAIT);   // clicks, fills and locator waits alike
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A real ssld on 127.0.0.1 with its own state directory.
//   const d = new Ssld(exe, webDir); await d.start('--workers', '2'); ... d.url('/#/jobs'); await d.stop();
export class Ssld {
  constructor(exe, webDir) {
    this.exe = exe;
    this.webDir = webDir;
    this.stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssld-browser-'));
    this.proc = null;
    this.port = null;
  }

  async start(...args) {
    const log = fs.openSync(path.join(this.stateDir, 'ssld.log'), 'a');
    this.proc = spawn(this.exe, ['serve', '--listen', '127.0.0.1:0', '--state-dir', this.stateDir, '--web-dir', this.webDir, ...args],
      { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    let exited = null;
    this.proc.on('exit', (code, sig) => { exited = code ?? sig; });
    const portFile = path.join(this.stateDir, 'port');
    for (let i = 0; i < 300; i++) {
      if (exited !== null) throw new Error(`ssld exited (${exited}) during start-up:\n${this.log()}`);
      if (fs.existsSync(portFile)) {
        const p = Number(fs.readFileSync(portFile, 'utf8').trim());
        if (p > 0) {
          this.port = p;
          try { await this.api('GET', '/v1/health'); return this; } catch { /* not answering yet */ }
        }
      }
      await sleep(100);
    }
    throw new Error('ssld did not start within 30 s:\n' + this.log());
  }

  log() {
    try { return fs.readFileSync(path.join(this.stateDir, 'ssld.log'), 'utf8').slice(-4000); } catch { return ''; }
  }

  url(p) { return `http://127.0.0.1:${this.port}${p}`; }

  async api(method, p, body, headers = {}) {
    const r = await fetch(this.url(p), {
      method, headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let data = null;
    try { data = JSON.parse(text); } catch { data = text; }
    if (!r.ok) { const e = new Error(`${method} ${p}: ${r.status} ${text.slice(0, 300)}`); e.status = r.status; e.data = data; throw e; }
    return data;
  }

  async waitJob(id, pred, timeoutMs = 60000) {
    const end = Date.now() + timeoutMs;
    let j;
    while (Date.now() < end) {
      j = await this.api('GET', '/v1/jobs/' + id);
      if (pred(j)) return j;
      await sleep(200);
    }
    throw new Error(`job ${id}: condition not met within ${timeoutMs} ms; last state ${j && j.state}, step ${j && j.progress && j.progress.step}`);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
      await done;
      clearTimeout(t);
    }
    if (!process.env.SSLD_KEEP_STATE) fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

// The short real training job of the browser tests (SimCLR, MLP encoder, a slice of Fashion-MNIST).
export function shortJob(name, { epochs = 3, limitTrain = 512, evaluations, extra } = {}) {
  return {
    name,
    method: 'simclr',
    dataset: { name: 'fashion-mnist', limit_train: limitTrain, limit_test: 256 },
    model: { encoder: 'mlp', hidden: [64], out_dim: 32 },
    pretrain: { epochs, batch_size: 64 },
    evaluations: evaluations || [{ protocol: 'linear_probe', label_fractions: [0.1] }],
    checkpoint_interval_s: 1,
    threads: 1,
    seed: 3,
    ...(extra || {}),
  };
}

// The smallest real job with a result: 256 records, batch 64, one epoch (four steps), then kNN at
// half the labels (no training). Seconds on a busy box.
export function tinyJob(name, { limitTrain = 256, extra } = {}) {
  return shortJob(name, { epochs: 1, limitTrain, evaluations: [{ protocol: 'knn', label_fractions: [0.5] }], extra });
}

// The start of every browser test, `node NAME.test.mjs SSLD_EXE WEB_DIR OUT_DIR`: its arguments,
// the skips (77) when ssld, Fashion-MNIST, Chromium or playwright-core is missing, the screenshot
// directory, and the steps.
//   const { exe, webDir, outDir, steps, step } = await testStart('sweep.test.mjs');
export async function testStart(name) {
  const [exe, webDir, outDir] = process.argv.slice(2);
  if (!exe || !webDir || !outDir) {
    console.error(`usage: node ${name} SSLD_EXE WEB_DIR OUT_DIR`);
    process.exit(2);
  }
  if (!fs.existsSync(exe)) skip(`ssld is not built at ${exe}`);
  if (!fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'))) skip(`Fashion-MNIST is not installed at ${FASHION}`);
  chromiumPath();
  await loadPlaywright();
  fs.mkdirSync(outDir, { recursive: true });
  const steps = new Steps();
  return { exe, webDir, outDir, steps, step: (n, fn) => steps.run(n, fn) };
}

// A w x h PNG of one RGB colour (8-bit, no filter): fixtures for the image-folder tests.
export function solidPng(w, h, rgb) {
  const chunk = (type, body) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tb = Buffer.concat([Buffer.from(type), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(tb) >>> 0);
    return Buffer.concat([len, tb, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(rgb, y * (1 + 3 * w) + 1 + 3 * x);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// The page's script errors and console errors (except those matching `ignore`), collected for a
// final "no page errors" step.
export function pageErrors(page, ignore = null) {
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !(ignore && ignore.test(m.text()))) errors.push('console: ' + m.text()); });
  return errors;
}
