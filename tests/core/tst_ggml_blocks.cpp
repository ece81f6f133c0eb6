// GGUF Q8_0 and Q4_0 blocks: hand-worked blocks whose bytes are derived here from ggml's reference
// quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref: float d, id = 1/d, q from x·id, roundf for Q8_0,
// truncation of x·id + 8.5 for Q4_0, d stored as f16), cases that a quantizer dividing by the stored f16 scale
// or rounding halves to even would get wrong, random round trips within the rounding bound, and refusals.
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/quant/ggml_blocks.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

namespace {


Bytes q8(const std::vector<float>& x) {
    Bytes out(q8_0RowBytes(std::int64_t(x.size())));
    quantizeRowQ8_0(x, out.data(), "t");
    return out;
}

Bytes q4(const std::vector<float>& x) {
    Bytes out(q4_0RowBytes(std::int64_t(x.size())));
    quantizeRowQ4_0(x, out.data(), "t");
    return out;
}

std::vector<float> deq8(const Bytes& b, std::int64_t K) {
    std::vector<float> out(std::size_t(K), NAN);
    dequantizeRowQ8_0(reinterpret_cast<const std::byte*>(b.data()), K, out.data());
    return out;
}

std::vector<float> deq4(const Bytes& b, std::int64_t K) {
    std::vector<float> out(std::size_t(K), NAN);
    dequantizeRowQ4_0(reinterpret_cast<const std::byte*>(b.data()), K, out.data());
    return out;
}


float f16At(const Bytes& b, std::size_t offset) { return f16ToFloat(std::uint16_t(b[offset] | (b[offset + 1] << 8))); }

}  // namespace

class TestGgmlBlocks : public QObject {
    Q_OBJECT

private slots:
    void rowBytes() {
        QCOMPARE(q8_0RowBytes(32), std::size_t(34));
        QCOMPARE(q8_0RowBytes(2048), std::size_t(64 * 34));
        QCOMPARE(q4_0RowBytes(32), std::size_t(18));
        QCOMPARE(q4_0RowBytes(2048), std::size_t(64 * 18));
    }

    // Three blocks of one row, so block offsets are checked too.
    void q8_0HandBuilt() {
        std::vector<float> x(96, 0.0f);
        // Block 0: amax 127, so d = 127/127 = 1 (f16 0x3C00, stored little-endian 00 3C) and id = 1.
        // q = roundf(x): halves go away from zero (2.5 → 3, not 2 as rounding to even would give).
        const float b0[] = {127, -127, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49f, 126.6f};
        std::copy(std::begin(b0), std::end(b0), x.begin());
        // Block 1: amax 1, d = 1/127 = 0.0078740157 in float, whose f16 is 0x2008 (2^-7 · (1 + 8/1024) =
        // 0.00787353515625); id = 1/d = 127 exactly. 0.531494140625 · 127 = 67.4998 → 67. Dividing by the
        // stored f16 d instead would give 67.5034 → 68. −0.25 · 127 = −31.75 → −32.
        x[32] = 1.0f;
        x[33] = 0.531494140625f;
        x[34] = -0.25f;
        // Block 2: amax 0.001, d = 0.001/127 = 7.874016e-6 (f16 subnormal: 132 · 2^-24, 0x0084, stored 84 00);
        // id = 1/d = 127000 exactly. x = 0.00014566928439307958 gives x·id = 18.5 exactly → roundf 19; x/d would
        // be 18.499998 → 18, and rounding 18.5 to even would also give 18. −0.0005 · 127000 = −63.500004 → −64.
        x[64] = 0.001f;
        x[65] = 0.00014566928439307958f;
        x[66] = -0.0005f;
        Bytes want(3 * 34, 0);
        const Bytes block0 = {0x00, 0x3C, 0x7F, 0x81, 0x01, 0xFF, 0x02, 0x03, 0xFD, 0x00, 0x7F};  // then zeros
        const Bytes block1 = {0x08, 0x20, 0x7F, 67, std::uint8_t(-32)};
        const Bytes block2 = {0x84, 0x00, 127, 19, std::uint8_t(-64)};
        std::copy(block0.begin(), block0.end(), want.begin());
        std::copy(block1.begin(), block1.end(), want.begin() + 34);
        std::copy(block2.begin(), block2.end(), want.begin() + 68);
        const Bytes got = q8(x);
        COMPARE_BYTES(got, want);
        // Dequantization: q · f16(d).
        const std::vector<float> back = deq8(got, 96);
        QCOMPARE(back[0], 127.0f);
        QCOMPARE(back[1], -127.0f);
        QCOMPARE(back[5], 3.0f);
        QCOMPARE(back[6], -3.0f);
        QCOMPARE(back[7], 0.0f);
        QCOMPARE(back[33], 67.0f * 0.00787353515625f);
        QCOMPARE(back[65], 19.0f * 132.0f * std::ldexp(1.0f, -24));
        QCOMPARE(back[95], 0.0f);
    }

