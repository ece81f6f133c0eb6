#include "core/engine/conversation.h"

#include <algorithm>

#include "core/error.h"

namespace whittle {

Conversation::Conversation(Session& session, const Tokenizer& tok, std::vector<int> stopIds)
    : session_(session), tok_(tok), stopIds_(std::move(stopIds)) {}

void Conversation::clear() {
    messages_.clear();
    fed_.clear();
    session_.reset();
}

GenerateResult Conversation::send(const std::string& user, const GenerateOptions& options, const std::function<void(std::string_view)>& onText,
                                  const CancelToken& cancel) {
    messages_.push_back({"user", user});
    return respond(options, onText, cancel);
}

GenerateResult Conversation::respond(const GenerateOptions& options, const std::function<void(std::string_view)>& onText, const CancelToken& cancel) {
    if (messages_.empty() || messages_.back().role != "user") throw UsageError("there is no user message to answer");
    std::vector<ChatMessage> all;
    if (!system_.empty()) all.push_back({"system", system_});
    all.insert(all.end(), messages_.begin(), messages_.end());
    const std::vector<int> prompt = encodeChat(tok_, all);
    // Reuse what the session holds when the new prompt continues it (and leaves at least one id to feed).
    const bool continues = session_.position() == int(fed_.size()) && fed_.size() < prompt.size() &&
                           std::equal(fed_.begin(), fed_.end(), prompt.begin());
    if (!continues) {
        session_.reset();
        fed_.clear();
    }
    reused_ = int(fed_.size());
    GenerateOptions o = options;
    o.stopIds = stopIds_;
    // The answer cannot run past the context: generate() stops there with stopReason "context".
    const GenerateResult r = generate(session_, tok_, std::span<const int>(prompt).subspan(fed_.size()), o, onText, cancel);
    // The session now holds the prompt and the answer's ids up to its position (the last sampled id is not fed).
    fed_ = prompt;
    fed_.insert(fed_.end(), r.tokens.begin(), r.tokens.end());
    fed_.resize(std::min(fed_.size(), std::size_t(session_.position())));
    messages_.push_back({"assistant", r.text});
    return r;
}

}  // namespace whittle
