#include "core/model/checkpoint.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "core/io/gptq_layout.h"
#include "core/quant/ggml_blocks.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

int optionalId(const Json& j, const char* key, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return -1;
    if (!it->is_number_integer()) throw FormatError(file, {}, std::string("'") + key + "' must be an integer token id");
    return it->get<int>();
}

std::vector<int> idList(const Json& j, const char* key, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (it->is_number_integer()) return {it->get<int>()};
    if (!it->is_array()) throw FormatError(file, {}, std::string("'") + key + "' must be a token id or a list of ids");
    std::vector<int> v;
    for (const auto& e : *it) {
        if (!e.is_number_integer()) throw FormatError(file, {}, std::string("'") + key + "' holds a non-integer");
        v.push_back(e.get<int>());
    }
    return v;
}

// The GPTQ v1 tensors of a linear weight that is not stored densely; nullopt when there are none. Every
// dtype and shape is checked against the dense shape [N, K] the table implies.
std::optional<GptqLinear> findGptq(const TensorStore& store, const ExpectedTensor& e, const std::string& dir) {
    const GptqNames n = gptqNames(e);
    GptqLinear g;
    g.qweight = store.find(n.qweight);
    if (!g.qweight) return std::nullopt;
    g.qzeros = store.find(n.qzeros);
    g.scales = store.find(n.scales);
    g.gIdx = store.find(n.gIdx);
    for (const auto& [entry, name] : {std::pair{g.qzeros, &n.qzeros}, {g.scales, &n.scales}, {g.gIdx, &n.gIdx}})
        if (!entry) throw FormatError(dir, *name, "missing: " + n.qweight + " is present, so the GPTQ set needs it");
    const std::int64_t N = e.shape[0], K = e.shape[1];
    g.outFeatures = N;
    g.inFeatures = K;
    const auto& ss = g.scales->info->shape;
    g.groups = ss.size() == 2 ? ss[0] : 0;
    auto check = [&](const TensorStore::Entry* t, DType dtype, std::vector<std::int64_t> shape) {
        if (t->info->dtype != dtype || t->info->shape != shape)
            throw FormatError(t->file->path(), t->info->name, std::string(dtypeName(t->info->dtype)) + " " + shapeToString(t->info->shape) +
                                                                  " but a GPTQ v1 " + shapeToString(e.shape) + " weight needs " +
                                                                  std::string(dtypeName(dtype)) + " " + shapeToString(shape));
    };
    // The code width follows from qweight's rows (K·bits/32 words per column).
    const auto& qs = g.qweight->info->shape;
    g.bits = qs.size() == 2 && K > 0 && (qs[0] * 32) % K == 0 ? int(qs[0] * 32 / K) : 0;
    if (const std::string problem = gptqShapeProblem(g.bits, false, N, K); !problem.empty() || g.groups < 1 || g.groups > K)
        throw FormatError(g.qweight->file->path(), n.qweight, std::string(dtypeName(g.qweight->info->dtype)) + " " + shapeToString(qs) +
                                                                  " with " + std::to_string(g.groups) + " groups is not a GPTQ v1 " +
                                                                  shapeToString(e.shape) + " weight in 2, 3, 4 or 8 bits" +
                                                                  (problem.empty() ? "" : " (" + problem + ")"));
    check(g.qweight, DType::I32, {K * g.bits / 32, N});
    check(g.qzeros, DType::I32, {g.groups, N * g.bits / 32});
    check(g.scales, DType::F16, {g.groups, N});
    check(g.gIdx, DType::I32, {K});
    g.qresidual = store.find(n.qresidual);
    g.residualScales = store.find(n.residualScales);
    if (bool(g.qresidual) != bool(g.residualScales))
        throw FormatError(dir, g.qresidual ? n.residualScales : n.qresidual,
                          "missing: " + (g.qresidual ? n.qresidual : n.residualScales) + " is present, so the binary residual needs it");
    if (g.qresidual) {
        if (K % 32) throw FormatError(g.qresidual->file->path(), n.qresidual, "a binary residual needs inputs in multiples of 32");
        check(g.qresidual, DType::I32, {K / 32, N});
        check(g.residualScales, DType::F16, {g.groups, N});
    }
    return g;
}

