#include "app/gui/vocabulary_page.h"

#include "app/gui/worker_bridge.h"
#include "app/gui/worker_outcome.h"

#include <nlohmann/json.hpp>

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStackedLayout>
#include <QTabWidget>
#include <QTableView>
#include <QTextBrowser>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/model/inventory.h"
#include "core/recipes/vocab_prune.h"
#include "core/model/checkpoint_files.h"

namespace whittle::gui {

namespace fs = std::filesystem;

namespace {
struct PresetEntry {
    const char* key;
    const char* label;
};
const PresetEntry kPresets[] = {
    {"english", "English (as published)"}, {"latin", "Latin script"}, {"european", "European"}, {"cjk", "CJK"},
    {"corpus", "Tokens my text files use…"}, {"", "Custom"}};

SelectionResult computeSelection(std::shared_ptr<const VocabularyData> d, std::string preset, std::vector<std::string> buckets,
                                 std::vector<std::string> corpusFiles, int generation) {
    SelectionResult r;
    r.generation = generation;
    try {
        const KeepSelection sel = preset.empty() ? selectBuckets(*d->tokenizer, d->table, buckets)
                                                 : selectPreset(*d->tokenizer, d->table, preset,
                                                                preset == "corpus" ? readCorpusLines(corpusFiles) : std::vector<std::string>{});
        r.keep = sel.keep;
        std::map<std::string, int> perName;
        for (std::size_t id = 0; id < r.keep.size(); ++id)
            if (r.keep[id]) ++perName[d->table.bucketOf[id]];
        for (const auto& b : d->table.buckets) r.keptPerBucket.push_back(perName[b.name]);
        r.summary = summarize(*d, r.keep);
    } catch (const std::exception& e) {
        r.error = QString::fromUtf8(e.what());
    }
    return r;
}

// Tokens as alternating chips so their boundaries show; whitespace made visible.
QString chipsHtml(const Tokenizer& tok, const std::vector<int>& ids, bool skipBos) {
    static const char* colors[] = {"#dbeafe", "#fde68a", "#d1fae5", "#fbcfe8", "#e9d5ff"};
    QString html = QStringLiteral("<div style='line-height:170%'>");
    int k = 0;
    for (std::size_t i = skipBos ? 1 : 0; i < ids.size(); ++i) {
        const QString t = visibleTokenText(tok.tokenText(ids[i])).toHtmlEscaped();
        html += QStringLiteral("<span style='background:%1; color:#111' title='%2'>%3</span>&#8203;")
                    .arg(colors[k++ % 5])
                    .arg(ids[i])
                    .arg(t);
    }
    return html + "</div>";
}

TryResult computeTry(std::shared_ptr<const VocabularyData> d, std::shared_ptr<const Json> json, std::vector<bool> keep, std::string text,
                     int generation) {
    TryResult r;
    r.generation = generation;
    try {
        const Tokenizer& tok = *d->tokenizer;
        EncodeOptions eo;
        eo.addSpecialTokens = false;
        eo.parseSpecial = false;
        const auto before = tok.encode(text, eo);
        r.beforeCount = int(before.size());
        r.beforeHtml = chipsHtml(tok, before, false);
        if (!json) {
            const fs::path file = d->modelDir.empty() ? d->source : d->modelDir / whittle::files::kTokenizer;
            json = std::make_shared<const Json>(readJsonFile(file, 512ull << 20));
        }
        r.tokenizerJson = json;
        const int rows = d->rows();
        const FittedSelection fit = fitSelection(tok, std::move(keep), rows, 256);
        const Tokenizer pruned =
            Tokenizer::fromJson(prunedTokenizerJson(*json, tok, idMapping(fit.keep, rows), fit.extra), "pruned tokenizer");
        const auto after = pruned.encode(text, eo);
        r.afterCount = int(after.size());
        r.afterHtml = chipsHtml(pruned, after, false);
    } catch (const std::exception& e) {
        r.error = QString::fromUtf8(e.what());
    }
    return r;
}

QString params(std::uint64_t n) { return QString::fromStdString(formatParams(n)); }
QString bytes(std::uint64_t n) { return QString::fromStdString(formatBytes(n)); }
}  // namespace

VocabularyPage::VocabularyPage(WorkerBridge* bridge, QWidget* parent) : QWidget(parent), bridge_(bridge ? bridge : new WorkerBridge(this)) {
    stack_ = new QStackedLayout(this);
    auto* emptyPage = new QWidget(this);
    auto* emptyLayout = new QVBoxLayout(emptyPage);
    emptyLabel_ = new QLabel(tr("<div style='font-size:14pt'>Open a checkpoint, or look at a tokenizer on its own</div>"), emptyPage);
    emptyLabel_->setAlignment(Qt::AlignCenter);
    auto* openJson = new QPushButton(tr("Open tokenizer.json…"), emptyPage);
    connect(openJson, &QPushButton::clicked, this, &VocabularyPage::openTokenizerFile);
    emptyLayout->addStretch();
    emptyLayout->addWidget(emptyLabel_);
    emptyLayout->addWidget(openJson, 0, Qt::AlignHCenter);
    emptyLayout->addStretch();
    stack_->addWidget(emptyPage);

    auto* content = new QWidget(this);
    auto* layout = new QVBoxLayout(content);
    auto* top = new QHBoxLayout;
    sourceLabel_ = new QLabel(content);
    sourceLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    preset_ = new QComboBox(content);
    preset_->setObjectName("presetBox");
    for (const auto& p : kPresets) preset_->addItem(tr(p.label), QString::fromLatin1(p.key));
    auto* otherJson = new QPushButton(tr("Open tokenizer.json…"), content);
    connect(otherJson, &QPushButton::clicked, this, &VocabularyPage::openTokenizerFile);
    top->addWidget(sourceLabel_, 1);
    top->addWidget(new QLabel(tr("Keep:"), content));
    top->addWidget(preset_);
    top->addWidget(otherJson);
    layout->addLayout(top);
    summaryLabel_ = new QLabel(content);
    summaryLabel_->setObjectName("summary");
    summaryLabel_->setTextFormat(Qt::RichText);
    layout->addWidget(summaryLabel_);

    auto* split = new QSplitter(Qt::Vertical, content);
    bucketView_ = new QTableView(split);
    bucketView_->setObjectName("bucketTable");
    auto* bucketSort = new QSortFilterProxyModel(this);
    bucketSort->setSourceModel(&buckets_);
    bucketSort->setSortRole(Qt::UserRole);
    bucketView_->setModel(bucketSort);
    bucketView_->setSortingEnabled(true);
    bucketView_->sortByColumn(BucketTableModel::Tokens, Qt::DescendingOrder);
    bucketView_->setSelectionBehavior(QAbstractItemView::SelectRows);
    bucketView_->verticalHeader()->hide();
    bucketView_->verticalHeader()->setDefaultSectionSize(bucketView_->fontMetrics().height() + 6);
    bucketView_->horizontalHeader()->setStretchLastSection(true);
    bucketView_->setAlternatingRowColors(true);
    split->addWidget(bucketView_);

    auto* tabs = new QTabWidget(split);
    auto* tokenTab = new QWidget(tabs);
    auto* tokenLayout = new QVBoxLayout(tokenTab);
    auto* filterRow = new QHBoxLayout;
    tokenFilter_ = new QLineEdit(tokenTab);
    tokenFilter_->setObjectName("tokenFilter");
    tokenFilter_->setPlaceholderText(tr("Filter by text or id"));
    tokenFilter_->setClearButtonEnabled(true);
    tokenBucket_ = new QComboBox(tokenTab);
    tokenBucket_->setObjectName("tokenBucketFilter");
    filterRow->addWidget(tokenFilter_, 1);
    filterRow->addWidget(tokenBucket_);
    tokenLayout->addLayout(filterRow);
    tokenView_ = new QTableView(tokenTab);
    tokenView_->setObjectName("tokenTable");
    tokenView_->setModel(&tokens_);
    tokenView_->verticalHeader()->hide();
    // Fixed row heights keep a 262k-row view virtual: Qt never measures rows it does not show.
    tokenView_->verticalHeader()->setSectionResizeMode(QHeaderView::Fixed);
    tokenView_->verticalHeader()->setDefaultSectionSize(tokenView_->fontMetrics().height() + 6);
    tokenView_->horizontalHeader()->setStretchLastSection(true);
    tokenView_->setColumnWidth(TokenTableModel::Token, 260);
    tokenLayout->addWidget(tokenView_);
    tabs->addTab(tokenTab, tr("Tokens"));

    auto* tryTab = new QWidget(tabs);
    auto* tryLayout = new QVBoxLayout(tryTab);
    tryText_ = new QPlainTextEdit(tryTab);
    tryText_->setObjectName("tryText");
    tryText_->setPlaceholderText(tr("Type or paste text to see it tokenized before and after the selection"));
    tryText_->setMaximumHeight(80);
    tryLayout->addWidget(tryText_);
    tryCounts_ = new QLabel(tryTab);
    tryCounts_->setObjectName("tryCounts");
    tryLayout->addWidget(tryCounts_);
    auto* sideBySide = new QHBoxLayout;
    tryBefore_ = new QTextBrowser(tryTab);
    tryAfter_ = new QTextBrowser(tryTab);
    sideBySide->addWidget(tryBefore_);
    sideBySide->addWidget(tryAfter_);
    tryLayout->addLayout(sideBySide, 1);
    tabs->addTab(tryTab, tr("Try text"));
    split->addWidget(tabs);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 1);

