#pragma once
// Quality metrics on any Session (the CPU reference or the Vulkan engine): perplexity over fixed windows of a text, and — against a
// reference model — KL divergence (mean and 99th percentile) and top-1 agreement, position by position.
//
// Windows: the text's tokens (no BOS) are cut into windows starting every `stride` tokens; each window is
// evaluated as BOS + its first ctx−1 tokens and predicts its ctx tokens. The first window scores all of
// them, later ones only the last `stride` (so with stride == ctx every token is scored exactly once).
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/engine/session.h"
#include "core/progress.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {

struct EvalOptions {
    int ctx = 512;
    int stride = 512;
    int maxTokens = 0;  // 0: the whole text
};

struct EvalReport {
    double ppl = 0;
    double nll = 0;  // mean negative log-likelihood (nats)
    int tokens = 0;  // scored positions
    int windows = 0;
    std::optional<double> kldMean, kldP99, top1;
    std::optional<double> refPpl;  // the reference's perplexity on the same positions
    double seconds = 0;
};

// Maps an evaluated model's ids to the reference's (pruned vocabularies): newToOld[id] = reference id.
// Empty: identical vocabularies. The reference distribution is renormalised over the mapped ids.
using VocabMapping = std::vector<int>;
VocabMapping loadVocabMapping(const std::filesystem::path& file);

// One scored position against the reference: KL(reference ‖ model) over the ids both vocabularies share
// (the reference renormalised over them; mapping as above, -1 entries have no reference id), and whether
// both argmaxes pick the same token. logProbs/refLogProbs are log-softmaxed rows.
struct PositionAgreement {
    double kld = 0;
    bool top1 = false;
};
PositionAgreement comparePosition(std::span<const double> logProbs, std::span<const double> refLogProbs, const VocabMapping& mapping);

// log-softmax of one row of logits (sums in f64).
void logSoftmax(std::span<const float> logits, std::vector<double>& out);

// model and reference are fresh sessions whose capacity() holds options.ctx tokens; both are reset per window.
EvalReport evaluate(Session& model, const Tokenizer& tok, const std::string& text, const EvalOptions& options,
                    Session* reference, const VocabMapping& mapping, Progress& progress, const CancelToken& cancel);

Json toJson(const EvalReport& r);

}  // namespace whittle
