#pragma once
// The Model page: a summary card, parameters by part (chart and table), and every tensor in a
// filterable table.
#include <QWidget>

#include "app/gui/inventory_models.h"

class QLabel;
class QLineEdit;
class QTableView;
class QSortFilterProxyModel;
class QStackedLayout;

namespace whittle::gui {

class PartChart;

class ModelPage : public QWidget {
    Q_OBJECT
public:
    explicit ModelPage(QWidget* parent = nullptr);
    void setInventory(const Inventory* inv);  // nullptr: the empty state

    QLabel* summary() const { return summary_; }
    PartChart* chart() const { return chart_; }
    QTableView* partTable() const { return partView_; }
    QTableView* tensorTable() const { return tensorView_; }
    QLineEdit* tensorFilter() const { return filter_; }

private:
    QStackedLayout* stack_;
    QLabel* summary_;
    PartChart* chart_;
    QTableView* partView_;
    QTableView* tensorView_;
    QLineEdit* filter_;
    PartTableModel parts_;
    TensorTableModel tensors_;
    QSortFilterProxyModel* tensorProxy_;
};

}  // namespace whittle::gui
