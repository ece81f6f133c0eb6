#include "core/io/gptq_layout.h"

#include <cstring>

#include "core/error.h"
#include "core/io/dtype.h"

namespace whittle {

namespace {

// Value i of a stream of b-bit values laid over 32-bit words, word w at word(w): bits i·b … i·b + b − 1,
// little-endian, a value may continue in the next word.
template <class Word>
std::uint32_t streamValue(const Word& word, std::int64_t i, int b) {
    const std::int64_t bit = i * b, w = bit / 32;
    const int off = int(bit % 32);
    std::uint64_t v = word(w) >> off;
    if (off + b > 32) v |= std::uint64_t(word(w + 1)) << (32 - off);
    return std::uint32_t(v & ((1u << b) - 1u));
}

template <class SetBits>
void streamStore(const SetBits& orInto, std::int64_t i, int b, std::uint32_t value) {
    const std::int64_t bit = i * b, w = bit / 32;
    const int off = int(bit % 32);
    orInto(w, std::uint32_t(std::uint64_t(value) << off));
    if (off + b > 32) orInto(w + 1, value >> (32 - off));
}

std::uint32_t loadWord(const std::byte* base, std::int64_t i) {
    std::uint32_t w;
    std::memcpy(&w, base + 4 * i, 4);  // a mapping may be misaligned
    return w;
}

std::uint16_t loadHalf(const std::byte* base, std::int64_t i) {
    std::uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    return h;
}

}  // namespace

std::string gptqShapeProblem(int bits, bool residual, std::int64_t N, std::int64_t K) {
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) return "GPTQ v1 stores 2, 3, 4 or 8 bits, not " + std::to_string(bits);
    const std::int64_t per = bits == 3 ? 32 : 32 / bits;  // values whose bits fill whole words
    if (K % per)
        return "has " + std::to_string(K) + " inputs; " + std::to_string(bits) + "-bit GPTQ packs " + std::to_string(per) +
               " inputs per " + (bits == 3 ? "3 words" : "32-bit word") + ", so it needs a multiple of " + std::to_string(per);
    if (N % per)
        return "has " + std::to_string(N) + " outputs; " + std::to_string(bits) + "-bit GPTQ packs " + std::to_string(per) +
               " zero points per " + (bits == 3 ? "3 words" : "32-bit word") + ", so it needs a multiple of " + std::to_string(per);
    if (residual && K % 32) return "has " + std::to_string(K) + " inputs; the binary residual packs 32 signs per word, so it needs a multiple of 32";
    return {};
}

GptqTensors packGptqV1(const IntTensor& t, const std::string& tensor, ThreadPool* pool) {
    const std::int64_t N = t.rows, K = t.cols;
    const int b = t.bits;
    if (const std::string problem = gptqShapeProblem(b, t.hasResidual(), N, K); !problem.empty()) throw UsageError({}, tensor, problem);
    GptqTensors g;
    g.outFeatures = N;
    g.inFeatures = K;
    g.groupSize = t.groupSize;
    g.bits = b;
    const std::int64_t G = t.groups(), zeroWords = N * b / 32;
    g.qweight.assign(std::size_t(K * b / 32 * N), 0);
    g.qzeros.assign(std::size_t(G * zeroWords), 0);
    g.scales.resize(std::size_t(G * N));
    g.gIdx.resize(std::size_t(K));
    for (std::int64_t k = 0; k < K; ++k) g.gIdx[std::size_t(k)] = std::int32_t(k / t.groupSize);
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t G0 = 0; G0 < G; ++G0)
            if (t.zeros[std::size_t(n * G + G0)] == 0)
                throw UsageError({}, tensor, "output " + std::to_string(n) + ", group " + std::to_string(G0) +
                                                 " has zero point 0, which GPTQ v1 cannot store (it stores zero − 1 in " + std::to_string(b) + " bits)");
    if (t.hasResidual()) {
        g.qresidual.assign(std::size_t(K / 32 * N), 0);
        g.residualScales.resize(std::size_t(G * N));
    }
    auto word = [](std::vector<std::int32_t>& v, std::size_t i) -> std::uint32_t& { return reinterpret_cast<std::uint32_t&>(v[i]); };
    auto packOutput = [&](std::int64_t n) {
        auto orColumn = [&](std::vector<std::int32_t>& v) {
            return [&v, &word, n, N](std::int64_t w, std::uint32_t bits) { word(v, std::size_t(w * N + n)) |= bits; };
        };
        const auto qw = orColumn(g.qweight);
        for (std::int64_t k = 0; k < K; ++k) streamStore(qw, k, b, t.codes[std::size_t(n * K + k)]);
        if (t.hasResidual()) {
            const auto qr = orColumn(g.qresidual);
            for (std::int64_t k = 0; k < K; ++k) streamStore(qr, k, 1, t.residualSigns[std::size_t(n * K + k)]);
        }
    };
    // Row G of qzeros is one stream along N; outputs that share words are in one block, so rows are packed
    // group by group in parallel rather than output by output.
    auto packGroup = [&](std::int64_t G0) {
        const auto qz = [&](std::int64_t w, std::uint32_t bits) { word(g.qzeros, std::size_t(G0 * zeroWords + w)) |= bits; };
        for (std::int64_t n = 0; n < N; ++n) {
            g.scales[std::size_t(G0 * N + n)] = t.scales[std::size_t(n * G + G0)];
            // v1 stores zero − 1 and loaders add the 1 back without wrapping, so zero 0 has no v1 form (refused above).
            streamStore(qz, n, b, std::uint32_t(t.zeros[std::size_t(n * G + G0)]) - 1u);
            if (t.hasResidual()) g.residualScales[std::size_t(G0 * N + n)] = t.residualScales[std::size_t(n * G + G0)];
        }
    };
    if (pool) {
        pool->parallelFor(std::size_t(N), [&](std::size_t n) { packOutput(std::int64_t(n)); });
        pool->parallelFor(std::size_t(G), [&](std::size_t gi) { packGroup(std::int64_t(gi)); });
    } else {
        for (std::int64_t n = 0; n < N; ++n) packOutput(n);
        for (std::int64_t gi = 0; gi < G; ++gi) packGroup(gi);
    }
    return g;
}

