// NVFP4: every E4M3 code and every rounding tie of E4M3 and E2M1; a hand-built tensor whose global scale,
// block scales and packed bytes (ModelOpt U8 and GGUF block_nvfp4) are worked out here; exact pack/unpack
// round trips in both layouts on odd shapes; the error bound on random data; the all-zero tensor, tiny blocks,
// the shared global scale of fused projections; ggml's reading of scale bytes; and refusals.
#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/quant/nvfp4.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

namespace {


const std::byte* raw(const Bytes& b) { return reinterpret_cast<const std::byte*>(b.data()); }


// Bitwise equality (distinguishes −0 from 0; NaN equals NaN).
bool sameBits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }


const float kGrid[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};

// The hand-built 2×32 weight (see handBuiltModelOpt). D0 = 448 · 2^-10 = 0.4375 and D1 = 104 · 2^-10 =
// 0.1015625 are the two divisors of row 0's blocks; weights are chosen as multiples of them.
constexpr float D0 = 0.4375f, D1 = 0.1015625f;
std::vector<float> handBuiltWeight() {
    std::vector<float> w(64, 0.0f);
    // Row 0, block 0: x = w / D0 → code
    const float x0[16] = {6,  -6,   0.25f, -0.75f, 1.25f, 1.75f, 2.5f, 3.5f,
                          5, -0.1f, 0.5f,  3,      4,     -1.5f, 0,    -2};
    for (int k = 0; k < 16; ++k) w[std::size_t(k)] = x0[k] * D0;
    // Row 0, block 1: ±0.6 sets the block's amax; the rest are multiples of D1.
    w[16] = 0.6f;
    w[17] = -0.6f;
    const float x1[7] = {1, -2, 0.5f, 4, -3, 1.5f, 0.75f};
    for (int k = 0; k < 7; ++k) w[std::size_t(18 + k)] = x1[k] * D1;
    // Row 1, block 0 stays zero. Row 1, block 1: a tiny block.
    w[48] = 1e-6f;
    w[49] = -1e-6f;
    w[50] = 3e-7f;
    return w;
}

}  // namespace

class TestNvfp4 : public QObject {
    Q_OBJECT

private slots:
    // All 256 codes: decoding agrees with the independent E4M3 reader in core/io/dtype (loadAsFloat), NaN
    // is exactly 0x7F and 0xFF, positive codes increase strictly, and every non-NaN code survives
    // decode → encode bit for bit (0x80 is −0).
    void e4m3AllCodes() {
        int nans = 0;
        for (int b = 0; b < 256; ++b) {
            const auto bits = std::uint8_t(b);
            const float v = e4m3ToFloat(bits);
            const std::byte stored{bits};
            const float reference = loadAsFloat(DType::F8_E4M3, &stored, 0);
            if ((b & 0x7F) == 0x7F) {
                QVERIFY2(std::isnan(v), qPrintable(QString::number(b, 16)));
                QVERIFY(std::isnan(reference));
                ++nans;
                continue;
            }
            QVERIFY2(sameBits(v, reference) || (v == 0 && reference == 0), qPrintable(QString("code 0x%1").arg(b, 2, 16, QChar('0'))));
            QCOMPARE(std::signbit(v), b >= 0x80);
            QCOMPARE(int(floatToE4m3(v)), b);
            if (b < 0x7E) QVERIFY(e4m3ToFloat(std::uint8_t(b + 1)) > v);
        }
        QCOMPARE(nans, 2);
    }

