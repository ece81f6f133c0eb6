// whittle: the desktop app.
//   whittle [MODEL_DIR]                      open the main window (on MODEL_DIR if given)
//   whittle --screenshots DIR [MODEL_DIR]    render every page to DIR/<page>.png and exit
#include <QApplication>
#include <QCommandLineParser>
#include <QEventLoop>
#include <QTimer>
#include <cstdio>

#include "app/gui/main_window.h"
#include "app/gui/vocabulary_page.h"
#include <QPlainTextEdit>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("Whittle");
    QApplication::setApplicationName("Whittle");
    QApplication::setApplicationVersion(WHITTLE_VERSION);
    QCommandLineParser parser;
    parser.setApplicationDescription("Slim Gemma 4 models to fit your GPU.");
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption shots("screenshots", "Render every page to DIR/<page>.png and exit.", "DIR");
    parser.addOption(shots);
    parser.addPositionalArgument("model", "Gemma 4 checkpoint folder to open.");
    parser.process(app);
    const QStringList models = parser.positionalArguments();

    whittle::gui::MainWindow w;
    w.show();
    if (parser.isSet(shots)) {
        if (!models.isEmpty()) {
            QEventLoop loop;
            bool ok = false;
            QObject::connect(&w, &whittle::gui::MainWindow::checkpointLoaded, &loop, [&] { ok = true; loop.quit(); });
            QObject::connect(&w, &whittle::gui::MainWindow::checkpointFailed, &loop, [&](const QString& m) {
                std::fprintf(stderr, "whittle: %s\n", m.toUtf8().constData());
                loop.quit();
            });
            w.openCheckpoint(models.first());
            loop.exec();
            if (!ok) return 1;
            // The Vocabulary page loads the tokenizer after the inventory; show it with a sample text.
            auto* vocab = w.vocabularyPage();
            vocab->tryText()->setPlainText(QStringLiteral("Whittle keeps English tokens; Grüße aus Köln. Привет, мир!"));
            bool vocabFailed = false;
            QObject::connect(vocab, &whittle::gui::VocabularyPage::loadFailed, [&](const QString& m) {
                std::fprintf(stderr, "whittle: %s\n", m.toUtf8().constData());
                vocabFailed = true;
            });
            while (!vocabFailed && (vocab->busy() || !vocab->data())) {
                QEventLoop wait;
                QTimer::singleShot(50, &wait, &QEventLoop::quit);
                wait.exec();
            }
        }
        for (const QString& f : w.saveScreenshots(parser.value(shots))) std::printf("%s\n", f.toUtf8().constData());
        return 0;
    }
    if (!models.isEmpty()) w.openCheckpoint(models.first());
    return app.exec();
}
