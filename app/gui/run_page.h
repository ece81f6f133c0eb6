#pragma once
// The Run page: a recipe — built with the controls (vocabulary preset, text-only, FLAP ratio and bias
// compensation, quantization method and group, calibration size, evaluation against the original) or loaded
// from a file — shown as the exact JSON whittle-cli slim reads (editable; checked by the same parser, errors
// name the field), added to a queue of slim jobs for the open checkpoint. The queue runs in the shared
// WorkerBridge, one job at a time: per job its stage, a progress bar and ETA (≤ 20 updates a second), its
// state; a log of every stage and outcome; Cancel; a finished job's output opens on the Model page.
#include <QMap>
#include <QWidget>
#include <map>
#include <memory>

#include "app/gui/worker_bridge.h"
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
class QTableWidget;

namespace whittle::gui {

class RunPage : public QWidget {
    Q_OBJECT
public:
    explicit RunPage(WorkerBridge* bridge, QWidget* parent = nullptr);

    void open(const QString& modelDir);                       // the checkpoint new jobs read (each job opens it)
    void open(std::shared_ptr<const Checkpoint> checkpoint);  // the main window's, shared by the jobs
    const QString& modelDir() const { return modelDir_; }

    // The recipe in the JSON editor; throws FormatError naming the field.
    Recipe recipe() const;
    // Queues a slim of the open checkpoint with recipe() into outputEdit()'s folder; returns the job id, or 0
    // with the reason in statusLabel() (no checkpoint, bad recipe, output in use).
    int addJob();
    void loadRecipeFile(const QString& path);

    enum class JobState { Queued, Running, Done, Failed, Cancelled };
    struct JobRow {
        int row = 0;
        QString output;
        JobState state = JobState::Queued;
        QString message;
    };
    const std::map<int, JobRow>& jobs() const { return jobs_; }

    // Controls, for tests and screenshots.
    QComboBox* vocabularyBox() const { return vocab_; }
    QCheckBox* textOnlyBox() const { return textOnly_; }
    QCheckBox* flapBox() const { return flap_; }
    QDoubleSpinBox* flapRatioBox() const { return flapRatio_; }
    QCheckBox* compensationBox() const { return compensation_; }
    QComboBox* quantizeBox() const { return quantize_; }
    QComboBox* groupBox() const { return group_; }
    QSpinBox* samplesBox() const { return samples_; }
    QSpinBox* lengthBox() const { return length_; }
    QCheckBox* evaluateBox() const { return evaluate_; }
    // "gguf-q4_0", "gguf-q8_0", "gguf-f16", "gguf-nvfp4": also written by the job, for llama.cpp.
    QCheckBox* ggufBox(const QString& format) const { return gguf_.value(format); }
    QSpinBox* evalTokensBox() const { return evalTokens_; }
    QPlainTextEdit* recipeEdit() const { return json_; }
    QLineEdit* outputEdit() const { return output_; }
    QPushButton* addButton() const { return add_; }
    QPushButton* cancelButton() const { return cancel_; }
    QPushButton* openButton() const { return openOutput_; }
    QTableWidget* queueTable() const { return table_; }
    QPlainTextEdit* logView() const { return log_; }
    QLabel* statusLabel() const { return status_; }

public slots:
    void cancelSelected();
    void openSelected();

signals:
    void openOutput(const QString& dir);
    void jobFinished(int id, bool ok, const QString& message);

private:
    void controlsChanged();  // rewrites the JSON from the controls
    void showInControls(const Recipe& r);
    void updateEnabled();  // a loaded recipe's settings, without rewriting its JSON
    void suggestOutput();
    void chooseOutput();
    void chooseRecipe();
    void selectionChanged();
    void jobStarted(int id);
    void jobProgressed(int id, const QString& stage, double fraction, double eta);
    void jobStage(int id, const QString& stage);
    void jobDone(int id, const WorkerOutcome& outcome);
    void log(const QString& line);
    int selectedJob() const;

    WorkerBridge* bridge_;
    QString modelDir_;
    std::shared_ptr<const Checkpoint> checkpoint_;  // when shared; else each job opens modelDir_
    std::map<int, JobRow> jobs_;

    QLabel *source_, *status_;
    QComboBox *vocab_, *quantize_, *group_;
    QCheckBox *textOnly_, *flap_, *compensation_, *evaluate_;
    QMap<QString, QCheckBox*> gguf_;
    QDoubleSpinBox* flapRatio_;
    QSpinBox *samples_, *length_, *evalTokens_;
    QPlainTextEdit *json_, *log_;
    QLineEdit* output_;
    QPushButton *loadRecipe_, *browse_, *add_, *cancel_, *openOutput_;
    QTableWidget* table_;
};

}  // namespace whittle::gui
