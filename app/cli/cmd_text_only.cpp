#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"

namespace whittle::cli {

int runTextOnly(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "json"}, {});
    if (a.positional().size() != 2) throw UsageError("usage: whittle-cli text-only MODEL OUT [--force] [--json]");
    Recipe recipe;
    recipe.textOnly = true;
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    ProgressPrinter progress;
    CancelToken cancel;
    const TextOnlyReport r = textOnlyRepack(ck, recipe, a.positional()[1], a.flag("force"), progress, cancel);
    if (a.flag("json")) {
        printJsonReport(toJson(r));
        return 0;
    }
    std::printf("removed %d tower tensors (%llu parameters); parameters %llu -> %llu; wrote %s in %.1f s\n", r.towerTensorsRemoved,
                (unsigned long long)r.towerParamsRemoved, (unsigned long long)r.paramsBefore, (unsigned long long)r.paramsAfter,
                a.positional()[1].c_str(), r.seconds);
    return 0;
}

}  // namespace whittle::cli
