// node-llama-cpp as the peers load it: from $WHITTLE_PEERS_DIR/node_modules (CTest sets it), else
// <repo>/build/default/npm, where tests/peers/install.sh puts it. `die` reports a failure and exits.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

export async function loadNodeLlamaCpp(die) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const peersDir = process.env.WHITTLE_PEERS_DIR || path.resolve(here, "../../build/default/npm");
  try {
    const entry = createRequire(path.join(peersDir, "package.json")).resolve("node-llama-cpp");
    return await import(pathToFileURL(entry).href);
  } catch (e) {
    die(`cannot load node-llama-cpp from ${peersDir}/node_modules (${e.code || e.message}); ` +
        "run: bash tests/peers/install.sh build/default");
  }
}