    auto* bottom = new QHBoxLayout;
    output_ = new QLineEdit(content);
    output_->setObjectName("outputPath");
    output_->setPlaceholderText(tr("Output folder"));
    browse_ = new QPushButton(tr("Browse…"), content);
    prune_ = new QPushButton(tr("Prune"), content);
    prune_->setObjectName("pruneButton");
    cancel_ = new QPushButton(tr("Cancel"), content);
    cancel_->setEnabled(false);
    progress_ = new QProgressBar(content);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setTextVisible(true);
    progress_->setFormat(QString());
    bottom->addWidget(new QLabel(tr("Write to:"), content));
    bottom->addWidget(output_, 2);
    bottom->addWidget(browse_);
    bottom->addWidget(prune_);
    bottom->addWidget(cancel_);
    bottom->addWidget(progress_, 1);
    layout->addLayout(bottom);
    status_ = new QLabel(content);
    status_->setObjectName("pruneStatus");
    status_->setWordWrap(true);
    layout->addWidget(status_);
    stack_->addWidget(content);

    tryTimer_ = new QTimer(this);
    tryTimer_->setSingleShot(true);
    tryTimer_->setInterval(250);
    connect(tryTimer_, &QTimer::timeout, this, &VocabularyPage::scheduleTry);
    connect(tryText_, &QPlainTextEdit::textChanged, tryTimer_, qOverload<>(&QTimer::start));
    connect(preset_, &QComboBox::activated, this, [this](int i) {
        const QString key = preset_->itemData(i).toString();
        if (key == "corpus") {
            const QStringList files = QFileDialog::getOpenFileNames(this, tr("Text files whose tokens to keep"), {}, tr("Text (*.txt *.md);;All files (*)"));
            if (files.isEmpty()) {
                choosePreset(QString::fromStdString(preset_key_));  // back to what was selected
                return;
            }
            corpusFiles_ = files;
        }
        choosePreset(key);
    });
    connect(&buckets_, &BucketTableModel::keepToggled, this, &VocabularyPage::setBucketKept);
    connect(tokenFilter_, &QLineEdit::textChanged, &tokens_, &TokenTableModel::setTextFilter);
    connect(tokenBucket_, &QComboBox::currentIndexChanged, this,
            [this](int i) { tokens_.setBucketFilter(i <= 0 ? QString() : tokenBucket_->itemData(i).toString()); });
    connect(browse_, &QPushButton::clicked, this, &VocabularyPage::chooseOutput);
    connect(prune_, &QPushButton::clicked, this, &VocabularyPage::startPrune);
    connect(cancel_, &QPushButton::clicked, this, &VocabularyPage::cancelPrune);
    connect(this, &VocabularyPage::pruneProgress, this, [this](const QString& stage, double f, double eta) {
        progress_->setValue(int(f * 1000));
        progress_->setFormat(eta >= 0 ? tr("%1: %p% (%2 s left)").arg(stage).arg(int(eta + 0.5)) : tr("%1: %p%").arg(stage));
    });
    connect(&loadWatcher_, &QFutureWatcherBase::finished, this, &VocabularyPage::loadFinished);
    connect(&selectWatcher_, &QFutureWatcherBase::finished, this, &VocabularyPage::selectionFinished);
    connect(&tryWatcher_, &QFutureWatcherBase::finished, this, &VocabularyPage::tryFinished);
    connect(bridge_, &WorkerBridge::progressed, this, [this](int id, const QString& stage, double f, double eta) {
        if (id == pruneJob_) emit pruneProgress(stage, f, eta);
    });
    connect(bridge_, &WorkerBridge::finished, this, [this](int id, const WorkerOutcome& outcome) {
        if (id == pruneJob_) pruneDone(outcome);
    });
}

