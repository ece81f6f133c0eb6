#include "core/quant/int_quant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/io/dtype.h"

namespace whittle {

float IntGroup::scale() const { return f16ToFloat(scaleF16); }

std::uint8_t IntGroup::quantize(float x) const {
    const float s = scale();
    const float q = std::nearbyint(x / s) + float(zero);  // halves to even, as torch.round in the reference quantizer
    return std::uint8_t(std::clamp(q, 0.0f, float(maxCode)));
}

namespace {
std::uint16_t positiveF16(float v) {
    // An all-zero group: any positive scale represents it exactly; 1 keeps the division finite.
    std::uint16_t h = floatToF16(v > 0 ? v : 1.0f);
    if (f16ToFloat(h) == 0.0f) h = floatToF16(6.0e-8f);  // below f16's smallest subnormal
    return h;
}
}  // namespace

IntGroup intGroupParams(std::span<const float> values, int bits, bool symmetric, bool residual) {
    float lo = 0, hi = 0;  // the range always includes 0, so a zero weight stays exactly zero
    for (float v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    IntGroup g;
    g.maxCode = (1 << bits) - 1;
    const float maxCode = float(g.maxCode);
    if (symmetric) {
        g.scaleF16 = positiveF16(2.0f * std::max(-lo, hi) / maxCode);
        g.zero = std::uint16_t((g.maxCode + 1) / 2);
    } else {
        g.scaleF16 = positiveF16((hi - lo) / maxCode);
        g.zero = std::uint16_t(std::clamp(std::nearbyint(-lo / g.scale()), 0.0f, maxCode));
        if (g.zero == 0) {
            // GPTQ v1 stores zero − 1 and cannot hold 0: zero 1, with the maximum on the top code instead.
            g.zero = 1;
            g.scaleF16 = positiveF16(hi / (maxCode - 1.0f));
        }
    }
    if (residual) {
        double sum = 0;
        for (float v : values) sum += std::fabs(v - g.dequantize(g.quantize(v)));
        g.residualF16 = values.empty() ? 0 : floatToF16(float(sum / double(values.size())));
    }
    return g;
}

double intBitsPerWeight(int bits, int groupSize, std::int64_t cols, bool residual) {
    if (cols <= 0) return 0;
    const std::int64_t g = groupSize ? groupSize : cols;
    const double groups = double((cols + g - 1) / g);
    const double groupBits = 16.0 + bits + (residual ? 16.0 : 0.0);  // f16 scale, zero, f16 residual magnitude
    return bits + (residual ? 1.0 : 0.0) + groupBits * groups / double(cols);
}

double IntTensor::bitsPerWeight() const {
    if (rows == 0 || cols == 0) return 0;
    return intBitsPerWeight(bits, groupSize, cols, hasResidual());
}

IntTensor quantizeIntRtn(std::span<const float> w, std::int64_t N, std::int64_t K, const IntOptions& o, const std::string& tensor,
                         ThreadPool* pool) {
    if (N <= 0 || K <= 0) throw UsageError({}, tensor, "cannot quantize an empty weight");
    if (o.groupSize < 0) throw UsageError({}, tensor, "the group size must be positive (or 0 for per channel)");
    if (o.bits < 2 || o.bits > 8) throw UsageError({}, tensor, "integer quantization takes 2 to 8 bits, not " + std::to_string(o.bits));
    if (std::int64_t(w.size()) != N * K) throw Error({}, tensor, "internal: weight size does not match its shape");
    IntTensor t;
    t.rows = N;
    t.cols = K;
    t.groupSize = o.groupSize == 0 ? int(K) : o.groupSize;
    t.symmetric = o.symmetric;
    t.bits = o.bits;
    const std::int64_t G = t.groups();
    t.codes.resize(std::size_t(N * K));
    t.scales.resize(std::size_t(N * G));
    t.zeros.resize(std::size_t(N * G));
    if (o.residual) {
        t.residualSigns.resize(std::size_t(N * K));
        t.residualScales.resize(std::size_t(N * G));
    }
    auto quantizeRow = [&](std::size_t row) {
        const std::int64_t n = std::int64_t(row);
        for (std::int64_t g = 0; g < G; ++g) {
            const std::int64_t k0 = g * t.groupSize, k1 = std::min(K, k0 + t.groupSize);
            const std::span<const float> group = w.subspan(std::size_t(n * K + k0), std::size_t(k1 - k0));
            const IntGroup p = intGroupParams(group, o.bits, o.symmetric, o.residual);
            t.scales[std::size_t(n * G + g)] = p.scaleF16;
            t.zeros[std::size_t(n * G + g)] = p.zero;
            if (o.residual) t.residualScales[std::size_t(n * G + g)] = p.residualF16;
            for (std::int64_t k = k0; k < k1; ++k) {
                const float x = w[std::size_t(n * K + k)];
                const std::uint8_t q = p.quantize(x);
                t.codes[std::size_t(n * K + k)] = q;
                if (o.residual) t.residualSigns[std::size_t(n * K + k)] = x >= p.dequantize(q) ? 1 : 0;
            }
        }
    };
    if (pool) pool->parallelFor(std::size_t(N), [&](std::size_t n) { quantizeRow(n); });
    else
        for (std::size_t n = 0; n < std::size_t(N); ++n) quantizeRow(n);
    return t;
}

void dequantizeIntRow(const IntTensor& t, std::int64_t n, float* out) {
    const std::int64_t G = t.groups();
    for (std::int64_t k = 0; k < t.cols; ++k) {
        const std::size_t gi = std::size_t(n * G + k / t.groupSize);
        out[k] = f16ToFloat(t.scales[gi]) * (float(t.codes[std::size_t(n * t.cols + k)]) - float(t.zeros[gi]));
        if (t.hasResidual()) out[k] += (t.residualSigns[std::size_t(n * t.cols + k)] ? 1.0f : -1.0f) * f16ToFloat(t.residualScales[gi]);
    }
}

}  // namespace whittle
