#include "core/quant/gptq.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/io/dtype.h"
#include "core/quant/cholesky.h"

namespace whittle {

namespace {
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void poll(const CancelToken* cancel) {
    if (cancel) cancel->throwIfCancelled();
}

// Fills `out` (reserved, empty) with n values from `from` (null: zeros), 64 columns of a dim-wide matrix at a
// time with cancel polled: the first touch of a fresh gigabyte is page faults, seconds on some machines.
void fillInSteps(std::vector<double>& out, const double* from, std::size_t n, std::size_t dim, const CancelToken* cancel) {
    out.reserve(n);
    const std::size_t step = 64 * dim;
    for (std::size_t i = 0; i < n; i += step) {
        poll(cancel);
        const std::size_t k = std::min(step, n - i);
        if (from) out.insert(out.end(), from + i, from + i + k);
        else out.resize(out.size() + k, 0.0);
    }
}
// Runs column(b) for the nb column blocks of a lower triangle, on the pool when there is one, in alternateEnds
// order so both ends of the triangle are shared out evenly.
template <class F>
void forTriangleColumns(std::size_t nb, ThreadPool* pool, F&& column) {
    if (pool)
        pool->parallelFor(nb, [&](std::size_t i) { column(alternateEnds(i, nb)); });
    else
        for (std::size_t b = 0; b < nb; ++b) column(b);
}
}  // namespace

Hessian::Hessian(std::int64_t dim, ThreadPool* pool, int batch, const CancelToken* cancel)
    : dim_(dim), pool_(pool), batch_(std::max(1, batch)), cancel_(cancel) {
    if (dim <= 0) throw Error("internal: a Hessian needs a positive dimension");
    fillInSteps(sum_, nullptr, std::size_t(dim * dim), std::size_t(dim), cancel_);
}

void Hessian::add(const float* x, int T) {
    if (T <= 0) return;
    if (pending_.empty()) pending_.resize(std::size_t(batch_) * std::size_t(dim_));
    // Σ x xᵀ in f64: the inputs are widened first so that long calibration runs do not lose the small terms.
    for (int t = 0; t < T; ++t) {
        std::copy_n(x + std::size_t(t) * std::size_t(dim_), dim_, &pending_[std::size_t(pendingRows_) * std::size_t(dim_)]);
        if (++pendingRows_ == batch_) {
            accumulate(sum_, pendingRows_, cancel_);
            pendingRows_ = 0;
        }
    }
    samples_ += std::uint64_t(T);
}

void Hessian::accumulate(std::vector<double>& sum, int T, const CancelToken* cancel) const {
    using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMatD> X(pending_.data(), T, dim_);
    Eigen::Map<Eigen::MatrixXd> S(sum.data(), dim_, dim_);
    // Column block b is S[j0:, j0:j0+w] += X[:, j0:]ᵀ·X[:, j0:j0+w] (the diagonal block's upper part is written
    // too and ignored). The block width is fixed, so each element's sum is the same GEMM whatever the threads.
    constexpr std::int64_t w = 64;
    const std::size_t nb = std::size_t((dim_ + w - 1) / w);
    forTriangleColumns(nb, pool_, [&](std::size_t b) {
        if (cancel && cancel->cancelled()) return;
        const std::int64_t j0 = std::int64_t(b) * w, bw = std::min(w, dim_ - j0);
        S.block(j0, j0, dim_ - j0, bw).noalias() += X.middleCols(j0, dim_ - j0).transpose() * X.middleCols(j0, bw);
    });
    poll(cancel);  // a cancelled sum is partial: nothing may use it
}

std::vector<double> Hessian::matrix(const CancelToken* cancel) const {
    if (!cancel) cancel = cancel_;
    std::vector<double> h;
    fillInSteps(h, sum_.data(), sum_.size(), std::size_t(dim_), cancel);
    if (pendingRows_ > 0) accumulate(h, pendingRows_, cancel);
    Eigen::Map<Eigen::MatrixXd> H(h.data(), dim_, dim_);
    const double scale = samples_ ? 2.0 / double(samples_) : 0.0;
    // Scaled and mirrored in place, tile by tile (a whole-matrix selfAdjointView assignment walks the upper
    // triangle against the grain and took seconds at K = 12288): each column of tiles scales its lower tiles and
    // writes their transposes above the diagonal.
    constexpr std::int64_t w = 64;
    forTriangleColumns(std::size_t((dim_ + w - 1) / w), pool_, [&](std::size_t b) {
        const std::int64_t j0 = std::int64_t(b) * w, bw = std::min(w, dim_ - j0);
        for (std::int64_t i0 = j0; i0 < dim_; i0 += w) {
            const std::int64_t bh = std::min(w, dim_ - i0);
            auto lower = H.block(i0, j0, bh, bw);
            lower *= scale;
            if (i0 == j0)
                lower.triangularView<Eigen::StrictlyUpper>() = lower.transpose();
            else
                H.block(j0, i0, bw, bh) = lower.transpose();
        }
    });
    return h;
}

GptqResult quantizeGptq(std::span<const float> weight, std::int64_t N, std::int64_t K, const Hessian& hessian, const GptqOptions& o,
                        const std::string& tensor, ThreadPool& pool, const CancelToken& cancel,
                        const std::function<void(std::int64_t)>& columnsDone) {
    if (N <= 0 || K <= 0) throw UsageError({}, tensor, "cannot quantize an empty weight");
    if (std::int64_t(weight.size()) != N * K) throw Error({}, tensor, "internal: weight size does not match its shape");
    if (hessian.dim() != K)
        throw Error({}, tensor, "internal: the Hessian has dimension " + std::to_string(hessian.dim()) + " for " + std::to_string(K) + " inputs");
    if (o.groupSize < 0) throw UsageError({}, tensor, "the group size must be positive (or 0 for per channel)");
    if (o.blockSize <= 0) throw UsageError({}, tensor, "the GPTQ block size must be positive");
    if (o.bits < 2 || o.bits > 8) throw UsageError({}, tensor, "integer quantization takes 2 to 8 bits, not " + std::to_string(o.bits));

    GptqResult res;
    IntTensor& t = res.tensor;
    t.rows = N;
    t.cols = K;
    t.groupSize = o.groupSize == 0 ? int(K) : o.groupSize;
    t.symmetric = o.symmetric;
    t.bits = o.bits;
    const std::int64_t g = t.groupSize, G = t.groups();
    t.codes.assign(std::size_t(N * K), 0);
    t.scales.assign(std::size_t(N * G), 0);
    t.zeros.assign(std::size_t(N * G), 0);
    if (o.residual) {
        t.residualSigns.assign(std::size_t(N * K), 0);
        t.residualScales.assign(std::size_t(N * G), 0);
    }
    const int maxCode = (1 << o.bits) - 1;

    std::vector<double> hv = hessian.matrix(&cancel);
    Eigen::Map<Eigen::MatrixXd> H(hv.data(), K, K);
    std::vector<float> w(weight.begin(), weight.end());
    // Inputs never active in calibration carry no information: their weights cannot affect the outputs seen,
    // so they are zeroed and the diagonal set to 1 to keep H invertible.
    for (std::int64_t k = 0; k < K; ++k)
        if (H(k, k) == 0.0) {
            H(k, k) = 1.0;
            for (std::int64_t n = 0; n < N; ++n) w[std::size_t(n * K + k)] = 0.0f;
            ++res.deadInputs;
        }

    // Static groups: every group's parameters fixed from the (dead-zeroed) weights, before any permutation.
    auto groupParams = [&](std::int64_t n, std::int64_t gi, const float* row, std::int64_t k0) {
        const std::int64_t len = std::min(g, K - k0);
        const IntGroup p = intGroupParams(std::span<const float>(row + k0, std::size_t(len)), o.bits, o.symmetric, o.residual);
        t.scales[std::size_t(n * G + gi)] = p.scaleF16;
        t.zeros[std::size_t(n * G + gi)] = p.zero;
        if (o.residual) t.residualScales[std::size_t(n * G + gi)] = p.residualF16;
    };
    if (o.actOrder)
        pool.parallelFor(std::size_t(N), [&](std::size_t n) {
            for (std::int64_t gi = 0; gi < G; ++gi) groupParams(std::int64_t(n), gi, &w[n * std::size_t(K)], gi * g);
        });

    // perm[c] = the original input visited c-th.
    std::vector<std::int64_t> perm(static_cast<std::size_t>(K));
    std::iota(perm.begin(), perm.end(), 0);
    if (o.actOrder) {
        std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return H(a, a) > H(b, b); });
        std::vector<float> wp(w.size());
        pool.parallelFor(std::size_t(N), [&](std::size_t n) {
            for (std::int64_t c = 0; c < K; ++c) wp[n * std::size_t(K) + std::size_t(c)] = w[n * std::size_t(K) + std::size_t(perm[std::size_t(c)])];
        });
        w.swap(wp);
    }

    // U: the upper Cholesky factor of H⁻¹ (H permuted and damped), in f64, then used in f32 like the reference.
    // With J the order-reversing permutation and J·H·J = L̃·L̃ᵀ, H = R·Rᵀ for the upper triangular R = J·L̃·J, so
    // H⁻¹ = (R⁻¹)ᵀ·R⁻¹ and U = R⁻¹ = J·L̃⁻¹·J: one factorisation and one triangular inverse, rather than
    // inverting H and factorising the inverse (half the f64 work, which dominates for wide inputs).
    // Hr = J·P·H·Pᵀ·J is gathered straight from H, its lower triangle only (all the factorisation reads), by
    // columns on the pool with cancel polled: at K = 12288 separate permute and reverse copies took seconds.
    const double meanDiag = H.diagonal().mean();
    auto reversedPermuted = [&](Eigen::MatrixXd& Hr, double damp) {
        Hr.resize(K, K);
        const std::size_t chunks = std::size_t(std::clamp<std::int64_t>(K / 64, 1, 64));
        // Column j of the lower triangle has K − j entries: chunks are visited first, last, second, … so the
        // contiguous ranges parallelFor hands out are even.
        pool.parallelFor(chunks, [&](std::size_t i) {
            if (cancel.cancelled()) return;
            const std::size_t c = alternateEnds(i, chunks);
            const std::int64_t j0 = K * std::int64_t(c) / std::int64_t(chunks), j1 = K * std::int64_t(c + 1) / std::int64_t(chunks);
            for (std::int64_t j = j0; j < j1; ++j) {
                const double* col = &H(0, perm[std::size_t(K - 1 - j)]);
                double* out = &Hr(0, j);
                for (std::int64_t r = j; r < K; ++r) out[r] = col[perm[std::size_t(K - 1 - r)]];
                out[j] += damp * meanDiag;
            }
        });
        cancel.throwIfCancelled();
    };
    RowMatF U;
    Eigen::MatrixXd Hr;
    for (double damp = o.damp;; damp += o.dampIncrement) {
        if (damp >= 1.0)
            throw Error({}, tensor, "the calibration Hessian is not positive definite even with damping 1 (too few calibration tokens?)");
        reversedPermuted(Hr, damp);
        if (!invertCholeskyFactor(Hr.data(), K, pool, cancel)) continue;  // blocked: cancel is polled, the pool shares it
        // U(i, j) = L̃⁻¹(K−1−i, K−1−j) above the diagonal, zeros below: by rows on the pool, cancel polled (its
        // 4·K² bytes are fresh memory too).
        U.resize(K, K);
        pool.parallelFor(std::size_t(K), [&](std::size_t k) {
            if (cancel.cancelled()) return;
            const std::size_t i = alternateEnds(k, std::size_t(K));  // long and short rows alternate
            float* row = &U(std::int64_t(i), 0);
            std::fill(row, row + i, 0.0f);
            for (std::int64_t j = std::int64_t(i); j < K; ++j) row[j] = float(Hr(K - 1 - std::int64_t(i), K - 1 - j));
        });
        cancel.throwIfCancelled();
        res.dampUsed = damp;
        break;
    }
    Hr.resize(0, 0);

    Eigen::Map<RowMatF> W(w.data(), N, K);
    const int chunks = int(std::min<std::int64_t>(N, pool.size()));
    std::vector<double> chunkLoss(static_cast<std::size_t>(chunks), 0.0);
    std::vector<RowMatF> errs(static_cast<std::size_t>(chunks));
    for (std::int64_t i1 = 0; i1 < K; i1 += o.blockSize) {
        cancel.throwIfCancelled();
        const std::int64_t i2 = std::min<std::int64_t>(K, i1 + o.blockSize), B = i2 - i1;
        pool.parallelFor(std::size_t(chunks), [&](std::size_t ci) {
            const std::int64_t r0 = N * std::int64_t(ci) / chunks, r1 = N * std::int64_t(ci + 1) / chunks, nr = r1 - r0;
            auto Wc = W.middleRows(r0, nr);
            RowMatF& err = errs[ci];
            err.resize(nr, B);
            double loss = 0;
            for (std::int64_t col = i1; col < i2; ++col) {
                const std::int64_t orig = perm[std::size_t(col)], gi = orig / g;
                const float d = U(col, col);
                for (std::int64_t r = 0; r < nr; ++r) {
                    const std::int64_t n = r0 + r;
                    // Without act-order columns arrive in order: a group's parameters come from its weights as updated so far.
                    if (!o.actOrder && col % g == 0) groupParams(n, gi, &Wc(r, 0), col);
                    const std::size_t gIndex = std::size_t(n * G + gi);
                    const IntGroup p{t.scales[gIndex], t.zeros[gIndex], maxCode, o.residual ? t.residualScales[gIndex] : std::uint16_t(0)};
                    const float x = Wc(r, col);
                    const std::uint8_t q = p.quantize(x);
                    t.codes[std::size_t(n * K + orig)] = q;
                    float deq = p.dequantize(q);
                    if (o.residual) {
                        const bool up = x >= deq;
                        t.residualSigns[std::size_t(n * K + orig)] = up ? 1 : 0;
                        deq += (up ? 1.0f : -1.0f) * f16ToFloat(p.residualF16);
                    }
                    const float e = (x - deq) / d;
                    err(r, col - i1) = e;
                    loss += double(x - deq) * double(x - deq) / (double(d) * double(d)) / 2.0;
                }
                const std::int64_t rest = i2 - col - 1;
                if (rest > 0) Wc.block(0, col + 1, nr, rest).noalias() -= err.col(col - i1) * U.row(col).segment(col + 1, rest);
            }
            if (i2 < K) Wc.rightCols(K - i2).noalias() -= err * U.block(i1, i2, B, K - i2);
            chunkLoss[ci] += loss;
        });
        if (columnsDone) columnsDone(i2);
    }
    for (double l : chunkLoss) res.loss += l;
    return res;
}

}  // namespace whittle
