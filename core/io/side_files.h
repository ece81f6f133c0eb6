#pragma once
// Passing a checkpoint through into an output folder: tensors copied unchanged, and the files of a
// checkpoint folder other than its tensors (configs, tokenizer, chat template, licence…),
// carried into an output folder. Every stage that writes a checkpoint passes them through here, so they
// agree on what a tensor file is and on what never travels (the source's whittle.json report).
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle {

class TensorSource;
class SafetensorsWriter;
class StageMeter;
class CancelToken;
struct TensorInfo;

// Streams one tensor's bytes unchanged from a checkpoint into a writer, in chunks through `buffer`, under its
// own name or `as`.
void copyTensorBytes(const TensorSource& file, const TensorInfo& tensor, SafetensorsWriter& writer, std::vector<char>& buffer,
                     StageMeter& meter, const CancelToken& cancel, const std::string& as = {});

// True for the tensor files (*.safetensors, model.safetensors.index.json) and Whittle's own report.
bool isTensorOrReportFile(const std::string& name);

// Copies one file's bytes to a new file (never over an existing one); failures are IoErrors naming the file.
void copyFileBytes(const std::filesystem::path& from, const std::filesystem::path& to);

// One non-tensor file of a checkpoint: a file's bytes as they are, or the text a transform wrote in its place.
struct SideFile {
    std::string name;
    std::filesystem::path from;       // the file copied when text is unset; where errors point
    std::optional<std::string> text;  // rewritten content
    Json json(std::uint64_t maxBytes = 64ull << 20) const;  // parsed; a FormatError names the file
    std::string contents(std::uint64_t maxBytes = 64ull << 20) const;
};

// The regular non-tensor files of a folder (whittle.json excluded), sorted by name.
std::vector<SideFile> listSideFiles(const std::filesystem::path& dir);

// Writes one side file into dir (never over an existing file).
void writeSideFile(const SideFile& file, const std::filesystem::path& dir);

// The text writeJsonFile writes for j (2-space indent, trailing newline), so a rewritten file is byte-identical
// to what a stage writing it directly would have written.
std::string jsonFileText(const Json& j);

// Writes every side file into dst, except those `rewrite` handles: it is called first with each file and
// returns true when it wrote that file (changed) itself.
void copySideFiles(const std::vector<SideFile>& files, const std::filesystem::path& dst,
                   const std::function<bool(const SideFile& file)>& rewrite);

}  // namespace whittle
