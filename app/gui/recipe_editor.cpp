#include "app/gui/recipe_editor.h"

#include <algorithm>
#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QTextDocument>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/model/tensor_table.h"
#include "core/recipes/recipe_presets.h"

namespace whittle::gui {

namespace {
// The vocabulary box's entry for a loaded vocabulary section no preset entry shows (listed buckets, a corpus).
const QString kLoadedVocabulary = QStringLiteral("*loaded*");
// The vocabulary box's entry that follows the Vocabulary page's selection.
const QString kPageVocabulary = QStringLiteral("*vocabulary-page*");

QStringList splitList(const QString& text) {
    QStringList out;
    for (const QString& part : text.split(',', Qt::SkipEmptyParts))
        if (const QString t = part.trimmed(); !t.isEmpty()) out << t;
    return out;
}

QString joinList(const std::vector<std::string>& items) {
    QStringList l;
    for (const auto& i : items) l << QString::fromStdString(i);
    return l.join(", ");
}

// The recipe form scrolls when the window is short. QScrollArea caps its size hint at 24 lines, which
// would make the form scroll where it fits, so this one asks for the whole form and never scrolls sideways.
class FormScrollArea : public QScrollArea {
public:
    explicit FormScrollArea(QWidget* form, QWidget* parent) : QScrollArea(parent) {
        setWidget(form);
        setWidgetResizable(true);
        setFrameShape(QFrame::NoFrame);
        setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    }
    QSize sizeHint() const override { return widget()->sizeHint() + QSize(verticalScrollBar()->sizeHint().width(), 0); }
    QSize minimumSizeHint() const override {
        return {widget()->minimumSizeHint().width() + verticalScrollBar()->sizeHint().width(), 4 * fontMetrics().lineSpacing()};
    }
};

// The height of a plain-text box that shows `lines` lines of its font, frame and margins included.
int textBoxHeight(const QPlainTextEdit* box, int lines) {
    return lines * box->fontMetrics().lineSpacing() + 2 * box->frameWidth() + 2 * int(box->document()->documentMargin());
}

QHBoxLayout* row(std::initializer_list<QWidget*> widgets) {
    auto* r = new QHBoxLayout;
    for (QWidget* w : widgets) r->addWidget(w);
    r->addStretch();
    return r;
}
}  // namespace

RecipeEditor::RecipeEditor(QWidget* parent) : QWidget(parent) {
    auto* box = new QGroupBox(tr("Recipe"), this);
    auto* form = new QFormLayout;
    preset_ = new QComboBox(box);
    preset_->addItem(tr("Custom"), QString());
    for (const RecipePreset& p : recipePresets()) {
        preset_->addItem(QString::fromStdString(p.title), QString::fromStdString(p.id));
        preset_->setItemData(preset_->count() - 1, QString::fromStdString(p.description), Qt::ToolTipRole);
    }
    form->addRow(tr("Preset"), preset_);

    vocab_ = new QComboBox(box);
    vocab_->addItem(tr("Keep every token"), QString());
    vocab_->addItem(tr("English"), "english");
    vocab_->addItem(tr("Latin scripts"), "latin");
    vocab_->addItem(tr("European scripts"), "european");
    vocab_->addItem(tr("Chinese, Japanese, Korean"), "cjk");
    form->addRow(tr("Vocabulary"), vocab_);
    textOnly_ = new QCheckBox(tr("Drop the vision and audio towers (text only)"), box);
    form->addRow(QString(), textOnly_);

    flap_ = new QCheckBox(tr("Prune FFN channels (FLAP)"), box);
    flapRatio_ = new QDoubleSpinBox(box);
    flapRatio_->setRange(0.05, 0.9);
    flapRatio_->setSingleStep(0.05);
    flapRatio_->setValue(0.2);
    flapRatio_->setSuffix(tr(" of channels"));
    compensation_ = new QCheckBox(tr("bias compensation (Whittle-only output)"), box);
    compensation_->setChecked(true);
    form->addRow(tr("FLAP"), row({flap_, flapRatio_, compensation_}));

    quantize_ = new QComboBox(box);
    quantize_->addItem(tr("No quantization"), QString());
    quantize_->addItem(tr("INT4 RTN"), "rtn");
    quantize_->addItem(tr("INT4 GPTQ"), "gptq");
    quantize_->addItem(tr("NVFP4"), "nvfp4");
    quantize_->addItem(tr("Mixed bit budget"), "budget");
    group_ = new QComboBox(box);
    for (int g : {32, 64, 128}) group_->addItem(tr("group %1").arg(g), g);
    group_->addItem(tr("per channel"), 0);
    group_->setCurrentIndex(2);
    format_ = new QComboBox(box);
    form->addRow(tr("Quantize"), row({quantize_, group_, format_}));
    actOrder_ = new QCheckBox(tr("activation order"), box);
    damp_ = new QDoubleSpinBox(box);
    damp_->setDecimals(3);
    damp_->setRange(0.001, 0.5);
    damp_->setSingleStep(0.005);
    damp_->setValue(0.01);
    damp_->setPrefix(tr("damping "));
    bpw_ = new QDoubleSpinBox(box);
    bpw_->setDecimals(2);
    bpw_->setRange(0, 16);
    bpw_->setSingleStep(0.25);
    bpw_->setValue(0);
    bpw_->setSpecialValueText(tr("budget: as INT4 g128"));
    bpw_->setSuffix(tr(" bits per weight"));
    form->addRow(tr("GPTQ"), row({actOrder_, damp_, bpw_}));
    embeddings_ = new QComboBox(box);
    embeddings_->addItem(tr("as they are"), "keep");
    embeddings_->addItem(tr("Q8_0 rows"), "q8_0");
    embeddings_->addItem(tr("Q4_0 rows"), "q4_0");
    embeddings_->setToolTip(tr("The main embedding and PLE table stored as rows of GGUF blocks: most of E2B's bytes are there."));
    form->addRow(tr("Token tables"), row({embeddings_}));
    exclude_ = new QLineEdit(joinList(QuantizeRecipe::defaultExclusions()), box);
    exclude_->setToolTip(tr("Glob patterns over Hugging Face tensor names, comma-separated: the linears they match stay unquantized"));
    form->addRow(tr("Keep unquantized"), exclude_);
    excluded_ = new QPlainTextEdit(box);
    excluded_->setReadOnly(true);
    // Three lines at least: the count and the first roles stay readable when the page is short.
    excluded_->setMinimumHeight(textBoxHeight(excluded_, 3));
    excluded_->setMaximumHeight(textBoxHeight(excluded_, 4));
    excluded_->setObjectName("excludedLinears");
    form->addRow(QString(), excluded_);

    samples_ = new QSpinBox(box);
    samples_->setRange(1, 4096);
    samples_->setValue(32);
    samples_->setSuffix(tr(" windows"));
    length_ = new QSpinBox(box);
    length_->setRange(16, 8192);
    length_->setValue(512);
    length_->setSuffix(tr(" tokens"));
    form->addRow(tr("Calibration (FLAP, GPTQ)"), row({samples_, new QLabel(QStringLiteral("×"), box), length_}));
    calibFiles_ = new QLineEdit(box);
    calibFiles_->setPlaceholderText(tr("the model's heldout.txt"));
    calibFiles_->setToolTip(tr("Text files to calibrate on, comma-separated"));
    browseCalib_ = new QPushButton(tr("Files…"), box);
    auto* filesRow = new QHBoxLayout;
    filesRow->addWidget(calibFiles_, 1);
    filesRow->addWidget(browseCalib_);
    form->addRow(tr("Calibration text"), filesRow);

    auto* ggufRow = new QHBoxLayout;
    for (const auto& [format, label] : std::vector<std::pair<QString, QString>>{
             {"gguf-q4_0", "Q4_0"}, {"gguf-q8_0", "Q8_0"}, {"gguf-f16", "F16"}, {"gguf-nvfp4", "NVFP4"}}) {
        auto* b = new QCheckBox(label, box);
        gguf_[format] = b;
        ggufRow->addWidget(b);
    }
    ggufRow->addStretch();
    form->addRow(tr("Also write GGUF"), ggufRow);
    evaluate_ = new QCheckBox(tr("Measure against the original"), box);
    evaluate_->setChecked(true);
    evalTokens_ = new QSpinBox(box);
    evalTokens_->setRange(64, 1 << 20);
    evalTokens_->setValue(8192);
    evalTokens_->setSuffix(tr(" held-out tokens"));
    form->addRow(tr("Quality report"), row({evaluate_, evalTokens_}));
    box->setLayout(form);

    auto* jsonBox = new QGroupBox(tr("Recipe file (what whittle-cli slim --recipe reads; edit freely)"), this);
    auto* jsonCol = new QVBoxLayout(jsonBox);
    json_ = new QPlainTextEdit(jsonBox);
    json_->setObjectName("recipeJson");
    json_->setFont(QFont("monospace"));
    // The file takes the room the form leaves (its own size hint ignored), five lines at least.
    json_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Ignored);
    json_->setMinimumHeight(textBoxHeight(json_, 5));
    load_ = new QPushButton(tr("Load recipe…"), jsonBox);
    save_ = new QPushButton(tr("Save recipe…"), jsonBox);
    status_ = new QLabel(jsonBox);
    status_->setWordWrap(true);
    status_->setObjectName("recipeStatus");
    jsonCol->addWidget(json_, 1);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(load_);
    buttons->addWidget(save_);
    buttons->addWidget(status_, 1);
    jsonCol->addLayout(buttons);

