#pragma once
// Vocabulary pruning: keep a subset of token ids (in their original order), rebuild the tokenizer and
// every config that names token ids, slice the rows of the main embedding and the PLE table (and an
// untied lm_head), and pass every other tensor through byte for byte. Streams tensor by tensor into an
// atomic output folder, with an id mapping file (old → new) beside the weights.
#include <filesystem>
#include <string>
#include <vector>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/tensor_stream.h"
#include "core/progress.h"
#include "core/tokenizer/buckets.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {

struct Recipe;

// The recipe's "vocabulary" section.
struct VocabularyRecipe {
    std::string preset;                    // english, latin, european, cjk, corpus; empty when buckets are listed
    std::vector<std::string> buckets;      // explicit buckets to keep (special and byte are always kept)
    std::vector<std::string> corpusFiles;  // for the corpus preset
    int corpusMinCount = 1;
    int padMultiple = 256;
};
Json toJson(const VocabularyRecipe& v);
VocabularyRecipe parseVocabularyRecipe(const Json& section, const std::string& source);

struct VocabPruneReport {
    int tokensBefore = 0;
    int tokensKept = 0;          // before padding
    int tokensAfterPadding = 0;  // the new vocab_size
    int mergesBefore = 0, mergesKept = 0;
    std::uint64_t paramsBefore = 0, paramsAfter = 0;
    std::vector<std::string> droppedWithoutRows;  // added tokens past the embedding rows
    std::uint64_t bytesWritten = 0;
    double seconds = 0;
};

Json toJson(const VocabPruneReport& r);

// The selection a recipe describes, padded with the vocabulary's own placeholders (keep has one entry per
// tokenizer id); *extraPadding is how many new placeholders must still be appended.
std::vector<bool> selectionFromRecipe(const Tokenizer& tok, const VocabularyRecipe& recipe, int* keptBeforePadding = nullptr,
                                      int* extraPadding = nullptr);

// A selection fitted to a model with `rows` embedding rows, exactly as the pruner writes it: ids without a
// row dropped, then padded to `multiple` with the vocabulary's placeholders (and `extra` new ones).
struct FittedSelection {
    std::vector<bool> keep;  // per tokenizer id; ids >= rows are false
    int kept = 0;            // rows kept before padding
    int extra = 0;           // new placeholders appended after the kept rows
    int vocabSize = 0;       // the pruned vocab_size: kept rows after padding + extra
};
FittedSelection fitSelection(const Tokenizer& tok, std::vector<bool> keep, int rows, int multiple);

// old id -> new id (-1: removed) for a padded selection, over the model's embedding rows.
// What the pruner keeps for a recipe on a model with `rows` token rows (the plan's estimate uses it too).
FittedSelection recipeFittedSelection(const Tokenizer& tok, const VocabularyRecipe& recipe, int rows);

std::vector<int> idMapping(const std::vector<bool>& keep, int rows);

// The pruned tokenizer.json (vocab, merges whose parts and result survive, added tokens, post-processor),
// with `extraPadding` new <unusedN> placeholders appended after the kept ids.
Json prunedTokenizerJson(const Json& original, const Tokenizer& tok, const std::vector<int>& oldToNew, int extraPadding = 0);

// Refuses (UsageError naming `where`) a selection that drops bos, eos, pad or a chat turn marker.
void checkRequiredTokens(const SpecialTokenIds& special, const std::string& where, const Tokenizer& tok, const std::vector<bool>& keep);
void checkRequiredTokens(const Checkpoint& ck, const Tokenizer& tok, const std::vector<bool>& keep);

// The pruning as a stream transform: the token rows sliced (consecutive kept rows read together, padding rows
// copying a placeholder's row), tokenizer and every config naming token ids rewritten, vocab_mapping.json
// added, every other tensor and file passed through. Everything is checked here, before a byte is written.
// Fills rep's counts (not bytesWritten or seconds: the pass's).
TensorStream vocabularyStream(TensorStream in, const VocabularyRecipe& recipe, VocabPruneReport& rep);

// The transform written by itself: source → vocabularyStream → an atomic output folder with its whittle.json.
VocabPruneReport pruneVocabulary(const Checkpoint& ck, const Recipe& recipe, const std::filesystem::path& dest, bool force,
                                 Progress& progress, const CancelToken& cancel);

}  // namespace whittle
