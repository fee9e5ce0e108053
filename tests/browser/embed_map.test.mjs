// embed_map.test.mjs - the job page's embedding map in headless Chromium against a real ssld on
// loopback.
//
//   node embed_map.test.mjs SSLD_EXE WEB_DIR OUT_DIR
//
// One tiny real job (SimCLR, 4 steps, kNN) with "embedding_map": {"points": 200, ...} maps 200 of
// its 256 test samples. Checks: the job's artifacts hold embedding_map.json (x, y, label, index and
// 8 other mapped points as neighbours for every point), the sprite PNG and the mapped embeddings
// (.npy), against which every point's neighbours are checked to be its 8 nearest by L2; the
// page draws the map with one legend entry per label present and keeps the sprite out of the
// artifact gallery; the point under the cursor shows its picture and the tooltip names that
// sample; clicking a point lists exactly its 8 neighbours from the file, in order, each with its
// picture, and the query itself. Screenshots go to OUT_DIR. Exit 77 (with the reason) when
// Chromium, playwright-core or Fashion-MNIST is missing.

import fs from 'node:fs';
import path from 'node:path';
import { Ssld, check, launchChromium, tinyJob, until, testStart, pageErrors } from './harness.mjs';

const { exe, webDir, outDir, steps, step } = await testStart('embed_map.test.mjs');

const POINTS = 200;