// The NVFP4 tensors of a linear weight, in either layout; nullopt when it has no weight_scale (so is not
// NVFP4). Dtypes and shapes are checked against the dense shape [N, K].
std::optional<Nvfp4Linear> findNvfp4(const TensorStore& store, const ExpectedTensor& e, const std::string& dir) {
    Nvfp4Linear f;
    for (Nvfp4Layout layout : {Nvfp4Layout::ModelOpt, Nvfp4Layout::CompressedTensors}) {
        const Nvfp4Names n = nvfp4Names(e, layout);
        f.packed = store.find(n.packed);
        f.scale = store.find(n.scale);
        if (!f.packed || !f.scale) continue;
        f.layout = layout;
        f.globalScale = store.find(n.globalScale);
        if (!f.globalScale) throw FormatError(dir, n.globalScale, "missing: " + n.scale + " is present, so the NVFP4 set needs it");
        const std::int64_t N = e.shape[0], K = e.shape[1];
        f.outFeatures = N;
        f.inFeatures = K;
        if (K % 16) throw FormatError(f.packed->file->path(), n.packed, "NVFP4 cannot hold a " + shapeToString(e.shape) + " weight (K % 16)");
        // shape empty: one value, either a 0-d scalar (ModelOpt) or [1] (compressed-tensors)
        auto check = [&](const TensorStore::Entry* t, DType dtype, std::vector<std::int64_t> shape) {
            const bool ok = t->info->dtype == dtype && (shape.empty() ? t->info->numel() == 1 : t->info->shape == shape);
            if (!ok)
                throw FormatError(t->file->path(), t->info->name, std::string(dtypeName(t->info->dtype)) + " " + shapeToString(t->info->shape) +
                                                                      " but an NVFP4 " + shapeToString(e.shape) + " weight needs " +
                                                                      std::string(dtypeName(dtype)) + " " + (shape.empty() ? "with one value" : shapeToString(shape)));
        };
        check(f.packed, DType::U8, {N, K / 2});
        check(f.scale, DType::F8_E4M3, {N, K / 16});
        check(f.globalScale, DType::F32, {});  // one value: ModelOpt writes a scalar, compressed-tensors [1]
        return f;
    }
    return std::nullopt;
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dirIn) {
    Checkpoint ck;
    ck.dir_ = dirIn;
    std::error_code ec;
    if (!fs::exists(dirIn, ec)) throw IoError(dirIn.string(), {}, "checkpoint folder does not exist");
    if (!fs::is_directory(dirIn, ec)) throw FormatError(dirIn.string(), {}, "is not a folder (expected a checkpoint folder)");
    const fs::path cfgPath = dirIn / files::kConfig;
    if (!fs::exists(cfgPath, ec) && !ec) throw IoError(cfgPath.string(), {}, "missing: a checkpoint folder needs config.json");
    ck.config_ = Gemma4Config::load(cfgPath);
    const Gemma4Config& c = ck.config_;

    // Special ids: generation_config.json first, then config.json; never constants.
    const Json cfgJson = readJsonFile(cfgPath, 16ull << 20);
    const Json& text = c.modelType == "gemma4" ? cfgJson.at("text_config") : cfgJson;
    ck.special_.bos = optionalId(text, "bos_token_id", cfgPath.string());
    ck.special_.pad = optionalId(text, "pad_token_id", cfgPath.string());
    ck.special_.eos = idList(cfgJson, "eos_token_id", cfgPath.string());
    if (ck.special_.eos.empty()) ck.special_.eos = idList(text, "eos_token_id", cfgPath.string());
    const fs::path genPath = dirIn / files::kGenerationConfig;
    if (fs::exists(genPath, ec)) {
        ck.hasGenerationConfig_ = true;
        const Json g = readJsonFile(genPath, 1ull << 20);
        if (!g.is_object()) throw FormatError(genPath.string(), {}, "not a JSON object");
        if (int b = optionalId(g, "bos_token_id", genPath.string()); b >= 0) ck.special_.bos = b;
        if (int p = optionalId(g, "pad_token_id", genPath.string()); p >= 0) ck.special_.pad = p;
        if (auto e = idList(g, "eos_token_id", genPath.string()); !e.empty()) ck.special_.eos = e;
    }
    auto checkId = [&](int id, const char* what) {
        if (id >= c.vocabSize)
            throw FormatError(dirIn.string(), {}, std::string(what) + " id " + std::to_string(id) +
                                                      " is outside the vocabulary (" + std::to_string(c.vocabSize) + ")");
    };
    checkId(ck.special_.bos, "bos");
    checkId(ck.special_.pad, "pad");
    for (int e : ck.special_.eos) checkId(e, "eos");

    ck.store_ = TensorStore::open(dirIn);
    ck.sideFiles_ = listSideFiles(dirIn);
    ck.index();
    return ck;
}

Checkpoint Checkpoint::fromParts(const fs::path& origin, const Gemma4Config& config, const SpecialTokenIds& special,
                                 std::vector<SideFile> sideFiles, TensorStore store) {
    Checkpoint ck;
    ck.dir_ = origin;
    ck.config_ = config;
    ck.special_ = special;
    ck.sideFiles_ = std::move(sideFiles);
    ck.hasGenerationConfig_ = ck.sideFile(files::kGenerationConfig) != nullptr;
    ck.store_ = std::move(store);
    ck.index();
    return ck;
}

