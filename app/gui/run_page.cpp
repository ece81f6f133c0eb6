#include "app/gui/run_page.h"

#include <algorithm>

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/model/checkpoint.h"
#include "core/pipeline/slim.h"

namespace whittle::gui {

namespace {
enum Column { ColId, ColOutput, ColStage, ColProgress, ColEta, ColState, ColCount };

QString stateName(RunPage::JobState s) {
    switch (s) {
        case RunPage::JobState::Queued: return QObject::tr("queued");
        case RunPage::JobState::Running: return QObject::tr("running");
        case RunPage::JobState::Done: return QObject::tr("done");
        case RunPage::JobState::Failed: return QObject::tr("failed");
        case RunPage::JobState::Cancelled: return QObject::tr("cancelled");
    }
    return {};
}

QString etaText(double eta) {
    if (eta < 0) return QStringLiteral("…");
    const int s = int(eta + 0.5);
    return s >= 60 ? QObject::tr("%1 min %2 s").arg(s / 60).arg(s % 60) : QObject::tr("%1 s").arg(s);
}
}  // namespace

RunPage::RunPage(WorkerBridge* bridge, QWidget* parent) : QWidget(parent), bridge_(bridge) {
    source_ = new QLabel(tr("Open a checkpoint, choose a recipe on the Recipe page and press Run: its jobs queue here."), this);
    source_->setWordWrap(true);

    table_ = new QTableWidget(0, ColCount, this);
    table_->setHorizontalHeaderLabels({tr("#"), tr("Output"), tr("Stage"), tr("Progress"), tr("ETA"), tr("State")});
    table_->horizontalHeader()->setSectionResizeMode(ColOutput, QHeaderView::Stretch);
    table_->horizontalHeader()->setSectionResizeMode(ColStage, QHeaderView::Stretch);
    table_->verticalHeader()->hide();
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    auto* buttons = new QHBoxLayout;
    cancel_ = new QPushButton(tr("Cancel job"), this);
    openOutput_ = new QPushButton(tr("Open output"), this);
    cancel_->setEnabled(false);
    openOutput_->setEnabled(false);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    status_->setObjectName("runStatus");
    buttons->addWidget(cancel_);
    buttons->addWidget(openOutput_);
    buttons->addWidget(status_, 1);
    log_ = new QPlainTextEdit(this);
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(5000);
    log_->setObjectName("runLog");

    auto* queue = new QWidget(this);
    auto* queueCol = new QVBoxLayout(queue);
    queueCol->setContentsMargins(0, 0, 0, 0);
    queueCol->addWidget(table_, 1);
    queueCol->addLayout(buttons);
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(queue);
    split->addWidget(log_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);

    auto* col = new QVBoxLayout(this);
    col->addWidget(source_);
    col->addWidget(split, 1);

    connect(cancel_, &QPushButton::clicked, this, &RunPage::cancelSelected);
    connect(openOutput_, &QPushButton::clicked, this, &RunPage::openSelected);
    connect(table_, &QTableWidget::itemSelectionChanged, this, &RunPage::selectionChanged);
    connect(bridge_, &WorkerBridge::started, this, [this](int id, const QString&) { jobStarted(id); });
    connect(bridge_, &WorkerBridge::progressed, this, &RunPage::jobProgressed);
    connect(bridge_, &WorkerBridge::stageChanged, this, &RunPage::jobStage);
    connect(bridge_, &WorkerBridge::finished, this, &RunPage::jobDone);
}

void RunPage::open(std::shared_ptr<const Checkpoint> checkpoint) {
    open(QString::fromStdString(checkpoint->dir().string()));
    checkpoint_ = std::move(checkpoint);
}

void RunPage::open(const QString& modelDir) {
    checkpoint_.reset();
    modelDir_ = modelDir;
    source_->setText(tr("Jobs slim %1").arg(QDir::toNativeSeparators(modelDir)));
}

bool RunPage::writesTo(const QString& path) const {
    for (const auto& [id, j] : jobs_)
        if (j.output == path && (j.state == JobState::Queued || j.state == JobState::Running)) return true;
    return false;
}

int RunPage::addJob(const Recipe& r, const QString& output, QString* why) {
    auto refuse = [&](const QString& reason) {
        if (why) *why = reason;
        return 0;
    };
    if (modelDir_.isEmpty()) return refuse(tr("Open a checkpoint first."));
    const auto stages = slimStages(r);
    if (stages.empty() || (stages.size() == 1 && stages[0] == "evaluation"))
        return refuse(tr("The recipe has nothing to do: choose a vocabulary, text only, FLAP or quantization."));
    if (output.trimmed().isEmpty()) return refuse(tr("Choose an output folder."));
    const QString out = QFileInfo(output.trimmed()).absoluteFilePath();
    if (writesTo(out)) return refuse(tr("A queued job already writes %1.").arg(QDir::toNativeSeparators(out)));
    const int id = bridge_->submit(QFileInfo(out).fileName(), [shared = checkpoint_, src = modelDir_.toStdString(), r, dest = out.toStdString()](
                                                                  Progress& progress, const CancelToken& cancel) {
        const std::shared_ptr<const Checkpoint> ck = shared ? shared : std::make_shared<const Checkpoint>(Checkpoint::open(src));
        const SlimReport rep = slim(*ck, r, dest, false, progress, cancel);
        QString msg = QObject::tr("Wrote %1 (%2 MB) in %3 s.")
                          .arg(QString::fromStdString(dest))
                          .arg(double(rep.bytesWritten) / 1e6, 0, 'f', 1)
                          .arg(rep.seconds, 0, 'f', 1);
        if (rep.quality)
            msg += QObject::tr(" KLD %1, top-1 %2 %.").arg(*rep.quality->kldMean, 0, 'f', 5).arg(100 * *rep.quality->top1, 0, 'f', 1);
        return msg;
    });
    // The bridge may have started it already (started() came before this row existed): jobStarted fixes it below.
    const int row = table_->rowCount();
    table_->insertRow(row);
    table_->setItem(row, ColId, new QTableWidgetItem(QString::number(id)));
    table_->setItem(row, ColOutput, new QTableWidgetItem(QDir::toNativeSeparators(out)));
    table_->setItem(row, ColStage, new QTableWidgetItem(QString::fromStdString(stages.front())));
    auto* bar = new QProgressBar(table_);
    bar->setRange(0, 1000);
    bar->setValue(0);
    bar->setFormat(QStringLiteral("%p%"));
    table_->setCellWidget(row, ColProgress, bar);
    table_->setItem(row, ColEta, new QTableWidgetItem(QString()));
    table_->setItem(row, ColState, new QTableWidgetItem(stateName(JobState::Queued)));
    jobs_[id] = JobRow{row, out, JobState::Queued, {}};
    if (bridge_->runningJob() == id) jobStarted(id);
    log(tr("job %1 queued: %2 → %3").arg(id).arg(QString::fromStdString(toJson(r).dump())).arg(QDir::toNativeSeparators(out)));
    status_->setText(tr("Job %1 queued.").arg(id));
    table_->selectRow(row);
    return id;
}

void RunPage::jobStarted(int id) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;  // a job of another page, or its row is not made yet
    it->second.state = JobState::Running;
    table_->item(it->second.row, ColState)->setText(stateName(JobState::Running));
    log(tr("job %1 started").arg(id));
    selectionChanged();
}

