// GPTQ on small synthetic layers, checked against what the algorithm must do:
//   - the Hessian is 2/n Σ x xᵀ (against a direct sum);
//   - with an identity Hessian no error is propagated, so GPTQ equals round-to-nearest code for code
//     (with and without act-order, symmetric and asymmetric, grouped and per channel);
//   - on correlated inputs GPTQ's output error ‖(W − Q) X‖ is well below RTN's, act-order too;
//   - act-order keeps static groups: every scale and zero equals RTN's on the original weights, and the
//     packed g_idx is k / g; dead inputs get weight 0; a singular Hessian is retried with more damping;
//   - the Hessian's sum does not depend on how inputs are handed to it or on the threads;
//   - layer-by-layer calibration (states in RAM or in a file) packs every linear of a tiny E2B exactly as
//     re-running the windows for each layer does;
//   - the blocked inverse of the Cholesky factor equals a textbook one, on any pool;
//   - cancel stops it; calibration windows are cut from the end of the text, BOS first.
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fixtures/tiny_checkpoint.h"
#include "core/model/checkpoint.h"
#include "core/io/gptq_layout.h"
#include "core/quant/cholesky.h"
#include "core/quant/gptq.h"
#include "core/quant/int_quant.h"
#include "core/recipes/gptq_calibration.h"
#include "core/tokenizer/tokenizer.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

namespace {


// Inputs with strongly correlated features (x = A z, A random) and uneven scales, as real activations are.
std::vector<float> correlatedInputs(int T, std::int64_t K, std::uint64_t seed) {
    const std::int64_t Z = K / 4;
    const std::vector<float> a = randomWeights(K * Z, seed, 1.0f), z = randomWeights(T * Z, seed + 1, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(T * K), 0.0f);
    for (int t = 0; t < T; ++t)
        for (std::int64_t k = 0; k < K; ++k) {
            float s = 0;
            for (std::int64_t j = 0; j < Z; ++j) s += a[std::size_t(k * Z + j)] * z[std::size_t(t * Z + j)];
            x[std::size_t(t * K + k)] = s * (1.0f + float(k % 7));
        }
    return x;
}

// ‖(W − deq(Q)) xᵀ‖² summed over the inputs: the layer's output error.
double outputError(const std::vector<float>& w, const IntTensor& q, const std::vector<float>& x, int T) {
    const std::int64_t N = q.rows, K = q.cols;
    std::vector<float> row(static_cast<std::size_t>(K));
    double err = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        dequantizeIntRow(q, n, row.data());
        for (int t = 0; t < T; ++t) {
            double d = 0;
            for (std::int64_t k = 0; k < K; ++k) d += double(w[std::size_t(n * K + k)] - row[std::size_t(k)]) * x[std::size_t(t * K + k)];
            err += d * d;
        }
    }
    return err;
}

GptqResult runGptq1(const std::vector<float>& w, std::int64_t N, std::int64_t K, const Hessian& h, const GptqOptions& o) {
    ThreadPool pool(2);
    return quantizeGptq(w, N, K, h, o, "test.weight", pool, CancelToken{});
}

}  // namespace

