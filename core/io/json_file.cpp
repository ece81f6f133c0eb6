#include "core/io/json_file.h"

#include <nlohmann/json.hpp>

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

// nlohmann's DOM builder behind a SAX filter that refuses duplicate keys and deep nesting. (Its callback
// parser would do the same, but in 3.11.2 its end_object rescans the parent container, which made a
// tokenizer.json with 258k added tokens take 45 s to parse.)
class CheckedDomBuilder {
public:
    CheckedDomBuilder(Json& result, const std::string& file) : dom_(result, true), file_(file) {}
    bool null() { return dom_.null(); }
    bool boolean(bool v) { return dom_.boolean(v); }
    bool number_integer(Json::number_integer_t v) { return dom_.number_integer(v); }
    bool number_unsigned(Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
    bool number_float(Json::number_float_t v, const std::string& s) { return dom_.number_float(v, s); }
    bool string(std::string& v) { return dom_.string(v); }
    bool binary(Json::binary_t& v) { return dom_.binary(v); }
    bool start_object(std::size_t n) {
        enter();
        keys_.emplace_back();
        return dom_.start_object(n);
    }
    bool key(std::string& k) {
        if (!keys_.back().insert(k).second) throw FormatError(file_, {}, "duplicate JSON key '" + k + "'");
        return dom_.key(k);
    }
    bool end_object() {
        keys_.pop_back();
        --depth_;
        return dom_.end_object();
    }
    bool start_array(std::size_t n) {
        enter();
        return dom_.start_array(n);
    }
    bool end_array() {
        --depth_;
        return dom_.end_array();
    }
    template <class Exception>
    bool parse_error(std::size_t pos, const std::string& token, const Exception& e) {
        return dom_.parse_error(pos, token, e);
    }

private:
    void enter() {
        if (++depth_ > kMaxDepth) throw FormatError(file_, {}, "JSON nested deeper than " + std::to_string(kMaxDepth));
    }
    nlohmann::detail::json_sax_dom_parser<Json> dom_;
    const std::string& file_;
    std::vector<std::set<std::string>> keys_;
    int depth_ = 0;
};

Json parseJson(std::string_view text, const std::string& file) {
    Json result;
    CheckedDomBuilder sax(result, file);
    try {
        Json::sax_parse(text.begin(), text.end(), &sax);
        return result;
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
