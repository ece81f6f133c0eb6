// whittle: the desktop app.
//   whittle [MODEL_DIR]                      open the main window (on MODEL_DIR if given)
//   whittle --screenshots DIR [MODEL_DIR] [--chat-model DIR --chat-prompt TEXT]
//                                            render every page to DIR/<page>.png and exit (the Chat page
//                                            after a greedy answer from the chat model on the default device;
//                                            the Run page after --run-model DIR --run-recipe FILE --run-output DIR)
#include <QApplication>
#include <QComboBox>
#include <QCommandLineParser>
#include <QDoubleSpinBox>
#include <QEventLoop>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QSlider>
#include <QSpinBox>
#include <QTimer>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/gui/chat_engine.h"
#include "app/gui/chat_page.h"
#include "app/gui/compare_page.h"
#include "app/gui/estimate_panel.h"
#include "app/gui/main_window.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/recipe_page.h"
#include "app/gui/run_page.h"
#include "app/gui/vocabulary_page.h"

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
    const QCommandLineOption chatModel("chat-model", "With --screenshots: the model the Chat page talks to.", "DIR");
    const QCommandLineOption chatPrompt("chat-prompt", "With --screenshots: the message the Chat page sends.", "TEXT");
    parser.addOption(chatModel);
    parser.addOption(chatPrompt);
    const QCommandLineOption runModel("run-model", "With --screenshots: the model the Run page slims first.", "DIR");
    const QCommandLineOption runRecipe("run-recipe", "With --run-model: the recipe of that job.", "FILE");
    const QCommandLineOption runOutput("run-output", "With --run-model: the job's output folder.", "DIR");
    parser.addOption(runModel);
    parser.addOption(runRecipe);
    parser.addOption(runOutput);
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
        if (parser.isSet(chatModel)) {
            // A short greedy conversation on the default device, as a user would start one.
            auto* chat = w.chatPage();
            QEventLoop ready;
            if (chat->deviceBox()->count() == 0) {
                QObject::connect(chat, &whittle::gui::ChatPage::devicesReady, &ready, &QEventLoop::quit);
                ready.exec();
            }
            chat->offerModel(parser.value(chatModel));
            chat->systemEdit()->setText(QStringLiteral("You are a storyteller."));
            bool answered = false;
            QEventLoop wait;
            QObject::connect(chat, &whittle::gui::ChatPage::modelReadyChanged, &wait, [&](bool ok, const QString& m) {
                if (ok) {
                    chat->temperatureBox()->setValue(0);
                    chat->maxTokensBox()->setValue(48);
                    return;
                }
                std::fprintf(stderr, "whittle: %s\n", m.toUtf8().constData());
                wait.quit();
            });
            QObject::connect(chat, &whittle::gui::ChatPage::answerFinished, &wait, [&] { answered = true; wait.quit(); });
            chat->send(parser.value(chatPrompt).isEmpty() ? QStringLiteral("Tell me a story.") : parser.value(chatPrompt));
            wait.exec();
            if (!answered) return 1;
        }
        if (parser.isSet(runModel)) {
            // One slim job on the Run page, as a user would queue it; the screenshots show it finished.
            auto* run = w.runPage();
            auto* recipe = w.recipePage();
            // The job slims the run model; the Recipe page's estimate stays on the window's model.
            run->open(parser.value(runModel));
            w.comparePage()->open(parser.value(runModel));
            if (parser.isSet(runRecipe) && !recipe->editor()->loadRecipeFile(parser.value(runRecipe))) {
                std::fprintf(stderr, "whittle: %s\n", recipe->editor()->statusLabel()->text().toUtf8().constData());
                return 1;
            }
            recipe->outputEdit()->setText(parser.value(runOutput));
            QEventLoop wait;
            bool ok = false;
            QObject::connect(run, &whittle::gui::RunPage::jobFinished, &wait, [&](int, bool done, const QString& m) {
                ok = done;
                if (!done) std::fprintf(stderr, "whittle: %s\n", m.toUtf8().constData());
                wait.quit();
            });
            if (recipe->run() == 0) {
                std::fprintf(stderr, "whittle: %s\n", recipe->statusLabel()->text().toUtf8().constData());
                return 1;
            }
            wait.exec();
            if (!ok) return 1;
            // The Compare page then fills in what the job's report lacks (the original's perplexity, decode speeds).
            auto* compare = w.comparePage();
            compare->evalTokensBox()->setValue(2048);
            compare->decodeTokensBox()->setValue(32);
            if (compare->deviceBox()->count() == 1) {  // the engine lists devices in the background
                QEventLoop listed;
                QTimer::singleShot(10000, &listed, &QEventLoop::quit);
                QObject::connect(w.chatPage()->engine(), &whittle::gui::ChatEngine::devicesListed, &listed, &QEventLoop::quit, Qt::QueuedConnection);
                listed.exec();
            }
            if (compare->deviceBox()->count() > 1) compare->deviceBox()->setCurrentIndex(1);
            QEventLoop measured;
            QObject::connect(compare, &whittle::gui::ComparePage::measured, &measured, &QEventLoop::quit);
            compare->measureMissing();
            if (compare->measuring()) measured.exec();
            // The Recipe page as a user would leave it: English and INT4 on the window's model, 32k positions.
            if (!recipe->devicesListed()) {
                QEventLoop listed;
                QTimer::singleShot(10000, &listed, &QEventLoop::quit);
                QObject::connect(recipe, &whittle::gui::RecipePage::devicesReady, &listed, &QEventLoop::quit);
                listed.exec();
            }
            recipe->editor()->setRecipe(whittle::parseRecipe(
                whittle::Json::parse(R"({"whittle_recipe": 1, "vocabulary": {"preset": "english"}, "quantization": {"method": "gptq", "group_size": 128}})"),
                "the screenshot's recipe"));
            recipe->estimatePanel()->contextSlider()->setValue(15);
            while (recipe->estimatePanel()->pending()) {  // the English vocabulary's stage runs on a worker thread
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
