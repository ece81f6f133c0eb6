#include "core/estimate/estimate.h"

#include <cstdio>
#include <list>
#include <mutex>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/export/gguf_export.h"
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

std::string twoDecimals(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v);
    return b;
}

// An output's sizes, and the checkpoint its engine memory is computed from for any runtime.
struct Planned {
    OutputEstimate sizes;  // memory not filled in
    std::shared_ptr<const Checkpoint> checkpoint;
    std::int64_t weightsDelta = 0;  // the bit budget's bytes, beyond the uniform plan's
    std::optional<QuantizePlan> quantization;  // the quantization's counts (its tensor list dropped: the checkpoint has it)

    OutputEstimate withMemory(const RuntimeOptions& runtime) const {
        OutputEstimate o = sizes;
        o.memory = estimateEngineMemory(*checkpoint, runtime);
        o.memory.weights = std::uint64_t(std::int64_t(o.memory.weights) + weightsDelta);
        return o;
    }
};

// Parameters and tensor bytes by part, as the inventory counts them (headers not included).
void countParts(const Checkpoint& ck, OutputEstimate& o) {
    const Inventory inv = makeInventory(ck);
    o.parts = inv.byPart;
    o.parameters = inv.total.params;  // weights, not GPTQ words or scales
}

// The output a stream's side files and `tensors` make: sizes from the writer's own layout, and a checkpoint of
// exactly those tensors (checked against the table as a folder's would be; no tensor is read) for its memory;
// with the recipe's GGUF exports sized by the exporter's plan of that output.
Planned planOutput(const TensorStream& s, const std::vector<TensorSpec>& tensors, const Recipe& r) {
    Planned p;
    p.sizes.tensorBytes = layoutSafetensors(tensors, {}, s.origin.string()).totalBytes();
    p.sizes.sideBytes = sideFileBytes(s.files);
    TensorStream planned;
    planned.origin = s.origin;
    planned.config = s.config;
    planned.special = s.special;  // no side files: the engine's memory does not read them, and a tokenizer is large
    planned.tensors = tensors;
    planned.read = [origin = s.origin.string()](std::size_t, std::uint64_t, std::uint64_t, char*) {
        throw Error(origin, {}, "internal: an estimate reads no tensor");
    };
    p.checkpoint = std::make_shared<const Checkpoint>(streamCheckpoint(planned));
    countParts(*p.checkpoint, p.sizes);
    if (r.exports && !r.exports->formats.empty()) {
        planned.files = s.files;  // the exporter writes the tokenizer into the GGUF metadata
        const Checkpoint withFiles = streamCheckpoint(planned);
        const bool symmetric = !r.quantization || r.quantization->symmetric;
        for (const std::string& f : r.exports->formats) {
            GgufExportOptions o;
            o.weightType = ggufFormatType(f, "export.formats");
            p.sizes.ggufBytes[ggufFileName(f)] = ggufExportBytes(withFiles, o, symmetric);
        }
    }
    return p;
}

// FLAP's channels: the recipe's planned widths (flap.widths, exact), or, before calibration, as its global
// ranking picks them when every layer's scores have the same spread: removal in proportion to each layer's
// width, rounded to the recipe's width multiple as the real selection is. Which channels does not matter to a
// size, only how many.
FlapSelection plannedSelection(const Gemma4Config& c, const FlapRecipe& f, double ratio, const std::string& source) {
    std::vector<std::vector<double>> scores;
    for (const LayerSpec& l : c.layers) {
        std::vector<double> s(static_cast<std::size_t>(l.ffnWidth));
        std::iota(s.begin(), s.end(), 0.0);
        scores.push_back(std::move(s));
    }
    FlapSelection sel;
    checkFlapWidths(c, f, source);
    sel.kept = f.widths.empty() ? selectChannels(scores, ratio, f.minKeep, f.multiple) : keepBestChannels(scores, f.widths);
    if (f.biasCompensation) sel.bias.assign(c.layers.size(), std::vector<float>(std::size_t(c.hiddenSize), 0.0f));
    return sel;
}

