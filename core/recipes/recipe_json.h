#pragma once
// Shared checks for the recipe sections' JSON: every section refuses unknown keys by name and
// names the recipe file and the key in each message.
#include <set>
#include <string>
#include <vector>

#include "core/io/json_file.h"

namespace whittle::recipe_json {

// Throws FormatError naming `where.key` for a key outside `allowed`.
void onlyKeys(const Json& obj, const std::set<std::string>& allowed, const std::string& where, const std::string& src);
std::vector<std::string> strings(const Json& v, const std::string& key, const std::string& src);
int positiveInt(const Json& v, const std::string& key, const std::string& src);

}  // namespace whittle::recipe_json
