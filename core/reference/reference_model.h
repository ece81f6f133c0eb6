#pragma once
// The CPU reference engine's weights: every tensor the decoder reads, bound by its role in the tensor
// table to a typed view of the memory-mapped checkpoint (bf16/f16/f32 as stored; nothing is copied or
// converted up front). ReferenceSession (reference_session.h) runs the forward pass over it.
// A second constructor binds the same roles to a GGUF file instead (Q8_0/Q4_0/NVFP4 blocks decoded row by
// row as the engine reads them), so the engine runs exactly the weights llama.cpp runs.
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "core/engine/weight_view.h"
#include "core/io/safetensors_reader.h"
#include "core/model/checkpoint.h"
#include "core/util/thread_pool.h"

namespace whittle {

struct ReferenceOptions {
    int threads = 0;          // 0: all cores
    bool checkFinite = true;  // scan every weight for NaN/Inf at load (the error names the tensor)
    // GGUF weights only: round each matmul's input as llama.cpp's CPU backend does for the weight's type
    // (WeightView::InputRounding). For parity tests; it changes the numbers, so it is off by default.
    bool emulateGgmlActivations = false;
};

// Names the GGUF file whose weights a ReferenceModel binds (a distinct type, so ReferenceModel(ck, {}) stays the checkpoint's).
struct GgufWeights {
    explicit GgufWeights(std::filesystem::path p) : path(std::move(p)) {}
    std::filesystem::path path;
};

class ReferenceModel {
public:
    ReferenceModel(const Checkpoint& checkpoint, const ReferenceOptions& options = {});
    // The weights of a GGUF that exportGguf wrote from `source`: every tensor the decoder reads is looked up by
    // its GGUF name (tensor table) and bound to the memory-mapped file as stored (F32/F16/BF16, Q8_0, Q4_0,
    // NVFP4 with its `.scale`); the configuration comes from `source` and every tensor's shape is checked
    // against it. Nothing else of `source` is read. Errors name the GGUF file and tensor.
    ReferenceModel(const Checkpoint& source, const GgufWeights& gguf, const ReferenceOptions& options = {});
    ~ReferenceModel();
    const Gemma4Config& config() const { return config_; }
    int vocabSize() const { return int(head_.rows); }
    ThreadPool& pool() const { return *pool_; }

    struct Layer {
        WeightView q, k, v, o, gate, up, down, pleGate, pleProj;  // k, v empty on KV-shared layers
        std::vector<float> inputNorm, postAttentionNorm, preFeedforwardNorm, postFeedforwardNorm, qNorm, kNorm, postPleNorm;
        std::vector<float> downBias;  // FLAP's bias compensation; empty when the model has none
        float scalar = 1.0f;
    };
    const std::vector<Layer>& layers() const { return layers_; }
    const WeightView& embedding() const { return embed_; }
    const WeightView& head() const { return head_; }  // the embedding when tied, lm_head otherwise
    const WeightView& pleTable() const { return pleTable_; }
    const WeightView& pleModelProjection() const { return pleModelProj_; }
    const std::vector<float>& pleProjectionNorm() const { return pleProjNorm_; }
    const std::vector<float>& finalNorm() const { return finalNorm_; }

    // Rebinds one linear weight to another view of the same shape (GPTQ calibration swaps in each layer's
    // quantized weights as they are made, so later layers see them). The caller keeps the memory alive.
    void replaceWeight(TensorRole role, int layer, const WeightView& view);
    // The view a linear role is bound to (layer -1 for the model-level projection); throws Error for others.
    const WeightView& linearWeight(TensorRole role, int layer) const;

private:
    using Binder = std::function<WeightView(TensorRole role, int layer)>;
    // Binds every role the decoder reads through `bind` (configFile: for messages).
    void assemble(const Binder& bind, const std::string& configFile);
    WeightView* linearSlot(TensorRole role, int layer);
    Gemma4Config config_;
    std::vector<TensorView> views_;  // keeps the mappings alive
    std::shared_ptr<const MappedRegion> gguf_;  // the GGUF's tensor data, when built from one
    WeightView embed_, head_, pleTable_, pleModelProj_;
    std::vector<float> pleProjNorm_, finalNorm_;
    std::vector<Layer> layers_;
    std::unique_ptr<ThreadPool> pool_;
};

}  // namespace whittle