    void q4_0HandBuilt() {
        std::vector<float> x(96, 0.0f);
        // Block 0: the largest magnitude is −8 (x[0]), so d = −8 / −8 = 1 (f16 0x3C00) and id = 1.
        // q = min(15, trunc(x + 8.5)): halves round up (−0.5 → 8.0 → 8, i.e. 0; 0.5 → 9.0 → 9, i.e. +1), which
        // neither roundf (−0.5 → −1) nor rounding to even (0.5 → 0) would give.
        //   j   x      x+8.5  q        j   x      x+8.5  q
        //   0  −8      0.5    0       16   1      9.5    9
        //   1   7     15.5   15       17  −1      7.5    7
        //   2   7.4   15.9   15       18   6     14.5   14
        //   3   0      8.5    8       19  −6      2.5    2
        //   4  −0.5    8.0    8       20   4.5   13.0   13
        //   5   0.5    9.0    9       21  −4.5    4.0    4
        //   6  −1.5    7.0    7       22+  0      8.5    8
        //   7   2.49  10.99  10
        //   8  −7.6    0.9    0
        //   9   3     11.5   11
        //  10  −3      5.5    5
        //  11+  0      8.5    8
        // byte j = q[j] | q[j+16] << 4.
        const float lo[] = {-8, 7, 7.4f, 0, -0.5f, 0.5f, -1.5f, 2.49f, -7.6f, 3, -3};
        const float hi[] = {1, -1, 6, -6, 4.5f, -4.5f};
        std::copy(std::begin(lo), std::end(lo), x.begin());
        std::copy(std::begin(hi), std::end(hi), x.begin() + 16);
        // Block 1: 8 comes first and ties −8 in magnitude; ggml keeps the first (strict <), so max = 8, d = −1
        // (f16 0xBC00) and id = −1. 8 → −8 + 8.5 = 0.5 → 0 (8 comes back); −8 → 16.5 → 16, clamped to 15
        // (comes back as −7); 3 → 5.5 → 5; 0.5 → 8.0 → 8; −0.5 → 9.0 → 9.
        const float b1[] = {8, -8, 3, 0.5f, -0.5f};
        std::copy(std::begin(b1), std::end(b1), x.begin() + 32);
        // Block 2: max = −0.1, d = 0.0125 (f16 0x2266 = 0.0124969482421875), id = 80 exactly.
        // 0.0187475 · 80 = 1.4998 → 9.9998 → 9; dividing by the f16 d would give 1.50017 → 10.
        x[64] = -0.1f;
        x[65] = 0.0187475f;
        Bytes want(3 * 18, 0x88);
        const Bytes block0 = {0x00, 0x3C, 0x90, 0x7F, 0xEF, 0x28, 0xD8, 0x49, 0x87, 0x8A, 0x80, 0x8B, 0x85};  // then 0x88
        // x = −0.1 → −8 + 8.5 → 0.
        const Bytes block1 = {0x00, 0xBC, 0x80, 0x8F, 0x85, 0x88, 0x89};
        const Bytes block2 = {0x66, 0x22, 0x80, 0x89};
        std::copy(block0.begin(), block0.end(), want.begin());
        std::copy(block1.begin(), block1.end(), want.begin() + 18);
        std::copy(block2.begin(), block2.end(), want.begin() + 36);
        const Bytes got = q4(x);
        COMPARE_BYTES(got, want);
        // Dequantization: (q − 8) · f16(d).
        const std::vector<float> back = deq4(got, 96);
        const float want0[] = {-8, 7, 7, 0, 0, 1, -1, 2, -8, 3, -3};
        for (int j = 0; j < 11; ++j) QCOMPARE(back[std::size_t(j)], want0[j]);
        const float want16[] = {1, -1, 6, -6, 5, -4};
        for (int j = 0; j < 6; ++j) QCOMPARE(back[std::size_t(16 + j)], want16[j]);
        QCOMPARE(back[32], 8.0f);
        QCOMPARE(back[33], -7.0f);  // the clamp
        QCOMPARE(back[34], 3.0f);
        QCOMPARE(back[35], 0.0f);
        QCOMPARE(back[36], -1.0f);
        QCOMPARE(back[64], -8.0f * 0.0124969482421875f);  // d = −0.1 / −8 is positive here
        QCOMPARE(back[65], 0.0124969482421875f);
    }

