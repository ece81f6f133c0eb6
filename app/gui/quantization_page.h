#pragma once
// The Quantize page: method (INT4 RTN, INT4 GPTQ, NVFP4, mixed bit budget), its settings (group, symmetric,
// act-order, calibration text and size, target bits per weight and candidate formats, exclusion rules),
// output format and folder; the plan — tensors, bits per weight, size before and after — updates live from
// the core's planQuantization as settings change; the run goes to the shared WorkerBridge with a progress bar
// (stage, ETA) and Cancel. The settings form the same "quantization" recipe section the CLI and recipe files use, checked
// by the same parser. The bit budget's plan needs a measurement (planBitBudget): *Plan* runs it in the
// worker and shows the per-tensor table; *Quantize* is enabled only once the table for the current settings
// is shown, and writes exactly that plan.
#include <QFutureWatcher>
#include <QWidget>
#include <memory>
#include <optional>

#include "app/gui/worker_outcome.h"
#include "core/model/checkpoint.h"
#include "core/progress.h"
#include "core/recipes/quantize.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QTableWidget;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace whittle::gui {

class WorkerBridge;

class QuantizationPage : public QWidget {
    Q_OBJECT
public:
    // Runs its plan and quantize jobs in `bridge` (the main window's shared one); without one it makes its own.
    explicit QuantizationPage(WorkerBridge* bridge = nullptr, QWidget* parent = nullptr);
    ~QuantizationPage() override;

    // Reads the checkpoint's tensor list in the background, then emits loaded() or loadFailed().
    void open(const QString& modelDir);
    // The checkpoint the main window opened, shared (no second read of its headers).
    void open(std::shared_ptr<const Checkpoint> checkpoint);
    bool busy() const;

    // The recipe section the controls describe; throws FormatError naming the field for a bad setting.
    QuantizeRecipe recipe() const;
    QString planText() const;
    bool canStart() const;

    // Controls, for tests and screenshots.
    QComboBox* methodBox() const { return method_; }
    QComboBox* groupBox() const { return group_; }
    QComboBox* formatBox() const { return format_; }
    QComboBox* tablesBox() const { return tables_; }
    QCheckBox* symmetricBox() const { return symmetric_; }
    QCheckBox* actOrderBox() const { return actOrder_; }
    QSpinBox* samplesBox() const { return samples_; }
    QSpinBox* lengthBox() const { return length_; }
    QLineEdit* excludeEdit() const { return exclude_; }
    QDoubleSpinBox* bpwBox() const { return bpw_; }
    QLineEdit* candidatesEdit() const { return candidates_; }
    QPushButton* planButton() const { return planButton_; }
    QTableWidget* budgetTable() const { return budgetTable_; }
    // The bit budget's plan shown in the table (for the current settings), if any.
    const std::optional<BitBudgetPlan>& budgetPlan() const { return budgetPlan_; }
    QLineEdit* outputEdit() const { return output_; }
    QPushButton* startButton() const { return start_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    QLabel* statusLabel() const { return status_; }

public slots:
    void startPlan();
    void startQuantize();
    void cancelQuantize();

signals:
    void loaded();
    void loadFailed(const QString& message);
    void progressed(const QString& stage, double fraction, double etaSeconds);
    void finished(bool ok, const QString& message);
    void planned(bool ok, const QString& message);

private:
    void methodChanged();
    void updatePlan();
    void finishUpdate(bool canPlan);  // the buttons after the plan text is set
    void loadDone();
    void runDone(const WorkerOutcome& outcome);
    void planDone(const WorkerOutcome& outcome);
    void showBudgetPlan();
    bool running() const;
    void chooseOutput();
    void chooseCalibration();

    QString modelDir_;
    std::shared_ptr<const Checkpoint> checkpoint_;
    QFutureWatcher<std::shared_ptr<const Checkpoint>> loadWatcher_;
    QString loadError_;
    WorkerBridge* bridge_;
    int runJob_ = 0, planJob_ = 0;  // bridge job ids, 0 when none
    std::shared_ptr<BitBudgetPlan> pendingPlan_;  // written by the plan worker, read after it finished
    std::optional<BitBudgetPlan> budgetPlan_;
    std::string budgetPlanRecipe_;  // the recipe section (JSON text) the shown plan was measured for
    bool planOk_ = false;

    QComboBox *method_, *group_, *format_, *tables_;
    QCheckBox *symmetric_, *actOrder_;
    QLineEdit *calibFiles_, *exclude_, *output_;
    QSpinBox *samples_, *length_;
    QDoubleSpinBox* bpw_;
    QLineEdit* candidates_;
    QTableWidget* budgetTable_;
    QPushButton *calibBrowse_, *planButton_, *start_, *cancel_;
    QLabel *plan_, *status_;
    QProgressBar* progress_;
};

}  // namespace whittle::gui
