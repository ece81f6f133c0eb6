#include "app/gui/quantization_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QHeaderView>
#include <QTableWidget>
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

#include "app/gui/worker_bridge.h"
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

QuantizationPage::QuantizationPage(WorkerBridge* bridge, QWidget* parent) : QWidget(parent), bridge_(bridge ? bridge : new WorkerBridge(this)) {
    auto* layout = new QVBoxLayout(this);
    auto* settings = new QGroupBox(tr("Quantization"), this);
    auto* form = new QFormLayout(settings);
    method_ = new QComboBox(settings);
    method_->addItem(tr("INT4, round to nearest (RTN)"), "rtn");
    method_->addItem(tr("INT4, GPTQ (calibrated)"), "gptq");
    method_->addItem(tr("NVFP4 (4-bit float, FP8 scales)"), "nvfp4");
    method_->addItem(tr("Mixed bit budget (a format per tensor, GPTQ)"), "budget");
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
    bpw_ = new QDoubleSpinBox(settings);
    bpw_->setRange(0, 16);
    bpw_->setDecimals(3);
    bpw_->setSingleStep(0.25);
    bpw_->setSpecialValueText(tr("as uniform INT4 g128"));
    bpw_->setToolTip(tr("Bits stored per quantized weight (codes, scales, zeros, g_idx, residuals)"));
    form->addRow(tr("Target bits per weight"), bpw_);
    candidates_ = new QLineEdit(settings);
    {
        QStringList ids;
        for (const IntOptions& f : budgetCandidates()) ids << QString::fromStdString(formatId(f));
        candidates_->setPlaceholderText(tr("all: %1").arg(ids.join(", ")));
    }
    candidates_->setToolTip(tr("Comma-separated formats the budget may choose from, e.g. int4-g128, int3-g128-asym"));
    form->addRow(tr("Candidate formats"), candidates_);
    exclude_ = new QLineEdit(joined(QuantizeRecipe::defaultExclusions()), settings);
    exclude_->setToolTip(tr("Comma-separated name patterns (* and ?) of linear weights to keep in 16 bits"));
    form->addRow(tr("Keep unquantized"), exclude_);
    tables_ = new QComboBox(settings);
    tables_->addItem(tr("keep as they are"), "keep");
    tables_->addItem(tr("rows of Q8_0 blocks (8.5 bits per weight)"), "q8_0");
    tables_->addItem(tr("rows of Q4_0 blocks (4.5 bits per weight)"), "q4_0");
    tables_->setToolTip(tr("The main embedding and the PLE table — most of E2B's bytes — as rows Whittle's engines gather from"));
    form->addRow(tr("Token tables"), tables_);
    format_ = new QComboBox(settings);
    form->addRow(tr("Output format"), format_);
    layout->addWidget(settings);

    plan_ = new QLabel(tr("Open a checkpoint to see what quantization writes."), this);
    plan_->setWordWrap(true);
    plan_->setObjectName("plan");
    layout->addWidget(plan_);
    budgetTable_ = new QTableWidget(0, 4, this);
    budgetTable_->setHorizontalHeaderLabels({tr("Tensor"), tr("Format"), tr("Bits per weight"), tr("Predicted error")});
    budgetTable_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    budgetTable_->verticalHeader()->setVisible(false);
    budgetTable_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    budgetTable_->setObjectName("budgetTable");
    layout->addWidget(budgetTable_, 1);

    auto* outRow = new QHBoxLayout;
    output_ = new QLineEdit(this);
    output_->setPlaceholderText(tr("output folder (must not exist)"));
    auto* browse = new QPushButton(tr("Choose…"), this);
    planButton_ = new QPushButton(tr("Plan"), this);
    planButton_->setToolTip(tr("Measure each linear's sensitivity on the calibration text and choose its format"));
    start_ = new QPushButton(tr("Quantize"), this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    outRow->addWidget(output_, 1);
    outRow->addWidget(browse);
    outRow->addWidget(planButton_);
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

    connect(method_, &QComboBox::currentIndexChanged, this, &QuantizationPage::methodChanged);
    for (QComboBox* c : {group_, format_, tables_}) connect(c, &QComboBox::currentIndexChanged, this, &QuantizationPage::updatePlan);
    for (QCheckBox* c : {symmetric_, actOrder_}) connect(c, &QCheckBox::toggled, this, &QuantizationPage::updatePlan);
    for (QLineEdit* e : {exclude_, calibFiles_, candidates_}) connect(e, &QLineEdit::textChanged, this, &QuantizationPage::updatePlan);
    connect(bpw_, &QDoubleSpinBox::valueChanged, this, &QuantizationPage::updatePlan);
    for (QSpinBox* s : {samples_, length_}) connect(s, &QSpinBox::valueChanged, this, &QuantizationPage::updatePlan);
    connect(output_, &QLineEdit::textChanged, this, &QuantizationPage::updatePlan);
    connect(browse, &QPushButton::clicked, this, &QuantizationPage::chooseOutput);
    connect(calibBrowse_, &QPushButton::clicked, this, &QuantizationPage::chooseCalibration);
    connect(start_, &QPushButton::clicked, this, &QuantizationPage::startQuantize);
    connect(planButton_, &QPushButton::clicked, this, &QuantizationPage::startPlan);
    connect(cancel_, &QPushButton::clicked, this, &QuantizationPage::cancelQuantize);
    connect(&loadWatcher_, &QFutureWatcherBase::finished, this, &QuantizationPage::loadDone);
    connect(bridge_, &WorkerBridge::progressed, this, [this](int id, const QString& stage, double f, double eta) {
        if (id == runJob_ || id == planJob_) emit progressed(stage, f, eta);
    });
    connect(bridge_, &WorkerBridge::finished, this, [this](int id, const WorkerOutcome& outcome) {
        if (id == runJob_) runDone(outcome);
        else if (id == planJob_) planDone(outcome);
    });
    connect(this, &QuantizationPage::progressed, this, [this](const QString& stage, double f, double eta) {
        progress_->setValue(int(f * 1000));
        progress_->setFormat(eta >= 0 ? tr("%1 %p% — %2 s left").arg(stage).arg(int(eta + 0.5)) : tr("%1 %p%").arg(stage));
    });
    methodChanged();
}

QuantizationPage::~QuantizationPage() {
    // The jobs hold what they use (the checkpoint, the plan's result); the bridge's owner waits for them.
    if (runJob_) bridge_->cancel(runJob_);
    if (planJob_) bridge_->cancel(planJob_);
    loadWatcher_.waitForFinished();
}

bool QuantizationPage::running() const { return runJob_ != 0 || planJob_ != 0; }
bool QuantizationPage::busy() const { return loadWatcher_.isRunning() || running(); }

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

void QuantizationPage::open(std::shared_ptr<const Checkpoint> checkpoint) {
    if (busy() || !checkpoint) return;
    modelDir_ = QString::fromStdString(checkpoint->dir().string());
    checkpoint_ = std::move(checkpoint);
    updatePlan();
    emit loaded();
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
    const bool nvfp4 = m == "nvfp4", budget = m == "budget", calibrated = m == "gptq" || budget;
    group_->setEnabled(!nvfp4 && !budget);  // NVFP4's 16-input blocks are fixed; the budget picks per tensor
    symmetric_->setEnabled(!nvfp4 && !budget);
    actOrder_->setEnabled(calibrated);
    for (QWidget* w : std::initializer_list<QWidget*>{calibFiles_, calibBrowse_, samples_, length_}) w->setEnabled(calibrated);
    for (QWidget* w : std::initializer_list<QWidget*>{bpw_, candidates_}) w->setEnabled(budget);
    planButton_->setVisible(budget);
    budgetTable_->setVisible(budget);
    const QSignalBlocker block(format_);
    format_->clear();
    if (nvfp4) {
        format_->addItem(tr("NVFP4, ModelOpt layout (vLLM, W4A16_NVFP4)"), "nvfp4-modelopt");
        format_->addItem(tr("NVFP4, compressed-tensors layout (vLLM, NVFP4A16)"), "nvfp4-ct");
    } else {
        format_->addItem(tr("GPTQ v1 safetensors (transformers, GPTQModel, vLLM)"), "gptq");
    }
    format_->addItem(tr("Dequantized safetensors in the input's dtype (any tool; the input's size)"), "hf");
    updatePlan();
}

QuantizeRecipe QuantizationPage::recipe() const {
    // The same JSON section the CLI builds from its flags, checked by the same parser.
    const QString m = method_->currentData().toString();
    Json q{{"method", m.toStdString()}, {"format", format_->currentData().toString().toStdString()}, {"exclude", splitList(exclude_->text())}};
    if (tables_->currentData().toString() != "keep") q["embeddings"] = tables_->currentData().toString().toStdString();
    if (m == "rtn" || m == "gptq") {
        q["group_size"] = group_->currentData().toInt();
        q["symmetric"] = symmetric_->isChecked();
    }
    if (m == "budget") {
        q["bpw"] = bpw_->value();
        if (!candidates_->text().trimmed().isEmpty()) q["candidates"] = splitList(candidates_->text());
    }
    if (m == "gptq" || m == "budget") {
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
    bool canPlan = false;
    if (checkpoint_) {
        try {
            const QuantizeRecipe q = recipe();
            if (checkpoint_->hasQuantizedWeights()) throw UsageError(modelDir_.toStdString(), {}, "is already quantized");
            std::map<std::string, IntOptions> formats;
            if (q.method == "budget") {
                // A shown plan stays valid only for the settings it was measured with.
                if (budgetPlan_ && budgetPlanRecipe_ != toJson(q).dump()) {
                    budgetPlan_.reset();
                    showBudgetPlan();
                }
                canPlan = true;
                if (budgetPlan_) formats = budgetPlan_->formats();
                else
                    plan_->setText(tr("The bit budget measures every linear's sensitivity on the calibration text before it chooses the "
                                      "formats: press Plan to see the per-tensor table, then Quantize."));
            }
            if (q.method == "budget" && !budgetPlan_) return finishUpdate(canPlan);
            const QuantizePlan p = planQuantization(*checkpoint_, q, formats);
            QString tables;
            if (p.tablesAsRows > 0)
                tables = tr(" %1 token tables as rows of blocks: %2 → %3.")
                             .arg(p.tablesAsRows)
                             .arg(QString::fromStdString(formatBytes(p.tableBytesBefore)), QString::fromStdString(formatBytes(p.tableBytesAfter)));
            plan_->setText(tr("%1 linear weights (%2 parameters) at %3 bits per weight; %4 kept as they are (%5 linears by rule). "
                              "Tensor data %6 → %7.")
                               .arg(p.tensorsQuantized)
                               .arg(QString::fromStdString(formatParams(p.weightsQuantized)))
                               .arg(p.bitsPerWeight, 0, 'f', 3)
                               .arg(p.tensorsKept)
                               .arg(p.excluded.size())
                               .arg(QString::fromStdString(formatBytes(p.bytesBefore)), QString::fromStdString(formatBytes(p.bytesAfter))) +
                           tables);
            planOk_ = true;
        } catch (const std::exception& e) {
            plan_->setText(QString::fromUtf8(e.what()));
        }
    }
    finishUpdate(canPlan);
}

void QuantizationPage::finishUpdate(bool canPlan) {
    planButton_->setEnabled(canPlan && !running());
    start_->setEnabled(planOk_ && !output_->text().trimmed().isEmpty() && !running());
}

void QuantizationPage::showBudgetPlan() {
    budgetTable_->setRowCount(0);
    if (!budgetPlan_) return;
    const BitBudgetPlan& p = *budgetPlan_;
    budgetTable_->setRowCount(int(p.tensors.size()));
    for (std::size_t t = 0; t < p.tensors.size(); ++t) {
        const TensorSensitivity& s = p.tensors[t];
        const std::size_t c = std::size_t(p.choice[t]);
        const QStringList cells{QString::fromStdString(s.name), QString::fromStdString(formatName(p.candidates[c])),
                                QString::number(double(s.bits[c]) / double(s.weights), 'f', 3), QString::number(s.error[c], 'e', 3)};
        for (int col = 0; col < 4; ++col) {
            auto* item = new QTableWidgetItem(cells[col]);
            if (col >= 2) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            budgetTable_->setItem(int(t), col, item);
        }
    }
}

void QuantizationPage::startPlan() {
    if (!checkpoint_ || running()) return;
    QuantizeRecipe q;
    try {
        q = recipe();
    } catch (const std::exception&) {
        return;  // the plan text already shows the parser's message
    }
    if (q.method != "budget") return;
    budgetPlan_.reset();
    showBudgetPlan();
    budgetPlanRecipe_ = toJson(q).dump();
    pendingPlan_ = std::make_shared<BitBudgetPlan>();
    planButton_->setEnabled(false);
    start_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    status_->setText(tr("Measuring each linear's sensitivity …"));
    // Calibration state beyond the memory limit spills next to the output, where the run writes too.
    const QString out = output_->text().trimmed();
    const std::filesystem::path scratch =
        out.isEmpty() ? std::filesystem::temp_directory_path() : std::filesystem::absolute(out.toStdString()).parent_path();
    planJob_ = bridge_->submit(tr("bit budget plan"), [ck = checkpoint_, q, scratch, result = pendingPlan_](Progress& progress, const CancelToken& cancel) {
        *result = planBitBudget(*ck, q, scratch, progress, cancel);
        return QObject::tr("Planned %1 tensors at %2 bits per weight (target %3) in %4 s")
            .arg(result->tensors.size())
            .arg(result->bitsPerWeight, 0, 'f', 3)
            .arg(result->targetBitsPerWeight, 0, 'f', 3)
            .arg(result->seconds, 0, 'f', 1);
    });
}

void QuantizationPage::planDone(const WorkerOutcome& r) {
    planJob_ = 0;
    cancel_->setEnabled(false);
    if (r.ok) budgetPlan_ = std::move(*pendingPlan_);
    pendingPlan_.reset();
    showBudgetPlan();
    updatePlan();
    presentOutcome(r, status_, progress_, this, tr("Planning the bit budget failed"));
    emit planned(r.ok, r.message);
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
    if (!checkpoint_ || !planOk_ || running()) return;
    const QString dest = output_->text().trimmed();
    Recipe r;
    r.quantization = recipe();
    start_->setEnabled(false);
    planButton_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    status_->setText(tr("Quantizing into %1 …").arg(dest));
    // The bit budget writes the plan on show (planOk_ holds only with one).
    std::shared_ptr<const BitBudgetPlan> plan =
        r.quantization->method == "budget" && budgetPlan_ ? std::make_shared<const BitBudgetPlan>(*budgetPlan_) : nullptr;
    runJob_ = bridge_->submit(tr("quantize into %1").arg(dest), [ck = checkpoint_, r, dest, plan](Progress& progress, const CancelToken& cancel) {
        const QuantizeReport rep = quantizeCheckpoint(*ck, r, dest.toStdString(), false, progress, cancel, plan.get());
        return QObject::tr("Wrote %1: %2 tensors at %3 bits per weight, %4 → %5, in %6 s")
            .arg(dest)
            .arg(rep.tensorsQuantized)
            .arg(rep.bitsPerWeight, 0, 'f', 3)
            .arg(QString::fromStdString(formatBytes(rep.bytesBefore)), QString::fromStdString(formatBytes(rep.bytesWritten)))
            .arg(rep.seconds, 0, 'f', 1);
    });
}

void QuantizationPage::cancelQuantize() {
    if (runJob_) bridge_->cancel(runJob_);
    if (planJob_) bridge_->cancel(planJob_);
}

void QuantizationPage::runDone(const WorkerOutcome& r) {
    runJob_ = 0;
    cancel_->setEnabled(false);
    updatePlan();
    presentOutcome(r, status_, progress_, this, tr("Quantization failed"));
    emit finished(r.ok, r.message);
}

}  // namespace whittle::gui
