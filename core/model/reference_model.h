#pragma once
// The CPU reference engine: the Gemma 4 text decoder exactly as ../shared/spec/gemma4-text.md §3–§5
// states it, in f32, reading bf16/f16/f32 weights straight from the memory-mapped checkpoint. It is the
// ground truth for every Vulkan shader, for calibration and for quality metrics, so it favours
// readability and determinism over speed: every output element (a logit, an activation) is computed
// the same way whatever the thread count, chunk size or vocabulary size.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/io/safetensors_reader.h"
#include "core/model/checkpoint.h"
#include "core/util/thread_pool.h"

namespace whittle {

// A row-major [rows, cols] weight in its stored dtype.
struct WeightMatrix {
    DType dtype = DType::F32;
    const std::byte* data = nullptr;
    std::int64_t rows = 0, cols = 0;
    void row(std::int64_t r, float* out) const;  // converts one row to f32
};

struct ReferenceOptions {
    int threads = 0;          // 0: all cores
    bool checkFinite = true;  // scan every weight for NaN/Inf at load (the error names the tensor)
};

class ReferenceModel {
public:
    ReferenceModel(const Checkpoint& checkpoint, const ReferenceOptions& options = {});
    ~ReferenceModel();
    const Gemma4Config& config() const { return config_; }
    int vocabSize() const { return int(embed_.rows); }
    ThreadPool& pool() const { return *pool_; }

    struct Layer {
        WeightMatrix q, k, v, o, gate, up, down, pleGate, pleProj;
        std::vector<float> inputNorm, postAttentionNorm, preFeedforwardNorm, postFeedforwardNorm, qNorm, kNorm, postPleNorm;
        float scalar = 1.0f;
    };
    const std::vector<Layer>& layers() const { return layers_; }
    const WeightMatrix& embedding() const { return embed_; }
    const WeightMatrix& pleTable() const { return pleTable_; }
    const WeightMatrix& pleModelProjection() const { return pleModelProj_; }
    const std::vector<float>& pleProjectionNorm() const { return pleProjNorm_; }
    const std::vector<float>& finalNorm() const { return finalNorm_; }

private:
    Gemma4Config config_;
    std::vector<TensorView> views_;  // keeps the mappings alive
    WeightMatrix embed_, pleTable_, pleModelProj_;
    std::vector<float> pleProjNorm_, finalNorm_;
    std::vector<Layer> layers_;
    std::unique_ptr<ThreadPool> pool_;
};

// Called with each named intermediate when set: name, layer (-1 for model-level), absolute position, values.
using DebugHook = std::function<void(const char* name, int layer, int position, std::span<const float> values)>;

// One sequence being decoded: the KV cache (a ring of window + chunk − 1 positions on sliding layers,
// the whole context on full layers; KV-shared layers read their source layer's cache) and every scratch
// buffer, allocated once so that decoding allocates nothing per token.
class InferenceSession {
public:
    InferenceSession(const ReferenceModel& model, int maxContext, int maxChunk = 32);

    void reset();
    int position() const { return position_; }
    int maxContext() const { return maxContext_; }

    // Appends tokens (in chunks of at most maxChunk) and returns the logits after the last one.
    // With allLogits, also writes the logits of every appended token there ([tokens.size(), vocab]).
    std::span<const float> forward(std::span<const int> tokens, float* allLogits = nullptr);
    void setDebugHook(DebugHook hook) { hook_ = std::move(hook); }

private:
    void forwardChunk(const int* tokens, int T, float* logitsOut);
    void emit(const char* name, int layer, int t, const float* v, std::size_t n) const;

    const ReferenceModel& model_;
    const Gemma4Config& c_;
    int maxContext_, maxChunk_;
    int position_ = 0;
    struct Cache {
        int capacity = 0, headDim = 0;
        std::vector<float> k, v;  // [capacity][nkv][headDim]
    };
    std::vector<Cache> caches_;  // per layer; empty for KV-shared layers
    // Scratch, sized for maxChunk tokens.
    std::vector<float> x_, tokPle_, pleProj_, ple_, a_, q_, k_, v_, attn_, o_, m_, gate_, up_, ffn_, g_, g2_, scores_;
    std::vector<float> logits_;
    std::vector<float> invFreqSliding_, invFreqFull_;
    DebugHook hook_;
};

}  // namespace whittle
