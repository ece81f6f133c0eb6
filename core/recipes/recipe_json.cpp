#include "core/recipes/recipe_json.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace whittle::recipe_json {

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

}  // namespace whittle::recipe_json
