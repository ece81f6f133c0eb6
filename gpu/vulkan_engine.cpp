#include "gpu/vulkan_engine.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace whittle::gpu {

using namespace shader;

namespace {

std::uint32_t u32(std::int64_t v) { return std::uint32_t(v); }

}  // namespace

VulkanModel::VulkanModel(ComputeDevice& device, const ReferenceModel& weights, const EngineOptions& options)
    : device_(device), weights_(weights), options_(options) {
    maxBinding_ = device.caps().maxStorageBufferRange;
    if (options.maxBindingBytes) maxBinding_ = std::min(maxBinding_, options.maxBindingBytes);
    arena_ = std::make_unique<MemoryArena>(device);
    arena_->setForceStaging(options.stagingUploads);
    kernels_ = std::make_unique<Kernels>(device);
    MemoryArena& a = *arena_;
    // Every buffer is declared (and the total checked) before anything is allocated; the uploads follow.
    std::vector<std::pair<const DeviceWeight*, const WeightView*>> weightUploads;
    std::vector<std::pair<BufferId, const std::vector<float>*>> vectorUploads;
    const auto weight = [&](DeviceWeight& d, const WeightView& v) {
        d = declareWeight(a, v, maxBinding_);
        weightUploads.emplace_back(&d, &v);
    };
    const auto vector = [&](BufferId& id, const std::vector<float>& v, const std::string& name) {
        id = a.add(MemoryKind::Weights, v.size() * 4, name);  // an absent vector (k_norm of a KV-shared layer): 4 unused bytes
        vectorUploads.emplace_back(id, &v);
    };
    const auto& ref = weights.layers();
    layers_.resize(ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
        const auto& r = ref[i];
        Layer& l = layers_[i];
        const std::string pre = "layer " + std::to_string(i) + " ";
        weight(l.q, r.q);
        if (!r.k.empty()) {
            weight(l.k, r.k);
            weight(l.v, r.v);
        }
        weight(l.o, r.o);
        weight(l.gate, r.gate);
        weight(l.up, r.up);
        weight(l.down, r.down);
        weight(l.pleGate, r.pleGate);
        weight(l.pleProj, r.pleProj);
        vector(l.inputNorm, r.inputNorm, pre + "input_layernorm");
        vector(l.postAttentionNorm, r.postAttentionNorm, pre + "post_attention_layernorm");
        vector(l.preFeedforwardNorm, r.preFeedforwardNorm, pre + "pre_feedforward_layernorm");
        vector(l.postFeedforwardNorm, r.postFeedforwardNorm, pre + "post_feedforward_layernorm");
        vector(l.qNorm, r.qNorm, pre + "q_norm");
        vector(l.kNorm, r.kNorm, pre + "k_norm");
        vector(l.postPleNorm, r.postPleNorm, pre + "post_per_layer_input_norm");
    }
    weight(head_, weights.head());
    weight(pleProj_, weights.pleModelProjection());
    vector(pleProjNorm_, weights.pleProjectionNorm(), "per_layer_projection_norm");
    vector(finalNorm_, weights.finalNorm(), "norm");
    if (options.pleInVram) weight(pleTable_, weights.pleTable());
    else {
        pleTable_.name = weights.pleTable().name;
        pleTable_.rows = weights.pleTable().rows;
        pleTable_.cols = weights.pleTable().cols;
    }
    a.allocate("the model's weights", 0, options.memoryLimitBytes);
    for (const auto& [d, v] : weightUploads) uploadWeight(a, *d, *v);
    for (const auto& [id, v] : vectorUploads) a.upload(id, 0, v->data(), v->size() * 4);
}

VulkanModel::~VulkanModel() = default;

Json toJson(const EngineStats& s) {
    Json bytes = Json::object();
    for (int k = 0; k < kMemoryKinds; ++k) bytes[memoryKindName(MemoryKind(k))] = s.allocatedBytes[std::size_t(k)];
    return Json{{"allocated_bytes", bytes},
                {"total_allocated_bytes", s.totalAllocatedBytes},
                {"dispatches_per_token", s.dispatchesPerToken},
                {"pipelines", s.pipelines},
                {"tokens", s.tokens},
                {"device_seconds", s.deviceSeconds},
                {"op_seconds", s.opSeconds}};
}

