// Independent GPTQ v1 dequantizer: reads a GPTQ checkpoint's safetensors with nothing but Node's Buffer
// and undoes the packing the way AutoGPTQ / GPTQModel's reference unpacking does
// (b-bit codes along K, zeros stored minus one, per-input group from g_idx):
//   b            = config.json quantization_config.bits, or the "bits" of the first "+:" pattern in its
//                  "dynamic" table that matches the module (GPTQModel's per-module overrides)
//   zeros[G, n]  = bits b·n … b·n + b − 1 of row G of qzeros, read as one little-endian bit string, + 1
//   q[k, n]      = bits b·k … of column n of qweight (words qweight[0, n], qweight[1, n], …)
//   W^T[k, n]    = scales[g_idx[k], n] · (q[k, n] − zeros[g_idx[k], n])
// (for b = 4: q[k, n] = (qweight[k / 8, n] >> 4·(k % 8)) & 0xF; for b = 3 values straddle words, as
// AutoGPTQ's pack writes them). Whittle's binary residual, when the module has one:
//   W^T[k, n]   += residual_scales[g_idx[k], n] · (bit k of column n of qresidual ? +1 : −1)
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
const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).quantization_config;
if (!config || config.quant_method !== "gptq") die(`${dir}/config.json has no GPTQ quantization_config`);
function bitsOf(module) {
  for (const [pattern, override] of Object.entries(config.dynamic ?? {}))
    if (pattern.startsWith("+:") && new RegExp(pattern.slice(2)).test(module) && override.bits) return override.bits;
  return config.bits;
}
// Bit string of 32-bit words: value i of width b, where word(j) is the j-th word of the string.
function field(word, i, b) {
  let v = 0;
  for (let t = 0; t < b; ++t) {
    const bit = i * b + t;
    v |= ((word(Math.floor(bit / 32)) >>> (bit % 32)) & 1) << t;
  }
  return v;
}
const out = {};
for (const m of modules) {
  const get = (suffix, dtype) => {
    const t = tensors[`${m}.${suffix}`];
    if (!t) die(`${m}.${suffix} is missing`);
    if (t.dtype !== dtype) die(`${m}.${suffix} is ${t.dtype}, expected ${dtype}`);
    return t;
  };
  const qweight = get("qweight", "I32"), qzeros = get("qzeros", "I32"), scales = get("scales", "F16"), gIdx = get("g_idx", "I32");
  const K = gIdx.shape[0], N = qweight.shape[1], b = bitsOf(m);
  if (qweight.shape[0] * 32 !== K * b) die(`${m}.qweight has ${qweight.shape[0]} rows, not ${K} inputs of ${b} bits`);
  const word = (t, i) => t.data.readUInt32LE(4 * i);
  const residual = tensors[`${m}.qresidual`] ? { signs: get("qresidual", "I32"), scales: get("residual_scales", "F16") } : null;
  const zeroWords = (N * b) / 32;
  const w = new Float32Array(N * K);
  for (let k = 0; k < K; ++k) {
    const g = gIdx.data.readInt32LE(4 * k);
    for (let n = 0; n < N; ++n) {
      const q = field((j) => word(qweight, j * N + n), k, b);
      const z = field((j) => word(qzeros, g * zeroWords + j), n, b) + 1;
      const s = halfToFloat(scales.data.readUInt16LE(2 * (g * N + n)));
      let v = Math.fround(s * (q - z));
      if (residual) {
        const r = halfToFloat(residual.scales.data.readUInt16LE(2 * (g * N + n)));
        v = Math.fround(v + (field((j) => word(residual.signs, j * N + n), k, 1) ? r : -r));
      }
      w[n * K + k] = v;
    }
  }
  out[m] = { in: K, out: N, weight: Buffer.from(w.buffer).toString("base64") };
}
process.stdout.write(JSON.stringify(out));
