#pragma once
// The Run page: the queue of slim jobs for the open checkpoint (recipes come from the Recipe page). The queue
// runs in the shared WorkerBridge, one job at a time: per job its stage, a progress bar and ETA (≤ 20 updates
// a second), its state; a log of every stage and outcome; Cancel; a finished job's output opens on the Model
// page.
#include <QWidget>
#include <map>
#include <memory>

#include "app/gui/worker_bridge.h"
#include "core/model/checkpoint.h"
#include "core/recipes/recipe.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTableWidget;

namespace whittle::gui {

class RunPage : public QWidget {
    Q_OBJECT
public:
    explicit RunPage(WorkerBridge* bridge, QWidget* parent = nullptr);

    void open(const QString& modelDir);                       // the checkpoint new jobs read (each job opens it)
    void open(std::shared_ptr<const Checkpoint> checkpoint);  // the main window's, shared by the jobs
    const QString& modelDir() const { return modelDir_; }
    // Queues a slim of the open checkpoint with `recipe` into `output`; returns the job id, or 0 with the reason
    // in `why` (no checkpoint, nothing to do, no output, output in use).
    int addJob(const Recipe& recipe, const QString& output, QString* why);
    // Whether a queued or running job writes `path` (an absolute folder).
    bool writesTo(const QString& path) const;
    enum class JobState { Queued, Running, Done, Failed, Cancelled };
    struct JobRow {
        int row = 0;
        QString output;
        JobState state = JobState::Queued;
        QString message;
    };
    const std::map<int, JobRow>& jobs() const { return jobs_; }

    // Controls, for tests and screenshots.
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
    QPlainTextEdit* log_;
    QPushButton *cancel_, *openOutput_;
    QTableWidget* table_;
};

}  // namespace whittle::gui
