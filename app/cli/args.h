#pragma once
// A small command-line parser: positional arguments plus --flag and --key VALUE options,
// with unknown options refused by name.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace whittle::cli {

class Args {
public:
    // flags: options without a value; valued: options that take one.
    Args(const std::vector<std::string>& argv, const std::set<std::string>& flags, const std::set<std::string>& valued);

    const std::vector<std::string>& positional() const { return positional_; }
    bool flag(const std::string& name) const { return flags_.count(name) > 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::uint64_t uintValue(const std::string& name, std::uint64_t fallback) const;
    // "a,b,,c" → {"a", "b", "c"}; empty when the option is absent.
    std::vector<std::string> listValue(const std::string& name) const;

private:
    std::vector<std::string> positional_;
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
};

}  // namespace whittle::cli
