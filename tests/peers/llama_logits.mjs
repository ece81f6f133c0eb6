// llama.cpp peer (node-llama-cpp, prebuilt CPU binary): runs a GGUF on token ids and prints JSON.
//
//   node llama_logits.mjs REQUEST.json
//
// REQUEST.json:
//   { "model": "/path/model.gguf",
//     "kvType": "F32" | "F16",            KV cache type (default F16, llama.cpp's default)
//     "contextSize": 512, "threads": 1,     (default 1: ggml's workers spin at barriers, so 2 threads on a
//                                           busy 2-core machine run several times slower than 1)
//     "jobs": [ {"logits": [ids...]},      raw logits after every token, each a base64 Float32Array (little-endian)
//               {"greedy": [ids...], "n": 32},   n greedy (argmax) tokens after the prompt, with the
//                                                logits of every step (base64) for a margin check
//               {"tokenize": ["text", ...]} ] }  llama.cpp's tokenizer on each text (special tokens parsed, no BOS)
//
// stdout: { "llamaCpp": {release}, "vocabSize": V, "kvReuse": {"layer": sourceLayer, ...},
//           "results": [ {"logits": [b64...]} | {"tokens": [...], "logits": [b64...]} | {"ids": [[...]]} ] }
// kvReuse comes from llama.cpp's own debug log ("layer N: reuse layer M"): the KV source it really uses.
// Every job runs in a fresh context sequence (positions from 0). The library is loaded from
// $WHITTLE_PEERS_DIR/node_modules (CTest sets it), else <repo>/build/default/npm. Errors exit with status 1.
import fs from "node:fs";
import { loadNodeLlamaCpp } from "./node_llama.mjs";

function die(msg) {
  process.stderr.write(`llama_logits: ${msg}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
if (args.length !== 1) die("usage: node llama_logits.mjs REQUEST.json");
let req;
try {
  req = JSON.parse(fs.readFileSync(args[0], "utf8"));
} catch (e) {
  die(`cannot read the request ${args[0]}: ${e.message}`);
}
if (typeof req.model !== "string" || !Array.isArray(req.jobs)) die("the request needs 'model' and 'jobs'");

const lib = await loadNodeLlamaCpp(die);
const { getLlama, LlamaLogLevel } = lib;

const kvReuse = {};
const logTail = [];
const llama = await getLlama({
  gpu: false,
  build: "never",
  logLevel: LlamaLogLevel.debug,
  logger: (level, message) => {
    const m = /layer\s+(\d+): reuse layer (\d+)/.exec(message);
    if (m) kvReuse[m[1]] = Number(m[2]);
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) logTail.push(message.trim());
  },
});

const b64 = (arr) => Buffer.from(new Float32Array(arr).buffer).toString("base64");

let model;
try {
  model = await llama.loadModel({ modelPath: req.model, gpuLayers: 0 });
} catch (e) {
  die(`llama.cpp cannot load ${req.model}: ${e.message}\n${logTail.join("\n")}`);
}
let vocabSize = 0;  // the number of logits llama.cpp returns
const kvType = req.kvType || "F16";
const context = await model.createContext({
  contextSize: req.contextSize || 512,
  batchSize: req.contextSize || 512,
  threads: req.threads || 1,
  sequences: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: kvType,
  experimentalKvCacheValueType: kvType,
});

// All logits of one decode step, indexed by token id.
function logitArray(map) {
  if (vocabSize === 0) vocabSize = map.size;
  if (map.size !== vocabSize) die(`llama.cpp returned ${map.size} logits, earlier ${vocabSize}`);
  const out = new Float32Array(vocabSize);
  for (const [tok, v] of map) out[tok] = v;
  return out;
}

const results = [];
for (const job of req.jobs) {
  if (job.tokenize) {
    results.push({ ids: job.tokenize.map((t) => Array.from(model.tokenize(t, true))) });
    continue;
  }
  const sequence = context.getSequence();
  try {
    if (job.logits) {
      const input = job.logits.map((t) => [t, { generateNext: { logits: true } }]);
      const out = await sequence.controlledEvaluate(input);
      const logits = [];
      for (let i = 0; i < input.length; ++i) {
        const l = out[i]?.next?.logits;
        if (!l) die(`no logits for position ${i}`);
        logits.push(b64(logitArray(l)));
      }
      results.push({ logits });
    } else if (job.greedy) {
      const tokens = [];
      const logits = [];
      let input = job.greedy.map((t, i) => (i === job.greedy.length - 1 ? [t, { generateNext: { logits: true } }] : t));
      for (let step = 0; step < job.n; ++step) {
        const out = await sequence.controlledEvaluate(input);
        const l = out[input.length - 1]?.next?.logits;
        if (!l) die(`no logits at greedy step ${step}`);
        const arr = logitArray(l);
        let best = 0;
        for (let t = 1; t < arr.length; ++t) if (arr[t] > arr[best]) best = t;  // argmax, lowest id on ties
        tokens.push(best);
        logits.push(b64(arr));
        input = [[best, { generateNext: { logits: true } }]];
      }
      results.push({ tokens, logits });
    } else {
      die(`unknown job ${JSON.stringify(Object.keys(job))}`);
    }
  } finally {
    await sequence.dispose();
  }
}

process.stdout.write(JSON.stringify({ llamaCpp: llama.llamaCppRelease, vocabSize, kvType, kvReuse, results }) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
