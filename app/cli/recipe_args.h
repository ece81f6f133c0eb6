#pragma once
// The recipe on the command line, as slim and estimate take it: --recipe FILE.json, --preset ID (recipe_presets.h), or the common cases as flags
// (--text-only, --vocab P, --flap R [--no-compensation], --quantize M [--group N] [--act-order],
// --calib-samples N, --calib-length N, --export F,…; --eval where the command accepts it), made into the same
// JSON a file holds and checked by the same parser, so an error names the recipe field.
#include "app/cli/args.h"
#include "core/recipes/recipe.h"

namespace whittle::cli {

// The flags and valued options recipeFromArgs reads (a command adds its own).
inline const std::set<std::string> kRecipeFlags{"text-only", "no-compensation", "act-order"};
inline const std::set<std::string> kRecipeOptions{"recipe", "preset", "vocab", "flap", "quantize", "group", "calib-samples", "calib-length", "export"};

Recipe recipeFromArgs(const Args& args);
// Whether the command line names a recipe at all (a file, a preset or a recipe flag).
bool hasRecipeArgs(const Args& args);

}  // namespace whittle::cli
