#pragma once
// The live estimate of a recipe (core/estimate): disk size before → after with the saving by part, a stacked
// bar of device memory (weights, PLE table, KV cache, scratch) against the chosen device's room, host RAM,
// and a spill warning; with the runtime it assumes — context length (slider, to the model's maximum),
// prefill chunk, PLE table on host or device, the device. An Estimator keeps each recipe's stages: a change
// whose stages are kept (any runtime change, a recipe seen before) is recomputed on the GUI thread at once
// (under 1 ms for E2B: bench_estimate); otherwise the stages are computed on a worker thread (the vocabulary's
// tokenizer rewrite takes about 1.5 s for 262k tokens), the figures marked as updating meanwhile.
#include <QFutureWatcher>
#include <QWidget>
#include <memory>
#include <optional>
#include <vector>

#include "core/estimate/estimate.h"
#include "gpu/device_caps.h"

class QAbstractItemModel;
class QComboBox;
class QLabel;
class QSlider;
class QSpinBox;
class QTableView;

namespace whittle::gui {

class MemoryBar;
class PartSizeModel;

class EstimatePanel : public QWidget {
    Q_OBJECT
public:
    explicit EstimatePanel(QWidget* parent = nullptr);
    ~EstimatePanel() override;  // waits for a stage being computed

    void setCheckpoint(std::shared_ptr<const Checkpoint> checkpoint);
    void setRecipe(const Recipe& recipe);
    void setRecipeError(const QString& why);  // the editor's text does not parse: no figures
    // The devices the bar is drawn against (listed off the GUI thread by the page); the picked one is chosen.
    // The box also offers GPUs one may not have (4 to 24 GB), for planning a purchase or a friend's machine.
    void setDevices(const std::vector<gpu::DeviceCaps>& devices);

    // What the bar is drawn against: a listed device, or a GPU of a given size.
    struct Target {
        QString name;
        std::uint64_t room = 0;        // what the model may count on (DeviceCaps::roomForModel; 0.8 × a GPU's size)
        bool measured = false;         // room from VK_EXT_memory_budget
        std::uint64_t maxBinding = 0;  // maxStorageBufferRange; 0 when unknown
        int deviceIndex = -1;          // the Vulkan device's index; -1 for a GPU of a given size
    };

    RuntimeOptions runtime() const;
    const std::optional<Estimate>& current() const { return estimate_; }
    const Target* target() const;  // nullptr: sizes only
    double lastMilliseconds() const { return lastMs_; }  // the last estimate shown, on the GUI thread
    bool pending() const { return pending_; }  // the recipe's stages are being computed; the figures are the last ones

    // Controls and views, for tests and screenshots.
    QSlider* contextSlider() const { return context_; }  // log2 of the context
    QSpinBox* chunkBox() const { return chunk_; }
    QComboBox* pleBox() const { return ple_; }         // "host", "gpu"
    QComboBox* deviceBox() const { return deviceBox_; }  // data: an index into the targets, -1 none
    QLabel* diskLabel() const { return disk_; }
    QLabel* memoryLabel() const { return memory_; }
    QLabel* hostLabel() const { return host_; }
    QLabel* warningLabel() const { return warning_; }
    MemoryBar* memoryBar() const { return bar_; }
    QTableView* partsView() const { return parts_; }
    // The open checkpoint's estimator (null before one is open): its kept stages serve the page's calibration too.
    std::shared_ptr<const Estimator> estimator() const { return estimator_; }
    QAbstractItemModel* partsModel() const;

signals:
    void estimated();  // current() changed (or was cleared)

private:
    void recompute();
    void showEstimate();
    void clearFigures(const QString& why);

    std::shared_ptr<const Estimator> estimator_;  // of the open checkpoint; null before one is open
    QFutureWatcher<void> preparing_;
    bool pending_ = false;
    std::optional<Recipe> recipe_;
    std::optional<Estimate> estimate_;
    std::vector<Target> targets_;
    double lastMs_ = 0;
    QSlider* context_;
    QLabel* contextText_;
    QSpinBox* chunk_;
    QComboBox *ple_, *deviceBox_;
    QLabel *disk_, *memory_, *host_, *warning_, *note_;
    MemoryBar* bar_;
    QTableView* parts_;
    PartSizeModel* partsModel_;
};

}  // namespace whittle::gui
