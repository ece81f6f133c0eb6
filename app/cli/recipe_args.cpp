#include "app/cli/recipe_args.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/recipes/recipe_presets.h"

namespace whittle::cli {

namespace {

Json numberFlag(const Args& a, const char* flag) {
    const auto v = a.value(flag);
    try {
        const Json j = Json::parse(*v);
        if (!j.is_number()) throw std::invalid_argument(*v);
        return j;
    } catch (const std::exception&) {
        throw UsageError("--" + std::string(flag) + " " + *v + ": not a number");
    }
}

}  // namespace

Recipe recipeFromArgs(const Args& a) {
    Recipe recipe;
    const bool flags = a.flag("text-only") || a.value("vocab") || a.value("flap") || a.value("quantize");
    if (a.value("recipe") && a.value("preset")) throw UsageError("give either --recipe or --preset, not both");
    if (a.value("recipe") || a.value("preset")) {
        const char* which = a.value("recipe") ? "--recipe" : "--preset";
        if (flags) throw UsageError(std::string("give either ") + which + " or the recipe flags, not both");
        recipe = a.value("recipe") ? loadRecipe(*a.value("recipe")) : recipePreset(*a.value("preset")).recipe;
        if (a.flag("eval") && !recipe.evaluation) recipe.evaluation = EvaluationRecipe{};
        if (a.value("export")) throw UsageError(std::string("give either ") + which + " (with its \"export\") or --export, not both");
    } else {
        // The flags become a recipe, checked by the same rules as a file (errors name the field).
        Json j{{"whittle_recipe", Recipe::kVersion}};
        Json calib = Json::object();
        if (a.value("calib-samples")) calib["samples"] = numberFlag(a, "calib-samples");
        if (a.value("calib-length")) calib["length"] = numberFlag(a, "calib-length");
        if (a.flag("text-only")) j["text_only"] = true;
        if (const auto v = a.value("vocab")) j["vocabulary"] = {{"preset", *v}};
        if (a.value("flap")) {
            j["flap"] = {{"ratio", numberFlag(a, "flap")}};
            if (a.flag("no-compensation")) j["flap"]["bias_compensation"] = false;
            if (!calib.empty()) j["flap"]["calibration"] = calib;
        }
        if (const auto q = a.value("quantize")) {
            j["quantization"] = {{"method", *q}};
            if (a.value("group")) j["quantization"]["group_size"] = numberFlag(a, "group");
            if (a.flag("act-order")) j["quantization"]["act_order"] = true;
            if (!calib.empty() && (*q == "gptq" || *q == "budget")) j["quantization"]["calibration"] = calib;
        }
        if (a.flag("eval")) j["evaluation"] = Json::object();
        if (a.value("export")) j["export"] = a.listValue("export");
        try {
            recipe = parseRecipe(j, "the command line");
        } catch (const FormatError& e) {
            throw UsageError(e.reason());
        }
    }
    return recipe;
}

bool hasRecipeArgs(const Args& a) {
    return a.value("recipe") || a.value("preset") || a.flag("text-only") || a.value("vocab") || a.value("flap") || a.value("quantize");
}

}  // namespace whittle::cli
