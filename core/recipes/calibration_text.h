#pragma once
// The calibration text a recipe section names (GPTQ, the bit budget, FLAP): text files, how many windows and
// how long; its JSON form ("calibration": {"files", "samples", "length"}) and the token windows it gives.
#include <filesystem>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"

namespace whittle {

struct CalibrationText {
    std::vector<std::string> files;  // text files; empty: the model folder's heldout.txt (the bundled model ships one)
    int samples = 32;                // windows
    int length = 512;                // tokens per window, BOS included
};
Json toJson(const CalibrationText& c);
// Reads a "calibration" object into `out` (keys absent keep its values); errors name `where` and the key.
void parseCalibrationText(const Json& c, const std::string& where, const std::string& src, CalibrationText& out);
// The text files a recipe section names, or — when it names none — the model folder's heldout.txt: the one rule
// calibration (FLAP, GPTQ, the bit budget), evaluation and the plan's checks share. A UsageError names the
// recipe field: "<field>.files: no such file", or the folder without heldout.txt.
std::vector<std::filesystem::path> textFilesOrHeldout(const std::filesystem::path& modelDir, const std::vector<std::string>& files,
                                                      const std::string& field);
// The windows (gptq_calibration.h calibrationWindows) of the files, or of heldout.txt; `field` names the
// recipe's section ("flap.calibration") in errors.
std::vector<std::vector<int>> calibrationTextWindows(const Checkpoint& ck, const CalibrationText& c, const std::string& field);

}  // namespace whittle
