#include "core/model/tensor_table.h"

namespace whittle {

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

std::vector<ExpectedTensor> textTensorTable(const Gemma4Config& c) {
    using S = std::vector<std::int64_t>;
    const std::string p = c.tensorPrefix();
    const std::int64_t H = c.hiddenSize, P = c.pleDim, L = c.numLayers;
    std::vector<ExpectedTensor> t;
    auto add = [&](std::string name, S shape, Part part, int layer = -1, bool optional = false) {
        t.push_back({std::move(name), std::move(shape), part, layer, optional});
    };
    add(p + "embed_tokens.weight", {c.vocabSize, H}, Part::MainEmbedding);
    add(p + "embed_tokens_per_layer.weight", {c.vocabSizePerLayerInput, L * P}, Part::PleTable);
    add(p + "per_layer_model_projection.weight", {L * P, H}, Part::PleProjection);
    add(p + "per_layer_projection_norm.weight", {P}, Part::PleProjection);
    for (const LayerSpec& l : c.layers) {
        const std::string q = p + "layers." + std::to_string(l.index) + ".";
        const std::int64_t hd = l.headDim, F = l.ffnWidth, i = l.index;
        const bool dead = !l.ownsKv;  // shared layers may carry never-used k/v
        add(q + "input_layernorm.weight", {H}, Part::Norms, int(i));
        add(q + "self_attn.q_proj.weight", {c.numHeads * hd, H}, Part::Attention, int(i));
        add(q + "self_attn.q_norm.weight", {hd}, Part::Attention, int(i));
        add(q + "self_attn.k_proj.weight", {c.numKvHeads * hd, H}, Part::Attention, int(i), dead);
        add(q + "self_attn.v_proj.weight", {c.numKvHeads * hd, H}, Part::Attention, int(i), dead);
        add(q + "self_attn.k_norm.weight", {hd}, Part::Attention, int(i), dead);
        add(q + "self_attn.o_proj.weight", {H, c.numHeads * hd}, Part::Attention, int(i));
        add(q + "post_attention_layernorm.weight", {H}, Part::Norms, int(i));
        add(q + "pre_feedforward_layernorm.weight", {H}, Part::Norms, int(i));
        add(q + "mlp.gate_proj.weight", {F, H}, Part::Mlp, int(i));
        add(q + "mlp.up_proj.weight", {F, H}, Part::Mlp, int(i));
        add(q + "mlp.down_proj.weight", {H, F}, Part::Mlp, int(i));
        add(q + "post_feedforward_layernorm.weight", {H}, Part::Norms, int(i));
        add(q + "per_layer_input_gate.weight", {P, H}, Part::PleProjection, int(i));
        add(q + "per_layer_projection.weight", {H, P}, Part::PleProjection, int(i));
        add(q + "post_per_layer_input_norm.weight", {H}, Part::Norms, int(i));
        add(q + "layer_scalar", {1}, Part::Norms, int(i));
    }
    add(p + "norm.weight", {H}, Part::Norms);
    // transformers may save the tied head as a duplicate of embed_tokens.
    add("lm_head.weight", {c.vocabSize, H}, Part::Other, -1, true);
    return t;
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
