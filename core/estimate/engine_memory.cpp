#include "core/estimate/engine_memory.h"

#include <algorithm>

#include "core/error.h"
#include "core/model/tensor_table.h"

namespace whittle {

namespace {

std::uint64_t padTo(std::uint64_t v, std::uint64_t m) { return (v + m - 1) / m * m; }

}  // namespace

const char* kvCacheTypeName(KvCacheType t) { return t == KvCacheType::F16 ? "f16" : "f32"; }

KvCacheSize kvCacheSize(const Gemma4Config& c, int context, int prefillChunk, KvCacheType type, KvCells cells) {
    if (context < 1) throw UsageError("context: must be at least 1 position, not " + std::to_string(context));
    if (prefillChunk < 1) throw UsageError("prefill chunk: must be at least 1 token, not " + std::to_string(prefillChunk));
    KvCacheSize s;
    const std::int64_t chunk = std::min(prefillChunk, context);
    if (cells == KvCells::Whittle) {
        s.fullCells = context;
        s.slidingCells = std::min<std::int64_t>(context, std::int64_t(c.slidingWindow) + chunk - 1);
    } else {
        s.fullCells = std::int64_t(padTo(std::uint64_t(context), 256));
        s.slidingCells = std::min<std::int64_t>(s.fullCells, std::int64_t(padTo(std::uint64_t(c.slidingWindow) + std::uint64_t(prefillChunk), 256)));
    }
    const std::uint64_t element = type == KvCacheType::F16 ? 2 : 4;
    for (const LayerSpec& l : c.layers) {
        if (!l.ownsKv) continue;
        const bool sliding = l.kind == AttentionKind::Sliding;
        const std::uint64_t perCell = 2 * std::uint64_t(c.numKvHeads) * std::uint64_t(l.headDim) * element;  // keys and values
        (sliding ? s.slidingLayers : s.fullLayers) += 1;
        (sliding ? s.slidingBytes : s.fullBytes) += perCell * std::uint64_t(sliding ? s.slidingCells : s.fullCells);
    }
    return s;
}

EngineMemory estimateEngineMemory(const Checkpoint& ck, const RuntimeOptions& o) {
    const Gemma4Config& c = ck.config();
    EngineMemory m;
    m.kv = kvCacheSize(c, o.context, o.prefillChunk);
    const bool tied = headRole(c) == TensorRole::Embedding;

    // ---- Weights: what the decoder reads, as stored. ----
    for (const CheckpointTensor& t : ck.tensors()) {
        if (!t.expected || t.unused) continue;  // towers, dead k/v of KV-shared layers, a tied head's saved copy
        const ExpectedTensor& e = *t.expected;
        const std::uint64_t stored = t.entry->info->nbytes;
        if (e.role == TensorRole::LayerScalar) continue;  // a push constant
        if (e.vector) {  // norms and FLAP's bias, uploaded as f32
            m.weights += t.entry->info->numel() * 4;
            ++m.buffers;
            continue;
        }
        if (const Nvfp4Linear* f = e.linear ? ck.nvfp4(e.role, e.layer) : nullptr; f && f->globalScale == t.entry) continue;  // a push constant
        if (e.role == TensorRole::PleTable) {
            if (o.pleInVram) {
                m.pleTable += stored;
                ++m.buffers;
            } else {
                m.hostTables += stored;
            }
            continue;
        }
        if (e.role == TensorRole::Embedding) {
            m.hostTables += stored;  // gathered on the host, one row a token
            if (!tied) continue;     // untied: the head is lm_head's own tensor
        }
        m.weights += stored;
        ++m.buffers;
    }
    // A layer that reads another's cache has no k_norm; the engine still binds 4 bytes there.
    for (const LayerSpec& l : c.layers)
        if (!l.ownsKv) {
            m.weights += 4;
            ++m.buffers;
        }

    // ---- Scratch and host-visible buffers of a session (per chunk of C tokens). ----
    const std::uint64_t C = std::uint64_t(std::min(o.prefillChunk, o.context));
    const std::uint64_t H = std::uint64_t(c.hiddenSize), P = std::uint64_t(c.pleDim), LP = std::uint64_t(c.numLayers) * P;
    const std::uint64_t V = std::uint64_t(c.vocabSize);
    const std::uint64_t hdMax = std::uint64_t(std::max(c.headDim, c.globalHeadDim));
    const std::uint64_t nh = std::uint64_t(c.numHeads), nkv = std::uint64_t(c.numKvHeads);
    std::uint64_t fMax = 0;
    for (const LayerSpec& l : c.layers) fMax = std::max(fMax, std::uint64_t(l.ffnWidth));
    const std::uint64_t scratch[] = {V * 4,          16,           C * H * 4,    C * H * 4,    C * nh * hdMax * 4, C * nkv * hdMax * 4,
                                     C * nkv * hdMax * 4, C * nh * hdMax * 4, C * H * 4, C * fMax * 4, C * fMax * 4, C * P * 4, C * LP * 4};
    for (std::uint64_t b : scratch) m.scratch += b;
    m.buffers += int(std::size(scratch));
    if (o.pleInVram) {
        m.scratch += C * LP * 4;  // the token's PLE rows, gathered on the device
        ++m.buffers;
    }
    // Logits come back in chunks of at most 16 MiB (or one binding), between 1 and C rows.
    std::uint64_t binding = 16u << 20;
    if (o.maxBindingBytes) binding = std::min(binding, o.maxBindingBytes);
    const std::uint64_t logitRows = std::clamp<std::uint64_t>(binding / (V * 4), 1, C);
    // Per token: 4 words of state and the RoPE cos/sin of both head dims (2 · dim/2 floats each).
    const std::uint64_t tokenState = 16 + 4 * C * (4 + std::uint64_t(c.headDim) + std::uint64_t(c.globalHeadDim));
    constexpr std::uint64_t kSamplingState = 64 + 256 * 4;  // the device sampler's header (tens of bytes) and its 256 ids
    const std::uint64_t host[] = {tokenState, C * H * 4, logitRows * V * 4, 16, kSamplingState, (V + 31) / 32 * 4};
    for (std::uint64_t b : host) m.hostVisible += b;
    m.buffers += int(std::size(host));
    if (!o.pleInVram) {
        m.hostVisible += C * LP * 4;  // the token's PLE rows, written by the host
        ++m.buffers;
    }
    return m;
}

}  // namespace whittle
