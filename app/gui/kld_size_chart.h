#pragma once
// KL divergence against size on disk, one point per variant (the original at KLD 0), painted by hand: the
// trade-off between what a variant saves and what it loses, at a glance. Reads the Compare page's model.
#include <QWidget>

namespace whittle::gui {

class CompareModel;

class KldSizeChart : public QWidget {
    Q_OBJECT
public:
    struct Point {
        QString label;
        double megabytes = 0;
        double kld = 0;
    };
    KldSizeChart(const CompareModel* model, QWidget* parent = nullptr);
    // The points drawn now: every row with a size and a KLD.
    std::vector<Point> points() const;
    QSize sizeHint() const override { return {420, 260}; }
    QSize minimumSizeHint() const override { return {300, 180}; }

protected:
    void paintEvent(QPaintEvent*) override;

private:
    const CompareModel* model_;
};

}  // namespace whittle::gui
