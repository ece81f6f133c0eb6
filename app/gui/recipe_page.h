#pragma once
// The Recipe page: the recipe (RecipeEditor: controls, presets, the JSON whittle-cli reads, load and save) beside
// its live estimate (EstimatePanel: disk, device memory against the chosen GPU, host RAM, spill warning), and
// "Run", which queues a slim of the open checkpoint on the Run page. "Calibrate" plans what calibration decides
// (FLAP's widths, the bit budget's formats: core/pipeline/calibrate.h) on the shared worker, with progress and
// cancel, and writes it into the recipe, so the estimate becomes exact before the run.
#include <QWidget>
#include <memory>
#include <vector>

#include "core/model/checkpoint.h"
#include "core/recipes/recipe.h"

class QLabel;
class QLineEdit;
class QPushButton;

namespace whittle::gui {

class ChatEngine;
class EstimatePanel;
class RecipeEditor;
class RunPage;
class WorkerBridge;
struct WorkerOutcome;

class RecipePage : public QWidget {
    Q_OBJECT
public:
    // `engine`: the Chat page's engine thread, whose Vulkan instance lists the devices (none: sizes only).
    RecipePage(RunPage* runPage, WorkerBridge* bridge, ChatEngine* engine, QWidget* parent = nullptr);
    ~RecipePage() override;

    void open(std::shared_ptr<const Checkpoint> checkpoint);
    // Queues the editor's recipe on the Run page into outputEdit()'s folder; returns the job id, or 0 with the
    // reason in statusLabel() (no checkpoint, bad recipe, nothing to do, output in use).
    int run();

    RecipeEditor* editor() const { return editor_; }
    EstimatePanel* estimatePanel() const { return panel_; }
    QLineEdit* outputEdit() const { return output_; }
    QPushButton* runButton() const { return run_; }
    QPushButton* calibrateButton() const { return calibrate_; }  // "Calibrate", or "Cancel calibration" while it runs
    // Starts the calibration of the editor's recipe (false with the reason in statusLabel()); calibrated() when it ends.
    bool calibrate();
    bool calibrating() const { return calibrationJob_ != 0; }
    QLabel* statusLabel() const { return status_; }
    bool devicesListed() const { return listed_; }

signals:
    void queued(int id);
    void devicesReady();
    void calibrated(bool ok);  // the calibration ended: its choices are in the recipe (ok), or failed or was cancelled

private:
    void recipeChanged();
    void suggestOutput();
    void chooseOutput();
    void calibrationDone(int id, const WorkerOutcome& outcome);
    void updateCalibrateButton();

    RunPage* runPage_;
    WorkerBridge* bridge_;
    int calibrationJob_ = 0;
    std::shared_ptr<Recipe> calibratedRecipe_;  // written by the calibration job, read when it ends
    std::string calibratedFrom_;                // the recipe it calibrates, as JSON: applied only if still the editor's
    std::shared_ptr<const Checkpoint> checkpoint_;
    RecipeEditor* editor_;
    EstimatePanel* panel_;
    QLineEdit* output_;
    QPushButton *browse_, *run_, *calibrate_;
    QLabel *source_, *status_;
    bool listed_ = false;
};

}  // namespace whittle::gui
