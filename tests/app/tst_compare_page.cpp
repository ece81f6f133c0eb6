// The Compare page driven with Qt Test in the real main window on the bundled model and variants the core's
// slim() makes: each row's size, parameters, bits per weight and quality come from the folder and its
// whittle.json (checked against the files, the inventory and the report); a Run page job appears by itself;
// *Measure missing* fills every gap — the original's own perplexity and a variant's quality equal what
// `whittle-cli eval` measures, decode tokens/s come from the CPU reference and from lavapipe through the Chat
// page's engine — and the KLD-against-size chart then has a point per row; opening a variant folder keeps its
// original; the figures measured are recorded in the variant's whittle.json (never in the original's folder) and
// read back from it; QAbstractItemModelTester watches the model throughout.
#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include "app/gui/compare_model.h"
#include "app/gui/compare_page.h"
#include "app/gui/kld_size_chart.h"
#include "app/gui/main_window.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/recipe_page.h"
#include "app/gui/run_page.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "core/error.h"
#include "core/io/json_file.h"
#include "core/pipeline/slim.h"
#include "core/pipeline/variant_summary.h"
#include "core/recipes/recipe.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
// The model's files: everything but whittle.json, Whittle's record of how it was made and measured.
std::uint64_t folderBytes(const fs::path& dir) {
    std::uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename() != "whittle.json") n += e.file_size();
    return n;
}

Json cliEval(const fs::path& model, const fs::path* ref, int tokens) {
    QStringList args{"eval", QString::fromStdString(model.string()), "--text", QString::fromStdString((bundledModelDir() / "heldout.txt").string()),
                     "--ctx", "512", "--max-tokens", QString::number(tokens), "--json"};
    if (ref) args << "--ref" << QString::fromStdString(ref->string());
    const CliResult r = runCli(args, 240000);
    if (r.exitCode != 0) return Json();
    return Json::parse(r.out.toStdString());
}
}  // namespace

