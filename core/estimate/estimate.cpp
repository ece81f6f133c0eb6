#include "core/estimate/estimate.h"

#include <numeric>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/safetensors_writer.h"
#include "core/pipeline/tensor_stream.h"
#include "core/recipes/flap.h"
#include "core/recipes/quantize.h"
#include "core/recipes/text_only.h"
#include "core/recipes/vocab_prune.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

std::uint64_t sideFileBytes(const std::vector<SideFile>& files) {
    std::uint64_t n = 0;
    for (const SideFile& f : files) n += f.text ? f.text->size() : fs::file_size(f.from);
    return n;
}

// The output a stream's side files and `tensors` make: sizes from the writer's own layout, and the engine's
// memory for a checkpoint of exactly those tensors (checked against the table as a folder's would be; no
// tensor is read).
OutputEstimate outputOf(const TensorStream& s, const std::vector<TensorSpec>& tensors, const RuntimeOptions& runtime) {
    OutputEstimate o;
    o.tensorBytes = layoutSafetensors(tensors, {}, s.origin.string()).totalBytes();
    o.sideBytes = sideFileBytes(s.files);
    TensorStream planned = s;
    planned.tensors = tensors;
    planned.read = [origin = s.origin.string()](std::size_t, std::uint64_t, std::uint64_t, char*) {
        throw Error(origin, {}, "internal: an estimate reads no tensor");
    };
    const Checkpoint ck = streamCheckpoint(planned);
    for (Part p : kAllParts) o.parts[p] = {};
    for (const CheckpointTensor& t : ck.tensors()) {
        o.parameters += t.parameters;  // weights, not GPTQ words or scales
        o.parts[t.part].add(t.parameters, t.entry->info->nbytes);
    }
    o.memory = estimateEngineMemory(ck, runtime);
    return o;
}

// FLAP's channels as its global ranking picks them when every layer's scores have the same spread: removal in
// proportion to each layer's width, rounded to the recipe's width multiple as the real selection is.
FlapSelection proportionalSelection(const Gemma4Config& c, const FlapRecipe& f, double ratio) {
    std::vector<std::vector<double>> scores;
    for (const LayerSpec& l : c.layers) {
        std::vector<double> s(static_cast<std::size_t>(l.ffnWidth));
        std::iota(s.begin(), s.end(), 0.0);
        scores.push_back(std::move(s));
    }
    FlapSelection sel;
    sel.kept = selectChannels(scores, ratio, f.minKeep, f.multiple);
    if (f.biasCompensation) sel.bias.assign(c.layers.size(), std::vector<float>(std::size_t(c.hiddenSize), 0.0f));
    return sel;
}

// The recipe's output from `stream` (text-only and vocabulary already applied) with FLAP at `ratio`.
OutputEstimate afterFlapAndQuantization(const TensorStream& stream, const Checkpoint& ck, const Recipe& r, double ratio,
                                        const RuntimeOptions& runtime, std::string& note) {
    TensorStream s = stream;
    if (r.flap) {
        FlapReport rep;
        FlapRecipe f = *r.flap;
        f.ratio = ratio;
        s = flapStream(std::move(s), f, proportionalSelection(s.config, f, ratio), rep);
    }
    if (!r.quantization) return outputOf(s, s.tensors, runtime);
    QuantizeRecipe q = *r.quantization;
    const bool budget = q.method == "budget";
    if (budget) {
        q.method = "rtn";  // the same tensors and group; the budget's formats change only their bytes
        q.symmetric = true;
    }
    if (q.format.rfind("gguf-", 0) == 0)
        throw UsageError("quantization.format " + q.format + ": GGUF files are not estimated yet");
    const Checkpoint sc = streamCheckpoint(s);
    if (sc.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ or NVFP4 tensors found)");
    const QuantizePlan plan = planQuantization(sc, q);
    OutputEstimate o = outputOf(s, plan.tensors, runtime);
    // The quantization configs written beside config.json (a few hundred bytes each): counted as 2 KiB.
    o.sideBytes += q.format == "hf" ? 0 : 2048;
    if (budget && r.quantization->bpw > 0) {
        const double target = r.quantization->bpw * double(plan.weightsQuantized) / 8;
        const double planned = plan.bitsPerWeight * double(plan.weightsQuantized) / 8;
        const std::int64_t delta = std::llround(target - planned);
        o.tensorBytes = std::uint64_t(std::int64_t(o.tensorBytes) + delta);
        o.memory.weights = std::uint64_t(std::int64_t(o.memory.weights) + delta);
        // The budget moves bytes between the quantized weights' formats: charged to the parts they are in.
        Totals& mlp = o.parts[Part::Mlp];
        Totals& attn = o.parts[Part::Attention];
        const std::uint64_t both = mlp.bytes + attn.bytes;
        if (both > 0) {
            const std::int64_t toMlp = std::int64_t(double(delta) * double(mlp.bytes) / double(both));
            mlp.bytes = std::uint64_t(std::int64_t(mlp.bytes) + toMlp);
            attn.bytes = std::uint64_t(std::int64_t(attn.bytes) + delta - toMlp);
        }
        note += (note.empty() ? "" : "; ") + std::string("the bit budget at its target of ") + std::to_string(r.quantization->bpw) +
                " bits per weight (the formats are chosen by measuring)";
    }
    return o;
}

