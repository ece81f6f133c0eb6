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
#include "core/quant/ggml_blocks.h"
#include "core/quant/nvfp4.h"
#include "core/recipes/gptq_calibration.h"
#include "core/recipes/recipe.h"
#include "core/recipes/recipe_json.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

std::vector<std::string> QuantizeRecipe::defaultExclusions() {
    // The published E2B/E4B recipes keep the per-layer-embedding projection and gates in 16 bits.
    return {roleGlob(TensorRole::PleModelProjection), roleGlob(TensorRole::PleInputGate), roleGlob(TensorRole::PleProjection)};
}

Json toJson(const QuantizeRecipe& q) {
    Json j{{"method", q.method}, {"group_size", q.groupSize}, {"symmetric", q.symmetric}, {"exclude", q.exclude}, {"format", q.format}};
    if (q.embeddings != "keep") j["embeddings"] = q.embeddings;
    if (q.method == "budget") {
        j.erase("group_size");
        j.erase("symmetric");
        j["bpw"] = q.bpw;
        if (!q.candidates.empty()) j["candidates"] = q.candidates;
        if (!q.formats.empty()) j["formats"] = q.formats;
    }
    if (q.method == "gptq" || q.method == "budget") {
        j["act_order"] = q.actOrder;
        j["damp"] = q.damp;
        j["calibration"] = toJson(q.calibration);
    }
    return j;
}

