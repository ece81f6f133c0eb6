#pragma once
// 4-bit integer weight quantization with round-to-nearest (RTN): each output row of a [N, K] weight is cut
// into groups of `groupSize` consecutive inputs (the last group may be shorter; groupSize 0 means one group
// per row, "per channel"), and each group gets an f16 scale and a 4-bit zero point:
//   w ≈ scale · (q − zero),  q ∈ [0, 15].
// Symmetric: zero = 8 and scale = 2·max|w| / 15, so q − 8 ∈ [−8, 7]. Asymmetric: the group's range, widened
// to include 0, is spread over the 16 codes. These are the conventions of the GPTQ reference quantizer, so
// an RTN tensor is also a valid GPTQ tensor (codes, scales and zeros need no conversion). Scales are rounded
// to f16 before the codes are chosen, so dequantizing from the stored f16 scale is exactly what was meant.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/util/thread_pool.h"

namespace whittle {

struct Int4Options {
    int groupSize = 128;    // 0: per channel (one group spanning K)
    bool symmetric = true;
};

// Unpacked codes and per-group parameters of one [N, K] weight (N outputs, K inputs).
struct Int4Tensor {
    std::int64_t rows = 0, cols = 0;  // N, K
    int groupSize = 0;                // effective: K for per channel
    bool symmetric = true;
    std::vector<std::uint8_t> codes;   // [N, K], 0..15
    std::vector<std::uint16_t> scales;  // [N, G] f16 bits, G = ⌈K / groupSize⌉
    std::vector<std::uint8_t> zeros;    // [N, G], 0..15 (8 when symmetric; 16 only when read from a GPTQ v1 file)
    std::int64_t groups() const { return groupSize ? (cols + groupSize - 1) / groupSize : 0; }
    // Bits stored per weight: 4 for the code plus the group's f16 scale and 4-bit zero, shared by its weights.
    double bitsPerWeight() const;
};

// Throws UsageError naming `tensor` for a group size that is not positive (or 0) or a shape that is empty.
// With a pool, rows are quantized in parallel (each row's result is independent of the split).
Int4Tensor quantizeInt4Rtn(std::span<const float> weight, std::int64_t rows, std::int64_t cols, const Int4Options& options,
                           const std::string& tensor = {}, ThreadPool* pool = nullptr);

// w[n, :] from the codes: scale · (q − zero).
void dequantizeInt4Row(const Int4Tensor& t, std::int64_t row, float* out);

// One group's parameters for values x (the quantizer's step, exposed for GPTQ, which quantizes column by
// column with parameters chosen per group).
struct Int4Group {
    std::uint16_t scaleF16 = 0;
    std::uint8_t zero = 8;
    float scale() const;
    std::uint8_t quantize(float x) const;  // round to nearest (halves to even), clamped to [0, 15]
};
Int4Group int4GroupParams(std::span<const float> values, bool symmetric);

}  // namespace whittle
