// INT4 round-to-nearest quantization and the GPTQ v1 layout: a hand-built tensor whose packed words are
// worked out here; exact pack/unpack round trips on ragged shapes; dequantization with and without g_idx;
// the RTN error bound; refusals for shapes and zero points the format cannot express; and, on the bundled
// model's real weights, the error ordering of group sizes and the bits per weight.
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/io/gptq_layout.h"
#include "core/model/checkpoint.h"
#include "core/quant/int4.h"
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
        const Int4Tensor t = quantizeInt4Rtn(w, N, K, {16, true}, "hand");
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

    void roundTrips_data() {
        QTest::addColumn<int>("N");
        QTest::addColumn<int>("K");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("g16 sym, ragged last group") << 24 << 40 << 16 << true;
        QTest::newRow("g16 asym, ragged last group") << 24 << 40 << 16 << false;
        QTest::newRow("g128 sym") << 64 << 256 << 128 << true;
        QTest::newRow("g32 asym") << 16 << 96 << 32 << false;
        QTest::newRow("per channel sym") << 8 << 72 << 0 << true;
        QTest::newRow("g64 sym, one short group") << 8 << 24 << 64 << true;
    }
    void roundTrips() {
        QFETCH(int, N);
        QFETCH(int, K);
        QFETCH(int, group);
        QFETCH(bool, symmetric);
        const std::vector<float> w = randomWeights(std::int64_t(N) * K, std::uint64_t(N * 131 + K));
        const Int4Tensor t = quantizeInt4Rtn(w, N, K, {group, symmetric}, "w");
        QCOMPARE(t.groups(), std::int64_t((K + t.groupSize - 1) / t.groupSize));
        // RTN: every weight within half a step of its group's grid (the symmetric top code clips to 7·s), plus
        // the f16 rounding of the scale (relative 2^-11) accumulated over at most 16 steps.
        const float slack = 0.5f + 16.0f / 2048.0f;
        std::vector<float> deq(static_cast<std::size_t>(K));
        for (int n = 0; n < N; ++n) {
            dequantizeInt4Row(t, n, deq.data());
            for (int k = 0; k < K; ++k) {
                const float s = f16ToFloat(t.scales[std::size_t(n * t.groups() + k / t.groupSize)]);
                QVERIFY2(std::fabs(deq[std::size_t(k)] - w[std::size_t(n * K + k)]) <= slack * s,
                         qPrintable(QString("n %1 k %2").arg(n).arg(k)));
            }
        }
        const GptqTensors g = packGptqV1(t, "w");
        // Two threads give the same codes and words as one.
        ThreadPool pool(2);
        const Int4Tensor tp = quantizeInt4Rtn(w, N, K, {group, symmetric}, "w", &pool);
        QCOMPARE(tp.codes, t.codes);
        QCOMPARE(tp.scales, t.scales);
        QCOMPARE(packGptqV1(tp, "w", &pool).qweight, g.qweight);
        QCOMPARE(packGptqV1(tp, "w", &pool).qzeros, g.qzeros);
        const Int4Tensor back = unpackGptqV1(g, "w");
        QCOMPARE(back.codes, t.codes);
        QCOMPARE(back.scales, t.scales);
        QCOMPARE(back.zeros, t.zeros);
        QCOMPARE(back.symmetric, symmetric);
        std::vector<float> a(static_cast<std::size_t>(K)), b(static_cast<std::size_t>(K));
        for (int n = 0; n < N; ++n) {
            dequantizeInt4Row(t, n, deq.data());
            dequantizeGptqRow(g, n, a.data(), true);
            dequantizeGptqRow(g, n, b.data(), false);
            QCOMPARE(a, b);    // with and without g_idx
            QCOMPARE(a, deq);  // packed words decode to the same weights as the codes
        }
    }

    void refusals() {
        const std::vector<float> w12 = randomWeights(8 * 12, 1);
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeInt4Rtn(w12, 8, 12, {4, true}, "blk.k12"), "blk.k12"), UsageError, "blk.k12",
                             "12 inputs", "multiple of 8");
        WHITTLE_EXPECT_ERROR(packGptqV1(quantizeInt4Rtn(w12, 12, 8, {4, true}, "blk.n12"), "blk.n12"), UsageError, "blk.n12",
                             "12 outputs", "multiple of 8");
        WHITTLE_EXPECT_ERROR(quantizeInt4Rtn(w12, 8, 12, {-1, true}, "neg"), UsageError, "neg", "group size");
        WHITTLE_EXPECT_ERROR(quantizeInt4Rtn({}, 0, 12, {4, true}, "empty"), UsageError, "empty");
        // Asymmetric on an all-positive group: zero point 0, which v1 (zero − 1 in 4 bits) cannot store.
        std::vector<float> pos(8 * 8, 0.5f);
        for (std::size_t i = 0; i < pos.size(); ++i) pos[i] += 0.01f * float(i % 8);
        const Int4Tensor t = quantizeInt4Rtn(pos, 8, 8, {8, false}, "positive");
        QCOMPARE(int(t.zeros[0]), 0);
        WHITTLE_EXPECT_ERROR(packGptqV1(t, "positive"), UsageError, "positive", "zero point 0", "GPTQ v1");
        // A g_idx that is not contiguous (act-order without static groups) is named, not misread.
        GptqTensors g = packGptqV1(quantizeInt4Rtn(randomWeights(8 * 16, 2), 8, 16, {8, true}), "perm");
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
                    const Int4Tensor t = quantizeInt4Rtn(w, v->rows, v->cols, {group, sym}, v->name);
                    std::vector<float> deq(static_cast<std::size_t>(v->cols));
                    for (std::int64_t r = 0; r < v->rows; ++r) {
                        dequantizeInt4Row(t, r, deq.data());
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
