#include "core/recipes/quantize.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <cstring>

#include "core/engine/weight_view.h"
#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/io/gptq_layout.h"
#include "core/io/safetensors_writer.h"
#include "core/io/side_files.h"
#include "core/quant/nvfp4.h"
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
        if (!j["method"].is_string() || (j["method"] != "rtn" && j["method"] != "gptq" && j["method"] != "nvfp4"))
            throw FormatError(src, {}, "'quantization.method' must be \"rtn\", \"gptq\" or \"nvfp4\" (the bit budget is not built yet)");
        q.method = j["method"].get<std::string>();
    }
    if (q.method == "nvfp4") {
        // NVFP4's groups (16 inputs per E4M3 scale) and sign-magnitude codes are fixed by the format.
        q.groupSize = 16;
        q.format = "nvfp4-modelopt";
        if (j.contains("group_size") && j["group_size"] != 16) throw FormatError(src, {}, "'quantization.group_size' is always 16 for NVFP4");
        if (j.contains("symmetric") && j["symmetric"] != true) throw FormatError(src, {}, "'quantization.symmetric' is always true for NVFP4");
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
        const bool isNvfp4 = q.method == "nvfp4";
        if (!j["format"].is_string() || (isNvfp4 ? j["format"] != "nvfp4-modelopt" && j["format"] != "nvfp4-ct" : j["format"] != "gptq"))
            throw FormatError(src, {}, isNvfp4 ? "'quantization.format' must be \"nvfp4-modelopt\" or \"nvfp4-ct\" for NVFP4"
                                               : "'quantization.format' must be \"gptq\" for INT4 (GGUF types: whittle-cli export)");
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

Nvfp4Layout nvfp4Layout(const QuantizeRecipe& q) { return q.format == "nvfp4-ct" ? Nvfp4Layout::CompressedTensors : Nvfp4Layout::ModelOpt; }

// A stored tensor the recipe quantizes: a dense linear weight no rule excludes.
bool quantizesStored(const QuantizeRecipe& q, const CheckpointTensor& t) {
    return t.expected && quantizes(q, *t.expected) && t.entry->info->name == t.expected->name;
}

// The modules a quantization config must name as left alone: linears of the text table not quantized, the
// head, and the towers by prefix (vLLM would otherwise expect their Linear layers quantized).
std::vector<std::string> unquantizedModules(const Checkpoint& ck, const QuantizeRecipe& q) {
    std::vector<std::string> out;
    for (const ExpectedTensor& e : ck.table())
        if ((e.linear && !quantizes(q, e)) || e.role == TensorRole::LmHead) out.push_back(moduleName(e));
    std::set<std::string> towers;
    for (const auto& t : ck.tensors())
        if (!t.expected && isTowerTensor(t.entry->info->name)) {
            const std::string& n = t.entry->info->name;
            const std::size_t second = n.find('.', n.find('.') + 1);  // "model.vision_tower"
            towers.insert(n.substr(0, second) + "*");
        }
    out.insert(out.end(), towers.begin(), towers.end());
    return out;
}

// NVFP4 configs (shared/formats.md §1b, §1e): ModelOpt's hf_quant_config.json and config.json dict, or
// compressed-tensors' config.json dict.
Json nvfp4Producer() { return {{"name", "whittle"}, {"version", "0.1"}}; }

Json modelOptHfQuantConfig(const std::vector<std::string>& excluded) {
    return {{"producer", nvfp4Producer()},
            {"quantization", {{"quant_algo", "W4A16_NVFP4"}, {"kv_cache_quant_algo", nullptr}, {"group_size", 16}, {"exclude_modules", excluded}}}};
}

Json modelOptConfig(const std::vector<std::string>& excluded) {
    const Json weights{{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", 16}};
    return {{"quant_method", "modelopt"},
            {"quant_algo", "W4A16_NVFP4"},
            {"producer", nvfp4Producer()},
            {"kv_cache_scheme", nullptr},
            {"ignore", excluded},
            {"config_groups", {{"group_0", {{"weights", weights}, {"targets", {"Linear"}}}}}}};
}

Json compressedTensorsConfig(const std::vector<std::string>& excluded) {
    const Json weights{{"num_bits", 4},       {"type", "float"},    {"strategy", "tensor_group"},     {"group_size", 16},
                       {"symmetric", true},   {"dynamic", false},   {"scale_dtype", "float8_e4m3fn"}, {"observer", "minmax"}};
    return {{"quant_method", "compressed-tensors"},
            {"format", "nvfp4-pack-quantized"},
            {"quantization_status", "compressed"},
            {"kv_cache_scheme", nullptr},
            {"ignore", excluded},
            {"config_groups", {{"group_0", {{"weights", weights}, {"input_activations", nullptr}, {"output_activations", nullptr},
                                            {"targets", {"Linear"}}, {"format", "nvfp4-pack-quantized"}}}}}};
}

// GPTQ's packed tensors for the whole model, computed before anything is written: it needs the calibration
// pass over the model, and they (a quarter of the linears' 16-bit bytes) are held until the writer reaches them.
GptqRun runGptqForRecipe(const Checkpoint& ck, const QuantizeRecipe& q, const fs::path& dest, Progress& progress, const CancelToken& cancel) {
    std::vector<fs::path> files(q.calibration.files.begin(), q.calibration.files.end());
    if (files.empty()) {
        if (!fs::exists(ck.dir() / "heldout.txt")) throw UsageError(ck.dir().string(), {}, "has no heldout.txt: GPTQ needs calibration text files");
        files.push_back(ck.dir() / "heldout.txt");
    }
    const auto windows = calibrationWindows(Tokenizer::fromModelOrFile(ck.dir()), files, q.calibration.samples, q.calibration.length);
    GptqOptions go;
    go.groupSize = q.groupSize;
    go.symmetric = q.symmetric;
    go.actOrder = q.actOrder;
    go.damp = q.damp;
    // Window states that do not fit in RAM spill next to the destination, where the output is written too.
    go.scratchDir = fs::absolute(dest).parent_path();
    return runGptq(ck, [&](const ExpectedTensor& e) { return quantizes(q, e); }, windows, go, progress, cancel);
}

}  // namespace

QuantizePlan planQuantization(const Checkpoint& ck, const QuantizeRecipe& q) {
    const bool nvfp4 = q.method == "nvfp4";
    const Nvfp4Layout layout = nvfp4Layout(q);
    QuantizePlan p;
    std::uint64_t quantBits = 0;
    for (const auto& t : ck.tensors()) {
        const TensorInfo& info = *t.entry->info;
        p.bytesBefore += info.nbytes;
        if (!quantizesStored(q, t)) {
            if (t.expected && t.expected->linear && t.expected->read) p.excluded.push_back(info.name);
            p.tensors.push_back({info.name, info.dtype, info.shape});
            ++p.tensorsKept;
            continue;
        }
        const std::size_t first = p.tensors.size();
        const std::int64_t N = info.shape[0], K = info.shape[1];
        if (nvfp4) {
            if (K % kNvfp4BlockSize)
                throw UsageError(t.entry->file->path(), info.name, "shape " + shapeToString(info.shape) + ": NVFP4 needs inputs in multiples of 16");
            const Nvfp4Names n = nvfp4Names(*t.expected, layout);
            p.tensors.push_back({n.packed, DType::U8, {N, K / 2}});
            p.tensors.push_back({n.scale, DType::F8_E4M3, {N, K / kNvfp4BlockSize}});
            // ModelOpt's scale_2 is a 0-d tensor (torch .squeeze()); compressed-tensors writes [1].
            p.tensors.push_back({n.globalScale, DType::F32, layout == Nvfp4Layout::ModelOpt ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{1}});
        } else {
            const GptqNames n = gptqNames(*t.expected);
            const int g = q.groupSize == 0 ? int(K) : q.groupSize;
            const std::int64_t G = (K + g - 1) / g;
            if (K % 8 || N % 8)
                throw UsageError(t.entry->file->path(), info.name, "shape " + shapeToString(info.shape) +
                                                                       ": GPTQ v1 needs inputs and outputs in multiples of 8");
            p.tensors.push_back({n.qweight, DType::I32, {K / 8, N}});
            p.tensors.push_back({n.qzeros, DType::I32, {G, N / 8}});
            p.tensors.push_back({n.scales, DType::F16, {G, N}});
            p.tensors.push_back({n.gIdx, DType::I32, {K}});
        }
        ++p.tensorsQuantized;
        p.weightsQuantized += std::uint64_t(N * K);
        for (std::size_t i = first; i < p.tensors.size(); ++i) quantBits += 8 * p.tensors[i].nbytes();
    }
    if (p.tensorsQuantized == 0) throw UsageError(ck.dir().string(), {}, "no tensor is left to quantize: the exclusions cover every linear weight");
    p.bitsPerWeight = double(quantBits) / double(p.weightsQuantized);
    for (const TensorSpec& t : p.tensors) p.bytesAfter += t.nbytes();
    return p;
}

QuantizeReport quantizeCheckpoint(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                                  const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.quantization) throw UsageError("the recipe has no quantization section");
    const QuantizeRecipe& q = *recipe.quantization;
    if (ck.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ or NVFP4 tensors found)");
    const bool nvfp4 = q.method == "nvfp4";
    const Nvfp4Layout layout = nvfp4Layout(q);
    QuantizeReport rep;

    const QuantizePlan plan = planQuantization(ck, q);
    rep.tensorsQuantized = plan.tensorsQuantized;
    rep.tensorsKept = plan.tensorsKept;
    rep.weightsQuantized = plan.weightsQuantized;
    rep.bitsPerWeight = plan.bitsPerWeight;
    rep.bytesBefore = plan.bytesBefore;
    rep.excluded = plan.excluded;
    const std::uint64_t total = plan.bytesBefore;

    GptqRun gptq;
    if (q.method == "gptq") {
        gptq = runGptqForRecipe(ck, q, dest, progress, cancel);
        rep.calibrationWindows = gptq.windows;
        rep.calibrationTokens = gptq.tokens;
        rep.gptqSeconds = gptq.seconds;
        rep.gptqTensors = gptq.stats;
    }

    ThreadPool pool;  // rows are independent: the output is the same with any thread count
    std::vector<std::byte> buf;
    std::vector<float> w;
    // NVFP4: one second-level scale per group of linears other tools fuse (q/k/v, gate/up), from the group's
    // largest |w| (shared/formats.md §1c): one pass over those weights before writing.
    std::map<std::pair<int, LinearSite>, float> groupAmax;
    if (nvfp4) {
        StageMeter scan(progress, "measuring weights", total);
        for (const auto& t : ck.tensors())
            if (quantizesStored(q, t)) {
                cancel.throwIfCancelled();
                readAsFloat(*t.entry, w, buf, pool);
                float amax = 0;
                for (float v : w) amax = std::max(amax, std::fabs(v));
                float& g = groupAmax[{t.expected->layer, linearSite(t.expected->role)}];
                g = std::max(g, amax);
                scan.advance(t.entry->info->nbytes);
            }
        scan.finish();
    }

    AtomicOutputDir out(dest, force, {ck.dir()});
    const std::vector<std::string> untouched = unquantizedModules(ck, q);
    const Json config = !nvfp4 ? gptqConfig(q) : layout == Nvfp4Layout::ModelOpt ? modelOptConfig(untouched) : compressedTensorsConfig(untouched);
    copySideFiles(ck.dir(), out.path(), [&](const std::string& name, const fs::path& file) {
        if (name == "quantize_config.json" || name == "hf_quant_config.json") return true;  // written below for the format that has it
        if (name != "config.json") return false;
        Json j = readJsonFile(file);
        j["quantization_config"] = config;
        writeJsonFile(out.path() / name, j);
        return true;
    });
    if (!nvfp4) writeJsonFile(out.path() / "quantize_config.json", config);
    else if (layout == Nvfp4Layout::ModelOpt) writeJsonFile(out.path() / "hf_quant_config.json", modelOptHfQuantConfig(untouched));

    SafetensorsWriter writer(out.path(), plan.tensors);
    StageMeter meter(progress, "quantizing", total);
    std::vector<char> copyBuf;
    for (const auto& t : ck.tensors()) {
        cancel.throwIfCancelled();
        const TensorInfo& info = *t.entry->info;
        if (!quantizesStored(q, t)) {
            copyTensorBytes(*t.entry->file, info, writer, copyBuf, meter, cancel);
            continue;
        }
        if (nvfp4) {
            readAsFloat(*t.entry, w, buf, pool);
            const float amax = groupAmax.at({t.expected->layer, linearSite(t.expected->role)});
            const float global = nvfp4GlobalScale(std::span<const float>(&amax, 1));
            const Nvfp4Tensor nt = quantizeNvfp4(w, info.shape[0], info.shape[1], info.name, &pool, global);
            const std::vector<std::uint8_t> packed = packNvfp4(nt);
            const Nvfp4Names n = nvfp4Names(*t.expected, layout);
            const float stored = layout == Nvfp4Layout::ModelOpt ? nt.globalScale : 1.0f / nt.globalScale;  // CT: the reciprocal
            writer.write(n.packed, packed.data(), packed.size());
            writer.write(n.scale, nt.blockScales.data(), nt.blockScales.size());
            writer.write(n.globalScale, &stored, 4);
        } else {
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
        }
        meter.advance(info.nbytes);
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
