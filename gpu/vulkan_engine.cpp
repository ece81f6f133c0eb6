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
        if (!r.downBias.empty()) vector(l.downBias, r.downBias, pre + "down_proj.bias");
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
                {"prefill_chunk", s.prefillChunk},
                {"pipelines", s.pipelines},
                {"tokens", s.tokens},
                {"device_seconds", s.deviceSeconds},
                {"op_seconds", s.opSeconds}};
}

int VulkanSession::cacheSlots(const Gemma4Config& c, const LayerSpec& layer, int maxContext, int prefillChunk) {
    if (layer.kind != AttentionKind::Sliding) return maxContext;
    // A submit of n tokens writes all n keys before its queries attend: the ring keeps the window behind the
    // chunk's first token while holding the whole chunk.
    return int(std::min<std::int64_t>(maxContext, std::int64_t(c.slidingWindow) + std::max(prefillChunk, 1) - 1));
}

VulkanSession::VulkanSession(VulkanModel& model, int maxContext) : model_(model), c_(model.config()), maxContext_(maxContext) {
    if (maxContext <= 0) throw UsageError("context length must be positive");
    if (model.options().prefillChunk < 1) throw UsageError("the prefill chunk must be at least 1 token");
    const Gemma4Config& c = c_;
    ComputeDevice& dev = model.device();
    chunk_ = std::min(model.options().prefillChunk, maxContext);
    const std::uint64_t V = std::uint64_t(model.weights().vocabSize());
    // Every token's logits (eval) come back in chunks of at most 16 MiB of logits.
    logitRows_ = int(std::clamp<std::uint64_t>(std::min<std::uint64_t>(16u << 20, model.maxBindingBytes()) / (V * 4), 1, std::uint64_t(chunk_)));
    arena_ = std::make_unique<MemoryArena>(dev);
    MemoryArena& a = *arena_;
    const std::uint64_t C = std::uint64_t(chunk_);
    const std::uint64_t H = std::uint64_t(c.hiddenSize), LP = std::uint64_t(c.numLayers) * std::uint64_t(c.pleDim);
    const std::uint64_t hdMax = std::uint64_t(std::max(c.headDim, c.globalHeadDim));
    std::uint64_t fMax = 0;
    for (const auto& l : c.layers) fMax = std::max(fMax, std::uint64_t(l.ffnWidth));
    caches_.resize(c.layers.size());
    for (const auto& l : c.layers) {
        if (!l.ownsKv) continue;
        Cache& cache = caches_[std::size_t(l.index)];
        cache.capacity = std::uint32_t(cacheSlots(c, l, maxContext, chunk_));
        const std::uint64_t bytes = std::uint64_t(cache.capacity) * std::uint64_t(c.numKvHeads) * std::uint64_t(l.headDim) * 4;
        cache.k = a.add(MemoryKind::KvCache, bytes, "layer " + std::to_string(l.index) + " keys");
        cache.v = a.add(MemoryKind::KvCache, bytes, "layer " + std::to_string(l.index) + " values");
    }
    invFreqSliding_ = ropeInverseFrequencies(c.ropeSliding, c.headDim);
    invFreqFull_ = ropeInverseFrequencies(c.ropeFull, c.globalHeadDim);
    ropeFullOffset_ = std::uint32_t(invFreqSliding_.size() * 2);
    recordWords_ = tokenRecordWords(2 * (invFreqSliding_.size() + invFreqFull_.size()));
    state_ = a.add(MemoryKind::Host, tokenStateBytes(std::uint32_t(C), recordWords_), "token state");
    x0_ = a.add(MemoryKind::Host, C * H * 4, "token embedding rows");
    if (!model.options().pleInVram) tokPle_ = a.add(MemoryKind::Host, C * LP * 4, "token PLE rows");
    logits_ = a.add(MemoryKind::Host, std::uint64_t(logitRows_) * V * 4, "logits");
    result_ = a.add(MemoryKind::Host, 16, "sampled token");
    sampleState_ = a.add(MemoryKind::Host, sampleStateBytes(), "sampling state");
    suppressedBits_ = a.add(MemoryKind::Host, (V + 31) / 32 * 4, "suppressed ids");
    sampleWork_ = a.add(MemoryKind::Scratch, V * 4, "sampling logits");
    unused_ = a.add(MemoryKind::Scratch, 16, "unused binding");
    x_ = a.add(MemoryKind::Scratch, C * H * 4, "residual stream");
    a_ = a.add(MemoryKind::Scratch, C * H * 4, "normed stream");
    q_ = a.add(MemoryKind::Scratch, C * std::uint64_t(c.numHeads) * hdMax * 4, "queries");
    k_ = a.add(MemoryKind::Scratch, C * std::uint64_t(c.numKvHeads) * hdMax * 4, "keys");
    v_ = a.add(MemoryKind::Scratch, C * std::uint64_t(c.numKvHeads) * hdMax * 4, "values");
    attn_ = a.add(MemoryKind::Scratch, C * std::uint64_t(c.numHeads) * hdMax * 4, "attention output");
    o_ = a.add(MemoryKind::Scratch, C * H * 4, "block output");
    gate_ = a.add(MemoryKind::Scratch, C * fMax * 4, "mlp gate");
    up_ = a.add(MemoryKind::Scratch, C * fMax * 4, "mlp up");
    g_ = a.add(MemoryKind::Scratch, C * std::uint64_t(c.pleDim) * 4, "ple gate");
    pleProj_ = a.add(MemoryKind::Scratch, C * LP * 4, "per-layer inputs");
    if (model.options().pleInVram) tokPle_ = a.add(MemoryKind::Scratch, C * LP * 4, "token PLE rows");
    a.allocate("a session of " + std::to_string(maxContext) + " positions (KV cache and scratch)", model.memory().stats().totalAllocated(), model.options().memoryLimitBytes);
    a.fill(unused_, 0);
    a.fill(suppressedBits_, 0);
    writeSampleState(a.mapped(sampleState_), sampling_, {}, 0.0);
    fence_ = vk::raii::Fence(dev.device(), vk::FenceCreateInfo());
    logitsHost_.resize(V);
    // Decode's command buffer now (its pipelines are created while recording; stats() reads its dispatches);
    // prefill's and the device pick's on first use.
    step(1, Head::Last);
}

