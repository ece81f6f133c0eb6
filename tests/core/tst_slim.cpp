// One slimming run from one recipe (core/pipeline/slim.h) on the bundled model: English vocabulary, text-only,
// FLAP 20 % and GPTQ INT4 from one JSON — the output opens as what every stage made it, whittle.json holds every
// stage's report, no stage folder is left, the input is untouched and the CPU reference runs it; the same
// run from the CLI flags; cancel at several points leaves no destination and no partial folder; refusals.
#include <cmath>
#include <map>
#include <set>

#include <QCryptographicHash>
#include <QFile>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/pipeline/slim.h"
#include "core/recipes/flap.h"
#include "core/recipes/quantize.h"
#include "core/recipes/recipe.h"
#include "core/recipes/text_only.h"
#include "core/recipes/vocab_prune.h"
#include "core/reference/reference_session.h"
#include "core/util/sha256.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

Json fullRecipe() {
    return Json{{"whittle_recipe", 1},
                {"text_only", true},
                {"vocabulary", {{"preset", "english"}}},
                {"flap", {{"ratio", 0.2}, {"calibration", {{"samples", 8}, {"length", 128}}}}},
                {"quantization", {{"method", "gptq"}, {"group_size", 128}, {"calibration", {{"samples", 8}, {"length", 128}}}}},
                {"evaluation", {{"ctx", 256}, {"max_tokens", 1024}}}};
}

std::map<std::string, std::string> folderBytes(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) m[e.path().filename().string()] = readBytes(e.path());
    return m;
}

// Cancels the run at the first progress report of the stage whose label starts with `at` ("3/4" …).
class CancelAt final : public Progress {
public:
    CancelAt(CancelToken& token, std::string at) : token_(token), at_(std::move(at)) {}
    void report(const ProgressReport& r) override {
        stages_.insert(r.stage.substr(0, r.stage.find(':')));
        if (!at_.empty() && r.stage.rfind(at_, 0) == 0 && !token_.cancelled()) {
            token_.cancel();
            cancelledIn_ = r.stage;
        }
    }
    const std::set<std::string>& stages() const { return stages_; }
    const std::string& cancelledIn() const { return cancelledIn_; }

private:
    CancelToken& token_;
    std::string at_, cancelledIn_;
    std::set<std::string> stages_;
};

}  // namespace

class TestSlim : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void endToEnd() {
        const auto before = folderBytes(bundledModelDir());
        const Recipe recipe = parseRecipe(fullRecipe(), "recipe.json");
        QCOMPARE(slimStages(recipe), (std::vector<std::string>{"text_only", "vocabulary", "flap", "quantization", "evaluation"}));
        const fs::path out = tempPath(dir_, "slim");
        CancelToken never;
        CancelAt progress(never, {});
        const SlimReport rep = slim(Checkpoint::open(bundledModelDir()), recipe, out, false, progress, never);
        QCOMPARE(folderBytes(bundledModelDir()), before);
        QCOMPARE(progress.stages(),
                 (std::set<std::string>{"input", "1/5 text_only", "2/5 vocabulary", "1-2/5 text_only+vocabulary", "3/5 flap",
                                        "4/5 quantization", "5/5 evaluation"}));