QuantizeRecipe parseQuantizeRecipe(const Json& j, const std::string& src) {
    using namespace recipe_json;
    if (!j.is_object()) throw FormatError(src, {}, "'quantization' must be an object");
    onlyKeys(j, {"method", "group_size", "symmetric", "exclude", "format", "act_order", "damp", "calibration", "bpw", "candidates", "embeddings", "formats"},
             "quantization", src);
    QuantizeRecipe q;
    if (j.contains("method")) {
        if (!j["method"].is_string() || (j["method"] != "rtn" && j["method"] != "gptq" && j["method"] != "nvfp4" && j["method"] != "budget"))
            throw FormatError(src, {}, "'quantization.method' must be \"rtn\", \"gptq\", \"nvfp4\" or \"budget\"");
        q.method = j["method"].get<std::string>();
    }
    if (q.method == "nvfp4") {
        // NVFP4's groups (16 inputs per E4M3 scale) and sign-magnitude codes are fixed by the format.
        q.groupSize = 16;
        q.format = "nvfp4-modelopt";
        if (j.contains("group_size") && j["group_size"] != 16) throw FormatError(src, {}, "'quantization.group_size' is always 16 for NVFP4");
        if (j.contains("symmetric") && j["symmetric"] != true) throw FormatError(src, {}, "'quantization.symmetric' is always true for NVFP4");
    }
    const bool budget = q.method == "budget";
    const bool gptq = q.method == "gptq" || budget;
    for (const char* k : {"act_order", "damp", "calibration"})
        if (j.contains(k) && !gptq) throw FormatError(src, {}, std::string("'quantization.") + k + "' applies to methods \"gptq\" and \"budget\" only");
    if (budget)
        for (const char* k : {"group_size", "symmetric"})
            if (j.contains(k)) throw FormatError(src, {}, std::string("'quantization.") + k + "' is chosen per tensor by the bit budget");
    if (j.contains("bpw")) {
        if (!budget) throw FormatError(src, {}, "'quantization.bpw' applies to method \"budget\" only");
        if (!j["bpw"].is_number() || !(j["bpw"].get<double>() >= 0) || !(j["bpw"].get<double>() <= 16))
            throw FormatError(src, {}, "'quantization.bpw' must be a number of bits per weight up to 16 (0: as uniform INT4 g128)");
        q.bpw = j["bpw"].get<double>();
    }
    if (j.contains("candidates")) {
        if (!budget) throw FormatError(src, {}, "'quantization.candidates' applies to method \"budget\" only");
        q.candidates = strings(j["candidates"], "quantization.candidates", src);
        if (q.candidates.empty()) throw FormatError(src, {}, "'quantization.candidates' lists no format");
        for (const auto& id : q.candidates) try {
                parseFormatId(id);
            } catch (const UsageError& e) {
                throw FormatError(src, {}, std::string("'quantization.candidates': ") + e.what());
            }
    }
    if (j.contains("formats")) {
        if (!budget) throw FormatError(src, {}, "'quantization.formats' applies to method \"budget\" only");
        if (!j["formats"].is_object() || j["formats"].empty())
            throw FormatError(src, {}, "'quantization.formats' must map each quantized tensor's name to a format id");
        for (const auto& [name, id] : j["formats"].items()) {
            if (!id.is_string()) throw FormatError(src, name, "'quantization.formats': a format id must be a string");
            try {
                parseFormatId(id.get<std::string>());
            } catch (const UsageError& e) {
                throw FormatError(src, name, std::string("'quantization.formats': ") + e.what());
            }
            q.formats[name] = id.get<std::string>();
        }
    }
    if (j.contains("act_order")) {
        if (!j["act_order"].is_boolean()) throw FormatError(src, {}, "'quantization.act_order' must be true or false");
        q.actOrder = j["act_order"].get<bool>();
    }
    if (j.contains("damp")) {
        if (!j["damp"].is_number() || !(j["damp"].get<double>() > 0) || !(j["damp"].get<double>() < 1))
            throw FormatError(src, {}, "'quantization.damp' must be a number between 0 and 1 (the published recipe: 0.01)");
        q.damp = j["damp"].get<double>();
    }
    if (j.contains("calibration")) parseCalibrationText(j["calibration"], "quantization.calibration", src, q.calibration);
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
        const std::string f = j["format"].is_string() ? j["format"].get<std::string>() : std::string();
        const bool ok = f == "hf" || (isNvfp4 ? f == "nvfp4-modelopt" || f == "nvfp4-ct" || f == "gguf-nvfp4"
                                              : f == "gptq" || f == "gguf-q8_0" || f == "gguf-q4_0" || f == "gguf-f16");
        if (!ok)
            throw FormatError(src, {}, isNvfp4 ? "'quantization.format' must be \"nvfp4-modelopt\", \"nvfp4-ct\", \"gguf-nvfp4\" or \"hf\" for NVFP4"
                                               : "'quantization.format' must be \"gptq\", \"hf\", \"gguf-q8_0\", \"gguf-q4_0\" or \"gguf-f16\" "
                                                 "for integer formats");
        q.format = f;
    }
    if (j.contains("embeddings")) {
        if (!j["embeddings"].is_string() || (j["embeddings"] != "keep" && j["embeddings"] != "q8_0" && j["embeddings"] != "q4_0"))
            throw FormatError(src, {}, "'quantization.embeddings' must be \"keep\", \"q8_0\" or \"q4_0\"");
        q.embeddings = j["embeddings"].get<std::string>();
        if (q.embeddings != "keep" && q.format == "hf")
            throw FormatError(src, {}, "'quantization.embeddings' stores rows of blocks, which format \"hf\" (plain tensors) cannot hold");
    }
    return q;
}

bool quantizes(const QuantizeRecipe& q, const ExpectedTensor& e) {
    if (!e.linear || !e.read) return false;
    for (const auto& pattern : q.exclude)
        if (::fnmatch(pattern.c_str(), e.name.c_str(), 0) == 0) return false;
    return true;
}

std::vector<std::string> excludedLinears(const QuantizeRecipe& q, const std::vector<ExpectedTensor>& table) {
    std::vector<std::string> out;
    for (const ExpectedTensor& e : table)
        if (e.linear && e.read && !quantizes(q, e)) out.push_back(e.name);
    return out;
}

