// The tensor table as the one source of truth: no other file in core/ or app/ spells a tensor name; the
// table's flags on the published shapes (E2B/E4B); the tie rule, the token-row keys and the RoPE pair
// rule; and an untied lm_head (make-tiny --untied) through every consumer: the engine multiplies by
// lm_head, not the embedding; the pruner slices its rows; the GGUF exporter writes it as output.weight.
#include <QDirIterator>
#include <QRegularExpression>

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/export/gguf_export.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/io/gguf_reader.h"
#include "core/model/inventory.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"
#include "core/reference/ops.h"
#include "core/reference/reference_session.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

Gemma4Config presetConfig(const char* preset, bool untied = false) {
    QTemporaryDir d;
    TinyCheckpointOptions o;
    o.preset = preset;
    o.zeros = true;
    o.untied = untied;
    NullProgress p;
    const fs::path dir = tempPath(d, "m");
    makeTinyCheckpoint(dir, o, p, CancelToken{});
    return Gemma4Config::load(dir / "config.json");
}

// The relative name of every rule: the part after "layers.N." / "blk.N." or the model prefix.
std::set<std::string> relativeNames(const Gemma4Config& c) {
    std::set<std::string> names;
    static const QRegularExpression layerPrefix(R"(^(.*layers\.\d+\.|blk\.\d+\.))");
    const std::string prefix = c.tensorPrefix();
    for (const ExpectedTensor& e : textTensorTable(c)) {
        for (std::string n : {e.name, e.ggufName}) {
            const QString q = QString::fromStdString(n);
            if (const auto m = layerPrefix.match(q); m.hasMatch()) n = q.mid(m.capturedLength()).toStdString();
            else if (n.rfind(prefix, 0) == 0) n = n.substr(prefix.size());
            names.insert(n);
        }
    }
    return names;
}

}  // namespace

class TestTensorTable : public QObject {
    Q_OBJECT

private slots:
    // "No tensor name outside the table": a string literal that ends in a table name (preceded by a quote
    // or a dot, so "input_proj.weight" of a tower is not "proj.weight") is a second spelling of it.
    void noTensorNameOutsideTheTable() {
#if defined(__SANITIZE_ADDRESS__)
        qInfo("the source scan is text search, not memory work: it runs in the default build only");
        return;
#endif
        const Gemma4Config c = presetConfig("e2b-mini", true);
        const std::set<std::string> names = relativeNames(c);
        QVERIFY(names.count("self_attn.q_proj.weight") && names.count("attn_q.weight") && names.count("lm_head.weight") &&
                names.count("layer_scalar") && names.count("token_embd.weight"));
        auto spellings = [&](const std::string& text) {
            QStringList found;
            for (const std::string& n : names)
                for (const std::string& lead : {std::string("\""), std::string(".")}) {
                    const std::string needle = lead + n + "\"";
                    if (const auto at = text.find(needle); at != std::string::npos) found << QString::fromStdString(text.substr(at, needle.size()));
                }
            return found;
        };
        // The scanner itself: what the old reference engine and exporter wrote is caught, a tower name is not.
        QCOMPARE(spellings("L.down = matrix(q + \"mlp.down_proj.weight\");").size(), 1);
        QCOMPARE(spellings("{\"layer_scalar\", \"layer_output_scale.weight\"}").size(), 2);
        QCOMPARE(spellings("add(v + \"patch_embedder.input_proj.weight\");").size(), 0);
        QStringList offenders;
        int files = 0;
        for (const char* root : {"core", "app"}) {
            QDirIterator it(QStringLiteral(WHITTLE_SOURCE_DIR "/") + root, {"*.cpp", "*.h"}, QDir::Files, QDirIterator::Subdirectories);
            while (it.hasNext()) {
                const QString path = it.next();
                if (path.endsWith("core/model/tensor_table.cpp") || path.endsWith("core/model/tensor_table.h")) continue;
                ++files;
                for (const QString& f : spellings(readBytes(path.toStdString()))) offenders << path + ": " + f;
            }
        }
        qInfo("%d files in core/ and app/ checked against %zu table names", files, names.size());
        QVERIFY(files > 80);
        QVERIFY2(offenders.isEmpty(), qPrintable(offenders.join('\n')));
    }