VocabularyPage::~VocabularyPage() {
    if (pruneJob_) bridge_->cancel(pruneJob_);
    loadWatcher_.waitForFinished();
    selectWatcher_.waitForFinished();
    tryWatcher_.waitForFinished();
}

bool VocabularyPage::busy() const {
    return loading_ || selecting_ || trying_ || reselectPending_ || tryPending_ || tryTimer_->isActive();
}

void VocabularyPage::clear() {
    data_.reset();
    tokenizerJson_.reset();
    keep_.clear();
    tokens_.setData(nullptr);
    buckets_.setData(nullptr);
    stack_->setCurrentIndex(0);
}

void VocabularyPage::open(const QString& path, std::shared_ptr<const Checkpoint> opened) {
    if (loading_) return;
    loading_ = true;
    emptyLabel_->setText(tr("<div style='font-size:14pt'>Reading the tokenizer…</div>"));
    stack_->setCurrentIndex(0);
    loadWatcher_.setFuture(QtConcurrent::run([p = path.toStdString(), opened, this]() -> std::shared_ptr<const VocabularyData> {
        try {
            return loadVocabularyData(p, opened);
        } catch (const std::exception& e) {
            // Only read by loadFinished on the GUI thread after the future completes.
            loadError_ = QString::fromUtf8(e.what());
            return nullptr;
        }
    }));
}

