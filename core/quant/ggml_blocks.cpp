#include "core/quant/ggml_blocks.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/io/dtype.h"

// Every step below is one float operation, in ggml's order: the build uses ISO C++ (no FMA contraction) and no
// fast-math, so each rounds exactly as in ggml's C. roundf (halves away from zero) and the truncating int cast
// are ggml's choices, not torch's halves-to-even.

namespace whittle {

namespace {

void checkRow(std::size_t n, const char* type, const std::string& tensor) {
    if (n == 0 || n % kGgmlBlockValues != 0)
        throw UsageError({}, tensor,
                         std::string(type) + " needs rows whose length is a multiple of 32, and this tensor's rows have " +
                             std::to_string(n) + " values");
}

void storeF16(std::uint8_t* p, float d) {
    const std::uint16_t h = floatToF16(d);
    p[0] = std::uint8_t(h & 0xFF);  // GGUF is little-endian
    p[1] = std::uint8_t(h >> 8);
}

float loadF16(const std::byte* p) {
    return f16ToFloat(std::uint16_t(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8)));
}

}  // namespace

void quantizeRowQ8_0(std::span<const float> row, std::uint8_t* out, const std::string& tensor) {
    checkRow(row.size(), "Q8_0", tensor);
    for (std::size_t i = 0; i < row.size(); i += kGgmlBlockValues, out += kQ8_0BlockBytes) {
        const float* x = row.data() + i;
        float amax = 0.0f;
        for (int j = 0; j < kGgmlBlockValues; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        storeF16(out, d);
        for (int j = 0; j < kGgmlBlockValues; ++j) out[2 + j] = std::uint8_t(std::int8_t(std::round(x[j] * id)));
    }
}

void quantizeRowQ4_0(std::span<const float> row, std::uint8_t* out, const std::string& tensor) {
    checkRow(row.size(), "Q4_0", tensor);
    constexpr int half = kGgmlBlockValues / 2;
    for (std::size_t i = 0; i < row.size(); i += kGgmlBlockValues, out += kQ4_0BlockBytes) {
        const float* x = row.data() + i;
        float amax = 0.0f, max = 0.0f;  // the first value of largest magnitude, with its sign
        for (int j = 0; j < kGgmlBlockValues; ++j)
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        // d is negative when max is positive: max itself lands on q = 0 (−8 · d), the one end of [−8, 7]
        // that exists, and −max would need 8, which clamps to 7.
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        storeF16(out, d);
        auto code = [&](float v) { return std::min(15, int(v * id + 8.5f)); };  // truncation: v·id + 8.5 ≥ 0
        for (int j = 0; j < half; ++j) out[2 + j] = std::uint8_t(code(x[j]) | (code(x[j + half]) << 4));
    }
}

void packRowQ4_0(std::span<const std::uint8_t> codes, std::span<const std::uint16_t> d, std::uint8_t* out) {
    constexpr std::size_t half = kGgmlBlockValues / 2;
    for (std::size_t b = 0; b * kGgmlBlockValues < codes.size(); ++b, out += kQ4_0BlockBytes) {
        out[0] = std::uint8_t(d[b] & 0xFF);
        out[1] = std::uint8_t(d[b] >> 8);
        const std::uint8_t* q = codes.data() + b * kGgmlBlockValues;
        for (std::size_t j = 0; j < half; ++j) out[2 + j] = std::uint8_t((q[j] & 0x0F) | ((q[j + half] & 0x0F) << 4));
    }
}

void packRowQ8_0(std::span<const std::int8_t> codes, std::span<const std::uint16_t> d, std::uint8_t* out) {
    for (std::size_t b = 0; b * kGgmlBlockValues < codes.size(); ++b, out += kQ8_0BlockBytes) {
        out[0] = std::uint8_t(d[b] & 0xFF);
        out[1] = std::uint8_t(d[b] >> 8);
        for (std::size_t j = 0; j < std::size_t(kGgmlBlockValues); ++j) out[2 + j] = std::uint8_t(codes[b * kGgmlBlockValues + j]);
    }
}

void dequantizeRowQ8_0(const std::byte* blocks, std::int64_t K, float* out) {
    for (std::int64_t i = 0; i < K / kGgmlBlockValues; ++i, blocks += kQ8_0BlockBytes) {
        const float d = loadF16(blocks);
        for (int j = 0; j < kGgmlBlockValues; ++j)
            out[i * kGgmlBlockValues + j] = float(std::int8_t(std::to_integer<std::uint8_t>(blocks[2 + j]))) * d;
    }
}

void dequantizeRowQ4_0(const std::byte* blocks, std::int64_t K, float* out) {
    constexpr int half = kGgmlBlockValues / 2;
    for (std::int64_t i = 0; i < K / kGgmlBlockValues; ++i, blocks += kQ4_0BlockBytes) {
        const float d = loadF16(blocks);
        for (int j = 0; j < half; ++j) {
            const auto b = std::to_integer<int>(blocks[2 + j]);
            out[i * kGgmlBlockValues + j] = float((b & 0x0F) - 8) * d;
            out[i * kGgmlBlockValues + j + half] = float((b >> 4) - 8) * d;
        }
    }
}

}  // namespace whittle