    // The flags on the published layouts: E2B has 35 layers, 20 of them KV-shared, a tied head.
    void publishedShapes_data() {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<int>("layers");
        QTest::addColumn<int>("shared");
        QTest::newRow("e2b-full") << "e2b-full" << 35 << 20;
        QTest::newRow("e4b-full") << "e4b-full" << 42 << 18;
    }
    void publishedShapes() {
        QFETCH(QString, preset);
        QFETCH(int, layers);
        QFETCH(int, shared);
        const Gemma4Config c = presetConfig(preset.toLatin1().constData());
        const auto table = textTensorTable(c);
        QCOMPARE(int(table.size()), 4 + 17 * layers + 2);
        int unread = 0, absentOk = 0, vectors = 0;
        for (const auto& e : table) {
            unread += !e.read;
            absentOk += e.mayBeAbsent;
            vectors += e.vector;
            QCOMPARE(e.read, !e.mayBeAbsent);  // today the two coincide; they are separate facts
            QVERIFY(!e.ggufName.empty());
            QCOMPARE(ggufTensorName(c, e.name).value_or(""), e.ggufName);
            QCOMPARE(tensorName(c, e.role, e.layer), e.name);
        }
        QCOMPARE(unread, 3 * shared + 1);  // k, v, k_norm of each shared layer, and the tied head's copy
        QCOMPARE(absentOk, unread);
        QCOMPARE(vectors, 2 + 8 * layers + 0);  // PLE norm + final norm; 7 norms + the scalar per layer
        QCOMPARE(headRole(c), TensorRole::Embedding);
        const auto rows = tokenRowTensorNames(c);
        QCOMPARE(rows, (std::vector<std::string>{"model.language_model.embed_tokens.weight",
                                                 "model.language_model.embed_tokens_per_layer.weight", "lm_head.weight"}));
        QVERIFY(!ggufTensorName(c, "model.vision_tower.encoder.layers.0.mlp.up_proj.weight"));
    }

    // The Recipe page's "kept unquantized" summary: model-level tensors by name, then a role once with its
    // layers as ranges (in table order), then names the table does not have; every input name is counted once.
    void summarizeNames() {
        QCOMPARE(layerRanges({}), std::string());
        QCOMPARE(layerRanges({4}), std::string("4"));
        QCOMPARE(layerRanges({0, 1, 2, 3, 8, 10, 11}), std::string("0\u20133, 8, 10\u201311"));
        const Gemma4Config c = presetConfig("e2b-full");
        const auto table = textTensorTable(c);
        std::vector<std::string> names;
        for (int l = 34; l >= 0; --l) names.push_back(tensorName(c, TensorRole::PleInputGate, l));  // any order
        for (int l : {0, 1, 2, 3, 8, 10, 11}) names.push_back(tensorName(c, TensorRole::DownProj, l));
        names.push_back("not.in.the.table");
        names.push_back(tensorName(c, TensorRole::PleModelProjection));
        const std::vector<std::string> expected = {"model.language_model.per_layer_model_projection.weight",
                                                   "*mlp.down_proj.weight in layers 0\u20133, 8, 10\u201311 (7)",
                                                   "*per_layer_input_gate.weight in layers 0\u201334 (35)", "not.in.the.table"};
        QCOMPARE(summarizeTensorNames(table, names), expected);
        QVERIFY(summarizeTensorNames(table, {}).empty());
    }

    // One RoPE pair rule for engine and exporter: E2B's full layers rotate 64 of 256 pairs.
    void ropePairRule() {
        const Gemma4Config c = presetConfig("e2b-full");
        QCOMPARE(rotatedPairs(c.ropeFull, c.globalHeadDim), 64);
        QCOMPARE(rotatedPairs(c.ropeSliding, c.headDim), 128);
        const auto f = ropeInverseFrequencies(c.ropeFull, c.globalHeadDim);
        QCOMPARE(int(f.size()), 256);
        QCOMPARE(f[0], 1.0f);
        QVERIFY(f[63] > 0 && f[64] == 0 && f[255] == 0);
        QCOMPARE(f[1], float(std::pow(c.ropeFull.theta, -2.0 / 512)));
        // A partial factor with the default kind is refused when the config is read.
        Json j = readJsonFile(fs::path(WHITTLE_SOURCE_DIR) / "resources/models/whittle-gemma4-tiny/config.json");
        Json& rp = j.contains("text_config") ? j["text_config"]["rope_parameters"] : j["rope_parameters"];
        rp["sliding_attention"]["partial_rotary_factor"] = 0.5;
        WHITTLE_EXPECT_ERROR(Gemma4Config::parse(j, "edited.json"), FormatError, "edited.json", "partial_rotary_factor",
                             "proportional");
    }

