#pragma once
// One typed view of a stored weight: dtype, shape and the bytes where they lie (memory-mapped). Engines
// read weights only through it, one row at a time, so a new storage format (INT4 groups, NVFP4, Q8_0)
// adds a row decoder here and leaves every forward pass unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/io/dtype.h"

namespace whittle {

enum class WeightFormat {
    Dense,     // dtype elements, row-major [rows, cols]
    GptqInt,  // GPTQ v1, 2/3/4/8 bits, optional binary residual (core/io/gptq_layout.h): rows = N outputs, cols = K inputs
    // GGUF blocks as llama.cpp stores them, each row its cols/block blocks (core/quant/ggml_blocks.h, nvfp4.h)
    GgufQ8_0,
    GgufQ4_0,
    // NVFP4 as ModelOpt and compressed-tensors store it (core/quant/nvfp4.h): data = U8 codes [rows, cols/2],
    // nvfp4BlockScales = E4M3 [rows, cols/16], times nvfp4Scale (compressed-tensors' reciprocal already undone)
    Nvfp4,
    GgufNvfp4,  // block_nvfp4 times nvfp4Scale (the tensor's `.scale`, which llama.cpp multiplies in after the matmul)
};

// Bytes of one stored row of `cols` values in a block format (0 for Dense and GptqInt, which are not row blocks).
std::size_t weightRowBytes(WeightFormat f, std::int64_t cols);

struct WeightView {
    WeightFormat format = WeightFormat::Dense;
    DType dtype = DType::F32;         // Dense: the element type
    const std::byte* data = nullptr;  // Dense: the elements; GptqInt: qweight
    std::int64_t rows = 0, cols = 0;  // a 1-D tensor is one row
    std::string name;                 // the tensor's name, for messages
    struct Gptq {
        const std::byte* qzeros = nullptr;          // I32 [groups, rows·bits/32]
        const std::byte* scales = nullptr;          // F16 [groups, rows]
        const std::byte* gIdx = nullptr;            // I32 [cols]
        std::int64_t groups = 0;
        int bits = 4;
        const std::byte* qresidual = nullptr;       // I32 [cols/32, rows], or null
        const std::byte* residualScales = nullptr;  // F16 [groups, rows], or null
    } gptq;
    float nvfp4Scale = 1.0f;                      // Nvfp4, GgufNvfp4: the per-tensor global scale
    // How a matmul rounds its input before this weight: what llama.cpp's CPU backend does (each weight type's
    // vec_dot_type: Q8_0 blocks of the activations for Q8_0/Q4_0/NVFP4 weights, F16 for F16 weights). Set only
    // on a GGUF bound with ReferenceOptions::emulateGgmlActivations, to show what separates the two engines;
    // inputs are otherwise used in f32.
    enum class InputRounding { None, F16, Q8_0 } inputRounding = InputRounding::None;
    const std::byte* nvfp4BlockScales = nullptr;  // Nvfp4: E4M3 [rows, cols/16]

    bool empty() const { return data == nullptr; }
    std::int64_t numel() const { return rows * cols; }
    // Decodes row r into cols floats.
    void row(std::int64_t r, float* out) const;
    // Element i of the flattened tensor as a float (for vectors and scalars; Dense only).
    float at(std::int64_t i) const;
};

}  // namespace whittle
