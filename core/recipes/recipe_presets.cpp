#include "core/recipes/recipe_presets.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace whittle {

namespace {
RecipePreset preset(std::string id, std::string title, std::string description, const char* json) {
    RecipePreset p{std::move(id), std::move(title), std::move(description), {}};
    p.recipe = parseRecipe(Json::parse(json), "preset " + p.id);
    return p;
}
}  // namespace

const std::vector<RecipePreset>& recipePresets() {
    // GPTQ's calibration is the published 256 × 2048 only for publishing; the others take minutes, not hours.
    static const std::vector<RecipePreset> presets{
        preset("fit-8gb", "Fit an 8 GB GPU",
               "Text only, every token kept, INT4 GPTQ (group 128): E4B's weights in about 3 GB of device memory, the PLE "
               "table in host RAM.",
               R"({"whittle_recipe": 1, "text_only": true,
                   "quantization": {"method": "gptq", "group_size": 128, "format": "gptq",
                                    "calibration": {"samples": 64, "length": 512}},
                   "evaluation": {"max_tokens": 8192}})"),
        preset("smallest-chat", "Smallest that still chats",
               "Text only, English vocabulary, 20 % of FFN channels pruned (FLAP with bias compensation), INT4 GPTQ "
               "(group 32) with the token tables as Q4_0 rows.",
               R"({"whittle_recipe": 1, "text_only": true, "vocabulary": {"preset": "english"},
                   "flap": {"ratio": 0.2, "bias_compensation": true, "calibration": {"samples": 32, "length": 512}},
                   "quantization": {"method": "gptq", "group_size": 32, "format": "gptq", "embeddings": "q4_0",
                                    "calibration": {"samples": 64, "length": 512}},
                   "evaluation": {"max_tokens": 8192}})"),
        preset("publish-gptq", "Publish GPTQ for vLLM",
               "Every token and tower kept; INT4 GPTQ v1 (group 128, activation order, the published 256 × 2048 "
               "calibration) that vLLM and Transformers load.",
               R"({"whittle_recipe": 1,
                   "quantization": {"method": "gptq", "group_size": 128, "format": "gptq", "act_order": true,
                                    "calibration": {"samples": 256, "length": 2048}},
                   "evaluation": {"max_tokens": 8192}})"),
    };
    return presets;
}

const RecipePreset& recipePreset(const std::string& id) {
    std::string ids;
    for (const RecipePreset& p : recipePresets()) {
        if (p.id == id) return p;
        ids += (ids.empty() ? "" : ", ") + p.id;
    }
    throw UsageError("preset " + id + ": unknown (known: " + ids + ")");
}

}  // namespace whittle
