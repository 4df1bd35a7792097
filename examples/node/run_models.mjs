// Runs every NAME.onnx of a folder in onnxruntime-node on the feeds in NAME.feeds.bin (raw
// little-endian arrays listed in NAME.feeds.json, as graphdl.train_step.raw_arrays writes
// them) and writes every output to NAME.out.bin / NAME.out.json in the same format.
//
//     node examples/node/run_models.mjs DIR
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array,
  int16: Int16Array, int8: Int8Array, uint8: Uint8Array, uint16: Uint16Array, bool: Uint8Array,
};

function readTensors(file, entries) {
  const buf = fs.readFileSync(file);
  const out = {};
  for (const e of entries) {
    const bytes = buf.buffer.slice(buf.byteOffset + e.offset, buf.byteOffset + e.offset + e.nbytes);
    out[e.name] = new ort.Tensor(e.dtype, new ARRAYS[e.dtype](bytes), e.shape);
  }
  return out;
}

function writeTensors(base, tensors) {
  const chunks = [], entries = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const pad = (8 - (data.length % 8)) % 8;
    entries.push({ name, dtype: t.type, shape: t.dims, offset, nbytes: data.length });
    chunks.push(data, Buffer.alloc(pad));
    offset += data.length + pad;
  }
  fs.writeFileSync(`${base}.out.bin`, Buffer.concat(chunks));
  fs.writeFileSync(`${base}.out.json`, JSON.stringify({ file: path.basename(`${base}.out.bin`),
                                                        tensors: entries }));
}

async function main() {
  const dir = process.argv[2];
  const models = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  for (const f of models) {
    const base = path.join(dir, f.slice(0, -'.onnx'.length));
    const meta = JSON.parse(fs.readFileSync(`${base}.feeds.json`, 'utf8'));
    const feeds = readTensors(path.join(dir, meta.file), meta.tensors);
    const session = await ort.InferenceSession.create(path.join(dir, f),
                                                      { executionProviders: ['cpu'] });
    writeTensors(base, await session.run(feeds));
  }
  console.log(`onnxruntime-node ${ort.env.versions.common}: ran ${models.length} models`);
}

main().catch((e) => { console.error(`error: ${e.message}`); process.exit(1); });
