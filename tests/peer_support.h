#pragma once
// Helpers for the suites that compare Whittle with the independent peers of tests/peers/ (llama.cpp through
// llama_logits.mjs, Hugging Face's tokenizers through hf_encode.mjs): running them, decoding their answers,
// and the logit comparisons with the tolerance rules of design.md §5.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/io/json_file.h"
#include "core/reference/reference_session.h"
#include "test_support.h"

#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStandardPaths>

namespace whittle::test {

constexpr double kLogitTolerance = 2e-3;  // max|Δ| / max|ref| per position, F32 weights and F32 KV cache
constexpr double kTieMargin = 1e-3;       // a top-2 margin below this · max|logit| is a near tie
constexpr double kTeacherForcedTolerance = 1e-2;  // after a near tie, F16 weights and F16 KV cache

// Where tests/peers/install.sh put the peers (CTest sets WHITTLE_PEERS_DIR).

inline bool haveNode() { return !QStandardPaths::findExecutable("node").isEmpty(); }

inline bool haveLlamaPeer() {
    return std::filesystem::exists(peersDir() / "node_modules/node-llama-cpp/package.json") &&
           std::filesystem::exists(peersDir() / "node_modules/@node-llama-cpp/linux-x64/package.json");
}

inline bool haveHfPeer() { return std::filesystem::exists(peersDir() / "node_modules/@huggingface/tokenizers/package.json"); }

// One step's logits from the peer's base64 little-endian Float32Array.
inline std::vector<float> decodeLogits(const QJsonValue& v) {
    const QByteArray raw = QByteArray::fromBase64(v.toString().toLatin1());
    std::vector<float> out(std::size_t(raw.size()) / sizeof(float));
    std::memcpy(out.data(), raw.constData(), out.size() * sizeof(float));
    return out;
}

inline QJsonArray idArray(const std::vector<int>& ids) {
    QJsonArray a;
    for (int id : ids) a.append(id);
    return a;
}

inline std::vector<int> toIds(const QJsonValue& v) {
    std::vector<int> out;
    for (const auto& e : v.toArray()) out.push_back(e.toInt());
    return out;
}

inline int argmax(const float* l, std::size_t n) {
    return int(std::max_element(l, l + n) - l);  // the first (lowest id) maximum, as llama_logits.mjs does
}

inline double maxAbs(const float* l, std::size_t n) {
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(l[i])));
    return m;
}

// max|a − b| / max|b|
inline double relativeError(const float* a, const float* b, std::size_t n) {
    double d = 0;
    for (std::size_t i = 0; i < n; ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d / std::max(maxAbs(b, n), 1e-30);
}

inline double topTwoMargin(const float* l, std::size_t n) {
    float a = -INFINITY, b = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        if (l[i] > a) {
            b = a;
            a = l[i];
        } else if (l[i] > b) {
            b = l[i];
        }
    }
    return double(a) - double(b);
}

// Where two logit rows pick different tokens, whether the reference's choice is a near tie (then either
// answer is right): top-2 margin < kTieMargin · max|logit|.
inline bool nearTie(const float* ref, std::size_t n) { return topTwoMargin(ref, n) < kTieMargin * maxAbs(ref, n); }

