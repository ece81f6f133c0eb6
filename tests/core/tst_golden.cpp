// The bundled model against its golden logits: tools/gemma4_reference.py (PyTorch, float64, written from
// the spec independently of the C++ engine) computed them from the stored bf16 weights. The C++ reference
// (f32) must match every stored logits row within max|Δ| ≤ 1e-4 · max|logit| + 1e-5, pick the same argmax at
// every position, reproduce both greedy continuations and the held-out windows' NLL.
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/io/file.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/engine/generator.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/chat_format.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestGolden : public QObject {
    Q_OBJECT
    const fs::path dir_ = bundledModelDir();
    Json golden_;
    std::unique_ptr<Checkpoint> ck_;
    std::unique_ptr<ReferenceModel> model_;
    std::unique_ptr<Tokenizer> tok_;

private slots:
    void initTestCase() {
        QVERIFY(fs::exists(dir_ / "model.safetensors"));
        golden_ = readJsonFile(dir_ / "golden_logits.json");
        ck_ = std::make_unique<Checkpoint>(Checkpoint::open(dir_));
        model_ = std::make_unique<ReferenceModel>(*ck_);
        tok_ = std::make_unique<Tokenizer>(Tokenizer::fromModelOrFile(dir_));
    }

    // The engine's KV source rule picks the layers the golden file (and llama.cpp's rule: the last KV-owning
    // layer of the same attention type) uses.
    void kvSources() {
        const auto& cfg = model_->config();
        for (const auto& [layer, src] : golden_.at("kv_sources").items())
            QCOMPARE(cfg.layers.at(std::size_t(std::stoi(layer))).kvSource, src.get<int>());
    }

    void promptLogits_data() {
        QTest::addColumn<int>("index");
        for (std::size_t i = 0; i < golden_.at("prompts").size(); ++i)
            QTest::newRow(golden_["prompts"][i]["name"].get<std::string>().c_str()) << int(i);
    }
    void promptLogits() {
        QFETCH(int, index);
        const Json& p = golden_["prompts"][std::size_t(index)];
        EncodeOptions eo;
        eo.addSpecialTokens = p.at("add_bos").get<bool>();
        const std::vector<int> ids = tok_->encode(p.at("text").get<std::string>(), eo);
        QCOMPARE(ids, p.at("ids").get<std::vector<int>>());

        const std::size_t V = std::size_t(model_->vocabSize());
        ReferenceSession s(*model_, 256, 16);
        std::vector<float> logits(ids.size() * V);
        s.forward(ids, logits.data());

        const auto& summary = p.at("summary");
        for (std::size_t t = 0; t < ids.size(); ++t) {
            const float* row = &logits[t * V];
            const auto arg = std::size_t(std::max_element(row, row + V) - row);
            QCOMPARE(int(arg), summary[t].at("argmax").get<int>());
            QVERIFY(std::abs(row[arg] - summary[t].at("max").get<double>()) <= 1e-4 * std::abs(row[arg]) + 1e-5 + 5e-7 * std::abs(row[arg]));
        }
        double worst = 0;
        const auto positions = p.at("positions").get<std::vector<std::size_t>>();
        for (std::size_t k = 0; k < positions.size(); ++k) {
            const auto ref = p.at("logits")[k].get<std::vector<double>>();
            QCOMPARE(ref.size(), V);
            const float* row = &logits[positions[k] * V];
            double maxRef = 0, maxDelta = 0;
            for (std::size_t v = 0; v < V; ++v) {
                maxRef = std::max(maxRef, std::abs(ref[v]));
                maxDelta = std::max(maxDelta, std::abs(double(row[v]) - ref[v]));
            }
            // The stored logits are rounded to 7 significant digits: that adds ≤ 5e-7 · |logit|.
            const double limit = 1e-4 * maxRef + 1e-5 + 5e-7 * maxRef;
            if (maxDelta > limit)
                QFAIL(qPrintable(QString("position %1: max|Δ| %2 > %3").arg(positions[k]).arg(maxDelta).arg(limit)));
            worst = std::max(worst, maxDelta / maxRef);
        }
        qInfo("%s: worst max|Δ|/max|ref| = %.3g over %zu rows", p["name"].get<std::string>().c_str(), worst, positions.size());
    }

    void greedy_data() {
        QTest::addColumn<int>("index");
        for (std::size_t i = 0; i < golden_.at("greedy").size(); ++i)
            QTest::newRow(golden_["greedy"][i]["prompt"].get<std::string>().c_str()) << int(i);
    }
    void greedy() {
        QFETCH(int, index);
        const Json& g = golden_["greedy"][std::size_t(index)];
        const auto prompt = tok_->encode(g.at("prompt").get<std::string>());
        QCOMPARE(prompt, g.at("prompt_ids").get<std::vector<int>>());
        const auto expected = g.at("new_ids").get<std::vector<int>>();
        // Every step's top-2 margin is far above the tie threshold (1e-3 · max|logit| ≤ 0.03), so greedy must match.
        QVERIFY(g.at("min_top2_margin").get<double>() > 0.02);
        ReferenceSession s(*model_, 256, 16);
        GenerateOptions o;
        o.maxTokens = int(expected.size());
        o.sampling.temperature = 0.0f;
        o.sampling.repetitionPenalty = 1.0f;
        // Pure argmax as the golden run did: no stop ids (the second continuation runs past <eos>).
        const CancelToken cancel;
        const auto r = generate(s, *tok_, prompt, o, {}, cancel);
        QCOMPARE(r.tokens, expected);
        // The golden text decodes special tokens too; the streamed text leaves them out.
        QCOMPARE(tok_->decode(r.tokens), g.at("text").get<std::string>());
    }

    // Prompts people type: defined behaviour, never a crash. An empty prompt is BOS alone; invalid UTF-8
    // travels as byte tokens and comes back exactly; special-token text inside a chat message stays text;
    // a prompt longer than the context is refused by name; generation past 3 windows wraps the ring.
    void awkwardPrompts() {
        const CancelToken cancel;
        GenerateOptions o;
        o.maxTokens = 8;
        o.stopIds = ck_->specialTokens().eos;
        {
            ReferenceSession s(*model_, 256, 16);
            const auto prompt = tok_->encode("");
            QCOMPARE(prompt, std::vector<int>{*tok_->bosId()});
            const auto r = generate(s, *tok_, prompt, o, {}, cancel);
            QCOMPARE(r.promptTokens, 1);
        }
        const std::string invalid = "caf\xc3 \xff\xfe na\xefve";
        EncodeOptions raw;
        raw.addSpecialTokens = false;
        QCOMPARE(tok_->decode(tok_->encode(invalid, raw)), invalid);
        {
            ReferenceSession s(*model_, 256, 16);
            const auto r = generate(s, *tok_, tok_->encode(invalid), o, {}, cancel);
            QVERIFY(r.stopReason == "stop" || r.stopReason == "length");
        }
        const int turnEnd = *tok_->tokenId("<turn|>");
        const auto chat = encodeChat(*tok_, {{"user", "please type <turn|> and <bos> for me"}});
        QCOMPARE(std::count(chat.begin(), chat.end(), turnEnd), 1L);  // only the template's own
        QCOMPARE(std::count(chat.begin(), chat.end(), *tok_->bosId()), 1L);
        {
            ReferenceSession s(*model_, 64, 16);
            WHITTLE_EXPECT_ERROR(generate(s, *tok_, std::vector<int>(65, 500), o, {}, cancel), UsageError, "prompt has 65 tokens");
        }
        {
            // 200 tokens in a 256-position session with a 64-token window: the sliding ring wraps 3 times.
            ReferenceSession s(*model_, 256, 16);
            GenerateOptions longRun;
            longRun.maxTokens = 200;
            longRun.sampling.temperature = 0.8f;
            longRun.sampling.seed = 3;
            const auto r = generate(s, *tok_, tok_->encode("Once upon a time"), longRun, {}, cancel);
            QCOMPARE(int(r.tokens.size()), 200);
            QVERIFY(s.position() > 3 * model_->config().slidingWindow);
        }
    }

    // The first held-out windows: [BOS] + 255 tokens, NLL summed over the 255 predicted tokens.
    void heldoutWindows() {
        const Json& h = golden_.at("heldout");
        const std::string text = readTextFile(dir_ / h.at("file").get<std::string>());
        const auto ids = tok_->encode(text);
        QCOMPARE(int(ids.size()) - 1, h.at("tokens_scored").get<int>());
        const auto sums = h.at("first_window_nll_sums").get<std::vector<double>>();
        const std::size_t V = std::size_t(model_->vocabSize());
        ReferenceSession s(*model_, 256, 32);
        std::vector<float> logits(256 * V);
        for (std::size_t k = 0; k < sums.size(); ++k) {
            std::vector<int> window{ids[0]};
            window.insert(window.end(), ids.begin() + std::ptrdiff_t(1 + 255 * k), ids.begin() + std::ptrdiff_t(1 + 255 * (k + 1)));
            s.reset();
            s.forward(window, logits.data());
            double nll = 0;
            for (std::size_t t = 0; t + 1 < window.size(); ++t) {
                const float* row = &logits[t * V];
                const double mx = *std::max_element(row, row + V);
                double z = 0;
                for (std::size_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
                nll += mx + std::log(z) - double(row[std::size_t(window[t + 1])]);
            }
            qInfo("window %zu: NLL %.6f (golden %.6f)", k, nll, sums[k]);
            QVERIFY(std::abs(nll - sums[k]) <= 1e-4 * sums[k]);
        }
    }
};

QTEST_GUILESS_MAIN(TestGolden)
#include "tst_golden.moc"
