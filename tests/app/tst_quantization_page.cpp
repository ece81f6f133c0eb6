// The Quantize page driven with Qt Test on the bundled model: the live plan equals the core's
// planQuantization for each method; controls follow the method; a bad rule disables Quantize with the
// core's message; a run writes the same bytes as the core; Cancel during GPTQ leaves nothing; the bit
// budget's Plan shows the core's per-tensor plan before Quantize is possible, a changed target drops it, and
// the run writes that plan's bytes; an existing output gets the page's own wording in an error dialog.
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QTableWidget>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

#include "app/gui/quantization_page.h"
#include "core/model/inventory.h"
#include "core/recipes/recipe.h"
#include "gui_test_support.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestQuantizationPage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QuantizationPage* page_ = nullptr;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        page_ = new QuantizationPage;
        page_->resize(900, 700);
        page_->show();
        QSignalSpy loaded(page_, &QuantizationPage::loaded);
        page_->open(QString::fromStdString(bundledModelDir().string()));
        QVERIFY(loaded.wait(30000));
    }
    void cleanupTestCase() { delete page_; }

    void planFollowsTheCore() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        for (const char* method : {"rtn", "gptq", "nvfp4"}) {  // the budget needs its measurement first (budgetPlanThenQuantize)
            selectData(page_->methodBox(), method);
            const QuantizePlan p = planQuantization(ck, page_->recipe());
            QVERIFY2(page_->planText().contains(QString("%1 linear weights").arg(p.tensorsQuantized)), qPrintable(page_->planText()));
            QVERIFY2(page_->planText().contains(QString::number(p.bitsPerWeight, 'f', 3)), qPrintable(page_->planText()));
        }
        QVERIFY(page_->planText().contains("4.500"));  // NVFP4: 4 + 8/16 bits
        QVERIFY(!page_->groupBox()->isEnabled());
        QVERIFY(!page_->actOrderBox()->isEnabled());
        QCOMPARE(page_->formatBox()->count(), 3);  // ModelOpt, compressed-tensors, dequantized
        QVERIFY(page_->formatBox()->findData("hf") >= 0);
        selectData(page_->methodBox(), "gptq");
        QVERIFY(page_->actOrderBox()->isEnabled() && page_->samplesBox()->isEnabled() && page_->groupBox()->isEnabled());
        QCOMPARE(page_->formatBox()->currentData().toString(), QString("gptq"));
        selectData(page_->methodBox(), "rtn");
        selectData(page_->groupBox(), 64);
        QVERIFY(page_->planText().contains(QString::number(planQuantization(ck, page_->recipe()).bitsPerWeight, 'f', 3)));
        selectData(page_->groupBox(), 128);
        // Token tables as rows of blocks: the plan says so with the core's bytes; plain hf output refuses them.
        selectData(page_->tablesBox(), "q8_0");
        const QuantizePlan rows = planQuantization(ck, page_->recipe());
        QCOMPARE(rows.tablesAsRows, 2);
        QVERIFY2(page_->planText().contains(QString("2 token tables as rows of blocks: %1").arg(QString::fromStdString(formatBytes(rows.tableBytesBefore)))),
                 qPrintable(page_->planText()));
        selectData(page_->formatBox(), "hf");
        QVERIFY2(page_->planText().contains("embeddings"), qPrintable(page_->planText()));
        selectData(page_->formatBox(), "gptq");
        selectData(page_->tablesBox(), "keep");
    }

    void badRuleDisablesQuantize() {
        page_->outputEdit()->setText(QString::fromStdString(tempPath(dir_, "never").string()));
        const QString rules = page_->excludeEdit()->text();
        page_->excludeEdit()->setText("*");
        QVERIFY2(page_->planText().contains("no tensor is left to quantize"), qPrintable(page_->planText()));
        QVERIFY(!page_->canStart());
        page_->excludeEdit()->setText(rules);
        QVERIFY(page_->canStart());
    }

    // The page's output is the core's, byte for byte.
    void quantizeWritesTheCoresBytes() {
        const fs::path out = tempPath(dir_, "page-rtn"), ref = tempPath(dir_, "core-rtn");
        page_->outputEdit()->setText(QString::fromStdString(out.string()));
        QSignalSpy finished(page_, &QuantizationPage::finished);
        QSignalSpy progressed(page_, &QuantizationPage::progressed);
        QTest::mouseClick(page_->startButton(), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QVERIFY2(finished.at(0).at(0).toBool(), qPrintable(finished.at(0).at(1).toString()));
        QVERIFY(progressed.count() > 0);
        Recipe r;
        r.quantization = page_->recipe();
        NullProgress np;
        quantizeCheckpoint(Checkpoint::open(bundledModelDir()), r, ref, false, np, CancelToken{});
        QCOMPARE(readBytes(out / "model.safetensors"), readBytes(ref / "model.safetensors"));
        QVERIFY(page_->statusLabel()->text().contains("4.2"));
    }

    void cancelDuringGptqWritesNothing() {
        selectData(page_->methodBox(), "gptq");
        const fs::path out = tempPath(dir_, "page-gptq");
        page_->outputEdit()->setText(QString::fromStdString(out.string()));
        page_->samplesBox()->setValue(8);
        page_->lengthBox()->setValue(128);
        QSignalSpy finished(page_, &QuantizationPage::finished);
        QTest::mouseClick(page_->startButton(), Qt::LeftButton);
        QVERIFY(page_->cancelButton()->isEnabled());
        QTest::mouseClick(page_->cancelButton(), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.at(0).at(0).toBool(), false);
        QVERIFY2(page_->statusLabel()->text().contains("Cancelled"), qPrintable(page_->statusLabel()->text()));
        QVERIFY(!fs::exists(out));
        for (const auto& e : fs::directory_iterator(tempPath(dir_))) QVERIFY(e.path().filename().string().find(".partial") == std::string::npos);
        QVERIFY(page_->canStart());
        selectData(page_->methodBox(), "rtn");
    }

    void budgetPlanThenQuantize() {
        selectData(page_->methodBox(), "budget");
        QVERIFY(!page_->groupBox()->isEnabled() && !page_->symmetricBox()->isEnabled());
        QVERIFY(page_->bpwBox()->isEnabled() && page_->actOrderBox()->isEnabled() && page_->planButton()->isVisible());
        page_->samplesBox()->setValue(4);
        page_->lengthBox()->setValue(128);
        const fs::path out = tempPath(dir_, "page-budget"), ref = tempPath(dir_, "core-budget");
        page_->outputEdit()->setText(QString::fromStdString(out.string()));
        QVERIFY(!page_->canStart());  // nothing is written before the plan is shown
        QVERIFY2(page_->planText().contains("press Plan"), qPrintable(page_->planText()));
        auto plan = [&] {
            QSignalSpy planned(page_, &QuantizationPage::planned);
            QTest::mouseClick(page_->planButton(), Qt::LeftButton);
            QVERIFY(planned.wait(60000));
            QVERIFY2(planned.at(0).at(0).toBool(), qPrintable(planned.at(0).at(1).toString()));
        };
        plan();
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        NullProgress np;
        const BitBudgetPlan core = planBitBudget(ck, page_->recipe(), tempPath(dir_), np, CancelToken{});
        QTableWidget* table = page_->budgetTable();
        QCOMPARE(table->rowCount(), int(core.tensors.size()));
        QCOMPARE(table->rowCount(), 38);
        for (int t = 0; t < table->rowCount(); ++t) {
            QCOMPARE(table->item(t, 0)->text().toStdString(), core.tensors[std::size_t(t)].name);
            QCOMPARE(table->item(t, 1)->text().toStdString(), formatName(core.candidates[std::size_t(core.choice[std::size_t(t)])]));
        }
        QVERIFY2(page_->planText().contains(QString::number(core.bitsPerWeight, 'f', 3)), qPrintable(page_->planText()));
        QVERIFY(page_->canStart());
        page_->bpwBox()->setValue(3.5);  // another target: the shown plan no longer applies
        QCOMPARE(table->rowCount(), 0);
        QVERIFY(!page_->canStart());
        page_->bpwBox()->setValue(0);
        plan();
        QSignalSpy finished(page_, &QuantizationPage::finished);
        QTest::mouseClick(page_->startButton(), Qt::LeftButton);
        QVERIFY(finished.wait(120000));
        QVERIFY2(finished.at(0).at(0).toBool(), qPrintable(finished.at(0).at(1).toString()));
        Recipe r;
        r.quantization = page_->recipe();
        quantizeCheckpoint(ck, r, ref, false, np, CancelToken{}, &core);
        QCOMPARE(readBytes(out / "model.safetensors"), readBytes(ref / "model.safetensors"));
        selectData(page_->methodBox(), "rtn");
        QVERIFY(!page_->planButton()->isVisible() && !table->isVisible());
    }

    void existingOutputIsExplained() {
        page_->outputEdit()->setText(QString::fromStdString(tempPath(dir_, "page-rtn").string()));
        QSignalSpy finished(page_, &QuantizationPage::finished);
        QTest::mouseClick(page_->startButton(), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.at(0).at(0).toBool(), false);
        const QString msg = finished.at(0).at(1).toString();
        QVERIFY2(msg.contains("already exists") && msg.contains("choose another output folder") && !msg.contains("--force"), qPrintable(msg));
        auto* box = page_->findChild<QMessageBox*>("errorDialog");
        QVERIFY(box);
        box->close();
    }
};

QTEST_MAIN(TestQuantizationPage)
#include "tst_quantization_page.moc"