    auto* col = new QVBoxLayout(this);
    col->setContentsMargins(0, 0, 0, 0);
    col->addWidget(new FormScrollArea(box, this));
    col->addWidget(jsonBox, 1);

    fillFormats();
    for (QComboBox* b : {vocab_, group_, format_, embeddings_}) connect(b, &QComboBox::currentIndexChanged, this, &RecipeEditor::controlsChanged);
    connect(quantize_, &QComboBox::currentIndexChanged, this, [this] {
        fillFormats();
        controlsChanged();
    });
    for (QCheckBox* b : {textOnly_, flap_, compensation_, actOrder_, evaluate_}) connect(b, &QCheckBox::toggled, this, &RecipeEditor::controlsChanged);
    for (QCheckBox* b : gguf_) connect(b, &QCheckBox::toggled, this, &RecipeEditor::controlsChanged);
    for (QSpinBox* b : {samples_, length_, evalTokens_}) connect(b, &QSpinBox::valueChanged, this, &RecipeEditor::controlsChanged);
    for (QDoubleSpinBox* b : {flapRatio_, damp_, bpw_}) connect(b, &QDoubleSpinBox::valueChanged, this, &RecipeEditor::controlsChanged);
    connect(preset_, &QComboBox::activated, this, [this](int i) {
        if (const QString id = preset_->itemData(i).toString(); !id.isEmpty()) applyPreset(id);
    });
    for (QLineEdit* e : {exclude_, calibFiles_}) connect(e, &QLineEdit::textChanged, this, &RecipeEditor::controlsChanged);
    connect(browseCalib_, &QPushButton::clicked, this, &RecipeEditor::chooseCalibrationFiles);
    connect(load_, &QPushButton::clicked, this, &RecipeEditor::chooseRecipe);
    connect(save_, &QPushButton::clicked, this, &RecipeEditor::chooseSaveFile);
    connect(json_, &QPlainTextEdit::textChanged, this, &RecipeEditor::recipeChanged);
    controlsChanged();
}

