#include "app/gui/vocabulary_models.h"

#include <QLocale>

#include <functional>

#include "core/model/inventory.h"

namespace whittle::gui {

namespace {
const std::string kSpace = "\xe2\x96\x81";  // U+2581, Gemma's space

bool alwaysKept(const std::string& bucket) {
    const auto& a = alwaysKeptBuckets();
    return std::find(a.begin(), a.end(), bucket) != a.end();
}

QString number(std::uint64_t n) { return QLocale().toString(qulonglong(n)); }
QString megabytes(std::uint64_t bytes) { return QString::number(double(bytes) / 1e6, 'f', 1); }

QString hexBytes(const std::string& s) {
    QStringList parts;
    for (unsigned char c : s) parts << QStringLiteral("%1").arg(c, 2, 16, QLatin1Char('0')).toUpper();
    return parts.join(' ');
}
}  // namespace

QColor bucketColor(const std::string& bucket) {
    if (bucket == "special") return QColor(0xc0, 0x39, 0x2b);
    if (bucket == "byte") return QColor(0x7f, 0x8c, 0x8d);
    if (bucket == "unused") return QColor(0xb0, 0xb0, 0xb0);
    if (bucket == "Latin") return QColor(0x1f, 0x6f, 0xb2);
    // Other buckets: a hue from the name, fixed saturation and value so text stays readable.
    const auto h = std::hash<std::string>{}(bucket);
    return QColor::fromHsv(int(h % 360), 160, 170);
}

QString visibleTokenText(const std::string& text) {
    QString out;
    for (const QChar c : QString::fromUtf8(text.data(), qsizetype(text.size()))) {
        if (c == '\n') out += QChar(0x23CE);
        else if (c == '\t') out += QChar(0x2192);
        else if (c == ' ') out += QChar(0x00B7);
        else if (c == '\r') out += QStringLiteral("\\r");
        else if (c.category() == QChar::Other_Control) out += QStringLiteral("\\x%1").arg(c.unicode(), 2, 16, QLatin1Char('0'));
        else out += c;
    }
    return out;
}

// ---- buckets

void BucketTableModel::setData(std::shared_ptr<const VocabularyData> d) {
    beginResetModel();
    d_ = std::move(d);
    kept_.assign(d_ ? d_->table.buckets.size() : 0, 0);
    endResetModel();
}

void BucketTableModel::setKeptCounts(const std::vector<int>& keptPerBucket) {
    if (!d_ || keptPerBucket.size() != kept_.size()) return;
    kept_ = keptPerBucket;
    if (!kept_.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, Keep), {Qt::CheckStateRole, Qt::ToolTipRole});
}

const std::string& BucketTableModel::bucketName(int row) const { return d_->table.buckets.at(std::size_t(row)).name; }

int BucketTableModel::rowOf(const std::string& bucket) const {
    if (!d_) return -1;
    for (std::size_t i = 0; i < d_->table.buckets.size(); ++i)
        if (d_->table.buckets[i].name == bucket) return int(i);
    return -1;
}

int BucketTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !d_ ? 0 : int(d_->table.buckets.size());
}
int BucketTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant BucketTableModel::data(const QModelIndex& index, int role) const {
    if (!d_ || !index.isValid() || index.row() >= rowCount()) return {};
    const BucketStats& b = d_->table.buckets[std::size_t(index.row())];
    const std::uint64_t n = std::uint64_t(b.tokens);
    const auto& cost = d_->sizes;
    if (role == Qt::CheckStateRole && index.column() == Keep) {
        const int k = kept_[std::size_t(index.row())];
        return k == 0 ? Qt::Unchecked : k >= b.tokens ? Qt::Checked : Qt::PartiallyChecked;
    }
    if (role == Qt::ForegroundRole && index.column() == Bucket) return bucketColor(b.name);
    if (role == Qt::TextAlignmentRole && index.column() >= Tokens && index.column() <= PleMB)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ToolTipRole) {
        if (index.column() == Keep)
            return alwaysKept(b.name) ? tr("Always kept: a pruned model must encode any text and keep its control tokens")
                                      : tr("%1 of %2 tokens kept").arg(kept_[std::size_t(index.row())]).arg(b.tokens);
        return {};
    }
    if (role != Qt::DisplayRole && role != Qt::UserRole) return {};
    const bool sortKey = role == Qt::UserRole;
    switch (index.column()) {
        case Bucket: return QString::fromStdString(b.name);
        case Tokens: return sortKey ? QVariant(qulonglong(n)) : QVariant(number(n));
        case Share: {
            const double share = 100.0 * double(n) / double(d_->tokenizer->size());
            return sortKey ? QVariant(share) : QVariant(QString::number(share, 'f', 2) + " %");
        }
        case MainParams: return cost ? (sortKey ? QVariant(qulonglong(n * cost->row.mainParams)) : QVariant(number(n * cost->row.mainParams))) : QVariant();
        case MainMB: return cost ? QVariant(megabytes(n * cost->row.mainBytes)) : QVariant();
        case PleParams: return cost ? (sortKey ? QVariant(qulonglong(n * cost->row.pleParams)) : QVariant(number(n * cost->row.pleParams))) : QVariant();
        case PleMB: return cost ? QVariant(megabytes(n * cost->row.pleBytes)) : QVariant();
        case Examples: {
            QStringList ex;
            for (int id : b.examples) ex << visibleTokenText(d_->tokenizer->tokenText(id));
            return ex.join("  ");
        }
        default: return {};
    }
}

