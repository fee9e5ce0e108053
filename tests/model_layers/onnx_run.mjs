// onnx_run.mjs - runs an ONNX model in ONNX Runtime (npm onnxruntime-node, its prebuilt CPU
// binary) on one float32 input and writes the "features" output, for test_export_onnx.c.
// Usage: node onnx_run.mjs NODE_PROJECT_DIR MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [project, model, input, shape, output] = process.argv.slice(2);
const ort = createRequire(path.resolve(project) + '/')('onnxruntime-node');
const raw = fs.readFileSync(input);
const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
const dims = shape.split(',').map(Number);
const session = await ort.InferenceSession.create(model);
const result = await session.run({ input: new ort.Tensor('float32', data, dims) });
const y = result.features;
if (!y) throw new Error(`${model}: no output named "features"`);
fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
console.log(`${model}: features (${y.dims.join(',')})`);
