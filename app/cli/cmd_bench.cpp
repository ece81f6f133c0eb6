#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/alloc_counter.h"
#include "app/cli/args.h"
#include "app/cli/backend.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "core/engine/sampler.h"

namespace whittle::cli {

int runBench(const std::vector<std::string>& argv) {
    using Clock = std::chrono::steady_clock;
    const Args a(argv, {"json", "no-check", "ple-vram"}, {"backend", "prompt-tokens", "decode-tokens", "threads", "device"});
    if (a.positional().size() != 1)
        throw UsageError("usage: whittle-cli bench MODEL [--backend cpu|vulkan] [--device N] [--prompt-tokens N] [--decode-tokens N] [--threads N] [--json]");
    const int promptTokens = int(a.uintValue("prompt-tokens", 64)), decodeTokens = int(a.uintValue("decode-tokens", 16));
    if (promptTokens < 1 || decodeTokens < 1) throw UsageError("--prompt-tokens and --decode-tokens must be positive");
    const auto t0 = Clock::now();
    const Backend backend(a.positional()[0], a, !a.flag("no-check"));
    const Checkpoint& ck = backend.checkpoint();
    const double loadSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::unique_ptr<Session> sessionPtr = backend.newSession(promptTokens + decodeTokens + 1);
    Session& session = *sessionPtr;
    const int V = session.vocabSize();
    std::vector<int> prompt(static_cast<std::size_t>(promptTokens));
    for (int i = 0; i < promptTokens; ++i) prompt[std::size_t(i)] = i == 0 ? 2 : 200 + (i * 7919) % (V - 200);
    Sampler sampler(V, SamplingParams{});
    std::vector<float> work(static_cast<std::size_t>(V));
    std::vector<int> history = prompt;
    history.reserve(history.size() + std::size_t(decodeTokens) + 1);
    // Greedy, as generate() runs it: picked by the backend when it can (only the id comes back), else here.
    const bool backendPicks = session.setSampler(SamplingParams{}, std::vector<bool>(std::size_t(V), false));
    const auto feed = [&](std::span<const int> tokens) {
        if (backendPicks) return session.forwardAndPick(tokens, history, 0.0);
        const auto logits = session.forward(tokens);
        std::copy(logits.begin(), logits.end(), work.begin());
        return sampler.sample(work, history);
    };

    const auto p0 = Clock::now();
    int next = feed(prompt);
    const double prefill = std::chrono::duration<double>(Clock::now() - p0).count();
    // First decode step outside the measurement: it sizes the worker threads' row buffers.
    auto step = [&] {
        history.push_back(next);
        next = feed(std::span<const int>(&history.back(), 1));
    };
    step();
    const std::uint64_t allocBefore = allocationCount();
    const auto d0 = Clock::now();
    for (int i = 1; i < decodeTokens; ++i) step();
    const double decode = std::chrono::duration<double>(Clock::now() - d0).count();
    const std::uint64_t allocs = allocationCount() - allocBefore;
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    const int measured = decodeTokens - 1;
    const Json j = {{"model", ck.dir().string()},
                    {"backend", backend.name()},
                    {"threads", backend.threads()},
                    {"load_seconds", loadSeconds},
                    {"prompt_tokens", promptTokens},
                    {"prefill_tok_per_s", promptTokens / prefill},
                    {"decode_tokens", measured},
                    {"decode_tok_per_s", measured > 0 ? measured / decode : 0.0},
                    {"allocations_per_decoded_token", measured > 0 ? double(allocs) / measured : 0.0},
                    {"peak_rss_bytes", std::uint64_t(ru.ru_maxrss) * 1024},
                    {"device", backend.deviceName()},
                    {"backend_picks_tokens", backendPicks},
                    {"engine", backend.sessionStats(session)}};
    if (a.flag("json")) {
        std::cout << j.dump(2) << "\n";
    } else {
        std::printf("load %.2f s; prefill %.1f tok/s (%d tokens); decode %.2f tok/s (%d tokens); %.2f allocations per decoded token; "
                    "peak RSS %.1f MB\n",
                    loadSeconds, promptTokens / prefill, promptTokens, measured / decode, measured, double(allocs) / measured,
                    double(ru.ru_maxrss) / 1024.0);
    }
    return 0;
}

}  // namespace whittle::cli
