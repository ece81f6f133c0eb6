#pragma once
// NVFP4 weight quantization as NVIDIA ModelOpt writes it (shared/formats.md §1c, §3a). A weight W [N out, K in]
// becomes, per output row, K/16 blocks of 16 consecutive inputs:
//   w ≈ e2m1[code] · e4m3(blockScale) · globalScale
// with a 4-bit E2M1 code per weight (sign bit 3, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6), an FP8 E4M3 (e4m3fn)
// scale per block and one FP32 per-tensor scale, ModelOpt's `weight_scale_2` (a multiplier, not a divisor).
//
// Two byte layouts hold the same codes and scales:
//   ModelOpt `weight` / compressed-tensors `weight_packed`: U8 [N, K/2], byte j = q[2j] | q[2j+1] << 4 (low
//     nibble = even index); `weight_scale` F8_E4M3 [N, K/16] is blockScales as is. compressed-tensors stores
//     the reciprocal of the global scale (`weight_global_scale` = 1 / globalScale); callers invert it.
//   GGUF block_nvfp4 (ggml type 40): 36 bytes per 64 inputs, d[4] (the four blocks' E4M3 bits, sign stripped)
//     then qs[32], where in sub-block s byte s*8+j = q[j] | q[j+8] << 4. The global scale is not in the
//     blocks: llama.cpp keeps it as a separate F32 tensor `<name>.scale` and multiplies the matmul output.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/util/thread_pool.h"

namespace whittle {

inline constexpr std::int64_t kNvfp4BlockSize = 16;       // inputs per E4M3 scale
inline constexpr std::int64_t kNvfp4GgufBlockValues = 64;  // inputs per block_nvfp4
inline constexpr std::int64_t kNvfp4GgufBlockBytes = 36;

// FP8 E4M3 "fn" (bias 7, no infinities, 0x7F and 0xFF are NaN, largest finite 448, subnormals m·2^-9).
float e4m3ToFloat(std::uint8_t bits);
// Round to nearest, ties to even; magnitudes above 448 saturate to 448 (torch's cast would give NaN from
// 464 up; ModelOpt's scales never get there); NaN gives 0x7F with the sign.
std::uint8_t floatToE4m3(float x);

// E2M1 code (0..15) to its value: bit 3 is the sign, bits 2..0 index 0, 0.5, 1, 1.5, 2, 3, 4, 6.
float e2m1ToFloat(std::uint8_t code);
// ModelOpt's _cast_fp4: nearest grid value, ties to the even code (0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2,
// 3.5→4, 5→4), magnitudes above 6 saturate to 6. The sign bit is set for every x < 0, so a small negative
// value gives code 8 (−0), as ModelOpt writes it.
std::uint8_t floatToE2m1(float x);

// Unpacked codes and scales of one [N, K] weight.
struct Nvfp4Tensor {
    std::int64_t rows = 0, cols = 0;       // N, K
    std::vector<std::uint8_t> codes;       // [N, K], 0..15
    std::vector<std::uint8_t> blockScales;  // [N, K/16], E4M3 bits
    float globalScale = 1.0f;              // ModelOpt weight_scale_2, a multiplier
    // Bits stored per weight: the 4-bit code, the 8-bit scale shared by 16 weights, the one FP32 scale.
    double bitsPerWeight() const;
};

// ModelOpt's weight_scale_2 for a weight: amax(|w|) / (6 · 448). Fused projections (q/k/v, gate/up) must
// share one: pass the largest of theirs (the division is monotone, so that is the scale of the group's
// amax) to quantizeNvfp4. A weight whose scale would be 0 or subnormal (amax below about 3e-35, the
// all-zero weight included) gets 1, so nothing divides by zero; its weights all round to code 0.
float nvfp4GlobalScale(std::span<const float> w);

// Quantizes as ModelOpt does (formats.md §1c): globalScale = nvfp4GlobalScale(w) unless given; per block
// scale = e4m3(amax_block / (6 · globalScale)), 1.0 for an all-zero block, at least 2^-9 (the smallest
// subnormal; ModelOpt ≥ 0.45 clamps the same way, 0.43 would store 0 and divide by it); codes =
// floatToE2m1(w / (float(scale) · globalScale)). With a shared scale smaller than this weight's own, block
// scales above 448 saturate (ModelOpt's shared scale is the group's largest, so this does not happen).
// Throws UsageError naming `tensor` when K is not a multiple of 16, the shape is empty, or a given global
// scale is not a positive normal float; FormatError when a weight is NaN or infinite.
// With a pool, rows are quantized in parallel (each row's result is independent of the split).
Nvfp4Tensor quantizeNvfp4(std::span<const float> w, std::int64_t rows, std::int64_t cols, const std::string& tensor,
                          ThreadPool* pool = nullptr, std::optional<float> globalScale = {});

// w[row, :] = e2m1[code] · (float(scale) · globalScale), the product in ModelOpt's order.
void dequantizeNvfp4Row(const Nvfp4Tensor& t, std::int64_t row, float* out);

// ModelOpt / compressed-tensors layout: codes packed to U8 [N, K/2], low nibble = even index.
std::vector<std::uint8_t> packNvfp4(const Nvfp4Tensor& t);
// Back from `weight` U8 [N, K/2], `weight_scale` E4M3 [N, K/16] and weight_scale_2. Throws UsageError
// naming `tensor` for K not a multiple of 16 and FormatError when a buffer's size does not match the shape.
Nvfp4Tensor unpackNvfp4(std::span<const std::uint8_t> packed, std::span<const std::uint8_t> scales, float globalScale,
                        std::int64_t rows, std::int64_t cols, const std::string& tensor);
// One row straight from file bytes (possibly misaligned): packed K/2 bytes, scales K/16 E4M3 bytes.
// Same values as dequantizeNvfp4Row.
void decodeNvfp4Row(const std::byte* packed, const std::byte* scales, float globalScale, std::int64_t cols, float* out);

// GGUF block_nvfp4 layout: N rows of K/64 blocks, 36 bytes each. Throws UsageError naming `tensor` when K is
// not a multiple of 64 (ggml's block). The global scale is not stored; write it as `<name>.scale`.
std::vector<std::uint8_t> packNvfp4Gguf(const Nvfp4Tensor& t, const std::string& tensor);
// Back from the blocks, with the global scale read from `<name>.scale` (1 when absent). Throws UsageError
// for K not a multiple of 64, FormatError for a size mismatch or a scale byte that is not a finite,
// non-negative E4M3 value (0x7F or the sign bit set: ggml and ModelOpt would read those differently).
Nvfp4Tensor unpackNvfp4Gguf(std::span<const std::uint8_t> blocks, float globalScale, std::int64_t rows, std::int64_t cols,
                            const std::string& tensor);
// One row of K values from K/64 blocks as ggml's dequantize_row_nvfp4 computes it: e2m1[code] · e4m3(d),
// WITHOUT the global scale (llama.cpp applies `<name>.scale` after the matmul; multiply by it yourself).
// Decodes d as ggml does: bit 7 ignored, 0x7F read as 0.
void decodeGgufNvfp4Row(const std::byte* blocks, std::int64_t cols, float* out);

}  // namespace whittle