        const Checkpoint ck = Checkpoint::open(out);
        QCOMPARE(ck.config().modelType, std::string("gemma4_text"));  // text-only
        QVERIFY(ck.config().vocabSize < 8192);                         // English vocabulary
        QVERIFY(ck.config().downProjBias);                             // FLAP with compensation
        int widthBefore = 0, widthAfter = 0;
        const Checkpoint original = Checkpoint::open(bundledModelDir());
        for (const auto& l : original.config().layers) widthBefore += l.ffnWidth;
        for (const auto& l : ck.config().layers) widthAfter += l.ffnWidth;
        QVERIFY(widthAfter < widthBefore);
        const Json cfg = readJsonFile(out / "config.json");
        QCOMPARE(cfg["quantization_config"]["quant_method"].get<std::string>(), std::string("gptq"));  // GPTQ INT4
        QVERIFY(fs::exists(out / "vocab_mapping.json"));
        for (const auto& e : fs::directory_iterator(out)) QVERIFY2(!e.is_directory(), e.path().c_str());  // no stage folder left
        QVERIFY(!anyPartial(out));
        const Json w = readJsonFile(out / "whittle.json");
        QCOMPARE(w["slim"]["stages"].size(), std::size_t(5));
        for (const auto& st : w["slim"]["stages"]) QVERIFY(st["seconds"].get<double>() > 0);
        // Three passes over the tensors: text-only and vocabulary as one, then FLAP's slicing (after its
        // calibration on their output), then GPTQ (after its calibration on FLAP's).
        const Json passes = w["slim"]["passes"];
        QCOMPARE(passes.size(), std::size_t(3));
        QCOMPARE(passes[0]["stages"], Json::array({"text_only", "vocabulary"}));
        QCOMPARE(passes[1]["stages"], Json::array({"flap"}));
        QCOMPARE(passes[2]["stages"], Json::array({"quantization"}));
        QCOMPARE(w["slim"]["stages"][0]["pass"].get<int>(), 1);
        QCOMPARE(w["slim"]["stages"][1]["pass"].get<int>(), 1);
        QCOMPARE(w["slim"]["stages"][2]["pass"].get<int>(), 2);
        QCOMPARE(w["slim"]["stages"][3]["pass"].get<int>(), 3);
        QCOMPARE(rep.passes.size(), std::size_t(3));
        // The input files' SHA-256, by an independent implementation (Qt's).
        QCOMPARE(w["input"].size(), std::size_t(std::distance(fs::directory_iterator(bundledModelDir()), fs::directory_iterator{})));
        for (const auto& f : w["input"]) {
            QFile file(QString::fromStdString((bundledModelDir() / f["name"].get<std::string>()).string()));
            QVERIFY(file.open(QIODevice::ReadOnly));
            QCryptographicHash h(QCryptographicHash::Sha256);
            QVERIFY(h.addData(&file));
            QCOMPARE(f["sha256"].get<std::string>(), h.result().toHex().toStdString());
        }
        // Parameters by part before and after: FLAP and the vocabulary shrank the model, text-only dropped the towers.
        QVERIFY(w["after"]["total"]["params"].get<std::uint64_t>() < w["before"]["total"]["params"].get<std::uint64_t>());
        QCOMPARE(w["after"]["file_bytes"].get<std::uint64_t>(), std::uint64_t(fs::file_size(out / "model.safetensors")));
        // The quality report: measured against the original on the held-out text, and the same figures as
        // `whittle-cli eval` gives for the output (which finds vocab_mapping.json itself).
        const Json q = w["slim"]["quality"];
        QCOMPARE(q["tokens"].get<int>(), 1024);
        QVERIFY(q["kld_mean"].get<double>() > 0 && q["kld_mean"].get<double>() < 0.5);
        QVERIFY(q["top1"].get<double>() > 0.5 && q["top1"].get<double>() <= 1.0);
        QVERIFY(std::isfinite(q["ppl"].get<double>()) && std::isfinite(q["reference_ppl"].get<double>()));
        QCOMPARE(q, w["slim"]["stages"][4]["report"]);
        QVERIFY(rep.quality.has_value());
        const CliResult ev = runCli({"eval", QString::fromStdString(out.string()), "--ref", QString::fromStdString(bundledModelDir().string()),
                                     "--text", QString::fromStdString((bundledModelDir() / "heldout.txt").string()), "--ctx", "256",
                                     "--max-tokens", "1024", "--json"},
                                    240000);
        QCOMPARE(ev.exitCode, 0);
        const Json cli = Json::parse(ev.out.toStdString());
        QCOMPARE(cli["ppl"].get<double>(), q["ppl"].get<double>());
        QCOMPARE(cli["kld_mean"].get<double>(), q["kld_mean"].get<double>());
        QCOMPARE(cli["top1"].get<double>(), q["top1"].get<double>());
        qInfo("quality: ppl %.3f (original %.3f on the same positions), KLD mean %.5f p99 %.5f, top-1 %.3f", q["ppl"].get<double>(),
              q["reference_ppl"].get<double>(), q["kld_mean"].get<double>(), q["kld_p99"].get<double>(), q["top1"].get<double>());
        const auto params = [&](const char* when) { return w[when]["total"]["params"].get<std::uint64_t>(); };
        const auto bytes = [&](const char* when) { return w[when]["file_bytes"].get<std::uint64_t>(); };
        qInfo("size: %llu -> %llu parameters, tensor files %llu -> %llu bytes", (unsigned long long)params("before"),
              (unsigned long long)params("after"), (unsigned long long)bytes("before"), (unsigned long long)bytes("after"));
        // The README's table, to the digits it prints (the run is deterministic: thread-count-independent maths).
        QCOMPARE(QString::number(q["kld_mean"].get<double>(), 'f', 4), QString("0.0206"));
        QCOMPARE(QString::number(q["kld_p99"].get<double>(), 'f', 3), QString("0.172"));
        QCOMPARE(QString::number(q["top1"].get<double>(), 'f', 3), QString("0.880"));
        QCOMPARE(QString::number(q["ppl"].get<double>(), 'f', 1), QString("1254.6"));
        QCOMPARE(QString::number(q["reference_ppl"].get<double>(), 'f', 1), QString("1745.5"));
        QCOMPARE(params("before"), std::uint64_t(12872742));
        QCOMPARE(params("after"), std::uint64_t(10564134));
        QCOMPARE(bytes("after"), std::uint64_t(9726284));
        // The plan made before any work: its stages, and its size estimate (the estimator's: FLAP before calibration)
        // within 5 % of what was written.
        QCOMPARE(rep.plan.stages.size(), std::size_t(5));
        QCOMPARE(w["slim"]["plan"], toJson(rep.plan));
        qInfo("plan:\n%s", formatPlan(rep.plan).c_str());
        QVERIFY2(std::abs(double(rep.plan.outputBytes) / double(bytes("after")) - 1) < 0.05, formatPlan(rep.plan).c_str());
        QCOMPARE(rep.plan.stages[2].forwardTokens, std::int64_t(8 * 128));
        // The quantization line counts the stream it quantizes (after FLAP): the run's tensors and bits per weight.
        const Json qr = w["slim"]["stages"][3]["report"];
        QCOMPARE(QString::fromStdString(rep.plan.stages[3].summary),
                 QString("INT4 gptq g128: %1 linear weights at %2 bits per weight")
                     .arg(qr["tensors_quantized"].get<int>())
                     .arg(qr["bits_per_weight"].get<double>(), 0, 'f', 2));
        QCOMPARE(QString::fromStdString(rep.plan.stages[3].summary), QString("INT4 gptq g128: 38 linear weights at 4.23 bits per weight"));
        QCOMPARE(w["recipe"], toJson(recipe));
        QVERIFY(w["slim"]["stages"][2]["report"]["ratio_removed"].get<double>() > 0.1);
        QVERIFY(w["slim"]["stages"][3]["report"]["calibration_windows"].get<int>() > 0);
        QVERIFY(rep.bytesWritten > 0);

