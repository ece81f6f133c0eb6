#include "core/reference/ops.h"

#include "core/io/dtype.h"
#include "core/quant/ggml_blocks.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace whittle::ops {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
}

float geluTanh(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))); }

float dot(const float* a, const float* b, std::int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
    float tail = 0;
    for (; i < n; ++i) tail += a[i] * b[i];
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

void rmsNorm(std::span<float> x, const float* w, float eps) {
    double ss = 0;
    for (float v : x) ss += double(v) * double(v);
    const float scale = float(1.0 / std::sqrt(ss / double(x.size()) + double(eps)));
    if (w)
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = x[i] * scale * w[i];
    else
        for (float& v : x) v *= scale;
}

void rope(std::span<float> x, std::span<const float> invFreq, int pos) {
    const std::size_t half = x.size() / 2;
    for (std::size_t i = 0; i < half; ++i) {
        if (invFreq[i] == 0.0f) continue;  // an identity pair
        float c, s;
        ropeCosSin(invFreq[i], pos, c, s);
        const float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

void ropeCosSin(float invFreq, int position, float& c, float& s) {
    if (invFreq == 0.0f) {
        c = 1.0f;
        s = 0.0f;
        return;
    }
    const double angle = double(position) * double(invFreq);
    c = float(std::cos(angle));
    s = float(std::sin(angle));
}

void softcap(std::span<float> logits, float cap) {
    for (float& v : logits) v = cap * std::tanh(v / cap);
}

void gatedGelu(std::span<float> gate, std::span<const float> up) {
    for (std::size_t i = 0; i < gate.size(); ++i) gate[i] = geluTanh(gate[i]) * up[i];
}

namespace {
// The input as the weight's InputRounding asks (a copy; x itself is left alone), or x when it asks nothing.
const float* roundedInput(const WeightView& w, const float* x, int T, std::int64_t& ldx, std::vector<float>& buf) {
    if (w.inputRounding == WeightView::InputRounding::None) return x;
    const std::size_t K = std::size_t(w.cols);
    buf.resize(std::size_t(T) * K);
    std::vector<std::uint8_t> blocks(q8_0RowBytes(w.cols));
    for (int t = 0; t < T; ++t) {
        const float* src = x + std::size_t(t) * std::size_t(ldx);
        float* dst = buf.data() + std::size_t(t) * K;
        if (w.inputRounding == WeightView::InputRounding::F16) {
            for (std::size_t k = 0; k < K; ++k) dst[k] = f16ToFloat(floatToF16(src[k]));
        } else {
            quantizeRowQ8_0(std::span<const float>(src, K), blocks.data(), w.name);
            dequantizeRowQ8_0(reinterpret_cast<const std::byte*>(blocks.data()), w.cols, dst);
        }
    }
    ldx = std::int64_t(K);
    return buf.data();
}
}  // namespace

void matmul(ThreadPool& pool, const WeightView& w, const float* xIn, int T, std::int64_t ldx, float* y, std::int64_t ldy) {
    std::vector<float> rounded;
    const float* x = roundedInput(w, xIn, T, ldx, rounded);
    pool.parallelFor(std::size_t(w.rows), [&](std::size_t r) {
        thread_local std::vector<float> row;
        if (row.size() < std::size_t(w.cols)) row.resize(std::size_t(w.cols));
        w.row(std::int64_t(r), row.data());
        for (int t = 0; t < T; ++t) y[std::size_t(t) * std::size_t(ldy) + r] = dot(row.data(), x + std::size_t(t) * std::size_t(ldx), w.cols);
    });
}

void matvec(const WeightView& w, const float* xIn, float* y) {
    std::vector<float> rounded;
    std::int64_t ldx = w.cols;
    const float* x = roundedInput(w, xIn, 1, ldx, rounded);
    std::vector<float> row(std::size_t(w.cols));
    for (std::int64_t r = 0; r < w.rows; ++r) {
        w.row(r, row.data());
        y[r] = dot(row.data(), x, w.cols);
    }
}

int firstAttendedPosition(int position, bool sliding, int window) { return sliding ? std::max(0, position - window + 1) : 0; }

void attendHead(const float* q, const KvCacheView& c, int kvHead, int first, int last, float* s, float* out) {
    const std::size_t hd = std::size_t(c.headDim);
    auto at = [&](const float* base, int p) {
        return base + (std::size_t(p % c.capacity) * std::size_t(c.kvHeads) + std::size_t(kvHead)) * hd;
    };
    float mx = -INFINITY;
    for (int p = first; p <= last; ++p) {
        s[p - first] = dot(q, at(c.k, p), c.headDim);
        mx = std::max(mx, s[p - first]);
    }
    double sum = 0;
    for (int p = first; p <= last; ++p) sum += (s[p - first] = std::exp(s[p - first] - mx));
    const float inv = float(1.0 / sum);
    std::fill(out, out + hd, 0.0f);
    for (int p = first; p <= last; ++p) {
        const float wgt = s[p - first] * inv;
        const float* v = at(c.v, p);
        for (std::size_t i = 0; i < hd; ++i) out[i] += wgt * v[i];
    }
}

void combinePle(std::span<float> proj, std::span<const float> tokenRow, int L, int P, int H, const float* norm, float eps) {
    const float projScale = 1.0f / std::sqrt(float(H)), rowScale = std::sqrt(float(P)), mix = float(1.0 / std::sqrt(2.0));
    for (int l = 0; l < L; ++l) {
        const std::span<float> s = proj.subspan(std::size_t(l) * std::size_t(P), std::size_t(P));
        for (float& v : s) v *= projScale;
        rmsNorm(s, norm, eps);
        const float* row = tokenRow.data() + std::size_t(l) * std::size_t(P);
        for (int i = 0; i < P; ++i) s[std::size_t(i)] = (s[std::size_t(i)] + row[i] * rowScale) * mix;
    }
}

}  // namespace whittle::ops
