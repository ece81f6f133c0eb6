#include "core/io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/error.h"

namespace whittle {

FileHandle FileHandle::openRead(const std::filesystem::path& path) {
    FileHandle f;
    f.path_ = path.string();
    f.fd_ = ::open(f.path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd_ < 0) throw IoError(f.path_, {}, "cannot open: " + errnoText(errno));
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0) throw IoError(f.path_, {}, "cannot stat: " + errnoText(errno));
    if (S_ISDIR(st.st_mode)) throw FormatError(f.path_, {}, "is a directory, expected a file");
    if (!S_ISREG(st.st_mode)) throw FormatError(f.path_, {}, "is not a regular file");
    return f;
}

FileHandle FileHandle::createWrite(const std::filesystem::path& path) {
    FileHandle f;
    f.path_ = path.string();
    f.fd_ = ::open(f.path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f.fd_ < 0) throw IoError(f.path_, {}, "cannot create: " + errnoText(errno));
    return f;
}

FileHandle::~FileHandle() {
    if (fd_ >= 0) ::close(fd_);
}

FileHandle::FileHandle(FileHandle&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }

FileHandle& FileHandle::operator=(FileHandle&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        path_ = std::move(o.path_);
        o.fd_ = -1;
    }
    return *this;
}

std::uint64_t FileHandle::size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw IoError(path_, {}, "cannot stat: " + errnoText(errno));
    return std::uint64_t(st.st_size);
}

void FileHandle::preadExact(void* dst, std::size_t n, std::uint64_t offset) const {
    auto* p = static_cast<char*>(dst);
    while (n > 0) {
        const ssize_t r = ::pread(fd_, p, n, off_t(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw IoError(path_, {}, "read failed: " + errnoText(errno));
        }
        if (r == 0) throw FormatError(path_, {}, "file is truncated (unexpected end of file)");
        p += r;
        n -= std::size_t(r);
        offset += std::uint64_t(r);
    }
}

void FileHandle::pwriteAll(const void* src, std::size_t n, std::uint64_t offset) const {
    const auto* p = static_cast<const char*>(src);
    while (n > 0) {
        const ssize_t r = ::pwrite(fd_, p, n, off_t(offset));
        if (r < 0) {
            if (errno == EINTR) continue;
            throw IoError(path_, {}, "write failed: " + errnoText(errno));
        }
        p += r;
        n -= std::size_t(r);
        offset += std::uint64_t(r);
    }
}

void FileHandle::truncate(std::uint64_t size) const {
    if (::ftruncate(fd_, off_t(size)) != 0) throw IoError(path_, {}, "cannot set size: " + errnoText(errno));
}

void FileHandle::sync() const {
    if (::fsync(fd_) != 0) throw IoError(path_, {}, "fsync failed: " + errnoText(errno));
}

void FileHandle::close() {
    if (fd_ >= 0 && ::close(fd_) != 0) {
        fd_ = -1;
        throw IoError(path_, {}, "close failed: " + errnoText(errno));
    }
    fd_ = -1;
}

std::string readTextFile(const std::filesystem::path& path, std::uint64_t maxBytes) {
    const FileHandle f = FileHandle::openRead(path);
    const std::uint64_t n = f.size();
    if (n > maxBytes)
        throw FormatError(path.string(), {}, "file is too large (" + std::to_string(n) + " bytes, limit " +
                                                 std::to_string(maxBytes) + ")");
    std::string s(n, '\0');
    f.preadExact(s.data(), n, 0);
    return s;
}

MappedRegion::MappedRegion(const FileHandle& file, std::uint64_t offset, std::uint64_t length) : length_(length) {
    if (length == 0) {
        static const std::byte empty{};
        data_ = &empty;
        return;
    }
    const std::uint64_t page = std::uint64_t(::sysconf(_SC_PAGESIZE));
    const std::uint64_t aligned = offset / page * page;
    mapLength_ = std::size_t(length + (offset - aligned));
    base_ = ::mmap(nullptr, mapLength_, PROT_READ, MAP_SHARED, file.fd(), off_t(aligned));
    if (base_ == MAP_FAILED) {
        base_ = nullptr;
        throw IoError(file.path(), {}, "mmap failed: " + errnoText(errno));
    }
    data_ = static_cast<const std::byte*>(base_) + (offset - aligned);
}

MappedRegion::~MappedRegion() {
    if (base_) ::munmap(base_, mapLength_);
}

void MappedRegion::dropPages() const {
    if (base_) ::madvise(base_, mapLength_, MADV_DONTNEED);
}

void fsyncDirectory(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw IoError(dir.string(), {}, "cannot open directory: " + errnoText(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw IoError(dir.string(), {}, "fsync failed: " + errnoText(err));
}

}  // namespace whittle
