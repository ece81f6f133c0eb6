// Parity with tokenizers nobody here wrote: Hugging Face's `tokenizers` (npm @huggingface/tokenizers)
// on Google's 262,144-token Gemma tokenizer and on our test tokenizer, over the multilingual corpus
// (tests/corpus.h); and llama.cpp's own Gemma 4 tokenizer test vectors, read through our GGUF reader.
#include <chrono>

#include <nlohmann/json.hpp>

#include "core/io/gguf_reader.h"
#include "core/io/json_file.h"
#include "core/tokenizer/tokenizer.h"
#include "corpus.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

bool hasSpecialText(const Tokenizer& t, const std::string& line) {
    for (const auto& a : t.addedTokens())
        if (a.special && line.find(a.content) != std::string::npos) return true;
    return false;
}
}  // namespace

class TestTokenizerParity : public QObject {
    Q_OBJECT
    std::vector<std::string> corpus_;

private slots:
    void initTestCase() {
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(peersDir() / "node_modules/@huggingface/tokenizers"),
                                "test peers missing: run bash tests/peers/install.sh build/default");
        const auto fortunes = fortuneLines();
        WHITTLE_REQUIRE_OR_SKIP(fortunes.size() > 100000, "Debian fortune packages missing: run tools/setup.sh test");
        auto all = fortunes;
        for (auto& l : sourceLines(WHITTLE_SOURCE_DIR)) all.push_back(std::move(l));
        for (auto& l : syntheticLines(7, 3000)) all.push_back(std::move(l));
        corpus_ = unique(all);
        std::uint64_t bytes = 0;
        for (const auto& l : corpus_) bytes += l.size();
        qInfo("corpus: %zu unique lines, %.1f MB (%zu fortune lines)", corpus_.size(), double(bytes) / 1e6, fortunes.size());
    }

    void huggingFace_data() {
        QTest::addColumn<QString>("tokenizer");
        QTest::addColumn<QString>("config");
        const QString g = QString::fromStdString((peersDir() / "gemma-tokenizer").string());
        QTest::newRow("Google Gemma 262k") << g + "/tokenizer.json" << g + "/tokenizer_config.json";
        const QString t = QStringLiteral(WHITTLE_SOURCE_DIR "/resources/tokenizers/tiny-tokenizer");
        QTest::newRow("Whittle test tokenizer") << t + "/tokenizer.json" << t + "/tokenizer_config.json";
    }
    void huggingFace() {
        QFETCH(QString, tokenizer);
        QFETCH(QString, config);
        QVERIFY(QFileInfo::exists(tokenizer));
        QTemporaryDir dir;
        const fs::path in = tempPath(dir, "in.jsonl"), out = tempPath(dir, "out.jsonl");
        {
            std::ofstream f(in, std::ios::binary);
            for (const auto& l : corpus_) f << Json(l).dump() << '\n';
        }
        QProcess node;
        node.start("node", {QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/hf_encode.mjs"), tokenizer, config,
                            QString::fromStdString(in.string()), QString::fromStdString(out.string())});
        QVERIFY(node.waitForFinished(240000));
        QVERIFY2(node.exitCode() == 0, node.readAllStandardError().constData());

        const auto t0 = std::chrono::steady_clock::now();
        const Tokenizer tok = Tokenizer::fromFile(tokenizer.toStdString());
        const auto t1 = std::chrono::steady_clock::now();
        std::ifstream ref(out, std::ios::binary);
        std::string line;
        std::size_t i = 0, mismatches = 0, roundTrips = 0, roundTripFailures = 0;
        double encodeSecs = 0;
        while (std::getline(ref, line)) {
            QVERIFY(i < corpus_.size());
            const auto want = Json::parse(line).get<std::vector<int>>();
            const auto e0 = std::chrono::steady_clock::now();
            const auto got = tok.encode(corpus_[i]);
            encodeSecs += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
            if (got != want && ++mismatches <= 5)
                qWarning("line %zu differs: %s\n  ours   %s\n  theirs %s", i, Json(corpus_[i]).dump().c_str(), Json(got).dump().c_str(),
                         line.c_str());
            if (corpus_[i].find("\u2581") == std::string::npos && !hasSpecialText(tok, corpus_[i])) {
                ++roundTrips;
                if (tok.decode(got, true) != corpus_[i] && ++roundTripFailures <= 5)
                    qWarning("line %zu does not round-trip: %s", i, Json(corpus_[i]).dump().c_str());
            }
            ++i;
        }
        QCOMPARE(i, corpus_.size());
        qInfo("%zu/%zu lines identical (%.3f %%); %zu/%zu round trips exact; load %.2f s, encode %.2f s",
              i - mismatches, i, 100.0 * double(i - mismatches) / double(i), roundTrips - roundTripFailures, roundTrips,
              std::chrono::duration<double>(t1 - t0).count(), encodeSecs);
        QCOMPARE(mismatches, std::size_t(0));
        QCOMPARE(roundTripFailures, std::size_t(0));
    }

    // llama.cpp's tests/test-tokenizer-0 vectors for models/ggml-vocab-gemma-4.gguf: inputs separated
    // by "\n__ggml_vocab_test__\n", expected ids one line each, without BOS.
    void llamaCppVectors() {
        const fs::path dir = peersDir() / "llama-vocab";
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(dir / "ggml-vocab-gemma-4.gguf"), "llama.cpp vocab missing: run tests/peers/install.sh");
        const GgufFile gguf(dir / "ggml-vocab-gemma-4.gguf");
        const Tokenizer tok = Tokenizer::fromGguf(gguf);
        QCOMPARE(tok.size(), 262144);
        QCOMPARE(int(tok.merges().size()), 514906);
        const std::string inp = readBytes(dir / "ggml-vocab-gemma-4.gguf.inp");
        std::vector<std::string> inputs;
        const std::string sep = "\n__ggml_vocab_test__\n";
        for (std::size_t pos = 0;;) {
            const auto hit = inp.find(sep, pos);
            inputs.push_back(inp.substr(pos, hit == std::string::npos ? std::string::npos : hit - pos));
            if (hit == std::string::npos) break;
            pos = hit + sep.size();
        }
        std::ifstream out(dir / "ggml-vocab-gemma-4.gguf.out");
        std::string line;
        std::size_t i = 0, failures = 0;
        EncodeOptions noBos;
        noBos.addSpecialTokens = false;
        while (std::getline(out, line)) {
            QVERIFY(i < inputs.size());
            std::vector<int> want;
            std::istringstream ss(line);
            for (int id; ss >> id;) want.push_back(id);
            const auto got = tok.encode(inputs[i], noBos);
            if (got != want) {
                ++failures;
                qWarning("vector %zu %s: ours %s, llama.cpp %s", i, Json(inputs[i]).dump().c_str(), Json(got).dump().c_str(),
                         line.c_str());
            }
            ++i;
        }
        QCOMPARE(i, inputs.size());
        QCOMPARE(i, std::size_t(46));
        QCOMPARE(failures, std::size_t(0));
    }
};

QTEST_GUILESS_MAIN(TestTokenizerParity)
#include "tst_tokenizer_parity.moc"
