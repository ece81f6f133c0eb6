#pragma once
// The Recipe page: the recipe (RecipeEditor: controls, presets, the JSON whittle-cli reads, load and save) beside
// its live estimate (EstimatePanel: disk, device memory against the chosen GPU, host RAM, spill warning), and
// "Run", which queues a slim of the open checkpoint on the Run page.
#include <QFutureWatcher>
#include <QWidget>
#include <memory>
#include <vector>

#include "core/model/checkpoint.h"
#include "gpu/device_caps.h"

class QLabel;
class QLineEdit;
class QPushButton;

namespace whittle::gui {

class EstimatePanel;
class RecipeEditor;
class RunPage;

class RecipePage : public QWidget {
    Q_OBJECT
public:
    explicit RecipePage(RunPage* runPage, QWidget* parent = nullptr);
    ~RecipePage() override;

    void open(std::shared_ptr<const Checkpoint> checkpoint);
    // Queues the editor's recipe on the Run page into outputEdit()'s folder; returns the job id, or 0 with the
    // reason in statusLabel() (no checkpoint, bad recipe, nothing to do, output in use).
    int run();

    RecipeEditor* editor() const { return editor_; }
    EstimatePanel* estimatePanel() const { return panel_; }
    QLineEdit* outputEdit() const { return output_; }
    QPushButton* runButton() const { return run_; }
    QLabel* statusLabel() const { return status_; }
    bool devicesListed() const { return listed_; }

signals:
    void queued(int id);
    void devicesReady();

private:
    void recipeChanged();
    void suggestOutput();
    void chooseOutput();

    RunPage* runPage_;
    std::shared_ptr<const Checkpoint> checkpoint_;
    RecipeEditor* editor_;
    EstimatePanel* panel_;
    QLineEdit* output_;
    QPushButton *browse_, *run_;
    QLabel *source_, *status_;
    QFutureWatcher<std::vector<gpu::DeviceCaps>> devices_;
    bool listed_ = false;
};

}  // namespace whittle::gui
