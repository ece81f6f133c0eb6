// The recipe estimate (core/estimate/estimate.h) against what the pipeline writes: for each recipe on the
// bundled model and on a mini E2B with an untied head, the safetensors bytes estimated equal the files written
// exactly, the whole folder (whittle.json, the run's record, aside) within 0.5 % + 64 KiB, and the engine memory
// estimated before the run equals, field by field, the estimate made from the written output (which
// tst_engine_memory checks against the Vulkan engine's own allocations). FLAP, before calibration: the written
// output lies inside the estimate's range. Planned (calibrateRecipe: FLAP's widths, the bit budget's formats
// in the recipe): exact, and the run of the original recipe writes the same files as the planned one. GGUF exports: each file's size exactly. `whittle-cli estimate --json`
// gives the same figures. The sizes by
// vocabulary (Vocabulary page, `buckets`) equal the estimator's.
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/estimate/vocabulary_sizes.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/slim.h"
#include "core/recipes/recipe.h"
#include "core/util/sha256.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {

struct Written {
    std::uint64_t tensors = 0, all = 0;
};

Written folderBytes(const fs::path& dir) {
    Written w;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (!e.is_regular_file() || n == "whittle.json") continue;
        w.all += e.file_size();
        if (e.path().extension() == ".safetensors" || n == "model.safetensors.index.json") w.tensors += e.file_size();
    }
    return w;
}

bool sameMemory(const EngineMemory& a, const EngineMemory& b) {
    return a.weights == b.weights && a.pleTable == b.pleTable && a.kv.total() == b.kv.total() && a.kv.slidingCells == b.kv.slidingCells &&
           a.scratch == b.scratch && a.hostVisible == b.hostVisible && a.hostTables == b.hostTables && a.buffers == b.buffers;
}

}  // namespace

