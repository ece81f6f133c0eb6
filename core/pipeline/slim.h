#pragma once
// One slimming run from one recipe: every section it has, in the one order they compose — text-only repack,
// vocabulary pruning, FLAP, quantization — so FLAP and GPTQ calibrate on the already-pruned model.
// Text-only, vocabulary and FLAP's channel slicing are transforms of one tensor stream (tensor_stream.h):
// consecutive ones run as one pass over the bytes they read. A stage that must run a model — FLAP's and
// GPTQ's calibration — needs the model before it on disk, so the pending transforms are written out there
// (into a folder inside the run's own partial output, <dest>.partial-…, removed if the run fails, is
// cancelled, or — on the next run — was killed) and the stage reads that. Quantization is a pass of its own.
// The canonical recipe (text-only + vocabulary + FLAP + GPTQ) is three passes: text-only+vocabulary, then
// FLAP's slicing, then GPTQ. The last pass's files become <dest> by one rename; each pass's folder is deleted
// once the next is written. The output's whittle.json holds the recipe, the input files' SHA-256, every
// stage's report and time, the passes, parameters and bytes by part before and after, and — when the recipe
// has an "evaluation" section — the quality report (PPL, KLD, top-1 against the input, quality.h), measured
// before the rename so a run that cannot evaluate leaves no output.
// The recipe's "export" formats (GGUF for llama.cpp) are written from the last pass's checkpoint into the same
// output (each its own read of it: the GGUF writer is not yet a sink of the stream).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/engine/evaluate.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/plan.h"
#include "core/progress.h"

namespace whittle {

struct Recipe;

// The stages a recipe runs, in order: "text_only", "vocabulary", "flap", "quantization", "export", "evaluation".
std::vector<std::string> slimStages(const Recipe& recipe);

// One pass over the tensors: the stream transforms it fused (text_only, vocabulary, flap), or quantization.
struct SlimPass {
    std::vector<std::string> stages;
    double seconds = 0;
    std::uint64_t bytesWritten = 0;  // tensor files
};

struct SlimReport {
    SlimPlan plan;  // planSlim's checks and estimates, made before any work
    std::vector<std::string> stages;
    std::vector<Json> stageReports;  // each stage's own report, in order
    std::vector<double> stageSeconds;  // a stage's own work plus the pass that wrote it (fused stages share it)
    std::vector<int> stagePass;        // 1-based index into passes, per transforming stage
    std::vector<SlimPass> passes;
    std::optional<EvalReport> quality;  // the recipe's "evaluation": the output against the input
    std::uint64_t bytesWritten = 0;  // the output folder's files
    double seconds = 0;
};
Json toJson(const SlimReport& r);

// Plans first (plan.h: every check before any work; UsageError naming the recipe field), then runs the stages.
SlimReport slim(const Checkpoint& checkpoint, const Recipe& recipe, const std::filesystem::path& dest, bool force, Progress& progress,
                const CancelToken& cancel);

}  // namespace whittle