VulkanSession::VulkanSession(VulkanModel& model, int maxContext) : model_(model), c_(model.config()), maxContext_(maxContext) {
    if (maxContext <= 0) throw UsageError("context length must be positive");
    const Gemma4Config& c = c_;
    ComputeDevice& dev = model.device();
    arena_ = std::make_unique<MemoryArena>(dev);
    MemoryArena& a = *arena_;
    const std::uint64_t H = std::uint64_t(c.hiddenSize), LP = std::uint64_t(c.numLayers) * std::uint64_t(c.pleDim);
    const std::uint64_t hdMax = std::uint64_t(std::max(c.headDim, c.globalHeadDim));
    std::uint64_t fMax = 0;
    for (const auto& l : c.layers) fMax = std::max(fMax, std::uint64_t(l.ffnWidth));
    caches_.resize(c.layers.size());
    for (const auto& l : c.layers) {
        if (!l.ownsKv) continue;
        Cache& cache = caches_[std::size_t(l.index)];
        // One decoded token per submit: a sliding layer needs only its window of slots (a ring).
        cache.capacity = std::uint32_t(l.kind == AttentionKind::Sliding ? std::min(maxContext, c.slidingWindow) : maxContext);
        const std::uint64_t bytes = std::uint64_t(cache.capacity) * std::uint64_t(c.numKvHeads) * std::uint64_t(l.headDim) * 4;
        cache.k = a.add(MemoryKind::KvCache, bytes, "layer " + std::to_string(l.index) + " keys");
        cache.v = a.add(MemoryKind::KvCache, bytes, "layer " + std::to_string(l.index) + " values");
    }
    invFreqSliding_ = ropeInverseFrequencies(c.ropeSliding, c.headDim);
    invFreqFull_ = ropeInverseFrequencies(c.ropeFull, c.globalHeadDim);
    ropeFullOffset_ = std::uint32_t(invFreqSliding_.size() * 2);
    const std::uint64_t V = std::uint64_t(model.weights().vocabSize());
    state_ = a.add(MemoryKind::Host, 16 + 4 * (invFreqSliding_.size() + invFreqFull_.size()) * 2, "token state");
    x0_ = a.add(MemoryKind::Host, H * 4, "token embedding row");
    if (!model.options().pleInVram) tokPle_ = a.add(MemoryKind::Host, LP * 4, "token PLE row");
    logits_ = a.add(MemoryKind::Host, V * 4, "logits");
    result_ = a.add(MemoryKind::Host, 16, "sampled token");
    unused_ = a.add(MemoryKind::Scratch, 16, "unused binding");
    x_ = a.add(MemoryKind::Scratch, H * 4, "residual stream");
    a_ = a.add(MemoryKind::Scratch, H * 4, "normed stream");
    q_ = a.add(MemoryKind::Scratch, std::uint64_t(c.numHeads) * hdMax * 4, "queries");
    k_ = a.add(MemoryKind::Scratch, std::uint64_t(c.numKvHeads) * hdMax * 4, "keys");
    v_ = a.add(MemoryKind::Scratch, std::uint64_t(c.numKvHeads) * hdMax * 4, "values");
    attn_ = a.add(MemoryKind::Scratch, std::uint64_t(c.numHeads) * hdMax * 4, "attention output");
    o_ = a.add(MemoryKind::Scratch, H * 4, "block output");
    gate_ = a.add(MemoryKind::Scratch, fMax * 4, "mlp gate");
    up_ = a.add(MemoryKind::Scratch, fMax * 4, "mlp up");
    g_ = a.add(MemoryKind::Scratch, std::uint64_t(c.pleDim) * 4, "ple gate");
    pleProj_ = a.add(MemoryKind::Scratch, LP * 4, "per-layer inputs");
    if (model.options().pleInVram) tokPle_ = a.add(MemoryKind::Scratch, LP * 4, "token PLE row");
    scores_ = a.add(MemoryKind::Scratch, std::uint64_t(c.numHeads) * std::uint64_t(maxContext) * 4, "attention scores");
    a.allocate("a session of " + std::to_string(maxContext) + " positions (KV cache and scratch)", model.memory().stats().totalAllocated(), model.options().memoryLimitBytes);
    a.fill(unused_, 0);
    fence_ = vk::raii::Fence(dev.device(), vk::FenceCreateInfo());
    logitsHost_.resize(V);
    step_ = std::make_unique<Recorder>(dev, true);
    stepWithHead_ = std::make_unique<Recorder>(dev, true);
    record(*step_, false);
    record(*stepWithHead_, true);
}

