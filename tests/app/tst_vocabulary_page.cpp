// The Vocabulary page driven like a user would: open the bundled model, read the bucket table, pick
// presets and tick boxes (the summary must equal the core's own selection), filter the token browser,
// try a text before/after, prune with progress (and cancel), and load the real 262k tokenizer.
#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QMessageBox>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollBar>
#include <QSignalSpy>
#include <QTableView>

#include "app/gui/main_window.h"
#include "core/estimate/estimate.h"
#include "app/gui/vocabulary_data.h"
#include "app/gui/vocabulary_page.h"
#include "core/model/checkpoint.h"
#include "core/recipes/recipe.h"
#include "core/recipes/vocab_prune.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

namespace {
const QString kBundled = QString::fromStdString(whittle::test::bundledModelDir().string());

bool waitIdle(VocabularyPage* p, int ms = 60000) {
    QElapsedTimer t;
    t.start();
    while (p->busy() || !p->data()) {
        if (t.elapsed() > ms) return false;
        QTest::qWait(20);
    }
    return true;
}

int keptCount(const std::vector<bool>& keep) { return int(std::count(keep.begin(), keep.end(), true)); }
}  // namespace

class TestVocabularyPage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::unique_ptr<MainWindow> w_;
    VocabularyPage* page_ = nullptr;

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("WhittleTest");
        w_ = std::make_unique<MainWindow>();
        w_->resize(1200, 800);
        w_->show();
        QVERIFY(QTest::qWaitForWindowExposed(w_.get()));
        QCOMPARE(w_->pageNames(), (QStringList{"Model", "Vocabulary", "Quantize", "Recipe", "Run", "Compare", "Chat"}));
        page_ = w_->vocabularyPage();
        QSignalSpy loaded(page_, &VocabularyPage::loaded);
        w_->openCheckpoint(kBundled);
        QVERIFY(loaded.wait(30000));
        QVERIFY(waitIdle(page_));
        w_->showPage(1);
    }

    void modelsPassTheTester() {
        QAbstractItemModelTester a(page_->bucketModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester b(page_->tokenModel(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QAbstractItemModelTester d(page_->bucketTable()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
        QTest::keyClicks(page_->tokenFilter(), "the");
        page_->choosePreset("latin");
        QVERIFY(waitIdle(page_));
        page_->tokenFilter()->clear();
    }

    // The page's default (English, as published) equals what the core selects and the pruner writes.
    void englishPresetSummary() {
        page_->choosePreset("english");
        QVERIFY(waitIdle(page_));
        QCOMPARE(page_->presetBox()->currentData().toString(), QString("english"));
        const Tokenizer tok = Tokenizer::fromModelOrFile(kBundled.toStdString());
        VocabularyRecipe r;
        r.preset = "english";
        int kept = 0, extra = 0;
        const auto keep = selectionFromRecipe(tok, r, &kept, &extra);
        QCOMPARE(page_->summary().kept, kept);
        QCOMPARE(page_->summary().padded, keptCount(keep) + extra);
        QCOMPARE(page_->summary().padded % 256, 0);
        QCOMPARE(page_->summary().merges, keptMerges(tok, keep));
        const QString s = page_->summaryLabel()->text();
        QVERIFY2(s.contains(QLocale().toString(page_->summary().padded)), qPrintable(s));
        QVERIFY2(s.contains("parameters") && s.contains("tensors on disk"), qPrintable(s));
        QVERIFY(page_->summary().paramsAfter < page_->data()->sizes->input.parameters);
        // The page's sizes are the estimator's: the same recipe's estimate has the same parameters, and the same
        // safetensors bytes but for the shape digits in the header (a few bytes a token table).
        Recipe withVocabulary;
        withVocabulary.vocabulary = r;
        const Estimate e = estimate(Checkpoint::open(kBundled.toStdString()), withVocabulary, RuntimeOptions{});
        QCOMPARE(page_->summary().paramsAfter, e.output.parameters);
        const std::int64_t dBytes = std::int64_t(page_->summary().bytesAfter) - std::int64_t(e.output.tensorBytes);
        QVERIFY2(std::abs(dBytes) <= 64, qPrintable(QString::number(dBytes)));
        QVERIFY2(s.contains(QString::fromStdString(formatBytes(e.output.tensorBytes))), qPrintable(s));
        // The always-kept buckets cannot be unticked.
        auto* m = page_->bucketModel();
        const int special = m->rowOf("special");
        QVERIFY(special >= 0);
        QVERIFY(!(m->flags(m->index(special, BucketTableModel::Keep)) & Qt::ItemIsUserCheckable));
        QCOMPARE(m->data(m->index(special, BucketTableModel::Keep), Qt::CheckStateRole).toInt(), int(Qt::Checked));
    }

    // Ticking and unticking boxes in the table makes a custom selection equal to selectBuckets().
    void tickBuckets() {
        page_->choosePreset("latin");
        QVERIFY(waitIdle(page_));
        QAbstractItemModel* view = page_->bucketTable()->model();
        auto rowOf = [&](const QString& name) {
            for (int r = 0; r < view->rowCount(); ++r)
                if (view->index(r, BucketTableModel::Bucket).data().toString() == name) return r;
            return -1;
        };
        const int cyr = rowOf("Cyrillic"), han = rowOf("Han");
        QVERIFY(cyr >= 0 && han >= 0);
        QCOMPARE(view->index(cyr, BucketTableModel::Keep).data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
        const int before = page_->summary().kept;
        QSignalSpy changed(page_, &VocabularyPage::selectionChanged);
        QVERIFY(view->setData(view->index(cyr, BucketTableModel::Keep), Qt::Checked, Qt::CheckStateRole));
        QVERIFY(waitIdle(page_));
        QVERIFY(changed.count() >= 1);
        QCOMPARE(page_->presetBox()->currentData().toString(), QString());  // Custom
        QCOMPARE(view->index(cyr, BucketTableModel::Keep).data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
        QVERIFY(page_->summary().kept > before);

        const Recipe r = page_->recipe();
        QVERIFY(r.vocabulary && r.vocabulary->preset.empty());
        const auto& b = r.vocabulary->buckets;
        QVERIFY(std::find(b.begin(), b.end(), "Cyrillic") != b.end());
        QVERIFY(std::find(b.begin(), b.end(), "Han") == b.end());
        const Tokenizer tok = Tokenizer::fromModelOrFile(kBundled.toStdString());
        int kept = 0, extra = 0;
        const auto keep = selectionFromRecipe(tok, *r.vocabulary, &kept, &extra);
        QCOMPARE(page_->summary().kept, kept);
        QCOMPARE(page_->summary().padded, keptCount(keep) + extra);

        QVERIFY(view->setData(view->index(cyr, BucketTableModel::Keep), Qt::Unchecked, Qt::CheckStateRole));
        QVERIFY(waitIdle(page_));
        QCOMPARE(page_->summary().kept, before);
    }

    void tokenBrowser() {
        auto* proxy = page_->tokenModel();  // filtered in the model itself
        const Tokenizer& tok = *page_->data()->tokenizer;
        QCOMPARE(proxy->rowCount(), tok.size());
        page_->tokenFilter()->clear();
        QTest::keyClicks(page_->tokenFilter(), " the");  // a typed space is Gemma's ▁
        int expected = 0;
        for (int id = 0; id < tok.size(); ++id) expected += tok.tokenText(id).find("\xe2\x96\x81the") != std::string::npos;
        QVERIFY(expected > 3);
        QCOMPARE(proxy->rowCount(), expected);
        page_->tokenFilter()->clear();
        QTest::keyClicks(page_->tokenFilter(), "106");
        QCOMPARE(proxy->rowCount(), 1);
        QCOMPARE(proxy->index(0, TokenTableModel::Id).data().toInt(), 106);
        QVERIFY(proxy->index(0, TokenTableModel::Token).data(Qt::ToolTipRole).toString().contains("id 106"));
        page_->tokenFilter()->clear();
        auto* combo = page_->tokenBucketFilter();
        const int byteRow = combo->findData("byte");
        QVERIFY(byteRow > 0);
        combo->setCurrentIndex(byteRow);
        QCOMPARE(proxy->rowCount(), 256);
        QCOMPARE(proxy->index(10, TokenTableModel::Token).data().toString(), QString("<0x0A>"));
        combo->setCurrentIndex(0);
        QCOMPARE(proxy->rowCount(), tok.size());
        // Whitespace is visible.
        QCOMPARE(visibleTokenText("a\nb\tc d"), QString::fromUtf8("a\u23CEb\u2192c\u00B7d"));
    }

    void tryText() {
        page_->choosePreset("english");
        QVERIFY(waitIdle(page_));
        QSignalSpy updated(page_, &VocabularyPage::tryTextUpdated);
        page_->tryText()->setPlainText(QString::fromUtf8("The fox Привет"));
        QVERIFY(updated.wait(30000));
        QVERIFY(waitIdle(page_));
        const Tokenizer& tok = *page_->data()->tokenizer;
        EncodeOptions eo;
        eo.addSpecialTokens = false;
        const int before = int(tok.encode("The fox Привет", eo).size());
        const QString counts = page_->tryCounts()->text();
        QVERIFY2(counts.contains(QString("before: %1 tokens").arg(before)), qPrintable(counts));
        // Cyrillic tokens are gone, so the Russian word falls back to more pieces.
        const QRegularExpression re("after: (\\d+) tokens");
        const auto m = re.match(counts);
        QVERIFY(m.hasMatch());
        QVERIFY(m.captured(1).toInt() > before);
        page_->tryText()->clear();
        QVERIFY(waitIdle(page_));
    }

    // "Tokens my text files use": the selection equals the core's corpus preset; an unreadable file is
    // reported by name and the page keeps working.
    void corpusPreset() {
        const QString text = dir_.path() + "/mine.txt";
        writeBytes(text.toStdString(), "The cat sat on the mat.\nA computer scientist walks into a bar.\n");
        page_->setCorpusFiles({text});
        page_->choosePreset("corpus");
        QVERIFY(waitIdle(page_));
        QCOMPARE(page_->presetBox()->currentData().toString(), QString("corpus"));
        const Recipe r = page_->recipe();
        QCOMPARE(r.vocabulary->preset, std::string("corpus"));
        QCOMPARE(r.vocabulary->corpusFiles, std::vector<std::string>{text.toStdString()});
        const Tokenizer tok = Tokenizer::fromModelOrFile(kBundled.toStdString());
        int kept = 0, extra = 0;
        const auto keep = selectionFromRecipe(tok, *r.vocabulary, &kept, &extra);
        QCOMPARE(page_->summary().kept, kept);
        QCOMPARE(page_->summary().padded, keptCount(keep) + extra);
        QVERIFY(kept < 1000);  // a couple of sentences need few tokens beyond special and bytes

        page_->setCorpusFiles({dir_.path() + "/missing.txt"});
        QVERIFY(waitIdle(page_));
        QVERIFY2(page_->statusLabel()->text().contains("missing.txt"), qPrintable(page_->statusLabel()->text()));
        page_->choosePreset("english");
        QVERIFY(waitIdle(page_));
        page_->statusLabel()->clear();
    }

    void pruneFromThePage() {
        page_->choosePreset("english");
        QVERIFY(waitIdle(page_));
        const QString out = dir_.path() + "/pruned";
        page_->outputPath()->setText(out);
        QSignalSpy done(page_, &VocabularyPage::pruneFinished);
        QSignalSpy progress(page_, &VocabularyPage::pruneProgress);
        QTest::mouseClick(page_->pruneButton(), Qt::LeftButton);
        QVERIFY(!page_->pruneButton()->isEnabled());
        QVERIFY(page_->cancelButton()->isEnabled());
        QVERIFY(done.wait(60000));
        QVERIFY2(done.first().at(0).toBool(), qPrintable(done.first().at(1).toString()));
        QVERIFY(progress.count() >= 1);
        QCOMPARE(page_->progressBar()->value(), 1000);
        const Checkpoint ck = Checkpoint::open(out.toStdString());
        QCOMPARE(ck.config().vocabSize, page_->summary().padded);
        QVERIFY(page_->statusLabel()->text().contains(out));

        // Again into the same folder: refused (never overwritten), the error shown, the page still usable.
        done.clear();
        QTest::mouseClick(page_->pruneButton(), Qt::LeftButton);
        QVERIFY(done.wait(60000));
        QVERIFY(!done.first().at(0).toBool());
        const QString refusal = done.first().at(1).toString();
        QVERIFY2(refusal.contains("exists") && refusal.contains("choose another output folder") && !refusal.contains("--force"),
                 qPrintable(refusal));  // the page's own wording, no CLI option
        auto* box = page_->findChild<QMessageBox*>("errorDialog");
        QVERIFY(box);
        box->accept();
        QVERIFY(page_->pruneButton()->isEnabled());

        // Cancel right after starting: nothing is written, no partial folder is left.
        const QString out2 = dir_.path() + "/cancelled";
        page_->outputPath()->setText(out2);
        done.clear();
        QTest::mouseClick(page_->pruneButton(), Qt::LeftButton);
        QTest::mouseClick(page_->cancelButton(), Qt::LeftButton);
        QVERIFY(done.wait(60000));
        QVERIFY(!done.first().at(0).toBool());
        QVERIFY(page_->statusLabel()->text().contains("Cancelled"));
        QVERIFY(!fs::exists(out2.toStdString()));
        for (const auto& e : fs::directory_iterator(dir_.path().toStdString()))
            QVERIFY2(e.path().filename().string().find("partial") == std::string::npos, e.path().c_str());
    }

    // Google's 262k tokenizer on its own: buckets, the published English counts, and a browser that filters
    // and scrolls through every token.
    // The page reads the main window's checkpoint instead of opening the folder again: with the tensor file
    // deleted after opening, the data loads from the open checkpoint (sizes included) and not from the folder.
    void readsTheOpenCheckpoint() {
        const fs::path copy = fs::path(dir_.path().toStdString()) / "opened";
        fs::copy(bundledModelDir(), copy, fs::copy_options::recursive);
        auto opened = std::make_shared<const Checkpoint>(Checkpoint::open(copy));
        fs::remove(copy / "model.safetensors");
        const auto d = loadVocabularyData(copy, opened);
        QVERIFY(d->sizes.has_value());
        QCOMPARE(d->sizes->input.tensorBytes, page_->data()->sizes->input.tensorBytes);
        QCOMPARE(d->tokenizer->size(), page_->data()->tokenizer->size());
        WHITTLE_EXPECT_ERROR(loadVocabularyData(copy), Error, "model.safetensors");
    }

    void realTokenizer() {
        const fs::path tj = fs::path(qEnvironmentVariable("WHITTLE_PEERS_DIR").toStdString()) / "gemma-tokenizer/tokenizer.json";
        WHITTLE_REQUIRE_OR_SKIP(fs::exists(tj), "test peers not installed (tests/peers/install.sh)");
        QSignalSpy loaded(page_, &VocabularyPage::loaded);
        QElapsedTimer t;
        t.start();
        page_->open(QString::fromStdString(tj.string()));
        QVERIFY(loaded.wait(120000));
        QVERIFY(waitIdle(page_, 120000));
        qInfo("262k tokenizer loaded and classified in %.1f s", double(t.elapsed()) / 1000);
        QVERIFY(!page_->data()->sizes);
        QVERIFY(!page_->pruneButton()->isEnabled());
        QCOMPARE(page_->tokenModel()->rowCount(), 262145);
        QCOMPARE(page_->summary().kept, 155884);
        QCOMPARE(page_->summary().padded, 155904);
        QCOMPARE(page_->summary().merges, 388586);
        auto* m = page_->bucketModel();
        const int latin = m->rowOf("Latin");
        QCOMPARE(m->index(latin, BucketTableModel::Tokens).data(Qt::UserRole).toULongLong(), 152538ull);
        QVERIFY(m->rowCount() > 40);

        t.restart();
        QTest::keyClicks(page_->tokenFilter(), "ing");
        const double filterMs = double(t.elapsed());
        QVERIFY(page_->tokenModel()->rowCount() > 1000);
        page_->tokenFilter()->clear();
        page_->tokenTable()->scrollToBottom();
        QCoreApplication::processEvents();
        const QModelIndex last = page_->tokenModel()->index(page_->tokenModel()->rowCount() - 1, TokenTableModel::Id);
        QCOMPARE(last.data().toInt(), 262144);
        QCOMPARE(last.sibling(last.row(), TokenTableModel::Token).data().toString(), QString("<image_soft_token>"));
        qInfo("filtering 262,145 tokens by 3 typed characters: %.0f ms in all", filterMs);
    }
};

QTEST_MAIN(TestVocabularyPage)
#include "tst_vocabulary_page.moc"