QList<QWidget*> RecipeEditor::controls() const {
    QList<QWidget*> all{preset_,  vocab_,     quantize_, group_,   format_,  embeddings_, textOnly_, flap_,      compensation_,
                        actOrder_, evaluate_, flapRatio_, damp_, bpw_, samples_, length_,     evalTokens_, exclude_, calibFiles_};
    for (QCheckBox* b : gguf_) all << b;
    return all;
}

void RecipeEditor::fillFormats() {
    const QString method = quantize_->currentData().toString();
    const QString was = format_->currentData().toString();
    const QSignalBlocker block(format_);
    format_->clear();
    if (method == "nvfp4") {
        format_->addItem(tr("ModelOpt NVFP4"), "nvfp4-modelopt");
        format_->addItem(tr("compressed-tensors NVFP4"), "nvfp4-ct");
    } else if (!method.isEmpty()) {
        format_->addItem(tr("GPTQ v1"), "gptq");
    }
    if (!method.isEmpty()) format_->addItem(tr("dequantized (plain tensors)"), "hf");
    format_->setCurrentIndex(std::max(0, format_->findData(was)));
}

void RecipeEditor::controlsChanged() {
    updateEnabled();
    {
        const QSignalBlocker block(preset_);
        preset_->setCurrentIndex(0);  // changed by hand: no longer the preset
    }
    Json j = base_;
    j["whittle_recipe"] = Recipe::kVersion;
    Json calib{{"samples", samples_->value()}, {"length", length_->value()}};
    if (const QStringList files = splitList(calibFiles_->text()); !files.isEmpty()) {
        Json f = Json::array();
        for (const QString& file : files) f.push_back(file.toStdString());
        calib["files"] = f;
    }
    auto section = [&](const char* key) { return j.contains(key) && j[key].is_object() ? j[key] : Json::object(); };

    if (textOnly_->isChecked()) j["text_only"] = true;
    else j.erase("text_only");
    if (const QString v = vocab_->currentData().toString(); v.isEmpty()) j.erase("vocabulary");
    else if (v == kPageVocabulary && pageSelection_) j["vocabulary"] = toJson(*pageSelection_);
    else if (v != kLoadedVocabulary && v != kPageVocabulary) j["vocabulary"] = {{"preset", v.toStdString()}};

    if (flap_->isChecked()) {
        Json f = section("flap");
        f["ratio"] = std::round(flapRatio_->value() * 100) / 100;
        f["bias_compensation"] = compensation_->isChecked();
        f["calibration"] = calib;
        j["flap"] = f;
    } else {
        j.erase("flap");
    }

    const QString method = quantize_->currentData().toString();
    if (method.isEmpty()) {
        j.erase("quantization");
    } else {
        Json q = section("quantization");
        if (q.value("method", std::string()) != method.toStdString()) q = Json::object();  // another method's keys do not apply
        q["method"] = method.toStdString();
        q.erase("group_size");
        if (method == "rtn" || method == "gptq") q["group_size"] = group_->currentData().toInt();
        q["format"] = format_->currentData().toString().toStdString();
        if (const QString e = embeddings_->currentData().toString(); e == "keep") q.erase("embeddings");
        else q["embeddings"] = e.toStdString();
        Json rules = Json::array();
        for (const QString& g : splitList(exclude_->text())) rules.push_back(g.toStdString());
        q["exclude"] = rules;
        if (method == "gptq" || method == "budget") {
            q["act_order"] = actOrder_->isChecked();
            q["damp"] = damp_->value();
            q["calibration"] = calib;
        }
        if (method == "budget") q["bpw"] = bpw_->value();
        j["quantization"] = q;
    }

    Json gguf = Json::array();
    for (auto it = gguf_.cbegin(); it != gguf_.cend(); ++it)
        if (it.value()->isChecked()) gguf.push_back(it.key().toStdString());
    if (gguf.empty()) j.erase("export");
    else j["export"] = gguf;
    if (evaluate_->isChecked()) {
        Json e = section("evaluation");
        e["max_tokens"] = evalTokens_->value();
        j["evaluation"] = e;
    } else {
        j.erase("evaluation");
    }
    dropStaleChoices(j);
    json_->setPlainText(QString::fromStdString(j.dump(2)));
    showExcluded();
    try {
        (void)recipe();
        status_->clear();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));  // e.g. token tables as blocks with plain tensors
    }
}

