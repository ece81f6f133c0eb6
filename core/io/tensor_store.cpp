#include "core/io/tensor_store.h"

#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "core/error.h"
#include "core/io/json_file.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {
bool plainFileName(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
}
}  // namespace

TensorStore TensorStore::open(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw IoError(dir.string(), {}, "checkpoint folder does not exist");
    if (!fs::is_directory(dir, ec)) throw FormatError(dir.string(), {}, "is not a folder");
    TensorStore s;
    const fs::path index = dir / kIndexFile;
    if (fs::exists(index, ec)) {
        s.sharded_ = true;
        const std::string ip = index.string();
        const Json j = readJsonFile(index);
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw FormatError(ip, {}, "missing 'weight_map' object");
        std::map<std::string, std::string> wanted;  // tensor -> shard
        std::set<std::string> shards;
        for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
            if (!it.value().is_string()) throw FormatError(ip, it.key(), "weight_map value is not a file name");
            const std::string shard = it.value().get<std::string>();
            if (!plainFileName(shard))
                throw FormatError(ip, it.key(), "shard name '" + shard + "' is not a plain file name in this folder");
            wanted.emplace(it.key(), shard);
            shards.insert(shard);
        }
        std::map<std::string, const SafetensorsFile*> byName;
        for (const auto& shard : shards) {
            const fs::path sp = dir / shard;
            if (!fs::exists(sp, ec) && !ec)  // other errors (loops, permissions) surface from open
                throw IoError(sp.string(), {}, "shard named in " + std::string(kIndexFile) + " is missing");
            s.files_.push_back(std::make_unique<SafetensorsFile>(sp));
            byName[shard] = s.files_.back().get();
        }
        for (const auto& f : s.files_) {
            for (const auto& t : f->tensors()) {
                const auto w = wanted.find(t.name);
                const std::string shardName = fs::path(f->path()).filename().string();
                if (w == wanted.end())
                    throw FormatError(f->path(), t.name, "tensor is not listed in " + std::string(kIndexFile));
                if (w->second != shardName)
                    throw FormatError(f->path(), t.name, std::string(kIndexFile) + " places it in '" + w->second + "'");
                if (!s.index_.emplace(t.name, s.entries_.size()).second)
                    throw FormatError(f->path(), t.name, "tensor appears more than once");
                s.entries_.push_back({f.get(), &t});
            }
        }
        for (const auto& [name, shard] : wanted)
            if (!s.index_.count(name))
                throw FormatError(ip, name, "listed in weight_map but absent from shard '" + shard + "'");
        return s;
    }
    const fs::path single = dir / kSingleFile;
    if (!fs::exists(single, ec) && !ec)
        throw IoError(dir.string(), {}, std::string("no ") + kSingleFile + " or " + kIndexFile + " in this folder");
    s.files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& t : s.files_.back()->tensors()) {
        s.index_.emplace(t.name, s.entries_.size());
        s.entries_.push_back({s.files_.back().get(), &t});
    }
    return s;
}

TensorStore TensorStore::fromSource(std::unique_ptr<TensorSource> source, std::vector<TensorInfo> tensors) {
    TensorStore s;
    s.source_ = std::move(source);
    s.sourceTensors_ = std::move(tensors);  // never resized again: entries point into it
    for (const TensorInfo& t : s.sourceTensors_) {
        if (!s.index_.emplace(t.name, s.entries_.size()).second) throw FormatError(s.source_->path(), t.name, "tensor appears more than once");
        s.entries_.push_back({s.source_.get(), &t});
    }
    return s;
}

const TensorStore::Entry* TensorStore::find(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::uint64_t TensorStore::headerBytes() const {
    std::uint64_t n = 0;
    for (const auto& f : files_) n += f->headerBytes();
    return n;
}

std::uint64_t TensorStore::fileBytes() const {
    std::uint64_t n = 0;
    for (const auto& f : files_) n += f->fileSize();
    for (const TensorInfo& t : sourceTensors_) n += t.nbytes;
    return n;
}

}  // namespace whittle