        // The CPU reference runs the result: finite logits over a prompt in the pruned vocabulary.
        const ReferenceModel m(ck, {});
        ReferenceSession s(m, 64);
        std::vector<int> ids{2, 10, 200, 301, 45};
        const auto logits = s.forward(ids);
        for (float v : logits) QVERIFY(std::isfinite(v));
    }

    // The flags make the same recipe; a flag out of range names the recipe field.
    void cliFlags() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const QString out = QString::fromStdString(tempPath(dir_, "cli").string());
        const CliResult r = runCli({"slim", model, out, "--text-only", "--vocab", "english", "--flap", "0.2", "--quantize", "rtn",
                                    "--calib-samples", "4", "--calib-length", "128", "--eval", "--eval-tokens", "256", "--eval-ctx", "128", "--json"},
                                   240000);
        QCOMPARE(r.exitCode, 0);
        const Json j = Json::parse(r.out.toStdString());
        QCOMPARE(j["stages"].size(), std::size_t(5));
        QCOMPARE(j["quality"]["tokens"].get<int>(), 256);
        const CliResult evalAlone = runCli({"slim", model, out + "-4", "--eval-tokens", "256", "--vocab", "english"});
        QCOMPARE(evalAlone.exitCode, 2);
        QVERIFY2(evalAlone.err.contains("--eval"), qPrintable(evalAlone.err));
        QCOMPARE(readJsonFile(out.toStdString() + "/whittle.json")["recipe"]["flap"]["calibration"]["samples"].get<int>(), 4);
        const CliResult bad = runCli({"slim", model, out + "-2", "--flap", "1.5"});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.contains("flap.ratio"), qPrintable(bad.err));
        const CliResult none = runCli({"slim", model, out + "-3"});
        QCOMPARE(none.exitCode, 2);
        QVERIFY2(none.err.contains("nothing to do"), qPrintable(none.err));
        // --plan-only: the stages with their estimates; nothing written.
        const CliResult plan = runCli({"slim", model, out + "-5", "--vocab", "english", "--quantize", "gptq", "--plan-only"});
        QCOMPARE(plan.exitCode, 0);
        QVERIFY2(plan.out.contains("1/2 vocabulary: keep ") && plan.out.contains("2/2 quantization: INT4 gptq g128"), qPrintable(plan.out));
        QVERIFY(!fs::exists((out + "-5").toStdString()));
    }

    // The fused passes write what the stages write one by one: text-only + vocabulary + FLAP in one slim run
    // (two passes) against textOnlyRepack, then pruneVocabulary, then flapPrune (three outputs) — every file but
    // whittle.json byte-identical; and prune-vocab's output equals a slim run with only the vocabulary.
    void fusedPasses() {
        Json j = fullRecipe();
        j.erase("quantization");
        j.erase("evaluation");
        const Recipe recipe = parseRecipe(j, "recipe.json");
        NullProgress np;
        const fs::path fused = tempPath(dir_, "fused");
        const SlimReport rep = slim(Checkpoint::open(bundledModelDir()), recipe, fused, false, np, CancelToken{});
        QCOMPARE(rep.passes.size(), std::size_t(2));
        QCOMPARE(rep.passes[0].stages, (std::vector<std::string>{"text_only", "vocabulary"}));

        Recipe one;
        one.textOnly = true;
        textOnlyRepack(Checkpoint::open(bundledModelDir()), one, tempPath(dir_, "s1"), false, np, CancelToken{});
        one = Recipe{};
        one.vocabulary = recipe.vocabulary;
        pruneVocabulary(Checkpoint::open(tempPath(dir_, "s1")), one, tempPath(dir_, "s2"), false, np, CancelToken{});
        one = Recipe{};
        one.flap = recipe.flap;
        flapPrune(Checkpoint::open(tempPath(dir_, "s2")), one, tempPath(dir_, "s3"), false, np, CancelToken{});
        auto withoutReport = [](const fs::path& d) {
            auto m = folderBytes(d);
            m.erase("whittle.json");
            return m;
        };
        const auto a = withoutReport(fused), b = withoutReport(tempPath(dir_, "s3"));
        QCOMPARE(a.size(), b.size());
        for (const auto& [name, bytes] : a) QVERIFY2(b.count(name) && b.at(name) == bytes, name.c_str());

        // prune-vocab (the shortcut) and slim --vocab write the same checkpoint.
        const QString model = QString::fromStdString(bundledModelDir().string());
        QCOMPARE(runCli({"prune-vocab", model, QString::fromStdString(tempPath(dir_, "pv").string()), "--preset", "english"}).exitCode, 0);
        QCOMPARE(runCli({"slim", model, QString::fromStdString(tempPath(dir_, "sv").string()), "--vocab", "english"}).exitCode, 0);
        QVERIFY(withoutReport(tempPath(dir_, "pv")) == withoutReport(tempPath(dir_, "sv")));
    }

    // RTN and NVFP4 read the pending transforms' stream as a checkpoint (streamCheckpoint), so text-only +
    // vocabulary + quantization is one pass; its output equals textOnlyRepack, then pruneVocabulary, then
    // quantizeCheckpoint (every file but whittle.json). GPTQ calibrates on a written folder (endToEnd: 3 passes).
    void fusedQuantization_data() {
        QTest::addColumn<QString>("method");
        QTest::newRow("rtn") << "rtn";
        QTest::newRow("nvfp4") << "nvfp4";
    }
    void fusedQuantization() {
        QFETCH(QString, method);
        const std::string m = method.toStdString();
        Json q{{"method", m}};
        if (m == "rtn") q["group_size"] = 32;
        const Recipe recipe = parseRecipe(Json{{"whittle_recipe", 1}, {"text_only", true}, {"vocabulary", {{"preset", "english"}}}, {"quantization", q}},
                                          "recipe.json");
        NullProgress np;
        const fs::path fused = tempPath(dir_, ("fq-" + m).c_str());
        const SlimReport rep = slim(Checkpoint::open(bundledModelDir()), recipe, fused, false, np, CancelToken{});
        QCOMPARE(rep.passes.size(), std::size_t(1));
        QCOMPARE(rep.passes[0].stages, (std::vector<std::string>{"text_only", "vocabulary", "quantization"}));
        QCOMPARE(rep.stagePass, (std::vector<int>{1, 1, 1}));

        const fs::path s1 = tempPath(dir_, ("fq1-" + m).c_str()), s2 = tempPath(dir_, ("fq2-" + m).c_str()), s3 = tempPath(dir_, ("fq3-" + m).c_str());
        Recipe one;
        one.textOnly = true;
        textOnlyRepack(Checkpoint::open(bundledModelDir()), one, s1, false, np, CancelToken{});
        one = Recipe{};
        one.vocabulary = recipe.vocabulary;
        pruneVocabulary(Checkpoint::open(s1), one, s2, false, np, CancelToken{});
        one = Recipe{};
        one.quantization = recipe.quantization;
        quantizeCheckpoint(Checkpoint::open(s2), one, s3, false, np, CancelToken{});
        auto a = folderBytes(fused), b = folderBytes(s3);
        a.erase("whittle.json");
        b.erase("whittle.json");
        QCOMPARE(a.size(), b.size());
        for (const auto& [name, bytes] : a) QVERIFY2(b.count(name) && b.at(name) == bytes, name.c_str());
        QVERIFY(Checkpoint::open(fused).hasQuantizedWeights());
    }

    // Cancel in each stage (at its first progress report): CancelledError within 5 s, no destination, no partial
    // folder, the input untouched.
    void cancel_data() {
        QTest::addColumn<QString>("at");
        for (const char* at : {"input", "1/5", "2/5", "1-2/5", "3/5", "4/5", "5/5"}) QTest::newRow(at) << at;
    }
    void cancel() {
        QFETCH(QString, at);
        const auto before = folderBytes(bundledModelDir());
        const Recipe recipe = parseRecipe(fullRecipe(), "recipe.json");
        const fs::path out = tempPath(dir_, ("cancel-" + at.left(at.indexOf('/'))).toStdString().c_str());  // "1-2", "input", …
        CancelToken token;
        CancelAt progress(token, at.toStdString());
        QElapsedTimer sinceCancel;
        bool cancelled = false;
        try {
            slim(Checkpoint::open(bundledModelDir()), recipe, out, false, progress, token);
        } catch (const CancelledError&) {
            cancelled = true;
        }
        QVERIFY2(cancelled, "the run finished although it was cancelled");
        QVERIFY(!progress.cancelledIn().empty());
        QVERIFY(!fs::exists(out));
        QVERIFY(!anyPartial(out));
        QCOMPARE(folderBytes(bundledModelDir()), before);
        qInfo("cancelled in '%s'", progress.cancelledIn().c_str());
    }

    // An input pruned earlier carries its vocab_mapping.json (to its own original); evaluating a quantization of
    // it against it must not apply that mapping — the vocabularies are the same.
    void evaluationOfAPrunedInput() {
        NullProgress np;
        const fs::path pruned = tempPath(dir_, "pruned-input"), quantized = tempPath(dir_, "pruned-rtn");
        slim(Checkpoint::open(bundledModelDir()), parseRecipe(Json{{"whittle_recipe", 1}, {"vocabulary", {{"preset", "english"}}}}, "r.json"),
             pruned, false, np, CancelToken{});
        QVERIFY(fs::exists(pruned / "vocab_mapping.json"));
        const SlimReport rep = slim(Checkpoint::open(pruned),
                                    parseRecipe(Json{{"whittle_recipe", 1},
                                                     {"quantization", {{"method", "rtn"}, {"group_size", 32}}},
                                                     {"evaluation", {{"ctx", 256}, {"max_tokens", 512}}}},
                                                "r.json"),
                                    quantized, false, np, CancelToken{});
        QVERIFY(rep.quality.has_value());
        qInfo("INT4 RTN g32 of the pruned model against it: KLD mean %.5f, top-1 %.3f", *rep.quality->kldMean, *rep.quality->top1);
        QVERIFY(*rep.quality->kldMean < 0.1);
        QVERIFY(*rep.quality->top1 > 0.8);
    }

    // GGUF from the same run: model-q4_0.gguf next to the GPTQ checkpoint, byte-identical to what
    // `whittle-cli export OUT … --format gguf-q4_0` writes from the output (the export is a stage of the run,
    // the command its shortcut); llama.cpp reading such files is tst_gguf_quant's.
    void exportInTheSameRun() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const fs::path out = tempPath(dir_, "with-gguf");
        const CliResult r = runCli({"slim", model, QString::fromStdString(out.string()), "--vocab", "english", "--flap", "0.2", "--no-compensation",
                                    "--quantize", "gptq", "--calib-samples", "4", "--calib-length", "128", "--export", "gguf-q4_0,gguf-f16"},
                                   240000);
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY(fs::exists(out / "model-q4_0.gguf") && fs::exists(out / "model-f16.gguf"));
        QVERIFY(fs::exists(out / "model.safetensors"));
        const Json w = readJsonFile(out / "whittle.json");
        QCOMPARE(w["slim"]["stages"][3]["stage"].get<std::string>(), std::string("export"));
        QCOMPARE(w["slim"]["stages"][3]["report"][0]["weight_type"].get<std::string>(), std::string("Q4_0"));
        for (const char* f : {"q4_0", "f16"}) {
            const fs::path alone = tempPath(dir_, (std::string("alone-") + f + ".gguf").c_str());
            const CliResult e = runCli({"export", QString::fromStdString(out.string()), QString::fromStdString(alone.string()), "--format",
                                        QString("gguf-") + f});
            QVERIFY2(e.exitCode == 0, qPrintable(e.err));
            QVERIFY2(readBytes(alone) == readBytes(out / (std::string("model-") + f + ".gguf")), f);
        }
        // The output still opens as the checkpoint, and the GGUF files do not disturb it.
        QCOMPARE(Checkpoint::open(out).config().modelType, std::string("gemma4"));
    }

    // FIPS 180-4's examples ("abc", the 56-byte two-block message) and a million 'a's fed in odd pieces.
    void sha256Vectors() {
        Sha256 a;
        a.update("abc", 3);
        QCOMPARE(a.hex(), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        Sha256 b;
        const std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        b.update(m.data(), m.size());
        QCOMPARE(b.hex(), std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
        Sha256 c;
        const std::string chunk(997, 'a');
        std::size_t left = 1000000;
        while (left > 0) {
            const std::size_t n = std::min(left, chunk.size());
            c.update(chunk.data(), n);
            left -= n;
        }
        QCOMPARE(c.hex(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    }

    void refusals() {
        NullProgress np;
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        WHITTLE_EXPECT_ERROR(slim(ck, Recipe{}, tempPath(dir_, "empty"), false, np, CancelToken{}), UsageError, "nothing to do");
        Json j = fullRecipe();
        j["quantization"]["format"] = "gguf-q4_0";
        WHITTLE_EXPECT_ERROR(slim(ck, parseRecipe(j, "r.json"), tempPath(dir_, "gguf"), false, np, CancelToken{}), UsageError, "gguf-q4_0",
                             "\"export\"");
        // Export: a Whittle-only model (FLAP's bias) or foreign codes cannot go to GGUF; formats are checked and named once.
        Json x = fullRecipe();
        x["export"] = {"gguf-q4_0"};
        WHITTLE_EXPECT_ERROR(planSlim(ck, parseRecipe(x, "r.json")), UsageError, "export.formats gguf-q4_0", "flap.bias_compensation",
                             "Whittle-only");
        x["flap"]["bias_compensation"] = false;
        x["quantization"] = {{"method", "nvfp4"}};
        WHITTLE_EXPECT_ERROR(planSlim(ck, parseRecipe(x, "r.json")), UsageError, "export.formats gguf-q4_0", "quantization.method nvfp4");
        x["export"] = {"gguf-q4_0", "gguf-q4_0"};
        WHITTLE_EXPECT_ERROR(parseRecipe(x, "r.json"), FormatError, "export.formats", "twice", "r.json");
        x["export"] = {"gguf-q5_k"};
        WHITTLE_EXPECT_ERROR(parseRecipe(x, "r.json"), FormatError, "export.formats", "gguf-q5_k", "r.json");
        QVERIFY(!fs::exists(tempPath(dir_, "gguf")));
        // Evaluation: checked before any work; unknown keys and bad values name the field.
        Json e = fullRecipe();
        e["evaluation"] = {{"files", {"/nonexistent/heldout.txt"}}};
        WHITTLE_EXPECT_ERROR(slim(ck, parseRecipe(e, "r.json"), tempPath(dir_, "noeval"), false, np, CancelToken{}), UsageError,
                             "evaluation.files", "/nonexistent/heldout.txt");
        QVERIFY(!fs::exists(tempPath(dir_, "noeval")));
        e["evaluation"] = {{"tokens", 5}};
        WHITTLE_EXPECT_ERROR(parseRecipe(e, "r.json"), FormatError, "evaluation.tokens", "r.json");
        e["evaluation"] = {{"ctx", 1}};
        WHITTLE_EXPECT_ERROR(parseRecipe(e, "r.json"), FormatError, "evaluation.ctx");
        e["evaluation"] = true;
        QCOMPARE(parseRecipe(e, "r.json").evaluation->maxTokens, 8192);
        e["evaluation"] = false;
        QVERIFY(!parseRecipe(e, "r.json").evaluation);
        // The plan refuses combinations before any work, naming the field.
        Json g = fullRecipe();
        g["flap"]["multiple"] = 64;
        WHITTLE_EXPECT_ERROR(planSlim(ck, parseRecipe(g, "r.json")), UsageError, "quantization.group_size 128", "flap.multiple 64");
        Json c = fullRecipe();
        c["flap"]["calibration"]["files"] = {"/nonexistent/calib.txt"};
        WHITTLE_EXPECT_ERROR(slim(ck, parseRecipe(c, "r.json"), tempPath(dir_, "nocalib"), false, np, CancelToken{}), UsageError,
                             "flap.calibration.files", "/nonexistent/calib.txt");
        QVERIFY(!fs::exists(tempPath(dir_, "nocalib")));
        const fs::path textOnly = tempPath(dir_, "text-only");
        slim(ck, parseRecipe(Json{{"whittle_recipe", 1}, {"text_only", true}}, "r.json"), textOnly, false, np, CancelToken{});
        WHITTLE_EXPECT_ERROR(planSlim(Checkpoint::open(textOnly), parseRecipe(fullRecipe(), "r.json")), UsageError, "text_only:",
                             "already a text-only model");
        Json evalOnly{{"whittle_recipe", 1}, {"evaluation", true}};
        WHITTLE_EXPECT_ERROR(slim(ck, parseRecipe(evalOnly, "r.json"), tempPath(dir_, "evalonly"), false, np, CancelToken{}), UsageError,
                             "nothing to do");
    }
};

QTEST_GUILESS_MAIN(TestSlim)
#include "tst_slim.moc"
