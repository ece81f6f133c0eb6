#pragma once
// A conversation with branches: every edit of a user message and every regenerated answer is a sibling of
// what it replaces, so nothing is lost and the Chat page shows "‹ 2/3 ›" to switch. The active path (each
// node's active child, from the root) is the conversation on screen. Saved and reopened as JSON.
#include <QString>
#include <QVariantMap>
#include <vector>

#include "core/io/json_file.h"
#include "core/tokenizer/chat_format.h"

namespace whittle::gui {

struct ChatNode {
    QString role;  // "root", "user", "assistant"
    QString text;
    QVariantMap stats;  // answers: prompt_tokens, tokens, prefill_tok_s, decode_tok_s, stop, device
    int parent = -1;
    std::vector<int> children;
    int active = -1;  // index into children
};

class ChatTree {
public:
    ChatTree();
    // Adds a child of `parent` and makes it the active one; returns its id.
    int add(int parent, const QString& role, const QString& text, const QVariantMap& stats = {});
    const ChatNode& node(int id) const { return nodes_.at(std::size_t(id)); }
    ChatNode& node(int id) { return nodes_.at(std::size_t(id)); }
    int size() const { return int(nodes_.size()); }
    // The conversation on screen: node ids from the root's active child down.
    std::vector<int> activePath() const;
    int last() const;  // the last node of the active path (0, the root, when empty)
    // The messages from the root to `id`, inclusive.
    std::vector<ChatMessage> messagesTo(int id) const;
    int siblingIndex(int id) const;  // 0-based
    int siblingCount(int id) const;
    // Makes the sibling `delta` steps away the active one (clamped).
    void switchSibling(int id, int delta);
    void clear();

    Json toJson(const QString& systemPrompt) const;
    // Throws FormatError naming `file` for a malformed conversation.
    static ChatTree fromJson(const Json& j, const std::string& file, QString* systemPrompt);

private:
    std::vector<ChatNode> nodes_;
};

}  // namespace whittle::gui