    // An untied head: read by the engine, sliced by the pruner, exported as output.weight.
    void untiedHead() {
        QTemporaryDir d;
        const fs::path dir = tempPath(d, "untied");
        TinyCheckpointOptions o;
        o.preset = "e2b-mini";
        o.seed = 7;
        o.untied = true;
        NullProgress p;
        makeTinyCheckpoint(dir, o, p, CancelToken{});
        const Checkpoint ck = Checkpoint::open(dir);
        QVERIFY(!ck.config().tieWordEmbeddings);
        QCOMPARE(headRole(ck.config()), TensorRole::LmHead);
        const TensorStore::Entry* head = ck.find(TensorRole::LmHead);
        QVERIFY(head);
        const Inventory inv = makeInventory(ck);
        QCOMPARE(inv.unused.tensors, std::uint64_t(0));  // the head is read, not a dead copy
        const TokenRowCost cost = tokenRowCost(inv);
        QCOMPARE(cost.mainParams, std::uint64_t(2 * ck.config().hiddenSize));  // embedding row + head row

        // A checkpoint that says untied but lacks lm_head is refused, naming the tensor.
        {
            QTemporaryDir d2;
            const fs::path bad = tempPath(d2, "nohead");
            o.untied = false;
            makeTinyCheckpoint(bad, o, p, CancelToken{});
            Json cfg = readJsonFile(bad / "config.json");
            cfg["tie_word_embeddings"] = false;
            cfg["text_config"]["tie_word_embeddings"] = false;
            fs::remove(bad / "config.json");  // writeJsonFile never overwrites
            writeJsonFile(bad / "config.json", cfg);
            WHITTLE_EXPECT_ERROR(Checkpoint::open(bad), FormatError, "lm_head.weight", "missing");
            o.untied = true;
        }

        // Pruner: lm_head rows sliced like the embedding's (logits at kept ids compared below).
        const fs::path pruned = tempPath(d, "pruned");
        Recipe r;
        r.vocabulary = VocabularyRecipe{};
        r.vocabulary->preset = "english";
        const VocabPruneReport rep = pruneVocabulary(ck, r, pruned, false, p, CancelToken{});
        const Checkpoint pk = Checkpoint::open(pruned);
        QCOMPARE(pk.find(TensorRole::LmHead)->info->shape[0], std::int64_t(rep.tokensAfterPadding));
        QVERIFY(rep.tokensAfterPadding < ck.config().vocabSize);
        const auto newToOld = readJsonFile(pruned / "vocab_mapping.json").at("new_to_old").get<std::vector<int>>();
        // A prompt of ids the prune keeps (new ids 1, 300, …), as original ids and as pruned ids.
        std::vector<int> prompt, mapped;
        for (int n : {1, 300, 1000, 2000, 17}) {
            QVERIFY(newToOld[std::size_t(n)] >= 0);
            mapped.push_back(n);
            prompt.push_back(newToOld[std::size_t(n)]);
        }

        // Engine: logits = softcap(lm_head · final_norm(x)), checked row by row against the stored head.
        const ReferenceModel m(ck, {});
        QCOMPARE(m.head().name, head->info->name);
        ReferenceSession s(m, 64, 8);
        std::vector<float> normed;
        s.setDebugHook([&](const char* name, int, int, std::span<const float> v) {
            if (std::string(name) == "final_norm") normed.assign(v.begin(), v.end());
        });
        const auto logits = s.forward(prompt);
        QCOMPARE(int(normed.size()), ck.config().hiddenSize);
        std::vector<float> viaHead(std::size_t(m.vocabSize())), viaEmbedding(viaHead.size());
        ops::matvec(m.head(), normed.data(), viaHead.data());
        ops::matvec(m.embedding(), normed.data(), viaEmbedding.data());
        if (const auto cap = ck.config().finalLogitSoftcap) {
            ops::softcap(viaHead, float(*cap));
            ops::softcap(viaEmbedding, float(*cap));
        }
        double dHead = 0, dEmb = 0;
        for (std::size_t i = 0; i < viaHead.size(); ++i) {
            dHead = std::max(dHead, double(std::fabs(viaHead[i] - logits[i])));
            dEmb = std::max(dEmb, double(std::fabs(viaEmbedding[i] - logits[i])));
        }
        qInfo("max|logits - head·x| = %.3g, max|logits - embedding·x| = %.3g", dHead, dEmb);
        QCOMPARE(dHead, 0.0);  // the same rows and the same dot: bit for bit
        QVERIFY(dEmb > 1e-3);

        const ReferenceModel pm(pk, {});
        ReferenceSession ps(pm, 64, 8);
        const auto pl = ps.forward(mapped);
        int compared = 0;
        for (std::size_t n = 0; n < newToOld.size(); ++n)
            if (newToOld[n] >= 0) {
                QCOMPARE(pl[n], logits[std::size_t(newToOld[n])]);
                ++compared;
            }
        QVERIFY(compared >= rep.tokensKept);  // kept ids, plus the vocabulary's own placeholders used as padding

        // Exporter: output.weight holds lm_head (not skipped as a tied copy).
        const fs::path gguf = tempPath(d, "untied.gguf");
        GgufExportOptions go;
        go.weightType = GgmlType::F32;
        exportGguf(ck, gguf, go, p, CancelToken{});
        const GgufFile g(gguf);
        const GgufTensorInfo* out = g.find("output.weight");
        QVERIFY(out);
        std::vector<float> row(std::size_t(ck.config().hiddenSize)), stored(row.size());
        g.read(*out, row.data(), 0, row.size() * 4);
        m.head().row(0, stored.data());
        QCOMPARE(row, stored);
    }
};

QTEST_APPLESS_MAIN(TestTensorTable)
#include "tst_tensor_table.moc"
