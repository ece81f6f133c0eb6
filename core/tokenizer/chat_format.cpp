#include "core/tokenizer/chat_format.h"

#include "core/error.h"

namespace whittle {

namespace {

std::string roleName(const std::string& role) {
    if (role == "assistant" || role == "model") return "model";
    if (role == "user" || role == "system") return role;
    throw UsageError("unknown chat role '" + role + "' (use system, user or assistant)");
}

std::string trimmed(const std::string& s) {
    const char* ws = " \t\n\r\f\v";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Calls emit(text, isContent) for each piece of the rendered prompt.
template <class F>
void walk(const std::vector<ChatMessage>& messages, const ChatOptions& o, F&& emit) {
    emit("<bos>", false);
    for (const auto& m : messages) {
        emit("<|turn>" + roleName(m.role) + "\n", false);
        emit(trimmed(m.content), true);
        emit("<turn|>\n", false);
    }
    if (o.addGenerationPrompt) {
        emit("<|turn>model\n", false);
        if (o.emptyThoughtBlock) emit("<|channel>thought\n<channel|>", false);
    }
}

}  // namespace

std::string renderChat(const std::vector<ChatMessage>& messages, const ChatOptions& options) {
    std::string out;
    walk(messages, options, [&](const std::string& piece, bool) { out += piece; });
    return out;
}

std::vector<int> encodeChat(const Tokenizer& tok, const std::vector<ChatMessage>& messages, const ChatOptions& options) {
    std::vector<int> ids;
    walk(messages, options, [&](const std::string& piece, bool content) {
        EncodeOptions eo;
        eo.addSpecialTokens = false;
        eo.parseSpecial = !content;
        const auto part = tok.encode(piece, eo);
        ids.insert(ids.end(), part.begin(), part.end());
    });
    return ids;
}

}  // namespace whittle
