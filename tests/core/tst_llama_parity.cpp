// The GGUF export run by llama.cpp itself (node-llama-cpp 3.22.1, prebuilt CPU binary, driven by
// tests/peers/llama_logits.mjs) against our CPU reference engine on the bundled model:
//   (a) F32 GGUF, F32 KV cache: raw logits after every token of 3 prompts (one longer than the sliding
//       window) within max|Δ| ≤ 2e-3 · max|ref| at every position, and the same argmax at every position
//       where our top-2 margin is at least 1e-3 · max|logit|;
//   (b) F16 GGUF (default F16 KV cache): 32 greedy tokens identical to the reference's greedy on the
//       original weights, unless the reference's top-2 margin at the first difference is below
//       1e-3 · max|logit| — then llama.cpp's logits along its own continuation are compared instead;
//   (c) llama.cpp's tokenizer on the GGUF vocabulary gives our ids;
//   (d) the KV source llama.cpp reports for each shared layer (its debug log) is our kvSource.
//   (e) the bar of (a) is not blind to RoPE: our engine with a wrong RoPE parameter misses it by far.
// Token ids are passed, never text, so (a) and (b) test the model, not the tokenizer. The argmax rule and
// tolerances are design.md §5's (tests/peer_support.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/export/gguf_export.h"
#include "core/io/file.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "peer_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

const fs::path kBundled = bundledModelDir();
constexpr int kGreedyTokens = 32;
// A broken RoPE must miss the 2e-3 bar by at least this much (measured: see brokenRopeFails's output).
constexpr double kMinimumBrokenError = 2e-2;

}  // namespace

class TestLlamaParity : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::unique_ptr<Checkpoint> ck_;
    std::unique_ptr<ReferenceModel> model_;
    std::unique_ptr<Tokenizer> tok_;
    fs::path f32_, f16_;
    std::vector<std::pair<std::string, std::vector<int>>> prompts_;
    std::vector<std::string> lines_;
    QJsonObject f32Answer_, f16Answer_;