    // An all-zero block: d = 0 (ggml's id is then 0, so nothing divides by zero), Q8_0 codes 0, Q4_0 codes 8.
    // Q4_0's d is 0 / −8 = −0, which ggml stores as f16 0x8000 (bytes 00 80).
    void zeroBlocks() {
        const std::vector<float> x(32, 0.0f);
        Bytes want8(34, 0);
        COMPARE_BYTES(q8(x), want8);
        Bytes want4(18, 0x88);
        want4[0] = 0x00;
        want4[1] = 0x80;
        COMPARE_BYTES(q4(x), want4);
        for (float v : deq8(q8(x), 32)) QCOMPARE(v, 0.0f);
        for (float v : deq4(q4(x), 32)) QCOMPARE(v, 0.0f);
    }

    // Random rows: every value within half a step of its block's grid (Q4_0's clamped top code: one step),
    // plus what rounding d to f16 costs (at most 127 or 8 steps' worth of d's rounding error).
    void randomRoundTrips() {
        std::mt19937_64 rng(7);
        std::normal_distribution<float> normal(0.0f, 0.05f);
        const std::int64_t K = 32 * 40;
        std::vector<float> x(static_cast<std::size_t>(K));
        for (float& v : x) v = normal(rng);
        x[100] = 3.0f;  // an outlier block
        for (std::size_t i = 320; i < 352; ++i) x[i] = 0.0f;  // a zero block
        const Bytes b8 = q8(x), b4 = q4(x);
        QCOMPARE(b8.size(), q8_0RowBytes(K));
        QCOMPARE(b4.size(), q4_0RowBytes(K));
        const std::vector<float> y8 = deq8(b8, K), y4 = deq4(b4, K);
        for (std::int64_t blk = 0; blk < K / 32; ++blk) {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; ++j) {
                const float v = x[std::size_t(blk * 32 + j)];
                amax = std::max(amax, std::fabs(v));
                if (std::fabs(v) > std::fabs(max)) max = v;
            }
            const float d8 = amax / 127.0f, d4 = max / -8.0f;
            const float s8 = f16At(b8, std::size_t(blk * 34)), s4 = f16At(b4, std::size_t(blk * 18));
            QCOMPARE(s8, f16ToFloat(floatToF16(d8)));
            QCOMPARE(s4, f16ToFloat(floatToF16(d4)));
            for (int j = 0; j < 32; ++j) {
                const std::size_t i = std::size_t(blk * 32 + j);
                const float e8 = std::fabs(y8[i] - x[i]), e4 = std::fabs(y4[i] - x[i]);
                QVERIFY2(e8 <= 0.5f * d8 + 127.0f * std::fabs(s8 - d8) + 1e-6f * d8, qPrintable(QString("Q8_0 value %1").arg(i)));
                const std::uint8_t byte = b4[std::size_t(blk * 18 + 2 + j % 16)];
                const int code = j < 16 ? (byte & 15) : (byte >> 4);
                const float steps = code == 15 ? 1.0f : 0.5f;
                QVERIFY2(e4 <= steps * std::fabs(d4) + 8.0f * std::fabs(s4 - d4) + 1e-6f * std::fabs(d4),
                         qPrintable(QString("Q4_0 value %1").arg(i)));
            }
        }
    }

    void refusals() {
        const std::vector<float> x40(40, 1.0f);
        Bytes out(64);
        WHITTLE_EXPECT_ERROR(quantizeRowQ8_0(x40, out.data(), "blk.0.ffn_down.weight"), UsageError, "blk.0.ffn_down.weight", "Q8_0",
                             "multiple of 32", "40 values");
        WHITTLE_EXPECT_ERROR(quantizeRowQ4_0(x40, out.data(), "blk.1.attn_q.weight"), UsageError, "blk.1.attn_q.weight", "Q4_0",
                             "multiple of 32", "40 values");
    }
};

QTEST_APPLESS_MAIN(TestGgmlBlocks)
#include "tst_ggml_blocks.moc"
