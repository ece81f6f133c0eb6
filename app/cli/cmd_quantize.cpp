// whittle-cli quantize MODEL OUT: weight quantization from a recipe file or flags: INT4 round-to-nearest or
// GPTQ, or the mixed bit budget, into GPTQ v1 safetensors; NVFP4 in ModelOpt's or compressed-tensors' layout;
// GGUF block types. The bit budget's plan is printed before anything is written (--plan-only stops there).
#include <sys/resource.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/json_report.h"
#include "app/cli/progress_printer.h"
#include "core/error.h"
#include "core/export/gguf_export.h"
#include "core/io/atomic_output.h"
#include "core/recipes/recipe.h"

namespace whittle::cli {

namespace {

bool isGguf(const std::string& f) { return f.rfind("gguf-", 0) == 0; }

// A GGUF output of the same run. With --method rtn or nvfp4 it is llama.cpp's own block types (their groups
// and rounding are ggml's, so the INT4 flags do not apply), written by the GGUF exporter from the input; with
// gptq or budget the run's codes are written first and the exporter repacks them (exactly where a GGUF type
// holds them: INT4 symmetric → Q4_0, INT8 → Q8_0; the rest decoded to Q8_0, said in its notes).
bool ggufFromCodes(const std::string& method) { return method == "gptq" || method == "budget"; }

GgmlType checkGgufFormat(const std::string& format, const std::string& method) {
    const GgmlType type = ggufFormatType(format, "--format");  // the one table of GGUF format names
    if ((format == "gguf-nvfp4") != (method == "nvfp4"))
        throw UsageError("--format " + format + " goes with " + (format == "gguf-nvfp4" ? "--method nvfp4" : "--method rtn, gptq or budget"));
    return type;
}

Json writeGgufFormat(const Checkpoint& ck, const std::string& format, const std::string& method, const std::filesystem::path& out, bool force,
                     Progress& progress, const CancelToken& cancel) {
    GgufExportOptions o;
    o.weightType = checkGgufFormat(format, method);
    o.force = force;
    const GgufExportReport r = exportGguf(ck, out, o, progress, cancel);
    Json j = toJson(r);
    j["output"] = r.output.string();
    return j;
}

// Where each format goes when several are asked for: one entry of the output folder per format.
std::string entryName(const std::string& format) {
    return isGguf(format) ? ggufFileName(format) : format;
}

void printReport(const QuantizeReport& r, const std::string& method, const std::string& out) {
    std::printf("quantized %d tensors (%llu weights) to %s at %.3f bits per weight; %d tensors kept as they were\n", r.tensorsQuantized,
                (unsigned long long)r.weightsQuantized, method == "nvfp4" ? "NVFP4" : method == "budget" ? "mixed integer formats" : "INT4",
                r.bitsPerWeight, r.tensorsKept);
    if (r.calibrationWindows)
        std::printf("GPTQ: %d calibration windows (%lld tokens), %.1f s\n", r.calibrationWindows, (long long)r.calibrationTokens, r.gptqSeconds);
    if (r.dequantized) std::printf("written dequantized into the input's tensors and dtype (a plain checkpoint at the input's size)\n");
    for (const auto& e : r.excluded) std::printf("  kept by an exclusion rule: %s\n", e.c_str());
    std::printf("%.1f MB -> %.1f MB; wrote %s in %.1f s\n", double(r.bytesBefore) / 1e6, double(r.bytesWritten) / 1e6, out.c_str(), r.seconds);
}

}  // namespace

int runQuantize(const std::vector<std::string>& argv) {
    const Args a(argv, {"force", "json", "asym", "act-order", "plan-only"},
                 {"recipe", "method", "group", "exclude", "format", "calib", "calib-samples", "calib-length", "damp", "bpw", "candidates", "embeddings"});
    if (a.positional().size() != 2 && !(a.flag("plan-only") && a.positional().size() == 1))
        throw UsageError("usage: whittle-cli quantize MODEL OUT (--recipe FILE.json | [--method rtn|gptq|nvfp4|budget] [--group N (0: per channel)] "
                         "[--asym] [--exclude GLOB,…] [--embeddings keep|q8_0|q4_0] [--format F[,F…]] [gptq, budget: --act-order --calib FILE,… --calib-samples N "
                         "--calib-length N --damp X] [budget: --bpw X (default: as INT4 g128) --candidates ID,… (e.g. int4-g128,int3-g128-asym) --plan-only]) [--force] [--json]\n"
                         "  formats: hf (dequantized, the input's dtype), gptq, nvfp4-modelopt, nvfp4-ct, gguf-f16, gguf-q8_0, gguf-q4_0, gguf-nvfp4; "
                         "several: OUT becomes a folder with one entry per format");
    // The flags build the same JSON section a recipe file holds, so both are checked by one parser; each
    // requested safetensors format gets its own section.
    std::vector<std::string> formats = a.value("format") ? a.listValue("format") : std::vector<std::string>{};
    // Without --method, an NVFP4 format implies it.
    std::string method = a.value("method").value_or("rtn");
    if (!a.value("method"))
        for (const auto& f : formats)
            if (f.rfind("nvfp4-", 0) == 0 || f == "gguf-nvfp4") method = "nvfp4";
    auto sectionFromFlags = [&](const std::optional<std::string>& format) {
        Json q = Json::object();
        q["method"] = method;
        if (a.value("group")) q["group_size"] = a.uintValue("group", 128);
        if (a.flag("asym")) q["symmetric"] = false;
        if (a.value("exclude")) q["exclude"] = a.listValue("exclude");
        if (format) q["format"] = *format;
        if (a.flag("act-order")) q["act_order"] = true;
        if (a.value("candidates")) q["candidates"] = a.listValue("candidates");
        if (auto e = a.value("embeddings")) q["embeddings"] = *e;
        if (auto b = a.value("bpw")) {
            try {
                q["bpw"] = std::stod(*b);
            } catch (const std::exception&) {
                throw UsageError("--bpw must be a number of bits per weight, not '" + *b + "'");
            }
        }
        if (auto d = a.value("damp")) {
            try {
                q["damp"] = std::stod(*d);
            } catch (const std::exception&) {
                throw UsageError("--damp must be a number, not '" + *d + "'");
            }
        }
        Json calib = Json::object();
        if (a.value("calib")) calib["files"] = a.listValue("calib");
        if (a.value("calib-samples")) calib["samples"] = a.uintValue("calib-samples", 0);
        if (a.value("calib-length")) calib["length"] = a.uintValue("calib-length", 0);
        if (!calib.empty()) q["calibration"] = calib;
        return parseQuantizeRecipe(q, "command line");
    };
    Recipe fromFile;
    if (auto r = a.value("recipe")) {
        for (const char* o : {"method", "group", "exclude", "format", "calib", "calib-samples", "calib-length", "damp", "bpw", "candidates", "embeddings"})
            if (a.value(o)) throw UsageError(std::string("give either --recipe or --") + o + ", not both");
        if (a.flag("act-order") || a.flag("asym")) throw UsageError("give either --recipe or --act-order/--asym, not both");
        fromFile = loadRecipe(*r);
        if (!fromFile.quantization) throw UsageError(*r, {}, "the recipe has no \"quantization\" section");
        formats.push_back(fromFile.quantization->format);
        method = fromFile.quantization->method;
    } else if (!formats.empty()) {
        if (std::set<std::string>(formats.begin(), formats.end()).size() != formats.size()) throw UsageError("--format names a format twice");
    } else {
        formats.push_back(sectionFromFlags(std::nullopt).format);
    }
    // Every request is checked before anything is read or written.
    std::vector<Recipe> recipes;
    for (const std::string& f : formats) {
        Recipe r = fromFile;
        // GPTQ and the budget reach GGUF through their codes: the same section, written as GPTQ v1 first.
        if (!fromFile.quantization && (!isGguf(f) || ggufFromCodes(method))) r.quantization = sectionFromFlags(isGguf(f) ? "gptq" : f);
        if (r.quantization && isGguf(f) && ggufFromCodes(method)) r.quantization->format = "gptq";  // a recipe file's GGUF format: its codes first
        if (isGguf(f)) {
            checkGgufFormat(f, method);
            if (!ggufFromCodes(method) && (a.value("group") || a.flag("asym") || a.flag("act-order")))
                throw UsageError("--format " + f + ": GGUF block types fix their own groups and rounding (no --group, --asym, --act-order)");
            if (formats.size() == 1 && std::filesystem::path(a.positional()[1]).extension() != ".gguf")
                throw UsageError(a.positional()[1], {}, "--format " + f + " writes a .gguf file");
        }
        recipes.push_back(std::move(r));
    }

    if (a.flag("plan-only") && method != "budget") throw UsageError("--plan-only shows the bit budget's plan: it goes with --method budget");

    const Checkpoint ck = Checkpoint::open(a.positional()[0]);
    ProgressPrinter progress;
    CancelToken cancel;
    // The bit budget's plan, shown before anything is written (on stderr under --json, which owns stdout).
    std::optional<BitBudgetPlan> budget;
    if (method == "budget" && !recipes.front().quantization->formats.empty()) {
        // A planned recipe (whittle-cli plan): its formats are used as they are, nothing is measured.
        if (a.flag("plan-only")) throw UsageError("--plan-only: the recipe's quantization.formats are already planned");
    } else if (method == "budget") {
        const Recipe& r = recipes.front();
        const std::filesystem::path scratch =
            a.positional().size() == 2 ? std::filesystem::absolute(a.positional()[1]).parent_path() : std::filesystem::temp_directory_path();
        budget = planBitBudget(ck, *r.quantization, scratch, progress, cancel);
        const std::string table = formatPlanTable(*budget);
        std::fputs(table.c_str(), a.flag("json") ? stderr : stdout);
        if (a.flag("plan-only")) {
            if (a.flag("json")) printJsonReport(toJson(*budget));
            return 0;
        }
    }
    const std::filesystem::path dest = a.positional()[1];
    // Several formats: one folder, complete or absent, with one entry per format.
    std::optional<AtomicOutputDir> folder;
    if (formats.size() > 1) folder.emplace(dest, a.flag("force"), std::vector<std::filesystem::path>{ck.dir()});
    Json reports = Json::object();
    // Safetensors formats first, so that a GGUF from GPTQ codes can read the run's own gptq entry.
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < formats.size(); ++i)
        if (!isGguf(formats[i])) order.push_back(i);
    for (std::size_t i = 0; i < formats.size(); ++i)
        if (isGguf(formats[i])) order.push_back(i);
    std::optional<std::filesystem::path> codes;  // this run's GPTQ v1 output, when it wrote one
    for (const std::size_t i : order) {
        const std::string& f = formats[i];
        const std::filesystem::path out = folder ? folder->path() / entryName(f) : dest;
        if (isGguf(f)) {
            if (ggufFromCodes(method)) {
                // The codes come from this run's gptq entry, or from a staging folder next to the output: an
                // output folder never committed, so it is removed however the export ends.
                std::optional<AtomicOutputDir> staging;
                if (!codes) {
                    staging.emplace(out.string() + ".codes", true, std::vector<std::filesystem::path>{ck.dir()});
                    const QuantizeReport qr =
                        quantizeCheckpoint(ck, recipes[i], staging->path() / "gptq", false, progress, cancel, budget ? &*budget : nullptr);
                    reports["quantization"] = toJson(qr);
                }
                const Checkpoint source = Checkpoint::open(codes ? *codes : staging->path() / "gptq");
                reports[f] = writeGgufFormat(source, f, method, out, a.flag("force"), progress, cancel);
            } else {
                reports[f] = writeGgufFormat(ck, f, method, out, a.flag("force"), progress, cancel);
            }
            if (!a.flag("json")) {
                std::printf("wrote %s (%s, %.1f MB)\n", (folder ? (dest / entryName(f)).string() : out.string()).c_str(), f.c_str(),
                            double(reports[f]["file_bytes"].get<std::uint64_t>()) / 1e6);
                for (const auto& n : reports[f]["notes"]) std::printf("note: %s\n", n.get<std::string>().c_str());
            }
            continue;
        }
        const QuantizeReport r = quantizeCheckpoint(ck, recipes[i], out, a.flag("force"), progress, cancel, budget ? &*budget : nullptr);
        reports[f] = toJson(r);
        if (f == "gptq") codes = out;
        if (!a.flag("json")) printReport(r, recipes[i].quantization->method, folder ? (dest / entryName(f)).string() : out.string());
    }
    if (folder) folder->commit();
    if (a.flag("json")) printJsonReport(formats.size() == 1 && !reports.contains("quantization") ? reports[formats[0]] : reports);
    return 0;
}

}  // namespace whittle::cli
