#include "core/pipeline/tensor_stream.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/side_files.h"

namespace fs = std::filesystem;

namespace whittle {

const SideFile* TensorStream::file(std::string_view name) const {
    for (const SideFile& f : files)
        if (f.name == name) return &f;
    return nullptr;
}

SideFile& TensorStream::file(std::string_view name, const std::string& why) {
    for (SideFile& f : files)
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

namespace {

// Tensor i of a stream, read through its reader (TensorInfo::offset holds i).
class StreamSource final : public TensorSource {
public:
    StreamSource(std::string path, TensorReader read) : path_(std::move(path)), read_(std::move(read)) {}
    const std::string& path() const override { return path_; }
    TensorView view(const TensorInfo& t) const override {
        throw Error(path_, t.name, "internal: a streamed tensor has no mapping (a stage that runs the model reads a written folder)");
    }
    void read(const TensorInfo& t, void* dst, std::uint64_t offset, std::uint64_t n) const override {
        if (offset > t.nbytes || n > t.nbytes - offset)
            throw Error(path_, t.name, "internal: read past the end of a streamed tensor");
        read_(std::size_t(t.offset), offset, n, static_cast<char*>(dst));
    }

private:
    std::string path_;
    TensorReader read_;
};

}  // namespace

Checkpoint streamCheckpoint(const TensorStream& s) {
    std::vector<TensorInfo> infos;
    for (std::size_t i = 0; i < s.tensors.size(); ++i) {
        const TensorSpec& t = s.tensors[i];
        infos.push_back(TensorInfo{t.name, t.dtype, t.shape, std::uint64_t(i), t.nbytes()});
    }
    TensorStore store = TensorStore::fromSource(std::make_unique<StreamSource>(s.origin.string(), s.read), std::move(infos));
    return Checkpoint::fromParts(s.origin, s.config, s.special, s.files, std::move(store));
}

TensorStream checkpointStream(const Checkpoint& ck) {
    TensorStream s;
    s.origin = ck.dir();
    s.config = ck.config();
    s.special = ck.specialTokens();
    s.files = ck.sideFiles();
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
    for (const SideFile& f : s.files) {
        cancel.throwIfCancelled();
        writeSideFile(f, dir);
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