// Runs tests/peers/llama_logits.mjs on `request` (written to reqPath); its JSON answer, or an empty object
// after a warning naming what failed.
inline QJsonObject runLlamaPeer(const QJsonObject& request, const std::filesystem::path& reqPath, int timeoutMs = 180000) {
    writeBytes(reqPath, QJsonDocument(request).toJson(QJsonDocument::Compact).toStdString());
    QProcess node;
    QElapsedTimer t;
    t.start();
    node.start("node", {QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/llama_logits.mjs"), QString::fromStdString(reqPath.string())});
    if (!node.waitForFinished(timeoutMs)) {
        node.kill();
        node.waitForFinished();
        qWarning("llama_logits.mjs timed out on %s", reqPath.filename().c_str());
        return {};
    }
    const QByteArray out = node.readAllStandardOutput();
    if (node.exitStatus() != QProcess::NormalExit || node.exitCode() != 0) {
        qWarning("llama_logits.mjs failed (%d): %s", node.exitCode(), node.readAllStandardError().constData());
        return {};
    }
    qInfo("%s: llama.cpp answered in %lld ms (%lld KB of JSON)", reqPath.filename().c_str(), t.elapsed(), qint64(out.size() / 1024));
    return QJsonDocument::fromJson(out).object();
}

// Runs tests/peers/hf_encode.mjs (Hugging Face's tokenizers) over `lines`: the ids of each line, in order;
// empty (after a warning) when the peer failed. `flags` are hf_encode's options, e.g. {"--no-special"}.
inline std::vector<std::vector<int>> runHfEncode(const std::filesystem::path& tokenizerJson, const std::filesystem::path& configJson,
                                                 const std::vector<std::string>& lines, const std::filesystem::path& workDir,
                                                 const QStringList& flags = {}, int timeoutMs = 240000) {
    const std::filesystem::path in = workDir / "hf-in.jsonl", out = workDir / "hf-out.jsonl";
    {
        std::ofstream f(in, std::ios::binary | std::ios::trunc);
        for (const auto& l : lines) f << Json(l).dump() << '\n';
    }
    QProcess node;
    QElapsedTimer t;
    t.start();
    node.start("node", QStringList{QStringLiteral(WHITTLE_SOURCE_DIR "/tests/peers/hf_encode.mjs")}
                           << flags << QString::fromStdString(tokenizerJson.string()) << QString::fromStdString(configJson.string())
                           << QString::fromStdString(in.string()) << QString::fromStdString(out.string()));
    if (!node.waitForFinished(timeoutMs)) {
        node.kill();
        node.waitForFinished();
        qWarning("hf_encode.mjs timed out");
        return {};
    }
    if (node.exitStatus() != QProcess::NormalExit || node.exitCode() != 0) {
        qWarning("hf_encode.mjs failed (%d): %s", node.exitCode(), node.readAllStandardError().constData());
        return {};
    }
    std::vector<std::vector<int>> ids;
    std::ifstream f(out, std::ios::binary);
    for (std::string line; std::getline(f, line);) ids.push_back(Json::parse(line).get<std::vector<int>>());
    qInfo("hf_encode.mjs: %zu lines through %s in %lld ms", ids.size(), tokenizerJson.filename().c_str(), t.elapsed());
    return ids;
}

// Our greedy continuation next to the peer's (its tokens and the logits of each of its steps), with the
// rule of design.md §5: identical, or at the first difference our top-2 margin is a near tie — then the
// peer's logits along its own continuation are compared with ours, teacher-forced.
struct GreedyComparison {
    std::vector<int> ours;
    int firstDifference = -1;   // -1: identical
    double margin = 0;          // our top-2 margin at the first difference, as a fraction of max|logit|
    double teacherForced = -1;  // max|Δ|/max|ref| over the peer's continuation (after a difference only)
    bool acceptable() const { return acceptable(kTieMargin, kTeacherForcedTolerance); }
    // The same rule for a peer whose logits are known to differ by more than the 2e-3 bar (llama.cpp with
    // quantized weights quantizes activations too): a margin below `tieMargin` may flip.
    bool acceptable(double tieMargin, double teacherForcedTolerance) const {
        return firstDifference < 0 || (margin < tieMargin && teacherForced >= 0 && teacherForced <= teacherForcedTolerance);
    }
};

inline GreedyComparison compareGreedy(const ReferenceModel& model, const std::vector<int>& prompt, const std::vector<int>& theirTokens,
                                      const QJsonArray& theirLogits) {
    const std::size_t V = std::size_t(model.vocabSize());
    GreedyComparison g;
    ReferenceSession s(model, 512, 32);
    std::vector<std::vector<float>> ourLogits;
    auto step = s.forward(prompt);
    for (std::size_t i = 0; i < theirTokens.size(); ++i) {
        ourLogits.emplace_back(step.begin(), step.end());
        const int next = argmax(step.data(), V);
        g.ours.push_back(next);
        const int in[1] = {next};
        step = s.forward(in);
    }
    const auto diff = std::mismatch(g.ours.begin(), g.ours.end(), theirTokens.begin());
    if (diff.first == g.ours.end()) return g;
    const std::size_t k = std::size_t(diff.first - g.ours.begin());
    g.firstDifference = int(k);
    g.margin = topTwoMargin(ourLogits[k].data(), V) / maxAbs(ourLogits[k].data(), V);
    s.reset();
    step = s.forward(prompt);
    g.teacherForced = 0;
    for (std::size_t i = 0; i < theirTokens.size(); ++i) {
        const std::vector<float> t = decodeLogits(theirLogits[int(i)]);
        if (t.size() != V) return g.teacherForced = 1e30, g;
        g.teacherForced = std::max(g.teacherForced, relativeError(t.data(), step.data(), V));
        const int in[1] = {theirTokens[i]};
        step = s.forward(in);
    }
    return g;
}

}  // namespace whittle::test
