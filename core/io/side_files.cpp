#include "core/io/side_files.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/io/file.h"
#include "core/io/safetensors_reader.h"
#include "core/io/safetensors_writer.h"
#include "core/progress.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

void copyTensorBytes(const TensorSource& file, const TensorInfo& info, SafetensorsWriter& writer, std::vector<char>& buf, StageMeter& meter,
                     const CancelToken& cancel, const std::string& as) {
    const std::string& name = as.empty() ? info.name : as;
    constexpr std::uint64_t kChunk = 4u << 20;
    if (buf.size() < kChunk) buf.resize(kChunk);
    for (std::uint64_t off = 0; off < info.nbytes; off += kChunk) {
        cancel.throwIfCancelled();
        const std::uint64_t n = std::min(kChunk, info.nbytes - off);
        file.read(info, buf.data(), off, n);
        writer.write(name, buf.data(), n);
        meter.advance(n);
    }
}

bool isTensorOrReportFile(const std::string& name) {
    return fs::path(name).extension() == ".safetensors" || name == files::kSafetensorsIndex || name == files::kWhittleReport;
}

Json SideFile::json(std::uint64_t maxBytes) const {
    if (text) return parseJson(*text, from.string());
    return readJsonFile(from, maxBytes);
}

std::string SideFile::contents(std::uint64_t maxBytes) const {
    if (text) return *text;
    return readTextFile(from, maxBytes);
}

std::vector<SideFile> listSideFiles(const fs::path& dir) {
    std::vector<SideFile> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && !isTensorOrReportFile(name)) out.push_back(SideFile{name, e.path(), std::nullopt});
    }
    std::sort(out.begin(), out.end(), [](const SideFile& a, const SideFile& b) { return a.name < b.name; });
    return out;
}

void writeSideFile(const SideFile& f, const fs::path& dir) {
    if (f.text)
        writeTextFile(dir / f.name, *f.text);
    else
        copyFileBytes(f.from, dir / f.name);
}

std::string jsonFileText(const Json& j) { return j.dump(2) + "\n"; }

void copySideFiles(const std::vector<SideFile>& files, const fs::path& dst, const std::function<bool(const SideFile&)>& rewrite) {
    for (const SideFile& f : files) {
        if (rewrite && rewrite(f)) continue;
        writeSideFile(f, dst);
    }
}

void copyFileBytes(const fs::path& from, const fs::path& to) {
    // Not fs::copy_file: its failures are std::filesystem_error (an "internal error" to the CLI), and libstdc++
    // reports a write refused for size (EFBIG) as EIO. Our own handles name the file and the real reason.
    const FileHandle in = FileHandle::openRead(from);
    const FileHandle out = FileHandle::createWrite(to);
    const std::uint64_t size = in.size();
    std::vector<char> buf(std::size_t(std::min<std::uint64_t>(size, 4u << 20)));
    for (std::uint64_t off = 0; off < size;) {
        const std::size_t n = std::size_t(std::min<std::uint64_t>(buf.size(), size - off));
        in.preadExact(buf.data(), n, off);
        out.pwriteAll(buf.data(), n, off);
        off += n;
    }
}

}  // namespace whittle
