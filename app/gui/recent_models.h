#pragma once
// The most recently opened checkpoint folders, newest first, kept in QSettings.
#include <QStringList>

namespace whittle::gui {

class RecentModels {
public:
    static constexpr int kMax = 10;
    static QStringList load();
    static void add(const QString& dir);
    static void clear();
};

}  // namespace whittle::gui
