#pragma once
// Internal state of Tokenizer, shared by the tokenizer.json and GGUF loaders.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace whittle {

// Leftmost-longest matching of added tokens (a byte trie), as Hugging Face tokenizers does.
class AddedTokenMatcher {
public:
    struct Match {
        std::size_t begin, end;
        int id;
    };
    AddedTokenMatcher() : terminal_(1, nullptr) {}
    void add(const AddedToken& t);  // t must outlive the matcher
    std::vector<Match> find(std::string_view s, bool parseSpecial) const;

private:
    std::unordered_map<std::uint64_t, int> edges_;  // (node << 8 | byte) -> node
    std::vector<const AddedToken*> terminal_;        // per node
    std::array<bool, 256> first_{};
};

struct NormalizerOp {
    enum class Kind { Replace, Prepend } kind = Kind::Replace;
    std::string from, to;
};

enum class SplitBehavior { MergedWithPrevious, MergedWithNext, Isolated, Removed };

struct SplitPreTokenizer {
    std::string pattern;
    SplitBehavior behavior = SplitBehavior::MergedWithPrevious;
};

struct TokenEntry {
    std::string text;
    bool special = false;
    bool added = false;
    int byte = -1;  // 0..255 for <0xHH> byte-fallback tokens
};

struct MergeRule {
    int rank;
    int result;
};

struct Tokenizer::Impl {
    std::string sourceName;
    std::vector<TokenEntry> tokens;                  // by id
    std::unordered_map<std::string, int> vocab;      // BPE vocabulary: text -> id
    std::unordered_map<std::uint64_t, MergeRule> mergeRanks;
    std::vector<std::pair<int, int>> mergeList;
    std::array<int, 256> byteIds{};
    int unkId = -1;
    bool byteFallback = true;
    bool fuseUnk = true;
    bool ignoreMerges = false;
    int modelVocabSize = 0;
    std::vector<AddedToken> added;
    AddedTokenMatcher rawAdded, normalizedAdded;
    std::vector<NormalizerOp> normalizer;
    std::optional<SplitPreTokenizer> split;
    std::vector<int> prefixIds, suffixIds;  // post-processor template around the sequence
    std::optional<int> bos;
    std::vector<std::pair<std::string, std::string>> decodeReplace;
    int decodeStripLeading = 0;

    static std::uint64_t pairKey(int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }
    std::string normalize(std::string_view text) const;
    std::vector<std::string_view> preTokenize(std::string_view s) const;
    void bpe(std::string_view word, std::vector<int>& out) const;
    // Fills tokens[], byte ids, the matchers and merge ranks once vocab, added and mergeList are set.
    void finish();
};

}  // namespace whittle