class TestEstimate : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    fs::path mini_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        mini_ = tempPath(dir_, "mini-untied");
        TinyCheckpointOptions o;
        o.preset = "e2b-mini";
        o.untied = true;
        NullProgress np;
        makeTinyCheckpoint(mini_, o, np, CancelToken{});
    }

    void matchesTheOutput_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("recipe");
        const char* recipes[] = {
            R"({"vocabulary": {"preset": "english"}})",
            R"({"text_only": true})",
            R"({"text_only": true, "vocabulary": {"preset": "english"}, "quantization": {"method": "rtn", "group_size": 32}})",
            R"({"quantization": {"method": "nvfp4"}})",
            R"({"quantization": {"method": "rtn", "embeddings": "q8_0"}})",
            R"({"quantization": {"method": "gptq", "group_size": 64, "calibration": {"samples": 4, "length": 64}}})",
            R"({"quantization": {"method": "rtn", "format": "hf"}})",
            R"({"text_only": true, "vocabulary": {"preset": "english"}, "export": ["gguf-q8_0", "gguf-f16"]})",
            R"({"text_only": true, "export": ["gguf-q4_0"]})",
            R"({"quantization": {"method": "rtn", "group_size": 32}, "export": ["gguf-q4_0", "gguf-f32"]})",
            R"({"quantization": {"method": "nvfp4"}, "export": ["gguf-nvfp4"]})",
        };
        for (const char* model : {"bundled", "mini"})
            for (const char* r : recipes) {
                // The mini model has a tiny tokenizer (no English preset worth pruning) and no held-out text to calibrate on.
                if (std::string(model) == "mini" && (std::string(r).find("english") != std::string::npos || std::string(r).find("gptq") != std::string::npos))
                    continue;
                QTest::newRow(qPrintable(QString("%1 %2").arg(model, r))) << QString(model) << QString(r);
            }
    }
    void matchesTheOutput() {
        QFETCH(QString, model);
        QFETCH(QString, recipe);
        Json j = Json::parse(recipe.toStdString());
        j["whittle_recipe"] = 1;
        const Recipe r = parseRecipe(j, "recipe.json");
        const Checkpoint ck = Checkpoint::open(model == "mini" ? mini_ : bundledModelDir());
        RuntimeOptions rt;
        rt.context = 1024;
        const Estimate e = estimate(ck, r, rt);
        QVERIFY(e.exact);
        const fs::path out = tempPath(dir_, ("out-" + std::to_string(std::hash<std::string>{}(model.toStdString() + recipe.toStdString()))).c_str());
        NullProgress np;
        slim(ck, r, out, false, np, CancelToken{});
        const Written w = folderBytes(out);
        qInfo("estimated %llu bytes (tensors %llu), written %llu (tensors %llu)", (unsigned long long)e.output.diskBytes(),
              (unsigned long long)e.output.tensorBytes, (unsigned long long)w.all, (unsigned long long)w.tensors);
        QCOMPARE(e.output.tensorBytes, w.tensors);
        QVERIFY(std::abs(double(e.output.diskBytes()) - double(w.all)) <= 0.005 * double(w.all) + 65536);
        // GGUF exports: each file as the exporter's plan and the writer's layout size it (NVFP4's .scale tensors
        // are planned for every weight: exact unless a weight is all zeros).
        QCOMPARE(e.output.ggufBytes.size(), r.exports ? r.exports->formats.size() : std::size_t(0));
        for (const auto& [file, bytes] : e.output.ggufBytes) {
            QVERIFY2(fs::exists(out / file), file.c_str());
            qInfo("%s: estimated %llu, written %llu", file.c_str(), (unsigned long long)bytes, (unsigned long long)fs::file_size(out / file));
            QCOMPARE(bytes, std::uint64_t(fs::file_size(out / file)));
        }
        const Checkpoint written = Checkpoint::open(out);
        QVERIFY(sameMemory(e.output.memory, estimateEngineMemory(written, rt)));
        std::uint64_t params = 0;
        for (const CheckpointTensor& t : written.tensors()) params += t.parameters;
        QCOMPARE(e.output.parameters, params);
        // The input as it is: its own folder.
        QVERIFY(sameMemory(e.input.memory, estimateEngineMemory(ck, rt)));
        QCOMPARE(e.input.tensorBytes, ck.store().fileBytes() + (fs::exists(ck.dir() / "model.safetensors.index.json") ? fs::file_size(ck.dir() / "model.safetensors.index.json") : 0));
    }

    // Before calibration FLAP's widths are a range; the run's output lies inside it.
    void flapRange() {
        const Recipe r = parseRecipe(Json::parse(R"({"whittle_recipe": 1, "flap": {"ratio": 0.3, "calibration": {"samples": 4, "length": 64}},
                                                     "quantization": {"method": "rtn", "group_size": 32}})"),
                                     "recipe.json");
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const Estimate e = estimate(ck, r, RuntimeOptions{});
        QVERIFY(!e.exact);
        QVERIFY(e.low && e.high);
        QVERIFY(e.note.find("FLAP") != std::string::npos);
        const fs::path out = tempPath(dir_, "flap");
        NullProgress np;
        slim(ck, r, out, false, np, CancelToken{});
        const Written w = folderBytes(out);
        const EngineMemory m = estimateEngineMemory(Checkpoint::open(out), RuntimeOptions{});
        qInfo("FLAP 0.3 + RTN: written %llu, estimated %llu in [%llu, %llu]; weights %llu in [%llu, %llu]", (unsigned long long)w.all,
              (unsigned long long)e.output.diskBytes(), (unsigned long long)e.low->diskBytes(), (unsigned long long)e.high->diskBytes(),
              (unsigned long long)m.weights, (unsigned long long)e.low->memory.weights, (unsigned long long)e.high->memory.weights);
        QVERIFY(e.low->diskBytes() <= w.all && w.all <= e.high->diskBytes());
        QVERIFY(e.low->memory.weights <= m.weights && m.weights <= e.high->memory.weights);
    }

    // After planning (calibrateRecipe) FLAP's widths and the budget's formats are in the recipe and the estimate
    // is exact: the safetensors bytes estimated equal the bytes the run of the ORIGINAL recipe writes, and the
    // engine memory equals its output's field by field; the planned recipe's run writes the same tensor file
    // byte for byte (the run keeps the plan's choices, which are the ones it would make). The scratch folder
    // the stages' models were written to is gone afterwards.
    void plannedRecipesAreExact_data() {
        QTest::addColumn<QString>("recipe");
        QTest::newRow("flap + rtn") << R"({"flap": {"ratio": 0.3, "calibration": {"samples": 4, "length": 64}},
                                          "quantization": {"method": "rtn", "group_size": 32}})";
        QTest::newRow("budget") << R"({"quantization": {"method": "budget", "bpw": 3.6, "calibration": {"samples": 4, "length": 64}}})";
        QTest::newRow("english + flap + budget")
            << R"({"vocabulary": {"preset": "english"}, "flap": {"ratio": 0.25, "bias_compensation": false, "calibration": {"samples": 4, "length": 64}},
                  "quantization": {"method": "budget", "calibration": {"samples": 4, "length": 64}}, "export": ["gguf-q8_0"]})";
    }
    void plannedRecipesAreExact() {
        QFETCH(QString, recipe);
        Json j = Json::parse(recipe.toStdString());
        j["whittle_recipe"] = 1;
        const Recipe r = parseRecipe(j, "recipe.json");
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        RuntimeOptions rt;
        rt.context = 2048;
        const Estimate before = estimate(ck, r, rt);
        QVERIFY(!before.exact);
        QVERIFY(needsCalibration(r));
        const std::string tag = std::to_string(std::hash<std::string>{}(recipe.toStdString()));
        const fs::path scratch = tempPath(dir_, ("scratch-" + tag).c_str());
        NullProgress np;
        const CalibratedRecipe c = calibrateRecipe(ck, r, scratch, np, CancelToken{});
        QVERIFY(!needsCalibration(c.recipe));
        QCOMPARE(c.flap.has_value(), r.flap.has_value());
        QCOMPARE(c.budget.has_value(), r.quantization->method == "budget");
        QVERIFY(!fs::exists(scratch));
        for (const auto& e : fs::directory_iterator(dir_.path().toStdString()))
            QVERIFY2(e.path().filename().string().find("scratch-" + tag) == std::string::npos, e.path().c_str());
        // The planned recipe survives its JSON form (what whittle-cli plan writes and slim reads).
        const Recipe planned = parseRecipe(toJson(c.recipe), "planned.json");
        QCOMPARE(toJson(planned).dump(), toJson(c.recipe).dump());
        const Estimate e = estimate(ck, planned, rt);
        QVERIFY(e.exact);
        QVERIFY(!e.low && !e.high);
        const fs::path out = tempPath(dir_, ("planned-original-" + tag).c_str());
        slim(ck, r, out, false, np, CancelToken{});
        const Written w = folderBytes(out);
        qInfo("estimated before planning %llu, after %llu; written %llu (tensors: %llu estimated, %llu written)",
              (unsigned long long)before.output.diskBytes(), (unsigned long long)e.output.diskBytes(), (unsigned long long)w.all,
              (unsigned long long)e.output.tensorBytes, (unsigned long long)w.tensors);
        QCOMPARE(e.output.tensorBytes, w.tensors);
        QVERIFY(std::abs(double(e.output.diskBytes()) - double(w.all)) <= 0.005 * double(w.all) + 65536);
        for (const auto& [file, bytes] : e.output.ggufBytes) QCOMPARE(bytes, std::uint64_t(fs::file_size(out / file)));
        QVERIFY(sameMemory(e.output.memory, estimateEngineMemory(Checkpoint::open(out), rt)));
        const fs::path again = tempPath(dir_, ("planned-run-" + tag).c_str());
        slim(ck, planned, again, false, np, CancelToken{});
        QCOMPARE(sha256File(again / "model.safetensors", CancelToken{}), sha256File(out / "model.safetensors", CancelToken{}));
    }

    // A plan that does not fit the model or the recipe is refused by name; a cancelled plan leaves nothing.
    void plannedRecipeErrors() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const int layers = int(ck.config().layers.size());
        auto refusal = [&](const Json& recipe) -> std::string {
            Json j = recipe;
            j["whittle_recipe"] = 1;
            try {
                (void)estimate(ck, parseRecipe(j, "recipe.json"), RuntimeOptions{});
            } catch (const UsageError& e) {
                return e.what();
            }
            return "accepted";
        };
        Json flap{{"flap", {{"ratio", 0.3}, {"widths", std::vector<int>(std::size_t(layers - 1), 256)}}}};
        std::string why = refusal(flap);
        QVERIFY2(why.find("flap.widths") != std::string::npos && why.find("layers") != std::string::npos, why.c_str());
        std::vector<int> widths(std::size_t(layers), 256);
        widths[1] = 250;  // not a multiple of 128
        flap["flap"]["widths"] = widths;
        why = refusal(flap);
        QVERIFY2(why.find("flap.widths: layer 1 keeps 250") != std::string::npos, why.c_str());
        const Json budget{{"quantization", {{"method", "budget"}, {"formats", {{"model.language_model.layers.0.mlp.up_proj.weight", "int4-g128"}}}}}};
        why = refusal(budget);
        QVERIFY2(why.find("quantization.formats has no format") != std::string::npos, why.c_str());
        try {
            (void)parseRecipe(Json{{"whittle_recipe", 1}, {"quantization", {{"method", "rtn"}, {"formats", {{"a", "int4-g128"}}}}}}, "r.json");
            QFAIL("formats with rtn accepted");
        } catch (const FormatError& e) {
            QVERIFY2(std::string(e.what()).find("quantization.formats") != std::string::npos, e.what());
        }
        // Cancelled during FLAP's calibration: the scratch folder is removed.
        const Recipe r = parseRecipe(Json::parse(R"({"whittle_recipe": 1, "vocabulary": {"preset": "english"}, "flap": {"ratio": 0.3}})"), "r.json");
        const fs::path scratch = tempPath(dir_, "scratch-cancelled");
        CancelToken cancel;
        struct CancelAtFlap final : Progress {
            CancelToken& c;
            explicit CancelAtFlap(CancelToken& t) : c(t) {}
            void report(const ProgressReport& p) override {
                if (p.stage.rfind("flap: ", 0) == 0) c.cancel();
            }
        } progress(cancel);
        QVERIFY_THROWS_EXCEPTION(CancelledError, calibrateRecipe(ck, r, scratch, progress, cancel));
        for (const auto& e : fs::directory_iterator(dir_.path().toStdString()))
            QVERIFY2(e.path().filename().string().find("scratch-cancelled") == std::string::npos, e.path().c_str());
    }

    // whittle-cli plan writes the planned recipe (refusing to replace one without --force); estimate reads it
    // as exact; the JSON report carries the widths chosen.
    void planCli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const QString file = QString::fromStdString(tempPath(dir_, "planned.json").string());
        const QStringList args{"plan", model, file, "--flap", "0.3", "--calib-samples", "4", "--calib-length", "64", "--json"};
        const CliResult r = runCli(args);
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        const Json j = Json::parse(r.out.toStdString());
        QVERIFY(j["estimate"]["exact"].get<bool>());
        const Json written = readJsonFile(file.toStdString());
        QCOMPARE(written["flap"]["widths"], j["flap"]["widths_after"]);
        const CliResult again = runCli(args);
        QCOMPARE(again.exitCode, 2);
        QVERIFY2(again.err.contains("--force"), qPrintable(again.err));
        const CliResult est = runCli({"estimate", model, "--recipe", file, "--json"});
        QVERIFY2(est.exitCode == 0, qPrintable(est.err));
        const Json e = Json::parse(est.out.toStdString());
        QVERIFY(e["exact"].get<bool>());
        QCOMPARE(e["disk_bytes"]["total"], j["estimate"]["disk_bytes"]["total"]);
        const CliResult text = runCli({"plan", model, file, "--flap", "0.3", "--calib-samples", "4", "--calib-length", "64", "--force"});
        QVERIFY2(text.exitCode == 0, qPrintable(text.err));
        QVERIFY2(text.out.contains("FLAP keeps") && text.out.contains("keeps these choices"), qPrintable(text.out));
    }

    // The CLI prints the same figures; a bad flag names itself.
    // The sizes by vocabulary (the Vocabulary page's and `buckets`' figures) are the estimator's: at each preset's
    // vocabulary size, the same parameters as estimate() with that vocabulary section, and the same safetensors
    // bytes but for the header's shape digits; `buckets --json` reports those figures. A kept stage is reused:
    // the Estimator answers cached() only once the recipe was estimated or prepared.
    void vocabularySizesAreTheEstimators() {
        for (const fs::path& model : {bundledModelDir(), mini_}) {
            const auto ck = std::make_shared<const Checkpoint>(Checkpoint::open(model));
            const Estimator est(ck);
            const VocabularySizes sizes = vocabularySizes(est, Recipe{});
            QCOMPARE(sizes.rows, ck->config().vocabSize);
            QCOMPARE(sizes.parametersAt(sizes.rows), sizes.full.parameters);
            const CliResult cli = runCli({"buckets", QString::fromStdString(model.string()), "--json"});
            QVERIFY2(cli.exitCode == 0, qPrintable(cli.err));
            const Json buckets = Json::parse(cli.out.toStdString());
            for (const char* preset : {"english", "latin", "cjk"}) {
                Recipe r;
                r.vocabulary = VocabularyRecipe{};
                r.vocabulary->preset = preset;
                QVERIFY(!est.cached(r, RuntimeOptions{}));
                const Estimate e = est.estimate(r, RuntimeOptions{});
                QVERIFY(est.cached(r, RuntimeOptions{}).has_value());
                const int rows = est.plannedOutput(r)->config().vocabSize;
                QVERIFY(rows < sizes.rows);
                QCOMPARE(sizes.parametersAt(rows), e.output.parameters);
                const std::int64_t d = std::int64_t(sizes.tensorBytesAt(rows)) - std::int64_t(e.output.tensorBytes);
                QVERIFY2(std::abs(d) <= 64, qPrintable(QString("%1 %2: %3 bytes").arg(QString::fromStdString(model.string()), preset).arg(d)));
                const Json& p = buckets["presets"][preset];
                QCOMPARE(p["tokens_after_padding"].get<int>(), rows);
                QCOMPARE(p["parameters_after"].get<std::uint64_t>(), e.output.parameters);
                QCOMPARE(p["parameters_removed"].get<std::uint64_t>(), sizes.full.parameters - e.output.parameters);
            }
        }
    }

    // The README's size-and-memory table is the tool's output: tools/estimate_tables.sh's rows, made again here
    // by `whittle-cli estimate --markdown` on full-size E2B/E4B-shaped checkpoints (zero weights) with Google's
    // tokenizer, each found verbatim in README.md.
    void readmeTables() {
        const fs::path tj = peersDir() / "gemma-tokenizer/tokenizer.json";
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(tj), "test peers not installed (tests/peers/install.sh)");
        std::string readme;
        {
            std::ifstream f(fs::path(WHITTLE_SOURCE_DIR) / "README.md", std::ios::binary);
            readme.assign(std::istreambuf_iterator<char>(f), {});
        }
        QVERIFY(!readme.empty());
        for (const char* preset : {"e2b-full", "e4b-full"}) {
            const fs::path model = fs::path(dir_.path().toStdString()) / (std::string(preset) + "-gemma-tokenizer");
            const CliResult made = runCli({"make-tiny", QString::fromStdString(model.string()), "--preset", preset, "--zeros", "--tokenizer",
                                           QString::fromStdString(tj.string())},
                                          240000);
            QVERIFY2(made.exitCode == 0, qPrintable(made.err));
            const QString name = QString(preset).left(3).toUpper();
            const QString m = QString::fromStdString(model.string());
            const std::vector<std::pair<QStringList, QString>> rows{
                {{}, name + " as it is"},
                {{"--vocab", "english"}, name + ", English"},
                {{"--vocab", "english", "--quantize", "gptq"}, name + ", English + INT4 GPTQ g128"}};
            for (const auto& [flags, label] : rows) {
                const CliResult r = runCli(QStringList{"estimate", m} + flags + QStringList{"--ctx", "4096,32768,131072", "--markdown", label});
                QVERIFY2(r.exitCode == 0, qPrintable(r.err));
                const std::string row = r.out.trimmed().toStdString();
                QVERIFY2(readme.find(row + "\n") != std::string::npos, ("README.md lacks the row " + row).c_str());
            }
        }
    }

    void cli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const CliResult r = runCli({"estimate", model, "--text-only", "--quantize", "rtn", "--ctx", "32768", "--ple", "gpu", "--json"});
        QCOMPARE(r.exitCode, 0);
        const Json j = Json::parse(r.out.toStdString());
        Recipe rec;
        rec.textOnly = true;
        rec.quantization = QuantizeRecipe{};
        RuntimeOptions rt;
        rt.context = 32768;
        rt.pleInVram = true;
        const Estimate e = estimate(Checkpoint::open(bundledModelDir()), rec, rt);
        QCOMPARE(j["disk_bytes"]["total"].get<std::uint64_t>(), e.output.diskBytes());
        QCOMPARE(j["vram_bytes"]["total"].get<std::uint64_t>(), e.output.memory.deviceTotal());
        QCOMPARE(j["vram_bytes"]["kv_cache"].get<std::uint64_t>(), e.output.memory.kv.total());
        QCOMPARE(j["host_bytes"]["total"].get<std::uint64_t>(), e.output.memory.hostTables);
        QVERIFY(j["vram_bytes"]["ple_table"].get<std::uint64_t>() > 0);
        QCOMPARE(j["input"]["disk_bytes"]["total"].get<std::uint64_t>(), e.input.diskBytes());
        const CliResult text = runCli({"estimate", model});
        QCOMPARE(text.exitCode, 0);
        QVERIFY2(text.out.contains("device memory at 4096 positions"), qPrintable(text.out));
        const CliResult bad = runCli({"estimate", model, "--ple", "disk"});
        QCOMPARE(bad.exitCode, 2);
        QVERIFY2(bad.err.contains("--ple"), qPrintable(bad.err));
        const CliResult badRecipe = runCli({"estimate", model, "--flap", "1.5"});
        QCOMPARE(badRecipe.exitCode, 2);
        QVERIFY2(badRecipe.err.contains("flap.ratio"), qPrintable(badRecipe.err));
    }
};

QTEST_GUILESS_MAIN(TestEstimate)
#include "tst_estimate.moc"
