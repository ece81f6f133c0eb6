#include "core/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <queue>

#include "core/error.h"
#include "core/tokenizer/tokenizer_impl.h"
#include "core/utf8.h"
#include "core/model/checkpoint.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {

bool isUnicodeWhitespace(char32_t c) {
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

bool isWordChar(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return !isUnicodeWhitespace(c) && !(c >= 0x2000 && c <= 0x206f) && !(c >= 0x3000 && c <= 0x303f);
}

// The code point that ends just before byte offset `end` (0 if none or invalid).
char32_t codePointBefore(std::string_view s, std::size_t end) {
    if (end == 0) return 0;
    std::size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
    const std::size_t n = utf8::validSequenceLength(s, start);
    return n == end - start ? utf8::decode(s, start, n) : 0;
}

char32_t codePointAt(std::string_view s, std::size_t i) {
    if (i >= s.size()) return 0;
    const std::size_t n = utf8::validSequenceLength(s, i);
    return n ? utf8::decode(s, i, n) : 0;
}

}  // namespace

// ---- added-token matching --------------------------------------------------------------------------

void AddedTokenMatcher::add(const AddedToken& t) {
    if (t.content.empty()) return;
    int node = 0;
    for (unsigned char c : t.content) {
        first_[c] = true;
        const std::uint64_t key = (std::uint64_t(node) << 8) | c;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
            it = edges_.emplace(key, int(terminal_.size())).first;
            terminal_.push_back(nullptr);
        }
        node = it->second;
    }
    terminal_[std::size_t(node)] = &t;
}

std::vector<AddedTokenMatcher::Match> AddedTokenMatcher::find(std::string_view s, bool parseSpecial) const {
    std::vector<Match> out;
    if (terminal_.size() <= 1) return out;
    std::size_t floor = 0;  // lstrip may not reach into the previous match
    for (std::size_t i = 0; i < s.size();) {
        if (!first_[static_cast<unsigned char>(s[i])]) {
            ++i;
            continue;
        }
        const AddedToken* best = nullptr;
        std::size_t bestLen = 0;
        int node = 0;
        for (std::size_t j = i; j < s.size(); ++j) {
            const auto it = edges_.find((std::uint64_t(node) << 8) | static_cast<unsigned char>(s[j]));
            if (it == edges_.end()) break;
            node = it->second;
            const AddedToken* t = terminal_[std::size_t(node)];
            if (t && (parseSpecial || !t->special)) {
                best = t;
                bestLen = j + 1 - i;
            }
        }
        if (best && best->singleWord) {
            const bool leftOk = !isWordChar(codePointBefore(s, i));
            const bool rightOk = !isWordChar(codePointAt(s, i + bestLen));
            if (!leftOk || !rightOk) best = nullptr;
        }
        if (!best) {
            ++i;
            continue;
        }
        std::size_t start = i, end = i + bestLen;
        if (best->lstrip)
            while (start > floor) {
                const char32_t c = codePointBefore(s, start);
                if (!c || !isUnicodeWhitespace(c)) break;
                std::string tmp;
                utf8::append(tmp, c);
                start -= tmp.size();
            }
        if (best->rstrip)
            while (end < s.size()) {
                const char32_t c = codePointAt(s, end);
                if (!c || !isUnicodeWhitespace(c)) break;
                std::string tmp;
                utf8::append(tmp, c);
                end += tmp.size();
            }
        out.push_back({start, end, best->id});
        floor = end;
        i = end;
    }
    return out;
}

// ---- Impl ----------------------------------------------------------------------------------------

std::string Tokenizer::Impl::normalize(std::string_view text) const {
    std::string s(text);
    for (const auto& op : normalizer) {
        if (op.kind == NormalizerOp::Kind::Prepend) {
            if (!s.empty()) s = op.to + s;
            continue;
        }
        if (op.from.empty()) continue;
        std::string r;
        r.reserve(s.size() + s.size() / 4);
        std::size_t pos = 0;
        for (std::size_t hit; (hit = s.find(op.from, pos)) != std::string::npos; pos = hit + op.from.size())
            r.append(s, pos, hit - pos).append(op.to);
        r.append(s, pos);
        s = std::move(r);
    }
    return s;
}

