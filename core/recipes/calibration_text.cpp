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

std::vector<std::vector<int>> calibrationTextWindows(const Checkpoint& ck, const CalibrationText& c, const std::string& who) {
    std::vector<fs::path> files(c.files.begin(), c.files.end());
    if (files.empty()) {
        if (!fs::exists(ck.dir() / files::kHeldoutText)) throw UsageError(ck.dir().string(), {}, "has no heldout.txt: " + who + " needs calibration text files");
        files.push_back(ck.dir() / files::kHeldoutText);
    }
    return calibrationWindows(Tokenizer::fromModelOrFile(ck.dir()), files, c.samples, c.length);
}

}  // namespace whittle
