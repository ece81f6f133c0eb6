#include "core/tokenizer/buckets.h"

#include <fstream>
#include <unicode/uchar.h>
#include <unicode/uscript.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"

namespace whittle {

bool isUnusedPlaceholder(std::string_view t) {
    if (t.size() < 9 || t.rfind("<unused", 0) != 0 || t.back() != '>') return false;
    return std::all_of(t.begin() + 7, t.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
}

namespace {

bool isEmoji(char32_t cp) {
    return u_hasBinaryProperty(UChar32(cp), UCHAR_EXTENDED_PICTOGRAPHIC) ||
           u_hasBinaryProperty(UChar32(cp), UCHAR_EMOJI_PRESENTATION) || u_hasBinaryProperty(UChar32(cp), UCHAR_REGIONAL_INDICATOR) ||
           u_hasBinaryProperty(UChar32(cp), UCHAR_EMOJI_MODIFIER);
}

std::string scriptName(UScriptCode s) {
    const char* n = uscript_getName(s);
    return n ? std::string(n) : "Unknown";
}

// The text with U+2581 read as a space, as code points (invalid bytes become U+FFFD).
std::vector<char32_t> codePoints(const std::string& text) {
    std::vector<char32_t> cps;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = utf8::validSequenceLength(text, i);
        if (!n) {
            cps.push_back(0xfffd);
            ++i;
            continue;
        }
        const char32_t cp = utf8::decode(text, i, n);
        cps.push_back(cp == 0x2581 ? U' ' : cp);
        i += n;
    }
    return cps;
}

}  // namespace

std::string classifyToken(const Tokenizer& tok, int id) {
    const std::string& text = tok.tokenText(id);
    if (tok.isByteToken(id)) return "byte";
    if (isUnusedPlaceholder(text)) return "unused";
    const auto cps = codePoints(text);
    const bool whitespace = !cps.empty() && std::all_of(cps.begin(), cps.end(), [](char32_t c) { return u_isUWhiteSpace(UChar32(c)); });
    if (whitespace) return "whitespace";
    if (tok.isAdded(id) || tok.isSpecial(id)) return "special";
    std::set<UScriptCode> scripts;
    bool emoji = false;
    for (char32_t cp : cps) {
        UErrorCode err = U_ZERO_ERROR;
        const UScriptCode s = uscript_getScript(UChar32(cp), &err);
        if (U_FAILURE(err)) continue;
        if (s == USCRIPT_COMMON || s == USCRIPT_INHERITED || s == USCRIPT_UNKNOWN) {
            emoji = emoji || isEmoji(cp);
            continue;  // takes its neighbours' script
        }
        scripts.insert(s);
    }
    if (scripts.empty()) {
        // Only Common/Inherited characters: a Script_Extensions set that names one script decides (e.g.
        // the ideographic iteration mark is Han), emoji next, else "common".
        std::set<UScriptCode> ext;
        bool allExtended = true;
        for (char32_t cp : cps) {
            UScriptCode codes[32];
            UErrorCode err = U_ZERO_ERROR;
            const int n = uscript_getScriptExtensions(UChar32(cp), codes, 32, &err);
            if (U_FAILURE(err) || n != 1 || codes[0] == USCRIPT_COMMON || codes[0] == USCRIPT_INHERITED || codes[0] == USCRIPT_UNKNOWN) {
                if (!u_isUWhiteSpace(UChar32(cp))) allExtended = false;
                continue;
            }
            ext.insert(codes[0]);
        }
        if (allExtended && ext.size() == 1) return scriptName(*ext.begin());
        if (emoji) return "emoji";
        // Private-use and unassigned code points have no script at all.
        for (char32_t cp : cps) {
            UErrorCode err = U_ZERO_ERROR;
            if (uscript_getScript(UChar32(cp), &err) == USCRIPT_UNKNOWN) return "other";
        }
        return "common";
    }
    if (scripts.size() == 1) return scriptName(*scripts.begin());
    return "mixed";
}

const BucketStats* BucketTable::find(const std::string& name) const {
    for (const auto& b : buckets)
        if (b.name == name) return &b;
    return nullptr;
}

std::vector<std::string> readCorpusLines(const std::vector<std::string>& files) {
    std::vector<std::string> lines;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) throw IoError(f, {}, "cannot open corpus file");
        std::string line;
        while (std::getline(in, line)) lines.push_back(line);
    }
    return lines;
}

