// Loads a Hugging Face tokenizer.json (the Gemma form: Replace normalizer, Split pre-tokenizer,
// BPE with byte fallback, TemplateProcessing post-processor, Replace/ByteFallback/Fuse decoder).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tokenizer/tokenizer_impl.h"
#include "core/utf8.h"

namespace whittle {

namespace {

int parseByteToken(const std::string& t) {
    // "<0xHH>" with upper-case hex, as SentencePiece writes them.
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string stringPattern(const Json& p, const std::string& src, const char* where) {
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string())
        throw FormatError(src, {}, std::string(where) + ": only literal String patterns are supported");
    return p["String"].get<std::string>();
}

void parseNormalizer(const Json& n, Tokenizer::Impl& m) {
    if (n.is_null()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
        for (const auto& s : n.at("normalizers")) parseNormalizer(s, m);
    } else if (type == "Replace") {
        m.normalizer.push_back({NormalizerOp::Kind::Replace, stringPattern(n.at("pattern"), m.sourceName, "normalizer"),
                                n.at("content").get<std::string>()});
    } else if (type == "Prepend") {
        m.normalizer.push_back({NormalizerOp::Kind::Prepend, {}, n.at("prepend").get<std::string>()});
    } else {
        throw FormatError(m.sourceName, {}, "unsupported normalizer type '" + type + "'");
    }
}

void parsePreTokenizer(const Json& p, Tokenizer::Impl& m) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type != "Split") throw FormatError(m.sourceName, {}, "unsupported pre_tokenizer type '" + type + "'");
    if (p.value("invert", false)) throw FormatError(m.sourceName, {}, "inverted Split pre_tokenizer is not supported");
    SplitPreTokenizer s;
    s.pattern = stringPattern(p.at("pattern"), m.sourceName, "pre_tokenizer");
    const std::string b = p.value("behavior", "");
    if (b == "MergedWithPrevious") s.behavior = SplitBehavior::MergedWithPrevious;
    else if (b == "MergedWithNext") s.behavior = SplitBehavior::MergedWithNext;
    else if (b == "Isolated") s.behavior = SplitBehavior::Isolated;
    else if (b == "Removed") s.behavior = SplitBehavior::Removed;
    else throw FormatError(m.sourceName, {}, "unsupported Split behavior '" + b + "'");
    m.split = s;
}

void parsePostProcessor(const Json& p, Tokenizer::Impl& m) {
    if (p.is_null()) return;
    const std::string type = p.value("type", "");
    if (type != "TemplateProcessing") throw FormatError(m.sourceName, {}, "unsupported post_processor type '" + type + "'");
    bool afterSequence = false;
    for (const auto& piece : p.at("single")) {
        if (piece.contains("Sequence")) {
            afterSequence = true;
            continue;
        }
        const std::string name = piece.at("SpecialToken").at("id").get<std::string>();
        const Json& st = p.at("special_tokens").at(name);
        for (const auto& id : st.at("ids")) (afterSequence ? m.suffixIds : m.prefixIds).push_back(id.get<int>());
    }
}

void parseDecoder(const Json& d, Tokenizer::Impl& m) {
    if (d.is_null()) return;
    const std::string type = d.value("type", "");
    if (type == "Sequence") {
        for (const auto& s : d.at("decoders")) parseDecoder(s, m);
    } else if (type == "Replace") {
        m.decodeReplace.emplace_back(stringPattern(d.at("pattern"), m.sourceName, "decoder"), d.at("content").get<std::string>());
    } else if (type == "Strip") {
        if (d.value("content", " ") != " " || d.value("stop", 0) != 0)
            throw FormatError(m.sourceName, {}, "unsupported Strip decoder settings");
        m.decodeStripLeading = d.value("start", 0);
    } else if (type != "ByteFallback" && type != "Fuse") {
        throw FormatError(m.sourceName, {}, "unsupported decoder type '" + type + "'");
    }
}

}  // namespace

void Tokenizer::Impl::finish() {
    byteIds.fill(-1);
    for (const auto& [text, id] : vocab) modelVocabSize = std::max(modelVocabSize, id + 1);
    int total = modelVocabSize;
    for (const auto& a : added) total = std::max(total, a.id + 1);
    tokens.assign(std::size_t(total), TokenEntry{});
    std::vector<bool> seen(std::size_t(total), false);
    for (const auto& [text, id] : vocab) {
        if (seen[std::size_t(id)]) throw FormatError(sourceName, {}, "token id " + std::to_string(id) + " is used twice in the vocabulary");
        seen[std::size_t(id)] = true;
        tokens[std::size_t(id)].text = text;
        const int b = parseByteToken(text);
        tokens[std::size_t(id)].byte = b;
        if (b >= 0) byteIds[std::size_t(b)] = id;
    }
    for (const auto& a : added) {
        TokenEntry& t = tokens[std::size_t(a.id)];
        if (seen[std::size_t(a.id)] && t.text != a.content)
            throw FormatError(sourceName, {}, "added token " + std::to_string(a.id) + " '" + a.content +
                                                  "' disagrees with the vocabulary's '" + t.text + "'");
        seen[std::size_t(a.id)] = true;
        t.text = a.content;
        t.special = a.special;
        t.added = true;
        t.byte = -1;  // an added token is matched as text, never as a fallback byte
    }
    for (std::size_t i = 0; i < seen.size(); ++i)
        if (!seen[i]) throw FormatError(sourceName, {}, "token id " + std::to_string(i) + " is missing (ids must be contiguous)");
    for (const auto& a : added) (a.normalized ? normalizedAdded : rawAdded).add(a);
    mergeRanks.reserve(mergeList.size());
    for (std::size_t r = 0; r < mergeList.size(); ++r) {
        const auto [a, b] = mergeList[r];
        const auto it = vocab.find(tokens[std::size_t(a)].text + tokens[std::size_t(b)].text);
        if (it == vocab.end())
            throw FormatError(sourceName, {}, "merge " + std::to_string(r) + " ('" + tokens[std::size_t(a)].text + "' + '" +
                                                  tokens[std::size_t(b)].text + "') makes a token that is not in the vocabulary");
        mergeRanks.emplace(pairKey(a, b), MergeRule{int(r), it->second});  // first (lowest) rank wins
    }
}

