// The mixed bit budget's parts, each against an independent answer:
//   - format ids round-trip and bad ones are refused by name;
//   - the bits a format is charged equal the bytes packGptqV1 produces for it;
//   - the choice equals the brute-force optimum over every assignment when the budget is one the Lagrangian
//     sweep can meet exactly, is never above the budget, never loses to a uniform assignment that fits, and a
//     budget below the smallest formats is refused with that smallest figure;
//   - the measured sensitivity is the relative output error Σ‖ΔW x‖² / Σ‖W x‖² over the calibration inputs,
//     recomputed here in f64 from inputs collected through the reference's linear tap.
#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/io/gptq_layout.h"
#include "core/model/checkpoint.h"
#include "core/recipes/bit_budget.h"
#include "core/recipes/gptq_calibration.h"
#include "core/reference/reference_model.h"
#include "core/reference/reference_session.h"
#include "core/tokenizer/tokenizer.h"
#include "test_support.h"

using namespace whittle;
using namespace whittle::test;

namespace {

double totalError(const std::vector<TensorSensitivity>& t, const std::vector<int>& choice) {
    double e = 0;
    for (std::size_t i = 0; i < t.size(); ++i) e += t[i].error[std::size_t(choice[i])];
    return e;
}

std::uint64_t totalBits(const std::vector<TensorSensitivity>& t, const std::vector<int>& choice) {
    std::uint64_t b = 0;
    for (std::size_t i = 0; i < t.size(); ++i) b += t[i].bits[std::size_t(choice[i])];
    return b;
}

// Random tensors: sizes differ, errors fall with bits as measured ones do (roughly 4× per extra bit), with noise.
std::vector<TensorSensitivity> randomInstance(std::mt19937_64& rng, int T, int C) {
    std::uniform_real_distribution<double> u(0.5, 2.0);
    std::uniform_int_distribution<int> size(1, 9);
    std::vector<TensorSensitivity> out;
    for (int t = 0; t < T; ++t) {
        TensorSensitivity s;
        s.name = "t" + std::to_string(t);
        s.weights = std::uint64_t(size(rng)) * 4096;
        const double scale = u(rng);
        for (int c = 0; c < C; ++c) {
            const double bpw = 2.0 + 1.5 * c + 0.3 * u(rng);
            s.bits.push_back(std::uint64_t(bpw * double(s.weights)));
            s.error.push_back(scale * u(rng) * std::pow(4.0, -bpw));
            s.available.push_back(true);
        }
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace

class TestBitBudget : public QObject {
    Q_OBJECT

private slots:
    void formatIds() {
        for (const IntOptions& f : budgetCandidates()) {
            const IntOptions back = parseFormatId(formatId(f));
            QCOMPARE(back.bits, f.bits);
            QCOMPARE(back.groupSize, f.groupSize);
            QCOMPARE(back.symmetric, f.symmetric);
            QCOMPARE(back.residual, f.residual);
        }
        QCOMPARE(formatId(IntOptions{64, false, 2, true}), std::string("int2-g64-asym-res"));
        QCOMPARE(formatName(IntOptions{64, false, 2, true}), std::string("INT2 g64 asym + residual"));
        QCOMPARE(formatId(IntOptions{0, true, 8, false}), std::string("int8-perchannel"));
        QCOMPARE(parseFormatId("int8-perchannel").groupSize, 0);
        for (const char* bad : {"int5-g128", "int4", "int4-g0", "int4-gx", "int4-g128-res-asym", "int4-g128-foo", "INT4-g128", "int4-g-128"})
            WHITTLE_EXPECT_ERROR(parseFormatId(bad), UsageError, bad, "is not a format");
    }

    void storedBitsMatchThePackedTensors() {
        for (const IntOptions& f : budgetCandidates())
            for (const auto& [N, K] : {std::pair<std::int64_t, std::int64_t>{64, 256}, {32, 160}, {96, 320}}) {
                if (!gptqShapeProblem(f.bits, f.residual, N, K).empty()) continue;
                const GptqTensors g = packGptqV1(quantizeIntRtn(randomWeights(N * K, 3), N, K, f), "w");
                const std::uint64_t bytes = 4 * (g.qweight.size() + g.qzeros.size() + g.gIdx.size() + g.qresidual.size()) +
                                            2 * (g.scales.size() + g.residualScales.size());
                QCOMPARE(gptqStoredBits(f, N, K), 8 * bytes);
            }
    }

    // 8 tensors × 4 formats: 65,536 assignments, every one tried.
    void choiceIsOptimalAtLagrangianBudgets() {
        std::mt19937_64 rng(11);
        for (int trial = 0; trial < 20; ++trial) {
            const auto t = randomInstance(rng, 8, 4);
            // A budget the sweep meets exactly: the bits of some λ's choice.
            std::uniform_real_distribution<double> logLambda(-30, -5);
            const double lambda = std::pow(10.0, logLambda(rng));
            std::vector<int> atLambda;
            for (const auto& s : t) {
                int best = 0;
                for (int c = 1; c < 4; ++c)
                    if (s.error[std::size_t(c)] + lambda * double(s.bits[std::size_t(c)]) <
                        s.error[std::size_t(best)] + lambda * double(s.bits[std::size_t(best)]))
                        best = c;
                atLambda.push_back(best);
            }
            const std::uint64_t budget = totalBits(t, atLambda);
            double optimum = INFINITY;
            std::vector<int> a(8, 0);
            for (int code = 0; code < 1 << 16; ++code) {
                for (int i = 0; i < 8; ++i) a[std::size_t(i)] = (code >> (2 * i)) & 3;
                if (totalBits(t, a) <= budget) optimum = std::min(optimum, totalError(t, a));
            }
            const std::vector<int> got = chooseFormats(t, budget);
            QVERIFY(totalBits(t, got) <= budget);
            QVERIFY2(std::fabs(totalError(t, got) - optimum) <= 1e-12 * optimum,
                     qPrintable(QString("trial %1: %2 vs optimum %3").arg(trial).arg(totalError(t, got)).arg(optimum)));
        }
    }

    void choiceFitsAndBeatsUniform() {
        std::mt19937_64 rng(12);
        for (int trial = 0; trial < 50; ++trial) {
            const auto t = randomInstance(rng, 30, 6);
            std::uint64_t lo = 0, hi = 0;
            for (const auto& s : t) {
                lo += s.bits.front();
                hi += s.bits.back();
            }
            const std::uint64_t budget = lo + std::uint64_t(double(hi - lo) * (trial + 0.5) / 50.0);
            const std::vector<int> got = chooseFormats(t, budget);
            QVERIFY(totalBits(t, got) <= budget);
            for (int c = 0; c < 6; ++c) {
                const std::vector<int> uniform(t.size(), c);
                if (totalBits(t, uniform) <= budget) QVERIFY(totalError(t, got) <= totalError(t, uniform));
            }
        }
        // Unavailable formats are never chosen, however good.
        auto t = randomInstance(rng, 4, 3);
        t[1].available[2] = false;
        t[1].error[2] = 0;
        std::uint64_t all = 0;
        for (const auto& s : t) all += s.bits.back();
        QVERIFY(chooseFormats(t, all)[1] != 2);
    }

    void budgetBelowTheSmallestIsRefused() {
        std::mt19937_64 rng(13);
        const auto t = randomInstance(rng, 5, 3);
        std::uint64_t smallest = 0, weights = 0;
        for (const auto& s : t) {
            smallest += s.bits.front();
            weights += s.weights;
        }
        QCOMPARE(totalBits(t, chooseFormats(t, smallest)), smallest);
        char want[32];
        std::snprintf(want, sizeof want, "(%.3f)", double(smallest) / double(weights));
        WHITTLE_EXPECT_ERROR(chooseFormats(t, smallest - 1), UsageError, "below the smallest", static_cast<const char*>(want));
    }

    // Layer 2's q_proj and down_proj of the bundled model over two 64-token windows of held-out text.
    void sensitivityIsTheOutputError() {
        const Checkpoint ck = Checkpoint::open(bundledModelDir());
        const auto windows = calibrationWindows(Tokenizer::fromModelOrFile(ck.dir()), {ck.dir() / "heldout.txt"}, 2, 64);
        const std::vector<TensorRole> roles{TensorRole::QProj, TensorRole::DownProj};
        auto selected = [&](const ExpectedTensor& e) { return e.layer == 2 && std::find(roles.begin(), roles.end(), e.role) != roles.end(); };
        const std::vector<IntOptions> candidates{{128, true, 4, false}, {64, false, 2, false}, {64, false, 2, true}};
        NullProgress np;
        const auto measured = measureSensitivity(ck, selected, windows, candidates, GptqOptions{}, np, CancelToken{});
        QCOMPARE(measured.size(), std::size_t(2));

        const ReferenceModel model(ck, {});
        for (const TensorSensitivity& s : measured) {
            const ExpectedTensor* e = nullptr;
            for (const auto& x : ck.table())
                if (x.name == s.name) e = &x;
            QVERIFY(e && selected(*e));
            // The inputs of the tensor's site, through the tap.
            std::vector<float> inputs;
            ReferenceSession session(model, 64, 64);
            LinearTap tap;
            tap.layer = 2;
            tap.sites = {linearSite(e->role)};
            tap.observe = [&](LinearSite, const float* x, int T, int width) { inputs.insert(inputs.end(), x, x + std::size_t(T) * std::size_t(width)); };
            session.setLinearTap(tap);
            for (const auto& w : windows) {
                session.reset();
                session.forward(w);
            }
            const WeightView& view = model.linearWeight(e->role, 2);
            const std::int64_t N = view.rows, K = view.cols, T = std::int64_t(inputs.size()) / K;
            QCOMPARE(T, std::int64_t(128));
            std::vector<float> w(static_cast<std::size_t>(N * K));
            for (std::int64_t r = 0; r < N; ++r) view.row(r, &w[std::size_t(r * K)]);
            QCOMPARE(s.weights, std::uint64_t(N * K));
            for (std::size_t c = 0; c < candidates.size(); ++c) {
                const IntTensor q = quantizeIntRtn(w, N, K, candidates[c]);
                std::vector<float> deq(static_cast<std::size_t>(K));
                double err = 0, energy = 0;
                for (std::int64_t n = 0; n < N; ++n) {
                    dequantizeIntRow(q, n, deq.data());
                    for (std::int64_t t = 0; t < T; ++t) {
                        double y = 0, dy = 0;
                        for (std::int64_t k = 0; k < K; ++k) {
                            const double x = inputs[std::size_t(t * K + k)];
                            y += double(w[std::size_t(n * K + k)]) * x;
                            dy += double(w[std::size_t(n * K + k)] - deq[std::size_t(k)]) * x;
                        }
                        err += dy * dy;
                        energy += y * y;
                    }
                }
                qInfo("%s %s: measured %.6e, direct %.6e", s.name.c_str(), formatName(candidates[c]).c_str(), s.error[c], err / energy);
                QVERIFY(s.available[c]);
                QCOMPARE(s.bits[c], gptqStoredBits(candidates[c], N, K));
                QVERIFY(std::fabs(s.error[c] - err / energy) <= 1e-3 * err / energy);
            }
            QVERIFY(s.error[1] > s.error[2]);  // the residual helps
            QVERIFY(s.error[2] > s.error[0]);  // but not to 4 bits
        }
    }
};

QTEST_GUILESS_MAIN(TestBitBudget)
#include "tst_bit_budget.moc"
