#include "core/pipeline/tensor_stream.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/side_files.h"

namespace fs = std::filesystem;

namespace whittle {

Json StreamFile::json(std::uint64_t maxBytes) const {
    if (text) return parseJson(*text, from.string());
    return readJsonFile(from, maxBytes);
}

std::string jsonFileText(const Json& j) { return j.dump(2) + "\n"; }

const StreamFile* TensorStream::file(std::string_view name) const {
    for (const StreamFile& f : files)
        if (f.name == name) return &f;
    return nullptr;
}

StreamFile& TensorStream::file(std::string_view name, const std::string& why) {
    for (StreamFile& f : files)
        if (f.name == name) return f;
    throw FormatError((origin / std::string(name)).string(), {}, "is missing (" + why + ")");
}

std::uint64_t TensorStream::tensorBytes() const {
    std::uint64_t n = 0;
    for (const TensorSpec& t : tensors) n += t.nbytes();
    return n;
}

std::uint64_t TensorStream::parameters() const {
    std::uint64_t n = 0;
    for (const TensorSpec& t : tensors) n += t.numel();
    return n;
}

void readUpstreamRows(const TensorReader& read, std::size_t upstream, std::uint64_t rowBytes, const std::vector<int>& rows,
                      std::uint64_t offset, std::uint64_t n, char* dst) {
    while (n > 0) {
        const std::size_t r = std::size_t(offset / rowBytes);
        const std::uint64_t inRow = offset % rowBytes;
        std::size_t k = r + 1;
        while (k < rows.size() && rows[k] == rows[k - 1] + 1 && (k - r) * rowBytes - inRow < n) ++k;
        const std::uint64_t len = std::min<std::uint64_t>(n, (k - r) * rowBytes - inRow);
        read(upstream, std::uint64_t(rows[r]) * rowBytes + inRow, len, dst);
        dst += len;
        offset += len;
        n -= len;
    }
}

TensorStream checkpointStream(const Checkpoint& ck) {
    TensorStream s;
    s.origin = ck.dir();
    s.config = ck.config();
    s.special = ck.specialTokens();
    for (const auto& e : fs::directory_iterator(ck.dir())) {
        const std::string name = e.path().filename().string();
        if (e.is_regular_file() && !isTensorOrReportFile(name)) s.files.push_back(StreamFile{name, e.path(), std::nullopt});
    }
    std::sort(s.files.begin(), s.files.end(), [](const StreamFile& a, const StreamFile& b) { return a.name < b.name; });
    std::vector<const TensorStore::Entry*> entries;
    for (const CheckpointTensor& t : ck.tensors()) {
        s.tensors.push_back(TensorSpec{t.entry->info->name, t.entry->info->dtype, t.entry->info->shape});
        entries.push_back(t.entry);
    }
    s.read = [entries = std::move(entries)](std::size_t i, std::uint64_t offset, std::uint64_t n, char* out) {
        entries[i]->file->read(*entries[i]->info, out, offset, n);
    };
    return s;
}

StreamWriteReport writeStream(const TensorStream& s, const fs::path& dir, Progress& progress, const CancelToken& cancel) {
    StreamWriteReport rep;
    for (const StreamFile& f : s.files) {
        cancel.throwIfCancelled();
        if (f.text)
            writeTextFile(dir / f.name, *f.text);
        else
            copyFileBytes(f.from, dir / f.name);
        rep.fileNames.push_back(f.name);
    }
    SafetensorsWriter writer(dir, s.tensors);
    StageMeter meter(progress, "writing tensors", s.tensorBytes());
    constexpr std::uint64_t kChunk = 4u << 20;
    std::vector<char> buf(kChunk);
    for (std::size_t i = 0; i < s.tensors.size(); ++i) {
        const std::uint64_t bytes = s.tensors[i].nbytes();
        for (std::uint64_t off = 0; off < bytes; off += kChunk) {
            cancel.throwIfCancelled();
            const std::uint64_t n = std::min(kChunk, bytes - off);
            s.read(i, off, n, buf.data());
            writer.write(s.tensors[i].name, buf.data(), std::size_t(n));
            meter.advance(n);
        }
    }
    writer.finish();
    meter.finish();
    rep.tensorBytes = writer.totalBytes();
    for (const std::string& n : writer.fileNames()) rep.fileNames.push_back(n);
    return rep;
}

}  // namespace whittle
