#include "core/recipes/evaluation.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/recipes/recipe_json.h"

namespace whittle {

Json toJson(const EvaluationRecipe& e) { return Json{{"files", e.files}, {"ctx", e.ctx}, {"max_tokens", e.maxTokens}}; }

EvaluationRecipe parseEvaluationRecipe(const Json& j, const std::string& src) {
    using namespace recipe_json;
    EvaluationRecipe e;
    if (j.is_boolean() && j.get<bool>()) return e;  // "evaluation": true — the defaults
    if (!j.is_object()) throw FormatError(src, {}, "'evaluation' must be an object (or true for the defaults)");
    onlyKeys(j, {"files", "ctx", "max_tokens"}, "evaluation", src);
    if (j.contains("files")) e.files = strings(j["files"], "evaluation.files", src);
    if (j.contains("ctx")) {
        e.ctx = positiveInt(j["ctx"], "evaluation.ctx", src);
        if (e.ctx < 2) throw FormatError(src, {}, "'evaluation.ctx' must be at least 2 tokens");
    }
    if (j.contains("max_tokens")) e.maxTokens = positiveInt(j["max_tokens"], "evaluation.max_tokens", src);
    return e;
}

}  // namespace whittle
