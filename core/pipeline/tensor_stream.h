#pragma once
// The seam between the stages that rewrite a checkpoint without running it: a checkpoint as a stream. Its side
// files (configs, tokenizer, chat template, …) and its tensors' specs are known up front; a tensor's bytes are
// pulled by range when the sink asks for them. A source reads a checkpoint folder; a transform (text-only
// repack, vocabulary rows, FLAP's channels) wraps a stream and answers reads by reading its upstream; the sink
// writes a stream into a folder, 4 MiB at a time, polling cancel between chunks. Transforms composed over one
// source therefore run as one pass over the input's bytes, with nothing in between touching the disk — the
// stages that must run a model (FLAP's and GPTQ's calibration) are the only points where a stream is written
// out and opened again (slim.h).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/json_file.h"
#include "core/io/side_files.h"
#include "core/io/safetensors_writer.h"
#include "core/model/checkpoint.h"
#include "core/model/gemma4_config.h"
#include "core/progress.h"

namespace whittle {

// Copies bytes [offset, offset + n) of tensor i of a stream into out.
using TensorReader = std::function<void(std::size_t i, std::uint64_t offset, std::uint64_t n, char* out)>;

struct TensorStream {
    std::filesystem::path origin;  // the folder the source read: errors and the output's record name it
    Gemma4Config config;           // parsed from the stream's own config.json
    SpecialTokenIds special;       // bos/pad/eos as the stream's configs give them
    std::vector<SideFile> files;
    std::vector<TensorSpec> tensors;
    TensorReader read;

    const SideFile* file(std::string_view name) const;  // null when absent
    SideFile& file(std::string_view name, const std::string& why);  // throws FormatError naming origin and why
    std::uint64_t tensorBytes() const;
    std::uint64_t parameters() const;
};

// For a transform whose tensor is made of rows of an upstream tensor (token rows, FLAP's kept channels): copies
// bytes [offset, offset + n) of the tensor whose row r is row rows[r] of upstream tensor `upstream`. Runs of
// consecutive upstream rows are read with one read.
void readUpstreamRows(const TensorReader& read, std::size_t upstream, std::uint64_t rowBytes, const std::vector<int>& rows,
                      std::uint64_t offset, std::uint64_t n, char* out);

// A checkpoint folder as stored: its regular files other than tensor shards and whittle.json (sorted by name),
// and its tensors. The checkpoint must outlive the stream.
TensorStream checkpointStream(const Checkpoint& checkpoint);

// The stream as a Checkpoint, for the stages that read one without running the model (quantization by RTN or
// NVFP4, GGUF export): its side files and tensors, checked against the tensor table as a folder's are, every
// tensor read through the stream's transforms. The stream must outlive it; mapping a tensor (view()) throws.
Checkpoint streamCheckpoint(const TensorStream& stream);

struct StreamWriteReport {
    std::uint64_t tensorBytes = 0;  // the shards' sizes, headers included
    std::vector<std::string> fileNames;  // every file written, side files first
};

// Writes the stream into `dir` (which must exist): side files, then the tensors through SafetensorsWriter with a
// "writing tensors" meter. The caller owns the atomicity (AtomicOutputDir).
StreamWriteReport writeStream(const TensorStream& stream, const std::filesystem::path& dir, Progress& progress, const CancelToken& cancel);

}  // namespace whittle
