#pragma once
// Item models of the Vocabulary page: the bucket table (with keep checkboxes) and the token browser
// over every token (virtualised: data is computed per visible cell), plus its filter.
#include <QAbstractTableModel>
#include <QColor>
#include <memory>

#include "app/gui/vocabulary_data.h"

namespace whittle::gui {

// A stable colour per bucket (script), the same in both tables.
QColor bucketColor(const std::string& bucket);
// Token text with whitespace and control characters made visible (▁ stays; \n → ⏎, \t → →, space → ·).
QString visibleTokenText(const std::string& text);

class BucketTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Keep, Bucket, Tokens, Share, MainParams, MainMB, PleParams, PleMB, Examples, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setData(std::shared_ptr<const VocabularyData> d);
    // Per bucket: how many of its tokens the selection keeps (drives the check state).
    void setKeptCounts(const std::vector<int>& keptPerBucket);
    const std::string& bucketName(int row) const;
    int rowOf(const std::string& bucket) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role) override;

signals:
    void keepToggled(const QString& bucket, bool keep);

private:
    std::shared_ptr<const VocabularyData> d_;
    std::vector<int> kept_;
};

// Every token, or those passing the filter: by bucket (exact) and by text — a number matches the id,
// anything else a substring of the token (a typed space matches Gemma's U+2581). The filter lives in the
// model (a list of visible ids, reset at once) rather than a QSortFilterProxyModel, whose per-row
// bookkeeping made typing into a 262k-row browser take seconds.
class TokenTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Id, Token, Bucket, Kept, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setData(std::shared_ptr<const VocabularyData> d);
    void setKeep(const std::vector<bool>* keep);  // not owned; nullptr: nothing marked
    void setBucketFilter(const QString& bucket);  // empty: all
    void setTextFilter(const QString& text);
    int idAt(int row) const { return visible_.empty() && !filtered_ ? row : visible_.at(std::size_t(row)); }
    const VocabularyData* vocabulary() const { return d_.get(); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    void refilter();
    std::shared_ptr<const VocabularyData> d_;
    const std::vector<bool>* keep_ = nullptr;
    std::string bucket_, text_;
    int id_ = -1;
    bool filtered_ = false;
    std::vector<int> visible_;  // ids shown when filtered_
};

}  // namespace whittle::gui
