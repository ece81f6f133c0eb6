#pragma once
// Helpers the GUI suites share.
#include <QComboBox>
#include <QTest>
#include <QVariant>

namespace whittle::test {

// Picks the combo box entry whose data is `data` (fails the test when there is none).
inline void selectData(QComboBox* box, const QVariant& data) {
    const int i = box->findData(data);
    QVERIFY2(i >= 0, qPrintable(data.toString()));
    box->setCurrentIndex(i);
}

}  // namespace whittle::test
