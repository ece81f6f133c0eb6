#include "core/recipe/recipe.h"

#include <set>

#include "core/error.h"

namespace whittle {

namespace {
void onlyKeys(const Json& obj, const std::set<std::string>& allowed, const std::string& where, const std::string& src) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (!allowed.count(it.key()))
            throw FormatError(src, {}, "unknown key '" + (where.empty() ? "" : where + ".") + it.key() + "' in the recipe");
}

std::vector<std::string> strings(const Json& v, const std::string& key, const std::string& src) {
    if (!v.is_array()) throw FormatError(src, {}, "'" + key + "' must be a list of strings");
    std::vector<std::string> out;
    for (const auto& e : v) {
        if (!e.is_string()) throw FormatError(src, {}, "'" + key + "' must be a list of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

int positiveInt(const Json& v, const std::string& key, const std::string& src) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 1 << 20)
        throw FormatError(src, {}, "'" + key + "' must be a positive integer");
    return v.get<int>();
}
}  // namespace

Json toJson(const Recipe& r) {
    Json j = {{"whittle_recipe", Recipe::kVersion}};
    if (r.vocabulary) {
        const auto& v = *r.vocabulary;
        Json s = Json::object();
        if (!v.preset.empty()) s["preset"] = v.preset;
        if (!v.buckets.empty()) s["buckets"] = v.buckets;
        if (!v.corpusFiles.empty()) s["corpus_files"] = v.corpusFiles;
        s["corpus_min_count"] = v.corpusMinCount;
        s["pad_multiple"] = v.padMultiple;
        j["vocabulary"] = s;
    }
    return j;
}

Recipe parseRecipe(const Json& j, const std::string& src) {
    if (!j.is_object()) throw FormatError(src, {}, "a recipe is a JSON object");
    if (!j.contains("whittle_recipe")) throw FormatError(src, {}, "not a Whittle recipe: missing \"whittle_recipe\": 1");
    if (!j["whittle_recipe"].is_number_integer() || j["whittle_recipe"].get<int>() != Recipe::kVersion)
        throw FormatError(src, {}, "recipe version " + j["whittle_recipe"].dump() + " is not supported (this Whittle reads version 1)");
    onlyKeys(j, {"whittle_recipe", "vocabulary"}, "", src);
    Recipe r;
    if (j.contains("vocabulary")) {
        const Json& v = j["vocabulary"];
        if (!v.is_object()) throw FormatError(src, {}, "'vocabulary' must be an object");
        onlyKeys(v, {"preset", "buckets", "corpus_files", "corpus_min_count", "pad_multiple"}, "vocabulary", src);
        VocabularyRecipe s;
        if (v.contains("preset")) {
            if (!v["preset"].is_string()) throw FormatError(src, {}, "'vocabulary.preset' must be a string");
            s.preset = v["preset"].get<std::string>();
        }
        if (v.contains("buckets")) s.buckets = strings(v["buckets"], "vocabulary.buckets", src);
        if (v.contains("corpus_files")) s.corpusFiles = strings(v["corpus_files"], "vocabulary.corpus_files", src);
        if (v.contains("corpus_min_count")) s.corpusMinCount = positiveInt(v["corpus_min_count"], "vocabulary.corpus_min_count", src);
        if (v.contains("pad_multiple")) s.padMultiple = positiveInt(v["pad_multiple"], "vocabulary.pad_multiple", src);
        if (s.preset.empty() == s.buckets.empty())
            throw FormatError(src, {}, "'vocabulary' needs exactly one of 'preset' or 'buckets'");
        r.vocabulary = s;
    }
    return r;
}

Recipe loadRecipe(const std::filesystem::path& file) { return parseRecipe(readJsonFile(file), file.string()); }

}  // namespace whittle
