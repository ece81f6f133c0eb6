#include "core/recipes/vocab_prune.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/recipes/recipe.h"
#include "core/recipes/recipe_json.h"
#include "core/io/atomic_output.h"
#include "core/io/file.h"
#include "core/model/tensor_table.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

Json toJson(const VocabularyRecipe& v) {
    Json s = Json::object();
    if (!v.preset.empty()) s["preset"] = v.preset;
    if (!v.buckets.empty()) s["buckets"] = v.buckets;
    if (!v.corpusFiles.empty()) s["corpus_files"] = v.corpusFiles;
    s["corpus_min_count"] = v.corpusMinCount;
    s["pad_multiple"] = v.padMultiple;
    return s;
}

VocabularyRecipe parseVocabularyRecipe(const Json& v, const std::string& src) {
    using namespace recipe_json;
    if (!v.is_object()) throw FormatError(src, {}, "'vocabulary' must be an object");
    onlyKeys(v, {"preset", "buckets", "corpus_files", "corpus_min_count", "pad_multiple"}, "vocabulary", src);
    VocabularyRecipe s;
    if (v.contains("preset")) {
        if (!v["preset"].is_string()) throw FormatError(src, {}, "'vocabulary.preset' must be a string");
        s.preset = v["preset"].get<std::string>();
    }
    if (v.contains("buckets")) s.buckets = strings(v["buckets"], "vocabulary.buckets", src);
    if (v.contains("corpus_files")) s.corpusFiles = strings(v["corpus_files"], "vocabulary.corpus_files", src);
    if (v.contains("corpus_min_count")) s.corpusMinCount = positiveInt(v["corpus_min_count"], "vocabulary.corpus_min_count", src);
    if (v.contains("pad_multiple")) s.padMultiple = positiveInt(v["pad_multiple"], "vocabulary.pad_multiple", src);
    if (s.preset.empty() == s.buckets.empty()) throw FormatError(src, {}, "'vocabulary' needs exactly one of 'preset' or 'buckets'");
    return s;
}

Json toJson(const VocabPruneReport& r) {
    return {{"tokens_before", r.tokensBefore},         {"tokens_kept", r.tokensKept},
            {"tokens_after_padding", r.tokensAfterPadding}, {"merges_before", r.mergesBefore},
            {"merges_kept", r.mergesKept},             {"params_before", r.paramsBefore},
            {"params_after", r.paramsAfter},           {"params_removed", r.paramsBefore - r.paramsAfter},
            {"dropped_without_rows", r.droppedWithoutRows}, {"bytes_written", r.bytesWritten},
            {"seconds", r.seconds}};
}

namespace {
bool idKey(const std::string& k) {
    auto ends = [&](const char* s) {
        const std::size_t n = std::strlen(s);
        return k.size() >= n && k.compare(k.size() - n, n, s) == 0;
    };
    return ends("_token_id") || ends("_token_index") || k == "eos_token_id";
}

// Rewrites every *_token_id / *_token_index (ints or lists) in obj and its nested objects.
void remapIds(Json& obj, const std::vector<int>& oldToNew, const std::string& file) {
    if (!obj.is_object()) return;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (it.value().is_object()) {
            remapIds(it.value(), oldToNew, file);
            continue;
        }
        if (!idKey(it.key())) continue;
        auto map = [&](Json& v) {
            if (!v.is_number_integer()) return;
            const int old = v.get<int>();
            if (old < 0 || old >= int(oldToNew.size()) || oldToNew[std::size_t(old)] < 0)
                throw UsageError(file, {}, "'" + it.key() + "' names token " + std::to_string(old) + ", which the selection removes");
            v = oldToNew[std::size_t(old)];
        };
        if (it.value().is_array())
            for (auto& e : it.value()) map(e);
        else
            map(it.value());
    }
}
}  // namespace

namespace {
KeepSelection recipeSelection(const Tokenizer& tok, const VocabularyRecipe& r) {
    const auto corpus = readCorpusLines(r.corpusFiles);
    const BucketTable table = classifyVocabulary(tok);
    return r.preset.empty() ? selectBuckets(tok, table, r.buckets) : selectPreset(tok, table, r.preset, corpus, r.corpusMinCount);
}
}  // namespace