class TestGptq : public QObject {
    Q_OBJECT

private slots:
    void hessianIsTwiceTheMeanOuterProduct() {
        const std::int64_t K = 12;
        const int T = 37;
        const std::vector<float> x = randomWeights(T * K, 3, 1.0f);
        Hessian h(K);
        h.add(x.data(), 20);
        h.add(x.data() + 20 * K, T - 20);
        QCOMPARE(h.samples(), std::uint64_t(T));
        const std::vector<double> m = h.matrix();
        double worst = 0;
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j < K; ++j) {
                double s = 0;
                for (int t = 0; t < T; ++t) s += double(x[std::size_t(t * K + i)]) * double(x[std::size_t(t * K + j)]);
                worst = std::max(worst, std::fabs(m[std::size_t(i * K + j)] - 2.0 * s / T) / (1.0 + std::fabs(s)));
            }
        QVERIFY2(worst < 1e-12, qPrintable(QString::number(worst)));
    }

    // The buffered, blocked accumulation: the same bits whatever the add() sizes and the thread count.
    void hessianIndependentOfCallsAndThreads() {
        const std::int64_t K = 200;  // not a multiple of the 64-column blocks
        const int T = 300;
        const std::vector<float> x = correlatedInputs(T, K, 11);
        Hessian whole(K, nullptr, 128);
        whole.add(x.data(), T);
        ThreadPool pool(3);
        Hessian pieces(K, &pool, 128);
        for (int t = 0, n = 1; t < T; t += n, n = n * 2 + 1) pieces.add(x.data() + std::size_t(t) * std::size_t(K), std::min(n, T - t));
        QCOMPARE(pieces.samples(), std::uint64_t(T));
        QVERIFY(whole.matrix() == pieces.matrix());
    }

    // The layer-by-layer calibration (states in RAM, and spilled to a file) against re-running every window
    // from the embeddings for each layer: every linear of a tiny E2B (the PLE model projection, KV-shared
    // layers, windows longer than a chunk and than the sliding window) packs to the same bytes, with the same
    // GPTQ loss, so every site saw the same inputs.
    void layerwiseCalibrationEqualsRerun() {
        QTemporaryDir dir;
        const std::filesystem::path root(dir.path().toStdString());
        NullProgress np;
        makeTinyCheckpoint(root / "mini", TinyCheckpointOptions{}, np, CancelToken{});
        const Checkpoint ck = Checkpoint::open(root / "mini");
        std::mt19937_64 rng(5);
        std::uniform_int_distribution<int> tok(3, 4000);
        std::vector<std::vector<int>> windows;
        for (std::size_t len : {70, 131, 40}) {
            std::vector<int> w{2};
            while (w.size() < len) w.push_back(tok(rng));
            windows.push_back(std::move(w));
        }
        auto run = [&](GptqOptions::Calibration path, std::uint64_t memory) {
            GptqOptions o;
            o.groupSize = 32;
            o.actOrder = true;
            o.calibration = path;
            o.calibrationMemory = memory;
            o.scratchDir = root;
            return runGptq(ck, [](const ExpectedTensor&) { return true; }, windows, o, np, CancelToken{});
        };
        const GptqRun rerun = run(GptqOptions::Calibration::Rerun, 1ull << 30);
        const GptqRun inRam = run(GptqOptions::Calibration::Layerwise, 1ull << 30);
        const GptqRun onDisk = run(GptqOptions::Calibration::Layerwise, 0);
        QVERIFY(rerun.packed.count("model.language_model.per_layer_model_projection.weight"));
        QVERIFY(rerun.packed.size() > 50);
        for (const GptqRun* r : {&inRam, &onDisk}) {
            QCOMPARE(r->packed.size(), rerun.packed.size());
            QCOMPARE(r->stats.size(), rerun.stats.size());
            for (std::size_t i = 0; i < rerun.stats.size(); ++i) {
                QCOMPARE(r->stats[i].name, rerun.stats[i].name);
                QVERIFY2(r->stats[i].loss == rerun.stats[i].loss, rerun.stats[i].name.c_str());
            }
            for (const auto& [name, g] : rerun.packed) {
                const GptqTensors& o = r->packed.at(name);
                QVERIFY2(o.qweight == g.qweight && o.qzeros == g.qzeros && o.scales == g.scales && o.gIdx == g.gIdx, name.c_str());
            }
        }
        for (const auto& e : std::filesystem::directory_iterator(root)) QVERIFY2(e.path().extension() != ".states", "state file left behind");
    }

    // H = (2/K)·I: the inverse's Cholesky factor is diagonal, so no column's error moves another column.
    // Also for the bit budget's other widths (2, 3, 8 bits) and the binary residual: the residual's signs too.
    void identityHessianEqualsRtn_data() {
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("symmetric");
        QTest::addColumn<bool>("actOrder");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("residual");
        for (int g : {32, 0})
            for (bool sym : {true, false})
                for (bool act : {false, true})
                    QTest::addRow("g%d %s %s", g, sym ? "sym" : "asym", act ? "act-order" : "in order") << g << sym << act << 4 << false;
        QTest::addRow("2-bit g32 asym") << 32 << false << false << 2 << false;
        QTest::addRow("3-bit g32 asym act-order") << 32 << false << true << 3 << false;
        QTest::addRow("8-bit per channel sym") << 0 << true << false << 8 << false;
        QTest::addRow("2-bit g32 asym + residual") << 32 << false << false << 2 << true;
        QTest::addRow("2-bit g32 asym + residual act-order") << 32 << false << true << 2 << true;
    }
    void identityHessianEqualsRtn() {
        QFETCH(int, group);
        QFETCH(bool, symmetric);
        QFETCH(bool, actOrder);
        QFETCH(int, bits);
        QFETCH(bool, residual);
        const std::int64_t N = 16, K = 96;
        const std::vector<float> w = randomWeights(N * K, 5, 0.02f);
        std::vector<float> eye(static_cast<std::size_t>(K * K), 0.0f);
        for (std::int64_t k = 0; k < K; ++k) eye[std::size_t(k * K + k)] = 1.0f;
        Hessian h(K);
        h.add(eye.data(), int(K));
        GptqOptions o;
        o.groupSize = group;
        o.symmetric = symmetric;
        o.actOrder = actOrder;
        o.bits = bits;
        o.residual = residual;
        o.blockSize = 40;  // blocks that do not line up with groups
        const GptqResult g = runGptq1(w, N, K, h, o);
        const IntTensor r = quantizeIntRtn(w, N, K, {group, symmetric, bits, residual});
        QCOMPARE(g.tensor.bits, bits);
        QCOMPARE(g.tensor.codes, r.codes);
        QCOMPARE(g.tensor.scales, r.scales);
        QCOMPARE(g.tensor.zeros, r.zeros);
        QCOMPARE(g.tensor.residualSigns, r.residualSigns);
        QCOMPARE(g.tensor.residualScales, r.residualScales);
        QCOMPARE(g.dampUsed, 0.01);
    }

    // The point of GPTQ: the layer's outputs, not its weights, are what rounding preserves.
    void beatsRtnOnOutputError() {
        const std::int64_t N = 32, K = 128;
        const int T = 512;
        const std::vector<float> w = randomWeights(N * K, 7, 0.02f), x = correlatedInputs(T, K, 11);
        Hessian h(K);
        h.add(x.data(), T);
        GptqOptions o;
        o.groupSize = 32;
        const double rtn = outputError(w, quantizeIntRtn(w, N, K, {32, true}), x, T);
        const double gptq = outputError(w, runGptq1(w, N, K, h, o).tensor, x, T);
        o.actOrder = true;
        const double act = outputError(w, runGptq1(w, N, K, h, o).tensor, x, T);
        qInfo("output error: RTN %.4g, GPTQ %.4g (%.2fx), GPTQ act-order %.4g (%.2fx)", rtn, gptq, rtn / gptq, act, rtn / act);
        QVERIFY(gptq < 0.7 * rtn);
        QVERIFY(act < 0.7 * rtn);
        // The same for 3 bits and for 2 bits with the binary residual, whose signs are chosen column by column.
        for (const IntOptions f : {IntOptions{32, false, 3, false}, IntOptions{32, false, 2, true}}) {
            GptqOptions of;
            of.groupSize = f.groupSize;
            of.symmetric = f.symmetric;
            of.bits = f.bits;
            of.residual = f.residual;
            const double r = outputError(w, quantizeIntRtn(w, N, K, f), x, T), gq = outputError(w, runGptq1(w, N, K, h, of).tensor, x, T);
            qInfo("%d bits%s: RTN %.4g, GPTQ %.4g (%.2fx)", f.bits, f.residual ? " + residual" : "", r, gq, r / gq);
            QVERIFY(gq < 0.7 * r);
        }
    }

    // Static groups: parameters from the original weights, so act-order changes codes, never the layout.
    void actOrderKeepsStaticGroups() {
        const std::int64_t N = 16, K = 128;
        const int T = 256;
        const std::vector<float> w = randomWeights(N * K, 13, 0.02f), x = correlatedInputs(T, K, 17);
        Hessian h(K);
        h.add(x.data(), T);
        GptqOptions o;
        o.groupSize = 32;
        o.actOrder = true;
        const GptqResult g = runGptq1(w, N, K, h, o);
        const IntTensor r = quantizeIntRtn(w, N, K, {32, true});
        QCOMPARE(g.tensor.scales, r.scales);
        QCOMPARE(g.tensor.zeros, r.zeros);
        QVERIFY(g.tensor.codes != r.codes);  // the error was propagated
        const GptqTensors packed = packGptqV1(g.tensor, "test.weight");
        for (std::int64_t k = 0; k < K; ++k) QCOMPARE(packed.gIdx[std::size_t(k)], std::int32_t(k / 32));
        const IntTensor back = unpackGptqV1(packed, "test.weight");
        QCOMPARE(back.codes, g.tensor.codes);
    }

    // An input that is zero in every calibration token: its weights are set to 0 (code 8 decodes to 0).
    void deadInputsGetZeroWeight() {
        const std::int64_t N = 8, K = 64;
        const int T = 128;
        std::vector<float> x = correlatedInputs(T, K, 19);
        for (int t = 0; t < T; ++t) x[std::size_t(t * K + 5)] = 0.0f;
        Hessian h(K);
        h.add(x.data(), T);
        const std::vector<float> w = randomWeights(N * K, 23, 0.5f);
        const GptqResult g = runGptq1(w, N, K, h, GptqOptions{});
        QCOMPARE(g.deadInputs, std::int64_t(1));
        std::vector<float> row(static_cast<std::size_t>(K));
        for (std::int64_t n = 0; n < N; ++n) {
            dequantizeIntRow(g.tensor, n, row.data());
            QCOMPARE(row[5], 0.0f);
        }
    }

    // Eight identical inputs: H has rank 1, so with no damping its Cholesky factorisation fails and the
    // retry adds damping until it succeeds.
    void singularHessianIsRetriedWithMoreDamping() {
        const std::int64_t N = 8, K = 8;
        std::vector<float> x(static_cast<std::size_t>(16 * K));
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(1 + (i / std::size_t(K)) % 3);
        Hessian h(K);
        h.add(x.data(), 16);
        GptqOptions o;
        o.damp = 0;
        o.groupSize = 0;
        const GptqResult g = runGptq1(randomWeights(N * K, 29, 1.0f), N, K, h, o);
        qInfo("damp used: %g", g.dampUsed);
        QVERIFY(g.dampUsed > 0);
        QVERIFY(g.dampUsed < 0.05);
    }

    void cancelStops() {
        const std::int64_t N = 8, K = 64;
        Hessian h(K);
        const std::vector<float> x = correlatedInputs(64, K, 31);
        h.add(x.data(), 64);
        ThreadPool pool(1);
        CancelToken cancel;
        cancel.cancel();
        QVERIFY_THROWS_EXCEPTION(CancelledError,
                                 quantizeGptq(randomWeights(N * K, 37, 1.0f), N, K, h, GptqOptions{}, "t", pool, cancel));
        QVERIFY_THROWS_EXCEPTION(Error, quantizeGptq(randomWeights(N * K, 37, 1.0f), N, K + 8, h, GptqOptions{}, "t", pool, CancelToken{}));
    }

    // The blocked Cholesky-factor inverse against a textbook one (Cholesky–Banachiewicz, then forward
    // substitution, in this test): K = 300 in panels of 64 (the last one partial) on 1 and 3 threads —
    // max|Δ| / max|reference| < 1e-12, the same bits on both pools (the upper triangle never read), zeros above
    // the diagonal; a matrix with a
    // negative eigenvalue is refused; a cancelled token stops it.
    void choleskyFactorInverse() {
        const std::int64_t K = 300;
        std::mt19937 rng(5);
        std::normal_distribution<double> d(0.0, 1.0);
        std::vector<double> m(std::size_t(K * K)), a(std::size_t(K * K));
        for (double& v : m) v = d(rng);
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j < K; ++j) {
                double s = i == j ? double(K) : 0.0;
                for (std::int64_t k = 0; k < K; ++k) s += m[std::size_t(i * K + k)] * m[std::size_t(j * K + k)];
                a[std::size_t(j * K + i)] = s;
            }
        // Reference: L (row-major here), then L⁻¹ column by column.
        std::vector<double> L(std::size_t(K * K), 0.0), inv(std::size_t(K * K), 0.0);
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j <= i; ++j) {
                double s = a[std::size_t(j * K + i)];
                for (std::int64_t k = 0; k < j; ++k) s -= L[std::size_t(i * K + k)] * L[std::size_t(j * K + k)];
                L[std::size_t(i * K + j)] = i == j ? std::sqrt(s) : s / L[std::size_t(j * K + j)];
            }
        for (std::int64_t c = 0; c < K; ++c)
            for (std::int64_t i = c; i < K; ++i) {
                double s = i == c ? 1.0 : 0.0;
                for (std::int64_t k = c; k < i; ++k) s -= L[std::size_t(i * K + k)] * inv[std::size_t(k * K + c)];
                inv[std::size_t(i * K + c)] = s / L[std::size_t(i * K + i)];
            }
        double maxRef = 0, maxDiff = 0;
        std::vector<double> one = a, three = a;
        // Only the lower triangle is read: the upper one of `three` is NaN.
        for (std::int64_t j = 1; j < K; ++j)
            for (std::int64_t i = 0; i < j; ++i) three[std::size_t(j * K + i)] = std::nan("");
        ThreadPool p1(1), p3(3);
        QVERIFY(invertCholeskyFactor(one.data(), K, p1, CancelToken{}, 64));
        QVERIFY(invertCholeskyFactor(three.data(), K, p3, CancelToken{}, 64));
        QVERIFY(one == three);
        for (std::int64_t i = 0; i < K; ++i)
            for (std::int64_t j = 0; j < K; ++j) {
                const double got = one[std::size_t(j * K + i)], ref = inv[std::size_t(i * K + j)];
                if (j > i) QCOMPARE(got, 0.0);
                maxRef = std::max(maxRef, std::abs(ref));
                maxDiff = std::max(maxDiff, std::abs(got - ref));
            }
        qInfo("max|Δ| / max|ref| = %.3g", maxDiff / maxRef);
        QVERIFY(maxDiff / maxRef < 1e-12);

        std::vector<double> indefinite = a;
        indefinite[std::size_t(150 * K + 150)] = -1.0;
        for (std::int64_t k = 0; k < K; ++k)
            if (k != 150) indefinite[std::size_t(150 * K + k)] = indefinite[std::size_t(k * K + 150)] = 0.0;
        QVERIFY(!invertCholeskyFactor(indefinite.data(), K, p1, CancelToken{}, 64));
        CancelToken cancelled;
        cancelled.cancel();
        std::vector<double> c = a;
        QVERIFY_THROWS_EXCEPTION(CancelledError, invertCholeskyFactor(c.data(), K, p1, cancelled, 64));
    }

    void calibrationWindowsFromTheEnd() {
        QTemporaryDir dir;
        const Tokenizer tok = Tokenizer::fromModelOrFile(std::filesystem::path(WHITTLE_SOURCE_DIR) / "resources/tokenizers/tiny-tokenizer");
        std::string text;
        for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + " of the calibration text.\n";
        const auto file = tempPath(dir, "calib.txt");
        writeBytes(file, text);
        EncodeOptions eo;
        eo.addSpecialTokens = false;
        const std::vector<int> ids = tok.encode(text + "\n", eo);
        const auto windows = calibrationWindows(tok, {file}, 3, 17);
        QCOMPARE(int(windows.size()), 3);
        for (std::size_t w = 0; w < 3; ++w) {
            QCOMPARE(int(windows[w].size()), 17);
            QCOMPARE(windows[w][0], *tok.bosId());
            const std::size_t start = ids.size() - (3 - w) * 16;
            QVERIFY(std::equal(windows[w].begin() + 1, windows[w].end(), ids.begin() + std::ptrdiff_t(start)));
        }
        QCOMPARE(calibrationWindows(tok, {file}, 1000000, 17).size(), ids.size() / 16);  // as many as fit
        writeBytes(file, "short");
        try {
            calibrationWindows(tok, {file}, 4, 2048);
            QFAIL("a text shorter than one window was accepted");
        } catch (const UsageError& e) {
            QVERIFY2(std::string(e.what()).find("calib.txt") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("fewer than one calibration window") != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestGptq)
#include "tst_gptq.moc"