VulkanSession::~VulkanSession() {
    // A submit that timed out may still be running: its buffers must outlive it. A lost device returns at once.
    if (!ended_.empty()) {
        try {
            (void)model_.device().device().waitForFences(*fence_, VK_TRUE, UINT64_MAX);
        } catch (const vk::SystemError&) {
        }
    }
}

int VulkanSession::vocabSize() const { return model_.weights().vocabSize(); }

Recorder& VulkanSession::step(int tokens, Head head) {
    auto& slot = steps_[{tokens, head}];
    if (!slot) {
        slot = std::make_unique<Recorder>(model_.device(), true);
        record(*slot, tokens, head);
    }
    return *slot;
}

void VulkanSession::record(Recorder& rec, int tokens, Head head) {
    const Gemma4Config& c = c_;
    const MemoryArena& m = *arena_;
    const MemoryArena& w = model_.memory();
    const KernelContext k{model_.kernels(), rec, w, m.buffer(unused_)};
    const auto B = [&](BufferId id) { return m.buffer(id); };
    const auto W = [&](BufferId id) { return w.buffer(id); };
    const std::uint32_t n = u32(tokens);
    const std::uint32_t H = u32(c.hiddenSize), P = u32(c.pleDim), L = u32(c.numLayers);
    const std::uint32_t nh = u32(c.numHeads), nkv = u32(c.numKvHeads);
    const float eps = float(c.rmsNormEps);
    // The residual adds: rows of H values, one per token (with FLAP's down_proj bias joining the FFN output
    // before its norm when the model has one).
    const auto addNormed = [&](BufferId in, BufferId weight, float scalar, BufferId bias = {}) {
        recordRmsNorm(k, B(in), W(weight), B(x_), NormParams{H, 0, 0, H, 1, 1, eps, 1.0f, scalar, bias.valid() ? 1u : 0u}, n,
                      bias.valid() ? W(bias) : vk::Buffer{});
    };
    rec.begin();
    // §3.1: x0 = E[t]·√H (the rows gathered on the host); per-layer inputs from W_proj·x0 and the tokens' PLE rows.
    recordScale(k, B(x0_), B(x_), n * H, std::sqrt(float(H)));
    if (model_.options().pleInVram) recordGatherRow(k, model_.pleTable(), B(state_), B(tokPle_), 0, n);
    recordMatmul(k, model_.pleProjection(), B(x_), 0, H, B(pleProj_), 0, L * P, n);
    recordPleCombine(k, B(pleProj_), W(model_.pleProjectionNorm()), B(tokPle_),
                     PleParams{P, 1.0f / std::sqrt(float(H)), std::sqrt(float(P)), eps}, n * L);
    for (std::uint32_t li = 0; li < L; ++li) {
        const LayerSpec& spec = c.layers[li];
        const VulkanModel::Layer& lw = model_.layers()[li];
        const float scalar = model_.weights().layers()[li].scalar;
        const std::uint32_t hd = u32(spec.headDim), F = u32(spec.ffnWidth), qw = nh * hd, kvw = nkv * hd;
        const std::uint32_t rope = spec.kind == AttentionKind::Full ? ropeFullOffset_ : 0u;
        // Attention block: every token's keys and values go into the cache before any query attends.
        recordRmsNorm(k, B(x_), W(lw.inputNorm), B(a_), NormParams{H, 0, 0, H, 1, 0, eps, 1.0f, 1.0f}, n);
        recordMatmul(k, lw.q, B(a_), 0, H, B(q_), 0, qw, n);
        recordHeadNormRope(k, B(q_), W(lw.qNorm), B(state_), B(q_), HeadParams{hd, 1, rope, 0, 0, 0, 0, 0, eps, qw}, nh, n);
        if (spec.ownsKv) {
            const Cache& cache = caches_[li];
            recordMatmul(k, lw.k, B(a_), 0, H, B(k_), 0, kvw, n);
            recordMatmul(k, lw.v, B(a_), 0, H, B(v_), 0, kvw, n);
            recordHeadNormRope(k, B(k_), W(lw.kNorm), B(state_), B(cache.k), HeadParams{hd, 1, rope, 1, cache.capacity, kvw, 0, 0, eps, kvw}, nkv, n);
            recordHeadNormRope(k, B(v_), vk::Buffer{}, B(state_), B(cache.v),
                               HeadParams{hd, 0, WHITTLE_NO_ROPE, 1, cache.capacity, kvw, 0, 0, eps, kvw}, nkv, n);
        }
        const Cache& src = caches_[std::size_t(spec.kvSource)];
        const std::uint32_t window = spec.kind == AttentionKind::Sliding ? u32(c.slidingWindow) : 0u;
        recordAttention(k, B(q_), B(src.k), B(src.v), B(attn_), B(state_), AttentionParams{hd, nkv, nh / nkv, src.capacity, window, qw}, nh, n);
        recordMatmul(k, lw.o, B(attn_), 0, qw, B(o_), 0, H, n);
        addNormed(o_, lw.postAttentionNorm, 1.0f);
        // MLP block.
        recordRmsNorm(k, B(x_), W(lw.preFeedforwardNorm), B(a_), NormParams{H, 0, 0, H, 1, 0, eps, 1.0f, 1.0f}, n);
        recordMatmul(k, lw.gate, B(a_), 0, H, B(gate_), 0, F, n);
        recordMatmul(k, lw.up, B(a_), 0, H, B(up_), 0, F, n);
        recordGeluMul(k, B(gate_), B(up_), GeluParams{n * F, 0, 0, F, F});
        recordMatmul(k, lw.down, B(gate_), 0, F, B(o_), 0, H, n);
        addNormed(o_, lw.postFeedforwardNorm, 1.0f, lw.downBias);
        // PLE block (each token's gate against its own slice of layer li), then layer_scalar over the whole stream.
        recordMatmul(k, lw.pleGate, B(x_), 0, H, B(g_), 0, P, n);
        recordGeluMul(k, B(g_), B(pleProj_), GeluParams{n * P, 0, li * P, P, L * P});
        recordMatmul(k, lw.pleProj, B(g_), 0, P, B(o_), 0, H, n);
        addNormed(o_, lw.postPleNorm, scalar);
    }
    if (head != Head::None) {
        // §3.5: final norm, the head over the (possibly pruned) vocabulary, softcap, and the device's argmax of
        // the last token's logits.
        const std::uint32_t V = u32(model_.weights().vocabSize());
        const std::uint32_t rows = head == Head::All ? n : 1u, firstRow = n - rows;
        recordRmsNorm(k, B(x_), W(model_.finalNorm()), B(a_), NormParams{H, firstRow * H, 0, H, 1, 0, eps, 1.0f, 1.0f}, rows);
        recordMatmul(k, model_.head(), B(a_), 0, H, B(logits_), 0, V, rows);
        if (c.finalLogitSoftcap) recordSoftcap(k, B(logits_), rows * V, float(*c.finalLogitSoftcap));
        if (head == Head::Pick)
            recordSample(k, B(logits_), V, 0, B(suppressedBits_), B(sampleState_), B(sampleWork_), B(result_));
        else
            recordArgmax(k, B(logits_), V, B(result_), (rows - 1) * V);
    }
    rec.end();
}

