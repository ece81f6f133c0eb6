// The main window and its Model page driven like a user would: open a fixture, read the summary card,
// chart and tables, filter, reopen from the recent list, drop a folder on the window, open a broken
// folder and get the error dialog while the window keeps running, and render screenshots.
#include <QAbstractItemModelTester>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QMimeData>
#include <QSignalSpy>
#include <QTableView>

#include "app/gui/main_window.h"
#include "app/gui/model_page.h"
#include "app/gui/part_chart.h"
#include "app/gui/recent_models.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;

class TestMainWindow : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString mini_, full_;

    static void make(const QString& dest, const char* preset, bool zeros) {
        TinyCheckpointOptions o;
        o.preset = preset;
        o.zeros = zeros;
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(dest.toStdString(), o, p, c);
    }

    static bool load(MainWindow& w, const QString& path) {
        QSignalSpy loaded(&w, &MainWindow::checkpointLoaded);
        w.openCheckpoint(path);
        return loaded.wait(20000);
    }

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("WhittleTest");
        RecentModels::clear();
        mini_ = dir_.path() + "/mini";
        full_ = dir_.path() + "/e2b-full";
        make(mini_, "e2b-mini", false);
        make(full_, "e2b-full", true);
    }

    void emptyState() {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QCOMPARE(w.pageNames(), (QStringList{"Model", "Vocabulary", "Quantize", "Recipe", "Run", "Compare", "Chat"}));
        QVERIFY(w.modelPage()->chart()->bars().empty());
        QVERIFY(!w.recentMenu()->isEnabled());
    }

    void openAndFilter() {
        MainWindow w;
        w.show();
        QVERIFY(load(w, mini_));
        ModelPage* page = w.modelPage();
        QAbstractItemModelTester t1(page->partTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester t2(page->tensorTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        const QString card = page->summary()->text();
        QVERIFY2(card.contains("mini") && card.contains("6 sliding") && card.contains("2 full") && card.contains("4096 tokens"),
                 qPrintable(card));
        QVERIFY(w.windowTitle().contains("mini"));
        QCOMPARE(page->partTable()->model()->rowCount(), 8);
        const int all = page->tensorTable()->model()->rowCount();
        QCOMPARE(qulonglong(all), qulonglong(w.inventory()->tensors.size()));
        QTest::keyClicks(page->tensorFilter(), "q_proj");
        QCOMPARE(page->tensorTable()->model()->rowCount(), 8 + 2 + 2);  // 8 decoder, 2 vision and 2 audio layers
        page->tensorFilter()->clear();
        QCOMPARE(page->tensorTable()->model()->rowCount(), all);
        // Sorting by size puts the PLE table first.
        page->tensorTable()->sortByColumn(6, Qt::DescendingOrder);
        QVERIFY(page->tensorTable()->model()->index(0, 0).data().toString().contains("embed_tokens_per_layer"));
    }

    // On an E2B-shaped checkpoint the chart shows the PLE table as the largest part, near half.
    void chartShowsPleShare() {
        MainWindow w;
        w.show();
        QVERIFY(load(w, full_));
        const auto& bars = w.modelPage()->chart()->bars();
        QCOMPARE(int(bars.size()), 8);
        const auto largest = std::max_element(bars.begin(), bars.end(), [](auto& a, auto& b) { return a.share < b.share; });
        QCOMPARE(largest->label, QString("PLE table"));
        QVERIFY(largest->share > 0.45 && largest->share < 0.47);
        double sum = 0;
        for (const auto& b : bars) sum += b.share;
        QVERIFY(std::abs(sum - 1.0) < 1e-9);
        QVERIFY(w.modelPage()->summary()->text().contains("10.20 GB"));
    }

    void recentList() {
        RecentModels::clear();
        {
            MainWindow w;
            QVERIFY(load(w, mini_));
            QVERIFY(load(w, full_));
        }
        const QStringList recent = RecentModels::load();
        QCOMPARE(recent.size(), 2);
        QCOMPARE(recent.first(), QDir(full_).absolutePath());
        MainWindow w;
        QVERIFY(w.recentMenu()->isEnabled());
        QSignalSpy loaded(&w, &MainWindow::checkpointLoaded);
        w.recentMenu()->actions().at(1)->trigger();  // the older one: mini
        QVERIFY(loaded.wait(20000));
        QVERIFY(w.modelPage()->summary()->text().contains("mini"));
        QCOMPARE(RecentModels::load().first(), QDir(mini_).absolutePath());
    }

    void dropFolder() {
        MainWindow w;
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(mini_ + "/config.json")});  // a file inside means its folder
        QDragEnterEvent enter(QPoint(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(&w, &enter);
        QVERIFY(enter.isAccepted());
        QSignalSpy loaded(&w, &MainWindow::checkpointLoaded);
        QDropEvent drop(QPointF(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(&w, &drop);
        QVERIFY(loaded.wait(20000));
        QCOMPARE(loaded.at(0).at(0).toString(), QDir(mini_).absolutePath());
        QMimeData web;
        web.setUrls({QUrl("https://example.invalid/model")});
        QDragEnterEvent refused(QPoint(50, 50), Qt::CopyAction, &web, Qt::LeftButton, Qt::NoModifier);
        refused.setAccepted(false);
        QCoreApplication::sendEvent(&w, &refused);
        QVERIFY(!refused.isAccepted());
    }

    void brokenFolderShowsError() {
        MainWindow w;
        w.show();
        QSignalSpy failed(&w, &MainWindow::checkpointFailed);
        const QString broken = dir_.path() + "/broken";
        QDir().mkpath(broken);
        w.openCheckpoint(broken);
        QVERIFY(failed.wait(10000));
        const QString msg = failed.at(0).at(0).toString();
        QVERIFY2(msg.contains(broken) && msg.contains("config.json"), qPrintable(msg));
        auto* box = w.findChild<QMessageBox*>("errorDialog");
        QVERIFY(box);
        QVERIFY(box->isVisible());
        QCOMPARE(box->text(), msg);
        box->accept();
        // Still usable afterwards.
        QVERIFY(load(w, mini_));
    }

    void screenshots() {
        MainWindow w;
        w.resize(1200, 800);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QVERIFY(load(w, full_));
        const QStringList files = w.saveScreenshots(dir_.path() + "/shots");
        QCOMPARE(files.size(), w.pageNames().size());
        const QImage img(files.first());
        QVERIFY(!img.isNull());
        QCOMPARE(img.size(), w.size() * w.devicePixelRatio());
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
