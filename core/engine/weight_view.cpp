#include "core/engine/weight_view.h"

#include <cstring>

#include "core/io/gptq_layout.h"

namespace whittle {

void WeightView::row(std::int64_t r, float* out) const {
    if (format == WeightFormat::GptqInt4)
        return dequantizeGptqRow(data, gptq.qzeros, gptq.scales, gptq.gIdx, rows, cols, r, out);
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
