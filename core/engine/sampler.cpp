#include "core/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace whittle {

void validate(const SamplingParams& p) {
    auto bad = [](const char* what) { throw UsageError(std::string("sampling parameter out of range: ") + what); };
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature) || p.temperature > 100.0f) bad("temperature must be in [0, 100]");
    if (p.topK < 0) bad("top-k must be 0 (off) or positive");
    if (!(p.topP > 0.0f && p.topP <= 1.0f)) bad("top-p must be in (0, 1]");
    if (!(p.minP >= 0.0f && p.minP < 1.0f)) bad("min-p must be in [0, 1)");
    if (!(p.repetitionPenalty > 0.0f) || !std::isfinite(p.repetitionPenalty)) bad("repetition penalty must be positive");
    if (p.repetitionWindow < 0) bad("repetition window must not be negative");
}

double samplingDraw(std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

Sampler::Sampler(int vocab, const SamplingParams& params)
    : params_(params), rng_(params.seed), order_(std::size_t(vocab)), probs_(std::size_t(vocab)) {
    validate(params);
}

int Sampler::sample(std::span<float> logits, std::span<const int> history) {
    const int V = int(logits.size());
    if (params_.repetitionPenalty != 1.0f) {
        const std::size_t from = history.size() > std::size_t(params_.repetitionWindow) ? history.size() - std::size_t(params_.repetitionWindow) : 0;
        // Each distinct id once, as in transformers: positive logits divided, negative multiplied.
        for (std::size_t i = from; i < history.size(); ++i) {
            const int id = history[i];
            if (id < 0 || id >= V) continue;
            bool seen = false;
            for (std::size_t j = from; j < i && !seen; ++j) seen = history[j] == id;
            if (seen) continue;
            float& l = logits[std::size_t(id)];
            l = l > 0 ? l / params_.repetitionPenalty : l * params_.repetitionPenalty;
        }
    }
    for (std::size_t i = 0; i < suppressed_.size() && i < std::size_t(V); ++i)
        if (suppressed_[i]) logits[i] = -INFINITY;
    if (params_.greedy()) {
        int best = 0;
        for (int i = 1; i < V; ++i)
            if (logits[std::size_t(i)] > logits[std::size_t(best)]) best = i;  // ties: the lowest id
        return best;
    }
    std::iota(order_.begin(), order_.end(), 0);
    auto byLogit = [&](int a, int b) { return logits[std::size_t(a)] != logits[std::size_t(b)] ? logits[std::size_t(a)] > logits[std::size_t(b)] : a < b; };
    int n = V;
    if (params_.topK > 0 && params_.topK < V) {
        std::partial_sort(order_.begin(), order_.begin() + params_.topK, order_.end(), byLogit);
        n = params_.topK;
    } else {
        std::sort(order_.begin(), order_.end(), byLogit);
    }
    const float mx = logits[std::size_t(order_[0])];
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += (probs_[std::size_t(i)] = float(std::exp(double(logits[std::size_t(order_[std::size_t(i)])] - mx) / params_.temperature)));
    // top-p keeps the smallest prefix whose mass reaches p; min-p drops tokens below p·max.
    int keep = n;
    if (params_.topP < 1.0f) {
        double acc = 0;
        for (int i = 0; i < n; ++i) {
            acc += probs_[std::size_t(i)] / sum;
            if (acc >= params_.topP) {
                keep = i + 1;
                break;
            }
        }
    }
    if (params_.minP > 0.0f) {
        const float floor = params_.minP * probs_[0];
        int k = 1;
        while (k < keep && probs_[std::size_t(k)] >= floor) ++k;
        keep = k;
    }
    double kept = 0;
    for (int i = 0; i < keep; ++i) kept += probs_[std::size_t(i)];
    if (!(kept > 0)) return order_[0];  // everything suppressed or -inf: fall back to the top token
    const double u = samplingDraw(rng_) * kept;
    double acc = 0;
    for (int i = 0; i < keep; ++i) {
        acc += probs_[std::size_t(i)];
        if (u < acc) return order_[std::size_t(i)];
    }
    return order_[std::size_t(keep - 1)];
}

}  // namespace whittle
