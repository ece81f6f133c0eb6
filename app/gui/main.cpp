// whittle: the desktop app. `whittle [MODEL_DIR]` opens the main window, on MODEL_DIR if given.
#include <QApplication>
#include <QCommandLineParser>

#include "app/gui/main_window.h"

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("Whittle");
    QApplication::setApplicationVersion(WHITTLE_VERSION);
    QCommandLineParser parser;
    parser.setApplicationDescription("Slim Gemma 4 models to fit your GPU.");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument("model", "Gemma 4 checkpoint folder to open.");
    parser.process(app);
    whittle::gui::MainWindow w;
    w.show();
    if (!parser.positionalArguments().isEmpty()) w.openCheckpoint(parser.positionalArguments().first());
    return app.exec();
}
