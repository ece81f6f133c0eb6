// whittle-cli quantize MODEL OUT: weight quantization from a recipe file or flags. This version runs INT4
// round-to-nearest or GPTQ into GPTQ v1 safetensors, or NVFP4 in ModelOpt's or compressed-tensors' layout;
// the mixed bit budget plugs in as a method.
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

namespace whittle::cli {

int runQuantize(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "json", "asym", "act-order"}, {"recipe", "method", "group", "exclude", "format", "calib", "calib-samples", "calib-length", "damp"});
    if (a.positional().size() != 2)
        throw UsageError("usage: whittle-cli quantize MODEL OUT (--recipe FILE.json | [--method rtn|gptq|nvfp4] [--group N (0: per channel)] [--asym] "
                         "[--exclude GLOB,…] [--format gptq|nvfp4-modelopt|nvfp4-ct] [gptq: --act-order --calib FILE,… --calib-samples N --calib-length N --damp X]) "
                         "[--force] [--json]");
    Recipe recipe;
    if (auto r = a.value("recipe")) {
        for (const char* o : {"method", "group", "exclude", "format", "calib", "calib-samples", "calib-length", "damp"})
            if (a.value(o)) throw UsageError(std::string("give either --recipe or --") + o + ", not both");
        if (a.flag("act-order") || a.flag("asym")) throw UsageError("give either --recipe or --act-order/--asym, not both");
        recipe = loadRecipe(*r);
        if (!recipe.quantization) throw UsageError(*r, {}, "the recipe has no \"quantization\" section");
    } else {
        // The flags build the same JSON section a recipe file holds, so both are checked by one parser.
        Json q = Json::object();
        if (auto m = a.value("method")) q["method"] = *m;
        if (a.value("group")) q["group_size"] = a.uintValue("group", 128);
        if (a.flag("asym")) q["symmetric"] = false;
        if (a.value("exclude")) q["exclude"] = a.listValue("exclude");
        if (auto f = a.value("format")) q["format"] = *f;
        if (a.flag("act-order")) q["act_order"] = true;
        if (auto d = a.value("damp")) {
            try {
                q["damp"] = std::stod(*d);
            } catch (const std::exception&) {
                throw UsageError("--damp must be a number, not '" + *d + "'");
            }
        }
        Json calib = Json::object();
        if (a.value("calib")) calib["files"] = a.listValue("calib");
        if (a.value("calib-samples")) calib["samples"] = a.uintValue("calib-samples", 0);
        if (a.value("calib-length")) calib["length"] = a.uintValue("calib-length", 0);
        if (!calib.empty()) q["calibration"] = calib;
        recipe.quantization = parseQuantizeRecipe(q, "command line");
    }
    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    ProgressPrinter progress;
    CancelToken cancel;
    const QuantizeReport r = quantizeCheckpoint(ck, recipe, a.positional()[1], a.flag("force"), progress, cancel);
    if (a.flag("json")) {
        printJsonReport(toJson(r));
        return 0;
    }
    std::printf("quantized %d tensors (%llu weights) to %s at %.3f bits per weight; %d tensors kept as they were\n", r.tensorsQuantized,
                (unsigned long long)r.weightsQuantized, recipe.quantization->method == "nvfp4" ? "NVFP4" : "INT4", r.bitsPerWeight,
                r.tensorsKept);
    if (r.calibrationWindows)
        std::printf("GPTQ: %d calibration windows (%lld tokens), %.1f s\n", r.calibrationWindows, (long long)r.calibrationTokens, r.gptqSeconds);
    for (const auto& e : r.excluded) std::printf("  kept by an exclusion rule: %s\n", e.c_str());
    std::printf("%.1f MB -> %.1f MB; wrote %s in %.1f s\n", double(r.bytesBefore) / 1e6, double(r.bytesWritten) / 1e6,
                a.positional()[1].c_str(), r.seconds);
    return 0;
}

}  // namespace whittle::cli