// The recipe's output from `stream` (text-only and vocabulary already applied) with FLAP at `ratio`.
Planned afterFlapAndQuantization(const TensorStream& stream, const Checkpoint& ck, const Recipe& r, double ratio, std::string& note) {
    TensorStream s = stream;
    if (r.flap) {
        FlapReport rep;
        FlapRecipe f = *r.flap;
        f.ratio = ratio;
        s = flapStream(std::move(s), f, plannedSelection(s.config, f, ratio, ck.dir().string()), rep);
    }
    if (!r.quantization) return planOutput(s, s.tensors, r);
    QuantizeRecipe q = *r.quantization;
    const bool planned = q.method == "budget" && !q.formats.empty();  // the formats a measurement chose
    const bool budget = q.method == "budget" && !planned;
    if (budget) {
        q.method = "rtn";  // the same tensors and group; the budget's formats change only their bytes
        q.symmetric = true;
    }
    if (q.format.rfind("gguf-", 0) == 0)
        throw UsageError("quantization.format " + q.format + ": a recipe writes GGUF files through \"export\" (estimated there, as slim runs "
                         "it); whittle-cli quantize --format writes one alone");
    const Checkpoint sc = streamCheckpoint(s);
    if (sc.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ or NVFP4 tensors found)");
    const QuantizePlan plan = planQuantization(sc, q, planned ? recipeBudgetFormats(sc, q) : std::map<std::string, IntOptions>{});
    Planned p = planOutput(s, plan.tensors, r);
    p.quantization = plan;
    p.quantization->tensors.clear();
    OutputEstimate& o = p.sizes;
    // The quantization configs written beside config.json (a few hundred bytes each): counted as 2 KiB.
    o.sideBytes += q.format == "hf" ? 0 : 2048;
    if (budget) {
        // Stored bits up to the target: the recipe's bits per weight, or uniform INT4 g128's (the plan's).
        const double target = (r.quantization->bpw > 0 ? r.quantization->bpw : plan.bitsPerWeight) * double(plan.weightsQuantized) / 8;
        const double planned = plan.bitsPerWeight * double(plan.weightsQuantized) / 8;
        const std::int64_t delta = std::llround(target - planned);
        o.tensorBytes = std::uint64_t(std::int64_t(o.tensorBytes) + delta);
        p.weightsDelta = delta;
        p.quantization->bitsPerWeight = target * 8 / double(plan.weightsQuantized);
        // The budget moves bytes between the quantized weights' formats: charged to the parts they are in.
        Totals& mlp = o.parts[Part::Mlp];
        Totals& attn = o.parts[Part::Attention];
        const std::uint64_t both = mlp.bytes + attn.bytes;
        if (both > 0) {
            const std::int64_t toMlp = std::int64_t(double(delta) * double(mlp.bytes) / double(both));
            mlp.bytes = std::uint64_t(std::int64_t(mlp.bytes) + toMlp);
            attn.bytes = std::uint64_t(std::int64_t(attn.bytes) + delta - toMlp);
        }
        note += (note.empty() ? "" : "; ") + std::string("the bit budget at its target of ") +
                (r.quantization->bpw > 0 ? twoDecimals(r.quantization->bpw) : std::string("INT4 g128's")) +
                " bits per weight (the formats are chosen by measuring: plan the recipe for the exact figure)";
    }
    return p;
}

