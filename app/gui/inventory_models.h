#pragma once
// Table models over an Inventory: one row per part, and one row per tensor.
#include <QAbstractTableModel>

#include "core/model/inventory.h"

namespace whittle::gui {

class PartTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Tensors, Parameters, Bytes, Share, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;
    void setInventory(const Inventory* inv);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    std::vector<std::pair<Part, Totals>> rows_;
    std::uint64_t total_ = 0;
};

class TensorTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Part_, Layer, DType_, Shape, Parameters, Bytes, File, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;
    void setInventory(const Inventory* inv);
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation o, int role) const override;

private:
    const Inventory* inv_ = nullptr;
};

}  // namespace whittle::gui
