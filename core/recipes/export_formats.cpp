#include "core/recipes/export_formats.h"

#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/export/gguf_export.h"
#include "core/recipes/recipe_json.h"

namespace whittle {

Json toJson(const ExportRecipe& e) { return Json{{"formats", e.formats}}; }

ExportRecipe parseExportRecipe(const Json& j, const std::string& src) {
    using namespace recipe_json;
    ExportRecipe e;
    const Json* list = &j;
    if (j.is_object()) {
        onlyKeys(j, {"formats"}, "export", src);
        if (!j.contains("formats")) throw FormatError(src, {}, "'export.formats' is missing");
        list = &j["formats"];
    }
    e.formats = strings(*list, "export.formats", src);
    if (e.formats.empty()) throw FormatError(src, {}, "'export.formats' lists no format");
    std::set<std::string> seen;
    for (const auto& f : e.formats) {
        try {
            (void)ggufFormatType(f, "export.formats");
        } catch (const UsageError& err) {
            throw FormatError(src, {}, err.reason());
        }
        if (!seen.insert(f).second) throw FormatError(src, {}, "'export.formats' names " + f + " twice");
    }
    return e;
}

}  // namespace whittle