BucketTable classifyVocabulary(const Tokenizer& tok, const std::vector<std::string>& corpus) {
    BucketTable t;
    const int n = tok.size();
    t.bucketOf.resize(std::size_t(n));
    std::map<std::string, BucketStats> by;
    for (int id = 0; id < n; ++id) {
        const std::string b = classifyToken(tok, id);
        t.bucketOf[std::size_t(id)] = b;
        BucketStats& s = by[b];
        s.name = b;
        ++s.tokens;
    }
    std::vector<std::uint64_t> counts(std::size_t(n), 0);
    EncodeOptions eo;
    eo.addSpecialTokens = false;
    for (const auto& line : corpus)
        for (int id : tok.encode(line, eo)) {
            ++counts[std::size_t(id)];
            ++t.corpusTokens;
        }
    for (int id = 0; id < n; ++id) by[t.bucketOf[std::size_t(id)]].corpusCount += counts[std::size_t(id)];
    for (auto& [name, s] : by) {
        // Examples: the most frequent in the corpus, else the first ids that are not single characters.
        std::vector<int> ids;
        for (int id = 0; id < n; ++id)
            if (t.bucketOf[std::size_t(id)] == name) ids.push_back(id);
        std::stable_sort(ids.begin(), ids.end(), [&](int a, int b) {
            if (counts[std::size_t(a)] != counts[std::size_t(b)]) return counts[std::size_t(a)] > counts[std::size_t(b)];
            return tok.tokenText(a).size() > tok.tokenText(b).size() && tok.tokenText(a).size() <= 12;
        });
        ids.resize(std::min<std::size_t>(ids.size(), 6));
        s.examples = ids;
        t.buckets.push_back(std::move(s));
    }
    std::stable_sort(t.buckets.begin(), t.buckets.end(), [](const BucketStats& a, const BucketStats& b) { return a.tokens > b.tokens; });
    return t;
}

std::vector<std::string> presetNames() { return {"english", "latin", "european", "cjk", "corpus"}; }

std::string presetDescription(const std::string& p) {
    if (p == "english") return "English (as published): special and byte tokens plus every token whose text is within Latin up to U+024F";
    if (p == "latin") return "Latin script: special, byte, whitespace, common, emoji and Latin tokens";
    if (p == "european") return "European: Latin, Greek, Cyrillic, Armenian and Georgian plus special, byte, whitespace, common, emoji";
    if (p == "cjk") return "CJK: Han, Hiragana, Katakana, Hangul, Bopomofo and Latin plus special, byte, whitespace, common, emoji";
    if (p == "corpus") return "Corpus: tokens used when encoding your text files, plus special and byte tokens";
    return {};
}

void closeUnderMergeAncestry(const Tokenizer& tok, std::vector<bool>& keep) {
    const auto& merges = tok.merges();
    std::vector<int> result(merges.size(), -1);
    for (std::size_t r = 0; r < merges.size(); ++r)
        if (const auto id = tok.tokenId(tok.tokenText(merges[r].first) + tok.tokenText(merges[r].second))) result[r] = *id;
    for (bool changed = true; changed;) {
        changed = false;
        for (std::size_t r = merges.size(); r-- > 0;) {
            if (result[r] < 0 || !keep[std::size_t(result[r])]) continue;
            for (int part : {merges[r].first, merges[r].second})
                if (!keep[std::size_t(part)]) {
                    keep[std::size_t(part)] = true;
                    changed = true;
                }
        }
    }
}

int keptMerges(const Tokenizer& tok, const std::vector<bool>& keep) {
    int n = 0;
    for (const auto& [a, b] : tok.merges()) {
        if (!keep[std::size_t(a)] || !keep[std::size_t(b)]) continue;
        const auto r = tok.tokenId(tok.tokenText(a) + tok.tokenText(b));
        if (r && keep[std::size_t(*r)]) ++n;
    }
    return n;
}

