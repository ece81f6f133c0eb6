#include "app/gui/main_window.h"

#include <QFileDialog>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStatusBar>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent>

#include "core/error.h"

namespace whittle::gui {

namespace {
LoadResult loadInventory(const QString& dir) {
    LoadResult r;
    try {
        const Checkpoint ck = Checkpoint::open(dir.toStdString());
        r.inventory = std::make_shared<Inventory>(makeInventory(ck));
    } catch (const std::exception& e) {
        r.error = QString::fromUtf8(e.what());
    }
    return r;
}

QTableView* makeTable(QAbstractItemModel* model, QWidget* parent) {
    auto* v = new QTableView(parent);
    v->setModel(model);
    v->setSelectionBehavior(QAbstractItemView::SelectRows);
    v->setAlternatingRowColors(true);
    v->verticalHeader()->hide();
    v->horizontalHeader()->setStretchLastSection(true);
    return v;
}
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle("Whittle");
    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    summary_ = new QLabel(tr("Open a Gemma 4 checkpoint folder (File → Open)."), central);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    summary_->setWordWrap(true);
    layout->addWidget(summary_);

    auto* split = new QSplitter(Qt::Vertical, central);
    partView_ = makeTable(&parts_, split);
    auto* lower = new QWidget(split);
    auto* lowerLayout = new QVBoxLayout(lower);
    lowerLayout->setContentsMargins(0, 0, 0, 0);
    filter_ = new QLineEdit(lower);
    filter_->setPlaceholderText(tr("Filter tensors by name, part or dtype"));
    filter_->setClearButtonEnabled(true);
    tensorProxy_ = new QSortFilterProxyModel(this);
    tensorProxy_->setSourceModel(&tensors_);
    tensorProxy_->setFilterKeyColumn(-1);
    tensorProxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    tensorProxy_->setSortRole(Qt::UserRole);
    tensorView_ = makeTable(tensorProxy_, lower);
    tensorView_->setSortingEnabled(true);
    tensorView_->sortByColumn(-1, Qt::AscendingOrder);
    lowerLayout->addWidget(filter_);
    lowerLayout->addWidget(tensorView_);
    split->addWidget(partView_);
    split->addWidget(lower);
    split->setStretchFactor(1, 3);
    layout->addWidget(split);
    setCentralWidget(central);
    connect(filter_, &QLineEdit::textChanged, tensorProxy_, &QSortFilterProxyModel::setFilterFixedString);

    auto* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("&Open checkpoint…"), QKeySequence::Open, this, &MainWindow::chooseCheckpoint);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    connect(&watcher_, &QFutureWatcher<LoadResult>::finished, this, &MainWindow::loadFinished);
    resize(1100, 760);
}

MainWindow::~MainWindow() { watcher_.waitForFinished(); }

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
        if (!quietErrors_) QMessageBox::critical(this, tr("Cannot open checkpoint"), r.error);
        return;
    }
    parts_.setInventory(nullptr);
    tensors_.setInventory(nullptr);
    inventory_ = r.inventory;
    parts_.setInventory(inventory_.get());
    tensors_.setInventory(inventory_.get());
    partView_->resizeColumnsToContents();
    tensorView_->resizeColumnToContents(0);
    const Gemma4Config& c = inventory_->config;
    int full = 0;
    for (const auto& l : c.layers) full += l.kind == AttentionKind::Full;
    summary_->setText(tr("<b>%1</b><br>%2 · %3 layers (%4 sliding, %5 full, %6 share KV) · hidden %7 · vocabulary %8 · "
                         "%9 parameters · %10 on disk")
                          .arg(loadingDir_.toHtmlEscaped(), QString::fromStdString(c.modelType))
                          .arg(c.numLayers)
                          .arg(c.numLayers - full)
                          .arg(full)
                          .arg(c.numKvSharedLayers)
                          .arg(c.hiddenSize)
                          .arg(c.vocabSize)
                          .arg(QString::fromStdString(formatParams(inventory_->total.params)),
                               QString::fromStdString(formatBytes(inventory_->fileBytes))));
    setWindowTitle(tr("Whittle — %1").arg(QFileInfo(loadingDir_).fileName()));
    emit checkpointLoaded(loadingDir_);
}

}  // namespace whittle::gui