const SideFile* Checkpoint::sideFile(std::string_view name) const {
    for (const SideFile& f : sideFiles_)
        if (f.name == name) return &f;
    return nullptr;
}

const SideFile& Checkpoint::sideFile(std::string_view name, const std::string& why) const {
    if (const SideFile* f = sideFile(name)) return *f;
    throw IoError((dir_ / std::string(name)).string(), {}, "missing (" + why + ")");
}

void Checkpoint::index() {
    Checkpoint& ck = *this;
    const fs::path& dirIn = dir_;
    const Gemma4Config& c = config_;
    ck.table_ = textTensorTable(c);
    std::unordered_map<std::string, const ExpectedTensor*> expected;
    for (const auto& e : ck.table_) expected.emplace(e.name, &e);
    for (const auto& e : ck.table_) {
        const TensorStore::Entry* s = ck.store_.find(e.name);
        if (e.linear)
            if (auto f = findNvfp4(ck.store_, e, dirIn.string())) {
                const Nvfp4Names names = nvfp4Names(e, f->layout);
                for (const std::string* n : {&names.packed, &names.scale, &names.globalScale}) expected.emplace(*n, &e);
                ck.nvfp4_.emplace(e.name, *f);
                continue;
            }
        if (!s && e.linear)
            if (auto g = findGptq(ck.store_, e, dirIn.string())) {
                const GptqNames names = gptqNames(e);
                for (const std::string* n : {&names.qweight, &names.qzeros, &names.scales, &names.gIdx}) expected.emplace(*n, &e);
                if (g->qresidual)
                    for (const std::string* n : {&names.qresidual, &names.residualScales}) expected.emplace(*n, &e);
                ck.gptq_.emplace(e.name, *g);
                continue;
            }
        if (!s && isTokenTable(e.role))
            for (RowBlockType type : {RowBlockType::Q8_0, RowBlockType::Q4_0}) {
                const std::string name = rowBlocksName(e, type);
                const TensorStore::Entry* rb = ck.store_.find(name);
                if (!rb) continue;
                const std::int64_t rows = e.shape[0], cols = e.shape[1];
                const std::int64_t rowBytes = std::int64_t(type == RowBlockType::Q8_0 ? q8_0RowBytes(cols) : q4_0RowBytes(cols));
                if (cols % kGgmlBlockValues || rb->info->dtype != DType::U8 || rb->info->shape != std::vector<std::int64_t>{rows, rowBytes})
                    throw FormatError(rb->file->path(), name, std::string(dtypeName(rb->info->dtype)) + " " + shapeToString(rb->info->shape) +
                                                              " but rows of " + rowBlockTypeName(type) + " blocks for " + shapeToString(e.shape) +
                                                              " need U8 " + shapeToString({rows, rowBytes}) + (cols % kGgmlBlockValues ? " and a row length that is a multiple of 32" : ""));
                expected.emplace(name, &e);
                ck.rowBlocks_.emplace(e.name, RowBlocksTable{rb, type, rows, cols});
                break;
            }
        if (!s && ck.rowBlocks_.count(e.name)) continue;
        if (!s) {
            if (e.mayBeAbsent) continue;
            throw FormatError(dirIn.string(), e.name, "missing from the checkpoint (config.json implies shape " +
                                                          shapeToString(e.shape) + ")");
        }
        if (s->info->shape != e.shape)
            throw FormatError(s->file->path(), e.name, "shape " + shapeToString(s->info->shape) +
                                                           " but config.json implies " + shapeToString(e.shape));
        const DType d = s->info->dtype;
        if (d != DType::BF16 && d != DType::F16 && d != DType::F32)
            throw FormatError(s->file->path(), e.name, "dtype " + std::string(dtypeName(d)) +
                                                           " is not a supported weight type (BF16, F16, F32)");
    }
    for (const auto& s : ck.store_.entries()) {
        CheckpointTensor t;
        t.entry = &s;
        t.parameters = s.info->numel();
        if (const auto it = expected.find(s.info->name); it != expected.end()) {
            t.expected = it->second;
            t.part = it->second->part;
            t.layer = it->second->layer;
            t.unused = !it->second->read;
            if (const auto r = ck.rowBlocks_.find(it->second->name); r != ck.rowBlocks_.end())  // blocks of a token table
                t.parameters = std::uint64_t(r->second.rows * r->second.cols);
            else if (const auto f = ck.nvfp4_.find(it->second->name); f != ck.nvfp4_.end())  // 2 codes a byte; scales are metadata
                t.parameters = s.info->name == f->second.packed->info->name ? 2 * s.info->numel() : 0;
            else if (const auto g = ck.gptq_.find(it->second->name); g != ck.gptq_.end())  // a GPTQ part: qweight holds 32/bits weights a word, the rest metadata
                t.parameters = s.info->name == g->second.qweight->info->name ? s.info->numel() * 32 / g->second.bits : 0;
        } else if (!isTowerTensor(s.info->name, &t.part)) {
            t.part = Part::Other;
        }
        ck.tensors_.push_back(t);
    }
}

