#pragma once
// How a page's background job (prune, quantize) ends, in one place: the core's exceptions become the
// page's words — cancelled, an existing output (the core names no CLI option; the page says what to do
// here), or the error's own message — and a failure is shown in a non-blocking error dialog.
#include <QObject>
#include <QString>

#include "core/error.h"

class QLabel;
class QProgressBar;
class QWidget;

namespace whittle::gui {

struct WorkerOutcome {
    bool ok = false, cancelled = false;
    QString message;
};

// Runs `work` (on the worker thread; it returns the success message) and turns what it throws into an outcome.
template <class Work>
WorkerOutcome runWorker(Work&& work) {
    WorkerOutcome r;
    try {
        r.message = work();
        r.ok = true;
    } catch (const CancelledError&) {
        r.cancelled = true;
        r.message = QObject::tr("Cancelled; nothing was written.");
    } catch (const OutputExistsError& e) {
        r.message = QString::fromUtf8(e.what()) + QObject::tr(" — choose another output folder, or remove this one first.");
    } catch (const std::exception& e) {
        r.message = QString::fromUtf8(e.what());
    }
    return r;
}

// Window-modal but non-blocking (the event loop keeps running); object name "errorDialog" for tests.
void showErrorDialog(QWidget* parent, const QString& title, const QString& message);

// On the GUI thread: the outcome into the status line and progress bar, and the dialog for a failure.
void presentOutcome(const WorkerOutcome& r, QLabel* status, QProgressBar* progress, QWidget* parent, const QString& failureTitle);

}  // namespace whittle::gui
