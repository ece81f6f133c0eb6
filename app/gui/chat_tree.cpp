#include "app/gui/chat_tree.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace whittle::gui {

ChatTree::ChatTree() { clear(); }

void ChatTree::clear() {
    nodes_.clear();
    nodes_.push_back(ChatNode{"root", {}, {}, -1, {}, -1});
}

int ChatTree::add(int parent, const QString& role, const QString& text, const QVariantMap& stats) {
    const int id = int(nodes_.size());
    nodes_.push_back(ChatNode{role, text, stats, parent, {}, -1});
    ChatNode& p = nodes_.at(std::size_t(parent));
    p.children.push_back(id);
    p.active = int(p.children.size()) - 1;
    return id;
}

std::vector<int> ChatTree::activePath() const {
    std::vector<int> path;
    for (int id = 0;;) {
        const ChatNode& n = nodes_[std::size_t(id)];
        if (n.active < 0) break;
        id = n.children[std::size_t(n.active)];
        path.push_back(id);
    }
    return path;
}

int ChatTree::last() const {
    const auto p = activePath();
    return p.empty() ? 0 : p.back();
}

std::vector<ChatMessage> ChatTree::messagesTo(int id) const {
    std::vector<ChatMessage> m;
    for (; id > 0; id = nodes_[std::size_t(id)].parent)
        m.push_back({nodes_[std::size_t(id)].role.toStdString(), nodes_[std::size_t(id)].text.toStdString()});
    std::reverse(m.begin(), m.end());
    return m;
}

int ChatTree::siblingIndex(int id) const {
    const ChatNode& p = nodes_.at(std::size_t(nodes_.at(std::size_t(id)).parent));
    return int(std::find(p.children.begin(), p.children.end(), id) - p.children.begin());
}

int ChatTree::siblingCount(int id) const { return int(nodes_.at(std::size_t(nodes_.at(std::size_t(id)).parent)).children.size()); }

void ChatTree::switchSibling(int id, int delta) {
    ChatNode& p = nodes_.at(std::size_t(nodes_.at(std::size_t(id)).parent));
    p.active = std::clamp(siblingIndex(id) + delta, 0, int(p.children.size()) - 1);
}

Json ChatTree::toJson(const QString& systemPrompt) const {
    Json nodes = Json::array();
    for (const auto& n : nodes_) {
        Json children = Json::array();
        for (int c : n.children) children.push_back(c);
        const QByteArray stats = QJsonDocument(QJsonObject::fromVariantMap(n.stats)).toJson(QJsonDocument::Compact);
        nodes.push_back(Json{{"role", n.role.toStdString()},
                             {"text", n.text.toStdString()},
                             {"parent", n.parent},
                             {"children", children},
                             {"active", n.active},
                             {"stats", Json::parse(stats.toStdString())}});
    }
    return Json{{"format", "whittle-chat"}, {"version", 1}, {"system", systemPrompt.toStdString()}, {"nodes", nodes}};
}

ChatTree ChatTree::fromJson(const Json& j, const std::string& file, QString* systemPrompt) {
    try {
        if (j.value("format", "") != "whittle-chat") throw FormatError(file, {}, "not a Whittle conversation (no \"format\": \"whittle-chat\")");
        ChatTree t;
        t.nodes_.clear();
        for (const auto& n : j.at("nodes")) {
            ChatNode c;
            c.role = QString::fromStdString(n.at("role").get<std::string>());
            c.text = QString::fromStdString(n.at("text").get<std::string>());
            c.parent = n.at("parent").get<int>();
            c.children = n.at("children").get<std::vector<int>>();
            c.active = n.at("active").get<int>();
            c.stats = QJsonDocument::fromJson(QByteArray::fromStdString(n.value("stats", Json::object()).dump())).object().toVariantMap();
            t.nodes_.push_back(std::move(c));
        }
        const int count = int(t.nodes_.size());
        if (count == 0 || t.nodes_[0].role != "root") throw FormatError(file, {}, "the conversation has no root node");
        for (int i = 0; i < count; ++i) {
            const ChatNode& n = t.nodes_[std::size_t(i)];
            if ((i > 0 && (n.parent < 0 || n.parent >= i)) || n.active >= int(n.children.size()) || (n.active < 0 && !n.children.empty()))
                throw FormatError(file, {}, "node " + std::to_string(i) + " has a bad parent or active child");
            for (int c : n.children)
                if (c <= i || c >= count || t.nodes_[std::size_t(c)].parent != i)
                    throw FormatError(file, {}, "node " + std::to_string(i) + " lists a child that is not its own");
        }
        if (systemPrompt) *systemPrompt = QString::fromStdString(j.value("system", ""));
        return t;
    } catch (const Json::exception& e) {
        throw FormatError(file, {}, std::string("malformed conversation: ") + e.what());
    }
}

}  // namespace whittle::gui
