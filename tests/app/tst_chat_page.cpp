// The Chat page driven with Qt Test on the bundled model and the default Vulkan device (lavapipe in CI), with the
// validation layer on (WHITTLE_VK_VALIDATION=1, zero errors): devices are listed with their memory (lavapipe
// marked software) next to the CPU reference; a greedy reply equals `whittle-cli generate --chat --greedy
// --backend vulkan` for the same message; a second turn reuses the session; Stop ends an answer within 200 ms;
// a 10 ms timer keeps firing while tokens are generated (the event loop never waits on the engine);
// regenerate and edit-and-resend keep branches with a switcher; the conversation with its tok/s figures saves and
// reopens; a malformed conversation file is refused by name.
#include <QDir>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTextBrowser>
#include <QTimer>

#include "app/gui/chat_engine.h"
#include "app/gui/chat_page.h"
#include "core/model/checkpoint.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::gui;
using namespace whittle::test;
namespace fs = std::filesystem;

class TestChatPage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    ChatPage* page_ = nullptr;
    QString cacheHome_;

    // Sends `text` and waits for the answer; returns it.
    QString ask(const QString& text, int timeoutMs = 120000) {
        QSignalSpy done(page_, &ChatPage::answerFinished);
        page_->send(text);
        if (!done.wait(timeoutMs)) return "<no answer>";
        return done.first().first().toString();
    }

    // The bundled model on the default device (each test function can run alone).
    void ensureLoaded() {
        if (page_->modelReady()) return;
        page_->offerModel(QString::fromStdString(bundledModelDir().string()));
        QSignalSpy ready(page_, &ChatPage::modelReadyChanged);
        page_->loadSelected();
        QVERIFY(ready.wait(60000));
        QVERIFY2(ready.first().first().toBool(), qPrintable(ready.first().at(1).toString()));
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        qputenv("WHITTLE_VK_VALIDATION", "1");
        // A pipeline cache folder of this test's own (under CTest's cache folder in the build tree), emptied.
        const QString base = qEnvironmentVariableIsEmpty("XDG_CACHE_HOME") ? dir_.path() : qEnvironmentVariable("XDG_CACHE_HOME");
        cacheHome_ = base + "/chat-page";
        QDir(cacheHome_).removeRecursively();
        qputenv("XDG_CACHE_HOME", cacheHome_.toUtf8());
        page_ = new ChatPage;
        page_->resize(1000, 700);
        page_->show();
        if (page_->deviceBox()->count() == 0) {
            QSignalSpy listed(page_, &ChatPage::devicesReady);
            QVERIFY(listed.wait(30000));
        }
    }
    void cleanupTestCase() {
        if (page_) QCOMPARE(page_->engine()->validationErrors(), 0);
        delete page_;
    }

    void devicesAndLoad() {
        QComboBox* d = page_->deviceBox();
        QVERIFY(d->count() >= 2);
        QCOMPARE(d->itemData(0).toInt(), -1);  // the CPU reference
        QVERIFY(d->itemText(0).contains("CPU reference"));
        bool software = false;
        for (int i = 1; i < d->count(); ++i) software = software || d->itemText(i).contains("(software)");
        WHITTLE_REQUIRE_OR_SKIP(software || d->count() > 1, "no Vulkan device");
        QVERIFY(d->currentData().toInt() >= 0);  // a Vulkan device is the default
        QVERIFY(d->currentText().contains(" GB") || d->currentText().contains(" MB"));
        page_->offerModel(QString::fromStdString(bundledModelDir().string()));
        QSignalSpy ready(page_, &ChatPage::modelReadyChanged);
        page_->loadSelected();
        QVERIFY(ready.wait(60000));
        QVERIFY2(ready.first().first().toBool(), qPrintable(ready.first().at(1).toString()));
        // The compiled pipelines went into the on-disk cache whittle-cli shares.
        QVERIFY2(!QDir(cacheHome_ + "/whittle").entryList({"pipelines-*.bin"}, QDir::Files).isEmpty(), "no pipeline cache file was written");
        // Sampling defaults come from the model's generation_config.json.
        QCOMPARE(page_->topKBox()->value(), 40);
        QCOMPARE(page_->topPBox()->value(), 0.95);
    }

    void greedyReplyEqualsCli() {
        ensureLoaded();
        page_->temperatureBox()->setValue(0);
        page_->maxTokensBox()->setValue(40);
        const QString answer = ask("Tell me a story.");
        const CliResult cli = runCli({"generate", QString::fromStdString(bundledModelDir().string()), "--chat", "--prompt", "Tell me a story.",
                                      "--greedy", "--max-tokens", "40", "--backend", "vulkan"});
        QCOMPARE(cli.exitCode, 0);
        QCOMPARE(answer + "\n", cli.out);
        const ChatNode& a = page_->tree().node(page_->tree().last());
        QCOMPARE(a.role, QString("assistant"));
        QVERIFY(a.stats.value("decode_tok_s").toDouble() > 0);
        QVERIFY(a.stats.value("prefill_tok_s").toDouble() > 0);
        QVERIFY(page_->transcriptHtml().contains("decode"));
        // The next turn feeds only what is new.
        ask("And then?");
        QVERIFY(page_->tree().node(page_->tree().last()).stats.value("reused_tokens").toInt() > 10);
    }

    // Stop during a long answer: the answer ends within 200 ms. Meanwhile a 10 ms timer keeps firing.
    void stopAndResponsiveness() {
        ensureLoaded();
        // Greedy with the model's repetition penalty: this prompt's answer runs ~97 tokens (seconds on lavapipe).
        page_->temperatureBox()->setValue(0);
        page_->repeatPenaltyBox()->setValue(1.1);
        page_->maxTokensBox()->setValue(3000);
        QSignalSpy done(page_, &ChatPage::answerFinished);
        QElapsedTimer clock;
        clock.start();
        qint64 lastTick = 0, worstGap = 0;
        int ticks = 0;
        QTimer probe;
        probe.setInterval(10);
        connect(&probe, &QTimer::timeout, this, [&] {
            const qint64 now = clock.elapsed();
            worstGap = std::max(worstGap, now - lastTick);
            lastTick = now;
            ++ticks;
        });
        page_->newConversation();
        page_->send("Tell me a story.");
        probe.start();
        QTRY_VERIFY_WITH_TIMEOUT(!page_->pendingAnswer().isEmpty(), 60000);  // tokens are streaming in
        QTest::qWait(300);
        const qint64 gapWhileGenerating = worstGap;
        QVERIFY(page_->generating());
        QElapsedTimer stopClock;
        stopClock.start();
        page_->stop();
        QVERIFY(done.wait(5000));
        const qint64 stopMs = stopClock.elapsed();
        probe.stop();
        qInfo("stop took %lld ms; the 10 ms probe fired %d times, worst gap %lld ms while generating", stopMs, ticks, gapWhileGenerating);
        QVERIFY2(stopMs <= 200, qPrintable(QString("stop took %1 ms").arg(stopMs)));
        QCOMPARE(done.first().at(1).toMap().value("stop").toString(), QString("cancelled"));
        QVERIFY2(gapWhileGenerating < 100, qPrintable(QString("the event loop stalled for %1 ms").arg(gapWhileGenerating)));
        QVERIFY(ticks > 20);
    }

    void branchesSaveAndReopen() {
        ensureLoaded();
        page_->newConversation();
        page_->maxTokensBox()->setValue(12);
        page_->temperatureBox()->setValue(0.9);
        ask("Hello there.");
        const int firstAnswer = page_->tree().last();
        QSignalSpy done(page_, &ChatPage::answerFinished);
        page_->regenerate();
        QVERIFY(done.wait(60000));
        const int second = page_->tree().last();
        QVERIFY(second != firstAnswer);
        QCOMPARE(page_->tree().siblingCount(second), 2);
        QVERIFY(page_->transcriptHtml().contains("2/2"));
        page_->editLastAndResend("Hello again.");
        QVERIFY(done.wait(60000));
        const auto path = page_->tree().activePath();
        QCOMPARE(page_->tree().node(path.front()).text, QString("Hello again."));
        QCOMPARE(page_->tree().siblingCount(path.front()), 2);
        // The switcher goes back to the first user message and its latest answer.
        page_->transcript()->anchorClicked(QUrl(QString("branch:%1:-1").arg(path.front())));
        QCOMPARE(page_->tree().node(page_->tree().activePath().front()).text, QString("Hello there."));
        QCOMPARE(page_->tree().last(), second);

        const QString file = QDir(dir_.path()).filePath("chat.json");
        page_->systemEdit()->setText("Be brief.");
        QVERIFY(page_->saveConversation(file));
        const QString before = page_->transcriptHtml();
        page_->newConversation();
        page_->systemEdit()->clear();
        QVERIFY(page_->openConversation(file));
        QCOMPARE(page_->transcriptHtml(), before);
        QCOMPARE(page_->systemEdit()->text(), QString("Be brief."));
        QVERIFY(page_->tree().node(second).stats.value("decode_tok_s").toDouble() > 0);
        // The reopened conversation goes on.
        ask("One more.");
        QCOMPARE(page_->tree().node(page_->tree().last()).role, QString("assistant"));

        const QString bad = QDir(dir_.path()).filePath("bad.json");
        writeBytes(bad.toStdString(), R"({"format":"whittle-chat","nodes":[{"role":"root","text":"","parent":-1,"children":[5],"active":0}]})");
        QVERIFY(!page_->openConversation(bad));
        auto* dialog = page_->findChild<QWidget*>("errorDialog");
        QVERIFY(dialog);
        QVERIFY(page_->transcriptHtml().contains("One more."));  // unchanged
        dialog->close();
    }

    // The page loads the checkpoint the main window offers with the folder instead of opening the folder again:
    // with the tensor file deleted after opening (the open checkpoint still holds it), loading the offered
    // checkpoint works and loading the same folder without it fails naming the file.
    void loadsTheOfferedCheckpoint() {
        const fs::path copy = fs::path(dir_.path().toStdString()) / "offered";
        fs::copy(bundledModelDir(), copy, fs::copy_options::recursive);
        auto opened = std::make_shared<const Checkpoint>(Checkpoint::open(copy));
        fs::remove(copy / "model.safetensors");
        const int device = page_->deviceBox()->currentIndex();
        page_->deviceBox()->setCurrentIndex(0);  // the CPU reference
        const QString dir = QString::fromStdString(copy.string());
        QSignalSpy ready(page_, &ChatPage::modelReadyChanged);
        page_->offerModel(dir);
        page_->loadSelected();
        QVERIFY(ready.wait(60000));
        QVERIFY(!ready.first().first().toBool());
        QVERIFY2(ready.first().at(1).toString().contains("model.safetensors"), qPrintable(ready.first().at(1).toString()));
        ready.clear();
        page_->offerModel(dir, opened);
        page_->loadSelected();
        QVERIFY(ready.wait(60000));
        QVERIFY2(ready.first().first().toBool(), qPrintable(ready.first().at(1).toString()));
        page_->deviceBox()->setCurrentIndex(device);
    }
};

QTEST_MAIN(TestChatPage)
#include "tst_chat_page.moc"
