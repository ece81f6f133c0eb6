#include "app/gui/main_window.h"

#include <QCloseEvent>
#include <QDir>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QListWidget>
#include <QMenuBar>
#include <QMimeData>
#include <QHBoxLayout>
#include <QStackedWidget>
#include <QStatusBar>
#include <QThread>
#include <QtConcurrent>
#include <algorithm>

#include "app/gui/chat_page.h"
#include "app/gui/compare_page.h"
#include "app/gui/model_page.h"
#include "app/gui/quantization_page.h"
#include "app/gui/recent_models.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/recipe_page.h"
#include "app/gui/run_page.h"
#include "app/gui/worker_bridge.h"
#include "app/gui/worker_outcome.h"
#include "app/gui/vocabulary_page.h"
#include "core/util/thread_pool.h"

namespace whittle::gui {

namespace {
LoadResult loadInventory(const QString& dir) {
    LoadResult r;
    try {
        r.checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(dir.toStdString()));
        r.inventory = std::make_shared<Inventory>(makeInventory(*r.checkpoint));
    } catch (const std::exception& e) {
        r.error = QString::fromUtf8(e.what());
    }
    return r;
}

QString droppedFolder(const QMimeData* mime) {
    if (!mime || !mime->hasUrls() || mime->urls().size() != 1) return {};
    const QUrl url = mime->urls().first();
    if (!url.isLocalFile()) return {};
    const QFileInfo info(url.toLocalFile());
    // A dropped config.json or shard means its folder.
    return info.isDir() ? info.absoluteFilePath() : info.absolutePath();
}
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    // Work leaves one core to the event loop: the core's thread pools get cores − 1 threads (WorkerBridge's
    // job thread runs at lower priority too).
    setDefaultThreadCount(std::max(1, QThread::idealThreadCount() - 1));
    setWindowTitle("Whittle");
    setAcceptDrops(true);
    auto* central = new QWidget(this);
    auto* row = new QHBoxLayout(central);
    row->setContentsMargins(0, 0, 0, 0);
    pageList_ = new QListWidget(central);
    pageList_->setFixedWidth(150);
    pageList_->setFrameShape(QFrame::NoFrame);
    pageList_->setSpacing(2);
    pages_ = new QStackedWidget(central);
    row->addWidget(pageList_);
    row->addWidget(pages_, 1);
    setCentralWidget(central);
    modelPage_ = new ModelPage(pages_);
    addPage(tr("Model"), modelPage_);
    worker_ = new WorkerBridge(this);  // every page's long work
    vocabularyPage_ = new VocabularyPage(worker_, pages_);
    addPage(tr("Vocabulary"), vocabularyPage_);
    quantizationPage_ = new QuantizationPage(worker_, pages_);
    addPage(tr("Quantize"), quantizationPage_);
    runPage_ = new RunPage(worker_, pages_);
    chatPage_ = new ChatPage(pages_);  // made first: its engine thread lists the devices for the Recipe and Compare pages
    recipePage_ = new RecipePage(runPage_, worker_, chatPage_->engine(), pages_);
    addPage(tr("Recipe"), recipePage_);
    addPage(tr("Run"), runPage_);
    connect(recipePage_, &RecipePage::queued, this, [this] { pageList_->setCurrentRow(pages_->indexOf(runPage_)); });
    // The Recipe page offers the Vocabulary page's selection as its vocabulary, and follows it.
    const auto offerSelection = [this] { recipePage_->editor()->setVocabularyPageSelection(vocabularyPage_->recipe().vocabulary); };
    connect(vocabularyPage_, &VocabularyPage::selectionChanged, this, offerSelection);
    connect(vocabularyPage_, &VocabularyPage::loaded, this, offerSelection);
    comparePage_ = new ComparePage(worker_, chatPage_->engine(), pages_);  // decode timings share the Chat page's engine
    addPage(tr("Compare"), comparePage_);
    addPage(tr("Chat"), chatPage_);
    connect(runPage_, &RunPage::jobFinished, this, [this](int id, bool ok, const QString&) {
        if (ok) comparePage_->addVariant(runPage_->jobs().at(id).output);
    });
    connect(runPage_, &RunPage::openOutput, this, [this](const QString& dir) {
        openCheckpoint(dir);
        showPage(0);
    });
    connect(pageList_, &QListWidget::currentRowChanged, pages_, &QStackedWidget::setCurrentIndex);
    pageList_->setCurrentRow(0);

    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open checkpoint…"), QKeySequence::Open, this, &MainWindow::chooseCheckpoint);
    recentMenu_ = file->addMenu(tr("Open &recent"));
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    rebuildRecentMenu();
    connect(&watcher_, &QFutureWatcher<LoadResult>::finished, this, &MainWindow::loadFinished);
    statusBar()->showMessage(tr("Open a Gemma 4 checkpoint folder to begin."));
    resize(1200, 800);
}

