#include "app/gui/estimate_panel.h"

#include <QAbstractTableModel>
#include <QComboBox>
#include <QElapsedTimer>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QSlider>
#include <QSpinBox>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <algorithm>
#include <cmath>

#include "app/gui/memory_bar.h"
#include "core/error.h"
#include "core/model/inventory.h"

namespace whittle::gui {

namespace {
QString bytes(std::uint64_t n) { return QString::fromStdString(formatBytes(n)); }

// "−47.1 %" / "+3.0 %": the change from `before` to `after`.
QString change(std::uint64_t before, std::uint64_t after) {
    if (before == 0) return QString();
    const double pct = 100.0 * (double(after) - double(before)) / double(before);
    return QString("%1%2 %").arg(pct < 0 ? QStringLiteral("−") : QStringLiteral("+")).arg(std::abs(pct), 0, 'f', 1);
}

constexpr int kMinContextLog2 = 8;  // 256 positions
}  // namespace

// The parts of the checkpoint with bytes before or after the recipe: bytes before, after, and the change.
class PartSizeModel : public QAbstractTableModel {
public:
    using QAbstractTableModel::QAbstractTableModel;
    enum Column { ColPart, ColBefore, ColAfter, ColChange, ColCount };

    void setEstimate(const Estimate* e) {
        beginResetModel();
        rows_.clear();
        if (e)
            for (Part p : kAllParts) {
                const Totals before = e->input.parts.at(p), after = e->output.parts.at(p);
                if (before.bytes || after.bytes) rows_.push_back({p, before.bytes, after.bytes});
            }
        endResetModel();
    }
    int rowCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : int(rows_.size()); }
    int columnCount(const QModelIndex& parent = {}) const override { return parent.isValid() ? 0 : ColCount; }
    QVariant data(const QModelIndex& i, int role) const override {
        if (!i.isValid() || i.row() >= int(rows_.size())) return {};
        const Row& r = rows_[std::size_t(i.row())];
        if (role == Qt::DisplayRole) {
            switch (i.column()) {
                case ColPart: return QString::fromUtf8(partName(r.part));
                case ColBefore: return bytes(r.before);
                case ColAfter: return bytes(r.after);
                case ColChange: return change(r.before, r.after);
            }
        }
        if (role == Qt::ToolTipRole)  // the exact byte counts, and the whole name where the column elides it
            return QObject::tr("%1: %2 → %3 bytes")
                .arg(QString::fromUtf8(partName(r.part)), QLocale().toString(qulonglong(r.before)), QLocale().toString(qulonglong(r.after)));
        if (role == Qt::UserRole && i.column() != ColPart) return QVariant::fromValue<qulonglong>(i.column() == ColBefore ? r.before : r.after);
        if (role == Qt::TextAlignmentRole && i.column() != ColPart) return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    }
    QVariant headerData(int section, Qt::Orientation o, int role) const override {
        if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
        static const char* names[] = {"Part", "Before", "After", "Change"};
        return section >= 0 && section < ColCount ? QObject::tr(names[section]) : QVariant();
    }

private:
    struct Row {
        Part part;
        std::uint64_t before, after;
    };
    std::vector<Row> rows_;
};

EstimatePanel::EstimatePanel(QWidget* parent) : QWidget(parent) {
    auto* runtimeBox = new QGroupBox(tr("Running it"), this);
    auto* form = new QFormLayout(runtimeBox);
    context_ = new QSlider(Qt::Horizontal, runtimeBox);
    context_->setRange(kMinContextLog2, 17);
    context_->setValue(12);  // 4k
    context_->setPageStep(1);
    context_->setTickPosition(QSlider::TicksBelow);
    contextText_ = new QLabel(runtimeBox);
    contextText_->setMinimumWidth(110);
    auto* ctxRow = new QHBoxLayout;
    ctxRow->addWidget(context_, 1);
    ctxRow->addWidget(contextText_);
    form->addRow(tr("Context"), ctxRow);
    chunk_ = new QSpinBox(runtimeBox);
    chunk_->setRange(1, 4096);
    chunk_->setValue(RuntimeOptions{}.prefillChunk);
    chunk_->setSuffix(tr(" tokens a step"));
    form->addRow(tr("Prefill chunk"), chunk_);
    ple_ = new QComboBox(runtimeBox);
    ple_->addItem(tr("in host RAM (gathered row by row)"), "host");
    ple_->addItem(tr("in device memory"), "gpu");
    form->addRow(tr("PLE table"), ple_);
    deviceBox_ = new QComboBox(runtimeBox);
    deviceBox_->addItem(tr("No device (sizes only)"), -1);
    form->addRow(tr("Device"), deviceBox_);

    auto* figures = new QGroupBox(tr("Estimate"), this);
    auto* col = new QVBoxLayout(figures);
    disk_ = new QLabel(figures);
    disk_->setObjectName("estimateDisk");
    disk_->setWordWrap(true);
    partsModel_ = new PartSizeModel(this);
    parts_ = new QTableView(figures);
    parts_->setModel(partsModel_);
    parts_->verticalHeader()->hide();
    // The figures are never elided; a long part name is, with the whole name in its tooltip.
    parts_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    parts_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    parts_->setTextElideMode(Qt::ElideMiddle);
    parts_->setSelectionMode(QAbstractItemView::NoSelection);
    parts_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    memory_ = new QLabel(figures);
    memory_->setObjectName("estimateMemory");
    memory_->setWordWrap(true);
    bar_ = new MemoryBar(figures);
    host_ = new QLabel(figures);
    host_->setObjectName("estimateHost");
    host_->setWordWrap(true);
    warning_ = new QLabel(figures);
    warning_->setObjectName("estimateWarning");
    warning_->setWordWrap(true);
    note_ = new QLabel(figures);
    note_->setWordWrap(true);
    note_->setStyleSheet("color: palette(mid)");
    col->addWidget(disk_);
    col->addWidget(parts_, 1);
    col->addWidget(memory_);
    col->addWidget(bar_);
    col->addWidget(host_);
    col->addWidget(warning_);
    col->addWidget(note_);

    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    outer->addWidget(runtimeBox);
    outer->addWidget(figures, 1);

    connect(context_, &QSlider::valueChanged, this, &EstimatePanel::recompute);
    connect(chunk_, &QSpinBox::valueChanged, this, &EstimatePanel::recompute);
    connect(ple_, &QComboBox::currentIndexChanged, this, &EstimatePanel::recompute);
    connect(deviceBox_, &QComboBox::currentIndexChanged, this, &EstimatePanel::recompute);
    connect(&preparing_, &QFutureWatcher<void>::finished, this, &EstimatePanel::recompute);  // the stages are kept now
    clearFigures(tr("Open a checkpoint to see what a recipe makes of it."));
}

