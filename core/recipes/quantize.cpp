#include "core/recipes/quantize.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>

#include "core/engine/weight_view.h"
#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/io/gptq_layout.h"
#include "core/io/safetensors_writer.h"
#include "core/io/side_files.h"
#include "core/recipes/gptq_calibration.h"
#include "core/recipes/recipe.h"
#include "core/recipes/recipe_json.h"

namespace fs = std::filesystem;

namespace whittle {

std::vector<std::string> QuantizeRecipe::defaultExclusions() {
    // The published E2B/E4B recipes keep the per-layer-embedding projection and gates in 16 bits.
    return {roleGlob(TensorRole::PleModelProjection), roleGlob(TensorRole::PleInputGate), roleGlob(TensorRole::PleProjection)};
}

Json toJson(const QuantizeRecipe& q) {
    Json j{{"method", q.method}, {"group_size", q.groupSize}, {"symmetric", q.symmetric}, {"exclude", q.exclude}, {"format", q.format}};
    if (q.method == "gptq") {
        j["act_order"] = q.actOrder;
        j["damp"] = q.damp;
        j["calibration"] = {{"files", q.calibration.files}, {"samples", q.calibration.samples}, {"length", q.calibration.length}};
    }
    return j;
}

QuantizeRecipe parseQuantizeRecipe(const Json& j, const std::string& src) {
    using namespace recipe_json;
    if (!j.is_object()) throw FormatError(src, {}, "'quantization' must be an object");
    onlyKeys(j, {"method", "group_size", "symmetric", "exclude", "format", "act_order", "damp", "calibration"}, "quantization", src);
    QuantizeRecipe q;
    if (j.contains("method")) {
        if (!j["method"].is_string() || (j["method"] != "rtn" && j["method"] != "gptq"))
            throw FormatError(src, {}, "'quantization.method' must be \"rtn\" or \"gptq\" (NVFP4 and the bit budget are not built yet)");
        q.method = j["method"].get<std::string>();
    }
    const bool gptq = q.method == "gptq";
    for (const char* k : {"act_order", "damp", "calibration"})
        if (j.contains(k) && !gptq) throw FormatError(src, {}, std::string("'quantization.") + k + "' applies to method \"gptq\" only");
    if (j.contains("act_order")) {
        if (!j["act_order"].is_boolean()) throw FormatError(src, {}, "'quantization.act_order' must be true or false");
        q.actOrder = j["act_order"].get<bool>();
    }
    if (j.contains("damp")) {
        if (!j["damp"].is_number() || !(j["damp"].get<double>() > 0) || !(j["damp"].get<double>() < 1))
            throw FormatError(src, {}, "'quantization.damp' must be a number between 0 and 1 (the published recipe: 0.01)");
        q.damp = j["damp"].get<double>();
    }
    if (j.contains("calibration")) {
        const Json& c = j["calibration"];
        if (!c.is_object()) throw FormatError(src, {}, "'quantization.calibration' must be an object");
        onlyKeys(c, {"files", "samples", "length"}, "quantization.calibration", src);
        if (c.contains("files")) q.calibration.files = strings(c["files"], "quantization.calibration.files", src);
        if (c.contains("samples")) q.calibration.samples = positiveInt(c["samples"], "quantization.calibration.samples", src);
        if (c.contains("length")) {
            q.calibration.length = positiveInt(c["length"], "quantization.calibration.length", src);
            if (q.calibration.length < 2) throw FormatError(src, {}, "'quantization.calibration.length' must be at least 2 tokens");
        }
    }
    if (j.contains("group_size")) {
        const Json& g = j["group_size"];
        if (!g.is_number_integer() || g.get<std::int64_t>() < 0 || g.get<std::int64_t>() > 1 << 20)
            throw FormatError(src, {}, "'quantization.group_size' must be a positive integer, or 0 for per channel");
        q.groupSize = g.get<int>();
    }
    if (j.contains("symmetric")) {
        if (!j["symmetric"].is_boolean()) throw FormatError(src, {}, "'quantization.symmetric' must be true or false");
        q.symmetric = j["symmetric"].get<bool>();
    }
    if (j.contains("exclude")) q.exclude = strings(j["exclude"], "quantization.exclude", src);
    if (j.contains("format")) {
        if (!j["format"].is_string() || j["format"] != "gptq")
            throw FormatError(src, {}, "'quantization.format' must be \"gptq\" (the only INT4 output so far)");
        q.format = j["format"].get<std::string>();
    }
    return q;
}

bool quantizes(const QuantizeRecipe& q, const ExpectedTensor& e) {
    if (!e.linear || !e.read) return false;
    for (const auto& pattern : q.exclude)
        if (::fnmatch(pattern.c_str(), e.name.c_str(), 0) == 0) return false;
    return true;
}

Json toJson(const QuantizeReport& r) {
    Json j{{"tensors_quantized", r.tensorsQuantized}, {"tensors_kept", r.tensorsKept}, {"weights_quantized", r.weightsQuantized},
            {"bits_per_weight", r.bitsPerWeight}, {"bytes_before", r.bytesBefore}, {"bytes_written", r.bytesWritten},
            {"excluded", r.excluded}, {"seconds", r.seconds}};
    if (r.calibrationWindows) {
        j["calibration_windows"] = r.calibrationWindows;
        j["calibration_tokens"] = r.calibrationTokens;
        j["gptq_seconds"] = r.gptqSeconds;
        j["gptq_tensors"] = Json::array();
        for (const auto& s : r.gptqTensors)
            j["gptq_tensors"].push_back({{"name", s.name}, {"damp", s.damp}, {"dead_inputs", s.deadInputs}, {"loss", s.loss}, {"seconds", s.seconds}});
    }
    return j;
}

namespace {

// The quantization_config transformers' GPTQ integration, GPTQModel and vLLM read (shared/formats.md §2).
Json gptqConfig(const QuantizeRecipe& q) {
    return {{"quant_method", "gptq"},
            {"checkpoint_format", "gptq"},
            {"bits", 4},
            {"group_size", q.groupSize == 0 ? -1 : q.groupSize},
            {"desc_act", false},  // act-order with static groups leaves g_idx = k / g: the desc_act=false layout
            {"sym", q.symmetric},
            {"static_groups", q.method == "gptq" && q.actOrder},
            {"true_sequential", false},  // RTN has no order; GPTQ observes a layer's sites in one pass
            {"damp_percent", q.method == "gptq" ? q.damp : 0.0},
            {"lm_head", false},
            {"meta", {{"quantizer", "whittle"}, {"method", q.method}, {"act_order", q.method == "gptq" && q.actOrder}}}};
}

// A 2-D weight in f32, read with pread into a reused buffer and decoded row by row (in parallel).
void readAsFloat(const TensorStore::Entry& e, std::vector<float>& out, std::vector<std::byte>& buf, ThreadPool& pool) {
    const TensorInfo& info = *e.info;
    buf.resize(std::size_t(info.nbytes));
    e.file->read(info, buf.data(), 0, info.nbytes);
    out.resize(std::size_t(info.numel()));
    const WeightView view{WeightFormat::Dense, info.dtype, buf.data(), info.shape[0], info.shape[1], info.name, {}};
    pool.parallelFor(std::size_t(view.rows), [&](std::size_t r) { view.row(std::int64_t(r), &out[r * std::size_t(view.cols)]); });
}

}  // namespace

QuantizeReport quantizeCheckpoint(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                                  const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.quantization) throw UsageError("the recipe has no quantization section");
    const QuantizeRecipe& q = *recipe.quantization;
    if (ck.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ tensors found)");
    QuantizeReport rep;
    auto toQuantize = [&](const CheckpointTensor& t) {  // a dense linear weight no rule excludes
        return t.expected && quantizes(q, *t.expected) && t.entry->info->name == t.expected->name;
    };