std::vector<bool> selectionFromRecipe(const Tokenizer& tok, const VocabularyRecipe& r, int* keptBeforePadding, int* extraPadding) {
    KeepSelection s = recipeSelection(tok, r);
    if (keptBeforePadding) *keptBeforePadding = s.kept;
    const int extra = padSelection(tok, s.keep, r.padMultiple);
    if (extraPadding) *extraPadding = extra;
    return s.keep;
}

FittedSelection fitSelection(const Tokenizer& tok, std::vector<bool> keep, int rows, int multiple) {
    FittedSelection f;
    keep.resize(std::size_t(std::max(rows, tok.size())), false);
    for (std::size_t id = std::size_t(rows); id < keep.size(); ++id) keep[id] = false;
    f.kept = int(std::count(keep.begin(), keep.end(), true));
    f.extra = padSelection(tok, keep, multiple);
    f.vocabSize = int(std::count(keep.begin(), keep.end(), true)) + f.extra;
    f.keep = std::move(keep);
    return f;
}

FittedSelection recipeFittedSelection(const Tokenizer& tok, const VocabularyRecipe& r, int rows) {
    return fitSelection(tok, recipeSelection(tok, r).keep, rows, r.padMultiple);
}

std::vector<int> idMapping(const std::vector<bool>& keep, int rows) {
    std::vector<int> m(std::size_t(rows), -1);
    int next = 0;
    for (int id = 0; id < rows && id < int(keep.size()); ++id)
        if (keep[std::size_t(id)]) m[std::size_t(id)] = next++;
    return m;
}

void checkRequiredTokens(const SpecialTokenIds& s, const std::string& where, const Tokenizer& tok, const std::vector<bool>& keep) {
    auto need = [&](int id, const std::string& why) {
        if (id >= 0 && (id >= int(keep.size()) || !keep[std::size_t(id)]))
            throw UsageError(where, {}, "the selection drops the required " + why + " token '" + (id < tok.size() ? tok.tokenText(id) : "?") +
                                            "' (id " + std::to_string(id) + ")");
    };
    need(s.bos, "bos");
    need(s.pad, "pad");
    for (int e : s.eos) need(e, "eos");
    for (const char* turn : {"<|turn>", "<turn|>", "<start_of_turn>", "<end_of_turn>"})
        if (const auto id = tok.tokenId(turn)) need(*id, "chat turn");
}

void checkRequiredTokens(const Checkpoint& ck, const Tokenizer& tok, const std::vector<bool>& keep) {
    checkRequiredTokens(ck.specialTokens(), ck.dir().string(), tok, keep);
}

namespace {
int largestUnusedNumber(const Tokenizer& tok) {
    int best = -1;
    for (int id = 0; id < tok.size(); ++id) {
        const std::string& t = tok.tokenText(id);
        if (isUnusedPlaceholder(t)) try {
                best = std::max(best, std::stoi(t.substr(7, t.size() - 8)));
            } catch (const std::out_of_range&) {  // a number too large to continue from
            }
    }
    return best;
}

int firstUnusedId(const Tokenizer& tok) {
    for (int id = 0; id < tok.modelVocabSize(); ++id) {
        const std::string& t = tok.tokenText(id);
        if (isUnusedPlaceholder(t)) return id;
    }
    return -1;
}
}  // namespace

Json prunedTokenizerJson(const Json& original, const Tokenizer& tok, const std::vector<int>& oldToNew, int extraPadding) {
    Json j = original;
    auto newId = [&](int old) { return old >= 0 && old < int(oldToNew.size()) ? oldToNew[std::size_t(old)] : -1; };
    Json vocab = Json::object();
    for (int old = 0; old < int(oldToNew.size()) && old < tok.modelVocabSize(); ++old)
        if (newId(old) >= 0) vocab[tok.tokenText(old)] = newId(old);
    j["model"]["vocab"] = vocab;
    Json merges = Json::array();
    const Json& om = original["model"]["merges"];
    for (std::size_t r = 0; r < tok.merges().size(); ++r) {
        const auto [a, b] = tok.merges()[r];
        const auto res = tok.tokenId(tok.tokenText(a) + tok.tokenText(b));
        if (newId(a) >= 0 && newId(b) >= 0 && res && newId(*res) >= 0) merges.push_back(om[r]);
    }
    j["model"]["merges"] = merges;
    Json added = Json::array();
    for (const auto& a : original.value("added_tokens", Json::array())) {
        const int n = newId(a["id"].get<int>());
        if (n < 0) continue;
        Json b = a;
        b["id"] = n;
        added.push_back(b);
    }
    // New placeholders, flagged like the vocabulary's own <unusedN> added tokens.
    int next = int(vocab.size()), number = largestUnusedNumber(tok);
    Json tmpl;
    const int unusedId = firstUnusedId(tok);
    for (const auto& a : original.value("added_tokens", Json::array()))
        if (a["id"].get<int>() == unusedId) tmpl = a;
    for (int i = 0; i < extraPadding; ++i, ++next) {
        const std::string text = "<unused" + std::to_string(++number) + ">";
        j["model"]["vocab"][text] = next;
        if (!tmpl.is_null()) {
            Json a = tmpl;
            a["id"] = next;
            a["content"] = text;
            added.push_back(a);
        }
    }
    j["added_tokens"] = added;
    if (j.contains("post_processor") && j["post_processor"].is_object() && j["post_processor"].contains("special_tokens"))
        for (auto& st : j["post_processor"]["special_tokens"])
            for (auto& id : st["ids"]) {
                const int n = newId(id.get<int>());
                if (n < 0) throw UsageError("the post-processor's token " + id.dump() + " is removed by the selection");
                id = n;
            }
    return j;
}

