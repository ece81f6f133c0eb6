#include "app/gui/memory_bar.h"

#include <QPainter>
#include <algorithm>

namespace whittle::gui {

MemoryBar::MemoryBar(QWidget* parent) : QWidget(parent) { setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed); }

void MemoryBar::setSegments(std::vector<Segment> segments, std::uint64_t room, const QString& roomLabel) {
    segments_ = std::move(segments);
    room_ = room;
    roomLabel_ = roomLabel;
    update();
}

std::uint64_t MemoryBar::total() const {
    std::uint64_t n = 0;
    for (const Segment& s : segments_) n += s.bytes;
    return n;
}

void MemoryBar::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing, false);
    const QRectF bar(1, 4, width() - 2, 24);
    // The scale holds the larger of the need and the room, with a margin so the room's line is visible.
    const double scale = double(std::max(total(), room_)) * 1.04;
    p.fillRect(bar, palette().color(QPalette::AlternateBase));
    if (scale <= 0) return;
    auto xAt = [&](double bytes) { return bar.left() + bar.width() * bytes / scale; };
    double at = 0;
    for (const Segment& s : segments_) {
        if (s.bytes == 0) continue;
        const QRectF r(QPointF(xAt(at), bar.top()), QPointF(xAt(at + double(s.bytes)), bar.bottom()));
        p.fillRect(r, s.color);
        at += double(s.bytes);
    }
    if (room_ > 0) {
        if (spills()) p.fillRect(QRectF(QPointF(xAt(double(room_)), bar.top()), QPointF(xAt(at), bar.bottom())), QBrush(QColor(200, 0, 0, 160), Qt::BDiagPattern));
        p.setPen(QPen(QColor(200, 0, 0), 2));
        const double x = xAt(double(room_));
        p.drawLine(QPointF(x, bar.top() - 3), QPointF(x, bar.bottom() + 3));
    }
    p.setPen(palette().color(QPalette::Mid));
    p.drawRect(bar);
    // Legend: a swatch and the label of each part, then the room.
    QFontMetrics fm(font());
    double x = bar.left();
    const double y = bar.bottom() + 8;
    p.setPen(palette().color(QPalette::WindowText));
    for (const Segment& s : segments_) {
        p.fillRect(QRectF(x, y + 2, 10, 10), s.color);
        p.drawText(QPointF(x + 14, y + fm.ascent()), s.label);
        x += 14 + fm.horizontalAdvance(s.label) + 12;
    }
    if (room_ > 0) {  // on a line of its own: the legend may fill the first
        p.setPen(QColor(200, 0, 0));
        p.drawText(QPointF(bar.left(), y + fm.height() + 2 + fm.ascent()), QStringLiteral("| ") + tr("the device: %1").arg(roomLabel_));
    }
}

}  // namespace whittle::gui
