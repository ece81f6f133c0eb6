#pragma once
// GPTQ (Frantar et al. 2022, "Optimal Brain Quantization" applied column by column) for one [N, K] linear
// weight, given the Hessian of its layer-wise loss ‖W X − Q X‖² over calibration inputs X:
//   H = 2/n Σ x xᵀ.
// Columns are quantized one at a time; each column's rounding error is spread over the columns not yet
// quantized through the inverse Hessian's upper Cholesky factor, so the layer's output error, not the
// weight error, is what rounding minimises. Rows are independent (they share H only), so rows are split
// over threads and the result does not depend on the split.
//   - dead inputs (H[k,k] = 0: never active in calibration) get weight 0 and H[k,k] = 1;
//   - dampening adds damp · mean(diag H) to the diagonal; when the Cholesky factorisation (in f64) fails,
//     damp grows by `dampIncrement` and it is retried, as GPTQModel does;
//   - act-order visits columns by decreasing H[k,k] (the most active inputs first); groups stay static —
//     every group's scale and zero are fixed from the original weights before the permutation — so the
//     group of input k is k / g and the output needs no reordering (g_idx = k / g);
//   - without act-order a group's parameters are chosen when its first column is reached, from the weights
//     as updated so far (the reference algorithm);
//   - lazy batches: errors of `blockSize` columns are applied to the rest of the matrix at once.
//   - codes of 2 to 8 bits; with a binary residual (int_quant.h) each weight's sign bit is chosen after its
//     code, from the weight as updated so far, and the rounding error spread is that of code and sign together.
// The codes, scales and zeros use the conventions of int_quant.h, so the result packs as GPTQ v1.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/progress.h"
#include "core/quant/int_quant.h"
#include "core/util/thread_pool.h"

namespace whittle {

// Σ x xᵀ over the inputs seen so far (f64, full square), and how many inputs that was.
// Inputs are widened to f64 and buffered; every `batch` inputs (whatever the sizes add() was called with) the
// buffer X is added to the lower triangle as Xᵀ·X, in fixed column blocks (one GEMM each) spread over the
// pool. The sum therefore depends only on the sequence of inputs and `batch`, not on the call sizes or the
// thread count.
class Hessian {
public:
    // With `cancel`, every step that grows with dim² (zeroing the sum, each batch's GEMM, matrix()'s copy) polls
    // it between column blocks and throws CancelledError: at dim 12,288 each is seconds of work.
    explicit Hessian(std::int64_t dim, ThreadPool* pool = nullptr, int batch = 512, const CancelToken* cancel = nullptr);
    std::int64_t dim() const { return dim_; }
    std::uint64_t samples() const { return samples_; }
    // Adds T inputs of dim() values each (row-major [T, dim]).
    void add(const float* x, int T);
    // H = 2/n Σ x xᵀ, [dim, dim] row-major (buffered inputs included); polls `cancel` (else the Hessian's own).
    std::vector<double> matrix(const CancelToken* cancel = nullptr) const;

private:
    // sum(lower) += Xᵀ·X for the T buffered rows of X.
    void accumulate(std::vector<double>& sum, int T, const CancelToken* cancel) const;
    std::int64_t dim_;
    ThreadPool* pool_;
    int batch_;
    const CancelToken* cancel_;
    std::uint64_t samples_ = 0;
    std::vector<double> sum_;      // lower triangle is filled by add(); matrix() mirrors it
    std::vector<double> pending_;  // [batch, dim] row-major, the first pendingRows_ rows in use
    int pendingRows_ = 0;
};

struct GptqOptions {
    int groupSize = 128;  // 0: per channel
    bool symmetric = true;
    int bits = 4;           // 2 … 8
    bool residual = false;  // add a binary residual (the mixed budget's "INT2 + residual")
    bool actOrder = false;
    double damp = 0.01;            // fraction of mean(diag H) added to the diagonal
    double dampIncrement = 0.0025; // added to damp after a failed Cholesky, up to 1
    int blockSize = 128;           // lazy-batch width; cancel and progress are polled once per block

    // Calibration (runGptq, gptq_calibration.h). The two paths and the memory limit give identical results.
    enum class Calibration {
        Layerwise,  // each window's state is kept at the current layer boundary: L layer steps per window
        Rerun,      // each layer's inputs come from re-running the windows from the embeddings: ~L²/2 steps
    };
    Calibration calibration = Calibration::Layerwise;
    std::uint64_t calibrationMemory = 4ull << 30;  // bytes of window states kept in RAM; above, a temporary file
    std::filesystem::path scratchDir;              // that file's folder (empty: the system's temporary folder)
    int hessianBatch = 512;                        // inputs per Hessian GEMM (only the f64 rounding order depends on it)
};

struct GptqResult {
    IntTensor tensor;
    double dampUsed = 0;
    std::int64_t deadInputs = 0;
    // Σ (w − q)² / Hinv[k,k]² / 2 over all weights: GPTQ's own estimate of the added layer loss.
    double loss = 0;
};

// What a report says about one tensor GPTQ quantized.
struct GptqTensorStats {
    std::string name;
    double damp = 0;
    std::int64_t deadInputs = 0;
    double loss = 0;
    double seconds = 0;
};

// `columnsDone` is called after each block with the number of columns finished so far (of K).
// Throws UsageError naming `tensor` for mismatched sizes, and Error when damping reaches 1 and H is still
// not positive definite.
GptqResult quantizeGptq(std::span<const float> weight, std::int64_t rows, std::int64_t cols, const Hessian& hessian,
                        const GptqOptions& options, const std::string& tensor, ThreadPool& pool, const CancelToken& cancel,
                        const std::function<void(std::int64_t columnsDone)>& columnsDone = {});

}  // namespace whittle
