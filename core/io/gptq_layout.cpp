#include "core/io/gptq_layout.h"

#include <cstring>

#include "core/error.h"
#include "core/io/dtype.h"

namespace whittle {

namespace {
std::uint32_t nibble(std::uint32_t word, std::int64_t j) { return (word >> (4 * j)) & 0xfu; }
}  // namespace

GptqTensors packGptqV1(const Int4Tensor& t, const std::string& tensor, ThreadPool* pool) {
    const std::int64_t N = t.rows, K = t.cols;
    if (K % 8 != 0)
        throw UsageError({}, tensor, "has " + std::to_string(K) + " inputs; GPTQ packs 8 inputs per 32-bit word, so it needs a multiple of 8");
    if (N % 8 != 0)
        throw UsageError({}, tensor, "has " + std::to_string(N) + " outputs; GPTQ packs 8 zero points per 32-bit word, so it needs a multiple of 8");
    GptqTensors g;
    g.outFeatures = N;
    g.inFeatures = K;
    g.groupSize = t.groupSize;
    const std::int64_t G = t.groups();
    g.qweight.assign(std::size_t(K / 8 * N), 0);
    g.qzeros.assign(std::size_t(G * N / 8), 0);
    g.scales.resize(std::size_t(G * N));
    g.gIdx.resize(std::size_t(K));
    for (std::int64_t k = 0; k < K; ++k) g.gIdx[std::size_t(k)] = std::int32_t(k / t.groupSize);
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t G0 = 0; G0 < G; ++G0)
            if (t.zeros[std::size_t(n * G + G0)] == 0)
                throw UsageError({}, tensor, "output " + std::to_string(n) + ", group " + std::to_string(G0) +
                                                 " has zero point 0, which GPTQ v1 cannot store (it stores zero − 1 in 4 bits)");
    auto packOutput = [&](std::int64_t n) {
        for (std::int64_t k = 0; k < K; ++k) {
            auto& w = reinterpret_cast<std::uint32_t&>(g.qweight[std::size_t(k / 8 * N + n)]);
            w |= std::uint32_t(t.codes[std::size_t(n * K + k)]) << (4 * (k % 8));
        }
        for (std::int64_t G0 = 0; G0 < G; ++G0) {
            g.scales[std::size_t(G0 * N + n)] = t.scales[std::size_t(n * G + G0)];
            // v1 stores zero − 1 and loaders add the 1 back without wrapping, so zero 0 has no v1 form (refused above).
            const std::uint32_t stored = std::uint32_t(t.zeros[std::size_t(n * G + G0)]) - 1u;
            auto& z = reinterpret_cast<std::uint32_t&>(g.qzeros[std::size_t(G0 * (N / 8) + n / 8)]);
            z |= stored << (4 * (n % 8));
        }
    };
    // Outputs 8b … 8b+7 share their qzeros words, so one block is one work item.
    auto packBlock = [&](std::size_t b) {
        for (std::int64_t n = std::int64_t(b) * 8; n < std::int64_t(b) * 8 + 8; ++n) packOutput(n);
    };
    if (pool) pool->parallelFor(std::size_t(N / 8), [&](std::size_t b) { packBlock(b); });
    else
        for (std::size_t b = 0; b < std::size_t(N / 8); ++b) packBlock(b);
    return g;
}

Int4Tensor unpackGptqV1(const GptqTensors& g, const std::string& tensor) {
    const std::int64_t N = g.outFeatures, K = g.inFeatures, G = g.groups();
    for (std::int64_t k = 0; k < K; ++k)
        if (g.gIdx[std::size_t(k)] != k / g.groupSize)
            throw FormatError({}, tensor, "g_idx[" + std::to_string(k) + "] is " + std::to_string(g.gIdx[std::size_t(k)]) +
                                              ", not k / group size: its groups are not contiguous");
    Int4Tensor t;
    t.rows = N;
    t.cols = K;
    t.groupSize = g.groupSize;
    t.codes.resize(std::size_t(N * K));
    t.scales.resize(std::size_t(N * G));
    t.zeros.resize(std::size_t(N * G));
    bool allEight = true;
    for (std::int64_t n = 0; n < N; ++n) {
        for (std::int64_t k = 0; k < K; ++k)
            t.codes[std::size_t(n * K + k)] = std::uint8_t(nibble(std::uint32_t(g.qweight[std::size_t(k / 8 * N + n)]), k % 8));
        for (std::int64_t G0 = 0; G0 < G; ++G0) {
            t.scales[std::size_t(n * G + G0)] = g.scales[std::size_t(G0 * N + n)];
            // As the loaders: the stored nibble plus one, so a stored 15 means zero 16.
            const std::uint32_t z = nibble(std::uint32_t(g.qzeros[std::size_t(G0 * (N / 8) + n / 8)]), n % 8) + 1u;
            t.zeros[std::size_t(n * G + G0)] = std::uint8_t(z);
            allEight = allEight && z == 8;
        }
    }
    t.symmetric = allEight;
    return t;
}

void dequantizeGptqRow(const std::byte* qweight, const std::byte* qzeros, const std::byte* scales, const std::byte* gIdx,
                       std::int64_t N, std::int64_t K, std::int64_t n, float* out) {
    auto word = [](const std::byte* base, std::int64_t i) {
        std::uint32_t w;
        std::memcpy(&w, base + 4 * i, 4);  // a mapping may be misaligned
        return w;
    };
    for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t g = std::int64_t(std::int32_t(word(gIdx, k)));
        const std::uint32_t q = nibble(word(qweight, (k / 8) * N + n), k % 8);
        const std::uint32_t z = nibble(word(qzeros, g * (N / 8) + n / 8), n % 8) + 1u;  // v1: stored zero − 1
        std::uint16_t s;
        std::memcpy(&s, scales + 2 * (g * N + n), 2);
        out[k] = f16ToFloat(s) * (float(q) - float(z));
    }
}

void dequantizeGptqRow(const GptqTensors& g, std::int64_t n, float* out, bool useGIdx) {
    std::vector<std::int32_t> contiguous;
    if (!useGIdx) {
        contiguous.resize(std::size_t(g.inFeatures));
        for (std::int64_t k = 0; k < g.inFeatures; ++k) contiguous[std::size_t(k)] = std::int32_t(k / g.groupSize);
    }
    const auto* gIdx = reinterpret_cast<const std::byte*>(useGIdx ? g.gIdx.data() : contiguous.data());
    dequantizeGptqRow(reinterpret_cast<const std::byte*>(g.qweight.data()), reinterpret_cast<const std::byte*>(g.qzeros.data()),
                      reinterpret_cast<const std::byte*>(g.scales.data()), gIdx, g.outFeatures, g.inFeatures, n, out);
}

}  // namespace whittle
