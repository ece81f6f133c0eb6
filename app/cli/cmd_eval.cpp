#include <cstdio>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/backend.h"
#include "app/cli/commands.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/io/file.h"
#include "core/engine/evaluate.h"
#include "core/model/checkpoint_files.h"

namespace whittle::cli {

int runEval(const std::vector<std::string>& argv) {
    const Args a(argv, {"json", "ple-vram"}, {"text", "ref", "mapping", "ctx", "stride", "max-tokens", "threads", "backend", "device"});
    if (a.positional().size() != 1 || !a.value("text"))
        throw UsageError("usage: whittle-cli eval MODEL --text FILE [--ref ORIGINAL [--mapping FILE (default: MODEL/vocab_mapping.json)]] [--ctx N] [--stride N] "
                         "[--max-tokens N] [--threads N] [--backend cpu|vulkan] [--device N] [--json]");
    EvalOptions o;
    o.ctx = int(a.uintValue("ctx", 512));
    o.stride = int(a.uintValue("stride", std::uint64_t(o.ctx)));
    o.maxTokens = int(a.uintValue("max-tokens", 0));
    const std::string text = readTextFile(*a.value("text"), 1ull << 30);
    const Backend backend(a.positional()[0], a);
    const Checkpoint& ck = backend.checkpoint();
    const Tokenizer tok = Tokenizer::fromModelOrFile(ck.dir());
    const std::unique_ptr<Session> session = backend.newSession(o.ctx);
    std::unique_ptr<Backend> refBackend;
    std::unique_ptr<Session> ref;
    if (auto r = a.value("ref")) {
        refBackend = std::make_unique<Backend>(*r, a);
        ref = refBackend->newSession(o.ctx);
    }
    VocabMapping mapping;
    if (auto m = a.value("mapping")) mapping = loadVocabMapping(*m);
    // A pruned checkpoint carries its own mapping; use it when the vocabularies differ.
    else if (ref && ref->vocabSize() != session->vocabSize() && std::filesystem::exists(ck.dir() / files::kVocabMapping))
        mapping = loadVocabMapping(ck.dir() / files::kVocabMapping);
    ProgressPrinter progress;
    CancelToken cancel;
    const EvalReport r = evaluate(*session, tok, text, o, ref.get(), mapping, progress, cancel);
    if (a.flag("json")) {
        std::cout << toJson(r).dump(2) << "\n";
        return 0;
    }
    std::printf("perplexity %.4f over %d tokens (%d windows of %d, stride %d) in %.1f s\n", r.ppl, r.tokens, r.windows, o.ctx,
                o.stride, r.seconds);
    if (r.kldMean)
        std::printf("KL divergence vs reference: mean %.6f, p99 %.6f; top-1 agreement %.2f %%\n", *r.kldMean, *r.kldP99, 100.0 * *r.top1);
    return 0;
}

}  // namespace whittle::cli