VulkanSession::~VulkanSession() = default;

int VulkanSession::vocabSize() const { return model_.weights().vocabSize(); }

void VulkanSession::record(Recorder& rec, bool withHead) {
    const Gemma4Config& c = c_;
    const MemoryArena& m = *arena_;
    const MemoryArena& w = model_.memory();
    const KernelContext k{model_.kernels(), rec, w, m.buffer(unused_)};
    const auto B = [&](BufferId id) { return m.buffer(id); };
    const auto W = [&](BufferId id) { return w.buffer(id); };
    const std::uint32_t H = u32(c.hiddenSize), P = u32(c.pleDim), L = u32(c.numLayers);
    const std::uint32_t nh = u32(c.numHeads), nkv = u32(c.numKvHeads);
    const float eps = float(c.rmsNormEps);
    rec.begin();
    // §3.1: x0 = E[t]·√H (the row gathered on the host); per-layer inputs from W_proj·x0 and the token's PLE row.
    recordScale(k, B(x0_), B(x_), H, std::sqrt(float(H)));
    if (model_.options().pleInVram) recordGatherRow(k, model_.pleTable(), B(state_), B(tokPle_), 0);
    recordMatvec(k, model_.pleProjection(), B(x_), 0, B(pleProj_), 0);
    recordPleCombine(k, B(pleProj_), W(model_.pleProjectionNorm()), B(tokPle_),
                     PleParams{P, 1.0f / std::sqrt(float(H)), std::sqrt(float(P)), eps}, L);
    for (std::uint32_t li = 0; li < L; ++li) {
        const LayerSpec& spec = c.layers[li];
        const VulkanModel::Layer& lw = model_.layers()[li];
        const float scalar = model_.weights().layers()[li].scalar;
        const std::uint32_t hd = u32(spec.headDim), F = u32(spec.ffnWidth);
        const std::uint32_t rope = spec.kind == AttentionKind::Full ? ropeFullOffset_ : 0u;
        // Attention block.
        recordRmsNorm(k, B(x_), W(lw.inputNorm), B(a_), NormParams{H, 0, 0, H, 1, 0, eps, 1.0f, 1.0f}, 1);
        recordMatvec(k, lw.q, B(a_), 0, B(q_), 0);
        recordHeadNormRope(k, B(q_), W(lw.qNorm), B(state_), B(q_), HeadParams{hd, 1, rope, 0, 0, 0, 0, 0, eps}, nh);
        if (spec.ownsKv) {
            const Cache& cache = caches_[li];
            recordMatvec(k, lw.k, B(a_), 0, B(k_), 0);
            recordMatvec(k, lw.v, B(a_), 0, B(v_), 0);
            recordHeadNormRope(k, B(k_), W(lw.kNorm), B(state_), B(cache.k), HeadParams{hd, 1, rope, 1, cache.capacity, nkv * hd, 0, 0, eps}, nkv);
            recordHeadNormRope(k, B(v_), vk::Buffer{}, B(state_), B(cache.v),
                               HeadParams{hd, 0, WHITTLE_NO_ROPE, 1, cache.capacity, nkv * hd, 0, 0, eps}, nkv);
        }
        const Cache& src = caches_[std::size_t(spec.kvSource)];
        const std::uint32_t window = spec.kind == AttentionKind::Sliding ? u32(c.slidingWindow) : 0u;
        recordAttention(k, B(q_), B(src.k), B(src.v), B(scores_), B(attn_), B(state_),
                        AttentionParams{hd, nkv, nh / nkv, src.capacity, window, u32(maxContext_)}, nh);
        recordMatvec(k, lw.o, B(attn_), 0, B(o_), 0);
        recordRmsNorm(k, B(o_), W(lw.postAttentionNorm), B(x_), NormParams{H, 0, 0, H, 1, 1, eps, 1.0f, 1.0f}, 1);
        // MLP block.
        recordRmsNorm(k, B(x_), W(lw.preFeedforwardNorm), B(a_), NormParams{H, 0, 0, H, 1, 0, eps, 1.0f, 1.0f}, 1);
        recordMatvec(k, lw.gate, B(a_), 0, B(gate_), 0);
        recordMatvec(k, lw.up, B(a_), 0, B(up_), 0);
        recordGeluMul(k, B(gate_), B(up_), GeluParams{F, 0, 0});
        recordMatvec(k, lw.down, B(gate_), 0, B(o_), 0);
        recordRmsNorm(k, B(o_), W(lw.postFeedforwardNorm), B(x_), NormParams{H, 0, 0, H, 1, 1, eps, 1.0f, 1.0f}, 1);
        // PLE block, then layer_scalar over the whole stream.
        recordMatvec(k, lw.pleGate, B(x_), 0, B(g_), 0);
        recordGeluMul(k, B(g_), B(pleProj_), GeluParams{P, 0, li * P});
        recordMatvec(k, lw.pleProj, B(g_), 0, B(o_), 0);
        recordRmsNorm(k, B(o_), W(lw.postPleNorm), B(x_), NormParams{H, 0, 0, H, 1, 1, eps, 1.0f, scalar}, 1);
    }
    if (withHead) {
        // §3.5: final norm, the head over the (possibly pruned) vocabulary, softcap, and the device's argmax.
        const std::uint32_t V = u32(model_.weights().vocabSize());
        recordRmsNorm(k, B(x_), W(model_.finalNorm()), B(a_), NormParams{H, 0, 0, H, 1, 0, eps, 1.0f, 1.0f}, 1);
        recordMatvec(k, model_.head(), B(a_), 0, B(logits_), 0);
        if (c.finalLogitSoftcap) recordSoftcap(k, B(logits_), V, float(*c.finalLogitSoftcap));
        recordArgmax(k, B(logits_), V, B(result_));
    }
    rec.end();
}

