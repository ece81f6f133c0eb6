#include "gpu/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/io/gptq_layout.h"
#include "core/quant/ggml_blocks.h"
#include "core/quant/nvfp4.h"
#include "core/reference/ops.h"

namespace whittle::gpu {

using namespace shader;

Kernels::Kernels(ComputeDevice& device) : device_(device), subgroups_(device.caps().subgroupArithmetic), threadPerRow_(device.caps().software) {
    if (const char* env = std::getenv("WHITTLE_VK_MATVEC_LAYOUT")) {
        if (std::string(env) == "workgroup") threadPerRow_ = false;
        else if (std::string(env) == "thread") threadPerRow_ = true;
    }
}

const Pipeline& Kernels::pipeline(ShaderId shader, std::uint32_t bindings, std::uint32_t pushBytes, std::vector<std::uint32_t> spec) {
    auto key = std::make_tuple(int(shader), spec);
    auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    auto p = std::make_unique<Pipeline>(device_.createPipeline(shader, bindings, pushBytes, spec));
    return *cache_.emplace(std::move(key), std::move(p)).first->second;
}

Recorder::Recorder(ComputeDevice& device, bool timestamps) : device_(device) {
    const auto& dev = device.device();
    pool_ = vk::raii::CommandPool(dev, vk::CommandPoolCreateInfo(vk::CommandPoolCreateFlagBits::eResetCommandBuffer, device.queueFamily()));
    cb_ = std::move(vk::raii::CommandBuffers(dev, vk::CommandBufferAllocateInfo(*pool_, vk::CommandBufferLevel::ePrimary, 1))[0]);
    if (timestamps && device.caps().timestamps) {
        queryCapacity_ = 4096;
        queries_ = vk::raii::QueryPool(dev, vk::QueryPoolCreateInfo({}, vk::QueryType::eTimestamp, queryCapacity_));
    }
}

void Recorder::begin() {
    cb_.reset();
    descriptorPools_.clear();
    labels_.clear();
    dispatchNs_.clear();
    dispatches_ = 0;
    cb_.begin(vk::CommandBufferBeginInfo());
    if (*queries_) {
        cb_.resetQueryPool(*queries_, 0, queryCapacity_);
        cb_.writeTimestamp(vk::PipelineStageFlagBits::eTopOfPipe, *queries_, 0);
    }
}

void Recorder::collectTimes() {
    if (!*queries_ || labels_.empty()) return;
    const auto n = std::uint32_t(labels_.size() + 1);
    ticks_.resize(n);
    dispatchNs_.resize(labels_.size());
    const VkResult r = device_.device().getDispatcher()->vkGetQueryPoolResults(*device_.device(), *queries_, 0, n, n * 8, ticks_.data(), 8,
                                                                                VK_QUERY_RESULT_64_BIT);
    if (r != VK_SUCCESS) return;
    const double period = device_.caps().timestampPeriodNs;
    for (std::size_t i = 0; i + 1 < n; ++i)
        if (ticks_[i + 1] >= ticks_[i]) dispatchNs_[i] += double(ticks_[i + 1] - ticks_[i]) * period;
}

std::map<std::string, double> Recorder::opTimes() const {
    std::map<std::string, double> out;
    for (std::size_t i = 0; i < dispatchNs_.size() && i < labels_.size(); ++i) out[labels_[i]] += dispatchNs_[i];
    return out;
}

vk::DescriptorSet Recorder::allocateSet(const Pipeline& p) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (descriptorPools_.empty() || attempt == 1) {
            const vk::DescriptorPoolSize size(vk::DescriptorType::eStorageBuffer, 256 * 8);
            descriptorPools_.emplace_back(device_.device(), vk::DescriptorPoolCreateInfo({}, 256, size));
        }
        VkDescriptorSet set = VK_NULL_HANDLE;
        const VkDescriptorSetLayout layout = *p.setLayout;
        const VkDescriptorSetAllocateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, nullptr, *descriptorPools_.back(), 1, &layout};
        // Plain C call: running out of a pool is expected here and only means "open the next pool".
        const VkResult r = device_.device().getDispatcher()->vkAllocateDescriptorSets(*device_.device(), &info, &set);
        if (r == VK_SUCCESS) return set;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            throw Error("cannot allocate a Vulkan descriptor set on '" + device_.caps().name + "'");
    }
    throw Error("internal: a fresh descriptor pool could not hold one set");
}

