#pragma once
// What the Vocabulary page works on: a tokenizer with every token in its bucket, the cost of one
// vocabulary row in the checkpoint (when a model is open, not a bare tokenizer.json), and the
// consequences of a keep-selection (kept, padded, merges, parameters, bytes). Loaded off the GUI thread.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model/inventory.h"
#include "core/tokenizer/buckets.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {
class Checkpoint;
}

namespace whittle::gui {

struct RowCost {                                    // one vocabulary row of the checkpoint
    TokenRowCost row;                               // from the core's tensor table
    int rows = 0;                                   // embedding rows (vocab_size)
    std::uint64_t totalParams = 0, totalBytes = 0;  // the whole checkpoint
};

struct VocabularyData {
    std::filesystem::path source;       // model folder or tokenizer.json
    std::filesystem::path modelDir;     // empty for a bare tokenizer.json
    std::shared_ptr<const Tokenizer> tokenizer;
    BucketTable table;
    std::optional<RowCost> cost;
    int rows() const { return cost ? cost->rows : tokenizer->size(); }
};

// Throws whittle::Error with the file and reason. `opened`: the main window's checkpoint, used (not opened
// again) when it is the folder asked for.
std::shared_ptr<const VocabularyData> loadVocabularyData(const std::filesystem::path& modelOrTokenizer,
                                                         std::shared_ptr<const Checkpoint> opened = {});

struct SelectionSummary {
    int kept = 0;             // before padding
    int padded = 0;           // the new vocabulary size (kept + placeholders)
    int merges = 0, mergesBefore = 0;
    std::uint64_t paramsAfter = 0, bytesAfter = 0;  // 0 without a model
};

// `keep` is per tokenizer id, closed under merge ancestry; padding to `multiple` as the pruner does.
SelectionSummary summarize(const VocabularyData& d, const std::vector<bool>& keep, int multiple = 256);

}  // namespace whittle::gui
