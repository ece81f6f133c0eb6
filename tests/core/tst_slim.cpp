// One slimming run from one recipe (core/pipeline/slim.h) on the bundled model: English vocabulary, text-only,
// FLAP 20 % and GPTQ INT4 from one JSON — the output opens as what every stage made it, whittle.json holds every
// stage's report, no stage folder is left, the input is untouched and the CPU reference runs it; the same
// run from the CLI flags; cancel at several points leaves no destination and no partial folder; refusals.
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/pipeline/slim.h"
#include "core/recipes/recipe.h"
#include "core/reference/reference_session.h"
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
                {"quantization", {{"method", "gptq"}, {"group_size", 128}, {"calibration", {{"samples", 8}, {"length", 128}}}}}};
}

std::map<std::string, std::string> folderBytes(const fs::path& dir) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) m[e.path().filename().string()] = readBytes(e.path());
    return m;
}

bool anyPartial(const fs::path& dest) {
    for (const auto& e : fs::directory_iterator(dest.parent_path()))
        if (e.path().filename().string().rfind(dest.filename().string() + ".partial-", 0) == 0) return true;
    return false;
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
        QCOMPARE(slimStages(recipe), (std::vector<std::string>{"text_only", "vocabulary", "flap", "quantization"}));
        const fs::path out = tempPath(dir_, "slim");
        CancelToken never;
        CancelAt progress(never, {});
        const SlimReport rep = slim(Checkpoint::open(bundledModelDir()), recipe, out, false, progress, never);
        QCOMPARE(folderBytes(bundledModelDir()), before);
        QCOMPARE(progress.stages(), (std::set<std::string>{"1/4 text_only", "2/4 vocabulary", "3/4 flap", "4/4 quantization"}));

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
        QCOMPARE(w["slim"]["stages"].size(), std::size_t(4));
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
                                    "--calib-samples", "4", "--calib-length", "128", "--json"},
                                   240000);
        QCOMPARE(r.exitCode, 0);
        const Json j = Json::parse(r.out.toStdString());
        QCOMPARE(j["stages"].size(), std::size_t(4));
        QCOMPARE(readJsonFile(out.toStdString() + "/whittle.json")["recipe"]["flap"]["calibration"]["samples"].get<int>(), 4);
        const CliResult bad = runCli({"slim", model, out + "-2", "--flap", "1.5"});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.contains("flap.ratio"), qPrintable(bad.err));
        const CliResult none = runCli({"slim", model, out + "-3"});
        QCOMPARE(none.exitCode, 2);
        QVERIFY2(none.err.contains("nothing to do"), qPrintable(none.err));
    }

    // Cancel in each stage (at its first progress report): CancelledError within 5 s, no destination, no partial
    // folder, the input untouched.
    void cancel_data() {
        QTest::addColumn<QString>("at");
        for (const char* at : {"1/4", "2/4", "3/4", "4/4"}) QTest::newRow(at) << at;
    }
    void cancel() {
        QFETCH(QString, at);
        const auto before = folderBytes(bundledModelDir());
        const Recipe recipe = parseRecipe(fullRecipe(), "recipe.json");
        const fs::path out = tempPath(dir_, ("cancel-" + at.left(1)).toStdString().c_str());
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

    void refusals() {
        NullProgress np;
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        WHITTLE_EXPECT_ERROR(slim(ck, Recipe{}, tempPath(dir_, "empty"), false, np, CancelToken{}), UsageError, "nothing to do");
        Json j = fullRecipe();
        j["quantization"]["format"] = "gguf-q4_0";
        WHITTLE_EXPECT_ERROR(slim(ck, parseRecipe(j, "r.json"), tempPath(dir_, "gguf"), false, np, CancelToken{}), UsageError, "gguf-q4_0",
                             "whittle-cli export");
        QVERIFY(!fs::exists(tempPath(dir_, "gguf")));
    }
};

QTEST_GUILESS_MAIN(TestSlim)
#include "tst_slim.moc"
