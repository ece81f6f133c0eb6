#pragma once
// The engine's compute kernels as recording functions: each records one or a few dispatches of a shader
// (shaders/*.comp) into a Recorder, with a barrier after each so the next kernel sees its writes. The
// Vulkan session records its per-token command buffer from these, and the op harness (tests/gpu/tst_ops.cpp)
// runs each against the public reference op of core/reference/ops.h.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <vulkan/vulkan_raii.hpp>

#include "core/engine/weight_view.h"
#include "gpu/compute_device.h"
#include "gpu/memory.h"
#include "shaders/shader_params.h"

namespace whittle::gpu {

// Compute pipelines, created once per (shader, specialization) and then reused; variants follow the device's
// capability flags (subgroup arithmetic when the device has it, the shared-memory fallback otherwise).
class Kernels {
public:
    explicit Kernels(ComputeDevice& device);
    const Pipeline& pipeline(ShaderId shader, std::uint32_t bindings, std::uint32_t pushBytes, std::vector<std::uint32_t> spec = {});
    bool subgroups() const { return subgroups_; }
    // Row mat-vec layout: one invocation per row (CPU devices) or a workgroup per row pair (GPUs);
    // WHITTLE_VK_MATVEC_LAYOUT=thread|workgroup overrides it (the op harness runs both).
    bool threadPerRow() const { return threadPerRow_; }
    ComputeDevice& device() const { return device_; }
    int pipelinesCreated() const { return int(cache_.size()); }

private:
    ComputeDevice& device_;
    bool subgroups_;
    bool threadPerRow_;
    std::map<std::tuple<int, std::vector<std::uint32_t>>, std::unique_ptr<Pipeline>> cache_;
};

// One primary command buffer recorded once and submitted many times, with the descriptor sets its dispatches
// bind (kept as long as the recording). With timestamps on (and the device supporting them) each dispatch is
// followed by a timestamp query, so collectTimes() can charge the device time of each submit to the shaders.
class Recorder {
public:
    explicit Recorder(ComputeDevice& device, bool timestamps = false);
    // Adds the device time of each dispatch of the last completed submit to the running totals (no allocation).
    void collectTimes();
    // The running totals by shader name, in ns.
    std::map<std::string, double> opTimes() const;
    void begin();
    void dispatch(const Pipeline& p, std::initializer_list<vk::Buffer> buffers, const void* push, std::uint32_t gx, std::uint32_t gy = 1,
                  std::uint32_t gz = 1);
    // Ends the recording with a barrier that makes shader writes visible to the host.
    void end();
    vk::CommandBuffer handle() const { return *cb_; }
    int dispatches() const { return dispatches_; }
    ComputeDevice& device() const { return device_; }

private:
    vk::DescriptorSet allocateSet(const Pipeline& p);
    ComputeDevice& device_;
    vk::raii::CommandPool pool_{nullptr};
    vk::raii::CommandBuffer cb_{nullptr};
    std::vector<vk::raii::DescriptorPool> descriptorPools_;
    int dispatches_ = 0;
    vk::raii::QueryPool queries_{nullptr};
    std::uint32_t queryCapacity_ = 0;
    std::vector<const char*> labels_;  // the shader of each dispatch
    std::vector<std::uint64_t> ticks_;
    std::vector<double> dispatchNs_;   // accumulated per dispatch
};

// A weight as the device holds it: row formats (f32/f16/bf16, Q8_0, Q4_0, NVFP4) in parts of whole rows, each at
// most the binding limit (maxStorageBufferRange, or a smaller forced limit); GPTQ as its six tensors.
struct DeviceWeight {
    WeightFormat format = WeightFormat::Dense;
    DType dtype = DType::BF16;
    std::int64_t rows = 0, cols = 0;
    std::string name;
    float scale = 1.0f;  // NVFP4's global scale
    struct Part {
        BufferId data, blockScales;
        std::int64_t firstRow = 0, rows = 0;
    };
    std::vector<Part> parts;
    BufferId qweight, qzeros, scales, gIdx, qresidual, residualScales;  // GptqInt
    int bits = 4;
    std::int64_t groups = 0;
    int contiguousGroupSize = 0;  // g when g_idx[k] = k / g throughout (the kernel's fast path), else 0
    std::uint64_t bytes = 0;  // stored bytes on the device
};

// The shader format code of a row-stored weight (WHITTLE_FMT_*); throws UsageError naming the tensor when the
// engine has no kernel for it.
std::uint32_t rowFormatCode(WeightFormat format, DType dtype, const std::string& tensor);
// Declares the device buffers of `view` in the arena, splitting rows so no part exceeds maxBindingBytes.
DeviceWeight declareWeight(MemoryArena& arena, const WeightView& view, std::uint64_t maxBindingBytes, MemoryKind kind = MemoryKind::Weights);
// Copies the view's bytes into the buffers declareWeight declared (after the arena is allocated).
void uploadWeight(MemoryArena& arena, const DeviceWeight& w, const WeightView& view);

// What every kernel call needs: where to record, the pipelines, the buffers, and a 4-byte buffer for bindings a
// variant does not read.
struct KernelContext {
    Kernels& kernels;
    Recorder& rec;
    const MemoryArena& mem;
    vk::Buffer unused;
};

// y[yOff …] = W · x[xOff …] (row parts dispatched one by one; rows past 65,535 go to the second grid dimension).
void recordMatvec(const KernelContext& k, const DeviceWeight& w, vk::Buffer x, std::uint32_t xOff, vk::Buffer y, std::uint32_t yOff);
// The prefill's product for `tokens` inputs: y[yOff + t · yStride …] = W · x[xOff + t · xStride …]. One token is a
// mat-vec; more run the matrix–matrix kernels (matmul_rows/matmul_gptq, kMatmulTile tokens per invocation),
// except for row formats whose shape the 8-wide decoder cannot take (cols not a multiple of 8, x unaligned),
// which get a mat-vec per token.
constexpr std::uint32_t kMatmulTile = 8;
void recordMatmul(const KernelContext& k, const DeviceWeight& w, vk::Buffer x, std::uint32_t xOff, std::uint32_t xStride, vk::Buffer y,
                  std::uint32_t yOff, std::uint32_t yStride, std::uint32_t tokens);
// RMSNorm of `rows` rows (NormParams); weight null for none; bias (when p.hasBias) added to each input row first.
void recordRmsNorm(const KernelContext& k, vk::Buffer in, vk::Buffer weight, vk::Buffer out, const shader::NormParams& p, std::uint32_t rows,
                   vk::Buffer bias = {});
// Heads × tokens of the state (HeadParams.tokenStride apart).
void recordHeadNormRope(const KernelContext& k, vk::Buffer in, vk::Buffer weight, vk::Buffer state, vk::Buffer out,
                        const shader::HeadParams& p, std::uint32_t heads, std::uint32_t tokens = 1);
void recordAttention(const KernelContext& k, vk::Buffer q, vk::Buffer keys, vk::Buffer values, vk::Buffer out, vk::Buffer state,
                     const shader::AttentionParams& p, std::uint32_t heads, std::uint32_t tokens = 1);
void recordGeluMul(const KernelContext& k, vk::Buffer gate, vk::Buffer up, const shader::GeluParams& p);
void recordPleCombine(const KernelContext& k, vk::Buffer proj, vk::Buffer norm, vk::Buffer tokenRow, const shader::PleParams& p,
                      std::uint32_t layers);
void recordSoftcap(const KernelContext& k, vk::Buffer logits, std::uint32_t n, float cap);
void recordScale(const KernelContext& k, vk::Buffer x, vk::Buffer y, std::uint32_t n, float alpha);
void recordArgmax(const KernelContext& k, vk::Buffer logits, std::uint32_t n, vk::Buffer result, std::uint32_t offset = 0);
// The rows of the state's `tokens` tokens into out[outOff + t · cols …].
void recordGatherRow(const KernelContext& k, const DeviceWeight& table, vk::Buffer state, vk::Buffer out, std::uint32_t outOff,
                     std::uint32_t tokens = 1);
void recordCopy(const KernelContext& k, vk::Buffer src, vk::Buffer dst, std::uint32_t words);

// The token state's RoPE table for one layer kind at `position`: ops::ropeCosSin of each pair, the cosines then
// the sines. out gets 2 · invFreq.size() floats.
void fillRopeTable(std::span<const float> invFreq, int position, float* out);

// The token state (shaders/token_state.glsl): a 4-word header, then per token a record of recordWords words — the
// position, the token id, 2 pad words and ropeFloats floats of RoPE tables.
constexpr std::uint32_t tokenRecordWords(std::size_t ropeFloats) { return 4u + std::uint32_t(ropeFloats); }
constexpr std::uint64_t tokenStateBytes(std::uint32_t tokens, std::uint32_t recordWords) { return 16ull + 4ull * tokens * recordWords; }
void writeTokenStateHeader(std::byte* state, std::uint32_t tokens, std::uint32_t recordWords);
// Writes token t's position and id and returns where its RoPE tables go.
float* writeTokenRecord(std::byte* state, std::uint32_t t, std::uint32_t recordWords, std::uint32_t position, std::uint32_t token);

// Splits a count of workgroups into (x, y) within the device's per-dimension cap.
std::pair<std::uint32_t, std::uint32_t> gridFor(std::uint64_t groups, std::uint32_t cap);

}  // namespace whittle::gpu
