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
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QSpinBox>
#include <QVBoxLayout>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/recipes/recipe_presets.h"

namespace whittle::gui {

namespace {
// The vocabulary box's entry for a loaded vocabulary section no preset entry shows (listed buckets, a corpus).
const QString kLoadedVocabulary = QStringLiteral("*loaded*");

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

    samples_ = new QSpinBox(box);
    samples_->setRange(1, 4096);
    samples_->setValue(32);
    samples_->setSuffix(tr(" windows"));
    length_ = new QSpinBox(box);
    length_->setRange(16, 8192);
    length_->setValue(512);
    length_->setSuffix(tr(" tokens"));
    form->addRow(tr("Calibration (FLAP, GPTQ)"), row({samples_, new QLabel(QStringLiteral("×"), box), length_}));

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
    col->addWidget(box);
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
    connect(load_, &QPushButton::clicked, this, &RecipeEditor::chooseRecipe);
    connect(save_, &QPushButton::clicked, this, &RecipeEditor::chooseSaveFile);
    connect(json_, &QPlainTextEdit::textChanged, this, &RecipeEditor::recipeChanged);
    controlsChanged();
}

QList<QWidget*> RecipeEditor::controls() const {
    QList<QWidget*> all{preset_, vocab_, quantize_, group_, format_, embeddings_, textOnly_, flap_, compensation_, actOrder_,
                        evaluate_, flapRatio_, damp_, bpw_, samples_, length_, evalTokens_};
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
    const Json calib{{"samples", samples_->value()}, {"length", length_->value()}};
    auto section = [&](const char* key) { return j.contains(key) && j[key].is_object() ? j[key] : Json::object(); };

    if (textOnly_->isChecked()) j["text_only"] = true;
    else j.erase("text_only");
    if (const QString v = vocab_->currentData().toString(); v.isEmpty()) j.erase("vocabulary");
    else if (v != kLoadedVocabulary) j["vocabulary"] = {{"preset", v.toStdString()}};

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
    json_->setPlainText(QString::fromStdString(j.dump(2)));
    try {
        (void)recipe();
        status_->clear();
    } catch (const std::exception& e) {
        status_->setText(QString::fromUtf8(e.what()));  // e.g. token tables as blocks with plain tensors
    }
}

void RecipeEditor::showInControls(const Recipe& r) {
    const QList<QWidget*> all = controls();
    for (QWidget* w : all) w->blockSignals(true);
    for (int i = vocab_->count() - 1; i >= 0; --i)
        if (vocab_->itemData(i).toString() == kLoadedVocabulary) vocab_->removeItem(i);
    if (r.vocabulary) {
        int v = r.vocabulary->buckets.empty() && r.vocabulary->preset != "corpus" ? vocab_->findData(QString::fromStdString(r.vocabulary->preset)) : -1;
        if (v < 0) {
            const std::string what = r.vocabulary->buckets.empty() ? r.vocabulary->preset : [&] {
                std::string s;
                for (const auto& b : r.vocabulary->buckets) s += (s.empty() ? "" : ", ") + b;
                return s;
            }();
            vocab_->addItem(tr("As loaded: %1").arg(QString::fromStdString(what)), kLoadedVocabulary);
            v = vocab_->count() - 1;
        }
        vocab_->setCurrentIndex(v);
    } else {
        vocab_->setCurrentIndex(0);
    }
    textOnly_->setChecked(r.textOnly);
    flap_->setChecked(r.flap.has_value());
    if (r.flap) {
        flapRatio_->setValue(r.flap->ratio);
        compensation_->setChecked(r.flap->biasCompensation);
        samples_->setValue(r.flap->calibration.samples);
        length_->setValue(r.flap->calibration.length);
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
        if (q->method == "gptq" || q->method == "budget") {
            samples_->setValue(q->calibration.samples);
            length_->setValue(q->calibration.length);
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

void RecipeEditor::chooseRecipe() {
    const QString f = QFileDialog::getOpenFileName(this, tr("Load a Whittle recipe"), QString(), tr("Recipes (*.json)"));
    if (!f.isEmpty()) loadRecipeFile(f);
}

void RecipeEditor::chooseSaveFile() {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save the recipe"), QStringLiteral("recipe.json"), tr("Recipes (*.json)"));
    if (!f.isEmpty()) saveRecipeFile(f);
}

}  // namespace whittle::gui
