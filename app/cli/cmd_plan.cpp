// whittle-cli plan MODEL PLANNED.json: the recipe with the choices its calibration makes — FLAP's kept widths,
// the bit budget's formats — written into it (core/pipeline/calibrate.h), so `estimate` gives the exact sizes
// and `slim` keeps those choices. Prints what was chosen and the exact estimate.
#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "app/cli/recipe_args.h"
#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/model/inventory.h"
#include "core/pipeline/calibrate.h"

namespace fs = std::filesystem;

namespace whittle::cli {

namespace {

// Written beside and renamed over, so a planned recipe is whole or absent.
void writeRecipeFile(const fs::path& path, const Json& j, bool force) {
    if (fs::exists(path) && !force) throw UsageError(path.string(), {}, "exists (--force replaces it)");
    const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove(tmp);
    writeJsonFile(tmp, j);
    fs::rename(tmp, path);
}

}  // namespace

int runPlan(const std::vector<std::string>& argv) {
    std::set<std::string> flags = kRecipeFlags;
    flags.insert({"json", "force"});
    const Args a(argv, flags, kRecipeOptions);
    if (a.positional().size() != 2 || !hasRecipeArgs(a))
        throw UsageError("usage: whittle-cli plan MODEL PLANNED.json (--recipe FILE.json | --preset ID | --flap R --quantize budget …) [--force] [--json]");
    const Recipe recipe = recipeFromArgs(a);
    const fs::path dest = a.positional()[1];
    if (fs::exists(dest) && !a.flag("force")) throw UsageError(dest.string(), {}, "exists (--force replaces it)");
    const auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(a.positional()[0]));
    ProgressPrinter progress;
    CancelToken cancel;
    // The stages' models go beside the planned recipe, like a run's partial output beside its destination.
    const fs::path scratch = fs::absolute(dest).parent_path() / (dest.filename().string() + ".calibrating");
    const CalibratedRecipe c = calibrateRecipe(*ck, recipe, scratch, progress, cancel);
    writeRecipeFile(dest, toJson(c.recipe), a.flag("force"));
    const Estimate e = Estimator(ck).estimate(c.recipe, RuntimeOptions{});
    if (a.flag("json")) {
        Json j{{"recipe", toJson(c.recipe)}, {"estimate", toJson(e)}, {"seconds", c.seconds}, {"written", dest.string()}};
        if (c.flap) j["flap"] = toJson(*c.flap);
        if (c.budget) j["bit_budget"] = toJson(*c.budget);
        printJsonReport(j);
        return 0;
    }
    if (!needsCalibration(recipe)) std::printf("nothing to calibrate: the recipe's sizes were already exact\n");
    if (c.flap) {
        std::printf("FLAP keeps %.1f %% of the FFN channels (asked to remove %.1f %%), widths", 100 * (1 - c.flap->ratioRemoved),
                    100 * c.flap->ratioRequested);
        for (std::size_t i = 0; i < c.flap->widthsAfter.size(); ++i) std::printf(" %d→%d", c.flap->widthsBefore[i], c.flap->widthsAfter[i]);
        std::printf("\n");
    }
    if (c.budget) std::fputs(formatPlanTable(*c.budget).c_str(), stdout);
    std::printf("output: %s on disk (safetensors %s), %s parameters, %s of device memory at %d positions%s\n",
                formatBytes(e.output.diskBytes()).c_str(), formatBytes(e.output.tensorBytes).c_str(), formatParams(e.output.parameters).c_str(),
                formatBytes(e.output.memory.deviceTotal()).c_str(), RuntimeOptions{}.context, e.exact ? "" : " (estimated)");
    std::printf("wrote %s in %.1f s (whittle-cli slim MODEL OUT --recipe %s keeps these choices)\n", dest.string().c_str(), c.seconds,
                dest.string().c_str());
    return 0;
}

}  // namespace whittle::cli