    // The plan: quantized linears become their four GPTQ tensors; everything else keeps name, dtype, shape.
    std::vector<TensorSpec> plan;
    std::uint64_t total = 0, quantBits = 0;
    for (const auto& t : ck.tensors()) {
        const TensorInfo& info = *t.entry->info;
        rep.bytesBefore += info.nbytes;
        if (toQuantize(t)) {
            const GptqNames n = gptqNames(*t.expected);
            const std::int64_t N = info.shape[0], K = info.shape[1];
            const int g = q.groupSize == 0 ? int(K) : q.groupSize;
            const std::int64_t G = (K + g - 1) / g;
            if (K % 8 || N % 8)
                throw UsageError(t.entry->file->path(), info.name, "shape " + shapeToString(info.shape) +
                                                                       ": GPTQ v1 needs inputs and outputs in multiples of 8");
            plan.push_back({n.qweight, DType::I32, {K / 8, N}});
            plan.push_back({n.qzeros, DType::I32, {G, N / 8}});
            plan.push_back({n.scales, DType::F16, {G, N}});
            plan.push_back({n.gIdx, DType::I32, {K}});
            ++rep.tensorsQuantized;
            rep.weightsQuantized += std::uint64_t(N * K);
            for (std::size_t i = plan.size() - 4; i < plan.size(); ++i) quantBits += 8 * plan[i].nbytes();
        } else {
            if (t.expected && t.expected->linear && t.expected->read) rep.excluded.push_back(info.name);
            plan.push_back({info.name, info.dtype, info.shape});
            ++rep.tensorsKept;
        }
        total += info.nbytes;
    }
    if (rep.tensorsQuantized == 0) throw UsageError(ck.dir().string(), {}, "no tensor is left to quantize: the exclusions cover every linear weight");
    rep.bitsPerWeight = double(quantBits) / double(rep.weightsQuantized);

