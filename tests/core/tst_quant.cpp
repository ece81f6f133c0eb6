// Integer round-to-nearest quantization (2, 3, 4 and 8 bits, optional binary residual) and the GPTQ v1 layout:
// hand-built 4-bit and 3-bit tensors whose packed words are worked out here (3-bit values straddle words as
// AutoGPTQ's pack writes them); exact pack/unpack round trips on ragged shapes; dequantization with and
// without g_idx; the RTN error bound; the residual's exact error reduction; refusals for shapes and zero
// points the format cannot express; and, on the bundled model's real weights, the error ordering of group
// sizes and the bits per weight.
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/io/gptq_layout.h"
#include "core/model/checkpoint.h"
#include "core/quant/int_quant.h"
#include "core/reference/reference_model.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;


class TestQuant : public QObject {
    Q_OBJECT

private slots:
    // Row 0 holds −7.5, −7 … 6 and 7.5 in one group of 16: symmetric scale 2·7.5/15 = 1 (exact in f16); codes
    // 0 … 15 (±7.5 round half to even, to −8 and 8, and 8 + 8 clamps to 15). Rows 1–7 are zero: code 8.
    void handBuiltGptq() {
        const std::int64_t N = 8, K = 16;
        std::vector<float> w(static_cast<std::size_t>(N * K), 0.0f);
        w[0] = -7.5f;
        for (int k = 1; k < 15; ++k) w[std::size_t(k)] = float(k - 8);
        w[15] = 7.5f;
        const IntTensor t = quantizeIntRtn(w, N, K, {16, true}, "hand");
        QCOMPARE(t.scales[0], std::uint16_t(0x3C00));  // f16 1.0
        for (int k = 0; k < 16; ++k) QCOMPARE(int(t.codes[std::size_t(k)]), k);
        const GptqTensors g = packGptqV1(t, "hand");
        QCOMPARE(g.qweight.size(), std::size_t(2 * N));
        QCOMPARE(std::uint32_t(g.qweight[0]), 0x76543210u);      // inputs 0–7 of output 0, input 0 in the low bits
        QCOMPARE(std::uint32_t(g.qweight[std::size_t(N)]), 0xFEDCBA98u);  // inputs 8–15 of output 0
        for (std::int64_t n = 1; n < N; ++n) QCOMPARE(std::uint32_t(g.qweight[std::size_t(n)]), 0x88888888u);
        QCOMPARE(g.qzeros.size(), std::size_t(1));
        QCOMPARE(std::uint32_t(g.qzeros[0]), 0x77777777u);  // symmetric: zero 8 stored as 7
        QCOMPARE(g.scales[0], std::uint16_t(0x3C00));
        QCOMPARE(g.gIdx, std::vector<std::int32_t>(16, 0));
        std::vector<float> row(16);
        dequantizeGptqRow(g, 0, row.data());
        for (int k = 0; k < 15; ++k) QCOMPARE(row[std::size_t(k)], float(k - 8));  // −7.5 came back as −8
        QCOMPARE(row[15], 7.0f);                                                    // 7.5 clamped to 7
    }

    // 3 bits, 32 outputs × 32 inputs, one symmetric group: scale 2·3.5/7 = 1, zero 4 (stored 3). Output 0
    // holds (k mod 8) − 4, with −3.5 in place of −4 (it rounds half to even to −4: code 0), so its codes are k mod 8;
    // outputs 1–31 are zero (code 4). AutoGPTQ's pack puts 32 three-bit values in 3 words per column:
    //   word 0 = q0…q9 in bits 0–29 and the low 2 bits of q10 in bits 30–31,
    //   word 1 = the high bit of q10, q11…q20 in bits 1–30, the low bit of q21 in bit 31,
    //   word 2 = the high 2 bits of q21, q22…q31 in bits 2–31.
    // For q = 0, 1, …, 7, 0, 1, … that is 0x88FAC688, 0xC688FAC6, 0xFAC688FA; all-4 codes give 0x24924924,
    // 0x49249249, 0x92492492; 32 stored zeros of 3 give 0xDB6DB6DB, 0xB6DB6DB6, 0x6DB6DB6D.
    void handBuiltGptq3Bit() {
        const std::int64_t N = 32, K = 32;
        std::vector<float> w(static_cast<std::size_t>(N * K), 0.0f);
        for (int k = 0; k < 32; ++k) w[std::size_t(k)] = k % 8 ? float(k % 8 - 4) : -3.5f;
        const IntTensor t = quantizeIntRtn(w, N, K, {32, true, 3}, "hand3");
        QCOMPARE(t.scales[0], std::uint16_t(0x3C00));
        QCOMPARE(int(t.zeros[0]), 4);
        const GptqTensors g = packGptqV1(t, "hand3");
        QCOMPARE(g.qweight.size(), std::size_t(3 * N));
        const std::uint32_t ramp[3] = {0x88FAC688u, 0xC688FAC6u, 0xFAC688FAu}, fours[3] = {0x24924924u, 0x49249249u, 0x92492492u},
                            zeros[3] = {0xDB6DB6DBu, 0xB6DB6DB6u, 0x6DB6DB6Du};
        for (int j = 0; j < 3; ++j) {
            QCOMPARE(std::uint32_t(g.qweight[std::size_t(j * N)]), ramp[j]);
            for (std::int64_t n = 1; n < N; ++n) QCOMPARE(std::uint32_t(g.qweight[std::size_t(j * N + n)]), fours[j]);
            QCOMPARE(std::uint32_t(g.qzeros[std::size_t(j)]), zeros[j]);
        }
        QCOMPARE(g.qzeros.size(), std::size_t(3));
        std::vector<float> row(32);
        dequantizeGptqRow(g, 0, row.data());
        for (int k = 0; k < 32; ++k) QCOMPARE(row[std::size_t(k)], float(k % 8 - 4));  // −3.5 came back as −4
        QCOMPARE(unpackGptqV1(g, "hand3").codes, t.codes);
    }

