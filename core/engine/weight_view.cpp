#include "core/engine/weight_view.h"

#include <cstring>

namespace whittle {

namespace {

std::uint32_t word(const std::byte* base, std::int64_t i) {
    std::uint32_t w;
    std::memcpy(&w, base + 4 * i, 4);  // the mapping may be misaligned
    return w;
}

// W[r, k] = scale[g, r] · (q[k, r] − (stored zero[g, r] + 1)) with g = g_idx[k] (shared/formats.md §2).
void gptqRow(const WeightView& w, std::int64_t r, float* out) {
    const std::int64_t N = w.rows, K = w.cols;
    for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t g = std::int64_t(word(w.gptq.gIdx, k));
        const std::uint32_t q = (word(w.data, (k / 8) * N + r) >> (4 * (k % 8))) & 0xfu;
        const std::uint32_t z = ((word(w.gptq.qzeros, g * (N / 8) + r / 8) >> (4 * (r % 8))) & 0xfu) + 1u;
        std::uint16_t s;
        std::memcpy(&s, w.gptq.scales + 2 * (g * N + r), 2);
        out[k] = f16ToFloat(s) * (float(q) - float(z));
    }
}

}  // namespace

void WeightView::row(std::int64_t r, float* out) const {
    if (format == WeightFormat::GptqInt4) return gptqRow(*this, r, out);
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

float WeightView::at(std::int64_t i) const { return loadAsFloat(dtype, data, std::size_t(i)); }

}  // namespace whittle
