#include "core/recipes/text_only.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io/atomic_output.h"
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

TensorStream textOnlyStream(TensorStream in, TextOnlyReport& rep) {
    SideFile& cfgFile = in.file(files::kConfig, "a checkpoint's config");
    const Json text = textOnlyConfig(cfgFile.json(), cfgFile.from.string());
    TensorStream out;
    out.origin = in.origin;
    out.config = Gemma4Config::parse(text, cfgFile.from.string());
    out.special = in.special;  // the token ids are the same
    for (const SideFile& f : in.files) {
        if (isProcessorConfig(f.name)) {
            rep.filesDropped.push_back(f.name);
            continue;
        }
        out.files.push_back(f);
        if (f.name == files::kConfig) out.files.back().text = jsonFileText(text);
    }
    std::vector<std::size_t> kept;  // upstream index of each output tensor
    for (std::size_t i = 0; i < in.tensors.size(); ++i) {
        const TensorSpec& t = in.tensors[i];
        rep.paramsBefore += t.numel();
        if (isTowerTensor(t.name)) {
            ++rep.towerTensorsRemoved;
            rep.towerParamsRemoved += t.numel();
            continue;
        }
        out.tensors.push_back(TensorSpec{textOnlyTensorName(in.config, t.name), t.dtype, t.shape});
        rep.paramsAfter += t.numel();
        kept.push_back(i);
    }
    out.read = [read = std::move(in.read), kept = std::move(kept)](std::size_t i, std::uint64_t offset, std::uint64_t n, char* dst) {
        read(kept[i], offset, n, dst);
    };
    return out;
}

TextOnlyReport textOnlyRepack(const Checkpoint& ck, const Recipe& recipe, const fs::path& dest, bool force, Progress& progress,
                              const CancelToken& cancel) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!recipe.textOnly) throw UsageError("the recipe does not ask for a text-only model");
    TextOnlyReport rep;
    const TensorStream stream = textOnlyStream(checkpointStream(ck), rep);
    AtomicOutputDir out(dest, force, {ck.dir()});
    rep.bytesWritten = writeStream(stream, out.path(), progress, cancel).tensorBytes;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    writeJsonFile(out.path() / files::kWhittleReport, Json{{"recipe", toJson(recipe)}, {"source", ck.dir().string()}, {"text_only", toJson(rep)}});
    // The output must open as the text model it claims to be, before it replaces anything.
    (void)Checkpoint::open(out.path());
    out.commit();
    return rep;
}

}  // namespace whittle