void RecipeEditor::dropStaleChoices(Json& j) const {
    // Compared as the parser reads them (defaults filled in), without the choices a calibration made.
    Recipe now, was;
    try {
        now = parseRecipe(j, "the recipe");
        was = parseRecipe(base_, "the recipe");
    } catch (const std::exception&) {
        return;  // the editor shows why it does not parse
    }
    auto flap = [](Recipe r) {
        if (r.flap) r.flap->widths.clear();
        return r.flap ? toJson(*r.flap) : Json();
    };
    auto quant = [](Recipe r) {
        if (r.quantization) r.quantization->formats.clear();
        return r.quantization ? toJson(*r.quantization) : Json();
    };
    // FLAP's widths depend on the model FLAP calibrates on (text-only, vocabulary) and on FLAP's section; the
    // budget's formats on those and on the quantization section.
    const bool before = now.textOnly != was.textOnly || (now.vocabulary ? toJson(*now.vocabulary) : Json()) != (was.vocabulary ? toJson(*was.vocabulary) : Json());
    const bool flapStale = before || flap(now) != flap(was);
    const bool quantStale = flapStale || quant(now) != quant(was);
    if (flapStale && j.contains("flap")) j["flap"].erase("widths");
    if (quantStale && j.contains("quantization")) j["quantization"].erase("formats");
}

