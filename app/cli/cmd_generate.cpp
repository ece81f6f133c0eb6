#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/backend.h"
#include "app/cli/commands.h"
#include "core/error.h"
#include "core/io/json_file.h"
#include "core/engine/generator.h"
#include "core/tokenizer/chat_format.h"

namespace whittle::cli {

namespace {
float floatValue(const Args& a, const char* name, float fallback) {
    const auto v = a.value(name);
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const float f = std::stof(*v, &used);
        if (used != v->size()) throw std::invalid_argument(*v);
        return f;
    } catch (const std::exception&) {
        throw UsageError(std::string("option --") + name + " needs a number, got '" + *v + "'");
    }
}

// generation_config.json's sampling defaults; the model's own file wins over ours.
SamplingParams defaultsFrom(const Checkpoint& ck) {
    SamplingParams s;
    const auto path = ck.dir() / "generation_config.json";
    if (!ck.hasGenerationConfig()) return s;
    const Json g = readJsonFile(path);
    if (!g.value("do_sample", false)) return s;
    s.temperature = g.value("temperature", 1.0f);
    s.topK = g.value("top_k", 0);
    s.topP = g.value("top_p", 1.0f);
    s.minP = g.value("min_p", 0.0f);
    s.repetitionPenalty = g.value("repetition_penalty", 1.0f);
    return s;
}
}  // namespace

int runGenerate(const std::vector<std::string>& argv) {
    const Args a(argv, {"chat", "greedy", "ple-vram"},
                 {"prompt", "system", "max-tokens", "seed", "temperature", "top-k", "top-p", "min-p", "repeat-penalty", "ctx",
                  "threads", "backend", "device"});
    if (a.positional().size() != 1 || !a.value("prompt"))
        throw UsageError("usage: whittle-cli generate MODEL --prompt TEXT [--chat [--system TEXT]] [--max-tokens N] [--seed N] "
                         "[--greedy | --temperature T --top-k K --top-p P --min-p P --repeat-penalty R] [--ctx N] [--threads N] "
                         "[--backend cpu|vulkan] [--device N]");
    const Backend backend(a.positional()[0], a);
    const Checkpoint& ck = backend.checkpoint();
    const Tokenizer tok = Tokenizer::fromModelOrFile(ck.dir());
    GenerateOptions o;
    o.sampling = defaultsFrom(ck);
    o.sampling.seed = a.uintValue("seed", 0);
    if (a.flag("greedy")) o.sampling.temperature = 0.0f;
    o.sampling.temperature = floatValue(a, "temperature", o.sampling.temperature);
    o.sampling.topK = int(a.uintValue("top-k", std::uint64_t(o.sampling.topK)));
    o.sampling.topP = floatValue(a, "top-p", o.sampling.topP);
    o.sampling.minP = floatValue(a, "min-p", o.sampling.minP);
    o.sampling.repetitionPenalty = floatValue(a, "repeat-penalty", o.sampling.repetitionPenalty);
    validate(o.sampling);
    o.maxTokens = int(a.uintValue("max-tokens", 128));
    o.stopIds = ck.specialTokens().eos;

    std::vector<int> prompt;
    if (a.flag("chat")) {
        std::vector<ChatMessage> messages;
        if (auto s = a.value("system")) messages.push_back({"system", *s});
        messages.push_back({"user", *a.value("prompt")});
        prompt = encodeChat(tok, messages);
    } else {
        prompt = tok.encode(*a.value("prompt"));
    }
    const int ctx = int(a.uintValue("ctx", std::min<std::uint64_t>(4096, std::uint64_t(ck.config().maxPositionEmbeddings))));
    const std::unique_ptr<Session> session = backend.newSession(ctx);
    CancelToken cancel;
    const GenerateResult r = generate(*session, tok, prompt, o, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    }, cancel);
    std::printf("\n");
    const int decoded = std::max<int>(0, int(r.tokens.size()) - 1);
    std::fprintf(stderr, "prompt %d tokens in %.2f s (%.1f tok/s); generated %zu tokens in %.2f s (%.1f tok/s); stop: %s\n",
                 r.promptTokens, r.prefillSeconds, r.promptTokens / std::max(r.prefillSeconds, 1e-9), r.tokens.size(),
                 r.decodeSeconds, decoded / std::max(r.decodeSeconds, 1e-9), r.stopReason.c_str());
    return 0;
}

}  // namespace whittle::cli
