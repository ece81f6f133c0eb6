// The Recipe page driven with Qt Test inside the real main window, on the bundled model and on a full-size
// E2B-shaped checkpoint (zero weights, sparse):
//   - the controls write the recipe the CLI reads (compared with the parser's own JSON); a loaded file shows in
//     the controls, keeps the keys no control owns, and saves back to the same recipe; a bad file changes nothing;
//   - every preset parses, shows in the controls and becomes "Custom" once a control changes;
//   - the live panel after each change equals `whittle-cli estimate --json` for the same recipe and runtime
//     (disk, device memory, host RAM, by part; the device's room and whether it fits); a runtime change, or a
//     recipe seen before, is there when the change returns (no worker thread: its stages are kept); each
//     part's row gives its exact bytes in its tooltip;
//   - the recipe form scrolls when the window is short;
//   - the spill warning: E2B with its PLE table in device memory at 128k does not fit a 4 GB GPU, and fits
//     one of 24 GB;
//   - the exclusion rules list the linears they keep; calibration files reach both calibrations; the vocabulary
//     can follow the Vocabulary page's selection;
//   - Calibrate plans FLAP's widths and the budget's formats on the worker into the recipe: the panel then says
//     exact and equals the CLI's estimate of the planned recipe; changing a section they depend on drops them;
//     a cancelled calibration changes nothing and leaves no scratch folder;
//   - Run queues the recipe on the Run page (which the window then shows);
//   - QAbstractItemModelTester watches the parts model through the changes.
#include <QAbstractItemModelTester>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QLocale>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <functional>

#include <nlohmann/json.hpp>

