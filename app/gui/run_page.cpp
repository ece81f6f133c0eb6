#include "app/gui/run_page.h"

#include <algorithm>
#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/file.h"
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
    source_ = new QLabel(tr("Open a checkpoint: jobs slim the open model."), this);
    source_->setWordWrap(true);

    auto* recipeBox = new QGroupBox(tr("Recipe"), this);
    auto* form = new QFormLayout;
    vocab_ = new QComboBox(recipeBox);
    vocab_->addItem(tr("Keep every token"), QString());
    vocab_->addItem(tr("English"), "english");
    vocab_->addItem(tr("Latin scripts"), "latin");
    vocab_->addItem(tr("European scripts"), "european");
    vocab_->addItem(tr("Chinese, Japanese, Korean"), "cjk");
    form->addRow(tr("Vocabulary"), vocab_);
    textOnly_ = new QCheckBox(tr("Drop the vision and audio towers (text only)"), recipeBox);
    form->addRow(QString(), textOnly_);
    auto* flapRow = new QHBoxLayout;
    flap_ = new QCheckBox(tr("Prune FFN channels (FLAP)"), recipeBox);
    flapRatio_ = new QDoubleSpinBox(recipeBox);
    flapRatio_->setRange(0.05, 0.9);
    flapRatio_->setSingleStep(0.05);
    flapRatio_->setValue(0.2);
    flapRatio_->setSuffix(tr(" of channels"));
    compensation_ = new QCheckBox(tr("bias compensation (Whittle-only output)"), recipeBox);
    compensation_->setChecked(true);
    flapRow->addWidget(flap_);
    flapRow->addWidget(flapRatio_);
    flapRow->addWidget(compensation_);
    flapRow->addStretch();
    form->addRow(tr("FLAP"), flapRow);
    auto* quantRow = new QHBoxLayout;
    quantize_ = new QComboBox(recipeBox);
    quantize_->addItem(tr("No quantization"), QString());
    quantize_->addItem(tr("INT4 RTN"), "rtn");
    quantize_->addItem(tr("INT4 GPTQ"), "gptq");
    quantize_->addItem(tr("NVFP4"), "nvfp4");
    group_ = new QComboBox(recipeBox);
    for (int g : {32, 64, 128}) group_->addItem(tr("group %1").arg(g), g);
    group_->setCurrentIndex(2);
    quantRow->addWidget(quantize_);
    quantRow->addWidget(group_);
    quantRow->addStretch();
    form->addRow(tr("Quantize"), quantRow);
    auto* calibRow = new QHBoxLayout;
    samples_ = new QSpinBox(recipeBox);
    samples_->setRange(1, 4096);
    samples_->setValue(32);
    samples_->setSuffix(tr(" windows"));
    length_ = new QSpinBox(recipeBox);
    length_->setRange(16, 8192);
    length_->setValue(512);
    length_->setSuffix(tr(" tokens"));
    calibRow->addWidget(samples_);
    calibRow->addWidget(new QLabel(QStringLiteral("×"), recipeBox));
    calibRow->addWidget(length_);
    calibRow->addStretch();
    form->addRow(tr("Calibration (FLAP, GPTQ)"), calibRow);
    auto* ggufRow = new QHBoxLayout;
    for (const auto& [format, label] : std::vector<std::pair<QString, QString>>{
             {"gguf-q4_0", "Q4_0"}, {"gguf-q8_0", "Q8_0"}, {"gguf-f16", "F16"}, {"gguf-nvfp4", "NVFP4"}}) {
        auto* box = new QCheckBox(label, recipeBox);
        gguf_[format] = box;
        ggufRow->addWidget(box);
    }
    ggufRow->addStretch();
    form->addRow(tr("Also write GGUF"), ggufRow);
    auto* evalRow = new QHBoxLayout;
    evaluate_ = new QCheckBox(tr("Measure against the original"), recipeBox);
    evaluate_->setChecked(true);
    evalTokens_ = new QSpinBox(recipeBox);
    evalTokens_->setRange(64, 1 << 20);
    evalTokens_->setValue(8192);
    evalTokens_->setSuffix(tr(" held-out tokens"));
    evalRow->addWidget(evaluate_);
    evalRow->addWidget(evalTokens_);
    evalRow->addStretch();
    form->addRow(tr("Quality report"), evalRow);
    recipeBox->setLayout(form);

    auto* jsonBox = new QGroupBox(tr("Recipe file (what whittle-cli slim --recipe reads; edit freely)"), this);
    auto* jsonCol = new QVBoxLayout(jsonBox);
    json_ = new QPlainTextEdit(jsonBox);
    json_->setObjectName("recipeJson");
    json_->setFont(QFont("monospace"));
    loadRecipe_ = new QPushButton(tr("Load recipe…"), jsonBox);
    jsonCol->addWidget(json_);
    jsonCol->addWidget(loadRecipe_, 0, Qt::AlignLeft);

    auto* top = new QHBoxLayout;
    top->addWidget(recipeBox, 3);
    top->addWidget(jsonBox, 2);

    auto* outRow = new QHBoxLayout;
    output_ = new QLineEdit(this);
    output_->setPlaceholderText(tr("output folder"));
    browse_ = new QPushButton(tr("Browse…"), this);
    add_ = new QPushButton(tr("Add to queue"), this);
    add_->setDefault(true);
    outRow->addWidget(new QLabel(tr("Output"), this));
    outRow->addWidget(output_, 1);
    outRow->addWidget(browse_);
    outRow->addWidget(add_);

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
    col->addLayout(top);
    col->addLayout(outRow);
    col->addWidget(split, 1);

    for (QComboBox* b : {vocab_, quantize_, group_}) connect(b, &QComboBox::currentIndexChanged, this, &RunPage::controlsChanged);
    for (QCheckBox* b : {textOnly_, flap_, compensation_, evaluate_}) connect(b, &QCheckBox::toggled, this, &RunPage::controlsChanged);
    for (QCheckBox* b : gguf_) connect(b, &QCheckBox::toggled, this, &RunPage::controlsChanged);
    for (QSpinBox* b : {samples_, length_, evalTokens_}) connect(b, &QSpinBox::valueChanged, this, &RunPage::controlsChanged);
    connect(flapRatio_, &QDoubleSpinBox::valueChanged, this, &RunPage::controlsChanged);
    connect(loadRecipe_, &QPushButton::clicked, this, &RunPage::chooseRecipe);
    connect(browse_, &QPushButton::clicked, this, &RunPage::chooseOutput);
    connect(add_, &QPushButton::clicked, this, [this] { addJob(); });
    connect(cancel_, &QPushButton::clicked, this, &RunPage::cancelSelected);
    connect(openOutput_, &QPushButton::clicked, this, &RunPage::openSelected);
    connect(table_, &QTableWidget::itemSelectionChanged, this, &RunPage::selectionChanged);
    connect(bridge_, &WorkerBridge::started, this, [this](int id, const QString&) { jobStarted(id); });
    connect(bridge_, &WorkerBridge::progressed, this, &RunPage::jobProgressed);
    connect(bridge_, &WorkerBridge::stageChanged, this, &RunPage::jobStage);
    connect(bridge_, &WorkerBridge::finished, this, &RunPage::jobDone);
    controlsChanged();
}

