#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/backend.h"
#include "app/cli/commands.h"
#include "app/cli/sampling_args.h"
#include "core/error.h"
#include "core/io/json_file.h"
#include "core/engine/generator.h"
#include "core/tokenizer/chat_format.h"

namespace whittle::cli {

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
    o.sampling = samplingFromArgs(ck, a);
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
