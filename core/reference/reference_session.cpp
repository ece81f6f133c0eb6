#include "core/reference/reference_session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/reference/ops.h"
#include "core/util/thread_pool.h"

namespace whittle {

ReferenceSession::ReferenceSession(const ReferenceModel& model, int maxContext, int maxChunk, bool fullCaches)
    : model_(model), c_(model.config()), maxContext_(maxContext), maxChunk_(std::max(1, maxChunk)), fullCaches_(fullCaches) {
    if (maxContext <= 0) throw UsageError("context length must be positive");
    const std::size_t T = std::size_t(maxChunk_), H = std::size_t(c_.hiddenSize), LP = std::size_t(c_.numLayers) * std::size_t(c_.pleDim);
    const std::size_t hdMax = std::size_t(std::max(c_.headDim, c_.globalHeadDim));
    std::size_t fMax = 0;
    for (const auto& l : c_.layers) fMax = std::max(fMax, std::size_t(l.ffnWidth));
    caches_.resize(c_.layers.size());
    for (const auto& l : c_.layers) {
        if (!l.ownsKv) continue;
        Cache& cache = caches_[std::size_t(l.index)];
        cache.headDim = l.headDim;
        cache.capacity = l.kind == AttentionKind::Sliding && !fullCaches ? std::min(maxContext, c_.slidingWindow + maxChunk_ - 1) : maxContext;
        const std::size_t n = std::size_t(cache.capacity) * std::size_t(c_.numKvHeads) * std::size_t(l.headDim);
        cache.k.assign(n, 0.0f);
        cache.v.assign(n, 0.0f);
    }
    x_.resize(T * H);
    tokPle_.resize(T * LP);
    pleProj_.resize(T * LP);
    a_.resize(T * H);
    q_.resize(T * std::size_t(c_.numHeads) * hdMax);
    k_.resize(T * std::size_t(c_.numKvHeads) * hdMax);
    v_.resize(T * std::size_t(c_.numKvHeads) * hdMax);
    attn_.resize(T * std::size_t(c_.numHeads) * hdMax);
    o_.resize(T * H);
    m_.resize(T * H);
    gate_.resize(T * fMax);
    up_.resize(T * fMax);
    ffn_.resize(T * H);
    g_.resize(T * std::size_t(c_.pleDim));
    g2_.resize(T * H);
    scores_.resize(T * std::size_t(c_.numHeads) * std::size_t(maxContext));
    logits_.resize(std::size_t(model.vocabSize()));
    invFreqSliding_ = ropeInverseFrequencies(c_.ropeSliding, c_.headDim);
    invFreqFull_ = ropeInverseFrequencies(c_.ropeFull, c_.globalHeadDim);
}

void ReferenceSession::reset() { position_ = 0; }

// True when the chunk ends here: this is the last tapped site, and the observer has seen its input.
bool ReferenceSession::tapped(int layer, LinearSite site, const float* x, int T, std::size_t width) {
    const bool every = tap_ && tap_->layer == LinearTap::kEveryLayer;
    if (!tap_ || (!every && tap_->layer != layer) || std::find(tap_->sites.begin(), tap_->sites.end(), site) == tap_->sites.end())
        return false;
    if (every) tap_->observeLayer(layer, site, x, T, int(width));
    else tap_->observe(site, x, T, int(width));
    if (site != *std::max_element(tap_->sites.begin(), tap_->sites.end())) return false;  // sites are in decoder order
    if (every && layer + 1 < c_.numLayers) return false;  // every layer: stop after the last one's
    position_ += T;
    return true;
}

void ReferenceSession::dump(const char* name, int layer, int t, const float* v, std::size_t n) const {
    if (hook_) hook_(name, layer, position_ + t, std::span<const float>(v, n));
}

std::span<const float> ReferenceSession::forward(std::span<const int> tokens, float* allLogits) {
    if (tokens.empty()) throw UsageError("nothing to evaluate: the token list is empty");
    if (position_ + std::int64_t(tokens.size()) > maxContext_)
        throw UsageError("the sequence needs " + std::to_string(position_ + tokens.size()) + " positions but the context holds " +
                         std::to_string(maxContext_));
    for (int t : tokens)
        if (t < 0 || t >= model_.vocabSize())
            throw UsageError("token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(model_.vocabSize()) + ")");
    const std::size_t V = std::size_t(model_.vocabSize());
    for (std::size_t done = 0; done < tokens.size();) {
        const int T = int(std::min<std::size_t>(std::size_t(maxChunk_), tokens.size() - done));
        const bool last = done + std::size_t(T) == tokens.size();
        forwardChunk(tokens.data() + done, T, allLogits ? allLogits + done * V : (last ? logits_.data() : nullptr));
        done += std::size_t(T);
    }
    if (tap_) return {};
    if (allLogits) std::memcpy(logits_.data(), allLogits + (tokens.size() - 1) * V, V * 4);
    return logits_;
}

// logitsOut: null (no logits), [V] (last token only, when it is the session's logits_ buffer) or [T, V].
void ReferenceSession::forwardChunk(const int* tokens, int T, float* logitsOut) {
    ThreadPool& pool = model_.pool();
    const Gemma4Config& c = c_;
    const std::size_t H = std::size_t(c.hiddenSize), P = std::size_t(c.pleDim), L = std::size_t(c.numLayers), LP = L * P;
    const float eps = float(c.rmsNormEps);
    auto row = [](std::vector<float>& buf, int t, std::size_t width) { return std::span<float>(&buf[std::size_t(t) * width], width); };

    // §3.1 embeddings: x0 = E[t]·√H; the per-layer inputs combine W_proj·x0 with the token's PLE row.
    const float embedScale = std::sqrt(float(H));
    for (int t = 0; t < T; ++t) {
        const std::span<float> x = row(x_, t, H);
        model_.embedding().row(tokens[t], x.data());
        for (float& v : x) v *= embedScale;
        model_.pleTable().row(tokens[t], row(tokPle_, t, LP).data());
        dump("embed", -1, t, x.data(), H);
    }
    if (tapped(-1, LinearSite::PleModel, x_.data(), T, H)) return;
    ops::matmul(pool, model_.pleModelProjection(), x_.data(), T, std::int64_t(H), pleProj_.data(), std::int64_t(LP));
    for (int t = 0; t < T; ++t) {
        ops::combinePle(row(pleProj_, t, LP), row(tokPle_, t, LP), int(L), int(P), int(H), model_.pleProjectionNorm().data(), eps);
        dump("ple", -1, t, row(pleProj_, t, LP).data(), LP);
    }

    for (int li = 0; li < int(L); ++li)
        if (forwardLayerChunk(li, x_.data(), pleProj_.data() + std::size_t(li) * P, LP, T)) return;

    // §3.5: final norm, the head (tied or not), softcap.
    if (logitsOut) {
        const int first = logitsOut == logits_.data() ? T - 1 : 0;
        const int n = T - first;
        for (int t = first; t < T; ++t) {
            ops::rmsNorm(row(x_, t, H), model_.finalNorm().data(), eps);
            dump("final_norm", -1, t, &x_[std::size_t(t) * H], H);
        }
        const std::size_t V = std::size_t(model_.vocabSize());
        ops::matmul(pool, model_.head(), &x_[std::size_t(first) * H], n, std::int64_t(H), logitsOut, std::int64_t(V));
        if (c.finalLogitSoftcap) ops::softcap(std::span<float>(logitsOut, std::size_t(n) * V), float(*c.finalLogitSoftcap));
        for (int t = 0; t < n; ++t) dump("logits", -1, first + t, logitsOut + std::size_t(t) * V, V);
    }
    position_ += T;
}

bool ReferenceSession::forwardLayerChunk(int li, float* xs, const float* ple, std::size_t pleStride, int T) {
    ThreadPool& pool = model_.pool();
    const Gemma4Config& c = c_;
    const std::size_t H = std::size_t(c.hiddenSize), P = std::size_t(c.pleDim);
    const float eps = float(c.rmsNormEps);
    auto row = [](std::vector<float>& buf, int t, std::size_t width) { return std::span<float>(&buf[std::size_t(t) * width], width); };
    const int nh = c.numHeads, nkv = c.numKvHeads, group = nh / nkv;
    const LayerSpec& spec = c.layers[std::size_t(li)];
    const ReferenceModel::Layer& w = model_.layers()[std::size_t(li)];
    const std::size_t hd = std::size_t(spec.headDim), F = std::size_t(spec.ffnWidth);
    const std::size_t qw = std::size_t(nh) * hd, kvw = std::size_t(nkv) * hd;
    const std::vector<float>& invFreq = spec.kind == AttentionKind::Full ? invFreqFull_ : invFreqSliding_;

    // §3.2/§3.3 attention block: q (and, on KV-owning layers, k/v) from the normed stream.
    for (int t = 0; t < T; ++t) {
        const std::span<float> a = row(a_, t, H);
        std::copy_n(&xs[std::size_t(t) * H], H, a.begin());
        ops::rmsNorm(a, w.inputNorm.data(), eps);
    }
    if (tapped(li, LinearSite::Attention, a_.data(), T, H)) return true;
    ops::matmul(pool, w.q, a_.data(), T, std::int64_t(H), q_.data(), std::int64_t(qw));
    for (int t = 0; t < T; ++t)
        for (int j = 0; j < nh; ++j) {
            const std::span<float> q(&q_[std::size_t(t) * qw + std::size_t(j) * hd], hd);
            ops::rmsNorm(q, w.qNorm.data(), eps);
            ops::rope(q, invFreq, position_ + t);
        }
    if (spec.ownsKv) {
        Cache& cache = caches_[std::size_t(li)];
        ops::matmul(pool, w.k, a_.data(), T, std::int64_t(H), k_.data(), std::int64_t(kvw));
        ops::matmul(pool, w.v, a_.data(), T, std::int64_t(H), v_.data(), std::int64_t(kvw));
        for (int t = 0; t < T; ++t) {
            const std::size_t slot = std::size_t((position_ + t) % cache.capacity);
            for (int j = 0; j < nkv; ++j) {
                const std::span<float> k(&k_[std::size_t(t) * kvw + std::size_t(j) * hd], hd);
                const std::span<float> v(&v_[std::size_t(t) * kvw + std::size_t(j) * hd], hd);
                ops::rmsNorm(k, w.kNorm.data(), eps);
                ops::rope(k, invFreq, position_ + t);
                ops::rmsNorm(v, nullptr, eps);  // V is normalised without a learned scale
                const std::size_t dst = slot * kvw + std::size_t(j) * hd;
                std::copy(k.begin(), k.end(), cache.k.begin() + std::ptrdiff_t(dst));
                std::copy(v.begin(), v.end(), cache.v.begin() + std::ptrdiff_t(dst));
            }
            dump("k", li, t, &k_[std::size_t(t) * kvw], kvw);
            dump("v", li, t, &v_[std::size_t(t) * kvw], kvw);
        }
    }
    for (int t = 0; t < T; ++t) dump("q", li, t, &q_[std::size_t(t) * qw], qw);
    // A KV-shared layer reads the cache of its source layer.
    const Cache& src = caches_[std::size_t(spec.kvSource)];
    const ops::KvCacheView cache{src.k.data(), src.v.data(), src.capacity, nkv, spec.headDim};
    pool.parallelFor(std::size_t(T) * std::size_t(nh), [&](std::size_t item) {
        const int t = int(item / std::size_t(nh)), j = int(item % std::size_t(nh));
        const int pos = position_ + t;
        const int first = ops::firstAttendedPosition(pos, spec.kind == AttentionKind::Sliding, c.slidingWindow);
        ops::attendHead(&q_[std::size_t(t) * qw + std::size_t(j) * hd], cache, j / group, first, pos,
                        &scores_[item * std::size_t(maxContext_)], &attn_[std::size_t(t) * qw + std::size_t(j) * hd]);
    });
    if (tapped(li, LinearSite::AttentionOutput, attn_.data(), T, qw)) return true;
    ops::matmul(pool, w.o, attn_.data(), T, std::int64_t(qw), o_.data(), std::int64_t(H));
    for (int t = 0; t < T; ++t) {
        const std::span<float> o = row(o_, t, H), x = std::span<float>(xs + std::size_t(t) * H, H);
        ops::rmsNorm(o, w.postAttentionNorm.data(), eps);
        for (std::size_t i = 0; i < H; ++i) x[i] += o[i];
        dump("attn_out", li, t, o.data(), H);
    }

    // MLP block: gated GELU.
    for (int t = 0; t < T; ++t) {
        const std::span<float> m = row(m_, t, H);
        std::copy_n(&xs[std::size_t(t) * H], H, m.begin());
        ops::rmsNorm(m, w.preFeedforwardNorm.data(), eps);
    }
    if (tapped(li, LinearSite::Mlp, m_.data(), T, H)) return true;
    ops::matmul(pool, w.gate, m_.data(), T, std::int64_t(H), gate_.data(), std::int64_t(F));
    ops::matmul(pool, w.up, m_.data(), T, std::int64_t(H), up_.data(), std::int64_t(F));
    ops::gatedGelu(std::span<float>(gate_.data(), std::size_t(T) * F), std::span<const float>(up_.data(), std::size_t(T) * F));
    if (tapped(li, LinearSite::MlpDown, gate_.data(), T, F)) return true;
    ops::matmul(pool, w.down, gate_.data(), T, std::int64_t(F), ffn_.data(), std::int64_t(H));
    for (int t = 0; t < T; ++t) {
        const std::span<float> f = row(ffn_, t, H), x = std::span<float>(xs + std::size_t(t) * H, H);
        if (!w.downBias.empty())
            for (std::size_t i = 0; i < H; ++i) f[i] += w.downBias[i];
        ops::rmsNorm(f, w.postFeedforwardNorm.data(), eps);
        for (std::size_t i = 0; i < H; ++i) x[i] += f[i];
        dump("ffn_out", li, t, f.data(), H);
    }

    // PLE block: gate → GELU → × ple[l] → projection → norm → residual, then layer_scalar.
    if (tapped(li, LinearSite::PleGate, xs, T, H)) return true;
    ops::matmul(pool, w.pleGate, xs, T, std::int64_t(H), g_.data(), std::int64_t(P));
    for (int t = 0; t < T; ++t)
        ops::gatedGelu(row(g_, t, P), std::span<const float>(ple + std::size_t(t) * pleStride, P));
    if (tapped(li, LinearSite::PleProjection, g_.data(), T, P)) return true;
    ops::matmul(pool, w.pleProj, g_.data(), T, std::int64_t(P), g2_.data(), std::int64_t(H));
    for (int t = 0; t < T; ++t) {
        const std::span<float> g2 = row(g2_, t, H), x = std::span<float>(xs + std::size_t(t) * H, H);
        ops::rmsNorm(g2, w.postPleNorm.data(), eps);
        for (std::size_t i = 0; i < H; ++i) x[i] = (x[i] + g2[i]) * w.scalar;  // layer_scalar scales the whole stream
        dump("ple_out", li, t, g2.data(), H);
        dump("layer_out", li, t, x.data(), H);
    }
    return false;
}


void ReferenceSession::embed(std::span<const int> tokens, float* x0) const {
    const std::size_t H = std::size_t(c_.hiddenSize);
    const float embedScale = std::sqrt(float(H));  // as forwardChunk
    for (std::size_t t = 0; t < tokens.size(); ++t) {
        if (tokens[t] < 0 || tokens[t] >= model_.vocabSize())
            throw UsageError("token id " + std::to_string(tokens[t]) + " is outside the vocabulary (" + std::to_string(model_.vocabSize()) + ")");
        float* x = x0 + t * H;
        model_.embedding().row(tokens[t], x);
        for (std::size_t i = 0; i < H; ++i) x[i] *= embedScale;
    }
}

void ReferenceSession::pleInputs(std::span<const int> tokens, const float* x0, int layer, float* out) const {
    const std::size_t H = std::size_t(c_.hiddenSize), P = std::size_t(c_.pleDim), LP = std::size_t(c_.numLayers) * P;
    const std::size_t T = tokens.size(), first = std::size_t(layer) * P;
    // The rows of W_proj·x0 that belong to `layer`, each element the same dot product ops::matmul computes.
    const WeightView& w = model_.pleModelProjection();
    model_.pool().parallelFor(P, [&](std::size_t r) {
        thread_local std::vector<float> row;
        if (row.size() < H) row.resize(H);
        w.row(std::int64_t(first + r), row.data());
        for (std::size_t t = 0; t < T; ++t) out[t * P + r] = ops::dot(row.data(), x0 + t * H, std::int64_t(H));
    });
    // combinePle normalises each layer's slice on its own, so one slice is combined exactly as the whole row.
    const WeightView& table = model_.pleTable();
    std::vector<float> tokRow(table.format == WeightFormat::Dense ? P : LP);
    for (std::size_t t = 0; t < T; ++t) {
        const float* slice = tokRow.data();
        if (table.format == WeightFormat::Dense)
            for (std::size_t i = 0; i < P; ++i) tokRow[i] = table.at(std::int64_t(std::size_t(tokens[t]) * LP + first + i));
        else {
            table.row(tokens[t], tokRow.data());
            slice += first;
        }
        ops::combinePle(std::span<float>(out + t * P, P), std::span<const float>(slice, P), 1, int(P), int(H), model_.pleProjectionNorm().data(),
                        float(c_.rmsNormEps));
    }
}

void ReferenceSession::forwardLayer(int layer, float* x, const float* ple, int T) {
    if (layer < 0 || layer >= c_.numLayers) throw Error("internal: forwardLayer for a layer the model does not have");
    const LayerSpec& spec = c_.layers[std::size_t(layer)];
    if (T > caches_[std::size_t(spec.kvSource)].capacity) throw Error("internal: forwardLayer needs a session with full caches as long as the sequence");
    const std::size_t H = std::size_t(c_.hiddenSize), P = std::size_t(c_.pleDim);
    for (int t0 = 0; t0 < T; t0 += maxChunk_) {
        const int n = std::min(maxChunk_, T - t0);
        position_ = t0;
        if (!forwardLayerChunk(layer, x + std::size_t(t0) * H, ple + std::size_t(t0) * P, P, n)) position_ += n;
    }
}

std::span<float> ReferenceSession::kvCache(int layer, bool values, int positions) {
    Cache& cache = caches_.at(std::size_t(layer));
    if (cache.k.empty() || positions > cache.capacity) throw Error("internal: kvCache of a layer without a cache that long");
    const std::size_t n = std::size_t(positions) * std::size_t(c_.numKvHeads) * std::size_t(cache.headDim);
    return std::span<float>((values ? cache.v : cache.k).data(), n);
}

}  // namespace whittle
