// The English vocabulary prune checked by tools nobody here wrote:
//   tokenizer — Google's 262k Gemma tokenizer pruned at test time exactly as the pruner does it, then read
//     by Hugging Face's tokenizers (npm @huggingface/tokenizers, tests/peers/hf_encode.mjs):
//     (i) on every English fortune line its ids on the pruned file equal our pruned Tokenizer's;
//     (ii) mapped back through new → old, they equal the ids of the original 262k file (Hugging Face's and
//          ours) on every line;
//     (iii) Russian and Chinese lines, whose scripts the prune removes, go to byte fallback identically in
//          both tokenizers.
//   model — the bundled model pruned to the English preset and exported to GGUF, run by llama.cpp
//     (node-llama-cpp, tests/peers/llama_logits.mjs):
//     (i) F32: at every position of 3 prompts the pruned model's logits at each new id equal the unpruned
//         model's llama.cpp logits at the original id within max|Δ| ≤ 2e-3 · max|ref| (tst_llama_parity's bar),
//         with the same argmax unless near a tie;
//     (ii) F16: llama.cpp's 32 greedy tokens equal our reference engine's on the pruned checkpoint, with
//         design.md §5's near-tie rule (tests/peer_support.h: compareGreedy).
// Token ids are passed to llama.cpp, never text.
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/export/gguf_export.h"
#include "core/io/file.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_session.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"
#include "core/tokenizer/tokenizer.h"
#include "peer_support.h"
#include "corpus.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
const fs::path kBundled = bundledModelDir();
// Gemma 4's embedding has 262,144 rows; the tokenizer's 262,145th id (<image_soft_token>) has none and the
// pruner drops it (tst_prune's e2b-full prune).
constexpr int kGemmaRows = 262144;
constexpr int kGreedyTokens = 32;

fs::path gemmaTokenizerDir() { return peersDir() / "gemma-tokenizer"; }

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