namespace {
template <class T>
std::vector<T> readAll(const TensorStore::Entry* e) {
    std::vector<T> v(std::size_t(e->info->nbytes / sizeof(T)));
    e->file->read(*e->info, v.data(), 0, e->info->nbytes);
    return v;
}
}  // namespace

void readRowsAsFloat(const TensorStore::Entry& e, std::int64_t cols, std::int64_t row0, std::int64_t n, std::vector<std::byte>& raw,
                     std::vector<float>& out) {
    const TensorInfo& info = *e.info;
    const std::size_t inSize = dtypeSize(info.dtype), count = std::size_t(n * cols);
    raw.resize(count * inSize);
    out.resize(count);
    e.file->read(info, raw.data(), std::uint64_t(row0 * cols) * inSize, raw.size());
    for (std::size_t i = 0; i < count; ++i) {
        out[i] = loadAsFloat(info.dtype, raw.data(), i);
        if (!std::isfinite(out[i]))
            throw FormatError(e.file->path(), info.name, "element " + std::to_string(std::uint64_t(row0 * cols) + i) + " is not finite");
    }
}

GptqTensors loadGptq(const GptqLinear& g) {
    GptqTensors t;
    t.outFeatures = g.outFeatures;
    t.inFeatures = g.inFeatures;
    t.bits = g.bits;
    t.qweight = readAll<std::int32_t>(g.qweight);
    t.qzeros = readAll<std::int32_t>(g.qzeros);
    t.scales = readAll<std::uint16_t>(g.scales);
    t.gIdx = readAll<std::int32_t>(g.gIdx);
    if (g.qresidual) {
        t.qresidual = readAll<std::int32_t>(g.qresidual);
        t.residualScales = readAll<std::uint16_t>(g.residualScales);
    }
    // The group size: where group 1 starts (one group: K); unpackGptqV1 checks the rest of g_idx against it.
    t.groupSize = int(g.inFeatures);
    for (std::int64_t k = 0; k < g.inFeatures; ++k)
        if (k > 0 && t.gIdx[std::size_t(k)] == 1) {
            t.groupSize = int(k);
            break;
        }
    return t;
}

Nvfp4Tensor loadNvfp4(const Nvfp4Linear& f, const std::string& name) {
    const auto packed = readAll<std::uint8_t>(f.packed), scales = readAll<std::uint8_t>(f.scale);
    float g;
    f.globalScale->file->read(*f.globalScale->info, &g, 0, 4);
    if (f.layout == Nvfp4Layout::CompressedTensors) g = 1.0f / g;
    return unpackNvfp4(packed, scales, g, f.outFeatures, f.inFeatures, name);
}

const ExpectedTensor* Checkpoint::expected(TensorRole role, int layer) const {
    for (const auto& e : table_)
        if (e.role == role && e.layer == layer) return &e;
    return nullptr;
}

const RowBlocksTable* Checkpoint::rowBlocks(TensorRole role, int layer) const {
    const ExpectedTensor* e = expected(role, layer);
    const auto it = e ? rowBlocks_.find(e->name) : rowBlocks_.end();
    return it == rowBlocks_.end() ? nullptr : &it->second;
}

const Nvfp4Linear* Checkpoint::nvfp4(TensorRole role, int layer) const {
    const ExpectedTensor* e = expected(role, layer);
    const auto it = e ? nvfp4_.find(e->name) : nvfp4_.end();
    return it == nvfp4_.end() ? nullptr : &it->second;
}

const GptqLinear* Checkpoint::gptq(TensorRole role, int layer) const {
    const ExpectedTensor* e = expected(role, layer);
    const auto it = e ? gptq_.find(e->name) : gptq_.end();
    return it == gptq_.end() ? nullptr : &it->second;
}

const TensorStore::Entry* Checkpoint::find(TensorRole role, int layer) const {
    const ExpectedTensor* e = expected(role, layer);
    if (!e || nvfp4_.count(e->name)) return nullptr;  // ModelOpt's NVFP4 codes reuse the dense weight's name
    return store_.find(e->name);
}

}  // namespace whittle
