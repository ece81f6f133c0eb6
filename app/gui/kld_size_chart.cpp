#include "app/gui/kld_size_chart.h"

#include <QPainter>
#include <algorithm>

#include "app/gui/compare_model.h"

namespace whittle::gui {

KldSizeChart::KldSizeChart(const CompareModel* model, QWidget* parent) : QWidget(parent), model_(model) {
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    const auto repaint = [this] { update(); };
    connect(model_, &QAbstractItemModel::modelReset, this, repaint);
    connect(model_, &QAbstractItemModel::rowsInserted, this, repaint);
    connect(model_, &QAbstractItemModel::rowsRemoved, this, repaint);
    connect(model_, &QAbstractItemModel::dataChanged, this, repaint);
}

std::vector<KldSizeChart::Point> KldSizeChart::points() const {
    std::vector<Point> pts;
    for (const CompareRow& r : model_->rows()) {
        const std::optional<double> kld = r.original ? std::optional<double>(0.0) : r.summary.quality ? r.summary.quality->kldMean : std::nullopt;
        if (!kld) continue;
        pts.push_back({QString::fromStdString(r.summary.name), double(r.summary.diskBytes) / 1e6, *kld});
    }
    return pts;
}

void KldSizeChart::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const QFontMetrics fm(font());
    const QRect area = rect().adjusted(fm.horizontalAdvance("0.00000") + 14, 10, -16, -(2 * fm.height() + 10));
    const auto pts = points();
    p.setPen(palette().color(QPalette::WindowText));
    if (pts.empty()) {
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(rect(), Qt::AlignCenter, tr("Measure the variants to see KL divergence against size"));
        return;
    }
    double maxMb = 0, maxKld = 0;
    for (const auto& pt : pts) {
        maxMb = std::max(maxMb, pt.megabytes);
        maxKld = std::max(maxKld, pt.kld);
    }
    maxMb *= 1.1;
    maxKld = maxKld > 0 ? maxKld * 1.15 : 1e-3;
    auto at = [&](const Point& pt) {
        return QPointF(area.left() + area.width() * pt.megabytes / maxMb, area.bottom() - area.height() * pt.kld / maxKld);
    };
    // Axes with their ends labelled: size from 0 (MB, as file managers count), KLD from 0.
    p.drawLine(area.bottomLeft(), area.bottomRight());
    p.drawLine(area.bottomLeft(), area.topLeft());
    p.drawText(QRect(area.left(), area.bottom() + 4, area.width(), fm.height()), Qt::AlignLeft, QStringLiteral("0"));
    p.drawText(QRect(area.left(), area.bottom() + 4, area.width(), fm.height()), Qt::AlignRight, tr("%1 MB").arg(maxMb, 0, 'f', 1));
    p.drawText(QRect(area.left(), area.bottom() + 4 + fm.height(), area.width(), fm.height()), Qt::AlignHCenter, tr("size on disk"));
    p.drawText(QRect(0, area.top() - fm.height() / 2, area.left() - 6, fm.height()), Qt::AlignRight, QString::number(maxKld, 'f', 5));
    p.drawText(QRect(0, area.bottom() - fm.height() / 2, area.left() - 6, fm.height()), Qt::AlignRight, QStringLiteral("0"));
    p.save();
    p.translate(12, area.center().y());
    p.rotate(-90);
    p.drawText(QRect(-area.height() / 2, -fm.height(), area.height(), fm.height()), Qt::AlignHCenter, tr("KL divergence (mean)"));
    p.restore();
    const QColor dot = palette().color(QPalette::Highlight);
    for (const auto& pt : pts) {
        const QPointF c = at(pt);
        p.setBrush(dot);
        p.setPen(Qt::NoPen);
        p.drawEllipse(c, 5, 5);
        p.setPen(palette().color(QPalette::WindowText));
        const QString label = fm.elidedText(pt.label, Qt::ElideMiddle, 180);
        const int w = fm.horizontalAdvance(label);
        const double x = std::min(c.x() + 8, double(area.right() - w));
        p.drawText(QPointF(x, c.y() - 7), label);
    }
}

}  // namespace whittle::gui