Json toJson(const OutputEstimate& o) {
    const EngineMemory& m = o.memory;
    Json parts = Json::object();
    for (const auto& [p, t] : o.parts) parts[partKey(p)] = {{"tensors", t.tensors}, {"parameters", t.params}, {"bytes", t.bytes}};
    Json gguf = Json::object();
    for (const auto& [f, b] : o.ggufBytes) gguf[f] = b;
    return Json{{"disk_bytes", {{"safetensors", o.tensorBytes}, {"side_files", o.sideBytes}, {"gguf", gguf}, {"total", o.diskBytes()}}},
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

struct Estimator::Impl {
    // What a recipe makes, up to the engine memory: the output, FLAP's range, exactness, the note.
    struct RecipeOutput {
        Planned output;
        std::optional<Planned> low, high;
        bool exact = true;
        std::string note;
    };
    // A stage kept: its result, or the error computing it threw.
    template <class T>
    struct Kept {
        std::shared_ptr<const T> value;
        std::exception_ptr error;
    };
    template <class T>
    using Cache = std::list<std::pair<std::string, Kept<T>>>;  // most recent first

    std::shared_ptr<const Checkpoint> ck;
    Planned input;
    mutable std::mutex mutex;
    // The text-only + vocabulary stream, with the vocabulary's report.
    struct StreamStage {
        TensorStream stream;
        std::optional<VocabPruneReport> vocabulary;
    };
    mutable Cache<StreamStage> streams;   // text-only + vocabulary (each holds a rewritten tokenizer: few are kept)
    mutable Cache<RecipeOutput> outputs;  // + FLAP and quantization
    static constexpr std::size_t kStreams = 4, kOutputs = 32;

    static std::string streamKey(const Recipe& r) {
        return Json{{"text_only", r.textOnly}, {"vocabulary", r.vocabulary ? toJson(*r.vocabulary) : Json()}}.dump();
    }
    static std::string outputKey(const Recipe& r) {
        return streamKey(r) + Json{{"flap", r.flap ? toJson(*r.flap) : Json()},
                                   {"quantization", r.quantization ? toJson(*r.quantization) : Json()},
                                   {"export", r.exports ? Json(r.exports->formats) : Json()}}
                                  .dump();
    }
    template <class T>
    const Kept<T>* find(Cache<T>& cache, const std::string& key) const {
        for (auto it = cache.begin(); it != cache.end(); ++it)
            if (it->first == key) {
                cache.splice(cache.begin(), cache, it);
                return &cache.front().second;
            }
        return nullptr;
    }
    template <class T>
    void keep(Cache<T>& cache, std::size_t limit, const std::string& key, Kept<T> kept) const {
        if (find(cache, key)) cache.pop_front();  // computed twice meanwhile: the newer result replaces it
        cache.emplace_front(key, std::move(kept));
        if (cache.size() > limit) cache.pop_back();
    }
    template <class T>
    static std::shared_ptr<const T> valueOf(const Kept<T>& k) {
        if (k.error) std::rethrow_exception(k.error);
        return k.value;
    }

    // The kept stage for `key`, or `compute()` run without the lock (the GUI thread may ask meanwhile) and kept,
    // its error too.
    template <class T, class F>
    std::shared_ptr<const T> memoized(Cache<T>& cache, std::size_t limit, const std::string& key, F compute) const {
        {
            const std::lock_guard<std::mutex> lock(mutex);
            if (const auto* k = find(cache, key)) return valueOf(*k);
        }
        Kept<T> k;
        try {
            k.value = std::make_shared<const T>(compute());
        } catch (...) {
            k.error = std::current_exception();
        }
        const std::lock_guard<std::mutex> lock(mutex);
        keep(cache, limit, key, k);
        return valueOf(k);
    }

    std::shared_ptr<const StreamStage> streamOf(const Recipe& r) const {
        return memoized(streams, kStreams, streamKey(r), [&] {
            StreamStage st{checkpointStream(*ck), {}};
            if (r.textOnly) {
                TextOnlyReport rep;
                st.stream = textOnlyStream(std::move(st.stream), rep);
            }
            if (r.vocabulary) {
                st.vocabulary.emplace();
                st.stream = vocabularyStream(std::move(st.stream), *r.vocabulary, *st.vocabulary);
            }
            return st;
        });
    }

    std::shared_ptr<const RecipeOutput> outputOf(const Recipe& r) const {
        return memoized(outputs, kOutputs, outputKey(r), [&] {
            const std::shared_ptr<const StreamStage> stage = streamOf(r);
            const TensorStream& s = stage->stream;
            RecipeOutput out;
            const double ratio = r.flap ? r.flap->ratio : 0;
            out.output = afterFlapAndQuantization(s, *ck, r, ratio, out.note);
            if (r.flap && r.flap->widths.empty()) {
                // Each layer's width is rounded to a multiple of `multiple`: at most that many channels a layer either way.
                std::int64_t total = 0;
                for (const LayerSpec& l : s.config.layers) total += l.ffnWidth;
                const double slack = double(s.config.layers.size()) * double(r.flap->multiple) / double(total);
                std::string ignored;
                out.low = afterFlapAndQuantization(s, *ck, r, std::min(0.95, ratio + slack), ignored);
                out.high = afterFlapAndQuantization(s, *ck, r, std::max(0.01, ratio - slack), ignored);
                out.exact = false;
                out.note = std::string("FLAP's widths are known after calibration: channels removed in proportion to each layer's width, ") +
                           "within the range for rounding to multiples of " + std::to_string(r.flap->multiple) +
                           " (plan the recipe for the exact figure)" + (out.note.empty() ? "" : "; " + out.note);
            }
            if (r.quantization && r.quantization->method == "budget" && r.quantization->formats.empty()) out.exact = false;
            return out;
        });
    }

    Estimate assemble(const RecipeOutput& out, const RuntimeOptions& runtime) const {
        Estimate e;
        e.input = input.withMemory(runtime);
        e.output = out.output.withMemory(runtime);
        if (out.low) e.low = out.low->withMemory(runtime);
        if (out.high) e.high = out.high->withMemory(runtime);
        e.exact = out.exact;
        e.note = out.note;
        return e;
    }
};

Estimator::Estimator(std::shared_ptr<const Checkpoint> checkpoint) : impl_(std::make_unique<Impl>()) {
    impl_->ck = std::move(checkpoint);
    const Checkpoint& ck = *impl_->ck;
    Planned& in = impl_->input;
    in.checkpoint = impl_->ck;
    // The input's own files, however they were sharded (another writer's shard size, metadata, index).
    in.sizes.tensorBytes = ck.store().fileBytes();
    if (ck.store().sharded()) in.sizes.tensorBytes += fs::file_size(ck.dir() / TensorStore::kIndexFile);
    in.sizes.sideBytes = sideFileBytes(ck.sideFiles());
    countParts(ck, in.sizes);
}

Estimator::~Estimator() = default;

const Checkpoint& Estimator::checkpoint() const { return *impl_->ck; }

Estimate Estimator::estimate(const Recipe& r, const RuntimeOptions& runtime) const {
    (void)kvCacheSize(impl_->ck->config(), runtime.context, runtime.prefillChunk);  // a bad runtime is refused first
    return impl_->assemble(*impl_->outputOf(r), runtime);
}

std::optional<Estimate> Estimator::cached(const Recipe& r, const RuntimeOptions& runtime) const {
    std::shared_ptr<const Impl::RecipeOutput> out;
    {
        const std::lock_guard<std::mutex> lock(impl_->mutex);
        const auto* k = impl_->find(impl_->outputs, Impl::outputKey(r));
        if (!k) return std::nullopt;
        out = Impl::valueOf(*k);
    }
    return impl_->assemble(*out, runtime);
}

void Estimator::prepare(const Recipe& r) const {
    try {
        (void)impl_->outputOf(r);
    } catch (...) {  // kept with the stage: cached() throws it
    }
}

std::shared_ptr<const Checkpoint> Estimator::plannedOutput(const Recipe& r) const { return impl_->outputOf(r)->output.checkpoint; }

std::optional<VocabPruneReport> Estimator::vocabularyReport(const Recipe& r) const { return impl_->streamOf(r)->vocabulary; }

Estimator::KeptStream Estimator::keptStream(const Recipe& r) const {
    const std::shared_ptr<const Impl::StreamStage> stage = impl_->streamOf(r);
    return KeptStream{stage->stream, stage->vocabulary};
}

std::optional<QuantizePlan> Estimator::quantizationPlan(const Recipe& r) const { return impl_->outputOf(r)->output.quantization; }

Estimate estimate(const Checkpoint& ck, const Recipe& r, const RuntimeOptions& runtime) {
    // The caller's checkpoint, not owned: the estimator lives only for this call.
    const Estimator estimator(std::shared_ptr<const Checkpoint>(&ck, [](const Checkpoint*) {}));
    return estimator.estimate(r, runtime);
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
