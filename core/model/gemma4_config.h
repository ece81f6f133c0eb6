#pragma once
// The Gemma 4 text decoder's configuration, read from config.json (full model: fields under
// text_config; text-only: at top level). Every field that shapes tensors or numerics is required:
// the transformers class defaults describe a different model (GEMMA4.md §1).
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

enum class AttentionKind { Sliding, Full };
const char* attentionKindName(AttentionKind k);

struct RopeParams {
    std::string type;  // "default" or "proportional"
    double theta = 0;
    double partialRotaryFactor = 1.0;
};

// The RoPE pair rule (GEMMA4.md §3.4): "default" rotates all headDim/2 pairs; "proportional" rotates the
// first ⌊factor·headDim/2⌋ with frequencies over the full head dim and leaves the rest as identities.
int rotatedPairs(const RopeParams& r, int headDim);
// θ^(−2i/headDim) for rotated pairs, 0 for identity pairs.
std::vector<float> ropeInverseFrequencies(const RopeParams& r, int headDim);

struct LayerSpec {
    int index = 0;
    AttentionKind kind = AttentionKind::Sliding;
    int headDim = 0;
    int ffnWidth = 0;
    bool ownsKv = true;
    int kvSource = 0;  // == index when the layer owns its KV cache
};

struct Gemma4Config {
    std::string modelType;     // "gemma4" (multimodal wrapper) or "gemma4_text"
    std::string architecture;  // architectures[0], informative only
    int hiddenSize = 0;
    int numLayers = 0;
    int intermediateSize = 0;  // the base width (the largest, when FLAP left per-layer widths)
    // FLAP's output (core/recipes/flap.h): `intermediate_size` as a per-layer list (each layer's actual width,
    // as Gemma 3n's config and llama.cpp's per-layer feed_forward_length), and a down_proj bias per layer when
    // its "flap" block says bias_compensation — Whittle-only: stock transformers has neither.
    std::vector<int> ffnWidths;  // empty: intermediate_size with use_double_wide_mlp
    bool downProjBias = false;
    int numHeads = 0;
    int numKvHeads = 0;
    int headDim = 0;        // sliding layers
    int globalHeadDim = 0;  // full layers
    int slidingWindow = 0;
    int vocabSize = 0;
    int vocabSizePerLayerInput = 0;
    int pleDim = 0;  // hidden_size_per_layer_input
    int numKvSharedLayers = 0;
    int maxPositionEmbeddings = 0;
    bool doubleWideMlp = false;
    bool tieWordEmbeddings = true;
    double rmsNormEps = 0;
    std::optional<double> finalLogitSoftcap;
    RopeParams ropeSliding, ropeFull;
    std::vector<LayerSpec> layers;
    bool hasVisionConfig = false, hasAudioConfig = false;
    std::map<std::string, int> tokenIds;  // every *_token_id / *_token_index found in config.json

    std::string tensorPrefix() const { return modelType == "gemma4" ? "model.language_model." : "model."; }
    int firstSharedLayer() const { return numLayers - numKvSharedLayers; }

    static Gemma4Config parse(const Json& j, const std::string& file);
    static Gemma4Config load(const std::filesystem::path& configJson);
};

}  // namespace whittle