const d = new Ssld(exe, webDir);
let b;
try {
  await d.start('--workers', '1', '--job-threads', '1', '--flush-interval', '0.25');
  const spec = tinyJob('mapped', { extra: { embedding_map: { points: POINTS, perplexity: 15, iterations: 300 } } });
  const job = await d.api('POST', '/v1/jobs', spec);
  const fin = await d.waitJob(job.id, (j) => j.state !== 'queued' && j.state !== 'running', 240000);
  check(fin.state === 'succeeded', `the job succeeds: ${fin.state} ${fin.error || ''}`);
  let map = null;

  await step('the map and its sprite are artifacts; the file is complete', async () => {
    const arts = (await d.api('GET', `/v1/jobs/${job.id}/artifacts`)).artifacts.map((a) => a.name);
    check(arts.includes('embedding_map.json') && arts.includes('embedding_map_sprite.png'), 'artifacts: ' + arts.join(', '));
    map = await d.api('GET', `/v1/jobs/${job.id}/artifacts/embedding_map.json`);
    check(map.points === POINTS && map.x.length === POINTS && map.y.length === POINTS && map.label.length === POINTS && map.index.length === POINTS,
      `${POINTS} points in every array: ${map.points} ${map.x.length} ${map.label.length} ${map.index.length}`);
    check(map.neighbours.every((n, i) => n.length === 8 && !n.includes(i) && n.every((j) => j >= 0 && j < POINTS)), '8 other mapped points per point');
    check(map.index.every((v, i) => v >= 0 && v < 256 && (i === 0 || v > map.index[i - 1])), 'test indices ascending within the 256 test samples');
    check(map.sprite && map.sprite.w === 28 && map.sprite.h === 28 && map.sprite.cols === Math.ceil(Math.sqrt(POINTS)), 'sprite geometry: ' + JSON.stringify(map.sprite));
    check(map.trustworthiness > 0.5 && map.trustworthiness <= 1, 'trustworthiness ' + map.trustworthiness);
    check(fin.results && fin.results.embedding_map && fin.results.embedding_map.points === POINTS, 'results name the map: ' + JSON.stringify(fin.results && fin.results.embedding_map));
  });

  await step('each point\'s neighbours are its 8 nearest by L2 in the mapped embeddings (the .npy)', async () => {
    const r = await fetch(d.url(`/v1/jobs/${job.id}/artifacts/embedding_map_features.npy`));
    check(r.ok, 'features artifact: ' + r.status);
    const buf = Buffer.from(await r.arrayBuffer());
    check(buf.subarray(0, 6).toString('latin1') === '\x93NUMPY', 'npy magic');
    const hlen = buf.readUInt16LE(8), header = buf.subarray(10, 10 + hlen).toString('latin1');
    const shape = /'shape': \((\d+), (\d+)\)/.exec(header);
    check(shape && Number(shape[1]) === POINTS && /'<f4'/.test(header), 'header: ' + header);
    const dim = Number(shape[2]);
    check(dim === map.dim, `dim ${dim} vs ${map.dim}`);
    const body = buf.subarray(10 + hlen);
    const f = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + POINTS * dim * 4));
    const dist = (i, j) => { let s = 0; for (let c = 0; c < dim; c++) { const t = f[i * dim + c] - f[j * dim + c]; s += t * t; } return s; };
    let bad = 0;
    for (let i = 0; i < POINTS; i++) {
      const want = [...Array(POINTS).keys()].filter((j) => j !== i).sort((a, b) => dist(i, a) - dist(i, b) || a - b).slice(0, 8);
      const got = map.neighbours[i];
      // equal up to float rounding: the k-th listed distance bounds every unlisted point's
      const kth = dist(i, got[7]);
      if (got.some((j, m) => m > 0 && dist(i, j) < dist(i, got[m - 1]) * (1 - 1e-4)) ||
          want.some((j) => !got.includes(j) && dist(i, j) < kth * (1 - 1e-4))) bad++;
    }
    check(bad === 0, `${bad} of ${POINTS} points list neighbours that are not their 8 nearest`);
  });

  b = await launchChromium();
  const page = await b.context.newPage();
  const errors = pageErrors(page);

  await step('the job page draws the map with a legend, the sprite is not in the gallery', async () => {
    await page.goto(d.url('/#/job/' + job.id));
    await until(page, (n) => document.querySelector('section.emap')?.dataset.points === String(n), POINTS, 30000, 'the embedding map section');
    const legend = await page.locator('.emap-legend li').count();
    check(legend === new Set(map.label).size, `one legend entry per label: ${legend} vs ${new Set(map.label).size}`);
    const gallery = await page.locator('.gallery img').evaluateAll((is) => is.map((i) => i.getAttribute('src')));
    check(!gallery.some((s) => s.includes('embedding_map_sprite')), 'sprite kept out of the gallery: ' + gallery.join(', '));
    const painted = await page.evaluate(() => {
      const c = document.querySelector('.emap-canvas');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
      return n;
    });
    check(painted > POINTS * 4, 'points are painted: ' + painted + ' pixels');
  });

  // a point with no other point within 12 px, so the cursor can only mean it (the canvas in view)
  await page.locator('.emap-canvas').scrollIntoViewIfNeeded();
  const lonely = await page.evaluate(() => {
    const m = document.querySelector('section.emap').embedMap;
    const pos = m.data.x.map((_, i) => m.screenPos(i));
    for (let i = 0; i < pos.length; i++) {
      if (pos.every((q, j) => j === i || Math.hypot(q.x - pos[i].x, q.y - pos[i].y) > 12)) return { i, ...pos[i] };
    }
    return { i: 0, ...pos[0] };
  });

  await step('the point under the cursor shows its image and names its sample', async () => {
    const box = await page.locator('.emap-canvas').boundingBox();
    await page.mouse.move(box.x + lonely.x, box.y + lonely.y);
    await until(page, () => !document.querySelector('.emap-tip').hidden, null, 5000, 'the tooltip');
    const tip = await page.locator('.emap-tip').evaluate((t) => ({ index: t.dataset.index, text: t.textContent, thumb: !!t.querySelector('canvas.emap-thumb') }));
    check(tip.index === String(map.index[lonely.i]), `tooltip names test #${map.index[lonely.i]}: ${tip.index}`);
    check(tip.thumb, 'the tooltip shows the image');
    check(tip.text.includes(map.classes[map.label[lonely.i]]), 'the tooltip names the label: ' + tip.text);
    const ink = await page.locator('.emap-tip canvas').evaluate((c) => {
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = 0;
      for (let i = 0; i < px.length; i += 4) s += px[i];
      return s;
    });
    check(ink > 0, 'the image is not blank');
  });

  await step('clicking a point lists its 8 nearest neighbours from the file, in order', async () => {
    const box = await page.locator('.emap-canvas').boundingBox();
    await page.mouse.click(box.x + lonely.x, box.y + lonely.y);
    await until(page, () => document.querySelectorAll('.emap-list li').length === 8, null, 5000, 'the neighbour list');
    const got = await page.locator('.emap-list figure').evaluateAll((fs) => fs.map((f) => Number(f.dataset.index)));
    const want = map.neighbours[lonely.i].map((j) => map.index[j]);
    check(JSON.stringify(got) === JSON.stringify(want), `neighbours ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    check(await page.locator('.emap-list canvas.emap-thumb').count() === 8, 'each neighbour with its picture');
    check(await page.locator('.emap-query figure').getAttribute('data-index') === String(map.index[lonely.i]), 'the query shown');
    const same = map.neighbours[lonely.i].filter((j) => map.label[j] === map.label[lonely.i]).length;
    check((await page.locator('.emap-nn .hint').textContent()).startsWith(`${same} of 8 share its label`), 'the share with the same label');
    await page.locator('section.emap').screenshot({ path: path.join(outDir, 'embed-map.png') });
    console.log(`     screenshot ${path.join(outDir, 'embed-map.png')}`);
  });

  await step('no page errors', async () => {
    check(errors.length === 0, errors.join('\n'));
  });
} catch (e) {
  steps.fail('setup', e.stack || e);
} finally {
  if (b) await b.close();
  await d.stop();
}
steps.finish();
