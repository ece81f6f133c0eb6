// Gemma 4 config parsing: the published E2B/E4B layouts (GEMMA4.md §1, §3.3) and clear refusals.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/model/gemma4_config.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

namespace {
// E2B's text_config as GEMMA4.md §1 gives it.
Json e2bText() {
    Json types = Json::array();
    for (int i = 0; i < 35; ++i) types.push_back((i + 1) % 5 == 0 ? "full_attention" : "sliding_attention");
    return {{"model_type", "gemma4_text"},
            {"hidden_size", 1536},
            {"num_hidden_layers", 35},
            {"intermediate_size", 6144},
            {"use_double_wide_mlp", true},
            {"num_attention_heads", 8},
            {"num_key_value_heads", 1},
            {"num_global_key_value_heads", nullptr},
            {"head_dim", 256},
            {"global_head_dim", 512},
            {"attention_k_eq_v", false},
            {"layer_types", types},
            {"sliding_window", 512},
            {"rope_parameters",
             {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
              {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1e6}}}}},
            {"num_kv_shared_layers", 20},
            {"hidden_size_per_layer_input", 256},
            {"vocab_size", 262144},
            {"vocab_size_per_layer_input", 262144},
            {"rms_norm_eps", 1e-6},
            {"hidden_activation", "gelu_pytorch_tanh"},
            {"final_logit_softcapping", 30.0},
            {"max_position_embeddings", 131072},
            {"tie_word_embeddings", true}};
}

Json wrap(Json text) {
    return {{"model_type", "gemma4"}, {"architectures", {"Gemma4ForConditionalGeneration"}}, {"text_config", text},
            {"image_token_id", 258880}, {"eos_token_id", {1, 106}}};
}

Json e4bText() {
    Json t = e2bText();
    Json types = Json::array();
    for (int i = 0; i < 42; ++i) types.push_back((i + 1) % 6 == 0 ? "full_attention" : "sliding_attention");
    t["hidden_size"] = 2560;
    t["num_hidden_layers"] = 42;
    t["intermediate_size"] = 10240;
    t.erase("use_double_wide_mlp");  // E4B's config leaves it out
    t["num_key_value_heads"] = 2;
    t["num_kv_shared_layers"] = 18;
    t["layer_types"] = types;
    return t;
}
}  // namespace

class TestConfig : public QObject {
    Q_OBJECT
private slots:
    void e2bLayout() {
        const Gemma4Config c = Gemma4Config::parse(wrap(e2bText()), "config.json");
        QCOMPARE(c.tensorPrefix(), std::string("model.language_model."));
        QCOMPARE(int(c.layers.size()), 35);
        QCOMPARE(c.firstSharedLayer(), 15);
        int full = 0;
        for (const auto& l : c.layers) {
            full += l.kind == AttentionKind::Full;
            QCOMPARE(l.kind == AttentionKind::Full, (l.index + 1) % 5 == 0);
            QCOMPARE(l.headDim, l.kind == AttentionKind::Full ? 512 : 256);
            QCOMPARE(l.ffnWidth, l.index < 15 ? 6144 : 12288);
            QCOMPARE(l.ownsKv, l.index < 15);
            // Spec §3.3: E2B's shared sliding layers read layer 13, shared full layers read layer 14.
            const int src = l.ownsKv ? l.index : (l.kind == AttentionKind::Full ? 14 : 13);
            QCOMPARE(l.kvSource, src);
            // llama.cpp's hard-coded rule: n_kv_from_start − (swa ? 2 : 1).
            if (!l.ownsKv) QCOMPARE(l.kvSource, 15 - (l.kind == AttentionKind::Sliding ? 2 : 1));
        }
        QCOMPARE(full, 7);
        QCOMPARE(c.ropeFull.type, std::string("proportional"));
        QCOMPARE(c.ropeFull.partialRotaryFactor, 0.25);
        QCOMPARE(c.ropeSliding.theta, 10000.0);
        QCOMPARE(*c.finalLogitSoftcap, 30.0);
        QCOMPARE(c.tokenIds.at("image_token_id"), 258880);
    }

    void e4bLayout() {
        const Gemma4Config c = Gemma4Config::parse(wrap(e4bText()), "config.json");
        QVERIFY(!c.doubleWideMlp);
        for (const auto& l : c.layers) {
            QCOMPARE(l.ffnWidth, 10240);
            if (!l.ownsKv) QCOMPARE(l.kvSource, l.kind == AttentionKind::Full ? 23 : 22);
        }
    }

    void textOnlyForm() {
        Json t = e2bText();
        const Gemma4Config c = Gemma4Config::parse(t, "config.json");
        QCOMPARE(c.modelType, std::string("gemma4_text"));
        QCOMPARE(c.tensorPrefix(), std::string("model."));
    }

