// Trains graphdl's digits MLP (or CNN) in onnxruntime-node from a training step saved by graphdl.
//
// The step (forward, backward and Adam update) is one standard ONNX model; train_step.json (the
// manifest) says which output feeds which input next step, and lists the initial state in
// train_step.init.bin (raw little-endian arrays). No Python runs here: prepare the folder once
// with `python examples/node/prepare_digits.py DIR [--model cnn]`, then
//
//     node examples/node/train_digits.mjs DIR [--epochs N] [--losses LOSSES.json]
//
// It prints one line per epoch and ends with `engine=onnxruntime-node test_accuracy=...`.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array,
  int16: Int16Array, int8: Int8Array, uint8: Uint8Array, uint16: Uint16Array, bool: Uint8Array,
};

/** The arrays a manifest lists ({name, dtype, shape, offset, nbytes}) as ort.Tensors. */
function readTensors(file, entries) {
  const buf = fs.readFileSync(file);
  const out = {};
  for (const e of entries) {
    const Kind = ARRAYS[e.dtype];
    if (!Kind) throw new Error(`${file}: ${e.name} has dtype ${e.dtype}, not supported here`);
    const bytes = buf.buffer.slice(buf.byteOffset + e.offset, buf.byteOffset + e.offset + e.nbytes);
    out[e.name] = new ort.Tensor(e.dtype, new Kind(bytes), e.shape);
  }
  return out;
}

/** Rows `idx` of a [N, ...] tensor, as a new tensor. */
function rows(t, idx) {
  const width = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = new t.data.constructor(idx.length * width);
  idx.forEach((r, i) => data.set(t.data.subarray(r * width, (r + 1) * width), i * width));
  return new ort.Tensor(t.type, data, [idx.length, ...t.dims.slice(1)]);
}

function parseArgs(argv) {
  const args = { dir: null, epochs: null, losses: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--epochs') args.epochs = Number(argv[++i]);
    else if (argv[i] === '--losses') args.losses = argv[++i];
    else args.dir = argv[i];
  }
  if (!args.dir) {
    console.error('usage: node train_digits.mjs DIR [--epochs N] [--losses LOSSES.json]\n' +
                  '(make DIR with: python examples/node/prepare_digits.py DIR)');
    process.exit(2);
  }
  return args;
}

async function accuracy(infer, manifest, state, x, y) {
  const feeds = { x };
  for (const e of manifest.state) if (e.kind === 'param') feeds[e.input] = state[e.input];
  const { logits } = await infer.run(feeds);
  const [n, k] = logits.dims;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits.data[i * k + j] > logits.data[i * k + best]) best = j;
    if (BigInt(best) === y.data[i]) hits++;
  }
  return hits / n;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const file = (name) => path.join(args.dir, name);
  const manifest = JSON.parse(fs.readFileSync(file('train_step.json'), 'utf8'));
  const meta = JSON.parse(fs.readFileSync(file('digits.json'), 'utf8'));
  const init = manifest.initial_state;
  let state = readTensors(file(init.file), init.tensors);
  const data = readTensors(file(meta.file), meta.tensors);
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: 1 };
  const step = await ort.InferenceSession.create(file('train_step.onnx'), opts);
  const infer = await ort.InferenceSession.create(file('infer.onnx'), opts);
  const scalar = (v) => new ort.Tensor(manifest.dtype, ARRAYS[manifest.dtype].of(v), []);
  const hp = Object.fromEntries(Object.entries(manifest.hyperparams).map(([k, v]) => [k, scalar(v)]));
  const [xName, yName] = manifest.batch_inputs.map((b) => b.name);
  const epochs = args.epochs ?? meta.epochs;
  const n = data.x_train.dims[0];
  const losses = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    hp.lr = scalar(meta.lr * meta.lr_decay ** (epoch - 1));  // the schedule is only a feed
    const order = Array.from(data.order.data.subarray((epoch - 1) * n, epoch * n));
    let sum = 0, count = 0;
    for (let i = 0; i < n; i += meta.batch_size) {
      const idx = order.slice(i, i + meta.batch_size);
      const feeds = { [xName]: rows(data.x_train, idx), [yName]: rows(data.y_train, idx),
                      ...state, ...hp };
      const res = await step.run(feeds);
      const loss = Number(res[manifest.loss].data[0]);
      losses.push(loss);
      sum += loss; count++;
      const next = {};
      for (const [out, inp] of Object.entries(manifest.next_step)) next[inp] = res[out];
      state = next;
    }
    const acc = await accuracy(infer, manifest, state, data.x_test, data.y_test);
    console.log(`[onnxruntime-node] epoch ${epoch}/${epochs} loss=${(sum / count).toFixed(4)} ` +
                `test_accuracy=${acc.toFixed(4)}`);
  }
  if (args.losses) fs.writeFileSync(args.losses, JSON.stringify(losses));
  const acc = await accuracy(infer, manifest, state, data.x_test, data.y_test);
  console.log(`engine=onnxruntime-node test_accuracy=${acc.toFixed(4)} ` +
              `final_loss=${losses.length ? losses[losses.length - 1].toFixed(4) : 'nan'} ` +
              `onnxruntime=${ort.env.versions.common}`);
}

main().catch((e) => { console.error(`error: ${e.message}`); process.exit(1); });