void Recorder::dispatch(const Pipeline& p, std::initializer_list<vk::Buffer> buffers, const void* push, std::uint32_t gx, std::uint32_t gy,
                        std::uint32_t gz) {
    if (buffers.size() != p.bindings) throw Error("internal: a dispatch binds " + std::to_string(buffers.size()) + " buffers, the shader has " +
                                                  std::to_string(p.bindings));
    const auto& caps = device_.caps();
    if (gx == 0 || gy == 0 || gz == 0) return;
    if (gx > caps.maxComputeWorkGroupCount[0] || gy > caps.maxComputeWorkGroupCount[1] || gz > caps.maxComputeWorkGroupCount[2])
        throw Error("internal: a dispatch of " + std::to_string(gx) + "×" + std::to_string(gy) + " workgroups exceeds the device's cap");
    const vk::DescriptorSet set = allocateSet(p);
    std::vector<vk::DescriptorBufferInfo> infos;
    for (vk::Buffer b : buffers) infos.emplace_back(b, 0, VK_WHOLE_SIZE);
    std::vector<vk::WriteDescriptorSet> writes;
    for (std::uint32_t i = 0; i < infos.size(); ++i) writes.emplace_back(set, i, 0, 1, vk::DescriptorType::eStorageBuffer, nullptr, &infos[i]);
    device_.device().updateDescriptorSets(writes, nullptr);
    cb_.bindPipeline(vk::PipelineBindPoint::eCompute, *p.pipeline);
    cb_.bindDescriptorSets(vk::PipelineBindPoint::eCompute, *p.layout, 0, set, nullptr);
    if (p.pushBytes)
        cb_.pushConstants<std::uint8_t>(*p.layout, vk::ShaderStageFlagBits::eCompute, 0,
                                        std::span(static_cast<const std::uint8_t*>(push), p.pushBytes));
    cb_.dispatch(gx, gy, gz);
    const vk::MemoryBarrier barrier(vk::AccessFlagBits::eShaderWrite, vk::AccessFlagBits::eShaderRead | vk::AccessFlagBits::eShaderWrite);
    cb_.pipelineBarrier(vk::PipelineStageFlagBits::eComputeShader, vk::PipelineStageFlagBits::eComputeShader, {}, barrier, nullptr, nullptr);
    ++dispatches_;
    if (*queries_ && labels_.size() + 1 < queryCapacity_) {
        labels_.push_back(shaderName(p.shader));
        cb_.writeTimestamp(vk::PipelineStageFlagBits::eBottomOfPipe, *queries_, std::uint32_t(labels_.size()));
    }
}

void Recorder::end() {
    const vk::MemoryBarrier barrier(vk::AccessFlagBits::eShaderWrite, vk::AccessFlagBits::eHostRead);
    cb_.pipelineBarrier(vk::PipelineStageFlagBits::eComputeShader, vk::PipelineStageFlagBits::eHost, {}, barrier, nullptr, nullptr);
    cb_.end();
}

std::pair<std::uint32_t, std::uint32_t> gridFor(std::uint64_t groups, std::uint32_t cap) {
    if (groups <= cap) return {std::uint32_t(groups), 1};
    const std::uint64_t y = (groups + cap - 1) / cap;
    return {cap, std::uint32_t(y)};
}

void fillRopeTable(std::span<const float> invFreq, int position, float* out) {
    const std::size_t half = invFreq.size();
    for (std::size_t i = 0; i < half; ++i) ops::ropeCosSin(invFreq[i], position, out[i], out[half + i]);
}

void writeTokenStateHeader(std::byte* state, std::uint32_t tokens, std::uint32_t recordWords) {
    const std::uint32_t header[4] = {tokens, recordWords, 0, 0};
    std::memcpy(state, header, 16);
}

float* writeTokenRecord(std::byte* state, std::uint32_t t, std::uint32_t recordWords, std::uint32_t position, std::uint32_t token) {
    std::byte* record = state + 16 + 4 * std::size_t(t) * recordWords;
    const std::uint32_t head[4] = {position, token, 0, 0};
    std::memcpy(record, head, 16);
    return reinterpret_cast<float*>(record + 16);
}

