// Element conversions: checked against exactly representable values and IEEE rounding rules.
#include <QtTest>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/io/dtype.h"

using namespace whittle;

class TestDType : public QObject {
    Q_OBJECT
private slots:
    void names() {
        for (const char* n : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                              "F64", "I64", "U64"}) {
            const auto d = parseDType(n);
            QVERIFY2(d.has_value(), n);
            QCOMPARE(std::string(dtypeName(*d)), std::string(n));
        }
        QVERIFY(!parseDType("F4").has_value());
        QVERIFY(!parseDType("bf16").has_value());
        QCOMPARE(dtypeSize(DType::BF16), std::size_t(2));
        QCOMPARE(dtypeSize(DType::F64), std::size_t(8));
        QCOMPARE(dtypeSize(DType::F8_E4M3), std::size_t(1));
    }

    void bf16() {
        QCOMPARE(bf16ToFloat(0x3f80), 1.0f);
        QCOMPARE(bf16ToFloat(0xc000), -2.0f);
        QCOMPARE(floatToBf16(1.0f), std::uint16_t(0x3f80));
        // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1+2^-7: ties to even (1.0).
        QCOMPARE(floatToBf16(1.0f + 1.0f / 256), std::uint16_t(0x3f80));
        QCOMPARE(floatToBf16(1.0f + 3.0f / 256), std::uint16_t(0x3f82));
        QVERIFY(std::isnan(bf16ToFloat(floatToBf16(std::numeric_limits<float>::quiet_NaN()))));
        QCOMPARE(bf16ToFloat(floatToBf16(39.1918f)), 39.25f);  // GEMMA4.md §3.1: √1536 in bf16
    }

    void f16() {
        QCOMPARE(f16ToFloat(0x3c00), 1.0f);
        QCOMPARE(f16ToFloat(0x7bff), 65504.0f);
        QCOMPARE(f16ToFloat(0x0001), std::ldexp(1.0f, -24));
        QVERIFY(std::isinf(f16ToFloat(0x7c00)));
        for (std::uint32_t h = 0; h < 0x10000; ++h) {
            const float f = f16ToFloat(std::uint16_t(h));
            if (std::isnan(f)) continue;
            QCOMPARE(floatToF16(f), std::uint16_t(h));  // every finite half round-trips exactly
        }
        QCOMPARE(floatToF16(1e6f), std::uint16_t(0x7c00));
    }

    void unalignedLoad() {
        alignas(8) std::byte buf[16] = {};
        const float v = 3.5f;
        std::memcpy(buf + 1, &v, 4);  // deliberately misaligned
        QCOMPARE(loadAsFloat(DType::F32, buf + 1, 0), 3.5f);
        const std::uint8_t e4m3 = 0x38;  // 1.0 in E4M3
        std::memcpy(buf, &e4m3, 1);
        QCOMPARE(loadAsFloat(DType::F8_E4M3, buf, 0), 1.0f);
    }
};

QTEST_APPLESS_MAIN(TestDType)
#include "tst_dtype.moc"