void RunPage::jobProgressed(int id, const QString& stage, double fraction, double eta) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    const int row = it->second.row;
    table_->item(row, ColStage)->setText(stage);
    static_cast<QProgressBar*>(table_->cellWidget(row, ColProgress))->setValue(int(fraction * 1000));
    table_->item(row, ColEta)->setText(etaText(eta));
}

void RunPage::jobStage(int id, const QString& stage) {
    if (jobs_.count(id)) log(tr("job %1: %2").arg(id).arg(stage));
}

void RunPage::jobDone(int id, const WorkerOutcome& outcome) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    JobRow& j = it->second;
    j.state = outcome.ok ? JobState::Done : outcome.cancelled ? JobState::Cancelled : JobState::Failed;
    j.message = outcome.message;
    table_->item(j.row, ColState)->setText(stateName(j.state));
    table_->item(j.row, ColState)->setToolTip(outcome.message);
    table_->item(j.row, ColEta)->setText(QString());
    auto* bar = static_cast<QProgressBar*>(table_->cellWidget(j.row, ColProgress));
    if (outcome.ok) {
        table_->item(j.row, ColStage)->setText(tr("finished"));
        bar->setValue(bar->maximum());
    }
    log(tr("job %1 %2: %3").arg(id).arg(stateName(j.state), outcome.message));
    status_->setText(outcome.message);
    selectionChanged();
    emit jobFinished(id, outcome.ok, outcome.message);
}

int RunPage::selectedJob() const {
    const auto rows = table_->selectionModel()->selectedRows();
    if (rows.isEmpty()) return 0;
    return table_->item(rows.first().row(), ColId)->text().toInt();
}

void RunPage::selectionChanged() {
    const int id = selectedJob();
    const auto it = jobs_.find(id);
    const bool live = it != jobs_.end() && (it->second.state == JobState::Queued || it->second.state == JobState::Running);
    cancel_->setEnabled(live);
    openOutput_->setEnabled(it != jobs_.end() && it->second.state == JobState::Done);
}

void RunPage::cancelSelected() {
    const int id = selectedJob();
    if (!id) return;
    log(tr("job %1: cancel requested").arg(id));
    bridge_->cancel(id);
}

void RunPage::openSelected() {
    const auto it = jobs_.find(selectedJob());
    if (it != jobs_.end() && it->second.state == JobState::Done) emit openOutput(it->second.output);
}

void RunPage::log(const QString& line) {
    log_->appendPlainText(QDateTime::currentDateTime().toString("HH:mm:ss  ") + line);
}

}  // namespace whittle::gui
