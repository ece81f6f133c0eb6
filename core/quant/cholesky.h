#pragma once
// The inverse of a symmetric positive definite matrix's Cholesky factor — the one step of GPTQ whose cost grows
// as K³ (K: the linear's input width; 12,288 for E2B's double-wide down_proj, where an unblocked f64
// factorisation and a dense triangular inverse took minutes with no way to stop them). Blocked, in panels of
// `block` columns: the factorisation polls cancel before each panel and spreads its trailing update over the
// pool; the inverse solves one block of columns at a time, skipping the zeros above the diagonal (a third of
// the dense solve's work), the blocks on the pool, cancel polled between blocks.
#include <cstdint>

#include "core/progress.h"
#include "core/util/thread_pool.h"

namespace whittle {

// a: K×K, column-major, symmetric positive definite (its lower triangle is read). On success it holds L⁻¹, lower
// triangular (zeros above the diagonal), where a = L·Lᵀ, and true is returned; false when a is not positive
// definite (a pivot ≤ 0 or not finite; a is then unspecified). Throws CancelledError.
bool invertCholeskyFactor(double* a, std::int64_t K, ThreadPool& pool, const CancelToken& cancel, std::int64_t block = 128);

}  // namespace whittle
