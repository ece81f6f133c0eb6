#pragma once
// Planning a recipe's calibration-dependent choices before the run, so its sizes are exact before it runs:
// FLAP's kept width per layer (flap.widths) and the bit budget's format per linear (quantization.formats).
// Both are decided by running calibration text through the model the stages before them made, exactly as the
// run does (so the run of the original recipe and of the planned one keep the same widths and formats); the
// run of the planned recipe then keeps them without deciding again. Nothing is written but a scratch folder
// for those stages' models, removed however the planning ends. whittle-cli plan and the Recipe page's
// "Calibrate" call it.
#include <filesystem>
#include <optional>

#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/recipes/bit_budget.h"
#include "core/recipes/flap.h"
#include "core/recipes/recipe.h"

namespace whittle {

class Estimator;

// Whether the recipe's sizes wait for a calibration: FLAP without widths, the bit budget without formats.
bool needsCalibration(const Recipe& recipe);

struct CalibratedRecipe {
    Recipe recipe;                        // the input recipe with its widths and formats filled in
    std::optional<FlapReport> flap;       // FLAP's selection, when it was made here
    std::optional<BitBudgetPlan> budget;  // the budget's measurement and choice, when made here
    double seconds = 0;
};

// Checks the recipe as slim does (planSlim), then makes the choices it lacks. `scratch`: a folder to create
// (beside the output the recipe is for: the stages' models may be large), removed before returning or
// throwing. Throws CancelledError when cancelled.
CalibratedRecipe calibrateRecipe(const Checkpoint& checkpoint, const Recipe& recipe, const std::filesystem::path& scratch, Progress& progress,
                                 const CancelToken& cancel);
// The same, of the estimator's checkpoint, reusing the stages it keeps (the Recipe page passes its live one:
// the vocabulary's tokens are not selected again).
CalibratedRecipe calibrateRecipe(const Estimator& estimator, const Recipe& recipe, const std::filesystem::path& scratch, Progress& progress,
                                 const CancelToken& cancel);

}  // namespace whittle