    // The binary residual on a hand-made group: 0, 1, 2, 3.3 with 2 bits asymmetric → scale 3.3/3 = 1.1, zero 0
    // is not storable in v1, so zero 1 and scale 3.3/2 = 1.65 (f16: 1.6504): codes 1, 2, 2, 3 dequantize to 0,
    // 1.6504 (×2), 3.3008 — errors 0, −0.65, +0.35, −0.0008 → r = mean |e| ≈ 0.25; signs + − + − (an error of
    // 0 counts as +).
    void handBuiltResidual() {
        const std::vector<float> w{0.0f, 1.0f, 2.0f, 3.3f};
        const IntGroup p = intGroupParams(w, 2, false, true);
        QCOMPARE(int(p.zero), 1);
        QCOMPARE(p.scaleF16, floatToF16(3.3f / 2.0f));
        const float s = f16ToFloat(p.scaleF16);
        std::vector<int> codes;
        for (float x : w) codes.push_back(p.quantize(x));
        QCOMPARE(codes, (std::vector<int>{1, 2, 2, 3}));
        const double want = (std::fabs(0.0f - 0.0f) + std::fabs(1.0f - s) + std::fabs(2.0f - s) + std::fabs(3.3f - 2 * s)) / 4.0;
        QCOMPARE(p.residualF16, floatToF16(float(want)));
        const IntTensor t = quantizeIntRtn(w, 1, 4, {4, false, 2, true}, "res");
        QCOMPARE(t.residualSigns, (std::vector<std::uint8_t>{1, 0, 1, 0}));
    }

