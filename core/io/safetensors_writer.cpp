#include "core/io/safetensors_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/json_file.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

std::uint64_t TensorSpec::numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= std::uint64_t(d);
    return n;
}

namespace {
std::string shardName(std::size_t i, std::size_t n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    return buf;
}

bool allZero(const std::byte* p, std::size_t n) {
    static const std::byte zeros[4096] = {};
    while (n > 0) {
        const std::size_t k = std::min(n, sizeof zeros);
        if (std::memcmp(p, zeros, k) != 0) return false;
        p += k;
        n -= k;
    }
    return true;
}
}  // namespace

SafetensorsLayout layoutSafetensors(const std::vector<TensorSpec>& plan, const SafetensorsWriterOptions& options, const std::string& where) {
    SafetensorsLayout layout;
    // Shard assignment follows the plan order, as transformers' save_pretrained does.
    std::vector<std::vector<std::size_t>> groups(1);
    std::uint64_t groupBytes = 0;
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        if (!seen.emplace(plan[i].name, i).second) throw UsageError(where, plan[i].name, "tensor planned twice");
        const std::uint64_t b = plan[i].nbytes();
        if (!groups.back().empty() && groupBytes + b > options.shardLimitBytes) {
            groups.emplace_back();
            groupBytes = 0;
        }
        groups.back().push_back(i);
        groupBytes += b;
    }
    layout.offsets.resize(plan.size());
    layout.shardOf.resize(plan.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
        auto& ids = groups[g];
        // Within a file: descending dtype alignment, then name (the reference library's order).
        std::sort(ids.begin(), ids.end(), [&](std::size_t a, std::size_t b) {
            if (plan[a].dtype != plan[b].dtype) return plan[a].dtype > plan[b].dtype;
            return plan[a].name < plan[b].name;
        });
        nlohmann::ordered_json header = nlohmann::ordered_json::object();
        if (!options.metadata.empty()) {
            nlohmann::ordered_json meta = nlohmann::ordered_json::object();
            for (const auto& [k, v] : options.metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        std::uint64_t off = 0;
        for (auto i : ids) {
            const TensorSpec& t = plan[i];
            nlohmann::ordered_json e;
            e["dtype"] = std::string(dtypeName(t.dtype));
            e["shape"] = t.shape;
            e["data_offsets"] = {off, off + t.nbytes()};
            header[t.name] = e;
            layout.offsets[i] = off;
            layout.shardOf[i] = g;
            off += t.nbytes();
        }
        SafetensorsLayout::Shard s;
        s.header = header.dump();
        s.header.append((8 - s.header.size() % 8) % 8, ' ');
        s.fileName = groups.size() == 1 ? "model.safetensors" : shardName(g, groups.size());
        s.size = 8 + s.header.size() + off;
        s.tensors = ids;
        for (auto i : ids) layout.offsets[i] += 8 + s.header.size();
        layout.shards.push_back(std::move(s));
    }
    if (layout.shards.size() > 1) {
        nlohmann::ordered_json idx;
        std::uint64_t total = 0, params = 0;
        for (const auto& t : plan) {
            total += t.nbytes();
            params += t.numel();
        }
        idx["metadata"] = {{"total_size", total}, {"total_parameters", params}};
        nlohmann::ordered_json map = nlohmann::ordered_json::object();
        std::vector<std::pair<std::string, std::string>> entries;
        for (const auto& s : layout.shards)
            for (auto i : s.tensors) entries.emplace_back(plan[i].name, s.fileName);
        std::sort(entries.begin(), entries.end());
        for (const auto& [n, f] : entries) map[n] = f;
        idx["weight_map"] = map;
        layout.index = idx.dump(2) + "\n";
    }
    return layout;
}

std::uint64_t SafetensorsLayout::totalBytes() const {
    std::uint64_t n = index.size();
    for (const Shard& s : shards) n += s.size;
    return n;
}

SafetensorsWriter::SafetensorsWriter(const fs::path& dir, std::vector<TensorSpec> plan,
                                     SafetensorsWriterOptions options)
    : dir_(dir), plan_(std::move(plan)) {
    SafetensorsLayout layout = layoutSafetensors(plan_, options, dir.string());
    for (std::size_t i = 0; i < plan_.size(); ++i) byName_.emplace(plan_[i].name, i);
    slots_.resize(plan_.size());
    for (std::size_t i = 0; i < plan_.size(); ++i) slots_[i] = Slot{layout.shardOf[i], layout.offsets[i], plan_[i].nbytes()};
    for (SafetensorsLayout::Shard& l : layout.shards) {
        Shard s;
        s.fileName = l.fileName;
        s.file = FileHandle::createWrite(dir / s.fileName);
        unsigned char len[8];
        for (int k = 0; k < 8; ++k) len[k] = static_cast<unsigned char>(std::uint64_t(l.header.size()) >> (8 * k));
        s.file.pwriteAll(len, 8, 0);
        s.file.pwriteAll(l.header.data(), l.header.size(), 8);
        s.size = l.size;
        s.tensors = l.tensors;
        shards_.push_back(std::move(s));
    }
    index_ = std::move(layout.index);
}

SafetensorsWriter::Slot& SafetensorsWriter::slot(std::string_view name) {
    const auto it = byName_.find(std::string(name));
    if (it == byName_.end()) throw UsageError(dir_.string(), std::string(name), "tensor was not in the write plan");
    return slots_[it->second];
}

void SafetensorsWriter::writeSkippingZeroBlocks(const FileHandle& f, const std::byte* data, std::size_t n,
                                                std::uint64_t offset) {
    std::size_t runStart = 0, pos = 0;
    while (pos < n) {
        const std::uint64_t abs = offset + pos;
        const std::size_t blockEnd = std::size_t(std::min<std::uint64_t>(n, pos + (kHoleBlock - abs % kHoleBlock)));
        // The shard is a fresh file written once, so any zero piece — a partial block at a write-call
        // boundary too — can stay a hole; writing those pieces made ext4 allocate around them.
        if (allZero(data + pos, blockEnd - pos)) {
            if (pos > runStart) f.pwriteAll(data + runStart, pos - runStart, offset + runStart);
            runStart = blockEnd;
        }
        pos = blockEnd;
    }
    if (n > runStart) f.pwriteAll(data + runStart, n - runStart, offset + runStart);
}

void SafetensorsWriter::write(std::string_view name, const void* data, std::size_t n) {
    Slot& s = slot(name);
    if (n > s.nbytes - s.written)
        throw UsageError(dir_.string(), std::string(name), "more bytes written than the tensor holds");
    writeSkippingZeroBlocks(shards_[s.shard].file, static_cast<const std::byte*>(data), n, s.offset + s.written);
    s.written += n;
}

void SafetensorsWriter::writeZeros(std::string_view name) {
    Slot& s = slot(name);
    if (s.written != 0) throw UsageError(dir_.string(), std::string(name), "tensor already partly written");
    s.written = s.nbytes;
}

void SafetensorsWriter::finish() {
    if (finished_) return;
    for (std::size_t i = 0; i < plan_.size(); ++i)
        if (slots_[i].written != slots_[i].nbytes)
            throw UsageError(dir_.string(), plan_[i].name,
                             "only " + std::to_string(slots_[i].written) + " of " + std::to_string(slots_[i].nbytes) +
                                 " bytes were written");
    for (auto& s : shards_) {
        s.file.truncate(s.size);
        s.file.sync();
        s.file.close();
    }
    if (!index_.empty()) writeTextFile(dir_ / files::kSafetensorsIndex, index_);
    finished_ = true;
}

std::vector<std::string> SafetensorsWriter::fileNames() const {
    std::vector<std::string> v;
    for (const auto& s : shards_) v.push_back(s.fileName);
    if (shards_.size() > 1) v.push_back(files::kSafetensorsIndex);
    return v;
}

std::uint64_t SafetensorsWriter::totalBytes() const {
    std::uint64_t n = 0;
    for (const auto& s : shards_) n += s.size;
    return n;
}

}  // namespace whittle
