#pragma once
// What the Vocabulary page works on: a tokenizer with every token in its bucket, the estimator's sizes by
// vocabulary (when a model is open, not a bare tokenizer.json: the output with every row kept and the cost of
// one row), and the consequences of a keep-selection (kept, padded, merges, parameters, bytes). Loaded off the
// GUI thread.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/estimate/vocabulary_sizes.h"
#include "core/model/inventory.h"
#include "core/tokenizer/buckets.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {
class Checkpoint;
}

namespace whittle::gui {

struct VocabularyData {
    std::filesystem::path source;       // model folder or tokenizer.json
    std::filesystem::path modelDir;     // empty for a bare tokenizer.json
    std::shared_ptr<const Tokenizer> tokenizer;
    BucketTable table;
    std::optional<VocabularySizes> sizes;  // with a model: the estimator's sizes by vocabulary (vocabulary_sizes.h)
    int rows() const { return sizes ? sizes->rows : tokenizer->size(); }
};

// Throws whittle::Error with the file and reason. `opened`: the main window's checkpoint, used (not opened
// again) when it is the folder asked for.
std::shared_ptr<const VocabularyData> loadVocabularyData(const std::filesystem::path& modelOrTokenizer,
                                                         std::shared_ptr<const Checkpoint> opened = {});

struct SelectionSummary {
    int kept = 0;             // before padding
    int padded = 0;           // the new vocabulary size (kept + placeholders)
    int merges = 0, mergesBefore = 0;
    std::uint64_t paramsAfter = 0, bytesAfter = 0;  // the estimator's parameters and safetensors bytes; 0 without a model
};

// `keep` is per tokenizer id, closed under merge ancestry; padding to `multiple` as the pruner does.
SelectionSummary summarize(const VocabularyData& d, const std::vector<bool>& keep, int multiple = 256);

}  // namespace whittle::gui