    void roundTrips_data() {
        QTest::addColumn<int>("N");
        QTest::addColumn<int>("K");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("symmetric");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("residual");
        QTest::newRow("g16 sym, ragged last group") << 24 << 40 << 16 << true << 4 << false;
        QTest::newRow("g16 asym, ragged last group") << 24 << 40 << 16 << false << 4 << false;
        QTest::newRow("g128 sym") << 64 << 256 << 128 << true << 4 << false;
        QTest::newRow("g32 asym") << 16 << 96 << 32 << false << 4 << false;
        QTest::newRow("per channel sym") << 8 << 72 << 0 << true << 4 << false;
        QTest::newRow("g64 sym, one short group") << 8 << 24 << 64 << true << 4 << false;
        QTest::newRow("2-bit g64 asym") << 32 << 128 << 64 << false << 2 << false;
        QTest::newRow("2-bit g24 sym, ragged") << 16 << 80 << 24 << true << 2 << false;
        QTest::newRow("3-bit g128 asym") << 64 << 256 << 128 << false << 3 << false;
        QTest::newRow("3-bit g40 sym, ragged") << 32 << 96 << 40 << true << 3 << false;
        QTest::newRow("8-bit g128 sym") << 12 << 256 << 128 << true << 8 << false;
        QTest::newRow("8-bit per channel asym") << 8 << 36 << 0 << false << 8 << false;
        QTest::newRow("2-bit g64 asym + residual") << 32 << 192 << 64 << false << 2 << true;
        QTest::newRow("4-bit g48 sym + residual, ragged") << 16 << 160 << 48 << true << 4 << true;
    }
    void roundTrips() {
        QFETCH(int, N);
        QFETCH(int, K);
        QFETCH(int, group);
        QFETCH(bool, symmetric);
        QFETCH(int, bits);
        QFETCH(bool, residual);
        const std::vector<float> w = randomWeights(std::int64_t(N) * K, std::uint64_t(N * 131 + K + bits));
        const IntOptions o{group, symmetric, bits, residual};
        const IntTensor t = quantizeIntRtn(w, N, K, o, "w");
        QCOMPARE(t.groups(), std::int64_t((K + t.groupSize - 1) / t.groupSize));
        QCOMPARE(t.hasResidual(), residual);
        const IntTensor plain = quantizeIntRtn(w, N, K, {group, symmetric, bits, false}, "w");
        QCOMPARE(plain.codes, t.codes);  // the residual is a second pass: codes, scales and zeros do not change
        QCOMPARE(plain.scales, t.scales);
        // RTN: every weight within half a step of its group's grid (the symmetric top code clips to one step
        // below the maximum), plus the f16 rounding of the scale (relative 2^-11) accumulated over at most
        // 2^bits steps. With a residual, each group's squared error is the plain one minus n·r² (r is the mean
        // |error|), up to the f16 rounding of r.
        const float slack = 0.5f + float(1 << bits) / 2048.0f;
        std::vector<float> deq(static_cast<std::size_t>(K)), base(deq.size());
        for (int n = 0; n < N; ++n) {
            dequantizeIntRow(t, n, deq.data());
            dequantizeIntRow(plain, n, base.data());
            for (std::int64_t gi = 0; gi < t.groups(); ++gi) {
                const int k0 = int(gi) * t.groupSize, k1 = std::min(K, k0 + t.groupSize);
                double sse = 0, sseBase = 0;
                for (int k = k0; k < k1; ++k) {
                    const float x = w[std::size_t(n * K + k)];
                    const float s = f16ToFloat(t.scales[std::size_t(n * t.groups() + gi)]);
                    QVERIFY2(std::fabs(base[std::size_t(k)] - x) <= slack * s, qPrintable(QString("n %1 k %2").arg(n).arg(k)));
                    sse += double(deq[std::size_t(k)] - x) * double(deq[std::size_t(k)] - x);
                    sseBase += double(base[std::size_t(k)] - x) * double(base[std::size_t(k)] - x);
                }
                if (residual) {
                    const double r = f16ToFloat(t.residualScales[std::size_t(n * t.groups() + gi)]);
                    QVERIFY(r > 0);
                    QVERIFY2(std::fabs(sse - (sseBase - (k1 - k0) * r * r)) <= 2e-3 * sseBase + 1e-9,
                             qPrintable(QString("n %1 group %2: %3 vs %4").arg(n).arg(gi).arg(sse).arg(sseBase - (k1 - k0) * r * r)));
                }
            }
        }
        const GptqTensors g = packGptqV1(t, "w");
        QCOMPARE(g.qweight.size(), std::size_t(K * bits / 32 * N));
        QCOMPARE(g.qzeros.size(), std::size_t(t.groups() * N * bits / 32));
        // Two threads give the same codes and words as one.
        ThreadPool pool(2);
        const IntTensor tp = quantizeIntRtn(w, N, K, o, "w", &pool);
        QCOMPARE(tp.codes, t.codes);
        QCOMPARE(tp.scales, t.scales);
        QCOMPARE(tp.residualSigns, t.residualSigns);
        QCOMPARE(packGptqV1(tp, "w", &pool).qweight, g.qweight);
        QCOMPARE(packGptqV1(tp, "w", &pool).qzeros, g.qzeros);
        QCOMPARE(packGptqV1(tp, "w", &pool).qresidual, g.qresidual);
        const IntTensor back = unpackGptqV1(g, "w");
        QCOMPARE(back.bits, bits);
        QCOMPARE(back.codes, t.codes);
        QCOMPARE(back.scales, t.scales);
        QCOMPARE(back.zeros, t.zeros);
        QCOMPARE(back.residualSigns, t.residualSigns);
        QCOMPARE(back.residualScales, t.residualScales);
        if (symmetric) QVERIFY(back.symmetric);
        for (std::uint16_t z : t.zeros) QVERIFY(z >= 1);  // v1 can store every zero the quantizer picks
        std::vector<float> a(static_cast<std::size_t>(K)), b(static_cast<std::size_t>(K));
        for (int n = 0; n < N; ++n) {
            dequantizeIntRow(t, n, deq.data());
            dequantizeGptqRow(g, n, a.data(), true);
            dequantizeGptqRow(g, n, b.data(), false);
            QCOMPARE(a, b);    // with and without g_idx
            QCOMPARE(a, deq);  // packed words decode to the same weights as the codes
        }
    }

