#include "core/model/gemma4_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace whittle {

const char* attentionKindName(AttentionKind k) { return k == AttentionKind::Full ? "full" : "sliding"; }

namespace {

RopeParams parseRope(const Json& rp, const char* kind, const std::string& file) {
    const std::string where = std::string("text_config.rope_parameters.") + kind;
    const auto it = rp.find(kind);
    if (it == rp.end() || !it->is_object()) throw FormatError(file, {}, "missing required field '" + where + "'");
    RopeParams r;
    const auto t = it->find("rope_type");
    if (t == it->end() || !t->is_string()) throw FormatError(file, {}, "missing '" + where + ".rope_type'");
    r.type = t->get<std::string>();
    if (r.type != "default" && r.type != "proportional")
        throw FormatError(file, {}, "unsupported " + where + ".rope_type '" + r.type + "'");
    r.theta = requireNumber(*it, "rope_theta", file, where);
    if (const auto f = it->find("partial_rotary_factor"); f != it->end() && !f->is_null()) {
        if (!f->is_number()) throw FormatError(file, {}, where + ".partial_rotary_factor must be a number");
        r.partialRotaryFactor = f->get<double>();
    }
    if (r.theta <= 0 || r.partialRotaryFactor <= 0 || r.partialRotaryFactor > 1)
        throw FormatError(file, {}, where + " has out-of-range values");
    // Only the proportional kind leaves pairs unrotated (GEMMA4.md §3.4); neither transformers' default
    // RoPE nor llama.cpp's reads a partial factor with it.
    if (r.type == "default" && r.partialRotaryFactor != 1.0)
        throw FormatError(file, {}, where + ": a partial_rotary_factor needs rope_type 'proportional'");
    return r;
}

void collectTokenIds(const Json& j, std::map<std::string, int>& out) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        const bool idKey = (k.size() > 9 && k.compare(k.size() - 9, 9, "_token_id") == 0) ||
                           (k.size() > 12 && k.compare(k.size() - 12, 12, "_token_index") == 0);
        if (idKey && it.value().is_number_integer()) out[k] = it.value().get<int>();
    }
}

}  // namespace

int rotatedPairs(const RopeParams& r, int headDim) {
    if (r.type == "proportional") return int(std::floor(r.partialRotaryFactor * headDim / 2));
    return headDim / 2;
}

std::vector<float> ropeInverseFrequencies(const RopeParams& r, int headDim) {
    std::vector<float> f(std::size_t(headDim / 2), 0.0f);
    const int rotated = rotatedPairs(r, headDim);
    for (int i = 0; i < rotated; ++i) f[std::size_t(i)] = float(std::pow(r.theta, -2.0 * i / headDim));
    return f;
}

