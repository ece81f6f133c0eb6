#pragma once
// The calibration text a recipe section names (GPTQ, the bit budget, FLAP): text files, how many windows and
// how long; its JSON form ("calibration": {"files", "samples", "length"}) and the token windows it gives.
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
// The windows (gptq_calibration.h calibrationWindows) of the files, or of heldout.txt; `who` names the recipe
// in the error when there is no text.
std::vector<std::vector<int>> calibrationTextWindows(const Checkpoint& ck, const CalibrationText& c, const std::string& who);

}  // namespace whittle
