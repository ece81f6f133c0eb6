#include "app/gui/part_chart.h"

#include <QPainter>

namespace whittle::gui {

PartChart::PartChart(QWidget* parent) : QWidget(parent) { setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred); }

QColor PartChart::colorFor(Part p) {
    switch (p) {
    case Part::MainEmbedding: return QColor(0x4c, 0x78, 0xa8);
    case Part::PleTable: return QColor(0xe4, 0x57, 0x56);
    case Part::PleProjection: return QColor(0xf5, 0x85, 0x18);
    case Part::Attention: return QColor(0x72, 0xb7, 0xb2);
    case Part::Mlp: return QColor(0x54, 0xa2, 0x4b);
    case Part::Norms: return QColor(0xee, 0xca, 0x3b);
    case Part::VisionTower: return QColor(0xb2, 0x79, 0xa2);
    case Part::AudioTower: return QColor(0xff, 0x9d, 0xa6);
    case Part::Other: return QColor(0x9d, 0x75, 0x5d);
    }
    return Qt::gray;
}

void PartChart::setInventory(const Inventory* inv) {
    bars_.clear();
    total_.clear();
    if (inv && inv->total.params) {
        for (const auto& [p, t] : inv->byPart) {
            if (!t.tensors) continue;
            bars_.push_back({QString::fromUtf8(partName(p)), t.params, double(t.params) / double(inv->total.params), colorFor(p)});
        }
        total_ = tr("%1 parameters").arg(QString::fromStdString(formatParams(inv->total.params)));
    }
    update();
}

void PartChart::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    const QRect area = rect().adjusted(8, 8, -8, -8);
    if (bars_.empty()) {
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(area, Qt::AlignCenter, tr("No checkpoint open"));
        return;
    }
    const QFontMetrics fm(font());
    const int rowH = std::max(fm.height() + 6, 20);
    int labelW = 0;
    for (const auto& b : bars_) labelW = std::max(labelW, fm.horizontalAdvance(b.label));
    labelW += 12;
    const int valueW = fm.horizontalAdvance(QStringLiteral("000.0 M · 100.0 %")) + 8;

    // The whole, as one stacked bar.
    int y = area.top();
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(area.left(), y, area.width(), rowH), Qt::AlignLeft | Qt::AlignVCenter, total_);
    y += rowH;
    double x = area.left();
    const double stackW = area.width();
    for (const auto& b : bars_) {
        const double w = stackW * b.share;
        p.fillRect(QRectF(x, y, w, rowH - 4), b.color);
        x += w;
    }
    y += rowH + 6;

    // One bar per part, scaled to the whole so shares compare at a glance.
    const int barX = area.left() + labelW;
    const int barW = std::max(40, area.width() - labelW - valueW);
    for (const auto& b : bars_) {
        p.setPen(palette().color(QPalette::WindowText));
        p.drawText(QRect(area.left(), y, labelW, rowH), Qt::AlignLeft | Qt::AlignVCenter, b.label);
        p.fillRect(QRect(barX, y + 3, barW, rowH - 6), palette().color(QPalette::AlternateBase));
        p.fillRect(QRectF(barX, y + 3, std::max(1.0, barW * b.share), rowH - 6), b.color);
        const QString value = QString::fromStdString(formatParams(b.params)) + " · " + QString::number(100.0 * b.share, 'f', 1) + " %";
        p.drawText(QRect(barX + barW + 8, y, valueW, rowH), Qt::AlignLeft | Qt::AlignVCenter, value);
        y += rowH;
    }
}

}  // namespace whittle::gui
