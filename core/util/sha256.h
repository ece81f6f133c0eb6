#pragma once
// SHA-256 (FIPS 180-4), streaming, for the input hashes a run records in whittle.json (so a variant names
// exactly which files it was made from). Portable C++, no dependency.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/progress.h"

namespace whittle {

class Sha256 {
public:
    Sha256();
    void update(const void* data, std::size_t n);
    std::array<std::uint8_t, 32> digest();  // ends the stream
    std::string hex();                      // digest() as 64 lowercase hex digits

private:
    void block(const std::uint8_t* p);
    std::array<std::uint32_t, 8> h_;
    std::array<std::uint8_t, 64> buf_{};
    std::size_t used_ = 0;
    std::uint64_t length_ = 0;
};

// The hex SHA-256 of a file's bytes; `cancel` is polled every 8 MiB.
std::string sha256File(const std::filesystem::path& file, const CancelToken& cancel);

}  // namespace whittle
