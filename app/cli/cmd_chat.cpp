// whittle-cli chat: an interactive terminal chat in the Gemma 4 chat format. Answers stream as they are made;
// Ctrl-C stops the answer (not the program; a second Ctrl-C at the prompt quits); /reset starts over; /quit or
// end of input ends. Prefill and decode tok/s go to stderr after each answer, so stdout holds the conversation.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "app/cli/args.h"
#include "app/cli/backend.h"
#include "app/cli/commands.h"
#include "app/cli/sampling_args.h"
#include "core/engine/conversation.h"
#include "core/error.h"

namespace whittle::cli {

namespace {
std::atomic<CancelToken*> g_answer{nullptr};

extern "C" void onInterrupt(int) {
    if (CancelToken* c = g_answer.load()) c->cancel();
    else std::_Exit(130);
}
}  // namespace

int runChat(const std::vector<std::string>& argv) {
    const Args a(argv, {"greedy", "ple-vram", "quiet"},
                 {"system", "max-tokens", "seed", "temperature", "top-k", "top-p", "min-p", "repeat-penalty", "ctx", "threads", "backend", "device"});
    if (a.positional().size() != 1)
        throw UsageError(std::string("usage: whittle-cli chat MODEL [--system TEXT] [--max-tokens N] ") + kSamplingUsage + " [--ctx N] " +
                         Backend::kUsage + " [--quiet]");
    const Backend backend(a.positional()[0], a);
    const Checkpoint& ck = backend.checkpoint();
    const Tokenizer tok = Tokenizer::fromModelOrFile(ck.dir());
    GenerateOptions o;
    o.sampling = samplingFromArgs(ck, a);
    o.maxTokens = int(a.uintValue("max-tokens", 512));
    const int ctx = int(a.uintValue("ctx", std::min<std::uint64_t>(4096, std::uint64_t(ck.config().maxPositionEmbeddings))));
    const std::unique_ptr<Session> session = backend.newSession(ctx);
    Conversation chat(*session, tok, ck.specialTokens().eos);
    if (auto s = a.value("system")) chat.setSystemPrompt(*s);
    const bool quiet = a.flag("quiet");
    if (!quiet)
        std::fprintf(stderr, "chatting with %s on %s (%s); /reset starts over, /quit ends, Ctrl-C stops an answer\n", ck.dir().filename().c_str(),
                     backend.deviceName().c_str(), backend.name().c_str());
    std::signal(SIGINT, onInterrupt);
    std::string line;
    while (true) {
        if (!quiet) std::fprintf(stderr, "> ");
        if (!std::getline(std::cin, line)) break;
        if (line == "/quit" || line == "/exit") break;
        if (line == "/reset") {
            chat.clear();
            if (!quiet) std::fprintf(stderr, "(new conversation)\n");
            continue;
        }
        if (line.empty()) continue;
        CancelToken cancel;
        g_answer.store(&cancel);
        GenerateResult r;
        try {
            r = chat.send(line, o, [](std::string_view piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            }, cancel);
        } catch (...) {
            g_answer.store(nullptr);
            throw;
        }
        g_answer.store(nullptr);
        std::printf("\n");
        std::fflush(stdout);
        const int decoded = std::max<int>(0, int(r.tokens.size()) - 1);
        std::fprintf(stderr, "[%d prompt tokens at %.1f tok/s (%d reused); %zu tokens at %.1f tok/s; %s]\n", r.promptTokens,
                     r.promptTokens / std::max(r.prefillSeconds, 1e-9), chat.reusedTokens(), r.tokens.size(),
                     decoded / std::max(r.decodeSeconds, 1e-9), r.stopReason.c_str());
        if (r.stopReason == "context") std::fprintf(stderr, "(the context is full: /reset to continue)\n");
    }
    return 0;
}

}  // namespace whittle::cli
