#include "core/io/atomic_output.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>

#include "core/error.h"
#include "core/io/file.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {
fs::path normalized(const fs::path& p) {
    std::error_code ec;
    fs::path abs = fs::weakly_canonical(fs::absolute(p, ec), ec);
    return abs.lexically_normal();
}

bool within(const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty()) continue;  // trailing slash
        if (i == inner.end() || *i != *o) return false;
    }
    return true;
}

std::string partialPrefix(const fs::path& dest) { return dest.filename().string() + ".partial-"; }
}  // namespace

int AtomicOutputDir::cleanStalePartials(const fs::path& dest) {
    const fs::path parent = normalized(dest).parent_path();
    const std::string prefix = partialPrefix(normalized(dest));
    int removed = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        const std::string rest = name.substr(prefix.size());
        const long pid = std::strtol(rest.c_str(), nullptr, 10);
        if (pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM)) continue;  // writer still alive
        fs::remove_all(e.path(), ec);
        if (!ec) ++removed;
    }
    return removed;
}

AtomicOutputDir::AtomicOutputDir(const fs::path& dest, bool force, const std::vector<fs::path>& inputs)
    : dest_(normalized(dest)), force_(force) {
    if (dest_.filename().empty()) throw UsageError(dest.string(), {}, "output path has no folder name");
    for (const auto& in : inputs) {
        const fs::path i = normalized(in);
        if (within(i, dest_))
            throw UsageError(dest.string(), {}, "output would replace the input " + in.string());
        if (within(dest_, i)) throw UsageError(dest.string(), {}, "output would be inside the input " + in.string());
    }
    std::error_code ec;
    if (fs::exists(dest_, ec) && !force_)
        throw OutputExistsError(dest.string(), {}, "output already exists");
    fs::create_directories(dest_.parent_path(), ec);
    if (ec) throw IoError(dest_.parent_path().string(), {}, "cannot create folder: " + ec.message());
    cleanStalePartials(dest_);
    std::random_device rd;
    const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
    partial_ = dest_.parent_path() / (partialPrefix(dest_) + tag);
    if (!fs::create_directory(partial_, ec) || ec)
        throw IoError(partial_.string(), {}, "cannot create temporary folder: " + ec.message());
}

AtomicOutputDir::~AtomicOutputDir() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(partial_, ec);
    }
}

void AtomicOutputDir::commit() {
    fsyncDirectory(partial_);
    std::error_code ec;
    const bool exists = fs::exists(dest_, ec);
    if (exists && !force_) throw UsageError(dest_.string(), {}, "output appeared while writing; not replaced");
    if (!exists) {
        if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, dest_.c_str(), RENAME_NOREPLACE) != 0) {
            const int err = errno;
            if (err != EINVAL && err != ENOSYS)
                throw IoError(dest_.string(), {}, "cannot move output into place: " + errnoText(err));
            if (::rename(partial_.c_str(), dest_.c_str()) != 0)
                throw IoError(dest_.string(), {}, "cannot move output into place: " + errnoText(errno));
        }
    } else {
        if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, dest_.c_str(), RENAME_EXCHANGE) != 0)
            throw IoError(dest_.string(), {}, "cannot swap output into place: " + errnoText(errno));
        fs::remove_all(partial_, ec);  // now holds the old output
    }
    committed_ = true;
    fsyncDirectory(dest_.parent_path());
}

}  // namespace whittle
