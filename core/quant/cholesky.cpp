#include "core/quant/cholesky.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>

namespace whittle {

namespace {

// How many pieces a width is cut into: fixed by the width alone, never by the thread count, so the result is the
// same on any pool (each piece's arithmetic depends only on its shape).
std::size_t chunksFor(std::int64_t columns, std::int64_t minWidth) { return std::size_t(std::clamp<std::int64_t>(columns / minWidth, 1, 32)); }

}  // namespace

bool invertCholeskyFactor(double* data, std::int64_t K, ThreadPool& pool, const CancelToken& cancel, std::int64_t block) {
    Eigen::Map<Eigen::MatrixXd> A(data, K, K);
    block = std::max<std::int64_t>(1, block);

    // 1. Right-looking blocked factorisation, A = L·Lᵀ with L in the lower triangle: each panel's diagonal block
    //    factorised, the rows below it solved against it, and the trailing lower triangle updated by column chunks.
    for (std::int64_t k0 = 0; k0 < K; k0 += block) {
        cancel.throwIfCancelled();
        const std::int64_t kb = std::min(block, K - k0), m = K - k0 - kb;
        const Eigen::LLT<Eigen::MatrixXd> llt(A.block(k0, k0, kb, kb));  // reads the lower triangle
        if (llt.info() != Eigen::Success) return false;
        const Eigen::MatrixXd L11 = llt.matrixL();
        if (!L11.allFinite() || (L11.diagonal().array() <= 0.0).any()) return false;
        A.block(k0, k0, kb, kb) = L11;
        if (m == 0) break;
        auto L21 = A.block(k0 + kb, k0, m, kb);
        const std::size_t rowChunks = chunksFor(m, 256);
        pool.parallelFor(rowChunks, [&](std::size_t c) {
            const std::int64_t r0 = m * std::int64_t(c) / std::int64_t(rowChunks), r1 = m * std::int64_t(c + 1) / std::int64_t(rowChunks);
            if (r1 > r0) L11.transpose().triangularView<Eigen::Upper>().solveInPlace<Eigen::OnTheRight>(L21.middleRows(r0, r1 - r0));
        });
        const std::size_t colChunks = chunksFor(m, 64);
        pool.parallelFor(colChunks, [&](std::size_t i) {
            if (cancel.cancelled()) return;
            const std::int64_t c = std::int64_t(alternateEnds(i, colChunks));
            const std::int64_t c0 = m * c / std::int64_t(colChunks), c1 = m * (c + 1) / std::int64_t(colChunks);
            if (c1 > c0)
                A.block(k0 + kb + c0, k0 + kb + c0, m - c0, c1 - c0).noalias() -= L21.middleRows(c0, m - c0) * L21.middleRows(c0, c1 - c0).transpose();
        });
    }
    cancel.throwIfCancelled();

    // 2. L⁻¹ by blocks of columns: block [c0, c1) of L⁻¹ is zero above row c0 and solves L[c0:, c0:]·Y = I[c0:, c0:c1].
    // X is fresh memory, first touched inside the blocks (its page faults are seconds at K = 12288 on some
    // machines, and cancellable there): each block zeroes its own part above the diagonal.
    Eigen::MatrixXd X(K, K);
    const std::int64_t w = std::max<std::int64_t>(1, block / 2);
    const std::size_t blocks = std::size_t((K + w - 1) / w);
    pool.parallelFor(blocks, [&](std::size_t i) {
        if (cancel.cancelled()) return;
        const std::int64_t c0 = std::int64_t(alternateEnds(i, blocks)) * w, cw = std::min(w, K - c0);
        X.block(0, c0, c0, cw).setZero();
        auto Y = X.block(c0, c0, K - c0, cw);
        Y.setZero();
        Y.topRows(cw).setIdentity();
        A.bottomRightCorner(K - c0, K - c0).triangularView<Eigen::Lower>().solveInPlace(Y);
    });
    cancel.throwIfCancelled();
    A = X;
    return true;
}

}  // namespace whittle