void VocabularyPage::openTokenizerFile() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open tokenizer.json"), {}, tr("Tokenizer (tokenizer.json *.json)"));
    if (!f.isEmpty()) open(f);
}

void VocabularyPage::loadFinished() {
    auto d = loadWatcher_.result();
    loading_ = false;
    if (!d) {
        emptyLabel_->setText(tr("<div style='font-size:14pt'>Cannot read the tokenizer</div><div>%1</div>").arg(loadError_.toHtmlEscaped()));
        emit loadFailed(loadError_);
        loadError_.clear();
        return;
    }
    tokens_.setData(nullptr);
    data_ = std::move(d);
    tokenizerJson_.reset();
    buckets_.setData(data_);
    tokens_.setData(data_);
    tokenBucket_->blockSignals(true);
    tokenBucket_->clear();
    tokenBucket_->addItem(tr("All buckets"));
    for (const auto& b : data_->table.buckets)
        tokenBucket_->addItem(QStringLiteral("%1 (%2)").arg(QString::fromStdString(b.name)).arg(b.tokens), QString::fromStdString(b.name));
    tokenBucket_->blockSignals(false);
    tokenFilter_->clear();
    const QString src = QString::fromStdString(data_->source.string());
    sourceLabel_->setText(data_->modelDir.empty() ? tr("Tokenizer %1 (no model: costs and Prune need a checkpoint)").arg(src)
                                                  : tr("Model %1").arg(src));
    prune_->setEnabled(!data_->modelDir.empty());
    browse_->setEnabled(!data_->modelDir.empty());
    if (!data_->modelDir.empty()) {
        const fs::path dir = data_->modelDir;
        output_->setText(QString::fromStdString((dir.parent_path() / (dir.filename().string() + "-english")).string()));
    } else {
        output_->clear();
    }
    status_->clear();
    progress_->setValue(0);
    progress_->setFormat(QString());
    stack_->setCurrentIndex(1);
    bucketView_->resizeColumnsToContents();
    choosePreset("english");
    emit loaded();
}

