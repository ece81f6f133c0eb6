#pragma once
// The GPTQ v1 layout of one 4-bit linear layer, as AutoGPTQ, GPTQModel, transformers and vLLM load it
// (shared/formats.md §2). For a weight W [N out, K in] with g = group size and G = ⌈K / g⌉ groups:
//   qweight I32 [K/8, N]  word (i, n) holds q[8i + j, n] in bits 4j..4j+3 (j = 0 in the low bits)
//   qzeros  I32 [G, N/8]  word (G, c) holds zero[G, 8c + j] − 1 in bits 4j..4j+3 (v1 stores zero − 1)
//   scales  F16 [G, N]
//   g_idx   I32 [K]       the group of input k
//   W[n, k] = scales[g_idx[k], n] · (q[k, n] − (stored zero + 1))
// With act-order and static groups g_idx[k] = k / g, so kernels need no reordering.
#include <cstdint>
#include <string>
#include <vector>

#include "core/quant/int4.h"

namespace whittle {

struct GptqTensors {
    std::int64_t outFeatures = 0, inFeatures = 0;  // N, K
    int groupSize = 0;
    std::vector<std::int32_t> qweight;  // [K/8, N]
    std::vector<std::int32_t> qzeros;   // [G, N/8]
    std::vector<std::uint16_t> scales;  // [G, N], f16 bits
    std::vector<std::int32_t> gIdx;     // [K]
    std::int64_t groups() const { return (inFeatures + groupSize - 1) / groupSize; }
};

// Packs RTN/GPTQ codes. Refuses (UsageError naming the tensor) K or N not a multiple of 8, which the
// 32-bit words cannot express.
// With a pool, blocks of 8 outputs (which share qzeros words) are packed in parallel.
GptqTensors packGptqV1(const Int4Tensor& t, const std::string& tensor, ThreadPool* pool = nullptr);

// Back to codes, scales and zeros; exact inverse of packGptqV1 for contiguous groups (g_idx[k] = k / g).
// Throws FormatError naming the tensor when g_idx is not contiguous (act-order without static groups).
Int4Tensor unpackGptqV1(const GptqTensors& g, const std::string& tensor);

// W[n, :] decoded straight from the packed words as they lie in a file (little-endian, possibly misaligned):
// qweight I32 [K/8, N], qzeros I32 [G, N/8], scales F16 [G, N], gIdx I32 [K]. The one GPTQ decoder: the
// engines' weight views and the overload below both call it.
void dequantizeGptqRow(const std::byte* qweight, const std::byte* qzeros, const std::byte* scales, const std::byte* gIdx,
                       std::int64_t outFeatures, std::int64_t inFeatures, std::int64_t n, float* out);

// The same from packed tensors in memory. With useGIdx each input's group comes from g_idx, otherwise from
// k / groupSize; the two agree for the checkpoints Whittle writes.
void dequantizeGptqRow(const GptqTensors& g, std::int64_t n, float* out, bool useGIdx = true);

}  // namespace whittle
