#pragma once
// Gemma's tokenizer: BPE over U+2581-normalised text with merges by rank and byte fallback, added
// tokens matched before BPE (leftmost-longest, with their lstrip/rstrip/normalized/special flags), and
// a decoder that reverses it all. Semantics follow Hugging Face `tokenizers` for tokenizer.json; the
// same vocabulary can come from a GGUF file (llama.cpp's token list, types and merges).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

class GgufFile;
class Checkpoint;

struct AddedToken {
    int id = 0;
    std::string content;
    bool singleWord = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
    bool special = false;
};

struct EncodeOptions {
    bool addSpecialTokens = true;  // the post-processor's BOS
    bool parseSpecial = true;      // match special added tokens in the text (off for untrusted chat content)
};

class Tokenizer {
public:
    static Tokenizer fromFile(const std::filesystem::path& tokenizerJson);
    static Tokenizer fromJson(const Json& j, const std::string& source);
    static Tokenizer fromGguf(const GgufFile& gguf);
    // A model folder (uses its tokenizer.json) or a tokenizer.json file.
    static Tokenizer fromModelOrFile(const std::filesystem::path& path);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    std::vector<int> encode(std::string_view text, const EncodeOptions& options = {}) const;
    // Byte-fallback tokens become raw bytes, so decode(encode(x)) == x for any byte string x without
    // U+2581 or special-token text.
    std::string decode(std::span<const int> ids, bool skipSpecial = false) const;

    int size() const;            // one past the largest id (added tokens included)
    int modelVocabSize() const;  // one past the largest id of the BPE vocabulary
    const std::string& tokenText(int id) const;
    std::optional<int> tokenId(std::string_view text) const;
    bool isSpecial(int id) const;
    bool isByteToken(int id) const;
    bool isAdded(int id) const;  // listed in added_tokens (matched before BPE)
    std::optional<int> bosId() const;  // from the post-processor (tokenizer.json) or the GGUF metadata
    const std::vector<AddedToken>& addedTokens() const;
    // Merges in rank order as (left id, right id); their result is the token of the concatenation.
    const std::vector<std::pair<int, int>>& merges() const;
    const std::string& source() const;

    struct Impl;  // internal (tokenizer_impl.h); public so the format loaders can build it

private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// A checkpoint's tokenizer.json, read from its side files (so a checkpoint made from a stream gives its
// rewritten tokenizer); an IoError names the file when it is missing.
Tokenizer checkpointTokenizer(const Checkpoint& checkpoint);

}  // namespace whittle
