#include "core/recipes/calibration_text.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/recipes/gptq_calibration.h"
#include "core/recipes/recipe_json.h"
#include "core/tokenizer/tokenizer.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

Json toJson(const CalibrationText& c) { return Json{{"files", c.files}, {"samples", c.samples}, {"length", c.length}}; }

void parseCalibrationText(const Json& c, const std::string& where, const std::string& src, CalibrationText& out) {
    using namespace recipe_json;
    if (!c.is_object()) throw FormatError(src, {}, "'" + where + "' must be an object");
    onlyKeys(c, {"files", "samples", "length"}, where, src);
    if (c.contains("files")) out.files = strings(c["files"], where + ".files", src);
    if (c.contains("samples")) out.samples = positiveInt(c["samples"], where + ".samples", src);
    if (c.contains("length")) {
        out.length = positiveInt(c["length"], where + ".length", src);
        if (out.length < 2) throw FormatError(src, {}, "'" + where + ".length' must be at least 2 tokens");
    }
}

std::vector<fs::path> textFilesOrHeldout(const fs::path& modelDir, const std::vector<std::string>& files, const std::string& field) {
    std::vector<fs::path> out;
    for (const auto& f : files) {
        if (!fs::is_regular_file(f)) throw UsageError(f, {}, field + ".files: no such file");
        out.emplace_back(f);
    }
    if (out.empty()) {
        const fs::path h = modelDir / files::kHeldoutText;
        if (!fs::exists(h)) throw UsageError(modelDir.string(), {}, std::string("has no ") + files::kHeldoutText + ": give " + field + ".files (text files)");
        out.push_back(h);
    }
    return out;
}

std::vector<std::vector<int>> calibrationTextWindows(const Checkpoint& ck, const CalibrationText& c, const std::string& field) {
    return calibrationWindows(checkpointTokenizer(ck), textFilesOrHeldout(ck.dir(), c.files, field), c.samples, c.length);
}

}  // namespace whittle