std::vector<std::string_view> Tokenizer::Impl::preTokenize(std::string_view s) const {
    if (!split || split->pattern.empty()) return {s};
    std::vector<std::string_view> words;
    std::size_t start = 0, pos = 0;
    const std::string& pat = split->pattern;
    while ((pos = s.find(pat, pos)) != std::string_view::npos) {
        switch (split->behavior) {
        case SplitBehavior::MergedWithPrevious:
            words.push_back(s.substr(start, pos + pat.size() - start));
            start = pos + pat.size();
            break;
        case SplitBehavior::MergedWithNext:
            if (pos > start) words.push_back(s.substr(start, pos - start));
            start = pos;
            break;
        case SplitBehavior::Isolated:
            if (pos > start) words.push_back(s.substr(start, pos - start));
            words.push_back(s.substr(pos, pat.size()));
            start = pos + pat.size();
            break;
        case SplitBehavior::Removed:
            if (pos > start) words.push_back(s.substr(start, pos - start));
            start = pos + pat.size();
            break;
        }
        pos += pat.size();
    }
    if (start < s.size()) words.push_back(s.substr(start));
    std::erase_if(words, [](std::string_view w) { return w.empty(); });
    return words;
}

void Tokenizer::Impl::bpe(std::string_view word, std::vector<int>& out) const {
    if (ignoreMerges) {
        if (const auto it = vocab.find(std::string(word)); it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    struct Sym {
        int id;
        int prev, next;
    };
    std::vector<Sym> syms;
    syms.reserve(word.size());
    auto push = [&](int id) {
        if (id == unkId && fuseUnk && !syms.empty() && syms.back().id == unkId) return;
        syms.push_back({id, int(syms.size()) - 1, int(syms.size()) + 1});
    };
    for (std::size_t i = 0; i < word.size();) {
        const std::size_t n = utf8::validSequenceLength(word, i);
        const std::size_t len = n ? n : 1;
        int id = -1;
        if (n) {
            const auto it = vocab.find(std::string(word.substr(i, n)));
            if (it != vocab.end()) id = it->second;
        }
        if (id >= 0) {
            push(id);
        } else {
            bool all = byteFallback;
            for (std::size_t k = 0; all && k < len; ++k) all = byteIds[static_cast<unsigned char>(word[i + k])] >= 0;
            if (all) {
                for (std::size_t k = 0; k < len; ++k) push(byteIds[static_cast<unsigned char>(word[i + k])]);
            } else {
                if (unkId < 0) throw Error(sourceName, {}, "text holds a character with no token and no unknown token");
                push(unkId);
            }
        }
        i += len;
    }
    if (syms.empty()) return;
    syms.back().next = -1;

    struct Cand {
        int rank;
        int pos;
        int result;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](int left) {
        if (left < 0) return;
        const int right = syms[std::size_t(left)].next;
        if (right < 0) return;
        const auto it = mergeRanks.find(pairKey(syms[std::size_t(left)].id, syms[std::size_t(right)].id));
        if (it != mergeRanks.end()) heap.push({it->second.rank, left, it->second.result});
    };
    for (int i = 0; i + 1 < int(syms.size()); ++i) consider(i);
    while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        Sym& l = syms[std::size_t(c.pos)];
        if (l.id < 0 || l.next < 0) continue;  // merged away
        Sym& r = syms[std::size_t(l.next)];
        const auto it = mergeRanks.find(pairKey(l.id, r.id));
        if (it == mergeRanks.end() || it->second.result != c.result || it->second.rank != c.rank) continue;  // stale
        l.id = c.result;
        const int after = r.next;
        r.id = -1;
        l.next = after;
        if (after >= 0) syms[std::size_t(after)].prev = c.pos;
        consider(l.prev);
        consider(c.pos);
    }
    for (int i = 0; i >= 0; i = syms[std::size_t(i)].next) out.push_back(syms[std::size_t(i)].id);
}

// ---- Tokenizer -------------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int> Tokenizer::encode(std::string_view text, const EncodeOptions& o) const {
    const Impl& m = *impl_;
    std::vector<int> out;
    out.reserve(text.size() / 3 + 4);
    if (o.addSpecialTokens)
        for (int id : m.prefixIds) out.push_back(id);
    auto encodePlain = [&](std::string_view raw) {
        const std::string norm = m.normalize(raw);
        std::size_t pos = 0;
        auto words = [&](std::string_view piece) {
            for (std::string_view w : m.preTokenize(piece)) m.bpe(w, out);
        };
        for (const auto& hit : m.normalizedAdded.find(norm, o.parseSpecial)) {
            words(std::string_view(norm).substr(pos, hit.begin - pos));
            out.push_back(hit.id);
            pos = hit.end;
        }
        words(std::string_view(norm).substr(pos));
    };
    std::size_t pos = 0;
    for (const auto& hit : m.rawAdded.find(text, o.parseSpecial)) {
        if (hit.begin > pos) encodePlain(text.substr(pos, hit.begin - pos));
        out.push_back(hit.id);
        pos = hit.end;
    }
    if (pos < text.size()) encodePlain(text.substr(pos));
    if (o.addSpecialTokens)
        for (int id : m.suffixIds) out.push_back(id);
    return out;
}

