#include "core/engine/weight_view.h"

#include <cstring>

#include "core/error.h"
#include "core/io/gptq_layout.h"
#include "core/quant/ggml_blocks.h"
#include "core/quant/nvfp4.h"

namespace whittle {

std::size_t weightRowBytes(WeightFormat f, std::int64_t cols) {
    switch (f) {
        case WeightFormat::GgufQ8_0: return q8_0RowBytes(cols);
        case WeightFormat::GgufQ4_0: return q4_0RowBytes(cols);
        case WeightFormat::GgufNvfp4: return std::size_t(cols / kNvfp4GgufBlockValues * kNvfp4GgufBlockBytes);
        default: return 0;
    }
}

void WeightView::row(std::int64_t r, float* out) const {
    switch (format) {
        case WeightFormat::Dense: break;
        case WeightFormat::GptqInt:
            return dequantizeGptqRow(GptqWords{data, gptq.qzeros, gptq.scales, gptq.gIdx, gptq.qresidual, gptq.residualScales, gptq.bits}, rows,
                                     cols, r, out);
        case WeightFormat::GgufQ8_0: return dequantizeRowQ8_0(data + std::size_t(r) * weightRowBytes(format, cols), cols, out);
        case WeightFormat::GgufQ4_0: return dequantizeRowQ4_0(data + std::size_t(r) * weightRowBytes(format, cols), cols, out);
        case WeightFormat::Nvfp4:
            return decodeNvfp4Row(data + std::size_t(r) * std::size_t(cols / 2), nvfp4BlockScales + std::size_t(r) * std::size_t(cols / kNvfp4BlockSize),
                                  nvfp4Scale, cols, out);
        case WeightFormat::GgufNvfp4:
            decodeGgufNvfp4Row(data + std::size_t(r) * weightRowBytes(format, cols), cols, out);
            // Applied to the weights here rather than to the matmul output as llama.cpp does: the same product,
            // up to one float rounding per element.
            if (nvfp4Scale != 1.0f)
                for (std::int64_t i = 0; i < cols; ++i) out[i] *= nvfp4Scale;
            return;
    }
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

float WeightView::at(std::int64_t i) const {
    if (format != WeightFormat::Dense) throw Error({}, name, "internal: element access needs a dense tensor");
    return loadAsFloat(dtype, data, std::size_t(i));
}

}  // namespace whittle
