#pragma once
// The names of the files in a checkpoint folder that Whittle reads or writes — the one place they are spelt, so
// a stage that writes a file and the reader that looks for it cannot drift apart. Tensor shards are named by
// the safetensors writer (model.safetensors, model-0000N-of-0000M.safetensors + the index).
namespace whittle::files {

// Hugging Face's
inline constexpr const char* kConfig = "config.json";
inline constexpr const char* kGenerationConfig = "generation_config.json";
inline constexpr const char* kTokenizer = "tokenizer.json";
inline constexpr const char* kTokenizerConfig = "tokenizer_config.json";
inline constexpr const char* kChatTemplate = "chat_template.jinja";
inline constexpr const char* kSafetensorsIndex = "model.safetensors.index.json";
inline constexpr const char* kProcessorConfig = "processor_config.json";
inline constexpr const char* kPreprocessorConfig = "preprocessor_config.json";
inline constexpr const char* kVideoPreprocessorConfig = "video_preprocessor_config.json";
// Quantization formats' side files: GPTQ (AutoGPTQ / GPTQModel) and NVFP4 (ModelOpt)
inline constexpr const char* kGptqQuantizeConfig = "quantize_config.json";
inline constexpr const char* kModelOptQuantConfig = "hf_quant_config.json";
// Whittle's: the run's record (recipe, stage reports, quality) and a pruned vocabulary's id map
inline constexpr const char* kWhittleReport = "whittle.json";
inline constexpr const char* kVocabMapping = "vocab_mapping.json";
// The held-out text the bundled model ships (default calibration and evaluation text)
inline constexpr const char* kHeldoutText = "heldout.txt";

}  // namespace whittle::files
