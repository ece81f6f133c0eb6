#pragma once
// Shared helpers for the Qt Test suites.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace whittle::test {

// Under CI=true nothing may be skipped: an unavailable prerequisite fails the test instead.
#define WHITTLE_REQUIRE_OR_SKIP(cond, msg)                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            if (qEnvironmentVariable("CI") == QLatin1String("true")) QFAIL(msg); \
            QSKIP(msg);                                                       \
        }                                                                     \
    } while (0)

// Checks that `expr` throws an exception of type E whose message contains every given fragment.
#define WHITTLE_EXPECT_ERROR(expr, E, ...)                                                         \
    do {                                                                                           \
        bool thrown_ = false;                                                                      \
        try {                                                                                      \
            expr;                                                                                  \
        } catch (const E& e_) {                                                                    \
            thrown_ = true;                                                                        \
            const std::string msg_ = e_.what();                                                    \
            for (const char* frag_ : {__VA_ARGS__})                                                \
                if (msg_.find(frag_) == std::string::npos)                                         \
                    QFAIL(qPrintable(QString("message '%1' lacks '%2'").arg(msg_.c_str(), frag_))); \
        }                                                                                          \
        if (!thrown_) QFAIL("expected " #E " from: " #expr);                                       \
    } while (0)

// The bundled default model (resources/models/whittle-gemma4-tiny).
inline std::filesystem::path bundledModelDir() {
    return std::filesystem::path(WHITTLE_SOURCE_DIR) / "resources" / "models" / "whittle-gemma4-tiny";
}

// Where tests/peers/install.sh put the npm peers: $WHITTLE_PEERS_DIR (CTest sets it), else build/default/npm.
inline std::filesystem::path peersDir() {
    const QString env = qEnvironmentVariable("WHITTLE_PEERS_DIR");
    return env.isEmpty() ? std::filesystem::path(WHITTLE_SOURCE_DIR) / "build" / "default" / "npm"
                         : std::filesystem::path(env.toStdString());
}

inline std::filesystem::path tempPath(const QTemporaryDir& d, const char* name = "") {
    return std::filesystem::path(d.path().toStdString()) / name;
}

inline std::string readBytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

inline void writeBytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

// An unsigned 64-bit little-endian integer as 8 bytes (the safetensors header length field).
inline std::string le64(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
    return s;
}

struct CliResult {
    int exitCode = -1;
    QProcess::ExitStatus status = QProcess::CrashExit;
    QString out, err;
};

inline CliResult runCli(const QStringList& args, int timeoutMs = 120000) {
    QProcess p;
    p.start(QStringLiteral(WHITTLE_CLI_PATH), args);
    CliResult r;
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished();
        r.err = "timed out";
        return r;
    }
    r.exitCode = p.exitCode();
    r.status = p.exitStatus();
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
}

// Seeded Gaussian values (weights by default: sd 0.02), the same on every machine for a seed.
inline std::vector<float> randomWeights(std::int64_t n, std::uint64_t seed, float sd = 0.02f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, sd);
    std::vector<float> w(static_cast<std::size_t>(n));
    for (float& v : w) v = d(rng);
    return w;
}

// Names the first differing byte, so a failure says where a layout went wrong (empty when equal).
using Bytes = std::vector<std::uint8_t>;
inline QString diffBytes(const Bytes& got, const Bytes& want) {
    if (got.size() != want.size()) return QString("size %1, expected %2").arg(got.size()).arg(want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i] != want[i]) return QString("byte %1 is 0x%2, expected 0x%3").arg(i).arg(got[i], 2, 16, QChar('0')).arg(want[i], 2, 16, QChar('0'));
    return {};
}

// The partial output folders (<dest>.partial-…) next to a destination, by name.
inline std::vector<std::string> partialFolders(const std::filesystem::path& dest) {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dest.parent_path()))
        if (e.path().filename().string().rfind(dest.filename().string() + ".partial-", 0) == 0) v.push_back(e.path().filename().string());
    return v;
}
inline bool anyPartial(const std::filesystem::path& dest) { return !partialFolders(dest).empty(); }

}  // namespace whittle::test

#define COMPARE_BYTES(got, want)                                          \
    do {                                                                  \
        const QString d_ = whittle::test::diffBytes(got, want);           \
        QVERIFY2(d_.isEmpty(), qPrintable(d_));                           \
    } while (0)