namespace {
KeepSelection finish(const Tokenizer& tok, const BucketTable& table, std::vector<bool> keep) {
    for (int id = 0; id < tok.size(); ++id)
        for (const auto& b : alwaysKeptBuckets())
            if (table.bucketOf[std::size_t(id)] == b) keep[std::size_t(id)] = true;
    closeUnderMergeAncestry(tok, keep);
    // Added tokens past the BPE vocabulary have no embedding row (Gemma 3's <image_soft_token>): they
    // cannot survive a prune.
    for (int id = tok.modelVocabSize(); id < tok.size(); ++id) keep[std::size_t(id)] = false;
    KeepSelection s;
    s.kept = int(std::count(keep.begin(), keep.end(), true));
    s.keep = std::move(keep);
    return s;
}
}  // namespace

KeepSelection selectBuckets(const Tokenizer& tok, const BucketTable& table, const std::vector<std::string>& buckets) {
    std::vector<bool> keep(std::size_t(tok.size()), false);
    const std::set<std::string> want(buckets.begin(), buckets.end());
    for (const auto& b : buckets)
        if (!table.find(b) && std::find(alwaysKeptBuckets().begin(), alwaysKeptBuckets().end(), b) == alwaysKeptBuckets().end())
            throw UsageError("unknown bucket '" + b + "' (this vocabulary has no such bucket)");
    for (int id = 0; id < tok.size(); ++id) keep[std::size_t(id)] = want.count(table.bucketOf[std::size_t(id)]) > 0;
    return finish(tok, table, std::move(keep));
}

KeepSelection selectPreset(const Tokenizer& tok, const BucketTable& table, const std::string& preset,
                           const std::vector<std::string>& corpus, int minCount) {
    std::vector<bool> keep(std::size_t(tok.size()), false);
    if (preset == "english") {
        for (int id = 0; id < tok.size(); ++id) {
            const std::string& b = table.bucketOf[std::size_t(id)];
            if (b == "unused") continue;
            const auto cps = codePoints(tok.tokenText(id));
            keep[std::size_t(id)] = b == "special" || b == "byte" || std::all_of(cps.begin(), cps.end(), [](char32_t c) { return c <= 0x24f; });
        }
        return finish(tok, table, std::move(keep));
    }
    if (preset == "corpus") {
        if (corpus.empty()) throw UsageError("the corpus preset needs text files to count tokens in");
        std::vector<std::uint64_t> counts(std::size_t(tok.size()), 0);
        EncodeOptions eo;
        eo.addSpecialTokens = false;
        for (const auto& line : corpus)
            for (int id : tok.encode(line, eo)) ++counts[std::size_t(id)];
        for (int id = 0; id < tok.size(); ++id) keep[std::size_t(id)] = counts[std::size_t(id)] >= std::uint64_t(std::max(1, minCount));
        return finish(tok, table, std::move(keep));
    }
    std::vector<std::string> buckets = {"whitespace", "common", "emoji"};
    if (preset == "latin") buckets.push_back("Latin");
    else if (preset == "european") buckets.insert(buckets.end(), {"Latin", "Greek", "Cyrillic", "Armenian", "Georgian"});
    else if (preset == "cjk") buckets.insert(buckets.end(), {"Han", "Hiragana", "Katakana", "Hangul", "Bopomofo", "Latin"});
    else throw UsageError("unknown vocabulary preset '" + preset + "' (english, latin, european, cjk, corpus)");
    std::erase_if(buckets, [&](const std::string& b) { return !table.find(b); });
    return selectBuckets(tok, table, buckets);
}

int padSelection(const Tokenizer& tok, std::vector<bool>& keep, int multiple) {
    if (multiple <= 1) return 0;
    int kept = int(std::count(keep.begin(), keep.end(), true));
    for (int id = 0; id < tok.size() && kept % multiple != 0; ++id)
        if (!keep[std::size_t(id)] && isUnusedPlaceholder(tok.tokenText(id)) && id < tok.modelVocabSize()) {
            keep[std::size_t(id)] = true;
            ++kept;
        }
    return (multiple - kept % multiple) % multiple;
}

}  // namespace whittle