    // GPTQ runs before anything is written: it needs the calibration pass over the whole model, and its
    // packed tensors (a quarter of the linears' 16-bit bytes) are held until the writer reaches them.
    GptqRun gptq;
    if (q.method == "gptq") {
        std::vector<fs::path> files(q.calibration.files.begin(), q.calibration.files.end());
        if (files.empty()) {
            if (!fs::exists(ck.dir() / "heldout.txt"))
                throw UsageError(ck.dir().string(), {}, "has no heldout.txt: GPTQ needs calibration text files");
            files.push_back(ck.dir() / "heldout.txt");
        }
        const auto windows = calibrationWindows(Tokenizer::fromModelOrFile(ck.dir()), files, q.calibration.samples, q.calibration.length);
        GptqOptions go;
        go.groupSize = q.groupSize;
        go.symmetric = q.symmetric;
        go.actOrder = q.actOrder;
        go.damp = q.damp;
        gptq = runGptq(ck, [&](const ExpectedTensor& e) { return quantizes(q, e); }, windows, go, progress, cancel);
        rep.calibrationWindows = gptq.windows;
        rep.calibrationTokens = gptq.tokens;
        rep.gptqSeconds = gptq.seconds;
        rep.gptqTensors = gptq.stats;
    }

    AtomicOutputDir out(dest, force, {ck.dir()});
    copySideFiles(ck.dir(), out.path(), [&](const std::string& name, const fs::path& file) {
        if (name == "quantize_config.json") return true;  // rewritten below
        if (name != "config.json") return false;
        Json j = readJsonFile(file);
        j["quantization_config"] = gptqConfig(q);
        writeJsonFile(out.path() / name, j);
        return true;
    });
    writeJsonFile(out.path() / "quantize_config.json", gptqConfig(q));

    SafetensorsWriter writer(out.path(), plan);
    StageMeter meter(progress, "quantizing", total);
    std::vector<std::byte> buf;
    std::vector<float> w;
    ThreadPool pool;  // rows are independent: the output is the same with any thread count
    std::vector<char> copyBuf;
    for (const auto& t : ck.tensors()) {
        cancel.throwIfCancelled();
        const TensorInfo& info = *t.entry->info;
        if (toQuantize(t)) {
            GptqTensors g;
            if (q.method == "gptq") {
                auto it = gptq.packed.find(info.name);
                if (it == gptq.packed.end()) throw Error({}, info.name, "internal: GPTQ did not quantize this tensor");
                g = std::move(it->second);
                gptq.packed.erase(it);
            } else {
                readAsFloat(*t.entry, w, buf, pool);
                const Int4Tensor qt = quantizeInt4Rtn(w, info.shape[0], info.shape[1], {q.groupSize, q.symmetric}, info.name, &pool);
                g = packGptqV1(qt, info.name, &pool);
            }
            const GptqNames n = gptqNames(*t.expected);
            writer.write(n.qweight, g.qweight.data(), g.qweight.size() * 4);
            writer.write(n.qzeros, g.qzeros.data(), g.qzeros.size() * 4);
            writer.write(n.scales, g.scales.data(), g.scales.size() * 2);
            writer.write(n.gIdx, g.gIdx.data(), g.gIdx.size() * 4);
            meter.advance(info.nbytes);
            continue;
        }
        copyTensorBytes(*t.entry->file, info, writer, copyBuf, meter, cancel);
    }
    writer.finish();
    meter.finish();
    rep.bytesWritten = writer.totalBytes();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / "whittle.json", Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"quantization", toJson(rep)}});
    out.commit();
    return rep;
}

}  // namespace whittle
