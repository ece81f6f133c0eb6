#pragma once
// Gemma 4's chat format (GEMMA4.md §6): <bos>, then "<|turn>ROLE\n" + trimmed content + "<turn|>\n" per message,
// "assistant" written as "model", and "<|turn>model\n" as the generation prompt.
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace whittle {

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" (or "model")
    std::string content;
};

struct ChatOptions {
    bool addGenerationPrompt = true;
    bool emptyThoughtBlock = false;  // newer templates append "<|channel>thought\n<channel|>" to the prompt
};

// The prompt as text (for display and for comparison with a Jinja rendering of chat_template.jinja).
std::string renderChat(const std::vector<ChatMessage>& messages, const ChatOptions& options = {});

// The prompt as ids. Message content is encoded without matching special tokens, so a user who types
// "<turn|>" gets those characters, not an end-of-turn marker.
std::vector<int> encodeChat(const Tokenizer& tok, const std::vector<ChatMessage>& messages, const ChatOptions& options = {});

}  // namespace whittle