EstimatePanel::~EstimatePanel() { preparing_.waitForFinished(); }

QAbstractItemModel* EstimatePanel::partsModel() const { return partsModel_; }

void EstimatePanel::setCheckpoint(std::shared_ptr<const Checkpoint> checkpoint) {
    // The slider reaches the model's own maximum context (128k for E2B and E4B).
    int top = 17;
    if (checkpoint && checkpoint->config().maxPositionEmbeddings > 0)
        top = std::max(kMinContextLog2, int(std::floor(std::log2(double(checkpoint->config().maxPositionEmbeddings)))));
    estimator_ = checkpoint ? std::make_shared<const Estimator>(std::move(checkpoint)) : nullptr;
    {
        const QSignalBlocker block(context_);
        context_->setMaximum(top);
    }
    recompute();
}

void EstimatePanel::setRecipe(const Recipe& recipe) {
    recipe_ = recipe;
    recompute();
}

void EstimatePanel::setRecipeError(const QString& why) {
    recipe_.reset();
    pending_ = false;
    estimate_.reset();
    clearFigures(why);
    emit estimated();
}

void EstimatePanel::setDevices(const std::vector<gpu::DeviceCaps>& devices) {
    targets_.clear();
    for (const gpu::DeviceCaps& d : devices)
        targets_.push_back({QString::fromStdString(d.name), d.roomForModel(), d.memoryBudget, d.maxStorageBufferRange, int(d.index)});
    for (int gb : {4, 6, 8, 12, 16, 24})  // marketed sizes: GB = 2^30 bytes on GPU boxes
        targets_.push_back({tr("A %1 GB GPU").arg(gb), std::uint64_t(gb) * (1ull << 30) / 10 * 8, false, 0, -1});
    const QSignalBlocker block(deviceBox_);
    deviceBox_->clear();
    deviceBox_->addItem(tr("No device (sizes only)"), -1);
    for (std::size_t i = 0; i < targets_.size(); ++i) {
        const Target& t = targets_[i];
        deviceBox_->addItem(t.deviceIndex >= 0 ? QString("%1 — %2 free%3").arg(t.name, bytes(t.room), t.measured ? QString() : tr(" (estimated)"))
                                               : QString("%1 — %2 for the model (estimated)").arg(t.name, bytes(t.room)),
                            int(i));
    }
    const int picked = gpu::pickDevice(devices);
    for (std::size_t i = 0; i < targets_.size(); ++i)
        if (picked >= 0 && targets_[i].deviceIndex == picked) deviceBox_->setCurrentIndex(int(i) + 1);
    recompute();
}

const EstimatePanel::Target* EstimatePanel::target() const {
    const int i = deviceBox_->currentData().toInt();
    return i >= 0 && i < int(targets_.size()) ? &targets_[std::size_t(i)] : nullptr;
}

RuntimeOptions EstimatePanel::runtime() const {
    RuntimeOptions r;
    r.context = 1 << context_->value();
    if (estimator_ && estimator_->checkpoint().config().maxPositionEmbeddings > 0)
        r.context = std::min(r.context, estimator_->checkpoint().config().maxPositionEmbeddings);
    r.prefillChunk = chunk_->value();
    r.pleInVram = ple_->currentData().toString() == "gpu";
    if (const Target* t = target()) r.maxBindingBytes = t->maxBinding;  // as the engine chunks the logits
    return r;
}

