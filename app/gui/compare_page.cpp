#include "app/gui/compare_page.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "app/gui/chat_engine.h"
#include "app/gui/compare_model.h"
#include "app/gui/kld_size_chart.h"
#include "app/gui/worker_bridge.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/quality.h"
#include "core/pipeline/variant_summary.h"

namespace fs = std::filesystem;

namespace whittle::gui {

ComparePage::ComparePage(WorkerBridge* bridge, ChatEngine* engine, QWidget* parent)
    : QWidget(parent), bridge_(bridge), engine_(engine), model_(new CompareModel(this)) {
    original_ = new QLabel(tr("Open a checkpoint: its variants show here as the Run page makes them."), this);
    original_->setWordWrap(true);
    table_ = new QTableView(this);
    table_->setModel(model_);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setSectionResizeMode(CompareModel::Recipe, QHeaderView::Stretch);
    table_->verticalHeader()->hide();
    chart_ = new KldSizeChart(model_, this);

    auto* controls = new QHBoxLayout;
    add_ = new QPushButton(tr("Add variant…"), this);
    remove_ = new QPushButton(tr("Remove"), this);
    device_ = new QComboBox(this);
    device_->addItem(tr("no Vulkan device"), -1);
    evalTokens_ = new QSpinBox(this);
    evalTokens_->setRange(64, 1 << 20);
    evalTokens_->setValue(8192);
    evalTokens_->setSuffix(tr(" held-out tokens"));
    decodeTokens_ = new QSpinBox(this);
    decodeTokens_->setRange(4, 4096);
    decodeTokens_->setValue(64);
    decodeTokens_->setSuffix(tr(" decoded tokens"));
    measure_ = new QPushButton(tr("Measure missing"), this);
    controls->addWidget(add_);
    controls->addWidget(remove_);
    controls->addStretch();
    controls->addWidget(new QLabel(tr("Device"), this));
    controls->addWidget(device_);
    controls->addWidget(evalTokens_);
    controls->addWidget(decodeTokens_);
    controls->addWidget(measure_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    status_->setObjectName("compareStatus");

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(table_);
    split->addWidget(chart_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    auto* col = new QVBoxLayout(this);
    col->addWidget(original_);
    col->addLayout(controls);
    col->addWidget(split, 1);
    col->addWidget(status_);

    connect(add_, &QPushButton::clicked, this, &ComparePage::chooseVariant);
    connect(remove_, &QPushButton::clicked, this, &ComparePage::removeSelected);
    connect(measure_, &QPushButton::clicked, this, &ComparePage::measureMissing);
    connect(engine_, &ChatEngine::devicesListed, this, &ComparePage::devicesListed);
    connect(engine_, &ChatEngine::decodeMeasured, this, [this](int request, bool ok, double tokS, const QString& message) {
        const auto it = decodeRequests_.find(request);
        if (it == decodeRequests_.end()) return;  // another page's request
        const auto [dir, vulkan] = it->second;
        decodeRequests_.erase(it);
        if (ok) {
            const int row = model_->rowOf(dir);
            model_->setDecode(row, vulkan, tokS);
            record(row, [&] { recordDecode(dir, vulkan, tokS, decodeTokens_->value(), vulkan ? device_->currentText().toStdString() : "cpu"); });
        }
        oneDone(tr("decode of %1").arg(QString::fromStdString(dir.filename().string())), ok, message);
    });
    connect(bridge_, &WorkerBridge::finished, this, &ComparePage::evaluationDone);
    engine_->listDevices();
}

void ComparePage::devicesListed(const QStringList& labels, const QList<int>& devices, int preferred) {
    const int current = device_->currentData().toInt();
    device_->clear();
    device_->addItem(tr("no Vulkan device"), -1);
    for (int i = 0; i < devices.size(); ++i)
        if (devices[i] >= 0) device_->addItem(labels[i], devices[i]);
    const int pick = device_->findData(current >= 0 ? current : preferred);
    device_->setCurrentIndex(pick >= 0 ? pick : 0);
}

void ComparePage::open(const QString& dir) {
    try {
        const VariantSummary s = summarizeVariant(dir.toStdString());
        std::error_code ec;
        if (s.source && fs::is_directory(*s.source, ec)) {
            if (model_->rows().empty() || model_->rows()[0].summary.dir != *s.source) model_->setOriginal(summarizeVariant(*s.source));
            model_->addVariant(s);
        } else if (model_->rows().empty() || model_->rows()[0].summary.dir != s.dir) {
            model_->setOriginal(s);
        }
        original_->setText(tr("Variants of %1").arg(QDir::toNativeSeparators(QString::fromStdString(model_->rows()[0].summary.dir.string()))));
        status_->clear();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
    }
}

bool ComparePage::addVariant(const QString& dir) {
    if (model_->rows().empty()) {
        status_->setText(tr("Open the original checkpoint first."));
        return false;
    }
    try {
        const VariantSummary s = summarizeVariant(dir.toStdString());
        if (s.dir == model_->rows()[0].summary.dir) {
            status_->setText(tr("That is the original."));
            return false;
        }
        model_->addVariant(s);
        status_->setText(s.source && *s.source != model_->rows()[0].summary.dir
                             ? tr("%1 was made from %2, not from this original: its figures compare with that one.")
                                   .arg(dir, QString::fromStdString(s.source->string()))
                             : QString());
        return true;
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return false;
    }
}

void ComparePage::chooseVariant() {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Add a variant folder"));
    if (!d.isEmpty()) addVariant(d);
}

void ComparePage::removeSelected() {
    const auto rows = table_->selectionModel()->selectedRows();
    if (!rows.isEmpty()) model_->removeRow(rows.first().row());
}

void ComparePage::measureMissing() {
    if (model_->rows().empty() || pending_ > 0) return;
    failures_ = 0;
    EvaluationRecipe e;
    e.maxTokens = evalTokens_->value();
    const fs::path original = model_->rows()[0].summary.dir;
    const int device = device_->currentData().toInt();
    for (const CompareRow& r : model_->rows()) {
        const fs::path dir = r.summary.dir;
        const QString name = QString::fromStdString(r.summary.name);
        const bool needsQuality = r.original ? !r.ownPpl : !r.summary.quality;
        if (needsQuality) {
            ++pending_;
            auto result = std::make_shared<EvalReport>();
            const int id = bridge_->submit(tr("evaluate %1").arg(name), [dir, original, e, isOriginal = r.original, result](Progress& p, const CancelToken& c) {
                const Checkpoint ck = Checkpoint::open(dir);
                *result = isOriginal ? evaluateAlone(ck, e, p, c) : evaluateAgainstOriginal(ck, Checkpoint::open(original), e, p, c);
                return QObject::tr("perplexity %1").arg(result->ppl, 0, 'f', 3);
            });
            evaluations_[id] = {dir, r.original, result};
        }
        const std::vector<std::pair<bool, bool>> decodes{{false, !r.cpuTokS}, {true, device >= 0 && !r.vulkanTokS}};
        for (const auto& [vulkan, missing] : decodes) {
            if (!missing) continue;
            ++pending_;
            const int request = nextRequest_++;
            decodeRequests_[request] = {dir, vulkan};
            engine_->measureDecode(request, QString::fromStdString(dir.string()), vulkan ? device : -1, decodeTokens_->value());
        }
    }
    measure_->setEnabled(pending_ == 0);
    status_->setText(pending_ ? tr("Measuring %1 figures…").arg(pending_) : tr("Nothing is missing."));
    if (pending_ == 0) emit measured();
}

void ComparePage::evaluationDone(int job, const WorkerOutcome& o) {
    const auto it = evaluations_.find(job);
    if (it == evaluations_.end()) return;  // another page's job
    const PendingEvaluation e = it->second;
    evaluations_.erase(it);
    const int row = model_->rowOf(e.dir);
    if (o.ok && e.original) {
        model_->setOwnPpl(row, e.result->ppl);
    } else if (o.ok) {
        model_->setQuality(row, *e.result);
        record(row, [&] { recordQuality(e.dir, *e.result, model_->rows()[0].summary.dir); });
    }
    oneDone(tr("evaluation of %1").arg(QString::fromStdString(e.dir.filename().string())), o.ok, o.message);
}

void ComparePage::record(int row, const std::function<void()>& write) {
    // Only into a variant Whittle made (its whittle.json); the original and a folder added by hand without one
    // keep their figures in the page. A failed write is said, never fatal: the figure is on screen.
    if (row < 0 || model_->rows()[std::size_t(row)].original || !model_->rows()[std::size_t(row)].summary.madeByWhittle) return;
    try {
        write();
    } catch (const std::exception& e) {
        status_->setText(tr("Could not record the measurement: %1").arg(QString::fromUtf8(e.what())));
    }
}

void ComparePage::oneDone(const QString& what, bool ok, const QString& message) {
    if (!ok) {
        ++failures_;
        status_->setText(tr("%1 failed: %2").arg(what, message));
    }
    if (--pending_ > 0) {
        if (ok) status_->setText(tr("Measuring… %1 to go.").arg(pending_));
        return;
    }
    measure_->setEnabled(true);
    if (failures_ == 0) status_->setText(tr("Every figure is measured."));
    emit measured();
}

}  // namespace whittle::gui
