#pragma once
// Integer weight quantization with round-to-nearest (RTN), 2 to 8 bits: each output row of a [N, K] weight is
// cut into groups of `groupSize` consecutive inputs (the last group may be shorter; groupSize 0 means one
// group per row, "per channel"), and each group gets an f16 scale and a `bits`-bit zero point:
//   w ≈ scale · (q − zero),  q ∈ [0, 2^bits − 1].
// Symmetric: zero = 2^(bits−1) and scale = 2·max|w| / (2^bits − 1). Asymmetric: the group's range, widened to
// include 0, is spread over the codes. These are the conventions of the GPTQ reference quantizer, so an RTN
// tensor is also a valid GPTQ tensor (codes, scales and zeros need no conversion). Scales are rounded to f16
// before the codes are chosen, so dequantizing from the stored f16 scale is exactly what was meant.
// One departure: GPTQ v1 files store zero − 1, so an asymmetric zero of 0 (a group with nothing below
// −scale/2) has no v1 form; such a group takes zero 1 and the scale that puts its maximum on the top code.
//
// Binary residual (the mixed bit budget's "INT2 + residual"): a second, 1-bit pass over what the codes leave,
//   w ≈ scale · (q − zero) + r · (b ? +1 : −1),
// with one f16 magnitude r per group (the mean |error| of the group's codes, which is the least-squares
// magnitude for those signs) and one sign bit b per weight.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/util/thread_pool.h"

namespace whittle {

struct IntOptions {
    int groupSize = 128;  // 0: per channel (one group spanning K)
    bool symmetric = true;
    int bits = 4;           // 2 … 8
    bool residual = false;  // add a binary residual
};

// Unpacked codes and per-group parameters of one [N, K] weight (N outputs, K inputs).
struct IntTensor {
    std::int64_t rows = 0, cols = 0;  // N, K
    int groupSize = 0;                // effective: K for per channel
    bool symmetric = true;
    int bits = 4;
    std::vector<std::uint8_t> codes;    // [N, K], 0 … 2^bits − 1
    std::vector<std::uint16_t> scales;  // [N, G] f16 bits, G = ⌈K / groupSize⌉
    std::vector<std::uint16_t> zeros;   // [N, G], 1 … 2^bits (2^(bits−1) when symmetric; 2^bits only when read from a v1 file)
    // Binary residual (empty when none): signs [N, K] (1: +r, 0: −r) and magnitudes [N, G] f16 bits.
    std::vector<std::uint8_t> residualSigns;
    std::vector<std::uint16_t> residualScales;
    bool hasResidual() const { return !residualScales.empty(); }
    std::int64_t groups() const { return groupSize ? (cols + groupSize - 1) / groupSize : 0; }
    // Bits stored per weight: the code plus the group's f16 scale and `bits`-bit zero shared by its weights,
    // and with a residual its sign bit and f16 magnitude. (GPTQ files add g_idx: 32 bits per input.)
    double bitsPerWeight() const;
};

// Bits per weight of a format without building a tensor: see IntTensor::bitsPerWeight.
double intBitsPerWeight(int bits, int groupSize, std::int64_t cols, bool residual);

// Throws UsageError naming `tensor` for a group size that is not positive (or 0), bits outside 2 … 8 or a shape
// that is empty. With a pool, rows are quantized in parallel (each row's result is independent of the split).
IntTensor quantizeIntRtn(std::span<const float> weight, std::int64_t rows, std::int64_t cols, const IntOptions& options,
                         const std::string& tensor = {}, ThreadPool* pool = nullptr);

// w[n, :] from the codes: scale · (q − zero) [+ r · ±1].
void dequantizeIntRow(const IntTensor& t, std::int64_t row, float* out);

// One group's parameters (the quantizer's step, exposed for GPTQ, which quantizes column by column with
// parameters chosen per group).
struct IntGroup {
    std::uint16_t scaleF16 = 0;
    std::uint16_t zero = 8;
    int maxCode = 15;
    std::uint16_t residualF16 = 0;  // the residual's magnitude (0 without one)
    float scale() const;
    std::uint8_t quantize(float x) const;  // round to nearest (halves to even), clamped to [0, maxCode]
    float dequantize(std::uint8_t q) const { return scale() * (float(q) - float(zero)); }
};
// Scale and zero from the group's values; with `residual`, also r = mean |x − dequantize(quantize(x))|.
IntGroup intGroupParams(std::span<const float> values, int bits, bool symmetric, bool residual = false);

}  // namespace whittle
