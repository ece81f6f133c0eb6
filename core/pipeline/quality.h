#pragma once
// The quality report of a slimmed checkpoint (the recipe's "evaluation" section): the CPU reference runs the
// output and the original on the same held-out windows; when their vocabularies differ, the output's
// vocab_mapping.json maps its ids to the original's.
#include <filesystem>

#include "core/engine/evaluate.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/recipes/evaluation.h"

namespace whittle {

// The held-out text an evaluation reads: its files, or `original`'s heldout.txt; errors name evaluation.files
// when there is none.
std::string evaluationText(const Checkpoint& original, const EvaluationRecipe& e);

// The model's perplexity alone (no reference) on evaluationText(model, e).
EvalReport evaluateAlone(const Checkpoint& model, const EvaluationRecipe& e, Progress& progress, const CancelToken& cancel);

// `original` gives the default text (evaluationText).
EvalReport evaluateAgainstOriginal(const Checkpoint& output, const Checkpoint& original, const EvaluationRecipe& e, Progress& progress,
                                   const CancelToken& cancel);

// The vocabulary mapping a checkpoint folder carries (empty when it has none: same vocabulary as its source).
VocabMapping vocabMappingOf(const std::filesystem::path& modelDir);

}  // namespace whittle