void RunPage::open(std::shared_ptr<const Checkpoint> checkpoint) {
    open(QString::fromStdString(checkpoint->dir().string()));
    checkpoint_ = std::move(checkpoint);
}

void RunPage::open(const QString& modelDir) {
    checkpoint_.reset();
    modelDir_ = modelDir;
    source_->setText(tr("Jobs slim %1").arg(QDir::toNativeSeparators(modelDir)));
    output_->clear();
    suggestOutput();
}

void RunPage::controlsChanged() {
    updateEnabled();
    const bool flap = flap_->isChecked();
    const QString method = quantize_->currentData().toString();

    Json j{{"whittle_recipe", Recipe::kVersion}};
    const Json calib{{"samples", samples_->value()}, {"length", length_->value()}};
    if (textOnly_->isChecked()) j["text_only"] = true;
    if (const QString v = vocab_->currentData().toString(); !v.isEmpty()) j["vocabulary"] = {{"preset", v.toStdString()}};
    if (flap)
        j["flap"] = {{"ratio", std::round(flapRatio_->value() * 100) / 100}, {"bias_compensation", compensation_->isChecked()}, {"calibration", calib}};
    if (!method.isEmpty()) {
        Json q{{"method", method.toStdString()}};
        if (method != "nvfp4") q["group_size"] = group_->currentData().toInt();
        if (method == "gptq") q["calibration"] = calib;
        j["quantization"] = q;
    }
    Json gguf = Json::array();
    for (auto it = gguf_.cbegin(); it != gguf_.cend(); ++it)
        if (it.value()->isChecked()) gguf.push_back(it.key().toStdString());
    if (!gguf.empty()) j["export"] = gguf;
    if (evaluate_->isChecked()) j["evaluation"] = {{"max_tokens", evalTokens_->value()}};
    json_->setPlainText(QString::fromStdString(j.dump(2)));
}

