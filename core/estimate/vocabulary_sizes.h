#pragma once
// The output's size as a function of its vocabulary, for the pages that price token selections live (the
// Vocabulary page, `whittle-cli buckets`): the estimator's output of a recipe with every token row kept, and
// what one token row costs in it — its row in every tensor with a row per token id (the main embedding, an
// untied head, the PLE table), stored as the recipe stores them (dense, or rows of Q8_0/Q4_0 blocks). The
// output at any row count follows in O(1). These are the estimator's figures, not a rule of their own:
// tst_estimate checks them against estimate() of the same recipe with a vocabulary section.
#include <cstdint>

#include "core/estimate/estimate.h"
#include "core/model/inventory.h"

namespace whittle {

struct VocabularySizes {
    int rows = 0;          // the output's token rows with every token kept (vocab_size)
    OutputEstimate input;  // the checkpoint as it is
    OutputEstimate full;   // the output with every token kept (engine memory at the default runtime)
    TokenRowCost row;     // one token's row in that output
    // Parameters and safetensors bytes with `rows` token rows (kept + padding). The header's shape digits
    // are not re-counted (a few bytes a token table).
    std::uint64_t parametersAt(int keptRows) const;
    std::uint64_t tensorBytesAt(int keptRows) const;
};

// `recipe`'s vocabulary section is ignored: the sizes are of every other section applied.
VocabularySizes vocabularySizes(const Estimator& estimator, Recipe recipe);

}  // namespace whittle
