// The GGUF export run by llama.cpp itself (node-llama-cpp 3.22.1, prebuilt CPU binary, driven by
// tests/peers/llama_logits.mjs) against our CPU reference engine on the bundled model:
//   (a) F32 GGUF, F32 KV cache: raw logits after every token of 3 prompts (one longer than the sliding
//       window) within max|Δ| ≤ 2e-3 · max|ref| at every position;
//   (b) F16 GGUF (default F16 KV cache): 32 greedy tokens identical to the reference's greedy on the
//       original weights, unless the reference's top-2 margin at the first difference is below
//       1e-3 · max|logit| — then llama.cpp's logits along its own continuation are compared instead;
//   (c) llama.cpp's tokenizer on the GGUF vocabulary gives our ids;
//   (d) the KV source llama.cpp reports for each shared layer (its debug log) is our kvSource.
// Token ids are passed, never text, so (a) and (b) test the model, not the tokenizer.
#include <algorithm>
#include <cmath>
#include <cstring>

// Before any Qt header: Qt's `emit` macro would clash with ReferenceSession::emit.
#include <nlohmann/json.hpp>

#include "core/export/gguf_export.h"
#include "core/io/file.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "test_support.h"

#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

const fs::path kBundled = bundledModelDir();
constexpr double kLogitTolerance = 2e-3;       // (a): max|Δ| / max|ref| per position
constexpr double kTieMargin = 1e-3;            // (b): top-2 margin below this · max|logit| is a near tie
constexpr double kTeacherForcedTolerance = 1e-2;  // (b) after a near tie: F16 weights and F16 KV cache
constexpr int kGreedyTokens = 32;


std::vector<float> decodeLogits(const QJsonValue& v) {
    const QByteArray raw = QByteArray::fromBase64(v.toString().toLatin1());
    std::vector<float> out(std::size_t(raw.size()) / sizeof(float));
    std::memcpy(out.data(), raw.constData(), out.size() * sizeof(float));
    return out;
}

QJsonArray idArray(const std::vector<int>& ids) {
    QJsonArray a;
    for (int id : ids) a.append(id);
    return a;
}

std::vector<int> toIds(const QJsonValue& v) {
    std::vector<int> out;
    for (const auto& e : v.toArray()) out.push_back(e.toInt());
    return out;
}

int argmax(const float* l, std::size_t n) {
    return int(std::max_element(l, l + n) - l);  // the first (lowest id) maximum, as the peer does
}

double maxAbs(const float* l, std::size_t n) {
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(l[i])));
    return m;
}