void VulkanSession::writeTokens(std::span<const int> tokens) {
    std::byte* s = arena_->mapped(state_);
    const std::size_t H = std::size_t(c_.hiddenSize), LP = std::size_t(c_.numLayers) * std::size_t(c_.pleDim);
    writeTokenStateHeader(s, u32(std::int64_t(tokens.size())), recordWords_);
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        const int position = position_ + int(t), token = tokens[t];
        float* rope = writeTokenRecord(s, u32(std::int64_t(t)), recordWords_, u32(position), u32(token));
        fillRopeTable(invFreqSliding_, position, rope);
        fillRopeTable(invFreqFull_, position, rope + ropeFullOffset_);
        model_.weights().embedding().row(token, reinterpret_cast<float*>(arena_->mapped(x0_)) + t * H);
        if (!model_.options().pleInVram) model_.weights().pleTable().row(token, reinterpret_cast<float*>(arena_->mapped(tokPle_)) + t * LP);
    }
}

bool VulkanSession::setSampler(const SamplingParams& params, const std::vector<bool>& suppressed) {
    validate(params);
    const int V = vocabSize();
    if (!deviceCanSample(params, V)) return false;
    sampling_ = params;
    const std::vector<std::uint32_t> bits = suppressedBits(suppressed, V);
    std::memcpy(arena_->mapped(suppressedBits_), bits.data(), bits.size() * 4);
    return true;
}