    void refusals() {
        const std::vector<float> w12 = randomWeights(8 * 12, 1);
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w12, 8, 12, {4, true}, "blk.k12"), "blk.k12"), UsageError, "blk.k12",
                             "12 inputs", "multiple of 8");
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w12, 12, 8, {4, true}, "blk.n12"), "blk.n12"), UsageError, "blk.n12",
                             "12 outputs", "multiple of 8");
        WHITTLE_EXPECT_ERROR(quantizeIntRtn(w12, 8, 12, {-1, true}, "neg"), UsageError, "neg", "group size");
        WHITTLE_EXPECT_ERROR(quantizeIntRtn({}, 0, 12, {4, true}, "empty"), UsageError, "empty");
        // Asymmetric on an all-positive group: the quantizer picks zero 1 (v1 stores zero − 1 and has no form
        // for 0) with the maximum on the top code; a zero point of 0 built by hand is refused by name.
        std::vector<float> pos(8 * 8, 0.5f);
        for (std::size_t i = 0; i < pos.size(); ++i) pos[i] += 0.01f * float(i % 8);
        IntTensor t = quantizeIntRtn(pos, 8, 8, {8, false}, "positive");
        QCOMPARE(int(t.zeros[0]), 1);
        QCOMPARE(int(t.codes[7]), 15);
        t.zeros[0] = 0;
        WHITTLE_EXPECT_ERROR(packGptqV1(t, "positive"), UsageError, "positive", "zero point 0", "GPTQ v1");
        // Shapes the b-bit streams cannot fill, and widths GPTQ v1 has no form for.
        const std::vector<float> w48 = randomWeights(32 * 48, 3);
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w48, 32, 48, {16, false, 3}), "k48"), UsageError, "k48", "48 inputs", "multiple of 32");
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w48, 48, 32, {16, false, 3}), "n48"), UsageError, "n48", "48 outputs", "multiple of 32");
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w48, 32, 48, {16, false, 2, true}), "r48"), UsageError, "r48", "residual",
                             "multiple of 32");
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeIntRtn(w48, 32, 48, {16, true, 5}), "b5"), UsageError, "b5", "2, 3, 4 or 8 bits");
        WHITTLE_EXPECT_ERROR(quantizeIntRtn(w48, 32, 48, {16, true, 9}, "b9"), UsageError, "b9", "2 to 8 bits");
        // A g_idx that is not contiguous (act-order without static groups) is named, not misread.
        GptqTensors g = packGptqV1(quantizeIntRtn(randomWeights(8 * 16, 2), 8, 16, {8, true}), "perm");
        std::swap(g.gIdx[0], g.gIdx[15]);
        WHITTLE_EXPECT_ERROR(unpackGptqV1(g, "perm"), FormatError, "perm", "g_idx[0]", "not contiguous");
    }

    // The bundled model's attention and MLP weights: relative reconstruction error falls with the group
    // size (g32 < g64 < g128 < per channel), symmetric and asymmetric alike; g128 with f16 scales and 4-bit
    // zeros costs 4 + 20/128 = 4.156 bits per weight.
    void bundledModelErrors() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const ReferenceModel m(ck, {});
        std::vector<const WeightView*> mats;
#if defined(__SANITIZE_ADDRESS__)
        const std::size_t layers = 2;  // the sanitizers make this several times slower; two layers keep it short
#else
        const std::size_t layers = m.layers().size();
#endif
        for (std::size_t i = 0; i < layers; ++i) {
            const auto& l = m.layers()[i];
            for (const WeightView* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
                if (!v->empty()) mats.push_back(v);
        }
        QVERIFY(mats.size() >= 14);
        for (bool sym : {true, false}) {
            double previous = 0;
            for (int group : {32, 64, 128, 0}) {
                double err = 0, norm = 0, bits = 0, weights = 0;
                for (const WeightView* v : mats) {
                    std::vector<float> w(static_cast<std::size_t>(v->numel()));
                    for (std::int64_t r = 0; r < v->rows; ++r) v->row(r, &w[std::size_t(r * v->cols)]);
                    const IntTensor t = quantizeIntRtn(w, v->rows, v->cols, {group, sym}, v->name);
                    std::vector<float> deq(static_cast<std::size_t>(v->cols));
                    for (std::int64_t r = 0; r < v->rows; ++r) {
                        dequantizeIntRow(t, r, deq.data());
                        for (std::int64_t c = 0; c < v->cols; ++c) {
                            const double x = w[std::size_t(r * v->cols + c)];
                            err += (deq[std::size_t(c)] - x) * (deq[std::size_t(c)] - x);
                            norm += x * x;
                        }
                    }
                    bits += t.bitsPerWeight() * double(v->numel());
                    weights += double(v->numel());
                }
                const double rel = std::sqrt(err / norm);
                qInfo("%s g%-4d relative error %.4f, %.3f bits per weight", sym ? "sym " : "asym", group, rel, bits / weights);
                if (previous > 0) QVERIFY2(rel > previous, "a larger group must not quantize better");
                previous = rel;
                if (group == 128) QVERIFY(std::fabs(bits / weights - (4.0 + 20.0 / 128)) < 1e-9);
            }
        }
    }
};

QTEST_APPLESS_MAIN(TestQuant)
#include "tst_quant.moc"
