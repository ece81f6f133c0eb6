#pragma once
// Passing a checkpoint through into an output folder: tensors copied unchanged, and the files of a
// checkpoint folder other than its tensors (configs, tokenizer, chat template, licence…),
// carried into an output folder. Every stage that writes a checkpoint passes them through here, so they
// agree on what a tensor file is and on what never travels (the source's whittle.json report).
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace whittle {

class SafetensorsFile;
class SafetensorsWriter;
class StageMeter;
class CancelToken;
struct TensorInfo;

// Streams one tensor's bytes unchanged from a checkpoint into a writer, in chunks through `buffer`, under its
// own name or `as`.
void copyTensorBytes(const SafetensorsFile& file, const TensorInfo& tensor, SafetensorsWriter& writer, std::vector<char>& buffer,
                     StageMeter& meter, const CancelToken& cancel, const std::string& as = {});

// True for the tensor files (*.safetensors, model.safetensors.index.json) and Whittle's own report.
bool isTensorOrReportFile(const std::string& name);

// Copies one file's bytes to a new file (never over an existing one); failures are IoErrors naming the file.
void copyFileBytes(const std::filesystem::path& from, const std::filesystem::path& to);

// Copies every regular non-tensor file of src into dst, except those `rewrite` handles: it is called
// first with the file name and path and returns true when it wrote that file (changed) itself.
void copySideFiles(const std::filesystem::path& src, const std::filesystem::path& dst,
                   const std::function<bool(const std::string& name, const std::filesystem::path& file)>& rewrite);

}  // namespace whittle
