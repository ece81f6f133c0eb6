#pragma once
// Progress reported on a worker thread, delivered on the GUI thread: each report is queued to `receiver`
// (and dropped once the receiver is gone), so pages update their bars without locks.
#include <QObject>
#include <QPointer>
#include <QString>
#include <functional>

#include "core/progress.h"

namespace whittle::gui {

class QueuedProgress final : public Progress {
public:
    using Handler = std::function<void(const QString& stage, double fraction, double etaSeconds)>;
    QueuedProgress(QObject* receiver, Handler handler) : receiver_(receiver), handler_(std::move(handler)) {}
    void report(const ProgressReport& r) override {
        QObject* receiver = receiver_;
        if (!receiver) return;
        QMetaObject::invokeMethod(
            receiver, [h = handler_, stage = QString::fromStdString(r.stage), f = r.fraction, eta = r.etaSeconds] { h(stage, f, eta); },
            Qt::QueuedConnection);
    }

private:
    QPointer<QObject> receiver_;
    Handler handler_;
};

}  // namespace whittle::gui
