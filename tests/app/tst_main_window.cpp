// The main window driven like a user would: open a fixture, read the tables, filter, open a broken
// folder and get the error while the window keeps running.
#include <QAbstractItemModelTester>
#include <QLabel>
#include <QLineEdit>
#include <QSignalSpy>
#include <QTableView>

#include "app/gui/main_window.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;
using namespace whittle::gui;

class TestMainWindow : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString model_;

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        model_ = dir_.path() + "/mini";
        TinyCheckpointOptions o;
        NullProgress p;
        CancelToken c;
        makeTinyCheckpoint(model_.toStdString(), o, p, c);
    }

    void openAndFilter() {
        MainWindow w;
        w.setQuietErrors(true);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QSignalSpy loaded(&w, &MainWindow::checkpointLoaded);
        w.openCheckpoint(model_);
        QVERIFY(loaded.wait(10000));
        QVERIFY(w.inventory());
        QAbstractItemModelTester t1(w.partTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester t2(w.tensorTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QVERIFY(w.summary()->text().contains("8 layers"));
        QVERIFY(w.windowTitle().contains("mini"));
        // One row per non-empty part, PLE table the largest.
        QAbstractItemModel* parts = w.partTable()->model();
        QCOMPARE(parts->rowCount(), 8);
        int pleRow = -1;
        qulonglong best = 0;
        int bestRow = -1;
        for (int r = 0; r < parts->rowCount(); ++r) {
            if (parts->index(r, 0).data(Qt::UserRole).toString() == "ple_table") pleRow = r;
            const auto p = parts->index(r, 2).data(Qt::UserRole).toULongLong();
            if (p > best) { best = p; bestRow = r; }
        }
        QCOMPARE(bestRow, pleRow);
        const int all = w.tensorTable()->model()->rowCount();
        QCOMPARE(qulonglong(all), qulonglong(w.inventory()->tensors.size()));
        QTest::keyClicks(w.tensorFilter(), "q_proj");
        QCOMPARE(w.tensorTable()->model()->rowCount(), 8 + 2 + 2);  // 8 decoder layers, 2 vision and 2 audio layers
        w.tensorFilter()->clear();
        QCOMPARE(w.tensorTable()->model()->rowCount(), all);
    }

    void brokenFolderShowsError() {
        MainWindow w;
        w.setQuietErrors(true);
        w.show();
        QSignalSpy failed(&w, &MainWindow::checkpointFailed);
        const QString broken = dir_.path() + "/broken";
        QDir().mkpath(broken);
        w.openCheckpoint(broken);
        QVERIFY(failed.wait(10000));
        const QString msg = failed.at(0).at(0).toString();
        QVERIFY2(msg.contains(broken) && msg.contains("config.json"), qPrintable(msg));
        // Still usable afterwards.
        QSignalSpy loaded(&w, &MainWindow::checkpointLoaded);
        w.openCheckpoint(model_);
        QVERIFY(loaded.wait(10000));
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
