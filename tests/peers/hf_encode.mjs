// Reference tokenizer peer: @huggingface/tokenizers (pure JS) run over a JSON-lines file.
//
//   node hf_encode.mjs [--no-special] TOKENIZER_JSON TOKENIZER_CONFIG_JSON IN.jsonl OUT.jsonl
//       each IN line is a JSON string; each OUT line is the JSON array of ids of
//       new Tokenizer(tokenizer, config).encode(text).ids   (BOS included, the library's default;
//       --no-special passes add_special_tokens: false, i.e. no BOS)
//   node hf_encode.mjs --decode TOKENIZER_JSON TOKENIZER_CONFIG_JSON IN.jsonl OUT.jsonl
//       each IN line is a JSON array of ids; each OUT line is the JSON string of
//       tokenizer.decode(ids, {skip_special_tokens: false, clean_up_tokenization_spaces: false})
//
// OUT line i answers IN line i. The library is loaded from $WHITTLE_PEERS_DIR/node_modules (CTest sets
// WHITTLE_PEERS_DIR to BUILD_DIR/npm; tests/peers/install.sh fills it), else from <repo>/build/default/npm.
// Errors name the input line and exit with status 1.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

function die(msg) {
  process.stderr.write(`hf_encode: ${msg}\n`);
  process.exit(1);
}

const usage =
  "usage: node hf_encode.mjs [--decode | --no-special] TOKENIZER_JSON TOKENIZER_CONFIG_JSON IN.jsonl OUT.jsonl";
const args = process.argv.slice(2);
let mode = "encode";
let addSpecial = true;
while (args.length && args[0].startsWith("--")) {
  const flag = args.shift();
  if (flag === "--decode") mode = "decode";
  else if (flag === "--no-special") addSpecial = false;
  else die(`unknown option ${flag}\n${usage}`);
}
if (args.length !== 4) die(usage);
const [tokenizerPath, configPath, inPath, outPath] = args;

const here = path.dirname(fileURLToPath(import.meta.url));
const peersDir = process.env.WHITTLE_PEERS_DIR || path.resolve(here, "../../build/default/npm");
let Tokenizer;
try {
  ({ Tokenizer } = createRequire(path.join(peersDir, "package.json"))("@huggingface/tokenizers"));
} catch (e) {
  die(`cannot load @huggingface/tokenizers from ${peersDir}/node_modules (${e.code || e.message}); ` +
      "run: bash tests/peers/install.sh build/default");
}

function readJson(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    die(`cannot read ${file}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    die(`${file} is not valid JSON: ${e.message}`);
  }
}

const tokenizer = new Tokenizer(readJson(tokenizerPath), readJson(configPath));

let input;
try {
  input = fs.readFileSync(inPath, "utf8");
} catch (e) {
  die(`cannot read ${inPath}: ${e.message}`);
}
const lines = input.split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();  // final newline

const out = new Array(lines.length);
for (let i = 0; i < lines.length; ++i) {
  let value;
  try {
    value = JSON.parse(lines[i]);
  } catch (e) {
    die(`${inPath}:${i + 1}: not valid JSON: ${e.message}`);
  }
  try {
    if (mode === "encode") {
      if (typeof value !== "string") die(`${inPath}:${i + 1}: expected a JSON string`);
      out[i] = JSON.stringify(tokenizer.encode(value, { add_special_tokens: addSpecial }).ids);
    } else {
      if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && id >= 0))
        die(`${inPath}:${i + 1}: expected a JSON array of non-negative integer ids`);
      const unknown = value.find((id) => tokenizer.id_to_token(id) === undefined);
      if (unknown !== undefined) die(`${inPath}:${i + 1}: id ${unknown} is not in the vocabulary`);
      out[i] = JSON.stringify(
        tokenizer.decode(value, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
    }
  } catch (e) {
    die(`${inPath}:${i + 1}: ${mode} failed: ${e.stack || e}`);
  }
}

try {
  fs.writeFileSync(outPath, out.length ? out.join("\n") + "\n" : "");
} catch (e) {
  die(`cannot write ${outPath}: ${e.message}`);
}
