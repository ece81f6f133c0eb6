#include <sys/resource.h>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"

namespace whittle::cli {


int runPruneVocab(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "json"}, {"preset", "buckets", "recipe", "corpus", "min-count", "pad"});
    if (a.positional().size() != 2)
        throw UsageError("usage: whittle-cli prune-vocab MODEL OUT (--preset english|latin|european|cjk|corpus | --buckets B,… | "
                         "--recipe FILE.json) [--corpus FILE,…] [--min-count N] [--pad N] [--force] [--json]");
    Recipe recipe;
    if (auto r = a.value("recipe")) {
        if (a.value("preset") || a.value("buckets")) throw UsageError("give either --recipe or --preset/--buckets, not both");
        recipe = loadRecipe(*r);
    } else {
        VocabularyRecipe v;
        if (auto p = a.value("preset")) v.preset = *p;
        v.buckets = a.listValue("buckets");
        if (v.preset.empty() == v.buckets.empty()) throw UsageError("give exactly one of --preset, --buckets or --recipe");
        v.corpusFiles = a.listValue("corpus");
        v.corpusMinCount = int(a.uintValue("min-count", 1));
        v.padMultiple = int(a.uintValue("pad", 256));
        recipe.vocabulary = v;
    }
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    ProgressPrinter progress;
    CancelToken cancel;
    const VocabPruneReport r = pruneVocabulary(ck, recipe, a.positional()[1], a.flag("force"), progress, cancel);
    for (const auto& t : r.droppedWithoutRows)
        std::fprintf(stderr, "note: dropped '%s': an added token with no embedding row\n", t.c_str());
    if (a.flag("json")) {
        printJsonReport(toJson(r));
        return 0;
    }
    std::printf("vocabulary %d -> %d tokens (%d kept + %d padding), merges %d -> %d\n", r.tokensBefore, r.tokensAfterPadding, r.tokensKept,
                r.tokensAfterPadding - r.tokensKept, r.mergesBefore, r.mergesKept);
    std::printf("parameters %llu -> %llu (%llu removed); wrote %s in %.1f s\n", (unsigned long long)r.paramsBefore,
                (unsigned long long)r.paramsAfter, (unsigned long long)(r.paramsBefore - r.paramsAfter), a.positional()[1].c_str(), r.seconds);
    return 0;
}

}  // namespace whittle::cli
