#pragma once
// Whittle's main window: a page list on the left (Model, Vocabulary, Quantize, Recipe, Run, Compare, Chat), File menu with recent checkpoints, drag and drop of a folder. Opening a checkpoint runs
// off the GUI thread; errors go to a dialog and the window keeps running.
#include <QFutureWatcher>
#include <QMainWindow>
#include <memory>

#include "core/model/inventory.h"

class QListWidget;
class QMenu;
class QStackedWidget;

namespace whittle::gui {

class ModelPage;
class VocabularyPage;
class QuantizationPage;
class ChatPage;
class RecipePage;
class RunPage;
class ComparePage;
class WorkerBridge;

struct LoadResult {
    std::shared_ptr<const Checkpoint> checkpoint;  // opened once, shared by the pages
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
    std::shared_ptr<const Checkpoint> checkpoint() const { return checkpoint_; }
    ModelPage* modelPage() const { return modelPage_; }
    VocabularyPage* vocabularyPage() const { return vocabularyPage_; }
    QuantizationPage* quantizationPage() const { return quantizationPage_; }
    ChatPage* chatPage() const { return chatPage_; }
    RecipePage* recipePage() const { return recipePage_; }
    RunPage* runPage() const { return runPage_; }
    ComparePage* comparePage() const { return comparePage_; }
    WorkerBridge* worker() const { return worker_; }
    QMenu* recentMenu() const { return recentMenu_; }
    bool loading() const { return watcher_.isRunning(); }

    QStringList pageNames() const;
    void showPage(int index);
    // Renders every page to DIR/<page>.png (the window is laid out at its current size).
    QStringList saveScreenshots(const QString& dir);

signals:
    void checkpointLoaded(const QString& dir);
    void checkpointFailed(const QString& message);

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;
    void closeEvent(QCloseEvent* e) override;  // cancels running jobs and waits for them

private:
    void chooseCheckpoint();
    void loadFinished();
    void rebuildRecentMenu();
    void addPage(const QString& name, QWidget* page);

    QListWidget* pageList_;
    QStackedWidget* pages_;
    ModelPage* modelPage_;
    VocabularyPage* vocabularyPage_;
    QuantizationPage* quantizationPage_;
    ChatPage* chatPage_;
    WorkerBridge* worker_;
    RecipePage* recipePage_;
    RunPage* runPage_;
    ComparePage* comparePage_;
    QMenu* recentMenu_;
    std::shared_ptr<Inventory> inventory_;
    std::shared_ptr<const Checkpoint> checkpoint_;
    QFutureWatcher<LoadResult> watcher_;
    QString loadingDir_;
};

}  // namespace whittle::gui