MainWindow::~MainWindow() { watcher_.waitForFinished(); }

void MainWindow::addPage(const QString& name, QWidget* page) {
    pageList_->addItem(name);
    pages_->addWidget(page);
}

QStringList MainWindow::pageNames() const {
    QStringList names;
    for (int i = 0; i < pageList_->count(); ++i) names << pageList_->item(i)->text();
    return names;
}

void MainWindow::showPage(int index) { pageList_->setCurrentRow(index); }

QStringList MainWindow::saveScreenshots(const QString& dir) {
    QDir().mkpath(dir);
    QStringList written;
    for (int i = 0; i < pageList_->count(); ++i) {
        showPage(i);
        QCoreApplication::processEvents();
        const QString path = QDir(dir).filePath(pageList_->item(i)->text().toLower() + ".png");
        if (grab().save(path)) written << path;
    }
    return written;
}

void MainWindow::chooseCheckpoint() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Gemma 4 checkpoint folder"));
    if (!dir.isEmpty()) openCheckpoint(dir);
}

void MainWindow::openCheckpoint(const QString& dir) {
    if (watcher_.isRunning()) return;
    loadingDir_ = dir;
    statusBar()->showMessage(tr("Reading %1 …").arg(dir));
    watcher_.setFuture(QtConcurrent::run(loadInventory, dir));
}

void MainWindow::loadFinished() {
    const LoadResult r = watcher_.result();
    statusBar()->clearMessage();
    if (!r.inventory) {
        emit checkpointFailed(r.error);
        showErrorDialog(this, tr("Cannot open checkpoint"), r.error);
        return;
    }
    modelPage_->setInventory(nullptr);
    inventory_ = r.inventory;
    checkpoint_ = r.checkpoint;
    modelPage_->setInventory(inventory_.get());
    vocabularyPage_->open(loadingDir_, checkpoint_);
    quantizationPage_->open(checkpoint_);
    recipePage_->open(checkpoint_);
    runPage_->open(checkpoint_);
    comparePage_->open(loadingDir_);
    chatPage_->offerModel(loadingDir_, checkpoint_);
    RecentModels::add(loadingDir_);
    rebuildRecentMenu();
    setWindowTitle(tr("Whittle — %1").arg(QFileInfo(loadingDir_).fileName()));
    statusBar()->showMessage(tr("%1: %2 parameters, %3")
                                 .arg(QDir::toNativeSeparators(loadingDir_),
                                      QString::fromStdString(formatParams(inventory_->total.params)),
                                      QString::fromStdString(formatBytes(inventory_->fileBytes))));
    emit checkpointLoaded(loadingDir_);
}

void MainWindow::rebuildRecentMenu() {
    recentMenu_->clear();
    const QStringList recent = RecentModels::load();
    for (const QString& dir : recent)
        recentMenu_->addAction(QDir::toNativeSeparators(dir), this, [this, dir] { openCheckpoint(dir); });
    if (!recent.isEmpty()) {
        recentMenu_->addSeparator();
        recentMenu_->addAction(tr("Clear list"), this, [this] {
            RecentModels::clear();
            rebuildRecentMenu();
        });
    }
    recentMenu_->setEnabled(!recent.isEmpty());
}

void MainWindow::closeEvent(QCloseEvent* e) {
    if (worker_->busy()) {
        statusBar()->showMessage(tr("Cancelling the running jobs…"));
        worker_->cancelAll();
        worker_->waitForIdle();  // cancel is polled at fine grain: this returns within seconds
    }
    QMainWindow::closeEvent(e);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (!droppedFolder(e->mimeData()).isEmpty()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    const QString dir = droppedFolder(e->mimeData());
    if (dir.isEmpty()) return;
    e->acceptProposedAction();
    openCheckpoint(dir);
}

}  // namespace whittle::gui