IntTensor unpackGptqV1(const GptqTensors& g, const std::string& tensor) {
    const std::int64_t N = g.outFeatures, K = g.inFeatures, G = g.groups();
    const int b = g.bits;
    for (std::int64_t k = 0; k < K; ++k)
        if (g.gIdx[std::size_t(k)] != k / g.groupSize)
            throw FormatError({}, tensor, "g_idx[" + std::to_string(k) + "] is " + std::to_string(g.gIdx[std::size_t(k)]) +
                                              ", not k / group size: its groups are not contiguous");
    IntTensor t;
    t.rows = N;
    t.cols = K;
    t.groupSize = g.groupSize;
    t.bits = b;
    t.codes.resize(std::size_t(N * K));
    t.scales.resize(std::size_t(N * G));
    t.zeros.resize(std::size_t(N * G));
    const bool residual = !g.residualScales.empty();
    if (residual) {
        t.residualSigns.resize(std::size_t(N * K));
        t.residualScales.resize(std::size_t(N * G));
    }
    const std::int64_t zeroWords = N * b / 32;
    const std::uint32_t symmetricZero = 1u << (b - 1);
    bool allSymmetric = true;
    for (std::int64_t n = 0; n < N; ++n) {
        const auto column = [&](const std::vector<std::int32_t>& v) {
            return [&v, n, N](std::int64_t w) { return std::uint32_t(v[std::size_t(w * N + n)]); };
        };
        for (std::int64_t k = 0; k < K; ++k) t.codes[std::size_t(n * K + k)] = std::uint8_t(streamValue(column(g.qweight), k, b));
        if (residual)
            for (std::int64_t k = 0; k < K; ++k) t.residualSigns[std::size_t(n * K + k)] = std::uint8_t(streamValue(column(g.qresidual), k, 1));
        for (std::int64_t G0 = 0; G0 < G; ++G0) {
            t.scales[std::size_t(n * G + G0)] = g.scales[std::size_t(G0 * N + n)];
            const auto zrow = [&](std::int64_t w) { return std::uint32_t(g.qzeros[std::size_t(G0 * zeroWords + w)]); };
            // As the loaders: the stored value plus one, so a stored 2^b − 1 means zero 2^b.
            const std::uint32_t z = streamValue(zrow, n, b) + 1u;
            t.zeros[std::size_t(n * G + G0)] = std::uint16_t(z);
            allSymmetric = allSymmetric && z == symmetricZero;
            if (residual) t.residualScales[std::size_t(n * G + G0)] = g.residualScales[std::size_t(G0 * N + n)];
        }
    }
    t.symmetric = allSymmetric;
    return t;
}

void dequantizeGptqRow(const GptqWords& p, std::int64_t N, std::int64_t K, std::int64_t n, float* out) {
    const int b = p.bits;
    const std::int64_t zeroWords = N * b / 32;
    const auto qweight = [&](std::int64_t w) { return loadWord(p.qweight, w * N + n); };
    const auto qresidual = [&](std::int64_t w) { return loadWord(p.qresidual, w * N + n); };
    for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t g = std::int64_t(std::int32_t(loadWord(p.gIdx, k)));
        const std::uint32_t q = streamValue(qweight, k, b);
        const auto zrow = [&](std::int64_t w) { return loadWord(p.qzeros, g * zeroWords + w); };
        const std::uint32_t z = streamValue(zrow, n, b) + 1u;  // v1: stored zero − 1
        out[k] = f16ToFloat(loadHalf(p.scales, g * N + n)) * (float(q) - float(z));
        if (p.qresidual) out[k] += (streamValue(qresidual, k, 1) ? 1.0f : -1.0f) * f16ToFloat(loadHalf(p.residualScales, g * N + n));
    }
}

void dequantizeGptqRow(const GptqTensors& g, std::int64_t n, float* out, bool useGIdx) {
    std::vector<std::int32_t> contiguous;
    if (!useGIdx) {
        contiguous.resize(std::size_t(g.inFeatures));
        for (std::int64_t k = 0; k < g.inFeatures; ++k) contiguous[std::size_t(k)] = std::int32_t(k / g.groupSize);
    }
    GptqWords w;
    w.qweight = reinterpret_cast<const std::byte*>(g.qweight.data());
    w.qzeros = reinterpret_cast<const std::byte*>(g.qzeros.data());
    w.scales = reinterpret_cast<const std::byte*>(g.scales.data());
    w.gIdx = reinterpret_cast<const std::byte*>(useGIdx ? g.gIdx.data() : contiguous.data());
    if (!g.residualScales.empty()) {
        w.qresidual = reinterpret_cast<const std::byte*>(g.qresidual.data());
        w.residualScales = reinterpret_cast<const std::byte*>(g.residualScales.data());
    }
    w.bits = g.bits;
    dequantizeGptqRow(w, g.outFeatures, g.inFeatures, n, out);
}

}  // namespace whittle
