#include "core/model/tensor_table.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"

namespace whittle {

namespace {

enum class Shape { Vocab_H, PleVocab_LP, LP_H, P, H, QH_H, Hd, KvH_H, H_QH, F_H, H_F, P_H, H_P, One };

// One row per role. Names are relative: model-level ones to the text prefix (the head to nothing),
// per-layer ones to "<prefix>layers.<i>." and "blk.<i>." (GEMMA4.md §2, llama.cpp's llama-arch.cpp).
struct Rule {
    TensorRole role;
    const char* hf;
    const char* gguf;
    Shape shape;
    Part part;
    bool perLayer;
};

// clang-format off
constexpr Rule kRules[] = {
    {TensorRole::Embedding,           "embed_tokens.weight",               "token_embd.weight",           Shape::Vocab_H,     Part::MainEmbedding, false},
    {TensorRole::PleTable,            "embed_tokens_per_layer.weight",     "per_layer_token_embd.weight", Shape::PleVocab_LP, Part::PleTable,      false},
    {TensorRole::PleModelProjection,  "per_layer_model_projection.weight", "per_layer_model_proj.weight", Shape::LP_H,        Part::PleProjection, false},
    {TensorRole::PleProjectionNorm,   "per_layer_projection_norm.weight",  "per_layer_proj_norm.weight",  Shape::P,           Part::PleProjection, false},
    {TensorRole::InputNorm,           "input_layernorm.weight",            "attn_norm.weight",            Shape::H,           Part::Norms,         true},
    {TensorRole::QProj,               "self_attn.q_proj.weight",           "attn_q.weight",               Shape::QH_H,        Part::Attention,     true},
    {TensorRole::QNorm,               "self_attn.q_norm.weight",           "attn_q_norm.weight",          Shape::Hd,          Part::Attention,     true},
    {TensorRole::KProj,               "self_attn.k_proj.weight",           "attn_k.weight",               Shape::KvH_H,       Part::Attention,     true},
    {TensorRole::VProj,               "self_attn.v_proj.weight",           "attn_v.weight",               Shape::KvH_H,       Part::Attention,     true},
    {TensorRole::KNorm,               "self_attn.k_norm.weight",           "attn_k_norm.weight",          Shape::Hd,          Part::Attention,     true},
    {TensorRole::OProj,               "self_attn.o_proj.weight",           "attn_output.weight",          Shape::H_QH,        Part::Attention,     true},
    {TensorRole::PostAttentionNorm,   "post_attention_layernorm.weight",   "post_attention_norm.weight",  Shape::H,           Part::Norms,         true},
    {TensorRole::PreFeedforwardNorm,  "pre_feedforward_layernorm.weight",  "ffn_norm.weight",             Shape::H,           Part::Norms,         true},
    {TensorRole::GateProj,            "mlp.gate_proj.weight",              "ffn_gate.weight",             Shape::F_H,         Part::Mlp,           true},
    {TensorRole::UpProj,              "mlp.up_proj.weight",                "ffn_up.weight",               Shape::F_H,         Part::Mlp,           true},
    {TensorRole::DownProj,            "mlp.down_proj.weight",              "ffn_down.weight",             Shape::H_F,         Part::Mlp,           true},
    // FLAP's bias compensation only (config flap.bias_compensation): Whittle-only, no GGUF or transformers peer.
    {TensorRole::DownProjBias,        "mlp.down_proj.bias",                "ffn_down.bias",               Shape::H,           Part::Mlp,           true},
    {TensorRole::PostFeedforwardNorm, "post_feedforward_layernorm.weight", "post_ffw_norm.weight",        Shape::H,           Part::Norms,         true},
    {TensorRole::PleInputGate,        "per_layer_input_gate.weight",       "inp_gate.weight",             Shape::P_H,         Part::PleProjection, true},
    {TensorRole::PleProjection,       "per_layer_projection.weight",       "proj.weight",                 Shape::H_P,         Part::PleProjection, true},
    {TensorRole::PostPleNorm,         "post_per_layer_input_norm.weight",  "post_norm.weight",            Shape::H,           Part::Norms,         true},
    // The converter appends ".weight" to the scalar's GGUF name.
    {TensorRole::LayerScalar,         "layer_scalar",                      "layer_output_scale.weight",   Shape::One,         Part::Norms,         true},
    {TensorRole::FinalNorm,           "norm.weight",                       "output_norm.weight",          Shape::H,           Part::Norms,         false},
    {TensorRole::LmHead,              "lm_head.weight",                    "output.weight",               Shape::Vocab_H,     Part::Other,         false},
};
// clang-format on

const Rule& rule(TensorRole r) {
    for (const Rule& x : kRules)
        if (x.role == r) return x;
    throw Error("internal: tensor role without a rule");
}

std::vector<std::int64_t> shapeOf(Shape s, const Gemma4Config& c, const LayerSpec* l) {
    const std::int64_t H = c.hiddenSize, P = c.pleDim, LP = std::int64_t(c.numLayers) * P;
    const std::int64_t hd = l ? l->headDim : 0, F = l ? l->ffnWidth : 0;
    const std::int64_t QH = c.numHeads * hd, KvH = c.numKvHeads * hd;
    switch (s) {
    case Shape::Vocab_H: return {c.vocabSize, H};
    case Shape::PleVocab_LP: return {c.vocabSizePerLayerInput, LP};
    case Shape::LP_H: return {LP, H};
    case Shape::P: return {P};
    case Shape::H: return {H};
    case Shape::QH_H: return {QH, H};
    case Shape::Hd: return {hd};
    case Shape::KvH_H: return {KvH, H};
    case Shape::H_QH: return {H, QH};
    case Shape::F_H: return {F, H};
    case Shape::H_F: return {H, F};
    case Shape::P_H: return {P, H};
    case Shape::H_P: return {H, P};
    case Shape::One: return {1};
    }
    return {};
}

bool isLinearRole(TensorRole r) {
    switch (r) {
    case TensorRole::PleModelProjection:
    case TensorRole::QProj:
    case TensorRole::KProj:
    case TensorRole::VProj:
    case TensorRole::OProj:
    case TensorRole::GateProj:
    case TensorRole::UpProj:
    case TensorRole::DownProj:
    case TensorRole::PleInputGate:
    case TensorRole::PleProjection: return true;
    default: return false;  // embeddings and the head are gathered or shared by rows; norms are vectors
    }
}

bool isKvRole(TensorRole r) { return r == TensorRole::KProj || r == TensorRole::VProj || r == TensorRole::KNorm; }

ExpectedTensor expected(const Rule& r, const Gemma4Config& c, const LayerSpec* l) {
    ExpectedTensor e;
    e.role = r.role;
    e.part = r.part;
    e.shape = shapeOf(r.shape, c, l);
    e.vector = e.shape.size() == 1;
    e.rowPerToken = r.shape == Shape::Vocab_H || r.shape == Shape::PleVocab_LP;
    e.linear = isLinearRole(r.role);
    if (l) {
        e.layer = l->index;
        e.name = c.tensorPrefix() + "layers." + std::to_string(l->index) + "." + r.hf;
        e.ggufName = "blk." + std::to_string(l->index) + "." + r.gguf;
        // KV-shared layers read their source layer's cache; a checkpoint may still carry dead k/v.
        if (isKvRole(r.role) && !l->ownsKv) e.mayBeAbsent = true, e.read = false;
    } else {
        e.name = r.role == TensorRole::LmHead ? std::string(r.hf) : c.tensorPrefix() + r.hf;
        e.ggufName = r.gguf;
        // transformers may save a tied head as a copy of the embedding; an untied head is required.
        if (r.role == TensorRole::LmHead && c.tieWordEmbeddings) e.mayBeAbsent = true, e.read = false;
    }
    return e;
}

}  // namespace

const char* partName(Part p) {
    switch (p) {
    case Part::MainEmbedding: return "main embedding";
    case Part::PleTable: return "PLE table";
    case Part::PleProjection: return "PLE projection/gates";
    case Part::Attention: return "attention";
    case Part::Mlp: return "MLP";
    case Part::Norms: return "norms";
    case Part::VisionTower: return "vision tower";
    case Part::AudioTower: return "audio tower";
    case Part::Other: return "other";
    }
    return "?";
}

const char* partKey(Part p) {
    switch (p) {
    case Part::MainEmbedding: return "main_embedding";
    case Part::PleTable: return "ple_table";
    case Part::PleProjection: return "ple_projection";
    case Part::Attention: return "attention";
    case Part::Mlp: return "mlp";
    case Part::Norms: return "norms";
    case Part::VisionTower: return "vision_tower";
    case Part::AudioTower: return "audio_tower";
    case Part::Other: return "other";
    }
    return "?";
}

const char* roleName(TensorRole r) { return rule(r).hf; }

std::vector<ExpectedTensor> textTensorTable(const Gemma4Config& c) {
    std::vector<ExpectedTensor> t;
    for (const Rule& r : kRules)
        if (!r.perLayer && r.role != TensorRole::FinalNorm && r.role != TensorRole::LmHead) t.push_back(expected(r, c, nullptr));
    for (const LayerSpec& l : c.layers)
        for (const Rule& r : kRules)
            if (r.perLayer && (r.role != TensorRole::DownProjBias || c.downProjBias)) t.push_back(expected(r, c, &l));
    t.push_back(expected(rule(TensorRole::FinalNorm), c, nullptr));
    t.push_back(expected(rule(TensorRole::LmHead), c, nullptr));
    return t;
}

std::string tensorName(const Gemma4Config& c, TensorRole role, int layer) {
    const Rule& r = rule(role);
    if (r.perLayer != (layer >= 0) || layer >= int(c.layers.size()))
        throw Error(std::string("internal: tensor role ") + r.hf + (r.perLayer ? " needs a layer" : " has no layer"));
    return expected(r, c, r.perLayer ? &c.layers[std::size_t(layer)] : nullptr).name;
}

std::optional<std::string> ggufTensorName(const Gemma4Config& c, std::string_view hfName) {
    for (const ExpectedTensor& e : textTensorTable(c))
        if (e.name == hfName) return e.ggufName;
    return std::nullopt;
}

std::string ggufScaleName(std::string_view ggufWeightName) {
    constexpr std::string_view suffix = ".weight";
    std::string_view stem = ggufWeightName;
    if (stem.size() > suffix.size() && stem.substr(stem.size() - suffix.size()) == suffix) stem.remove_suffix(suffix.size());
    return std::string(stem) + ".scale";
}

TensorRole headRole(const Gemma4Config& c) { return c.tieWordEmbeddings ? TensorRole::Embedding : TensorRole::LmHead; }

std::vector<std::string> tokenRowTensorNames(const Gemma4Config& c) {
    std::vector<std::string> v;
    for (const ExpectedTensor& e : textTensorTable(c))
        if (e.rowPerToken) v.push_back(e.name);
    return v;
}

std::string moduleName(const ExpectedTensor& e) {
    const std::string suffix = ".weight";
    if (!e.name.ends_with(suffix)) throw Error({}, e.name, "internal: not a module's weight");
    return e.name.substr(0, e.name.size() - suffix.size());
}

GptqNames gptqNames(const ExpectedTensor& e) {
    if (!e.linear) throw Error({}, e.name, "internal: not a linear weight");
    const std::string m = moduleName(e);
    return {m + ".qweight", m + ".qzeros", m + ".scales", m + ".g_idx", m + ".qresidual", m + ".residual_scales"};
}

const char* rowBlockTypeName(RowBlockType t) { return t == RowBlockType::Q8_0 ? "q8_0" : "q4_0"; }

bool isTokenTable(TensorRole r) { return r == TensorRole::Embedding || r == TensorRole::PleTable || r == TensorRole::LmHead; }

std::string rowBlocksName(const ExpectedTensor& e, RowBlockType t) {
    if (!isTokenTable(e.role)) throw Error({}, e.name, "internal: not a token table");
    return moduleName(e) + ".weight_" + rowBlockTypeName(t);
}

Nvfp4Names nvfp4Names(const ExpectedTensor& e, Nvfp4Layout layout) {
    if (!e.linear) throw Error({}, e.name, "internal: not a linear weight");
    const std::string m = moduleName(e);
    if (layout == Nvfp4Layout::ModelOpt) return {m + ".weight", m + ".weight_scale", m + ".weight_scale_2"};
    return {m + ".weight_packed", m + ".weight_scale", m + ".weight_global_scale"};
}

LinearSite linearSite(TensorRole role) {
    using R = TensorRole;
    switch (role) {
        case R::PleModelProjection: return LinearSite::PleModel;
        case R::QProj:
        case R::KProj:
        case R::VProj: return LinearSite::Attention;
        case R::OProj: return LinearSite::AttentionOutput;
        case R::GateProj:
        case R::UpProj: return LinearSite::Mlp;
        case R::DownProj: return LinearSite::MlpDown;
        case R::PleInputGate: return LinearSite::PleGate;
        case R::PleProjection: return LinearSite::PleProjection;
        default: throw Error(std::string("internal: ") + roleName(role) + " is not a linear weight");
    }
}

std::string roleGlob(TensorRole role) { return std::string("*") + rule(role).hf; }

std::string layerRanges(const std::vector<int>& sortedLayers) {
    std::string out;
    for (std::size_t i = 0; i < sortedLayers.size();) {
        std::size_t j = i;
        while (j + 1 < sortedLayers.size() && sortedLayers[j + 1] == sortedLayers[j] + 1) ++j;
        if (!out.empty()) out += ", ";
        out += std::to_string(sortedLayers[i]);
        if (j > i) out += "\u2013" + std::to_string(sortedLayers[j]);
        i = j + 1;
    }
    return out;
}

std::vector<std::string> summarizeTensorNames(const std::vector<ExpectedTensor>& table, const std::vector<std::string>& names) {
    std::set<std::string_view> wanted(names.begin(), names.end());
    std::vector<std::string> lines;
    std::map<TensorRole, std::vector<int>> layersOf;
    std::vector<TensorRole> roleOrder;  // per-layer roles in the order the table first lists them
    for (const ExpectedTensor& t : table) {
        if (!wanted.erase(t.name)) continue;
        if (t.layer < 0) {
            lines.push_back(t.name);
            continue;
        }
        auto& layers = layersOf[t.role];
        if (layers.empty()) roleOrder.push_back(t.role);
        layers.push_back(t.layer);
    }
    for (TensorRole role : roleOrder) {
        std::vector<int>& layers = layersOf[role];
        std::sort(layers.begin(), layers.end());
        lines.push_back(roleGlob(role) + " in layers " + layerRanges(layers) + " (" + std::to_string(layers.size()) + ")");
    }
    for (const std::string& n : names)
        if (wanted.count(n)) lines.push_back(n);  // not in the table: as given, in the caller's order
    return lines;
}

bool isTowerTensor(std::string_view name, Part* part) {
    struct Prefix {
        std::string_view text;
        Part part;
    };
    static constexpr Prefix prefixes[] = {{"model.vision_tower.", Part::VisionTower},
                                          {"model.embed_vision.", Part::VisionTower},
                                          {"model.audio_tower.", Part::AudioTower},
                                          {"model.embed_audio.", Part::AudioTower}};
    for (const auto& pr : prefixes)
        if (name.substr(0, pr.text.size()) == pr.text) {
            if (part) *part = pr.part;
            return true;
        }
    return false;
}

}  // namespace whittle
