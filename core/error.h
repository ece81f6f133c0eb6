#pragma once
// One error type for core and gpu: every failure names the file, the tensor (if any) and the reason,
// so the CLI can print a single line and the GUI a single dialog.
#include <stdexcept>
#include <string>

namespace whittle {

class Error : public std::runtime_error {
public:
    Error(std::string file, std::string tensor, std::string reason);
    explicit Error(std::string reason) : Error({}, {}, std::move(reason)) {}

    const std::string& file() const noexcept { return file_; }
    const std::string& tensor() const noexcept { return tensor_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string file_;
    std::string tensor_;
    std::string reason_;
};

// The input is malformed (bad header, wrong shape, missing field).
class FormatError : public Error {
public:
    using Error::Error;
};

// The operating system refused (missing file, permission, disk full).
class IoError : public Error {
public:
    using Error::Error;
};

// The user asked for something that cannot be done (bad option, existing output).
class UsageError : public Error {
public:
    using Error::Error;
};

// The destination exists and replacing it was not asked for. Callers add how to ask (the CLI's --force,
// the GUI's confirmation), so this message names no option.
class OutputExistsError : public UsageError {
public:
    using UsageError::UsageError;
};

// A CancelToken was triggered; partial output has been removed.
class CancelledError : public Error {
public:
    CancelledError() : Error("cancelled") {}
};

// strerror(errno) in a thread-safe way, for IoError reasons.
std::string errnoText(int err);

}  // namespace whittle