void RecipeEditor::showInControls(const Recipe& r) {
    const QList<QWidget*> all = controls();
    for (QWidget* w : all) w->blockSignals(true);
    for (int i = vocab_->count() - 1; i >= 0; --i)
        if (vocab_->itemData(i).toString() == kLoadedVocabulary) vocab_->removeItem(i);
    // A preset's own entry first; then the Vocabulary page's selection when the recipe's is that; else "as loaded".
    const int presetAt = r.vocabulary && r.vocabulary->buckets.empty() && r.vocabulary->preset != "corpus"
                             ? vocab_->findData(QString::fromStdString(r.vocabulary->preset))
                             : -1;
    const int pageAt = vocab_->findData(kPageVocabulary);
    if (!r.vocabulary) {
        vocab_->setCurrentIndex(0);
    } else if (presetAt >= 0) {
        vocab_->setCurrentIndex(presetAt);
    } else if (pageAt >= 0 && pageSelection_ && toJson(*r.vocabulary) == toJson(*pageSelection_)) {
        vocab_->setCurrentIndex(pageAt);
    } else {
        std::string what = r.vocabulary->preset;
        if (!r.vocabulary->buckets.empty()) {
            what.clear();
            for (const auto& b : r.vocabulary->buckets) what += (what.empty() ? "" : ", ") + b;
        }
        vocab_->addItem(tr("As loaded: %1").arg(QString::fromStdString(what)), kLoadedVocabulary);
        vocab_->setCurrentIndex(vocab_->count() - 1);
    }
    textOnly_->setChecked(r.textOnly);
    flap_->setChecked(r.flap.has_value());
    if (r.flap) {
        flapRatio_->setValue(r.flap->ratio);
        compensation_->setChecked(r.flap->biasCompensation);
        samples_->setValue(r.flap->calibration.samples);
        length_->setValue(r.flap->calibration.length);
        calibFiles_->setText(joinList(r.flap->calibration.files));
    }
    quantize_->setCurrentIndex(std::max(0, quantize_->findData(r.quantization ? QString::fromStdString(r.quantization->method) : QString())));
    fillFormats();
    if (const auto& q = r.quantization) {
        if (const int g = group_->findData(q->groupSize); g >= 0) group_->setCurrentIndex(g);
        format_->setCurrentIndex(std::max(0, format_->findData(QString::fromStdString(q->format))));
        embeddings_->setCurrentIndex(std::max(0, embeddings_->findData(QString::fromStdString(q->embeddings))));
        actOrder_->setChecked(q->actOrder);
        damp_->setValue(q->damp);
        bpw_->setValue(q->bpw);
        exclude_->setText(joinList(q->exclude));
        if (q->method == "gptq" || q->method == "budget") {
            samples_->setValue(q->calibration.samples);
            length_->setValue(q->calibration.length);
            calibFiles_->setText(joinList(q->calibration.files));
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
    showExcluded();
}

void RecipeEditor::updateEnabled() {
    const bool flap = flap_->isChecked();
    const QString method = quantize_->currentData().toString();
    const bool gptq = method == "gptq" || method == "budget";
    flapRatio_->setEnabled(flap);
    compensation_->setEnabled(flap);
    group_->setEnabled(method == "rtn" || method == "gptq");
    format_->setEnabled(!method.isEmpty());
    embeddings_->setEnabled(!method.isEmpty());
    actOrder_->setEnabled(gptq);
    damp_->setEnabled(gptq);
    bpw_->setEnabled(method == "budget");
    samples_->setEnabled(flap || gptq);  // the calibration FLAP and GPTQ read
    length_->setEnabled(flap || gptq);
    calibFiles_->setEnabled(flap || gptq);
    browseCalib_->setEnabled(flap || gptq);
    exclude_->setEnabled(!method.isEmpty());
    excluded_->setEnabled(!method.isEmpty());
    evalTokens_->setEnabled(evaluate_->isChecked());
}

Recipe RecipeEditor::recipe() const {
    Json j;
    try {
        j = Json::parse(json_->toPlainText().toStdString());
    } catch (const Json::parse_error& e) {
        throw FormatError("the recipe", {}, std::string("not JSON: ") + e.what());
    }
    return parseRecipe(j, "the recipe");
}

void RecipeEditor::setRecipe(const Recipe& r) {
    base_ = toJson(r);
    showInControls(r);
    json_->setPlainText(QString::fromStdString(base_.dump(2)));
    status_->clear();
}

bool RecipeEditor::loadRecipeFile(const QString& path) {
    try {
        const Recipe r = loadRecipe(path.toStdString());  // checked before it replaces the editor's text
        setRecipe(r);
        preset_->setCurrentIndex(0);
        status_->setText(tr("Loaded %1.").arg(QDir::toNativeSeparators(path)));
        return true;
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return false;
    }
}

bool RecipeEditor::saveRecipeFile(const QString& path) {
    try {
        const Json j = toJson(recipe());
        QSaveFile f(path);  // written beside and renamed over: never a half-written recipe
        const QByteArray text = QByteArray::fromStdString(j.dump(2) + "\n");
        if (!f.open(QIODevice::WriteOnly) || f.write(text) != text.size() || !f.commit())
            throw IoError(path.toStdString(), {}, f.errorString().toStdString());
        status_->setText(tr("Saved %1.").arg(QDir::toNativeSeparators(path)));
        return true;
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return false;
    }
}

void RecipeEditor::applyPreset(const QString& id) {
    const RecipePreset& p = recipePreset(id.toStdString());
    setRecipe(p.recipe);
    preset_->setCurrentIndex(std::max(0, preset_->findData(id)));
    status_->setText(QString::fromStdString(p.description));
}

void RecipeEditor::setCheckpoint(std::shared_ptr<const Checkpoint> checkpoint) {
    checkpoint_ = std::move(checkpoint);
    showExcluded();
}

void RecipeEditor::setVocabularyPageSelection(std::optional<VocabularyRecipe> selection) {
    pageSelection_ = std::move(selection);
    const int at = vocab_->findData(kPageVocabulary);
    if (pageSelection_ && at < 0) {
        const QSignalBlocker block(vocab_);
        vocab_->addItem(tr("The Vocabulary page's selection"), kPageVocabulary);
    } else if (!pageSelection_ && at >= 0) {
        if (vocab_->currentIndex() == at) vocab_->setCurrentIndex(0);  // rewrites the recipe without it
        vocab_->removeItem(at);
    }
    if (pageSelection_ && vocab_->currentData().toString() == kPageVocabulary) controlsChanged();  // follow it
}

void RecipeEditor::showExcluded() {
    if (!checkpoint_ || quantize_->currentData().toString().isEmpty()) {
        excluded_->setPlainText(checkpoint_ ? QString() : tr("Open a checkpoint to see the linears these rules keep."));
        return;
    }
    QuantizeRecipe q;
    q.exclude.clear();
    for (const QString& g : splitList(exclude_->text())) q.exclude.push_back(g.toStdString());
    const std::vector<std::string> names = excludedLinears(q, checkpoint_->table());
    // The summary first (a role once, with its layers), so the short box shows what the rules catch;
    // every name follows for the exact list.
    QStringList lines;
    lines << tr("%n linear(s) kept unquantized:", nullptr, int(names.size()));
    for (const std::string& line : summarizeTensorNames(checkpoint_->table(), names)) lines << "  " + QString::fromStdString(line);
    if (!names.empty()) lines << tr("By name:");
    for (const std::string& n : names) lines << "  " + QString::fromStdString(n);
    excluded_->setPlainText(lines.join('\n'));
}

void RecipeEditor::chooseCalibrationFiles() {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Calibration text"), QString(), tr("Text (*.txt);;All files (*)"));
    if (files.isEmpty()) return;
    calibFiles_->setText(files.join(", "));
    controlsChanged();
}

void RecipeEditor::chooseRecipe() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Load a Whittle recipe"), QString(), tr("Recipes (*.json)"));
    if (!f.isEmpty()) loadRecipeFile(f);
}

void RecipeEditor::chooseSaveFile() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save the recipe"), QStringLiteral("recipe.json"), tr("Recipes (*.json)"));
    if (!f.isEmpty()) saveRecipeFile(f);
}

}  // namespace whittle::gui