Gemma4Config Gemma4Config::parse(const Json& root, const std::string& file) {
    if (!root.is_object()) throw FormatError(file, {}, "config is not a JSON object");
    Gemma4Config c;
    const auto mt = root.find("model_type");
    if (mt == root.end() || !mt->is_string()) throw FormatError(file, {}, "missing 'model_type'");
    c.modelType = mt->get<std::string>();
    if (c.modelType != "gemma4" && c.modelType != "gemma4_text")
        throw FormatError(file, {}, "unsupported model_type '" + c.modelType +
                                        "' (Whittle reads Gemma 4: 'gemma4' or 'gemma4_text')");
    if (const auto a = root.find("architectures"); a != root.end() && a->is_array() && !a->empty() &&
                                                   (*a)[0].is_string())
        c.architecture = (*a)[0].get<std::string>();
    const Json* tc = &root;
    std::string w;  // field path prefix for messages
    if (c.modelType == "gemma4") {
        const auto t = root.find("text_config");
        if (t == root.end() || !t->is_object())
            throw FormatError(file, {}, "model_type 'gemma4' needs a 'text_config' object with the decoder fields");
        tc = &*t;
        w = "text_config";
        if (const auto m = t->find("model_type"); m != t->end() && (!m->is_string() || *m != "gemma4_text"))
            throw FormatError(file, {}, "text_config.model_type must be 'gemma4_text'");
        c.hasVisionConfig = root.contains("vision_config") && root["vision_config"].is_object();
        c.hasAudioConfig = root.contains("audio_config") && root["audio_config"].is_object();
        collectTokenIds(root, c.tokenIds);
    }
    collectTokenIds(*tc, c.tokenIds);
    const Json& t = *tc;
    c.hiddenSize = requireInt(t, "hidden_size", file, w);
    c.numLayers = requireInt(t, "num_hidden_layers", file, w);
    if (const auto is = t.find("intermediate_size"); is != t.end() && is->is_array()) {
        if (int(is->size()) != c.numLayers)
            throw FormatError(file, {}, "intermediate_size lists " + std::to_string(is->size()) + " widths but num_hidden_layers is " +
                                            std::to_string(c.numLayers));
        for (const Json& v : *is) {
            if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 || v.get<std::int64_t>() > (1 << 24))
                throw FormatError(file, {}, "intermediate_size lists " + v.dump() + ", not a positive width");
            c.ffnWidths.push_back(v.get<int>());
        }
        c.intermediateSize = *std::max_element(c.ffnWidths.begin(), c.ffnWidths.end());
    } else {
        c.intermediateSize = requireInt(t, "intermediate_size", file, w);
    }
    if (const auto flap = t.find("flap"); flap != t.end()) {
        if (!flap->is_object()) throw FormatError(file, {}, "'flap' must be an object");
        c.downProjBias = optionalBool(*flap, "bias_compensation", false, file, w + ".flap");
    }
    c.numHeads = requireInt(t, "num_attention_heads", file, w);
    c.numKvHeads = requireInt(t, "num_key_value_heads", file, w);
    c.headDim = requireInt(t, "head_dim", file, w);
    c.globalHeadDim = requireInt(t, "global_head_dim", file, w);
    c.slidingWindow = requireInt(t, "sliding_window", file, w);
    c.vocabSize = requireInt(t, "vocab_size", file, w);
    c.pleDim = requireInt(t, "hidden_size_per_layer_input", file, w);
    c.numKvSharedLayers = requireInt(t, "num_kv_shared_layers", file, w);
    c.rmsNormEps = requireNumber(t, "rms_norm_eps", file, w);
    // vocab_size_per_layer_input equals vocab_size in every published model; llama.cpp requires it.
    c.vocabSizePerLayerInput = t.contains("vocab_size_per_layer_input") && !t["vocab_size_per_layer_input"].is_null()
                                   ? requireInt(t, "vocab_size_per_layer_input", file, w)
                                   : c.vocabSize;
    c.maxPositionEmbeddings = t.contains("max_position_embeddings")
                                  ? requireInt(t, "max_position_embeddings", file, w) : 131072;
    // E4B's config omits use_double_wide_mlp (the converter leaves it at false).
    c.doubleWideMlp = optionalBool(t, "use_double_wide_mlp", false, file, w);
    c.tieWordEmbeddings = optionalBool(t, "tie_word_embeddings", optionalBool(root, "tie_word_embeddings", true, file),
                                       file, w);
    if (!t.contains("final_logit_softcapping"))
        throw FormatError(file, {}, "missing required field '" + (w.empty() ? "" : w + ".") +
                                        "final_logit_softcapping' (null means no softcap)");
    if (!t["final_logit_softcapping"].is_null()) c.finalLogitSoftcap = requireNumber(t, "final_logit_softcapping", file, w);
    if (optionalBool(t, "attention_k_eq_v", false, file, w))
        throw FormatError(file, {}, "attention_k_eq_v models are not supported (E2B/E4B do not use it)");
    if (optionalBool(t, "enable_moe_block", false, file, w))
        throw FormatError(file, {}, "MoE Gemma 4 models are not supported (only E2B/E4B-style dense decoders)");
    if (const auto act = t.find("hidden_activation"); act != t.end() && !act->is_null() && *act != "gelu_pytorch_tanh")
        throw FormatError(file, {}, "unsupported hidden_activation " + act->dump());

    const auto rp = t.find("rope_parameters");
    if (rp == t.end() || !rp->is_object())
        throw FormatError(file, {}, "missing required field '" + (w.empty() ? "" : w + ".") + "rope_parameters'");
    c.ropeSliding = parseRope(*rp, "sliding_attention", file);
    c.ropeFull = parseRope(*rp, "full_attention", file);

    auto positive = [&](int v, const char* name) {
        if (v <= 0) throw FormatError(file, {}, std::string("field '") + name + "' must be positive");
    };
    positive(c.hiddenSize, "hidden_size");
    positive(c.numLayers, "num_hidden_layers");
    positive(c.intermediateSize, "intermediate_size");
    positive(c.numHeads, "num_attention_heads");
    positive(c.numKvHeads, "num_key_value_heads");
    positive(c.headDim, "head_dim");
    positive(c.globalHeadDim, "global_head_dim");
    positive(c.slidingWindow, "sliding_window");
    positive(c.vocabSize, "vocab_size");
    positive(c.pleDim, "hidden_size_per_layer_input");
    if (c.numLayers > 4096) throw FormatError(file, {}, "num_hidden_layers is implausibly large");
    if (c.numHeads % c.numKvHeads != 0)
        throw FormatError(file, {}, "num_attention_heads must be a multiple of num_key_value_heads");
    if (c.numKvSharedLayers >= c.numLayers)
        throw FormatError(file, {}, "num_kv_shared_layers must be smaller than num_hidden_layers");
    if (c.headDim % 2 || c.globalHeadDim % 2) throw FormatError(file, {}, "head dims must be even for RoPE");

    const auto lt = t.find("layer_types");
    if (lt == t.end() || !lt->is_array()) throw FormatError(file, {}, "missing required field 'layer_types'");
    if (int(lt->size()) != c.numLayers)
        throw FormatError(file, {}, "layer_types has " + std::to_string(lt->size()) + " entries but num_hidden_layers is " +
                                        std::to_string(c.numLayers));
    const int firstShared = c.firstSharedLayer();
    for (int i = 0; i < c.numLayers; ++i) {
        const Json& e = (*lt)[std::size_t(i)];
        LayerSpec L;
        L.index = i;
        if (e == "sliding_attention") L.kind = AttentionKind::Sliding;
        else if (e == "full_attention") L.kind = AttentionKind::Full;
        else throw FormatError(file, {}, "layer_types[" + std::to_string(i) + "] is " + e.dump() +
                                             ", expected \"sliding_attention\" or \"full_attention\"");
        L.headDim = L.kind == AttentionKind::Full ? c.globalHeadDim : c.headDim;
        L.ownsKv = i < firstShared;
        L.ffnWidth = !c.ffnWidths.empty() ? c.ffnWidths[std::size_t(i)] : (c.doubleWideMlp && !L.ownsKv) ? 2 * c.intermediateSize : c.intermediateSize;
        L.kvSource = i;
        if (!L.ownsKv) {
            // The last KV-owning layer of the same type (the general rule; GEMMA4.md §3.3).
            L.kvSource = -1;
            for (int s = firstShared - 1; s >= 0; --s)
                if (c.layers[std::size_t(s)].kind == L.kind) { L.kvSource = s; break; }
            if (L.kvSource < 0)
                throw FormatError(file, {}, "layer " + std::to_string(i) + " shares KV but no earlier layer of type " +
                                                attentionKindName(L.kind) + " owns a KV cache");
        }
        c.layers.push_back(L);
    }
    return c;
}

Gemma4Config Gemma4Config::load(const std::filesystem::path& configJson) {
    return parse(readJsonFile(configJson, 16ull << 20), configJson.string());
}

}  // namespace whittle
