#include "core/quant/nvfp4.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"

namespace whittle {

namespace {

constexpr float kE2m1Max = 6.0f;
constexpr float kE4m3Max = 448.0f;
constexpr float kE4m3MinSubnormal = 1.0f / 512.0f;  // 2^-9
constexpr float kE2m1Magnitudes[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

std::string str(std::int64_t v) { return std::to_string(v); }

std::string hexByte(std::uint8_t b) {
    static constexpr char digits[] = "0123456789abcdef";
    return {'0', 'x', digits[b >> 4], digits[b & 15]};
}

// `why` names the block that K must fill: 16 inputs per E4M3 scale, or ggml's 64-value block_nvfp4.
void checkShape(std::int64_t N, std::int64_t K, std::int64_t multiple, const std::string& tensor, const char* why) {
    if (N <= 0 || K <= 0) throw UsageError({}, tensor, "cannot quantize an empty weight to NVFP4");
    if (K % multiple != 0)
        throw UsageError({}, tensor,
                         std::string(why) + " needs the input dimension to be a multiple of " + str(multiple) + ", and this weight has " +
                             str(K) + " inputs");
}

void checkSize(std::size_t got, std::int64_t want, const std::string& tensor, const char* what) {
    if (std::int64_t(got) != want)
        throw FormatError({}, tensor, std::string(what) + " has " + std::to_string(got) + " bytes, the shape needs " + str(want));
}

// ggml's ggml_ue4m3_to_fp32 times 2 (ggml halves the scale because its E2M1 table is doubled; the product
// is the same): bit 7 ignored, 0x00 and 0x7F read as 0.
float ggmlScale(std::uint8_t d) {
    if (d == 0 || d == 0x7F) return 0.0f;
    const int e = (d >> 3) & 0xF, m = d & 7;
    return e == 0 ? std::ldexp(float(m), -9) : std::ldexp(float(8 + m), e - 10);
}

// A scale byte ggml and ModelOpt read as the same value: finite and non-negative, below 0x7F.
bool ggmlCompatibleScale(std::uint8_t d) { return d < 0x7F; }

}  // namespace

float e4m3ToFloat(std::uint8_t b) {
    const int e = (b >> 3) & 0xF, m = b & 7;
    if (e == 15 && m == 7) return std::nanf("");
    const float v = e == 0 ? std::ldexp(float(m), -9) : std::ldexp(float(8 + m), e - 10);
    return (b & 0x80) ? -v : v;
}

std::uint8_t floatToE4m3(float x) {
    const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    const float a = std::fabs(x);
    if (std::isnan(a)) return sign | 0x7F;
    if (a >= kE4m3Max) return sign | 0x7E;
    // Subnormals step by 2^-9; m = 8 is 2^-6, which is exactly the code of the smallest normal.
    if (a < 1.0f / 64.0f) return sign | std::uint8_t(std::nearbyint(a * 512.0f));  // halves to even
    int e2;
    std::frexp(a, &e2);  // a = f · 2^e2, f in [0.5, 1)
    const int e = e2 - 1;  // a / 2^e in [1, 2), exact
    const int m = int(std::nearbyint((std::ldexp(a, -e) - 1.0f) * 8.0f));  // exact until the rounding; halves to even
    // m = 8 carries into the exponent; below 448 the result stays at or under 0x7E.
    return sign | std::uint8_t(((e + 7) << 3) + m);
}

float e2m1ToFloat(std::uint8_t code) {
    const float v = kE2m1Magnitudes[code & 7];
    return (code & 8) ? -v : v;
}

std::uint8_t floatToE2m1(float x) {
    // ModelOpt: ord = number of bounds strictly below |x| (searchsorted), plus one at the three midpoints
    // whose upper neighbour has the even code. So every midpoint rounds to the even code.
    static constexpr float bounds[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const float a = std::fabs(x);
    std::uint8_t ord = 0;
    while (ord < 7 && bounds[ord] < a) ++ord;
    if (a == 0.75f || a == 1.75f || a == 3.5f) ++ord;
    return std::uint8_t((x < 0 ? 8 : 0) + ord);
}

double Nvfp4Tensor::bitsPerWeight() const {
    if (rows == 0 || cols == 0) return 0;
    return 4.0 + 8.0 / double(kNvfp4BlockSize) + 32.0 / (double(rows) * double(cols));
}

float nvfp4GlobalScale(std::span<const float> w) {
    float amax = 0;
    for (float v : w) amax = std::max(amax, std::fabs(v));
    const float s = amax / (kE2m1Max * kE4m3Max);  // 2688 is exact, so this is ModelOpt's one rounding
    return s >= FLT_MIN ? s : 1.0f;
}

Nvfp4Tensor quantizeNvfp4(std::span<const float> w, std::int64_t N, std::int64_t K, const std::string& tensor, ThreadPool* pool,
                          std::optional<float> globalScale) {
    checkShape(N, K, kNvfp4BlockSize, tensor, "NVFP4 (one scale per 16 inputs)");
    if (std::int64_t(w.size()) != N * K) throw Error({}, tensor, "internal: weight size does not match its shape");
    for (std::size_t i = 0; i < w.size(); ++i)
        if (!std::isfinite(w[i]))
            throw FormatError({}, tensor, "weight [" + str(std::int64_t(i) / K) + ", " + str(std::int64_t(i) % K) + "] is not finite");
    if (globalScale && !(std::isnormal(*globalScale) && *globalScale > 0))
        throw UsageError({}, tensor, "the shared NVFP4 global scale must be a positive normal float");
    Nvfp4Tensor t;
    t.rows = N;
    t.cols = K;
    t.globalScale = globalScale ? *globalScale : nvfp4GlobalScale(w);
    const std::int64_t B = K / kNvfp4BlockSize;
    t.codes.resize(std::size_t(N * K));
    t.blockScales.resize(std::size_t(N * B));
    const float blockDivisor = kE2m1Max * t.globalScale;  // ModelOpt rounds 6 · weight_scale_2 to float first
    auto quantizeRow = [&](std::size_t row) {
        const std::int64_t n = std::int64_t(row);
        for (std::int64_t b = 0; b < B; ++b) {
            const std::size_t k0 = std::size_t(n * K + b * kNvfp4BlockSize);
            float amax = 0;
            for (std::size_t k = k0; k < k0 + kNvfp4BlockSize; ++k) amax = std::max(amax, std::fabs(w[k]));
            float s = amax / blockDivisor;
            if (s == 0.0f) s = 1.0f;                         // an all-zero block: any scale is exact
            s = std::max(s, kE4m3MinSubnormal);              // would round to 0 in E4M3 and divide by zero
            const std::uint8_t bits = floatToE4m3(s);        // saturates if a shared scale is too small
            t.blockScales[std::size_t(n * B + b)] = bits;
            const float divisor = e4m3ToFloat(bits) * t.globalScale;  // > 0: scale ≥ 2^-9, global scale ≥ FLT_MIN
            for (std::size_t k = k0; k < k0 + kNvfp4BlockSize; ++k) t.codes[k] = floatToE2m1(w[k] / divisor);
        }
    };
    if (pool) pool->parallelFor(std::size_t(N), [&](std::size_t n) { quantizeRow(n); });
    else
        for (std::size_t n = 0; n < std::size_t(N); ++n) quantizeRow(n);
    return t;
}

void dequantizeNvfp4Row(const Nvfp4Tensor& t, std::int64_t n, float* out) {
    const std::int64_t B = t.cols / kNvfp4BlockSize;
    for (std::int64_t b = 0; b < B; ++b) {
        const float s = e4m3ToFloat(t.blockScales[std::size_t(n * B + b)]) * t.globalScale;
        for (std::int64_t j = 0; j < kNvfp4BlockSize; ++j) {
            const std::int64_t k = b * kNvfp4BlockSize + j;
            out[k] = e2m1ToFloat(t.codes[std::size_t(n * t.cols + k)]) * s;
        }
    }
}

std::vector<std::uint8_t> packNvfp4(const Nvfp4Tensor& t) {
    std::vector<std::uint8_t> packed(t.codes.size() / 2);
    for (std::size_t j = 0; j < packed.size(); ++j) packed[j] = std::uint8_t(t.codes[2 * j] | (t.codes[2 * j + 1] << 4));
    return packed;
}

Nvfp4Tensor unpackNvfp4(std::span<const std::uint8_t> packed, std::span<const std::uint8_t> scales, float globalScale,
                        std::int64_t N, std::int64_t K, const std::string& tensor) {
    checkShape(N, K, kNvfp4BlockSize, tensor, "NVFP4 (one scale per 16 inputs)");
    checkSize(packed.size(), N * K / 2, tensor, "the packed NVFP4 weight");
    checkSize(scales.size(), N * K / kNvfp4BlockSize, tensor, "the NVFP4 weight_scale");
    Nvfp4Tensor t;
    t.rows = N;
    t.cols = K;
    t.globalScale = globalScale;
    t.blockScales.assign(scales.begin(), scales.end());
    t.codes.resize(std::size_t(N * K));
    for (std::size_t j = 0; j < packed.size(); ++j) {
        t.codes[2 * j] = packed[j] & 0x0F;
        t.codes[2 * j + 1] = packed[j] >> 4;
    }
    return t;
}

void decodeNvfp4Row(const std::byte* packed, const std::byte* scales, float globalScale, std::int64_t K, float* out) {
    for (std::int64_t b = 0; b < K / kNvfp4BlockSize; ++b) {
        const float s = e4m3ToFloat(std::to_integer<std::uint8_t>(scales[b])) * globalScale;
        for (std::int64_t j = 0; j < kNvfp4BlockSize / 2; ++j) {
            const auto byte = std::to_integer<std::uint8_t>(packed[b * kNvfp4BlockSize / 2 + j]);
            out[b * kNvfp4BlockSize + 2 * j] = e2m1ToFloat(byte & 0x0F) * s;
            out[b * kNvfp4BlockSize + 2 * j + 1] = e2m1ToFloat(byte >> 4) * s;
        }
    }
}

std::vector<std::uint8_t> packNvfp4Gguf(const Nvfp4Tensor& t, const std::string& tensor) {
    checkShape(t.rows, t.cols, kNvfp4GgufBlockValues, tensor, "NVFP4 in GGUF (ggml blocks of 64)");
    const std::int64_t blocksPerRow = t.cols / kNvfp4GgufBlockValues, scalesPerRow = t.cols / kNvfp4BlockSize;
    std::vector<std::uint8_t> out(std::size_t(t.rows * blocksPerRow * kNvfp4GgufBlockBytes));
    std::uint8_t* p = out.data();
    for (std::int64_t n = 0; n < t.rows; ++n) {
        for (std::int64_t i = 0; i < blocksPerRow; ++i, p += kNvfp4GgufBlockBytes) {
            for (int s = 0; s < 4; ++s) {
                const std::uint8_t d = t.blockScales[std::size_t(n * scalesPerRow + i * 4 + s)];
                if (!ggmlCompatibleScale(d))
                    throw FormatError({}, tensor,
                                      "block scale of row " + str(n) + ", inputs " + str((i * 4 + s) * 16) +
                                          " is negative or NaN; GGUF's NVFP4 scales are unsigned");
                p[s] = d;
                const std::uint8_t* q = &t.codes[std::size_t(n * t.cols + (i * 4 + s) * kNvfp4BlockSize)];
                for (int j = 0; j < 8; ++j) p[4 + s * 8 + j] = std::uint8_t(q[j] | (q[j + 8] << 4));
            }
        }
    }
    return out;
}

Nvfp4Tensor unpackNvfp4Gguf(std::span<const std::uint8_t> blocks, float globalScale, std::int64_t N, std::int64_t K,
                            const std::string& tensor) {
    checkShape(N, K, kNvfp4GgufBlockValues, tensor, "NVFP4 in GGUF (ggml blocks of 64)");
    const std::int64_t blocksPerRow = K / kNvfp4GgufBlockValues, scalesPerRow = K / kNvfp4BlockSize;
    checkSize(blocks.size(), N * blocksPerRow * kNvfp4GgufBlockBytes, tensor, "the NVFP4 GGUF tensor");
    Nvfp4Tensor t;
    t.rows = N;
    t.cols = K;
    t.globalScale = globalScale;
    t.codes.resize(std::size_t(N * K));
    t.blockScales.resize(std::size_t(N * scalesPerRow));
    const std::uint8_t* p = blocks.data();
    for (std::int64_t n = 0; n < N; ++n) {
        for (std::int64_t i = 0; i < blocksPerRow; ++i, p += kNvfp4GgufBlockBytes) {
            for (int s = 0; s < 4; ++s) {
                if (!ggmlCompatibleScale(p[s]))
                    throw FormatError({}, tensor,
                                      "scale byte " + hexByte(p[s]) + " of row " + str(n) + ", block " + str(i) +
                                          " is not a finite non-negative E4M3 value");
                t.blockScales[std::size_t(n * scalesPerRow + i * 4 + s)] = p[s];
                std::uint8_t* q = &t.codes[std::size_t(n * K + (i * 4 + s) * kNvfp4BlockSize)];
                for (int j = 0; j < 8; ++j) {
                    q[j] = p[4 + s * 8 + j] & 0x0F;
                    q[j + 8] = p[4 + s * 8 + j] >> 4;
                }
            }
        }
    }
    return t;
}

void decodeGgufNvfp4Row(const std::byte* blocks, std::int64_t K, float* out) {
    for (std::int64_t i = 0; i < K / kNvfp4GgufBlockValues; ++i) {
        const std::byte* p = blocks + i * kNvfp4GgufBlockBytes;
        for (int s = 0; s < 4; ++s) {
            const float d = ggmlScale(std::to_integer<std::uint8_t>(p[s]));
            float* y = out + i * kNvfp4GgufBlockValues + s * kNvfp4BlockSize;
            for (int j = 0; j < 8; ++j) {
                const auto byte = std::to_integer<std::uint8_t>(p[4 + s * 8 + j]);
                y[j] = e2m1ToFloat(byte & 0x0F) * d;
                y[j + 8] = e2m1ToFloat(byte >> 4) * d;
            }
        }
    }
}

}  // namespace whittle
