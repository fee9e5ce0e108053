// datasets.test.mjs - the dashboard's Datasets page in headless Chromium against a real ssld on
// loopback.
//
//   node datasets.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// `ssld dataset push` uploads a folder of PNGs made here (red/ 3 images, blue/ 2); #/datasets then
// lists it (format, 2 classes, 5 files); opening it shows the files per class and the sample grid
// (an image that loaded), and how a job names it. Screenshot to OUT_DIR. Exit 77 (with the
// reason) when Chromium or playwright-core is missing.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Ssld, Steps, check, chromiumPath, launchChromium, loadPlaywright, skip, until } from './harness.mjs';

const [exe, webDir, outDir] = process.argv.slice(2);
if (!exe || !webDir || !outDir) {
  console.error('usage: node datasets.test.mjs SSLD_EXE WEB_DIR OUT_DIR');
  process.exit(2);
}
if (!fs.existsSync(exe)) skip(`ssld is not built at ${exe}`);
chromiumPath();
await loadPlaywright();
fs.mkdirSync(outDir, { recursive: true });

// A solid-colour 8x8 RGB PNG.
const CRC = Array.from({ length: 256 }, (_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c >>> 0; });
function crc32(buf) { let c = 0xffffffff; for (const b of buf) c = CRC[(c ^ b) & 255] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png([r, g, b]) {
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(8, 0); ihdr.writeUInt32BE(8, 4); ihdr[8] = 8; ihdr[9] = 2;
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(8).fill([r, g, b]).flat())]);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(Array(8).fill(row)))), chunk('IEND', Buffer.alloc(0))]);
}

const steps = new Steps();
const step = (name, fn) => steps.run(name, fn);
const d = new Ssld(exe, webDir);
const src = fs.mkdtempSync(path.join(os.tmpdir(), 'ssld-ds-src-'));
let b;
try {
  for (const [cls, colour, n] of [['red', [220, 30, 30], 3], ['blue', [30, 30, 220], 2]]) {
    fs.mkdirSync(path.join(src, cls));
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(src, cls, `${i}.png`), png(colour));
  }
  await d.start('--workers', '0');
  const push = spawnSync(exe, ['dataset', 'push', src, 'flowers', '--server', d.url('')], { encoding: 'utf8' });
  check(push.status === 0, `ssld dataset push: exit ${push.status}\n${push.stdout}\n${push.stderr}`);

  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });

  await step('the Datasets page lists the upload with its format, classes and files', async () => {
    await page.goto(d.url('/#/datasets'));
    await until(page, () => document.querySelector('main')?.dataset.ready === 'true' && document.querySelector('table.datasets tbody tr button'), null, 30000, 'the datasets table');
    const row = await page.locator('table.datasets tbody tr').first().locator('td').allTextContents();
    check(row[0] === 'anonymous/flowers' && row[1] === 'image_folder' && row[2] === '2' && row[3] === '5', 'row: ' + JSON.stringify(row));
    check(await page.locator('nav a[data-nav="datasets"][aria-current="page"]').count() === 1, 'the nav link is current');
  });

  await step('opening it shows the files per class, the sample grid and the job reference', async () => {
    await page.locator('table.datasets tbody tr button').first().click();
    await until(page, () => document.querySelectorAll('table.classes tbody tr').length === 2, null, 30000, 'the class table');
    const classes = await page.locator('table.classes tbody tr').evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    check(JSON.stringify(classes) === JSON.stringify([['blue', '2'], ['red', '3']]), 'classes: ' + JSON.stringify(classes));
    await until(page, () => { const i = document.querySelector('.dataset-details img'); return i && i.complete && i.naturalWidth > 0; }, null, 30000, 'the sample grid');
    const code = await page.locator('.dataset-details code').first().textContent();
    check(code.includes('"dataset:anonymous/flowers"'), 'job reference: ' + code);
    await page.screenshot({ path: path.join(outDir, 'datasets.png'), fullPage: true });
  });

  await step('no page errors', async () => check(errors.length === 0, errors.join('\n')));
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
  fs.rmSync(src, { recursive: true, force: true });
}
steps.finish();
