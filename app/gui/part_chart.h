#pragma once
// Parameters by part as horizontal bars (and one stacked bar of the whole), painted by hand so the
// proportions — the PLE table is almost half of E2B — are the first thing one sees.
#include <QWidget>

#include "core/model/inventory.h"

namespace whittle::gui {

class PartChart : public QWidget {
    Q_OBJECT
public:
    struct Bar {
        QString label;
        std::uint64_t params = 0;
        double share = 0;  // of all parameters
        QColor color;
    };
    explicit PartChart(QWidget* parent = nullptr);
    void setInventory(const Inventory* inv);
    const std::vector<Bar>& bars() const { return bars_; }
    QSize sizeHint() const override { return {460, 300}; }
    QSize minimumSizeHint() const override { return {320, 200}; }
    static QColor colorFor(Part p);

protected:
    void paintEvent(QPaintEvent*) override;

private:
    std::vector<Bar> bars_;
    QString total_;
};

}  // namespace whittle::gui