#include "app/gui/estimate_panel.h"
#include "app/gui/main_window.h"
#include "app/gui/memory_bar.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/recipe_page.h"
#include "app/gui/run_page.h"
#include "app/gui/vocabulary_page.h"
#include "app/gui/worker_bridge.h"
#include "core/io/json_file.h"
#include "core/model/inventory.h"
#include "core/model/tensor_table.h"
#include "core/recipes/recipe.h"
#include "core/recipes/quantize.h"
#include "core/recipes/recipe_presets.h"
#include "gui_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestRecipePage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    MainWindow* w_ = nullptr;
    RecipePage* page_ = nullptr;
    RecipeEditor* ed_ = nullptr;
    EstimatePanel* panel_ = nullptr;
    QAbstractItemModelTester* tester_ = nullptr;

    fs::path out(const char* name) const { return fs::path(dir_.path().toStdString()) / name; }

    // Waits for a recipe's stages computed on the worker thread.
    void settle() { QTRY_VERIFY_WITH_TIMEOUT(!panel_->pending(), 60000); }

    void openModel(const QString& dir) {
        QSignalSpy loaded(w_, &MainWindow::checkpointLoaded);
        w_->openCheckpoint(dir);
        QVERIFY(loaded.wait(60000));
    }

    // The panel's figures equal `whittle-cli estimate --json` for the editor's recipe and the panel's runtime.
    void compareWithCli(const QString& model) {
        QVERIFY2(panel_->current().has_value(), qPrintable(panel_->warningLabel()->text()));
        const fs::path recipeFile = out("compare.json");
        fs::remove(recipeFile);
        writeJsonFile(recipeFile, toJson(ed_->recipe()));
        const RuntimeOptions r = panel_->runtime();
        QStringList args{"estimate", model, "--recipe", QString::fromStdString(recipeFile.string()), "--ctx", QString::number(r.context),
                         "--chunk", QString::number(r.prefillChunk), "--ple", r.pleInVram ? "gpu" : "host", "--json"};
        const EstimatePanel::Target* t = panel_->target();
        if (t && t->deviceIndex >= 0) args << "--device" << QString::number(t->deviceIndex);
        const CliResult cli = runCli(args);
        QVERIFY2(cli.exitCode == 0, qPrintable(cli.err));
        const Json j = Json::parse(cli.out.toStdString());
        const Estimate& e = *panel_->current();
        const OutputEstimate& o = e.output;
        QCOMPARE(j["disk_bytes"]["total"].get<std::uint64_t>(), o.diskBytes());
        QCOMPARE(j["input"]["disk_bytes"]["total"].get<std::uint64_t>(), e.input.diskBytes());
        QCOMPARE(j["vram_bytes"]["total"].get<std::uint64_t>(), o.memory.deviceTotal());
        QCOMPARE(j["vram_bytes"]["weights"].get<std::uint64_t>(), o.memory.weights);
        QCOMPARE(j["vram_bytes"]["kv_cache"].get<std::uint64_t>(), o.memory.kv.total());
        QCOMPARE(j["vram_bytes"]["ple_table"].get<std::uint64_t>(), o.memory.pleTable);
        QCOMPARE(j["host_bytes"]["total"].get<std::uint64_t>(), o.memory.hostTables);
        for (const auto& [part, totals] : o.parts) QCOMPARE(j["parts"][partKey(part)]["bytes"].get<std::uint64_t>(), totals.bytes);
        QCOMPARE(j["exact"].get<bool>(), e.exact);
        // What the page shows is those figures.
        QVERIFY2(panel_->diskLabel()->text().contains(QString::fromStdString(formatBytes(o.diskBytes()))), qPrintable(panel_->diskLabel()->text()));
        QVERIFY2(panel_->memoryLabel()->text().contains(QString::fromStdString(formatBytes(o.memory.deviceTotal()))),
                 qPrintable(panel_->memoryLabel()->text()));
        QVERIFY2(panel_->hostLabel()->text().contains(QString::fromStdString(formatBytes(o.memory.hostTables))), qPrintable(panel_->hostLabel()->text()));
        QCOMPARE(panel_->memoryBar()->total(), o.memory.deviceTotal());
        // Each part's row: its tooltip gives the exact byte counts before and after.
        const QAbstractItemModel* rows = panel_->partsModel();
        int row = 0;
        for (Part p : kAllParts) {
            const std::uint64_t before = e.input.parts.at(p).bytes, after = o.parts.at(p).bytes;
            if (!before && !after) continue;
            QVERIFY(row < rows->rowCount());
            QCOMPARE(rows->index(row++, 0).data(Qt::ToolTipRole).toString(),
                     QString("%1: %2 \u2192 %3 bytes").arg(partName(p), QLocale().toString(qulonglong(before)), QLocale().toString(qulonglong(after))));
        }
        QCOMPARE(row, rows->rowCount());
        if (t && t->deviceIndex >= 0) {
            QCOMPARE(j["device"]["available_bytes"].get<std::uint64_t>(), t->room);
            const bool fits = j["device"]["fits"].get<bool>();
            QCOMPARE(panel_->memoryBar()->spills(), !fits);
            QVERIFY2(panel_->warningLabel()->text().startsWith(fits ? "Fits" : "Does not fit"), qPrintable(panel_->warningLabel()->text()));
        }
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        w_ = new MainWindow;
        w_->show();
        page_ = w_->recipePage();
        ed_ = page_->editor();
        panel_ = page_->estimatePanel();
        tester_ = new QAbstractItemModelTester(panel_->partsModel(), QAbstractItemModelTester::FailureReportingMode::QtTest, this);
        openModel(QString::fromStdString(bundledModelDir().string()));
        w_->showPage(int(w_->pageNames().indexOf("Recipe")));
        QTRY_VERIFY_WITH_TIMEOUT(page_->devicesListed(), 30000);
        if (qEnvironmentVariableIsSet("CI")) QVERIFY2(panel_->deviceBox()->count() > 7, "CI has lavapipe: a Vulkan device is listed");
    }
    void cleanupTestCase() { delete w_; }

    // The controls write the same recipe the CLI flags and the parser make.
    void controlsWriteTheRecipe() {
        selectData(ed_->vocabularyBox(), "english");
        ed_->textOnlyBox()->setChecked(true);
        ed_->flapBox()->setChecked(true);
        ed_->flapRatioBox()->setValue(0.2);
        ed_->compensationBox()->setChecked(true);
        selectData(ed_->quantizeBox(), "gptq");
        selectData(ed_->groupBox(), 128);
        ed_->samplesBox()->setValue(4);
        ed_->lengthBox()->setValue(128);
        ed_->evaluateBox()->setChecked(true);
        ed_->evalTokensBox()->setValue(256);
        const Json expected{{"whittle_recipe", 1},
                            {"text_only", true},
                            {"vocabulary", {{"preset", "english"}}},
                            {"flap", {{"ratio", 0.2}, {"bias_compensation", true}, {"calibration", {{"samples", 4}, {"length", 128}}}}},
                            {"quantization", {{"method", "gptq"}, {"group_size", 128}, {"calibration", {{"samples", 4}, {"length", 128}}}}},
                            {"evaluation", {{"max_tokens", 256}}}};
        QCOMPARE(toJson(ed_->recipe()), toJson(parseRecipe(expected, "expected")));
        QVERIFY(ed_->groupBox()->isEnabled() && ed_->actOrderBox()->isEnabled() && !ed_->bpwBox()->isEnabled());
        ed_->actOrderBox()->setChecked(true);
        ed_->dampBox()->setValue(0.05);
        selectData(ed_->embeddingsBox(), "q4_0");
        QVERIFY(ed_->recipe().quantization->actOrder);
        QCOMPARE(ed_->recipe().quantization->damp, 0.05);
        QCOMPARE(ed_->recipe().quantization->embeddings, std::string("q4_0"));
        // Token tables as blocks cannot be written as plain tensors: the parser's reason is shown.
        selectData(ed_->formatBox(), "hf");
        QVERIFY_THROWS_EXCEPTION(FormatError, ed_->recipe());
        QVERIFY2(ed_->statusLabel()->text().contains("quantization.embeddings"), qPrintable(ed_->statusLabel()->text()));
        QVERIFY(!panel_->current());
        selectData(ed_->embeddingsBox(), "keep");
        QCOMPARE(ed_->recipe().quantization->format, std::string("hf"));
        ed_->ggufBox("gguf-q4_0")->setChecked(true);
        QCOMPARE(ed_->recipe().exports->formats, std::vector<std::string>{"gguf-q4_0"});
        ed_->ggufBox("gguf-q4_0")->setChecked(false);
        QVERIFY(!ed_->recipe().exports);
        selectData(ed_->quantizeBox(), "nvfp4");
        QVERIFY(!ed_->groupBox()->isEnabled() && !ed_->actOrderBox()->isEnabled());
        QCOMPARE(ed_->recipe().quantization->method, std::string("nvfp4"));
        QVERIFY(ed_->formatBox()->findData("nvfp4-ct") >= 0 && ed_->formatBox()->findData("gptq") < 0);
        selectData(ed_->quantizeBox(), "budget");
        QVERIFY(ed_->bpwBox()->isEnabled() && !ed_->groupBox()->isEnabled());
        ed_->bpwBox()->setValue(3.5);
        QCOMPARE(ed_->recipe().quantization->bpw, 3.5);
        // A suggested output next to the model, not an existing folder.
        QVERIFY(page_->outputEdit()->text().endsWith("-slim"));
    }

    // A loaded recipe file shows in the controls; keys no control owns survive control changes; Save writes the
    // same recipe back; a bad file changes nothing.
    void loadAndSave() {
        const Json file{{"whittle_recipe", 1},
                        {"vocabulary", {{"preset", "cjk"}}},
                        {"flap", {{"ratio", 0.3}, {"bias_compensation", false}, {"min_keep", 0.5}, {"calibration", {{"samples", 16}, {"length", 256}}}}},
                        {"quantization", {{"method", "rtn"}, {"group_size", 64}, {"exclude", {"*.mlp.down_proj.weight"}}}},
                        {"export", {"gguf-q4_0"}},
                        {"evaluation", {{"max_tokens", 1024}}}};
        const fs::path path = out("recipe.json");
        writeJsonFile(path, file);
        QVERIFY(ed_->loadRecipeFile(QString::fromStdString(path.string())));
        QCOMPARE(toJson(ed_->recipe()), toJson(parseRecipe(file, "f")));
        QCOMPARE(ed_->vocabularyBox()->currentData().toString(), QString("cjk"));
        QVERIFY(ed_->flapBox()->isChecked());
        QCOMPARE(ed_->flapRatioBox()->value(), 0.3);
        QVERIFY(!ed_->compensationBox()->isChecked());
        QCOMPARE(ed_->samplesBox()->value(), 16);
        QCOMPARE(ed_->quantizeBox()->currentData().toString(), QString("rtn"));
        QCOMPARE(ed_->groupBox()->currentData().toInt(), 64);
        QVERIFY(!ed_->textOnlyBox()->isChecked());
        QCOMPARE(ed_->evalTokensBox()->value(), 1024);
        QVERIFY(ed_->ggufBox("gguf-q4_0")->isChecked() && !ed_->ggufBox("gguf-nvfp4")->isChecked());
        // A control changes its key; the exclusion rules and min_keep (no control) stay.
        ed_->textOnlyBox()->setChecked(true);
        const Recipe changed = ed_->recipe();
        QVERIFY(changed.textOnly);
        QCOMPARE(changed.quantization->exclude, std::vector<std::string>{"*.mlp.down_proj.weight"});
        QCOMPARE(changed.flap->minKeep, 0.5);
        // Save, then load: the same recipe.
        const fs::path saved = out("saved.json");
        QVERIFY2(ed_->saveRecipeFile(QString::fromStdString(saved.string())), qPrintable(ed_->statusLabel()->text()));
        QCOMPARE(readJsonFile(saved), toJson(changed));
        ed_->applyPreset("fit-8gb");
        QVERIFY(ed_->loadRecipeFile(QString::fromStdString(saved.string())));
        QCOMPARE(toJson(ed_->recipe()), toJson(changed));
        // A bad file: the field is named and the editor keeps its recipe; saving a bad recipe writes nothing.
        const QString before = ed_->recipeEdit()->toPlainText();
        writeJsonFile(out("bad.json"), Json{{"whittle_recipe", 1}, {"flap", {{"ratoi", 0.2}}}});
        QVERIFY(!ed_->loadRecipeFile(QString::fromStdString(out("bad.json").string())));
        QVERIFY2(ed_->statusLabel()->text().contains("flap.ratoi"), qPrintable(ed_->statusLabel()->text()));
        QCOMPARE(ed_->recipeEdit()->toPlainText(), before);
        ed_->recipeEdit()->setPlainText("{ not json");
        QVERIFY(!ed_->saveRecipeFile(QString::fromStdString(out("never.json").string())));
        QVERIFY(!fs::exists(out("never.json")));
        QVERIFY(!panel_->current());
        QVERIFY2(panel_->memoryLabel()->text().contains("—"), qPrintable(panel_->memoryLabel()->text()));
    }

    // Every preset is a recipe the parser accepts; applying one shows it; a change by hand makes it Custom.
    void presets() {
        QCOMPARE(ed_->presetBox()->count(), int(recipePresets().size()) + 1);
        for (const RecipePreset& p : recipePresets()) {
            ed_->applyPreset(QString::fromStdString(p.id));
            QCOMPARE(toJson(ed_->recipe()), toJson(p.recipe));
            QCOMPARE(ed_->presetBox()->currentData().toString(), QString::fromStdString(p.id));
            settle();
            QVERIFY(panel_->current().has_value());
        }
        // Seen before: its stages are kept, so the figures are there at once.
        ed_->applyPreset("fit-8gb");
        QVERIFY(!panel_->pending() && panel_->current().has_value());
        ed_->evalTokensBox()->setValue(ed_->evalTokensBox()->value() + 64);
        QCOMPARE(ed_->presetBox()->currentIndex(), 0);
        const CliResult cli = runCli({"estimate", QString::fromStdString(bundledModelDir().string()), "--preset", "smallest-chat", "--json"});
        QVERIFY2(cli.exitCode == 0, qPrintable(cli.err));
        const CliResult unknown = runCli({"estimate", QString::fromStdString(bundledModelDir().string()), "--preset", "tiny"});
        QCOMPARE(unknown.exitCode, 2);
        QVERIFY2(unknown.err.contains("fit-8gb"), qPrintable(unknown.err));
    }

    // Each control moves the panel at once, to the CLI's figures for the same recipe and runtime.
    void panelMatchesTheCli() {
        const QString model = QString::fromStdString(bundledModelDir().string());
        ed_->setRecipe(Recipe{});
        settle();
        QVERIFY(panel_->current().has_value());
        compareWithCli(model);
        // Choose the listed Vulkan device (lavapipe in CI), so the CLI's --device room is compared too.
        for (int i = 1; i < panel_->deviceBox()->count(); ++i) {
            panel_->deviceBox()->setCurrentIndex(i);
            if (panel_->target()->deviceIndex >= 0) break;
        }
        const auto step = [&](const char* what, const std::function<void()>& change, bool runtime = false) {
            const Json before = panel_->current() ? toJson(*panel_->current()) : Json();
            change();
            if (runtime) QVERIFY2(!panel_->pending(), what);  // the recipe's stages are kept: recomputed before the change returns
            settle();
            QVERIFY2(panel_->current().has_value(), what);
            QVERIFY2(toJson(*panel_->current()) != before, what);
            compareWithCli(model);
            if (QTest::currentTestFailed()) qWarning("after: %s", what);
        };
        step("vocabulary english", [&] { selectData(ed_->vocabularyBox(), "english"); });
        step("text only", [&] { ed_->textOnlyBox()->setChecked(true); });
        step("INT4 RTN", [&] { selectData(ed_->quantizeBox(), "rtn"); });
        step("group 32", [&] { selectData(ed_->groupBox(), 32); });
        step("token tables Q4_0", [&] { selectData(ed_->embeddingsBox(), "q4_0"); });
        step("context 32k", [&] { panel_->contextSlider()->setValue(15); }, true);
        step("PLE on the device", [&] { selectData(panel_->pleBox(), "gpu"); }, true);
        step("prefill chunk 256", [&] { panel_->chunkBox()->setValue(256); }, true);
        step("NVFP4", [&] { selectData(ed_->quantizeBox(), "nvfp4"); });
        step("GPTQ", [&] { selectData(ed_->quantizeBox(), "gptq"); });
        step("FLAP 20 %", [&] { ed_->flapBox()->setChecked(true); });
        QVERIFY(!panel_->current()->exact && panel_->current()->low && panel_->current()->high);
        QVERIFY2(panel_->diskLabel()->text().contains("estimated"), qPrintable(panel_->diskLabel()->text()));
        step("bit budget 3.5", [&] {
            selectData(ed_->quantizeBox(), "budget");
            ed_->bpwBox()->setValue(3.5);
        });
        step("context 256", [&] { panel_->contextSlider()->setValue(8); }, true);
        qInfo("the last estimate took %.3f ms on the GUI thread", panel_->lastMilliseconds());
    }

    // E2B at full size (zero weights): with the PLE table in device memory at 128k positions it does not fit a
    // 4 GB GPU, and the warning says so; on a 24 GB GPU it fits. The figures equal the CLI's there too.
    void spillWarning() {
        const fs::path full = out("e2b-full");
        const CliResult made = runCli({"make-tiny", QString::fromStdString(full.string()), "--preset", "e2b-full", "--zeros"}, 240000);
        QVERIFY2(made.exitCode == 0, qPrintable(made.err));
        openModel(QString::fromStdString(full.string()));
        ed_->applyPreset("fit-8gb");
        settle();
        panel_->contextSlider()->setValue(panel_->contextSlider()->maximum());
        QCOMPARE(panel_->runtime().context, 131072);
        selectData(panel_->pleBox(), "gpu");
        auto pick = [&](const QString& name) {
            for (int i = 1; i < panel_->deviceBox()->count(); ++i)
                if (panel_->deviceBox()->itemText(i).startsWith(name)) return panel_->deviceBox()->setCurrentIndex(i);
            QFAIL(qPrintable(name));
        };
        pick("A 4 GB GPU");
        QVERIFY(panel_->memoryBar()->spills());
        QVERIFY2(panel_->warningLabel()->text().startsWith("Does not fit A 4 GB GPU"), qPrintable(panel_->warningLabel()->text()));
        compareWithCli(QString::fromStdString(full.string()));
        pick("A 24 GB GPU");
        QVERIFY(!panel_->memoryBar()->spills());
        QVERIFY2(panel_->warningLabel()->text().startsWith("Fits A 24 GB GPU"), qPrintable(panel_->warningLabel()->text()));
        qInfo("E2B (fit-8gb preset, 128k, PLE on device): %s of device memory; estimate took %.3f ms on the GUI thread",
              formatBytes(panel_->current()->output.memory.deviceTotal()).c_str(), panel_->lastMilliseconds());
        openModel(QString::fromStdString(bundledModelDir().string()));
    }

    // The recipe form scrolls when the window is too short for it, and is whole when it is tall enough.
    void formScrollsWhenShort() {
        auto* area = ed_->findChild<QScrollArea*>();
        QVERIFY(area);
        QVERIFY(area->widget()->isAncestorOf(ed_->excludedView()));
        const QSize size = w_->size();
        w_->resize(size.width(), w_->minimumSizeHint().height());
        QTRY_VERIFY(area->verticalScrollBar()->maximum() > 0);
        w_->resize(size.width(), 1000);
        QTRY_COMPARE(area->verticalScrollBar()->maximum(), 0);
        w_->resize(size);
    }

    // The exclusion rules show the linears they keep unquantized (the table's own list), and a rule typed in
    // becomes the recipe's and moves the estimate; calibration files go to FLAP's and GPTQ's calibration.
    void exclusionRulesAndCalibrationFiles() {
        ed_->setRecipe(parseRecipe(Json{{"whittle_recipe", 1}, {"quantization", {{"method", "rtn"}}}}, "r"));
        settle();
        const std::uint64_t before = panel_->current()->output.tensorBytes;
        const auto& table = w_->checkpoint()->table();
        const std::vector<std::string> byDefault = excludedLinears(QuantizeRecipe{}, table);
        QVERIFY(!byDefault.empty());
        QString shown = ed_->excludedView()->toPlainText();
        QVERIFY2(shown.startsWith(QString("%1 linear").arg(byDefault.size())), qPrintable(shown));
        for (const auto& n : byDefault) QVERIFY2(shown.contains(QString::fromStdString(n)), n.c_str());
        // The summary comes first: a role once with its layers, so the short box reads at a glance.
        const std::vector<std::string> summary = summarizeTensorNames(table, byDefault);
        QVERIFY(summary.size() < byDefault.size());
        QVERIFY2(shown.indexOf(QString::fromStdString(summary.back())) < shown.indexOf("By name:"), qPrintable(shown));
        for (const auto& line : summary) QVERIFY2(shown.contains(QString::fromStdString(line)), line.c_str());
        ed_->excludeEdit()->setText("*.mlp.down_proj.weight");
        QCOMPARE(ed_->recipe().quantization->exclude, std::vector<std::string>{"*.mlp.down_proj.weight"});
        QuantizeRecipe downOnly;
        downOnly.exclude = {"*.mlp.down_proj.weight"};
        const std::vector<std::string> down = excludedLinears(downOnly, table);
        QCOMPARE(int(down.size()), w_->checkpoint()->config().numLayers);
        shown = ed_->excludedView()->toPlainText();
        QVERIFY2(shown.startsWith(QString("%1 linear").arg(down.size())), qPrintable(shown));
        QVERIFY(!shown.contains("per_layer_input_gate"));
        const QString downLine = QString("*mlp.down_proj.weight in layers 0\u2013%1 (%2)")
                                     .arg(w_->checkpoint()->config().numLayers - 1)
                                     .arg(w_->checkpoint()->config().numLayers);
        QVERIFY2(shown.contains(downLine), qPrintable(shown));
        settle();
        QVERIFY(panel_->current()->output.tensorBytes > before);  // the down projections stay in 16 bits
        compareWithCli(QString::fromStdString(bundledModelDir().string()));
        // Calibration text for GPTQ and FLAP.
        selectData(ed_->quantizeBox(), "gptq");
        ed_->flapBox()->setChecked(true);
        ed_->calibrationFilesEdit()->setText("a.txt, b.txt");
        const Recipe r = ed_->recipe();
        QCOMPARE(r.quantization->calibration.files, (std::vector<std::string>{"a.txt", "b.txt"}));
        QCOMPARE(r.flap->calibration.files, (std::vector<std::string>{"a.txt", "b.txt"}));
        ed_->calibrationFilesEdit()->clear();
        QVERIFY(ed_->recipe().quantization->calibration.files.empty());
    }

    // The vocabulary can follow the Vocabulary page's selection: a preset chosen there, then a bucket ticked.
    void followsTheVocabularyPage() {
        VocabularyPage* vp = w_->vocabularyPage();
        QTRY_VERIFY_WITH_TIMEOUT(!vp->busy() && vp->data(), 60000);
        ed_->setRecipe(Recipe{});
        const int at = ed_->vocabularyBox()->findData("*vocabulary-page*");
        QVERIFY(at >= 0);
        ed_->vocabularyBox()->setCurrentIndex(at);
        vp->choosePreset("cjk");
        QTRY_VERIFY_WITH_TIMEOUT(!vp->busy(), 60000);
        QTRY_COMPARE_WITH_TIMEOUT(toJson(*ed_->recipe().vocabulary), toJson(*vp->recipe().vocabulary), 10000);
        QCOMPARE(ed_->recipe().vocabulary->preset, std::string("cjk"));
        vp->setBucketKept("Cyrillic", true);
        QTRY_VERIFY_WITH_TIMEOUT(!vp->busy(), 60000);
        QTRY_COMPARE_WITH_TIMEOUT(toJson(*ed_->recipe().vocabulary), toJson(*vp->recipe().vocabulary), 10000);
        const Recipe followed = ed_->recipe();
        const auto& buckets = followed.vocabulary->buckets;
        QVERIFY(std::find(buckets.begin(), buckets.end(), "Cyrillic") != buckets.end());
        settle();
        compareWithCli(QString::fromStdString(bundledModelDir().string()));
        // Another choice stops following it.
        selectData(ed_->vocabularyBox(), "english");
        vp->choosePreset("latin");
        QTRY_VERIFY_WITH_TIMEOUT(!vp->busy(), 60000);
        QCOMPARE(ed_->recipe().vocabulary->preset, std::string("english"));
    }

    // Run: the recipe is queued on the Run page, which the window shows; a bad recipe queues nothing.
    void calibrate() {
        w_->showPage(int(w_->pageNames().indexOf("Recipe")));
        const QString model = QString::fromStdString(bundledModelDir().string());
        ed_->setRecipe(parseRecipe(Json::parse(R"({"whittle_recipe": 1, "flap": {"ratio": 0.3, "calibration": {"samples": 4, "length": 64}},
                                                   "quantization": {"method": "budget", "bpw": 3.6, "calibration": {"samples": 4, "length": 64}}})"),
                                   "r"));
        settle();
        QVERIFY(panel_->current() && !panel_->current()->exact);
        QVERIFY(page_->calibrateButton()->isEnabled());
        page_->outputEdit()->setText(QString::fromStdString(out("calibrated-out").string()));
        QSignalSpy done(page_, &RecipePage::calibrated);
        page_->calibrateButton()->click();
        QVERIFY(page_->calibrating());
        QCOMPARE(page_->calibrateButton()->text(), QString("Cancel calibration"));
        QVERIFY(done.wait(120000));
        QVERIFY2(done.first().at(0).toBool(), qPrintable(page_->statusLabel()->text()));
        QVERIFY2(page_->statusLabel()->text().contains("exact"), qPrintable(page_->statusLabel()->text()));
        const Recipe planned = ed_->recipe();
        QCOMPARE(planned.flap->widths.size(), Checkpoint::open(bundledModelDir()).config().layers.size());
        QVERIFY(!planned.quantization->formats.empty());
        QVERIFY(!page_->calibrateButton()->isEnabled());  // nothing left to calibrate
        QVERIFY(!fs::exists(out("calibrated-out.calibrating")));
        settle();
        QVERIFY(panel_->current()->exact);
        QVERIFY(!panel_->current()->low);
        compareWithCli(model);
        // A change after FLAP keeps its widths but not the budget's formats; a change to FLAP drops both.
        ed_->bpwBox()->setValue(4.0);
        QVERIFY(!ed_->recipe().flap->widths.empty());
        QVERIFY(ed_->recipe().quantization->formats.empty());
        ed_->bpwBox()->setValue(3.6);  // back to what was calibrated: the formats come back with it
        QVERIFY(!ed_->recipe().quantization->formats.empty());
        ed_->flapRatioBox()->setValue(0.2);
        QVERIFY(ed_->recipe().flap->widths.empty() && ed_->recipe().quantization->formats.empty());
        settle();
        QVERIFY(!panel_->current()->exact);
        // Cancelled as soon as it starts: the recipe stays as it was, and no scratch folder is left.
        const std::string before = toJson(ed_->recipe()).dump();
        QSignalSpy again(page_, &RecipePage::calibrated);
        QVERIFY(page_->calibrate());
        page_->calibrateButton()->click();  // "Cancel calibration"
        QVERIFY(again.wait(120000));
        QVERIFY(!again.first().at(0).toBool());
        QVERIFY2(page_->statusLabel()->text().contains("Cancelled"), qPrintable(page_->statusLabel()->text()));
        QCOMPARE(toJson(ed_->recipe()).dump(), before);
        QVERIFY(!fs::exists(out("calibrated-out.calibrating")));
        for (const auto& e : fs::directory_iterator(dir_.path().toStdString()))
            QVERIFY2(e.path().filename().string().find(".calibrating") == std::string::npos, e.path().c_str());
    }

    void runQueuesOnTheRunPage() {
        RunPage* run = w_->runPage();
        const auto before = run->jobs().size();
        ed_->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "flap": {"ratio": 1.5}})");
        QCOMPARE(page_->run(), 0);
        QVERIFY2(page_->statusLabel()->text().contains("flap.ratio"), qPrintable(page_->statusLabel()->text()));
        QCOMPARE(run->jobs().size(), before);
        ed_->setRecipe(parseRecipe(Json{{"whittle_recipe", 1}, {"text_only", true}}, "r"));
        page_->outputEdit()->setText(QString::fromStdString(out("text-only").string()));
        QSignalSpy finished(run, &RunPage::jobFinished);
        page_->runButton()->click();
        QCOMPARE(run->jobs().size(), before + 1);
        QVERIFY(run->isVisible());
        QVERIFY(finished.wait(120000));
        QVERIFY2(finished.first().at(1).toBool(), qPrintable(finished.first().at(2).toString()));
        QVERIFY(fs::exists(out("text-only") / "config.json"));
        // The next suggestion is not the folder just written.
        QVERIFY(page_->outputEdit()->text() != QString::fromStdString(out("text-only").string()));
    }
};

QTEST_MAIN(TestRecipePage)
#include "tst_recipe_page.moc"
