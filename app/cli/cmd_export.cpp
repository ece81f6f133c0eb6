// whittle-cli export MODEL OUT --format F: writes the model in another storage format. One table of
// formats, so each later format (GGUF Q8_0/Q4_0/NVFP4, GPTQ, NVFP4 safetensors) is one more row and one more function.
#include <cstdio>
#include <iostream>
#include <string>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/export/gguf_export.h"

namespace whittle::cli {

namespace {

struct ExportRequest {
    const Checkpoint& checkpoint;
    std::filesystem::path out;
    bool force;
};

using FormatFn = void (*)(const ExportRequest&, const char* formatName);

void writeGguf(const ExportRequest& r, GgmlType type, const char* formatName) {
    if (r.out.extension() != ".gguf") throw UsageError(r.out.string(), {}, std::string(formatName) + " writes a .gguf file");
    GgufExportOptions o;
    o.weightType = type;
    o.force = r.force;
    ProgressPrinter progress;
    CancelToken cancel;
    const GgufExportReport rep = exportGguf(r.checkpoint, r.out, o, progress, cancel);
    std::printf("wrote %s (%s, %d tensors, %.1f M parameters, %.1f MB, vocabulary %d) in %.2f s\n", rep.output.c_str(), formatName,
                rep.tensors, double(rep.parameters) / 1e6, double(rep.fileBytes) / 1e6, rep.vocabulary, rep.seconds);
    for (const auto& n : rep.notes) std::printf("note: %s\n", n.c_str());
}

void ggufF32(const ExportRequest& r, const char* name) { writeGguf(r, GgmlType::F32, name); }
void ggufF16(const ExportRequest& r, const char* name) { writeGguf(r, GgmlType::F16, name); }
void ggufQ8_0(const ExportRequest& r, const char* name) { writeGguf(r, GgmlType::Q8_0, name); }
void ggufQ4_0(const ExportRequest& r, const char* name) { writeGguf(r, GgmlType::Q4_0, name); }
void ggufNvfp4(const ExportRequest& r, const char* name) { writeGguf(r, GgmlType::NVFP4, name); }

struct Format {
    const char* name;
    const char* what;
    FormatFn run;
};

const Format kFormats[] = {
    {"gguf-f32", "llama.cpp GGUF, every weight F32 (lossless from bf16)", ggufF32},
    {"gguf-f16", "llama.cpp GGUF, 2-D weights F16, norms F32", ggufF16},
    {"gguf-q8_0", "llama.cpp GGUF, decoder linears and embeddings Q8_0, PLE projections F16, norms F32", ggufQ8_0},
    {"gguf-q4_0", "llama.cpp GGUF, decoder linears Q4_0, embeddings Q8_0, PLE projections F16, norms F32", ggufQ4_0},
    {"gguf-nvfp4", "llama.cpp GGUF, decoder linears NVFP4 (+ per-tensor .scale), the rest F16, norms F32", ggufNvfp4},
};

std::string formatList() {
    std::string s;
    for (const auto& f : kFormats) s += std::string(s.empty() ? "" : "|") + f.name;
    return s;
}

}  // namespace

int runExport(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "list-formats"}, {"format"});
    if (a.flag("list-formats")) {
        for (const auto& f : kFormats) std::printf("%-11s %s\n", f.name, f.what);
        return 0;
    }
    const std::string usage = "usage: whittle-cli export MODEL OUT --format " + formatList() +
                              " [--force]   (--list-formats describes each format)";
    if (a.positional().size() != 2 || !a.value("format")) throw UsageError(usage);
    const std::string format = *a.value("format");
    for (const auto& f : kFormats) {
        if (format != f.name) continue;
        const Checkpoint ck = Checkpoint::open(a.positional()[0]);
        f.run({ck, a.positional()[1], a.flag("force")}, f.name);
        return 0;
    }
    throw UsageError("unknown --format '" + format + "' (known: " + formatList() + ")\n" + usage);
}

}  // namespace whittle::cli
