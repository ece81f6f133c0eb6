// The recipe estimate (core/estimate/estimate.h) against what the pipeline writes: for each recipe on the
// bundled model and on a mini E2B with an untied head, the safetensors bytes estimated equal the files written
// exactly, the whole folder (whittle.json, the run's record, aside) within 0.5 % + 64 KiB, and the engine memory
// estimated before the run equals, field by field, the estimate made from the written output (which
// tst_engine_memory checks against the Vulkan engine's own allocations). FLAP, before calibration: the written
// output lies inside the estimate's range. GGUF exports: each file's size exactly. `whittle-cli estimate --json`
// gives the same figures. The sizes by
// vocabulary (Vocabulary page, `buckets`) equal the estimator's.
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/estimate/estimate.h"
#include "core/estimate/vocabulary_sizes.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/pipeline/slim.h"
#include "core/recipes/recipe.h"
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