int VulkanSession::forwardAndPick(std::span<const int> tokens, std::span<const int> history, double uniform) {
    writeSampleState(arena_->mapped(sampleState_), sampling_, history, uniform);
    run(tokens, nullptr, true);
    return resultToken();
}

std::span<const float> VulkanSession::forward(std::span<const int> tokens, float* allLogits) {
    run(tokens, allLogits, false);
    const int V = vocabSize();
    const float* logits = reinterpret_cast<const float*>(arena_->mapped(logits_));
    const std::size_t lastRow = allLogits ? (tokens.size() - 1) % std::size_t(logitRows_) : 0;
    std::memcpy(logitsHost_.data(), logits + lastRow * std::size_t(V), std::size_t(V) * 4);
    return logitsHost_;
}

void VulkanSession::run(std::span<const int> tokens, float* allLogits, bool pick) {
    if (!ended_.empty()) throw Error("the Vulkan session has ended: " + ended_);
    if (tokens.empty()) throw UsageError("nothing to evaluate: the token list is empty");
    if (position_ + std::int64_t(tokens.size()) > maxContext_)
        throw UsageError("the sequence needs " + std::to_string(position_ + tokens.size()) + " positions but the context holds " +
                         std::to_string(maxContext_));
    const int V = vocabSize();
    for (int t : tokens)
        if (t < 0 || t >= V) throw UsageError("token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(V) + ")");
    const auto start = std::chrono::steady_clock::now();
    const std::size_t chunk = std::size_t(allLogits ? logitRows_ : chunk_), rowBytes = std::size_t(V) * 4;
    const float* logits = reinterpret_cast<const float*>(arena_->mapped(logits_));
    for (std::size_t first = 0; first < tokens.size(); first += chunk) {
        const std::size_t n = std::min(chunk, tokens.size() - first);
        const Head head = allLogits ? Head::All : first + n < tokens.size() ? Head::None : pick ? Head::Pick : Head::Last;
        writeTokens(tokens.subspan(first, n));
        Recorder& rec = step(int(n), head);
        try {
            model_.device().submitAndWait(rec.handle(), fence_, model_.options().submitTimeoutSeconds);
        } catch (const Error& e) {
            ended_ = e.what();  // the caches may be half written: no later forward can be trusted
            throw;
        }
        rec.collectTimes();
        position_ += int(n);
        tokens_ += std::int64_t(n);
        if (allLogits) std::memcpy(allLogits + first * std::size_t(V), logits, n * rowBytes);
    }
    deviceSeconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int VulkanSession::deviceArgmax() const { return resultToken(); }

int VulkanSession::resultToken() const {
    std::uint32_t id;
    std::memcpy(&id, arena_->mapped(result_), 4);
    return int(id);
}

EngineStats VulkanSession::stats() const {
    EngineStats s;
    for (int k = 0; k < kMemoryKinds; ++k)
        s.allocatedBytes[std::size_t(k)] = model_.memory().stats().allocated[std::size_t(k)] + arena_->stats().allocated[std::size_t(k)];
    for (auto b : s.allocatedBytes) s.totalAllocatedBytes += b;
    s.dispatchesPerToken = steps_.at({1, Head::Last})->dispatches();
    s.prefillChunk = chunk_;
    s.pipelines = model_.kernels().pipelinesCreated();
    s.tokens = tokens_;
    s.deviceSeconds = deviceSeconds_;
    for (const auto& [key, rec] : steps_)
        for (const auto& [op, ns] : rec->opTimes()) s.opSeconds[op] += ns * 1e-9;
    return s;
}

}  // namespace whittle::gpu
