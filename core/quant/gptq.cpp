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
}

Hessian::Hessian(std::int64_t dim, ThreadPool* pool, int batch)
    : dim_(dim), pool_(pool), batch_(std::max(1, batch)), sum_(std::size_t(dim * dim), 0.0) {
    if (dim <= 0) throw Error("internal: a Hessian needs a positive dimension");
}

void Hessian::add(const float* x, int T) {
    if (T <= 0) return;
    if (pending_.empty()) pending_.resize(std::size_t(batch_) * std::size_t(dim_));
    // Σ x xᵀ in f64: the inputs are widened first so that long calibration runs do not lose the small terms.
    for (int t = 0; t < T; ++t) {
        std::copy_n(x + std::size_t(t) * std::size_t(dim_), dim_, &pending_[std::size_t(pendingRows_) * std::size_t(dim_)]);
        if (++pendingRows_ == batch_) {
            accumulate(sum_, pendingRows_);
            pendingRows_ = 0;
        }
    }
    samples_ += std::uint64_t(T);
}

void Hessian::accumulate(std::vector<double>& sum, int T) const {
    using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMatD> X(pending_.data(), T, dim_);
    Eigen::Map<Eigen::MatrixXd> S(sum.data(), dim_, dim_);
    // Column block b is S[j0:, j0:j0+w] += X[:, j0:]ᵀ·X[:, j0:j0+w] (the diagonal block's upper part is written
    // too and ignored). The block width is fixed, so each element's sum is the same GEMM whatever the threads;
    // blocks b and nb−1−b form one work item so that the contiguous ranges parallelFor hands out are balanced.
    constexpr std::int64_t w = 64;
    const std::int64_t nb = (dim_ + w - 1) / w;
    auto block = [&](std::int64_t b) {
        const std::int64_t j0 = b * w, bw = std::min(w, dim_ - j0);
        S.block(j0, j0, dim_ - j0, bw).noalias() += X.middleCols(j0, dim_ - j0).transpose() * X.middleCols(j0, bw);
    };
    auto item = [&](std::size_t i) {
        block(std::int64_t(i));
        if (nb - 1 - std::int64_t(i) != std::int64_t(i)) block(nb - 1 - std::int64_t(i));
    };
    const std::size_t items = std::size_t((nb + 1) / 2);
    if (pool_)
        pool_->parallelFor(items, [&](std::size_t i) { item(i); });
    else
        for (std::size_t i = 0; i < items; ++i) item(i);
}

std::vector<double> Hessian::matrix() const {
    std::vector<double> h(sum_);
    if (pendingRows_ > 0) accumulate(h, pendingRows_);
    Eigen::Map<Eigen::MatrixXd> H(h.data(), dim_, dim_);
    const double scale = samples_ ? 2.0 / double(samples_) : 0.0;
    H = (scale * H).selfadjointView<Eigen::Lower>();
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

    std::vector<double> hv = hessian.matrix();
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
        Eigen::MatrixXd Hp(K, K);
        for (std::int64_t j = 0; j < K; ++j)
            for (std::int64_t i = 0; i < K; ++i) Hp(i, j) = H(perm[std::size_t(i)], perm[std::size_t(j)]);
        H = Hp;
    }

    // U: the upper Cholesky factor of H⁻¹ (H damped), in f64, then used in f32 like the reference. With J
    // the order-reversing permutation and J·H·J = L̃·L̃ᵀ, H = R·Rᵀ for the upper triangular R = J·L̃·J, so
    // H⁻¹ = (R⁻¹)ᵀ·R⁻¹ and U = R⁻¹ = J·L̃⁻¹·J: one factorisation and one triangular inverse, rather than
    // inverting H and factorising the inverse (half the f64 work, which dominates for wide inputs).
    const double meanDiag = H.diagonal().mean();
    RowMatF U;
    for (double damp = o.damp;; damp += o.dampIncrement) {
        if (damp >= 1.0)
            throw Error({}, tensor, "the calibration Hessian is not positive definite even with damping 1 (too few calibration tokens?)");
        Eigen::MatrixXd Hr = H.reverse();
        Hr.diagonal().array() += damp * meanDiag;
        if (!invertCholeskyFactor(Hr.data(), K, pool, cancel)) continue;  // blocked: cancel is polled, the pool shares it
        U = Hr.reverse().cast<float>().triangularView<Eigen::Upper>();
        res.dampUsed = damp;
        break;
    }

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
