#pragma once
// Text generation on any Session: prompt prefill, then one token at a time until a stop id,
// the token limit, the context end, or cancel. Text streams out in whole UTF-8 characters.
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/sampler.h"
#include "core/engine/session.h"
#include "core/progress.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {

struct GenerateOptions {
    int maxTokens = 256;
    SamplingParams sampling;
    std::vector<int> stopIds;
};

struct GenerateResult {
    std::vector<int> tokens;  // generated ids, stop id excluded
    std::string text;
    std::string stopReason;   // "stop", "length", "context", "cancelled"
    int promptTokens = 0;
    double prefillSeconds = 0, decodeSeconds = 0;
};

class Checkpoint;
// The model's generation_config.json sampling defaults (greedy when it has none or do_sample is false).
SamplingParams generationConfigDefaults(const Checkpoint& checkpoint);

// Ids a sampler must never pick: <unusedN> placeholders and rows past the tokenizer.
std::vector<bool> suppressedIds(const Tokenizer& tok, int vocabRows);

GenerateResult generate(Session& session, const Tokenizer& tok, std::span<const int> prompt,
                        const GenerateOptions& options, const std::function<void(std::string_view)>& onText,
                        const CancelToken& cancel);

}  // namespace whittle
