#include "gpu/device_sampling.h"

#include <algorithm>
#include <cstring>

#include "shaders/shader_params.h"

namespace whittle::gpu {

using namespace shader;

std::uint64_t sampleStateBytes() { return sizeof(SampleState) + 4ull * kSampleMaxIds; }

namespace {

// The distinct ids of the repetition window, in Sampler's order (first occurrence).
std::vector<int> windowIds(const SamplingParams& p, std::span<const int> history) {
    std::vector<int> ids;
    if (p.repetitionPenalty == 1.0f) return ids;
    const std::size_t from = history.size() > std::size_t(p.repetitionWindow) ? history.size() - std::size_t(p.repetitionWindow) : 0;
    for (std::size_t i = from; i < history.size(); ++i)
        if (std::find(ids.begin(), ids.end(), history[i]) == ids.end()) ids.push_back(history[i]);
    return ids;
}

}  // namespace

bool deviceCanSample(const SamplingParams& p, int vocab) {
    if (p.repetitionPenalty != 1.0f && p.repetitionWindow > int(kSampleMaxIds)) return false;
    if (p.greedy()) return true;
    const int candidates = p.topK > 0 && p.topK < vocab ? p.topK : vocab;
    return candidates <= int(WHITTLE_SAMPLE_MAX_K);
}

std::vector<std::uint32_t> suppressedBits(const std::vector<bool>& suppressed, int vocab) {
    std::vector<std::uint32_t> bits((std::size_t(vocab) + 31) / 32, 0);
    for (std::size_t i = 0; i < suppressed.size() && i < std::size_t(vocab); ++i)
        if (suppressed[i]) bits[i / 32] |= 1u << (i % 32);
    return bits;
}

void writeSampleState(std::byte* state, const SamplingParams& p, std::span<const int> history, double uniform) {
    const std::vector<int> ids = windowIds(p, history);
    const SampleState s{p.temperature, std::uint32_t(p.topK), p.topP, p.minP, p.repetitionPenalty,
                        std::uint32_t(std::min<std::size_t>(ids.size(), kSampleMaxIds)), float(uniform), 0u};
    std::memcpy(state, &s, sizeof s);
    for (std::uint32_t i = 0; i < s.penaltyCount; ++i) {
        const std::uint32_t id = std::uint32_t(ids[i]);  // negative ids become huge and are skipped by the shader
        std::memcpy(state + sizeof s + 4 * i, &id, 4);
    }
}

void recordSample(const KernelContext& k, vk::Buffer logits, std::uint32_t n, std::uint32_t offset, vk::Buffer suppressed, vk::Buffer state,
                  vk::Buffer work, vk::Buffer result) {
    const Pipeline& pl = k.kernels.pipeline(k.kernels.subgroups() ? ShaderId::SampleSubgroup : ShaderId::Sample, 5, sizeof(SampleParams));
    const SampleParams pc{n, offset, suppressed ? 1u : 0u};
    k.rec.dispatch(pl, {logits, suppressed ? suppressed : k.unused, state, work, result}, &pc, 1);
}

}  // namespace whittle::gpu
