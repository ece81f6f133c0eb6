#pragma once
// The GPTQ v1 layout of one linear layer with b-bit codes (b ∈ {2, 3, 4, 8}), as AutoGPTQ, GPTQModel,
// transformers and vLLM load it (shared/formats.md §2). For a weight W [N out, K in] with g = group size and
// G = ⌈K / g⌉ groups:
//   qweight I32 [K·b/32, N]  column n's codes q[0..K, n] as one little-endian bit stream of b-bit values
//                            over the words qweight[0, n], qweight[1, n], … (3-bit values straddle words,
//                            as AutoGPTQ's pack does; for b = 4, word (i, n) holds q[8i + j, n] in bits 4j…)
//   qzeros  I32 [G, N·b/32]  row G's zero − 1 values (v1 stores zero − 1) as one bit stream along N
//   scales  F16 [G, N]
//   g_idx   I32 [K]          the group of input k
//   W[n, k] = scales[g_idx[k], n] · (q[k, n] − (stored zero + 1))
// With act-order and static groups g_idx[k] = k / g, so kernels need no reordering.
// Whittle's binary residual (int_quant.h) adds two tensors no other loader knows:
//   qresidual        I32 [K/32, N]  sign bits along K, as a 1-bit qweight (1: +r)
//   residual_scales  F16 [G, N]     the magnitude r per group
//   W[n, k] += r[g_idx[k], n] · (bit ? +1 : −1)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/quant/int_quant.h"

namespace whittle {

struct GptqTensors {
    std::int64_t outFeatures = 0, inFeatures = 0;  // N, K
    int groupSize = 0;
    int bits = 4;
    std::vector<std::int32_t> qweight;  // [K·b/32, N]
    std::vector<std::int32_t> qzeros;   // [G, N·b/32]
    std::vector<std::uint16_t> scales;  // [G, N], f16 bits
    std::vector<std::int32_t> gIdx;     // [K]
    std::vector<std::int32_t> qresidual;        // [K/32, N] or empty
    std::vector<std::uint16_t> residualScales;  // [G, N] or empty
    std::int64_t groups() const { return (inFeatures + groupSize - 1) / groupSize; }
};

// Whether GPTQ v1 can hold a [N, K] weight in b bits (with a residual): the code and zero streams must fill
// whole words. Empty when it can; otherwise the reason, for messages.
std::string gptqShapeProblem(int bits, bool residual, std::int64_t outFeatures, std::int64_t inFeatures);

// Packs RTN/GPTQ codes. Refuses (UsageError naming the tensor) a shape whose streams do not fill whole 32-bit
// words and a zero point of 0, which v1 cannot store. With a pool, outputs are packed in parallel.
GptqTensors packGptqV1(const IntTensor& t, const std::string& tensor, ThreadPool* pool = nullptr);

// Back to codes, scales, zeros (and residual); exact inverse of packGptqV1 for contiguous groups (g_idx[k] = k / g).
// Throws FormatError naming the tensor when g_idx is not contiguous (act-order without static groups).
IntTensor unpackGptqV1(const GptqTensors& g, const std::string& tensor);

// The packed words of one GPTQ linear as they lie in a file (little-endian, possibly misaligned).
struct GptqWords {
    const std::byte* qweight = nullptr;         // I32 [K·b/32, N]
    const std::byte* qzeros = nullptr;          // I32 [G, N·b/32]
    const std::byte* scales = nullptr;          // F16 [G, N]
    const std::byte* gIdx = nullptr;            // I32 [K]
    const std::byte* qresidual = nullptr;       // I32 [K/32, N], or null
    const std::byte* residualScales = nullptr;  // F16 [G, N], or null
    int bits = 4;
};

// W[n, :] decoded straight from the packed words. The one GPTQ decoder: the engines' weight views and the
// overload below both call it.
void dequantizeGptqRow(const GptqWords& words, std::int64_t outFeatures, std::int64_t inFeatures, std::int64_t n, float* out);

// The same from packed tensors in memory. With useGIdx each input's group comes from g_idx, otherwise from
// k / groupSize; the two agree for the checkpoints Whittle writes.
void dequantizeGptqRow(const GptqTensors& g, std::int64_t n, float* out, bool useGIdx = true);

}  // namespace whittle