std::uint32_t rowFormatCode(WeightFormat format, DType dtype, const std::string& tensor) {
    switch (format) {
    case WeightFormat::Dense:
        switch (dtype) {
        case DType::F32: return WHITTLE_FMT_F32;
        case DType::F16: return WHITTLE_FMT_F16;
        case DType::BF16: return WHITTLE_FMT_BF16;
        default: break;
        }
        break;
    case WeightFormat::GgufQ8_0: return WHITTLE_FMT_Q8_0;
    case WeightFormat::GgufQ4_0: return WHITTLE_FMT_Q4_0;
    case WeightFormat::Nvfp4: return WHITTLE_FMT_NVFP4;
    default: break;
    }
    throw UsageError("the Vulkan engine has no kernel for tensor '" + tensor + "' (" +
                     (format == WeightFormat::Dense ? "dtype " + std::string(dtypeName(dtype)) : std::string("its storage format")) + ")");
}

namespace {

// Stored bytes of one row of a row-format weight (the NVFP4 codes; its scales are cols/16 more).
std::uint64_t rowBytes(const WeightView& w) {
    switch (w.format) {
    case WeightFormat::Dense: return std::uint64_t(w.cols) * dtypeSize(w.dtype);
    case WeightFormat::Nvfp4: return std::uint64_t(w.cols / 2);
    default: return weightRowBytes(w.format, w.cols);
    }
}

std::uint64_t gptqBytes(const WeightView& w, int which) {
    const std::uint64_t N = std::uint64_t(w.rows), K = std::uint64_t(w.cols), G = std::uint64_t(w.gptq.groups), b = std::uint64_t(w.gptq.bits);
    switch (which) {
    case 0: return K * b / 32 * N * 4;  // qweight
    case 1: return G * N * b / 32 * 4;  // qzeros
    case 2: return G * N * 2;           // scales
    case 3: return K * 4;               // g_idx
    case 4: return K / 32 * N * 4;      // qresidual
    default: return G * N * 2;          // residual scales
    }
}

}  // namespace

DeviceWeight declareWeight(MemoryArena& arena, const WeightView& v, std::uint64_t maxBinding, MemoryKind kind) {
    DeviceWeight d;
    d.format = v.format;
    d.dtype = v.dtype;
    d.rows = v.rows;
    d.cols = v.cols;
    d.name = v.name;
    d.scale = v.format == WeightFormat::Nvfp4 ? v.nvfp4Scale : 1.0f;
    if (v.format == WeightFormat::GptqInt) {
        d.bits = v.gptq.bits;
        d.groups = v.gptq.groups;
        // The fast path needs g_idx[k] = k / g with g a multiple of the codes per word.
        const std::int64_t g = (v.cols + v.gptq.groups - 1) / std::max<std::int64_t>(1, v.gptq.groups);
        bool contiguous = g > 0 && 32 % d.bits == 0 && g % (32 / d.bits) == 0;
        for (std::int64_t k = 0; contiguous && k < v.cols; ++k) {
            std::int32_t gi;
            std::memcpy(&gi, v.gptq.gIdx + 4 * k, 4);
            contiguous = gi == k / g;
        }
        d.contiguousGroupSize = contiguous ? int(g) : 0;
        const bool residual = v.gptq.qresidual != nullptr;
        BufferId* ids[] = {&d.qweight, &d.qzeros, &d.scales, &d.gIdx, &d.qresidual, &d.residualScales};
        static const char* suffix[] = {".qweight", ".qzeros", ".scales", ".g_idx", ".qresidual", ".residual_scales"};
        for (int i = 0; i < 6; ++i) {
            if (i >= 4 && !residual) continue;
            const std::uint64_t n = gptqBytes(v, i);
            if (n > maxBinding)
                throw UsageError("GPTQ tensor '" + v.name + suffix[i] + "' is " + std::to_string(n) + " bytes, more than the " +
                                 std::to_string(maxBinding) + " bytes one binding may hold on this device");
            *ids[i] = arena.add(kind, n, v.name + suffix[i]);
            d.bytes += n;
        }
        return d;
    }
    (void)rowFormatCode(v.format, v.dtype, v.name);
    const std::uint64_t rb = rowBytes(v);
    // NVFP4 rows also carry cols/16 scale bytes in a second buffer; both stay within the limit.
    const std::uint64_t perRow = std::max<std::uint64_t>(rb, 1);
    const std::int64_t rowsPerPart = std::int64_t(std::min<std::uint64_t>(std::uint64_t(v.rows), (maxBinding - 4) / perRow));
    if (rowsPerPart < 1)
        throw UsageError("one row of '" + v.name + "' (" + std::to_string(rb) + " bytes) is larger than the " + std::to_string(maxBinding) +
                         " bytes one binding may hold");
    for (std::int64_t first = 0; first < v.rows; first += rowsPerPart) {
        DeviceWeight::Part part;
        part.firstRow = first;
        part.rows = std::min(rowsPerPart, v.rows - first);
        const std::string suffix = v.rows > rowsPerPart ? "[rows " + std::to_string(first) + "…]" : "";
        part.data = arena.add(kind, std::uint64_t(part.rows) * rb, v.name + suffix);
        d.bytes += std::uint64_t(part.rows) * rb;
        if (v.format == WeightFormat::Nvfp4) {
            const std::uint64_t sb = std::uint64_t(part.rows) * std::uint64_t(v.cols / kNvfp4BlockSize);
            part.blockScales = arena.add(kind, sb, v.name + suffix + ".weight_scale");
            d.bytes += sb;
        }
        d.parts.push_back(part);
    }
    return d;
}

