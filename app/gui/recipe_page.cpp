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

#include "app/gui/chat_engine.h"
#include "app/gui/estimate_panel.h"
#include "app/gui/recipe_editor.h"
#include "app/gui/run_page.h"
#include "app/gui/worker_bridge.h"
#include "core/pipeline/calibrate.h"

namespace whittle::gui {


RecipePage::RecipePage(RunPage* runPage, WorkerBridge* bridge, ChatEngine* engine, QWidget* parent)
    : QWidget(parent), runPage_(runPage), bridge_(bridge) {
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
    calibrate_ = new QPushButton(tr("Calibrate"), this);
    calibrate_->setObjectName("calibrateButton");
    calibrate_->setToolTip(tr("Run FLAP's and the bit budget's calibration now, as the run will, and write their choices (kept widths, "
                              "formats) into the recipe: the estimate becomes exact, and the run keeps these choices"));
    run_ = new QPushButton(tr("Run"), this);
    run_->setDefault(true);
    run_->setToolTip(tr("Queue a slim of the open checkpoint with this recipe on the Run page"));
    outRow->addWidget(new QLabel(tr("Output"), this));
    outRow->addWidget(output_, 1);
    outRow->addWidget(browse_);
    outRow->addWidget(calibrate_);
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
    connect(calibrate_, &QPushButton::clicked, this, [this] {
        if (calibrating()) bridge_->cancel(calibrationJob_);
        else calibrate();
    });
    connect(bridge_, &WorkerBridge::progressed, this, [this](int id, const QString& stage, double fraction, double) {
        if (id == calibrationJob_) status_->setText(tr("Calibrating: %1 (%2 %)").arg(stage).arg(int(100 * fraction)));
    });
    connect(bridge_, &WorkerBridge::finished, this, &RecipePage::calibrationDone);
    connect(runPage_, &RunPage::jobFinished, this, [this] { suggestOutput(); });
    if (engine) {
        connect(engine, &ChatEngine::deviceCapsListed, this, [this](const std::vector<gpu::DeviceCaps>& caps) {
            panel_->setDevices(caps);
            listed_ = true;
            emit devicesReady();
        });
        engine->listDeviceCaps();  // after connecting: the answer comes from the engine thread
    } else {
        listed_ = true;
    }
    recipeChanged();
}

RecipePage::~RecipePage() {
    if (calibrating()) bridge_->cancel(calibrationJob_);  // the bridge, the window's, waits for it
}

void RecipePage::open(std::shared_ptr<const Checkpoint> checkpoint) {
    if (calibrating()) bridge_->cancel(calibrationJob_);  // it calibrates the checkpoint being closed
    checkpoint_ = std::move(checkpoint);
    const QString dir = QString::fromStdString(checkpoint_->dir().string());
    source_->setText(tr("What this recipe makes of %1").arg(QDir::toNativeSeparators(dir)));
    panel_->setCheckpoint(checkpoint_);
    editor_->setCheckpoint(checkpoint_);
    output_->clear();
    suggestOutput();
    updateCalibrateButton();
}

void RecipePage::recipeChanged() {
    try {
        panel_->setRecipe(editor_->recipe());
    } catch (const std::exception& e) {
        panel_->setRecipeError(QString::fromUtf8(e.what()));
    }
    updateCalibrateButton();
}

void RecipePage::updateCalibrateButton() {
    if (calibrating()) {
        calibrate_->setText(tr("Cancel calibration"));
        calibrate_->setEnabled(true);
        return;
    }
    calibrate_->setText(tr("Calibrate"));
    bool needed = false;
    try {
        needed = needsCalibration(editor_->recipe());
    } catch (const std::exception&) {
    }
    calibrate_->setEnabled(checkpoint_ && needed);
}

bool RecipePage::calibrate() {
    if (calibrating()) return false;
    if (!checkpoint_) {
        status_->setText(tr("Open a checkpoint first."));
        return false;
    }
    Recipe r;
    try {
        r = editor_->recipe();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return false;
    }
    if (!needsCalibration(r)) {
        status_->setText(tr("Nothing to calibrate: the recipe's sizes are already exact."));
        return false;
    }
    // The stages' models are written beside the output (they may be as large as it), or beside the input.
    const QString output = output_->text().trimmed();
    const std::filesystem::path near = output.isEmpty() ? checkpoint_->dir() : std::filesystem::absolute(output.toStdString());
    const std::filesystem::path scratch = near.parent_path() / (near.filename().string() + ".calibrating");
    auto result = std::make_shared<Recipe>();
    calibratedRecipe_ = result;
    calibratedFrom_ = toJson(r).dump();
    const std::shared_ptr<const Estimator> estimator = panel_->estimator();  // the open checkpoint's (it holds it)
    calibrationJob_ = bridge_->submit(tr("Calibrate the recipe"), [estimator, r, scratch, result](Progress& progress, const CancelToken& cancel) {
        const CalibratedRecipe c = calibrateRecipe(*estimator, r, scratch, progress, cancel);
        *result = c.recipe;
        QString what;
        if (c.flap) what += tr("FLAP keeps %1 % of the FFN channels").arg(100 * (1 - c.flap->ratioRemoved), 0, 'f', 1);
        if (c.budget)
            what += (what.isEmpty() ? QString() : tr("; ")) +
                    tr("the bit budget chose %1 formats at %2 bits per weight").arg(c.budget->tensors.size()).arg(c.budget->bitsPerWeight, 0, 'f', 3);
        return tr("Calibrated in %1 s: %2. The estimate is exact; the run keeps these choices.").arg(c.seconds, 0, 'f', 1).arg(what);
    });
    status_->setText(tr("Calibrating… (queued behind any running job)"));
    updateCalibrateButton();
    return true;
}

void RecipePage::calibrationDone(int id, const WorkerOutcome& outcome) {
    if (id != calibrationJob_) return;
    calibrationJob_ = 0;
    bool applied = false;
    QString message = outcome.message;
    if (outcome.ok) {
        Recipe now;
        try {
            now = editor_->recipe();
        } catch (const std::exception&) {
        }
        applied = toJson(now).dump() == calibratedFrom_;
        if (applied) editor_->setRecipe(*calibratedRecipe_);  // recipeChanged() follows: the panel shows the exact figures
        else message = tr("The recipe changed while it was calibrated: its choices were not applied. Calibrate again.");
    }
    calibratedRecipe_.reset();
    status_->setText(message);
    updateCalibrateButton();
    emit calibrated(applied);
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
