#pragma once
// Every token of a vocabulary in exactly one bucket: special (added and control tokens), byte fallback,
// unused placeholders, whitespace, common (digits, punctuation, symbols), emoji, one bucket per Unicode
// script of its letters (ICU's Script property; Common/Inherited characters take their neighbours'
// script), or mixed-script. Presets select buckets (or tokens) to keep when pruning the vocabulary.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/json_file.h"
#include "core/tokenizer/tokenizer.h"

namespace whittle {

// Bucket names: "special", "byte", "unused", "whitespace", "common", "emoji", "mixed", "other"
// (private-use or unassigned code points), or a script's ICU
// long name ("Latin", "Cyrillic", "Han", "Hiragana", …).
std::string classifyToken(const Tokenizer& tok, int id);

// "<unusedN>": Gemma's placeholder tokens (the "unused" bucket; samplers never pick them; padding reuses them).
bool isUnusedPlaceholder(std::string_view text);

struct BucketStats {
    std::string name;
    int tokens = 0;
    std::vector<int> examples;      // a few ids, most frequent or first
    std::uint64_t corpusCount = 0;  // occurrences when encoding a corpus (if one was given)
};

struct BucketTable {
    std::vector<std::string> bucketOf;    // per id
    std::vector<BucketStats> buckets;     // sorted by token count, descending
    std::uint64_t corpusTokens = 0;
    const BucketStats* find(const std::string& name) const;
};

// The lines of corpus text files, for bucket frequencies and the corpus preset (IoError names a file
// that cannot be read).
std::vector<std::string> readCorpusLines(const std::vector<std::string>& files);

// Classifies every id; with corpus lines, also counts how often each bucket's tokens occur.
BucketTable classifyVocabulary(const Tokenizer& tok, const std::vector<std::string>& corpusLines = {});

// The always-kept buckets: a pruned model must still encode any text (byte fallback) and keep its
// control tokens.
inline const std::vector<std::string>& alwaysKeptBuckets() {
    static const std::vector<std::string> k = {"special", "byte"};
    return k;
}

struct KeepSelection {
    std::vector<bool> keep;  // per id, before padding
    int kept = 0;
};

std::vector<std::string> presetNames();  // "english", "latin", "european", "cjk", "corpus"
std::string presetDescription(const std::string& preset);

// "english" keeps special and byte tokens plus every token except <unusedN> whose text (U+2581 read as a
// space) lies entirely in Basic Latin … Latin Extended-B (≤ U+024F): the rule behind the published Gemma 4
// English run. Script presets keep the always-kept buckets, whitespace, common, emoji and their scripts.
// "corpus" keeps tokens used at least minCount times when encoding the corpus. Every selection is closed
// under merge ancestry, so each kept token stays reachable by BPE.
KeepSelection selectPreset(const Tokenizer& tok, const BucketTable& table, const std::string& preset,
                           const std::vector<std::string>& corpusLines = {}, int minCount = 1);
KeepSelection selectBuckets(const Tokenizer& tok, const BucketTable& table, const std::vector<std::string>& buckets);

// Adds the parts of every merge whose result is kept, until nothing changes.
void closeUnderMergeAncestry(const Tokenizer& tok, std::vector<bool>& keep);

// Merges whose left, right and result all survive.
int keptMerges(const Tokenizer& tok, const std::vector<bool>& keep);

// Keeps <unusedN> placeholders (lowest ids first) until the count is a multiple of `multiple`; returns
// how many more padding tokens are needed when the vocabulary has too few placeholders (the pruner then
// appends new ones whose rows copy an original placeholder's).
int padSelection(const Tokenizer& tok, std::vector<bool>& keep, int multiple);

}  // namespace whittle
