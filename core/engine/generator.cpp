#include "core/engine/generator.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/tokenizer/buckets.h"
#include "core/utf8.h"
#include "core/model/checkpoint_files.h"

namespace whittle {

SamplingParams generationConfigDefaults(const Checkpoint& ck) {
    SamplingParams s;
    if (!ck.hasGenerationConfig()) return s;
    const Json g = readJsonFile(ck.dir() / files::kGenerationConfig);
    if (!g.value("do_sample", false)) return s;
    s.temperature = g.value("temperature", 1.0f);
    s.topK = g.value("top_k", 0);
    s.topP = g.value("top_p", 1.0f);
    s.minP = g.value("min_p", 0.0f);
    s.repetitionPenalty = g.value("repetition_penalty", 1.0f);
    return s;
}

std::vector<bool> suppressedIds(const Tokenizer& tok, int vocabRows) {
    std::vector<bool> s(std::size_t(vocabRows), false);
    for (int id = 0; id < vocabRows; ++id) {
        if (id >= tok.size()) {
            s[std::size_t(id)] = true;
            continue;
        }
        if (isUnusedPlaceholder(tok.tokenText(id))) s[std::size_t(id)] = true;
    }
    return s;
}

namespace {
// Length of the longest prefix of s that does not end inside a UTF-8 sequence.
std::size_t completePrefix(std::string_view s) {
    std::size_t end = s.size();
    for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
        const auto c = static_cast<unsigned char>(s[s.size() - back]);
        if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
        const std::size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need > back) end = s.size() - back;
        break;
    }
    return end;
}
}  // namespace

GenerateResult generate(Session& session, const Tokenizer& tok, std::span<const int> prompt,
                        const GenerateOptions& o, const std::function<void(std::string_view)>& onText,
                        const CancelToken& cancel) {
    using Clock = std::chrono::steady_clock;
    if (prompt.empty()) throw UsageError("the prompt is empty (it needs at least a BOS token)");
    if (o.maxTokens < 0) throw UsageError("max tokens must not be negative");
    validate(o.sampling);
    if (session.position() + std::int64_t(prompt.size()) > session.capacity())
        throw UsageError("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                         std::to_string(session.capacity() - session.position()));
    GenerateResult r;
    r.promptTokens = int(prompt.size());
    std::vector<int> history(prompt.begin(), prompt.end());
    history.reserve(prompt.size() + std::size_t(o.maxTokens) + 1);
    r.tokens.reserve(std::size_t(o.maxTokens));
    if (cancel.cancelled()) {
        r.stopReason = "cancelled";
        return r;
    }
    // The next token after feeding `tokens`: picked by the backend when it can (only the id comes back), else
    // sampled here from its logits. Both take the same draws from a generator seeded alike.
    const int V = session.vocabSize();
    const std::vector<bool> suppressed = suppressedIds(tok, V);
    const bool backendPicks = session.setSampler(o.sampling, suppressed);
    Sampler sampler(V, o.sampling);
    sampler.setSuppressed(suppressed);
    std::mt19937_64 draws(o.sampling.seed);
    std::vector<float> work(backendPicks ? 0 : std::size_t(V));
    const auto next = [&](std::span<const int> tokens) {
        if (backendPicks) return session.forwardAndPick(tokens, history, o.sampling.greedy() ? 0.0 : samplingDraw(draws));
        const std::span<const float> logits = session.forward(tokens);
        std::copy(logits.begin(), logits.end(), work.begin());
        return sampler.sample(work, history);
    };
    const auto t0 = Clock::now();
    int id = next(prompt);
    const auto t1 = Clock::now();
    r.prefillSeconds = std::chrono::duration<double>(t1 - t0).count();
    std::size_t emitted = 0;
    for (int i = 0; i < o.maxTokens; ++i) {
        if (cancel.cancelled()) {
            r.stopReason = "cancelled";
            break;
        }
        if (std::find(o.stopIds.begin(), o.stopIds.end(), id) != o.stopIds.end()) {
            r.stopReason = "stop";
            break;
        }
        r.tokens.push_back(id);
        history.push_back(id);
        if (onText) {
            const std::string text = tok.decode(r.tokens, true);
            const std::size_t ready = completePrefix(text);
            if (ready > emitted) {
                onText(std::string_view(text).substr(emitted, ready - emitted));
                emitted = ready;
            }
        }
        if (i + 1 == o.maxTokens) break;
        if (session.position() >= session.capacity()) {
            r.stopReason = "context";
            break;
        }
        const int fed = id;
        id = next(std::span<const int>(&fed, 1));
    }
    if (r.stopReason.empty()) r.stopReason = "length";
    r.text = tok.decode(r.tokens, true);
    if (onText && r.text.size() > emitted) onText(std::string_view(r.text).substr(emitted));
    r.decodeSeconds = std::chrono::duration<double>(Clock::now() - t1).count();
    return r;
}

}  // namespace whittle
