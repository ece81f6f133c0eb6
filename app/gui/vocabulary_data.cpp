#include "app/gui/vocabulary_data.h"

#include "core/model/checkpoint.h"
#include "core/recipes/vocab_prune.h"
#include "core/model/checkpoint_files.h"

namespace whittle::gui {

namespace fs = std::filesystem;

std::shared_ptr<const VocabularyData> loadVocabularyData(const fs::path& path, std::shared_ptr<const Checkpoint> opened) {
    auto d = std::make_shared<VocabularyData>();
    d->source = path;
    if (opened && opened->dir() != path) opened.reset();
    if (opened || (fs::is_directory(path) && fs::exists(path / whittle::files::kConfig))) {
        d->modelDir = path;
        if (!opened) opened = std::make_shared<const Checkpoint>(Checkpoint::open(path));
        d->sizes = vocabularySizes(Estimator(opened), Recipe{});
    }
    d->tokenizer = std::make_shared<const Tokenizer>(opened ? checkpointTokenizer(*opened) : Tokenizer::fromModelOrFile(path));
    d->table = classifyVocabulary(*d->tokenizer);
    return d;
}

SelectionSummary summarize(const VocabularyData& d, const std::vector<bool>& keep, int multiple) {
    SelectionSummary s;
    const Tokenizer& tok = *d.tokenizer;
    const int rows = d.rows();
    const FittedSelection fit = fitSelection(tok, keep, rows, multiple);
    s.kept = fit.kept;
    s.padded = fit.vocabSize;
    s.merges = keptMerges(tok, fit.keep);
    s.mergesBefore = int(tok.merges().size());
    if (d.sizes) {
        s.paramsAfter = d.sizes->parametersAt(s.padded);
        s.bytesAfter = d.sizes->tensorBytesAt(s.padded);
    }
    return s;
}

}  // namespace whittle::gui