namespace {
// Maps one id through old → new (-1 when removed or out of range).
int mapId(const std::vector<int>& oldToNew, int old) { return old >= 0 && old < int(oldToNew.size()) ? oldToNew[std::size_t(old)] : -1; }

// A tensor of the output: its upstream index, and for a sliced token table the upstream row of each output row.
struct RowSource {
    std::size_t upstream = 0;
    const std::vector<int>* rows = nullptr;  // null: passed through
    std::uint64_t rowBytes = 0;
};

}  // namespace

TensorStream vocabularyStream(TensorStream in, const VocabularyRecipe& recipe, VocabPruneReport& rep) {
    const Gemma4Config& c = in.config;
    for (const ExpectedTensor& e : textTensorTable(c)) {
        if (!isTokenTable(e.role)) continue;
        for (RowBlockType t : {RowBlockType::Q8_0, RowBlockType::Q4_0}) {
            const std::string blocks = rowBlocksName(e, t);
            for (const TensorSpec& spec : in.tensors)
                if (spec.name == blocks)
                    throw UsageError(in.origin.string(), spec.name,
                                     "is stored as rows of blocks; prune the vocabulary of the original first, then quantize its token tables");
        }
    }
    const SideFile& tokFile = in.file(files::kTokenizer, "vocabulary pruning rewrites the tokenizer");
    const Json tokJson = tokFile.json(512ull << 20);
    const std::string tokPath = tokFile.from.string();
    const Tokenizer tok = Tokenizer::fromJson(tokJson, tokPath);
    const int rows = c.vocabSize;
    if (c.vocabSizePerLayerInput != rows)
        throw FormatError((in.origin / files::kConfig).string(), {}, "vocab_size_per_layer_input differs from vocab_size; llama.cpp needs them equal");
    rep.tokensBefore = rows;
    const FittedSelection fit = recipeFittedSelection(tok, recipe, rows);
    if (fit.kept <= 0) throw UsageError(in.origin.string(), {}, "the selection keeps no token of this tokenizer");  // before what it lacks
    const int extra = fit.extra;
    rep.tokensKept = fit.kept;
    const int padSource = firstUnusedId(tok);
    if (extra > 0 && (padSource < 0 || padSource >= rows))
        throw UsageError(tokPath, {}, "the vocabulary has no <unusedN> placeholder whose rows padding could copy");
    for (int id = rows; id < tok.size(); ++id) rep.droppedWithoutRows.push_back(tok.tokenText(id));
    checkRequiredTokens(in.special, in.origin.string(), tok, fit.keep);
    const std::vector<int> oldToNew = idMapping(fit.keep, rows);
    std::vector<int> newToOld;
    for (int old = 0; old < rows; ++old)
        if (oldToNew[std::size_t(old)] >= 0) newToOld.push_back(old);
    const int V = fit.vocabSize;
    rep.tokensAfterPadding = V;  // kept + padding
    rep.mergesBefore = int(tok.merges().size());

    TensorStream out;
    out.origin = in.origin;
    out.special = in.special;
    out.special.bos = mapId(oldToNew, in.special.bos);
    out.special.pad = mapId(oldToNew, in.special.pad);
    for (int& e : out.special.eos) e = mapId(oldToNew, e);

    // Tokenizer, configs and every other small file.
    const Json newTok = prunedTokenizerJson(tokJson, tok, oldToNew, extra);
    rep.mergesKept = int(newTok["model"]["merges"].size());
    for (const SideFile& f : in.files) {
        if (f.name == files::kVocabMapping) continue;  // an earlier pruning's: replaced below
        SideFile g = f;
        if (f.name == files::kTokenizer) {
            g.text = jsonFileText(newTok);
        } else if (f.name == files::kConfig || f.name == files::kGenerationConfig || f.name == files::kProcessorConfig) {
            Json j = f.json();
            remapIds(j, oldToNew, f.from.string());
            if (f.name == files::kConfig) {
                Json& t = j.contains("text_config") ? j["text_config"] : j;
                t["vocab_size"] = V;
                t["vocab_size_per_layer_input"] = V;
                out.config = Gemma4Config::parse(j, f.from.string());
            }
            g.text = jsonFileText(j);
        } else if (f.name == files::kTokenizerConfig) {
            Json j = f.json(256ull << 20);
            if (j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
                Json dec = Json::object();
                for (auto it = j["added_tokens_decoder"].begin(); it != j["added_tokens_decoder"].end(); ++it) {
                    const int n = mapId(oldToNew, std::stoi(it.key()));
                    if (n >= 0) dec[std::to_string(n)] = it.value();
                }
                j["added_tokens_decoder"] = dec;
            }
            g.text = jsonFileText(j);
        }
        out.files.push_back(std::move(g));
    }
    std::vector<int> newToOldPadded = newToOld;
    newToOldPadded.resize(std::size_t(V), -1);  // appended placeholders have no original id
    out.files.push_back(SideFile{files::kVocabMapping, in.origin / files::kVocabMapping,
                                   jsonFileText(Json{{"old_to_new", oldToNew}, {"new_to_old", newToOldPadded},
                                                     {"padding_copies_row_of", extra ? padSource : -1}})});

    // Tensors: every tensor with one row per token id sliced, the rest passed through. Padding rows copy a
    // placeholder's row, never zeros: a zero row gives logit 0, which can win.
    auto rowsFrom = std::make_shared<std::vector<int>>(newToOld);
    rowsFrom->resize(std::size_t(V), padSource);
    const std::vector<std::string> tokenRows = tokenRowTensorNames(c);
    const std::set<std::string> sliced(tokenRows.begin(), tokenRows.end());
    std::vector<RowSource> sources;
    for (std::size_t i = 0; i < in.tensors.size(); ++i) {
        TensorSpec s = in.tensors[i];
        rep.paramsBefore += s.numel();
        RowSource src{i, nullptr, 0};
        if (sliced.count(s.name)) {
            if (s.shape.empty() || s.shape[0] != rows)
                throw FormatError(in.origin.string(), s.name, "has " + std::to_string(s.shape.empty() ? 0 : s.shape[0]) +
                                                                  " rows but vocab_size is " + std::to_string(rows));
            src.rows = rowsFrom.get();
            src.rowBytes = s.nbytes() / std::uint64_t(rows);
            s.shape[0] = V;
        }
        rep.paramsAfter += s.numel();
        out.tensors.push_back(std::move(s));
        sources.push_back(src);
    }
    if (!out.file(files::kConfig)) throw FormatError((in.origin / files::kConfig).string(), {}, "is missing");
    out.read = [read = std::move(in.read), sources = std::move(sources), rowsFrom](std::size_t i, std::uint64_t offset, std::uint64_t n,
                                                                                  char* dst) {
        const RowSource& s = sources[i];
        if (s.rows)
            readUpstreamRows(read, s.upstream, s.rowBytes, *s.rows, offset, n, dst);
        else
            read(s.upstream, offset, n, dst);
    };
    return out;
}

VocabPruneReport pruneVocabulary(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                                 const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.vocabulary) throw UsageError("the recipe has no vocabulary section");
    VocabPruneReport rep;
    const TensorStream stream = vocabularyStream(checkpointStream(ck), *recipe.vocabulary, rep);
    AtomicOutputDir out(dest, force, {ck.dir()});
    rep.bytesWritten = writeStream(stream, out.path(), progress, cancel).tensorBytes;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport,
                  Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"vocabulary", toJson(rep)}});
    out.commit();
    return rep;
}

}  // namespace whittle