void uploadWeight(MemoryArena& arena, const DeviceWeight& d, const WeightView& v) {
    if (v.format == WeightFormat::GptqInt) {
        const std::byte* src[] = {v.data, v.gptq.qzeros, v.gptq.scales, v.gptq.gIdx, v.gptq.qresidual, v.gptq.residualScales};
        const BufferId ids[] = {d.qweight, d.qzeros, d.scales, d.gIdx, d.qresidual, d.residualScales};
        for (int i = 0; i < 6; ++i)
            if (ids[i].valid()) arena.upload(ids[i], 0, src[i], gptqBytes(v, i));
        return;
    }
    const std::uint64_t rb = rowBytes(v);
    for (const auto& part : d.parts) {
        arena.upload(part.data, 0, v.data + std::uint64_t(part.firstRow) * rb, std::uint64_t(part.rows) * rb);
        if (part.blockScales.valid()) {
            const std::uint64_t sbr = std::uint64_t(v.cols / kNvfp4BlockSize);
            arena.upload(part.blockScales, 0, v.nvfp4BlockScales + std::uint64_t(part.firstRow) * sbr, std::uint64_t(part.rows) * sbr);
        }
    }
}

void recordMatvec(const KernelContext& k, const DeviceWeight& w, vk::Buffer x, std::uint32_t xOff, vk::Buffer y, std::uint32_t yOff) {
    const auto cap = k.kernels.device().caps().maxComputeWorkGroupCount[0];
    if (w.format == WeightFormat::GptqInt) {
        const bool residual = w.qresidual.valid();
        const Pipeline& p = k.kernels.pipeline(ShaderId::MatvecGptq, 8, sizeof(GptqParams), {std::uint32_t(w.bits), residual ? 1u : 0u});
        const auto [gx, gy] = gridFor((std::uint64_t(w.rows) + 63) / 64, cap);
        const GptqParams pc{std::uint32_t(w.rows), std::uint32_t(w.cols), std::uint32_t(w.groups), xOff, yOff, gx,
                            std::uint32_t(w.contiguousGroupSize)};
        k.rec.dispatch(p,
                       {k.mem.buffer(w.qweight), k.mem.buffer(w.qzeros), k.mem.buffer(w.scales), k.mem.buffer(w.gIdx),
                        residual ? k.mem.buffer(w.qresidual) : k.unused, residual ? k.mem.buffer(w.residualScales) : k.unused, x, y},
                       &pc, gx, gy);
        return;
    }
    const std::uint32_t fmt = rowFormatCode(w.format, w.dtype, w.name);
    // The layout (matvec_rows.comp): an invocation per row on CPU devices, 2 rows per workgroup on GPUs.
    const std::uint32_t rowsPerGroup = k.kernels.threadPerRow() ? 0u : 2u;
    const std::uint64_t rowsPerDispatchedGroup = rowsPerGroup == 0 ? 64 : rowsPerGroup;
    const Pipeline& p = k.kernels.pipeline(ShaderId::MatvecRows, 4, sizeof(MatvecParams), {fmt, rowsPerGroup});
    for (const auto& part : w.parts) {
        const auto [gx, gy] = gridFor((std::uint64_t(part.rows) + rowsPerDispatchedGroup - 1) / rowsPerDispatchedGroup, cap);
        const MatvecParams pc{std::uint32_t(part.rows), std::uint32_t(w.cols), gx, xOff, yOff + std::uint32_t(part.firstRow), 0u, w.scale, 0u};
        k.rec.dispatch(p, {k.mem.buffer(part.data), part.blockScales.valid() ? k.mem.buffer(part.blockScales) : k.unused, x, y}, &pc, gx, gy);
    }
}