void RunPage::showInControls(const Recipe& r) {
    QList<QWidget*> all{vocab_, quantize_, group_, textOnly_, flap_, compensation_, evaluate_, flapRatio_, samples_, length_, evalTokens_};
    for (QCheckBox* b : gguf_) all << b;
    for (QWidget* w : all) w->blockSignals(true);
    const int v = vocab_->findData(r.vocabulary ? QString::fromStdString(r.vocabulary->preset) : QString());
    vocab_->setCurrentIndex(std::max(0, v));
    textOnly_->setChecked(r.textOnly);
    flap_->setChecked(r.flap.has_value());
    if (r.flap) {
        flapRatio_->setValue(r.flap->ratio);
        compensation_->setChecked(r.flap->biasCompensation);
        samples_->setValue(r.flap->calibration.samples);
        length_->setValue(r.flap->calibration.length);
    }
    quantize_->setCurrentIndex(std::max(0, quantize_->findData(r.quantization ? QString::fromStdString(r.quantization->method) : QString())));
    if (r.quantization) {
        if (const int g = group_->findData(r.quantization->groupSize); g >= 0) group_->setCurrentIndex(g);
        if (r.quantization->method == "gptq") {
            samples_->setValue(r.quantization->calibration.samples);
            length_->setValue(r.quantization->calibration.length);
        }
    }
    evaluate_->setChecked(r.evaluation.has_value());
    if (r.evaluation) evalTokens_->setValue(r.evaluation->maxTokens);
    for (auto it = gguf_.cbegin(); it != gguf_.cend(); ++it) {
        const auto& f = r.exports ? r.exports->formats : std::vector<std::string>{};
        it.value()->setChecked(std::find(f.begin(), f.end(), it.key().toStdString()) != f.end());
    }
    for (QWidget* w : all) w->blockSignals(false);
    updateEnabled();
}

void RunPage::updateEnabled() {
    const bool flap = flap_->isChecked();
    const QString method = quantize_->currentData().toString();
    flapRatio_->setEnabled(flap);
    compensation_->setEnabled(flap);
    group_->setEnabled(method == "rtn" || method == "gptq");
    samples_->setEnabled(flap || method == "gptq");  // the calibration FLAP and GPTQ read
    length_->setEnabled(flap || method == "gptq");
    evalTokens_->setEnabled(evaluate_->isChecked());
}

Recipe RunPage::recipe() const {
    Json j;
    try {
        j = Json::parse(json_->toPlainText().toStdString());
    } catch (const Json::parse_error& e) {
        throw FormatError("the recipe", {}, std::string("not JSON: ") + e.what());
    }
    return parseRecipe(j, "the recipe");
}

void RunPage::loadRecipeFile(const QString& path) {
    try {
        const Recipe r = loadRecipe(path.toStdString());  // checked before it replaces the editor's text
        showInControls(r);
        json_->setPlainText(QString::fromStdString(toJson(r).dump(2)));
        status_->setText(tr("Loaded %1.").arg(QDir::toNativeSeparators(path)));
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
    }
}

void RunPage::chooseRecipe() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Load a Whittle recipe"), QString(), tr("Recipes (*.json)"));
    if (!f.isEmpty()) loadRecipeFile(f);
}

void RunPage::chooseOutput() {
    const QString d = QFileDialog::getSaveFileName(this, tr("Output folder (created when the job succeeds)"), output_->text());
    if (!d.isEmpty()) output_->setText(d);
}

void RunPage::suggestOutput() {
    if (modelDir_.isEmpty() || !output_->text().isEmpty()) return;
    const QFileInfo src(modelDir_);
    const QString base = src.absoluteDir().filePath(src.fileName() + "-slim");
    QString candidate = base;
    auto taken = [this](const QString& p) {
        if (QFileInfo::exists(p)) return true;
        for (const auto& [id, j] : jobs_)
            if (j.output == p && (j.state == JobState::Queued || j.state == JobState::Running)) return true;
        return false;
    };
    for (int n = 2; taken(candidate); ++n) candidate = base + "-" + QString::number(n);
    output_->setText(candidate);
}

int RunPage::addJob() {
    if (modelDir_.isEmpty()) {
        status_->setText(tr("Open a checkpoint first."));
        return 0;
    }
    Recipe r;
    try {
        r = recipe();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return 0;
    }
    const auto stages = slimStages(r);
    if (stages.empty() || (stages.size() == 1 && stages[0] == "evaluation")) {
        status_->setText(tr("The recipe has nothing to do: choose a vocabulary, text only, FLAP or quantization."));
        return 0;
    }
    const QString out = QFileInfo(output_->text().trimmed()).absoluteFilePath();
    if (output_->text().trimmed().isEmpty()) {
        status_->setText(tr("Choose an output folder."));
        return 0;
    }
    for (const auto& [id, j] : jobs_)
        if (j.output == out && (j.state == JobState::Queued || j.state == JobState::Running)) {
            status_->setText(tr("Job %1 already writes %2.").arg(id).arg(QDir::toNativeSeparators(out)));
            return 0;
        }
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
    output_->clear();
    suggestOutput();
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
    suggestOutput();
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