class TestComparePage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    MainWindow* w_ = nullptr;
    ComparePage* page_ = nullptr;
    std::unique_ptr<QAbstractItemModelTester> tester_;
    fs::path rtn_, flap_;

    fs::path out(const char* name) const { return fs::path(dir_.path().toStdString()) / name; }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        // Two variants: English + INT4 RTN with its quality report, English + FLAP 20 % without one.
        NullProgress np;
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        rtn_ = out("english-rtn");
        flap_ = out("english-flap");
        slim(ck,
             parseRecipe(Json{{"whittle_recipe", 1},
                              {"vocabulary", {{"preset", "english"}}},
                              {"quantization", {{"method", "rtn"}, {"group_size", 32}}},
                              {"evaluation", {{"max_tokens", 256}}}},
                         "r.json"),
             rtn_, false, np, CancelToken{});
        slim(ck,
             parseRecipe(Json{{"whittle_recipe", 1},
                              {"vocabulary", {{"preset", "english"}}},
                              {"flap", {{"ratio", 0.2}, {"calibration", {{"samples", 4}, {"length", 128}}}}}},
                         "r.json"),
             flap_, false, np, CancelToken{});

        w_ = new MainWindow;
        w_->show();
        page_ = w_->comparePage();
        tester_ = std::make_unique<QAbstractItemModelTester>(page_->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QSignalSpy loaded(w_, &MainWindow::checkpointLoaded);
        w_->openCheckpoint(QString::fromStdString(bundledModelDir().string()));
        QVERIFY(loaded.wait(30000));
        w_->showPage(int(w_->pageNames().indexOf("Compare")));
    }
    void cleanupTestCase() {
        tester_.reset();
        delete w_;
    }

    // The original first; a variant's figures are its folder's and its whittle.json's.
    void rowsFromTheFolders() {
        CompareModel* m = page_->model();
        QCOMPARE(m->rowCount(), 1);
        QVERIFY(m->rows()[0].original);
        QVERIFY(page_->addVariant(QString::fromStdString(rtn_.string())));
        QVERIFY(page_->addVariant(QString::fromStdString(flap_.string())));
        QCOMPARE(m->rowCount(), 3);
        QVERIFY(!page_->addVariant(QString::fromStdString(bundledModelDir().string())));  // the original itself
        QVERIFY(!page_->addVariant(QString::fromStdString(out("missing").string())));
        QVERIFY2(!page_->statusLabel()->text().isEmpty(), "no reason given");

        const int r = m->rowOf(rtn_);
        const VariantSummary& s = m->rows()[std::size_t(r)].summary;
        QCOMPARE(s.diskBytes, folderBytes(rtn_));
        QCOMPARE(s.params, makeInventory(Checkpoint::open(rtn_)).total.params);
        const Json w = readJsonFile(rtn_ / "whittle.json");
        QCOMPARE(*s.bitsPerWeight, w["slim"]["stages"][1]["report"]["bits_per_weight"].get<double>());
        QCOMPARE(*s.quality->kldMean, w["slim"]["quality"]["kld_mean"].get<double>());
        QCOMPARE(m->data(m->index(r, CompareModel::KldMean), Qt::DisplayRole).toString(),
                 QString::number(w["slim"]["quality"]["kld_mean"].get<double>(), 'f', 5));
        QCOMPARE(m->data(m->index(r, CompareModel::Recipe), Qt::DisplayRole).toString(), QString("vocabulary english + INT4 rtn g32"));
        QVERIFY(s.diskBytes < m->rows()[0].summary.diskBytes);
        // FLAP's row has no quality yet: dashes, and no chart point.
        const int f = m->rowOf(flap_);
        QCOMPARE(m->data(m->index(f, CompareModel::KldMean), Qt::DisplayRole).toString(), QString("—"));
        QVERIFY(!m->rows()[std::size_t(f)].summary.bitsPerWeight);
        QCOMPARE(page_->chart()->points().size(), std::size_t(2));  // the original (KLD 0) and RTN
    }

    // A Run page job that finishes appears here by itself.
    void runJobAppears() {
        RunPage* run = w_->runPage();
        RecipePage* recipe = w_->recipePage();
        recipe->editor()->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "text_only": true})");
        recipe->outputEdit()->setText(QString::fromStdString(out("text-only").string()));
        QSignalSpy finished(run, &RunPage::jobFinished);
        QVERIFY2(recipe->run() > 0, qPrintable(recipe->statusLabel()->text()));
        QVERIFY(finished.wait(120000));
        QVERIFY(finished.first().at(1).toBool());
        QVERIFY(page_->model()->rowOf(out("text-only")) > 0);
        page_->model()->removeRow(page_->model()->rowOf(out("text-only")));
        page_->model()->removeRow(0);  // the original stays
        QCOMPARE(page_->model()->rowCount(), 3);
    }

    // One click measures what is missing; the figures equal the CLI's.
    void measureMissing() {
        const int vulkan = page_->deviceBox()->count() > 1 ? 1 : 0;
        WHITTLE_REQUIRE_OR_SKIP(vulkan == 1, "no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
        page_->deviceBox()->setCurrentIndex(vulkan);
        page_->evalTokensBox()->setValue(256);
        page_->decodeTokensBox()->setValue(8);
        QSignalSpy measured(page_, &ComparePage::measured);
        page_->measureButton()->click();
        QVERIFY(page_->measuring());
        QVERIFY(measured.wait(600000));
        QVERIFY2(!page_->statusLabel()->text().contains("failed"), qPrintable(page_->statusLabel()->text()));
        CompareModel* m = page_->model();
        for (const CompareRow& r : m->rows()) {
            QVERIFY2(r.cpuTokS && *r.cpuTokS > 0, r.summary.name.c_str());
            QVERIFY2(r.vulkanTokS && *r.vulkanTokS > 0, r.summary.name.c_str());
            qInfo("%s: decode %.1f tok/s CPU reference, %.1f tok/s Vulkan", r.summary.name.c_str(), *r.cpuTokS, *r.vulkanTokS);
        }
        const fs::path original = bundledModelDir();
        const Json own = cliEval(original, nullptr, 256);
        QVERIFY(own.is_object());
        QCOMPARE(*m->rows()[0].ownPpl, own["ppl"].get<double>());
        const Json flap = cliEval(flap_, &original, 256);
        QVERIFY(flap.is_object());
        const auto& q = *m->rows()[std::size_t(m->rowOf(flap_))].summary.quality;
        QCOMPARE(q.ppl, flap["ppl"].get<double>());
        QCOMPARE(*q.kldMean, flap["kld_mean"].get<double>());
        QCOMPARE(*q.top1, flap["top1"].get<double>());
        // Every row is now a point: KLD against size.
        const auto pts = page_->chart()->points();
        QCOMPARE(pts.size(), std::size_t(3));
        QCOMPARE(pts[0].kld, 0.0);
        QCOMPARE(pts[2].kld, *q.kldMean);
        QCOMPARE(pts[2].megabytes, double(folderBytes(flap_)) / 1e6);
        // Nothing left: a second click measures nothing.
        QSignalSpy again(page_, &ComparePage::measured);
        page_->measureButton()->click();
        QCOMPARE(again.count(), 1);
        QVERIFY(page_->statusLabel()->text().contains("Nothing is missing"));
        // The variant's new figures are recorded in its whittle.json ("measured"), never in the original's
        // folder: a summary read from the folder again — and a fresh table built from it — has them.
        const CompareRow& row = m->rows()[std::size_t(m->rowOf(flap_))];
        const VariantSummary reread = summarizeVariant(flap_);
        QVERIFY(reread.quality.has_value());
        QCOMPARE(reread.quality->ppl, q.ppl);
        QCOMPARE(*reread.quality->kldMean, *q.kldMean);
        QCOMPARE(*reread.cpuTokS, *row.cpuTokS);
        QCOMPARE(*reread.vulkanTokS, *row.vulkanTokS);
        QCOMPARE(QString::fromStdString(reread.vulkanDevice), page_->deviceBox()->currentText());
        QCOMPARE(readJsonFile(flap_ / "whittle.json")["measured"]["quality"]["reference"].get<std::string>(), original.string());
        QVERIFY(!fs::exists(original / "whittle.json"));
        QVERIFY(!fs::exists(flap_ / "whittle.json.new"));
        CompareModel fresh;
        QAbstractItemModelTester freshTester(&fresh);
        fresh.setOriginal(summarizeVariant(original));
        const int fr = fresh.addVariant(reread);
        QCOMPARE(*fresh.rows()[std::size_t(fr)].cpuTokS, *row.cpuTokS);
        QCOMPARE(*fresh.rows()[std::size_t(fr)].vulkanTokS, *row.vulkanTokS);
        // A folder Whittle did not make (no whittle.json) is never written.
        WHITTLE_EXPECT_ERROR(recordDecode(original, false, 1.0, 8, "cpu"), UsageError, "no whittle.json");
    }

    // Opening a variant on the Model page keeps its original here (whittle.json names the source).
    void openingAVariantKeepsItsOriginal() {
        QSignalSpy loaded(w_, &MainWindow::checkpointLoaded);
        w_->openCheckpoint(QString::fromStdString(rtn_.string()));
        QVERIFY(loaded.wait(30000));
        CompareModel* m = page_->model();
        QCOMPARE(m->rows()[0].summary.dir, bundledModelDir());
        QVERIFY(m->rowOf(rtn_) > 0);
    }
};

QTEST_MAIN(TestComparePage)
#include "tst_compare_page.moc"
