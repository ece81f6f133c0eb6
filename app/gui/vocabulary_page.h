#pragma once
// The Vocabulary page: the tokenizer's tokens by bucket (script), which buckets to keep (presets or
// boxes), what that saves (vocabulary, parameters, disk), a browser over every token, a "try text" box
// comparing the tokenization before and after, and the Prune button. Every slow step (loading,
// re-selecting, the pruned tokenizer, the prune itself) runs off the GUI thread.
#include <QFutureWatcher>
#include <QWidget>
#include <memory>
#include <set>

#include "app/gui/vocabulary_data.h"
#include "app/gui/vocabulary_models.h"
#include "app/gui/worker_outcome.h"
#include "core/progress.h"
#include "core/recipes/recipe.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QStackedLayout;
class QTableView;
class QTextBrowser;

namespace whittle {
class Checkpoint;
}

namespace whittle::gui {

class WorkerBridge;

struct SelectionResult {
    int generation = 0;
    std::vector<bool> keep;
    std::vector<int> keptPerBucket;
    SelectionSummary summary;
    QString error;
};

struct TryResult {
    int generation = 0;
    QString beforeHtml, afterHtml;
    int beforeCount = 0, afterCount = 0;
    QString error;
    std::shared_ptr<const Json> tokenizerJson;
};

class VocabularyPage : public QWidget {
    Q_OBJECT
public:
    // Prune runs in `bridge` (the main window's shared one; without one the page makes its own). The
    // selection and try-text computations stay on their own watchers: they are interactive, latest-wins and
    // must not wait behind a long job in the bridge's queue.
    explicit VocabularyPage(WorkerBridge* bridge = nullptr, QWidget* parent = nullptr);
    ~VocabularyPage() override;

    // A model folder or a tokenizer.json; loads in the background, then emits loaded() or loadFailed().
    // `opened`: the main window's checkpoint of that folder, read instead of opening it again.
    void open(const QString& modelOrTokenizer, std::shared_ptr<const Checkpoint> opened = {});
    void clear();
    bool busy() const;  // loading, selecting or computing the try-text

    const VocabularyData* data() const { return data_.get(); }
    const std::vector<bool>& keep() const { return keep_; }
    const SelectionSummary& summary() const { return summary_; }
    Recipe recipe() const;  // what Prune would run

    QComboBox* presetBox() const { return preset_; }
    QTableView* bucketTable() const { return bucketView_; }
    BucketTableModel* bucketModel() { return &buckets_; }
    QTableView* tokenTable() const { return tokenView_; }
    TokenTableModel* tokenModel() { return &tokens_; }
    QLineEdit* tokenFilter() const { return tokenFilter_; }
    QComboBox* tokenBucketFilter() const { return tokenBucket_; }
    QPlainTextEdit* tryText() const { return tryText_; }
    QLabel* tryCounts() const { return tryCounts_; }
    QLabel* summaryLabel() const { return summaryLabel_; }
    QLineEdit* outputPath() const { return output_; }
    QPushButton* pruneButton() const { return prune_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    QLabel* statusLabel() const { return status_; }

    void choosePreset(const QString& preset);  // "english", …; "" = custom; "corpus" uses corpusFiles()
    // The "corpus" preset: keep the tokens used when encoding these text files (and the always-kept ones).
    void setCorpusFiles(const QStringList& files);
    const QStringList& corpusFiles() const { return corpusFiles_; }
    void setBucketKept(const QString& bucket, bool keep);
    void startPrune();
    void cancelPrune();

signals:
    void loaded();
    void loadFailed(const QString& message);
    void selectionChanged();
    void tryTextUpdated();
    void pruneProgress(const QString& stage, double fraction, double etaSeconds);
    void pruneFinished(bool ok, const QString& message);

private:
    void loadFinished();
    void reselect();
    void selectionFinished();
    void scheduleTry();
    void tryFinished();
    void pruneDone(const WorkerOutcome& outcome);
    void updateSummaryText();
    void chooseOutput();
    void openTokenizerFile();

    std::shared_ptr<const VocabularyData> data_;
    std::vector<bool> keep_;
    SelectionSummary summary_;
    std::string preset_key_;                  // empty: custom
    std::set<std::string> customBuckets_;     // used when preset_key_ is empty
    QStringList corpusFiles_;                 // used when preset_key_ is "corpus"
    int generation_ = 0;
    bool reselectPending_ = false, tryPending_ = false;
    // Set when a job starts, cleared when its result has been applied (a future can be finished while its
    // finished() signal is still queued).
    bool loading_ = false, selecting_ = false, trying_ = false;
    std::shared_ptr<const Json> tokenizerJson_;  // read on first use by the try-text worker

    QFutureWatcher<std::shared_ptr<const VocabularyData>> loadWatcher_;
    QString loadError_;
    QFutureWatcher<SelectionResult> selectWatcher_;
    QFutureWatcher<TryResult> tryWatcher_;
    WorkerBridge* bridge_;
    int pruneJob_ = 0;  // bridge job id, 0 when none

    QStackedLayout* stack_;
    QLabel* emptyLabel_;
    QLabel* sourceLabel_;
    QComboBox* preset_;
    QLabel* summaryLabel_;
    QTableView* bucketView_;
    BucketTableModel buckets_;
    QTableView* tokenView_;
    TokenTableModel tokens_;
    QLineEdit* tokenFilter_;
    QComboBox* tokenBucket_;
    QPlainTextEdit* tryText_;
    QTextBrowser* tryBefore_;
    QTextBrowser* tryAfter_;
    QLabel* tryCounts_;
    QLineEdit* output_;
    QPushButton* browse_;
    QPushButton* prune_;
    QPushButton* cancel_;
    QProgressBar* progress_;
    QLabel* status_;
    class QTimer* tryTimer_;
};

}  // namespace whittle::gui