// max|a − b| / max|b|
double relativeError(const float* a, const float* b, std::size_t n) {
    double d = 0;
    for (std::size_t i = 0; i < n; ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d / std::max(maxAbs(b, n), 1e-30);
}

double topTwoMargin(const float* l, std::size_t n) {
    float a = -INFINITY, b = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        if (l[i] > a) {
            b = a;
            a = l[i];
        } else if (l[i] > b) {
            b = l[i];
        }
    }
    return double(a) - double(b);
}

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

    // Runs the peer on a request; its JSON answer.
    QJsonObject runPeer(const QJsonObject& request, const char* name) {
        const fs::path reqPath = tempPath(dir_, name);
        writeBytes(reqPath, QJsonDocument(request).toJson(QJsonDocument::Compact).toStdString());
        QProcess node;
        QElapsedTimer t;
        t.start();
        node.start("node", {QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/llama_logits.mjs"), QString::fromStdString(reqPath.string())});
        if (!node.waitForFinished(120000)) {
            node.kill();
            node.waitForFinished();
            qWarning("llama_logits.mjs timed out");
            return {};
        }
        const QByteArray out = node.readAllStandardOutput();
        if (node.exitStatus() != QProcess::NormalExit || node.exitCode() != 0) {
            qWarning("llama_logits.mjs failed (%d): %s", node.exitCode(), node.readAllStandardError().constData());
            return {};
        }
        qInfo("%s: llama.cpp answered in %lld ms (%lld KB of JSON)", name, t.elapsed(), qint64(out.size() / 1024));
        return QJsonDocument::fromJson(out).object();
    }

private slots:
    void initTestCase() {
        WHITTLE_REQUIRE_OR_SKIP(!QStandardPaths::findExecutable("node").isEmpty(), "node is not on PATH (NodeSource nodejs >= 20)");
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(peersDir() / "node_modules/node-llama-cpp/package.json") &&
                                    fs::exists(peersDir() / "node_modules/@node-llama-cpp/linux-x64/package.json"),
                                "node-llama-cpp peer missing: run bash tests/peers/install.sh build/default");
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
        f32Answer_ = runPeer(r32, "f32.json");
        QVERIFY(!f32Answer_.isEmpty());

        QJsonObject r16;
        r16["model"] = QString::fromStdString(f16_.string());
        r16["kvType"] = "F16";
        r16["contextSize"] = 512;
        r16["threads"] = 1;
        QJsonArray jobs16;
        for (const auto& [name, ids] : prompts_) jobs16.append(QJsonObject{{"greedy", idArray(ids)}, {"n", kGreedyTokens}});
        r16["jobs"] = jobs16;
        f16Answer_ = runPeer(r16, "f16.json");
        QVERIFY(!f16Answer_.isEmpty());
        const auto rel = f32Answer_["llamaCpp"].toObject();
        qInfo("llama.cpp %s (%s)", qPrintable(rel["release"].toString()), qPrintable(rel["repo"].toString()));
    }

    // (a)
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
        int worstAt = -1, argmaxDiffer = 0;
        for (std::size_t t = 0; t < ids.size(); ++t) {
            const std::vector<float> l = decodeLogits(theirs[int(t)]);
            QCOMPARE(l.size(), V);
            const float* ref = ours.data() + t * V;
            const double e = relativeError(l.data(), ref, V);
            if (e > worst) {
                worst = e;
                worstAt = int(t);
            }
            if (argmax(l.data(), V) != argmax(ref, V)) ++argmaxDiffer;
        }
        qInfo("%zu positions: max|Δ|/max|ref| = %.3g (worst at position %d), argmax differs at %d", ids.size(), worst, worstAt,
              argmaxDiffer);
        QVERIFY2(worst <= kLogitTolerance, qPrintable(QString("max|Δ|/max|ref| %1 at position %2").arg(worst).arg(worstAt)));
    }

    // (b)
    void f16Greedy_data() { f32Logits_data(); }
    void f16Greedy() {
        QFETCH(int, index);
        const auto& prompt = prompts_[std::size_t(index)].second;
        const std::size_t V = std::size_t(model_->vocabSize());
        const QJsonObject theirs = f16Answer_["results"].toArray()[index].toObject();
        const std::vector<int> theirTokens = toIds(theirs["tokens"]);
        const QJsonArray theirLogits = theirs["logits"].toArray();
        QCOMPARE(int(theirTokens.size()), kGreedyTokens);

        ReferenceSession s(*model_, 512, 32);
        std::vector<int> ours;
        std::vector<std::vector<float>> ourLogits;
        auto step = s.forward(prompt);
        for (int i = 0; i < kGreedyTokens; ++i) {
            ourLogits.emplace_back(step.begin(), step.end());
            const int next = argmax(step.data(), V);
            ours.push_back(next);
            const int in[1] = {next};
            step = s.forward(in);
        }
        const auto firstDiff = std::mismatch(ours.begin(), ours.end(), theirTokens.begin());
        if (firstDiff.first == ours.end()) {
            qInfo("32 greedy tokens identical: %s", qPrintable(QString::fromStdString(tok_->decode(ours)).left(120)));
            return;
        }
        const std::size_t k = std::size_t(firstDiff.first - ours.begin());
        const float* ref = ourLogits[k].data();
        const double margin = topTwoMargin(ref, V), scale = maxAbs(ref, V);
        qInfo("greedy differs at token %zu (ours %d, llama.cpp %d); reference top-2 margin %.3g = %.3g x max|logit|", k, ours[k],
              theirTokens[k], margin, margin / scale);
        QVERIFY2(margin < kTieMargin * scale, "llama.cpp's greedy continuation departs from ours where ours is not a near tie");
        // Near tie: follow llama.cpp's continuation and compare its logits step by step.
        s.reset();
        step = s.forward(prompt);
        double worst = 0;
        for (int i = 0; i < kGreedyTokens; ++i) {
            const std::vector<float> t = decodeLogits(theirLogits[i]);
            worst = std::max(worst, relativeError(t.data(), step.data(), V));
            const int in[1] = {theirTokens[std::size_t(i)]};
            step = s.forward(in);
        }
        qInfo("teacher-forced on llama.cpp's continuation: max|Δ|/max|ref| = %.3g", worst);
        QVERIFY(worst <= kTeacherForcedTolerance);
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
