#pragma once
// The plan of one slimming run, made before any work: the recipe's combination checked against the checkpoint
// (every error names the recipe field and the file), and the stages it will run with their estimated cost —
// safetensors bytes each pass reads and writes, and the tokens its forward passes run (calibration, evaluation).
// The bytes are the estimator's (core/estimate) for the recipe up to each stage: exact but for FLAP before
// calibration and the bit budget before its measurement. slim() runs it first.
#include <cstdint>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"

namespace whittle {

struct Recipe;
class Estimator;

struct PlannedStage {
    std::string name;     // text_only | vocabulary | flap | quantization | export | evaluation
    std::string summary;  // what it will do, in words
    std::uint64_t bytesRead = 0, bytesWritten = 0;  // safetensors bytes (headers included), estimated
    std::int64_t forwardTokens = 0;                 // tokens through the CPU reference (calibration, evaluation)
};

struct SlimPlan {
    std::vector<PlannedStage> stages;
    std::uint64_t inputBytes = 0;   // safetensors bytes of the input
    std::uint64_t outputBytes = 0;  // estimated safetensors bytes of the output
};
Json toJson(const SlimPlan& p);
std::string formatPlan(const SlimPlan& p);  // one line per stage, for the CLI and the Run page's log

// Throws UsageError naming the recipe field for a combination that cannot run: nothing to do, a GGUF format,
// text_only on a text-only model, a vocabulary that keeps no token row, calibration or evaluation text
// missing, a quantization group that does not divide FLAP's width multiple, a Whittle-only model (FLAP's bias)
// or foreign codes to a GGUF export, and what each section's own
// planner refuses (exclusions covering every linear, shapes a format cannot pack).
SlimPlan planSlim(const Checkpoint& checkpoint, const Recipe& recipe);
// The same, of the estimator's checkpoint: the stages it computes stay kept there, for the run to reuse
// (Estimator::keptStream).
SlimPlan planSlim(const Estimator& estimator, const Recipe& recipe);

}  // namespace whittle
