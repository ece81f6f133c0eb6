#pragma once
// Thin RAII wrappers over POSIX files: every failure becomes an IoError naming the path.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace whittle {

class FileHandle {
public:
    FileHandle() = default;
    static FileHandle openRead(const std::filesystem::path& path);
    static FileHandle createWrite(const std::filesystem::path& path);  // O_EXCL: never clobbers
    ~FileHandle();
    FileHandle(FileHandle&& o) noexcept;
    FileHandle& operator=(FileHandle&& o) noexcept;
    FileHandle(const FileHandle&) = delete;
    FileHandle& operator=(const FileHandle&) = delete;

    int fd() const { return fd_; }
    const std::string& path() const { return path_; }
    std::uint64_t size() const;

    // Reads exactly n bytes at offset; a short file is a FormatError ("truncated").
    void preadExact(void* dst, std::size_t n, std::uint64_t offset) const;
    void pwriteAll(const void* src, std::size_t n, std::uint64_t offset) const;
    void truncate(std::uint64_t size) const;
    void sync() const;
    void close();

private:
    int fd_ = -1;
    std::string path_;
};

// Reads a small text file (JSON, templates) whole, refusing anything larger than maxBytes.
std::string readTextFile(const std::filesystem::path& path, std::uint64_t maxBytes = 64ull << 20);

// A read-only, page-aligned mapping of [offset, offset+length) of a file.
class MappedRegion {
public:
    MappedRegion(const FileHandle& file, std::uint64_t offset, std::uint64_t length);
    ~MappedRegion();
    MappedRegion(const MappedRegion&) = delete;
    MappedRegion& operator=(const MappedRegion&) = delete;

    const std::byte* data() const { return data_; }
    std::uint64_t size() const { return length_; }
    // Tells the kernel the pages may be dropped (streaming stages call this after each tensor).
    void dropPages() const;

private:
    void* base_ = nullptr;
    std::size_t mapLength_ = 0;
    const std::byte* data_ = nullptr;
    std::uint64_t length_ = 0;
};

void fsyncDirectory(const std::filesystem::path& dir);

}  // namespace whittle