class TestPrunePeers : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

    // The tokenizer part: Google's tokenizer, its English prune as the pruner writes it, the id mappings.
    std::optional<Tokenizer> original_, pruned_;
    fs::path prunedJson_;
    std::vector<int> oldToNew_, newToOld_;

    // The model part: the pruned bundled model, its mapping and llama.cpp's answers.
    fs::path prunedModel_;
    std::vector<int> modelOldToNew_, modelNewToOld_;
    int paddingSource_ = -1;
    std::vector<std::pair<std::string, std::vector<int>>> prompts_;  // original ids
    QJsonObject unprunedF32_, prunedF32_, prunedF16_;

    // Builds the pruned tokenizer.json in the temporary folder with the pruner's own steps (selection from
    // the recipe, fitted to the rows and padded to 256, mapping, tokenizer rewrite) and loads both.
    void makePrunedTokenizer() {
        if (pruned_) return;  // once per process (CTest runs each test function in its own)
        const auto t0 = std::chrono::steady_clock::now();
        const fs::path tj = gemmaTokenizerDir() / "tokenizer.json";
        const Json j = readJsonFile(tj, 512ull << 20);
        original_.emplace(Tokenizer::fromJson(j, tj.string()));
        QCOMPARE(original_->size(), kGemmaRows + 1);
        VocabularyRecipe vr;
        vr.preset = "english";
        int keptBeforePadding = 0;
        const FittedSelection fit =
            fitSelection(*original_, selectionFromRecipe(*original_, vr, &keptBeforePadding), kGemmaRows, vr.padMultiple);
        oldToNew_ = idMapping(fit.keep, kGemmaRows);
        // new_to_old as vocab_mapping.json has it: the kept ids in order, then -1 for appended placeholders.
        newToOld_.clear();
        for (int old = 0; old < kGemmaRows; ++old)
            if (oldToNew_[std::size_t(old)] >= 0) newToOld_.push_back(old);
        newToOld_.resize(std::size_t(fit.vocabSize), -1);
        prunedJson_ = tempPath(dir_, "pruned-tokenizer.json");
        writeTextFile(prunedJson_, prunedTokenizerJson(j, *original_, oldToNew_, fit.extra).dump(2) + "\n");
        pruned_.emplace(Tokenizer::fromFile(prunedJson_));  // what Hugging Face reads, read back from the file
        QCOMPARE(pruned_->size(), fit.vocabSize);
        QCOMPARE(fit.vocabSize, 155904);  // the published English rule (tst_prune::realTokenizer)
        qInfo("Google's tokenizer, English preset: %d -> %d ids (%d selected, then padded with placeholders), built in %.1f s",
              original_->size(), fit.vocabSize, keptBeforePadding, secondsSince(t0));
    }

    // Prunes the bundled model, exports the GGUFs (the unpruned F32, the pruned F32 and F16) and makes the
    // prompts.
    void makePrunedModel() {
        if (!prunedModel_.empty()) return;  // once per process (CTest runs each test function in its own)
        const auto t0 = std::chrono::steady_clock::now();
        prunedModel_ = tempPath(dir_, "tiny-english");
        Recipe r;
        r.vocabulary = VocabularyRecipe{};
        r.vocabulary->preset = "english";
        NullProgress progress;
        CancelToken cancel;
        const Checkpoint original = Checkpoint::open(kBundled);
        const VocabPruneReport rep = pruneVocabulary(original, r, prunedModel_, false, progress, cancel);
        const Json map = readJsonFile(prunedModel_ / "vocab_mapping.json");
        modelOldToNew_ = map.at("old_to_new").get<std::vector<int>>();
        modelNewToOld_ = map.at("new_to_old").get<std::vector<int>>();
        paddingSource_ = map.at("padding_copies_row_of").get<int>();
        const Checkpoint pruned = Checkpoint::open(prunedModel_);
        QCOMPARE(int(modelNewToOld_.size()), pruned.config().vocabSize);
        qInfo("bundled model, English preset: %d -> %d ids (%d kept); padding rows copy row %d", rep.tokensBefore, rep.tokensAfterPadding,
              rep.tokensKept, paddingSource_);

        for (const auto& [ck, path, type] : {std::tuple{&original, gguf("unpruned-f32"), GgmlType::F32},
                                              std::tuple{&pruned, gguf("pruned-f32"), GgmlType::F32},
                                              std::tuple{&pruned, gguf("pruned-f16"), GgmlType::F16}}) {
            GgufExportOptions o;
            o.weightType = type;
            const auto e = exportGguf(*ck, path, o, progress, cancel);
            QCOMPARE(e.vocabulary, ck->config().vocabSize);
        }

        // Prompts as original ids, every one kept by the prune (English text): a sentence, a chat turn, and
        // 150 held-out tokens, past the 64-token sliding window.
        const Tokenizer tok = Tokenizer::fromModelOrFile(kBundled);
        const std::string held = readTextFile(kBundled / "heldout.txt");
        const auto w = held.find("Demons");
        QVERIFY(w != std::string::npos);
        // The first 150 consecutive held-out ids from there that the prune keeps (it removes a few rare ones).
        const std::vector<int> heldIds = tok.encode(held.substr(w, 20000), {false, false});
        QVERIFY(tok.bosId());
        std::vector<int> longIds = {*tok.bosId()};
        for (std::size_t i = 0; i < heldIds.size() && longIds.size() < 150; ++i) {
            if (modelOldToNew_[std::size_t(heldIds[i])] >= 0) {
                longIds.push_back(heldIds[i]);
            } else {
                longIds.resize(1);  // restart after a removed id
            }
        }
        QCOMPARE(longIds.size(), std::size_t(150));
        prompts_ = {
            {"short text", tok.encode("The quick brown fox jumps over the lazy dog.")},
            {"chat turn", tok.encode("<|turn>user\nWhat is a proverb about trees?<turn|>\n<|turn>model\n")},
            {"150 tokens (window 64)", longIds},
        };
        QVERIFY(int(prompts_[2].second.size()) > original.config().slidingWindow);
        for (const auto& [name, ids] : prompts_)
            for (int id : ids) QVERIFY2(modelOldToNew_[std::size_t(id)] >= 0, qPrintable(QString("%1: id %2 is removed").arg(name.c_str()).arg(id)));

        qInfo("pruned and exported in %.1f s", secondsSince(t0));
    }

    fs::path gguf(const char* name) const { return tempPath(dir_, name).replace_extension(".gguf"); }

    // llama.cpp on one of the GGUFs: `logits` (every position) or `greedy` (kGreedyTokens) jobs for the prompts,
    // given as new ids for the pruned model.
    QJsonObject runLlama(const char* name, const char* kvType, const char* jobKind, bool pruned) {
        QJsonObject req;
        req["model"] = QString::fromStdString(gguf(name).string());
        req["kvType"] = kvType;
        req["contextSize"] = 512;
        req["threads"] = 1;
        QJsonArray jobs;
        for (const auto& [prompt, ids] : prompts_) {
            QJsonObject job{{jobKind, idArray(pruned ? toNew(ids) : ids)}};
            if (QString(jobKind) == "greedy") job["n"] = kGreedyTokens;
            jobs.append(job);
        }
        req["jobs"] = jobs;
        const QJsonObject answer = runLlamaPeer(req, tempPath(dir_, name).replace_extension(".json"));
        if (!answer.isEmpty() && answer["vocabSize"].toInt() != int(pruned ? modelNewToOld_.size() : modelOldToNew_.size())) {
            qWarning("%s: llama.cpp has %d logits per step", name, answer["vocabSize"].toInt());
            return {};
        }
        return answer;
    }

    std::vector<int> toNew(const std::vector<int>& oldIds) const {
        std::vector<int> out;
        for (int id : oldIds) out.push_back(modelOldToNew_[std::size_t(id)]);
        return out;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        WHITTLE_REQUIRE_OR_SKIP(haveNode(), "node is not on PATH (NodeSource nodejs >= 20)");
        WHITTLE_REQUIRE_OR_SKIP(haveHfPeer() && haveLlamaPeer() && fs::exists(gemmaTokenizerDir() / "tokenizer.json"),
                                "test peers missing: run bash tests/peers/install.sh build/default");
    }

    // (i) and (ii) over the English fortunes.
    void tokenizerEnglish() {
        const std::vector<std::string> lines = englishFortuneLines();
        WHITTLE_REQUIRE_OR_SKIP(lines.size() > 50000, "Debian's fortunes package is missing: run tools/setup.sh test");
        makePrunedTokenizer();
        if (QTest::currentTestFailed()) return;
        const fs::path config = gemmaTokenizerDir() / "tokenizer_config.json";  // the library reads no ids from it
        const auto hfPruned = runHfEncode(prunedJson_, config, lines, tempPath(dir_));
        const auto hfOriginal = runHfEncode(gemmaTokenizerDir() / "tokenizer.json", config, lines, tempPath(dir_));
        QCOMPARE(hfPruned.size(), lines.size());
        QCOMPARE(hfOriginal.size(), lines.size());

        std::size_t prunedMismatches = 0, removedNeeded = 0, mappedMismatches = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            const std::vector<int> ours = pruned_->encode(lines[i]);
            if (ours != hfPruned[i] && ++prunedMismatches <= 5)
                qWarning("line %zu %s\n  ours %s\n  HF   %s", i, Json(lines[i]).dump().c_str(), Json(ours).dump().c_str(),
                         Json(hfPruned[i]).dump().c_str());
            // The English preset keeps every token the original needs for these lines (were one removed, the
            // pruned ids would differ by design and the line would belong in tokenizerRemovedScripts).
            for (int id : hfOriginal[i])
                if ((id >= kGemmaRows || oldToNew_[std::size_t(id)] < 0) && ++removedNeeded <= 5)
                    qWarning("line %zu needs the removed token %d '%s': %s", i, id, original_->tokenText(id).c_str(), lines[i].c_str());
            const std::vector<int> ourOriginal = original_->encode(lines[i]);
            std::vector<int> mapped;
            for (int n : hfPruned[i]) mapped.push_back(n >= 0 && n < int(newToOld_.size()) ? newToOld_[std::size_t(n)] : -2);
            if ((mapped != hfOriginal[i] || mapped != ourOriginal) && ++mappedMismatches <= 5)
                qWarning("line %zu %s\n  pruned, mapped back %s\n  original (HF)       %s\n  original (ours)     %s", i,
                         Json(lines[i]).dump().c_str(), Json(mapped).dump().c_str(), Json(hfOriginal[i]).dump().c_str(),
                         Json(ourOriginal).dump().c_str());
        }
        qInfo("English fortunes: %zu lines; pruned file, HF vs ours: %zu lines differ; pruned ids mapped back vs the original "
              "file's (HF's and ours): %zu lines differ; %zu original tokens are removed ones",
              lines.size(), prunedMismatches, mappedMismatches, removedNeeded);
        QCOMPARE(prunedMismatches, std::size_t(0));
        QCOMPARE(mappedMismatches, std::size_t(0));
        QCOMPARE(removedNeeded, std::size_t(0));
    }

    // (iii) Scripts the English prune removes fall back to bytes the same way in both tokenizers.
    void tokenizerRemovedScripts() {
        const std::vector<std::string> lines = russianAndChineseFortuneLines(2000);
        WHITTLE_REQUIRE_OR_SKIP(lines.size() > 3000, "Debian's fortunes-ru / fortunes-zh packages are missing: run tools/setup.sh test");
        makePrunedTokenizer();
        if (QTest::currentTestFailed()) return;
        const auto hf = runHfEncode(prunedJson_, gemmaTokenizerDir() / "tokenizer_config.json", lines, tempPath(dir_));
        QCOMPARE(hf.size(), lines.size());
        std::size_t mismatches = 0, withBytes = 0, byteTokens = 0, tokens = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            const std::vector<int> ours = pruned_->encode(lines[i]);
            if (ours != hf[i] && ++mismatches <= 5)
                qWarning("line %zu %s\n  ours %s\n  HF   %s", i, Json(lines[i]).dump().c_str(), Json(ours).dump().c_str(), Json(hf[i]).dump().c_str());
            std::size_t bytes = 0;
            for (int id : ours) bytes += pruned_->isByteToken(id);
            withBytes += bytes > 0;
            byteTokens += bytes;
            tokens += ours.size();
        }
        qInfo("Russian and Chinese fortunes: %zu lines, %zu tokens of which %zu byte-fallback tokens (%zu lines use them); HF vs ours: "
              "%zu mismatches",
              lines.size(), tokens, byteTokens, withBytes, mismatches);
        QCOMPARE(mismatches, std::size_t(0));
        // The lines really exercise byte fallback (else this would only repeat tokenizerEnglish).
        QVERIFY(withBytes > lines.size() * 9 / 10);
    }

    // Model (i): llama.cpp on the pruned GGUF equals llama.cpp on the unpruned one at the kept ids.
    void modelLogits() {
        makePrunedModel();
        if (QTest::currentTestFailed()) return;
        if (unprunedF32_.isEmpty()) unprunedF32_ = runLlama("unpruned-f32", "F32", "logits", false);
        if (prunedF32_.isEmpty()) prunedF32_ = runLlama("pruned-f32", "F32", "logits", true);
        QVERIFY(!unprunedF32_.isEmpty() && !prunedF32_.isEmpty());
        const std::size_t PV = modelNewToOld_.size(), OV = modelOldToNew_.size();
        for (std::size_t p = 0; p < prompts_.size(); ++p) {
            const QJsonArray pruned = prunedF32_["results"].toArray()[int(p)].toObject()["logits"].toArray();
            const QJsonArray unpruned = unprunedF32_["results"].toArray()[int(p)].toObject()["logits"].toArray();
            QCOMPARE(std::size_t(pruned.size()), prompts_[p].second.size());
            QCOMPARE(std::size_t(unpruned.size()), prompts_[p].second.size());
            double worst = 0;
            int worstAt = -1, argmaxDiffer = 0, argmaxDifferNotTie = 0;
            double offByOne = 0;
            std::vector<float> ref(PV);
            for (int t = 0; t < pruned.size(); ++t) {
                const std::vector<float> pl = decodeLogits(pruned[t]), ol = decodeLogits(unpruned[t]);
                QCOMPARE(pl.size(), PV);
                QCOMPARE(ol.size(), OV);
                // The unpruned logits gathered in the new order; a padding placeholder's row is a copy of
                // padding_copies_row_of's row, so its logit is that id's.
                for (std::size_t n = 0; n < PV; ++n) {
                    const int o = modelNewToOld_[n] >= 0 ? modelNewToOld_[n] : paddingSource_;
                    QVERIFY(o >= 0 && std::size_t(o) < OV);
                    ref[n] = ol[std::size_t(o)];
                }
                const double e = relativeError(pl.data(), ref.data(), PV);
                if (e > worst) worst = e, worstAt = t;
                if (t + 1 == pruned.size()) {
                    // The comparison can fail: the same logits against a mapping off by one id miss the bar by far.
                    std::vector<float> shifted(PV);
                    for (std::size_t n = 0; n < PV; ++n) shifted[n] = ref[(n + 1) % PV];
                    offByOne = relativeError(pl.data(), shifted.data(), PV);
                }
                if (argmax(pl.data(), PV) != argmax(ref.data(), PV)) {
                    ++argmaxDiffer;
                    argmaxDifferNotTie += !nearTie(ref.data(), PV);
                }
            }
            qInfo("%s: %d positions, %zu ids: max|Δ|/max|ref| = %.3g (worst at %d), argmax differs at %d (%d no near tie); "
                  "against a mapping off by one id: %.3g",
                  prompts_[p].first.c_str(), int(pruned.size()), PV, worst, worstAt, argmaxDiffer, argmaxDifferNotTie, offByOne);
            QVERIFY(offByOne > 10 * kLogitTolerance);
            QVERIFY2(worst <= kLogitTolerance, qPrintable(QString("%1: max|Δ|/max|ref| %2 at position %3").arg(prompts_[p].first.c_str()).arg(worst).arg(worstAt)));
            QCOMPARE(argmaxDifferNotTie, 0);
        }
    }

    // Model (ii): llama.cpp's greedy on the pruned F16 GGUF equals our engine's on the pruned checkpoint.
    void modelGreedy() {
        makePrunedModel();
        if (QTest::currentTestFailed()) return;
        if (prunedF16_.isEmpty()) prunedF16_ = runLlama("pruned-f16", "F16", "greedy", true);
        QVERIFY(!prunedF16_.isEmpty());
        const Checkpoint ck = Checkpoint::open(prunedModel_);
        ReferenceOptions ro;
        ro.threads = 2;
        const ReferenceModel model(ck, ro);
        const Tokenizer tok = Tokenizer::fromModelOrFile(prunedModel_);
        for (std::size_t p = 0; p < prompts_.size(); ++p) {
            const QJsonObject theirs = prunedF16_["results"].toArray()[int(p)].toObject();
            const std::vector<int> theirTokens = toIds(theirs["tokens"]);
            QCOMPARE(int(theirTokens.size()), kGreedyTokens);
            const GreedyComparison g = compareGreedy(model, toNew(prompts_[p].second), theirTokens, theirs["logits"].toArray());
            if (g.firstDifference < 0) {
                qInfo("%s: 32 greedy tokens identical: %s", prompts_[p].first.c_str(),
                      qPrintable(QString::fromStdString(tok.decode(g.ours)).left(100).replace('\n', ' ')));
                continue;
            }
            const std::size_t k = std::size_t(g.firstDifference);
            qInfo("%s: greedy differs at token %zu (ours %d, llama.cpp %d); our top-2 margin %.3g x max|logit|; teacher-forced on "
                  "llama.cpp's continuation: max|Δ|/max|ref| = %.3g",
                  prompts_[p].first.c_str(), k, g.ours[k], theirTokens[k], g.margin, g.teacherForced);
            QVERIFY2(g.margin < kTieMargin, "llama.cpp's greedy continuation departs from ours where ours is not a near tie");
            QVERIFY(g.teacherForced <= kTeacherForcedTolerance);
        }
    }
};

QTEST_GUILESS_MAIN(TestPrunePeers)
#include "tst_prune_peers.moc"
