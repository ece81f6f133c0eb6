// llama.cpp speed peer (node-llama-cpp, prebuilt CPU and Vulkan builds): prefill and greedy decode of a GGUF.
//
//   node llama_bench.mjs MODEL.gguf [--gpu vulkan|none] [--prompt N] [--decode N] [--threads N]
//
// stdout: {"llamaCpp": release, "gpu": "vulkan"|"none", "device": name, "prompt_tokens": N, "prefill_tok_per_s": x,
//          "decode_tokens": N, "decode_tok_per_s": y}
// The prompt is the same synthetic id sequence whittle-cli bench uses (BOS, then 200 + (i·7919) mod (V − 200)).
// The first decode step is left out of the measurement, as whittle-cli bench does. With --gpu vulkan every
// layer is offloaded; GGML_VK_VISIBLE_DEVICES=0 lets llama.cpp use lavapipe (it skips CPU devices otherwise).
import { loadNodeLlamaCpp } from "./node_llama.mjs";

function die(msg) {
  process.stderr.write(`llama_bench: ${msg}\n`);
  process.exit(1);
}
const args = process.argv.slice(2);
if (args.length < 1) die("usage: node llama_bench.mjs MODEL.gguf [--gpu vulkan|none] [--prompt N] [--decode N] [--threads N]");
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const modelPath = args[0];
const gpu = opt("gpu", "none");
const promptTokens = Number(opt("prompt", "64"));
const decodeTokens = Number(opt("decode", "16"));
const threads = Number(opt("threads", "2"));

const lib = await loadNodeLlamaCpp(die);
const { getLlama, LlamaLogLevel } = lib;
const llama = await getLlama({ gpu: gpu === "vulkan" ? "vulkan" : false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: gpu === "vulkan" ? "max" : 0 });
const context = await model.createContext({ contextSize: promptTokens + decodeTokens + 8, batchSize: Math.max(promptTokens, 8), threads, sequences: 1 });
const sequence = context.getSequence();
const V = model.tokens.sizeInfo?.vocabularySize ?? model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 8192;
const prompt = [];
for (let i = 0; i < promptTokens; ++i) prompt.push(i === 0 ? 2 : 200 + ((i * 7919) % (V - 200)));

const argmax = (map) => {
  let best = -1, bestV = -Infinity;
  for (const [t, v] of map) if (v > bestV || (v === bestV && t < best)) { best = t; bestV = v; }
  return best;
};
const t0 = performance.now();
let out = await sequence.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { logits: true } }] : t)));
const prefill = (performance.now() - t0) / 1000;
let next = argmax(out[prompt.length - 1].next.logits);
out = await sequence.controlledEvaluate([[next, { generateNext: { logits: true } }]]);  // not measured
next = argmax(out[0].next.logits);
const t1 = performance.now();
for (let i = 1; i < decodeTokens; ++i) {
  out = await sequence.controlledEvaluate([[next, { generateNext: { logits: true } }]]);
  next = argmax(out[0].next.logits);
}
const decode = (performance.now() - t1) / 1000;
const gpuNames = gpu === "vulkan" ? await llama.getGpuDeviceNames() : [];
process.stdout.write(JSON.stringify({
  llamaCpp: llama.llamaCppRelease, gpu, device: gpuNames.join(", ") || "cpu", threads,
  prompt_tokens: promptTokens, prefill_tok_per_s: promptTokens / prefill,
  decode_tokens: decodeTokens - 1, decode_tok_per_s: (decodeTokens - 1) / decode,
}) + "\n");
await sequence.dispose();
await context.dispose();
await model.dispose();
await llama.dispose();