void VocabularyPage::choosePreset(const QString& preset) {
    preset_key_ = preset.toStdString();
    for (int i = 0; i < preset_->count(); ++i)
        if (preset_->itemData(i).toString() == preset) preset_->setCurrentIndex(i);
    if (preset_key_.empty() && data_) {
        // Custom starts from the buckets the current selection touches.
        customBuckets_.clear();
        for (std::size_t id = 0; id < keep_.size(); ++id)
            if (keep_[id]) customBuckets_.insert(data_->table.bucketOf[id]);
    }
    if (data_ && !data_->modelDir.empty() && !preset_key_.empty()) {
        const fs::path dir = data_->modelDir;
        output_->setText(QString::fromStdString((dir.parent_path() / (dir.filename().string() + "-" + preset_key_)).string()));
    }
    reselect();
}

void VocabularyPage::setCorpusFiles(const QStringList& files) {
    corpusFiles_ = files;
    if (preset_key_ == "corpus") reselect();
}

void VocabularyPage::setBucketKept(const QString& bucket, bool keep) {
    if (!data_) return;
    if (!preset_key_.empty()) choosePreset({});  // the boxes now describe a custom selection
    if (keep) customBuckets_.insert(bucket.toStdString());
    else customBuckets_.erase(bucket.toStdString());
    reselect();
}

void VocabularyPage::reselect() {
    if (!data_) return;
    if (selecting_) {
        reselectPending_ = true;  // the latest request wins once the running one returns
        return;
    }
    reselectPending_ = false;
    std::vector<std::string> buckets(customBuckets_.begin(), customBuckets_.end());
    for (const auto& a : alwaysKeptBuckets()) buckets.push_back(a);
    selecting_ = true;
    std::vector<std::string> corpus;
    for (const QString& f : corpusFiles_) corpus.push_back(f.toStdString());
    selectWatcher_.setFuture(QtConcurrent::run(computeSelection, data_, preset_key_, buckets, corpus, ++generation_));
}

void VocabularyPage::selectionFinished() {
    SelectionResult r = selectWatcher_.result();
    selecting_ = false;
    if (reselectPending_) {
        reselect();
        return;
    }
    if (!r.error.isEmpty()) {
        status_->setText(r.error);
        return;
    }
    tokens_.setKeep(nullptr);
    keep_ = std::move(r.keep);
    summary_ = r.summary;
    tokens_.setKeep(&keep_);
    buckets_.setKeptCounts(r.keptPerBucket);
    updateSummaryText();
    emit selectionChanged();
    if (!tryText_->toPlainText().isEmpty()) scheduleTry();
}

void VocabularyPage::updateSummaryText() {
    if (!data_) return;
    const SelectionSummary& s = summary_;
    QString html = tr("<b>Vocabulary</b> %1 → <b>%2</b> tokens (%3 kept + %4 padding) · <b>merges</b> %5 → %6")
                       .arg(QLocale().toString(data_->rows()))
                       .arg(QLocale().toString(s.padded))
                       .arg(QLocale().toString(s.kept))
                       .arg(s.padded - s.kept)
                       .arg(QLocale().toString(s.mergesBefore))
                       .arg(QLocale().toString(s.merges));
    if (data_->sizes)
        html += tr(" · <b>parameters</b> %1 → <b>%2</b> · <b>tensors on disk</b> %3 → <b>%4</b>")
                    .arg(params(data_->sizes->input.parameters), params(s.paramsAfter), bytes(data_->sizes->input.tensorBytes), bytes(s.bytesAfter));
    summaryLabel_->setText(html);
}

