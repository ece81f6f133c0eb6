#include "core/io/json_file.h"

#include <set>
#include <vector>

#include "core/error.h"
#include "core/io/file.h"

namespace whittle {

namespace {
constexpr int kMaxDepth = 128;

std::string label(const std::string& where, const char* key) {
    return where.empty() ? std::string("'") + key + "'" : "'" + where + "." + key + "'";
}
}  // namespace

Json parseJson(std::string_view text, const std::string& file) {
    std::vector<std::set<std::string>> keys;
    auto cb = [&](int depth, Json::parse_event_t ev, Json& parsed) -> bool {
        if (depth > kMaxDepth) throw FormatError(file, {}, "JSON nested deeper than " + std::to_string(kMaxDepth));
        switch (ev) {
        case Json::parse_event_t::object_start: keys.emplace_back(); break;
        case Json::parse_event_t::object_end: keys.pop_back(); break;
        case Json::parse_event_t::key:
            if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
                throw FormatError(file, {}, "duplicate JSON key '" + parsed.get<std::string>() + "'");
            break;
        default: break;
        }
        return true;
    };
    try {
        return Json::parse(text.begin(), text.end(), cb);
    } catch (const Json::parse_error& e) {
        // nlohmann's message starts with "[json.exception.parse_error.101] parse error at line 1, ...".
        std::string what = e.what();
        const auto pos = what.find("] ");
        throw FormatError(file, {}, "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
    }
}

Json readJsonFile(const std::filesystem::path& path, std::uint64_t maxBytes) {
    return parseJson(readTextFile(path, maxBytes), path.string());
}

void writeTextFile(const std::filesystem::path& path, std::string_view text) {
    FileHandle f = FileHandle::createWrite(path);
    f.pwriteAll(text.data(), text.size(), 0);
    f.sync();
    f.close();
}

void writeJsonFile(const std::filesystem::path& path, const Json& j) { writeTextFile(path, j.dump(2) + "\n"); }

int requireInt(const Json& obj, const char* key, const std::string& file, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) throw FormatError(file, {}, "missing required field " + label(where, key));
    if (!it->is_number_integer()) throw FormatError(file, {}, "field " + label(where, key) + " must be an integer");
    const auto v = it->get<std::int64_t>();
    if (v < 0 || v > (std::int64_t(1) << 31) - 1)
        throw FormatError(file, {}, "field " + label(where, key) + " is out of range (" + std::to_string(v) + ")");
    return int(v);
}

double requireNumber(const Json& obj, const char* key, const std::string& file, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) throw FormatError(file, {}, "missing required field " + label(where, key));
    if (!it->is_number()) throw FormatError(file, {}, "field " + label(where, key) + " must be a number");
    return it->get<double>();
}

bool optionalBool(const Json& obj, const char* key, bool fallback, const std::string& file, const std::string& where) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw FormatError(file, {}, "field " + label(where, key) + " must be true or false");
    return it->get<bool>();
}

}  // namespace whittle
