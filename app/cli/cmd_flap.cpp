#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/recipes/flap.h"
#include "core/recipes/recipe.h"

namespace whittle::cli {

int runFlap(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "json", "no-compensation"}, {"ratio", "metric", "min-keep", "multiple", "seed", "recipe", "calib", "calib-samples", "calib-length"});
    if (a.positional().size() != 2)
        throw UsageError("usage: whittle-cli flap MODEL OUT (--ratio R | --recipe FILE.json) [--no-compensation] [--metric wifv|random] "
                         "[--min-keep F] [--multiple N] [--seed N] [--calib FILES] [--calib-samples N] [--calib-length N] [--force] [--json]");
    Recipe recipe;
    if (auto r = a.value("recipe")) {
        if (a.value("ratio")) throw UsageError("give either --recipe or --ratio, not both");
        recipe = loadRecipe(*r);
        if (!recipe.flap) throw UsageError(*r, {}, "the recipe has no \"flap\" section");
    } else {
        if (!a.value("ratio")) throw UsageError("give --ratio (the share of FFN channels to remove) or --recipe");
        // The flags become the recipe's "flap" section, so both are checked by the same rules (and name the field).
        Json section = Json::object();
        const auto number = [&](const char* flag, const char* key) {
            if (const auto v = a.value(flag)) {
                try {
                    section[key] = Json::parse(*v);
                } catch (const std::exception&) {
                    throw UsageError("--" + std::string(flag) + " " + *v + ": not a number");
                }
            }
        };
        number("ratio", "ratio");
        number("min-keep", "min_keep");
        number("multiple", "multiple");
        number("seed", "seed");
        if (const auto m = a.value("metric")) section["metric"] = *m;
        if (a.flag("no-compensation")) section["bias_compensation"] = false;
        Json calib = Json::object();
        if (!a.listValue("calib").empty()) calib["files"] = a.listValue("calib");
        if (a.value("calib-samples")) calib["samples"] = a.uintValue("calib-samples", 32);
        if (a.value("calib-length")) calib["length"] = a.uintValue("calib-length", 512);
        if (!calib.empty()) section["calibration"] = calib;
        try {
            recipe.flap = parseFlapRecipe(section, "the command line");
        } catch (const FormatError& e) {
            throw UsageError(e.reason());  // a flag's value: the user's to fix
        }
    }
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    ProgressPrinter progress;
    CancelToken cancel;
    const FlapReport r = flapPrune(ck, recipe, a.positional()[1], a.flag("force"), progress, cancel);
    if (a.flag("json")) {
        printJsonReport(toJson(r));
        return 0;
    }
    std::printf("FFN channels: %.1f %% removed (asked %.1f %%), widths", 100 * r.ratioRemoved, 100 * r.ratioRequested);
    for (std::size_t i = 0; i < r.widthsAfter.size(); ++i) std::printf(" %d→%d", r.widthsBefore[i], r.widthsAfter[i]);
    std::printf("\nparameters %llu -> %llu; %s; calibration %d windows, %lld tokens; wrote %s in %.1f s\n", (unsigned long long)r.paramsBefore,
                (unsigned long long)r.paramsAfter,
                r.biasCompensation ? "bias compensation on (Whittle-only: no GGUF export)" : "no bias compensation",
                r.calibrationWindows, (long long)r.calibrationTokens, a.positional()[1].c_str(), r.seconds);
    return 0;
}

}  // namespace whittle::cli
