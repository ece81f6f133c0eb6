#pragma once
// The multilingual test corpus: every line of Debian's fortune packages (offensive sets, symlinks and
// index files left out), this repository's own C++ sources, emoji sequences and random valid code points.
// Deterministic for a given set of installed packages.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/utf8.h"

namespace whittle::test {

// The non-empty lines of fortune files ('%' separators left out), files in sorted order.
inline std::vector<std::string> fortuneFileLines(std::vector<std::filesystem::path> files) {
    std::sort(files.begin(), files.end());
    std::vector<std::string> lines;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::string line;
        while (std::getline(in, line))
            if (!line.empty() && line != "%") lines.push_back(line);
    }
    return lines;
}

inline std::vector<std::string> fortuneLines(const std::filesystem::path& root = "/usr/share/games/fortunes") {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator(); ++it) {
        const fs::path& p = it->path();
        if (it->is_symlink() || !it->is_regular_file()) continue;
        if (p.string().find("/off/") != std::string::npos || p.extension() == ".dat" || p.extension() == ".u8") continue;
        files.push_back(p);
    }
    return fortuneFileLines(std::move(files));
}

// The English sets: the files Debian's fortunes and fortunes-min packages install (fortunes-zh puts its
// Chinese files beside them).
inline std::vector<std::string> englishFortuneLines() {
    std::vector<std::filesystem::path> files;
    for (const char* list : {"/var/lib/dpkg/info/fortunes.list", "/var/lib/dpkg/info/fortunes-min.list"}) {
        std::ifstream in(list);
        std::string path;
        while (std::getline(in, path)) {
            const std::filesystem::path p(path);
            if (p.parent_path() == "/usr/share/games/fortunes" && p.extension().empty() && std::filesystem::is_regular_file(p) &&
                !std::filesystem::is_symlink(p))
                files.push_back(p);
        }
    }
    return fortuneFileLines(files);
}

// A language folder's fortunes, valid UTF-8 lines only.
inline std::vector<std::string> fortuneFolderLines(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_regular_file() && !e.is_symlink() && e.path().extension().empty()) files.push_back(e.path());
    std::vector<std::string> lines;
    for (auto& l : fortuneFileLines(files))
        if (utf8::isValid(l)) lines.push_back(std::move(l));
    return lines;
}

// Scripts an English or Latin vocabulary removes: the first `perLanguage` valid lines of the Russian
// fortunes (fortunes-ru) and of the Chinese file (fortunes-zh).
inline std::vector<std::string> russianAndChineseFortuneLines(std::size_t perLanguage = 2000) {
    std::vector<std::string> lines = fortuneFolderLines("/usr/share/games/fortunes/ru");
    lines.resize(std::min(lines.size(), perLanguage));
    std::ifstream in("/usr/share/games/fortunes/chinese", std::ios::binary);
    std::string line;
    for (std::size_t n = 0; n < perLanguage && std::getline(in, line);)
        if (!line.empty() && line != "%" && utf8::isValid(line)) lines.push_back(line), ++n;
    return lines;
}

inline std::vector<std::string> sourceLines(const std::filesystem::path& repo) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    for (const char* dir : {"core", "app", "gpu", "shaders"})
        for (const auto& e : fs::recursive_directory_iterator(repo / dir))
            if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::vector<std::string> lines;
    for (const auto& f : files) {
        std::ifstream in(f, std::ios::binary);
        std::string line;
        while (std::getline(in, line)) lines.push_back(line);
    }
    return lines;
}

inline std::vector<std::string> syntheticLines(std::uint32_t seed, int count) {
    std::vector<std::string> lines = {
        "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🇩🇪🇯🇵 flags, 1️⃣ keycap",
        "emoji run: 😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩",
        "mixed: Grüße, ça va? Привет! 你好! こんにちは! 안녕하세요! مرحبا! שלום! नमस्ते! สวัสดี!",
        "math: ∀x∈ℝ, ∃y: x² + y² ≤ ∞; ∑ᵢ aᵢ = π·r²",
        "whitespace:\t\ttabs   spaces \u00a0nbsp \u2003emsp \u3000ideographic",
    };
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> len(1, 40), plane(0, 9);
    for (int i = 0; i < count; ++i) {
        std::string s;
        for (int k = len(rng); k > 0; --k) {
            char32_t cp;
            do {
                const int p = plane(rng);
                cp = p < 5 ? char32_t(rng() % 0x80 + 0x20) : p < 8 ? char32_t(rng() % 0x10000) : char32_t(rng() % 0x110000);
            } while ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0 || cp == '\n' || cp == '\r');
            utf8::append(s, cp);
        }
        lines.push_back(s);
    }
    return lines;
}

// Unique lines in first-seen order.
inline std::vector<std::string> unique(const std::vector<std::string>& in) {
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (const auto& l : in)
        if (seen.insert(l).second) out.push_back(l);
    return out;
}

}  // namespace whittle::test
