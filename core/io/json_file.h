#pragma once
// JSON parsing that treats hostile input as a FormatError naming the file: duplicate keys, absurd nesting
// and syntax errors are refused instead of silently accepted.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>  // sources that use Json values include <nlohmann/json.hpp>

namespace whittle {

using Json = nlohmann::json;

Json parseJson(std::string_view text, const std::string& file);
Json readJsonFile(const std::filesystem::path& path, std::uint64_t maxBytes = 64ull << 20);

// Writes JSON (2-space indent, trailing newline) to a new file; refuses to overwrite.
void writeJsonFile(const std::filesystem::path& path, const Json& j);
void writeTextFile(const std::filesystem::path& path, std::string_view text);

// Typed field access for config files: missing or mistyped fields become FormatErrors naming the key.
int requireInt(const Json& obj, const char* key, const std::string& file, const std::string& where = {});
double requireNumber(const Json& obj, const char* key, const std::string& file, const std::string& where = {});
bool optionalBool(const Json& obj, const char* key, bool fallback, const std::string& file,
                  const std::string& where = {});

}  // namespace whittle
