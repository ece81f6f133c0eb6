#include "core/model/reference_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace whittle {

// ---- weights -------------------------------------------------------------------------------------

void WeightMatrix::row(std::int64_t r, float* out) const {
    const std::byte* p = data + std::size_t(r * cols) * dtypeSize(dtype);
    const std::size_t n = std::size_t(cols);
    switch (dtype) {
    case DType::F32: std::memcpy(out, p, n * 4); return;
    case DType::BF16:
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t v;
            std::memcpy(&v, p + 2 * i, 2);
            const std::uint32_t bits = std::uint32_t(v) << 16;
            std::memcpy(out + i, &bits, 4);
        }
        return;
    case DType::F16:
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t v;
            std::memcpy(&v, p + 2 * i, 2);
            out[i] = f16ToFloat(v);
        }
        return;
    default:
        for (std::size_t i = 0; i < n; ++i) out[i] = loadAsFloat(dtype, p, i);
    }
}

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;

float gelu(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))); }

// Eight lanes in a fixed order: the same result for a row whatever thread computes it.
float dot(const float* a, const float* b, std::int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
    float tail = 0;
    for (; i < n; ++i) tail += a[i] * b[i];
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

void rmsNorm(float* x, std::int64_t n, const float* w, float eps) {
    double ss = 0;
    for (std::int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const float scale = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
    if (w)
        for (std::int64_t i = 0; i < n; ++i) x[i] = x[i] * scale * w[i];
    else
        for (std::int64_t i = 0; i < n; ++i) x[i] *= scale;
}

// Y[t, r] = W[r, :] · X[t, :] for t < T. Parallel over rows; each row converted once per call.
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int T, std::int64_t ldx, float* y, std::int64_t ldy) {
    pool.parallelFor(std::size_t(w.rows), [&](std::size_t r) {
        thread_local std::vector<float> row;
        if (row.size() < std::size_t(w.cols)) row.resize(std::size_t(w.cols));
        w.row(std::int64_t(r), row.data());
        for (int t = 0; t < T; ++t) y[std::size_t(t) * std::size_t(ldy) + r] = dot(row.data(), x + std::size_t(t) * std::size_t(ldx), w.cols);
    });
}

void rope(float* x, int hd, const std::vector<float>& invFreq, int pos) {
    const int half = hd / 2;
    for (int i = 0; i < half; ++i) {
        if (invFreq[std::size_t(i)] == 0.0f) continue;  // proportional RoPE: identity pairs
        const double angle = double(pos) * double(invFreq[std::size_t(i)]);
        const float c = float(std::cos(angle)), s = float(std::sin(angle));
        const float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

// Spec §3.4: default RoPE rotates every pair; "proportional" rotates the first ⌊factor·hd/2⌋ pairs with
// frequencies over the full head dim and leaves the rest as identity (cos 1, sin 0).
std::vector<float> inverseFrequencies(const RopeParams& r, int hd, const std::string& file) {
    std::vector<float> f(std::size_t(hd / 2), 0.0f);
    int rotated = hd / 2;
    if (r.type == "proportional") rotated = int(std::floor(r.partialRotaryFactor * hd / 2));
    else if (r.partialRotaryFactor != 1.0) throw FormatError(file, {}, "partial rotary factor with default RoPE is not supported");
    for (int i = 0; i < rotated; ++i) f[std::size_t(i)] = float(std::pow(r.theta, -2.0 * i / hd));
    return f;
}

bool allFinite(const TensorInfo& t, const TensorView& v, std::uint64_t* bad) {
    const std::byte* p = v.data();
    const std::uint64_t n = t.numel();
    for (std::uint64_t i = 0; i < n; ++i) {
        bool ok = true;
        if (t.dtype == DType::BF16 || t.dtype == DType::F16) {
            std::uint16_t u;
            std::memcpy(&u, p + 2 * i, 2);
            ok = t.dtype == DType::BF16 ? (u & 0x7f80) != 0x7f80 : (u & 0x7c00) != 0x7c00;
        } else if (t.dtype == DType::F32) {
            std::uint32_t u;
            std::memcpy(&u, p + 4 * i, 4);
            ok = (u & 0x7f800000u) != 0x7f800000u;
        }
        if (!ok) {
            *bad = i;
            return false;
        }
    }
    return true;
}

}  // namespace

// ---- model ---------------------------------------------------------------------------------------

ReferenceModel::ReferenceModel(const Checkpoint& ck, const ReferenceOptions& options)
    : config_(ck.config()), pool_(std::make_unique<ThreadPool>(options.threads)) {
    const std::string p = config_.tensorPrefix();
    auto view = [&](const std::string& name) -> const TensorView& {
        const TensorStore::Entry* e = ck.store().find(name);
        if (!e) throw FormatError(ck.dir().string(), name, "missing from the checkpoint");
        views_.push_back(e->file->view(*e->info));
        if (options.checkFinite) {
            std::uint64_t bad = 0;
            if (!allFinite(*e->info, views_.back(), &bad))
                throw FormatError(e->file->path(), name, "holds NaN or Inf (element " + std::to_string(bad) + ")");
        }
        return views_.back();
    };
    auto matrix = [&](const std::string& name) {
        const TensorView& v = view(name);
        const auto& s = v.info().shape;
        return WeightMatrix{v.info().dtype, v.data(), s[0], s.size() > 1 ? s[1] : 1};
    };
    auto vec = [&](const std::string& name) {
        const TensorView& v = view(name);
        std::vector<float> out(std::size_t(v.info().numel()));
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = v.at(i);
        return out;
    };
    views_.reserve(24 * std::size_t(config_.numLayers) + 8);  // views_ must not reallocate: references are held
    embed_ = matrix(p + "embed_tokens.weight");
    pleTable_ = matrix(p + "embed_tokens_per_layer.weight");
    pleModelProj_ = matrix(p + "per_layer_model_projection.weight");
    pleProjNorm_ = vec(p + "per_layer_projection_norm.weight");
    finalNorm_ = vec(p + "norm.weight");
    for (const LayerSpec& l : config_.layers) {
        const std::string q = p + "layers." + std::to_string(l.index) + ".";
        Layer L;
        L.inputNorm = vec(q + "input_layernorm.weight");
        L.q = matrix(q + "self_attn.q_proj.weight");
        L.qNorm = vec(q + "self_attn.q_norm.weight");
        if (l.ownsKv) {
            L.k = matrix(q + "self_attn.k_proj.weight");
            L.v = matrix(q + "self_attn.v_proj.weight");
            L.kNorm = vec(q + "self_attn.k_norm.weight");
        }
        L.o = matrix(q + "self_attn.o_proj.weight");
        L.postAttentionNorm = vec(q + "post_attention_layernorm.weight");
        L.preFeedforwardNorm = vec(q + "pre_feedforward_layernorm.weight");
        L.gate = matrix(q + "mlp.gate_proj.weight");
        L.up = matrix(q + "mlp.up_proj.weight");
        L.down = matrix(q + "mlp.down_proj.weight");
        L.postFeedforwardNorm = vec(q + "post_feedforward_layernorm.weight");
        L.pleGate = matrix(q + "per_layer_input_gate.weight");
        L.pleProj = matrix(q + "per_layer_projection.weight");
        L.postPleNorm = vec(q + "post_per_layer_input_norm.weight");
        L.scalar = vec(q + "layer_scalar").at(0);
        layers_.push_back(std::move(L));
    }
}

ReferenceModel::~ReferenceModel() = default;

// ---- session -------------------------------------------------------------------------------------

InferenceSession::InferenceSession(const ReferenceModel& model, int maxContext, int maxChunk)
    : model_(model), c_(model.config()), maxContext_(maxContext), maxChunk_(std::max(1, maxChunk)) {
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
        cache.capacity = l.kind == AttentionKind::Sliding ? std::min(maxContext, c_.slidingWindow + maxChunk_ - 1) : maxContext;
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
    invFreqSliding_ = inverseFrequencies(c_.ropeSliding, c_.headDim, "config.json");
    invFreqFull_ = inverseFrequencies(c_.ropeFull, c_.globalHeadDim, "config.json");
}

void InferenceSession::reset() { position_ = 0; }

void InferenceSession::emit(const char* name, int layer, int t, const float* v, std::size_t n) const {
    if (hook_) hook_(name, layer, position_ + t, std::span<const float>(v, n));
}

std::span<const float> InferenceSession::forward(std::span<const int> tokens, float* allLogits) {
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
    if (allLogits) std::memcpy(logits_.data(), allLogits + (tokens.size() - 1) * V, V * 4);
    return logits_;
}

// logitsOut: null (no logits), [V] (last token only, when it is the model's logits_ buffer) or [T, V].
void InferenceSession::forwardChunk(const int* tokens, int T, float* logitsOut) {
    ThreadPool& pool = model_.pool();
    const Gemma4Config& c = c_;
    const int H = c.hiddenSize, P = c.pleDim, L = c.numLayers, LP = L * P;
    const float eps = float(c.rmsNormEps);

    // §3.1 embeddings: x0 = E[t]·√H; PLE = (RMSNorm(W_proj·x0·H^-1/2) + E_ple[t]·√P)·2^-1/2.
    const float embedScale = std::sqrt(float(H)), pleScale = std::sqrt(float(P));
    for (int t = 0; t < T; ++t) {
        float* x = &x_[std::size_t(t) * std::size_t(H)];
        model_.embedding().row(tokens[t], x);
        for (int i = 0; i < H; ++i) x[i] *= embedScale;
        float* tp = &tokPle_[std::size_t(t) * std::size_t(LP)];
        model_.pleTable().row(tokens[t], tp);
        for (int i = 0; i < LP; ++i) tp[i] *= pleScale;
        emit("embed", -1, t, x, std::size_t(H));
    }
    matmul(pool, model_.pleModelProjection(), x_.data(), T, H, pleProj_.data(), LP);
    const float projScale = 1.0f / std::sqrt(float(H)), mix = float(1.0 / std::sqrt(2.0));
    for (int t = 0; t < T; ++t) {
        float* pp = &pleProj_[std::size_t(t) * std::size_t(LP)];
        const float* tp = &tokPle_[std::size_t(t) * std::size_t(LP)];
        for (int l = 0; l < L; ++l) {
            float* s = pp + std::size_t(l) * std::size_t(P);
            for (int i = 0; i < P; ++i) s[i] *= projScale;
            rmsNorm(s, P, model_.pleProjectionNorm().data(), eps);
            for (int i = 0; i < P; ++i) s[i] = (s[i] + tp[std::size_t(l) * std::size_t(P) + std::size_t(i)]) * mix;
        }
        emit("ple", -1, t, pp, std::size_t(LP));
    }

    const int nh = c.numHeads, nkv = c.numKvHeads, group = nh / nkv;
    for (int li = 0; li < L; ++li) {
        const LayerSpec& spec = c.layers[std::size_t(li)];
        const ReferenceModel::Layer& w = model_.layers()[std::size_t(li)];
        const int hd = spec.headDim, F = spec.ffnWidth;
        const auto& invFreq = spec.kind == AttentionKind::Full ? invFreqFull_ : invFreqSliding_;

        // §3.2/§3.3 attention block.
        for (int t = 0; t < T; ++t) {
            float* a = &a_[std::size_t(t) * std::size_t(H)];
            std::memcpy(a, &x_[std::size_t(t) * std::size_t(H)], std::size_t(H) * 4);
            rmsNorm(a, H, w.inputNorm.data(), eps);
        }
        matmul(pool, w.q, a_.data(), T, H, q_.data(), nh * hd);
        for (int t = 0; t < T; ++t)
            for (int j = 0; j < nh; ++j) {
                float* q = &q_[(std::size_t(t) * std::size_t(nh) + std::size_t(j)) * std::size_t(hd)];
                rmsNorm(q, hd, w.qNorm.data(), eps);
                rope(q, hd, invFreq, position_ + t);
            }
        if (spec.ownsKv) {
            Cache& cache = caches_[std::size_t(li)];
            matmul(pool, w.k, a_.data(), T, H, k_.data(), nkv * hd);
            matmul(pool, w.v, a_.data(), T, H, v_.data(), nkv * hd);
            for (int t = 0; t < T; ++t) {
                const int slot = (position_ + t) % cache.capacity;
                for (int j = 0; j < nkv; ++j) {
                    float* k = &k_[(std::size_t(t) * std::size_t(nkv) + std::size_t(j)) * std::size_t(hd)];
                    float* v = &v_[(std::size_t(t) * std::size_t(nkv) + std::size_t(j)) * std::size_t(hd)];
                    rmsNorm(k, hd, w.kNorm.data(), eps);
                    rope(k, hd, invFreq, position_ + t);
                    rmsNorm(v, hd, nullptr, eps);  // V is normalised without a learned scale
                    const std::size_t dst = (std::size_t(slot) * std::size_t(nkv) + std::size_t(j)) * std::size_t(hd);
                    std::memcpy(&cache.k[dst], k, std::size_t(hd) * 4);
                    std::memcpy(&cache.v[dst], v, std::size_t(hd) * 4);
                }
                emit("k", li, t, &k_[std::size_t(t) * std::size_t(nkv) * std::size_t(hd)], std::size_t(nkv * hd));
                emit("v", li, t, &v_[std::size_t(t) * std::size_t(nkv) * std::size_t(hd)], std::size_t(nkv * hd));
            }
        }
        for (int t = 0; t < T; ++t) emit("q", li, t, &q_[std::size_t(t) * std::size_t(nh) * std::size_t(hd)], std::size_t(nh * hd));
        const Cache& cache = caches_[std::size_t(spec.kvSource)];
        pool.parallelFor(std::size_t(T) * std::size_t(nh), [&](std::size_t item) {
            const int t = int(item / std::size_t(nh)), j = int(item % std::size_t(nh)), kvh = j / group;
            const int pos = position_ + t;
            const int first = spec.kind == AttentionKind::Sliding ? std::max(0, pos - c.slidingWindow + 1) : 0;
            const float* q = &q_[(std::size_t(t) * std::size_t(nh) + std::size_t(j)) * std::size_t(hd)];
            float* s = &scores_[item * std::size_t(maxContext_)];
            float mx = -INFINITY;
            for (int p = first; p <= pos; ++p) {
                const float* k = &cache.k[(std::size_t(p % cache.capacity) * std::size_t(nkv) + std::size_t(kvh)) * std::size_t(hd)];
                s[p - first] = dot(q, k, hd);  // scale 1.0: the q/k norms carry it
                mx = std::max(mx, s[p - first]);
            }
            double sum = 0;
            for (int p = first; p <= pos; ++p) sum += (s[p - first] = std::exp(s[p - first] - mx));
            const float inv = float(1.0 / sum);
            float* out = &attn_[(std::size_t(t) * std::size_t(nh) + std::size_t(j)) * std::size_t(hd)];
            std::fill(out, out + hd, 0.0f);
            for (int p = first; p <= pos; ++p) {
                const float wgt = s[p - first] * inv;
                const float* v = &cache.v[(std::size_t(p % cache.capacity) * std::size_t(nkv) + std::size_t(kvh)) * std::size_t(hd)];
                for (int i = 0; i < hd; ++i) out[i] += wgt * v[i];
            }
        });
        matmul(pool, w.o, attn_.data(), T, nh * hd, o_.data(), H);
        for (int t = 0; t < T; ++t) {
            float* o = &o_[std::size_t(t) * std::size_t(H)];
            rmsNorm(o, H, w.postAttentionNorm.data(), eps);
            float* x = &x_[std::size_t(t) * std::size_t(H)];
            for (int i = 0; i < H; ++i) x[i] += o[i];
            emit("attn_out", li, t, o, std::size_t(H));
        }

        // MLP block.
        for (int t = 0; t < T; ++t) {
            float* m = &m_[std::size_t(t) * std::size_t(H)];
            std::memcpy(m, &x_[std::size_t(t) * std::size_t(H)], std::size_t(H) * 4);
            rmsNorm(m, H, w.preFeedforwardNorm.data(), eps);
        }
        matmul(pool, w.gate, m_.data(), T, H, gate_.data(), F);
        matmul(pool, w.up, m_.data(), T, H, up_.data(), F);
        for (std::size_t i = 0; i < std::size_t(T) * std::size_t(F); ++i) gate_[i] = gelu(gate_[i]) * up_[i];
        matmul(pool, w.down, gate_.data(), T, F, ffn_.data(), H);
        for (int t = 0; t < T; ++t) {
            float* f = &ffn_[std::size_t(t) * std::size_t(H)];
            rmsNorm(f, H, w.postFeedforwardNorm.data(), eps);
            float* x = &x_[std::size_t(t) * std::size_t(H)];
            for (int i = 0; i < H; ++i) x[i] += f[i];
            emit("ffn_out", li, t, f, std::size_t(H));
        }

        // PLE block: gate → GELU → × ple[l] → projection → norm → residual.
        matmul(pool, w.pleGate, x_.data(), T, H, g_.data(), P);
        for (int t = 0; t < T; ++t) {
            float* g = &g_[std::size_t(t) * std::size_t(P)];
            const float* ple = &pleProj_[std::size_t(t) * std::size_t(LP) + std::size_t(li) * std::size_t(P)];
            for (int i = 0; i < P; ++i) g[i] = gelu(g[i]) * ple[i];
        }
        matmul(pool, w.pleProj, g_.data(), T, P, g2_.data(), H);
        for (int t = 0; t < T; ++t) {
            float* g2 = &g2_[std::size_t(t) * std::size_t(H)];
            rmsNorm(g2, H, w.postPleNorm.data(), eps);
            float* x = &x_[std::size_t(t) * std::size_t(H)];
            for (int i = 0; i < H; ++i) x[i] = (x[i] + g2[i]) * w.scalar;  // layer_scalar scales the whole stream
            emit("ple_out", li, t, g2, std::size_t(H));
            emit("layer_out", li, t, x, std::size_t(H));
        }
    }

    // §3.5: final norm, tied head, softcap.
    if (logitsOut) {
        const int first = logitsOut == logits_.data() ? T - 1 : 0;
        const int n = T - first;
        for (int t = first; t < T; ++t) {
            rmsNorm(&x_[std::size_t(t) * std::size_t(H)], H, model_.finalNorm().data(), eps);
            emit("final_norm", -1, t, &x_[std::size_t(t) * std::size_t(H)], std::size_t(H));
        }
        const std::size_t V = std::size_t(model_.vocabSize());
        matmul(pool, model_.embedding(), &x_[std::size_t(first) * std::size_t(H)], n, H, logitsOut, std::int64_t(V));
        if (c.finalLogitSoftcap) {
            const float cap = float(*c.finalLogitSoftcap);
            for (std::size_t i = 0; i < std::size_t(n) * V; ++i) logitsOut[i] = cap * std::tanh(logitsOut[i] / cap);
        }
        for (int t = 0; t < n; ++t) emit("logits", -1, first + t, logitsOut + std::size_t(t) * V, V);
    }
    position_ += T;
}

}  // namespace whittle
