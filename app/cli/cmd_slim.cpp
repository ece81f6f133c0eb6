#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "app/cli/recipe_args.h"
#include "core/error.h"
#include "core/pipeline/slim.h"
#include "core/recipes/recipe.h"

namespace whittle::cli {


int runSlim(const std::vector<std::string>& argv) {
    std::set<std::string> flags = kRecipeFlags, valued = kRecipeOptions;
    flags.insert({"force", "json", "eval", "plan-only"});
    valued.insert({"eval-text", "eval-tokens", "eval-ctx"});
    const Args a(argv, flags, valued);
    if (a.positional().size() != 2)
        throw UsageError("usage: whittle-cli slim MODEL OUT (--recipe FILE.json | --preset fit-8gb|smallest-chat|publish-gptq | [--text-only] [--vocab english|latin|european|cjk] "
                         "[--flap RATIO [--no-compensation]] [--quantize rtn|gptq|nvfp4 [--group N] [--act-order]] "
                         "[--calib-samples N] [--calib-length N]) [--export gguf-q4_0[,gguf-f16…]] [--eval [--eval-text FILE] [--eval-tokens N] [--eval-ctx N]] [--plan-only] [--force] [--json]");
    Recipe recipe = recipeFromArgs(a);
    // --eval-* refine the evaluation (of a recipe file too): the quality report measured into whittle.json.
    const bool evalFlags = a.value("eval-text") || a.value("eval-tokens") || a.value("eval-ctx");
    if (evalFlags && !recipe.evaluation) throw UsageError("--eval-text, --eval-tokens and --eval-ctx go with --eval");
    if (const auto t = a.value("eval-text")) recipe.evaluation->files = {*t};
    if (a.value("eval-tokens")) recipe.evaluation->maxTokens = int(a.uintValue("eval-tokens", 0));
    if (a.value("eval-ctx")) recipe.evaluation->ctx = int(a.uintValue("eval-ctx", 0));
    if (recipe.evaluation && (recipe.evaluation->maxTokens < 1 || recipe.evaluation->ctx < 2))
        throw UsageError("--eval-tokens must be at least 1 and --eval-ctx at least 2");
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    if (a.flag("plan-only")) {  // the checks and the estimates, nothing written
        const SlimPlan plan = planSlim(ck, recipe);
        if (a.flag("json")) printJsonReport(toJson(plan));
        else std::printf("%s", formatPlan(plan).c_str());
        return 0;
    }
    ProgressPrinter progress;
    CancelToken cancel;
    const SlimReport r = slim(ck, recipe, a.positional()[1], a.flag("force"), progress, cancel);
    if (a.flag("json")) {
        printJsonReport(toJson(r));
        return 0;
    }
    std::printf("stages:");
    for (const auto& s : r.stages) std::printf(" %s", s.c_str());
    std::printf("; wrote %s (%.1f MB) in %.1f s\n", a.positional()[1].c_str(), double(r.bytesWritten) / 1e6, r.seconds);
    if (r.quality)
        std::printf("quality vs input on %d held-out tokens: perplexity %.4f (input %.4f), KL divergence mean %.6f, p99 %.6f, top-1 %.2f %%\n",
                    r.quality->tokens, r.quality->ppl, *r.quality->refPpl, *r.quality->kldMean, *r.quality->kldP99, 100.0 * *r.quality->top1);
    return 0;
}

}  // namespace whittle::cli
