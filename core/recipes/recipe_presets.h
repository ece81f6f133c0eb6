#pragma once
// The recipes Whittle ships as starting points (the Recipe page's presets): plain recipe files, checked by the
// same parser as any other, so a preset is never a combination the pipeline refuses.
#include <string>
#include <vector>

#include "core/recipes/recipe.h"

namespace whittle {

struct RecipePreset {
    std::string id;           // "fit-8gb", "smallest-chat", "publish-gptq"
    std::string title;        // "Fit an 8 GB GPU"
    std::string description;  // one sentence: what it does and for whom
    Recipe recipe;
};

const std::vector<RecipePreset>& recipePresets();
// Throws UsageError listing the ids for an unknown one.
const RecipePreset& recipePreset(const std::string& id);

}  // namespace whittle
