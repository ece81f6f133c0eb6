#include <nlohmann/json.hpp>

#include "core/model/checkpoint.h"

#include <unordered_map>

#include "core/error.h"

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

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dirIn) {
    Checkpoint ck;
    ck.dir_ = dirIn;
    std::error_code ec;
    if (!fs::exists(dirIn, ec)) throw IoError(dirIn.string(), {}, "checkpoint folder does not exist");
    if (!fs::is_directory(dirIn, ec)) throw FormatError(dirIn.string(), {}, "is not a folder (expected a checkpoint folder)");
    const fs::path cfgPath = dirIn / "config.json";
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
    const fs::path genPath = dirIn / "generation_config.json";
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
    ck.table_ = textTensorTable(c);
    std::unordered_map<std::string, const ExpectedTensor*> expected;
    for (const auto& e : ck.table_) expected.emplace(e.name, &e);
    for (const auto& e : ck.table_) {
        const TensorStore::Entry* s = ck.store_.find(e.name);
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
        if (const auto it = expected.find(s.info->name); it != expected.end()) {
            t.expected = it->second;
            t.part = it->second->part;
            t.layer = it->second->layer;
            t.unused = !it->second->read;
        } else if (!isTowerTensor(s.info->name, &t.part)) {
            t.part = Part::Other;
        }
        ck.tensors_.push_back(t);
    }
    return ck;
}

const TensorStore::Entry* Checkpoint::find(TensorRole role, int layer) const {
    for (const auto& e : table_)
        if (e.role == role && e.layer == layer) return store_.find(e.name);
    return nullptr;
}

}  // namespace whittle
