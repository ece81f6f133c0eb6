#include "core/io/dtype.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "core/error.h"

namespace whittle {

namespace {
struct DTypeInfo {
    DType d;
    std::string_view name;
    std::size_t size;
};
constexpr std::array<DTypeInfo, 15> kInfo{{
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},       {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},   {DType::F16, "F16", 2},     {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},   {DType::U32, "U32", 4},     {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},   {DType::I64, "I64", 8},     {DType::U64, "U64", 8},
}};

template <class T>
T loadUnaligned(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace

std::optional<DType> parseDType(std::string_view name) {
    for (const auto& i : kInfo)
        if (i.name == name) return i.d;
    return std::nullopt;
}

std::string_view dtypeName(DType d) { return kInfo[static_cast<std::size_t>(d)].name; }
std::size_t dtypeSize(DType d) { return kInfo[static_cast<std::size_t>(d)].size; }

bool isFloat(DType d) {
    switch (d) {
    case DType::F8_E5M2: case DType::F8_E4M3: case DType::F16: case DType::BF16:
    case DType::F32: case DType::F64: return true;
    default: return false;
    }
}

float bf16ToFloat(std::uint16_t v) { return std::bit_cast<float>(std::uint32_t(v) << 16); }

std::uint16_t floatToBf16(float f) {
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if (std::isnan(f)) return std::uint16_t((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return std::uint16_t(u >> 16);
}

float f16ToFloat(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
    std::uint32_t exp = (h >> 10) & 0x1f;
    std::uint32_t mant = h & 0x3ff;
    std::uint32_t out;
    if (exp == 0) {
        if (mant == 0) {
            out = sign;
        } else {  // subnormal: renormalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; --exp; }
            mant &= 0x3ff;
            out = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        out = sign | 0x7f800000u | (mant << 13);
    } else {
        out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return std::bit_cast<float>(out);
}

std::uint16_t floatToF16(float f) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000);
    const std::uint32_t absu = u & 0x7fffffffu;
    if (absu >= 0x7f800000u) return sign | (absu > 0x7f800000u ? 0x7e00 : 0x7c00);
    if (absu >= 0x477ff000u) return sign | 0x7c00;  // rounds to inf
    if (absu < 0x38800000u) {                       // subnormal or zero in f16
        const float a = std::bit_cast<float>(absu);
        return sign | std::uint16_t(std::nearbyint(a * 16777216.0f));  // 2^24
    }
    std::uint32_t m = absu + 0xfff + ((absu >> 13) & 1) - (112u << 23);
    return sign | std::uint16_t(m >> 13);
}

float loadAsFloat(DType d, const std::byte* base, std::size_t i) {
    const std::byte* p = base + i * dtypeSize(d);
    switch (d) {
    case DType::BF16: return bf16ToFloat(loadUnaligned<std::uint16_t>(p));
    case DType::F16: return f16ToFloat(loadUnaligned<std::uint16_t>(p));
    case DType::F32: return loadUnaligned<float>(p);
    case DType::F64: return float(loadUnaligned<double>(p));
    case DType::BOOL: case DType::U8: return float(loadUnaligned<std::uint8_t>(p));
    case DType::I8: return float(loadUnaligned<std::int8_t>(p));
    case DType::I16: return float(loadUnaligned<std::int16_t>(p));
    case DType::U16: return float(loadUnaligned<std::uint16_t>(p));
    case DType::I32: return float(loadUnaligned<std::int32_t>(p));
    case DType::U32: return float(loadUnaligned<std::uint32_t>(p));
    case DType::I64: return float(loadUnaligned<std::int64_t>(p));
    case DType::U64: return float(loadUnaligned<std::uint64_t>(p));
    case DType::F8_E4M3: {
        const auto b = std::to_integer<std::uint8_t>(*p);
        const int s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
        if (e == 15 && m == 7) return std::nanf("");
        const float v = e == 0 ? std::ldexp(float(m) / 8.0f, -6) : std::ldexp(1.0f + float(m) / 8.0f, e - 7);
        return s ? -v : v;
    }
    case DType::F8_E5M2: {
        const auto b = std::to_integer<std::uint8_t>(*p);
        return f16ToFloat(std::uint16_t(b) << 8);
    }
    }
    return 0;
}

void storeFloat(DType d, std::byte* base, std::size_t i, float v) {
    std::byte* p = base + i * dtypeSize(d);
    switch (d) {
    case DType::BF16: {
        const std::uint16_t h = floatToBf16(v);
        std::memcpy(p, &h, 2);
        return;
    }
    case DType::F16: {
        const std::uint16_t h = floatToF16(v);
        std::memcpy(p, &h, 2);
        return;
    }
    case DType::F32: std::memcpy(p, &v, 4); return;
    default: throw Error("internal: storeFloat writes F32, F16 or BF16, not " + std::string(dtypeName(d)));
    }
}

}  // namespace whittle
