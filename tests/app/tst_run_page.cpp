// The Run page driven with Qt Test on the bundled model, inside the real main window: the controls write the
// recipe the CLI reads (compared with the parser's own JSON); a queued English + text-only + FLAP 20 % + GPTQ
// INT4 job runs end to end in the shared worker with its quality report, while a 10 ms timer measures how
// late the event loop runs (p50/p95/max printed; max must stay under 1 s) and the progress updates are counted
// (≤ 20 a second); the log names every stage; a second job waits in the queue and is cancelled there; a
// running job cancelled leaves no output and no partial folder; a bad recipe names its field and queues
// nothing; Open output opens the result on the Model page; closing the window mid-run cancels and waits.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "app/gui/main_window.h"
#include "app/gui/run_page.h"
#include "app/gui/worker_bridge.h"
#include "core/recipes/recipe.h"
#include "gui_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
// Measures how late a 10 ms timer fires while the event loop also serves the page.
class LoopLatency : public QObject {
public:
    LoopLatency() {
        timer_.setInterval(10);
        timer_.setTimerType(Qt::PreciseTimer);
        QObject::connect(&timer_, &QTimer::timeout, this, [this] {
            const qint64 now = clock_.nsecsElapsed();
            if (last_ >= 0) delays_.push_back(double(now - last_) / 1e6 - 10.0);
            last_ = now;
        });
    }
    void start() {
        clock_.start();
        last_ = -1;
        timer_.start();
    }
    void stop() { timer_.stop(); }
    double percentile(double p) const {
        std::vector<double> d = delays_;
        std::sort(d.begin(), d.end());
        return d.empty() ? 0 : d[std::min(d.size() - 1, std::size_t(p * double(d.size())))];
    }
    std::size_t samples() const { return delays_.size(); }

private:
    QTimer timer_;
    QElapsedTimer clock_;
    qint64 last_ = -1;
    std::vector<double> delays_;
};
}  // namespace