Tokenizer Tokenizer::fromJson(const Json& j, const std::string& source) {
    auto m = std::make_unique<Impl>();
    m->sourceName = source;
    if (!j.is_object()) throw FormatError(source, {}, "tokenizer.json is not a JSON object");
    try {
        const Json& model = j.at("model");
        if (model.value("type", "") != "BPE")
            throw FormatError(source, {}, "unsupported tokenizer model '" + model.value("type", "?") + "' (expected BPE)");
        for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (model.contains(k) && !model[k].is_null() && model[k] != "")
                throw FormatError(source, {}, std::string("BPE option '") + k + "' is not supported");
        if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
            throw FormatError(source, {}, "BPE dropout is not supported");
        m->byteFallback = model.value("byte_fallback", false);
        m->fuseUnk = model.value("fuse_unk", false);
        m->ignoreMerges = model.value("ignore_merges", false);
        const Json& vocab = model.at("vocab");
        if (!vocab.is_object()) throw FormatError(source, {}, "model.vocab is not an object");
        m->vocab.reserve(vocab.size());
        for (auto it = vocab.begin(); it != vocab.end(); ++it) {
            if (!it.value().is_number_integer() || it.value().get<std::int64_t>() < 0 ||
                it.value().get<std::int64_t>() > (1 << 24))
                throw FormatError(source, {}, "model.vocab id of '" + it.key() + "' is not a valid id");
            m->vocab.emplace(it.key(), it.value().get<int>());
        }
        if (model.contains("unk_token") && model["unk_token"].is_string()) {
            const auto u = m->vocab.find(model["unk_token"].get<std::string>());
            if (u != m->vocab.end()) m->unkId = u->second;
        }
        const Json& merges = model.at("merges");
        m->mergeList.reserve(merges.size());
        auto idOf = [&](const std::string& t, std::size_t r) {
            const auto it = m->vocab.find(t);
            if (it == m->vocab.end())
                throw FormatError(source, {}, "merge " + std::to_string(r) + " uses '" + t + "', which is not in the vocabulary");
            return it->second;
        };
        for (std::size_t r = 0; r < merges.size(); ++r) {
            const Json& e = merges[r];
            std::string a, b;
            if (e.is_string()) {
                const std::string s = e.get<std::string>();
                const auto sp = s.find(' ');
                if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                    throw FormatError(source, {}, "merge " + std::to_string(r) + " '" + s + "' is not two tokens separated by one space");
                a = s.substr(0, sp);
                b = s.substr(sp + 1);
            } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
                a = e[0].get<std::string>();
                b = e[1].get<std::string>();
            } else {
                throw FormatError(source, {}, "merge " + std::to_string(r) + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
            m->mergeList.emplace_back(idOf(a, r), idOf(b, r));
        }
        if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
            for (const auto& a : j.at("added_tokens")) {
                AddedToken t;
                t.id = a.at("id").get<int>();
                t.content = a.at("content").get<std::string>();
                t.singleWord = a.value("single_word", false);
                t.lstrip = a.value("lstrip", false);
                t.rstrip = a.value("rstrip", false);
                t.normalized = a.value("normalized", false);
                t.special = a.value("special", false);
                if (t.id < 0 || t.id > (1 << 24)) throw FormatError(source, {}, "added token '" + t.content + "' has an invalid id");
                m->added.push_back(std::move(t));
            }
        }
        parseNormalizer(j.value("normalizer", Json()), *m);
        parsePreTokenizer(j.value("pre_tokenizer", Json()), *m);
        parsePostProcessor(j.value("post_processor", Json()), *m);
        parseDecoder(j.value("decoder", Json()), *m);
    } catch (const Json::exception& e) {
        throw FormatError(source, {}, std::string("malformed tokenizer.json: ") + e.what());
    }
    m->finish();
    if (!m->prefixIds.empty()) m->bos = m->prefixIds.front();
    for (int id : m->prefixIds)
        if (id < 0 || id >= int(m->tokens.size())) throw FormatError(source, {}, "post_processor names a token id outside the vocabulary");
    return Tokenizer(std::move(m));
}

}  // namespace whittle
