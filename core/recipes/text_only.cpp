#include "core/recipes/text_only.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/atomic_output.h"
#include "core/io/safetensors_writer.h"
#include "core/io/side_files.h"
#include "core/model/tensor_table.h"
#include "core/recipes/recipe.h"
#include "core/model/checkpoint_files.h"

namespace fs = std::filesystem;

namespace whittle {

namespace {
// The towers' input processors: meaningless without them.
bool isProcessorConfig(const std::string& name) {
    return name == files::kProcessorConfig || name == files::kPreprocessorConfig || name == files::kVideoPreprocessorConfig;
}
}  // namespace

Json toJson(const TextOnlyReport& r) {
    return Json{{"tower_tensors_removed", r.towerTensorsRemoved}, {"tower_params_removed", r.towerParamsRemoved},
                {"params_before", r.paramsBefore},                {"params_after", r.paramsAfter},
                {"files_dropped", r.filesDropped},                {"bytes_written", r.bytesWritten},
                {"seconds", r.seconds}};
}

Json textOnlyConfig(const Json& root, const std::string& file) {
    if (!root.is_object() || root.value("model_type", "") != "gemma4")
        throw UsageError(file, {}, "is already a text-only model (model_type '" + root.value("model_type", std::string("?")) +
                                       "'): there are no towers to remove");
    if (!root.contains("text_config") || !root["text_config"].is_object()) throw FormatError(file, {}, "model_type 'gemma4' needs a 'text_config' object");
    Json t = root["text_config"];
    t["model_type"] = "gemma4_text";
    t["architectures"] = Json::array({"Gemma4ForCausalLM"});
    // What a text model reads from the top level of the wrapper; the image/audio/video ids stay behind.
    for (const char* key : {"tie_word_embeddings", "dtype", "torch_dtype", "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id"})
        if (root.contains(key) && !t.contains(key)) t[key] = root[key];
    return t;
}

std::string textOnlyTensorName(const Gemma4Config& c, const std::string& name) {
    Gemma4Config text = c;
    text.modelType = "gemma4_text";
    const std::string from = c.tensorPrefix(), to = text.tensorPrefix();
    return name.starts_with(from) ? to + name.substr(from.size()) : name;
}

TextOnlyReport textOnlyRepack(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                              const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.textOnly) throw UsageError("the recipe does not ask for a text-only model");
    const fs::path src = ck.dir();
    const Json text = textOnlyConfig(readJsonFile(src / files::kConfig), (src / files::kConfig).string());
    TextOnlyReport rep;

    AtomicOutputDir out(dest, force, {src});
    copySideFiles(src, out.path(), [&](const std::string& name, const fs::path&) {
        if (name == files::kConfig) {
            writeJsonFile(out.path() / name, text);
            return true;
        }
        if (isProcessorConfig(name)) {
            rep.filesDropped.push_back(name);
            return true;
        }
        return false;
    });

    std::vector<TensorSpec> plan;
    std::vector<const CheckpointTensor*> kept;
    std::uint64_t total = 0;
    for (const CheckpointTensor& t : ck.tensors()) {
        const TensorInfo& info = *t.entry->info;
        rep.paramsBefore += info.numel();
        if (isTowerTensor(info.name)) {
            ++rep.towerTensorsRemoved;
            rep.towerParamsRemoved += info.numel();
            continue;
        }
        plan.push_back(TensorSpec{textOnlyTensorName(ck.config(), info.name), info.dtype, info.shape});
        rep.paramsAfter += info.numel();
        total += info.nbytes;
        kept.push_back(&t);
    }
    SafetensorsWriter writer(out.path(), plan);
    StageMeter meter(progress, "writing tensors", total);
    std::vector<char> buf;
    for (const CheckpointTensor* t : kept)
        copyTensorBytes(*t->entry->file, *t->entry->info, writer, buf, meter, cancel, textOnlyTensorName(ck.config(), t->entry->info->name));
    writer.finish();
    meter.finish();
    rep.bytesWritten = writer.totalBytes();
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport, Json{{"recipe", toJson(recipe)}, {"source", src.string()}, {"text_only", toJson(rep)}});
    // The output must open as the text model it claims to be, before it replaces anything.
    (void)Checkpoint::open(out.path());
    out.commit();
    return rep;
}

}  // namespace whittle
