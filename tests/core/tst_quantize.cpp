// `quantize` end to end on the bundled model: INT4 RTN into GPTQ v1 safetensors. The output's files and
// config keys; the reference engine loading it through GPTQ weight views (every weight equal to the RTN
// dequantization of the original, parameter counts unchanged); quality against the original measured by
// eval — KLD ordered g64 < g128 < per channel, as RTN must be; the CLI and recipe file agreeing; refusals.
// GPTQ, NVFP4 and several formats at once. The mixed bit budget at uniform INT4 g128's bits: its plan, its
// config's per-module overrides, and a lower KLD than GPTQ g128; its binary residuals read by the peer.
#include <cmath>
#include <cstring>

#include <QStandardPaths>

#include <nlohmann/json.hpp>

#include "core/engine/evaluate.h"
#include "core/error.h"
#include "core/quant/ggml_blocks.h"
#include "core/export/gguf_export.h"
#include "core/io/gguf_reader.h"
#include "core/model/inventory.h"
#include "core/quant/int_quant.h"
#include "core/quant/nvfp4.h"
#include "core/recipes/recipe.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "eval_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestQuantize : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::map<int, fs::path> outputs_;  // group size → GPTQ output
    std::map<int, EvalReport> evals_;

    fs::path quantize(int group) {
        const fs::path out = tempPath(dir_, ("g" + std::to_string(group)).c_str());
        Recipe r;
        r.quantization = QuantizeRecipe{};
        r.quantization->groupSize = group;
        NullProgress p;
        quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, out, false, p, CancelToken{});
        return out;
    }

    // Every GPTQ tensor of `model` as the peer decodes it equals Whittle's weight view, bit for bit.
    void checkIndependentDequantizer(const fs::path& model) {
        WHITTLE_REQUIRE_OR_SKIP(!QStandardPaths::findExecutable("node").isEmpty(), "node is not on PATH (NodeSource nodejs >= 20)");
        const Checkpoint qc = Checkpoint::open(model);
        const ReferenceModel qm(qc, {});
        QStringList args{QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/gptq_dequant.mjs"), QString::fromStdString(model.string())};
        std::vector<const WeightView*> views;
        for (const auto& l : qm.layers())
            for (const WeightView* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
                if (!v->empty()) {
                    views.push_back(v);
                    args << QString::fromStdString(v->name.substr(0, v->name.size() - std::string(".weight").size()));
                }
        QProcess node;
        node.start("node", args);
        QVERIFY(node.waitForFinished(120000));
        QVERIFY2(node.exitCode() == 0, node.readAllStandardError().constData());
        const Json answer = parseJson(node.readAllStandardOutput().toStdString(), "gptq_dequant.mjs output");
        std::uint64_t weights = 0;
        for (const WeightView* v : views) {
            const Json& t = answer.at(v->name.substr(0, v->name.size() - 7));
            QCOMPARE(t.at("out").get<std::int64_t>(), v->rows);
            QCOMPARE(t.at("in").get<std::int64_t>(), v->cols);
            const QByteArray raw = QByteArray::fromBase64(QByteArray::fromStdString(t.at("weight").get<std::string>()));
            QCOMPARE(std::int64_t(raw.size()), 4 * v->numel());
            std::vector<float> row(static_cast<std::size_t>(v->cols)), theirs(row.size());
            for (std::int64_t r = 0; r < v->rows; ++r) {
                v->row(r, row.data());
                std::memcpy(theirs.data(), raw.constData() + 4 * r * v->cols, std::size_t(4 * v->cols));
                if (row != theirs) QFAIL(qPrintable(QString::fromStdString(v->name) + " differs at row " + QString::number(r)));
            }
            weights += std::uint64_t(v->numel());
        }
        qInfo("%s: %zu GPTQ tensors, %llu weights: identical to the independent dequantizer", model.filename().c_str(), views.size(), (unsigned long long)weights);
        QCOMPARE(views.size(), std::size_t(38));
        QCOMPARE(weights, std::uint64_t(9043968));
    }

    fs::path quantizeGptq(bool actOrder) {
        const fs::path out = tempPath(dir_, actOrder ? "gptq-act" : "gptq");
        Recipe r;
        r.quantization = QuantizeRecipe{};
        r.quantization->method = "gptq";
        r.quantization->actOrder = actOrder;
        r.quantization->calibration.samples = 16;  // from the end of heldout.txt; eval reads its beginning
        r.quantization->calibration.length = 256;
        NullProgress p;
        quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, out, false, p, CancelToken{});
        return out;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        for (int g : {64, 128, 0}) outputs_[g] = quantize(g);
    }

    // Files and keys other tools read: config.json's quantization_config and quantize_config.json agree.
    void outputFiles() {
        const fs::path out = outputs_[128];
        for (const char* f : {"config.json", "quantize_config.json", "tokenizer.json", "generation_config.json", "whittle.json"})
            QVERIFY2(fs::exists(out / f), f);
        const Json qc = readJsonFile(out / "config.json").at("quantization_config");
        QCOMPARE(qc, readJsonFile(out / "quantize_config.json"));
        QCOMPARE(qc.at("quant_method").get<std::string>(), std::string("gptq"));
        QCOMPARE(qc.at("checkpoint_format").get<std::string>(), std::string("gptq"));
        QCOMPARE(qc.at("bits").get<int>(), 4);
        QCOMPARE(qc.at("group_size").get<int>(), 128);
        QCOMPARE(qc.at("sym").get<bool>(), true);
        QCOMPARE(qc.at("desc_act").get<bool>(), false);
        QCOMPARE(readJsonFile(outputs_[0] / "quantize_config.json").at("group_size").get<int>(), -1);  // per channel
        QCOMPARE(readBytes(out / "tokenizer.json"), readBytes(bundledModelDir() / "tokenizer.json"));
        const Json report = readJsonFile(out / "whittle.json").at("quantization");
        QCOMPARE(report.at("tensors_quantized").get<int>(), 6 * 7 - 2 * 2);  // 7 linears a layer; layers 4, 5 share k/v
        // Codes 4 bits, an f16 scale and a 4-bit zero per 128 weights, a 32-bit g_idx entry per input (shared by N outputs).
        const double bpw = report.at("bits_per_weight").get<double>();
        qInfo("g128: %.4f bits per weight over the quantized tensors", bpw);
        QVERIFY(bpw > 4.0 + 20.0 / 128 && bpw < 4.0 + 20.0 / 128 + 32.0 / 128);
    }

    // The reference engine reads the GPTQ tensors through its weight views: every row equals the RTN
    // dequantization of the original weight, bit for bit; the PLE projections stay bf16 (published default).
    void engineReadsGptq() {
        const Checkpoint oc = Checkpoint::open(bundledModelDir()), qc = Checkpoint::open(outputs_[128]);
        QVERIFY(qc.hasQuantizedWeights());
        QCOMPARE(makeInventory(qc).total.params, makeInventory(oc).total.params);  // 8 weights per qweight word
        const ReferenceModel om(oc, {}), qm(qc, {});
        int compared = 0;
        for (std::size_t l = 0; l < om.layers().size(); ++l) {
            const auto& o = om.layers()[l];
            const auto& q = qm.layers()[l];
            QCOMPARE(int(q.pleGate.format), int(WeightFormat::Dense));
            QCOMPARE(int(q.pleProj.format), int(WeightFormat::Dense));
            for (auto [ow, qw] : {std::pair{&o.q, &q.q}, {&o.k, &q.k}, {&o.v, &q.v}, {&o.o, &q.o}, {&o.gate, &q.gate}, {&o.up, &q.up},
                                  {&o.down, &q.down}}) {
                if (ow->empty()) continue;
                QCOMPARE(int(qw->format), int(WeightFormat::GptqInt));
                std::vector<float> w(static_cast<std::size_t>(ow->numel()));
                for (std::int64_t r = 0; r < ow->rows; ++r) ow->row(r, &w[std::size_t(r * ow->cols)]);
                const IntTensor t = quantizeIntRtn(w, ow->rows, ow->cols, {128, true});
                std::vector<float> expected(static_cast<std::size_t>(ow->cols)), got(expected.size());
                for (std::int64_t r = 0; r < ow->rows; ++r) {
                    dequantizeIntRow(t, r, expected.data());
                    qw->row(r, got.data());
                    if (got != expected) QFAIL(qPrintable(QString::fromStdString(qw->name) + " row " + QString::number(r)));
                }
                ++compared;
            }
        }
        QCOMPARE(compared, 38);
    }

    // An independent dequantizer (tests/peers/gptq_dequant.mjs: Node's Buffer and the AutoGPTQ/GPTQModel
    // unpacking convention, no Whittle code) reads the same weights from the files as Whittle's weight views.
    void independentDequantizer() { checkIndependentDequantizer(outputs_[128]); }

    // Quality against the original, eval over 2,048 held-out tokens (windows of 256): smaller groups lose less.
    // The README's table, figure by figure.
    void qualityOrder() {
        struct Row {
            int group;
            double bpw, ppl, kld, p99, top1;
        };
        const Row readme[] = {{64, 4.38, 176.54, 0.00113, 0.0060, 0.9683},
                              {128, 4.22, 176.26, 0.00120, 0.0079, 0.9653},
                              {0, 4.12, 177.46, 0.00164, 0.0096, 0.9614}};
        auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); };
        for (const Row& row : readme) {
            const int g = row.group;
            evals_[g] = evalHeldout(outputs_[g], true);
            const double bpw = readJsonFile(outputs_[g] / "whittle.json").at("quantization").at("bits_per_weight").get<double>();
            qInfo("RTN %s: %.3f bpw, ppl %.2f, KLD mean %.5f, p99 %.4f, top-1 %.2f %%", g ? qPrintable(QString("g%1").arg(g)) : "per channel",
                  bpw, evals_[g].ppl, *evals_[g].kldMean, *evals_[g].kldP99, 100.0 * *evals_[g].top1);
            QVERIFY(std::fabs(bpw - row.bpw) <= 0.01);
            QVERIFY(near(evals_[g].ppl, row.ppl, 0.01));
            QVERIFY(near(*evals_[g].kldMean, row.kld, 0.01));
            QVERIFY(near(*evals_[g].kldP99, row.p99, 0.02));  // printed with 2 significant digits
            QVERIFY(std::fabs(*evals_[g].top1 - row.top1) <= 0.001);
        }
        const EvalReport original = evalHeldout(bundledModelDir(), false);  // the original's own perplexity, same windows
        qInfo("original bf16: ppl %.2f", original.ppl);
        QVERIFY(near(original.ppl, 176.87, 0.001));
        QVERIFY(*evals_[64].kldMean < *evals_[128].kldMean);
        QVERIFY(*evals_[128].kldMean < *evals_[0].kldMean);
        QVERIFY(*evals_[128].kldMean > 0);
        QVERIFY(*evals_[128].top1 > 0.8);
    }

    // GPTQ g128 over 16 calibration windows of 256 tokens, with and without act-order, against RTN g128 on
    // the same eval: GPTQ must lose less, act-order no more than 5 % more than without. The README's rows.
    void gptqQuality() {
        const fs::path plain = quantizeGptq(false), act = quantizeGptq(true);
        const EvalReport rtn = evalHeldout(outputs_[128], true), g = evalHeldout(plain, true), a = evalHeldout(act, true);
        struct Row {
            const char* name;
            fs::path dir;
            const EvalReport& r;
            double ppl, kld, p99, top1;
        };
        const Row rows[] = {{"GPTQ g128", plain, g, 176.43, 0.000325, 0.0023, 0.9814}, {"GPTQ g128 act-order", act, a, 176.75, 0.000224, 0.0017, 0.9888}};
        auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); };
        for (const Row& row : rows) {
            const Json rep = readJsonFile(row.dir / "whittle.json").at("quantization");
            const double bpw = rep.at("bits_per_weight").get<double>();
            qInfo("%s: %.3f bpw, ppl %.2f, KLD mean %.6f, p99 %.4f, top-1 %.2f %%; GPTQ %.1f s", row.name, bpw, row.r.ppl, *row.r.kldMean,
                  *row.r.kldP99, 100.0 * *row.r.top1, rep.at("gptq_seconds").get<double>());
            QVERIFY(std::fabs(bpw - 4.22) <= 0.01);
            QVERIFY(near(row.r.ppl, row.ppl, 0.01));
            QVERIFY(near(*row.r.kldMean, row.kld, 0.02));
            QVERIFY(near(*row.r.kldP99, row.p99, 0.03));
            QVERIFY(std::fabs(*row.r.top1 - row.top1) <= 0.001);
            // The calibration that was used, and one record per quantized tensor.
            QCOMPARE(rep.at("calibration_windows").get<int>(), 16);
            QCOMPARE(rep.at("calibration_tokens").get<int>(), 16 * 256);
            QCOMPARE(rep.at("gptq_tensors").size(), std::size_t(38));
            for (const Json& t : rep.at("gptq_tensors")) {
                QCOMPARE(t.at("damp").get<double>(), 0.01);
                QCOMPARE(t.at("dead_inputs").get<int>(), 0);
            }
        }
        qInfo("RTN g128 on the same eval: KLD mean %.6f", *rtn.kldMean);
        QVERIFY(*g.kldMean < *rtn.kldMean);
        QVERIFY(*a.kldMean <= 1.05 * *g.kldMean);
        // Act-order with static groups keeps g_idx = k / g: the desc_act=false layout, flagged static_groups.
        const Json qc = readJsonFile(act / "config.json").at("quantization_config");
        QCOMPARE(qc.at("desc_act").get<bool>(), false);
        QCOMPARE(qc.at("static_groups").get<bool>(), true);
        QCOMPARE(qc.at("damp_percent").get<double>(), 0.01);
        QCOMPARE(qc.at("meta").at("method").get<std::string>(), std::string("gptq"));
        QCOMPARE(readJsonFile(plain / "quantize_config.json").at("static_groups").get<bool>(), false);
        checkIndependentDequantizer(act);
    }

    // Cancel during GPTQ: CancelledError, and nothing is left next to the destination.
    void gptqCancel() {
        struct CancelOnGptq : Progress {
            CancelToken& token;
            explicit CancelOnGptq(CancelToken& t) : token(t) {}
            void report(const ProgressReport& r) override {
                if (r.stage == "GPTQ" && r.fraction > 0) token.cancel();
            }
        };
        QTemporaryDir parent;
        CancelToken cancel;
        CancelOnGptq progress(cancel);
        Recipe r;
        r.quantization = QuantizeRecipe{};
        r.quantization->method = "gptq";
        r.quantization->calibration.samples = 2;
        r.quantization->calibration.length = 64;
        QVERIFY_THROWS_EXCEPTION(CancelledError, quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, tempPath(parent, "out"), false,
                                                                    progress, cancel));
        QVERIFY(cancel.cancelled());
        QVERIFY(fs::is_empty(tempPath(parent)));
    }

    // The GPTQ flags: a small run's report through --json, and refusals naming the field or file.
    void gptqCli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        CliResult r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "gptq-cli").string()), "--method", "gptq", "--act-order",
                              "--calib-samples", "2", "--calib-length", "64", "--json"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        const Json rep = parseJson(r.out.toStdString(), "quantize --json");
        QCOMPARE(rep.at("calibration_windows").get<int>(), 2);
        QCOMPARE(rep.at("calibration_tokens").get<int>(), 128);
        QCOMPARE(readJsonFile(tempPath(dir_, "gptq-cli") / "whittle.json").at("recipe").at("quantization").at("act_order").get<bool>(), true);
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "bad1").string()), "--act-order"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("quantization.act_order") && r.err.contains("gptq"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "bad2").string()), "--method", "gptq", "--damp", "2"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("quantization.damp"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "bad3").string()), "--method", "gptq", "--calib",
                    QString::fromStdString(tempPath(dir_, "missing.txt").string())});
        QVERIFY(r.exitCode != 0);
        QVERIFY2(r.err.contains("missing.txt"), qPrintable(r.err));
        for (const char* name : {"bad1", "bad2", "bad3"}) QVERIFY(!fs::exists(tempPath(dir_, name)));
        // A recipe file may name a GGUF format: the CLI writes the GPTQ codes, then repacks them.
        writeBytes(tempPath(dir_, "gguf-recipe.json"),
                   R"({"whittle_recipe": 1, "quantization": {"method": "gptq", "format": "gguf-q4_0", "calibration": {"samples": 2, "length": 64}}})");
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "from-recipe.gguf").string()), "--recipe",
                    QString::fromStdString(tempPath(dir_, "gguf-recipe.json").string())});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("38 quantized tensors repacked into GGUF blocks exactly"), qPrintable(r.out));
        QVERIFY(GgufFile(tempPath(dir_, "from-recipe.gguf")).find("blk.0.attn_q.weight")->ggmlType == GgmlType::Q4_0);
        Recipe direct;
        direct.quantization = parseQuantizeRecipe(Json{{"method", "gptq"}, {"format", "gguf-q4_0"}}, "test");
        NullProgress np;
        WHITTLE_EXPECT_ERROR(quantizeCheckpoint(Checkpoint::open(bundledModelDir()), direct, tempPath(dir_, "direct"), false, np, CancelToken{}),
                             UsageError, "gguf-q4_0", "GGUF exporter");
    }

    // NVFP4 in both layouts from one set of codes: the config files each tool reads; every quantized tensor's
    // bytes equal the codec's (core/quant/nvfp4.h, hand-checked in tst_nvfp4) with one second-level scale per
    // fused group (q/k/v, gate/up) from the group's largest |w|; compressed-tensors' tensors are ModelOpt's
    // bytes with the reciprocal scale; the engine reads both; quality against RTN on the same eval.
    void nvfp4() {
        const fs::path mo = tempPath(dir_, "nvfp4-modelopt"), ct = tempPath(dir_, "nvfp4-ct"), g32 = tempPath(dir_, "g32");
        for (const auto& [out, format] : {std::pair{mo, "nvfp4-modelopt"}, {ct, "nvfp4-ct"}}) {
            Recipe r;
            r.quantization = parseQuantizeRecipe(Json{{"method", "nvfp4"}, {"format", format}}, "test");
            NullProgress p;
            quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, out, false, p, CancelToken{});
        }
        outputs_[32] = g32;
        {
            Recipe r;
            r.quantization = QuantizeRecipe{};
            r.quantization->groupSize = 32;
            NullProgress p;
            quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, g32, false, p, CancelToken{});
        }

        // Config files: ModelOpt's hf_quant_config.json (the keys vLLM requires) and config.json; compressed-tensors' config.json.
        const Json hq = readJsonFile(mo / "hf_quant_config.json").at("quantization");
        QCOMPARE(hq.at("quant_algo").get<std::string>(), std::string("W4A16_NVFP4"));
        QCOMPARE(hq.at("group_size").get<int>(), 16);
        QVERIFY(hq.at("kv_cache_quant_algo").is_null());
        const auto excluded = hq.at("exclude_modules").get<std::vector<std::string>>();
        for (const char* m : {"lm_head", "model.language_model.layers.0.per_layer_input_gate", "model.language_model.per_layer_model_projection"})
            QVERIFY2(std::find(excluded.begin(), excluded.end(), m) != excluded.end(), m);
        QVERIFY(std::find(excluded.begin(), excluded.end(), "model.language_model.layers.0.self_attn.q_proj") == excluded.end());
        const Json moCfg = readJsonFile(mo / "config.json").at("quantization_config");
        QCOMPARE(moCfg.at("quant_method").get<std::string>(), std::string("modelopt"));
        QCOMPARE(moCfg.at("quant_algo").get<std::string>(), std::string("W4A16_NVFP4"));
        QCOMPARE(moCfg.at("ignore").get<std::vector<std::string>>(), excluded);
        QVERIFY(!moCfg.at("config_groups").at("group_0").contains("input_activations"));
        const Json ctCfg = readJsonFile(ct / "config.json").at("quantization_config");
        QCOMPARE(ctCfg.at("quant_method").get<std::string>(), std::string("compressed-tensors"));
        QCOMPARE(ctCfg.at("format").get<std::string>(), std::string("nvfp4-pack-quantized"));
        const Json& wq = ctCfg.at("config_groups").at("group_0").at("weights");
        QCOMPARE(wq.at("strategy").get<std::string>(), std::string("tensor_group"));
        QCOMPARE(wq.at("group_size").get<int>(), 16);
        QCOMPARE(wq.at("type").get<std::string>(), std::string("float"));
        for (const char* f : {"quantize_config.json", "hf_quant_config.json"}) QVERIFY(!fs::exists(ct / f));
        QVERIFY(!fs::exists(mo / "quantize_config.json"));

        // Tensors, bytes and scales.
        const Checkpoint oc = Checkpoint::open(bundledModelDir()), mc = Checkpoint::open(mo), cc = Checkpoint::open(ct);
        const ReferenceModel om(oc, {}), mm(mc, {}), cm(cc, {});
        auto bytes = [](const Checkpoint& c, const std::string& name) {
            const TensorStore::Entry* e = c.store().find(name);
            if (!e) throw Error({}, name, "missing");
            const TensorView v = e->file->view(*e->info);
            return std::pair{std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(v.data()),
                                                       reinterpret_cast<const std::uint8_t*>(v.data()) + e->info->nbytes),
                             e->info->shape};
        };
        auto scalar = [&](const Checkpoint& c, const std::string& name) {
            const auto b = bytes(c, name).first;
            float f;
            std::memcpy(&f, b.data(), 4);
            return f;
        };
        int checked = 0;
        for (const ExpectedTensor& e : oc.table()) {
            if (!e.linear || !e.read || !quantizes(QuantizeRecipe{}, e)) continue;
            const Nvfp4Names m = nvfp4Names(e, Nvfp4Layout::ModelOpt), c = nvfp4Names(e, Nvfp4Layout::CompressedTensors);
            const std::int64_t N = e.shape[0], K = e.shape[1];
            // The fused group's amax, from the original weights as the engine reads them.
            float amax = 0;
            for (const ExpectedTensor& f : oc.table())
                if (f.linear && f.read && f.layer == e.layer && linearSite(f.role) == linearSite(e.role)) {
                    const WeightView& v = om.linearWeight(f.role, f.layer);
                    std::vector<float> row(static_cast<std::size_t>(v.cols));
                    for (std::int64_t r = 0; r < v.rows; ++r) {
                        v.row(r, row.data());
                        for (float x : row) amax = std::max(amax, std::fabs(x));
                    }
                }
            const WeightView& ov = om.linearWeight(e.role, e.layer);
            std::vector<float> w(static_cast<std::size_t>(ov.numel()));
            for (std::int64_t r = 0; r < N; ++r) ov.row(r, &w[std::size_t(r * K)]);
            const Nvfp4Tensor want = quantizeNvfp4(w, N, K, e.name, nullptr, amax / (6.0f * 448.0f));
            const auto [packed, packedShape] = bytes(mc, m.packed);
            QCOMPARE(packedShape, (std::vector<std::int64_t>{N, K / 2}));
            QVERIFY2(packed == packNvfp4(want), e.name.c_str());
            QVERIFY(bytes(mc, m.scale).first == want.blockScales);
            QCOMPARE(bytes(mc, m.globalScale).second, std::vector<std::int64_t>{});  // 0-d, as ModelOpt's .squeeze() leaves it
            QCOMPARE(scalar(mc, m.globalScale), want.globalScale);
            QVERIFY(bytes(cc, c.packed).first == packed);
            QVERIFY(bytes(cc, c.scale).first == want.blockScales);
            QCOMPARE(bytes(cc, c.globalScale).second, std::vector<std::int64_t>{1});
            QCOMPARE(scalar(cc, c.globalScale), 1.0f / want.globalScale);
            // The engine's rows: ModelOpt's exactly the codec's; compressed-tensors' within one rounding of the reciprocal.
            std::vector<float> got(static_cast<std::size_t>(K)), exp(got.size()), viaCt(got.size());
            for (std::int64_t r = 0; r < N; r += 7) {
                dequantizeNvfp4Row(want, r, exp.data());
                mm.linearWeight(e.role, e.layer).row(r, got.data());
                cm.linearWeight(e.role, e.layer).row(r, viaCt.data());
                QVERIFY(got == exp);
                for (std::int64_t k = 0; k < K; ++k) QVERIFY(std::fabs(viaCt[std::size_t(k)] - exp[std::size_t(k)]) <= 1e-6f * std::fabs(exp[std::size_t(k)]));
            }
            ++checked;
        }
        QCOMPARE(checked, 38);
        // One second-level scale per fused group.
        const ExpectedTensor* q0 = nullptr;
        for (const ExpectedTensor& e : oc.table())
            if (e.role == TensorRole::QProj && e.layer == 0) q0 = &e;
        auto scale2 = [&](TensorRole role, int layer) {
            for (const ExpectedTensor& e : oc.table())
                if (e.role == role && e.layer == layer) return scalar(mc, nvfp4Names(e, Nvfp4Layout::ModelOpt).globalScale);
            return -1.0f;
        };
        QVERIFY(q0);
        QCOMPARE(scale2(TensorRole::KProj, 0), scale2(TensorRole::QProj, 0));
        QCOMPARE(scale2(TensorRole::VProj, 0), scale2(TensorRole::QProj, 0));
        QCOMPARE(scale2(TensorRole::UpProj, 2), scale2(TensorRole::GateProj, 2));
        QVERIFY(scale2(TensorRole::OProj, 0) != scale2(TensorRole::QProj, 0));
        QCOMPARE(makeInventory(mc).total.params, makeInventory(oc).total.params);  // two codes a byte
        QCOMPARE(makeInventory(cc).total.params, makeInventory(oc).total.params);
        const double bpw = readJsonFile(mo / "whittle.json").at("quantization").at("bits_per_weight").get<double>();
        QVERIFY(bpw > 4.5 && bpw < 4.501);  // 4-bit codes, an 8-bit scale per 16, one f32 per tensor

        // Quality: NVFP4 between RTN g32 and per channel, within the issue's bound; the README's row.
        const EvalReport n = evalHeldout(mo, true), nc = evalHeldout(ct, true), r32 = evalHeldout(g32, true), r0 = evalHeldout(outputs_[0], true);
        qInfo("NVFP4: %.3f bpw, ppl %.2f, KLD mean %.6f, p99 %.4f, top-1 %.2f %%; compressed-tensors KLD %.6f; RTN g32 %.6f (ppl %.2f, p99 %.4f, "
              "top-1 %.2f %%), per channel %.6f",
              bpw, n.ppl, *n.kldMean, *n.kldP99, 100 * *n.top1, *nc.kldMean, *r32.kldMean, r32.ppl, *r32.kldP99, 100 * *r32.top1, *r0.kldMean);
        auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); };
        QVERIFY(near(n.ppl, 176.38, 0.01));
        QVERIFY(near(*n.kldMean, 0.000984, 0.02));
        QVERIFY(near(*n.kldP99, 0.0062, 0.03));
        QVERIFY(std::fabs(*n.top1 - 0.9736) <= 0.001);
        QVERIFY(near(*r32.kldMean, 0.000821, 0.02));  // the README's RTN g32 row
        QVERIFY(near(r32.ppl, 176.68, 0.01));
        QVERIFY(near(*r32.kldP99, 0.0065, 0.03));
        QVERIFY(std::fabs(*r32.top1 - 0.9707) <= 0.001);
        QVERIFY(std::fabs(readJsonFile(g32 / "whittle.json").at("quantization").at("bits_per_weight").get<double>() - 4.69) <= 0.01);
        QVERIFY(near(*nc.kldMean, *n.kldMean, 1e-3));
        QVERIFY(*n.kldMean < *r0.kldMean);
        QVERIFY(*n.kldMean <= 2 * *r32.kldMean);
    }

    // Several formats from one command: one folder, one entry per format, each identical to its own run;
    // a format the method cannot take is refused before anything is written.
    void severalFormats() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const fs::path out = tempPath(dir_, "formats");
        CliResult r = runCli({"quantize", model, QString::fromStdString(out.string()), "--format", "gptq,gguf-q4_0", "--json"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        const Json rep = parseJson(r.out.toStdString(), "quantize --json");
        QCOMPARE(rep.at("gptq").at("tensors_quantized").get<int>(), 38);
        QCOMPARE(rep.at("gguf-q4_0").at("weight_type").get<std::string>(), std::string("Q4_0"));
        QCOMPARE(readBytes(out / "gptq" / "model.safetensors"), readBytes(outputs_[128] / "model.safetensors"));
        QVERIFY(GgufFile(out / "model-q4_0.gguf").find("blk.0.attn_q.weight")->ggmlType == GgmlType::Q4_0);
        // NVFP4 implied by its formats: both safetensors layouts and the GGUF type.
        const fs::path nv = tempPath(dir_, "nv-formats");
        r = runCli({"quantize", model, QString::fromStdString(nv.string()), "--format", "nvfp4-modelopt,nvfp4-ct,gguf-nvfp4"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        for (const char* e : {"nvfp4-modelopt/hf_quant_config.json", "nvfp4-ct/config.json", "model-nvfp4.gguf"}) QVERIFY2(fs::exists(nv / e), e);
        QVERIFY(Checkpoint::open(nv / "nvfp4-ct").hasQuantizedWeights());
        // Refusals, nothing written.
        // GPTQ with a GGUF format: the GGUF repacks this run's own gptq entry.
        const fs::path both = tempPath(dir_, "gptq-both");
        r = runCli({"quantize", model, QString::fromStdString(both.string()), "--method", "gptq", "--calib-samples", "2", "--calib-length", "64",
                    "--format", "gguf-q4_0,gptq"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("38 quantized tensors repacked into GGUF blocks exactly"), qPrintable(r.out));
        {
            GgufExportOptions o;
            o.weightType = GgmlType::Q4_0;
            NullProgress np;
            exportGguf(Checkpoint::open(both / "gptq"), tempPath(dir_, "gptq-both-again.gguf"), o, np, CancelToken{});
            QCOMPARE(readBytes(both / "model-q4_0.gguf"), readBytes(tempPath(dir_, "gptq-both-again.gguf")));
        }
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "f1").string()), "--method", "gptq", "--format", "gptq,gguf-nvfp4"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("goes with --method nvfp4"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "f2").string()), "--format", "gptq,gptq"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("twice"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "f3").string()), "--format", "gguf-q4_0", "--group", "64"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("fix their own groups"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "f4").string()), "--format", "gguf-q4_0"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains(".gguf"), qPrintable(r.err));
        for (const char* name : {"f1", "f2", "f3", "f4"}) QVERIFY(!fs::exists(tempPath(dir_, name)));
        for (const auto& e : fs::directory_iterator(tempPath(dir_))) QVERIFY2(e.path().filename().string().find(".partial") == std::string::npos, e.path().c_str());
    }

    // The CLI with flags and with a recipe file writes the same tensors; refusals name the problem.
    // --format hf: the quantized weights dequantized into the input's own tensors and dtype. Every quantized
    // weight equals the packed output's engine row rounded to bf16 (RTN g128 → GPTQ v1; NVFP4 → ModelOpt); every
    // other tensor and config.json are the input's bytes; no quantization config; KLD as the packed output's.
    void dequantizedHf() {
        const Checkpoint oc = Checkpoint::open(bundledModelDir());
        NullProgress p;
        auto run = [&](const char* method, const char* format, const char* name) {
            Recipe r;
            r.quantization = parseQuantizeRecipe(Json{{"method", method}, {"format", format}}, "test");
            const fs::path out = tempPath(dir_, name);
            quantizeCheckpoint(oc, r, out, false, p, CancelToken{});
            return out;
        };
        const fs::path intHf = run("rtn", "hf", "rtn-hf"), fpHf = run("nvfp4", "hf", "nvfp4-hf"), fpPacked = run("nvfp4", "nvfp4-modelopt", "nvfp4-mo");
        for (const auto& [hf, packed] : {std::pair{intHf, outputs_[128]}, {fpHf, fpPacked}}) {
            QCOMPARE(readBytes(hf / "config.json"), readBytes(bundledModelDir() / "config.json"));
            for (const char* f : {"quantize_config.json", "hf_quant_config.json"}) QVERIFY(!fs::exists(hf / f));
            const Json rep = readJsonFile(hf / "whittle.json").at("quantization");
            QCOMPARE(rep.at("dequantized").get<bool>(), true);
            QCOMPARE(rep.at("bits_per_weight").get<double>(), readJsonFile(packed / "whittle.json").at("quantization").at("bits_per_weight").get<double>());
            const Checkpoint hc = Checkpoint::open(hf), pc = Checkpoint::open(packed);
            QVERIFY(!hc.hasQuantizedWeights());
            const ReferenceModel pm(pc, {});
            std::size_t dequantized = 0, same = 0;
            for (const auto& t : hc.tensors()) {
                const TensorInfo& info = *t.entry->info;
                const TensorStore::Entry* o = oc.store().find(info.name);
                QVERIFY2(o && o->info->dtype == info.dtype && o->info->shape == info.shape, info.name.c_str());
                const TensorView hv = t.entry->file->view(info), ov = o->file->view(*o->info);
                if (!(t.expected && quantizes(QuantizeRecipe{}, *t.expected))) {
                    QVERIFY2(std::memcmp(hv.data(), ov.data(), info.nbytes) == 0, info.name.c_str());
                    ++same;
                    continue;
                }
                QCOMPARE(int(info.dtype), int(DType::BF16));
                const WeightView& v = pm.linearWeight(t.expected->role, t.expected->layer);
                QVERIFY(v.format != WeightFormat::Dense);
                std::vector<float> row(static_cast<std::size_t>(v.cols));
                for (std::int64_t r = 0; r < v.rows; ++r) {
                    v.row(r, row.data());
                    for (std::int64_t k = 0; k < v.cols; ++k) {
                        std::uint16_t got;
                        std::memcpy(&got, static_cast<const std::byte*>(hv.data()) + 2 * (r * v.cols + k), 2);
                        if (got != floatToBf16(row[std::size_t(k)])) QFAIL(qPrintable(QString("%1 [%2, %3]").arg(info.name.c_str()).arg(r).arg(k)));
                    }
                }
                ++dequantized;
            }
            QCOMPARE(dequantized, std::size_t(38));
            QVERIFY(same > 0);
            const EvalReport h = evalHeldout(hf, true), q = evalHeldout(packed, true);
            qInfo("%s: KLD %.6f dequantized to bf16, %.6f packed", hf.filename().c_str(), *h.kldMean, *q.kldMean);
            QVERIFY(std::fabs(*h.kldMean - *q.kldMean) <= 0.05 * *q.kldMean);
        }
    }

    // --embeddings q8_0|q4_0: the main embedding and the PLE table stored as rows of GGUF blocks. Every row the
    // engine reads equals ggml's codec applied to the original row; the sizes are 34/64 and 18/64 of bf16; the
    // parameters are unchanged; a GGUF export copies those rows as they are; the README's rows.
    void tokenTableRows() {
        const Checkpoint oc = Checkpoint::open(bundledModelDir());
        const ReferenceModel om(oc, {});
        NullProgress p;
        std::map<std::string, EvalReport> evals;
        for (const char* type : {"q8_0", "q4_0"}) {
            const fs::path out = tempPath(dir_, (std::string("tables-") + type).c_str());
            Recipe r;
            r.quantization = parseQuantizeRecipe(Json{{"method", "rtn"}, {"embeddings", type}}, "test");
            const QuantizeReport rep = quantizeCheckpoint(oc, r, out, false, p, CancelToken{});
            QCOMPARE(rep.tablesAsRows, 2);  // the head is tied: the embedding serves it
            const bool q8 = std::string(type) == "q8_0";
            QCOMPARE(rep.tableBytesAfter * 64, rep.tableBytesBefore * (q8 ? 34 : 18));
            const Checkpoint qc = Checkpoint::open(out);
            QCOMPARE(makeInventory(qc).total.params, makeInventory(oc).total.params);
            const ReferenceModel qm(qc, {});
            for (auto [o, q] : {std::pair{&om.embedding(), &qm.embedding()}, {&om.pleTable(), &qm.pleTable()}}) {
                QCOMPARE(int(q->format), int(q8 ? WeightFormat::GgufQ8_0 : WeightFormat::GgufQ4_0));
                std::vector<float> row(static_cast<std::size_t>(o->cols)), got(row.size()), want(row.size());
                std::vector<std::uint8_t> blocks(q8 ? q8_0RowBytes(o->cols) : q4_0RowBytes(o->cols));
                for (std::int64_t n = 0; n < o->rows; ++n) {
                    o->row(n, row.data());
                    q->row(n, got.data());
                    if (q8) {
                        quantizeRowQ8_0(row, blocks.data(), o->name);
                        dequantizeRowQ8_0(reinterpret_cast<const std::byte*>(blocks.data()), o->cols, want.data());
                    } else {
                        quantizeRowQ4_0(row, blocks.data(), o->name);
                        dequantizeRowQ4_0(reinterpret_cast<const std::byte*>(blocks.data()), o->cols, want.data());
                    }
                    if (got != want) QFAIL(qPrintable(QString("%1 row %2").arg(q->name.c_str()).arg(n)));
                }
            }
            evals[type] = evalHeldout(out, true);
            qInfo("RTN g128 + token tables %s: %.1f MB → %.1f MB tables, %.1f MB in all; ppl %.2f, KLD mean %.5f, top-1 %.2f %%", type,
                  double(rep.tableBytesBefore) / 1e6, double(rep.tableBytesAfter) / 1e6, double(rep.bytesWritten) / 1e6, evals[type].ppl,
                  *evals[type].kldMean, 100.0 * *evals[type].top1);
            // A GGUF export keeps those rows as they are.
            GgufExportOptions go;
            go.weightType = GgmlType::Q4_0;
            const fs::path gguf = tempPath(dir_, (std::string("tables-") + type + ".gguf").c_str());
            const GgufExportReport gr = exportGguf(qc, gguf, go, p, CancelToken{});
            QCOMPARE(gr.exactTensors, 40);
            const GgufFile g(gguf);
            const GgufTensorInfo* te = g.find(oc.expected(TensorRole::Embedding)->ggufName);
            QVERIFY(te && te->ggmlType == (q8 ? GgmlType::Q8_0 : GgmlType::Q4_0));
            const RowBlocksTable* rb = qc.rowBlocks(TensorRole::Embedding);
            std::string theirs(std::size_t(te->nbytes), '\0'), ours(std::size_t(rb->entry->info->nbytes), '\0');
            g.read(*te, theirs.data(), 0, te->nbytes);
            rb->entry->file->read(*rb->entry->info, ours.data(), 0, ours.size());
            QVERIFY(theirs == ours);
        }
        auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); };
        QVERIFY(near(*evals["q8_0"].kldMean, 0.00125, 0.02));
        QVERIFY(near(*evals["q4_0"].kldMean, 0.0105, 0.02));
        QVERIFY(std::fabs(*evals["q8_0"].top1 - 0.9644) <= 0.001);
        QVERIFY(std::fabs(*evals["q4_0"].top1 - 0.8823) <= 0.001);
        // Refusals: rows of blocks are not plain tensors; an unknown type is named; a quantized output is not requantized.
        WHITTLE_EXPECT_ERROR(parseQuantizeRecipe(Json{{"format", "hf"}, {"embeddings", "q8_0"}}, "r.json"), FormatError, "r.json", "embeddings", "hf");
        WHITTLE_EXPECT_ERROR(parseQuantizeRecipe(Json{{"embeddings", "q5_0"}}, "r.json"), FormatError, "quantization.embeddings");
        Recipe again;
        again.quantization = QuantizeRecipe{};
        WHITTLE_EXPECT_ERROR(quantizeCheckpoint(Checkpoint::open(tempPath(dir_, "tables-q8_0")), again, tempPath(dir_, "again"), false, p, CancelToken{}),
                             UsageError, "already quantized");
        Recipe prune;
        prune.vocabulary = VocabularyRecipe{};
        prune.vocabulary->preset = "english";
        WHITTLE_EXPECT_ERROR(pruneVocabulary(Checkpoint::open(tempPath(dir_, "tables-q8_0")), prune, tempPath(dir_, "pruned"), false, p, CancelToken{}),
                             UsageError, "embed_tokens.weight_q8_0", "prune the vocabulary of the original first");
        QVERIFY(!fs::exists(tempPath(dir_, "pruned")));
    }

    // The mixed bit budget at the bits of uniform INT4 g128 (16 × 256 calibration tokens, as GPTQ above): the
    // plan fits the target and mixes formats; the file's tensors and config follow the plan; the engine and the
    // independent dequantizer read the same weights; and it loses less than GPTQ g128 on the same eval (the
    // issue's must-hold). The README's row.
    void budget() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        Recipe r;
        r.quantization = QuantizeRecipe{};
        r.quantization->method = "budget";
        r.quantization->calibration.samples = 16;
        r.quantization->calibration.length = 256;
        NullProgress p;
        const BitBudgetPlan plan = planBitBudget(ck, *r.quantization, tempPath(dir_), p, CancelToken{});
        const double uniform = readJsonFile(outputs_[128] / "whittle.json").at("quantization").at("bits_per_weight").get<double>();
        qInfo("plan: %.4f bits per weight for a target of %.4f (uniform INT4 g128: %.4f); predicted error %.4e", plan.bitsPerWeight,
              plan.targetBitsPerWeight, uniform, plan.predictedError);
        QVERIFY(std::fabs(plan.targetBitsPerWeight - uniform) <= 1e-12);
        QVERIFY(plan.bitsPerWeight <= plan.targetBitsPerWeight);
        QCOMPARE(plan.tensors.size(), std::size_t(38));
        std::map<std::string, int> used;
        double uniformPredicted = 0;
        for (std::size_t t = 0; t < plan.tensors.size(); ++t) {
            ++used[formatName(plan.candidates[std::size_t(plan.choice[t])])];
            uniformPredicted += plan.tensors[t].error[3];  // budgetCandidates()[3] is INT4 g128
        }
        QCOMPARE(formatName(plan.candidates[3]), std::string("INT4 g128"));
        for (const auto& [f, n] : used) qInfo("  %d × %s", n, f.c_str());
        // The README's plan (the figures are the same on any thread count: every sum has a fixed order).
        QCOMPARE(used, (std::map<std::string, int>{{"INT3 g128 asym", 6}, {"INT4 g128", 12}, {"INT4 g64", 17}, {"INT8 g128", 3}}));
        QVERIFY(plan.predictedError < uniformPredicted);
        const std::string table = formatPlanTable(plan);
        QVERIFY(table.find(plan.tensors[0].name) != std::string::npos && table.find("predicted error") != std::string::npos);

        const fs::path out = tempPath(dir_, "budget");
        const QuantizeReport rep = quantizeCheckpoint(ck, r, out, false, p, CancelToken{}, &plan);
        QVERIFY(std::fabs(rep.bitsPerWeight - plan.bitsPerWeight) <= 1e-12);  // the planned bits are the written bits
        QCOMPARE(rep.gptqTensors.size(), std::size_t(38));
        const Json qc = readJsonFile(out / "config.json").at("quantization_config");
        QCOMPARE(qc, readJsonFile(out / "quantize_config.json"));
        QCOMPARE(qc.at("bits").get<int>(), 4);
        QCOMPARE(qc.at("group_size").get<int>(), 128);
        QCOMPARE(qc.at("meta").at("method").get<std::string>(), std::string("budget"));
        // Every tensor not in the default format has its GPTQModel override, and the file holds its width.
        const Checkpoint bc = Checkpoint::open(out);
        const std::map<std::string, IntOptions> formats = plan.formats();
        std::size_t overrides = 0;
        for (const ExpectedTensor& e : bc.table()) {
            const auto f = formats.find(e.name);
            if (f == formats.end()) continue;
            const GptqLinear* g = bc.gptq(e.role, e.layer);
            QVERIFY2(g, e.name.c_str());
            QCOMPARE(g->bits, f->second.bits);
            QCOMPARE(g->groups, (e.shape[1] + f->second.groupSize - 1) / f->second.groupSize);
            std::string re = "+:^";
            for (char ch : moduleName(e)) re += ch == '.' ? std::string("\\.") : std::string(1, ch);
            re += "$";
            const bool isDefault = f->second.bits == 4 && f->second.groupSize == 128 && f->second.symmetric && !f->second.residual;
            QCOMPARE(qc.at("dynamic").contains(re), !isDefault);
            if (isDefault) continue;
            ++overrides;
            QCOMPARE(qc.at("dynamic").at(re).at("bits").get<int>(), f->second.bits);
            QCOMPARE(qc.at("dynamic").at(re).at("group_size").get<int>(), f->second.groupSize);
            QCOMPARE(qc.at("dynamic").at(re).at("sym").get<bool>(), f->second.symmetric);
        }
        QCOMPARE(qc.at("dynamic").size(), overrides);
        checkIndependentDequantizer(out);

        const EvalReport b = evalHeldout(out, true), g = evalHeldout(quantizeGptq(false), true);
        qInfo("budget: %.3f bpw, ppl %.2f, KLD mean %.6f, p99 %.4f, top-1 %.2f %%; GPTQ g128 on the same eval: KLD mean %.6f", rep.bitsPerWeight,
              b.ppl, *b.kldMean, *b.kldP99, 100.0 * *b.top1, *g.kldMean);
        auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * std::fabs(want); };
        QVERIFY(std::fabs(rep.bitsPerWeight - 4.22) <= 0.01);
        QVERIFY(near(b.ppl, 176.65, 0.01));
        QVERIFY(near(*b.kldMean, 0.000244, 0.02));
        QVERIFY(near(*b.kldP99, 0.0015, 0.03));
        QVERIFY(std::fabs(*b.top1 - 0.9844) <= 0.001);
        QVERIFY(*b.kldMean < *g.kldMean);
    }

    // The budget's flags: --plan-only prints the table and writes nothing; a plan restricted to INT2 + binary
    // residual and INT4 g128 writes residual tensors, which the engine and the independent dequantizer read
    // alike; refusals name what is wrong.
    void budgetCli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const fs::path planned = tempPath(dir_, "planned");
        CliResult r = runCli({"quantize", model, QString::fromStdString(planned.string()), "--method", "budget", "--bpw", "3.5", "--calib-samples",
                              "4", "--calib-length", "128", "--plan-only"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("predicted error") && r.out.contains("target 3.500") && r.out.contains("down_proj"), qPrintable(r.out));
        QVERIFY(!fs::exists(planned));
        const fs::path out = tempPath(dir_, "residual");
        r = runCli({"quantize", model, QString::fromStdString(out.string()), "--method", "budget", "--candidates", "int2-g64-asym-res,int4-g128",
                    "--bpw", "3.9", "--calib-samples", "4", "--calib-length", "128", "--json"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.err.contains("INT2 g64 asym + residual"), qPrintable(r.err));  // the table, on stderr under --json
        const Json rep = parseJson(r.out.toStdString(), "quantize --json");
        const double bpw = rep.at("bits_per_weight").get<double>();
        QVERIFY(bpw <= 3.9 && bpw > 3.8);
        QCOMPARE(rep.at("bit_budget").at("tensors").size(), std::size_t(38));
        const Json meta = readJsonFile(out / "config.json").at("quantization_config").at("meta");
        const std::size_t residuals = meta.at("binary_residual_modules").size();
        qInfo("%zu of 38 tensors with a binary residual at %.3f bits per weight", residuals, bpw);
        QCOMPARE(residuals, std::size_t(16));  // the README's figure
        const Checkpoint rc = Checkpoint::open(out);
        std::size_t found = 0;
        for (const ExpectedTensor& e : rc.table())
            if (const GptqLinear* g = rc.gptq(e.role, e.layer); g && g->qresidual) {
                ++found;
                QCOMPARE(g->bits, 2);
            }
        QCOMPARE(found, residuals);
        checkIndependentDequantizer(out);
        const QStringList small{"--calib-samples", "2", "--calib-length", "64"};
        for (const QStringList& bad : {QStringList{"--method", "rtn", "--bpw", "4"}, QStringList{"--method", "budget", "--bpw", "1.5"} + small,
                                       QStringList{"--method", "budget", "--candidates", "int5-g128"} + small,
                                       QStringList{"--method", "budget", "--group", "64"} + small, QStringList{"--method", "gptq", "--plan-only"} + small}) {
            r = runCli(QStringList{"quantize", model, QString::fromStdString(tempPath(dir_, "bad-budget").string())} + bad);
            QVERIFY2(r.exitCode != 0, qPrintable(bad.join(' ')));
            QVERIFY2(r.err.contains("bpw") || r.err.contains("below the smallest") || r.err.contains("int5-g128") ||
                         r.err.contains("per tensor") || r.err.contains("plan-only"),
                     qPrintable(r.err));
            QVERIFY(!fs::exists(tempPath(dir_, "bad-budget")));
        }
        // A planned recipe (whittle-cli plan: the formats in quantization.formats) quantizes with exactly those
        // formats and measures nothing: the same files as the run that measured them.
        const fs::path plannedRecipe = tempPath(dir_, "planned-budget.json");
        r = runCli({"plan", model, QString::fromStdString(plannedRecipe.string()), "--quantize", "budget", "--calib-samples", "4", "--calib-length", "128"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        const fs::path measured = tempPath(dir_, "budget-measured"), fromPlan = tempPath(dir_, "budget-from-plan");
        r = runCli({"quantize", model, QString::fromStdString(measured.string()), "--method", "budget", "--calib-samples", "4", "--calib-length", "128"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(fromPlan.string()), "--recipe", QString::fromStdString(plannedRecipe.string()), "--json"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(!r.err.contains("predicted error"), qPrintable(r.err));  // no table: nothing was measured
        QVERIFY(!parseJson(r.out.toStdString(), "quantize --json").contains("bit_budget"));
        QCOMPARE(readBytes(fromPlan / "model.safetensors"), readBytes(measured / "model.safetensors"));
    }

    void cliAndRefusals() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        const fs::path viaFlags = tempPath(dir_, "flags"), viaRecipe = tempPath(dir_, "recipe");
        CliResult r = runCli({"quantize", model, QString::fromStdString(viaFlags.string()), "--group", "128"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        writeBytes(tempPath(dir_, "q.json"), R"({"whittle_recipe": 1, "quantization": {"method": "rtn", "group_size": 128}})");
        r = runCli({"quantize", model, QString::fromStdString(viaRecipe.string()), "--recipe",
                    QString::fromStdString(tempPath(dir_, "q.json").string())});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QCOMPARE(readBytes(viaFlags / "model.safetensors"), readBytes(viaRecipe / "model.safetensors"));
        QCOMPARE(readBytes(viaFlags / "model.safetensors"), readBytes(outputs_[128] / "model.safetensors"));

        r = runCli({"quantize", model, QString::fromStdString(viaFlags.string())});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("already exists") && r.err.contains("--force"), qPrintable(r.err));
        r = runCli({"quantize", QString::fromStdString(outputs_[128].string()), QString::fromStdString(tempPath(dir_, "twice").string())});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("already quantized"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "none").string()), "--exclude", "*"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("no tensor is left to quantize"), qPrintable(r.err));
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "bad").string()), "--method", "awq"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("quantization.method"), qPrintable(r.err));
        writeBytes(tempPath(dir_, "typo.json"), R"({"whittle_recipe": 1, "quantization": {"group": 64}})");
        r = runCli({"quantize", model, QString::fromStdString(tempPath(dir_, "typo").string()), "--recipe",
                    QString::fromStdString(tempPath(dir_, "typo.json").string())});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("unknown key 'quantization.group'") && r.err.contains("typo.json"), qPrintable(r.err));
        for (const char* name : {"twice", "none", "bad", "typo"}) QVERIFY(!fs::exists(tempPath(dir_, name)));
        // A GPTQ output exports to GGUF with its codes (tst_gguf_quant.codesFromQuantized checks the weights).
        r = runCli({"export", QString::fromStdString(outputs_[128].string()), QString::fromStdString(tempPath(dir_, "gptq.gguf").string()),
                    "--format", "gguf-q4_0"});
        QVERIFY2(r.exitCode == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("38 quantized tensors repacked into GGUF blocks exactly"), qPrintable(r.out));
    }
};

QTEST_APPLESS_MAIN(TestQuantize)
#include "tst_quantize.moc"