    // FLAP's output: every layer's width listed (double-wide no longer applies), and the bias flag.
    void flapWidths() {
        Json t = e2bText();
        Json widths = Json::array();
        for (int i = 0; i < 35; ++i) widths.push_back(i < 15 ? 4608 : 9216 - 128 * (i % 3));
        t["intermediate_size"] = widths;
        t["flap"] = {{"ratio", 0.25}, {"bias_compensation", true}};
        const Gemma4Config c = Gemma4Config::parse(wrap(t), "config.json");
        for (int i = 0; i < 35; ++i) QCOMPARE(c.layers[std::size_t(i)].ffnWidth, widths[std::size_t(i)].get<int>());
        QCOMPARE(c.intermediateSize, 9216);
        QVERIFY(c.downProjBias);
        QVERIFY(!Gemma4Config::parse(wrap(e2bText()), "config.json").downProjBias);
    }

    void nullSoftcap() {
        Json t = e2bText();
        t["final_logit_softcapping"] = nullptr;
        QVERIFY(!Gemma4Config::parse(t, "c").finalLogitSoftcap.has_value());
    }

    // Never fall back to class defaults: missing shape fields are errors naming the field.
    void refusals_data() {
        QTest::addColumn<QString>("mutation");
        QTest::addColumn<QString>("expect");
        QTest::newRow("no text_config") << "no_text_config" << "needs a 'text_config'";
        QTest::newRow("llama") << "llama" << "unsupported model_type 'llama'";
        QTest::newRow("missing hidden_size") << "no_hidden" << "missing required field 'text_config.hidden_size'";
        QTest::newRow("missing head_dim") << "no_head_dim" << "'text_config.head_dim'";
        QTest::newRow("missing softcap key") << "no_softcap" << "final_logit_softcapping";
        QTest::newRow("layer_types length") << "short_types" << "layer_types has 34 entries";
        QTest::newRow("bad layer type") << "bad_type" << "layer_types[3]";
        QTest::newRow("string number") << "string_hidden" << "must be an integer";
        QTest::newRow("negative") << "negative" << "out of range";
        QTest::newRow("heads") << "heads" << "multiple of num_key_value_heads";
        QTest::newRow("all shared") << "all_shared" << "smaller than num_hidden_layers";
        QTest::newRow("no full source") << "no_full_source" << "no earlier layer of type full";
        QTest::newRow("moe") << "moe" << "MoE";
        QTest::newRow("activation") << "activation" << "hidden_activation";
        QTest::newRow("rope") << "rope" << "rope_parameters";
        QTest::newRow("widths list length") << "short_widths" << "intermediate_size lists 3 widths but num_hidden_layers is 35";
        QTest::newRow("width not positive") << "zero_width" << "intermediate_size lists 0";
        QTest::newRow("flap not an object") << "flap_string" << "'flap' must be an object";
    }
    void refusals() {
        QFETCH(QString, mutation);
        QFETCH(QString, expect);
        Json t = e2bText();
        Json root = wrap(t);
        const std::string m = mutation.toStdString();
        Json& tc = root["text_config"];
        if (m == "no_text_config") root.erase("text_config");
        if (m == "llama") root["model_type"] = "llama";
        if (m == "no_hidden") tc.erase("hidden_size");
        if (m == "no_head_dim") tc.erase("head_dim");
        if (m == "no_softcap") tc.erase("final_logit_softcapping");
        if (m == "short_types") tc["layer_types"].erase(0);
        if (m == "bad_type") tc["layer_types"][3] = "chunked_attention";
        if (m == "string_hidden") tc["hidden_size"] = "1536";
        if (m == "negative") tc["vocab_size"] = -5;
        if (m == "heads") tc["num_key_value_heads"] = 3;
        if (m == "all_shared") tc["num_kv_shared_layers"] = 35;
        if (m == "no_full_source") {
            for (int i = 0; i < 15; ++i) tc["layer_types"][std::size_t(i)] = "sliding_attention";
        }
        if (m == "moe") tc["enable_moe_block"] = true;
        if (m == "activation") tc["hidden_activation"] = "relu";
        if (m == "rope") tc.erase("rope_parameters");
        if (m == "short_widths") tc["intermediate_size"] = Json::array({1, 2, 3});
        if (m == "zero_width") {
            tc["intermediate_size"] = Json::array();
            for (int i = 0; i < 35; ++i) tc["intermediate_size"].push_back(i == 7 ? 0 : 6144);
        }
        if (m == "flap_string") tc["flap"] = "yes";
        const QByteArray want = expect.toUtf8();
        WHITTLE_EXPECT_ERROR(Gemma4Config::parse(root, "some/config.json"), FormatError, "some/config.json",
                             want.constData());
    }
};

QTEST_APPLESS_MAIN(TestConfig)
#include "tst_config.moc"
