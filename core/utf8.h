#pragma once
// Minimal UTF-8 helpers for the tokenizer: decode one scalar value, tolerate invalid bytes.
#include <cstdint>
#include <string>
#include <string_view>

namespace whittle::utf8 {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not valid UTF-8
// (overlong forms, surrogates and values past U+10FFFF are invalid).
std::size_t validSequenceLength(std::string_view s, std::size_t i);

// Decodes the valid sequence of length len at s[i].
char32_t decode(std::string_view s, std::size_t i, std::size_t len);

void append(std::string& out, char32_t cp);

bool isValid(std::string_view s);

}  // namespace whittle::utf8
