#include "core/model/inventory.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

namespace whittle {

std::string formatParams(std::uint64_t n) {
    char buf[32];
    if (n >= 1'000'000'000ull) std::snprintf(buf, sizeof buf, "%.2f B", double(n) / 1e9);
    else if (n >= 1'000'000ull) std::snprintf(buf, sizeof buf, "%.1f M", double(n) / 1e6);
    else if (n >= 1'000ull) std::snprintf(buf, sizeof buf, "%.1f K", double(n) / 1e3);
    else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
    return buf;
}

std::string formatBytes(std::uint64_t n) {
    char buf[32];
    if (n >= 1'000'000'000ull) std::snprintf(buf, sizeof buf, "%.2f GB", double(n) / 1e9);
    else if (n >= 1'000'000ull) std::snprintf(buf, sizeof buf, "%.1f MB", double(n) / 1e6);
    else if (n >= 1'000ull) std::snprintf(buf, sizeof buf, "%.1f kB", double(n) / 1e3);
    else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
    return buf;
}

Inventory makeInventory(const Checkpoint& ck) {
    Inventory inv;
    inv.path = ck.dir().string();
    inv.config = ck.config();
    inv.special = ck.specialTokens();
    inv.fileBytes = ck.store().fileBytes();
    inv.headerBytes = ck.store().headerBytes();
    for (const auto& f : ck.store().files()) inv.files.push_back(std::filesystem::path(f->path()).filename().string());
    for (const auto& l : ck.config().layers) inv.layers.push_back({l, {}});
    for (Part p : kAllParts) inv.byPart[p] = {};
    for (const auto& t : ck.tensors()) {
        const TensorInfo& ti = *t.entry->info;
        InventoryTensor e{ti.name, ti.dtype, ti.shape, t.part, t.layer,
                          std::filesystem::path(t.entry->file->path()).filename().string(), t.parameters, ti.nbytes,
                          t.unused, t.expected && t.expected->rowPerToken};
        inv.byPart[e.part].add(e.params, e.bytes);
        inv.byDType[e.dtype].add(e.params, e.bytes);
        inv.total.add(e.params, e.bytes);
        if (e.unused) inv.unused.add(e.params, e.bytes);
        if (e.layer >= 0) inv.layers[std::size_t(e.layer)].totals.add(e.params, e.bytes);
        inv.tensors.push_back(std::move(e));
    }
    return inv;
}

TokenRowCost tokenRowCost(const Inventory& inv) {
    TokenRowCost c;
    c.rows = inv.config.vocabSize;
    for (const auto& t : inv.tensors) {
        if (!t.rowPerToken || t.shape.empty() || t.shape[0] <= 0) continue;
        const auto rows = std::uint64_t(t.shape[0]);
        (t.part == Part::PleTable ? c.pleParams : c.mainParams) += t.params / rows;
        (t.part == Part::PleTable ? c.pleBytes : c.mainBytes) += t.bytes / rows;
    }
    return c;
}

namespace {
Json totalsJson(const Totals& t) { return {{"tensors", t.tensors}, {"params", t.params}, {"bytes", t.bytes}}; }
}  // namespace

Json toJson(const Inventory& inv) {
    const Gemma4Config& c = inv.config;
    Json j;
    j["path"] = inv.path;
    j["model_type"] = c.modelType;
    j["architecture"] = c.architecture;
    int sliding = 0, full = 0, shared = 0;
    for (const auto& l : c.layers) {
        (l.kind == AttentionKind::Full ? full : sliding)++;
        if (!l.ownsKv) ++shared;
    }
    j["config"] = {{"hidden_size", c.hiddenSize},
                   {"num_layers", c.numLayers},
                   {"sliding_layers", sliding},
                   {"full_layers", full},
                   {"kv_shared_layers", shared},
                   {"num_heads", c.numHeads},
                   {"num_kv_heads", c.numKvHeads},
                   {"head_dim", c.headDim},
                   {"global_head_dim", c.globalHeadDim},
                   {"intermediate_size", c.intermediateSize},
                   {"double_wide_mlp", c.doubleWideMlp},
                   {"ple_dim", c.pleDim},
                   {"vocab_size", c.vocabSize},
                   {"sliding_window", c.slidingWindow},
                   {"final_logit_softcapping", c.finalLogitSoftcap ? Json(*c.finalLogitSoftcap) : Json(nullptr)}};
    j["special_tokens"] = {{"bos", inv.special.bos}, {"pad", inv.special.pad}, {"eos", inv.special.eos}};
    j["files"] = inv.files;
    j["file_bytes"] = inv.fileBytes;
    j["header_bytes"] = inv.headerBytes;
    j["total"] = totalsJson(inv.total);
    j["unused"] = totalsJson(inv.unused);
    Json parts = Json::object();
    for (const auto& [p, t] : inv.byPart) parts[partKey(p)] = totalsJson(t);
    j["parts"] = parts;
    Json dtypes = Json::object();
    for (const auto& [d, t] : inv.byDType) dtypes[std::string(dtypeName(d))] = totalsJson(t);
    j["dtypes"] = dtypes;
    Json layers = Json::array();
    for (const auto& l : inv.layers)
        layers.push_back({{"index", l.spec.index},
                          {"attention", attentionKindName(l.spec.kind)},
                          {"head_dim", l.spec.headDim},
                          {"ffn_width", l.spec.ffnWidth},
                          {"owns_kv", l.spec.ownsKv},
                          {"kv_source", l.spec.kvSource},
                          {"params", l.totals.params},
                          {"bytes", l.totals.bytes}});
    j["layers"] = layers;
    Json tensors = Json::array();
    for (const auto& t : inv.tensors)
        tensors.push_back({{"name", t.name},
                           {"dtype", std::string(dtypeName(t.dtype))},
                           {"shape", t.shape},
                           {"part", partKey(t.part)},
                           {"layer", t.layer},
                           {"file", t.file},
                           {"params", t.params},
                           {"bytes", t.bytes},
                           {"unused", t.unused}});
    j["tensors"] = tensors;
    return j;
}

std::string formatInventory(const Inventory& inv) {
    const Gemma4Config& c = inv.config;
    std::string out;
    char line[256];
    auto put = [&](const char* fmt, auto... args) {
        std::snprintf(line, sizeof line, fmt, args...);
        out += line;
    };
    int sliding = 0, full = 0, shared = 0;
    for (const auto& l : c.layers) {
        (l.kind == AttentionKind::Full ? full : sliding)++;
        if (!l.ownsKv) ++shared;
    }
    put("Checkpoint   %s\n", inv.path.c_str());
    put("Model        %s%s%s\n", c.modelType.c_str(), c.architecture.empty() ? "" : " / ", c.architecture.c_str());
    put("Layers       %d (%d sliding, %d full; %d own KV, %d share KV)\n", c.numLayers, sliding, full,
        c.numLayers - shared, shared);
    put("Dimensions   hidden %d, heads %d/%d KV, head dim %d sliding / %d full, FFN %d%s, PLE %d\n", c.hiddenSize,
        c.numHeads, c.numKvHeads, c.headDim, c.globalHeadDim, c.intermediateSize,
        c.doubleWideMlp ? " (x2 on KV-shared layers)" : "", c.pleDim);
    put("Vocabulary   %d tokens, sliding window %d\n", c.vocabSize, c.slidingWindow);
    put("Files        %zu safetensors file%s, %s\n", inv.files.size(), inv.files.size() == 1 ? "" : "s",
        formatBytes(inv.fileBytes).c_str());
    out += "\n";
    put("%-22s %8s %16s %12s %12s %7s\n", "Part", "Tensors", "Parameters", "", "Bytes", "Share");
    for (const auto& [p, t] : inv.byPart) {
        if (t.tensors == 0) continue;
        put("%-22s %8llu %16llu %12s %12s %6.1f%%\n", partName(p), (unsigned long long)t.tensors,
            (unsigned long long)t.params, formatParams(t.params).c_str(), formatBytes(t.bytes).c_str(),
            inv.total.params ? 100.0 * double(t.params) / double(inv.total.params) : 0.0);
    }
    put("%-22s %8llu %16llu %12s %12s %6.1f%%\n", "total", (unsigned long long)inv.total.tensors,
        (unsigned long long)inv.total.params, formatParams(inv.total.params).c_str(),
        formatBytes(inv.total.bytes).c_str(), 100.0);
    if (inv.unused.tensors)
        put("(%llu tensors, %s parameters, are present but never used: dead k/v of KV-shared layers or a tied lm_head copy)\n",
            (unsigned long long)inv.unused.tensors, formatParams(inv.unused.params).c_str());
    out += "\n";
    put("%-8s %16s %12s\n", "DType", "Parameters", "Bytes");
    for (const auto& [d, t] : inv.byDType)
        put("%-8s %16llu %12s\n", std::string(dtypeName(d)).c_str(), (unsigned long long)t.params,
            formatBytes(t.bytes).c_str());
    out += "\n";
    put("%-6s %-8s %8s %8s %10s %12s %12s\n", "Layer", "Attn", "HeadDim", "FFN", "KV", "Parameters", "Bytes");
    for (const auto& l : inv.layers) {
        char kv[32];
        if (l.spec.ownsKv) std::snprintf(kv, sizeof kv, "own");
        else std::snprintf(kv, sizeof kv, "from %d", l.spec.kvSource);
        put("%-6d %-8s %8d %8d %10s %12s %12s\n", l.spec.index, attentionKindName(l.spec.kind), l.spec.headDim,
            l.spec.ffnWidth, kv, formatParams(l.totals.params).c_str(), formatBytes(l.totals.bytes).c_str());
    }
    return out;
}

}  // namespace whittle
