#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/recipe_args.h"
#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/model/inventory.h"

namespace whittle::cli {

namespace {

void printOutput(const char* what, const OutputEstimate& o, const RuntimeOptions& r) {
    const EngineMemory& m = o.memory;
    std::printf("%s: %s on disk (tensors %s, other files %s), %s parameters\n", what, formatBytes(o.diskBytes()).c_str(),
                formatBytes(o.tensorBytes).c_str(), formatBytes(o.sideBytes).c_str(), formatParams(o.parameters).c_str());
    std::printf("  device memory at %d positions (prefill chunk %d, PLE table on the %s): %s\n", r.context, r.prefillChunk,
                r.pleInVram ? "device" : "host", formatBytes(m.deviceTotal()).c_str());
    std::printf("    weights %s%s, KV cache %s (sliding %s in %d layers of %lld positions, full %s in %d layers of %lld), scratch %s, host-visible %s\n",
                formatBytes(m.weights).c_str(), r.pleInVram ? (", PLE table " + formatBytes(m.pleTable)).c_str() : "",
                formatBytes(m.kv.total()).c_str(), formatBytes(m.kv.slidingBytes).c_str(), m.kv.slidingLayers, (long long)m.kv.slidingCells,
                formatBytes(m.kv.fullBytes).c_str(), m.kv.fullLayers, (long long)m.kv.fullCells, formatBytes(m.scratch).c_str(),
                formatBytes(m.hostVisible).c_str());
    std::printf("  host memory the engine reads tables from: %s\n", formatBytes(m.hostTables).c_str());
}

}  // namespace

int runEstimate(const std::vector<std::string>& argv) {
    std::set<std::string> flags = kRecipeFlags, valued = kRecipeOptions;
    flags.insert("json");
    valued.insert({"ctx", "chunk", "ple"});
    const Args a(argv, flags, valued);
    if (a.positional().size() != 1)
        throw UsageError("usage: whittle-cli estimate MODEL [--recipe FILE.json | --text-only --vocab P --flap R --quantize M …] "
                         "[--ctx N] [--chunk N] [--ple host|gpu] [--json]");
    const bool anyRecipe = a.value("recipe") || a.flag("text-only") || a.value("vocab") || a.value("flap") || a.value("quantize");
    const Recipe recipe = anyRecipe ? recipeFromArgs(a) : Recipe{};
    RuntimeOptions r;
    r.context = int(a.uintValue("ctx", 4096));
    r.prefillChunk = int(a.uintValue("chunk", 32));
    if (const auto p = a.value("ple")) {
        if (*p != "host" && *p != "gpu") throw UsageError("--ple " + *p + ": host or gpu");
        r.pleInVram = *p == "gpu";
    }
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    const Estimate e = estimate(ck, recipe, r);
    if (a.flag("json")) {
        Json j = toJson(e);
        j["runtime"] = {{"context", r.context}, {"prefill_chunk", r.prefillChunk}, {"ple", r.pleInVram ? "gpu" : "host"}, {"kv_type", "f32"}};
        printJsonReport(j);
        return 0;
    }
    printOutput("as it is", e.input, r);
    if (anyRecipe) printOutput(e.exact ? "after the recipe" : "after the recipe (estimated)", e.output, r);
    if (e.low && e.high)
        std::printf("  range for FLAP's widths: %s … %s on disk, %s … %s of device memory\n", formatBytes(e.low->diskBytes()).c_str(),
                    formatBytes(e.high->diskBytes()).c_str(), formatBytes(e.low->memory.deviceTotal()).c_str(),
                    formatBytes(e.high->memory.deviceTotal()).c_str());
    if (!e.note.empty()) std::printf("note: %s\n", e.note.c_str());
    return 0;
}

}  // namespace whittle::cli