void recordMatmul(const KernelContext& k, const DeviceWeight& w, vk::Buffer x, std::uint32_t xOff, std::uint32_t xStride, vk::Buffer y,
                  std::uint32_t yOff, std::uint32_t yStride, std::uint32_t tokens) {
    if (tokens == 1) return recordMatvec(k, w, x, xOff, y, yOff);
    const auto cap = k.kernels.device().caps().maxComputeWorkGroupCount[0];
    const std::uint32_t tiles = (tokens + kMatmulTile - 1) / kMatmulTile;
    if (w.format == WeightFormat::GptqInt) {
        const bool residual = w.qresidual.valid();
        const Pipeline& p = k.kernels.pipeline(ShaderId::MatmulGptq, 8, sizeof(MatmulParams), {std::uint32_t(w.bits), residual ? 1u : 0u, kMatmulTile});
        const auto [gx, gy] = gridFor((std::uint64_t(w.rows) + 63) / 64, cap);
        const MatmulParams pc{std::uint32_t(w.rows), std::uint32_t(w.cols), gx, tokens, xOff, xStride, yOff, yStride, 1.0f,
                              std::uint32_t(w.groups), std::uint32_t(w.contiguousGroupSize)};
        k.rec.dispatch(p,
                       {k.mem.buffer(w.qweight), k.mem.buffer(w.qzeros), k.mem.buffer(w.scales), k.mem.buffer(w.gIdx),
                        residual ? k.mem.buffer(w.qresidual) : k.unused, residual ? k.mem.buffer(w.residualScales) : k.unused, x, y},
                       &pc, gx, gy, tiles);
        return;
    }
    const std::uint32_t fmt = rowFormatCode(w.format, w.dtype, w.name);
    if (w.cols % 8 != 0 || xOff % 4 != 0 || xStride % 4 != 0) {
        for (std::uint32_t t = 0; t < tokens; ++t) recordMatvec(k, w, x, xOff + t * xStride, y, yOff + t * yStride);
        return;
    }
    const Pipeline& p = k.kernels.pipeline(ShaderId::MatmulRows, 4, sizeof(MatmulParams), {fmt, kMatmulTile});
    for (const auto& part : w.parts) {
        const auto [gx, gy] = gridFor((std::uint64_t(part.rows) + 63) / 64, cap);
        const MatmulParams pc{std::uint32_t(part.rows), std::uint32_t(w.cols), gx, tokens, xOff, xStride, yOff + std::uint32_t(part.firstRow),
                              yStride, w.scale, 0u, 0u};
        k.rec.dispatch(p, {k.mem.buffer(part.data), part.blockScales.valid() ? k.mem.buffer(part.blockScales) : k.unused, x, y}, &pc, gx, gy,
                       tiles);
    }
}

void recordRmsNorm(const KernelContext& k, vk::Buffer in, vk::Buffer weight, vk::Buffer out, const NormParams& p, std::uint32_t rows,
                   vk::Buffer bias) {
    if (p.hasBias && !bias) throw Error("internal: rms_norm told to add a bias it was not given");
    const Pipeline& pl = k.kernels.pipeline(k.kernels.subgroups() ? ShaderId::RmsNormSubgroup : ShaderId::RmsNorm, 4, sizeof(NormParams));
    k.rec.dispatch(pl, {in, weight ? weight : k.unused, out, bias ? bias : k.unused}, &p, rows);
}

void recordHeadNormRope(const KernelContext& k, vk::Buffer in, vk::Buffer weight, vk::Buffer state, vk::Buffer out, const HeadParams& p,
                        std::uint32_t heads, std::uint32_t tokens) {
    if (p.headDim > 512) throw UsageError("the Vulkan engine handles head dimensions up to 512, not " + std::to_string(p.headDim));
    const Pipeline& pl = k.kernels.pipeline(ShaderId::HeadNormRope, 4, sizeof(HeadParams));
    k.rec.dispatch(pl, {in, weight ? weight : k.unused, state, out}, &p, heads, 1, tokens);
}