private slots:
    void initTestCase() {
        WHITTLE_REQUIRE_OR_SKIP(haveNode(), "node is not on PATH (NodeSource nodejs >= 20)");
        WHITTLE_REQUIRE_OR_SKIP(haveLlamaPeer(), "node-llama-cpp peer missing: run bash tests/peers/install.sh build/default");
        QVERIFY(dir_.isValid());
        ck_ = std::make_unique<Checkpoint>(Checkpoint::open(kBundled));
        ReferenceOptions ro;
        ro.threads = 2;
        model_ = std::make_unique<ReferenceModel>(*ck_, ro);
        tok_ = std::make_unique<Tokenizer>(Tokenizer::fromModelOrFile(kBundled));

        NullProgress progress;
        CancelToken cancel;
        f32_ = tempPath(dir_, "tiny-f32.gguf");
        f16_ = tempPath(dir_, "tiny-f16.gguf");
        for (const auto& [path, type] : {std::pair{f32_, GgmlType::F32}, std::pair{f16_, GgmlType::F16}}) {
            GgufExportOptions o;
            o.weightType = type;
            const auto rep = exportGguf(*ck_, path, o, progress, cancel);
            qInfo("exported %s: %.1f MB in %.2f s", rep.weightType.c_str(), double(rep.fileBytes) / 1e6, rep.seconds);
        }

        // Prompts as ids: BOS + held-out text (the model never trained on it), one past the 64-token window.
        const std::string held = readTextFile(kBundled / "heldout.txt");
        const auto w = held.find("Demons");
        QVERIFY(w != std::string::npos);
        std::vector<int> longIds = tok_->encode(held.substr(w, 2000));
        longIds.resize(150);
        prompts_ = {
            {"short text", tok_->encode("The quick brown fox jumps over the lazy dog.")},
            {"chat turn", tok_->encode("<|turn>user\nWhat is a proverb about trees?<turn|>\n<|turn>model\n")},
            {"150 tokens (window 64)", longIds},
        };
        QVERIFY(prompts_[2].second.size() == 150 && prompts_[2].second.size() > std::size_t(ck_->config().slidingWindow));
        lines_ = {"A borrico desconocido, no le toques la oreja.", "  leading spaces and\ttabs\n\nnewlines\n\n\n",
                  "<|turn>user\nHi<turn|>\n<|channel>thought\n<channel|>", "Fi\xc5\x9d" "o ser\xc4\x89" "as profundon \xe2\x80\x94 100 %",
                  "emoji \xf0\x9f\x98\x80 and CJK \xe4\xb8\xad\xe6\x96\x87 fall back to bytes"};
        for (std::size_t i = 0; i < 6; ++i) {  // and a few held-out lines
            const auto p = held.find("%\n", i * 9000);
            const auto e = held.find('\n', p + 2);
            lines_.push_back(held.substr(p + 2, e - p - 2));
        }

        QJsonObject r32;
        r32["model"] = QString::fromStdString(f32_.string());
        r32["kvType"] = "F32";
        r32["contextSize"] = 512;
        r32["threads"] = 1;
        QJsonArray jobs;
        for (const auto& [name, ids] : prompts_) jobs.append(QJsonObject{{"logits", idArray(ids)}});
        QJsonArray texts;
        for (const auto& l : lines_) texts.append(QString::fromStdString(l));
        jobs.append(QJsonObject{{"tokenize", texts}});
        r32["jobs"] = jobs;
        f32Answer_ = runLlamaPeer(r32, tempPath(dir_, "f32.json"));
        QVERIFY(!f32Answer_.isEmpty());

        QJsonObject r16;
        r16["model"] = QString::fromStdString(f16_.string());
        r16["kvType"] = "F16";
        r16["contextSize"] = 512;
        r16["threads"] = 1;
        QJsonArray jobs16;
        for (const auto& [name, ids] : prompts_) jobs16.append(QJsonObject{{"greedy", idArray(ids)}, {"n", kGreedyTokens}});
        r16["jobs"] = jobs16;
        f16Answer_ = runLlamaPeer(r16, tempPath(dir_, "f16.json"));
        QVERIFY(!f16Answer_.isEmpty());
        const auto rel = f32Answer_["llamaCpp"].toObject();
        qInfo("llama.cpp %s (%s)", qPrintable(rel["release"].toString()), qPrintable(rel["repo"].toString()));
    }

    // (a) Logits within the bar at every position, and the same argmax wherever ours is not a near tie.
    void f32Logits_data() {
        QTest::addColumn<int>("index");
        for (std::size_t i = 0; i < 3; ++i) QTest::newRow(prompts_[i].first.c_str()) << int(i);
    }
    void f32Logits() {
        QFETCH(int, index);
        const auto& ids = prompts_[std::size_t(index)].second;
        const std::size_t V = std::size_t(model_->vocabSize());
        QCOMPARE(f32Answer_["vocabSize"].toInt(), int(V));
        const QJsonArray theirs = f32Answer_["results"].toArray()[index].toObject()["logits"].toArray();
        QCOMPARE(std::size_t(theirs.size()), ids.size());
        ReferenceSession s(*model_, 512, 32);
        std::vector<float> ours(ids.size() * V);
        s.forward(ids, ours.data());
        double worst = 0;
        int worstAt = -1, argmaxDiffer = 0, argmaxDifferNotTie = 0;
        for (std::size_t t = 0; t < ids.size(); ++t) {
            const std::vector<float> l = decodeLogits(theirs[int(t)]);
            QCOMPARE(l.size(), V);
            const float* ref = ours.data() + t * V;
            const double e = relativeError(l.data(), ref, V);
            if (e > worst) {
                worst = e;
                worstAt = int(t);
            }
            if (argmax(l.data(), V) != argmax(ref, V)) {
                ++argmaxDiffer;
                if (!nearTie(ref, V)) {
                    ++argmaxDifferNotTie;
                    qWarning("position %zu: argmax ours %d, llama.cpp %d; our top-2 margin %.3g x max|logit| is no near tie", t,
                             argmax(ref, V), argmax(l.data(), V), topTwoMargin(ref, V) / maxAbs(ref, V));
                }
            }
        }
        qInfo("%zu positions: max|Δ|/max|ref| = %.3g (worst at position %d), argmax differs at %d (%d of them no near tie)", ids.size(),
              worst, worstAt, argmaxDiffer, argmaxDifferNotTie);
        QVERIFY2(worst <= kLogitTolerance, qPrintable(QString("max|Δ|/max|ref| %1 at position %2").arg(worst).arg(worstAt)));
        QCOMPARE(argmaxDifferNotTie, 0);
    }

    // (b)
    void f16Greedy_data() { f32Logits_data(); }
    void f16Greedy() {
        QFETCH(int, index);
        const auto& prompt = prompts_[std::size_t(index)].second;
        const QJsonObject theirs = f16Answer_["results"].toArray()[index].toObject();
        const std::vector<int> theirTokens = toIds(theirs["tokens"]);
        QCOMPARE(int(theirTokens.size()), kGreedyTokens);
        const GreedyComparison g = compareGreedy(*model_, prompt, theirTokens, theirs["logits"].toArray());
        if (g.firstDifference < 0) {
            qInfo("32 greedy tokens identical: %s", qPrintable(QString::fromStdString(tok_->decode(g.ours)).left(120)));
            return;
        }
        const std::size_t k = std::size_t(g.firstDifference);
        qInfo("greedy differs at token %zu (ours %d, llama.cpp %d); reference top-2 margin %.3g x max|logit|; teacher-forced on "
              "llama.cpp's continuation: max|Δ|/max|ref| = %.3g",
              k, g.ours[k], theirTokens[k], g.margin, g.teacherForced);
        QVERIFY2(g.margin < kTieMargin, "llama.cpp's greedy continuation departs from ours where ours is not a near tie");
        QVERIFY(g.teacherForced <= kTeacherForcedTolerance);
    }

    // (e) The bar in (a) catches a wrong RoPE: the bundled weights with one RoPE parameter of config.json
    // changed, run by our engine, against llama.cpp on the correct GGUF, miss the bar by far (position 0 is
    // unrotated, so the error shows from position 1 on).
    void brokenRopeFails_data() {
        QTest::addColumn<QString>("layerType");
        QTest::addColumn<QString>("key");
        QTest::addColumn<double>("value");
        QTest::addColumn<double>("minimumError");
        // The sliding layers' base frequency 10^4 -> 10^5; the full layers rotating half of each head instead of 1/4.
        QTest::newRow("sliding rope_theta 1e5") << "sliding_attention" << "rope_theta" << 1e5 << kMinimumBrokenError;
        QTest::newRow("full partial_rotary_factor 0.5") << "full_attention" << "partial_rotary_factor" << 0.5 << kMinimumBrokenError;
    }
    void brokenRopeFails() {
        QFETCH(QString, layerType);
        QFETCH(QString, key);
        QFETCH(double, value);
        QFETCH(double, minimumError);
        const fs::path broken = tempPath(dir_, "broken-rope");
        fs::remove_all(broken);
        fs::create_directories(broken);
        for (const auto& e : fs::directory_iterator(kBundled)) {
            if (!e.is_regular_file() || e.path().filename() == "config.json") continue;
            std::error_code ec;  // 26 MB of weights: a hard link where the file system allows, else a copy
            fs::create_hard_link(e.path(), broken / e.path().filename(), ec);
            if (ec) fs::copy_file(e.path(), broken / e.path().filename());
        }
        Json config = readJsonFile(kBundled / "config.json");
        Json& text = config.contains("text_config") ? config["text_config"] : config;
        Json& rope = text.at("rope_parameters").at(layerType.toStdString());
        QVERIFY(rope.contains(key.toStdString()));
        QVERIFY(rope[key.toStdString()].get<double>() != value);
        rope[key.toStdString()] = value;
        writeJsonFile(broken / "config.json", config);

        const Checkpoint ck = Checkpoint::open(broken);
        ReferenceOptions ro;
        ro.threads = 2;
        const ReferenceModel model(ck, ro);
        const std::size_t V = std::size_t(model.vocabSize());
        double worst = 0;
        for (int index = 0; index < 3; ++index) {
            const auto& ids = prompts_[std::size_t(index)].second;
            const QJsonArray theirs = f32Answer_["results"].toArray()[index].toObject()["logits"].toArray();
            QCOMPARE(std::size_t(theirs.size()), ids.size());
            std::vector<float> ours(ids.size() * V);
            ReferenceSession(model, 512, 32).forward(ids, ours.data());
            double promptWorst = 0;
            for (std::size_t t = 0; t < ids.size(); ++t) {
                const std::vector<float> l = decodeLogits(theirs[int(t)]);
                QCOMPARE(l.size(), V);
                promptWorst = std::max(promptWorst, relativeError(l.data(), ours.data() + t * V, V));
            }
            qInfo("%s: max|Δ|/max|ref| = %.3g (the bar is %.0e)", prompts_[std::size_t(index)].first.c_str(), promptWorst, kLogitTolerance);
            worst = std::max(worst, promptWorst);
        }
        QVERIFY2(worst >= minimumError, qPrintable(QString("a broken RoPE stays within %1 of llama.cpp").arg(worst)));
    }

    // (c)
    void tokenizer() {
        const QJsonArray theirs = f32Answer_["results"].toArray().last().toObject()["ids"].toArray();
        QCOMPARE(std::size_t(theirs.size()), lines_.size());
        EncodeOptions noBos;
        noBos.addSpecialTokens = false;  // node-llama-cpp's tokenize() adds no BOS
        for (std::size_t i = 0; i < lines_.size(); ++i) {
            const std::vector<int> ours = tok_->encode(lines_[i], noBos);
            const std::vector<int> llama = toIds(theirs[int(i)]);
            if (ours != llama)
                qWarning("line %zu %s\n  ours  %s\n  llama %s", i, lines_[i].c_str(), Json(ours).dump().c_str(), Json(llama).dump().c_str());
            QCOMPARE(ours, llama);
        }
    }

    // (d)
    void kvSources() {
        const Gemma4Config& c = ck_->config();
        const QJsonObject reuse = f32Answer_["kvReuse"].toObject();
        QVERIFY2(!reuse.isEmpty(), "llama.cpp's debug log named no reused KV layers");
        for (const LayerSpec& l : c.layers) {
            QCOMPARE(llamaCppKvSource(c, l.index), l.kvSource);
            const QString key = QString::number(l.index);
            if (l.ownsKv) {
                QVERIFY2(!reuse.contains(key), qPrintable(key));
            } else {
                QVERIFY2(reuse.contains(key), qPrintable("llama.cpp did not report layer " + key));
                QCOMPARE(reuse[key].toInt(), l.kvSource);
            }
        }
    }
};

QTEST_APPLESS_MAIN(TestLlamaParity)
#include "tst_llama_parity.moc"
