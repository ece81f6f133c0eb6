#pragma once
// The recipe's "evaluation" section: after the last stage, measure the output against the input on held-out
// text with the CPU reference — perplexity of both, KL divergence (mean, p99) and top-1 agreement — and put
// the report into the output's whittle.json. Text: the files given, or the input folder's heldout.txt (the
// bundled model ships one). Evaluation reads the text's first max_tokens tokens; calibration reads from the
// end of the same file (gptq_calibration.h), so for held-out files longer than both they do not overlap.
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

struct EvaluationRecipe {
    std::vector<std::string> files;  // empty: <input>/heldout.txt
    int ctx = 512;                   // window length (tokens, BOS included)
    int maxTokens = 8192;            // scored tokens at most
};
Json toJson(const EvaluationRecipe& e);
EvaluationRecipe parseEvaluationRecipe(const Json& section, const std::string& source);

}  // namespace whittle
