#pragma once
// Whittle's main window. Opening a checkpoint runs off the GUI thread; errors go to a dialog and the
// window keeps running.
#include <QFutureWatcher>
#include <QMainWindow>
#include <memory>

#include "app/gui/inventory_models.h"

class QLabel;
class QLineEdit;
class QTableView;
class QSortFilterProxyModel;

namespace whittle::gui {

struct LoadResult {
    std::shared_ptr<Inventory> inventory;
    QString error;
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    void openCheckpoint(const QString& dir);
    const Inventory* inventory() const { return inventory_.get(); }
    QTableView* partTable() const { return partView_; }
    QTableView* tensorTable() const { return tensorView_; }
    QLineEdit* tensorFilter() const { return filter_; }
    QLabel* summary() const { return summary_; }
    bool loading() const { return watcher_.isRunning(); }

signals:
    void checkpointLoaded(const QString& dir);
    void checkpointFailed(const QString& message);

private:
    void chooseCheckpoint();
    void loadFinished();

    QLabel* summary_;
    QTableView* partView_;
    QTableView* tensorView_;
    QLineEdit* filter_;
    PartTableModel parts_;
    TensorTableModel tensors_;
    QSortFilterProxyModel* tensorProxy_;
    std::shared_ptr<Inventory> inventory_;
    QFutureWatcher<LoadResult> watcher_;
    QString loadingDir_;
    bool quietErrors_ = false;

public:
    // Tests set this to get checkpointFailed without a modal dialog.
    void setQuietErrors(bool quiet) { quietErrors_ = quiet; }
};

}  // namespace whittle::gui