void VulkanSession::writeTokenState(int token, int position) {
    std::byte* s = arena_->mapped(state_);
    const std::uint32_t head[4] = {std::uint32_t(position), std::uint32_t(token), 0, 0};
    std::memcpy(s, head, 16);
    float* rope = reinterpret_cast<float*>(s + 16);
    fillRopeTable(invFreqSliding_, position, rope);
    fillRopeTable(invFreqFull_, position, rope + ropeFullOffset_);
    model_.weights().embedding().row(token, reinterpret_cast<float*>(arena_->mapped(x0_)));
    if (!model_.options().pleInVram) model_.weights().pleTable().row(token, reinterpret_cast<float*>(arena_->mapped(tokPle_)));
}

std::span<const float> VulkanSession::forward(std::span<const int> tokens, float* allLogits) {
    if (tokens.empty()) throw UsageError("nothing to evaluate: the token list is empty");
    if (position_ + std::int64_t(tokens.size()) > maxContext_)
        throw UsageError("the sequence needs " + std::to_string(position_ + tokens.size()) + " positions but the context holds " +
                         std::to_string(maxContext_));
    const int V = vocabSize();
    for (int t : tokens)
        if (t < 0 || t >= V) throw UsageError("token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(V) + ")");
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const bool head = allLogits || i + 1 == tokens.size();
        writeTokenState(tokens[i], position_);
        Recorder& rec = head ? *stepWithHead_ : *step_;
        model_.device().submitAndWait(rec.handle(), fence_);
        rec.collectTimes();
        ++position_;
        ++tokens_;
        if (allLogits) std::memcpy(allLogits + i * std::size_t(V), arena_->mapped(logits_), std::size_t(V) * 4);
    }
    deviceSeconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::memcpy(logitsHost_.data(), arena_->mapped(logits_), std::size_t(V) * 4);
    return logitsHost_;
}

int VulkanSession::deviceArgmax() const {
    std::uint32_t id;
    std::memcpy(&id, arena_->mapped(result_), 4);
    return int(id);
}

EngineStats VulkanSession::stats() const {
    EngineStats s;
    for (int k = 0; k < kMemoryKinds; ++k)
        s.allocatedBytes[std::size_t(k)] = model_.memory().stats().allocated[std::size_t(k)] + arena_->stats().allocated[std::size_t(k)];
    for (auto b : s.allocatedBytes) s.totalAllocatedBytes += b;
    s.dispatchesPerToken = stepWithHead_->dispatches();
    s.pipelines = model_.kernels().pipelinesCreated();
    s.tokens = tokens_;
    s.deviceSeconds = deviceSeconds_;
    for (const Recorder* rec : {step_.get(), stepWithHead_.get()})
        for (const auto& [op, ns] : rec->opTimes()) s.opSeconds[op] += ns * 1e-9;
    return s;
}

}  // namespace whittle::gpu
