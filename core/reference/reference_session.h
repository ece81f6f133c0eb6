#pragma once
// The CPU reference Session: the Gemma 4 text decoder exactly as GEMMA4.md §3 states it, in f32, written
// with the public ops of ops.h. It is the ground truth for every Vulkan shader, for calibration and for
// quality metrics, so it favours readability and determinism over speed: every output element (a logit,
// an activation) is computed the same way whatever the thread count, chunk size or vocabulary size.
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/engine/session.h"
#include "core/reference/reference_model.h"

namespace whittle {

// Called with each named intermediate when set: name, layer (-1 for model-level), absolute position, values.
using DebugHook = std::function<void(const char* name, int layer, int position, std::span<const float> values)>;


// Observes the inputs of some sites of one layer (GPTQ calibration), or of every layer (kEveryLayer: FLAP's
// channel statistics; observe then gets the layer too). While a tap is set, forward() stops each chunk right
// after the last tapped site — the rest of the model is not needed — and returns no logits.
struct LinearTap {
    static constexpr int kEveryLayer = -2;
    int layer = -1;
    std::vector<LinearSite> sites;
    std::function<void(LinearSite site, const float* x, int T, int width)> observe;  // x: [T, width], row-major
    std::function<void(int layer, LinearSite site, const float* x, int T, int width)> observeLayer;  // kEveryLayer
};

// One sequence being decoded: the KV cache (a ring of window + chunk − 1 positions on sliding layers,
// the whole context on full layers; KV-shared layers read their source layer's cache) and every scratch
// buffer, allocated once so that decoding allocates nothing per token.
class ReferenceSession final : public Session {
public:
    // fullCaches: every KV-owning layer's cache holds maxContext positions (no ring on sliding layers), as
    // forwardLayer() needs; the values computed are the same either way.
    ReferenceSession(const ReferenceModel& model, int maxContext, int maxChunk = 32, bool fullCaches = false);

    int vocabSize() const override { return model_.vocabSize(); }
    int capacity() const override { return maxContext_; }
    int position() const override { return position_; }
    void reset() override;
    // Appends tokens in chunks of at most maxChunk.
    std::span<const float> forward(std::span<const int> tokens, float* allLogits = nullptr) override;

    // Layer-by-layer evaluation of a whole sequence (GPTQ calibration caches each window's residual stream at
    // a layer boundary instead of re-running the prefix). Each step runs exactly the ops forward() runs, in the
    // same order, so every value equals the token-chunked forward's.
    //   embed: x0 [T, H] for tokens (E[t]·√H).
    void embed(std::span<const int> tokens, float* x0) const;
    //   pleInputs: the per-layer inputs of `layer` only, [T, P] (the slice forward() uses), from the tokens and
    //   their x0, with the model's current PLE projection.
    void pleInputs(std::span<const int> tokens, const float* x0, int layer, float* out) const;
    //   forwardLayer: positions 0..T−1 of one layer over x [T, H] in place, in chunks of maxChunk, ple the
    //   layer's [T, P] inputs. Needs fullCaches (capacity ≥ T). Afterwards the layer's KV cache (when it owns
    //   one) holds those positions; a KV-shared layer reads its source's cache, which the caller restores
    //   with kvCache() first. With a tap on this layer x is left part-way (the steps stop at the last site).
    void forwardLayer(int layer, float* x, const float* ple, int T);
    //   The first `positions` slots of a KV-owning layer's keys or values ([positions][nkv][headDim]).
    std::span<float> kvCache(int layer, bool values, int positions);

    void setDebugHook(DebugHook hook) { hook_ = std::move(hook); }
    void setLinearTap(std::optional<LinearTap> tap) { tap_ = std::move(tap); }

private:
    void forwardChunk(const int* tokens, int T, float* logitsOut);
    // One decoder layer over T tokens at position_: x [T, H] in place, ple row t at ple + t·pleStride (the
    // layer's P values). True when a tap stopped the chunk.
    bool forwardLayerChunk(int li, float* x, const float* ple, std::size_t pleStride, int T);
    void dump(const char* name, int layer, int t, const float* v, std::size_t n) const;
    bool tapped(int layer, LinearSite site, const float* x, int T, std::size_t width);

    const ReferenceModel& model_;
    const Gemma4Config& c_;
    int maxContext_, maxChunk_;
    bool fullCaches_;
    int position_ = 0;
    struct Cache {
        int capacity = 0, headDim = 0;
        std::vector<float> k, v;  // [capacity][nkv][headDim]
    };
    std::vector<Cache> caches_;  // per layer; empty for KV-shared layers
    // Scratch, sized for maxChunk tokens.
    std::vector<float> x_, tokPle_, pleProj_, a_, q_, k_, v_, attn_, o_, m_, gate_, up_, ffn_, g_, g2_, scores_;
    std::vector<float> logits_;
    std::vector<float> invFreqSliding_, invFreqFull_;
    DebugHook hook_;
    std::optional<LinearTap> tap_;
};

}  // namespace whittle
