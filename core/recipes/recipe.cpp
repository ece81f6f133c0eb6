#include "core/recipes/recipe.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/recipes/recipe_json.h"

namespace whittle {

Json toJson(const Recipe& r) {
    Json j = {{"whittle_recipe", Recipe::kVersion}};
    if (r.vocabulary) j["vocabulary"] = toJson(*r.vocabulary);
    if (r.flap) j["flap"] = toJson(*r.flap);
    if (r.textOnly) j["text_only"] = true;
    if (r.quantization) j["quantization"] = toJson(*r.quantization);
    if (r.exports) j["export"] = toJson(*r.exports);
    if (r.evaluation) j["evaluation"] = toJson(*r.evaluation);
    return j;
}

Recipe parseRecipe(const Json& j, const std::string& src) {
    if (!j.is_object()) throw FormatError(src, {}, "a recipe is a JSON object");
    if (!j.contains("whittle_recipe")) throw FormatError(src, {}, "not a Whittle recipe: missing \"whittle_recipe\": 1");
    if (!j["whittle_recipe"].is_number_integer() || j["whittle_recipe"].get<int>() != Recipe::kVersion)
        throw FormatError(src, {}, "recipe version " + j["whittle_recipe"].dump() + " is not supported (this Whittle reads version 1)");
    recipe_json::onlyKeys(j, {"whittle_recipe", "vocabulary", "text_only", "flap", "quantization", "export", "evaluation"}, "", src);
    Recipe r;
    if (j.contains("vocabulary")) r.vocabulary = parseVocabularyRecipe(j["vocabulary"], src);
    if (j.contains("flap")) r.flap = parseFlapRecipe(j["flap"], src);
    if (j.contains("text_only")) {
        if (!j["text_only"].is_boolean()) throw FormatError(src, {}, "'text_only' must be true or false");
        r.textOnly = j["text_only"].get<bool>();
    }
    if (j.contains("quantization")) r.quantization = parseQuantizeRecipe(j["quantization"], src);
    if (j.contains("export")) r.exports = parseExportRecipe(j["export"], src);
    if (j.contains("evaluation") && j["evaluation"] != Json(false)) r.evaluation = parseEvaluationRecipe(j["evaluation"], src);
    return r;
}

Recipe loadRecipe(const std::filesystem::path& file) { return parseRecipe(readJsonFile(file), file.string()); }

}  // namespace whittle
