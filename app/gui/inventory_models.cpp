#include "app/gui/inventory_models.h"

namespace whittle::gui {

void PartTableModel::setInventory(const Inventory* inv) {
    beginResetModel();
    rows_.clear();
    total_ = inv ? inv->total.params : 0;
    if (inv)
        for (const auto& [p, t] : inv->byPart)
            if (t.tensors) rows_.emplace_back(p, t);
    endResetModel();
}

int PartTableModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(rows_.size()); }
int PartTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant PartTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= int(rows_.size())) return {};
    const auto& [part, t] = rows_[std::size_t(index.row())];
    const double share = total_ ? 100.0 * double(t.params) / double(total_) : 0.0;
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name: return QString::fromUtf8(partName(part));
        case Tensors: return QVariant::fromValue<qulonglong>(t.tensors);
        case Parameters: return QString::fromStdString(formatParams(t.params));
        case Bytes: return QString::fromStdString(formatBytes(t.bytes));
        case Share: return QString::number(share, 'f', 1) + " %";
        }
    } else if (role == Qt::UserRole) {  // raw values for sorting and tests
        switch (index.column()) {
        case Name: return QString::fromUtf8(partKey(part));
        case Tensors: return QVariant::fromValue<qulonglong>(t.tensors);
        case Parameters: return QVariant::fromValue<qulonglong>(t.params);
        case Bytes: return QVariant::fromValue<qulonglong>(t.bytes);
        case Share: return share;
        }
    } else if (role == Qt::TextAlignmentRole && index.column() != Name) {
        return int(Qt::AlignRight | Qt::AlignVCenter);
    }
    return {};
}

QVariant PartTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* names[] = {"Part", "Tensors", "Parameters", "Size", "Share"};
    return section >= 0 && section < ColumnCount ? QString(names[section]) : QVariant();
}

void TensorTableModel::setInventory(const Inventory* inv) {
    beginResetModel();
    inv_ = inv;
    endResetModel();
}

int TensorTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !inv_ ? 0 : int(inv_->tensors.size());
}
int TensorTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant TensorTableModel::data(const QModelIndex& index, int role) const {
    if (!inv_ || !index.isValid() || index.row() >= int(inv_->tensors.size())) return {};
    const InventoryTensor& t = inv_->tensors[std::size_t(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Name: return QString::fromStdString(t.name);
        case Part_: return QString::fromUtf8(partName(t.part)) + (t.unused ? " (unused)" : "");
        case Layer: return t.layer < 0 ? QVariant(QString()) : QVariant(t.layer);
        case DType_: return QString::fromUtf8(std::string(dtypeName(t.dtype)).c_str());
        case Shape: return QString::fromStdString(shapeToString(t.shape));
        case Parameters: return QVariant::fromValue<qulonglong>(t.params);
        case Bytes: return QString::fromStdString(formatBytes(t.bytes));
        case File: return QString::fromStdString(t.file);
        }
    } else if (role == Qt::UserRole) {
        switch (index.column()) {
        case Layer: return t.layer;
        case Parameters: return QVariant::fromValue<qulonglong>(t.params);
        case Bytes: return QVariant::fromValue<qulonglong>(t.bytes);
        default: return data(index, Qt::DisplayRole);
        }
    } else if (role == Qt::TextAlignmentRole && (index.column() == Parameters || index.column() == Bytes)) {
        return int(Qt::AlignRight | Qt::AlignVCenter);
    }
    return {};
}

QVariant TensorTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* names[] = {"Tensor", "Part", "Layer", "DType", "Shape", "Parameters", "Size", "File"};
    return section >= 0 && section < ColumnCount ? QString(names[section]) : QVariant();
}

}  // namespace whittle::gui
