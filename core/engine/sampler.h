#pragma once
// Token selection from logits: repetition penalty, suppressed ids, then greedy or temperature / top-k /
// top-p / min-p sampling with a seeded generator. Buffers are allocated once: sampling allocates nothing.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace whittle {

struct SamplingParams {
    float temperature = 0.0f;  // 0: greedy
    int topK = 0;              // 0: off
    float topP = 1.0f;         // 1: off
    float minP = 0.0f;         // 0: off
    float repetitionPenalty = 1.0f;
    int repetitionWindow = 64;  // how many recent tokens the penalty looks at
    std::uint64_t seed = 0;
    bool greedy() const { return temperature == 0.0f; }
};

// Throws UsageError naming the parameter when a value is out of range.
void validate(const SamplingParams& p);

// The one uniform number in [0, 1) a sampled (non-greedy) pick takes from the generator; the pick scales it by
// the kept probability mass. Backends that sample themselves get this draw from the caller, so a seed gives the
// same tokens everywhere.
double samplingDraw(std::mt19937_64& rng);

class Sampler {
public:
    Sampler(int vocab, const SamplingParams& params);
    // Ids that are never picked (unused placeholders, padding rows).
    void setSuppressed(std::vector<bool> suppressed) { suppressed_ = std::move(suppressed); }
    // logits is modified (penalties, masking); history is the sequence so far.
    int sample(std::span<float> logits, std::span<const int> history);
    const SamplingParams& params() const { return params_; }

private:
    SamplingParams params_;
    std::mt19937_64 rng_;
    std::vector<bool> suppressed_;
    std::vector<int> order_;
    std::vector<float> probs_;
};

}  // namespace whittle