void VocabularyPage::scheduleTry() {
    if (!data_) return;
    if (trying_) {
        tryPending_ = true;
        return;
    }
    tryPending_ = false;
    const std::string text = tryText_->toPlainText().toStdString();
    if (text.empty()) {
        tryBefore_->clear();
        tryAfter_->clear();
        tryCounts_->clear();
        emit tryTextUpdated();
        return;
    }
    tryCounts_->setText(tr("tokenizing…"));
    trying_ = true;
    tryWatcher_.setFuture(QtConcurrent::run(computeTry, data_, tokenizerJson_, keep_, text, generation_));
}

void VocabularyPage::tryFinished() {
    const TryResult r = tryWatcher_.result();
    trying_ = false;
    if (r.tokenizerJson) tokenizerJson_ = r.tokenizerJson;
    if (tryPending_) {
        scheduleTry();
        return;
    }
    if (!r.error.isEmpty()) {
        tryCounts_->setText(r.error);
    } else {
        tryBefore_->setHtml(r.beforeHtml);
        tryAfter_->setHtml(r.afterHtml);
        tryCounts_->setText(tr("before: %1 tokens · after: %2 tokens").arg(r.beforeCount).arg(r.afterCount));
    }
    emit tryTextUpdated();
}

Recipe VocabularyPage::recipe() const {
    Recipe r;
    VocabularyRecipe v;
    v.preset = preset_key_;
    if (v.preset.empty()) v.buckets.assign(customBuckets_.begin(), customBuckets_.end());
    if (v.preset == "corpus")
        for (const QString& f : corpusFiles_) v.corpusFiles.push_back(f.toStdString());
    r.vocabulary = v;
    return r;
}

void VocabularyPage::chooseOutput() {
    const QString d = QFileDialog::getSaveFileName(this, tr("Write the pruned checkpoint to"), output_->text());
    if (!d.isEmpty()) output_->setText(d);
}

void VocabularyPage::startPrune() {
    if (!data_ || data_->modelDir.empty() || pruneJob_) return;
    const QString dest = output_->text().trimmed();
    if (dest.isEmpty()) {
        status_->setText(tr("Choose an output folder first."));
        return;
    }
    prune_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    status_->setText(tr("Pruning into %1 …").arg(dest));
    pruneJob_ = bridge_->submit(tr("prune into %1").arg(dest), [src = data_->modelDir, recipe = recipe(), dest](Progress& progress,
                                                                                                              const CancelToken& cancel) {
        const Checkpoint ck = Checkpoint::open(src);
        const VocabPruneReport rep = pruneVocabulary(ck, recipe, dest.toStdString(), false, progress, cancel);
        QString message = QObject::tr("Wrote %1: vocabulary %2 → %3 tokens, parameters %4 → %5, in %6 s")
                              .arg(dest)
                              .arg(rep.tokensBefore)
                              .arg(rep.tokensAfterPadding)
                              .arg(QString::fromStdString(formatParams(rep.paramsBefore)), QString::fromStdString(formatParams(rep.paramsAfter)))
                              .arg(rep.seconds, 0, 'f', 1);
        for (const auto& t : rep.droppedWithoutRows)
            message += QObject::tr("; dropped %1 (an added token with no embedding row)").arg(QString::fromStdString(t));
        return message;
    });
}

void VocabularyPage::cancelPrune() {
    if (pruneJob_) bridge_->cancel(pruneJob_);
}

void VocabularyPage::pruneDone(const WorkerOutcome& r) {
    pruneJob_ = 0;
    prune_->setEnabled(true);
    cancel_->setEnabled(false);
    presentOutcome(r, status_, progress_, this, tr("Prune failed"));
    emit pruneFinished(r.ok, r.message);
}

}  // namespace whittle::gui
