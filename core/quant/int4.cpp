#include "core/quant/int4.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/io/dtype.h"

namespace whittle {

namespace {
constexpr int kMaxCode = 15;
}

float Int4Group::scale() const { return f16ToFloat(scaleF16); }

std::uint8_t Int4Group::quantize(float x) const {
    const float s = scale();
    const float q = std::nearbyint(x / s) + float(zero);  // halves to even, as torch.round in the reference quantizer
    return std::uint8_t(std::clamp(q, 0.0f, float(kMaxCode)));
}

Int4Group int4GroupParams(std::span<const float> values, bool symmetric) {
    float lo = 0, hi = 0;  // the range always includes 0, so a zero weight stays exactly zero
    for (float v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    Int4Group g;
    float scale;
    if (symmetric) {
        const float m = std::max(-lo, hi);
        scale = 2.0f * m / float(kMaxCode);
        g.zero = (kMaxCode + 1) / 2;
    } else {
        scale = (hi - lo) / float(kMaxCode);
    }
    // An all-zero group: any positive scale represents it exactly; 1 keeps the division finite.
    g.scaleF16 = floatToF16(scale > 0 ? scale : 1.0f);
    if (f16ToFloat(g.scaleF16) == 0.0f) g.scaleF16 = floatToF16(6.0e-8f);  // below f16's smallest subnormal
    if (!symmetric) g.zero = std::uint8_t(std::clamp(std::nearbyint(-lo / g.scale()), 0.0f, float(kMaxCode)));
    return g;
}

double Int4Tensor::bitsPerWeight() const {
    if (rows == 0 || cols == 0) return 0;
    const double groupBits = 16.0 + 4.0;  // f16 scale + 4-bit zero
    return 4.0 + groupBits * double(groups()) / double(cols);
}

Int4Tensor quantizeInt4Rtn(std::span<const float> w, std::int64_t N, std::int64_t K, const Int4Options& o, const std::string& tensor,
                           ThreadPool* pool) {
    if (N <= 0 || K <= 0) throw UsageError({}, tensor, "cannot quantize an empty weight");
    if (o.groupSize < 0) throw UsageError({}, tensor, "the group size must be positive (or 0 for per channel)");
    if (std::int64_t(w.size()) != N * K) throw Error({}, tensor, "internal: weight size does not match its shape");
    Int4Tensor t;
    t.rows = N;
    t.cols = K;
    t.groupSize = o.groupSize == 0 ? int(K) : o.groupSize;
    t.symmetric = o.symmetric;
    const std::int64_t G = t.groups();
    t.codes.resize(std::size_t(N * K));
    t.scales.resize(std::size_t(N * G));
    t.zeros.resize(std::size_t(N * G));
    auto quantizeRow = [&](std::size_t row) {
        const std::int64_t n = std::int64_t(row);
        for (std::int64_t g = 0; g < G; ++g) {
            const std::int64_t k0 = g * t.groupSize, k1 = std::min(K, k0 + t.groupSize);
            const std::span<const float> group = w.subspan(std::size_t(n * K + k0), std::size_t(k1 - k0));
            const Int4Group p = int4GroupParams(group, o.symmetric);
            t.scales[std::size_t(n * G + g)] = p.scaleF16;
            t.zeros[std::size_t(n * G + g)] = p.zero;
            for (std::int64_t k = k0; k < k1; ++k) t.codes[std::size_t(n * K + k)] = p.quantize(w[std::size_t(n * K + k)]);
        }
    };
    if (pool) pool->parallelFor(std::size_t(N), [&](std::size_t n) { quantizeRow(n); });
    else
        for (std::size_t n = 0; n < std::size_t(N); ++n) quantizeRow(n);
    return t;
}

void dequantizeInt4Row(const Int4Tensor& t, std::int64_t n, float* out) {
    const std::int64_t G = t.groups();
    for (std::int64_t k = 0; k < t.cols; ++k) {
        const std::int64_t g = k / t.groupSize;
        const float s = f16ToFloat(t.scales[std::size_t(n * G + g)]);
        out[k] = s * (float(t.codes[std::size_t(n * t.cols + k)]) - float(t.zeros[std::size_t(n * G + g)]));
    }
}

}  // namespace whittle
