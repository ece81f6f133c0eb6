#include "core/estimate/vocabulary_sizes.h"

#include <algorithm>

namespace whittle {

namespace {
std::uint64_t removedRows(int rows, int keptRows) { return std::uint64_t(std::max(0, rows - std::max(0, keptRows))); }
}  // namespace

std::uint64_t VocabularySizes::parametersAt(int keptRows) const { return full.parameters - removedRows(rows, keptRows) * row.params(); }

std::uint64_t VocabularySizes::tensorBytesAt(int keptRows) const { return full.tensorBytes - removedRows(rows, keptRows) * row.bytes(); }

VocabularySizes vocabularySizes(const Estimator& estimator, Recipe recipe) {
    recipe.vocabulary.reset();
    VocabularySizes v;
    const Estimate e = estimator.estimate(recipe, RuntimeOptions{});
    v.input = e.input;
    v.full = e.output;
    const std::shared_ptr<const Checkpoint> planned = estimator.plannedOutput(recipe);
    v.rows = planned->config().vocabSize;
    v.row = tokenRowCost(makeInventory(*planned));
    return v;
}

}  // namespace whittle
