// The Run page driven with Qt Test on the bundled model, inside the real main window, its jobs queued by the
// Recipe page's Run (tst_recipe_page checks the recipe controls): a queued English + text-only + FLAP 20 % + GPTQ
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
#include "app/gui/recipe_editor.h"
#include "app/gui/recipe_page.h"
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
    RecipePage* recipe_ = nullptr;
    RecipeEditor* ed_ = nullptr;

    void setFullRecipe() {
        selectData(ed_->vocabularyBox(), "english");
        ed_->textOnlyBox()->setChecked(true);
        ed_->flapBox()->setChecked(true);
        ed_->flapRatioBox()->setValue(0.2);
        ed_->compensationBox()->setChecked(true);
        for (const char* f : {"gguf-q4_0", "gguf-q8_0", "gguf-f16", "gguf-nvfp4"}) ed_->ggufBox(f)->setChecked(false);
        selectData(ed_->quantizeBox(), "gptq");
        selectData(ed_->groupBox(), 128);
        ed_->samplesBox()->setValue(4);
        ed_->lengthBox()->setValue(128);
        ed_->evaluateBox()->setChecked(true);
        ed_->evalTokensBox()->setValue(256);
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
        recipe_ = w_->recipePage();
        ed_ = recipe_->editor();
        QCOMPARE(page_->modelDir(), QString::fromStdString(bundledModelDir().string()));
        w_->showPage(int(w_->pageNames().indexOf("Run")));
    }
    void cleanupTestCase() { delete w_; }

    // A hand-edited recipe is checked by the parser; the error names the field and nothing is queued.
    void badRecipeNamesTheField() {
        ed_->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "flap": {"ratio": 1.5}})");
        recipe_->outputEdit()->setText(QString::fromStdString(out("bad").string()));
        const auto before = page_->jobs().size();
        QCOMPARE(recipe_->run(), 0);
        QVERIFY2(recipe_->statusLabel()->text().contains("flap.ratio"), qPrintable(recipe_->statusLabel()->text()));
        QCOMPARE(page_->jobs().size(), before);
        ed_->recipeEdit()->setPlainText(R"({"whittle_recipe": 1, "evaluation": true})");
        QCOMPARE(recipe_->run(), 0);
        QVERIFY2(recipe_->statusLabel()->text().contains("nothing to do"), qPrintable(recipe_->statusLabel()->text()));
        ed_->recipeEdit()->setPlainText("{ not json");
        QCOMPARE(recipe_->run(), 0);
        QVERIFY2(recipe_->statusLabel()->text().contains("not JSON"), qPrintable(recipe_->statusLabel()->text()));
    }

    // The whole recipe end to end; the event loop stays responsive; a queued second job is cancelled in the queue.
    void runsEndToEndResponsive() {
        setFullRecipe();
        recipe_->outputEdit()->setText(QString::fromStdString(out("full").string()));
        QSignalSpy progressed(w_->worker(), &WorkerBridge::progressed);
        QSignalSpy finished(page_, &RunPage::jobFinished);
        LoopLatency latency;
        latency.start();
        QElapsedTimer wall;
        wall.start();
        const int id = recipe_->run();
        QVERIFY2(id > 0, qPrintable(recipe_->statusLabel()->text()));
        recipe_->outputEdit()->setText(QString::fromStdString(out("queued").string()));
        const int second = recipe_->run();
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
        QCOMPARE(w["recipe"], toJson(ed_->recipe()));
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
        recipe_->outputEdit()->setText(QString::fromStdString(out("cancelled").string()));
        QSignalSpy progressed(w_->worker(), &WorkerBridge::progressed);
        const int id = recipe_->run();
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
        RecipeEditor* ed = w->recipePage()->editor();
        selectData(ed->vocabularyBox(), "english");
        selectData(ed->quantizeBox(), "gptq");
        ed->samplesBox()->setValue(4);
        ed->lengthBox()->setValue(128);
        w->recipePage()->outputEdit()->setText(QString::fromStdString(out("closed").string()));
        QSignalSpy progressed(w->worker(), &WorkerBridge::progressed);
        QVERIFY(w->recipePage()->run() > 0);
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
