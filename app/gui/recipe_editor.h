#pragma once
// A recipe, edited two ways that stay in step: controls for every section (vocabulary, text-only, FLAP,
// quantization method / format / group / act-order / damping / bit budget / token tables, calibration, GGUF
// exports, the quality report) and the exact JSON whittle-cli reads (editable; checked by the same parser,
// errors name the field). A control rewrites only the keys it owns, so a loaded file's other keys (exclusion
// rules, seeds, a corpus) survive. Presets (recipe_presets.h) and recipe files load into both; Save writes
// the JSON. A planned recipe's calibration choices (flap.widths, quantization.formats) stay while the sections
// they depend on are unchanged and are dropped once one changes. With a checkpoint, the exclusion rules show the linears they keep unquantized; the vocabulary can
// follow the Vocabulary page's selection. Emits recipeChanged() whenever the text changes, whatever changed it.
#include <QMap>
#include <QWidget>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/io/json_file.h"
#include "core/model/checkpoint.h"
#include "core/recipes/recipe.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace whittle::gui {

class RecipeEditor : public QWidget {
    Q_OBJECT
public:
    explicit RecipeEditor(QWidget* parent = nullptr);

    // The recipe in the JSON editor; throws FormatError naming the field.
    Recipe recipe() const;
    // Shows `r` in the controls and the editor.
    void setRecipe(const Recipe& r);
    // Loads a recipe file (checked before it replaces the editor's text); false with the reason in statusLabel().
    bool loadRecipeFile(const QString& path);
    // Writes the editor's recipe (checked first) as a recipe file; false with the reason in statusLabel().
    bool saveRecipeFile(const QString& path);
    // A shipped preset by id ("fit-8gb", …); the presets box shows it.
    void applyPreset(const QString& id);
    // The checkpoint the exclusion rules are shown against (its tensor table).
    void setCheckpoint(std::shared_ptr<const Checkpoint> checkpoint);
    // The Vocabulary page's selection, offered as a vocabulary choice that follows it (nothing: not offered).
    void setVocabularyPageSelection(std::optional<VocabularyRecipe> selection);

    // Controls, for tests and screenshots.
    QComboBox* presetBox() const { return preset_; }
    QComboBox* vocabularyBox() const { return vocab_; }
    QCheckBox* textOnlyBox() const { return textOnly_; }
    QCheckBox* flapBox() const { return flap_; }
    QDoubleSpinBox* flapRatioBox() const { return flapRatio_; }
    QCheckBox* compensationBox() const { return compensation_; }
    QComboBox* quantizeBox() const { return quantize_; }
    QComboBox* groupBox() const { return group_; }
    QComboBox* formatBox() const { return format_; }
    QComboBox* embeddingsBox() const { return embeddings_; }
    QLineEdit* excludeEdit() const { return exclude_; }        // globs, comma-separated
    QPlainTextEdit* excludedView() const { return excluded_; }  // the linears they match
    QLineEdit* calibrationFilesEdit() const { return calibFiles_; }  // text files, comma-separated; empty: heldout.txt
    QCheckBox* actOrderBox() const { return actOrder_; }
    QDoubleSpinBox* dampBox() const { return damp_; }
    QDoubleSpinBox* bpwBox() const { return bpw_; }
    QSpinBox* samplesBox() const { return samples_; }
    QSpinBox* lengthBox() const { return length_; }
    QCheckBox* evaluateBox() const { return evaluate_; }
    QSpinBox* evalTokensBox() const { return evalTokens_; }
    // "gguf-q4_0", "gguf-q8_0", "gguf-f16", "gguf-nvfp4": also written by the job, for llama.cpp.
    QCheckBox* ggufBox(const QString& format) const { return gguf_.value(format); }
    QPlainTextEdit* recipeEdit() const { return json_; }
    QLabel* statusLabel() const { return status_; }

signals:
    void recipeChanged();

private:
    void controlsChanged();  // rewrites the JSON's control-owned keys
    // Removes FLAP's planned widths and the budget's planned formats (whittle-cli plan, the Recipe page's
    // "Calibrate") when a section they were calibrated on differs from the recipe they came with (base_).
    void dropStaleChoices(Json& j) const;
    void showInControls(const Recipe& r);
    void updateEnabled();
    void fillFormats();  // the formats the chosen method can be written in
    void chooseRecipe();
    void chooseSaveFile();
    QList<QWidget*> controls() const;
    void showExcluded();
    void chooseCalibrationFiles();

    Json base_ = Json::object();  // the last recipe loaded or applied: keys no control owns come from here
    QComboBox *preset_, *vocab_, *quantize_, *group_, *format_, *embeddings_;
    QCheckBox *textOnly_, *flap_, *compensation_, *actOrder_, *evaluate_;
    QMap<QString, QCheckBox*> gguf_;
    QDoubleSpinBox *flapRatio_, *damp_, *bpw_;
    QSpinBox *samples_, *length_, *evalTokens_;
    QLineEdit *exclude_, *calibFiles_;
    QPlainTextEdit *excluded_, *json_;
    std::shared_ptr<const Checkpoint> checkpoint_;
    std::optional<VocabularyRecipe> pageSelection_;
    QPushButton *load_, *save_, *browseCalib_;
    QLabel* status_;
};

}  // namespace whittle::gui
