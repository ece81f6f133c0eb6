#pragma once
// A stacked horizontal bar of device memory by part (weights, PLE table, KV cache, scratch), drawn against
// the device's room: a line marks the room, and what lies beyond it is hatched red (it would spill to host
// memory or fail). Paint only; the figures come from the estimate.
#include <QColor>
#include <QString>
#include <QWidget>
#include <cstdint>
#include <vector>

namespace whittle::gui {

class MemoryBar : public QWidget {
    Q_OBJECT
public:
    struct Segment {
        QString label;
        std::uint64_t bytes = 0;
        QColor color;
    };
    explicit MemoryBar(QWidget* parent = nullptr);
    // `room` 0: no device chosen (no line, nothing spills).
    void setSegments(std::vector<Segment> segments, std::uint64_t room, const QString& roomLabel);
    const std::vector<Segment>& segments() const { return segments_; }
    std::uint64_t total() const;
    std::uint64_t room() const { return room_; }
    bool spills() const { return room_ > 0 && total() > room_; }
    QSize sizeHint() const override { return {420, 80}; }
    QSize minimumSizeHint() const override { return {200, 80}; }

protected:
    void paintEvent(QPaintEvent*) override;

private:
    std::vector<Segment> segments_;
    std::uint64_t room_ = 0;
    QString roomLabel_;
};

}  // namespace whittle::gui