    void e4m3HandValues() {
        QCOMPARE(e4m3ToFloat(0x00), 0.0f);
        QCOMPARE(e4m3ToFloat(0x01), std::ldexp(1.0f, -9));   // smallest subnormal: 1 · 2^-9
        QCOMPARE(e4m3ToFloat(0x07), 7.0f / 512.0f);          // largest subnormal: 7 · 2^-9
        QCOMPARE(e4m3ToFloat(0x08), 1.0f / 64.0f);           // smallest normal: exponent 1 − 7 = −6
        QCOMPARE(e4m3ToFloat(0x38), 1.0f);                   // exponent 7 − 7 = 0, mantissa 0
        QCOMPARE(e4m3ToFloat(0x39), 1.125f);
        QCOMPARE(e4m3ToFloat(0x3F), 1.875f);
        QCOMPARE(e4m3ToFloat(0x40), 2.0f);
        QCOMPARE(e4m3ToFloat(0x6D), 104.0f);                 // exponent 13 − 7 = 6: 1.625 · 64
        QCOMPARE(e4m3ToFloat(0x7D), 416.0f);
        QCOMPARE(e4m3ToFloat(0x7E), 448.0f);                 // the largest finite value: 1.75 · 2^8
        QCOMPARE(e4m3ToFloat(0xB8), -1.0f);
        QCOMPARE(e4m3ToFloat(0xFE), -448.0f);
        QVERIFY(std::signbit(e4m3ToFloat(0x80)) && e4m3ToFloat(0x80) == 0.0f);
    }

    // Every midpoint between neighbouring codes goes to the even code, and the floats just either side go
    // to the nearer code; carries into the next exponent; saturation at 448; NaN; the subnormal range.
    void e4m3Rounding() {
        for (int b = 0; b < 0x7E; ++b) {
            const float lo = e4m3ToFloat(std::uint8_t(b)), hi = e4m3ToFloat(std::uint8_t(b + 1));
            const float mid = (lo + hi) / 2;  // exact: one more bit than E4M3 has
            const int even = b % 2 == 0 ? b : b + 1;
            QVERIFY2(floatToE4m3(mid) == even, qPrintable(QString("tie between 0x%1 and the next").arg(b, 2, 16, QChar('0'))));
            QCOMPARE(int(floatToE4m3(std::nextafter(mid, 0.0f))), b);
            QCOMPARE(int(floatToE4m3(std::nextafter(mid, 1000.0f))), b + 1);
            QCOMPARE(int(floatToE4m3(-mid)), even | 0x80);
        }
        QCOMPARE(int(floatToE4m3(1.0625f)), 0x38);   // 1 + 1/16 ties between 1 (0x38) and 1.125 (0x39)
        QCOMPARE(int(floatToE4m3(1.1875f)), 0x3A);   // between 1.125 (0x39) and 1.25 (0x3A)
        QCOMPARE(int(floatToE4m3(1.9375f)), 0x40);   // between 1.875 (0x3F) and 2 (0x40): carries the exponent
        QCOMPARE(int(floatToE4m3(std::ldexp(1.0f, -10))), 0x00);  // half the smallest subnormal → 0 (even)
        QCOMPARE(int(floatToE4m3(std::ldexp(3.0f, -10))), 0x02);  // 1.5 · 2^-9 → 2 · 2^-9
        QCOMPARE(int(floatToE4m3(std::ldexp(5.0f, -10))), 0x02);  // 2.5 · 2^-9 → 2 · 2^-9
        QCOMPARE(int(floatToE4m3(std::ldexp(15.0f, -10))), 0x08); // 7.5 · 2^-9 → 2^-6, the smallest normal
        QCOMPARE(int(floatToE4m3(432.0f)), 0x7E);    // between 416 and 448: 448 has the even mantissa
        QCOMPARE(int(floatToE4m3(424.0f)), 0x7D);
        QCOMPARE(int(floatToE4m3(449.0f)), 0x7E);    // saturates
        QCOMPARE(int(floatToE4m3(1e9f)), 0x7E);
        QCOMPARE(int(floatToE4m3(std::numeric_limits<float>::infinity())), 0x7E);
        QCOMPARE(int(floatToE4m3(-500.0f)), 0xFE);
        QCOMPARE(int(floatToE4m3(std::nanf(""))), 0x7F);
        QCOMPARE(int(floatToE4m3(1e-30f)), 0x00);
        QCOMPARE(int(floatToE4m3(-0.0f)), 0x80);
    }

