#include "app/gui/worker_outcome.h"

#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>

namespace whittle::gui {

void showErrorDialog(QWidget* parent, const QString& title, const QString& message) {
    auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, parent);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName("errorDialog");
    box->open();
}

void presentOutcome(const WorkerOutcome& r, QLabel* status, QProgressBar* progress, QWidget* parent, const QString& failureTitle) {
    status->setText(r.message);
    progress->setValue(r.ok ? progress->maximum() : progress->minimum());
    progress->setFormat(r.ok ? QObject::tr("done") : QString());
    if (!r.ok && !r.cancelled) showErrorDialog(parent, failureTitle, r.message);
}

}  // namespace whittle::gui
