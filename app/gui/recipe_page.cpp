#include "app/gui/recipe_page.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>
#include <QtConcurrent>

#include "app/gui/estimate_panel.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/run_page.h"
#include "gpu/vulkan_instance.h"

namespace whittle::gui {

namespace {
// The Vulkan devices and what each offers (none when there is no loader or driver: the panel shows sizes only).
std::vector<gpu::DeviceCaps> listDevices() {
    try {
        const gpu::VulkanInstance instance;
        return gpu::queryAllCaps(instance.physicalDevices());
    } catch (const std::exception&) {
        return {};
    }
}
}  // namespace

RecipePage::RecipePage(RunPage* runPage, QWidget* parent) : QWidget(parent), runPage_(runPage) {
    source_ = new QLabel(tr("Open a checkpoint: the estimate is of what this recipe makes of it."), this);
    source_->setWordWrap(true);
    editor_ = new RecipeEditor(this);
    panel_ = new EstimatePanel(this);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(editor_);
    split->addWidget(panel_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto* outRow = new QHBoxLayout;
    output_ = new QLineEdit(this);
    output_->setPlaceholderText(tr("output folder"));
    browse_ = new QPushButton(tr("Browse…"), this);
    run_ = new QPushButton(tr("Run"), this);
    run_->setDefault(true);
    run_->setToolTip(tr("Queue a slim of the open checkpoint with this recipe on the Run page"));
    outRow->addWidget(new QLabel(tr("Output"), this));
    outRow->addWidget(output_, 1);
    outRow->addWidget(browse_);
    outRow->addWidget(run_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    status_->setObjectName("recipePageStatus");

    auto* col = new QVBoxLayout(this);
    col->addWidget(source_);
    col->addWidget(split, 1);
    col->addLayout(outRow);
    col->addWidget(status_);

    connect(editor_, &RecipeEditor::recipeChanged, this, &RecipePage::recipeChanged);
    connect(browse_, &QPushButton::clicked, this, &RecipePage::chooseOutput);
    connect(run_, &QPushButton::clicked, this, [this] { this->run(); });
    connect(runPage_, &RunPage::jobFinished, this, [this] { suggestOutput(); });
    connect(&devices_, &QFutureWatcher<std::vector<gpu::DeviceCaps>>::finished, this, [this] {
        panel_->setDevices(devices_.result());
        listed_ = true;
        emit devicesReady();
    });
    devices_.setFuture(QtConcurrent::run(listDevices));  // creating a Vulkan instance can take a while: not on the GUI thread
    recipeChanged();
}

RecipePage::~RecipePage() { devices_.waitForFinished(); }

void RecipePage::open(std::shared_ptr<const Checkpoint> checkpoint) {
    checkpoint_ = std::move(checkpoint);
    const QString dir = QString::fromStdString(checkpoint_->dir().string());
    source_->setText(tr("What this recipe makes of %1").arg(QDir::toNativeSeparators(dir)));
    panel_->setCheckpoint(checkpoint_);
    editor_->setCheckpoint(checkpoint_);
    output_->clear();
    suggestOutput();
}

void RecipePage::recipeChanged() {
    try {
        panel_->setRecipe(editor_->recipe());
    } catch (const std::exception& e) {
        panel_->setRecipeError(QString::fromUtf8(e.what()));
    }
}

int RecipePage::run() {
    Recipe r;
    try {
        r = editor_->recipe();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return 0;
    }
    QString why;
    const int id = runPage_->addJob(r, output_->text(), &why);
    if (id == 0) {
        status_->setText(why);
        return 0;
    }
    status_->setText(tr("Job %1 queued on the Run page.").arg(id));
    output_->clear();
    suggestOutput();
    emit queued(id);
    return id;
}

void RecipePage::suggestOutput() {
    if (!checkpoint_ || !output_->text().isEmpty()) return;
    const QFileInfo src(QString::fromStdString(checkpoint_->dir().string()));
    const QString base = src.absoluteDir().filePath(src.fileName() + "-slim");
    QString candidate = base;
    for (int n = 2; QFileInfo::exists(candidate) || runPage_->writesTo(candidate); ++n) candidate = base + "-" + QString::number(n);
    output_->setText(candidate);
}

void RecipePage::chooseOutput() {
    const QString d = QFileDialog::getSaveFileName(this, tr("Output folder (created when the job succeeds)"), output_->text());
    if (!d.isEmpty()) output_->setText(d);
}

}  // namespace whittle::gui
