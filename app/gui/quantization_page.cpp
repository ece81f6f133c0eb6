#include "app/gui/quantization_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <QtConcurrent>

#include <nlohmann/json.hpp>

#include "app/gui/queued_progress.h"
#include "app/gui/worker_outcome.h"
#include "core/error.h"
#include "core/model/inventory.h"
#include "core/recipes/recipe.h"

namespace whittle::gui {

namespace {

QString joined(const std::vector<std::string>& v) {
    QStringList l;
    for (const auto& s : v) l << QString::fromStdString(s);
    return l.join(", ");
}

Json splitList(const QString& text) {
    Json a = Json::array();
    for (const QString& part : text.split(',', Qt::SkipEmptyParts))
        if (!part.trimmed().isEmpty()) a.push_back(part.trimmed().toStdString());
    return a;
}

}  // namespace

QuantizationPage::QuantizationPage(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* settings = new QGroupBox(tr("Quantization"), this);
    auto* form = new QFormLayout(settings);
    method_ = new QComboBox(settings);
    method_->addItem(tr("INT4, round to nearest (RTN)"), "rtn");
    method_->addItem(tr("INT4, GPTQ (calibrated)"), "gptq");
    method_->addItem(tr("NVFP4 (4-bit float, FP8 scales)"), "nvfp4");
    form->addRow(tr("Method"), method_);
    group_ = new QComboBox(settings);
    for (int g : {32, 64, 128}) group_->addItem(tr("%1 inputs").arg(g), g);
    group_->addItem(tr("per channel"), 0);
    group_->setCurrentIndex(2);
    form->addRow(tr("Group"), group_);
    symmetric_ = new QCheckBox(tr("symmetric (zero point 8; what vLLM's Marlin kernels need)"), settings);
    symmetric_->setChecked(true);
    form->addRow(QString(), symmetric_);
    actOrder_ = new QCheckBox(tr("act-order (most active inputs first; static groups keep the layout)"), settings);
    form->addRow(QString(), actOrder_);
    auto* calibRow = new QHBoxLayout;
    calibFiles_ = new QLineEdit(settings);
    calibFiles_->setPlaceholderText(tr("the model folder's heldout.txt"));
    calibBrowse_ = new QPushButton(tr("Browse…"), settings);
    calibRow->addWidget(calibFiles_, 1);
    calibRow->addWidget(calibBrowse_);
    form->addRow(tr("Calibration text"), calibRow);
    auto* sizeRow = new QHBoxLayout;
    samples_ = new QSpinBox(settings);
    samples_->setRange(1, 4096);
    samples_->setValue(256);
    length_ = new QSpinBox(settings);
    length_->setRange(16, 8192);
    length_->setValue(2048);
    sizeRow->addWidget(samples_);
    sizeRow->addWidget(new QLabel(tr("windows of"), settings));
    sizeRow->addWidget(length_);
    sizeRow->addWidget(new QLabel(tr("tokens"), settings));
    sizeRow->addStretch();
    form->addRow(tr("Calibration size"), sizeRow);
    exclude_ = new QLineEdit(joined(QuantizeRecipe::defaultExclusions()), settings);
    exclude_->setToolTip(tr("Comma-separated name patterns (* and ?) of linear weights to keep in 16 bits"));
    form->addRow(tr("Keep unquantized"), exclude_);
    format_ = new QComboBox(settings);
    form->addRow(tr("Output format"), format_);
    layout->addWidget(settings);

    plan_ = new QLabel(tr("Open a checkpoint to see what quantization writes."), this);
    plan_->setWordWrap(true);
    plan_->setObjectName("plan");
    layout->addWidget(plan_);

    auto* outRow = new QHBoxLayout;
    output_ = new QLineEdit(this);
    output_->setPlaceholderText(tr("output folder (must not exist)"));
    auto* browse = new QPushButton(tr("Choose…"), this);
    start_ = new QPushButton(tr("Quantize"), this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    outRow->addWidget(output_, 1);
    outRow->addWidget(browse);
    outRow->addWidget(start_);
    outRow->addWidget(cancel_);
    layout->addLayout(outRow);
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    layout->addWidget(progress_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    layout->addWidget(status_);
    layout->addStretch();

    connect(method_, &QComboBox::currentIndexChanged, this, &QuantizationPage::methodChanged);
    for (QComboBox* c : {group_, format_}) connect(c, &QComboBox::currentIndexChanged, this, &QuantizationPage::updatePlan);
    for (QCheckBox* c : {symmetric_, actOrder_}) connect(c, &QCheckBox::toggled, this, &QuantizationPage::updatePlan);
    for (QLineEdit* e : {exclude_, calibFiles_}) connect(e, &QLineEdit::textChanged, this, &QuantizationPage::updatePlan);
    for (QSpinBox* s : {samples_, length_}) connect(s, &QSpinBox::valueChanged, this, &QuantizationPage::updatePlan);
    connect(output_, &QLineEdit::textChanged, this, &QuantizationPage::updatePlan);
    connect(browse, &QPushButton::clicked, this, &QuantizationPage::chooseOutput);
    connect(calibBrowse_, &QPushButton::clicked, this, &QuantizationPage::chooseCalibration);
    connect(start_, &QPushButton::clicked, this, &QuantizationPage::startQuantize);
    connect(cancel_, &QPushButton::clicked, this, &QuantizationPage::cancelQuantize);
    connect(&loadWatcher_, &QFutureWatcherBase::finished, this, &QuantizationPage::loadDone);
    connect(&runWatcher_, &QFutureWatcherBase::finished, this, &QuantizationPage::runDone);
    connect(this, &QuantizationPage::progressed, this, [this](const QString& stage, double f, double eta) {
        progress_->setValue(int(f * 1000));
        progress_->setFormat(eta >= 0 ? tr("%1 %p% — %2 s left").arg(stage).arg(int(eta + 0.5)) : tr("%1 %p%").arg(stage));
    });
    methodChanged();
}

QuantizationPage::~QuantizationPage() {
    if (cancelToken_) cancelToken_->cancel();
    runWatcher_.waitForFinished();
    loadWatcher_.waitForFinished();
}

bool QuantizationPage::busy() const { return loadWatcher_.isRunning() || runWatcher_.isRunning(); }

void QuantizationPage::open(const QString& modelDir) {
    if (busy()) return;
    modelDir_ = modelDir;
    checkpoint_.reset();
    plan_->setText(tr("Reading %1 …").arg(modelDir));
    loadWatcher_.setFuture(QtConcurrent::run([dir = modelDir.toStdString(), this]() -> std::shared_ptr<const Checkpoint> {
        try {
            return std::make_shared<const Checkpoint>(Checkpoint::open(dir));
        } catch (const std::exception& e) {
            loadError_ = QString::fromUtf8(e.what());  // read on the GUI thread only after the future finished
            return nullptr;
        }
    }));
}

void QuantizationPage::loadDone() {
    checkpoint_ = loadWatcher_.result();
    if (!checkpoint_) {
        plan_->setText(loadError_);
        emit loadFailed(loadError_);
        return;
    }
    updatePlan();
    emit loaded();
}

void QuantizationPage::methodChanged() {
    const QString m = method_->currentData().toString();
    const bool nvfp4 = m == "nvfp4", gptq = m == "gptq";
    group_->setEnabled(!nvfp4);  // NVFP4's 16-input blocks are fixed
    symmetric_->setEnabled(!nvfp4);
    actOrder_->setEnabled(gptq);
    for (QWidget* w : std::initializer_list<QWidget*>{calibFiles_, calibBrowse_, samples_, length_}) w->setEnabled(gptq);
    const QSignalBlocker block(format_);
    format_->clear();
    if (nvfp4) {
        format_->addItem(tr("NVFP4, ModelOpt layout (vLLM, W4A16_NVFP4)"), "nvfp4-modelopt");
        format_->addItem(tr("NVFP4, compressed-tensors layout (vLLM, NVFP4A16)"), "nvfp4-ct");
    } else {
        format_->addItem(tr("GPTQ v1 safetensors (transformers, GPTQModel, vLLM)"), "gptq");
    }
    updatePlan();
}

QuantizeRecipe QuantizationPage::recipe() const {
    // The same JSON section the CLI builds from its flags, checked by the same parser.
    const QString m = method_->currentData().toString();
    Json q{{"method", m.toStdString()}, {"format", format_->currentData().toString().toStdString()}, {"exclude", splitList(exclude_->text())}};
    if (m != "nvfp4") {
        q["group_size"] = group_->currentData().toInt();
        q["symmetric"] = symmetric_->isChecked();
    }
    if (m == "gptq") {
        q["act_order"] = actOrder_->isChecked();
        Json calib{{"samples", samples_->value()}, {"length", length_->value()}};
        if (!calibFiles_->text().trimmed().isEmpty()) calib["files"] = splitList(calibFiles_->text());
        q["calibration"] = calib;
    }
    return parseQuantizeRecipe(q, "the Quantize page");
}

QString QuantizationPage::planText() const { return plan_->text(); }
bool QuantizationPage::canStart() const { return start_->isEnabled(); }

void QuantizationPage::updatePlan() {
    planOk_ = false;
    if (checkpoint_) {
        try {
            const QuantizePlan p = planQuantization(*checkpoint_, recipe());
            if (checkpoint_->hasQuantizedWeights()) throw UsageError(modelDir_.toStdString(), {}, "is already quantized");
            plan_->setText(tr("%1 linear weights (%2 parameters) at %3 bits per weight; %4 kept as they are (%5 linears by rule). "
                              "Tensor data %6 → %7.")
                               .arg(p.tensorsQuantized)
                               .arg(QString::fromStdString(formatParams(p.weightsQuantized)))
                               .arg(p.bitsPerWeight, 0, 'f', 3)
                               .arg(p.tensorsKept)
                               .arg(p.excluded.size())
                               .arg(QString::fromStdString(formatBytes(p.bytesBefore)), QString::fromStdString(formatBytes(p.bytesAfter))));
            planOk_ = true;
        } catch (const std::exception& e) {
            plan_->setText(QString::fromUtf8(e.what()));
        }
    }
    start_->setEnabled(planOk_ && !output_->text().trimmed().isEmpty() && !runWatcher_.isRunning());
}

void QuantizationPage::chooseOutput() {
    const QString d = QFileDialog::getSaveFileName(this, tr("Write the quantized checkpoint to"), output_->text());
    if (!d.isEmpty()) output_->setText(d);
}

void QuantizationPage::chooseCalibration() {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Calibration text files"), modelDir_, tr("Text (*.txt);;All files (*)"));
    if (!files.isEmpty()) calibFiles_->setText(files.join(", "));
}

void QuantizationPage::startQuantize() {
    if (!checkpoint_ || !planOk_ || runWatcher_.isRunning()) return;
    const QString dest = output_->text().trimmed();
    Recipe r;
    r.quantization = recipe();
    cancelToken_ = std::make_shared<CancelToken>();
    start_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    status_->setText(tr("Quantizing into %1 …").arg(dest));
    auto progress = std::make_shared<QueuedProgress>(this, [page = QPointer<QuantizationPage>(this)](const QString& s, double f, double eta) {
        if (page) emit page->progressed(s, f, eta);
    });
    runWatcher_.setFuture(QtConcurrent::run([ck = checkpoint_, r, dest, cancel = cancelToken_, progress] {
        return runWorker([&] {
            const QuantizeReport rep = quantizeCheckpoint(*ck, r, dest.toStdString(), false, *progress, *cancel);
            return QObject::tr("Wrote %1: %2 tensors at %3 bits per weight, %4 → %5, in %6 s")
                .arg(dest)
                .arg(rep.tensorsQuantized)
                .arg(rep.bitsPerWeight, 0, 'f', 3)
                .arg(QString::fromStdString(formatBytes(rep.bytesBefore)), QString::fromStdString(formatBytes(rep.bytesWritten)))
                .arg(rep.seconds, 0, 'f', 1);
        });
    }));
}

void QuantizationPage::cancelQuantize() {
    if (cancelToken_) cancelToken_->cancel();
}

void QuantizationPage::runDone() {
    const WorkerOutcome r = runWatcher_.result();
    cancel_->setEnabled(false);
    updatePlan();
    presentOutcome(r, status_, progress_, this, tr("Quantization failed"));
    emit finished(r.ok, r.message);
}

}  // namespace whittle::gui
