#include "app/gui/recent_models.h"

#include <QDir>
#include <QSettings>

namespace whittle::gui {

namespace {
constexpr const char* kKey = "recentModels";
}

QStringList RecentModels::load() { return QSettings().value(kKey).toStringList(); }

void RecentModels::add(const QString& dir) {
    const QString path = QDir(dir).absolutePath();
    QStringList list = load();
    list.removeAll(path);
    list.prepend(path);
    while (list.size() > kMax) list.removeLast();
    QSettings().setValue(kKey, list);
}

void RecentModels::clear() { QSettings().remove(kKey); }

}  // namespace whittle::gui
