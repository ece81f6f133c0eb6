// Independent GPTQ v1 dequantizer: reads a GPTQ checkpoint's safetensors with nothing but Node's Buffer
// and undoes the packing the way AutoGPTQ / GPTQModel's reference unpacking does
// (weight nibbles along K, zeros stored minus one, per-input group from g_idx):
//   zeros[G, n]  = ((qzeros[G, n / 8] >> 4·(n % 8)) & 0xF) + 1
//   q[k, n]      = (qweight[k / 8, n] >> 4·(k % 8)) & 0xF
//   W^T[k, n]    = scales[g_idx[k], n] · (q[k, n] − zeros[g_idx[k], n])
//
//   node gptq_dequant.mjs MODEL_DIR MODULE [MODULE …]
//
// MODULE is a linear layer's name without ".weight" (e.g. model.language_model.layers.0.mlp.down_proj).
// stdout: {"MODULE": {"in": K, "out": N, "weight": base64 little-endian Float32Array of W [N, K] row-major}}.
// No third-party code: this file is the peer.
import fs from "node:fs";
import path from "node:path";

function die(msg) {
  process.stderr.write(`gptq_dequant: ${msg}\n`);
  process.exit(1);
}

const [dir, ...modules] = process.argv.slice(2);
if (!dir || modules.length === 0) die("usage: node gptq_dequant.mjs MODEL_DIR MODULE [MODULE …]");

// Every tensor of every shard: name -> {dtype, shape, data: Buffer}.
function readSafetensors(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".safetensors"));
  if (files.length === 0) die(`${dir} holds no .safetensors file`);
  const tensors = {};
  for (const f of files) {
    const buf = fs.readFileSync(path.join(dir, f));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8"));
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const [b, e] = t.data_offsets;
      tensors[name] = { dtype: t.dtype, shape: t.shape, data: buf.subarray(8 + n + b, 8 + n + e) };
    }
  }
  return tensors;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const tensors = readSafetensors(dir);
const out = {};
for (const m of modules) {
  const get = (suffix, dtype) => {
    const t = tensors[`${m}.${suffix}`];
    if (!t) die(`${m}.${suffix} is missing`);
    if (t.dtype !== dtype) die(`${m}.${suffix} is ${t.dtype}, expected ${dtype}`);
    return t;
  };
  const qweight = get("qweight", "I32"), qzeros = get("qzeros", "I32"), scales = get("scales", "F16"), gIdx = get("g_idx", "I32");
  const K = gIdx.shape[0], N = qweight.shape[1];
  const word = (t, i) => t.data.readUInt32LE(4 * i);
  const w = new Float32Array(N * K);
  for (let k = 0; k < K; ++k) {
    const g = gIdx.data.readInt32LE(4 * k);
    for (let n = 0; n < N; ++n) {
      const q = (word(qweight, Math.floor(k / 8) * N + n) >>> (4 * (k % 8))) & 0xf;
      const z = ((word(qzeros, g * (N / 8) + Math.floor(n / 8)) >>> (4 * (n % 8))) & 0xf) + 1;
      const s = halfToFloat(scales.data.readUInt16LE(2 * (g * N + n)));
      w[n * K + k] = Math.fround(s * (q - z));
    }
  }
  out[m] = { in: K, out: N, weight: Buffer.from(w.buffer).toString("base64") };
}
process.stdout.write(JSON.stringify(out));