void EstimatePanel::recompute() {
    const RuntimeOptions r = runtime();
    contextText_->setText(tr("%L1 positions").arg(r.context));
    if (!estimator_ || !recipe_) {
        pending_ = false;
        estimate_.reset();
        clearFigures(estimator_ ? note_->text() : tr("Open a checkpoint to see what a recipe makes of it."));
        emit estimated();
        return;
    }
    QElapsedTimer t;
    t.start();
    try {
        if (std::optional<Estimate> e = estimator_->cached(*recipe_, r)) {
            lastMs_ = double(t.nsecsElapsed()) / 1e6;
            estimate_ = std::move(e);
            pending_ = false;
            showEstimate();
            emit estimated();
            return;
        }
    } catch (const std::exception& e) {  // the recipe's stages refused it (named field, already quantized, …)
        pending_ = false;
        estimate_.reset();
        clearFigures(QString::fromUtf8(e.what()));
        emit estimated();
        return;
    }
    // Not kept yet: computed on a worker thread, one recipe at a time; when it ends, recompute() asks again
    // for whatever the recipe is then.
    pending_ = true;
    note_->setText(tr("Estimating this recipe…"));
    if (!preparing_.isRunning())
        preparing_.setFuture(QtConcurrent::run([estimator = estimator_, recipe = *recipe_] { estimator->prepare(recipe); }));
}

void EstimatePanel::clearFigures(const QString& why) {
    disk_->setText(tr("Disk: —"));
    memory_->setText(tr("Device memory: —"));
    host_->setText(tr("Host RAM: —"));
    warning_->clear();
    note_->setText(why);
    bar_->setSegments({}, 0, {});
    partsModel_->setEstimate(nullptr);
}

void EstimatePanel::showEstimate() {
    const Estimate& e = *estimate_;
    const OutputEstimate& in = e.input;
    const OutputEstimate& out = e.output;
    const EngineMemory& m = out.memory;
    const RuntimeOptions r = runtime();
    QString disk = tr("Disk: %1 → <b>%2</b> (%3)").arg(bytes(in.diskBytes()), bytes(out.diskBytes()), change(in.diskBytes(), out.diskBytes()));
    if (e.low && e.high) disk += tr(", %1 … %2 for FLAP's widths").arg(bytes(e.low->diskBytes()), bytes(e.high->diskBytes()));
    for (const auto& [file, n] : out.ggufBytes) disk += tr("; with %1 %2").arg(QString::fromStdString(file), bytes(n));
    disk_->setText(disk + (e.exact ? QString() : tr(" — estimated")));
    partsModel_->setEstimate(&e);

    memory_->setText(tr("Device memory at %L1 positions: <b>%2</b> — weights %3%4, KV cache %5 (sliding %6 in %7 layers, full %8 in %9), "
                        "scratch %10")
                         .arg(r.context)
                         .arg(bytes(m.deviceTotal()), bytes(m.weights), r.pleInVram ? tr(", PLE table %1").arg(bytes(m.pleTable)) : QString(),
                              bytes(m.kv.total()), bytes(m.kv.slidingBytes))
                         .arg(m.kv.slidingLayers)
                         .arg(bytes(m.kv.fullBytes))
                         .arg(m.kv.fullLayers)
                         .arg(bytes(m.scratch + m.hostVisible)));
    const Target* d = target();
    const std::uint64_t room = d ? d->room : 0;
    bar_->setSegments({{tr("weights"), m.weights, QColor(70, 130, 180)},
                       {tr("PLE table"), m.pleTable, QColor(150, 90, 190)},
                       {tr("KV cache"), m.kv.total(), QColor(240, 150, 40)},
                       {tr("scratch"), m.scratch + m.hostVisible, QColor(150, 150, 150)}},
                      room, d ? tr("%1 free%2").arg(bytes(room), d->measured ? QString() : tr(" (estimated)")) : QString());
    host_->setText(tr("Host RAM the engine gathers from: <b>%1</b> (the main embedding%2)")
                       .arg(bytes(m.hostTables), r.pleInVram ? QString() : tr(" and the PLE table")));
    if (!d) {
        warning_->setText(tr("Choose a device to see whether it fits."));
        warning_->setStyleSheet(QString());
    } else if (m.deviceTotal() <= room) {
        warning_->setText(tr("Fits %1: %2 to spare.").arg(d->name, bytes(room - m.deviceTotal())));
        warning_->setStyleSheet("color: #1a7f37");
    } else {
        warning_->setText(tr("Does not fit %1: %2 more than its %3%4 would spill to host memory or fail. Shorten the context, "
                             "keep the PLE table in host RAM or quantize further.")
                              .arg(d->name, bytes(m.deviceTotal() - room), bytes(room), d->measured ? tr(" free") : tr(" (estimated free)")));
        warning_->setStyleSheet("color: #c00000; font-weight: bold");
    }
    note_->setText(QString::fromStdString(e.note));
}

}  // namespace whittle::gui