Json toJson(const OutputEstimate& o) {
    const EngineMemory& m = o.memory;
    Json parts = Json::object();
    for (const auto& [p, t] : o.parts) parts[partKey(p)] = {{"tensors", t.tensors}, {"parameters", t.params}, {"bytes", t.bytes}};
    return Json{{"disk_bytes", {{"safetensors", o.tensorBytes}, {"side_files", o.sideBytes}, {"total", o.diskBytes()}}},
                {"vram_bytes",
                 {{"weights", m.weights},
                  {"ple_table", m.pleTable},
                  {"kv_cache", m.kv.total()},
                  {"scratch", m.scratch},
                  {"host_visible", m.hostVisible},
                  {"total", m.deviceTotal()}}},
                {"host_bytes", {{"tables", m.hostTables}, {"total", m.hostTables}}},
                {"kv_cache",
                 {{"sliding_layers", m.kv.slidingLayers},
                  {"full_layers", m.kv.fullLayers},
                  {"sliding_cells", m.kv.slidingCells},
                  {"full_cells", m.kv.fullCells},
                  {"sliding_bytes", m.kv.slidingBytes},
                  {"full_bytes", m.kv.fullBytes}}},
                {"parameters", o.parameters},
                {"parts", parts}};
}

}  // namespace

Estimate estimate(const Checkpoint& ck, const Recipe& r, const RuntimeOptions& runtime) {
    Estimate e;
    TensorStream s = checkpointStream(ck);
    e.input = outputOf(s, s.tensors, runtime);
    // The input's own files, however they were sharded (another writer's shard size, metadata, index).
    e.input.tensorBytes = ck.store().fileBytes();
    if (ck.store().sharded()) e.input.tensorBytes += fs::file_size(ck.dir() / TensorStore::kIndexFile);
    if (r.textOnly) {
        TextOnlyReport rep;
        s = textOnlyStream(std::move(s), rep);
    }
    if (r.vocabulary) {
        VocabPruneReport rep;
        s = vocabularyStream(std::move(s), *r.vocabulary, rep);
    }
    const double ratio = r.flap ? r.flap->ratio : 0;
    e.output = afterFlapAndQuantization(s, ck, r, ratio, runtime, e.note);
    if (r.flap) {
        // Each layer's width is rounded to a multiple of `multiple`: at most that many channels a layer either way.
        std::int64_t total = 0;
        for (const LayerSpec& l : s.config.layers) total += l.ffnWidth;
        const double slack = double(s.config.layers.size()) * double(r.flap->multiple) / double(total);
        std::string ignored;
        e.low = afterFlapAndQuantization(s, ck, r, std::min(0.95, ratio + slack), runtime, ignored);
        e.high = afterFlapAndQuantization(s, ck, r, std::max(0.01, ratio - slack), runtime, ignored);
        e.exact = false;
        e.note = std::string("FLAP's widths are known after calibration: channels removed in proportion to each layer's width, ") +
                 "within the range for rounding to multiples of " + std::to_string(r.flap->multiple) + (e.note.empty() ? "" : "; " + e.note);
    }
    if (r.quantization && r.quantization->method == "budget" && r.quantization->bpw > 0) e.exact = false;
    return e;
}

Json toJson(const Estimate& e) {
    Json j = toJson(e.output);
    j["input"] = toJson(e.input);
    j["exact"] = e.exact;
    if (!e.note.empty()) j["note"] = e.note;
    if (e.low) j["low"] = toJson(*e.low);
    if (e.high) j["high"] = toJson(*e.high);
    return j;
}

}  // namespace whittle