Json toJson(const QuantizeReport& r) {
    Json j{{"dequantized", r.dequantized}, {"tables_as_rows", r.tablesAsRows}, {"table_bytes_before", r.tableBytesBefore},
           {"table_bytes_after", r.tableBytesAfter}, {"tensors_quantized", r.tensorsQuantized}, {"tensors_kept", r.tensorsKept}, {"weights_quantized", r.weightsQuantized},
            {"bits_per_weight", r.bitsPerWeight}, {"bytes_before", r.bytesBefore}, {"bytes_written", r.bytesWritten},
            {"excluded", r.excluded}, {"seconds", r.seconds}};
    if (r.budget) j["bit_budget"] = toJson(*r.budget);
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
// The budget method states INT4 g128 symmetric as the default and every other tensor's format as a
// GPTQModel "dynamic" override (an anchored regex over the module name); its binary residuals, which no
// other loader knows, are listed in meta.
Json gptqConfig(const Checkpoint& ck, const QuantizeRecipe& q, const std::map<std::string, IntOptions>& formats) {
    const bool calibrated = q.method == "gptq" || q.method == "budget";
    const IntOptions base = q.method == "budget" ? IntOptions{128, true, 4, false} : IntOptions{q.groupSize, q.symmetric, 4, false};
    Json j{{"quant_method", "gptq"},
           {"checkpoint_format", "gptq"},
           {"bits", base.bits},
           {"group_size", base.groupSize == 0 ? -1 : base.groupSize},
           {"desc_act", false},  // act-order with static groups leaves g_idx = k / g: the desc_act=false layout
           {"sym", base.symmetric},
           {"static_groups", calibrated && q.actOrder},
           {"true_sequential", false},  // RTN has no order; GPTQ observes a layer's sites in one pass
           {"damp_percent", calibrated ? q.damp : 0.0},
           {"lm_head", false},
           {"meta", {{"quantizer", "whittle"}, {"method", q.method}, {"act_order", calibrated && q.actOrder}}}};
    Json dynamic = Json::object(), residual = Json::array();
    for (const ExpectedTensor& e : ck.table()) {
        const auto it = formats.find(e.name);
        if (it == formats.end()) continue;
        const IntOptions& f = it->second;
        const std::string module = moduleName(e);
        if (f.bits == base.bits && f.groupSize == base.groupSize && f.symmetric == base.symmetric && !f.residual) continue;
        std::string re = "^";
        for (char ch : module) re += ch == '.' ? std::string("\\.") : std::string(1, ch);
        dynamic["+:" + re + "$"] = {{"bits", f.bits}, {"group_size", f.groupSize == 0 ? -1 : f.groupSize}, {"sym", f.symmetric}};
        if (f.residual) residual.push_back(module);
    }
    if (q.method == "budget") {
        j["dynamic"] = dynamic;
        j["meta"]["bits_per_weight_target"] = q.bpw;
        j["meta"]["binary_residual_modules"] = residual;
    }
    return j;
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

// A stored token table the recipe turns into rows of blocks.
bool rowsStored(const QuantizeRecipe& q, const CheckpointTensor& t) {
    return q.embeddings != "keep" && t.expected && isTokenTable(t.expected->role) && t.expected->read && t.entry->info->name == t.expected->name;
}
RowBlockType rowBlockType(const QuantizeRecipe& q) { return q.embeddings == "q4_0" ? RowBlockType::Q4_0 : RowBlockType::Q8_0; }
std::size_t rowBlockBytes(RowBlockType t, std::int64_t cols) { return t == RowBlockType::Q8_0 ? q8_0RowBytes(cols) : q4_0RowBytes(cols); }

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
    const Json weights{{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", 16}};  // (ModelOpt)
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

// The recipe's calibration windows: its text files, or the model folder's heldout.txt.
std::vector<std::vector<int>> recipeWindows(const Checkpoint& ck, const QuantizeRecipe& q) { return calibrationTextWindows(ck, q.calibration, "quantization.calibration"); }

GptqOptions recipeGptqOptions(const QuantizeRecipe& q, const fs::path& scratchDir) {
    GptqOptions go;
    go.groupSize = q.groupSize;
    go.symmetric = q.symmetric;
    go.actOrder = q.actOrder;
    go.damp = q.damp;
    go.scratchDir = scratchDir;
    return go;
}

// GPTQ's packed tensors for the whole model, computed before anything is written: it needs the calibration
// pass over the model, and they (a quarter of the linears' 16-bit bytes) are held until the writer reaches them.
GptqRun runGptqForRecipe(const Checkpoint& ck, const QuantizeRecipe& q, const fs::path& dest, Progress& progress, const CancelToken& cancel,
                         const std::map<std::string, IntOptions>& formats) {
    const auto windows = recipeWindows(ck, q);
    // Window states that do not fit in RAM spill next to the destination, where the output is written too.
    return runGptq(ck, [&](const ExpectedTensor& e) { return quantizes(q, e); }, windows, recipeGptqOptions(q, fs::absolute(dest).parent_path()),
                   progress, cancel, formats);
}

}  // namespace

QuantizePlan planQuantization(const Checkpoint& ck, const QuantizeRecipe& q, const std::map<std::string, IntOptions>& formats) {
    const bool nvfp4 = q.method == "nvfp4";
    if (q.method == "budget" && formats.empty())
        throw UsageError(ck.dir().string(), {}, "the bit budget's tensors are known only after its sensitivity is measured (planBitBudget)");
    const Nvfp4Layout layout = nvfp4Layout(q);
    QuantizePlan p;
    std::uint64_t quantBits = 0;
    for (const auto& t : ck.tensors()) {
        const TensorInfo& info = *t.entry->info;
        p.bytesBefore += info.nbytes;
        if (rowsStored(q, t)) {
            const std::int64_t rows = info.shape[0], cols = info.shape[1];
            if (cols % kGgmlBlockValues)
                throw UsageError(t.entry->file->path(), info.name, "rows of " + std::to_string(cols) + " values: " + q.embeddings +
                                                                       " blocks need a multiple of 32");
            const RowBlockType type = rowBlockType(q);
            p.tensors.push_back({rowBlocksName(*t.expected, type), DType::U8, {rows, std::int64_t(rowBlockBytes(type, cols))}});
            ++p.tablesAsRows;
            p.tableBytesBefore += info.nbytes;
            p.tableBytesAfter += p.tensors.back().nbytes();
            continue;
        }
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
            IntOptions f{q.groupSize, q.symmetric, 4, false};
            if (q.method == "budget") {
                const auto it = formats.find(info.name);
                if (it == formats.end()) throw Error({}, info.name, "internal: the bit budget has no format for this tensor");
                f = it->second;
            }
            const int g = f.groupSize == 0 ? int(K) : f.groupSize;
            const std::int64_t G = (K + g - 1) / g;
            if (const std::string problem = gptqShapeProblem(f.bits, f.residual, N, K); !problem.empty())
                throw UsageError(t.entry->file->path(), info.name, "shape " + shapeToString(info.shape) + ": " + problem);
            p.tensors.push_back({n.qweight, DType::I32, {K * f.bits / 32, N}});
            p.tensors.push_back({n.qzeros, DType::I32, {G, N * f.bits / 32}});
            p.tensors.push_back({n.scales, DType::F16, {G, N}});
            p.tensors.push_back({n.gIdx, DType::I32, {K}});
            if (f.residual) {
                p.tensors.push_back({n.qresidual, DType::I32, {K / 32, N}});
                p.tensors.push_back({n.residualScales, DType::F16, {G, N}});
            }
        }
        ++p.tensorsQuantized;
        p.weightsQuantized += std::uint64_t(N * K);
        for (std::size_t i = first; i < p.tensors.size(); ++i) quantBits += 8 * p.tensors[i].nbytes();
    }
    if (p.tensorsQuantized == 0) throw UsageError(ck.dir().string(), {}, "no tensor is left to quantize: the exclusions cover every linear weight");
    p.bitsPerWeight = double(quantBits) / double(p.weightsQuantized);
    if (q.format == "hf") {
        // Dequantized into the input's own tensors: the quantization's bits per weight, the input's bytes.
        p.tensors.clear();
        for (const auto& t : ck.tensors()) p.tensors.push_back({t.entry->info->name, t.entry->info->dtype, t.entry->info->shape});
    }
    for (const TensorSpec& t : p.tensors) p.bytesAfter += t.nbytes();
    return p;
}

std::map<std::string, IntOptions> recipeBudgetFormats(const Checkpoint& ck, const QuantizeRecipe& q) {
    std::map<std::string, IntOptions> out;
    for (const auto& t : ck.tensors()) {
        if (!quantizesStored(q, t)) continue;
        const std::string& name = t.entry->info->name;
        const auto it = q.formats.find(name);
        if (it == q.formats.end())
            throw UsageError(ck.dir().string(), name, "quantization.formats has no format for this tensor (planned for another model or recipe?)");
        out[name] = parseFormatId(it->second);
    }
    for (const auto& [name, id] : q.formats)
        if (!out.count(name)) throw UsageError(ck.dir().string(), name, "quantization.formats names a tensor this recipe does not quantize");
    return out;
}

std::map<std::string, std::string> formatIds(const BitBudgetPlan& plan) {
    std::map<std::string, std::string> ids;
    for (const auto& [name, f] : plan.formats()) ids[name] = formatId(f);
    return ids;
}

BitBudgetPlan planBitBudget(const Checkpoint& ck, const QuantizeRecipe& q, const fs::path& scratchDir, Progress& progress,
                            const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (q.method != "budget") throw UsageError("a bit budget plan needs quantization method \"budget\"");
    if (ck.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ or NVFP4 tensors found)");
    const auto windows = recipeWindows(ck, q);
    BitBudgetPlan plan;
    if (q.candidates.empty()) plan.candidates = budgetCandidates();
    for (const auto& id : q.candidates) plan.candidates.push_back(parseFormatId(id));
    plan.calibrationWindows = int(windows.size());
    for (const auto& w : windows) plan.calibrationTokens += std::int64_t(w.size());
    const auto selected = [&](const ExpectedTensor& e) { return quantizes(q, e); };
    plan.tensors = measureSensitivity(ck, selected, windows, plan.candidates, recipeGptqOptions(q, scratchDir), progress, cancel);
    if (plan.tensors.empty()) throw UsageError(ck.dir().string(), {}, "no tensor is left to quantize: the exclusions cover every linear weight");
    // The target in stored bits: the recipe's bits per weight, or what uniform INT4 g128 would store.
    std::uint64_t weights = 0, uniform = 0;
    const IntOptions int4g128{128, true, 4, false};
    for (const ExpectedTensor& e : ck.table())
        if (e.linear && e.read && selected(e)) {
            weights += std::uint64_t(e.shape[0] * e.shape[1]);
            uniform += gptqStoredBits(int4g128, e.shape[0], e.shape[1]);
        }
    plan.targetBitsPerWeight = q.bpw > 0 ? q.bpw : double(uniform) / double(weights);
    const std::uint64_t budget = q.bpw > 0 ? std::uint64_t(std::floor(q.bpw * double(weights))) : uniform;
    plan.choice = chooseFormats(plan.tensors, budget);
    std::uint64_t bits = 0;
    for (std::size_t t = 0; t < plan.tensors.size(); ++t) {
        bits += plan.tensors[t].bits[std::size_t(plan.choice[t])];
        plan.predictedError += plan.tensors[t].error[std::size_t(plan.choice[t])];
    }
    plan.bitsPerWeight = double(bits) / double(weights);
    plan.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return plan;
}

QuantizeReport quantizeCheckpoint(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                                  const CancelToken& cancel, const BitBudgetPlan* budgetPlan) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.quantization) throw UsageError("the recipe has no quantization section");
    const QuantizeRecipe& q = *recipe.quantization;
    if (ck.hasQuantizedWeights()) throw UsageError(ck.dir().string(), {}, "is already quantized (GPTQ or NVFP4 tensors found)");
    if (q.format.rfind("gguf-", 0) == 0)
        throw UsageError("format " + q.format + " is written by the GGUF exporter (whittle-cli quantize routes it there), not as safetensors");
    const bool nvfp4 = q.method == "nvfp4";
    const bool dequantized = q.format == "hf";
    const Nvfp4Layout layout = nvfp4Layout(q);
    QuantizeReport rep;
    rep.dequantized = dequantized;

    std::map<std::string, IntOptions> formats;
    if (q.method == "budget" && !q.formats.empty()) {
        formats = recipeBudgetFormats(ck, q);  // planned before: no measurement
    } else if (q.method == "budget") {
        rep.budget = budgetPlan ? *budgetPlan : planBitBudget(ck, q, fs::absolute(dest).parent_path(), progress, cancel);
        formats = rep.budget->formats();
    }
    const QuantizePlan plan = planQuantization(ck, q, formats);
    rep.tensorsQuantized = plan.tensorsQuantized;
    rep.tensorsKept = plan.tensorsKept;
    rep.weightsQuantized = plan.weightsQuantized;
    rep.bitsPerWeight = plan.bitsPerWeight;
    rep.bytesBefore = plan.bytesBefore;
    rep.excluded = plan.excluded;
    rep.tablesAsRows = plan.tablesAsRows;
    rep.tableBytesBefore = plan.tableBytesBefore;
    rep.tableBytesAfter = plan.tableBytesAfter;
    const std::uint64_t total = plan.bytesBefore;

    GptqRun gptq;
    if (q.method == "gptq" || q.method == "budget") {
        gptq = runGptqForRecipe(ck, q, dest, progress, cancel, formats);
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
    const Json config = !nvfp4 ? gptqConfig(ck, q, formats) : layout == Nvfp4Layout::ModelOpt ? modelOptConfig(untouched) : compressedTensorsConfig(untouched);
    copySideFiles(ck.sideFiles(), out.path(), [&](const SideFile& f) {
        if (f.name == files::kGptqQuantizeConfig || f.name == files::kModelOptQuantConfig) return true;  // written below for the format that has it
        if (f.name != files::kConfig || dequantized) return false;  // a dequantized checkpoint is a plain one
        Json j = f.json();
        j["quantization_config"] = config;
        writeJsonFile(out.path() / f.name, j);
        return true;
    });
    if (dequantized) {
        // a plain checkpoint: no quantization config
    } else if (!nvfp4) {
        writeJsonFile(out.path() / files::kGptqQuantizeConfig, config);
    } else if (layout == Nvfp4Layout::ModelOpt) {
        writeJsonFile(out.path() / files::kModelOptQuantConfig, modelOptHfQuantConfig(untouched));
    }

    SafetensorsWriter writer(out.path(), plan.tensors);
    // hf: each quantized weight's rows as the engines decode them, rounded to the input's dtype.
    std::vector<std::byte> rowsOut;
    const auto writeDequantized = [&](const TensorInfo& info, const auto& decodeRow) {
        const std::int64_t N = info.shape[0], K = info.shape[1];
        const std::size_t es = dtypeSize(info.dtype);
        rowsOut.resize(std::size_t(N * K) * es);
        pool.parallelFor(std::size_t(N), [&](std::size_t r) {
            std::vector<float> row(static_cast<std::size_t>(K));
            decodeRow(std::int64_t(r), row.data());
            std::byte* dst = rowsOut.data() + r * std::size_t(K) * es;
            for (std::int64_t k = 0; k < K; ++k) storeFloat(info.dtype, dst, std::size_t(k), row[std::size_t(k)]);
        });
        writer.write(info.name, rowsOut.data(), rowsOut.size());
    };
    StageMeter meter(progress, "quantizing", total);
    std::vector<char> copyBuf;
    for (const auto& t : ck.tensors()) {
        cancel.throwIfCancelled();
        const TensorInfo& info = *t.entry->info;
        if (rowsStored(q, t)) {
            // Streamed in chunks of rows (E2B's PLE table is 4.7 GB in bf16), each row's blocks independent.
            const RowBlockType type = rowBlockType(q);
            const std::int64_t rows = info.shape[0], cols = info.shape[1];
            const std::size_t rb = rowBlockBytes(type, cols);
            const std::int64_t step = std::max<std::int64_t>(1, (std::int64_t(64) << 20) / (cols * std::int64_t(dtypeSize(info.dtype))));
            const std::string name = rowBlocksName(*t.expected, type);
            std::vector<std::uint8_t> blocks;
            for (std::int64_t r0 = 0; r0 < rows; r0 += step) {
                cancel.throwIfCancelled();
                const std::int64_t n = std::min(step, rows - r0);
                readRowsAsFloat(*t.entry, cols, r0, n, buf, w);
                blocks.resize(std::size_t(n) * rb);
                pool.parallelFor(std::size_t(n), [&](std::size_t i) {
                    const std::span<const float> row(w.data() + i * std::size_t(cols), std::size_t(cols));
                    if (type == RowBlockType::Q8_0) quantizeRowQ8_0(row, blocks.data() + i * rb, name);
                    else quantizeRowQ4_0(row, blocks.data() + i * rb, name);
                });
                writer.write(name, blocks.data(), blocks.size());
                meter.advance(std::uint64_t(n * cols) * dtypeSize(info.dtype));
            }
            continue;
        }
        if (!quantizesStored(q, t)) {
            copyTensorBytes(*t.entry->file, info, writer, copyBuf, meter, cancel);
            continue;
        }
        if (nvfp4) {
            readAsFloat(*t.entry, w, buf, pool);
            const float amax = groupAmax.at({t.expected->layer, linearSite(t.expected->role)});
            const float global = nvfp4GlobalScale(std::span<const float>(&amax, 1));
            const Nvfp4Tensor nt = quantizeNvfp4(w, info.shape[0], info.shape[1], info.name, &pool, global);
            if (dequantized) {
                writeDequantized(info, [&](std::int64_t r, float* row) { dequantizeNvfp4Row(nt, r, row); });
                meter.advance(info.nbytes);
                continue;
            }
            const std::vector<std::uint8_t> packed = packNvfp4(nt);
            const Nvfp4Names n = nvfp4Names(*t.expected, layout);
            const float stored = layout == Nvfp4Layout::ModelOpt ? nt.globalScale : 1.0f / nt.globalScale;  // CT: the reciprocal
            writer.write(n.packed, packed.data(), packed.size());
            writer.write(n.scale, nt.blockScales.data(), nt.blockScales.size());
            writer.write(n.globalScale, &stored, 4);
        } else {
            GptqTensors g;
            if (q.method == "gptq" || q.method == "budget") {
                auto it = gptq.packed.find(info.name);
                if (it == gptq.packed.end()) throw Error({}, info.name, "internal: GPTQ did not quantize this tensor");
                g = std::move(it->second);
                gptq.packed.erase(it);
            } else {
                readAsFloat(*t.entry, w, buf, pool);
                const IntTensor qt = quantizeIntRtn(w, info.shape[0], info.shape[1], {q.groupSize, q.symmetric}, info.name, &pool);
                g = packGptqV1(qt, info.name, &pool);
            }
            if (dequantized) {
                writeDequantized(info, [&](std::int64_t r, float* row) { dequantizeGptqRow(g, r, row); });
                meter.advance(info.nbytes);
                continue;
            }
            const GptqNames n = gptqNames(*t.expected);
            writer.write(n.qweight, g.qweight.data(), g.qweight.size() * 4);
            writer.write(n.qzeros, g.qzeros.data(), g.qzeros.size() * 4);
            writer.write(n.scales, g.scales.data(), g.scales.size() * 2);
            writer.write(n.gIdx, g.gIdx.data(), g.gIdx.size() * 4);
            if (!g.residualScales.empty()) {
                writer.write(n.qresidual, g.qresidual.data(), g.qresidual.size() * 4);
                writer.write(n.residualScales, g.residualScales.data(), g.residualScales.size() * 2);
            }
        }
        meter.advance(info.nbytes);
    }
    writer.finish();
    meter.finish();
    rep.bytesWritten = writer.totalBytes();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport, Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"quantization", toJson(rep)}});
    out.commit();
    return rep;
}

}  // namespace whittle
