#pragma once
// Token selection on the device (shaders/sample.comp): the sampling state the host writes before a submit, and
// the kernel that reads it. The state carries the host's uniform draw, so a seeded generator on the host gives
// the same tokens whichever engine computed the logits; core/engine/sampler.cpp is the reference it follows.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/engine/sampler.h"
#include "gpu/kernels.h"

namespace whittle::gpu {

constexpr std::uint32_t kSampleMaxIds = 256;  // repetition-window ids the state holds (one lane each)

// Bytes of the sampling state buffer (its header and kSampleMaxIds ids).
std::uint64_t sampleStateBytes();
// Whether sample.comp can make the host sampler's choice for these settings: greedy always; otherwise when the
// candidates (top-k, or the whole vocabulary) number at most 256 and the penalty window fits the state.
bool deviceCanSample(const SamplingParams& p, int vocab);
// The suppressed ids as the shader's bit set (bit i of word i / 32).
std::vector<std::uint32_t> suppressedBits(const std::vector<bool>& suppressed, int vocab);

// Writes the state for one draw: the parameters, the distinct ids of the repetition window of `history` (as
// Sampler does), and `uniform` in [0, 1), the host generator's draw (samplingDraw).
void writeSampleState(std::byte* state, const SamplingParams& p, std::span<const int> history, double uniform);

// Records sample.comp over logits[offset … offset + n); suppressed may be null; work holds n floats; the token
// id goes to result[0].
void recordSample(const KernelContext& k, vk::Buffer logits, std::uint32_t n, std::uint32_t offset, vk::Buffer suppressed, vk::Buffer state,
                  vk::Buffer work, vk::Buffer result);

}  // namespace whittle::gpu
