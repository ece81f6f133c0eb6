// Builds the tokenizer from a GGUF file's vocabulary (llama.cpp's tokenizer.ggml.* keys): the same BPE,
// with CONTROL tokens as special added tokens, USER_DEFINED tokens as always-matched added tokens (as
// llama.cpp parses them), newline runs split off before BPE (llama.cpp's Gemma 4 pre-split), BYTE tokens
// for byte fallback.
#include "core/error.h"
#include "core/io/gguf_reader.h"
#include "core/tokenizer/tokenizer_impl.h"

namespace whittle {

namespace {
enum : std::int64_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
}

Tokenizer Tokenizer::fromGguf(const GgufFile& g) {
    auto m = std::make_unique<Impl>();
    m->sourceName = g.path();
    const std::string model = g.has("tokenizer.ggml.model") ? g.getString("tokenizer.ggml.model") : "";
    if (model != "gemma4" && model != "llama" && model != "gpt2" && model != "gemma")
        throw FormatError(g.path(), {}, "unsupported tokenizer.ggml.model '" + model + "'");
    if (model == "gpt2") throw FormatError(g.path(), {}, "byte-level (gpt2) vocabularies are not supported");
    const auto tokens = g.getStringArray("tokenizer.ggml.tokens");
    std::vector<std::int64_t> types(tokens.size(), kNormal);
    if (g.has("tokenizer.ggml.token_type")) types = g.getIntArray("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
        throw FormatError(g.path(), {}, "tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                                            std::to_string(tokens.size()) + " tokens");
    m->vocab.reserve(tokens.size());
    for (std::size_t id = 0; id < tokens.size(); ++id) {
        const std::string& t = tokens[id];
        m->vocab.emplace(t, int(id));
        const bool newlineRun = !t.empty() && t.find_first_not_of('\n') == std::string::npos;
        if (types[id] == kControl || types[id] == kUserDefined || (types[id] == kNormal && newlineRun)) {
            AddedToken a;
            a.id = int(id);
            a.content = t;
            a.special = types[id] == kControl;
            m->added.push_back(std::move(a));
        }
    }
    if (g.has("tokenizer.ggml.merges")) {
        const auto merges = g.getStringArray("tokenizer.ggml.merges");
        m->mergeList.reserve(merges.size());
        for (std::size_t r = 0; r < merges.size(); ++r) {
            const std::string& s = merges[r];
            const auto sp = s.find(' ');
            const auto a = sp == std::string::npos ? m->vocab.end() : m->vocab.find(s.substr(0, sp));
            const auto b = sp == std::string::npos ? m->vocab.end() : m->vocab.find(s.substr(sp + 1));
            if (a == m->vocab.end() || b == m->vocab.end())
                throw FormatError(g.path(), {}, "merge " + std::to_string(r) + " '" + s + "' does not name two vocabulary tokens");
            m->mergeList.emplace_back(a->second, b->second);
        }
    }
    if (g.has("tokenizer.ggml.unknown_token_id")) m->unkId = int(g.getUint("tokenizer.ggml.unknown_token_id"));
    m->byteFallback = true;
    m->fuseUnk = true;
    m->normalizer.push_back({NormalizerOp::Kind::Replace, " ", "\u2581"});
    if (g.has("tokenizer.ggml.add_space_prefix") && g.getBool("tokenizer.ggml.add_space_prefix"))
        m->normalizer.insert(m->normalizer.begin(), {NormalizerOp::Kind::Prepend, {}, "\u2581"});
    m->decodeReplace.emplace_back("\u2581", " ");
    m->finish();
    if (g.has("tokenizer.ggml.bos_token_id")) {
        const auto bos = g.getUint("tokenizer.ggml.bos_token_id");
        if (bos >= tokens.size()) throw FormatError(g.path(), {}, "tokenizer.ggml.bos_token_id is outside the vocabulary");
        m->bos = int(bos);
        // llama.cpp adds BOS for Gemma 4 whatever add_bos_token says.
        const bool addBos = model == "gemma4" || !g.has("tokenizer.ggml.add_bos_token") || g.getBool("tokenizer.ggml.add_bos_token");
        if (addBos) m->prefixIds.push_back(int(bos));
    }
    return Tokenizer(std::move(m));
}

}  // namespace whittle