std::string Tokenizer::decode(std::span<const int> ids, bool skipSpecial) const {
    const Impl& m = *impl_;
    std::string out;
    bool first = true;
    for (int id : ids) {
        if (id < 0 || id >= int(m.tokens.size()))
            throw UsageError(m.sourceName, {}, "token id " + std::to_string(id) + " is outside the vocabulary (" +
                                                   std::to_string(m.tokens.size()) + " tokens)");
        const TokenEntry& t = m.tokens[std::size_t(id)];
        if (skipSpecial && t.special) continue;
        if (t.byte >= 0) {
            out += char(t.byte);
        } else {
            std::string piece = t.text;
            for (const auto& [from, to] : m.decodeReplace) {
                std::string r;
                std::size_t p = 0;
                for (std::size_t hit; (hit = piece.find(from, p)) != std::string::npos; p = hit + from.size())
                    r.append(piece, p, hit - p).append(to);
                r.append(piece, p);
                piece = std::move(r);
            }
            if (first && m.decodeStripLeading > 0) {
                std::size_t k = 0;
                while (k < piece.size() && k < std::size_t(m.decodeStripLeading) && piece[k] == ' ') ++k;
                piece.erase(0, k);
            }
            out += piece;
        }
        first = false;
    }
    return out;
}

int Tokenizer::size() const { return int(impl_->tokens.size()); }
int Tokenizer::modelVocabSize() const { return impl_->modelVocabSize; }

const std::string& Tokenizer::tokenText(int id) const {
    if (id < 0 || id >= size()) throw UsageError(impl_->sourceName, {}, "token id " + std::to_string(id) + " is out of range");
    return impl_->tokens[std::size_t(id)].text;
}

std::optional<int> Tokenizer::tokenId(std::string_view text) const {
    const auto it = impl_->vocab.find(std::string(text));
    if (it != impl_->vocab.end()) return it->second;
    for (const auto& a : impl_->added)
        if (a.content == text) return a.id;
    return std::nullopt;
}

bool Tokenizer::isSpecial(int id) const { return id >= 0 && id < size() && impl_->tokens[std::size_t(id)].special; }
bool Tokenizer::isAdded(int id) const { return id >= 0 && id < size() && impl_->tokens[std::size_t(id)].added; }
bool Tokenizer::isByteToken(int id) const { return id >= 0 && id < size() && impl_->tokens[std::size_t(id)].byte >= 0; }
std::optional<int> Tokenizer::bosId() const { return impl_->bos; }
const std::vector<AddedToken>& Tokenizer::addedTokens() const { return impl_->added; }
const std::vector<std::pair<int, int>>& Tokenizer::merges() const { return impl_->mergeList; }
const std::string& Tokenizer::source() const { return impl_->sourceName; }

Tokenizer Tokenizer::fromFile(const fs::path& p) {
    return fromJson(readJsonFile(p, 512ull << 20), p.string());
}

Tokenizer Tokenizer::fromModelOrFile(const fs::path& p) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        const fs::path t = p / files::kTokenizer;
        if (!fs::exists(t, ec) && !ec) throw IoError(t.string(), {}, "missing: the model folder has no tokenizer.json");
        return fromFile(t);
    }
    return fromFile(p);
}

Tokenizer checkpointTokenizer(const Checkpoint& ck) {
    const SideFile& f = ck.sideFile(files::kTokenizer, "the model folder has no tokenizer.json");
    return Tokenizer::fromJson(f.json(512ull << 20), f.from.string());
}

}  // namespace whittle
