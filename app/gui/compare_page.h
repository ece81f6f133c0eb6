#pragma once
// The Compare page: the original checkpoint and every variant made from it (the Run page's finished jobs,
// folders added by hand, a variant opened on the Model page with its source) side by side — size on disk,
// parameters, bits per weight, perplexity, KL divergence and top-1 against the original, decode tokens/s on
// the CPU reference and on the chosen Vulkan device — and a chart of KL divergence against size. Figures come
// from each variant's whittle.json; *Measure missing* runs the missing evaluations in the shared worker and
// the decode timings on the Chat page's engine thread (which owns the Vulkan device).
#include <QWidget>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "core/engine/evaluate.h"

class QComboBox;
class QLabel;
class QPushButton;
class QSpinBox;
class QTableView;

namespace whittle::gui {

class ChatEngine;
class CompareModel;
class KldSizeChart;
class WorkerBridge;
struct WorkerOutcome;

class ComparePage : public QWidget {
    Q_OBJECT
public:
    ComparePage(WorkerBridge* bridge, ChatEngine* engine, QWidget* parent = nullptr);

    // An opened checkpoint: the original, or a variant whose whittle.json names its source (then both show).
    void open(const QString& dir);
    // Adds a variant folder (false with the reason in statusLabel()).
    bool addVariant(const QString& dir);
    // Queues every missing figure: evaluations in the worker, decode timings on the engine. measured() when done.
    void measureMissing();
    bool measuring() const { return pending_ > 0; }

    CompareModel* model() const { return model_; }
    QTableView* table() const { return table_; }
    KldSizeChart* chart() const { return chart_; }
    QComboBox* deviceBox() const { return device_; }
    QSpinBox* evalTokensBox() const { return evalTokens_; }
    QSpinBox* decodeTokensBox() const { return decodeTokens_; }
    QPushButton* measureButton() const { return measure_; }
    QPushButton* addButton() const { return add_; }
    QPushButton* removeButton() const { return remove_; }
    QLabel* statusLabel() const { return status_; }

signals:
    void measured();

private:
    void chooseVariant();
    void removeSelected();
    void oneDone(const QString& what, bool ok, const QString& message);
    void evaluationDone(int job, const WorkerOutcome& outcome);
    void devicesListed(const QStringList& labels, const QList<int>& devices, int preferred);

    WorkerBridge* bridge_;
    ChatEngine* engine_;
    CompareModel* model_;
    QTableView* table_;
    KldSizeChart* chart_;
    QComboBox* device_;
    QSpinBox *evalTokens_, *decodeTokens_;
    QPushButton *add_, *remove_, *measure_;
    QLabel *original_, *status_;
    int pending_ = 0;
    int failures_ = 0;
    int nextRequest_ = 1;
    // Writes a measurement of row's variant into its whittle.json (variant_summary.h) when Whittle made it, saying
    // so when that fails.
    void record(int row, const std::function<void()>& write);
    std::map<int, std::pair<std::filesystem::path, bool>> decodeRequests_;  // request → (folder, on Vulkan)
    struct PendingEvaluation {
        std::filesystem::path dir;
        bool original = false;
        std::shared_ptr<EvalReport> result;  // written by the job, read when it finished
    };
    std::map<int, PendingEvaluation> evaluations_;  // bridge job → what it measures
};

}  // namespace whittle::gui
