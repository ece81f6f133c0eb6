#pragma once
// A chat on one Session: the messages so far, and the ids the session already holds, so each new turn feeds only
// what is new (the session cannot rewind, so when the transcript no longer starts with what it holds — an edited
// message, a regenerated answer — it starts over). Shared by `whittle-cli chat` and the GUI's Chat page.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine/generator.h"
#include "core/tokenizer/chat_format.h"

namespace whittle {

class Conversation {
public:
    Conversation(Session& session, const Tokenizer& tok, std::vector<int> stopIds);

    void setSystemPrompt(std::string text) { system_ = std::move(text); }
    const std::string& systemPrompt() const { return system_; }
    // user/assistant messages in order (the system prompt is kept apart).
    const std::vector<ChatMessage>& messages() const { return messages_; }
    // Replaces the messages (a branch of an edited conversation); the next respond() answers the last one.
    void setMessages(std::vector<ChatMessage> m) { messages_ = std::move(m); }
    void clear();

    // Adds the user's message and answers it; the answer is added as the assistant's message (also when stopped).
    GenerateResult send(const std::string& user, const GenerateOptions& options, const std::function<void(std::string_view)>& onText,
                        const CancelToken& cancel);
    // Answers the messages as they are (the last must be the user's): regenerate, edit-and-resend.
    GenerateResult respond(const GenerateOptions& options, const std::function<void(std::string_view)>& onText, const CancelToken& cancel);

    // Ids fed to the session and reused by the last respond() (a measure of the prefix cache, for tests).
    int reusedTokens() const { return reused_; }
    int fedTokens() const { return int(fed_.size()); }

private:
    Session& session_;
    const Tokenizer& tok_;
    std::vector<int> stopIds_;
    std::string system_;
    std::vector<ChatMessage> messages_;
    std::vector<int> fed_;  // what the session holds, position by position
    int reused_ = 0;
};

}  // namespace whittle
