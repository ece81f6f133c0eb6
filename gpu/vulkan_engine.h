#pragma once
// Whittle's Vulkan engine: a Gemma 4 text decoder (full or slimmed: bf16/f16/f32, GPTQ INT2–8 with or without
// the binary residual, NVFP4, Q8_0/Q4_0 token tables, pruned vocabularies) on any Vulkan device.
//
// VulkanModel uploads the weights a ReferenceModel binds (the tensor table's roles, so the two engines read the
// same tensors) into a few large device allocations. VulkanSession implements Session: command buffers recorded
// once per (tokens per submit, head) and reused — decode submits one token, the prompt goes in chunks of up to
// prefillChunk tokens through the matrix–matrix kernels — with the per-token state (position, token id, RoPE
// cos/sin) and each token's embedding and PLE rows written by the host into small host-visible buffers before
// each submit, so the PLE table stays in host memory by default. One host wait per submit; nothing is allocated
// per token.
#include <memory>
#include <span>
#include <vector>

#include "core/engine/session.h"
#include "core/io/json_file.h"
#include "core/reference/reference_model.h"
#include "gpu/compute_device.h"
#include "gpu/device_sampling.h"
#include "gpu/kernels.h"
#include "gpu/memory.h"

namespace whittle::gpu {

struct EngineOptions {
    bool pleInVram = false;           // the PLE table on the device (gathered there) instead of host memory
    std::uint64_t maxBindingBytes = 0;  // 0: the device's maxStorageBufferRange; tests force smaller to split tensors
    bool stagingUploads = false;      // upload through a staging buffer even when device memory is host-visible
    // 0: what the device's heaps hold (their budgets when reported); else each heap is taken to hold this much —
    // smaller to test the refusal, larger where a heap's size is nominal (lavapipe's "device" memory is host RAM).
    std::uint64_t memoryLimitBytes = 0;
    // Prompt tokens per submit (1: token by token, as decode). Scratch grows with it, and each sliding layer's KV
    // ring holds window + prefillChunk − 1 slots so a chunk's own keys never overwrite ones its queries attend.
    int prefillChunk = 32;
    // A submit that has not finished after this long ends the session with an error (a hung kernel or driver);
    // tests force it tiny.
    double submitTimeoutSeconds = 120;
};

class VulkanModel {
public:
    // Uploads every weight of `weights` (which must outlive the model: the host keeps the embedding and PLE
    // tables it gathers from). Throws UsageError naming sizes when the weights do not fit the device.
    VulkanModel(ComputeDevice& device, const ReferenceModel& weights, const EngineOptions& options = {});
    ~VulkanModel();

    const ReferenceModel& weights() const { return weights_; }
    const Gemma4Config& config() const { return weights_.config(); }
    ComputeDevice& device() const { return device_; }
    Kernels& kernels() const { return *kernels_; }
    const MemoryArena& memory() const { return *arena_; }
    const EngineOptions& options() const { return options_; }
    std::uint64_t maxBindingBytes() const { return maxBinding_; }

    struct Layer {
        DeviceWeight q, k, v, o, gate, up, down, pleGate, pleProj;
        BufferId inputNorm, postAttentionNorm, preFeedforwardNorm, postFeedforwardNorm, qNorm, kNorm, postPleNorm;
        BufferId downBias;  // FLAP's bias compensation; invalid when the model has none
    };
    const std::vector<Layer>& layers() const { return layers_; }
    const DeviceWeight& head() const { return head_; }
    const DeviceWeight& pleProjection() const { return pleProj_; }
    const DeviceWeight& pleTable() const { return pleTable_; }  // parts empty unless pleInVram
    BufferId pleProjectionNorm() const { return pleProjNorm_; }
    BufferId finalNorm() const { return finalNorm_; }

private:
    ComputeDevice& device_;
    const ReferenceModel& weights_;
    EngineOptions options_;
    std::uint64_t maxBinding_;
    std::unique_ptr<MemoryArena> arena_;
    std::unique_ptr<Kernels> kernels_;
    std::vector<Layer> layers_;
    DeviceWeight head_, pleProj_, pleTable_;
    BufferId pleProjNorm_, finalNorm_;
};

struct EngineStats {
    std::array<std::uint64_t, kMemoryKinds> allocatedBytes{};  // by MemoryKind: model weights + this session
    std::uint64_t totalAllocatedBytes = 0;
    int dispatchesPerToken = 0;  // with the head
    int prefillChunk = 1;        // prompt tokens per submit
    int pipelines = 0;
    long long tokens = 0;        // forwarded since creation
    double deviceSeconds = 0;    // wall time spent in submits (host waits included)
    std::map<std::string, double> opSeconds;  // device time by shader, from timestamp queries (empty without them)
};
Json toJson(const EngineStats& s);

class VulkanSession final : public whittle::Session {
public:
    // maxContext positions of KV cache; throws UsageError naming sizes when the cache and scratch do not fit.
    VulkanSession(VulkanModel& model, int maxContext);
    ~VulkanSession() override;

    int vocabSize() const override;
    int capacity() const override { return maxContext_; }
    int position() const override { return position_; }
    void reset() override { position_ = 0; }
    std::span<const float> forward(std::span<const int> tokens, float* allLogits = nullptr) override;
    // Sampling on the device (shaders/sample.comp): greedy always; otherwise up to 256 candidates (top-k).
    bool setSampler(const SamplingParams& params, const std::vector<bool>& suppressed) override;
    int forwardAndPick(std::span<const int> tokens, std::span<const int> history, double uniform) override;

    // The argmax of the last forward's logits as the device computed it (lowest id among equals).
    int deviceArgmax() const;
    EngineStats stats() const;
    int prefillChunk() const { return chunk_; }
    // KV cache slots of a layer that owns its cache (a sliding layer's ring is shorter than the context).
    static int cacheSlots(const Gemma4Config& c, const LayerSpec& layer, int maxContext, int prefillChunk);

private:
    // The head after a submit: none, on its last token (logits and argmax), on every token, or on the last token
    // with the device's pick (sample.comp) instead of the argmax.
    enum class Head { None, Last, All, Pick };
    void run(std::span<const int> tokens, float* allLogits, bool pick);
    Recorder& step(int tokens, Head head);
    void record(Recorder& rec, int tokens, Head head);
    void writeTokens(std::span<const int> tokens);
    int resultToken() const;  // what the last submit's argmax or pick wrote

    VulkanModel& model_;
    const Gemma4Config& c_;
    int maxContext_;
    int chunk_, logitRows_;
    std::uint32_t recordWords_ = 0;
    int position_ = 0;
    std::unique_ptr<MemoryArena> arena_;
    struct Cache {
        BufferId k, v;
        std::uint32_t capacity = 0;
    };
    std::vector<Cache> caches_;
    BufferId state_, x0_, tokPle_, logits_, result_, unused_, sampleState_, suppressedBits_, sampleWork_;
    SamplingParams sampling_;  // greedy with nothing suppressed until setSampler
    BufferId x_, a_, q_, k_, v_, attn_, o_, gate_, up_, g_, pleProj_;
    std::map<std::pair<int, Head>, std::unique_ptr<Recorder>> steps_;
    std::vector<float> invFreqSliding_, invFreqFull_, logitsHost_;
    std::uint32_t ropeFullOffset_ = 0;
    vk::raii::Fence fence_{nullptr};
    std::string ended_;  // why the session ended (a lost device, a timeout); empty while it runs
    long long tokens_ = 0;
    double deviceSeconds_ = 0;
};

}  // namespace whittle::gpu
