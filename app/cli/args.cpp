#include "app/cli/args.h"

#include "core/error.h"

namespace whittle::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& flags,
           const std::set<std::string>& valued) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() > 2 && a.rfind("--", 0) == 0) {
            std::string name = a.substr(2), val;
            const auto eq = name.find('=');
            const bool inlineValue = eq != std::string::npos;
            if (inlineValue) {
                val = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            if (flags.count(name) && !inlineValue) {
                flags_.insert(name);
            } else if (valued.count(name)) {
                if (!inlineValue) {
                    if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
                    val = argv[++i];
                }
                values_[name] = val;
            } else {
                throw UsageError("unknown option --" + name);
            }
        } else {
            positional_.push_back(a);
        }
    }
}

std::optional<std::string> Args::value(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

std::uint64_t Args::uintValue(const std::string& name, std::uint64_t fallback) const {
    const auto v = value(name);
    if (!v) return fallback;
    try {
        std::size_t used = 0;
        const auto n = std::stoull(*v, &used);
        if (used != v->size() || (*v)[0] == '-') throw std::invalid_argument("");
        return n;
    } catch (const std::exception&) {
        throw UsageError("option --" + name + " needs a non-negative integer, got '" + *v + "'");
    }
}

std::vector<std::string> Args::listValue(const std::string& name) const {
    std::vector<std::string> out;
    const auto v = value(name);
    if (!v) return out;
    std::string rest = *v;
    for (std::size_t p; (p = rest.find(',')) != std::string::npos; rest = rest.substr(p + 1))
        if (p) out.push_back(rest.substr(0, p));
    if (!rest.empty()) out.push_back(rest);
    return out;
}

}  // namespace whittle::cli