QVariant BucketTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case Keep: return tr("Keep");
        case Bucket: return tr("Bucket");
        case Tokens: return tr("Tokens");
        case Share: return tr("Share");
        case MainParams: return tr("Embedding params");
        case MainMB: return tr("Embedding MB");
        case PleParams: return tr("PLE params");
        case PleMB: return tr("PLE MB");
        case Examples: return tr("Examples");
        default: return {};
    }
}

Qt::ItemFlags BucketTableModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() == Keep && d_ && !alwaysKept(bucketName(index.row()))) f |= Qt::ItemIsUserCheckable;
    return f;
}

bool BucketTableModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!d_ || !index.isValid() || index.column() != Keep || role != Qt::CheckStateRole) return false;
    const std::string& name = bucketName(index.row());
    if (alwaysKept(name)) return false;
    emit keepToggled(QString::fromStdString(name), value.toInt() != Qt::Unchecked);
    return true;
}

// ---- tokens

void TokenTableModel::setData(std::shared_ptr<const VocabularyData> d) {
    beginResetModel();
    d_ = std::move(d);
    keep_ = nullptr;
    bucket_.clear();
    text_.clear();
    id_ = -1;
    filtered_ = false;
    visible_.clear();
    endResetModel();
}

void TokenTableModel::setKeep(const std::vector<bool>* keep) {
    keep_ = keep;
    if (rowCount() > 0) emit dataChanged(index(0, Kept), index(rowCount() - 1, Kept));
}

void TokenTableModel::setBucketFilter(const QString& bucket) {
    bucket_ = bucket.toStdString();
    refilter();
}

void TokenTableModel::setTextFilter(const QString& text) {
    bool isNumber = false;
    const int id = text.trimmed().toInt(&isNumber);
    id_ = isNumber ? id : -1;
    std::string t = isNumber ? std::string() : text.toStdString();
    for (std::size_t p; (p = t.find(' ')) != std::string::npos;) t.replace(p, 1, kSpace);
    text_ = t;
    refilter();
}

void TokenTableModel::refilter() {
    beginResetModel();
    visible_.clear();
    filtered_ = d_ && (!bucket_.empty() || id_ >= 0 || !text_.empty());
    if (filtered_) {
        const int n = d_->tokenizer->size();
        for (int id = 0; id < n; ++id) {
            if (!bucket_.empty() && d_->table.bucketOf[std::size_t(id)] != bucket_) continue;
            if (id_ >= 0 ? id != id_ : !text_.empty() && d_->tokenizer->tokenText(id).find(text_) == std::string::npos) continue;
            visible_.push_back(id);
        }
    }
    endResetModel();
}

int TokenTableModel::rowCount(const QModelIndex& parent) const {
    if (parent.isValid() || !d_) return 0;
    return filtered_ ? int(visible_.size()) : d_->tokenizer->size();
}
int TokenTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TokenTableModel::data(const QModelIndex& index, int role) const {
    if (!d_ || !index.isValid() || index.row() >= rowCount()) return {};
    const int id = filtered_ ? visible_[std::size_t(index.row())] : index.row();
    const std::string& text = d_->tokenizer->tokenText(id);
    const std::string& bucket = d_->table.bucketOf[std::size_t(id)];
    if (role == Qt::ForegroundRole && index.column() == Token) return bucketColor(bucket);
    if (role == Qt::ToolTipRole)
        return tr("id %1\nbucket %2\nUTF-8 %3%4")
            .arg(id)
            .arg(QString::fromStdString(bucket), hexBytes(text),
                 id >= d_->rows() ? tr("\nno embedding row (added past the model's vocabulary)") : QString());
    if (role == Qt::TextAlignmentRole && index.column() == Id) return int(Qt::AlignRight | Qt::AlignVCenter);
    if (role != Qt::DisplayRole) return {};
    switch (index.column()) {
        case Id: return id;
        case Token: return visibleTokenText(text);
        case Bucket: return QString::fromStdString(bucket);
        case Kept:
            if (!keep_ || std::size_t(id) >= keep_->size()) return {};
            return (*keep_)[std::size_t(id)] ? tr("kept") : tr("removed");
        default: return {};
    }
}

QVariant TokenTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
        case Id: return tr("Id");
        case Token: return tr("Token");
        case Bucket: return tr("Bucket");
        case Kept: return tr("Selection");
        default: return {};
    }
}

}  // namespace whittle::gui