class TestRunPage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    MainWindow* w_ = nullptr;
    RunPage* page_ = nullptr;

    void setFullRecipe() {
        selectData(page_->vocabularyBox(), "english");
        page_->textOnlyBox()->setChecked(true);
        page_->flapBox()->setChecked(true);
        page_->flapRatioBox()->setValue(0.2);
        page_->compensationBox()->setChecked(true);
        for (const char* f : {"gguf-q4_0", "gguf-q8_0", "gguf-f16", "gguf-nvfp4"}) page_->ggufBox(f)->setChecked(false);
        selectData(page_->quantizeBox(), "gptq");
        selectData(page_->groupBox(), 128);
        page_->samplesBox()->setValue(4);
        page_->lengthBox()->setValue(128);
        page_->evaluateBox()->setChecked(true);
        page_->evalTokensBox()->setValue(256);
    }
    fs::path out(const char* name) const { return fs::path(dir_.path().toStdString()) / name; }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        w_ = new MainWindow;
        w_->show();
        QSignalSpy loaded(w_, &MainWindow::checkpointLoaded);
        w_->openCheckpoint(QString::fromStdString(bundledModelDir().string()));
        QVERIFY(loaded.wait(30000));
        page_ = w_->runPage();
        QCOMPARE(page_->modelDir(), QString::fromStdString(bundledModelDir().string()));
        w_->showPage(int(w_->pageNames().indexOf("Run")));
    }
    void cleanupTestCase() { delete w_; }

    // The controls write the same recipe the CLI flags and the parser make.
    void controlsWriteTheRecipe() {
        setFullRecipe();
        const Json expected{{"whittle_recipe", 1},
                            {"text_only", true},
                            {"vocabulary", {{"preset", "english"}}},
                            {"flap", {{"ratio", 0.2}, {"bias_compensation", true}, {"calibration", {{"samples", 4}, {"length", 128}}}}},
                            {"quantization", {{"method", "gptq"}, {"group_size", 128}, {"calibration", {{"samples", 4}, {"length", 128}}}}},
                            {"evaluation", {{"max_tokens", 256}}}};
        QCOMPARE(toJson(page_->recipe()), toJson(parseRecipe(expected, "expected")));
        QVERIFY(page_->groupBox()->isEnabled());
        page_->ggufBox("gguf-q4_0")->setChecked(true);
        QCOMPARE(page_->recipe().exports->formats, std::vector<std::string>{"gguf-q4_0"});
        page_->ggufBox("gguf-q4_0")->setChecked(false);
        QVERIFY(!page_->recipe().exports);
        selectData(page_->quantizeBox(), "nvfp4");
        QVERIFY(!page_->groupBox()->isEnabled());
        QCOMPARE(page_->recipe().quantization->method, std::string("nvfp4"));
        // A suggested output next to the model, not an existing folder.
        QVERIFY(page_->outputEdit()->text().endsWith("-slim"));
    }

    // A loaded recipe file shows in the controls and is what the editor holds; a bad file changes nothing.
    void loadRecipeShowsInControls() {
        const Json file{{"whittle_recipe", 1},
                        {"vocabulary", {{"preset", "cjk"}}},
                        {"flap", {{"ratio", 0.3}, {"bias_compensation", false}, {"calibration", {{"samples", 16}, {"length", 256}}}}},
                        {"quantization", {{"method", "nvfp4"}}},
                        {"export", {"gguf-nvfp4"}},
                        {"evaluation", {{"max_tokens", 1024}}}};
        const fs::path path = out("recipe.json");
        writeJsonFile(path, file);
        page_->loadRecipeFile(QString::fromStdString(path.string()));
        QCOMPARE(toJson(page_->recipe()), toJson(parseRecipe(file, "f")));
        QCOMPARE(page_->vocabularyBox()->currentData().toString(), QString("cjk"));
        QVERIFY(page_->flapBox()->isChecked());
        QCOMPARE(page_->flapRatioBox()->value(), 0.3);
        QVERIFY(!page_->compensationBox()->isChecked());
        QCOMPARE(page_->samplesBox()->value(), 16);
        QCOMPARE(page_->quantizeBox()->currentData().toString(), QString("nvfp4"));
        QVERIFY(!page_->groupBox()->isEnabled());
        QVERIFY(!page_->textOnlyBox()->isChecked());
        QCOMPARE(page_->evalTokensBox()->value(), 1024);
        QVERIFY(page_->ggufBox("gguf-nvfp4")->isChecked() && !page_->ggufBox("gguf-q4_0")->isChecked());
        const QString before = page_->recipeEdit()->toPlainText();
        writeJsonFile(out("bad.json"), Json{{"whittle_recipe", 1}, {"flap", {{"ratoi", 0.2}}}});
        page_->loadRecipeFile(QString::fromStdString(out("bad.json").string()));
        QVERIFY2(page_->statusLabel()->text().contains("flap.ratoi"), qPrintable(page_->statusLabel()->text()));
        QCOMPARE(page_->recipeEdit()->toPlainText(), before);
    }

    // A hand-edited recipe is checked by the parser; the error names the field and nothing is queued.
    void badRecipeNamesTheField() {
        page_->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "flap": {"ratio": 1.5}})");
        page_->outputEdit()->setText(QString::fromStdString(out("bad").string()));
        const auto before = page_->jobs().size();
        QCOMPARE(page_->addJob(), 0);
        QVERIFY2(page_->statusLabel()->text().contains("flap.ratio"), qPrintable(page_->statusLabel()->text()));
        QCOMPARE(page_->jobs().size(), before);
        page_->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "evaluation": true})");
        QCOMPARE(page_->addJob(), 0);
        QVERIFY2(page_->statusLabel()->text().contains("nothing to do"), qPrintable(page_->statusLabel()->text()));
        page_->recipeEdit()->setPlainText("{ not json");
        QCOMPARE(page_->addJob(), 0);
        QVERIFY2(page_->statusLabel()->text().contains("not JSON"), qPrintable(page_->statusLabel()->text()));
    }

    // The whole recipe end to end; the event loop stays responsive; a queued second job is cancelled in the queue.
    void runsEndToEndResponsive() {
        setFullRecipe();
        page_->outputEdit()->setText(QString::fromStdString(out("full").string()));
        QSignalSpy progressed(w_->worker(), &WorkerBridge::progressed);
        QSignalSpy finished(page_, &RunPage::jobFinished);
        LoopLatency latency;
        latency.start();
        QElapsedTimer wall;
        wall.start();
        const int id = page_->addJob();
        QVERIFY2(id > 0, qPrintable(page_->statusLabel()->text()));
        page_->outputEdit()->setText(QString::fromStdString(out("queued").string()));
        const int second = page_->addJob();
        QVERIFY(second > 0);
        QCOMPARE(page_->jobs().at(second).state, RunPage::JobState::Queued);
        w_->worker()->cancel(second);
        QCOMPARE(page_->jobs().at(second).state, RunPage::JobState::Cancelled);
        QTRY_VERIFY_WITH_TIMEOUT(page_->jobs().at(id).state != RunPage::JobState::Running &&
                                     page_->jobs().at(id).state != RunPage::JobState::Queued,
                                 600000);
        const double seconds = double(wall.elapsed()) / 1000;
        latency.stop();
        QCOMPARE(page_->jobs().at(id).state, RunPage::JobState::Done);
        qInfo("event loop delay during a %.1f s slim (%zu samples of a 10 ms timer): p50 %.1f ms, p95 %.1f ms, max %.1f ms", seconds,
              latency.samples(), latency.percentile(0.5), latency.percentile(0.95), latency.percentile(1.0));
        QVERIFY(latency.samples() > 10);
        QVERIFY2(latency.percentile(1.0) < 1000, "the event loop stalled for over a second");
        // Progress reaches the page at most 20 times a second (the bridge's 50 ms timer), one extra for the end.
        qInfo("%lld progress updates in %.1f s", qlonglong(progressed.count()), seconds);
        QVERIFY(progressed.count() > 0);
        QVERIFY(double(progressed.count()) <= 20 * seconds + 2);
        // The output: every stage ran, the quality report is there; the table and log say so.
        const Json w = readJsonFile(out("full") / "whittle.json");
        QCOMPARE(w["slim"]["stages"].size(), std::size_t(5));
        QCOMPARE(w["slim"]["quality"]["tokens"].get<int>(), 256);
        QCOMPARE(w["recipe"], toJson(page_->recipe()));
        const int row = page_->jobs().at(id).row;
        QCOMPARE(page_->queueTable()->item(row, 5)->text(), QString("done"));
        auto* bar = static_cast<QProgressBar*>(page_->queueTable()->cellWidget(row, 3));
        QCOMPARE(bar->value(), bar->maximum());
        const QString log = page_->logView()->toPlainText();
        for (const char* stage : {"1/5 text_only", "2/5 vocabulary", "1-2/5 text_only+vocabulary", "3/5 flap", "4/5 quantization", "5/5 evaluation"})
            QVERIFY2(log.contains(QString("job %1: %2").arg(id).arg(stage)), stage);
        QVERIFY(log.contains(QString("job %1 done").arg(id)));
        QVERIFY(!fs::exists(out("queued")));
        QVERIFY(!anyPartial(out("full")));
    }

    // Open output: the finished job's folder opens on the Model page.
    void openOutputOnModelPage() {
        int done = 0;
        for (const auto& [id, j] : page_->jobs())
            if (j.state == RunPage::JobState::Done) done = id;
        QVERIFY(done > 0);
        page_->queueTable()->selectRow(page_->jobs().at(done).row);
        QVERIFY(page_->openButton()->isEnabled());
        QSignalSpy loaded(w_, &MainWindow::checkpointLoaded);
        page_->openButton()->click();
        QVERIFY(loaded.wait(30000));
        QCOMPARE(loaded.first().first().toString(), QString::fromStdString(out("full").string()));
        QVERIFY(w_->inventory()->config.modelType == "gemma4_text");
        // Back to the original for the next tests.
        w_->openCheckpoint(QString::fromStdString(bundledModelDir().string()));
        QVERIFY(loaded.wait(30000));
    }

    // Cancel a running job at its first progress: it ends cancelled within 5 s, nothing is left behind.
    void cancelRunning() {
        setFullRecipe();
        page_->outputEdit()->setText(QString::fromStdString(out("cancelled").string()));
        QSignalSpy progressed(w_->worker(), &WorkerBridge::progressed);
        const int id = page_->addJob();
        QVERIFY(id > 0);
        QVERIFY(progressed.wait(60000));
        page_->queueTable()->selectRow(page_->jobs().at(id).row);
        QVERIFY(page_->cancelButton()->isEnabled());
        QElapsedTimer t;
        t.start();
        page_->cancelButton()->click();
        QTRY_VERIFY_WITH_TIMEOUT(page_->jobs().at(id).state == RunPage::JobState::Cancelled, 5000);
        qInfo("cancelled in %lld ms", qlonglong(t.elapsed()));
        QVERIFY(!fs::exists(out("cancelled")));
        QVERIFY(!anyPartial(out("cancelled")));
    }

    // Closing the window while a job runs cancels it and waits: no output, no partial folder, no crash.
    void closeDuringRun() {
        auto* w = new MainWindow;
        w->show();
        QSignalSpy loaded(w, &MainWindow::checkpointLoaded);
        w->openCheckpoint(QString::fromStdString(bundledModelDir().string()));
        QVERIFY(loaded.wait(30000));
        RunPage* page = w->runPage();
        selectData(page->vocabularyBox(), "english");
        selectData(page->quantizeBox(), "gptq");
        page->samplesBox()->setValue(4);
        page->lengthBox()->setValue(128);
        page->outputEdit()->setText(QString::fromStdString(out("closed").string()));
        QSignalSpy progressed(w->worker(), &WorkerBridge::progressed);
        QVERIFY(page->addJob() > 0);
        QVERIFY(progressed.wait(60000));
        QElapsedTimer t;
        t.start();
        QVERIFY(w->close());
        qInfo("closed during a run in %lld ms", qlonglong(t.elapsed()));
        QVERIFY(t.elapsed() < 5000);
        QVERIFY(!w->worker()->busy());
        delete w;
        QVERIFY(!fs::exists(out("closed")));
        QVERIFY(!anyPartial(out("closed")));
    }
};

QTEST_MAIN(TestRunPage)
#include "tst_run_page.moc"
