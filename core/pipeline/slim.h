#pragma once
// One slimming run from one recipe: every section it has, in the one order they compose — text-only repack,
// vocabulary pruning, FLAP, quantization — each stage reading the previous one's output, so FLAP and GPTQ
// calibrate on the already-pruned model. Stages are passes today: each streams tensor by tensor into a folder
// inside the run's own partial output (<dest>.partial-…, removed if the run fails, is cancelled, or — on the
// next run — was killed), the previous stage's folder is deleted once the next one is written, and the last
// stage's files become <dest> by one rename. The output's whittle.json holds the recipe, the input files' SHA-256,
// every stage's report and time, parameters and bytes by part before and after, and — when the recipe has an
// "evaluation" section — the quality report (PPL, KLD, top-1 against the input, quality.h), measured before
// the rename so a run that cannot evaluate leaves no output.
// The recipe's "export" formats (GGUF for llama.cpp) are written from the last stage into the same output.
// (A fused single pass over the tensors, with every format a sink of it, is the next step.)
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

struct SlimReport {
    SlimPlan plan;  // planSlim's checks and estimates, made before any work
    std::vector<std::string> stages;
    std::vector<Json> stageReports;  // each stage's own report, in order
    std::vector<double> stageSeconds;
    std::optional<EvalReport> quality;  // the recipe's "evaluation": the output against the input
    std::uint64_t bytesWritten = 0;  // the output folder's files
    double seconds = 0;
};
Json toJson(const SlimReport& r);

// Plans first (plan.h: every check before any work; UsageError naming the recipe field), then runs the stages.
SlimReport slim(const Checkpoint& checkpoint, const Recipe& recipe, const std::filesystem::path& dest, bool force, Progress& progress,
                const CancelToken& cancel);

}  // namespace whittle
