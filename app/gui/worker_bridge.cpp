#include "app/gui/worker_bridge.h"

#include <sys/resource.h>
#include <unistd.h>

#include <QtConcurrent>

namespace whittle::gui {

class WorkerBridge::SlotProgress final : public Progress {
public:
    explicit SlotProgress(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
    void report(const ProgressReport& r) override {
        std::lock_guard lock(slot_->mutex);
        if (r.stage != lastStage_) {
            slot_->newStages.push_back(r.stage);
            lastStage_ = r.stage;
        }
        slot_->latest = r;
        slot_->fresh = true;
    }

private:
    std::shared_ptr<Slot> slot_;
    std::string lastStage_;
};

WorkerBridge::WorkerBridge(QObject* parent) : QObject(parent) {
    qRegisterMetaType<WorkerOutcome>();
    pool_.setMaxThreadCount(1);
    pool_.setExpiryTimeout(-1);  // one long-lived thread, so its lowered priority holds for every job
    timer_.setInterval(50);      // ≤ 20 progress updates a second
    connect(&timer_, &QTimer::timeout, this, &WorkerBridge::poll);
    connect(&watcher_, &QFutureWatcherBase::finished, this, &WorkerBridge::jobDone);
}

WorkerBridge::~WorkerBridge() {
    cancelAll();
    watcher_.waitForFinished();
}

int WorkerBridge::submit(const QString& title, Job job) {
    const int id = nextId_++;
    queue_.push_back({id, title, std::move(job), std::make_shared<CancelToken>()});
    if (!running_) startNext();
    return id;
}

void WorkerBridge::cancel(int id) {
    if (id == running_ && runningCancel_) {
        runningCancel_->cancel();
        return;
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (it->id == id) {
            queue_.erase(it);
            emit finished(id, WorkerOutcome{false, true, tr("Removed from the queue.")});
            return;
        }
}

void WorkerBridge::cancelAll() {
    while (!queue_.empty()) cancel(queue_.back().id);
    if (runningCancel_) runningCancel_->cancel();
}

void WorkerBridge::waitForIdle() {
    while (running_) {
        watcher_.waitForFinished();
        jobDone();  // the watcher's own signal would come later, through the event loop
    }
}

void WorkerBridge::startNext() {
    if (running_ || queue_.empty()) return;
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    running_ = p.id;
    runningCancel_ = p.cancel;
    slot_ = std::make_shared<Slot>();
    emit started(p.id, p.title);
    watcher_.setFuture(QtConcurrent::run(&pool_, [job = std::move(p.job), cancel = p.cancel, slot = slot_] {
        // Linux: nice is per thread and new threads inherit it, so the core's pools started by the job run at it too.
        setpriority(PRIO_PROCESS, pid_t(gettid()), 10);
        SlotProgress progress(slot);
        return runWorker([&] { return job(progress, *cancel); });
    }));
    timer_.start();
}

void WorkerBridge::poll() {
    if (!slot_ || !running_) return;
    ProgressReport r;
    std::vector<std::string> stages;
    {
        std::lock_guard lock(slot_->mutex);
        if (!slot_->fresh) return;
        slot_->fresh = false;
        r = slot_->latest;
        stages.swap(slot_->newStages);
    }
    for (const auto& s : stages) emit stageChanged(running_, QString::fromStdString(s));
    emit progressed(running_, QString::fromStdString(r.stage), r.fraction, r.etaSeconds);
}

void WorkerBridge::jobDone() {
    if (!running_ || !watcher_.isFinished()) return;  // waitForIdle delivered it already
    poll();                                           // the last stages for the log
    const int id = running_;
    const WorkerOutcome outcome = watcher_.result();
    running_ = 0;
    runningCancel_.reset();
    slot_.reset();
    timer_.stop();
    emit finished(id, outcome);
    startNext();
}

}  // namespace whittle::gui
