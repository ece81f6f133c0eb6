#pragma once
// The one way GUI pages run long work: jobs queue on a single worker thread (lower priority; the core's
// thread pools are capped at cores − 1 by MainWindow, so the event loop keeps a core), each with its own cancel
// token. The worker's progress reports go into a "latest wins" slot that a 50 ms timer on the GUI thread reads,
// so pages get at most 20 updates a second however fast the core reports, and never a queue of stale ones;
// every stage change is still delivered (for logs). Destroying the bridge cancels every job and waits.
#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QThreadPool>
#include <QTimer>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "app/gui/worker_outcome.h"
#include "core/progress.h"

namespace whittle::gui {

class WorkerBridge : public QObject {
    Q_OBJECT
public:
    // Runs on the worker thread; returns the success message; throws to fail (WorkerOutcome says how).
    using Job = std::function<QString(Progress& progress, const CancelToken& cancel)>;

    explicit WorkerBridge(QObject* parent = nullptr);
    ~WorkerBridge() override;

    // Queues a job; returns its id (ids grow from 1). started(id) when it begins.
    int submit(const QString& title, Job job);
    // A queued job is dropped (finished with a cancelled outcome); a running one's token is cancelled.
    void cancel(int id);
    void cancelAll();
    // Blocks until no job runs or waits (the GUI's close path; it also delivers finished()).
    void waitForIdle();
    bool busy() const { return running_ != 0 || !queue_.empty(); }
    int runningJob() const { return running_; }
    int queuedJobs() const { return int(queue_.size()); }

signals:
    void started(int id, const QString& title);
    void progressed(int id, const QString& stage, double fraction, double etaSeconds);
    void stageChanged(int id, const QString& stage);  // every new stage name, in order
    void finished(int id, const whittle::gui::WorkerOutcome& outcome);

private:
    struct Pending {
        int id;
        QString title;
        Job job;
        std::shared_ptr<CancelToken> cancel;
    };
    // Written by the worker, read by the timer.
    struct Slot {
        std::mutex mutex;
        ProgressReport latest;
        bool fresh = false;
        std::vector<std::string> newStages;
    };
    class SlotProgress;

    void startNext();
    void poll();
    void jobDone();

    QThreadPool pool_;
    QTimer timer_;
    std::deque<Pending> queue_;
    int nextId_ = 1;
    int running_ = 0;
    std::shared_ptr<CancelToken> runningCancel_;
    std::shared_ptr<Slot> slot_;
    QFutureWatcher<WorkerOutcome> watcher_;
};

}  // namespace whittle::gui

Q_DECLARE_METATYPE(whittle::gui::WorkerOutcome)