void recordAttention(const KernelContext& k, vk::Buffer q, vk::Buffer keys, vk::Buffer values, vk::Buffer out, vk::Buffer state,
                     const AttentionParams& p, std::uint32_t heads, std::uint32_t tokens) {
    if (p.headDim > 512) throw UsageError("the Vulkan engine handles head dimensions up to 512, not " + std::to_string(p.headDim));
    const Pipeline& pl = k.kernels.pipeline(k.kernels.subgroups() ? ShaderId::AttentionSubgroup : ShaderId::Attention, 5, sizeof(AttentionParams));
    k.rec.dispatch(pl, {q, keys, values, out, state}, &p, heads, 1, tokens);
}

void recordGeluMul(const KernelContext& k, vk::Buffer gate, vk::Buffer up, const GeluParams& p) {
    if (p.rowLen == 0) throw Error("internal: gelu_mul with rows of 0 values");
    const Pipeline& pl = k.kernels.pipeline(ShaderId::GeluMul, 2, sizeof(GeluParams));
    const auto [gx, gy] = gridFor((std::uint64_t(p.n) + 63) / 64, k.kernels.device().caps().maxComputeWorkGroupCount[0]);
    if (gy > 1) throw Error("internal: gelu_mul over more than 4M values");
    k.rec.dispatch(pl, {gate, up}, &p, gx);
}

void recordPleCombine(const KernelContext& k, vk::Buffer proj, vk::Buffer norm, vk::Buffer tokenRow, const PleParams& p, std::uint32_t layers) {
    const Pipeline& pl = k.kernels.pipeline(ShaderId::PleCombine, 3, sizeof(PleParams));
    k.rec.dispatch(pl, {proj, norm, tokenRow}, &p, layers);
}

void recordSoftcap(const KernelContext& k, vk::Buffer logits, std::uint32_t n, float cap) {
    const Pipeline& pl = k.kernels.pipeline(ShaderId::Softcap, 1, sizeof(SoftcapParams));
    const auto [gx, gy] = gridFor((std::uint64_t(n) + 255) / 256, k.kernels.device().caps().maxComputeWorkGroupCount[0]);
    const SoftcapParams pc{n, cap};
    k.rec.dispatch(pl, {logits}, &pc, gx, gy);
}

void recordScale(const KernelContext& k, vk::Buffer x, vk::Buffer y, std::uint32_t n, float alpha) {
    const Pipeline& pl = k.kernels.pipeline(ShaderId::Scale, 2, sizeof(ScaleParams));
    const ScaleParams pc{n, alpha};
    k.rec.dispatch(pl, {x, y}, &pc, (n + 255) / 256);
}

void recordArgmax(const KernelContext& k, vk::Buffer logits, std::uint32_t n, vk::Buffer result, std::uint32_t offset) {
    const Pipeline& pl = k.kernels.pipeline(ShaderId::Argmax, 2, sizeof(ArgmaxParams));
    const ArgmaxParams pc{n, offset};
    k.rec.dispatch(pl, {logits, result}, &pc, 1);
}

void recordGatherRow(const KernelContext& k, const DeviceWeight& table, vk::Buffer state, vk::Buffer out, std::uint32_t outOff,
                     std::uint32_t tokens) {
    const std::uint32_t fmt = rowFormatCode(table.format, table.dtype, table.name);
    if (fmt == WHITTLE_FMT_NVFP4)  // gather_row.comp decodes dense rows, Q8_0 and Q4_0 (NVFP4 keeps its tables dense)
        throw UsageError("the Vulkan engine cannot gather rows of '" + table.name + "' on the device; keep the table in host memory");
    const Pipeline& pl = k.kernels.pipeline(ShaderId::GatherRow, 3, sizeof(GatherParams), {fmt});
    for (const auto& part : table.parts) {
        const GatherParams pc{std::uint32_t(table.cols), std::uint32_t(part.firstRow), std::uint32_t(part.rows), outOff};
        k.rec.dispatch(pl, {k.mem.buffer(part.data), state, out}, &pc, 1, 1, tokens);
    }
}

void recordCopy(const KernelContext& k, vk::Buffer src, vk::Buffer dst, std::uint32_t words) {
    const Pipeline& pl = k.kernels.pipeline(ShaderId::Copy, 2, sizeof(CopyParams));
    const auto [gx, gy] = gridFor((std::uint64_t(words) + 255) / 256, k.kernels.device().caps().maxComputeWorkGroupCount[0]);
    const CopyParams pc{words};
    k.rec.dispatch(pl, {src, dst}, &pc, gx, gy);
}

}  // namespace whittle::gpu
