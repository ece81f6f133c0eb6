#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace whittle {

// Declared in the safetensors library's alignment order (its writer sorts by this, descending).
enum class DType : std::uint8_t {
    BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
};

std::optional<DType> parseDType(std::string_view name);
std::string_view dtypeName(DType d);
std::size_t dtypeSize(DType d);
bool isFloat(DType d);

// Element conversions that never cast a possibly misaligned pointer.
float bf16ToFloat(std::uint16_t v);
std::uint16_t floatToBf16(float f);  // round to nearest even; NaN stays NaN
float f16ToFloat(std::uint16_t v);
std::uint16_t floatToF16(float f);

// Reads element i of a raw buffer of dtype d as float (float dtypes and integers).
float loadAsFloat(DType d, const std::byte* base, std::size_t i);
// Writes v as element i of a raw buffer of float dtype d (F32, F16, BF16; rounded to nearest even).
// Throws Error for any other dtype.
void storeFloat(DType d, std::byte* base, std::size_t i, float v);

}  // namespace whittle