    void e2m1Values() {
        const float want[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
        for (int c = 0; c < 16; ++c) {
            QVERIFY(sameBits(e2m1ToFloat(std::uint8_t(c)), want[c]));
            QCOMPARE(int(floatToE2m1(want[c])), c == 8 ? 0 : c);  // −0 is not < 0, so it encodes as +0
        }
    }

    // The seven midpoints of the grid 0, 0.5, 1, 1.5, 2, 3, 4, 6 and where ModelOpt's _cast_fp4 sends them:
    // to the code with bit 0 clear (the even mantissa). Written out, not derived:
    //   0.25 → 0 (0)    0.75 → 2 (1.0)   1.25 → 2 (1.0)   1.75 → 4 (2.0)
    //   2.5  → 4 (2.0)  3.5  → 6 (4.0)   5    → 6 (4.0)
    // so 0.75, 1.75 and 3.5 round up, the others down. Just off a midpoint, the nearer value wins.
    void e2m1EveryTie() {
        const struct { float x; int code; } ties[] = {{0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6}, {5.0f, 6}};
        for (int i = 0; i < 7; ++i) {
            const float x = ties[i].x;
            QVERIFY2(floatToE2m1(x) == ties[i].code, qPrintable(QString("tie %1").arg(x)));
            QCOMPARE(int(floatToE2m1(-x)), ties[i].code | 8);
            QCOMPARE(x, (kGrid[i] + kGrid[i + 1]) / 2);  // it is the midpoint of codes i and i + 1
            QCOMPARE(int(floatToE2m1(std::nextafter(x, 0.0f))), i);
            QCOMPARE(int(floatToE2m1(std::nextafter(x, 10.0f))), i + 1);
            QCOMPARE(int(floatToE2m1(-std::nextafter(x, 10.0f))), (i + 1) | 8);
        }
        for (int c = 0; c < 8; ++c) QCOMPARE(int(floatToE2m1(kGrid[c])), c);  // grid points are exact
        QCOMPARE(int(floatToE2m1(6.4f)), 7);   // above 6 saturates
        QCOMPARE(int(floatToE2m1(1e6f)), 7);
        QCOMPARE(int(floatToE2m1(-1e6f)), 15);
        QCOMPARE(int(floatToE2m1(-0.1f)), 8);  // ModelOpt sets the sign bit for any x < 0: −0
        QCOMPARE(int(floatToE2m1(0.1f)), 0);
    }

    // A 2×32 weight worked by hand (rows = outputs, two blocks of 16 per row):
    //   amax(W) = 6 · D0 = 2.625, so weight_scale_2 = 2.625 / (6 · 448) = 2.625 / 2688 = 2^-10 exactly,
    //   and 6 · weight_scale_2 = 6/1024.
    //   Row 0, block 0: amax 2.625 → 2.625 / (6/1024) = 448 → E4M3 0x7E; divisor 448 · 2^-10 = 0.4375 = D0.
    //     x = w / D0 = 6, −6, 0.25, −0.75, 1.25, 1.75, 2.5, 3.5, 5, −0.1, 0.5, 3, 4, −1.5, 0, −2
    //     codes       7, 15,  0,    10,    2,    4,    4,   6,   6,  8,   1,   5, 6, 11,   0, 12
    //     (ties to the even code; −0.1 keeps its sign: 8.)
    //   Row 0, block 1: amax 0.6 → 0.6 / (6/1024) = 102.4 = 1.6 · 64; mantissa 0.6 · 8 = 4.8 rounds to 5:
    //     1.625 · 64 = 104 → E4M3 (6 + 7) << 3 | 5 = 0x6D; divisor 104 · 2^-10 = 0.1015625 = D1.
    //     x = 0.6/D1 = 5.908, −5.908, 1, −2, 0.5, 4, −3, 1.5, 0.75, 0 …
    //     codes        7,     15,     2, 12, 1,   6, 13,  3,   2,    0 …
    //   Row 1, block 0: all zero → scale 1.0 (0x38), codes 0.
    //   Row 1, block 1: amax 1e-6 → 1e-6 / (6/1024) = 1.7e-4, below half the smallest subnormal 2^-9, so it
    //     would round to 0 (ModelOpt 0.43 stores that and divides by it); clamped to 2^-9 → 0x01.
    //     Divisor 2^-9 · 2^-10 = 2^-19: 1e-6 · 2^19 = 0.524 → 1; −1e-6 → 9; 3e-7 · 2^19 = 0.157 → 0.
    // Packed (ModelOpt `weight`, byte j = code[2j] | code[2j+1] << 4):
    //   row 0: 7|15<<4 = F7, 0|10<<4 = A0, 2|4<<4 = 42, 4|6<<4 = 64, 6|8<<4 = 86, 1|5<<4 = 51, 6|11<<4 = B6,
    //          0|12<<4 = C0, | 7|15<<4 = F7, 2|12<<4 = C2, 1|6<<4 = 61, 13|3<<4 = 3D, 2|0 = 02, 00, 00, 00
    //   row 1: eight 00, then 1|9<<4 = 91, seven 00.
    void handBuiltModelOpt() {
        const std::vector<float> w = handBuiltWeight();
        const Nvfp4Tensor t = quantizeNvfp4(w, 2, 32, "hand");
        QCOMPARE(t.globalScale, std::ldexp(1.0f, -10));
        QCOMPARE(t.blockScales, (Bytes{0x7E, 0x6D, 0x38, 0x01}));
        const Bytes codes0 = {7, 15, 0, 10, 2, 4, 4, 6, 6, 8, 1, 5, 6, 11, 0, 12, 7, 15, 2, 12, 1, 6, 13, 3, 2, 0, 0, 0, 0, 0, 0, 0};
        COMPARE_BYTES(Bytes(t.codes.begin(), t.codes.begin() + 32), codes0);
        const Bytes packed = packNvfp4(t);
        const Bytes want = {0xF7, 0xA0, 0x42, 0x64, 0x86, 0x51, 0xB6, 0xC0, 0xF7, 0xC2, 0x61, 0x3D, 0x02, 0x00, 0x00, 0x00,
                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x91, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
        COMPARE_BYTES(packed, want);
        QCOMPARE(t.bitsPerWeight(), 4.0 + 0.5 + 32.0 / 64.0);  // 5: the FP32 scale weighs a lot on 64 weights

        // Dequantization: e2m1 · (scale · 2^-10).
        std::vector<float> row(32);
        dequantizeNvfp4Row(t, 0, row.data());
        QCOMPARE(row[0], 2.625f);         // 6 · 0.4375
        QCOMPARE(row[2], 0.0f);           // 0.25 · D0 rounded down to 0
        QCOMPARE(row[3], -1.0f * D0);     // −0.75 · D0 rounded to −1 · D0
        QCOMPARE(row[8], 4.0f * D0);      // 5 · D0 → 4 · D0
        QVERIFY(row[9] == 0.0f && std::signbit(row[9]));  // code 8: −0
        QCOMPARE(row[16], 6.0f * D1);     // 0.6 → 0.609375
        QCOMPARE(row[24], 1.0f * D1);     // 0.75 · D1 → 1 · D1
        dequantizeNvfp4Row(t, 1, row.data());
        for (int k = 0; k < 16; ++k) QCOMPARE(row[std::size_t(k)], 0.0f);
        QCOMPARE(row[16], std::ldexp(1.0f, -20));   // 0.5 · 2^-19
        QCOMPARE(row[17], -std::ldexp(1.0f, -20));
        QCOMPARE(row[18], 0.0f);

        // The raw-bytes decoder reads the same values from the file layout.
        std::vector<float> fromBytes(32);
        for (int n = 0; n < 2; ++n) {
            dequantizeNvfp4Row(t, n, row.data());
            decodeNvfp4Row(raw(packed) + n * 16, raw(t.blockScales) + n * 2, t.globalScale, 32, fromBytes.data());
            for (int k = 0; k < 32; ++k) QVERIFY(sameBits(fromBytes[std::size_t(k)], row[std::size_t(k)]));
        }
    }

    // The same four blocks as one 1×64 row (row 0 then row 1 of the hand-built weight), in GGUF's
    // block_nvfp4: d[4] = 7E 6D 38 01 (sign bits already clear), then per sub-block s the 8 bytes
    // q[j] | q[j+8] << 4:
    //   s0: q = 7 15 0 10 2 4 4 6 | 6 8 1 5 6 11 0 12 → 7|6<<4 = 67, 15|8<<4 = 8F, 0|1<<4 = 10, 10|5<<4 = 5A,
    //       2|6<<4 = 62, 4|11<<4 = B4, 4|0 = 04, 6|12<<4 = C6
    //   s1: q = 7 15 2 12 1 6 13 3 | 2 0 0 0 0 0 0 0 → 7|2<<4 = 27, 0F, 02, 0C, 01, 06, 0D, 03
    //   s2: zeros
    //   s3: q = 1 9 0 … → 01, 09, 00 × 6
    void handBuiltGguf() {
        const std::vector<float> w = handBuiltWeight();  // [2, 32] in memory is also one row of 64
        const Nvfp4Tensor t = quantizeNvfp4(w, 1, 64, "hand");
        QCOMPARE(t.globalScale, std::ldexp(1.0f, -10));
        const Bytes want = {0x7E, 0x6D, 0x38, 0x01,                          // d
                            0x67, 0x8F, 0x10, 0x5A, 0x62, 0xB4, 0x04, 0xC6,  // sub-block 0
                            0x27, 0x0F, 0x02, 0x0C, 0x01, 0x06, 0x0D, 0x03,  // sub-block 1
                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // sub-block 2
                            0x01, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}; // sub-block 3
        const Bytes blocks = packNvfp4Gguf(t, "hand");
        COMPARE_BYTES(blocks, want);
        // ggml's reading: kvalues (doubled E2M1) times half the E4M3 scale, i.e. e2m1 · e4m3, without the
        // global scale: 6 · 448 = 2688 for the first value, which times 2^-10 is the weight 2.625.
        std::vector<float> row(64);
        decodeGgufNvfp4Row(raw(blocks), 64, row.data());
        QCOMPARE(row[0], 2688.0f);
        QCOMPARE(row[1], -2688.0f);
        QCOMPARE(row[16], 6.0f * 104.0f);
        QCOMPARE(row[48], 0.5f * std::ldexp(1.0f, -9));
        std::vector<float> deq(64);
        dequantizeNvfp4Row(t, 0, deq.data());
        for (int k = 0; k < 64; ++k) QCOMPARE(row[std::size_t(k)] * t.globalScale, deq[std::size_t(k)]);
    }

    void roundTrips_data() {
        QTest::addColumn<int>("N");
        QTest::addColumn<int>("K");
        QTest::newRow("1x16") << 1 << 16;
        QTest::newRow("3x16") << 3 << 16;
        QTest::newRow("3x48") << 3 << 48;
        QTest::newRow("1x64") << 1 << 64;
        QTest::newRow("5x128") << 5 << 128;
        QTest::newRow("7x320") << 7 << 320;
    }
    void roundTrips() {
        QFETCH(int, N);
        QFETCH(int, K);
        std::vector<float> w = randomWeights(std::int64_t(N) * K, std::uint64_t(N * 977 + K));
        w[std::size_t(K / 2)] = 0.3f;  // an outlier, so block scales spread over many codes
        const Nvfp4Tensor t = quantizeNvfp4(w, N, K, "w");
        QCOMPARE(t.codes.size(), std::size_t(N * K));
        QCOMPARE(t.blockScales.size(), std::size_t(N * K / 16));
        ThreadPool pool(2);
        const Nvfp4Tensor tp = quantizeNvfp4(w, N, K, "w", &pool);
        QCOMPARE(tp.codes, t.codes);
        QCOMPARE(tp.blockScales, t.blockScales);
        QCOMPARE(tp.globalScale, t.globalScale);

        // ModelOpt layout: exact round trip, and the byte decoder agrees with the codes, bit for bit.
        const Bytes packed = packNvfp4(t);
        QCOMPARE(packed.size(), std::size_t(N * K / 2));
        const Nvfp4Tensor back = unpackNvfp4(packed, t.blockScales, t.globalScale, N, K, "w");
        QCOMPARE(back.codes, t.codes);
        QCOMPARE(back.blockScales, t.blockScales);
        QCOMPARE(back.globalScale, t.globalScale);
        std::vector<float> a(static_cast<std::size_t>(K)), b(static_cast<std::size_t>(K));
        for (int n = 0; n < N; ++n) {
            dequantizeNvfp4Row(t, n, a.data());
            decodeNvfp4Row(raw(packed) + n * K / 2, raw(t.blockScales) + n * K / 16, t.globalScale, K, b.data());
            for (int k = 0; k < K; ++k) QVERIFY(sameBits(a[std::size_t(k)], b[std::size_t(k)]));
        }

        // GGUF layout, where the row length allows it.
        if (K % 64 != 0) {
            WHITTLE_EXPECT_ERROR(packNvfp4Gguf(t, "w"), UsageError, "w", "multiple of 64");
            return;
        }
        const Bytes blocks = packNvfp4Gguf(t, "w");
        QCOMPARE(blocks.size(), std::size_t(N * K / 64 * 36));
        const Nvfp4Tensor g = unpackNvfp4Gguf(blocks, t.globalScale, N, K, "w");
        QCOMPARE(g.codes, t.codes);
        QCOMPARE(g.blockScales, t.blockScales);
        QCOMPARE(g.globalScale, t.globalScale);
        for (int n = 0; n < N; ++n) {
            decodeGgufNvfp4Row(raw(blocks) + n * K / 64 * 36, K, b.data());
            for (int k = 0; k < K; ++k) {
                const std::size_t i = std::size_t(n * K + k);
                // Exactly e2m1 · e4m3 (both products are exact in float) …
                QCOMPARE(b[std::size_t(k)], e2m1ToFloat(t.codes[i]) * e4m3ToFloat(t.blockScales[std::size_t(n * K / 16 + k / 16)]));
            }
            // … and times the global scale within one rounding of ModelOpt's (e2m1 · (e4m3 · global)).
            dequantizeNvfp4Row(t, n, a.data());
            for (int k = 0; k < K; ++k)
                QVERIFY(std::fabs(b[std::size_t(k)] * t.globalScale - a[std::size_t(k)]) <= std::ldexp(std::fabs(a[std::size_t(k)]), -22));
        }
    }

    // |w − deq| ≤ half the gap of the E2M1 grid around w / divisor, times the divisor (scale · global):
    // the gaps are 0.5 below 2, 1 up to 4 and 2 up to 6; above 6 (the E4M3 scale rounded down) the code
    // saturates at 6, within one unit. And no other code would have been nearer.
    void errorBound_data() {
        QTest::addColumn<float>("sd");
        QTest::addColumn<int>("outliers");
        QTest::newRow("normal 0.02") << 0.02f << 0;
        QTest::newRow("normal 1, outliers") << 1.0f << 20;
        QTest::newRow("normal 1e-4, outliers") << 1e-4f << 5;
    }
    void errorBound() {
        QFETCH(float, sd);
        QFETCH(int, outliers);
        const std::int64_t N = 24, K = 256;
        std::vector<float> w = randomWeights(N * K, std::uint64_t(outliers * 31 + 5), sd);
        std::mt19937_64 rng(99);
        for (int i = 0; i < outliers; ++i) w[rng() % w.size()] *= 40.0f;
        const Nvfp4Tensor t = quantizeNvfp4(w, N, K, "w");
        std::vector<float> deq(static_cast<std::size_t>(K));
        double err2 = 0, norm2 = 0;
        for (std::int64_t n = 0; n < N; ++n) {
            dequantizeNvfp4Row(t, n, deq.data());
            for (std::int64_t k = 0; k < K; ++k) {
                const std::size_t i = std::size_t(n * K + k);
                const float scale = e4m3ToFloat(t.blockScales[std::size_t(n * K / 16 + k / 16)]);
                QVERIFY(scale > 0);
                const float divisor = scale * t.globalScale;
                const float x = std::fabs(w[i]) / divisor;
                const float halfGap = x < 2 ? 0.25f : x < 4 ? 0.5f : 1.0f;
                const float err = std::fabs(w[i] - deq[std::size_t(k)]);
                QVERIFY2(err <= halfGap * divisor * (1 + 1e-5f), qPrintable(QString("w[%1, %2]: error %3, bound %4").arg(n).arg(k).arg(err).arg(halfGap * divisor)));
                for (float g : kGrid) QVERIFY(err <= std::fabs(std::fabs(w[i]) - g * divisor) * (1 + 1e-5f) + 1e-30f);
                err2 += double(err) * err;
                norm2 += double(w[i]) * w[i];
            }
        }
        qInfo("relative error %.4f", std::sqrt(err2 / norm2));
        QVERIFY(std::sqrt(err2 / norm2) < 0.15);
    }

    // All zero: no division by zero; global scale 1 (ModelOpt's 0/0 would make NaN scales), block scales
    // 1.0, codes 0, and everything dequantizes to 0 in both layouts.
    void allZero() {
        const std::vector<float> w(3 * 64, 0.0f);
        const Nvfp4Tensor t = quantizeNvfp4(w, 3, 64, "zero");
        QCOMPARE(t.globalScale, 1.0f);
        QCOMPARE(nvfp4GlobalScale(w), 1.0f);
        QCOMPARE(t.blockScales, Bytes(12, 0x38));
        QCOMPARE(t.codes, Bytes(3 * 64, 0));
        QCOMPARE(packNvfp4(t), Bytes(3 * 32, 0));
        std::vector<float> row(64, NAN);
        for (int n = 0; n < 3; ++n) {
            dequantizeNvfp4Row(t, n, row.data());
            for (float v : row) QCOMPARE(v, 0.0f);
        }
        const Bytes blocks = packNvfp4Gguf(t, "zero");
        decodeGgufNvfp4Row(raw(blocks), 64, row.data());
        for (float v : row) QCOMPARE(v, 0.0f);
    }

    // q/k/v (or gate/up) share one weight_scale_2, the largest of theirs, which is the scale of the group's
    // amax. Here A's amax is 1 and B's 3: shared = 3 / 2688. A's top block then gets 1 / (6 · 3/2688) =
    // 149.33 → 1.1667 · 128 → mantissa 1.33 → 1 → 144 = 0x71, instead of 448 with its own scale.
    void sharedGlobalScale() {
        std::vector<float> a = randomWeights(4 * 32, 3, 0.1f), b = randomWeights(2 * 32, 4, 0.1f);
        a[5] = 1.0f;
        b[7] = -3.0f;
        const float sa = nvfp4GlobalScale(a), sb = nvfp4GlobalScale(b);
        QCOMPARE(sa, 1.0f / 2688.0f);
        QCOMPARE(sb, 3.0f / 2688.0f);
        std::vector<float> both = a;
        both.insert(both.end(), b.begin(), b.end());
        QCOMPARE(nvfp4GlobalScale(both), std::max(sa, sb));
        const float shared = std::max(sa, sb);
        const Nvfp4Tensor own = quantizeNvfp4(a, 4, 32, "q_proj");
        const Nvfp4Tensor t = quantizeNvfp4(a, 4, 32, "q_proj", nullptr, shared);
        QCOMPARE(own.blockScales[0], std::uint8_t(0x7E));
        QCOMPARE(t.globalScale, shared);
        QCOMPARE(t.blockScales[0], std::uint8_t(0x71));
        QCOMPARE(quantizeNvfp4(b, 2, 32, "k_proj", nullptr, shared).blockScales, quantizeNvfp4(b, 2, 32, "k_proj").blockScales);
        // Still within the error bound: the shared scale only makes A's block scales smaller.
        std::vector<float> row(32);
        dequantizeNvfp4Row(t, 0, row.data());
        QVERIFY(std::fabs(row[5] - 1.0f) <= 0.5f * 144.0f * shared);
        // A scale that is not a positive normal float is refused.
        for (float bad : {0.0f, -1.0f, std::nanf(""), std::numeric_limits<float>::infinity(), 1e-40f})
            WHITTLE_EXPECT_ERROR(quantizeNvfp4(a, 4, 32, "q_proj", nullptr, bad), UsageError, "q_proj", "global scale");
    }

    // ggml reads a scale byte with its sign bit ignored and 0x7F as 0 (ggml_ue4m3_to_fp32); the GGUF
    // unpacker refuses both, since ModelOpt would read them as negative or NaN.
    void ggufScaleBytes() {
        Bytes block(36, 0);
        block[0] = 0x7F;  // read as 0 by ggml
        block[1] = 0xB8;  // −1 in E4M3, read as +1 by ggml
        block[2] = 0x38;
        block[3] = 0x01;
        for (int i = 4; i < 36; ++i) block[std::size_t(i)] = 0x77;  // code 7 (6) in both nibbles
        std::vector<float> row(64);
        decodeGgufNvfp4Row(raw(block), 64, row.data());
        for (int k = 0; k < 16; ++k) QCOMPARE(row[std::size_t(k)], 0.0f);
        for (int k = 16; k < 48; ++k) QCOMPARE(row[std::size_t(k)], 6.0f);
        for (int k = 48; k < 64; ++k) QCOMPARE(row[std::size_t(k)], 6.0f / 512.0f);
        WHITTLE_EXPECT_ERROR(unpackNvfp4Gguf(block, 1.0f, 1, 64, "blk.0.ffn_up.weight"), FormatError, "blk.0.ffn_up.weight", "0x7f");
        block[0] = 0x38;
        WHITTLE_EXPECT_ERROR(unpackNvfp4Gguf(block, 1.0f, 1, 64, "blk.0.ffn_up.weight"), FormatError, "blk.0.ffn_up.weight", "0xb8");
        block[1] = 0x38;
        QCOMPARE(unpackNvfp4Gguf(block, 1.0f, 1, 64, "ok").codes, Bytes(64, 7));
        // A tensor read from a ModelOpt file with a negative block scale cannot go to GGUF.
        Nvfp4Tensor t = quantizeNvfp4(randomWeights(64, 8), 1, 64, "neg");
        t.blockScales[2] |= 0x80;
        WHITTLE_EXPECT_ERROR(packNvfp4Gguf(t, "neg"), FormatError, "neg", "unsigned");
    }

    void refusals() {
        const std::vector<float> w40 = randomWeights(2 * 40, 1);
        WHITTLE_EXPECT_ERROR(quantizeNvfp4(w40, 2, 40, "model.layers.0.mlp.down_proj.weight"), UsageError,
                             "model.layers.0.mlp.down_proj.weight", "multiple of 16", "40 inputs");
        // K = 48 is fine for ModelOpt (three blocks of 16) but not for GGUF (blocks of 64).
        const Nvfp4Tensor t48 = quantizeNvfp4(randomWeights(2 * 48, 2), 2, 48, "blk.3.ffn_down.weight");
        WHITTLE_EXPECT_ERROR(packNvfp4Gguf(t48, "blk.3.ffn_down.weight"), UsageError, "blk.3.ffn_down.weight", "multiple of 64",
                             "48 inputs");
        WHITTLE_EXPECT_ERROR(unpackNvfp4Gguf(Bytes(2 * 27), 1.0f, 2, 48, "blk.3.ffn_down.weight"), UsageError, "multiple of 64");
        WHITTLE_EXPECT_ERROR(quantizeNvfp4({}, 0, 16, "empty"), UsageError, "empty");
        std::vector<float> bad = randomWeights(2 * 16, 3);
        bad[17] = std::numeric_limits<float>::infinity();
        WHITTLE_EXPECT_ERROR(quantizeNvfp4(bad, 2, 16, "inf"), FormatError, "inf", "[1, 1]", "not finite");
        bad[17] = std::nanf("");
        WHITTLE_EXPECT_ERROR(quantizeNvfp4(bad, 2, 16, "nan"), FormatError, "nan", "not finite");
        // Buffers that do not match the shape.
        WHITTLE_EXPECT_ERROR(unpackNvfp4(Bytes(15), Bytes(2), 1.0f, 2, 16, "short"), FormatError, "short", "15 bytes", "16");
        WHITTLE_EXPECT_ERROR(unpackNvfp4(Bytes(16), Bytes(3), 1.0f, 2, 16, "scales"), FormatError, "scales", "weight_scale");
        WHITTLE_EXPECT_ERROR(unpackNvfp4Gguf(Bytes(35), 1.0f, 1, 64, "gguf"), FormatError, "gguf", "35 bytes");
    }
};

QTEST_APPLESS_MAIN(TestNvfp4)
#include "tst_nvfp4.moc"
