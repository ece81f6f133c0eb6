#pragma once
// An output folder that appears complete or not at all: everything is written into
// <dest>.partial-<pid>-<random>/ next to the destination, synced, then renamed onto <dest>.
// The input checkpoint is never written: a destination inside an input (or holding one) is refused.
#include <filesystem>
#include <vector>

namespace whittle {

class AtomicOutputDir {
public:
    AtomicOutputDir(const std::filesystem::path& dest, bool force,
                    const std::vector<std::filesystem::path>& inputs = {});
    ~AtomicOutputDir();  // removes the partial folder unless committed
    AtomicOutputDir(const AtomicOutputDir&) = delete;
    AtomicOutputDir& operator=(const AtomicOutputDir&) = delete;

    const std::filesystem::path& path() const { return partial_; }  // write here
    const std::filesystem::path& destination() const { return dest_; }
    void commit();

    // Removes <dest>.partial-* folders whose writing process is gone; returns how many.
    static int cleanStalePartials(const std::filesystem::path& dest);

private:
    std::filesystem::path dest_;
    std::filesystem::path partial_;
    bool force_;
    bool committed_ = false;
};

}  // namespace whittle
