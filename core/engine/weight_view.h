#pragma once
// One typed view of a stored weight: dtype, shape and the bytes where they lie (memory-mapped). Engines
// read weights only through it, one row at a time, so a new storage format (INT4 groups, NVFP4, Q8_0)
// adds a row decoder here and leaves every forward pass unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/io/dtype.h"

namespace whittle {

struct WeightView {
    DType dtype = DType::F32;
    const std::byte* data = nullptr;
    std::int64_t rows = 0, cols = 0;  // a 1-D tensor is one row
    std::string name;                 // the tensor's name, for messages

    bool empty() const { return data == nullptr; }
    std::int64_t numel() const { return rows * cols; }
    // Decodes row r into cols floats.
    void row(std::int64_t r, float* out) const;
    // Element i of the flattened tensor as a float (for vectors and scalars).
    float at(std::int64_t i) const;
};

}  // namespace whittle
