#pragma once
// GGUF's two simplest block formats, bit-exact with ggml's reference quantizers (quantize_row_q8_0_ref and
// quantize_row_q4_0_ref in ggml/src/ggml-quants.c), so a Whittle GGUF holds the bytes llama.cpp's own
// converter would write. Each block covers 32 consecutive values of a row and starts with an f16 scale d:
//   Q8_0: 34 bytes = d (f16, little-endian) + 32 int8 q;   x ≈ d · q,        d = amax / 127
//   Q4_0: 18 bytes = d (f16, little-endian) + 16 bytes;    x ≈ d · (q − 8),  d = max / −8, where max is the
//         value of largest magnitude with its sign; byte j = q[j] | q[j + 16] << 4.
// Both quantize with the unrounded float d (id = 1/d, q from x · id) and store d rounded to f16, as ggml does.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace whittle {

inline constexpr std::int64_t kGgmlBlockValues = 32;  // QK8_0 = QK4_0 = 32
inline constexpr std::int64_t kQ8_0BlockBytes = 34;
inline constexpr std::int64_t kQ4_0BlockBytes = 18;

// Bytes of one row of K values (K a multiple of 32).
constexpr std::size_t q8_0RowBytes(std::int64_t K) { return std::size_t(K / kGgmlBlockValues * kQ8_0BlockBytes); }
constexpr std::size_t q4_0RowBytes(std::int64_t K) { return std::size_t(K / kGgmlBlockValues * kQ4_0BlockBytes); }

// Quantizes one row into `out` (q8_0RowBytes / q4_0RowBytes of row.size() bytes). Throws UsageError naming
// `tensor` when the row length is not a multiple of 32.
void quantizeRowQ8_0(std::span<const float> row, std::uint8_t* out, const std::string& tensor);
void quantizeRowQ4_0(std::span<const float> row, std::uint8_t* out, const std::string& tensor);

// A row's blocks from codes already on the block format's grid, with one f16 scale (bits) per 32-value block:
// Q4_0 from codes 0 … 15 (x = d · (q − 8)), Q8_0 from codes −128 … 127 (x = d · q). The decoded values are
// exactly d · (q − 8) and d · q: the lossless path for symmetric INT4 / INT8 codes whose groups are whole
// blocks (GPTQ g32/g64/g128 symmetric → Q4_0). codes.size() is the row length, a multiple of 32.
void packRowQ4_0(std::span<const std::uint8_t> codes, std::span<const std::uint16_t> blockScales, std::uint8_t* out);
void packRowQ8_0(std::span<const std::int8_t> codes, std::span<const std::uint16_t> blockScales, std::uint8_t* out);

// One row of K values (a multiple of 32) from its blocks as they lie in a file (possibly misaligned), as
// ggml's dequantize_row_q8_0 / dequantize_row_q4_0 compute them.
void dequantizeRowQ8_0(const std::byte* blocks, std::int64_t K, float* out);
void dequantizeRowQ4_0(const std::byte* blocks, std::int64_t K, float* out);

}  // namespace whittle
