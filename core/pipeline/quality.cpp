#include "core/pipeline/quality.h"

#include "core/error.h"
#include "core/io/file.h"
#include "core/model/checkpoint_files.h"
#include "core/recipes/calibration_text.h"
#include "core/reference/reference_model.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace whittle {

VocabMapping vocabMappingOf(const fs::path& modelDir) {
    const fs::path m = modelDir / files::kVocabMapping;
    return fs::exists(m) ? loadVocabMapping(m) : VocabMapping{};
}

std::string evaluationText(const Checkpoint& original, const EvaluationRecipe& e) {
    std::string text;
    for (const auto& f : textFilesOrHeldout(original.dir(), e.files, "evaluation")) {
        text += readTextFile(f, 1ull << 30);
        text += '\n';
    }
    return text;
}

namespace {
EvalOptions windowsOf(const EvaluationRecipe& e) {
    EvalOptions eo;
    eo.ctx = e.ctx;
    eo.stride = e.ctx;
    eo.maxTokens = e.maxTokens;
    return eo;
}
}  // namespace

EvalReport evaluateAlone(const Checkpoint& model, const EvaluationRecipe& e, Progress& progress, const CancelToken& cancel) {
    const std::string text = evaluationText(model, e);
    const ReferenceModel m(model, {});
    const EvalOptions eo = windowsOf(e);
    ReferenceSession session(m, eo.ctx);
    return evaluate(session, Tokenizer::fromModelOrFile(model.dir()), text, eo, nullptr, {}, progress, cancel);
}

EvalReport evaluateAgainstOriginal(const Checkpoint& output, const Checkpoint& original, const EvaluationRecipe& e, Progress& progress,
                                   const CancelToken& cancel) {
    const std::string text = evaluationText(original, e);
    const ReferenceModel om(original, {}), qm(output, {});
    const Tokenizer tok = Tokenizer::fromModelOrFile(output.dir());
    const EvalOptions eo = windowsOf(e);
    ReferenceSession model(qm, eo.ctx), reference(om, eo.ctx);
    // A vocab_mapping.json maps to the model the vocabulary was pruned from; it applies only when this
    // output's vocabulary differs from `original`'s (an input pruned earlier carries its own along).
    const VocabMapping mapping = output.config().vocabSize != original.config().vocabSize ? vocabMappingOf(output.dir()) : VocabMapping{};
    return evaluate(model, tok, text, eo, &reference, mapping, progress, cancel);
}

}  // namespace whittle
